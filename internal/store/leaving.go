package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/migrations"
)

type dataRequestRow struct {
	ID             string `gorm:"primaryKey"`
	ProgrammeID    string
	OrganisationID string
	LearnerID      string
	Kind           string
	Origin         string
	Status         string
	Reason         string
	RequestedBy    string
	RequestedAt    time.Time
	DecidedBy      *string
	DecidedAt      *time.Time
	DecisionNote   string
	CompletedAt    *time.Time
}

func (dataRequestRow) TableName() string { return "data_requests" }

func toRequestRow(r domain.DataRequest) dataRequestRow {
	return dataRequestRow{ID: r.ID, ProgrammeID: r.ProgrammeID, OrganisationID: r.OrganisationID, LearnerID: r.LearnerID,
		Kind: r.Kind, Origin: string(r.Origin), Status: string(r.Status), Reason: r.Reason, RequestedBy: r.RequestedBy,
		RequestedAt: r.RequestedAt.UTC(), DecidedBy: r.DecidedBy, DecidedAt: utcp(r.DecidedAt), DecisionNote: r.DecisionNote,
		CompletedAt: utcp(r.CompletedAt)}
}

func (r dataRequestRow) domain() domain.DataRequest {
	return domain.DataRequest{ID: r.ID, ProgrammeID: r.ProgrammeID, OrganisationID: r.OrganisationID, LearnerID: r.LearnerID,
		Kind: r.Kind, Origin: domain.RemovalReason(r.Origin), Status: domain.DataRequestStatus(r.Status), Reason: r.Reason,
		RequestedBy: r.RequestedBy, RequestedAt: r.RequestedAt.UTC(), DecidedBy: r.DecidedBy, DecidedAt: utcp(r.DecidedAt),
		DecisionNote: r.DecisionNote, CompletedAt: utcp(r.CompletedAt)}
}

func (s *Store) CreateDataRequest(ctx context.Context, r domain.DataRequest) error {
	row := toRequestRow(r)
	return translate(s.db(ctx).Create(&row).Error)
}

func (s *Store) GetDataRequest(ctx context.Context, id string, forUpdate bool) (domain.DataRequest, error) {
	q := s.lockable(ctx, forUpdate)
	var r dataRequestRow
	if err := q.Where("id = ?", id).Take(&r).Error; err != nil {
		return domain.DataRequest{}, translate(err)
	}
	return r.domain(), nil
}

func (s *Store) UpdateDataRequest(ctx context.Context, r domain.DataRequest) error {
	row := toRequestRow(r)
	return translate(s.db(ctx).Model(&dataRequestRow{}).Where("id = ?", r.ID).Updates(map[string]any{
		"status": row.Status, "decided_by": row.DecidedBy, "decided_at": row.DecidedAt, "decision_note": row.DecisionNote,
		"completed_at": row.CompletedAt,
	}).Error)
}

func (s *Store) ListDataRequests(ctx context.Context, f domain.DataRequestFilter) ([]domain.DataRequest, error) {
	q := s.db(ctx).Where("programme_id = ?", f.ProgrammeID)
	if f.OrganisationIDs != nil {
		q = q.Where("organisation_id IN ?", f.OrganisationIDs)
	}
	if len(f.Statuses) > 0 {
		st := make([]string, len(f.Statuses))
		for i, x := range f.Statuses {
			st[i] = string(x)
		}
		q = q.Where("status IN ?", st)
	}
	if f.AfterID != "" {
		q = q.Where("id > ?", f.AfterID)
	}
	var rows []dataRequestRow
	if err := q.Order("id").Limit(f.Limit).Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, dataRequestRow.domain), nil
}

