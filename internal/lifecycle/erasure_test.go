package lifecycle_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// ---- reading the export ----

// ersJSON round-trips v through JSON, as a client of the export would see it.
func ersJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func ersObj(t *testing.T, doc map[string]any, key string) map[string]any {
	t.Helper()
	m, ok := doc[key].(map[string]any)
	if !ok || len(m) == 0 {
		t.Fatalf("%s: want a non-empty object, got %#v", key, doc[key])
	}
	return m
}

func ersList(t *testing.T, doc map[string]any, key string) []map[string]any {
	t.Helper()
	xs, ok := doc[key].([]any)
	if !ok || len(xs) == 0 {
		t.Fatalf("%s: want a non-empty list, got %#v", key, doc[key])
	}
	out := make([]map[string]any, len(xs))
	for i, x := range xs {
		if out[i], ok = x.(map[string]any); !ok {
			t.Fatalf("%s[%d] is %T", key, i, x)
		}
	}
	return out
}

// ersContains reports which terms occur in v's JSON, case-insensitively.
func ersContains(t *testing.T, v any, terms ...string) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ToLower(string(b))
	var found []string
	for _, term := range terms {
		if strings.Contains(s, strings.ToLower(term)) {
			found = append(found, term)
		}
	}
	return found
}

// ---- searching the whole database (invariant 2) ----

// ersCatalog lists every column of every table, from the database's own
// catalog, as "table.column".
func ersCatalog(t *testing.T, st *store.Store) []string {
	t.Helper()
	q := `SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY m.name, p.cid`
	if st.Dialect() == migrations.Postgres {
		q = `SELECT c.table_name, c.column_name FROM information_schema.columns c
			JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
			WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
			ORDER BY c.table_name, c.ordinal_position`
	}
	rows, err := st.SQL().Query(q)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(table+col, `"`+"\x00") {
			t.Fatalf("unexpected identifier %q.%q", table, col)
		}
		out = append(out, table+"."+col)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// The catalog query must see the tables that hold personal data, or the
	// search proves nothing.
	have := map[string]bool{}
	for _, c := range out {
		have[strings.SplitN(c, ".", 2)[0]] = true
	}
	for _, want := range []string{"learners", "learner_identities", "sessions", "login_states", "policy_acceptances", "data_requests",
		"learning_activity", "erased_activity_totals", "audit_entries", "lifecycle_events", "role_grants", "programmes", "organisations"} {
		if !have[want] {
			t.Fatalf("the catalog query does not list table %s (got %v)", want, out)
		}
	}
	return out
}

// ersSearch looks for each term, case-insensitively and as a substring, in
// every column of every table (non-text columns cast to text), and returns
// "table.column: term ×rows" for each hit.
func ersSearch(t *testing.T, st *store.Store, terms ...string) []string {
	t.Helper()
	var hits []string
	for _, tc := range ersCatalog(t, st) {
		parts := strings.SplitN(tc, ".", 2)
		table, col := `"`+parts[0]+`"`, `"`+parts[1]+`"`
		q := `SELECT count(*) FROM ` + table + ` WHERE instr(lower(CAST(` + col + ` AS TEXT)), lower(?)) > 0`
		if st.Dialect() == migrations.Postgres {
			q = `SELECT count(*) FROM ` + table + ` WHERE strpos(lower(CAST(` + col + ` AS text)), lower($1)) > 0`
		}
		for _, term := range terms {
			var n int
			if err := st.SQL().QueryRow(q, term).Scan(&n); err != nil {
				t.Fatalf("search %s: %v", tc, err)
			}
			if n > 0 {
				hits = append(hits, fmt.Sprintf("%s: %q ×%d", tc, term, n))
			}
		}
	}
	return hits
}

func ersHitColumns(hits []string) map[string]bool {
	out := map[string]bool{}
	for _, h := range hits {
		out[strings.SplitN(h, ":", 2)[0]] = true
	}
	return out
}

// ---- a learner with every kind of data ----

const (
	ersEmail       = "zanzibar.quux@kent.gov.uk"
	ersGiven       = "Zanzibar"
	ersFamily      = "Quuxley"
	ersCorrected   = "Quuxley-Fairweather" // the family name after updateMyProfile
	ersFairweather = "Fairweather"
	// Some providers use the email as the subject: it must go too.
	ersSubject      = "Zanzibar.Quux@Kent.gov.uk"
	ersOnBehalfNote = "Paper consent form, reference 2026-117" // nothing personal (CTL-12 keeps it in the audit log)
	ersRequestText  = "Please delete everything you hold on Zanzibar Quuxley"
	ersRejectNote   = "Kept until the course audit closes"
)

var ersTerms = []string{ersEmail, ersGiven, ersFamily, ersFairweather}

type ersPerson struct {
	l       domain.Learner
	self    func() context.Context
	courses []domain.Course
	request domain.DataRequest
	t0      time.Time
}

