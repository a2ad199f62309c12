package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// PostgreSQL transactions.
//
// InTx begins and ends a PostgreSQL transaction itself, with BEGIN, COMMIT
// and ROLLBACK on the connection it holds, rather than through
// database/sql's Tx: the feed rows a transaction appends (AppendEvents) are
// sent with its COMMIT, in one pipeline and one round trip (pgx Batch, the
// extended protocol's messages for both statements followed by one Sync:
// pgx conn.go SendBatch; on a connection's first use of the statement pgx
// prepares it first, one round trip more, once: sendBatchExtendedWithDescription).
// The programme's feed lock, which the insert
// takes, is then held only while PostgreSQL runs the insert and the commit,
// not while the service waits for a core to send COMMIT after the insert's
// answer: on a busy machine that wait was most of the time the lock was
// held, and every writer of the programme queued behind it. The other
// statements nothing waits for (BEGIN itself, a lock, an audit entry) go
// the same way, with the transaction's next statement (later).
//
// gorm's statements run on the same connection (a database/sql Conn, gorm
// Connection), so they are part of the transaction; database/sql does not
// know one is open, so the store must end it on every path: fn's error or
// panic rolls back, and a connection whose transaction could not be ended
// is closed, never returned to the pool inside a transaction (pgx's stdlib
// would also drop one returned so, at its next use: stdlib/sql.go,
// Conn.ResetSession; the rollback keeps the connection).

// errCommitRolledBack: COMMIT answered ROLLBACK, because a statement of the
// transaction had failed and its error was not returned.
var errCommitRolledBack = pgx.ErrTxCommitRollback

// onPgx runs f on conn's pgx connection (conn.Raw). f must not use the
// store: Raw holds the connection while f runs.
func onPgx(conn *sql.Conn, f func(c *pgx.Conn) error) error {
	return conn.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: the driver connection is a %T, not pgx's", dc)
		}
		return f(pc.Conn())
	})
}

// pgTx runs fn inside a transaction on conn; st collects the feed events
// fn appended, which go with the COMMIT.
func (s *Store) pgTx(ctx, bare context.Context, conn *sql.Conn, st *txState, fn func() error) (err error) {
	// BEGIN and COMMIT run on a context that is cancelled with ctx but holds
	// none of its values. pgx keeps contexts in the connection (pgconn
	// PgConn): a simple-protocol statement's in multiResultReader and
	// resultReader (PgConn.Exec, MultiResultReader.NextResult), one with
	// arguments in resultReader (execExtendedPrefix), a batch's in
	// pipeline (StartPipeline), each until the next of its kind. A COMMIT
	// on the request's context kept the request (an import's decoded rows
	// included) in every pooled connection's pipeline for good. A COMMIT
	// alone goes by the simple protocol, which replaces the first two; a
	// COMMIT with feed rows or queued statements is a pipeline, which
	// replaces the last two, and multiResultReader then holds the
	// connection's last statement without arguments (the reset's ping when
	// the connection was taken, a BEGIN sent alone, a statement of fn's)
	// until its next: bare too (InTx takes the connection on it), or fn's.
	// The same holds for the statements queued (later), sent on bare.
	//
	// BEGIN goes with the transaction's first statement (later).
	st.conn, st.bare, st.pending = conn, bare, []pendingStmt{{sql: "begin"}}
	open := true
	defer func() {
		st.ended, st.pending = true, nil
		if !open || !st.sent {
			return // ended, or nothing sent: no transaction to end
		}
		if p := recover(); p != nil {
			s.endFailed(conn)
			panic(p)
		}
		s.endFailed(conn)
	}()
	if err := fn(); err != nil {
		return err
	}
	return onPgx(conn, func(c *pgx.Conn) error {
		if st.broken != nil {
			return st.broken // never committed: endFailed rolls back
		}
		want := byte('T') // in a transaction
		if !st.sent {
			want = 'I' // BEGIN not sent yet: it goes with the COMMIT
		}
		if c.PgConn().TxStatus() != want {
			// Something in fn ended or broke the transaction (a COMMIT or a
			// nested BEGIN of its own): what followed was not part of it.
			return fmt.Errorf("store: the transaction is no longer open at commit (status %q)", c.PgConn().TxStatus())
		}
		if err := ctx.Err(); err != nil {
			return err // cancelled: rolled back, never committed
		}
		if !st.sent && len(st.pending) == 1 && len(st.feed) == 0 {
			open = false
			return nil // fn ran no statement: nothing to send
		}
		pending := st.pending
		st.pending, st.sent = nil, true
		err := s.commitWithFeed(bare, c, pending, st.feed)
		// Ended unless the pipeline stopped before COMMIT (an insert
		// failed: the transaction is open and aborted) or the connection
		// broke; endFailed then rolls back or discards the connection.
		open = c.PgConn().TxStatus() != 'I' || c.IsClosed()
		return err
	})
}

