package store

import (
	"context"
	"database/sql"
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/migrations"
)

type learnerRow struct {
	ID             string `gorm:"primaryKey"`
	ProgrammeID    string
	OrganisationID string
	AccessGroupID  *string
	Email          *string
	GivenName      *string
	FamilyName     *string
	Status         string
	RemovalReason  *string
	RemovalDueAt   *time.Time
	ErasedAt       *time.Time
	LastSignInAt   *time.Time
	LastActivityAt *time.Time
	Version        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
	NamesByPerson  bool
	// Origin, IdentityLinkedAt and FirstActivatedAt: see domain.Learner.
	Origin           string
	IdentityLinkedAt *time.Time
	FirstActivatedAt *time.Time
}

func (learnerRow) TableName() string { return "learners" }

// The hot list reads scan rows directly: gorm's reflective scan was a fifth of
// the CPU of a learners page. learnerColumns and fields keep the same order.
const learnerColumns = "id, programme_id, organisation_id, access_group_id, email, given_name, family_name, status, " +
	"removal_reason, removal_due_at, erased_at, last_sign_in_at, last_activity_at, version, created_at, updated_at, names_by_person, " +
	"origin, identity_linked_at, first_activated_at"

func (r *learnerRow) fields() []any {
	return []any{&r.ID, &r.ProgrammeID, &r.OrganisationID, &r.AccessGroupID, &r.Email, &r.GivenName, &r.FamilyName,
		&r.Status, &r.RemovalReason, &r.RemovalDueAt, &r.ErasedAt, &r.LastSignInAt, &r.LastActivityAt, &r.Version,
		&r.CreatedAt, &r.UpdatedAt, &r.NamesByPerson, &r.Origin, &r.IdentityLinkedAt, &r.FirstActivatedAt}
}

// learnerRowNullable is a learnerRow read from an outer join: every
// column may be NULL (no learner).
type learnerRowNullable struct {
	ID, ProgrammeID, OrganisationID, Status, Origin *string
	Version                                         *int64
	CreatedAt, UpdatedAt                            *time.Time
	NamesByPerson                                   *bool
	learnerRow
}

// fields are learnerRow's fields, the NOT NULL columns' through pointers.
func (r *learnerRowNullable) fields() []any {
	f := r.learnerRow.fields()
	f[0], f[1], f[2], f[7], f[13], f[14], f[15], f[16], f[17] =
		&r.ID, &r.ProgrammeID, &r.OrganisationID, &r.Status, &r.Version, &r.CreatedAt, &r.UpdatedAt, &r.NamesByPerson, &r.Origin
	return f
}

// row is the learner read, once r.ID is set.
func (r *learnerRowNullable) row() learnerRow {
	l := r.learnerRow
	l.ID, l.ProgrammeID, l.OrganisationID, l.Status, l.Origin = *r.ID, *r.ProgrammeID, *r.OrganisationID, *r.Status, *r.Origin
	l.Version, l.CreatedAt, l.UpdatedAt, l.NamesByPerson = *r.Version, *r.CreatedAt, *r.UpdatedAt, *r.NamesByPerson
	return l
}

// values are the row's columns in learnerColumns' order, for an insert.
func (r *learnerRow) values() []any {
	return []any{r.ID, r.ProgrammeID, r.OrganisationID, r.AccessGroupID, r.Email, r.GivenName, r.FamilyName,
		r.Status, r.RemovalReason, r.RemovalDueAt, r.ErasedAt, r.LastSignInAt, r.LastActivityAt, r.Version,
		r.CreatedAt, r.UpdatedAt, r.NamesByPerson, r.Origin, r.IdentityLinkedAt, r.FirstActivatedAt}
}

