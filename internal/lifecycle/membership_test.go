package lifecycle_test

import (
	"sync"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

func TestMembership_CTL1_AdmitTakesEffectOnlyWhenEveryGoverningBodyApproved(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		p, bodies := e.ConnectToLearnProgramme()
		prop, err := e.Service.ProposeMembership(e.As("kc"), lifecycle.ProposeMembershipInput{ProgrammeID: p.ID, Action: domain.ProposalAdmit,
			Name: "Swale Borough Council", Kind: "DISTRICT_COUNCIL", Domains: []lifecycle.DomainInput{{Domain: " Swale.GOV.uk. "}}, Reason: "joins"})
		if err != nil {
			t.Fatal(err)
		}
		if prop.Domains[0].Domain != "swale.gov.uk" {
			t.Fatalf("domain not normalised: %q", prop.Domains[0].Domain)
		}
		// Kent Connects approves: not enough.
		prop, err = e.Service.ApproveMembership(e.As("kc"), prop.ID, "ok")
		if err != nil {
			t.Fatal(err)
		}
		if prop.Status != domain.ProposalPending || prop.OrganisationID != nil {
			t.Fatalf("applied after one of two approvals: %+v", prop.MembershipProposal)
		}
		orgs, _ := e.Service.OrganisationsByProgrammes(e.Sys, []string{p.ID})
		if len(orgs[p.ID]) != 0 {
			t.Fatalf("organisation exists before every body approved")
		}
		// The same body cannot approve twice.
		_, err = e.Service.ApproveMembership(e.As("kc"), prop.ID, "again")
		wantCode(t, err, apperr.Conflict)
		// Smarter Digital Services approves: applied.
		prop, err = e.Service.ApproveMembership(e.As("sds"), prop.ID, "ok")
		if err != nil {
			t.Fatal(err)
		}
		if prop.Status != domain.ProposalApplied || prop.OrganisationID == nil || len(prop.Approvals) != 2 {
			t.Fatalf("not applied after both approvals: %+v", prop)
		}
		seen := map[string]bool{}
		for _, a := range prop.Approvals {
			seen[a.GoverningBodyID] = true
		}
		if !seen[bodies[0].ID] || !seen[bodies[1].ID] {
			t.Fatalf("approvals not recorded per body: %+v", prop.Approvals)
		}
		o, err := e.Service.Organisation(e.Sys, *prop.OrganisationID)
		if err != nil || o.Status != domain.OrgAdmitted || o.Name != "Swale Borough Council" {
			t.Fatalf("organisation: %+v %v", o, err)
		}
		ds, _ := e.Service.DomainsByOrganisations(e.Sys, []string{o.ID})
		if len(ds[o.ID]) != 1 || ds[o.ID][0].Domain != "swale.gov.uk" {
			t.Fatalf("domains: %+v", ds[o.ID])
		}
		gs, _ := e.Service.AccessGroupsByOrganisations(e.Sys, []string{o.ID})
		if len(gs[o.ID]) != 1 || !gs[o.ID][0].IsDefault {
			t.Fatalf("want one default access group, got %+v", gs[o.ID])
		}
		// An applied proposal cannot be approved again.
		_, err = e.Service.ApproveMembership(e.As("sds"), prop.ID, "")
		wantCode(t, err, apperr.Conflict)
		es := e.Audit(p.ID)
		for action, n := range map[string]int{"membership.propose": 1, "membership.approve": 2, "organisation.admit": 1} {
			if got := countActions(es, action); got != n {
				t.Errorf("audit %s: want %d, got %d", action, n, got)
			}
		}
	})
}

