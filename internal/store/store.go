// Package store is the only package that talks to the database. It opens
// PostgreSQL or the embedded SQLite, runs transactions (carried in the
// context, so lifecycle code never sees gorm), maps rows to domain values and
// translates storage errors into apperr codes in one place.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/migrations"
)

// Store is a handle on one database.
type Store struct {
	gdb     *gorm.DB
	sqlDB   *sql.DB
	dialect migrations.Dialect
	stmts   *atomic.Int64
	// localLock stands in for advisory locks on SQLite (one process).
	localLock sync.Mutex
	// onEvents is told how many feed events each committed transaction wrote.
	onEvents func(n int)
	dsn      string
	hub      feedHub // long-poll wake-ups (notify.go)
	// grantsGen changes whenever this process creates or deletes a role
	// grant (AuthGeneration). Linking or removing a learner identity does
	// not move it: nothing cached by generation depends on them (a request
	// reads its learner every time).
	grantsGen atomic.Uint64
	// refs caches programmes and identity providers (refcache.go).
	refs refCache
	// requestReads counts the statements of gorm's Row processor run on
	// PostgreSQL outside a transaction on a context that valueless did not
	// make (ReadsOnRequestContext).
	requestReads atomic.Int64
}

// Options tune Open; the zero value is fine.
type Options struct {
	// CountStatements, when set, is incremented for every SQL statement run
	// (tests use it to prove a query runs a fixed number of statements).
	CountStatements *atomic.Int64
	// CountRoundTrips, when set on PostgreSQL, is incremented for every
	// exchange with the server: a statement, or a batch of them sent
	// together (roundTrips). Not counted: a statement's preparation on a
	// connection's first use of it, pgx's clean-up of statements evicted
	// from its cache, COPY, and database/sql's reset ping of a connection
	// idle for a second.
	CountRoundTrips *atomic.Int64
	MaxOpenConns    int
	// OnEventsCommitted, when set, is told how many feed events a transaction
	// wrote once it has committed (metrics).
	OnEventsCommitted func(n int)
}

