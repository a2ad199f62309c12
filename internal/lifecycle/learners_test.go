package lifecycle_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// ---- reading helpers shared by the test files ----

func lrnLearnerRows(t *testing.T, st *store.Store, programmeID string) int {
	t.Helper()
	return testkit.Count(t, st, `SELECT count(*) FROM learners WHERE programme_id = ?`, programmeID)
}

func lrnEventRows(t *testing.T, st *store.Store, programmeID string) int {
	t.Helper()
	return testkit.Count(t, st, `SELECT count(*) FROM lifecycle_events WHERE programme_id = ?`, programmeID)
}

// lrnEntries returns the audit entries of one action (and target, if given).
func lrnEntries(es []domain.AuditEntry, action, target string) []domain.AuditEntry {
	var out []domain.AuditEntry
	for _, e := range es {
		if e.Action == action && (target == "" || e.TargetID == target) {
			out = append(out, e)
		}
	}
	return out
}

func lrnAppErr(t *testing.T, err error) *apperr.Error {
	t.Helper()
	ae, ok := apperr.As(err)
	if !ok {
		t.Fatalf("want an *apperr.Error, got %T %v", err, err)
	}
	return ae
}

func lrnDeref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// ---- createLearner ----

func TestCreateLearner_ONC4_OrganisationAdminCreatesOwnStaff(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		l, err := w.Service.CreateLearner(w.As("kcc-admin"), w.KCC.ID, lifecycle.LearnerInput{
			Email: "  Bob.Smith@KENT.gov.uk. ", GivenName: " Bob ", FamilyName: "Smith"})
		if err != nil {
			t.Fatal(err)
		}
		if lrnDeref(l.Email) != "bob.smith@kent.gov.uk" || lrnDeref(l.GivenName) != "Bob" || lrnDeref(l.FamilyName) != "Smith" ||
			l.OrganisationID != w.KCC.ID || l.ProgrammeID != w.Programme.ID || lrnDeref(l.AccessGroupID) != w.KCCGroup ||
			l.Status != domain.StatusPendingAcceptance || l.AccessAllowed() || l.Version != 1 {
			t.Fatalf("created learner: %+v", l)
		}
		got, err := w.Service.Learner(w.As("kcc-admin"), l.ID)
		if err != nil || lrnDeref(got.Email) != "bob.smith@kent.gov.uk" || got.Version != 1 {
			t.Fatalf("re-read: %+v %v", got, err)
		}
		w.WantFeed(l.ID, testkit.Ev(domain.EventProvisioned, 1))
		es := lrnEntries(w.Audit(w.Programme.ID), "learner.create", l.ID)
		if len(es) != 1 || es[0].ActorID != lifecycle.ActorIDFor(testkit.TestIssuer, "kcc-admin") || es[0].Details["organisationId"] != w.KCC.ID {
			t.Fatalf("audit: %+v", es)
		}

		// The same address again, in any spelling, is a conflict and writes nothing.
		_, err = w.Service.CreateLearner(w.As("kcc-admin"), w.KCC.ID, lifecycle.LearnerInput{Email: "BOB.SMITH@kent.gov.uk", GivenName: "B", FamilyName: "S"})
		wantCode(t, err, apperr.Conflict)
		if ae := lrnAppErr(t, err); ae.Field != "email" {
			t.Errorf("conflict field: %+v", ae)
		}
		// Names are required, one line, at most 100 characters.
		for _, in := range []lifecycle.LearnerInput{
			{Email: "c@kent.gov.uk", GivenName: " ", FamilyName: "X"},
			{Email: "c@kent.gov.uk", GivenName: "C", FamilyName: ""},
			{Email: "c@kent.gov.uk", GivenName: "C\nD", FamilyName: "X"},
			{Email: "c@kent.gov.uk", GivenName: strings.Repeat("c", 101), FamilyName: "X"},
			{Email: "c@kent.gov.uk", GivenName: "C", FamilyName: "X\x00"},
		} {
			_, err := w.Service.CreateLearner(w.As("kcc-admin"), w.KCC.ID, in)
			wantCode(t, err, apperr.BadUserInput)
		}
		// An access group of another organisation is refused.
		_, err = w.Service.CreateLearner(w.As("kcc-admin"), w.KCC.ID, lifecycle.LearnerInput{Email: "c@kent.gov.uk", GivenName: "C", FamilyName: "X",
			AccessGroupID: &w.MedwayGroup})
		wantCode(t, err, apperr.BadUserInput)
		// Medway's admin cannot see KCC, so cannot add to it (CTL-10).
		_, err = w.Service.CreateLearner(w.As("medway-admin"), w.KCC.ID, lifecycle.LearnerInput{Email: "c@kent.gov.uk", GivenName: "C", FamilyName: "X"})
		wantCode(t, err, apperr.NotFound)
		// A stranger is not authenticated as anything that may manage.
		_, err = w.Service.CreateLearner(context.Background(), w.KCC.ID, lifecycle.LearnerInput{Email: "c@kent.gov.uk", GivenName: "C", FamilyName: "X"})
		wantCode(t, err, apperr.Unauthenticated)

		if n := lrnLearnerRows(t, st, w.Programme.ID); n != 1 {
			t.Fatalf("refused creations wrote learners: %d rows", n)
		}
		if n := lrnEventRows(t, st, w.Programme.ID); n != 1 {
			t.Fatalf("refused creations wrote feed rows: %d", n)
		}
		if n := countActions(w.Audit(w.Programme.ID), "learner.create"); n != 1 {
			t.Fatalf("refused creations audited: %d", n)
		}
	})
}