func TestMembership_CTL1_RejectedProposalCannotBeApproved(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		p, _ := e.ConnectToLearnProgramme()
		prop, err := e.Service.ProposeMembership(e.As("kc"), lifecycle.ProposeMembershipInput{ProgrammeID: p.ID, Action: domain.ProposalAdmit,
			Name: "Dover District Council", Kind: "DISTRICT_COUNCIL", Domains: []lifecycle.DomainInput{{Domain: "dover.gov.uk"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Service.ApproveMembership(e.As("kc"), prop.ID, ""); err != nil {
			t.Fatal(err)
		}
		_, err = e.Service.RejectMembership(e.As("sds"), prop.ID, "  ")
		wantCode(t, err, apperr.BadUserInput) // a rejection needs a reason
		rej, err := e.Service.RejectMembership(e.As("sds"), prop.ID, "not yet a partner")
		if err != nil || rej.Status != domain.ProposalRejected || rej.Reason != "not yet a partner" {
			t.Fatalf("reject: %+v %v", rej, err)
		}
		_, err = e.Service.ApproveMembership(e.As("sds"), prop.ID, "")
		wantCode(t, err, apperr.Conflict)
		_, err = e.Service.RejectMembership(e.As("kc"), prop.ID, "again")
		wantCode(t, err, apperr.Conflict)
		orgs, _ := e.Service.OrganisationsByProgrammes(e.Sys, []string{p.ID})
		if len(orgs[p.ID]) != 0 {
			t.Fatal("a rejected proposal created an organisation")
		}
		// The domain was never taken: another proposal may claim it.
		if _, err := e.Service.AddEmailDomain(e.Sys, e.Admit(p.ID, "Other").ID, "dover.gov.uk", false); err != nil {
			t.Fatalf("domain of a rejected proposal stays free: %v", err)
		}
	})
}

func TestMembership_CTL1_ApprovalNeedsAGoverningBodyGrant(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		p, _ := e.ConnectToLearnProgramme()
		e.Grant("plain-admin", domain.RoleProgrammeAdmin, p.ID, nil, nil)
		e.Grant("auditor", domain.RoleAuditor, p.ID, nil, nil)
		prop, err := e.Service.ProposeMembership(e.As("plain-admin"), lifecycle.ProposeMembershipInput{ProgrammeID: p.ID,
			Action: domain.ProposalAdmit, Name: "Thanet District Council", Kind: "DISTRICT_COUNCIL"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Service.ApproveMembership(e.As("plain-admin"), prop.ID, "")
		wantCode(t, err, apperr.Forbidden)
		_, err = e.Service.ApproveMembership(e.As("auditor"), prop.ID, "")
		wantCode(t, err, apperr.Forbidden)
		_, err = e.Service.ApproveMembership(e.As("stranger"), prop.ID, "")
		wantCode(t, err, apperr.NotFound)
		if ps, _ := e.Service.MembershipProposals(e.Sys, p.ID, nil); len(ps) != 1 || len(ps[0].Approvals) != 0 {
			t.Fatalf("refused approvals were recorded: %+v", ps)
		}
	})
}

func TestMembership_CTL1_RemovalTakesEffectAfterEveryApproval(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		p, _ := e.ConnectToLearnProgramme()
		o := e.Admit(p.ID, "Gravesham Borough Council", "gravesham.gov.uk")
		prop, err := e.Service.ProposeMembership(e.As("sds"), lifecycle.ProposeMembershipInput{ProgrammeID: p.ID,
			Action: domain.ProposalRemove, OrganisationID: o.ID, Reason: "left the partnership"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Service.ApproveMembership(e.As("sds"), prop.ID, ""); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.Service.Organisation(e.Sys, o.ID); got.Status != domain.OrgAdmitted {
			t.Fatalf("removed after one approval: %s", got.Status)
		}
		if _, err := e.Service.ApproveMembership(e.As("kc"), prop.ID, ""); err != nil {
			t.Fatal(err)
		}
		got, _ := e.Service.Organisation(e.Sys, o.ID)
		if got.Status != domain.OrgRemoved || got.RemovedAt == nil {
			t.Fatalf("not removed after both approvals: %+v", got)
		}
		// A removed organisation cannot be changed or removed again.
		_, err = e.Service.CreateAccessGroup(e.As("kc"), o.ID, lifecycle.AccessGroupInput{Name: "x"})
		wantCode(t, err, apperr.Conflict)
		_, err = e.Service.ProposeMembership(e.As("kc"), lifecycle.ProposeMembershipInput{ProgrammeID: p.ID, Action: domain.ProposalRemove, OrganisationID: o.ID})
		wantCode(t, err, apperr.Conflict)
	})
}

// Two governing bodies approving at the same moment must apply the proposal
// exactly once.
func TestMembership_CTL1_ConcurrentApprovalsApplyOnce(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		p, _ := e.ConnectToLearnProgramme()
		for i := 0; i < 5; i++ {
			prop, err := e.Service.ProposeMembership(e.As("kc"), lifecycle.ProposeMembershipInput{ProgrammeID: p.ID, Action: domain.ProposalAdmit,
				Name: "Council " + string(rune('A'+i)), Kind: "OTHER"})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for j, who := range []string{"kc", "sds"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[j] = e.Service.ApproveMembership(e.As(who), prop.ID, "")
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("concurrent approval failed: %v", err)
				}
			}
		}
		orgs, _ := e.Service.OrganisationsByProgrammes(e.Sys, []string{p.ID})
		if len(orgs[p.ID]) != 5 {
			t.Fatalf("want 5 organisations, got %d", len(orgs[p.ID]))
		}
		if n := countActions(e.Audit(p.ID), "organisation.admit"); n != 5 {
			t.Fatalf("want 5 admissions audited, got %d", n)
		}
	})
}
