package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// inTxWith runs InTx with fn inside withPgx and returns what InTx returned
// or the panic it raised, failing if neither comes within 5 s (a
// transaction waiting for itself).
func inTxWith(t *testing.T, st *store.Store, fn func(ctx context.Context, c *pgx.Conn) error) (err error, panicked any) {
	t.Helper()
	return within(t, "the transaction never ended: it waits for its own connection", func() error {
		return st.InTx(context.Background(), func(ctx context.Context) error {
			if _, err := st.SQL().ExecContext(ctx, `SELECT 1`); err != nil { // another pooled connection still works
				return err
			}
			return st.WithPgx(ctx, fn)
		})
	})
}

// within runs f and returns what it returned or the panic it raised,
// failing with stuck if neither comes within 5 s.
func within(t *testing.T, stuck string, f func() error) (err error, panicked any) {
	t.Helper()
	type result struct {
		err error
		p   any
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			r.p = recover()
			done <- r
		}()
		r.err = f()
	}()
	select {
	case r := <-done:
		return r.err, r.p
	case <-time.After(5 * time.Second):
		t.Fatal(stuck)
		return nil, nil
	}
}

// noOpenTransactions fails if a session of the test's database is still
// inside a transaction (and so holding its locks: the feed's, the email
// writers').
func noOpenTransactions(t *testing.T, st *store.Store) {
	t.Helper()
	if n := testkit.Count(t, st, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`); n != 0 {
		t.Fatalf("%d sessions left idle in a transaction", n)
	}
}

// A panic in withPgx's function reaches the caller (the HTTP edge recovers
// it), the transaction rolls back and its connection is usable again: it
// does not wait for itself with its locks held (INV-5: nothing of the
// transaction stays).
func TestWithPgx_INV5_APanicRollsBackAndFreesTheConnection(t *testing.T) {
	st := testkit.NewStore(t, migrations.Postgres, store.Options{MaxOpenConns: 2})
	err, p := inTxWith(t, st, func(ctx context.Context, c *pgx.Conn) error {
		if _, err := c.Exec(ctx, `CREATE TEMP TABLE rc_panicked (n int)`); err != nil {
			return err
		}
		panic("boom")
	})
	if p != "boom" || err != nil {
		t.Fatalf("want the panic raised again, got panic %v, error %v", p, err)
	}
	noOpenTransactions(t, st)
	// The connection went back to the pool in a clean state: the table of
	// the rolled-back transaction is gone, and withPgx works again.
	err, p = inTxWith(t, st, func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `CREATE TEMP TABLE rc_panicked (n int)`)
		return err
	})
	if err != nil || p != nil {
		t.Fatalf("withPgx after a panic: %v %v", err, p)
	}
}

// A store call made with the context withPgx gives its function would wait
// for the connection withPgx holds; it fails at once instead.
func TestWithPgx_AStoreCallInsideFailsAtOnce(t *testing.T) {
	st := testkit.NewStore(t, migrations.Postgres, store.Options{})
	_, p := inTxWith(t, st, func(ctx context.Context, c *pgx.Conn) error {
		_, err := st.ListProgrammes(ctx, nil)
		return err
	})
	if s, _ := p.(string); !strings.Contains(s, "inside withPgx") {
		t.Fatalf("want a panic naming the mistake, got %v", p)
	}
	noOpenTransactions(t, st)
}
