package store

import (
	"context"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/migrations"
)

// Nothing personal in PostgreSQL's log. A unique violation is logged by the
// server with the duplicate key (`DETAIL: Key (email)=(ann@kent.gov.uk)
// already exists.`), and that line outlives the learner's erasure. So no
// write of personal data relies on a unique index to find a duplicate:
//
//   - inserts say ON CONFLICT DO NOTHING and count the rows written
//     (insertNew; CreateLearner, whose statement also takes the lock
//     below; InsertLearners for imports);
//   - an update that changes a learner's email looks first (UpdateLearner),
//     under emailWritersLock held exclusively; every insert of a learner
//     holds it shared, so no insert of the same email can be in flight
//     between the look and the write.
//
// The unique indexes stay: they are the guarantee; these paths only keep
// them from ever firing.

// emailWritersLock is the advisory lock key of writers of learners' emails.
const emailWritersLock int64 = 0x726f6c6c656d6c // "rollelm"

// emailWriter takes the email writers' lock for ctx's transaction
// (PostgreSQL; SQLite has one writer and no server log).
func (s *Store) emailWriter(ctx context.Context, exclusive bool) error {
	if s.dialect != migrations.Postgres {
		return nil
	}
	fn := "pg_advisory_xact_lock_shared"
	if exclusive {
		fn = "pg_advisory_xact_lock"
	}
	return translate(s.db(ctx).Exec(`SELECT `+fn+`(?)`, emailWritersLock).Error)
}

// insertNew inserts row unless it conflicts with an existing one on any
// unique index; a conflict is CONFLICT, never a raised unique violation.
func insertNew(db *gorm.DB, row any) error {
	res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(row)
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return errAlreadyExists()
	}
	return nil
}

func errAlreadyExists() error { return &apperr.Error{Code: apperr.Conflict, Message: "already exists"} }