func TestCreateLearner_CTL3_BadEmailsRefusedNothingWritten(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		// A partner of another programme: its domain is not KCC's either.
		onc := w.OnclickProgramme("Onclick", "WSCC")
		w.Admit(onc.ID, "West Sussex County Council", "westsussex.gov.uk")
		feedBefore := lrnEventRows(t, st, w.Programme.ID)
		longLocal := strings.Repeat("a", 65)
		// 64 + 1 + 200 octets: each part within its own limit, the whole over 254.
		longDomain := strings.Repeat("x", 62) + "." + strings.Repeat("y", 62) + "." + strings.Repeat("z", 62) + ".kent.gov.uk"
		if len(longDomain) != 200 {
			t.Fatalf("bad fixture: %d", len(longDomain))
		}
		cases := []struct {
			name, email, reason string
		}{
			{"empty", "   ", "EMAIL_EMPTY"},
			{"display name", "Bob Smith <bob@kent.gov.uk>", "EMAIL_DISPLAY_NAME"},
			{"angle brackets only", "<bob@kent.gov.uk>", "EMAIL_DISPLAY_NAME"},
			{"quoted local part", `"bob"@kent.gov.uk`, "EMAIL_QUOTED"},
			{"quoted local part with @", `"bob@medway.gov.uk"@kent.gov.uk`, "EMAIL_QUOTED"},
			{"two @", "bob@evil.example@kent.gov.uk", "EMAIL_SYNTAX"},
			{"three @", "a@b@kent.gov.uk@x", "EMAIL_SYNTAX"},
			{"comment", "bob(admin)@kent.gov.uk", "EMAIL_SYNTAX"},
			{"internal space", "bob smith@kent.gov.uk", "EMAIL_SYNTAX"},
			{"zero-width space in domain", "bob@kent\u200b.gov.uk", "EMAIL_SYNTAX"},
			{"no local part", "@kent.gov.uk", "EMAIL_SYNTAX"},
			{"IPv4 literal", "bob@[10.0.0.1]", "DOMAIN_IP_LITERAL"},
			{"IPv6 literal", "bob@[IPv6:::1]", "DOMAIN_IP_LITERAL"},
			{"bare IP", "bob@192.168.1.10", "DOMAIN_IP_LITERAL"},
			{"lookalike suffix", "bob@kent.gov.uk.evil.com", "DOMAIN_NOT_ELIGIBLE"},
			{"lookalike prefix", "bob@evilkent.gov.uk", "DOMAIN_NOT_ELIGIBLE"},
			{"lookalike subdomain (rule is exact)", "bob@hr.kent.gov.uk", "DOMAIN_NOT_ELIGIBLE"},
			{"Cyrillic e confusable", "bob@k\u0435nt.gov.uk", "DOMAIN_NOT_ELIGIBLE"},
			{"Greek omicron confusable", "bob@medway.g\u03bfv.uk", "DOMAIN_NOT_ELIGIBLE"},
			{"full-width letters", "bob@\uff4b\uff45\uff4e\uff54.gov.uk", "DOMAIN_INVALID"},
			{"public suffix", "bob@gov.uk", "DOMAIN_PUBLIC_SUFFIX"},
			{"webmail", "bob@gmail.com", "DOMAIN_WEBMAIL"},
			{"single label", "bob@kent", "DOMAIN_SINGLE_LABEL"},
			{"local part over 64", longLocal + "@kent.gov.uk", "EMAIL_TOO_LONG"},
			{"address over 254", strings.Repeat("b", 64) + "@" + longDomain, "EMAIL_TOO_LONG"},
			{"kilobytes of input", strings.Repeat("x", 5000) + "@kent.gov.uk", "EMAIL_TOO_LONG"},
			{"another organisation's domain", "bob@medway.gov.uk", "DOMAIN_NOT_OWNED"},
			{"another programme's domain", "bob@westsussex.gov.uk", "DOMAIN_NOT_OWNED"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := w.Service.CreateLearner(w.As("kcc-admin"), w.KCC.ID, lifecycle.LearnerInput{Email: c.email, GivenName: "Bob", FamilyName: "Smith"})
				wantCode(t, err, apperr.BadUserInput)
				ae := lrnAppErr(t, err)
				if ae.Reason != c.reason || ae.Field != "email" || ae.Rule != "CTL-3" {
					t.Errorf("%q: want reason %s field email rule CTL-3, got reason %q field %q rule %q (%s)",
						c.email, c.reason, ae.Reason, ae.Field, ae.Rule, ae.Message)
				}
				if len(ae.Message) > 300 {
					t.Errorf("message echoes the hostile input at length: %d bytes", len(ae.Message))
				}
			})
		}
		if n := testkit.Count(t, st, `SELECT count(*) FROM learners`); n != 0 {
			t.Fatalf("refused emails wrote %d learner rows", n)
		}
		if n := lrnEventRows(t, st, w.Programme.ID); n != feedBefore {
			t.Fatalf("refused emails wrote feed rows: %d -> %d", feedBefore, n)
		}
		if n := countActions(w.Audit(w.Programme.ID), "learner.create"); n != 0 {
			t.Fatalf("refused emails audited: %d", n)
		}
	})
}

// ---- updateLearner ----

func TestUpdateLearner_MoveToOtherOrganisationIsAudited(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		l := w.CreateLearner(w.KCC.ID, "alice@kent.gov.uk", "Alice", "Jones")
		moved, err := w.Service.UpdateLearner(w.As("kc"), l.ID, lifecycle.LearnerUpdate{Email: lrnPtr(" Alice@Medway.GOV.uk"), Reason: "transferred to Medway"})
		if err != nil {
			t.Fatal(err)
		}
		if moved.OrganisationID != w.Medway.ID || lrnDeref(moved.AccessGroupID) != w.MedwayGroup ||
			lrnDeref(moved.Email) != "alice@medway.gov.uk" || moved.Version != 3 || moved.Status != domain.StatusPendingAcceptance {
			t.Fatalf("moved: %+v group %s", moved, lrnDeref(moved.AccessGroupID))
		}
		reread, err := w.Service.Learner(w.Sys, l.ID)
		if err != nil || reread.OrganisationID != w.Medway.ID || lrnDeref(reread.AccessGroupID) != w.MedwayGroup || reread.Version != 3 {
			t.Fatalf("stored: %+v %v", reread, err)
		}
		w.WantFeed(l.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventGroupChanged, 3))
		es := w.Audit(w.Programme.ID)
		mv := lrnEntries(es, "learner.move", l.ID)
		if len(mv) != 1 {
			t.Fatalf("want one learner.move entry, got %+v", lrnEntries(es, "", l.ID))
		}
		if mv[0].Reason != "transferred to Medway" || mv[0].ActorID != lifecycle.ActorIDFor(testkit.TestIssuer, "kc") ||
			mv[0].Details["movedFrom"] != w.KCC.ID || mv[0].Details["movedTo"] != w.Medway.ID || mv[0].Details["accessGroupId"] != w.MedwayGroup {
			t.Fatalf("move entry: %+v", mv[0])
		}
		if n := len(lrnEntries(es, "learner.update", l.ID)); n != 0 {
			t.Fatalf("a move is audited as a move, not an update: %d updates", n)
		}
		// The learner now belongs to Medway: its admin sees them, KCC's does not (CTL-10).
		if _, err := w.Service.Learner(w.As("medway-admin"), l.ID); err != nil {
			t.Fatalf("Medway admin reads the moved learner: %v", err)
		}
		_, err = w.Service.Learner(w.As("kcc-admin"), l.ID)
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.UpdateLearner(w.As("kcc-admin"), l.ID, lifecycle.LearnerUpdate{GivenName: lrnPtr("A")})
		wantCode(t, err, apperr.NotFound)
	})
}

