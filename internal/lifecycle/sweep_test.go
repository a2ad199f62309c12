package lifecycle_test

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

const swpDay = 24 * time.Hour

// ---- fixtures ----

// swpImport imports n learners into an organisation as its admin, in one
// atomic import, and returns their IDs.
func swpImport(w *testkit.ConnectToLearn, admin, orgID, prefix, emailDomain string, n int) []string {
	w.T.Helper()
	rows := make([]lifecycle.ImportRow, n)
	for i := range rows {
		rows[i] = lifecycle.ImportRow{Email: fmt.Sprintf("%s%05d@%s", prefix, i, emailDomain), GivenName: "Imported", FamilyName: fmt.Sprint("Number ", i)}
	}
	rep, err := w.Service.ImportLearners(w.As(admin), orgID, rows, false, true)
	if err != nil || rep.Created != n {
		w.T.Fatalf("import: created %d of %d: %v", rep.Created, n, err)
	}
	ids := make([]string, 0, n)
	for _, l := range rep.Lines {
		ids = append(ids, l.LearnerID)
	}
	return ids
}

// swpEnrolAll gives every learner of the programme not yet erased one
// ENROLLED activity row on the course (set-based: there is no need for an
// API call per learner in a fixture).
func swpEnrolAll(t *testing.T, st *store.Store, programmeID, courseID string) int {
	t.Helper()
	res, err := st.SQL().Exec(testkit.Rebind(st.Dialect(), `INSERT INTO learning_activity (learner_id, course_id, state, updated_at)
		SELECT l.id, c.id, 'ENROLLED', l.created_at FROM learners l CROSS JOIN courses c
		WHERE l.programme_id = ? AND c.id = ? AND l.status <> 'ERASED'`), programmeID, courseID)
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	n, _ := res.RowsAffected()
	return int(n)
}

func swpSweep(t *testing.T, svc *lifecycle.Service, ctx context.Context, programmeID string) lifecycle.SweepReport {
	t.Helper()
	rep, err := svc.RunRetentionSweep(ctx, programmeID)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return rep
}

func swpStatus(t *testing.T, st *store.Store, programmeID string, status domain.LearnerStatus) int {
	t.Helper()
	return testkit.Count(t, st, `SELECT count(*) FROM learners WHERE programme_id = ? AND status = ?`, programmeID, string(status))
}

// swpErasedTwice counts the programme's learners with more than one
// LEARNER_ERASED event.
func swpErasedTwice(t *testing.T, st *store.Store, programmeID string) int {
	t.Helper()
	return testkit.Count(t, st, `SELECT count(*) FROM (SELECT learner_id FROM lifecycle_events WHERE programme_id = ? AND type = 'LEARNER_ERASED'
		GROUP BY learner_id HAVING count(*) > 1) x`, programmeID)
}

func swpErasedEvents(t *testing.T, st *store.Store, programmeID string) int {
	t.Helper()
	return testkit.Count(t, st, `SELECT count(*) FROM lifecycle_events WHERE programme_id = ? AND type = 'LEARNER_ERASED'`, programmeID)
}

func swpEraseAudits(t *testing.T, st *store.Store, programmeID, rule string) int {
	t.Helper()
	return testkit.Count(t, st, `SELECT count(*) FROM audit_entries WHERE programme_id = ? AND action = 'learner.erase' AND reason = ?`, programmeID, rule)
}

func swpTotals(t *testing.T, st *store.Store, orgID string) int {
	t.Helper()
	return testkit.Count(t, st, `SELECT CAST(coalesce(sum(n), 0) AS bigint) FROM erased_activity_totals WHERE organisation_id = ?`, orgID)
}