func (s *Store) DataRequestsByLearner(ctx context.Context, learnerID string) ([]domain.DataRequest, error) {
	var rows []dataRequestRow
	if err := s.db(ctx).Where("learner_id = ?", learnerID).Order("id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, dataRequestRow.domain), nil
}

// ---- bulk state changes ----

type movedRow struct {
	ID          string
	Version     int64
	ProgrammeID string
}

func inBatches(ids []string, n int, fn func([]string) error) error {
	for start := 0; start < len(ids); start += n {
		if err := fn(ids[start:min(start+n, len(ids))]); err != nil {
			return err
		}
	}
	return nil
}

// ScheduleRemoval applies the domain's bulk transition b (domain.BulkSchedule)
// to the learners it may leave, in one UPDATE per batch, and writes their
// feed rows. The IDs moved are returned.
func (s *Store) ScheduleRemoval(ctx context.Context, ids []string, b domain.Bulk, reason domain.RemovalReason, due, at time.Time) ([]string, error) {
	var moved []string
	err := inBatches(ids, 1000, func(batch []string) error {
		var rows []movedRow
		if err := queryRows(s.db(ctx), `UPDATE learners SET status = ?, removal_reason = ?, removal_due_at = ?,
			version = version + 1, updated_at = ? WHERE id IN ? AND `+guardSQL("", b)+`
			RETURNING id, version, programme_id`, []any{string(b.To), string(reason), due.UTC(), at.UTC(), batch}, scanMoved(&rows)); err != nil {
			return err
		}
		es := make([]domain.Event, len(rows))
		ids := make([]string, len(rows))
		for i, r := range rows {
			moved = append(moved, r.ID)
			ids[i] = r.ID
			es[i] = domain.Event{ProgrammeID: r.ProgrammeID, LearnerID: r.ID, Type: b.Event, LearnerVersion: r.Version, OccurredAt: at}
		}
		if len(ids) > 0 {
			// Access has ended: so have their browser sessions.
			if err := s.db(ctx).Exec(`UPDATE sessions SET revoked_at = ? WHERE learner_id IN ? AND revoked_at IS NULL`, at.UTC(), ids).Error; err != nil {
				return translate(err)
			}
		}
		return s.AppendEvents(ctx, es)
	})
	return moved, err
}

// EraseLearners applies an erasing transition in one transaction per call:
// b's scrub (domain.Erasure: which learner fields are cleared, which records
// deleted, which free text blanked, whether activity is counted first and
// identities remembered), b's target status and event; the row stays as a
// tombstone with a LEARNER_ERASED feed event. Erased learners are skipped,
// so erasing twice is a no-op. It returns the IDs erased now.
// dueBy, when set, erases only learners still due for removal by then: the
// sweep picked them a moment ago, and a sign-in may have cancelled it since.
//
// b is domain.BulkErase, or domain.BulkEraseDue with dueBy. A bulk without a
// scrub, or a scrub naming a record or field this store cannot map, is an
// error before anything is written.
func (s *Store) EraseLearners(ctx context.Context, ids []string, b domain.Bulk, at time.Time, dueBy *time.Time) ([]string, error) {
	plan, err := scrubSQL(b.Scrub)
	if err != nil {
		return nil, err
	}
	var erased []string
	err = inBatches(ids, 1000, func(batch []string) error {
		db := s.db(ctx)
		// Lock order everywhere: learner rows, then the feed lock, then the
		// shared totals, so concurrent erasures and other writers cannot deadlock.
		var locked []movedRow
		q, args := `SELECT id, version, programme_id FROM learners WHERE id IN ? AND `+guardSQL("", b), []any{batch}
		if dueBy != nil {
			q += ` AND removal_due_at <= ?`
			args = append(args, dueBy.UTC())
		}
		q += ` ORDER BY id`
		if s.dialect == migrations.Postgres {
			q += ` FOR UPDATE`
		}
		if err := queryRows(db, q, args, scanMoved(&locked)); err != nil {
			return err
		}
		if len(locked) == 0 {
			return nil
		}
		batch = make([]string, len(locked))
		for i, r := range locked {
			batch[i] = r.ID
		}
		if err := s.lockFeeds(ctx, locked); err != nil {
			return err
		}
		if b.Scrub.CountActivity {
			upsert := `INSERT INTO erased_activity_totals (organisation_id, course_id, state, n)
				SELECT l.organisation_id, a.course_id, a.state, count(*) FROM learning_activity a JOIN learners l ON l.id = a.learner_id
				WHERE a.learner_id IN ? AND ` + guardSQL("l", b) + ` GROUP BY l.organisation_id, a.course_id, a.state
				ON CONFLICT (organisation_id, course_id, state) DO UPDATE SET n = erased_activity_totals.n + excluded.n`
			if err := db.Exec(upsert, batch).Error; err != nil {
				return translate(err)
			}
		}
		var rows []movedRow
		if err := queryRows(db, `UPDATE learners SET `+plan.cleared+`status = ?, erased_at = ?,
			version = version + 1, updated_at = ? WHERE id IN ? AND `+guardSQL("", b)+`
			RETURNING id, version, programme_id`, []any{string(b.To), at.UTC(), at.UTC(), batch}, scanMoved(&rows)); err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		done := make([]string, len(rows))
		es := make([]domain.Event, len(rows))
		for i, r := range rows {
			done[i] = r.ID
			es[i] = domain.Event{ProgrammeID: r.ProgrammeID, LearnerID: r.ID, Type: b.Event, LearnerVersion: r.Version, OccurredAt: at}
		}
		if b.Scrub.RememberIdentities {
			var hashes []string
			if err := queryRows(db, `SELECT issuer, subject FROM learner_identities WHERE learner_id IN ?`, []any{done},
				func(r *sql.Rows) error {
					var issuer, subject string
					if err := r.Scan(&issuer, &subject); err != nil {
						return err
					}
					hashes = append(hashes, IdentityHash(issuer, subject))
					return nil
				}); err != nil {
				return err
			}
			for _, h := range hashes {
				if err := db.Exec(`INSERT INTO erased_identities (hash, erased_at) VALUES (?, ?)
					ON CONFLICT (hash) DO UPDATE SET erased_at = excluded.erased_at`, h, at.UTC()).Error; err != nil {
					return translate(err)
				}
			}
		}
		for _, q := range plan.statements {
			if err := db.Exec(q, done).Error; err != nil {
				return translate(err)
			}
		}
		erased = append(erased, done...)
		return s.AppendEvents(ctx, es)
	})
	return erased, err
}

// SweepCandidates pages learner IDs matching a sweep condition, by ID: the
// learners b may leave, and for due and inactive ones, the cutoff.
func (s *Store) SweepCandidates(ctx context.Context, programmeID string, kind domain.SweepKind, b domain.Bulk, cutoff time.Time, afterID string, limit int) ([]string, error) {
	q := s.db(ctx).Model(&learnerRow{}).Where("programme_id = ?", programmeID)
	if afterID != "" {
		q = q.Where("id > ?", afterID)
	}
	q = q.Where(guardSQL("", b))
	switch kind {
	case domain.SweepDue:
		q = q.Where("removal_due_at <= ?", cutoff.UTC())
	case domain.SweepInactive:
		c := cutoff.UTC()
		q = q.Where(`created_at < ? AND (last_sign_in_at IS NULL OR last_sign_in_at < ?) AND (last_activity_at IS NULL OR last_activity_at < ?)`, c, c, c)
	}
	var ids []string
	if err := q.Order("id").Limit(limit).Pluck("id", &ids).Error; err != nil {
		return nil, translate(err)
	}
	return ids, nil
}

// RosterLeavers returns the learners of an organisation who still have or
// await access and whose email is not on the roster. The roster goes into a
// temporary table so the comparison is one anti-join, not a loop.
//
// b is the bulk transition the leavers will take (its guard set).
func (s *Store) RosterLeavers(ctx context.Context, organisationID string, b domain.Bulk, emails []string) (leavers []string, active int, err error) {
	err = s.InTx(ctx, func(ctx context.Context) error {
		db := s.db(ctx)
		create := `CREATE TEMP TABLE roster_emails (email text PRIMARY KEY) ON COMMIT DROP`
		if s.dialect == migrations.SQLite {
			create = `CREATE TEMP TABLE IF NOT EXISTS roster_emails (email text PRIMARY KEY)`
		}
		if err := db.Exec(create).Error; err != nil {
			return translate(err)
		}
		if s.dialect == migrations.SQLite {
			defer db.Exec(`DROP TABLE IF EXISTS temp.roster_emails`)
			if err := db.Exec(`DELETE FROM roster_emails`).Error; err != nil {
				return translate(err)
			}
		}
		var sb strings.Builder
		if err := inBatches(emails, 5000, func(batch []string) error {
			sb.Reset()
			sb.WriteString("INSERT INTO roster_emails (email) VALUES ")
			args := make([]any, len(batch))
			for i, e := range batch {
				if i > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString("(?)")
				args[i] = e
			}
			sb.WriteString(" ON CONFLICT DO NOTHING")
			return translate(db.Exec(sb.String(), args...).Error)
		}); err != nil {
			return err
		}
		var n int64
		if err := db.Model(&learnerRow{}).Where("organisation_id = ? AND "+guardSQL("", b), organisationID).
			Count(&n).Error; err != nil {
			return translate(err)
		}
		active = int(n)
		return queryRows(db, `SELECT l.id FROM learners l WHERE l.organisation_id = ? AND `+guardSQL("l", b)+`
			AND NOT EXISTS (SELECT 1 FROM roster_emails r WHERE r.email = l.email) ORDER BY l.id`, []any{organisationID}, scanIDs(&leavers))
	})
	return leavers, active, err
}

// OrganisationLearnerIDs lists the learners of an organisation that b may leave.
func (s *Store) OrganisationLearnerIDs(ctx context.Context, organisationID string, b domain.Bulk) ([]string, error) {
	var ids []string
	err := s.db(ctx).Model(&learnerRow{}).Where(`organisation_id = ? AND `+guardSQL("", b), organisationID).Order("id").Pluck("id", &ids).Error
	return ids, translate(err)
}

// ---- reports ----

// OrganisationCounts returns aggregates only (ONC-7): learners by status and
// by group, decisions by policy version, activity by state (live rows plus
// erased totals, GEN-3).
func (s *Store) OrganisationCounts(ctx context.Context, orgID string) (byStatus, byGroup, byVersion, byActivity []domain.Count, err error) {
	db := s.db(ctx)
	if err = queryRows(db, `SELECT status AS k, count(*) AS n FROM learners WHERE organisation_id = ? GROUP BY status ORDER BY status`,
		[]any{orgID}, scanCounts(&byStatus)); err != nil {
		return
	}
	if err = queryRows(db, `SELECT coalesce(CAST(access_group_id AS text), '') AS k, count(*) AS n FROM learners WHERE organisation_id = ? AND `+
		guardSQL("", domain.Bulk{From: domain.NotErased})+` GROUP BY access_group_id ORDER BY 1`, []any{orgID}, scanCounts(&byGroup)); err != nil {
		return
	}
	if err = queryRows(db, `SELECT a.policy_version_id || ':' || a.decision AS k, count(*) AS n FROM policy_acceptances a
		JOIN learners l ON l.id = a.learner_id WHERE l.organisation_id = ? GROUP BY a.policy_version_id, a.decision ORDER BY 1`,
		[]any{orgID}, scanCounts(&byVersion)); err != nil {
		return
	}
	err = queryRows(db, `SELECT k, sum(n) AS n FROM (
			SELECT a.course_id || ':' || a.state AS k, count(*) AS n FROM learning_activity a JOIN learners l ON l.id = a.learner_id
			WHERE l.organisation_id = ? GROUP BY a.course_id, a.state
			UNION ALL
			SELECT course_id || ':' || state AS k, n FROM erased_activity_totals WHERE organisation_id = ?
		) t GROUP BY k ORDER BY k`, []any{orgID, orgID}, scanCounts(&byActivity))
	return
}

// scanCounts reads (k, n) rows.
func scanCounts(out *[]domain.Count) func(*sql.Rows) error {
	return func(r *sql.Rows) error {
		var c domain.Count
		if err := r.Scan(&c.K, &c.N); err != nil {
			return err
		}
		*out = append(*out, c)
		return nil
	}
}

// ActivityByLearner lists a learner's reported activity (exports).
func (s *Store) ActivityByLearner(ctx context.Context, learnerID string) ([]domain.Activity, error) {
	var out []domain.Activity
	err := queryRows(s.db(ctx), `SELECT learner_id, course_id, state, completed_at, last_access_at, observed_at, updated_at
		FROM learning_activity WHERE learner_id = ? ORDER BY course_id`, []any{learnerID}, func(r *sql.Rows) error {
		var a domain.Activity
		var completed, accessed, observed *time.Time
		if err := r.Scan(&a.LearnerID, &a.CourseID, &a.State, &completed, &accessed, &observed, &a.UpdatedAt); err != nil {
			return err
		}
		a.CompletedAt, a.LastAccessAt, a.ObservedAt, a.UpdatedAt = utcp(completed), utcp(accessed), utcp(observed), a.UpdatedAt.UTC()
		out = append(out, a)
		return nil
	})
	return out, err
}

// AuditAbout lists the audit entries whose target is the learner.
func (s *Store) AuditAbout(ctx context.Context, targetID string) ([]domain.AuditEntry, error) {
	var rows []auditRow
	if err := s.db(ctx).Where("target_id = ?", targetID).Order("id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, auditRow.domain), nil
}

// IdentityHash is the pseudonymous key of an erased identity.
func IdentityHash(issuer, subject string) string {
	h := sha256.Sum256([]byte(issuer + "\x00" + subject))
	return hex.EncodeToString(h[:])
}

// SignInLearner finds the learner linked to issuer + subject, as
// LearnerByIdentity; when there is none (NOT_FOUND) it also says when that
// identity was erased, if within the memory window (nil: never, or
// forgotten). One statement for both: every sign-in asks the first, and a
// first sign-in the second.
func (s *Store) SignInLearner(ctx context.Context, issuer, subject string) (domain.Learner, *time.Time, error) {
	var (
		erased *time.Time
		r      learnerRowNullable
	)
	found := false
	// Always one row: the erasure (or NULL), and the learner's columns
	// (NULL when no learner has the identity).
	err := s.readRows(ctx, `SELECT (SELECT erased_at FROM erased_identities WHERE hash = ?), `+learnerColumnsL+`
		FROM (SELECT 1 AS one) AS one
		LEFT JOIN (learners l JOIN learner_identities i ON i.learner_id = l.id AND i.issuer = ? AND i.subject = ?) ON 1 = 1`,
		[]any{IdentityHash(issuer, subject), issuer, subject}, append([]any{&erased}, r.fields()...), func() error {
			found = r.ID != nil
			return nil
		})
	if err != nil {
		return domain.Learner{}, nil, err
	}
	if !found {
		if erased != nil {
			t := erased.UTC()
			erased = &t
		}
		return domain.Learner{}, erased, translate(errNotFound)
	}
	return r.row().domain(), nil, nil
}

// PurgeErasedIdentities forgets erased identities older than before.
func (s *Store) PurgeErasedIdentities(ctx context.Context, before time.Time) error {
	return translate(s.db(ctx).Exec(`DELETE FROM erased_identities WHERE erased_at < ?`, before.UTC()).Error)
}

// lockFeeds takes the feed lock of each programme the rows belong to.
func (s *Store) lockFeeds(ctx context.Context, rows []movedRow) error {
	if s.dialect != migrations.Postgres {
		return nil
	}
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.ProgrammeID] {
			seen[r.ProgrammeID] = true
			if err := s.db(ctx).Exec(`SELECT pg_advisory_xact_lock(?)`, feedLockKey(r.ProgrammeID)).Error; err != nil {
				return translate(err)
			}
		}
	}
	return nil
}

