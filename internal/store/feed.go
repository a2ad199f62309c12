package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/migrations"
)

// ReadEvents returns up to limit events of a programme after the event ID
// after, or after its purge horizon (the last event ID purged, 0 for none)
// when that is further on, in feed order (row ID); and the horizon. Writers
// serialise their feed inserts per programme until commit (AppendEvents),
// so an ID is visible only after every smaller one of the programme has
// committed or aborted: reading past a visible ID can never skip a row that
// commits later. That is what makes the feed gap-free.
//
// The horizon is read by the same statement as the events, so from the same
// snapshot: a reader whose cursor is below it has lost events to a purge and
// must be told (CURSOR_EXPIRED). Read by a statement of its own before the
// events, as it was, a purge committing between the two deleted events
// after the cursor that the horizon read did not yet cover: a gap the
// reader could not see. When no event follows, the horizon is read alone;
// a purge committing after the empty read can only make the answer more
// cautious.
func (s *Store) ReadEvents(ctx context.Context, programmeID string, after int64, limit int) (events []domain.FeedEvent, horizon int64, err error) {
	// Scanned by hand: gorm's reflective Find cost about 1 s of CPU in a
	// drain of 1,000,000 events. The limit is written into the text. One
	// row is scanned into e and copied into out, so only the learner ID is
	// allocated per row. The horizon's subqueries are uncorrelated, so
	// PostgreSQL runs each once (InitPlans) and the horizon bounds the
	// index range like the cursor does.
	if err := s.flushFeed(ctx); err != nil {
		return nil, 0, err
	}
	out := make([]domain.FeedEvent, 0, min(max(limit, 0), 5001))
	var (
		e   domain.FeedEvent
		typ sql.RawBytes
	)
	const horizonSQL = `coalesce((SELECT purged_upto FROM feed_horizons WHERE programme_id = ?), 0)`
	// PostgreSQL takes the cursor and the horizon as two bounds of the
	// index scan and starts from the tighter one. SQLite gets one bound:
	// with statistics (ANALYZE, STAT4) its planner would seek on the
	// horizon and test the cursor row by row, reading every entry between
	// the two on each page.
	bound := `id > ? AND id > ` + horizonSQL
	if s.dialect != migrations.Postgres {
		bound = `id > max(?, ` + horizonSQL + `)`
	}
	err = s.readRows(ctx, `SELECT id, learner_id, type, learner_version, occurred_at, `+horizonSQL+` FROM lifecycle_events
		WHERE programme_id = ? AND `+bound+` ORDER BY id LIMIT `+strconv.Itoa(max(limit, 0)),
		[]any{programmeID, programmeID, after, programmeID},
		[]any{&e.ID, &e.LearnerID, &typ, &e.LearnerVersion, &e.OccurredAt, &horizon},
		func() error {
			e.ProgrammeID, e.Type, e.OccurredAt = programmeID, eventType(typ), e.OccurredAt.UTC()
			out = append(out, e)
			return nil
		})
	if err != nil {
		return nil, 0, err
	}
	if len(out) == 0 {
		if horizon, err = s.feedHorizon(ctx, programmeID); err != nil {
			return nil, 0, err
		}
	}
	return out, horizon, nil
}

// eventType is a stored event type as the domain's constant, whose string
// is shared by every event of that type (a copy per row otherwise).
func eventType(b []byte) domain.EventType {
	for _, t := range domain.EventTypes {
		if string(t) == string(b) {
			return t
		}
	}
	return domain.EventType(b)
}

// FeedHead is the position of the last event visible now: a reader
// following from it sees every change the caller could not see yet.
func (s *Store) FeedHead(ctx context.Context, programmeID string, at time.Time) (domain.FeedPosition, error) {
	// The purge horizon counts too: after a purge emptied the feed, the head
	// is where the purge stopped, not 0 (which would be expired at once).
	if err := s.flushFeed(ctx); err != nil {
		return domain.FeedPosition{}, err
	}
	var id *int64
	if err := queryRows(s.db(ctx), `SELECT max(id) FROM (SELECT max(id) AS id FROM lifecycle_events WHERE programme_id = ?
		UNION ALL SELECT purged_upto FROM feed_horizons WHERE programme_id = ?) h`, []any{programmeID, programmeID},
		func(r *sql.Rows) error { return r.Scan(&id) }); err != nil {
		return domain.FeedPosition{}, err
	}
	p := domain.FeedPosition{At: at}
	if id != nil {
		p.ID = *id
	}
	return p, nil
}