// swpState fingerprints everything a sweep may write.
func swpState(t *testing.T, st *store.Store) string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT status || ':' || CAST(count(*) AS text) || ':' || CAST(sum(version) AS text) FROM learners GROUP BY status ORDER BY status`,
		`SELECT CAST(count(*) AS text) FROM learners WHERE email IS NULL`,
		`SELECT type || ':' || CAST(count(*) AS text) FROM lifecycle_events GROUP BY type ORDER BY type`,
		`SELECT action || ':' || CAST(count(*) AS text) FROM audit_entries GROUP BY action ORDER BY action`,
		`SELECT status || ':' || CAST(count(*) AS text) FROM data_requests GROUP BY status ORDER BY status`,
		`SELECT CAST(count(*) AS text) FROM learning_activity`,
		`SELECT CAST(coalesce(sum(n), 0) AS text) FROM erased_activity_totals`,
		`SELECT CAST(count(*) AS text) FROM learner_identities`,
		`SELECT CAST(count(*) AS text) FROM sessions`,
	} {
		rows, err := st.SQL().Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		rows.Close()
		out = append(out, "|")
	}
	return fmt.Sprint(out)
}

// swpStore wraps the real store to watch, or interrupt, erasure batches.
// Each batch ends by writing its learner.erase audit entries, inside its
// transaction and after the erasure itself: batches records their sizes,
// and hook (when set) runs in place of that write and may call the real one.
type swpStore struct {
	*store.Store
	mu      sync.Mutex
	batches []int
	hook    func(batch int, ctx context.Context, write func(context.Context) error) error
}

func (s *swpStore) AppendAudits(ctx context.Context, es []domain.AuditEntry) error {
	write := func(ctx context.Context) error { return s.Store.AppendAudits(ctx, es) }
	if len(es) == 0 || es[0].Action != "learner.erase" {
		return write(ctx)
	}
	s.mu.Lock()
	s.batches = append(s.batches, len(es))
	k := len(s.batches)
	s.mu.Unlock()
	if s.hook != nil {
		return s.hook(k, ctx, write)
	}
	return write(ctx)
}

// ---- CTL-6: the contract ends ----

func TestSweep_CTL6_ContractEndErasesEveryone(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		w.RegisterProvider(w.KCC.ID, testkit.KCCIssuer)
		cs := w.Courses()
		n := lifecycle.SweepBatch + 100 // more than one batch
		swpImport(w, "kcc-admin", w.KCC.ID, "ce", "kent.gov.uk", n)
		for i := 0; i < 3; i++ {
			w.CreateLearner(w.Medway.ID, fmt.Sprintf("m%d@medway.gov.uk", i), "M", fmt.Sprint("Number ", i))
		}
		linked, _ := w.Linked(w.KCC.ID, "linked@kent.gov.uk", testkit.KCCIssuer, "linked")
		if _, _, err := w.Service.StartSession(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "linked"}); err != nil {
			t.Fatal(err)
		}
		leaver := w.CreateLearner(w.KCC.ID, "leaver@kent.gov.uk", "L", "L")
		if _, err := w.Service.MarkLeaver(w.As("kcc-admin"), leaver.ID, "left"); err != nil {
			t.Fatal(err)
		}
		gone, goneCtx := w.Linked(w.KCC.ID, "gone@kent.gov.uk", testkit.KCCIssuer, "gone")
		if out, err := w.Service.WithdrawConsent(goneCtx(), ""); err != nil || out.Status != domain.StatusErased {
			t.Fatalf("withdraw: %+v %v", out, err)
		}
		goneFeed := w.Feed(gone.ID)
		total := n + 3 + 2 // imported, Medway's, linked, leaver
		if got := swpEnrolAll(t, st, w.Programme.ID, cs[0].ID); got != total {
			t.Fatalf("fixture: enrolled %d", got)
		}
		otherP, _ := newOtherProgramme(w.World)
		tw := w.Admit(otherP, "Tunbridge Wells Borough Council", "tunbridgewells.gov.uk")
		erin := w.CreateLearner(tw.ID, "erin@tunbridgewells.gov.uk", "G", "F")
		end := *w.Programme.Settings.ContractEndsAt

		// Before the end nothing happens.
		if rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID); rep.ContractEnded || rep.Erased != 0 || rep.ScheduledInactive != 0 {
			t.Fatalf("sweep before the contract end: %+v", rep)
		}
		// Warned in advance through the retention view: at the end, everyone goes.
		prev, err := w.Service.RetentionPreview(w.As("kc"), w.Programme.ID, end)
		if err != nil {
			t.Fatal(err)
		}
		if len(prev) != total {
			t.Fatalf("preview at the contract end lists %d learners, want %d", len(prev), total)
		}
		for _, r := range prev {
			if r.Action != "ERASE" || r.Reason != domain.RemovalContractEnded || !r.DueAt.Equal(end) || r.LearnerID == gone.ID {
				t.Fatalf("preview entry: %+v", r)
			}
		}

		// The contract ends: one sweep erases every learner of the programme, in batches.
		w.Clock.Set(end)
		watch := &swpStore{Store: st}
		rep := swpSweep(t, w.NewService(watch, nil), w.As("kc"), w.Programme.ID)
		if !rep.ContractEnded || rep.Erased != total {
			t.Fatalf("CTL-6 sweep: %+v, want %d erased", rep, total)
		}
		sort.Sort(sort.Reverse(sort.IntSlice(watch.batches)))
		if fmt.Sprint(watch.batches) != fmt.Sprint([]int{lifecycle.SweepBatch, total - lifecycle.SweepBatch}) {
			t.Errorf("erasure batches: %v, want one of %d and the rest", watch.batches, lifecycle.SweepBatch)
		}
		if n := testkit.Count(t, st, `SELECT count(*) FROM learners WHERE programme_id = ? AND (status <> 'ERASED' OR email IS NOT NULL
			OR given_name IS NOT NULL OR family_name IS NOT NULL OR erased_at IS NULL)`, w.Programme.ID); n != 0 {
			t.Fatalf("CTL-6: %d learners not fully erased", n)
		}
		for q, want := range map[string]int{
			`SELECT count(*) FROM learning_activity a JOIN learners l ON l.id = a.learner_id WHERE l.programme_id = ?`:  0,
			`SELECT count(*) FROM learner_identities i JOIN learners l ON l.id = i.learner_id WHERE l.programme_id = ?`: 0,
			`SELECT count(*) FROM sessions s JOIN learners l ON l.id = s.learner_id WHERE l.programme_id = ?`:           0,
		} {
			if got := testkit.Count(t, st, q, w.Programme.ID); got != want {
				t.Errorf("%s: %d", q, got)
			}
		}
		if got := swpErasedEvents(t, st, w.Programme.ID); got != total+1 || swpErasedTwice(t, st, w.Programme.ID) != 0 {
			t.Fatalf("LEARNER_ERASED events: %d (want one per learner, %d)", got, total+1)
		}
		if got := swpEraseAudits(t, st, w.Programme.ID, "CTL-6"); got != total {
			t.Fatalf("learner.erase entries for CTL-6: %d, want %d", got, total)
		}
		// Each erased learner's last event is LEARNER_ERASED at its final version.
		if n := testkit.Count(t, st, `SELECT count(*) FROM learners l WHERE l.programme_id = ? AND NOT EXISTS (SELECT 1 FROM lifecycle_events e
			WHERE e.learner_id = l.id AND e.type = 'LEARNER_ERASED' AND e.learner_version = l.version)`, w.Programme.ID); n != 0 {
			t.Fatalf("%d learners lack a LEARNER_ERASED event at their final version", n)
		}
		if feed := w.Feed(linked.ID); feed[len(feed)-1].Type != string(domain.EventErased) {
			t.Fatalf("linked learner's feed: %v", feed)
		}
		// GEN-3: the activity is kept as anonymous totals, once.
		if got := swpTotals(t, st, w.KCC.ID); got != n+2 {
			t.Errorf("KCC activity totals: %d, want %d", got, n+2)
		}
		if got := swpTotals(t, st, w.Medway.ID); got != 3 {
			t.Errorf("Medway activity totals: %d, want 3", got)
		}
		// The learner erased before is not erased again; the other programme is untouched.
		if got := w.Feed(gone.ID); fmt.Sprint(got) != fmt.Sprint(goneFeed) {
			t.Fatalf("an erased learner was erased again: %v -> %v", goneFeed, got)
		}
		if got := w.Learner(erin.ID); got.Status != domain.StatusPendingAcceptance || lrnDeref(got.Email) != "erin@tunbridgewells.gov.uk" ||
			got.Version != erin.Version {
			t.Fatalf("a learner of another programme was touched: %+v", got)
		}

		// Again: nothing left to do.
		before := swpState(t, st)
		if rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID); !rep.ContractEnded || rep.Erased != 0 {
			t.Fatalf("second sweep after the contract end: %+v", rep)
		}
		if after := swpState(t, st); after != before {
			t.Fatalf("a second sweep wrote:\n before %s\n after  %s", before, after)
		}
		// Nobody can join a programme whose contract has ended... but the
		// rule itself is the sweep's: only the programme admins may run it.
		_, err = w.Service.RunRetentionSweep(w.As("kcc-admin"), w.Programme.ID)
		wantCode(t, err, apperr.Forbidden)
	})
}

// ---- CTL-7: inactivity, with the automated-removal grace (GEN-4) ----

func TestSweep_CTL7_InactivitySchedulesWithGrace(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		w.RegisterProvider(w.KCC.ID, testkit.KCCIssuer)
		cs := w.Courses()
		t0 := w.Clock.Now()
		limit, grace := *w.Programme.Settings.InactivityLimit, w.Programme.Settings.AutomatedRemovalGrace
		if limit != 365*swpDay || grace != 21*swpDay {
			t.Fatalf("preset: limit %v grace %v", limit, grace)
		}
		idle := w.CreateLearner(w.KCC.ID, "idle@kent.gov.uk", "I", "I")         // never signs in, no LMS activity
		idleMed := w.CreateLearner(w.Medway.ID, "idle@medway.gov.uk", "I", "M") // the same, at Medway
		napper, _ := w.Linked(w.KCC.ID, "napper@kent.gov.uk", testkit.KCCIssuer, "napper")
		signer, _ := w.Linked(w.KCC.ID, "signer@kent.gov.uk", testkit.KCCIssuer, "signer")
		learning := w.CreateLearner(w.KCC.ID, "learning@kent.gov.uk", "L", "L") // LMS activity, no sign-in
		leaver := w.CreateLearner(w.KCC.ID, "leaver@kent.gov.uk", "L", "V")
		if _, err := w.Service.MarkLeaver(w.As("kcc-admin"), leaver.ID, "left"); err != nil {
			t.Fatal(err)
		}
		// Day 200: signer signs in again. Day 300: the LMS reports learning's activity.
		w.Clock.Set(t0.Add(200 * swpDay))
		if _, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "signer"}); err != nil {
			t.Fatal(err)
		}
		w.Clock.Set(t0.Add(300 * swpDay))
		at := w.Clock.Now()
		w.Activity(learning.ID, cs[0].ID, "IN_PROGRESS", nil, &at, at)
		w.LastActivity(learning.ID, at)

		// Just before the limit: nobody is inactive yet (the leaver's grace has
		// long ended: that removal is carried out, GEN-4).
		w.Clock.Set(t0.Add(limit - time.Second))
		rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID)
		if rep.ScheduledInactive != 0 || rep.Erased != 1 || rep.ContractEnded {
			t.Fatalf("sweep before the limit: %+v", rep)
		}
		if got := w.Learner(leaver.ID); got.Status != domain.StatusErased {
			t.Fatalf("due leaver: %+v", got)
		}

		// The limit passed: the three with no sign-in and no activity since
		// are scheduled, with the grace.
		w.Clock.Set(t0.Add(limit + time.Hour))
		scheduledAt := w.Clock.Now()
		rep = swpSweep(t, w.Service, w.As("kc"), w.Programme.ID)
		if rep.ScheduledInactive != 3 || rep.Erased != 0 {
			t.Fatalf("CTL-7 sweep: %+v", rep)
		}
		for _, l := range []domain.Learner{idle, idleMed, napper} {
			got := w.Learner(l.ID)
			if got.Status != domain.StatusRemovalScheduled || swpReason(got) != domain.RemovalInactivity || got.RemovalDueAt == nil ||
				!got.RemovalDueAt.Equal(scheduledAt.Add(grace)) || got.Version != l.Version+1 || lrnDeref(got.Email) == "" {
				t.Fatalf("scheduled learner: %+v", got)
			}
			feed := w.Feed(l.ID)
			if last := feed[len(feed)-1]; last != testkit.Ev(domain.EventRemovalScheduled, got.Version) {
				t.Fatalf("feed of %s: %v", l.ID, feed)
			}
			if es := lrnEntries(w.Audit(w.Programme.ID), "learner.schedule_removal", l.ID); len(es) != 1 || es[0].Reason != string(domain.RemovalInactivity) {
				t.Fatalf("schedule audit: %+v", es)
			}
		}
		for _, l := range []domain.Learner{signer, learning} {
			if got := w.Learner(l.ID); got.Status != domain.StatusPendingAcceptance || got.RemovalDueAt != nil {
				t.Fatalf("an active learner was scheduled: %+v", got)
			}
		}
		// Idempotent: the same sweep again schedules nobody twice.
		before := swpState(t, st)
		if rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID); rep.ScheduledInactive != 0 || rep.Erased != 0 {
			t.Fatalf("repeated sweep: %+v", rep)
		}
		if after := swpState(t, st); after != before {
			t.Fatalf("repeated sweep wrote:\n before %s\n after  %s", before, after)
		}

		// Within the grace, napper signs in: signing in is activity (CTL-7).
		w.Clock.Advance(10 * swpDay)
		if l, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "napper"}); err != nil ||
			l.Status == domain.StatusRemovalScheduled || l.Status == domain.StatusErased || l.RemovalDueAt != nil {
			t.Fatalf("napper signs in within the grace: %+v %v", l, err)
		}
		// One second before the grace ends: nobody erased yet.
		w.Clock.Set(scheduledAt.Add(grace - time.Second))
		if rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID); rep.Erased != 0 || rep.ScheduledInactive != 0 {
			t.Fatalf("sweep within the grace: %+v", rep)
		}
		// The grace ended: the two still inactive are erased.
		w.Clock.Set(scheduledAt.Add(grace))
		if rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID); rep.Erased != 2 || rep.ScheduledInactive != 0 {
			t.Fatalf("sweep after the grace: %+v", rep)
		}
		for _, l := range []domain.Learner{idle, idleMed} {
			if got := w.Learner(l.ID); got.Status != domain.StatusErased || got.Email != nil {
				t.Fatalf("inactive learner after the grace: %+v", got)
			}
			if es := lrnEntries(w.Audit(w.Programme.ID), "learner.erase", l.ID); len(es) != 1 {
				t.Fatalf("erase audit: %+v", es)
			}
		}
		for _, l := range []domain.Learner{napper, signer, learning} {
			if got := w.Learner(l.ID); got.Status == domain.StatusErased {
				t.Fatalf("an active learner was erased: %+v", got)
			}
		}
		if got := fmt.Sprint(w.Feed(napper.ID)); !strings.Contains(got, "REMOVAL_SCHEDULED@v3 REMOVAL_CANCELLED@v4") {
			t.Fatalf("napper's feed: %v", got)
		}
	})
}

func swpReason(l domain.Learner) domain.RemovalReason {
	if l.RemovalReason == nil {
		return ""
	}
	return *l.RemovalReason
}

// ---- idempotence, concurrency, interruption ----

func TestSweep_IsIdempotent(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		w.RegisterProvider(w.KCC.ID, testkit.KCCIssuer)
		cs := w.Courses()
		delay := 3 * swpDay
		if _, err := w.Service.UpdateProgrammeRules(w.As("kc"), w.Programme.ID, lifecycle.RuleSettingsPatch{WithdrawalErasureDelay: &delay}, "test"); err != nil {
			t.Fatal(err)
		}
		t0 := w.Clock.Now()
		swpImport(w, "kcc-admin", w.KCC.ID, "idem", "kent.gov.uk", 50) // inactive from day 365
		leaver := w.CreateLearner(w.KCC.ID, "leaver@kent.gov.uk", "L", "L")
		if _, err := w.Service.MarkLeaver(w.As("kcc-admin"), leaver.ID, "left"); err != nil {
			t.Fatal(err)
		}
		withdrawn, wctx := w.Linked(w.KCC.ID, "withdrawn@kent.gov.uk", testkit.KCCIssuer, "withdrawn")
		if out, err := w.Service.WithdrawConsent(wctx(), ""); err != nil || out.Status != domain.StatusWithdrawn {
			t.Fatalf("withdraw with a delay: %+v %v", out, err)
		}
		active, _ := w.Linked(w.KCC.ID, "active@kent.gov.uk", testkit.KCCIssuer, "active")
		swpEnrolAll(t, st, w.Programme.ID, cs[0].ID)

		w.Clock.Set(t0.Add(366 * swpDay))
		if _, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "active"}); err != nil {
			t.Fatal(err)
		}
		rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID)
		if rep.Erased != 2 || rep.ScheduledInactive != 50 {
			t.Fatalf("first sweep: %+v", rep)
		}
		state := swpState(t, st)
		for i := 0; i < 2; i++ {
			if rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID); rep != (lifecycle.SweepReport{ProgrammeID: w.Programme.ID}) {
				t.Fatalf("repeated sweep %d did something: %+v", i, rep)
			}
			if got := swpState(t, st); got != state {
				t.Fatalf("repeated sweep %d wrote:\n before %s\n after  %s", i, state, got)
			}
		}
		// The scheduler's SweepAll, twice: the second does nothing at all.
		if _, err := w.Service.SweepAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		state = swpState(t, st)
		reps, err := w.Service.SweepAll(context.Background())
		if err != nil || len(reps) != 1 || reps[0] != (lifecycle.SweepReport{ProgrammeID: w.Programme.ID}) {
			t.Fatalf("second SweepAll: %+v %v", reps, err)
		}
		if got := swpState(t, st); got != state {
			t.Fatalf("second SweepAll wrote:\n before %s\n after  %s", state, got)
		}
		// After the grace: the 50 go, once.
		w.Clock.Advance(21 * swpDay)
		if rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID); rep.Erased != 50 || rep.ScheduledInactive != 0 {
			t.Fatalf("after the grace: %+v", rep)
		}
		state = swpState(t, st)
		if rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID); rep != (lifecycle.SweepReport{ProgrammeID: w.Programme.ID}) || swpState(t, st) != state {
			t.Fatalf("repeated sweep after the grace: %+v", rep)
		}
		// The contract ends: the one left goes, once.
		w.Clock.Set(*w.Programme.Settings.ContractEndsAt)
		if rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID); rep.Erased != 1 || !rep.ContractEnded {
			t.Fatalf("contract end: %+v", rep)
		}
		state = swpState(t, st)
		if rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID); rep.Erased != 0 || swpState(t, st) != state {
			t.Fatalf("repeated sweep after the contract end: %+v", rep)
		}
		if swpErasedTwice(t, st, w.Programme.ID) != 0 || swpErasedEvents(t, st, w.Programme.ID) != 53 {
			t.Fatalf("LEARNER_ERASED events: %d", swpErasedEvents(t, st, w.Programme.ID))
		}
		if got := swpTotals(t, st, w.KCC.ID); got != 53 {
			t.Fatalf("activity totals: %d, want 53", got)
		}
		_ = withdrawn
		_ = active
	})
}

// ONC-5: under Onclick a due removal is not erased by the sweep but handed
// to the controller as a data request, once; the report counts the requests
// it opened.
func TestSweep_ONC5_DueRemovalOpensOneRequestAndCountsIt(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewOnclick(t, st)
		l := w.CreateLearner(w.WSCC.ID, "leaver@westsussex.gov.uk", "G", "F")
		if _, err := w.Service.MarkLeaver(w.As("wscc-admin"), l.ID, "left the council"); err != nil {
			t.Fatal(err)
		}
		w.Clock.Advance(8 * swpDay)
		// A clock that moves, as a real one does.
		var ticks atomic.Int64
		svc := w.NewService(st, func() time.Time { return w.Clock.Now().Add(time.Duration(ticks.Add(1)) * time.Microsecond) })
		rep := swpSweep(t, svc, w.Sys, w.Programme.ID)
		reqs, _, err := w.Service.DataRequests(w.Sys, w.Programme.ID, nil, nil, 10, "")
		if err != nil || len(reqs) != 1 || reqs[0].LearnerID != l.ID || reqs[0].Status != domain.RequestAwaitingApproval || reqs[0].Origin != domain.RemovalLeaver {
			t.Fatalf("requests: %+v %v", reqs, err)
		}
		if got := w.Learner(l.ID); got.Status != domain.StatusRemovalScheduled || got.Email == nil {
			t.Fatalf("ONC-5: the sweep removed data without the controller: %+v", got)
		}
		if rep.Erased != 0 || rep.RequestsOpened != 1 {
			t.Errorf("first sweep reports %+v, want one request opened and nothing erased", rep)
		}
		for i, s := range []*lifecycle.Service{svc, w.Service} {
			if rep := swpSweep(t, s, w.Sys, w.Programme.ID); rep.RequestsOpened != 0 || rep.Erased != 0 {
				t.Errorf("repeated sweep %d reports %+v, though it opened nothing", i, rep)
			}
		}
		if reqs, _, _ := w.Service.DataRequests(w.Sys, w.Programme.ID, nil, nil, 10, ""); len(reqs) != 1 {
			t.Fatalf("repeated sweeps opened more requests: %+v", reqs)
		}
		if _, err := w.Service.ApproveDataRequest(w.As("wscc-admin"), reqs[0].ID, "confirmed"); err != nil {
			t.Fatal(err)
		}
		if got := w.Learner(l.ID); got.Status != domain.StatusErased {
			t.Fatalf("after approval: %+v", got)
		}
	})
}

// Two sweeps of one programme at once: one runs (the other is skipped, or
// finds nothing left); no learner is processed twice.
func TestSweep_TwoAtOnceOneRuns(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		cs := w.Courses()
		n := lifecycle.SweepBatch + 500
		swpImport(w, "kcc-admin", w.KCC.ID, "two", "kent.gov.uk", n)
		swpEnrolAll(t, st, w.Programme.ID, cs[0].ID)
		w.Clock.Set(*w.Programme.Settings.ContractEndsAt)

		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			reps  []lifecycle.SweepReport
			errs  []error
			start = make(chan struct{})
		)
		record := func(r []lifecycle.SweepReport, err error) {
			mu.Lock()
			defer mu.Unlock()
			reps = append(reps, r...)
			if err != nil {
				errs = append(errs, err)
			}
		}
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := w.As("kc")
				<-start
				r, err := w.Service.RunRetentionSweep(ctx, w.Programme.ID)
				record([]lifecycle.SweepReport{r}, err)
			}()
		}
		wg.Add(1)
		go func() { // the scheduler, at the same moment
			defer wg.Done()
			<-start
			record(w.Service.SweepAll(context.Background()))
		}()
		close(start)
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("sweeps failed: %v", errs)
		}
		erased, ran := 0, 0
		for _, r := range reps {
			erased += r.Erased
			if r.Erased > 0 {
				ran++
			}
		}
		t.Logf("reports: %+v", reps)
		if erased != n || ran != 1 {
			t.Errorf("reports add up to %d erased by %d sweeps, want %d by one", erased, ran, n)
		}
		if got := swpStatus(t, st, w.Programme.ID, domain.StatusErased); got != n {
			t.Fatalf("erased: %d of %d", got, n)
		}
		if swpErasedTwice(t, st, w.Programme.ID) != 0 || swpErasedEvents(t, st, w.Programme.ID) != n {
			t.Fatalf("LEARNER_ERASED events: %d for %d learners (%d erased more than once)", swpErasedEvents(t, st, w.Programme.ID), n, swpErasedTwice(t, st, w.Programme.ID))
		}
		if got := swpEraseAudits(t, st, w.Programme.ID, "CTL-6"); got != n {
			t.Fatalf("learner.erase entries: %d", got)
		}
		if got := swpTotals(t, st, w.KCC.ID); got != n {
			t.Fatalf("GEN-3: activity totals %d, want %d", got, n)
		}
	})
}

// Two replicas (two services, two connection pools) sweep at once. On
// PostgreSQL the advisory lock lets one run. SQLite is for one process
// (README), so there only the data is checked: nothing may double.
func TestSweep_TwoReplicasAtOnceOneRuns(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			url := testkit.NewDatabaseURL(t, d)
			st, st2 := testkit.OpenStore(t, url, store.Options{}), testkit.OpenStore(t, url, store.Options{})
			w := testkit.NewConnectToLearn(t, st)
			cs := w.Courses()
			n := lifecycle.SweepBatch + 500
			swpImport(w, "kcc-admin", w.KCC.ID, "rep", "kent.gov.uk", n)
			swpEnrolAll(t, st, w.Programme.ID, cs[0].ID)
			w.Clock.Set(*w.Programme.Settings.ContractEndsAt)
			replicas := []*lifecycle.Service{w.Service, w.NewService(st2, nil)}
			reps := make([]lifecycle.SweepReport, 2)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, svc := range replicas {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx := lifecycle.WithIdentity(context.Background(), domain.Identity{Issuer: testkit.TestIssuer, Subject: "kc"})
					<-start
					reps[i], errs[i] = svc.RunRetentionSweep(ctx, w.Programme.ID)
				}()
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("replica %d: %v", i, err)
				}
			}
			t.Logf("reports: %+v", reps)
			if d == migrations.Postgres && reps[0].Erased+reps[1].Erased != n {
				t.Errorf("reports add up to %d erased, want %d: both replicas ran", reps[0].Erased+reps[1].Erased, n)
			}
			if got := swpStatus(t, st, w.Programme.ID, domain.StatusErased); got != n {
				t.Fatalf("erased: %d of %d", got, n)
			}
			if swpErasedTwice(t, st, w.Programme.ID) != 0 || swpErasedEvents(t, st, w.Programme.ID) != n {
				t.Fatalf("LEARNER_ERASED events: %d for %d learners", swpErasedEvents(t, st, w.Programme.ID), n)
			}
			if got := swpEraseAudits(t, st, w.Programme.ID, "CTL-6"); got != n {
				t.Fatalf("learner.erase entries: %d", got)
			}
			if got := swpTotals(t, st, w.KCC.ID); got != n {
				t.Fatalf("GEN-3: activity totals %d, want %d", got, n)
			}
		})
	}
}

type swpLearnerState struct {
	status                         string
	email                          sql.NullString
	given                          sql.NullString
	version                        int64
	activity, identities, sessions int
	erasedEvents, eraseAudits      int
}

func swpLearnerStates(t *testing.T, st *store.Store, programmeID string) map[string]swpLearnerState {
	t.Helper()
	rows, err := st.SQL().Query(testkit.Rebind(st.Dialect(), `SELECT CAST(l.id AS text), l.status, l.email, l.given_name, l.version,
		(SELECT count(*) FROM learning_activity a WHERE a.learner_id = l.id),
		(SELECT count(*) FROM learner_identities i WHERE i.learner_id = l.id),
		(SELECT count(*) FROM sessions s WHERE s.learner_id = l.id),
		(SELECT count(*) FROM lifecycle_events e WHERE e.learner_id = l.id AND e.type = 'LEARNER_ERASED'),
		(SELECT count(*) FROM audit_entries u WHERE u.target_id = CAST(l.id AS text) AND u.action = 'learner.erase')
		FROM learners l WHERE l.programme_id = ?`), programmeID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]swpLearnerState{}
	for rows.Next() {
		var id string
		var s swpLearnerState
		if err := rows.Scan(&id, &s.status, &s.email, &s.given, &s.version, &s.activity, &s.identities, &s.sessions, &s.erasedEvents, &s.eraseAudits); err != nil {
			t.Fatal(err)
		}
		out[id] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A sweep killed midway leaves every learner either fully processed or
// untouched, and a rerun finishes the job.
func TestSweep_InterruptedLeavesNoHalfProcessedLearner(t *testing.T) {
	type write = func(context.Context) error
	kills := []struct {
		name string
		kill func(cancel context.CancelFunc) func(ctx context.Context, w write) error
	}{
		{"killed after the batch's writes, before its commit", func(cancel context.CancelFunc) func(context.Context, write) error {
			return func(ctx context.Context, w write) error {
				if err := w(ctx); err != nil {
					return fmt.Errorf("fixture: the batch failed before the kill: %w", err)
				}
				cancel()
				return context.Canceled
			}
		}},
		{"context cancelled while the batch writes", func(cancel context.CancelFunc) func(context.Context, write) error {
			return func(ctx context.Context, w write) error {
				cancel()
				return w(ctx)
			}
		}},
	}
	for _, k := range kills {
		t.Run(k.name, func(t *testing.T) {
			testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
				w := testkit.NewConnectToLearn(t, st)
				w.RegisterProvider(w.KCC.ID, testkit.KCCIssuer)
				cs := w.Courses()
				n := lifecycle.SweepBatch + 150
				ids := swpImport(w, "kcc-admin", w.KCC.ID, "int", "kent.gov.uk", n)
				// A few, on both sides of the batch boundary, with a linked identity and a session.
				for _, i := range []int{0, 1, lifecycle.SweepBatch - 1, lifecycle.SweepBatch, lifecycle.SweepBatch + 1, n - 1} {
					if _, _, err := w.Service.StartSession(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: fmt.Sprintf("int-%d", i),
						Email: fmt.Sprintf("int%05d@kent.gov.uk", i), EmailVerified: true}); err != nil {
						t.Fatal(err)
					}
				}
				swpEnrolAll(t, st, w.Programme.ID, cs[0].ID)
				before := swpLearnerStates(t, st, w.Programme.ID)
				if len(before) != n {
					t.Fatalf("fixture: %d learners", len(before))
				}
				w.Clock.Set(*w.Programme.Settings.ContractEndsAt)

				ctx, cancel := context.WithCancel(w.As("kc"))
				defer cancel()
				ws := &swpStore{Store: st}
				kill := k.kill(cancel)
				ws.hook = func(batch int, ctx context.Context, w write) error {
					if batch == 2 {
						return kill(ctx, w)
					}
					return w(ctx)
				}
				rep, err := w.NewService(ws, nil).RunRetentionSweep(ctx, w.Programme.ID)
				if err == nil {
					t.Fatalf("the interrupted sweep reports success: %+v", rep)
				}
				if rep.Erased != lifecycle.SweepBatch {
					t.Errorf("the interrupted sweep reports %d erased, want the first batch (%d)", rep.Erased, lifecycle.SweepBatch)
				}

				after := swpLearnerStates(t, st, w.Programme.ID)
				erased, untouched := 0, 0
				for id, b := range before {
					a := after[id]
					switch {
					case a.status == "ERASED" && !a.email.Valid && !a.given.Valid && a.version == b.version+1 && a.activity == 0 &&
						a.identities == 0 && a.sessions == 0 && a.erasedEvents == 1 && a.eraseAudits == 1:
						erased++
					case a == b && a.status == "PENDING_ACCEPTANCE" && a.email.Valid && a.activity == 1 && a.erasedEvents == 0 && a.eraseAudits == 0:
						untouched++
					default:
						t.Errorf("learner %s is half processed:\n before %+v\n after  %+v", id, b, a)
					}
				}
				if erased != lifecycle.SweepBatch || untouched != n-lifecycle.SweepBatch {
					t.Fatalf("after the interruption: %d erased, %d untouched; want %d and %d", erased, untouched, lifecycle.SweepBatch, n-lifecycle.SweepBatch)
				}
				if got := swpTotals(t, st, w.KCC.ID); got != erased {
					t.Fatalf("GEN-3: activity totals %d after the interruption, want %d (the erased learners' rows only)", got, erased)
				}

				// A rerun finishes the job (and the lock was released).
				rep = swpSweep(t, w.Service, w.As("kc"), w.Programme.ID)
				if rep.Skipped || rep.Erased != n-lifecycle.SweepBatch {
					t.Fatalf("rerun: %+v", rep)
				}
				for id, a := range swpLearnerStates(t, st, w.Programme.ID) {
					if a.status != "ERASED" || a.email.Valid || a.activity != 0 || a.identities != 0 || a.sessions != 0 || a.erasedEvents != 1 || a.eraseAudits != 1 {
						t.Fatalf("after the rerun, learner %s: %+v", id, a)
					}
				}
				if got := swpTotals(t, st, w.KCC.ID); got != n {
					t.Fatalf("GEN-3: activity totals %d after the rerun, want %d", got, n)
				}
				_ = ids
			})
		})
	}
}

// ---- the retention preview (GEN-1, GEN-4) ----

func TestRetentionPreview_GEN1_ListsWhoAndWhy(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		w.RegisterProvider(w.KCC.ID, testkit.KCCIssuer)
		delay := 30 * swpDay
		if _, err := w.Service.UpdateProgrammeRules(w.As("kc"), w.Programme.ID, lifecycle.RuleSettingsPatch{WithdrawalErasureDelay: &delay}, "test"); err != nil {
			t.Fatal(err)
		}
		t0 := w.Clock.Now()
		early := w.CreateLearner(w.KCC.ID, "early@kent.gov.uk", "E", "E")
		late := w.CreateLearner(w.KCC.ID, "late@kent.gov.uk", "L", "L")
		idle := w.CreateLearner(w.KCC.ID, "idle@kent.gov.uk", "I", "I")
		idleMed := w.CreateLearner(w.Medway.ID, "idle@medway.gov.uk", "I", "M")
		learning := w.CreateLearner(w.KCC.ID, "learning@kent.gov.uk", "L", "A")
		withdrawn, wctx := w.Linked(w.KCC.ID, "withdrawn@kent.gov.uk", testkit.KCCIssuer, "withdrawn")
		signer, _ := w.Linked(w.KCC.ID, "signer@kent.gov.uk", testkit.KCCIssuer, "signer")
		if _, err := w.Service.MarkLeaver(w.As("kcc-admin"), early.ID, "left"); err != nil { // due day 7
			t.Fatal(err)
		}
		if out, err := w.Service.WithdrawConsent(wctx(), ""); err != nil || out.Status != domain.StatusWithdrawn { // due day 30
			t.Fatalf("withdraw: %+v %v", out, err)
		}
		w.Clock.Set(t0.Add(60 * swpDay))
		if _, err := w.Service.MarkLeaver(w.As("kcc-admin"), late.ID, "left"); err != nil { // due day 67
			t.Fatal(err)
		}
		w.Clock.Set(t0.Add(90 * swpDay))
		w.LastActivity(learning.ID, w.Clock.Now()) // LMS activity on day 90
		w.Clock.Set(t0.Add(100 * swpDay))
		if _, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "signer"}); err != nil { // day 100
			t.Fatal(err)
		}
		type row struct {
			id, org string
			reason  domain.RemovalReason
			action  string
			due     time.Time
		}
		preview := func(ctx context.Context, asOf time.Time) []row {
			t.Helper()
			rs, err := w.Service.RetentionPreview(ctx, w.Programme.ID, asOf)
			if err != nil {
				t.Fatal(err)
			}
			out := make([]row, len(rs))
			for i, r := range rs {
				out[i] = row{r.LearnerID, r.OrganisationID, r.Reason, r.Action, r.DueAt.UTC()}
			}
			sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
			return out
		}
		want := func(rs ...row) []row {
			sort.Slice(rs, func(i, j int) bool { return rs[i].id < rs[j].id })
			return rs
		}
		w.Grant("auditor", domain.RoleAuditor, w.Programme.ID, nil, nil)
		stateBefore := swpState(t, st)

		// By day 30: the early leaver and the withdrawal (due exactly then).
		got := preview(w.As("kc"), t0.Add(30*swpDay))
		if exp := want(
			row{early.ID, w.KCC.ID, domain.RemovalLeaver, "ERASE", t0.Add(7 * swpDay)},
			row{withdrawn.ID, w.KCC.ID, domain.RemovalConsentWithdrawn, "ERASE", t0.Add(30 * swpDay)},
		); fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Fatalf("preview by day 30:\n got %v\nwant %v", got, exp)
		}
		// By day 366: all three removals, and the two with no sign-in and no
		// LMS activity since day 0 would be scheduled (their inactivity
		// limit was reached on day 365).
		asOf := t0.Add(366 * swpDay)
		exp := want(
			row{early.ID, w.KCC.ID, domain.RemovalLeaver, "ERASE", t0.Add(7 * swpDay)},
			row{withdrawn.ID, w.KCC.ID, domain.RemovalConsentWithdrawn, "ERASE", t0.Add(30 * swpDay)},
			row{late.ID, w.KCC.ID, domain.RemovalLeaver, "ERASE", t0.Add(67 * swpDay)},
			row{idle.ID, w.KCC.ID, domain.RemovalInactivity, "SCHEDULE", t0.Add(365 * swpDay)},
			row{idleMed.ID, w.Medway.ID, domain.RemovalInactivity, "SCHEDULE", t0.Add(365 * swpDay)},
		)
		for _, who := range []string{"kc", "auditor"} {
			if got := preview(w.As(who), asOf); fmt.Sprint(got) != fmt.Sprint(exp) {
				t.Fatalf("preview by day 366 as %s:\n got %v\nwant %v", who, got, exp)
			}
		}
		// At the contract end: everyone not yet erased, for CONTRACT_ENDED.
		end := *w.Programme.Settings.ContractEndsAt
		got = preview(w.As("kc"), end)
		if len(got) != 7 {
			t.Fatalf("preview at the contract end: %v", got)
		}
		for _, r := range got {
			if r.action != "ERASE" || r.reason != domain.RemovalContractEnded || !r.due.Equal(end) {
				t.Fatalf("preview at the contract end: %+v", r)
			}
		}
		// Only programme staff may look; looking writes nothing.
		_, err := w.Service.RetentionPreview(w.As("kcc-admin"), w.Programme.ID, asOf)
		wantCode(t, err, apperr.Forbidden)
		_, err = w.Service.RetentionPreview(w.As("stranger"), w.Programme.ID, asOf)
		if code := apperr.CodeOf(err); code != apperr.NotFound && code != apperr.Forbidden {
			t.Fatalf("a stranger: %v", err)
		}
		if after := swpState(t, st); after != stateBefore {
			t.Fatalf("the preview wrote:\n before %s\n after  %s", stateBefore, after)
		}

		// The preview tells the truth: a sweep on day 366 does exactly that.
		w.Clock.Set(asOf)
		rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID)
		if rep.Erased != 3 || rep.ScheduledInactive != 2 {
			t.Fatalf("sweep on day 366: %+v", rep)
		}
		for _, r := range exp {
			l := w.Learner(r.id)
			switch r.action {
			case "ERASE":
				if l.Status != domain.StatusErased {
					t.Errorf("previewed ERASE of %s, but: %+v", r.id, l)
				}
			case "SCHEDULE":
				if l.Status != domain.StatusRemovalScheduled || swpReason(l) != domain.RemovalInactivity {
					t.Errorf("previewed SCHEDULE of %s, but: %+v", r.id, l)
				}
			}
		}
		for _, l := range []domain.Learner{learning, signer} {
			if got := w.Learner(l.ID); got.Status != domain.StatusPendingAcceptance {
				t.Errorf("not previewed, but changed: %+v", got)
			}
		}
	})
}

// swpRaceStore runs after once, right after the sweep has picked its first
// candidates of a kind and before their batch is processed.
type swpRaceStore struct {
	*store.Store
	kind  domain.SweepKind
	once  sync.Once
	after func(ids []string)
}

func (s *swpRaceStore) SweepCandidates(ctx context.Context, programmeID string, kind domain.SweepKind, b domain.Bulk, cutoff time.Time, afterID string, limit int) ([]string, error) {
	ids, err := s.Store.SweepCandidates(ctx, programmeID, kind, b, cutoff, afterID, limit)
	if err == nil && kind == s.kind && len(ids) > 0 {
		s.once.Do(func() { s.after(ids) })
	}
	return ids, err
}

// CTL-7, GEN-4: a learner scheduled for inactivity whose grace has ended
// signs in just as the sweep picks them for erasure. Signing in cancels the
// removal (CTL-7), so either the sign-in wins and the learner stays, or the
// sweep wins and the sign-in is refused; never a learner erased in the middle
// of the session their sign-in just opened.
func TestSweep_GEN4_SignInAsTheBatchStartsIsNeverErasedMidSession(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		w.RegisterProvider(w.KCC.ID, testkit.KCCIssuer)
		t0 := w.Clock.Now()
		l, _ := w.Linked(w.KCC.ID, "napper@kent.gov.uk", testkit.KCCIssuer, "napper")
		w.Clock.Set(t0.Add(366 * swpDay))
		if rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID); rep.ScheduledInactive != 1 {
			t.Fatalf("fixture: %+v", rep)
		}
		w.Clock.Advance(22 * swpDay) // the grace has ended; the sweep has not run yet

		var (
			signedIn domain.Learner
			signErr  error
			done     = make(chan struct{})
		)
		rs := &swpRaceStore{Store: st, kind: domain.SweepDue, after: func(ids []string) {
			go func() {
				defer close(done)
				signedIn, signErr = w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "napper"})
			}()
			// Let the sign-in finish if nothing holds it back.
			select {
			case <-done:
			case <-time.After(500 * time.Millisecond):
			}
		}}
		rep, err := w.NewService(rs, nil).RunRetentionSweep(w.As("kc"), w.Programme.ID)
		<-done
		if err != nil {
			t.Fatal(err)
		}
		got := w.Learner(l.ID)
		switch {
		case signErr == nil && got.Status != domain.StatusErased:
			// The sign-in won: the removal was cancelled and the learner stays.
			if signedIn.Status == domain.StatusRemovalScheduled || rep.Erased != 0 {
				t.Fatalf("sign-in won, but: learner %+v, report %+v", signedIn, rep)
			}
		case signErr != nil && got.Status == domain.StatusErased:
			// The sweep won: the sign-in was refused.
		default:
			t.Fatalf("the learner signed in (%v, status %s) and was erased by the same sweep (report %+v): now %s",
				signErr, signedIn.Status, rep, got.Status)
		}
	})
}

// The sweep erases everyone at the contract end (CTL-6), which cannot be
// undone: it decides on the programme as the database holds it, not on the
// store's reference cache. Here the cache still holds the old end (read just
// before) when the end is moved behind the store's back, as another replica
// would; the sweep must see the new end and erase nobody.
func TestSweep_CTL6_DecidesOnTheContractEndInTheDatabaseNotACachedOne(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		l := w.CreateLearner(w.KCC.ID, "stays@kent.gov.uk", "S", "Tays")
		end := *w.Programme.Settings.ContractEndsAt
		w.Clock.Set(end.Add(time.Hour)) // the old end has passed
		if p, err := st.GetProgramme(context.Background(), w.Programme.ID); err != nil || !p.Settings.ContractEndsAt.Equal(end) {
			t.Fatalf("cached read: %+v %v", p.Settings.ContractEndsAt, err)
		}
		later := end.AddDate(1, 0, 0)
		if _, err := st.SQL().Exec(testkit.Rebind(st.Dialect(), `UPDATE programmes SET contract_ends_at = ? WHERE id = ?`), later, w.Programme.ID); err != nil {
			t.Fatal(err)
		}
		rep := swpSweep(t, w.Service, w.As("kc"), w.Programme.ID)
		if rep.ContractEnded || rep.Erased != 0 {
			t.Fatalf("the sweep erased on a contract end the database no longer holds: %+v", rep)
		}
		if got := w.Learner(l.ID); got.Status == domain.StatusErased {
			t.Fatalf("learner erased: %+v", got)
		}
	})
}

// Nobody is provisioned from the contract end (CTL-6): a first sign-in, an
// admin's createLearner and an import decide on the contract end their own
// transaction reads (with the organisation, CTL-9), not on the reference
// cache. Here the cache still holds a running contract when the end is
// brought forward behind the store's back, as another replica would.
func TestProvisioning_CTL6_DecidesOnTheContractEndInTheDatabaseNotACachedOne(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		w.RegisterProvider(w.KCC.ID, testkit.KCCIssuer)
		ctx := context.Background()
		if p, err := st.GetProgramme(ctx, w.Programme.ID); err != nil || contractEndedAt(p, w.Clock.Now()) {
			t.Fatalf("cached read: the contract should still run: %+v %v", p.Settings.ContractEndsAt, err)
		}
		ended := w.Clock.Now().Add(-time.Hour)
		if _, err := st.SQL().Exec(testkit.Rebind(st.Dialect(), `UPDATE programmes SET contract_ends_at = ? WHERE id = ?`), ended, w.Programme.ID); err != nil {
			t.Fatal(err)
		}
		refused := func(what string, err error) {
			t.Helper()
			ae, ok := apperr.As(err)
			if !ok || ae.Rule != "CTL-6" {
				t.Fatalf("%s after the contract end: %v (reason %q, rule %q), want a CTL-6 refusal", what, err, reasonOf(ae), ruleOf(ae))
			}
		}
		_, err := w.Service.SignIn(ctx, domain.Identity{Issuer: testkit.KCCIssuer, Subject: "late", Email: "late@kent.gov.uk",
			EmailVerified: true, GivenName: "Lee", FamilyName: "Ate"})
		refused("a first sign-in", err)
		_, err = w.Service.CreateLearner(w.As("kcc-admin"), w.KCC.ID, lifecycle.LearnerInput{Email: "later@kent.gov.uk", GivenName: "Lee", FamilyName: "Ater"})
		refused("createLearner", err)
		_, err = w.Service.ImportLearners(w.As("kcc-admin"), w.KCC.ID, []lifecycle.ImportRow{{Email: "latest@kent.gov.uk", GivenName: "Lee", FamilyName: "Atest"}}, false, true)
		refused("importLearners", err)
		// The cache still says the contract runs, so the three refusals
		// came from the database's contract end, not from a cache entry
		// that had expired (refCacheTTL, 10 s) and been read again.
		if p, err := st.GetProgramme(ctx, w.Programme.ID); err != nil || contractEndedAt(p, w.Clock.Now()) {
			t.Fatalf("the cached programme was read again before the checks ended (%v): they did not tell the database from the cache", err)
		}
		for _, email := range []string{"late@kent.gov.uk", "later@kent.gov.uk", "latest@kent.gov.uk"} {
			if _, err := st.LearnerByEmail(ctx, email); apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("%s was provisioned after the contract end (%v)", email, err)
			}
		}
	})
}

func contractEndedAt(p domain.Programme, now time.Time) bool {
	return p.Settings.ContractEndsAt != nil && !now.Before(*p.Settings.ContractEndsAt)
}

func reasonOf(e *apperr.Error) string {
	if e == nil {
		return ""
	}
	return e.Reason
}

func ruleOf(e *apperr.Error) string {
	if e == nil {
		return ""
	}
	return e.Rule
}