func toLearnerRow(l domain.Learner) learnerRow {
	r := learnerRow{ID: l.ID, ProgrammeID: l.ProgrammeID, OrganisationID: l.OrganisationID, AccessGroupID: l.AccessGroupID,
		Email: l.Email, GivenName: l.GivenName, FamilyName: l.FamilyName, Status: string(l.Status),
		RemovalDueAt: utcp(l.RemovalDueAt), ErasedAt: utcp(l.ErasedAt), LastSignInAt: utcp(l.LastSignInAt),
		LastActivityAt: utcp(l.LastActivityAt), Version: l.Version, CreatedAt: l.CreatedAt.UTC(), UpdatedAt: l.UpdatedAt.UTC(),
		NamesByPerson: l.NamesByPerson, Origin: string(l.Origin), IdentityLinkedAt: utcp(l.IdentityLinkedAt),
		FirstActivatedAt: utcp(l.FirstActivatedAt)}
	if r.Origin == "" {
		r.Origin = string(domain.OriginAdmin)
	}
	if l.RemovalReason != nil {
		s := string(*l.RemovalReason)
		r.RemovalReason = &s
	}
	return r
}

func (r learnerRow) domain() domain.Learner {
	l := domain.Learner{ID: r.ID, ProgrammeID: r.ProgrammeID, OrganisationID: r.OrganisationID, AccessGroupID: r.AccessGroupID,
		Email: r.Email, GivenName: r.GivenName, FamilyName: r.FamilyName, Status: domain.LearnerStatus(r.Status),
		RemovalDueAt: utcp(r.RemovalDueAt), ErasedAt: utcp(r.ErasedAt), LastSignInAt: utcp(r.LastSignInAt),
		LastActivityAt: utcp(r.LastActivityAt), Version: r.Version, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		NamesByPerson: r.NamesByPerson, Origin: domain.Origin(r.Origin), IdentityLinkedAt: utcp(r.IdentityLinkedAt),
		FirstActivatedAt: utcp(r.FirstActivatedAt)}
	if r.RemovalReason != nil {
		rr := domain.RemovalReason(*r.RemovalReason)
		l.RemovalReason = &rr
	}
	return l
}

type identityRow struct {
	ID        string `gorm:"primaryKey"`
	LearnerID string
	Issuer    string
	Subject   string
	CreatedAt time.Time
}

func (identityRow) TableName() string { return "learner_identities" }

type eventRow struct {
	ID             int64 `gorm:"primaryKey;autoIncrement"`
	ProgrammeID    string
	LearnerID      string
	Type           string
	LearnerVersion int64
	OccurredAt     time.Time
}

func (eventRow) TableName() string { return "lifecycle_events" }

type acceptanceRow struct {
	ID              string `gorm:"primaryKey"`
	LearnerID       string
	PolicyVersionID string
	Decision        string
	AgeConfirmed    bool
	GivenBy         string
	ActorID         string
	Note            string
	DecidedAt       time.Time
}

func (acceptanceRow) TableName() string { return "policy_acceptances" }

// acceptanceColumns is the order AcceptancesByLearners scans in.
const acceptanceColumns = "id, learner_id, policy_version_id, decision, age_confirmed, given_by, actor_id, note, decided_at"

func (r *acceptanceRow) fields() []any {
	return []any{&r.ID, &r.LearnerID, &r.PolicyVersionID, &r.Decision, &r.AgeConfirmed, &r.GivenBy, &r.ActorID, &r.Note, &r.DecidedAt}
}

func (r acceptanceRow) domain() domain.PolicyAcceptance {
	return domain.PolicyAcceptance{ID: r.ID, LearnerID: r.LearnerID, PolicyVersionID: r.PolicyVersionID,
		Decision: domain.Decision(r.Decision), AgeConfirmed: r.AgeConfirmed, GivenBy: r.GivenBy, ActorID: r.ActorID,
		Note: r.Note, DecidedAt: r.DecidedAt.UTC()}
}

// ---- learners ----