func TestUpdateLearner_ONC4_CorrectionsAreValidatedVersionedAndAudited(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		onc := w.OnclickProgramme("Onclick", "WSCC")
		w.Admit(onc.ID, "West Sussex County Council", "westsussex.gov.uk")
		l := w.CreateLearner(w.KCC.ID, "alice@kent.gov.uk", "Alice", "Jones")
		w.CreateLearner(w.KCC.ID, "carol@kent.gov.uk", "Carol", "King")
		kccAdmin := w.As("kcc-admin")

		// A name correction: one LEARNER_UPDATED, learner.update with the reason.
		got, err := w.Service.UpdateLearner(kccAdmin, l.ID, lifecycle.LearnerUpdate{FamilyName: lrnPtr(" Jones-Smith "), Reason: "married"})
		if err != nil || lrnDeref(got.FamilyName) != "Jones-Smith" || lrnDeref(got.GivenName) != "Alice" || got.Version != 2 ||
			lrnDeref(got.AccessGroupID) != w.KCCGroup {
			t.Fatalf("name correction: %+v %v", got, err)
		}
		w.WantFeed(l.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2))
		if es := lrnEntries(w.Audit(w.Programme.ID), "learner.update", l.ID); len(es) != 1 || es[0].Reason != "married" {
			t.Fatalf("audit: %+v", es)
		}

		// The same email in another spelling changes nothing and writes nothing.
		got, err = w.Service.UpdateLearner(kccAdmin, l.ID, lifecycle.LearnerUpdate{Email: lrnPtr("ALICE@kent.gov.uk")})
		if err != nil || got.Version != 2 {
			t.Fatalf("no-op update: %+v %v", got, err)
		}

		// Refused, each writing nothing.
		refusals := []struct {
			name   string
			ctx    context.Context
			in     lifecycle.LearnerUpdate
			code   apperr.Code
			reason string
		}{
			{"other programme's domain", kccAdmin, lifecycle.LearnerUpdate{Email: lrnPtr("alice@westsussex.gov.uk")}, apperr.BadUserInput, "DOMAIN_NOT_ELIGIBLE"},
			{"nobody's domain", kccAdmin, lifecycle.LearnerUpdate{Email: lrnPtr("alice@kent.gov.uk.evil.com")}, apperr.BadUserInput, "DOMAIN_NOT_ELIGIBLE"},
			{"display name", kccAdmin, lifecycle.LearnerUpdate{Email: lrnPtr("Alice <alice@kent.gov.uk>")}, apperr.BadUserInput, "EMAIL_DISPLAY_NAME"},
			{"another learner's email", kccAdmin, lifecycle.LearnerUpdate{Email: lrnPtr("Carol@kent.gov.uk")}, apperr.Conflict, ""},
			{"empty name", kccAdmin, lifecycle.LearnerUpdate{GivenName: lrnPtr("  ")}, apperr.BadUserInput, ""},
			{"another organisation's group", kccAdmin, lifecycle.LearnerUpdate{AccessGroupID: &w.MedwayGroup}, apperr.BadUserInput, ""},
			{"malformed group", kccAdmin, lifecycle.LearnerUpdate{AccessGroupID: lrnPtr("nope")}, apperr.BadUserInput, ""},
			{"reason too long", kccAdmin, lifecycle.LearnerUpdate{GivenName: lrnPtr("A"), Reason: strings.Repeat("r", 1001)}, apperr.BadUserInput, ""},
			{"other organisation's admin", w.As("medway-admin"), lifecycle.LearnerUpdate{GivenName: lrnPtr("A")}, apperr.NotFound, ""},
		}
		for _, r := range refusals {
			_, err := w.Service.UpdateLearner(r.ctx, l.ID, r.in)
			if apperr.CodeOf(err) != r.code {
				t.Errorf("%s: want %s, got %v", r.name, r.code, err)
				continue
			}
			if r.reason != "" {
				if ae := lrnAppErr(t, err); ae.Reason != r.reason || ae.Field != "email" {
					t.Errorf("%s: want reason %s on email, got %+v", r.name, r.reason, ae)
				}
			}
		}
		_, err = w.Service.UpdateLearner(kccAdmin, "00000000-0000-0000-0000-000000000000", lifecycle.LearnerUpdate{GivenName: lrnPtr("A")})
		wantCode(t, err, apperr.NotFound)
		reread, _ := w.Service.Learner(w.Sys, l.ID)
		if reread.Version != 2 || lrnDeref(reread.Email) != "alice@kent.gov.uk" || lrnDeref(reread.GivenName) != "Alice" {
			t.Fatalf("refused updates changed the learner: %+v", reread)
		}
		w.WantFeed(l.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2))

		// CTL-4: another group of the organisation: GROUP_CHANGED, its own version (invariant 3).
		g, err := w.Service.CreateAccessGroup(kccAdmin, w.KCC.ID, lifecycle.AccessGroupInput{Name: "Social care"})
		if err != nil {
			t.Fatal(err)
		}
		got, err = w.Service.UpdateLearner(kccAdmin, l.ID, lifecycle.LearnerUpdate{AccessGroupID: &g.ID})
		if err != nil || lrnDeref(got.AccessGroupID) != g.ID || got.Version != 3 {
			t.Fatalf("group change: %+v %v", got, err)
		}
		w.WantFeed(l.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventGroupChanged, 3))
	})
}

// "email changes re-evaluate organisation and group" (issue 3, CTL-4): a new
// address under a domain rule that selects another group of the same
// organisation moves the learner to that group, as a sign-in with that
// address does.
func TestUpdateLearner_CTL4_EmailChangeWithinOrganisationReevaluatesGroup(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		schools, err := w.Service.CreateAccessGroup(w.Sys, w.KCC.ID, lifecycle.AccessGroupInput{Name: "Schools"})
		if err != nil {
			t.Fatal(err)
		}
		rule, err := w.Service.AddEmailDomain(w.Sys, w.KCC.ID, "kentschools.org.uk", false)
		if err != nil {
			t.Fatal(err)
		}
		// There is no API yet to point a domain rule at a group; set it in the table.
		if _, err := st.SQL().Exec(testkit.Rebind(st.Dialect(), `UPDATE email_domains SET access_group_id = ? WHERE id = ?`), schools.ID, rule.ID); err != nil {
			t.Fatal(err)
		}
		// Creation follows the rule.
		b := w.CreateLearner(w.KCC.ID, "b@kentschools.org.uk", "B", "B")
		if lrnDeref(b.AccessGroupID) != schools.ID {
			t.Fatalf("fixture: creation under the schools domain gets group %s, want %s", lrnDeref(b.AccessGroupID), schools.ID)
		}
		a := w.CreateLearner(w.KCC.ID, "a@kent.gov.uk", "A", "A")
		got, err := w.Service.UpdateLearner(w.As("kcc-admin"), a.ID, lifecycle.LearnerUpdate{Email: lrnPtr("a@kentschools.org.uk")})
		if err != nil {
			t.Fatal(err)
		}
		if got.OrganisationID != w.KCC.ID || lrnDeref(got.AccessGroupID) != schools.ID {
			t.Fatalf("email moved to the schools domain but the group stayed %s (want %s)", lrnDeref(got.AccessGroupID), schools.ID)
		}
		w.WantFeed(a.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventGroupChanged, 3))
	})
}