// PurgeEvents deletes feed rows older than the retention and records, per
// programme, the last ID purged (cursors below it answer CURSOR_EXPIRED).
func (s *Store) PurgeEvents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.InTx(ctx, func(ctx context.Context) error {
		if err := s.flushFeed(ctx); err != nil {
			return err
		}
		db := s.db(ctx)
		type horizon struct {
			ProgrammeID string
			Upto        int64
		}
		var hs []horizon
		if err := queryRows(db, `SELECT programme_id, max(id) AS upto FROM lifecycle_events WHERE occurred_at < ? GROUP BY programme_id`,
			[]any{before.UTC()}, func(r *sql.Rows) error {
				var h horizon
				if err := r.Scan(&h.ProgrammeID, &h.Upto); err != nil {
					return err
				}
				hs = append(hs, h)
				return nil
			}); err != nil {
			return err
		}
		// The horizon only rises. An event's time is taken before its
		// writer holds the feed lock, so a later ID can carry an earlier
		// time: a purge can delete an event while one before it, younger,
		// stays, and a later purge of that one must not move the horizon
		// back below the first (a cursor between the two would then read
		// on past an event it never saw).
		greatest := "greatest"
		if s.dialect != migrations.Postgres {
			greatest = "max" // SQLite's scalar max
		}
		for _, h := range hs {
			if err := db.Exec(`INSERT INTO feed_horizons (programme_id, purged_upto) VALUES (?, ?)
				ON CONFLICT (programme_id) DO UPDATE SET purged_upto = `+greatest+`(feed_horizons.purged_upto, excluded.purged_upto)`, h.ProgrammeID, h.Upto).Error; err != nil {
				return translate(err)
			}
		}
		res := db.Exec(`DELETE FROM lifecycle_events WHERE occurred_at < ?`, before.UTC())
		n = res.RowsAffected
		return translate(res.Error)
	})
	return n, err
}

// feedHorizon is the last event ID purged from a programme's feed (0: none).
func (s *Store) feedHorizon(ctx context.Context, programmeID string) (int64, error) {
	var h int64
	err := queryRows(s.db(ctx), `SELECT purged_upto FROM feed_horizons WHERE programme_id = ?`, []any{programmeID},
		func(r *sql.Rows) error { return r.Scan(&h) })
	return h, err
}