// Open connects to dsn: "postgres://…" (or "postgresql://…") or "sqlite:PATH".
func Open(ctx context.Context, dsn string, opt Options) (*Store, error) {
	var (
		dial    gorm.Dialector
		dialect migrations.Dialect
	)
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		dialect = migrations.Postgres
		cfg := postgres.Config{DSN: dsn}
		if opt.CountRoundTrips != nil {
			cfg.OptionOpenDB = []stdlib.OptionOpenDB{stdlib.OptionBeforeConnect(func(_ context.Context, cc *pgx.ConnConfig) error {
				cc.Tracer = roundTrips{opt.CountRoundTrips}
				return nil
			})}
		}
		dial = postgres.New(cfg)
	case strings.HasPrefix(dsn, "sqlite:"):
		dialect = migrations.SQLite
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return nil, fmt.Errorf("sqlite: empty path")
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("sqlite: %w", err)
			}
		}
		// WAL lets readers run beside the writer; the busy timeout waits out
		// another process's write lock instead of failing; foreign keys are off
		// by default in SQLite.
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Set("_txlock", "immediate")
		dial = sqlite.Open("file:" + path + "?" + q.Encode())
	default:
		return nil, fmt.Errorf("unsupported database URL: want postgres://… or sqlite:PATH")
	}
	cfg := &gorm.Config{
		Logger:                                   logger.Discard,
		SkipDefaultTransaction:                   true,
		DisableForeignKeyConstraintWhenMigrating: true,
		NowFunc:                                  func() time.Time { return time.Now().UTC() },
	}
	gdb, err := gorm.Open(dial, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, err
	}
	if dialect == migrations.SQLite {
		// One connection: SQLite has one writer anyway, and a single
		// connection keeps transactions from contending for the file lock.
		sqlDB.SetMaxOpenConns(1)
	} else {
		n := opt.MaxOpenConns
		if n == 0 {
			n = 20
		}
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	s := &Store{gdb: gdb, sqlDB: sqlDB, dialect: dialect, stmts: opt.CountStatements, dsn: dsn, onEvents: opt.OnEventsCommitted}
	// A statement of a transaction whose context is done fails with the
	// context's error before anything is sent, as database/sql's Tx did
	// (Tx.grabConn). On the database/sql Conn that InTx holds on
	// PostgreSQL, pgx would fail it as a bad connection (pgconn
	// contextAlreadyDoneError is safe to retry; stdlib turns it into
	// driver.ErrBadConn): reported as an unreachable database, with the
	// connection thrown away instead of rolled back.
	//
	// On PostgreSQL, the statements a transaction queued to go with its
	// next one (later) go first, in a round trip of their own: a statement
	// gorm sends cannot carry them.
	done := func(d *gorm.DB) {
		if err := txUsable(d.Statement.Context); err != nil {
			_ = d.AddError(err)
		} else if err := s.sendPendingAlone(d.Statement.Context); err != nil {
			_ = d.AddError(translate(err))
		}
	}
	// Outside a transaction on PostgreSQL, a statement of gorm's takes its
	// pooled connection and runs on a context without the request's
	// values, as the store's reads through pgx do (onTxOrPool): pgx keeps
	// the context of a connection's last statement, and of database/sql's
	// reset ping, in the connection until its next. The request's context
	// is put back on the statement once gorm's own callback is done (the
	// caller may chain another statement on it); anything gorm runs inside
	// the processor after that callback (its after-hooks, associations;
	// the store uses none) sees the value-free one. Not for gorm's Row
	// processor (Raw(…).Rows(), Row()): its rows are read after the
	// callbacks, and database/sql closes them when their context ends.
	// done has refused a context already ended before this (the value-free
	// context's cancellation follows the request's a moment later).
	//
	// gorm's Row processor is used by queryRows alone, which runs it on a
	// value-free context until its rows are closed. Any other use of it
	// outside a transaction (Raw(…).Scan, Rows(), Row(), Table(…).Scan)
	// would leave the request's context in the connection: such a
	// statement is counted (ReadsOnRequestContext), and every test's store
	// fails its test if one ran (testkit.OpenStore).
	rowBefore := func(d *gorm.DB) {
		done(d)
		ctx := d.Statement.Context
		if dialect == migrations.Postgres && ctx != nil && ctx.Value(txStateKey{}) == nil {
			if _, bare := ctx.(bareContext); !bare {
				s.requestReads.Add(1)
			}
		}
	}
	const origCtx = "rollcall:ctx"
	detach := func(d *gorm.DB) {
		done(d)
		ctx := d.Statement.Context
		if d.Error != nil || dialect != migrations.Postgres || ctx.Value(txStateKey{}) != nil {
			return
		}
		bare, stop := valueless(ctx)
		d.Statement.Context = bare
		d.InstanceSet(origCtx, func() { d.Statement.Context = ctx; stop() })
	}
	count := func(*gorm.DB) {
		if s.stmts != nil {
			s.stmts.Add(1)
		}
	}
	// After each statement: the request's context back (the setting then
	// dropped, so the statement holds nothing of it), and the count.
	after := func(d *gorm.DB) {
		if dialect == migrations.Postgres && d.Statement.Context.Value(txStateKey{}) == nil {
			if back, ok := d.InstanceGet(origCtx); ok {
				if f, _ := back.(func()); f != nil {
					f()
					d.InstanceSet(origCtx, nil)
				}
			}
		}
		count(d)
	}
	cb := gdb.Callback()
	_ = cb.Create().Before("gorm:create").Register("rollcall:before", detach)
	_ = cb.Query().Before("gorm:query").Register("rollcall:before", detach)
	_ = cb.Update().Before("gorm:update").Register("rollcall:before", detach)
	_ = cb.Delete().Before("gorm:delete").Register("rollcall:before", detach)
	_ = cb.Row().Before("gorm:row").Register("rollcall:before", rowBefore)
	_ = cb.Raw().Before("gorm:raw").Register("rollcall:before", detach)
	_ = cb.Create().After("gorm:create").Register("rollcall:after", after)
	_ = cb.Query().After("gorm:query").Register("rollcall:after", after)
	_ = cb.Update().After("gorm:update").Register("rollcall:after", after)
	_ = cb.Delete().After("gorm:delete").Register("rollcall:after", after)
	_ = cb.Row().After("gorm:row").Register("rollcall:after", count)
	_ = cb.Raw().After("gorm:raw").Register("rollcall:after", after)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return s, nil
}