// CreateLearner inserts l; a learner with the same email (or ID) is a
// CONFLICT. No unique violation is ever raised for it: PostgreSQL would log
// the duplicate key, the email, in its server log (nopii.go).
func (s *Store) CreateLearner(ctx context.Context, l domain.Learner) error {
	r := toLearnerRow(l)
	if s.dialect != migrations.Postgres {
		return insertNew(s.db(ctx), &r)
	}
	// One statement: the email writers' lock, shared (nopii.go), is taken
	// in a MATERIALIZED CTE, so before the row is inserted, and held to
	// commit. PostgreSQL gives the parameters the columns' types (INSERT
	// … SELECT infers them from the target list).
	res := s.db(ctx).Exec(`WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(?))
		INSERT INTO learners (`+learnerColumns+`) SELECT ?`+strings.Repeat(", ?", len(r.values())-1)+` FROM l ON CONFLICT DO NOTHING`,
		append([]any{emailWritersLock}, r.values()...)...)
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return errAlreadyExists()
	}
	return nil
}

// CreateLearnerWithIdentity writes a new learner and the identity it signed
// in with, both or neither: CONFLICT when the email or the identity belongs
// to another learner. On PostgreSQL one statement (CreateLearner's, the
// identity's insert taking the learner's ID from its RETURNING), so a first
// sign-in pays one round trip for both. Neither insert raises a unique
// violation (nopii.go): each does nothing on a conflict, and no identity row
// written means a conflict of either, whose learner, if written, goes with
// the transaction's rollback (its own, when the caller has none).
func (s *Store) CreateLearnerWithIdentity(ctx context.Context, l domain.Learner, li domain.LearnerIdentity) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		if s.dialect != migrations.Postgres || li.LearnerID != l.ID {
			if err := s.CreateLearner(ctx, l); err != nil {
				return err
			}
			return s.CreateIdentity(ctx, li)
		}
		r := toLearnerRow(l)
		res := s.db(ctx).Exec(`WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(?)),
			n AS (INSERT INTO learners (`+learnerColumns+`) SELECT ?`+strings.Repeat(", ?", len(r.values())-1)+` FROM l ON CONFLICT DO NOTHING RETURNING id)
			INSERT INTO learner_identities (id, learner_id, issuer, subject, created_at) SELECT ?, n.id, ?, ?, ? FROM n ON CONFLICT DO NOTHING`,
			append(append([]any{emailWritersLock}, r.values()...), li.ID, li.Issuer, li.Subject, li.CreatedAt.UTC())...)
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return errAlreadyExists()
		}
		return nil
	})
}

// GetLearner reads a learner; forUpdate locks the row for the transaction so
// concurrent changes to one learner serialise and versions stay monotonic.
func (s *Store) GetLearner(ctx context.Context, id string, forUpdate bool) (domain.Learner, error) {
	q := "SELECT " + learnerColumns + " FROM learners WHERE id = ?"
	if forUpdate && s.dialect == migrations.Postgres {
		q += " FOR UPDATE"
	}
	return readOne(s, ctx, q, []any{id}, (*learnerRow).fields, learnerRow.domain)
}

func (s *Store) LearnerByEmail(ctx context.Context, email string) (domain.Learner, error) {
	return readOne(s, ctx, "SELECT "+learnerColumns+" FROM learners WHERE email = ?", []any{email}, (*learnerRow).fields, learnerRow.domain)
}

// learnerColumnsL is learnerColumns of the learners table aliased l.
var learnerColumnsL = "l." + strings.ReplaceAll(learnerColumns, ", ", ", l.")

// LearnerByIdentity finds the learner linked to issuer + subject: the one
// read of a learner by identity (SignInLearner), its erasure left aside.
func (s *Store) LearnerByIdentity(ctx context.Context, issuer, subject string) (domain.Learner, error) {
	l, _, err := s.SignInLearner(ctx, issuer, subject)
	return l, err
}