// ListEnrolments pages the desired state: every ACTIVE learner × every course
// of their access group, keyset-ordered by (learner ID, LMS course ID), from
// after (afterLearner, afterCourse), or after all of afterLearner's rows when
// learnerDone. A page holds whole learners only: its rows could otherwise
// come from two versions of a learner, and an LMS keeping the highest
// version seen would skip a change. It holds at most limit rows, unless its
// one learner has more (then all of theirs). exhausted is set when no row
// follows the page. Learners without courses have no rows.
//
// One statement reads the page, a row per learner with their courses, so
// the page is one snapshot and a learner always comes whole.
//
// How many learners it reads is bounded in the statement by the fewest
// courses m of a group, counting only the programme's courses and groups
// with at least one of them, as the learners' course lists do: k = limit/m
// + 2 learners, one more when the cursor is inside a learner (whose rows
// left may be fewer than m, or none). Each learner the statement returns
// has rows, at least m but that one. So the page cannot take all k: either
// its first learner has more than limit rows, and the page stops at the
// second, or it takes learners while they fit, and k learners have more
// than limit rows. A page that stops before a learner has a learner with
// rows after it; one that takes every learner returned is the last only if
// fewer than k came back (the statement returns k too, so a broken premise
// would cost a short page, never a learner).
//
// k follows the smallest group, not the page's learners: where groups'
// course counts differ widely, a page of learners in large groups reads
// more learners than it returns (found in review: learners in a 100-course
// group beside an unused 1-course group, 1,002 learners read to return 10,
// 50–72 ms a page; the row-per-course statement before took about 240 ms a
// page on the same data).
func (s *Store) ListEnrolments(ctx context.Context, programmeID, afterLearner, afterCourse string, learnerDone bool, limit int) (rows []domain.Enrolment, exhausted bool, err error) {
	limit = max(limit, 1)
	cond, where, slack := "", []any{programmeID}, 2
	switch {
	case afterLearner != "" && learnerDone:
		cond, where = " AND l.id > ?", append(where, afterLearner)
	case afterLearner != "":
		cond, where, slack = " AND l.id >= ?", append(where, afterLearner), 3
	}
	args := append([]any{limit, limit, slack, programmeID}, where...)
	// Scanned by hand: gorm's reflection costs more than the query here.
	// Course and group IDs, group names and course lists repeat across
	// learners: one string (or list) each per page, shared.
	var (
		id, email, given, family      sql.RawBytes
		groupID, groupName, courseIDs sql.RawBytes
		version, learners             int64
		noGiven, noFamily             bool
		full                          bool
		returned                      int64
	)
	rows = make([]domain.Enrolment, 0, min(limit, 5000)+8)
	// The names' strings live in one slice for the page, sized for the
	// learners a full page holds, so a name's pointer is not an allocation
	// of its own (a longer page only moves on to a new slice).
	names := make([]string, 0, 2*(min(limit, 5000)+8))
	name := func(b sql.RawBytes, null bool) *string {
		if null {
			return nil
		}
		names = append(names, string(b))
		return &names[len(names)-1]
	}
	shared := map[string]string{}
	share := func(b []byte) string {
		if s, ok := shared[string(b)]; ok {
			return s
		}
		s := string(b)
		shared[s] = s
		return s
	}
	lists := map[string][]string{}
	courses := func(b []byte) ([]string, error) {
		if cs, ok := lists[string(b)]; ok {
			return cs, nil
		}
		var cs []string
		if err := json.Unmarshal(b, &cs); err != nil {
			return nil, fmt.Errorf("store: a learner's course list: %w", err)
		}
		for i, c := range cs {
			cs[i] = share([]byte(c))
		}
		lists[string(b)] = cs
		return cs, nil
	}
	err = s.readRows(ctx, s.enrolmentsSQL(cond), args,
		[]any{&id, &email, &given, &family, &groupID, &groupName, &courseIDs, &version, &noGiven, &noFamily, &learners},
		func() error {
			returned++
			if full {
				return nil // the learners past the page, read to the end of the result
			}
			cs, err := courses(courseIDs)
			if err != nil {
				return err
			}
			if string(id) == afterLearner && !learnerDone {
				// The cursor's learner: the courses after the cursor's.
				i := 0
				for i < len(cs) && cs[i] <= afterCourse { // bytewise, as the order
					i++
				}
				cs = cs[i:]
			}
			if len(cs) == 0 {
				return nil
			}
			if len(rows) > 0 && len(rows)+len(cs) > limit {
				full = true
				return nil
			}
			e := domain.Enrolment{LearnerID: string(id), Email: string(email), GivenName: name(given, noGiven), FamilyName: name(family, noFamily),
				AccessGroupID: share(groupID), AccessGroupName: share(groupName), LearnerVersion: version}
			for _, c := range cs {
				e.LMSCourseID = c
				rows = append(rows, e)
			}
			return nil
		})
	if err != nil {
		return nil, false, err
	}
	// The last page: no learner left out, and fewer than k came back (with
	// no row at all, k was never read; it is at least 2).
	return rows, !full && (returned == 0 || returned < learners), nil
}

