package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"

	"github.com/rollcall-dev/rollcall/migrations"
)

// queryRows runs a raw statement and hands each row to scan.
//
// It is what Raw(...).Scan(...) does without its cost on bulk statements:
// gorm's Scan (gorm finisher_api.go) runs the statement through a throwaway
// logger recorder, whose Trace renders the full SQL text with every
// argument substituted; for a 1,000-row INSERT that rendering costs more
// CPU than the statement itself. Rows() skips the recorder.
func queryRows(db *gorm.DB, query string, args []any, scan func(*sql.Rows) error) error {
	if ctx := db.Statement.Context; ctx != nil && db.Dialector.Name() == "postgres" && ctx.Value(txStateKey{}) == nil {
		// Outside a transaction, on a context without the request's values
		// until its rows are closed (store.Open's callbacks, which leave
		// gorm's Row processor alone).
		if err := ctx.Err(); err != nil {
			return err
		}
		bare, stop := valueless(ctx)
		defer stop()
		db = db.WithContext(bare)
	}
	rows, err := db.Raw(query, args...).Rows()
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return translate(err)
		}
	}
	return translate(rows.Err())
}

// scanMoved reads RETURNING id, version, programme_id rows.
func scanMoved(out *[]movedRow) func(*sql.Rows) error {
	return func(r *sql.Rows) error {
		var m movedRow
		if err := r.Scan(&m.ID, &m.Version, &m.ProgrammeID); err != nil {
			return err
		}
		*out = append(*out, m)
		return nil
	}
}

// scanIDs reads one text column per row.
func scanIDs(out *[]string) func(*sql.Rows) error {
	return func(r *sql.Rows) error {
		var id string
		if err := r.Scan(&id); err != nil {
			return err
		}
		*out = append(*out, id)
		return nil
	}
}

// pgArray passes a Go slice to pgx as one array parameter. gorm expands a
// bare slice argument into a list of parameters (gorm statement.go AddVar);
// a driver.Valuer it passes through, and pgx's database/sql driver accepts
// any value (stdlib CheckNamedValue) and encodes the slice as an array.
//
// UUIDs travel as text[] and are cast in SQL: pgx first tries a parameter
// in its type's preferred (binary) format, cannot encode a Go string as a
// binary uuid, and only then falls back to text; the failed attempt formats
// the whole array into its error message (pgx extended_query_builder.go
// appendParam, pgtype newEncodeError).
type pgArray struct{ v any }

func (a pgArray) Value() (driver.Value, error) { return a.v, nil }