// UpdateLearner writes every mutable column of l. A new email that another
// learner holds is a CONFLICT, found by looking first (nopii.go): the
// update that keeps the email runs as one statement; one that changes it
// takes the email writers' lock, checks, then writes.
func (s *Store) UpdateLearner(ctx context.Context, l domain.Learner) error {
	r := toLearnerRow(l)
	cols := map[string]any{
		"organisation_id": r.OrganisationID, "access_group_id": r.AccessGroupID, "email": r.Email,
		"given_name": r.GivenName, "family_name": r.FamilyName, "status": r.Status, "removal_reason": r.RemovalReason,
		"removal_due_at": r.RemovalDueAt, "erased_at": r.ErasedAt, "last_sign_in_at": r.LastSignInAt,
		"last_activity_at": r.LastActivityAt, "version": r.Version, "updated_at": r.UpdatedAt,
		"names_by_person": r.NamesByPerson, "identity_linked_at": r.IdentityLinkedAt, "first_activated_at": r.FirstActivatedAt,
	}
	if r.Email == nil {
		return updatedOne(s.db(ctx).Model(&learnerRow{}).Where("id = ?", l.ID).Updates(cols))
	}
	// The email is unchanged: no unique check can fail.
	res := s.db(ctx).Model(&learnerRow{}).Where("id = ? AND email = ?", l.ID, *r.Email).Updates(cols)
	if res.Error != nil || res.RowsAffected > 0 {
		return translate(res.Error)
	}
	return s.InTx(ctx, func(ctx context.Context) error {
		if err := s.emailWriter(ctx, true); err != nil {
			return err
		}
		// A learner that is not there is NOT_FOUND, whatever its email.
		var exists, taken int64
		if err := queryRows(s.db(ctx), `SELECT count(*) FROM learners WHERE id = ?`, []any{l.ID},
			func(r *sql.Rows) error { return r.Scan(&exists) }); err != nil {
			return err
		}
		if exists == 0 {
			return translate(gorm.ErrRecordNotFound)
		}
		if err := queryRows(s.db(ctx), `SELECT count(*) FROM learners WHERE email = ? AND id <> ?`, []any{*r.Email, l.ID},
			func(r *sql.Rows) error { return r.Scan(&taken) }); err != nil {
			return err
		}
		if taken > 0 {
			return errAlreadyExists()
		}
		return updatedOne(s.db(ctx).Model(&learnerRow{}).Where("id = ?", l.ID).Updates(cols))
	})
}

func updatedOne(res *gorm.DB) error {
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return translate(gorm.ErrRecordNotFound)
	}
	return nil
}

// TouchSignIn records a returning sign-in without a version change: it is
// not a state change the LMS needs to hear about.
func (s *Store) TouchSignIn(ctx context.Context, learnerID string, at time.Time) error {
	return translate(s.db(ctx).Model(&learnerRow{}).Where("id = ?", learnerID).
		UpdateColumn("last_sign_in_at", at.UTC()).Error) // no updated_at: not a state change
}

func (s *Store) LearnersByIDs(ctx context.Context, ids []string) ([]domain.Learner, error) {
	var rows []learnerRow
	if err := s.db(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, learnerRow.domain), nil
}