// ---- importLearners ----

// lrnImportRows: rows 1..8 of a file with every kind of fault, against
// KCC with one existing learner.
func lrnImportRows(w *testkit.ConnectToLearn) []lifecycle.ImportRow {
	return []lifecycle.ImportRow{
		{Email: "ann@kent.gov.uk", GivenName: "Ann", FamilyName: "A"},                                       // 1 good
		{Email: "ben@medway.gov.uk", GivenName: "Ben", FamilyName: "B"},                                     // 2 DOMAIN_NOT_OWNED
		{Email: " ANN@Kent.gov.uk ", GivenName: "Ann", FamilyName: "Again"},                                 // 3 DUPLICATE_IN_FILE (row 1)
		{Email: "existing@kent.gov.uk", GivenName: "Eve", FamilyName: "E"},                                  // 4 DUPLICATE_EXISTING
		{Email: "Cat <cat@kent.gov.uk>", GivenName: "Cat", FamilyName: "C"},                                 // 5 EMAIL_DISPLAY_NAME
		{Email: "dan@kent.gov.uk", GivenName: "", FamilyName: "D"},                                          // 6 givenName required
		{Email: "eli@kent.gov.uk", GivenName: "Eli", FamilyName: "E", AccessGroupID: lrnPtr(w.MedwayGroup)}, // 7 foreign group
		{Email: "fay@kent.gov.uk", GivenName: "Fay", FamilyName: "F"},                                       // 8 good
		{Email: "gus@kent.gov.uk.evil.com", GivenName: "Gus", FamilyName: "G"},                              // 9 DOMAIN_NOT_OWNED (lookalike)
	}
}

type lrnWantLine struct {
	row    int
	code   string
	reason string
	field  string
}

func lrnCheckLines(t *testing.T, got []lifecycle.ImportLine, want []lrnWantLine) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("lines:\n got %+v\nwant %+v", got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.Row != w.row || g.Code != w.code || (w.reason != "" && g.Reason != w.reason) || (w.field != "" && g.Field != w.field) {
			t.Errorf("line %d: got %+v, want %+v", i, g, w)
		}
		if g.Code == "CREATED" || g.Code == "WOULD_CREATE" {
			if g.LearnerID == "" {
				t.Errorf("line %d: %s without a learner ID", i, g.Code)
			}
		} else if g.Message == "" {
			t.Errorf("line %d: error without a message", i)
		}
	}
}

var lrnBadLines = []lrnWantLine{
	{2, "BAD_USER_INPUT", "DOMAIN_NOT_OWNED", "email"},
	{3, "CONFLICT", "DUPLICATE_IN_FILE", "email"},
	{4, "CONFLICT", "DUPLICATE_EXISTING", "email"},
	{5, "BAD_USER_INPUT", "EMAIL_DISPLAY_NAME", "email"},
	{6, "BAD_USER_INPUT", "", "givenName"},
	{7, "BAD_USER_INPUT", "", "accessGroupId"},
	{9, "BAD_USER_INPUT", "DOMAIN_NOT_OWNED", "email"},
}

func lrnWithGood(good ...lrnWantLine) []lrnWantLine {
	out := append(append([]lrnWantLine{}, lrnBadLines...), good...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].row < out[j].row })
	return out
}

func TestImport_INV4_NonAtomicWritesGoodRowsReportsBad(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		existing := w.CreateLearner(w.KCC.ID, "existing@kent.gov.uk", "Eve", "E")
		rep, err := w.Service.ImportLearners(w.As("kcc-admin"), w.KCC.ID, lrnImportRows(w), false, false)
		if err != nil {
			t.Fatal(err)
		}
		if rep.DryRun || rep.Atomic || rep.Total != 9 || rep.Created != 2 || rep.Failed != 7 {
			t.Fatalf("counts: %+v", rep)
		}
		lrnCheckLines(t, rep.Lines, lrnWithGood(lrnWantLine{1, "CREATED", "", ""}, lrnWantLine{8, "CREATED", "", ""}))
		for _, l := range rep.Lines {
			if l.Row == 3 && !strings.Contains(l.Message, "row 1") {
				t.Errorf("duplicate-in-file message should name the first row: %q", l.Message)
			}
		}
		created := map[string]string{} // id -> email
		for _, l := range rep.Lines {
			if l.Code == "CREATED" {
				lr, err := w.Service.Learner(w.As("kcc-admin"), l.LearnerID)
				if err != nil {
					t.Fatalf("created learner %s: %v", l.LearnerID, err)
				}
				created[lr.ID] = lrnDeref(lr.Email)
				if lr.OrganisationID != w.KCC.ID || lrnDeref(lr.AccessGroupID) != w.KCCGroup || lr.Status != domain.StatusPendingAcceptance || lr.Version != 1 {
					t.Errorf("created learner: %+v", lr)
				}
				w.WantFeed(lr.ID, testkit.Ev(domain.EventProvisioned, 1))
			}
		}
		if created[rep.Lines[0].LearnerID] != "ann@kent.gov.uk" {
			t.Errorf("row 1 created %v", created)
		}
		// Learner rows, feed rows and audit rows only for the good rows.
		if n := lrnLearnerRows(t, st, w.Programme.ID); n != 3 {
			t.Fatalf("learner rows: want 1 existing + 2 imported, got %d", n)
		}
		if n := lrnEventRows(t, st, w.Programme.ID); n != 3 {
			t.Fatalf("feed rows: want 3 LEARNER_PROVISIONED, got %d", n)
		}
		for _, email := range []string{"ben@medway.gov.uk", "cat@kent.gov.uk", "dan@kent.gov.uk", "eli@kent.gov.uk", "gus@kent.gov.uk.evil.com"} {
			if n := testkit.Count(t, st, `SELECT count(*) FROM learners WHERE email = ?`, email); n != 0 {
				t.Errorf("bad row %s was written", email)
			}
		}
		w.WantFeed(existing.ID, testkit.Ev(domain.EventProvisioned, 1))
		es := lrnEntries(w.Audit(w.Programme.ID), "learner.import", "")
		if len(es) != 2 {
			t.Fatalf("want 2 learner.import entries, got %+v", es)
		}
		for _, a := range es {
			if _, ok := created[a.TargetID]; !ok || a.ActorID != lifecycle.ActorIDFor(testkit.TestIssuer, "kcc-admin") {
				t.Errorf("audit entry: %+v", a)
			}
		}
	})
}

