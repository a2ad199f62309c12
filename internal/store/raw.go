package store

import (
	"database/sql"
	"database/sql/driver"

	"gorm.io/gorm"
)

// queryRows runs a raw statement and hands each row to scan.
//
// It is what Raw(...).Scan(...) does without its cost on bulk statements:
// gorm's Scan (gorm finisher_api.go) runs the statement through a throwaway
// logger recorder, whose Trace renders the full SQL text with every
// argument substituted; for a 1,000-row INSERT that rendering costs more
// CPU than the statement itself. Rows() skips the recorder.
func queryRows(db *gorm.DB, query string, args []any, scan func(*sql.Rows) error) error {
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
