package lifecycle_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// CTL-6: within the warning period before the contract end, the sweep warns
// every learner once through the feed (CONTRACT_ENDING) and the preview lists
// them as WARN; at the end they are erased.
func TestContractEnd_CTL6_WarnedAheadThenErased(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		p, _ := e.ConnectToLearnProgramme()
		// Inactivity would also act two years on; this test is about the contract.
		if _, err := e.Service.UpdateProgrammeRules(e.Sys, p.ID, lifecycle.RuleSettingsPatch{ClearInactivityLimit: true}, ""); err != nil {
			t.Fatal(err)
		}
		org := e.Admit(p.ID, "Kent County Council", "kent.gov.uk")
		var ids []string
		for i := 0; i < 3; i++ {
			l, err := e.Service.CreateLearner(e.Sys, org.ID, lifecycle.LearnerInput{Email: fmt.Sprintf("w%d@kent.gov.uk", i), GivenName: "A", FamilyName: "B"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, l.ID)
		}
		end := *p.Settings.ContractEndsAt
		// Before the warning period: nothing.
		rep, err := e.Service.RunRetentionSweep(e.Sys, p.ID)
		if err != nil || rep.ContractWarned != 0 {
			t.Fatalf("sweep long before the end: %+v %v", rep, err)
		}
		pre, _ := e.Service.RetentionPreview(e.Sys, p.ID, e.Clock.Now())
		if len(pre) != 0 {
			t.Fatalf("preview long before the end: %+v", pre)
		}
		// 30 days before the end (inside the 90-day warning).
		e.Clock.Set(end.Add(-30 * 24 * time.Hour))
		pre, err = e.Service.RetentionPreview(e.Sys, p.ID, e.Clock.Now())
		if err != nil || len(pre) != 3 || pre[0].Action != "WARN" || pre[0].Reason != domain.RemovalContractEnded || !pre[0].DueAt.Equal(end) {
			t.Fatalf("preview inside the warning period: %+v %v", pre, err)
		}
		rep, err = e.Service.RunRetentionSweep(e.Sys, p.ID)
		if err != nil || rep.ContractWarned != 3 || rep.Erased != 0 {
			t.Fatalf("warning sweep: %+v %v", rep, err)
		}
		for _, id := range ids {
			es, _ := st.EventsByLearner(e.Sys, id)
			if last := es[len(es)-1]; last.Type != domain.EventContractEnding {
				t.Fatalf("learner %s: last event %s, want CONTRACT_ENDING", id, last.Type)
			}
		}
		// Once per end date.
		if rep, _ = e.Service.RunRetentionSweep(e.Sys, p.ID); rep.ContractWarned != 0 {
			t.Fatalf("warned twice: %+v", rep)
		}
		// At the end, everyone is erased.
		e.Clock.Set(end.Add(time.Minute))
		rep, err = e.Service.RunRetentionSweep(e.Sys, p.ID)
		if err != nil || !rep.ContractEnded || rep.Erased != 3 {
			t.Fatalf("sweep at the end: %+v %v", rep, err)
		}
	})
}