// ersRichLearner builds a KCC learner holding every kind of data the service
// keeps: provisioned by a sign-in through KCC's provider (linked identity),
// sessions, decisions on every policy (one given on their behalf by an
// admin), learning activity on both courses of their group, a corrected
// profile, and an erasure request (reason naming them) that KCC's admin
// rejected. The learner ends ACTIVE with a live session.
func ersRichLearner(w *testkit.ConnectToLearn) ersPerson {
	t := w.T
	t.Helper()
	pn := ersPerson{courses: w.Courses(), t0: w.Clock.Now()}
	id := domain.Identity{Issuer: testkit.KCCIssuer, Subject: ersSubject, Email: "Zanzibar.Quux@KENT.gov.uk", EmailVerified: true,
		GivenName: ersGiven, FamilyName: ersFamily}
	l, err := w.Service.SignIn(context.Background(), id)
	if err != nil {
		t.Fatalf("provisioning sign-in: %v", err)
	}
	if lrnDeref(l.Email) != ersEmail || lrnDeref(l.GivenName) != ersGiven || lrnDeref(l.FamilyName) != ersFamily {
		t.Fatalf("provisioned: %+v", l)
	}
	if _, _, err := w.Service.StartSession(context.Background(), id); err != nil {
		t.Fatalf("session: %v", err)
	}
	pn.self = func() context.Context {
		return lifecycle.WithIdentity(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: ersSubject})
	}
	// Decisions: one accepted and one declined by the learner, the privacy
	// policy accepted on their behalf.
	if _, err := w.Service.AcceptPolicies(pn.self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Service.AcceptPolicies(pn.self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.OptionalV1.ID}, Decline: true}); err != nil {
		t.Fatal(err)
	}
	if got, err := w.Service.AcceptPolicies(w.As("kcc-admin"), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.PrivacyV1.ID},
		OnBehalfOf: l.ID, Note: ersOnBehalfNote}); err != nil || got.Status != domain.StatusActive {
		t.Fatalf("on behalf: %+v %v", got, err)
	}
	// Learning activity on both courses (ONC-3).
	w.Clock.Advance(24 * time.Hour)
	now := w.Clock.Now()
	done := now.Add(-2 * time.Hour)
	w.Activity(l.ID, pn.courses[0].ID, "COMPLETED", &done, &done, now)
	w.Activity(l.ID, pn.courses[1].ID, "IN_PROGRESS", nil, &now, now)
	w.LastActivity(l.ID, now)
	// A correction of their own profile (ONC-9).
	if got, err := w.Service.UpdateMyProfile(pn.self(), nil, lrnPtr(ersCorrected)); err != nil || lrnDeref(got.FamilyName) != ersCorrected {
		t.Fatalf("profile: %+v %v", got, err)
	}
	// An erasure request naming them, waiting for the controller, then
	// rejected: the request stays on record (ONC-5, CTL-11).
	yes, no := true, false
	if _, err := w.Service.UpdateProgrammeRules(w.As("kc"), w.Programme.ID, lifecycle.RuleSettingsPatch{ErasureNeedsApproval: &yes}, "fixture"); err != nil {
		t.Fatal(err)
	}
	req, err := w.Service.RequestErasure(pn.self(), ersRequestText)
	if err != nil || req.Status != domain.RequestAwaitingApproval {
		t.Fatalf("erasure request: %+v %v", req, err)
	}
	if pn.request, err = w.Service.RejectDataRequest(w.As("kcc-admin"), req.ID, ersRejectNote); err != nil {
		t.Fatalf("reject: %v", err)
	}
	if _, err := w.Service.UpdateProgrammeRules(w.As("kc"), w.Programme.ID, lifecycle.RuleSettingsPatch{ErasureNeedsApproval: &no}, "fixture"); err != nil {
		t.Fatal(err)
	}
	// A live session again (the request revoked the first). The token
	// carries no names here, so the corrected profile stays as it is.
	if _, _, err := w.Service.StartSession(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: ersSubject,
		Email: ersEmail, EmailVerified: true}); err != nil {
		t.Fatalf("second session: %v", err)
	}
	pn.l = w.Learner(l.ID)
	if pn.l.Status != domain.StatusActive || lrnDeref(pn.l.FamilyName) != ersCorrected {
		t.Fatalf("fixture: %+v", pn.l)
	}
	if n := testkit.Count(t, w.Store, `SELECT count(*) FROM sessions WHERE learner_id = ? AND revoked_at IS NULL`, l.ID); n != 1 {
		t.Fatalf("fixture: %d live sessions", n)
	}
	return pn
}

// ---- erasure (invariant 2) ----

func TestErasure_INV2_NothingLeftInAnyTableOrColumn(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		// Someone else, who keeps everything.
		bob, bobCtx := w.SignIn(testkit.KCCIssuer, "bob-1", "bob.other@kent.gov.uk", "Bob", "Other")
		if _, err := w.Service.AcceptPolicies(bobCtx(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID}}); err != nil {
			t.Fatal(err)
		}
		pn := ersRichLearner(w)
		w.Activity(bob.ID, pn.courses[0].ID, "ENROLLED", nil, nil, w.Clock.Now())

		// Control: before the erasure the search finds the person wherever
		// they are held, so an empty result afterwards means something.
		before := ersHitColumns(ersSearch(t, st, ersTerms...))
		for _, want := range []string{"learners.email", "learners.given_name", "learners.family_name", "learner_identities.subject",
			"sessions.subject", "data_requests.reason"} {
			if !before[want] {
				t.Fatalf("control: the search does not find the person in %s before erasure (found %v)", want, before)
			}
		}

		// CTL-8: under Connect to Learn a withdrawal erases at once.
		out, err := w.Service.WithdrawConsent(pn.self(), "I no longer need the courses")
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != domain.StatusErased {
			t.Fatalf("withdrawal did not erase at once: %+v", out)
		}

		if hits := ersSearch(t, st, ersTerms...); len(hits) > 0 {
			t.Errorf("invariant 2: after erasure the person's email or name is still in the database:\n  %s", strings.Join(hits, "\n  "))
		}

		// The tombstone: opaque ID, organisation, dates, reason, status ERASED.
		var (
			status, org, prog                       string
			email, given, family, reason, erasedAtS sql.NullString
		)
		if err := st.SQL().QueryRow(testkit.Rebind(st.Dialect(), `SELECT status, CAST(organisation_id AS text), CAST(programme_id AS text), email, given_name,
			family_name, removal_reason, CAST(erased_at AS text) FROM learners WHERE id = ?`), pn.l.ID).
			Scan(&status, &org, &prog, &email, &given, &family, &reason, &erasedAtS); err != nil {
			t.Fatal(err)
		}
		if status != "ERASED" || org != w.KCC.ID || prog != w.Programme.ID || email.Valid || given.Valid || family.Valid ||
			reason.String != string(domain.RemovalConsentWithdrawn) || !erasedAtS.Valid {
			t.Fatalf("tombstone row: status %s org %s programme %s email %v given %v family %v reason %v erased_at %v",
				status, org, prog, email, given, family, reason, erasedAtS)
		}
		tomb := w.Learner(pn.l.ID)
		if tomb.ErasedAt == nil || !tomb.ErasedAt.Equal(w.Clock.Now()) || !tomb.CreatedAt.Equal(pn.t0) || tomb.OrganisationID != w.KCC.ID ||
			tomb.Email != nil || tomb.GivenName != nil || tomb.FamilyName != nil || tomb.LastSignInAt != nil || tomb.LastActivityAt != nil {
			t.Fatalf("tombstone: %+v", tomb)
		}
		feed := w.Feed(pn.l.ID)
		last := feed[len(feed)-1]
		if last != testkit.Ev(domain.EventErased, tomb.Version) {
			t.Fatalf("the feed does not end with LEARNER_ERASED at the tombstone's version %d: %v", tomb.Version, feed)
		}
		for _, ev := range feed[:len(feed)-1] {
			if ev.Version >= last.Version || ev.Type == string(domain.EventErased) {
				t.Fatalf("LEARNER_ERASED is not the one event of the highest version: %v", feed)
			}
		}
		// Activity, sessions and linked identities are gone; decisions and
		// the request stay, without their free text.
		for q, want := range map[string]int{
			`SELECT count(*) FROM learning_activity WHERE learner_id = ?`:                                       0,
			`SELECT count(*) FROM sessions WHERE learner_id = ?`:                                                0,
			`SELECT count(*) FROM learner_identities WHERE learner_id = ?`:                                      0,
			`SELECT count(*) FROM policy_acceptances WHERE learner_id = ?`:                                      3,
			`SELECT count(*) FROM policy_acceptances WHERE learner_id = ? AND note <> ''`:                       0,
			`SELECT count(*) FROM data_requests WHERE learner_id = ?`:                                           1,
			`SELECT count(*) FROM data_requests WHERE learner_id = ? AND (reason <> '' OR decision_note <> '')`: 0,
		} {
			if n := testkit.Count(t, st, q, pn.l.ID); n != want {
				t.Errorf("%s: %d, want %d", q, n, want)
			}
		}
		// The person's identity no longer reaches the tombstone.
		if _, err := st.LearnerByIdentity(context.Background(), testkit.KCCIssuer, ersSubject); apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("the identity still resolves: %v", err)
		}
		// Exports of the tombstone hold nothing identifying either.
		doc, err := w.Service.PersonalDataExport(w.As("kcc-admin"), pn.l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if found := ersContains(t, doc, ersTerms...); len(found) > 0 {
			t.Errorf("invariant 2: the export of the erased learner holds %v", found)
		}
		// Bob keeps everything.
		b := w.Learner(bob.ID)
		if lrnDeref(b.Email) != "bob.other@kent.gov.uk" || b.Status != domain.StatusActive ||
			testkit.Count(t, st, `SELECT count(*) FROM learning_activity WHERE learner_id = ?`, bob.ID) != 1 ||
			testkit.Count(t, st, `SELECT count(*) FROM learner_identities WHERE learner_id = ?`, bob.ID) != 1 {
			t.Fatalf("another learner was touched: %+v", b)
		}
	})
}

