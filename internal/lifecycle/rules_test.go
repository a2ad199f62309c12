package lifecycle_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

const day = 24 * time.Hour

// ONC-6: under the Onclick preset data is kept while the learner stays
// registered: no inactivity limit, no contract end, so years of silence
// schedule nobody, and the retention statement says so.
func TestPreset_ONC6_KeptWhileRegistered(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		p := e.OnclickProgramme("Onclick", "WSCC")
		org := e.Admit(p.ID, "West Sussex County Council", "westsussex.gov.uk")
		l, err := e.Service.CreateLearner(e.Sys, org.ID, lifecycle.LearnerInput{Email: "quiet@westsussex.gov.uk", GivenName: "Q", FamilyName: "R"})
		if err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(5 * 365 * day)
		rep, err := e.Service.RunRetentionSweep(e.Sys, p.ID)
		if err != nil || rep.ScheduledInactive != 0 || rep.Erased != 0 || rep.ContractEnded {
			t.Fatalf("sweep after five silent years: %+v %v", rep, err)
		}
		r, err := e.Service.Retention(e.Sys, l.ID)
		if err != nil || r.KeptUntil != nil || r.Rule != "ONC-6" {
			t.Fatalf("retention: %+v %v", r, err)
		}
	})
}

// GEN-5 (CTL-7 with a per-programme value): a two-year limit schedules a
// learner silent for longer than two years, and not one silent for less.
func TestInactivity_GEN5_PerProgrammeLimit(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		p, _ := e.ConnectToLearnProgramme()
		twoYears := 730 * day
		if _, err := e.Service.UpdateProgrammeRules(e.Sys, p.ID, lifecycle.RuleSettingsPatch{InactivityLimit: &twoYears,
			ClearContractEnd: true}, "two-year register rule"); err != nil {
			t.Fatal(err)
		}
		org := e.Admit(p.ID, "Kent County Council", "kent.gov.uk")
		old, _ := e.Service.CreateLearner(e.Sys, org.ID, lifecycle.LearnerInput{Email: "old@kent.gov.uk", GivenName: "O", FamilyName: "L"})
		e.Clock.Advance(2 * day)
		recent, _ := e.Service.CreateLearner(e.Sys, org.ID, lifecycle.LearnerInput{Email: "new@kent.gov.uk", GivenName: "N", FamilyName: "W"})
		e.Clock.Advance(twoYears - day) // old: 2 years + 1 day silent; recent: 2 years - 1 day
		rep, err := e.Service.RunRetentionSweep(e.Sys, p.ID)
		if err != nil || rep.ScheduledInactive != 1 {
			t.Fatalf("sweep: %+v %v", rep, err)
		}
		if l, _ := e.Service.Learner(e.Sys, old.ID); l.Status != domain.StatusRemovalScheduled || *l.RemovalReason != domain.RemovalInactivity {
			t.Fatalf("two years silent: %+v", l)
		}
		if l, _ := e.Service.Learner(e.Sys, recent.ID); l.Status != domain.StatusPendingAcceptance {
			t.Fatalf("less than two years silent: %+v", l)
		}
	})
}

// ONC-7: organisation reports hold aggregates only, for that organisation's
// admins and programme staff; another organisation's admin gets NOT_FOUND.
func TestOrganisationReport_ONC7_AggregatesOnly(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		p, _ := e.ConnectToLearnProgramme()
		kcc := e.Admit(p.ID, "Kent County Council", "kent.gov.uk")
		medway := e.Admit(p.ID, "Medway Council", "medway.gov.uk")
		e.Grant("kcc-admin", domain.RoleOrganisationAdmin, p.ID, &kcc.ID, nil)
		e.Grant("medway-admin", domain.RoleOrganisationAdmin, p.ID, &medway.ID, nil)
		var ids []string
		for i := 0; i < 4; i++ {
			l, err := e.Service.CreateLearner(e.Sys, kcc.ID, lifecycle.LearnerInput{Email: fmt.Sprintf("staff%d@kent.gov.uk", i),
				GivenName: "Zebedee", FamilyName: fmt.Sprintf("Quill%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, l.ID)
		}
		rep, err := e.Service.OrganisationReport(e.As("kcc-admin"), kcc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rep["learnersEver"] != int64(4) || rep["byStatus"].(map[string]int64)["PENDING_ACCEPTANCE"] != 4 {
			t.Fatalf("report: %+v", rep)
		}
		b, _ := json.Marshal(rep)
		for _, needle := range append([]string{"Zebedee", "Quill", "@kent.gov.uk"}, ids...) {
			if strings.Contains(string(b), needle) {
				t.Fatalf("the report holds %q: %s", needle, b)
			}
		}
		_, err = e.Service.OrganisationReport(e.As("medway-admin"), kcc.ID)
		wantCode(t, err, apperr.NotFound)
	})
}

// GEN-2: an admin's free-text reason naming the learner (CTL-12 keeps it while
// they exist) is blanked when they are erased; the entry itself survives.
func TestErasure_GEN2_AdminReasonsAboutTheLearnerAreBlanked(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		p, _ := e.ConnectToLearnProgramme()
		org := e.Admit(p.ID, "Kent County Council", "kent.gov.uk")
		l, err := e.Service.CreateLearner(e.Sys, org.ID, lifecycle.LearnerInput{Email: "ottoline@kent.gov.uk", GivenName: "Ottoline", FamilyName: "Brackenbury"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Service.MarkLeaver(e.As("kc"), l.ID, "Ottoline Brackenbury left in May"); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(8 * day)
		if _, err := e.Service.RunRetentionSweep(e.Sys, p.ID); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, en := range e.Audit(p.ID) {
			if strings.Contains(en.Reason, "Ottoline") || strings.Contains(en.Reason, "Brackenbury") {
				t.Fatalf("audit entry still names the erased learner: %+v", en)
			}
			found = found || (en.Action == "learner.leaver" && en.TargetID == l.ID && en.ActorID == lifecycle.ActorIDFor(testkit.TestIssuer, "kc"))
		}
		if !found {
			t.Fatal("the leaver entry did not survive the erasure")
		}
	})
}