// ListLearners pages learners in ID order (UUIDv7: creation order),
// keyset-paginated, and with f.WithAcceptances their policy decisions
// (AcceptancesByLearners' order), otherwise nil.
//
// On PostgreSQL the decisions' statement goes with the learners', in one
// pgx batch and one round trip on one connection (readBatch): it selects
// the page's learners again in a subquery, by the same conditions, so it
// does not wait for the first statement's answer, and outside a
// transaction both read one snapshot, so the subquery finds exactly the
// page's learners (a learner
// who accepted a policy between two READ COMMITTED statements would have
// left a page of pending learners' subquery, and been shown without their
// decisions). SQLite reads the decisions after the learners, its one
// writer at a time aside.
func (s *Store) ListLearners(ctx context.Context, f domain.LearnerFilter) ([]domain.Learner, []domain.PolicyAcceptance, error) {
	where, args, none := s.learnersWhere(f)
	if none {
		var acc []domain.PolicyAcceptance
		if f.WithAcceptances {
			acc = []domain.PolicyAcceptance{}
		}
		return []domain.Learner{}, acc, nil
	}
	// The limit is written into the text, not bound: with LIMIT $n PostgreSQL
	// keeps planning the statement afresh on every execution (a tenth of a
	// millisecond, as long as the query itself); with a constant it settles
	// on the cached generic plan.
	page := " ORDER BY id LIMIT " + strconv.Itoa(max(f.Limit, 0))
	query := "SELECT " + learnerColumns + " FROM learners WHERE " + where + page
	if !f.WithAcceptances {
		ls, err := readAll(s, ctx, max(f.Limit, 0), query, args, (*learnerRow).fields, learnerRow.domain)
		return ls, nil, err
	}
	if s.dialect != migrations.Postgres {
		ls, err := readAll(s, ctx, max(f.Limit, 0), query, args, (*learnerRow).fields, learnerRow.domain)
		if err != nil {
			return nil, nil, err
		}
		ids := make([]string, len(ls))
		for i, l := range ls {
			ids[i] = l.ID
		}
		acc, err := s.AcceptancesByLearners(ctx, ids)
		return ls, acc, err
	}
	accQuery := "SELECT " + acceptanceColumns + " FROM policy_acceptances WHERE learner_id IN (SELECT id FROM learners WHERE " +
		where + page + ") ORDER BY decided_at, id"
	ls := make([]domain.Learner, 0, max(f.Limit, 0))
	acc := make([]domain.PolicyAcceptance, 0, 2*max(f.Limit, 0))
	var lr learnerRow
	var ar acceptanceRow
	err := s.readBatch(ctx, []batchRead{
		{query, args, lr.fields(), func() { ls = append(ls, lr.domain()) }},
		{accQuery, args, ar.fields(), func() { acc = append(acc, ar.domain()) }},
	})
	if err != nil {
		return nil, nil, err
	}
	listed := make(map[string]bool, len(ls))
	for _, l := range ls {
		listed[l.ID] = true
	}
	acc = slices.DeleteFunc(acc, func(a domain.PolicyAcceptance) bool { return !listed[a.LearnerID] })
	return ls, acc, nil
}

// learnersWhere is ListLearners' condition and its arguments; none: no
// learner can match.
func (s *Store) learnersWhere(f domain.LearnerFilter) (where string, args []any, none bool) {
	var sb strings.Builder
	sb.WriteString("programme_id = ?")
	args = []any{f.ProgrammeID}
	if f.OrganisationIDs != nil {
		cond, arg, none := s.anyID("organisation_id", f.OrganisationIDs)
		if none {
			return "", nil, true
		}
		sb.WriteString(" AND " + cond)
		args = append(args, arg)
	}
	if len(f.Statuses) > 0 {
		// Written by guardSQL, in the domain's order and once each, so a
		// set of statuses is one statement text (one prepared statement)
		// however it was asked for; a value that is none matches nothing.
		var sts []domain.LearnerStatus
		for _, st := range domain.LearnerStatuses {
			if slices.Contains(f.Statuses, st) {
				sts = append(sts, st)
			}
		}
		if len(sts) == 0 {
			sb.WriteString(" AND status IN (NULL)")
		} else {
			sb.WriteString(" AND " + guardSQL("", domain.Bulk{From: sts}))
		}
	}
	if f.Search != "" {
		like := "%" + escapeLike(strings.ToLower(f.Search)) + "%"
		sb.WriteString(` AND (email LIKE ? ESCAPE '\' OR lower(given_name) LIKE ? ESCAPE '\' OR lower(family_name) LIKE ? ESCAPE '\')`)
		args = append(args, like, like, like)
	}
	if f.AfterID != "" {
		sb.WriteString(" AND id > ?")
		args = append(args, f.AfterID)
	}
	return sb.String(), args, false
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ---- identities ----

// CreateIdentity links an identity; one linked already is a CONFLICT,
// without a unique violation (a subject may be an email: nopii.go).
func (s *Store) CreateIdentity(ctx context.Context, li domain.LearnerIdentity) error {
	r := identityRow{ID: li.ID, LearnerID: li.LearnerID, Issuer: li.Issuer, Subject: li.Subject, CreatedAt: li.CreatedAt.UTC()}
	return insertNew(s.db(ctx), &r)
}

func (s *Store) IdentitiesByLearner(ctx context.Context, learnerID string) ([]domain.LearnerIdentity, error) {
	var rows []identityRow
	if err := s.db(ctx).Where("learner_id = ?", learnerID).Order("created_at").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]domain.LearnerIdentity, len(rows))
	for i, r := range rows {
		out[i] = domain.LearnerIdentity{ID: r.ID, LearnerID: r.LearnerID, Issuer: r.Issuer, Subject: r.Subject, CreatedAt: r.CreatedAt.UTC()}
	}
	return out, nil
}