// GEN-2: the acceptance and withdrawal history survives erasure as a
// pseudonymous trail: opaque learner and actor IDs, no name, no email.
func TestErasure_GEN2_HistorySurvivesPseudonymously(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		const email, given, family, subject = "ottoline.wrexhamby@kent.gov.uk", "Ottoline", "Wrexhamby", "kcc-88412"
		terms := []string{email, given, family}
		l, self := w.SignIn(testkit.KCCIssuer, subject, email, given, family)
		selfActor, adminActor := lifecycle.ActorIDFor(testkit.KCCIssuer, subject), lifecycle.ActorIDFor(testkit.TestIssuer, "kcc-admin")
		t0 := w.Clock.Now()
		if _, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID}}); err != nil {
			t.Fatal(err)
		}
		w.Clock.Advance(time.Hour)
		t1 := w.Clock.Now()
		if _, err := w.Service.AcceptPolicies(w.As("kcc-admin"), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.OptionalV1.ID},
			OnBehalfOf: l.ID, Note: "Telephone consent, call log 5512"}); err != nil {
			t.Fatal(err)
		}
		w.Clock.Advance(time.Hour)
		t2 := w.Clock.Now()
		if out, err := w.Service.WithdrawConsent(self(), "moving on"); err != nil || out.Status != domain.StatusErased {
			t.Fatalf("withdraw: %+v %v", out, err)
		}

		// The audit trail about the learner: every step, in order, under opaque IDs.
		var mine []domain.AuditEntry
		for _, a := range w.Audit(w.Programme.ID) {
			if a.TargetID == l.ID {
				mine = append(mine, a)
			}
		}
		type step struct {
			action, actor string
			at            time.Time
		}
		want := []step{
			{"learner.provision", selfActor, t0},
			{"policy.accept", selfActor, t0},
			{"learner.activate", selfActor, t0},
			{"policy.accept", adminActor, t1},
			{"learner.withdraw", selfActor, t2},
			{"learner.erase", selfActor, t2},
		}
		var got []step
		for _, a := range mine {
			got = append(got, step{a.Action, a.ActorID, a.OccurredAt})
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("GEN-2: audit trail about the learner\n got %v\nwant %v", got, want)
		}
		if mine[1].Details["givenBy"] != "SELF" || mine[3].Details["givenBy"] != "ADMIN" || mine[4].Details["rule"] != "CTL-8" ||
			mine[5].Reason != "CTL-8" {
			t.Errorf("audit details: %+v", mine)
		}
		for _, a := range mine {
			if a.TargetType != "learner" || !strings.HasPrefix(a.ActorID, "usr_") {
				t.Errorf("entry is not pseudonymous: %+v", a)
			}
		}
		// No entry of the programme's log names the person.
		for _, a := range w.Audit(w.Programme.ID) {
			if found := ersContains(t, a, terms...); len(found) > 0 {
				t.Errorf("GEN-2: audit entry %s holds %v: %+v", a.Action, found, a)
			}
		}
		// The decisions themselves stay: which version, when, given by whom.
		acc := accByVersion(w.Acceptances(l.ID))
		for vid, want := range map[string]struct {
			by, actor string
			at        time.Time
		}{w.SiteV1.ID: {"SELF", selfActor, t0}, w.PrivacyV1.ID: {"SELF", selfActor, t0}, w.OptionalV1.ID: {"ADMIN", adminActor, t1}} {
			a, ok := acc[vid]
			if !ok || a.Decision != domain.DecisionAccepted || a.GivenBy != want.by || a.ActorID != want.actor || !a.DecidedAt.Equal(want.at) || a.Note != "" {
				t.Errorf("GEN-2: decision on %s after erasure: %+v (present %v)", vid, a, ok)
			}
		}
		// And the controller can still produce the pseudonymous history.
		doc := ersJSON(t, func() map[string]any {
			d, err := w.Service.PersonalDataExport(w.As("kc"), l.ID)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}())
		decisions := ersList(t, doc, "policyDecisions")
		if len(decisions) != 3 {
			t.Fatalf("decisions in the export after erasure: %+v", decisions)
		}
		for _, d := range decisions {
			if d["versionLabel"] != "v1" || d["decision"] != "ACCEPTED" {
				t.Errorf("decision: %+v", d)
			}
		}
		if p := ersObj(t, doc, "profile"); p["email"] != nil || p["givenName"] != nil || p["status"] != "ERASED" {
			t.Errorf("profile after erasure: %+v", p)
		}
		if found := ersContains(t, doc, terms...); len(found) > 0 {
			t.Errorf("the export after erasure holds %v", found)
		}
	})
}