// enrolmentsSQL is ListEnrolments' statement, after the cursor's condition
// (on l.id). Its arguments: k's (the limit twice, the slack: 2, or 3
// inside a learner, and the programme), then the programme and the
// cursor's learner (if any). Its last column is k.
//
// PostgreSQL 15's plan for it (100,000 active learners × 3 courses, a page
// of 1,000 rows from the middle; EXPLAIN (ANALYZE, BUFFERS), the custom and
// the generic plan alike): the CTE counts each group's courses once, read
// by two InitPlans (the LIMIT, the last column); then Limit ← Nested Loops
// over an Index Scan of learners_active (programme_id, id > cursor), in ID
// order, so no sort, with the learner's group by primary key and the
// group's course list (the LATERAL aggregate) each behind a Memoize keyed
// on the group: built once per group per page. It stops after k learners:
// 335 for 1,000 rows, 345 buffers, about 1 ms. Read as a row per learner
// and course, the same page was 1,003 course lookups and an incremental
// sort (about 2.3 ms), and three times the rows to send; in a drain of
// every page, read alone through pgx, 0.23 and 0.24 s against 0.65–0.88 s.
// Keep the course list LATERAL: joined as a grouped subquery, it would be
// hashed, losing the learners' order, and the whole programme sorted. SQLite has no LATERAL: the list
// is a correlated subquery there, learners by (programme_id, id).
//
// Both dialects write the list as a JSON array of the programme's LMS
// course IDs in bytewise order (COLLATE "C"; SQLite's default BINARY
// collation). A group with none of them has no list (json_agg over nothing
// is NULL; SQLite tests EXISTS), so its learners take no place in the
// LIMIT. The services never link a group to another programme's course,
// but the schema does not forbid it; the list and m count the same courses
// either way.
func (s *Store) enrolmentsSQL(cond string) string {
	where := `l.programme_id = ? AND ` + guardSQL("l", domain.Bulk{From: domain.HasAccess}) + cond
	// k, computed once (a CTE read twice is materialized) for the LIMIT and
	// the last column: written out twice, it cost a second InitPlan, about
	// 0.1 ms a page.
	const bound = `WITH bound AS (SELECT COALESCE(? / min(n), ?) + ? AS k FROM (SELECT count(*) AS n
			FROM access_group_courses agc JOIN courses c ON c.id = agc.course_id
			WHERE c.programme_id = ? GROUP BY agc.access_group_id) AS per_group)
		`
	const k = `(SELECT k FROM bound)`
	// A group's courses of the learner's programme.
	const groupCourses = `FROM access_group_courses agc JOIN courses c ON c.id = agc.course_id
				WHERE agc.access_group_id = l.access_group_id AND c.programme_id = l.programme_id`
	if s.dialect == migrations.Postgres {
		return bound + `SELECT l.id, l.email, l.given_name, l.family_name, CAST(l.access_group_id AS text), g.name,
				cs.ids, l.version, l.given_name IS NULL, l.family_name IS NULL, ` + k + `
			FROM learners l
			JOIN access_groups g ON g.id = l.access_group_id
			CROSS JOIN LATERAL (SELECT json_agg(c.lms_course_id ORDER BY c.lms_course_id COLLATE "C") AS ids
				` + groupCourses + `) AS cs
			WHERE ` + where + ` AND cs.ids IS NOT NULL ORDER BY l.id LIMIT ` + k
	}
	return bound + `SELECT l.id, l.email, l.given_name, l.family_name, l.access_group_id, g.name,
			(SELECT json_group_array(c.lms_course_id ORDER BY c.lms_course_id) ` + groupCourses + `),
			l.version, l.given_name IS NULL, l.family_name IS NULL, ` + k + `
		FROM learners l
		JOIN access_groups g ON g.id = l.access_group_id
		WHERE ` + where + ` AND EXISTS (SELECT 1 ` + groupCourses + `) ORDER BY l.id LIMIT ` + k
}

// BumpGroup gives every learner of an access group a new version and a feed
// event (COURSES_CHANGED when the group's courses change): set-based.
//
// b is domain.BulkCoursesChanged.
func (s *Store) BumpGroup(ctx context.Context, groupID string, b domain.Bulk, at time.Time) (int, error) {
	var rows []movedRow
	t := b.Event
	if err := queryRows(s.db(ctx), `UPDATE learners SET version = version + 1, updated_at = ?
		WHERE access_group_id = ? AND `+guardSQL("", b)+` RETURNING id, version, programme_id`, []any{at.UTC(), groupID}, scanMoved(&rows)); err != nil {
		return 0, err
	}
	es := make([]domain.Event, len(rows))
	for i, r := range rows {
		es[i] = domain.Event{ProgrammeID: r.ProgrammeID, LearnerID: r.ID, Type: t, LearnerVersion: r.Version, OccurredAt: at}
	}
	return len(rows), s.AppendEvents(ctx, es)
}