// WarnContractEnd gives every learner of a programme not yet erased a new
// version and a CONTRACT_ENDING event, and records which end date was
// announced: set-based, once per date (CTL-6).
func (s *Store) WarnContractEnd(ctx context.Context, programmeID string, b domain.Bulk, end, at time.Time) (int, error) {
	defer s.refChanged(ctx)()
	res := s.db(ctx).Exec(`UPDATE programmes SET contract_warned_for = ? WHERE id = ? AND (contract_warned_for IS NULL OR contract_warned_for <> ?)`,
		end.UTC(), programmeID, end.UTC())
	if res.Error != nil || res.RowsAffected == 0 {
		return 0, translate(res.Error)
	}
	var rows []movedRow
	if err := queryRows(s.db(ctx), `UPDATE learners SET version = version + 1, updated_at = ?
		WHERE programme_id = ? AND `+guardSQL("", b)+` RETURNING id, version, programme_id`, []any{at.UTC(), programmeID},
		scanMoved(&rows)); err != nil {
		return 0, err
	}
	es := make([]domain.Event, len(rows))
	for i, r := range rows {
		es[i] = domain.Event{ProgrammeID: r.ProgrammeID, LearnerID: r.ID, Type: b.Event, LearnerVersion: r.Version, OccurredAt: at}
	}
	return len(rows), s.AppendEvents(ctx, es)
}