// GEN-3: erasures do not change the aggregate figures of reports already
// produced: learners ever, decisions and activity; only the status moves.
func TestErasure_GEN3_ReportFiguresUnchanged(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		cs := w.Courses()
		now := w.Clock.Now()
		type person struct {
			l    domain.Learner
			self func() context.Context
		}
		var ps []person
		for i, name := range []string{"anna", "bryony", "cleo", "dora"} {
			l, self := w.SignIn(testkit.KCCIssuer, name, name+"@kent.gov.uk", name, "Kent")
			if _, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID}}); err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 {
				if _, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.OptionalV1.ID}, Decline: true}); err != nil {
					t.Fatal(err)
				}
			}
			ps = append(ps, person{l, self})
		}
		w.Activity(ps[0].l.ID, cs[0].ID, "COMPLETED", &now, &now, now)
		w.Activity(ps[0].l.ID, cs[1].ID, "IN_PROGRESS", nil, &now, now)
		w.Activity(ps[1].l.ID, cs[0].ID, "COMPLETED", &now, &now, now)
		w.Activity(ps[2].l.ID, cs[1].ID, "ENROLLED", nil, nil, now)
		w.Activity(ps[3].l.ID, cs[0].ID, "IN_PROGRESS", nil, &now, now)
		med := w.CreateLearner(w.Medway.ID, "mo@medway.gov.uk", "G", "F")
		w.Activity(med.ID, cs[0].ID, "COMPLETED", &now, &now, now)

		report := func(orgID, who string) map[string]any {
			t.Helper()
			r, err := w.Service.OrganisationReport(w.As(who), orgID)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		before, medBefore := report(w.KCC.ID, "kcc-admin"), report(w.Medway.ID, "medway-admin")
		if before["learnersEver"] != int64(4) || !reflect.DeepEqual(before["byStatus"], map[string]int64{"ACTIVE": 4}) {
			t.Fatalf("fixture report: %+v", before)
		}
		wantActivity := map[string]int64{cs[0].ID + ":COMPLETED": 2, cs[1].ID + ":IN_PROGRESS": 1, cs[1].ID + ":ENROLLED": 1, cs[0].ID + ":IN_PROGRESS": 1}
		if !reflect.DeepEqual(before["activity"], wantActivity) {
			t.Fatalf("fixture activity: %+v", before["activity"])
		}

		// Three erasures by three routes: withdrawal (CTL-8), a request
		// (CTL-11) and a leaver whose grace ended (CTL-9, via the sweep).
		if out, err := w.Service.WithdrawConsent(ps[0].self(), ""); err != nil || out.Status != domain.StatusErased {
			t.Fatalf("withdraw: %+v %v", out, err)
		}
		if _, err := w.Service.RequestErasure(ps[1].self(), ""); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Service.MarkLeaver(w.As("kcc-admin"), ps[2].l.ID, "left the council"); err != nil {
			t.Fatal(err)
		}
		w.Clock.Advance(8 * 24 * time.Hour)
		if rep, err := w.Service.RunRetentionSweep(w.As("kc"), w.Programme.ID); err != nil || rep.Erased != 1 {
			t.Fatalf("sweep: %+v %v", rep, err)
		}
		for _, p := range ps[:3] {
			if got := w.Learner(p.l.ID); got.Status != domain.StatusErased {
				t.Fatalf("fixture: %s not erased: %+v", p.l.ID, got)
			}
		}

		after := report(w.KCC.ID, "kcc-admin")
		for _, k := range []string{"learnersEver", "policyDecisions", "activity"} {
			if !reflect.DeepEqual(before[k], after[k]) {
				t.Errorf("GEN-3: %s changed by erasure:\n before %v\n after  %v", k, before[k], after[k])
			}
		}
		if want := map[string]int64{"ACTIVE": 1, "ERASED": 3}; !reflect.DeepEqual(after["byStatus"], want) {
			t.Errorf("byStatus: %v, want %v", after["byStatus"], want)
		}
		if found := ersContains(t, after, "anna", "bryony", "cleo", "dora", "@kent.gov.uk"); len(found) > 0 {
			t.Errorf("ONC-7: the report names people: %v", found)
		}
		medAfter := report(w.Medway.ID, "medway-admin")
		for _, k := range []string{"learnersEver", "byStatus", "policyDecisions", "activity"} {
			if !reflect.DeepEqual(medBefore[k], medAfter[k]) {
				t.Errorf("another organisation's %s changed: %v -> %v", k, medBefore[k], medAfter[k])
			}
		}
	})
}