// RecordActivity applies activity rows that were already validated: lastAccessAt only
// moves forward (monotonic), enrolment states are upserted and rewritten only
// when they differ (the same batch twice changes nothing). Set-based: one
// UPDATE … FROM (VALUES …) and one multi-row upsert per chunk.
func (s *Store) RecordActivity(ctx context.Context, last map[string]time.Time, states []domain.Activity, at time.Time) error {
	db := s.db(ctx)
	pg := s.dialect == migrations.Postgres
	// Invariant 2: never write activity for an erased learner. The caller
	// checked the status before its transaction; re-check it here, holding
	// the rows (FOR SHARE, in ID order like EraseLearners' FOR UPDATE) so an
	// erasure cannot commit in between. SQLite has one writer.
	want := map[string]bool{}
	for id := range last {
		want[id] = true
	}
	for _, a := range states {
		want[a.LearnerID] = true
	}
	all := make([]string, 0, len(want))
	for id := range want {
		all = append(all, id)
	}
	slices.Sort(all)
	live := make(map[string]bool, len(all))
	if err := inBatches(all, 5000, func(batch []string) error {
		q := `SELECT id FROM learners WHERE id IN ? AND ` + guardSQL("", domain.Bulk{From: domain.NotErased}) + ` ORDER BY id`
		if pg {
			q += ` FOR SHARE`
		}
		var got []string
		if err := queryRows(db, q, []any{batch}, scanIDs(&got)); err != nil {
			return err
		}
		for _, id := range got {
			live[id] = true
		}
		return nil
	}); err != nil {
		return err
	}
	kept := states[:0:0]
	for _, a := range states {
		if live[a.LearnerID] {
			kept = append(kept, a)
		}
	}
	states = kept
	ids := make([]string, 0, len(last))
	for id := range last {
		if live[id] {
			ids = append(ids, id)
		}
	}
	var sb strings.Builder
	if err := inBatches(ids, 2000, func(batch []string) error {
		sb.Reset()
		args := make([]any, 0, 2*len(batch)+1)
		// SQLite names a VALUES list's columns column1, column2.
		t, id, tuple, tail := "v.t", "v.id", "(?::uuid, ?::timestamptz)", ") AS v(id, t)"
		if !pg {
			t, id, tuple, tail = "v.column2", "v.column1", "(?, ?)", ") AS v"
		}
		sb.WriteString("UPDATE learners SET last_activity_at = " + t + " FROM (VALUES ")
		for i, lid := range batch {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(tuple)
			args = append(args, lid, last[lid].UTC())
		}
		sb.WriteString(tail + " WHERE learners.id = " + id + " AND (learners.last_activity_at IS NULL OR learners.last_activity_at < " + t + ")")
		return translate(db.Exec(sb.String(), args...).Error)
	}); err != nil {
		return err
	}
	for start := 0; start < len(states); start += 1000 {
		chunk := states[start:min(start+1000, len(states))]
		sb.Reset()
		sb.WriteString("INSERT INTO learning_activity (learner_id, course_id, state, completed_at, last_access_at, observed_at, updated_at) VALUES ")
		args := make([]any, 0, 7*len(chunk))
		for i, a := range chunk {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?,?,?,?)")
			args = append(args, a.LearnerID, a.CourseID, a.State, utcp(a.CompletedAt), utcp(a.LastAccessAt), utcp(a.ObservedAt), at.UTC())
		}
		// A state read before the stored one (a late retry) is not applied;
		// rows without observedAt are applied as sent.
		fresh := "(excluded.observed_at IS NULL OR learning_activity.observed_at IS NULL OR excluded.observed_at >= learning_activity.observed_at)"
		distinct := "IS DISTINCT FROM"
		if !pg {
			distinct = "IS NOT"
		}
		differs := fmt.Sprintf("(%[1]s AND (learning_activity.state %[2]s excluded.state OR learning_activity.completed_at %[2]s excluded.completed_at"+
			" OR (excluded.observed_at IS NOT NULL AND learning_activity.observed_at %[2]s excluded.observed_at)))", fresh, distinct)
		differs += " OR (learning_activity.last_access_at IS NULL AND excluded.last_access_at IS NOT NULL) OR learning_activity.last_access_at < excluded.last_access_at"
		fmt.Fprintf(&sb, ` ON CONFLICT (learner_id, course_id) DO UPDATE SET
			state = CASE WHEN %[1]s THEN excluded.state ELSE learning_activity.state END,
			completed_at = CASE WHEN %[1]s THEN excluded.completed_at ELSE learning_activity.completed_at END,
			observed_at = CASE WHEN %[1]s THEN coalesce(excluded.observed_at, learning_activity.observed_at) ELSE learning_activity.observed_at END,
			last_access_at = CASE WHEN learning_activity.last_access_at IS NULL OR learning_activity.last_access_at < excluded.last_access_at
				THEN excluded.last_access_at ELSE learning_activity.last_access_at END,
			updated_at = excluded.updated_at
			WHERE %[2]s`, fresh, differs)
		if err := db.Exec(sb.String(), args...).Error; err != nil {
			return translate(err)
		}
	}
	return nil
}