// ---- feed ----

// AppendEvents writes feed rows in the caller's transaction (invariant 5).
//
// PostgreSQL: the rows go to the database with the transaction's COMMIT
// (pgTx), one statement per programme (feedInsert, which takes the
// programme's feed lock), so a writer that takes no feed lock of its own
// before (erasure, lockFeeds; the import) holds it for the insert and the
// commit only. Until then the transaction does
// not see its own feed rows in the table: the store's reads of the feed
// (ReadEvents, FeedHead, EventsByLearner, PurgeEvents) insert them first
// (flushFeed). Outside a transaction the rows are written in one of their
// own.
func (s *Store) AppendEvents(ctx context.Context, es []domain.Event) error {
	if len(es) == 0 {
		return nil
	}
	if s.dialect == migrations.Postgres {
		st, ok := ctx.Value(txStateKey{}).(*txState)
		if !ok || !st.pg {
			return s.InTx(ctx, func(ctx context.Context) error { return s.AppendEvents(ctx, es) })
		}
		if st.ended {
			return errors.New("store: feed events appended to a transaction that has ended")
		}
		st.feed = append(st.feed, es...)
		s.countEvents(ctx, len(es))
		return nil
	}
	rows := make([]eventRow, len(es))
	seen := map[string]bool{}
	for i, e := range es {
		seen[e.ProgrammeID] = true
		rows[i] = eventRow{ProgrammeID: e.ProgrammeID, LearnerID: e.LearnerID, Type: string(e.Type),
			LearnerVersion: e.LearnerVersion, OccurredAt: e.OccurredAt.UTC()}
	}
	if err := s.db(ctx).Omit("ID").CreateInBatches(&rows, 1000).Error; err != nil {
		return translate(err)
	}
	for id := range seen {
		s.feedAppended(ctx, id)
	}
	s.countEvents(ctx, len(rows))
	return nil
}

// EventsByLearner lists a learner's feed events (tests, exports).
func (s *Store) EventsByLearner(ctx context.Context, learnerID string) ([]domain.Event, error) {
	if err := s.flushFeed(ctx); err != nil {
		return nil, err
	}
	var rows []eventRow
	if err := s.db(ctx).Where("learner_id = ?", learnerID).Order("id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]domain.Event, len(rows))
	for i, r := range rows {
		out[i] = domain.Event{ID: r.ID, ProgrammeID: r.ProgrammeID, LearnerID: r.LearnerID, Type: domain.EventType(r.Type),
			LearnerVersion: r.LearnerVersion, OccurredAt: r.OccurredAt.UTC()}
	}
	return out, nil
}

// ---- acceptances ----

// SaveAcceptance records a decision; a second decision on the same version
// replaces the first (an optional policy declined, then accepted).
func (s *Store) SaveAcceptance(ctx context.Context, a domain.PolicyAcceptance) error {
	r := acceptanceRow{ID: a.ID, LearnerID: a.LearnerID, PolicyVersionID: a.PolicyVersionID, Decision: string(a.Decision),
		AgeConfirmed: a.AgeConfirmed, GivenBy: a.GivenBy, ActorID: a.ActorID, Note: a.Note, DecidedAt: a.DecidedAt.UTC()}
	return translate(s.db(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "learner_id"}, {Name: "policy_version_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"decision", "age_confirmed", "given_by", "actor_id", "note", "decided_at"}),
	}).Create(&r).Error)
}