// endFailed rolls back the transaction on conn, on a context of its own
// (the caller's may be cancelled, and its values must not stay with the
// connection: pgTx); a connection that still holds a
// transaction after that (or broke) is closed, so the pool drops it.
func (s *Store) endFailed(conn *sql.Conn) {
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = onPgx(conn, func(c *pgx.Conn) error {
		if !c.IsClosed() {
			if _, err := c.Exec(rctx, "rollback"); err == nil && c.PgConn().TxStatus() == 'I' {
				return nil
			}
		}
		_ = c.Close(rctx)
		return driver.ErrBadConn // database/sql closes the connection (Conn.Raw)
	})
}

// valueless returns a context cancelled when ctx is done, without ctx's
// values, and the function that releases it. The context is a
// bareContext, so the store's check on gorm's Row processor (Open) can tell
// it from a request's.
func valueless(ctx context.Context) (context.Context, func()) {
	var bare context.Context
	var cancel context.CancelFunc
	if d, ok := ctx.Deadline(); ok {
		// The same deadline, so an expiry reads as one (pgconn's timeout
		// errors wrap the context's error).
		bare, cancel = context.WithDeadline(context.Background(), d)
	} else {
		bare, cancel = context.WithCancel(context.Background())
	}
	unhook := context.AfterFunc(ctx, cancel)
	return bareContext{bare}, func() { unhook(); cancel() }
}

// bareContext marks a context valueless made: it has no values (the
// context it wraps derives from context.Background), only the deadline and
// cancellation of the one it was made from.
type bareContext struct{ context.Context }

// commitWithFeed sends the transaction's pending statements (later), its
// feed inserts, one per programme (feedInsert), and COMMIT as one batch;
// with neither, COMMIT alone (the simple protocol, as pgx's own Tx.Commit
// sends it).
func (s *Store) commitWithFeed(ctx context.Context, c *pgx.Conn, pending []pendingStmt, es []domain.Event) error {
	if len(es) == 0 && len(pending) == 0 {
		tag, err := c.Exec(ctx, "commit")
		if err == nil && tag.String() != "COMMIT" {
			err = errCommitRolledBack
		}
		return err
	}
	b := &pgx.Batch{}
	for _, p := range pending {
		b.Queue(p.sql, p.args...)
	}
	for _, part := range feedParts(es) {
		b.Queue(pgPlaceholders(feedInsert), part...)
		if s.stmts != nil {
			s.stmts.Add(1)
		}
	}
	b.Queue("commit")
	br := c.SendBatch(ctx, b)
	var tag pgconn.CommandTag
	var err error
	for range b.Len() {
		if tag, err = br.Exec(); err != nil {
			break
		}
	}
	committed := err == nil && tag.String() == "COMMIT"
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	switch {
	case committed:
		// PostgreSQL answered COMMIT: what failed after it (the connection,
		// before ReadyForQuery) did not undo it; pgTx drops the connection.
		return nil
	case err == nil:
		return errCommitRolledBack
	}
	return err
}