// readRows runs one SELECT and calls row after scanning each of its rows
// into dest, as database/sql's Rows.Scan would: a *sql.RawBytes
// destination is given the column's bytes, valid until the next row (text
// columns only on PostgreSQL). SQLite reads through queryRows.
//
// PostgreSQL reads through pgx's own API, on the transaction's connection
// or a pooled one (withPgx). database/sql on pgx's stdlib driver boxes
// every value of every row into a driver.Value, a new string for each text
// (stdlib Rows.Next, initValueFuncs), before Scan converts it: about seven
// allocations a row of a feed page. pgx scans each column straight into
// its typed destination with the plan chosen for the first row (pgx
// rows.go baseRows.Scan), and skips a nil one, whose bytes RawValues
// gives: a row costs only the strings the caller keeps.
//
// The statement is the one gorm sends for query (its ? numbered $1, $2, …,
// gorm clause.Expr.Build with the postgres dialector's BindVarTo), run on
// the same pgx connection as database/sql's statements with that
// connection's exec mode: the ConnConfig gorm's postgres driver parsed
// from the DSN (QueryExecModeCacheStatement unless the DSN chooses
// another), so the same prepared statement and the same plans. The result
// formats are the ones stdlib asks for (databaseSQLResultFormats): binary
// for intrinsic types, text for the rest, so raw bytes are the text
// database/sql gave as sql.RawBytes; except when the statement goes in one
// batch with what its transaction queued (later), which takes pgx's own
// formats, so only a read without raw bytes goes so. The statement counts
// once and its errors are translated, as queryRows's.
func (s *Store) readRows(ctx context.Context, query string, args []any, dest []any, row func() error) error {
	if s.dialect != migrations.Postgres {
		return queryRows(s.db(ctx), query, args, func(r *sql.Rows) error {
			if err := r.Scan(dest...); err != nil {
				return err
			}
			return row()
		})
	}
	typed := slices.Clone(dest)
	raw := make([]*sql.RawBytes, len(dest))
	for i, d := range dest {
		if b, ok := d.(*sql.RawBytes); ok {
			typed[i], raw[i] = nil, b
		}
	}
	query = pgPlaceholders(query)
	args = append([]any{pgResultFormats}, args...)
	if s.stmts != nil {
		// Once, outside fn: withPgx runs fn again on another connection
		// when the first was found dead before anything was sent.
		s.stmts.Add(1)
	}
	batchable := !slices.ContainsFunc(raw, func(b *sql.RawBytes) bool { return b != nil })
	return translate(s.onTxOrPool(ctx, batchable, func(ctx context.Context, c *pgx.Conn) (err error) {
		var rows pgx.Rows
		// In a transaction, the statements it queued (later) go in the
		// same round trip, ahead of this one: a pgx batch, whose result
		// formats are pgx's own for each type (binary for a uuid, say:
		// pgx extended_query_builder.go Build), which every typed
		// destination scans, but not raw bytes; a read with those sends
		// them first (onTxOrPool).
		br, err := s.sendPendingWith(ctx, c, &pgx.QueuedQuery{SQL: query, Arguments: args[1:]})
		switch {
		case err != nil:
			return err
		case br != nil:
			defer func() {
				if cerr := br.Close(); err == nil {
					err = cerr // the batch's end (its Sync) failed
				}
			}()
			rows, err = br.Query()
		default:
			rows, err = c.Query(ctx, query, args...)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for i, f := range rows.FieldDescriptions() {
			if i < len(raw) && raw[i] != nil && f.Format != pgx.TextFormatCode {
				return fmt.Errorf("store: column %d (type OID %d) comes in binary: it cannot be read as text bytes", i, f.DataTypeOID)
			}
		}
		for rows.Next() {
			if err := rows.Scan(typed...); err != nil {
				return err
			}
			vals := rows.RawValues()
			for i, b := range raw {
				if b != nil {
					*b = vals[i]
				}
			}
			if err := row(); err != nil {
				return err
			}
		}
		return rows.Err()
	}))
}

// readAll reads every row of query, through readRows, as a D: fields gives
// the destinations of a row's columns in an R, conv the value kept, and
// capacity how many rows to make room for at first. One R
// takes every row; what a row leaves behind is never shared with the next
// (text is a new string each time, and a NULL-able column's pointer is
// allocated anew or set to nil: pgx pgtype pointerPointerScanPlan,
// database/sql convertAssignRows).
func readAll[R, D any](s *Store, ctx context.Context, capacity int, query string, args []any, fields func(*R) []any, conv func(R) D) ([]D, error) {
	var r R
	out := make([]D, 0, capacity)
	err := s.readRows(ctx, query, args, fields(&r), func() error {
		out = append(out, conv(r))
		return nil
	})
	return out, err
}

// readOne is readAll of a statement that finds at most one row: its value,
// or NOT_FOUND. The reads a sign-in and every change of a learner make go
// this way, not through gorm's Take (its statement builder and reflective
// scan were about a tenth of the Go CPU of a first sign-in).
func readOne[R, D any](s *Store, ctx context.Context, query string, args []any, fields func(*R) []any, conv func(R) D) (D, error) {
	out, err := readAll(s, ctx, 1, query+" LIMIT 1", args, fields, conv)
	if err == nil && len(out) == 0 {
		err = translate(errNotFound)
	}
	if err != nil {
		var zero D
		return zero, err
	}
	return out[0], nil
}

// anyID renders "col is one of ids", for queryRows and readRows, and says
// whether no row can match (none), so the caller can answer without a
// statement. On PostgreSQL the IDs travel as one uuid[] parameter, so the
// statement's plan is cached whatever their number (an IN list is planned
// afresh on each execution); an ID that is not a UUID cannot match a uuid
// column there and is left out, so it cannot fail the cast. On SQLite gorm
// expands the slice into an IN list.
func (s *Store) anyID(col string, ids []string) (cond string, arg any, none bool) {
	if s.dialect != migrations.Postgres {
		return col + " IN ?", ids, len(ids) == 0
	}
	var b strings.Builder
	b.WriteByte('{')
	for _, id := range ids {
		if !allUUIDs([]string{id}) {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(id)
	}
	b.WriteByte('}')
	return col + " = ANY(?::uuid[])", b.String(), b.Len() == 2
}

// pgResultFormats is pgx stdlib's databaseSQLResultFormats (stdlib/sql.go
// init), which is not exported.
var pgResultFormats = pgx.QueryResultFormatsByOID{
	pgtype.BoolOID:        pgx.BinaryFormatCode,
	pgtype.ByteaOID:       pgx.BinaryFormatCode,
	pgtype.CIDOID:         pgx.BinaryFormatCode,
	pgtype.DateOID:        pgx.BinaryFormatCode,
	pgtype.Float4OID:      pgx.BinaryFormatCode,
	pgtype.Float8OID:      pgx.BinaryFormatCode,
	pgtype.Int2OID:        pgx.BinaryFormatCode,
	pgtype.Int4OID:        pgx.BinaryFormatCode,
	pgtype.Int8OID:        pgx.BinaryFormatCode,
	pgtype.OIDOID:         pgx.BinaryFormatCode,
	pgtype.TimestampOID:   pgx.BinaryFormatCode,
	pgtype.TimestamptzOID: pgx.BinaryFormatCode,
	pgtype.XIDOID:         pgx.BinaryFormatCode,
}

// pgPlaceholders numbers query's ? placeholders $1, $2, … as gorm's Raw
// does on PostgreSQL.
func pgPlaceholders(query string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' {
			b.WriteByte(query[i])
			continue
		}
		n++
		b.WriteString("$" + strconv.Itoa(n))
	}
	return b.String()
}