func (s *Store) AcceptancesByLearners(ctx context.Context, ids []string) ([]domain.PolicyAcceptance, error) {
	cond, arg, none := s.anyID("learner_id", ids)
	if none {
		return []domain.PolicyAcceptance{}, nil
	}
	// Room for two decisions a learner (a site policy and a privacy notice).
	return readAll(s, ctx, 2*len(ids), "SELECT "+acceptanceColumns+" FROM policy_acceptances WHERE "+cond+" ORDER BY decided_at, id", []any{arg},
		(*acceptanceRow).fields, acceptanceRow.domain)
}

// RevokeStaleAcceptance moves every ACTIVE learner of a programme back to
// PENDING_ACCEPTANCE when a compulsory policy gets a new current version
// (ONC-1), bumping versions and writing ACCESS_REVOKED feed rows: set-based,
// one statement per dialect path, not a loop. It returns how many moved.
//
// b is domain.BulkRevokeAccess.
func (s *Store) RevokeStaleAcceptance(ctx context.Context, programmeID string, b domain.Bulk, at time.Time) (int64, error) {
	// Rows first, then the feed lock (AppendEvents): the lock order every
	// writer follows.
	var rows []movedRow
	if err := queryRows(s.db(ctx), `UPDATE learners SET status = ?, version = version + 1, updated_at = ?
		WHERE programme_id = ? AND `+guardSQL("", b)+` RETURNING id, version, programme_id`, []any{string(b.To), at.UTC(), programmeID},
		scanMoved(&rows)); err != nil {
		return 0, err
	}
	es := make([]domain.Event, len(rows))
	for i, r := range rows {
		es[i] = domain.Event{ProgrammeID: programmeID, LearnerID: r.ID, Type: b.Event, LearnerVersion: r.Version, OccurredAt: at}
	}
	return int64(len(rows)), s.AppendEvents(ctx, es)
}