// ---- API keys ----

type apiKeyRow struct {
	ID          string `gorm:"primaryKey"`
	ProgrammeID string
	Name        string
	Prefix      string
	Hash        string
	CreatedBy   string
	CreatedAt   time.Time
	RevokedAt   *time.Time
}

func (apiKeyRow) TableName() string { return "api_keys" }

func (r apiKeyRow) domain() domain.APIKey {
	return domain.APIKey{ID: r.ID, ProgrammeID: r.ProgrammeID, Name: r.Name, Prefix: r.Prefix, Hash: r.Hash,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC(), RevokedAt: utcp(r.RevokedAt)}
}

func (s *Store) CreateAPIKey(ctx context.Context, k domain.APIKey) error {
	r := apiKeyRow{ID: k.ID, ProgrammeID: k.ProgrammeID, Name: k.Name, Prefix: k.Prefix, Hash: k.Hash, CreatedBy: k.CreatedBy,
		CreatedAt: k.CreatedAt.UTC()}
	return translate(s.db(ctx).Create(&r).Error)
}

func (s *Store) APIKeyByHash(ctx context.Context, hash string) (domain.APIKey, error) {
	var r apiKeyRow
	if err := s.db(ctx).Where("hash = ?", hash).Take(&r).Error; err != nil {
		return domain.APIKey{}, translate(err)
	}
	return r.domain(), nil
}

func (s *Store) GetAPIKey(ctx context.Context, id string) (domain.APIKey, error) {
	var r apiKeyRow
	if err := s.db(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return domain.APIKey{}, translate(err)
	}
	return r.domain(), nil
}

func (s *Store) APIKeysByProgramme(ctx context.Context, programmeID string) ([]domain.APIKey, error) {
	var rows []apiKeyRow
	if err := s.db(ctx).Where("programme_id = ?", programmeID).Order("created_at").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, apiKeyRow.domain), nil
}

func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	return translate(s.db(ctx).Model(&apiKeyRow{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", at.UTC()).Error)
}

// DeleteGrantsOf removes every grant of an identity (a revoked API key).
func (s *Store) DeleteGrantsOf(ctx context.Context, issuer, subject string) error {
	s.grantsChanged(ctx)
	return translate(s.db(ctx).Where("issuer = ? AND subject = ?", issuer, subject).Delete(&grantRow{}).Error)
}

// collateC orders text bytewise on PostgreSQL, as Go compares cursors.
func collateC(d migrations.Dialect) string {
	if d == migrations.Postgres {
		return ` COLLATE "C"`
	}
	return ""
}
