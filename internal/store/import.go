package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/migrations"
)

// ImportLearners writes new learners with, for each one written, its
// LEARNER_PROVISIONED feed event and its audit entry by actorID, and returns
// the IDs written (an email taken meanwhile is skipped, not an error).
//
// On PostgreSQL the learners go in one INSERT per 5,000 rows, each column
// as one array parameter (unnest); then, holding the programme's feed lock
// (taken after the learner rows, as every writer takes them), one
// statement per 5,000 written learners generates their feed and audit rows
// in SQL from those rows. Nothing is rendered, sent or scanned per row three
// times. SQLite writes the same rows with multi-row INSERTs.
func (s *Store) ImportLearners(ctx context.Context, ls []domain.Learner, actorID string, at time.Time) (map[string]bool, error) {
	if s.dialect != migrations.Postgres {
		return s.importLearnersPortable(ctx, ls, actorID, at)
	}
	written := make(map[string]bool, len(ls))
	if len(ls) == 0 {
		return written, nil
	}
	if err := s.emailWriter(ctx, false); err != nil {
		return nil, err
	}
	ls = byEmail(ls)
	const batch = 5000
	at = at.UTC()
	var moved []movedRow
	for start := 0; start < len(ls); start += batch {
		part := ls[start:min(start+batch, len(ls))]
		n := len(part)
		lids, progs, orgs, emails := make([]pgtype.UUID, n), make([]pgtype.UUID, n), make([]pgtype.UUID, n), make([]*string, n)
		groups, given, family := make([]pgtype.UUID, n), make([]*string, n), make([]*string, n)
		statuses, versions, created, updated := make([]string, n), make([]int64, n), make([]time.Time, n), make([]time.Time, n)
		origins := make([]string, n)
		for i, l := range part {
			var err error
			if lids[i], err = pgUUID(&l.ID); err == nil {
				if progs[i], err = pgUUID(&l.ProgrammeID); err == nil {
					if orgs[i], err = pgUUID(&l.OrganisationID); err == nil {
						groups[i], err = pgUUID(l.AccessGroupID)
					}
				}
			}
			if err != nil {
				return nil, err
			}
			emails[i], given[i], family[i] = l.Email, l.GivenName, l.FamilyName
			statuses[i], versions[i], created[i], updated[i] = string(l.Status), l.Version, l.CreatedAt.UTC(), l.UpdatedAt.UTC()
			origins[i] = string(l.Origin)
		}
		if err := queryRows(s.db(ctx), `INSERT INTO learners (id, programme_id, organisation_id, access_group_id, email, given_name, family_name,
				status, version, created_at, updated_at, origin)
			SELECT * FROM unnest(CAST(? AS uuid[]), CAST(? AS uuid[]), CAST(? AS uuid[]), CAST(? AS uuid[]), CAST(? AS text[]),
				CAST(? AS text[]), CAST(? AS text[]), CAST(? AS text[]), CAST(? AS bigint[]), CAST(? AS timestamptz[]), CAST(? AS timestamptz[]),
				CAST(? AS text[]))
			ON CONFLICT (email) WHERE email IS NOT NULL DO NOTHING
			RETURNING CAST(id AS text), version, CAST(programme_id AS text)`,
			[]any{pgArray{lids}, pgArray{progs}, pgArray{orgs}, pgArray{groups}, pgArray{emails}, pgArray{given}, pgArray{family},
				pgArray{statuses}, pgArray{versions}, pgArray{created}, pgArray{updated}, pgArray{origins}}, scanMoved(&moved)); err != nil {
			return nil, err
		}
	}
	for _, m := range moved {
		written[m.ID] = true
	}
	if len(moved) == 0 {
		return written, nil
	}
	// The programme's feed lock after the learner rows, as every writer
	// takes them (AppendEvents), and held to commit.
	progs := make([]movedRow, len(ls))
	for i, l := range ls {
		progs[i].ProgrammeID = l.ProgrammeID
	}
	if err := s.lockFeeds(ctx, progs); err != nil {
		return nil, err
	}
	// The feed and audit rows come from what the INSERT returned, sent back
	// as arrays (the learners are not read again), in learner ID order.
	slices.SortFunc(moved, func(a, b movedRow) int { return strings.Compare(a.ID, b.ID) })
	for start := 0; start < len(moved); start += batch {
		rows := moved[start:min(start+batch, len(moved))]
		part, pids, versions := make([]string, len(rows)), make([]string, len(rows)), make([]int64, len(rows))
		for i, m := range rows {
			part[i], pids[i], versions[i] = m.ID, m.ProgrammeID, m.Version
		}
		if err := s.db(ctx).Exec(`WITH w AS (
				SELECT * FROM unnest(CAST(CAST(? AS text[]) AS uuid[]), CAST(CAST(? AS text[]) AS uuid[]), CAST(? AS bigint[])) AS w(id, programme_id, version)
			), ev AS (
				INSERT INTO lifecycle_events (programme_id, learner_id, type, learner_version, occurred_at)
				SELECT programme_id, id, ?, version, ? FROM w ORDER BY id
			)
			INSERT INTO audit_entries (programme_id, actor_id, action, target_type, target_id, reason, details, occurred_at)
			SELECT programme_id, ?, 'learner.import', 'learner', CAST(id AS text), '', '{}', ? FROM w ORDER BY id`,
			pgArray{part}, pgArray{pids}, pgArray{versions}, string(domain.EventProvisioned), at, actorID, at).Error; err != nil {
			return nil, translate(err)
		}
	}
	return written, nil
}