func TestImport_INV4_AtomicWritesAllOrNothing(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		w.CreateLearner(w.KCC.ID, "existing@kent.gov.uk", "Eve", "E")
		rows := lrnImportRows(w)
		rep, err := w.Service.ImportLearners(w.As("kcc-admin"), w.KCC.ID, rows, false, true)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Atomic || rep.Total != 9 || rep.Created != 0 || rep.Failed != 7 {
			t.Fatalf("counts: %+v", rep)
		}
		lrnCheckLines(t, rep.Lines, lrnBadLines)
		if n := lrnLearnerRows(t, st, w.Programme.ID); n != 1 {
			t.Fatalf("an atomic import with bad rows wrote learners: %d rows", n)
		}
		if n := lrnEventRows(t, st, w.Programme.ID); n != 1 {
			t.Fatalf("an atomic import with bad rows wrote feed rows: %d", n)
		}
		if n := countActions(w.Audit(w.Programme.ID), "learner.import"); n != 0 {
			t.Fatalf("an atomic import with bad rows was audited: %d", n)
		}

		// The good rows alone: all written.
		good := []lifecycle.ImportRow{rows[0], rows[7], {Email: "gil@KENT.gov.uk", GivenName: "Gil", FamilyName: "G"}}
		rep, err = w.Service.ImportLearners(w.As("kcc-admin"), w.KCC.ID, good, false, true)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Created != 3 || rep.Failed != 0 || rep.Total != 3 {
			t.Fatalf("counts: %+v", rep)
		}
		lrnCheckLines(t, rep.Lines, []lrnWantLine{{1, "CREATED", "", ""}, {2, "CREATED", "", ""}, {3, "CREATED", "", ""}})
		if n := testkit.Count(t, st, `SELECT count(*) FROM learners WHERE email = ?`, "gil@kent.gov.uk"); n != 1 {
			t.Fatalf("imported email not normalised")
		}
		if n := lrnLearnerRows(t, st, w.Programme.ID); n != 4 {
			t.Fatalf("learner rows: %d", n)
		}
		if n := lrnEventRows(t, st, w.Programme.ID); n != 4 {
			t.Fatalf("feed rows: %d", n)
		}
		if n := countActions(w.Audit(w.Programme.ID), "learner.import"); n != 3 {
			t.Fatalf("audit rows: %d", n)
		}
	})
}

func TestImport_INV4_DryRunWritesNothing(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		w.CreateLearner(w.KCC.ID, "existing@kent.gov.uk", "Eve", "E")
		auditBefore := len(w.Audit(w.Programme.ID))
		for _, atomic := range []bool{false, true} {
			rep, err := w.Service.ImportLearners(w.As("kcc-admin"), w.KCC.ID, lrnImportRows(w), true, atomic)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.DryRun || rep.Atomic != atomic || rep.Total != 9 || rep.Created != 0 || rep.Failed != 7 {
				t.Fatalf("atomic=%v counts: %+v", atomic, rep)
			}
			lrnCheckLines(t, rep.Lines, lrnWithGood(lrnWantLine{1, "WOULD_CREATE", "", ""}, lrnWantLine{8, "WOULD_CREATE", "", ""}))
		}
		if n := lrnLearnerRows(t, st, w.Programme.ID); n != 1 {
			t.Fatalf("a dry run wrote learners: %d rows", n)
		}
		if n := lrnEventRows(t, st, w.Programme.ID); n != 1 {
			t.Fatalf("a dry run wrote feed rows: %d", n)
		}
		if n := len(w.Audit(w.Programme.ID)); n != auditBefore {
			t.Fatalf("a dry run wrote audit rows: %d -> %d", auditBefore, n)
		}
		// A dry run then a real run of the same file agree.
		rep, err := w.Service.ImportLearners(w.As("kcc-admin"), w.KCC.ID, lrnImportRows(w), false, false)
		if err != nil || rep.Created != 2 || rep.Failed != 7 {
			t.Fatalf("real run after dry run: %+v %v", rep, err)
		}
	})
}

// A large import's rows are checked on two goroutines (checkImportRows):
// every bad row is still reported on its own row, in row order, wherever it
// falls, and an email repeated across the two halves is still caught, naming
// its first row (INV-4, CTL-3).
func TestImport_INV4_CTL3_ALargeImportReportsEveryBadRowInOrder(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		w.CreateLearner(w.KCC.ID, "existing@kent.gov.uk", "Eve", "E")
		const n = 30_000
		rows := make([]lifecycle.ImportRow, n)
		for i := range rows {
			rows[i] = lifecycle.ImportRow{Email: fmt.Sprintf("pad.%d@kent.gov.uk", i), GivenName: "P", FamilyName: "Q"}
		}
		bad := lrnImportRows(w)
		copy(rows[0:], bad[:4])                                                                             // rows 1-4: good, domain, duplicate of row 1, existing
		copy(rows[25_000:], bad[4:])                                                                        // rows 25,001-25,005: display name, no given name, foreign group, good, lookalike
		rows[25_005] = lifecycle.ImportRow{Email: "ann@KENT.gov.uk", GivenName: "Ann", FamilyName: "Later"} // row 25,006: duplicate of row 1
		// The last row of the first half and the first of the second.
		rows[n/2-1] = lifecycle.ImportRow{Email: "edge@medway.gov.uk", GivenName: "E", FamilyName: "F"} // row 15,000: DOMAIN_NOT_OWNED
		rows[n/2] = lifecycle.ImportRow{Email: "edge2@kent.gov.uk", GivenName: "", FamilyName: "F"}     // row 15,001: givenName required
		rep, err := w.Service.ImportLearners(w.As("kcc-admin"), w.KCC.ID, rows, true, false)
		if err != nil {
			t.Fatal(err)
		}
		want := []lrnWantLine{
			{2, "BAD_USER_INPUT", "DOMAIN_NOT_OWNED", "email"},
			{3, "CONFLICT", "DUPLICATE_IN_FILE", "email"},
			{4, "CONFLICT", "DUPLICATE_EXISTING", "email"},
			{15_000, "BAD_USER_INPUT", "DOMAIN_NOT_OWNED", "email"},
			{15_001, "BAD_USER_INPUT", "", "givenName"},
			{25_001, "BAD_USER_INPUT", "EMAIL_DISPLAY_NAME", "email"},
			{25_002, "BAD_USER_INPUT", "", "givenName"},
			{25_003, "BAD_USER_INPUT", "", "accessGroupId"},
			{25_005, "BAD_USER_INPUT", "DOMAIN_NOT_OWNED", "email"},
			{25_006, "CONFLICT", "DUPLICATE_IN_FILE", "email"},
		}
		if rep.Total != n || rep.Failed != len(want) || len(rep.Lines) != n {
			t.Fatalf("total %d, failed %d, lines %d; want %d, %d, %d", rep.Total, rep.Failed, len(rep.Lines), n, len(want), n)
		}
		var failed []lifecycle.ImportLine
		for i, l := range rep.Lines {
			if l.Row != i+1 {
				t.Fatalf("line %d is row %d: lines out of row order", i, l.Row)
			}
			if l.Code != "WOULD_CREATE" {
				failed = append(failed, l)
			}
		}
		lrnCheckLines(t, failed, want)
		if m := failed[len(failed)-1].Message; !strings.Contains(m, "row 1") {
			t.Errorf("the duplicate across halves should name row 1: %q", m)
		}
	})
}