func (s *Store) Close() error {
	s.hub.close()
	return s.sqlDB.Close()
}

// ReadsOnRequestContext is how many statements of gorm's Row processor
// ran on PostgreSQL outside a transaction on a context with the caller's
// values (not through queryRows): each left its connection holding that
// context. It should stay 0; testkit.OpenStore fails a test whose store
// counted one.
func (s *Store) ReadsOnRequestContext() int64 { return s.requestReads.Load() }

// Dialect is "postgres" or "sqlite".
func (s *Store) Dialect() migrations.Dialect { return s.dialect }

// SQL exposes the underlying pool for migrations and health checks.
func (s *Store) SQL() *sql.DB { return s.sqlDB }

// Migrate applies pending migrations.
func (s *Store) Migrate(ctx context.Context) error { return migrations.Up(ctx, s.sqlDB, s.dialect) }

// Ready reports whether the database answers and the schema is current.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return err
	}
	return migrations.Current(ctx, s.sqlDB, s.dialect)
}

type txKey struct{}

// txState is what InTx learns about its transaction while it runs.
type txState struct {
	grantsChanged, refChanged bool
	// pg: a PostgreSQL transaction of pgTx's, whose feed events (feed)
	// are inserted with its COMMIT.
	pg    bool
	feed  []domain.Event
	ended bool
	// PostgreSQL (pgTx): the transaction's connection and its value-free
	// context; the statements whose answer nothing waits for (BEGIN, a
	// lock, an audit entry: later), sent ahead of the transaction's next
	// statement in the same round trip, or with its COMMIT; sent: whether
	// anything has gone to the server (BEGIN with it).
	conn    *sql.Conn
	bare    context.Context
	pending []pendingStmt
	sent    bool
	// broken: sending queued statements failed, so BEGIN may never have
	// run, or the transaction is aborted: every later statement, and the
	// COMMIT, fail with this error rather than run outside a transaction.
	broken error
}

type txStateKey struct{}

// AuthGeneration changes whenever this process commits a change to role
// grants. A cache of what an identity may do is valid
// while the generation it was read at is current; it is read before the
// rows are, so a change committed meanwhile invalidates it.
func (s *Store) AuthGeneration() uint64 { return s.grantsGen.Load() }

// grantsChanged bumps the generation now (readers of the old rows stop
// trusting them) and, inside a transaction, again once it ends (a reader
// that read the old rows before the commit does not keep them).
func (s *Store) grantsChanged(ctx context.Context) {
	s.grantsGen.Add(1)
	if st, ok := ctx.Value(txStateKey{}).(*txState); ok {
		st.grantsChanged = true
	}
}

// db returns the transaction carried by ctx, or the pool.
func (s *Store) db(ctx context.Context) *gorm.DB {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		if ctx.Value(pgxBusyKey{}) != nil {
			panic("store: a store call inside withPgx would wait for its own connection")
		}
		return tx
	}
	return s.gdb.WithContext(ctx)
}