// batchRead is one statement of readBatch: its rows are scanned into dest
// (typed destinations only) and row is called after each.
type batchRead struct {
	query string
	args  []any
	dest  []any
	row   func()
}

// readBatch runs reads that do not depend on one another's answers in one
// round trip: one pgx batch on one connection (PostgreSQL only), each
// statement counted. Outside a transaction they read one snapshot: the
// batch begins a REPEATABLE READ, READ ONLY transaction and commits it (a
// later statement must not see a row an earlier one did not, or miss one
// it saw); inside one, they run in it. The result formats are pgx's own
// for each type (a batch takes no QueryResultFormatsByOID, pgx conn.go
// SendBatch), so a destination must be typed, never raw bytes. The batch
// runs on a context without the request's values: pgx keeps a batch's
// context in the connection until its next batch (pgTx). Outside a
// transaction the context withPgx gives is such a one (onTxOrPool).
func (s *Store) readBatch(ctx context.Context, reads []batchRead) error {
	if s.stmts != nil {
		s.stmts.Add(int64(len(reads)))
	}
	_, inTx := ctx.Value(txConnKey{}).(*sql.Conn)
	return translate(s.withPgx(ctx, func(bare context.Context, c *pgx.Conn) (err error) {
		if inTx {
			var stop func()
			bare, stop = valueless(ctx)
			defer stop()
		}
		b := &pgx.Batch{}
		if !inTx {
			b.Queue("begin isolation level repeatable read, read only")
		}
		for _, r := range reads {
			b.Queue(pgPlaceholders(r.query), r.args...)
		}
		if !inTx {
			b.Queue("commit")
		}
		br := c.SendBatch(bare, b)
		defer func() {
			if cerr := br.Close(); err == nil {
				err = cerr
			}
			if !inTx && c.PgConn().TxStatus() != 'I' && !c.IsClosed() {
				// A read failed: the server skipped the COMMIT. Ended
				// here, or pgx's stdlib drops the connection when it is
				// next taken (ResetSession).
				rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // as endFailed: bare may be done
				_, _ = c.Exec(rctx, "rollback")
				cancel()
			}
		}()
		if !inTx {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		for _, r := range reads {
			if err := readBatchRows(br, r); err != nil {
				return err
			}
		}
		if !inTx {
			_, err = br.Exec()
		}
		return err
	}))
}

func readBatchRows(br pgx.BatchResults, r batchRead) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(r.dest...); err != nil {
			return err
		}
		r.row()
	}
	return rows.Err()
}