// ExistingEmails returns which of the emails already belong to a learner.
//
// Through readRows, so that on PostgreSQL it runs on a connection that keeps
// nothing of the request (onTxOrPool): an import's request holds every row
// it decoded. PostgreSQL takes each batch as one text[] argument; SQLite
// as a list of parameters, 5,000 at most (its limit is 32,766).
func (s *Store) ExistingEmails(ctx context.Context, emails []string) (map[string]bool, error) {
	out := map[string]bool{}
	var e string
	for start := 0; start < len(emails); start += 5000 {
		batch := emails[start:min(start+5000, len(emails))]
		cond, arg := "email = ANY(?::text[])", any(batch)
		if s.dialect != migrations.Postgres {
			cond = "email IN ?"
		}
		if err := s.readRows(ctx, "SELECT email FROM learners WHERE "+cond, []any{arg}, []any{&e}, func() error {
			out[e] = true
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// InsertLearners writes new learners in batches of multi-row INSERTs,
// skipping emails that exist by now (a concurrent import or sign-in won the
// race); it returns the IDs it wrote, so the caller can report the others.
func (s *Store) InsertLearners(ctx context.Context, ls []domain.Learner) (map[string]bool, error) {
	written := make(map[string]bool, len(ls))
	if err := s.emailWriter(ctx, false); err != nil {
		return nil, err
	}
	ls = byEmail(ls)
	const batch = 1000
	const cols = "id, programme_id, organisation_id, access_group_id, email, given_name, family_name, status, version, created_at, updated_at, origin"
	var sb strings.Builder
	for start := 0; start < len(ls); start += batch {
		end := min(start+batch, len(ls))
		sb.Reset()
		sb.WriteString("INSERT INTO learners (" + cols + ") VALUES ")
		args := make([]any, 0, (end-start)*12)
		for i, l := range ls[start:end] {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?)")
			args = append(args, l.ID, l.ProgrammeID, l.OrganisationID, l.AccessGroupID, l.Email, l.GivenName, l.FamilyName,
				string(l.Status), l.Version, l.CreatedAt.UTC(), l.UpdatedAt.UTC(), string(l.Origin))
		}
		sb.WriteString(" ON CONFLICT (email) WHERE email IS NOT NULL DO NOTHING RETURNING id")
		var ids []string
		if err := queryRows(s.db(ctx), sb.String(), args, scanIDs(&ids)); err != nil {
			return nil, err
		}
		for _, id := range ids {
			written[id] = true
		}
	}
	return written, nil
}

// byEmail returns ls in email order: inserts in that order take the unique
// index's locks in the same order and cannot deadlock.
func byEmail(ls []domain.Learner) []domain.Learner {
	ls = slices.Clone(ls)
	slices.SortFunc(ls, func(a, b domain.Learner) int { return strings.Compare(deref(a.Email), deref(b.Email)) })
	return ls
}

// AppendAudits writes many audit entries at once (bulk operations keep one
// entry per learner changed, in the same transaction).
func (s *Store) AppendAudits(ctx context.Context, es []domain.AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	rows := make([]auditRow, len(es))
	for i, e := range es {
		rows[i] = auditRow{ProgrammeID: e.ProgrammeID, ActorID: e.ActorID, Action: e.Action, TargetType: e.TargetType,
			TargetID: e.TargetID, Reason: e.Reason, Details: "{}", OccurredAt: e.OccurredAt.UTC()}
	}
	return translate(s.db(ctx).Omit("ID").CreateInBatches(&rows, 1000).Error)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// feedLockKey maps a programme to its advisory lock key (FNV-1a of the ID).
func feedLockKey(programmeID string) int64 {
	h := fnv.New64a()
	h.Write([]byte("rollcall-feed:" + programmeID))
	return int64(h.Sum64())
}

func allUUIDs(ids []string) bool {
	for _, id := range ids {
		if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
			return false
		}
	}
	return true
}

// guardSQL renders a domain guard set (the statuses, and the removal reasons
// of scheduled learners, a transition may leave) as a condition on the
// learners table: store keeps no status of its own. The values are the
// domain's enum constants, checked, and written into the SQL text rather
// than bound, so PostgreSQL can match the partial indexes on status
// (learners_active, learners_due) in cached plans.
func guardSQL(alias string, b domain.Bulk) string {
	if alias != "" {
		alias += "."
	}
	in := func(vals []string) string {
		var sb strings.Builder
		sb.WriteByte('(')
		for i, v := range vals {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("'" + v + "'")
		}
		sb.WriteByte(')')
		return sb.String()
	}
	sts := make([]string, 0, len(b.From))
	for _, st := range b.From {
		if !st.Valid() {
			panic("store: invalid learner status in a guard set: " + string(st))
		}
		sts = append(sts, string(st))
	}
	cond := alias + "status IN " + in(sts)
	if len(b.FromScheduled) > 0 {
		rs := make([]string, 0, len(b.FromScheduled))
		for _, r := range b.FromScheduled {
			if !r.Valid() {
				panic("store: invalid removal reason in a guard set: " + string(r))
			}
			rs = append(rs, string(r))
		}
		cond = "(" + cond + " OR (" + alias + "status = '" + string(domain.StatusRemovalScheduled) + "' AND " +
			alias + "removal_reason IN " + in(rs) + "))"
	}
	return cond
}

// statusIs renders "status = <the domain's status>" for a target status.
func statusIs(alias string, st domain.LearnerStatus) string {
	return guardSQL(alias, domain.Bulk{From: []domain.LearnerStatus{st}})
}