// lockable returns the context's handle, locking the rows it reads until the
// transaction ends when forUpdate (PostgreSQL; SQLite has one writer anyway).
func (s *Store) lockable(ctx context.Context, forUpdate bool) *gorm.DB {
	q := s.db(ctx)
	if forUpdate && s.dialect == migrations.Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return q
}

// InTx runs fn in one transaction; everything fn writes through the store with
// the context it is given commits or rolls back together (invariant 5).
// Nested calls join the outer transaction.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return fn(ctx)
	}
	st := &txState{}
	t := &touched{}
	events := new(int)
	run := func(tx *gorm.DB, conn *sql.Conn) error {
		ctx := context.WithValue(context.WithValue(ctx, txKey{}, tx), committedKey{}, t)
		if conn != nil {
			ctx = context.WithValue(ctx, txConnKey{}, conn)
		}
		return fn(context.WithValue(context.WithValue(ctx, eventsKey{}, events), txStateKey{}, st))
	}
	var err error
	if s.dialect == migrations.Postgres {
		// On a connection of its own, so that withPgx reaches the same
		// session (gorm Connection), begun and ended by pgTx (pgtx.go).
		// The connection is taken on a context without the request's
		// values, as BEGIN and COMMIT run (pgTx): database/sql resets a
		// pooled connection with the context that takes it, and pgx's
		// reset pings one idle for a second (stdlib Conn.ResetSession), a
		// simple-protocol statement whose context the connection keeps
		// until its next (pgconn multiResultReader). gorm's statements in
		// the transaction run on ctx, whose cancellation a statement sees
		// at once (store.Open's callback); bare's follows it a moment
		// later (context.AfterFunc).
		if err := ctx.Err(); err != nil {
			// bare's cancellation follows ctx's a moment later: without
			// this, a connection's reset ping could be cut mid-way and a
			// healthy connection closed.
			return err
		}
		bare, stop := valueless(ctx)
		defer stop()
		err = s.gdb.WithContext(bare).Connection(func(c *gorm.DB) error {
			conn, ok := c.Statement.ConnPool.(*sql.Conn)
			if !ok {
				return fmt.Errorf("store: gorm's connection is a %T, not a database/sql Conn", c.Statement.ConnPool)
			}
			st.pg = true
			// A new session on the connection, as gorm's Begin makes one on
			// its transaction: each statement then starts from a clean one.
			// Its context carries the transaction's state, which gorm's
			// statements (store.Open's callback) need: they send what the
			// transaction queued first (later).
			tx := c.Session(&gorm.Session{Context: context.WithValue(ctx, txStateKey{}, st), NewDB: true})
			return s.pgTx(ctx, bare, conn, st, func() error { return run(tx, conn) })
		})
	} else {
		err = s.gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return run(tx, nil) })
	}
	if st.grantsChanged {
		s.grantsGen.Add(1)
	}
	if st.refChanged {
		s.refs.bump()
	}
	if err == nil {
		for id := range t.ids { // SQLite: wake long-polls after the commit
			s.hub.wake(id)
		}
		if *events > 0 && s.onEvents != nil {
			s.onEvents(*events)
		}
	}
	return translate(err)
}

type eventsKey struct{}

type txConnKey struct{}

// withPgx runs fn with a pgx connection, for what database/sql cannot do
// (COPY) or does at a cost (reading rows without boxing each value,
// readRows): inside a transaction begun by InTx the connection of that
// transaction, outside one a connection taken from the pool for fn alone.
// Either is a database/sql Conn whose Raw hands over the driver's
// connection (pgx stdlib.Conn); in a transaction it is the same session, so
// what fn does is part of the transaction, and the statements the
// transaction queued (later) are sent before fn runs. PostgreSQL only.
//
// While fn runs, Raw holds the driver connection, so fn must use only the
// pgx connection and the context it is given: a store call with that
// context inside a transaction (db), or one that reads through withPgx
// again (readRows), panics at once instead of waiting for itself.
//
// Raw discards the connection when fn panics or returns an error matching
// driver.ErrBadConn (database/sql Conn.Raw, closemuRUnlockCondReleaseConn).
// Inside a transaction it must not: the transaction is InTx's to end (pgTx
// rolls back, and discards the connection only when that fails). So a
// panic is carried past Raw and raised again after it, and such an error
// is passed on as text; the transaction then rolls back as for any other
// failure. A pooled
// connection holds no transaction and is discarded: after a panic its
// state (a result half read) is unknown.
func (s *Store) withPgx(ctx context.Context, fn func(ctx context.Context, c *pgx.Conn) error) error {
	return s.onTxOrPool(ctx, false, fn)
}