// feedInsert appends one programme's events to its feed (AppendEvents): it
// takes the programme's feed lock, held to commit, so feed IDs become
// visible in order (gap-free reads) and per learner in version order;
// notifies the programme's long-polls, delivered at commit (notify.go); and
// inserts the events in the order given. The lock is taken in a
// MATERIALIZED CTE joined to the rows: the IDs (nextval, the column's
// default) are drawn in the INSERT's projection above the join, so after
// the lock, whatever join order the planner picks.
const feedInsert = `WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock(?), pg_notify('` + feedChannel + `', ?))
	INSERT INTO lifecycle_events (programme_id, learner_id, type, learner_version, occurred_at)
	SELECT CAST(? AS uuid), e.learner_id, e.type, e.version, e.at
	FROM l, unnest(CAST(CAST(? AS text[]) AS uuid[]), CAST(? AS text[]), CAST(? AS bigint[]), CAST(? AS timestamptz[]))
		WITH ORDINALITY AS e(learner_id, type, version, at, n)
	ORDER BY e.n`

// feedParts are feedInsert's arguments for es: one statement per
// programme, the programmes in their first event's order (callers that
// write into several programmes take the locks in a fixed order), each
// programme's events in the order given.
func feedParts(es []domain.Event) [][]any {
	var order []string
	byProgramme := map[string][]domain.Event{}
	for _, e := range es {
		if _, ok := byProgramme[e.ProgrammeID]; !ok {
			order = append(order, e.ProgrammeID)
		}
		byProgramme[e.ProgrammeID] = append(byProgramme[e.ProgrammeID], e)
	}
	out := make([][]any, len(order))
	for i, p := range order {
		part := byProgramme[p]
		learners, types := make([]string, len(part)), make([]string, len(part))
		versions, at := make([]int64, len(part)), make([]time.Time, len(part))
		for j, e := range part {
			learners[j], types[j], versions[j], at[j] = e.LearnerID, string(e.Type), e.LearnerVersion, e.OccurredAt.UTC()
		}
		out[i] = []any{feedLockKey(p), p, p, learners, types, versions, at}
	}
	return out
}

// flushFeed inserts the feed events ctx's transaction has appended so far,
// before a read of the feed in the same transaction: it sees its own rows,
// as it would had they been inserted when appended. Nothing to do outside
// such a transaction, or with nothing pending.
func (s *Store) flushFeed(ctx context.Context) error {
	st, ok := ctx.Value(txStateKey{}).(*txState)
	if !ok || !st.pg || len(st.feed) == 0 {
		return nil
	}
	for _, part := range feedParts(st.feed) {
		if s.stmts != nil {
			s.stmts.Add(1)
		}
		if err := s.withPgx(ctx, func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, pgPlaceholders(feedInsert), part...)
			return err
		}); err != nil {
			return translate(err)
		}
	}
	st.feed = nil
	return nil
}

// pendingStmt is a statement of a transaction sent with its next one.
type pendingStmt struct {
	sql  string // with $n placeholders
	args []any
}

// later queues a statement of ctx's PostgreSQL transaction whose answer
// nothing waits for (a lock, an insert whose result is not read), to go to
// the server ahead of the transaction's next statement, in the same round
// trip, or with its COMMIT; it reports false outside such a transaction,
// where the caller runs the statement itself. The order of the
// transaction's statements is kept: every statement sent on its
// connection sends what is queued first (readRows with itself, in one
// batch; withPgx and gorm's statements in a round trip before theirs), so
// a lock queued is held before any later statement runs. What changes is
// when the statement's error is seen: with the next statement or at
// COMMIT, which it then fails, and the transaction rolls back as for any
// other error.
//
// A queued statement's result is never read, so it cannot report "no row
// written": an insert that must know (ON CONFLICT DO NOTHING, whose
// conflicts would otherwise put the row's values in PostgreSQL's log, see
// nopii.go) runs at once.
func (s *Store) later(ctx context.Context, query string, args ...any) bool {
	if ctx.Value(pgxBusyKey{}) != nil {
		// Queued inside withPgx, it would be sent after the statements
		// of fn that it must come before.
		panic("store: a store call inside withPgx would wait for its own connection")
	}
	st, ok := ctx.Value(txStateKey{}).(*txState)
	if !ok || !st.pg || st.ended {
		return false
	}
	st.pending = append(st.pending, pendingStmt{pgPlaceholders(query), args})
	if s.stmts != nil {
		s.stmts.Add(1)
	}
	return true
}