// GEN-3 under concurrency: the contract-end sweep and the learner's own
// withdrawal erase the same learner at once. Exactly one of them may erase,
// neither may fail on a lock cycle, and the learner's activity is folded into
// the anonymous totals exactly once.
//
// On PostgreSQL an uncommitted row of erased_activity_totals (held by a third
// transaction) holds both erasures at the same point until both are waiting;
// SQLite serialises writers, so there the two simply run one after the other.
func TestErasure_GEN3_ConcurrentErasuresOfOneLearnerFoldActivityOnce(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		cs := w.Courses()
		l, self := w.SignIn(testkit.KCCIssuer, "race", "race@kent.gov.uk", "Race", "Condition")
		now := w.Clock.Now()
		w.Activity(l.ID, cs[0].ID, "COMPLETED", &now, &now, now)
		end := now
		if _, err := w.Service.UpdateProgrammeRules(w.As("kc"), w.Programme.ID, lifecycle.RuleSettingsPatch{ContractEndsAt: &end}, "contract ended"); err != nil {
			t.Fatal(err)
		}
		// Resolve the learner's actor first: once erased, a fresh context of
		// theirs would provision a new learner.
		selfCtx := self()
		if a, err := w.Service.Actor(selfCtx); err != nil || a.Learner == nil || a.Learner.ID != l.ID {
			t.Fatalf("actor: %+v %v", a, err)
		}

		pg := st.Dialect() == migrations.Postgres
		var blocker *sql.Tx
		waiting := func() int { return 0 }
		if pg {
			var err error
			if blocker, err = st.SQL().BeginTx(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if _, err := blocker.Exec(`INSERT INTO erased_activity_totals (organisation_id, course_id, state, n) VALUES ($1, $2, 'COMPLETED', 0)`,
				w.KCC.ID, cs[0].ID); err != nil {
				t.Fatal(err)
			}
			waiting = func() int {
				return testkit.Count(t, st, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
			}
		}
		waitFor := func(n int) {
			for deadline := time.Now().Add(10 * time.Second); pg && waiting() < n && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
		}
		var (
			wg       sync.WaitGroup
			withdraw error
			sweep    lifecycle.SweepReport
			sweepErr error
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, withdraw = w.Service.WithdrawConsent(selfCtx, "")
		}()
		waitFor(1)
		go func() {
			defer wg.Done()
			sweep, sweepErr = w.Service.RunRetentionSweep(w.As("kc"), w.Programme.ID)
		}()
		waitFor(2)
		if pg {
			if n := waiting(); n < 2 {
				t.Logf("only %d sessions waiting before release; the interleaving may not be the intended one", n)
			}
			if err := blocker.Rollback(); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()

		if withdraw != nil && apperr.CodeOf(withdraw) != apperr.Conflict {
			t.Errorf("withdrawal failed: %v", withdraw)
		}
		if sweepErr != nil {
			t.Errorf("sweep failed: %v", sweepErr)
		}
		if got := w.Learner(l.ID); got.Status != domain.StatusErased {
			t.Fatalf("not erased: %+v", got)
		}
		if n := testkit.Count(t, st, `SELECT count(*) FROM lifecycle_events WHERE learner_id = ? AND type = 'LEARNER_ERASED'`, l.ID); n != 1 {
			t.Errorf("LEARNER_ERASED events: %d", n)
		}
		if n := testkit.Count(t, st, `SELECT count(*) FROM audit_entries WHERE target_id = ? AND action = 'learner.erase'`, l.ID); n != 1 {
			t.Errorf("learner.erase entries: %d", n)
		}
		n := testkit.Count(t, st, `SELECT CAST(coalesce(sum(n), 0) AS bigint) FROM erased_activity_totals WHERE organisation_id = ?`, w.KCC.ID)
		if n != 1 {
			t.Errorf("GEN-3: one activity row was folded into the anonymous totals %d times", n)
		}
		if sweepErr == nil && withdraw == nil && sweep.Erased != 0 {
			t.Errorf("the sweep reports erasing %d learners, but the withdrawal erased the only one", sweep.Erased)
		}
	})
}

func TestErasure_TwiceIsNoOp(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		cs := w.Courses()
		l, self := w.SignIn(testkit.KCCIssuer, "twice", "twice@kent.gov.uk", "Tobias", "Twiceover")
		if _, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID}}); err != nil {
			t.Fatal(err)
		}
		now := w.Clock.Now()
		w.Activity(l.ID, cs[0].ID, "COMPLETED", &now, &now, now)
		// Erasure waits for the controller (ONC-5-style): the withdrawal opens a request.
		yes := true
		if _, err := w.Service.UpdateProgrammeRules(w.As("kc"), w.Programme.ID, lifecycle.RuleSettingsPatch{ErasureNeedsApproval: &yes}, "test"); err != nil {
			t.Fatal(err)
		}
		if out, err := w.Service.WithdrawConsent(self(), ""); err != nil || out.Status != domain.StatusWithdrawn {
			t.Fatalf("withdraw: %+v %v", out, err)
		}
		reqs, _, err := w.Service.DataRequests(w.As("kcc-admin"), w.Programme.ID, nil, nil, 10, "")
		if err != nil || len(reqs) != 1 || reqs[0].Status != domain.RequestAwaitingApproval {
			t.Fatalf("requests: %+v %v", reqs, err)
		}
		// The contract ends before the controller decides: the sweep erases everyone (CTL-6).
		w.Clock.Advance(time.Hour)
		end := w.Clock.Now()
		if _, err := w.Service.UpdateProgrammeRules(w.As("kc"), w.Programme.ID, lifecycle.RuleSettingsPatch{ContractEndsAt: &end}, "contract ended"); err != nil {
			t.Fatal(err)
		}
		if rep, err := w.Service.RunRetentionSweep(w.As("kc"), w.Programme.ID); err != nil || rep.Erased != 1 {
			t.Fatalf("first erasure: %+v %v", rep, err)
		}
		type snap struct {
			learner domain.Learner
			feed    string
			erasing int
			audit   int
			totals  int
		}
		take := func() snap {
			stored := w.Learner(l.ID)
			stored.ContractEnded = false // not stored: the programme's contract, renewed below
			return snap{stored, fmt.Sprint(w.Feed(l.ID)),
				testkit.Count(t, st, `SELECT count(*) FROM audit_entries WHERE target_id = ? AND action = 'learner.erase'`, l.ID),
				testkit.Count(t, st, `SELECT count(*) FROM audit_entries`),
				testkit.Count(t, st, `SELECT CAST(coalesce(sum(n), 0) AS bigint) FROM erased_activity_totals`)}
		}
		first := take()
		if first.learner.Status != domain.StatusErased || first.erasing != 1 || first.totals != 1 {
			t.Fatalf("after the first erasure: %+v", first)
		}
		w.Clock.Advance(time.Hour)

		// The store: erasing an erased learner (even listed twice) is a no-op, not an error.
		done, err := st.EraseLearners(context.Background(), []string{l.ID, l.ID}, domain.BulkErase, w.Clock.Now(), nil)
		if err != nil || len(done) != 0 {
			t.Fatalf("second erasure in the store: %v %v", done, err)
		}
		if got := take(); !reflect.DeepEqual(got, first) {
			t.Fatalf("a second erasure changed something:\n before %+v\n after  %+v", first, got)
		}

		// The controller approves the request afterwards: it completes, and
		// its erasure finds nothing left to do.
		r, err := w.Service.ApproveDataRequest(w.As("kcc-admin"), reqs[0].ID, "approved")
		if err != nil || r.Status != domain.RequestCompleted {
			t.Fatalf("approval after erasure: %+v %v", r, err)
		}
		got := take()
		if !reflect.DeepEqual(got.learner, first.learner) || got.feed != first.feed || got.erasing != 1 || got.totals != 1 || got.audit != first.audit+1 {
			t.Fatalf("the approval's erasure was not a no-op (only its data_request.approve entry is new):\n before %+v\n after  %+v", first, got)
		}
		first = got

		// A second sweep: nothing to do.
		if rep, err := w.Service.RunRetentionSweep(w.As("kc"), w.Programme.ID); err != nil || rep.Erased != 0 {
			t.Fatalf("second sweep: %+v %v", rep, err)
		}
		if got := take(); !reflect.DeepEqual(got, first) {
			t.Fatalf("a second sweep changed something:\n before %+v\n after  %+v", first, got)
		}

		// Crash recovery: a request left APPROVED (not carried out) for a
		// learner who is already erased. The sweep completes it, erases
		// nothing, and its report says so. (A sweep after the contract end
		// stops after erasing everyone, so the programme is given a new
		// contract first.)
		if _, err := w.Service.UpdateProgrammeRules(w.As("kc"), w.Programme.ID, lifecycle.RuleSettingsPatch{ClearContractEnd: true}, "renewed"); err != nil {
			t.Fatal(err)
		}
		first.audit++
		if _, err := st.SQL().Exec(testkit.Rebind(st.Dialect(), `UPDATE data_requests SET status = 'APPROVED', completed_at = NULL WHERE id = ?`), reqs[0].ID); err != nil {
			t.Fatal(err)
		}
		rep, err := w.Service.RunRetentionSweep(w.As("kc"), w.Programme.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := st.GetDataRequest(context.Background(), reqs[0].ID, false); r.Status != domain.RequestCompleted {
			t.Errorf("the approved request was not completed: %+v", r)
		}
		if got := take(); !reflect.DeepEqual(got, first) {
			t.Fatalf("re-running an approved request changed the erased learner:\n before %+v\n after  %+v", first, got)
		}
		if rep.Erased != 0 {
			t.Errorf("the sweep reports %d learners erased, but the only one was erased before: the report counts attempts, not erasures", rep.Erased)
		}
	})
}