func TestImport_CTL10_OnlyTheOrganisationsOwnAdminsAndWellFormedCalls(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		rows := []lifecycle.ImportRow{{Email: "a@kent.gov.uk", GivenName: "A", FamilyName: "A"}}
		_, err := w.Service.ImportLearners(w.As("medway-admin"), w.KCC.ID, rows, false, false)
		wantCode(t, err, apperr.NotFound)
		w.Grant("auditor", domain.RoleAuditor, w.Programme.ID, nil, nil)
		_, err = w.Service.ImportLearners(w.As("auditor"), w.KCC.ID, rows, false, false)
		wantCode(t, err, apperr.Forbidden)
		_, err = w.Service.ImportLearners(w.As("kcc-admin"), w.KCC.ID, nil, false, false)
		wantCode(t, err, apperr.BadUserInput)
		_, err = w.Service.ImportLearners(w.As("kcc-admin"), "not-an-id", rows, false, false)
		wantCode(t, err, apperr.NotFound)
		// A programme admin may import into any partner.
		rep, err := w.Service.ImportLearners(w.As("kc"), w.Medway.ID, []lifecycle.ImportRow{{Email: "m@medway.gov.uk", GivenName: "M", FamilyName: "M"}}, false, true)
		if err != nil || rep.Created != 1 {
			t.Fatalf("programme admin import: %+v %v", rep, err)
		}
		if n := lrnLearnerRows(t, st, w.Programme.ID); n != 1 {
			t.Fatalf("learner rows: %d", n)
		}
	})
}

// Two imports of overlapping files and a first sign-in of one of the shared
// addresses, all at once: every address ends up as exactly one learner with
// one LEARNER_PROVISIONED event, and the counts add up.
func TestImport_ConcurrentImportsOfSameEmailCreateOne(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		w.RegisterProvider(w.KCC.ID, testkit.KCCIssuer)
		for round := 0; round < 3; round++ {
			email := func(i int) string { return fmt.Sprintf("r%d.p%02d@kent.gov.uk", round, i) }
			var a, b []lifecycle.ImportRow
			for i := 0; i < 30; i++ {
				a = append(a, lifecycle.ImportRow{Email: email(i), GivenName: "A", FamilyName: fmt.Sprint("Number ", i)})
			}
			for i := 15; i < 45; i++ {
				b = append(b, lifecycle.ImportRow{Email: email(i), GivenName: "B", FamilyName: fmt.Sprint("Number ", i)})
			}
			var wg sync.WaitGroup
			reps := make([]lifecycle.ImportReport, 2)
			errs := make([]error, 3)
			var signed domain.Learner
			start := make(chan struct{})
			for k, rows := range [][]lifecycle.ImportRow{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					reps[k], errs[k] = w.Service.ImportLearners(w.As("kcc-admin"), w.KCC.ID, rows, false, false)
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				signed, errs[2] = w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: fmt.Sprintf("r%d-p20", round),
					Email: email(20), EmailVerified: true})
			}()
			close(start)
			wg.Wait()
			for k, err := range errs {
				if err != nil {
					t.Fatalf("round %d, caller %d: %v", round, k, err)
				}
			}
			if lrnDeref(signed.Email) != email(20) {
				t.Fatalf("sign-in got %+v", signed)
			}
			provisionedBySignIn := 0
			if n := len(lrnEntries(w.Audit(w.Programme.ID), "learner.provision", signed.ID)); n == 1 {
				provisionedBySignIn = 1
			}
			if got := reps[0].Created + reps[1].Created + provisionedBySignIn; got != 45 {
				t.Fatalf("round %d: %d + %d created by imports, %d by sign-in; want 45 in all", round, reps[0].Created, reps[1].Created, provisionedBySignIn)
			}
			for k, rep := range reps {
				if rep.Created+rep.Failed != rep.Total || rep.Total != 30 {
					t.Errorf("round %d, import %d: counts %+v", round, k, rep)
				}
				for _, l := range rep.Lines {
					if l.Code != "CREATED" && l.Reason != "DUPLICATE_EXISTING" {
						t.Errorf("round %d, import %d: unexpected line %+v", round, k, l)
					}
				}
			}
			for i := 0; i < 45; i++ {
				if n := testkit.Count(t, st, `SELECT count(*) FROM learners WHERE email = ?`, email(i)); n != 1 {
					t.Fatalf("round %d: %s has %d learners", round, email(i), n)
				}
				n := testkit.Count(t, st, `SELECT count(*) FROM lifecycle_events e JOIN learners l ON l.id = e.learner_id
					WHERE l.email = ? AND e.type = 'LEARNER_PROVISIONED'`, email(i))
				if n != 1 {
					t.Fatalf("round %d: %s has %d LEARNER_PROVISIONED events", round, email(i), n)
				}
			}
			// The sign-in's identity points at the one learner of that address.
			id, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: fmt.Sprintf("r%d-p20", round)})
			if err != nil || id.ID != signed.ID {
				t.Fatalf("round %d: identity resolves to %+v (%v), sign-in returned %s", round, id, err, signed.ID)
			}
		}
		if n := lrnLearnerRows(t, st, w.Programme.ID); n != 135 {
			t.Fatalf("learner rows: %d", n)
		}
		es := w.Audit(w.Programme.ID)
		if n := countActions(es, "learner.import") + countActions(es, "learner.provision"); n != 135 {
			t.Fatalf("creation audit entries: %d", n)
		}
	})
}