// Where each record and field of a domain.Scrub lives. This is a mapping,
// not a decision: what an erasure scrubs is domain.Erasure.
var (
	scrubTables = map[domain.Record]struct{ table, learnerKey string }{
		domain.RecordLearningActivity: {"learning_activity", "learner_id"},
		domain.RecordSession:          {"sessions", "learner_id"},
		domain.RecordIdentity:         {"learner_identities", "learner_id"},
		domain.RecordPolicyAcceptance: {"policy_acceptances", "learner_id"},
		domain.RecordDataRequest:      {"data_requests", "learner_id"},
		domain.RecordAuditEntry:       {"audit_entries", "target_id"},
	}
	scrubColumns = map[domain.Record]map[domain.Field]string{
		domain.RecordLearner: {domain.FieldEmail: "email", domain.FieldGivenName: "given_name", domain.FieldFamilyName: "family_name",
			domain.FieldRemovalDueAt: "removal_due_at", domain.FieldLastSignInAt: "last_sign_in_at", domain.FieldLastActivityAt: "last_activity_at"},
		domain.RecordPolicyAcceptance: {domain.FieldNote: "note"},
		domain.RecordDataRequest:      {domain.FieldReason: "reason", domain.FieldDecisionNote: "decision_note"},
		domain.RecordAuditEntry:       {domain.FieldReason: "reason"},
	}
)

