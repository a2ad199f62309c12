package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
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
// held, and every writer of the programme queued behind it.
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
func (s *Store) pgTx(ctx context.Context, conn *sql.Conn, st *txState, fn func() error) (err error) {
	// BEGIN and COMMIT run on a context that is cancelled with ctx but holds
	// none of its values. pgx keeps contexts in the connection (pgconn
	// PgConn): a simple-protocol statement's in multiResultReader and
	// resultReader (PgConn.Exec, MultiResultReader.NextResult), one with
	// arguments in resultReader (execExtendedPrefix), a batch's in
	// pipeline (StartPipeline), each until the next of its kind. A COMMIT
	// on the request's context kept the request (an import's decoded rows
	// included) in every pooled connection's pipeline for good. A COMMIT
	// alone goes by the simple protocol, which replaces the first two; a
	// COMMIT with feed rows is a pipeline, which replaces the last two, and
	// multiResultReader then holds the transaction's last statement without
	// arguments (BEGIN, unless fn ran one) until the connection's next.
	bare, stop := valueless(ctx)
	defer stop()
	if err := onPgx(conn, func(c *pgx.Conn) error {
		_, err := c.Exec(bare, "begin")
		return err
	}); err != nil {
		return err
	}
	open := true
	defer func() {
		st.ended = true
		if !open {
			return
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
		if c.PgConn().TxStatus() != 'T' {
			// Something in fn ended or broke the transaction (a COMMIT or a
			// nested BEGIN of its own): what followed was not part of it.
			return fmt.Errorf("store: the transaction is no longer open at commit (status %q)", c.PgConn().TxStatus())
		}
		if err := ctx.Err(); err != nil {
			return err // cancelled: rolled back, never committed
		}
		err := s.commitWithFeed(bare, c, st.feed)
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
// values, and the function that releases it.
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
	return bare, func() { unhook(); cancel() }
}

// commitWithFeed sends the transaction's feed inserts, one per programme
// (feedInsert), and COMMIT as one batch; with no events, COMMIT alone (the
// simple protocol, as pgx's own Tx.Commit sends it).
func (s *Store) commitWithFeed(ctx context.Context, c *pgx.Conn, es []domain.Event) error {
	if len(es) == 0 {
		tag, err := c.Exec(ctx, "commit")
		if err == nil && tag.String() != "COMMIT" {
			err = errCommitRolledBack
		}
		return err
	}
	b := &pgx.Batch{}
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