// Two atomic imports of overlapping files at once: one applies whole, the
// other applies nothing (it reports the duplicates or gives up with CONFLICT).
func TestImport_INV4_ConcurrentAtomicImportsNeverHalfApply(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		for round := 0; round < 3; round++ {
			email := func(i int) string { return fmt.Sprintf("r%d.q%02d@kent.gov.uk", round, i) }
			var a, b []lifecycle.ImportRow
			for i := 0; i < 30; i++ {
				a = append(a, lifecycle.ImportRow{Email: email(i), GivenName: "A", FamilyName: "A"})
			}
			for i := 44; i >= 15; i-- { // the other file lists the overlap in the opposite order
				b = append(b, lifecycle.ImportRow{Email: email(i), GivenName: "B", FamilyName: "B"})
			}
			var wg sync.WaitGroup
			reps := make([]lifecycle.ImportReport, 2)
			errs := make([]error, 2)
			start := make(chan struct{})
			for k, rows := range [][]lifecycle.ImportRow{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					reps[k], errs[k] = w.Service.ImportLearners(w.As("kcc-admin"), w.KCC.ID, rows, false, true)
				}()
			}
			close(start)
			wg.Wait()
			total := 0
			for k := range reps {
				switch {
				case errs[k] != nil:
					wantCode(t, errs[k], apperr.Conflict)
				case reps[k].Created == 30 && reps[k].Failed == 0:
					total += 30
				case reps[k].Created == 0 && reps[k].Failed > 0:
				default:
					t.Fatalf("round %d, import %d half applied: %+v", round, k, reps[k])
				}
			}
			if total != 30 {
				t.Fatalf("round %d: want exactly one import applied, got %d learners reported (%v, %v)", round, total, errs[0], errs[1])
			}
			n := testkit.Count(t, st, `SELECT count(*) FROM learners WHERE email LIKE ?`, fmt.Sprintf("r%d.q%%", round))
			if n != 30 {
				t.Fatalf("round %d: %d learners written, want 30", round, n)
			}
		}
		if n := lrnEventRows(t, st, w.Programme.ID); n != 90 {
			t.Fatalf("feed rows: %d", n)
		}
	})
}

// Two non-atomic imports whose files share addresses listed in opposite
// orders: both must finish (each reports the other's rows as
// DUPLICATE_EXISTING), never fail on a lock cycle between their inserts.
// Files of a thousand rows make the inserts overlap in time.
func TestImport_ConcurrentOverlappingImportsInOppositeOrderBothSucceed(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		const n, overlap = 1000, 500
		for round := 0; round < 3; round++ {
			email := func(i int) string { return fmt.Sprintf("r%d.o%04d@kent.gov.uk", round, i) }
			var a, b []lifecycle.ImportRow
			for i := 0; i < n; i++ {
				a = append(a, lifecycle.ImportRow{Email: email(i), GivenName: "A", FamilyName: "A"})
			}
			for i := 2*n - overlap - 1; i >= n-overlap; i-- {
				b = append(b, lifecycle.ImportRow{Email: email(i), GivenName: "B", FamilyName: "B"})
			}
			var wg sync.WaitGroup
			reps := make([]lifecycle.ImportReport, 2)
			errs := make([]error, 2)
			start := make(chan struct{})
			for k, rows := range [][]lifecycle.ImportRow{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					reps[k], errs[k] = w.Service.ImportLearners(w.As("kcc-admin"), w.KCC.ID, rows, false, false)
				}()
			}
			close(start)
			wg.Wait()
			for k, err := range errs {
				if err != nil {
					t.Fatalf("round %d, import %d failed: %v", round, k, err)
				}
			}
			if got := reps[0].Created + reps[1].Created; got != 2*n-overlap {
				t.Fatalf("round %d: created %d + %d, want %d in all", round, reps[0].Created, reps[1].Created, 2*n-overlap)
			}
			if c := testkit.Count(t, st, `SELECT count(*) FROM learners WHERE email LIKE ?`, fmt.Sprintf("r%d.o%%", round)); c != 2*n-overlap {
				t.Fatalf("round %d: %d learners", round, c)
			}
		}
	})
}

// ---- learners listing and reads (CTL-10) ----

func TestLearners_CTL10_OrgAdminSeesOnlyOwnOrganisation(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		var kccIDs, medwayIDs []string
		for i := 0; i < 3; i++ {
			kccIDs = append(kccIDs, w.CreateLearner(w.KCC.ID, fmt.Sprintf("k%d@kent.gov.uk", i), "K", fmt.Sprint("Number ", i)).ID)
		}
		for i := 0; i < 5; i++ {
			medwayIDs = append(medwayIDs, w.CreateLearner(w.Medway.ID, fmt.Sprintf("m%d@medway.gov.uk", i), "M", fmt.Sprint("Number ", i)).ID)
		}
		medwayAdmin := w.As("medway-admin")

		// Asking for another organisation is refused, not an empty page.
		_, err := w.Service.Learners(medwayAdmin, lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, OrganisationID: &w.KCC.ID, First: 10})
		wantCode(t, err, apperr.NotFound)
		missing := "00000000-0000-0000-0000-000000000000"
		_, err = w.Service.Learners(medwayAdmin, lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, OrganisationID: &missing, First: 10})
		wantCode(t, err, apperr.NotFound)

		// Without an organisation: only Medway's.
		ls, more, err := pageOf(w.Service.Learners(medwayAdmin, lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, First: 100}))
		if err != nil || more {
			t.Fatalf("list: %v more=%v", err, more)
		}
		if got := lrnIDs(ls); !lrnSameSet(got, medwayIDs) {
			t.Fatalf("Medway admin sees %v, want %v", got, medwayIDs)
		}
		ls, _, err = pageOf(w.Service.Learners(medwayAdmin, lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, OrganisationID: &w.Medway.ID, First: 100}))
		if err != nil || !lrnSameSet(lrnIDs(ls), medwayIDs) {
			t.Fatalf("own organisation: %v %v", lrnIDs(ls), err)
		}

		// Pages of two: every learner once, in order, and the last page says so.
		var paged []string
		after := ""
		for page := 0; ; page++ {
			ls, more, err := pageOf(w.Service.Learners(medwayAdmin, lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, First: 2, After: after}))
			if err != nil {
				t.Fatal(err)
			}
			if page > 5 {
				t.Fatal("pagination does not end")
			}
			if len(ls) == 0 || len(ls) > 2 {
				t.Fatalf("page %d has %d learners", page, len(ls))
			}
			paged = append(paged, lrnIDs(ls)...)
			after = ls[len(ls)-1].ID
			if !more {
				break
			}
		}
		if len(paged) != 5 || !lrnSameSet(paged, medwayIDs) {
			t.Fatalf("pages gave %v, want each of %v once", paged, medwayIDs)
		}
		if !sort.StringsAreSorted(paged) {
			t.Fatalf("pages are not in ID order: %v", paged)
		}
		_, err = w.Service.Learners(medwayAdmin, lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, First: 2, After: "garbage"})
		wantCode(t, err, apperr.BadUserInput)
		_, err = w.Service.Learners(medwayAdmin, lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, First: 0})
		wantCode(t, err, apperr.BadUserInput)
		_, err = w.Service.Learners(medwayAdmin, lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, First: 501})
		wantCode(t, err, apperr.BadUserInput)

		// A programme admin sees everyone, and may narrow to one organisation.
		ls, _, err = pageOf(w.Service.Learners(w.As("kc"), lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, First: 100}))
		if err != nil || !lrnSameSet(lrnIDs(ls), append(append([]string{}, kccIDs...), medwayIDs...)) {
			t.Fatalf("programme admin: %v %v", lrnIDs(ls), err)
		}
		ls, _, err = pageOf(w.Service.Learners(w.As("kc"), lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, OrganisationID: &w.KCC.ID, First: 100}))
		if err != nil || !lrnSameSet(lrnIDs(ls), kccIDs) {
			t.Fatalf("programme admin, KCC only: %v %v", lrnIDs(ls), err)
		}
		// Search is within what the caller may see.
		ls, _, err = pageOf(w.Service.Learners(medwayAdmin, lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, Search: "k0@", First: 100}))
		if err != nil || len(ls) != 0 {
			t.Fatalf("search leaked another organisation's learner: %v %v", lrnIDs(ls), err)
		}
		// Roles without learner access, and strangers.
		w.Grant("auditor", domain.RoleAuditor, w.Programme.ID, nil, nil)
		_, err = w.Service.Learners(w.As("auditor"), lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, First: 10})
		wantCode(t, err, apperr.Forbidden)
		_, err = w.Service.Learners(w.As("stranger"), lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, First: 10})
		wantCode(t, err, apperr.NotFound)

		// Single reads: another organisation's learner is NOT_FOUND, as a missing one.
		_, err = w.Service.Learner(medwayAdmin, kccIDs[0])
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.Learner(medwayAdmin, missing)
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.Retention(medwayAdmin, kccIDs[0])
		wantCode(t, err, apperr.NotFound)
		byID, err := w.Service.LearnersByIDs(medwayAdmin, append([]string{kccIDs[0]}, medwayIDs[0]))
		if err != nil || len(byID) != 1 || byID[medwayIDs[0]].ID == "" {
			t.Fatalf("batch read leaked or lost learners: %v %v", byID, err)
		}
	})
}