// onTxOrPool is withPgx; takesPending says fn sends the statements its
// transaction queued itself (readRows, with its own in one round trip),
// otherwise they are sent before fn runs.
func (s *Store) onTxOrPool(ctx context.Context, takesPending bool, fn func(ctx context.Context, c *pgx.Conn) error) error {
	if ctx.Value(pgxBusyKey{}) != nil {
		panic("store: a store call inside withPgx would wait for its own connection")
	}
	if conn, inTx := ctx.Value(txConnKey{}).(*sql.Conn); inTx {
		if err := txUsable(ctx); err != nil {
			return err // before anything is sent, as database/sql's Tx did
		}
		_, err := s.rawPgx(ctx, conn, true, func(ctx context.Context, c *pgx.Conn) error {
			if !takesPending {
				if err := s.sendPending(ctx, c); err != nil {
					return err
				}
			}
			return fn(ctx, c)
		})
		return err
	}
	if _, ok := ctx.Value(txKey{}).(*gorm.DB); ok || s.dialect != migrations.Postgres {
		// A pooled connection would be outside the transaction.
		return errors.New("store: withPgx needs PostgreSQL and, in a transaction, one begun by InTx")
	}
	// A pooled connection that turns out dead before anything was sent
	// (pgconn.SafeToRetry: closed while idle, a server restarted) is
	// discarded and fn runs once more on another, as database/sql does for
	// its own statements: pgx's stdlib driver returns driver.ErrBadConn for
	// such an error (pgx v5.11 stdlib/sql.go, Conn.QueryContext and
	// ExecContext), and database/sql then retries on a new connection.
	//
	// The connection is taken, and fn run, on a context without the
	// caller's values, as a transaction's are (InTx): pgx keeps the context
	// of a connection's last statement in the connection until its next
	// (pgconn's resultReader and multiResultReader; the reset ping of one
	// idle for a second, stdlib Conn.ResetSession), so an idle pooled
	// connection would otherwise hold the request that used it last, with
	// everything it decoded (TestPgTx_TheConnectionKeepsNothingOfTheRequest).
	if err := ctx.Err(); err != nil {
		return err // bare's cancellation follows ctx's a moment later
	}
	bare, stop := valueless(ctx)
	defer stop()
	for attempt := 0; ; attempt++ {
		c, err := s.sqlDB.Conn(bare)
		if err != nil {
			return err
		}
		retry, err := s.rawPgx(bare, c, false, fn)
		_ = c.Close() // back to the pool; nothing if Raw discarded it
		if !retry || attempt > 0 {
			return err
		}
	}
}