func TestErasure_RejoiningIsANewLearner(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		id := domain.Identity{Issuer: testkit.KCCIssuer, Subject: "ruth-77", Email: "ruthanne.q@kent.gov.uk", EmailVerified: true,
			GivenName: "Ruthanne", FamilyName: "Quillby"}
		old, err := w.Service.SignIn(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		self := lifecycle.WithIdentity(context.Background(), domain.Identity{Issuer: id.Issuer, Subject: id.Subject})
		if _, err := w.Service.AcceptPolicies(self, lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID}}); err != nil {
			t.Fatal(err)
		}
		if out, err := w.Service.WithdrawConsent(self, ""); err != nil || out.Status != domain.StatusErased {
			t.Fatalf("withdraw: %+v %v", out, err)
		}
		tomb := w.Learner(old.ID)

		// The same person signs in again through the same provider, later,
		// with a fresh token.
		w.Clock.Advance(30 * 24 * time.Hour)
		fresh := id
		fresh.IssuedAt = w.Clock.Now()
		again, err := w.Service.SignIn(context.Background(), fresh)
		if err != nil {
			t.Fatalf("re-joining: %v", err)
		}
		if again.ID == old.ID || again.Status != domain.StatusPendingAcceptance || again.AccessAllowed() || again.Version != 1 ||
			lrnDeref(again.Email) != "ruthanne.q@kent.gov.uk" || lrnDeref(again.GivenName) != "Ruthanne" || !again.CreatedAt.Equal(w.Clock.Now()) {
			t.Fatalf("re-joined learner: %+v (old %s)", again, old.ID)
		}
		w.WantFeed(again.ID, testkit.Ev(domain.EventProvisioned, 1))
		// Nothing of the erased learner carries over: no decisions, all compulsory policies pending.
		if as := w.Acceptances(again.ID); len(as) != 0 {
			t.Fatalf("decisions carried over: %+v", as)
		}
		if got := accPendingIDs(w.World, again); !lrnSameSet(got, []string{w.SiteV1.ID, w.PrivacyV1.ID}) {
			t.Fatalf("pending: %v", got)
		}
		// The tombstone stays a tombstone.
		if got := w.Learner(old.ID); !reflect.DeepEqual(got, tomb) {
			t.Fatalf("the tombstone changed:\n %+v\n %+v", tomb, got)
		}
		// The identity now belongs to the new learner.
		if l, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: id.Issuer, Subject: id.Subject}); err != nil || l.ID != again.ID {
			t.Fatalf("identity resolves to %+v (%v), want %s", l, err, again.ID)
		}
		if es := lrnEntries(w.Audit(w.Programme.ID), "learner.provision", again.ID); len(es) != 1 {
			t.Fatalf("provision audit: %+v", es)
		}
		// An admin adding an erased person again also makes a new learner.
		gone := w.CreateLearner(w.KCC.ID, "gone@kent.gov.uk", "G", "F")
		if _, err := w.Service.MarkLeaver(w.As("kcc-admin"), gone.ID, "left"); err != nil {
			t.Fatal(err)
		}
		w.Clock.Advance(8 * 24 * time.Hour)
		if rep, err := w.Service.RunRetentionSweep(w.As("kc"), w.Programme.ID); err != nil || rep.Erased != 1 {
			t.Fatalf("sweep: %+v %v", rep, err)
		}
		back := w.CreateLearner(w.KCC.ID, "gone@kent.gov.uk", "G", "F")
		if back.ID == gone.ID || back.Version != 1 {
			t.Fatalf("re-created: %+v", back)
		}
	})
}

// ---- the personal data export (ONC-10, CTL-11) ----