func lrnIDs(ls []domain.Learner) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.ID
	}
	return out
}

func lrnSameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// ---- retention (GEN-1) ----

func TestRetention_GEN1_LearnerSeesUntilWhenAndWhy(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		w.RegisterProvider(w.KCC.ID, testkit.KCCIssuer)
		l, self := w.Linked(w.KCC.ID, "alice@kent.gov.uk", testkit.KCCIssuer, "alice")
		// CTL: inactivity 365 days from the last sign-in (now) comes before
		// the contract end two years after the programme's creation.
		r, err := w.Service.Retention(self(), l.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := w.Clock.Now().Add(365 * 24 * time.Hour)
		if r.Rule != "CTL-7" || r.KeptUntil == nil || !r.KeptUntil.Equal(want) || !strings.Contains(r.Reason, "24 November 2027") {
			t.Fatalf("retention: %+v", r)
		}
		// Admins of the learner's organisation see the same statement.
		if r2, err := w.Service.Retention(w.As("kcc-admin"), l.ID); err != nil || r2.Rule != r.Rule || !r2.KeptUntil.Equal(*r.KeptUntil) {
			t.Fatalf("admin view: %+v %v", r2, err)
		}
		// Without the inactivity limit, the contract end decides.
		if _, err := w.Service.UpdateProgrammeRules(w.As("kc"), w.Programme.ID, lifecycle.RuleSettingsPatch{ClearInactivityLimit: true}, "test"); err != nil {
			t.Fatal(err)
		}
		r, err = w.Service.Retention(self(), l.ID)
		if err != nil || r.Rule != "CTL-6" || r.KeptUntil == nil || !r.KeptUntil.Equal(w.Programme.Settings.ContractEndsAt.UTC()) ||
			!strings.Contains(r.Reason, "24 November 2028") {
			t.Fatalf("retention after clearing the inactivity limit: %+v %v", r, err)
		}
		// Neither: kept while registered (ONC-6's words).
		if _, err := w.Service.UpdateProgrammeRules(w.As("kc"), w.Programme.ID, lifecycle.RuleSettingsPatch{ClearContractEnd: true}, "test"); err != nil {
			t.Fatal(err)
		}
		r, err = w.Service.Retention(self(), l.ID)
		if err != nil || r.Rule != "ONC-6" || r.KeptUntil != nil || r.Reason == "" {
			t.Fatalf("retention with no trigger: %+v %v", r, err)
		}
	})
}

func lrnPtr[T any](v T) *T { return &v }

// pageOf is a page of Service.Learners as its learners and whether more follow.
func pageOf(p lifecycle.LearnersPage, err error) ([]domain.Learner, bool, error) {
	return p.Learners, p.More, err
}

// CTL-5, CTL-10: a page of learners asked for with their policy decisions
// brings the decisions of the learners it lists and of no other, the one
// read past the page's end to know there is more included, in the order
// AcceptancesByLearners gives them.
func TestLearners_CTL5_CTL10_APageBringsItsOwnLearnersDecisionsOnly(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		for _, name := range []string{"ana", "ben", "cai"} {
			w.Active(name)
		}
		page, err := w.Service.Learners(w.As("kc"), lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, First: 2, WithAcceptances: true})
		if err != nil || len(page.Learners) != 2 || !page.More {
			t.Fatalf("first page of two: %d learners, more %v, %v", len(page.Learners), page.More, err)
		}
		ids := lrnIDs(page.Learners)
		want, err := w.Service.AcceptancesByLearners(w.As("kc"), ids)
		if err != nil || len(want) != 4 {
			t.Fatalf("the two learners' decisions read apart: %d, %v (want 4)", len(want), err)
		}
		if len(page.Acceptances) != len(want) {
			t.Fatalf("the page brought %d decisions, want the listed learners' %d", len(page.Acceptances), len(want))
		}
		for i, a := range page.Acceptances {
			if a.ID != want[i].ID || !slices.Contains(ids, a.LearnerID) {
				t.Fatalf("decision %d: %s of learner %s, want %s of one of %v", i, a.ID, a.LearnerID, want[i].ID, ids)
			}
		}
		plain, err := w.Service.Learners(w.As("kc"), lifecycle.LearnerQuery{ProgrammeID: w.Programme.ID, First: 2})
		if err != nil || plain.Acceptances != nil {
			t.Fatalf("a page not asked for decisions brought %v (%v)", plain.Acceptances, err)
		}
	})
}