// rawPgx runs fn on conn's pgx connection (withPgx); retry reports, on a
// pooled connection, an error pgx says is safe to retry (other than the
// context's end), for which the connection was discarded.
func (s *Store) rawPgx(ctx context.Context, conn *sql.Conn, inTx bool, fn func(ctx context.Context, c *pgx.Conn) error) (retry bool, err error) {
	var panicked any
	var failed error
	err = conn.Raw(func(dc any) (err error) {
		defer func() {
			if r := recover(); r != nil {
				panicked, err = r, errors.New("store: panic in withPgx")
			}
			switch {
			case inTx && errors.Is(err, driver.ErrBadConn):
				err = fmt.Errorf("store: the connection failed: %s", err.Error())
			case !inTx && panicked != nil:
				err = driver.ErrBadConn
			case !inTx && err != nil && pgconn.SafeToRetry(err) && !contextEnded(err):
				failed, retry, err = err, true, driver.ErrBadConn
			}
		}()
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: the driver connection is a %T, not pgx's", dc)
		}
		return fn(context.WithValue(ctx, pgxBusyKey{}, true), pc.Conn())
	})
	if panicked != nil {
		panic(panicked)
	}
	if retry {
		err = failed
	}
	return retry, err
}

// contextEnded reports an error that is a context's end. pgx calls one
// met before anything was sent safe to retry (pgconn
// contextAlreadyDoneError), but its connection is sound: it is kept, and
// the statement is not run again on another.
func contextEnded(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// pgxBusyKey marks the context withPgx gives its function.
type pgxBusyKey struct{}

// countEvents adds n feed events to the transaction's count, reported when
// it commits; outside a transaction they are committed already.
func (s *Store) countEvents(ctx context.Context, n int) {
	if c, ok := ctx.Value(eventsKey{}).(*int); ok {
		*c += n
	} else if s.onEvents != nil && n > 0 {
		s.onEvents(n)
	}
}

// translate maps storage errors to apperr codes; everything else passes through.
var errNotFound = gorm.ErrRecordNotFound

func translate(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := apperr.As(err); ok {
		return err
	}
	if Unreachable(err) {
		return apperr.Unreachable(err)
	}
	if errors.Is(err, gorm.ErrRecordNotFound) || errors.Is(err, sql.ErrNoRows) {
		return &apperr.Error{Code: apperr.NotFound, Message: "not found", Err: err}
	}
	if isUniqueViolation(err) {
		return &apperr.Error{Code: apperr.Conflict, Message: "already exists", Err: err}
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "23503": // foreign_key_violation
			return &apperr.Error{Code: apperr.NotFound, Message: "a referenced object does not exist", Err: err}
		case "22P02": // invalid_text_representation: a malformed ID is a missing object
			return &apperr.Error{Code: apperr.NotFound, Message: "not found", Err: err}
		}
	}
	if strings.Contains(err.Error(), "FOREIGN KEY constraint failed") {
		return &apperr.Error{Code: apperr.NotFound, Message: "a referenced object does not exist", Err: err}
	}
	return err
}

// Unreachable reports whether err means the database could not be reached
// or the connection was lost (not that a statement failed): refused or
// failed connections, a server shutting down or refusing connections, a
// connection dropped mid-statement. A cancelled or expired context is the
// caller's doing and is not unreachable.
func Unreachable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		// Class 08 connection exception; 57P01-57P03 admin/crash shutdown,
		// cannot connect now; 53300 too many connections.
		return strings.HasPrefix(pg.Code, "08") || pg.Code == "57P01" || pg.Code == "57P02" ||
			pg.Code == "57P03" || pg.Code == "53300"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "conn closed")
}

func isUniqueViolation(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// IsConflict reports whether err is a unique violation (after translation).
func IsConflict(err error) bool { return apperr.CodeOf(err) == apperr.Conflict }

// TryLock takes a cluster-wide lock for scheduled work: a PostgreSQL session
// advisory lock held on one pooled connection until unlock, so only one
// replica runs the job. SQLite is one process: an in-process lock suffices.
func (s *Store) TryLock(ctx context.Context, key int64) (func(), bool, error) {
	if s.dialect == migrations.SQLite {
		if !s.localLock.TryLock() {
			return nil, false, nil
		}
		return s.localLock.Unlock, true, nil
	}
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return nil, false, err
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Close()
		return nil, false, err
	}
	if !ok {
		conn.Close()
		return nil, false, nil
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, key)
		conn.Close()
	}, true, nil
}