func TestExport_ONC10_ContainsEveryKindOfData(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		bob, bobCtx := w.SignIn(testkit.KCCIssuer, "bob-1", "bob.other@kent.gov.uk", "Bob", "Other")
		pn := ersRichLearner(w)

		mine, err := w.Service.MyData(pn.self())
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := w.Service.PersonalDataExport(w.As("kcc-admin"), pn.l.ID)
		if err != nil {
			t.Fatal(err)
		}
		for name, raw := range map[string]map[string]any{"myData": mine, "personalDataExport": theirs} {
			t.Run(name, func(t *testing.T) {
				doc := ersJSON(t, raw)
				if doc["format"] != "rollcall.personal-data/1" || doc["exportedAt"] == nil {
					t.Errorf("header: format %v exportedAt %v", doc["format"], doc["exportedAt"])
				}
				p := ersObj(t, doc, "profile")
				if p["id"] != pn.l.ID || p["email"] != ersEmail || p["givenName"] != ersGiven || p["familyName"] != ersCorrected ||
					p["status"] != "ACTIVE" || p["createdAt"] == nil || p["lastSignInAt"] == nil || p["lastActivityAt"] == nil {
					t.Errorf("profile: %+v", p)
				}
				if o := ersObj(t, doc, "organisation"); o["id"] != w.KCC.ID || o["name"] != "Kent County Council" {
					t.Errorf("organisation: %+v", o)
				}
				if g := ersObj(t, doc, "accessGroup"); g["id"] != w.KCCGroup || g["name"] == "" {
					t.Errorf("accessGroup: %+v", g)
				}
				if pr := ersObj(t, doc, "programme"); pr["id"] != w.Programme.ID {
					t.Errorf("programme: %+v", pr)
				}
				if r := ersObj(t, doc, "retention"); r["Rule"] == nil && r["rule"] == nil {
					t.Errorf("retention (GEN-1): %+v", r)
				}
				courses := map[string]string{}
				for _, c := range ersList(t, doc, "courses") {
					courses[fmt.Sprint(c["id"])] = fmt.Sprint(c["lmsCourseId"])
				}
				if len(courses) != 2 || courses[pn.courses[0].ID] != "safeguarding-101" || courses[pn.courses[1].ID] != "gdpr-201" {
					t.Errorf("courses: %v", courses)
				}
				decisions := map[string]map[string]any{}
				for _, d := range ersList(t, doc, "policyDecisions") {
					decisions[fmt.Sprint(d["versionId"])] = d
				}
				for vid, want := range map[string][4]string{ // policy, decision, givenBy, note
					w.SiteV1.ID:     {"Site policy", "ACCEPTED", "SELF", ""},
					w.OptionalV1.ID: {"Newsletter", "DECLINED", "SELF", ""},
					w.PrivacyV1.ID:  {"Privacy policy", "ACCEPTED", "ADMIN", ersOnBehalfNote},
				} {
					d := decisions[vid]
					if d == nil || d["policy"] != want[0] || d["versionLabel"] != "v1" || d["decision"] != want[1] || d["givenBy"] != want[2] ||
						d["note"] != want[3] || d["decidedAt"] == nil {
						t.Errorf("decision on %s: %+v, want %v", want[0], d, want)
					}
				}
				if len(decisions) != 3 {
					t.Errorf("decisions: %d", len(decisions))
				}
				activity := map[string]map[string]any{}
				for _, a := range ersList(t, doc, "learningActivity") {
					activity[fmt.Sprint(a["courseId"])] = a
				}
				if a := activity[pn.courses[0].ID]; a == nil || a["state"] != "COMPLETED" || a["completedAt"] == nil || a["lastAccessAt"] == nil {
					t.Errorf("activity on %s: %+v", pn.courses[0].LMSCourseID, a)
				}
				if a := activity[pn.courses[1].ID]; a == nil || a["state"] != "IN_PROGRESS" || a["completedAt"] != nil || a["lastAccessAt"] == nil {
					t.Errorf("activity on %s: %+v", pn.courses[1].LMSCourseID, a)
				}
				reqs := ersList(t, doc, "dataRequests")
				if len(reqs) != 1 || reqs[0]["id"] != pn.request.ID || reqs[0]["kind"] != "ERASURE" || reqs[0]["origin"] != "ERASURE_REQUESTED" ||
					reqs[0]["status"] != "REJECTED" || reqs[0]["reason"] != ersRequestText || reqs[0]["decisionNote"] != ersRejectNote ||
					reqs[0]["requestedAt"] == nil || reqs[0]["decidedAt"] == nil {
					t.Errorf("dataRequests: %+v", reqs)
				}
				signIns := ersList(t, doc, "signIns")
				if len(signIns) != 1 || signIns[0]["issuer"] != testkit.KCCIssuer || signIns[0]["subject"] != ersSubject || signIns[0]["linkedAt"] == nil {
					t.Errorf("signIns: %+v", signIns)
				}
				actions := map[string]int{}
				for _, a := range ersList(t, doc, "auditEntries") {
					actions[fmt.Sprint(a["action"])]++
					if a["actorId"] == nil || a["occurredAt"] == nil {
						t.Errorf("audit entry without actor or time: %+v", a)
					}
				}
				for _, want := range []string{"learner.provision", "policy.accept", "policy.decline", "learner.activate", "learner.profile.update",
					"learner.erasure.request", "data_request.open", "data_request.reject"} {
					if actions[want] == 0 {
						t.Errorf("auditEntries lack %s: %v", want, actions)
					}
				}
				// One person's document: nothing of Bob.
				if found := ersContains(t, doc, "bob.other", bob.ID); len(found) > 0 {
					t.Errorf("the export holds another learner's data: %v", found)
				}
			})
		}
		// Producing the export is itself audited, with who asked.
		exports := lrnEntries(w.Audit(w.Programme.ID), "learner.export", pn.l.ID)
		if len(exports) != 2 || exports[0].ActorID != lifecycle.ActorIDFor(testkit.KCCIssuer, ersSubject) ||
			exports[1].ActorID != lifecycle.ActorIDFor(testkit.TestIssuer, "kcc-admin") || exports[1].Details["rule"] != "ONC-10" {
			t.Errorf("export audit: %+v", exports)
		}
		// CTL-10: nobody else's export, and no one else gets this one.
		_, err = w.Service.PersonalDataExport(w.As("medway-admin"), pn.l.ID)
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.PersonalDataExport(bobCtx(), pn.l.ID)
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.MyData(w.As("kc")) // an admin without a learner record
		wantCode(t, err, apperr.Forbidden)
		if _, err := w.Service.PersonalDataExport(w.As("kc"), pn.l.ID); err != nil {
			t.Errorf("a programme admin produces the export: %v", err)
		}
		if n := len(lrnEntries(w.Audit(w.Programme.ID), "learner.export", pn.l.ID)); n != 3 {
			t.Errorf("refused exports were audited, or the allowed one was not: %d", n)
		}
		bobDoc, err := w.Service.MyData(bobCtx())
		if err != nil {
			t.Fatal(err)
		}
		if found := ersContains(t, bobDoc, ersTerms...); len(found) > 0 {
			t.Errorf("Bob's export holds %v", found)
		}
	})
}

// ersEraseOnRead runs erase once, right after the service has read the
// learners a call is about (target among them) and before the call writes.
type ersEraseOnRead struct {
	*store.Store
	target string
	once   sync.Once
	erase  func() error
}

func (s *ersEraseOnRead) LearnersByIDs(ctx context.Context, ids []string) ([]domain.Learner, error) {
	ls, err := s.Store.LearnersByIDs(ctx, ids)
	for _, id := range ids {
		if err == nil && id == s.target {
			s.once.Do(func() { err = s.erase() })
		}
	}
	return ls, err
}

// Invariant 2, ONC-3: activity the LMS reports for a learner who is erased
// at that moment is not kept: no activity rows and no last activity on the
// tombstone, whichever of the two commits first.
func TestErasure_INV2_ActivityReportedAsTheLearnerIsErasedIsNotKept(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		cs := w.Courses()
		w.Grant("lms", domain.RoleLMS, w.Programme.ID, nil, nil)
		l, _ := w.SignIn(testkit.KCCIssuer, "late", "late.report@kent.gov.uk", "Late", "Report")
		other, _ := w.SignIn(testkit.KCCIssuer, "ontime", "on.time@kent.gov.uk", "On", "Time")
		racy := &ersEraseOnRead{Store: st, target: l.ID, erase: func() error {
			// An admin records the learner's withdrawal: erased at once (CTL-8).
			_, err := w.Service.WithdrawConsentOnBehalf(w.As("kcc-admin"), l.ID, "letter received")
			return err
		}}
		svc := w.NewService(racy, nil)
		at := w.Clock.Now().Add(-time.Minute)
		rows := []domain.ActivityRow{
			{LearnerID: other.ID, LastAccessAt: &at, Enrolments: []domain.ActivityEnrolment{{LMSCourseID: cs[0].LMSCourseID, State: "IN_PROGRESS"}}},
			{LearnerID: l.ID, LastAccessAt: &at, Enrolments: []domain.ActivityEnrolment{{LMSCourseID: cs[0].LMSCourseID, State: "COMPLETED", CompletedAt: &at}}},
		}
		res, err := svc.RecordLearningActivity(w.As("lms"), w.Programme.ID, rows)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Learner(l.ID); got.Status != domain.StatusErased {
			t.Fatalf("fixture: %+v", got)
		}
		if n := testkit.Count(t, st, `SELECT count(*) FROM learning_activity WHERE learner_id = ?`, l.ID); n != 0 {
			t.Errorf("invariant 2: %d activity rows were written for the erased learner (results %+v)", n, res)
		}
		if n := testkit.Count(t, st, `SELECT count(*) FROM learners WHERE id = ? AND last_activity_at IS NOT NULL`, l.ID); n != 0 {
			t.Errorf("invariant 2: the tombstone got a last activity time (results %+v)", res)
		}
		// The other learner's report applies as usual.
		if n := testkit.Count(t, st, `SELECT count(*) FROM learning_activity WHERE learner_id = ?`, other.ID); n != 1 {
			t.Errorf("the other learner's activity: %d rows", n)
		}
	})
}