// importLearnersPortable is ImportLearners through the statements every
// dialect has.
func (s *Store) importLearnersPortable(ctx context.Context, ls []domain.Learner, actorID string, at time.Time) (map[string]bool, error) {
	written, err := s.InsertLearners(ctx, ls)
	if err != nil {
		return nil, err
	}
	events := make([]domain.Event, 0, len(written))
	audits := make([]domain.AuditEntry, 0, len(written))
	for _, l := range ls {
		if !written[l.ID] {
			continue
		}
		events = append(events, domain.Event{ProgrammeID: l.ProgrammeID, LearnerID: l.ID, Type: domain.EventProvisioned, LearnerVersion: l.Version, OccurredAt: at})
		audits = append(audits, domain.AuditEntry{ProgrammeID: &l.ProgrammeID, ActorID: actorID, Action: "learner.import",
			TargetType: "learner", TargetID: l.ID, OccurredAt: at})
	}
	if err := s.AppendEvents(ctx, events); err != nil {
		return nil, err
	}
	return written, s.AppendAudits(ctx, audits)
}

// pgUUID is a UUID in the form pgx sends in binary (16 bytes); nil is NULL.
// The IDs are the service's own (uuid v7), so a malformed one is a bug.
func pgUUID(id *string) (pgtype.UUID, error) {
	if id == nil {
		return pgtype.UUID{}, nil
	}
	u, err := uuid.Parse(*id)
	if err != nil {
		return pgtype.UUID{}, fmt.Errorf("import: learner ID %q is not a UUID: %w", *id, err)
	}
	return pgtype.UUID{Bytes: u, Valid: true}, nil
}

// pgArray passes a Go slice to pgx as one array parameter. gorm expands a
// bare slice argument into a list of parameters (gorm statement.go AddVar);
// a driver.Valuer it passes through, and pgx's database/sql driver accepts
// any value (stdlib CheckNamedValue) and encodes the slice as an array.
//
// UUID columns travel as text[] and are cast in SQL: pgx first tries a
// parameter in its type's preferred (binary) format, cannot encode a Go
// string as a binary uuid, and only then falls back to text; the failed
// attempt formats the whole array into its error message (pgx
// extended_query_builder.go appendParam, pgtype newEncodeError), which was
// a fifth of the import's allocations.
type pgArray struct{ v any }

func (a pgArray) Value() (driver.Value, error) { return a.v, nil }
