package store_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// readWorld is a programme with one course in one group and an active
// learner in it: one enrolment row.
func readWorld(t *testing.T, st *store.Store) (ctWorld, domain.Learner) {
	t.Helper()
	ctx := context.Background()
	w := ctNew(t, st)
	if err := st.CreateCourse(ctx, domain.Course{ID: ctID(0x501), ProgrammeID: w.p.ID, LMSCourseID: "c-1", Title: "Course", CreatedAt: w.now}); err != nil {
		t.Fatal(err)
	}
	group := ctID(0x510)
	if err := st.CreateAccessGroup(ctx, domain.AccessGroup{ID: group, OrganisationID: w.org.ID, Name: "Group", CreatedAt: w.now}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAccessGroupCourses(ctx, group, []string{ctID(0x501)}); err != nil {
		t.Fatal(err)
	}
	email := "ann@org.example"
	l := domain.Learner{ID: ctID(0x520), ProgrammeID: w.p.ID, OrganisationID: w.org.ID, AccessGroupID: &group, Email: &email,
		Status: domain.StatusActive, Version: 1, CreatedAt: w.now, UpdatedAt: w.now, Origin: domain.OriginAdmin}
	if err := st.CreateLearner(ctx, l); err != nil {
		t.Fatal(err)
	}
	return w, l
}

// A feed page and an enrolments page read inside a transaction see what the
// transaction wrote and has not committed: on PostgreSQL they are read
// through pgx on the transaction's own connection, not a pooled one, as
// prepared statements (pgx's statement cache, as database/sql's reads), so
// their plans are those of before. Nothing of it stays after the rollback
// (INV5).
func TestReadRows_INV5_PagesReadInATransactionSeeItsWrites(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w, l := readWorld(t, st)
		boom := errors.New("rolled back")
		err := st.InTx(ctx, func(ctx context.Context) error {
			if err := st.AppendEvents(ctx, []domain.Event{{ProgrammeID: w.p.ID, LearnerID: l.ID, Type: domain.EventUpdated, LearnerVersion: 2, OccurredAt: w.now}}); err != nil {
				return err
			}
			es, _, err := st.ReadEvents(ctx, w.p.ID, 0, 10)
			if err != nil || len(es) != 1 || es[0].LearnerID != l.ID || es[0].LearnerVersion != 2 {
				t.Errorf("the transaction's feed: %+v %v, want its one event", es, err)
			}
			email := "bob@org.example"
			bob := l
			bob.ID, bob.Email = ctID(0x521), &email
			if err := st.CreateLearner(ctx, bob); err != nil {
				return err
			}
			rows, _, err := st.ListEnrolments(ctx, w.p.ID, "", "", false, 10)
			if err != nil || len(rows) != 2 || rows[1].LearnerID != bob.ID || rows[1].Email != email {
				t.Errorf("the transaction's enrolments: %+v %v, want Ann's and Bob's", rows, err)
			}
			if st.Dialect() == migrations.Postgres {
				if err := st.WithPgx(ctx, func(ctx context.Context, c *pgx.Conn) error {
					var n int
					err := c.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_statements
						WHERE (statement LIKE '%FROM lifecycle_events%programme_id = $2 AND id > $3 AND id > %'
						   OR statement LIKE '%FROM learners l%json_agg(c.lms_course_id%')
						  AND statement NOT LIKE '%pg_prepared_statements%'`).Scan(&n)
					if err == nil && n != 2 {
						t.Errorf("%d of the two reads are prepared statements of this session", n)
					}
					return err
				}); err != nil {
					return err
				}
			}
			return boom
		})
		if err != boom {
			t.Fatalf("InTx: %v", err)
		}
		if es, _, err := st.ReadEvents(ctx, w.p.ID, 0, 10); err != nil || len(es) != 0 {
			t.Fatalf("after the rollback: %+v %v", es, err)
		}
		if rows, _, err := st.ListEnrolments(ctx, w.p.ID, "", "", false, 10); err != nil || len(rows) != 1 || rows[0].LearnerID != l.ID {
			t.Fatalf("enrolments after the rollback: %+v %v", rows, err)
		}
	})
}

// A feed page (its events and the purge horizon) and an enrolments page are
// one statement each, inside a transaction or not: the reads that go
// through pgx are counted as the ones through gorm are. A feed page with no
// event after the cursor reads the horizon alone, a second statement.
func TestReadRows_OneStatementPerPage(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			var n atomic.Int64
			st := testkit.NewStore(t, d, store.Options{CountStatements: &n})
			w, l := readWorld(t, st)
			if err := st.AppendEvents(context.Background(), []domain.Event{{ProgrammeID: w.p.ID, LearnerID: l.ID,
				Type: domain.EventUpdated, LearnerVersion: 2, OccurredAt: w.now}}); err != nil {
				t.Fatal(err)
			}
			pages := func(ctx context.Context) error {
				for _, read := range []struct {
					name string
					n    int64
					read func() error
				}{
					{"a feed page", 1, func() error {
						es, _, err := st.ReadEvents(ctx, w.p.ID, 0, 10)
						if err == nil && len(es) != 1 {
							t.Errorf("the feed page holds %d events, want 1", len(es))
						}
						return err
					}},
					{"an empty feed page", 2, func() error { _, _, err := st.ReadEvents(ctx, w.p.ID, 1<<62, 10); return err }},
					{"an enrolments page", 1, func() error { _, _, err := st.ListEnrolments(ctx, w.p.ID, "", "", false, 10); return err }},
				} {
					n.Store(0)
					if err := read.read(); err != nil {
						return err
					}
					if got := n.Load(); got != read.n {
						t.Errorf("%s ran %d statements, want %d", read.name, got, read.n)
					}
				}
				return nil
			}
			if err := pages(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := st.InTx(context.Background(), pages); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// withPool runs WithPgx outside a transaction and returns what it returned
// or the panic it raised, failing if neither comes within 5 s (a connection
// never given back to a pool of one).
func withPool(t *testing.T, st *store.Store, fn func(ctx context.Context, c *pgx.Conn) error) (err error, panicked any) {
	t.Helper()
	return within(t, "WithPgx never returned: the pool's one connection is held", func() error {
		return st.WithPgx(context.Background(), fn)
	})
}

// backend is the server process of the pooled connection WithPgx is given.
func backend(t *testing.T, st *store.Store) int32 {
	t.Helper()
	var pid int32
	if err, p := withPool(t, st, func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid)
	}); err != nil || p != nil {
		t.Fatalf("WithPgx on the pool: %v %v", err, p)
	}
	return pid
}

// Outside a transaction WithPgx takes a connection from the pool and gives
// it back; a panic in its function reaches the caller, and an error meaning
// the connection is bad comes back as such: either way the connection,
// whose state is unknown, is discarded, not handed to the next caller, and
// the pool (of one here) is not left waiting for it.
func TestWithPgx_APanicOrBadConnectionOutsideATransactionDiscardsThePooledConnection(t *testing.T) {
	st := testkit.NewStore(t, migrations.Postgres, store.Options{MaxOpenConns: 1})
	first := backend(t, st)
	if again := backend(t, st); again != first {
		t.Fatalf("a connection given back cleanly was not reused: backend %d, then %d", first, again)
	}
	for _, c := range []struct {
		name string
		fn   func(ctx context.Context, c *pgx.Conn) error
	}{
		{"a panic", func(ctx context.Context, c *pgx.Conn) error {
			rows, err := c.Query(ctx, `SELECT generate_series(1, 100000)`)
			if err != nil {
				return err
			}
			rows.Next() // a result half read
			panic("boom")
		}},
		{"a bad connection", func(ctx context.Context, c *pgx.Conn) error {
			return fmt.Errorf("lost: %w", driver.ErrBadConn)
		}},
	} {
		err, p := withPool(t, st, c.fn)
		switch c.name {
		case "a panic":
			if p != "boom" {
				t.Fatalf("%s: want it raised again, got panic %v, error %v", c.name, p, err)
			}
		default:
			if p != nil || !errors.Is(err, driver.ErrBadConn) {
				t.Fatalf("%s: want the error back, got panic %v, error %v", c.name, p, err)
			}
		}
		if s := st.SQL().Stats(); s.InUse != 0 || s.OpenConnections > 1 {
			t.Fatalf("%s: %d connections in use, %d open after it", c.name, s.InUse, s.OpenConnections)
		}
		next := backend(t, st)
		if next == first {
			t.Fatalf("%s: the connection (backend %d) went back to the pool", c.name, first)
		}
		first = next
	}
}

// A store call made with the context withPgx gives its function fails at
// once, a feed or enrolments page included (it would take withPgx's
// connection again and wait for itself).
func TestWithPgx_APageReadInsideFailsAtOnce(t *testing.T) {
	st := testkit.NewStore(t, migrations.Postgres, store.Options{})
	w, _ := readWorld(t, st)
	for _, read := range []func(ctx context.Context) error{
		func(ctx context.Context) error {
			_, _, err := st.ReadEvents(ctx, w.p.ID, 0, 10)
			return err
		},
		func(ctx context.Context) error {
			_, _, err := st.ListEnrolments(ctx, w.p.ID, "", "", false, 10)
			return err
		},
	} {
		_, p := inTxWith(t, st, func(ctx context.Context, c *pgx.Conn) error { return read(ctx) })
		if s, _ := p.(string); !strings.Contains(s, "inside withPgx") {
			t.Fatalf("in a transaction: want a panic naming the mistake, got %v", p)
		}
		noOpenTransactions(t, st)
		_, p = withPool(t, st, func(ctx context.Context, c *pgx.Conn) error { return read(ctx) })
		if s, _ := p.(string); !strings.Contains(s, "inside withPgx") {
			t.Fatalf("outside one: want a panic naming the mistake, got %v", p)
		}
	}
}

// While the database refuses connections a feed or enrolments page is
// UNAVAILABLE (the client retries), not an internal error; once it accepts
// them again the pages are read without a restart: the pool kept no dead
// connection.
func TestReadRows_ADatabaseRefusingConnectionsIsUnavailable(t *testing.T) {
	st := testkit.NewStore(t, migrations.Postgres, store.Options{})
	w, _ := readWorld(t, st)
	ctx := context.Background()
	allow := testkit.ConnectionSwitch(t, st.SQL())
	reads := map[string]func() error{
		"a feed page":        func() error { _, _, err := st.ReadEvents(ctx, w.p.ID, 0, 10); return err },
		"an enrolments page": func() error { _, _, err := st.ListEnrolments(ctx, w.p.ID, "", "", false, 10); return err },
	}
	for name, read := range reads {
		if err := read(); err != nil {
			t.Fatalf("%s before the outage: %v", name, err)
		}
	}
	allow(false)
	for name, read := range reads {
		for range 2 { // a connection of the pool (killed), then a new one (refused)
			if err := read(); apperr.CodeOf(err) != apperr.Unavailable {
				t.Errorf("%s with the database refusing connections: %v (code %q), want %s", name, err, apperr.CodeOf(err), apperr.Unavailable)
			}
		}
	}
	allow(true)
	for name, read := range reads {
		if err := read(); err != nil {
			t.Errorf("%s after the outage: %v", name, err)
		}
	}
}

// retryable is an error pgx reports as safe to retry: nothing reached the
// server (pgconn.SafeToRetry).
type retryable struct{}

func (retryable) Error() string     { return "connection closed before the query was sent" }
func (retryable) SafeToRetry() bool { return true }

// Outside a transaction, a pooled connection found dead before anything was
// sent is discarded and the read runs once more on another connection, as
// database/sql retries its own statements; a second such failure, or any
// other error, comes back to the caller.
func TestWithPgx_ASafeToRetryFailureRunsOnceMoreOnAnotherConnection(t *testing.T) {
	st := testkit.NewStore(t, migrations.Postgres, store.Options{MaxOpenConns: 1})
	var pids []int32
	fails := 1
	err, p := withPool(t, st, func(ctx context.Context, c *pgx.Conn) error {
		var pid int32
		if err := c.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			return err
		}
		pids = append(pids, pid)
		if len(pids) <= fails {
			return fmt.Errorf("read: %w", retryable{})
		}
		return nil
	})
	if err != nil || p != nil || len(pids) != 2 || pids[0] == pids[1] {
		t.Fatalf("one retryable failure: error %v, panic %v, backends %v; want success on a second, new connection", err, p, pids)
	}
	pids, fails = nil, 2
	err, p = withPool(t, st, func(ctx context.Context, c *pgx.Conn) error {
		pids = append(pids, 0)
		return retryable{}
	})
	if !errors.As(err, new(retryable)) || p != nil || len(pids) != 2 {
		t.Fatalf("two retryable failures: error %v, panic %v, %d runs; want the error after two runs", err, p, len(pids))
	}
	pids = nil
	err, _ = withPool(t, st, func(ctx context.Context, c *pgx.Conn) error {
		pids = append(pids, 0)
		return errors.New("a failed statement")
	})
	if err == nil || len(pids) != 1 {
		t.Fatalf("another error: %v after %d runs; want it after one", err, len(pids))
	}
}