// scrubPlan is a domain.Scrub as SQL: the learner's SET list and the
// statements on the other records, each taking the erased learners' IDs.
type scrubPlan struct {
	cleared    string // "email = NULL, ..., " (ends with ", ")
	statements []string
}

// scrubSQL maps a scrub to SQL, refusing what it cannot map.
func scrubSQL(sc *domain.Scrub) (scrubPlan, error) {
	var p scrubPlan
	if sc == nil {
		return p, fmt.Errorf("store: an erasure needs a scrub (domain.Erasure)")
	}
	column := func(r domain.Record, f domain.Field) (string, error) {
		c, ok := scrubColumns[r][f]
		if !ok {
			return "", fmt.Errorf("store: no column for the %s of a %s", f, r)
		}
		return c, nil
	}
	for _, f := range sc.Cleared {
		c, err := column(domain.RecordLearner, f)
		if err != nil {
			return p, err
		}
		p.cleared += c + " = NULL, "
	}
	for _, r := range sc.Deleted {
		t, ok := scrubTables[r]
		if !ok {
			return p, fmt.Errorf("store: no table for a %s", r)
		}
		p.statements = append(p.statements, `DELETE FROM `+t.table+` WHERE `+t.learnerKey+` IN ?`)
	}
	for _, bl := range sc.Blanked {
		t, ok := scrubTables[bl.Record]
		if !ok || len(bl.Fields) == 0 {
			return p, fmt.Errorf("store: cannot blank a %s", bl.Record)
		}
		var set, nonEmpty []string
		for _, f := range bl.Fields {
			c, err := column(bl.Record, f)
			if err != nil {
				return p, err
			}
			set, nonEmpty = append(set, c+` = ''`), append(nonEmpty, c+` <> ''`)
		}
		// Only rows with something to blank: the audit table's trigger
		// checks every row an UPDATE touches.
		p.statements = append(p.statements, `UPDATE `+t.table+` SET `+strings.Join(set, ", ")+
			` WHERE `+t.learnerKey+` IN ? AND (`+strings.Join(nonEmpty, " OR ")+`)`)
	}
	return p, nil
}