// sendPending sends ctx's transaction's queued statements on c, in one
// round trip.
func (s *Store) sendPending(ctx context.Context, c *pgx.Conn) error {
	_, err := s.sendPendingWith(ctx, c, nil)
	return err
}

// sendPendingWith is sendPending with then (a query) after the queued
// statements, in the same batch: their results are read, and the batch is
// returned for the caller to read then's and close; nil when nothing was
// queued (the caller runs then itself).
func (s *Store) sendPendingWith(ctx context.Context, c *pgx.Conn, then *pgx.QueuedQuery) (pgx.BatchResults, error) {
	st, ok := ctx.Value(txStateKey{}).(*txState)
	if !ok || !st.pg || st.ended || len(st.pending) == 0 {
		return nil, nil
	}
	if err := txUsable(ctx); err != nil {
		return nil, err
	}
	pending := st.pending
	st.pending, st.sent = nil, true
	// A failure here may leave BEGIN unsent (pgx refused an argument, or
	// a preparation failed, before anything ran) or the transaction
	// aborted: either way nothing more may run in it (broken).
	fail := func(err error) error {
		st.broken = err
		return err
	}
	if then == nil && len(pending) == 1 && len(pending[0].args) == 0 {
		// BEGIN alone: the simple protocol, as pgx's own Begin.
		if _, err := c.Exec(st.bare, pending[0].sql); err != nil {
			return nil, fail(err)
		}
		return nil, nil
	}
	b := &pgx.Batch{}
	for _, p := range pending {
		b.Queue(p.sql, p.args...)
	}
	if then != nil {
		b.QueuedQueries = append(b.QueuedQueries, then)
	}
	// The transaction's value-free context, as BEGIN's and COMMIT's: pgx
	// keeps a batch's context in the connection (pgTx).
	br := c.SendBatch(st.bare, b)
	for range pending {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, fail(err)
		}
	}
	if then == nil {
		if err := br.Close(); err != nil {
			return nil, fail(err)
		}
		return nil, nil
	}
	return br, nil
}

// txUsable is why no statement may run in ctx's transaction now: its
// context is done (database/sql's Tx refused so, Tx.grabConn), or sending
// its queued statements failed (txState.broken).
func txUsable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if st, ok := ctx.Value(txStateKey{}).(*txState); ok && st.broken != nil {
		return st.broken
	}
	return nil
}

// sendPendingAlone sends ctx's transaction's queued statements before a
// statement of gorm's (store.Open's callback), in a round trip of their
// own.
func (s *Store) sendPendingAlone(ctx context.Context) error {
	st, ok := ctx.Value(txStateKey{}).(*txState)
	if !ok || !st.pg || st.ended || len(st.pending) == 0 {
		return nil
	}
	return onPgx(st.conn, func(c *pgx.Conn) error { return s.sendPending(ctx, c) })
}

// roundTrips counts the exchanges with PostgreSQL (Options.CountRoundTrips):
// pgx calls TraceQueryStart for every Exec and Query, database/sql's
// through its stdlib driver included, and TraceBatchStart once for a batch
// (pgx tracer.go, conn.go, batch.go).
type roundTrips struct{ n *atomic.Int64 }

func (r roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}

func (roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}

func (roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