// GEN-2 with CTL-12, through the lifecycle's erasure: the free-text reason an
// admin gave about a learner is blanked by that learner's erasure, in its
// transaction, and by nothing else. Before the erasure the database refuses
// to blank it; after, it refuses to write it again, to blank another
// learner's, or to empty the table (TRUNCATE on PostgreSQL; on SQLite, which
// has none, DELETE without WHERE).
func TestErasure_GEN2_ReasonBlankedOnlyByTheLearnersErasure(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		ann, _ := w.Active("ann")
		bob, _ := w.Active("bob")
		const annReason, bobReason = "Ann Quillfeather left for Medway", "Bob Tarrantine left for Medway"
		for id, reason := range map[string]string{ann.ID: annReason, bob.ID: bobReason} {
			if _, err := w.Service.MarkLeaver(w.As("kcc-admin"), id, reason); err != nil {
				t.Fatal(err)
			}
		}
		reasons := func(id string) map[string]string {
			t.Helper()
			out := map[string]string{}
			for _, e := range lvAbout(w.Audit(w.Programme.ID), id) {
				if e.Reason != "" {
					out[e.Action] = e.Reason
				}
			}
			return out
		}
		if got := reasons(ann.ID); got["learner.leaver"] != annReason {
			t.Fatalf("fixture: reasons about Ann %v", got)
		}
		refused := func(when, q string, args ...any) {
			t.Helper()
			before := testkit.Count(t, st, `SELECT count(*) FROM audit_entries`)
			if _, err := st.SQL().Exec(testkit.Rebind(st.Dialect(), q), args...); err == nil {
				t.Errorf("%s: %s succeeded", when, q)
			}
			if after := testkit.Count(t, st, `SELECT count(*) FROM audit_entries`); after != before {
				t.Errorf("%s: %s changed the log: %d -> %d entries", when, q, before, after)
			}
		}
		emptyTable := `DELETE FROM audit_entries`
		if st.Dialect() == migrations.Postgres {
			emptyTable = `TRUNCATE audit_entries`
		}

		// Not erased: Ann's reason cannot be blanked, nor the log emptied.
		refused("before the erasure", `UPDATE audit_entries SET reason = '' WHERE target_id = ?`, ann.ID)
		refused("before the erasure", emptyTable)
		if got := reasons(ann.ID); got["learner.leaver"] != annReason {
			t.Fatalf("a refused blanking changed Ann's reason: %v", got)
		}

		// Ann's erasure (her consent withdrawn on her behalf: erased at once
		// under CTL-8) blanks every reason about her.
		if out, err := w.Service.WithdrawConsentOnBehalf(w.As("kcc-admin"), ann.ID, "Ann Quillfeather phoned to withdraw"); err != nil ||
			out.Status != domain.StatusErased {
			t.Fatalf("withdraw on behalf: %+v %v", out, err)
		}
		got := reasons(ann.ID)
		// Only the erasure's own entry, written after the scrub, has a
		// reason: the rule, which names nobody.
		if len(got) != 1 || got["learner.erase"] != "CTL-8" {
			t.Fatalf("GEN-2: reasons about Ann after her erasure: %v", got)
		}
		if n := len(lvAbout(w.Audit(w.Programme.ID), ann.ID)); n < 4 {
			t.Fatalf("GEN-2: entries about Ann after her erasure: %d (the entries stay, only their reasons go)", n)
		}
		// Bob is not erased: his reason stays and still cannot be blanked.
		if got := reasons(bob.ID); got["learner.leaver"] != bobReason {
			t.Fatalf("Ann's erasure changed Bob's reason: %v", got)
		}
		refused("after Ann's erasure", `UPDATE audit_entries SET reason = '' WHERE target_id = ?`, bob.ID)
		// Ann's blanked reasons cannot be written again, nor the log emptied.
		refused("after Ann's erasure", `UPDATE audit_entries SET reason = 'restored' WHERE target_id = ?`, ann.ID)
		refused("after Ann's erasure", emptyTable)
		if found := ersContains(t, w.Audit(w.Programme.ID), "Quillfeather"); len(found) > 0 {
			t.Errorf("the log still names Ann: %v", found)
		}
		if got := reasons(bob.ID); got["learner.leaver"] != bobReason {
			t.Fatalf("Bob's reason after the refused changes: %v", got)
		}
	})
}

// CTL-8: a token issued before the person's erasure does not bring them
// back: the first sign-in reads the learner and the identity's erasure in
// one statement (store.SignInLearner), and refuses with
// ERASED_SIGN_IN_AGAIN, writing nothing; a token issued after it makes a
// new learner (TestErasure_RejoiningIsANewLearner).
func TestSignIn_CTL8_ATokenFromBeforeTheErasureDoesNotBringThePersonBack(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		w.Clock.Advance(time.Hour)
		id := domain.Identity{Issuer: testkit.KCCIssuer, Subject: "tess-5", Email: "tess.r@kent.gov.uk", EmailVerified: true,
			GivenName: "Tess", FamilyName: "Rowe", IssuedAt: w.Clock.Now().Add(-time.Minute)}
		old, err := w.Service.SignIn(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		self := lifecycle.WithIdentity(context.Background(), domain.Identity{Issuer: id.Issuer, Subject: id.Subject})
		if out, err := w.Service.WithdrawConsent(self, ""); err != nil || out.Status != domain.StatusErased {
			t.Fatalf("withdraw: %+v %v", out, err)
		}
		events := func() (n int) {
			if err := st.SQL().QueryRow(`SELECT count(*) FROM lifecycle_events`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := events()
		w.Clock.Advance(time.Minute)
		_, err = w.Service.SignIn(context.Background(), id)
		if ae, ok := apperr.As(err); !ok || ae.Code != apperr.Forbidden || ae.Reason != "ERASED_SIGN_IN_AGAIN" {
			t.Fatalf("a token from before the erasure: %v, want FORBIDDEN ERASED_SIGN_IN_AGAIN", err)
		}
		if _, err := st.LearnerByEmail(context.Background(), "tess.r@kent.gov.uk"); apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("a learner was written for the refused token: %v", err)
		}
		if n := events(); n != before {
			t.Fatalf("the feed grew by %d events for a refused sign-in", n-before)
		}
		if got := w.Learner(old.ID); got.Status != domain.StatusErased {
			t.Fatalf("the tombstone: %+v", got)
		}
	})
}
