package graph_test

// Issue 10: the identity boundary on every path, through GraphQL over real
// HTTP, on both databases. Each test names the rule it proves; the shared
// helpers are signin_test.go's (si) and lms_test.go's (lms).

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// bndLearner is a learner row's state, to prove a refusal changed nothing.
func (e *siEnv) bndState(t *testing.T, id string) string {
	t.Helper()
	row := e.col(t, `SELECT organisation_id || '|' || coalesce(email, '') || '|' || status || '|' || CAST(version AS text) FROM learners WHERE id = ?`, id)
	events := e.count(t, `SELECT count(*) FROM lifecycle_events WHERE learner_id = ?`, id)
	ids := e.count(t, `SELECT count(*) FROM learner_identities WHERE learner_id = ?`, id)
	return fmt.Sprintf("%v events=%d identities=%d", row, events, ids)
}

// bndStrictlyIncreasing asserts invariant 3 on a learner's whole feed.
func (e *siEnv) bndStrictlyIncreasing(t *testing.T, id string) []siEvent {
	t.Helper()
	evs := e.events(t, id)
	for i := 1; i < len(evs); i++ {
		if evs[i].Version <= evs[i-1].Version {
			t.Fatalf("feed of %s: %v: event %d (%s) has version %d, not above %d", id, evs, i, evs[i].Type, evs[i].Version, evs[i-1].Version)
		}
	}
	return evs
}

// ---------------------------------------------------------------------------
// CTL-10, invariant 1: a move between organisations writes into both.

func TestUpdateLearner_CTL10_MoveNeedsAnAdminOfBothOrganisations(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		medway, kcc := e.org(t, siMedway), e.org(t, siKCC)
		e.api.Grant("medway-admin", domain.RoleOrganisationAdmin, e.p.ID, &medway, nil)
		id := e.createLearner(t, siMedway, "mo@medway.gov.uk", nil)
		before := e.bndState(t, id)
		move := func(tok, email string) testkit.Response {
			return e.api.Do(tok, `mutation($id: ID!, $in: LearnerUpdateInput!) { updateLearner(learnerId: $id, input: $in) { id organisation { name } version } }`,
				map[string]any{"id": id, "in": map[string]any{"email": email, "reason": "changed jobs"}})
		}
		// Medway's admin administers Medway only: moving into Kent is refused.
		r := move(e.api.Token("medway-admin"), "mo@kent.gov.uk")
		if r.Code() != "FORBIDDEN" || r.Ext("rule") != "CTL-10" || r.Ext("reason") != "MOVE_NEEDS_BOTH_ORGANISATIONS" {
			t.Fatalf("move by an admin of the source only: %+v", r.Errors)
		}
		if after := e.bndState(t, id); after != before {
			t.Fatalf("a refused move changed the learner:\n%s\n%s", before, after)
		}
		if as := e.audits(t, id); siHas(as, "learner.move") {
			t.Fatalf("a refused move was audited as a move: %v", as)
		}
		// Kent's admin does not see the Medway learner at all.
		e.api.Grant("kcc-admin", domain.RoleOrganisationAdmin, e.p.ID, &kcc, nil)
		if r := move(e.api.Token("kcc-admin"), "mo@kent.gov.uk"); r.Code() != "NOT_FOUND" {
			t.Fatalf("move by an admin of the destination only: %+v", r.Errors)
		}
		// An admin of both organisations moves the learner.
		e.api.Grant("medway-admin", domain.RoleOrganisationAdmin, e.p.ID, &kcc, nil)
		var out struct {
			UpdateLearner struct {
				Organisation struct{ Name string }
				Version      int
			}
		}
		move(e.api.Token("medway-admin"), "mo@kent.gov.uk").Decode(t, &out)
		if out.UpdateLearner.Organisation.Name != siKCC {
			t.Fatalf("moved to %s", out.UpdateLearner.Organisation.Name)
		}
		e.bndStrictlyIncreasing(t, id)
		// A programme admin moves back.
		var back struct {
			UpdateLearner struct{ Organisation struct{ Name string } }
		}
		move(e.api.BootstrapToken(), "mo@medway.gov.uk").Decode(t, &back)
		if back.UpdateLearner.Organisation.Name != siMedway {
			t.Fatalf("moved back to %s", back.UpdateLearner.Organisation.Name)
		}
	})
}

// ---------------------------------------------------------------------------
// Invariant 1, CTL-5: the takeover-by-email decision table (docs/lifecycle.md).

func TestSignIn_INV1_TakeoverByEmailFollowsTheDecisionTable(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		prog := e.registerProgramme(t)
		refusedLink := func(t *testing.T, learnerID, tok, reason string) {
			t.Helper()
			before := e.bndState(t, learnerID)
			audits := len(e.audits(t, learnerID))
			e.refused(t, tok, reason)
			if after := e.bndState(t, learnerID); after != before {
				t.Fatalf("refused takeover changed the learner:\n%s\n%s", before, after)
			}
			as := e.audits(t, learnerID)
			if len(as) != audits+1 || as[len(as)-1] != "learner.identity.link.refused" {
				t.Fatalf("refused takeover not audited: %v", as)
			}
			details := e.col(t, `SELECT details FROM audit_entries WHERE target_id = ? AND action = 'learner.identity.link.refused' ORDER BY id DESC`, learnerID)
			if len(details) == 0 || !strings.Contains(details[0], reason) {
				t.Fatalf("refusal audit details %v, want %s", details, reason)
			}
		}

		// 1. A record made by someone's own sign-in is never taken over, not
		// even by the programme's provider, which speaks for every partner.
		ann := e.signedIn(t, siToken(t, e, e.kcc, siUser{sub: "kcc-ann", email: "ann@kent.gov.uk", verified: siTrue, given: "Ann", family: "A"})).Learner
		refusedLink(t, ann.ID, siToken(t, e, prog, siUser{sub: "prog-ann", email: "ann@kent.gov.uk", verified: siTrue}), "EMAIL_LINKED_TO_ANOTHER_ACCOUNT")

		// 2. An admin-made record already linked once is not linked again.
		bea := e.createLearner(t, siKCC, "bea@kent.gov.uk", nil)
		e.signedIn(t, siToken(t, e, e.kcc, siUser{sub: "kcc-bea", email: "bea@kent.gov.uk", verified: siTrue}))
		refusedLink(t, bea, siToken(t, e, e.kcc, siUser{sub: "kcc-bea-2", email: "bea@kent.gov.uk", verified: siTrue}), "LEARNER_ALREADY_LINKED")

		// 3. An admin-made record of a learner who is leaving is not linked.
		cal := e.createLearner(t, siKCC, "cal@kent.gov.uk", nil)
		var left struct{ MarkLeaver struct{ ID string } }
		e.api.MustDo(e.api.BootstrapToken(), `mutation($id: ID!) { markLeaver(learnerId: $id, reason: "left") { id } }`, map[string]any{"id": cal}, &left)
		refusedLink(t, cal, siToken(t, e, e.kcc, siUser{sub: "kcc-cal", email: "cal@kent.gov.uk", verified: siTrue}), "LEARNER_NOT_LINKABLE")

		// 4. Kent has its own provider: the programme's provider is not the one
		// authoritative for kent.gov.uk, so it cannot link Kent's records.
		dan := e.createLearner(t, siKCC, "dan@kent.gov.uk", nil)
		refusedLink(t, dan, siToken(t, e, prog, siUser{sub: "prog-dan", email: "dan@kent.gov.uk", verified: siTrue}), "ISSUER_NOT_AUTHORITATIVE")
		// Another partner's provider is refused too (invariant 1).
		refusedLink(t, dan, siToken(t, e, e.medway, siUser{sub: "med-dan", email: "dan@kent.gov.uk", verified: siTrue}), "ISSUER_NOT_AUTHORITATIVE")

		// 5. Allowed: an admin-made, never-linked record of a learner who has
		// or awaits access, by the authoritative provider: Kent's own for
		// Kent, the programme's for Ashford (which has none of its own).
		if got := e.signedIn(t, siToken(t, e, e.kcc, siUser{sub: "kcc-dan", email: "dan@kent.gov.uk", verified: siTrue})).Learner; got.ID != dan {
			t.Fatalf("Kent's provider reached %s, want %s", got.ID, dan)
		}
		eve := e.createLearner(t, siAshf, "eve@ashford.gov.uk", nil)
		if got := e.signedIn(t, siToken(t, e, prog, siUser{sub: "prog-eve", email: "eve@ashford.gov.uk", verified: siTrue})).Learner; got.ID != eve {
			t.Fatalf("the programme's provider reached %s, want Ashford's %s", got.ID, eve)
		}
		for _, id := range []string{dan, eve} {
			if as := e.audits(t, id); !siHas(as, "learner.identity.link") {
				t.Errorf("link of %s not audited: %v", id, as)
			}
			e.bndStrictlyIncreasing(t, id)
		}
	})
}

// ---------------------------------------------------------------------------
// CTL-1: decisions are joint.

func TestMembership_CTL1_OnePersonApprovesOnceAndActsForOneBody(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		var bodies []string
		for _, b := range e.p.Bodies {
			bodies = append(bodies, b.ID)
		}
		if len(bodies) != 2 {
			t.Fatalf("Connect to Learn has %d governing bodies, want 2", len(bodies))
		}
		e.api.Grant("sds-admin", domain.RoleProgrammeAdmin, e.p.ID, nil, &bodies[0])
		// A second governing body for the same person is refused.
		r := e.api.Do(e.api.BootstrapToken(), `mutation($in: GrantRoleInput!) { grantRole(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"issuer": e.api.Issuer.URL(), "subject": "sds-admin", "role": "PROGRAMME_ADMIN",
				"programmeId": e.p.ID, "governingBodyId": bodies[1]}})
		if r.Code() != "CONFLICT" || r.Ext("rule") != "CTL-1" || r.Ext("reason") != "ONE_GOVERNING_BODY_PER_PERSON" {
			t.Fatalf("second body for one person: %+v", r.Errors)
		}
		if n := e.count(t, `SELECT count(*) FROM role_grants WHERE subject = 'sds-admin'`); n != 1 {
			t.Fatalf("sds-admin holds %d grants, want 1", n)
		}
		// The database holds the rule too, whatever path writes a grant.
		if _, err := e.api.Store.SQL().Exec(e.sql(`INSERT INTO role_grants (id, issuer, subject, role, programme_id, governing_body_id, created_at, created_by)
			SELECT ?, issuer, subject, role, programme_id, ?, created_at, created_by FROM role_grants WHERE subject = 'sds-admin'`),
			"01900000-0000-7000-8000-0000000000c1", bodies[1]); err == nil {
			t.Fatal("the database took a second governing body for one person")
		}

		var prop struct{ ProposeMembership struct{ ID string } }
		e.api.MustDo(e.api.BootstrapToken(), `mutation($in: ProposeMembershipInput!) { proposeMembership(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"programmeId": e.p.ID, "action": "ADMIT", "name": "Joint Decision Partner", "kind": "OTHER",
				"domains": []any{map[string]any{"domain": "joint-decision.org.uk"}}, "reason": "CTL-1 test"}}, &prop)
		approve := func(sub string) testkit.Response {
			return e.api.Do(e.api.Token(sub), `mutation($id: ID!) { approveMembership(proposalId: $id) { status } }`,
				map[string]any{"id": prop.ProposeMembership.ID})
		}
		var first struct{ ApproveMembership struct{ Status string } }
		approve("sds-admin").Decode(t, &first)
		if first.ApproveMembership.Status != "PENDING" {
			t.Fatalf("after one body: %s", first.ApproveMembership.Status)
		}
		r = approve("sds-admin")
		if r.Code() != "CONFLICT" || r.Ext("rule") != "CTL-1" {
			t.Fatalf("second approval by the same person: %+v", r.Errors)
		}
		if n := e.count(t, `SELECT count(*) FROM membership_approvals WHERE proposal_id = ?`, prop.ProposeMembership.ID); n != 1 {
			t.Fatalf("%d approvals, want 1", n)
		}
		if n := e.count(t, `SELECT count(*) FROM organisations WHERE name = 'Joint Decision Partner' AND status = 'ADMITTED'`); n != 0 {
			t.Fatal("one person admitted the organisation alone")
		}
		// The other body's admin completes it.
		e.api.Grant("kc-admin", domain.RoleProgrammeAdmin, e.p.ID, nil, &bodies[1])
		var second struct{ ApproveMembership struct{ Status string } }
		approve("kc-admin").Decode(t, &second)
		if second.ApproveMembership.Status != "APPLIED" {
			t.Fatalf("after both bodies: %s", second.ApproveMembership.Status)
		}
	})
}

// ---------------------------------------------------------------------------
// CTL-6: the contract end ends access at once, before any sweep.

func TestContract_CTL6_AfterTheEndNoProvisioningNoActivationNoAccess(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		active := e.activeLearner(t, e.kcc, "")
		pending := e.newLearner(t, e.kcc, "")
		_, secret := e.issueKey(t, e.ctl.ID, "Moodle")
		if page := e.enrolmentPage(t, secret, e.ctl.ID, 1000, nil); len(page.Enrolments) == 0 {
			t.Fatal("fixture: no enrolments before the contract end")
		}
		end := e.api.Clock.Now().Add(48 * time.Hour)
		e.must(t, e.boot(), `mutation($p: ID!, $in: RuleSettingsInput!) { updateProgrammeRules(programmeId: $p, input: $in) { id } }`,
			map[string]any{"p": e.ctl.ID, "in": map[string]any{"contractEndsAt": lmsTime(end), "reason": "contract ends"}}, nil)
		e.api.Clock.Set(end.Add(time.Minute))
		if n := e.count(t, `SELECT count(*) FROM learners WHERE status = 'ERASED'`); n != 0 {
			t.Fatalf("fixture: %d learners erased before any sweep", n)
		}

		// accessAllowed is false at once, for the admin's and the LMS's reads.
		for _, id := range []string{active, pending} {
			var out struct {
				Learner struct {
					Status        string
					AccessAllowed bool
				}
			}
			e.must(t, e.boot(), `query($id: ID!) { learner(id: $id) { status accessAllowed } }`, map[string]any{"id": id}, &out)
			if out.Learner.AccessAllowed {
				t.Errorf("learner %s (%s) has access after the contract end", id, out.Learner.Status)
			}
		}
		var list struct {
			Learners struct {
				Edges []struct{ Node struct{ AccessAllowed bool } }
			}
		}
		e.must(t, secret, `query($p: ID!) { learners(programmeId: $p, first: 100) { edges { node { accessAllowed } } } }`,
			map[string]any{"p": e.ctl.ID}, &list)
		for _, ed := range list.Learners.Edges {
			if ed.Node.AccessAllowed {
				t.Fatal("the learners list shows access after the contract end")
			}
		}
		// The desired state empties.
		if page := e.enrolmentPage(t, secret, e.ctl.ID, 1000, nil); len(page.Enrolments) != 0 {
			t.Fatalf("%d enrolments after the contract end", len(page.Enrolments))
		}
		// No activation: accepting the policies records the acceptance only.
		r := e.do(e.boot(), `mutation($id: ID!, $in: AcceptPoliciesInput!, $n: String!) {
			acceptPoliciesOnBehalf(learnerId: $id, input: $in, note: $n) { status accessAllowed } }`,
			map[string]any{"id": pending, "in": map[string]any{"policyVersionIds": e.compulsory(t, e.ctl.ID), "confirmMinimumAge": true}, "n": "paper form"})
		if r.Code() != "FORBIDDEN" || r.Ext("rule") != "CTL-6" {
			t.Fatalf("activation after the contract end: %+v %s", r.Errors, r.Data)
		}
		if n := e.count(t, `SELECT count(*) FROM learners WHERE id = ? AND status = 'PENDING_ACCEPTANCE'`, pending); n != 1 {
			t.Fatal("the pending learner changed status")
		}
		// No provisioning: neither by an admin nor by a first sign-in.
		r = e.do(e.boot(), `mutation($o: ID!, $in: LearnerInput!) { createLearner(organisationId: $o, input: $in) { id } }`,
			map[string]any{"o": e.kcc, "in": map[string]any{"email": "late@kent.gov.uk", "givenName": "Late", "familyName": "Comer"}})
		if r.Code() != "FORBIDDEN" || r.Ext("rule") != "CTL-6" {
			t.Fatalf("createLearner after the contract end: %+v", r.Errors)
		}
		r = e.do(e.boot(), `mutation($o: ID!, $rows: [LearnerInput!]!) { importLearners(organisationId: $o, rows: $rows, dryRun: false) { created } }`,
			map[string]any{"o": e.kcc, "rows": []any{map[string]any{"email": "late2@kent.gov.uk", "givenName": "Late", "familyName": "Comer"}}})
		if r.Code() != "FORBIDDEN" || r.Ext("rule") != "CTL-6" {
			t.Fatalf("importLearners after the contract end: %+v", r.Errors)
		}
		learners := e.count(t, `SELECT count(*) FROM learners`)
		kccIdP := e.api.RegisterProvider(e.ctl.ID, e.kcc, testkit.ProviderInput{ClientID: "kcc", Secret: "s3cret", EmailTrust: "VERIFIED_CLAIM"})
		verified := true
		tok := kccIdP.Mint(t, oidcissuer.Claims{Subject: "kcc-late", Email: "later@kent.gov.uk", EmailVerified: &verified})
		var v struct {
			Viewer struct {
				Learner     *struct{ ID string }
				SignInError *string
			}
		}
		e.must(t, tok, `{ viewer { learner { id } signInError } }`, nil, &v)
		if v.Viewer.Learner != nil || v.Viewer.SignInError == nil || !strings.Contains(*v.Viewer.SignInError, "CONTRACT_ENDED") {
			t.Fatalf("first sign-in after the contract end: %+v %v", v.Viewer.Learner, siDeref(v.Viewer.SignInError))
		}
		if n := e.count(t, `SELECT count(*) FROM learners`); n != learners {
			t.Fatalf("sign-in after the contract end provisioned: %d -> %d", learners, n)
		}
	})
}

// ---------------------------------------------------------------------------
// CTL-10 for the LMS: personal data only of learners in the desired state.

func TestLMS_CTL10_ReadsNamesAndEmailsOnlyOfLearnersWithAccess(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		active := e.activeLearner(t, e.kcc, "")
		pending := e.newLearner(t, e.kcc, "")
		leaver := e.activeLearner(t, e.kcc, "")
		e.markLeaver(t, leaver)
		_, secret := e.issueKey(t, e.ctl.ID, "Moodle")
		type node struct {
			ID, Status                   string
			Version                      int
			Email, GivenName, FamilyName *string
		}
		check := func(t *testing.T, how string, n node) {
			t.Helper()
			personal := n.Email != nil || n.GivenName != nil || n.FamilyName != nil
			switch n.ID {
			case active:
				if !personal || n.Email == nil {
					t.Errorf("%s: the active learner's name and email are missing: %+v", how, n)
				}
			case pending, leaver:
				if personal {
					t.Errorf("%s: the LMS read personal data of a %s learner: %+v", how, n.Status, n)
				}
				if n.Status == "" || n.Version == 0 {
					t.Errorf("%s: status and version must stay readable: %+v", how, n)
				}
			}
		}
		const fields = `id status version email givenName familyName`
		var list struct {
			Learners struct{ Edges []struct{ Node node } }
		}
		e.must(t, secret, `query($p: ID!) { learners(programmeId: $p, first: 500) { edges { node { `+fields+` } } } }`,
			map[string]any{"p": e.ctl.ID}, &list)
		seen := 0
		for _, ed := range list.Learners.Edges {
			if ed.Node.ID == active || ed.Node.ID == pending || ed.Node.ID == leaver {
				seen++
				check(t, "learners", ed.Node)
			}
		}
		if seen != 3 {
			t.Fatalf("learners listed %d of the 3", seen)
		}
		for _, id := range []string{active, pending, leaver} {
			var one struct{ Learner node }
			e.must(t, secret, `query($id: ID!) { learner(id: $id) { `+fields+` } }`, map[string]any{"id": id}, &one)
			check(t, "learner", one.Learner)
		}
		var feed struct {
			LifecycleEvents struct {
				Events []struct{ Learner *node }
			}
		}
		e.must(t, secret, `query($p: ID!) { lifecycleEvents(programmeId: $p, first: 500) { events { learner { `+fields+` } } } }`,
			map[string]any{"p": e.ctl.ID}, &feed)
		fed := 0
		for _, ev := range feed.LifecycleEvents.Events {
			if ev.Learner != nil {
				fed++
				check(t, "lifecycleEvents.learner", *ev.Learner)
			}
		}
		if fed == 0 {
			t.Fatal("the feed resolved no learner")
		}
		// The learner's own organisation admin still reads the pending learner.
		var admin struct{ Learner node }
		e.must(t, e.boot(), `query($id: ID!) { learner(id: $id) { `+fields+` } }`, map[string]any{"id": pending}, &admin)
		if admin.Learner.Email == nil {
			t.Fatal("a programme admin lost the pending learner's email")
		}
	})
}

// ---------------------------------------------------------------------------
// Invariant 3 and the first-activation column.

func TestFeed_INV3_EveryEventOfALearnerHasItsOwnVersion(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		prog := e.registerProgramme(t)
		// An admin edit that changes the name and the group: two events, two versions.
		id := e.createLearner(t, siKCC, "ivy@kent.gov.uk", nil)
		var g struct{ CreateAccessGroup struct{ ID string } }
		e.api.MustDo(e.api.BootstrapToken(), `mutation($o: ID!) { createAccessGroup(organisationId: $o, input: {name: "Social care"}) { id } }`,
			map[string]any{"o": e.org(t, siKCC)}, &g)
		e.api.MustDo(e.api.BootstrapToken(), `mutation($id: ID!, $in: LearnerUpdateInput!) { updateLearner(learnerId: $id, input: $in) { id } }`,
			map[string]any{"id": id, "in": map[string]any{"givenName": "Ivy", "accessGroupId": g.CreateAccessGroup.ID, "reason": "corrected"}}, &g)
		evs := e.bndStrictlyIncreasing(t, id)
		if want := fmt.Sprint([]siEvent{{"LEARNER_PROVISIONED", 1}, {"LEARNER_UPDATED", 2}, {"GROUP_CHANGED", 3}}); fmt.Sprint(evs) != want {
			t.Fatalf("admin edit feed %v, want %s", evs, want)
		}
		// A sign-in that moves the learner to another organisation (the
		// programme's provider speaks for both): UPDATED and GROUP_CHANGED.
		u := siUser{sub: "prog-jo", email: "jo@kent.gov.uk", verified: siTrue, given: "Jo", family: "J"}
		jo := e.signedIn(t, siToken(t, e, prog, u)).Learner
		u.email, u.given = "jo@medway.gov.uk", "Joanna"
		moved := e.signedIn(t, siToken(t, e, prog, u)).Learner
		if moved.Organisation.Name != siMedway {
			t.Fatalf("sign-in moved Jo to %s", moved.Organisation.Name)
		}
		evs = e.bndStrictlyIncreasing(t, jo.ID)
		if last := evs[len(evs)-1]; last.Version != moved.Version {
			t.Fatalf("feed %v ends below the learner's version %d", evs, moved.Version)
		}
		if len(evs) < 3 {
			t.Fatalf("feed %v: want the move and the group change as separate events", evs)
		}
	})
}

func TestAcceptance_CTL5_FirstActivationIsRecordedOnTheLearnerNotReadFromTheFeed(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		id := e.activeLearner(t, e.kcc, "")
		if n := e.count(t, `SELECT count(*) FROM learners WHERE id = ? AND first_activated_at IS NOT NULL`, id); n != 1 {
			t.Fatal("first activation not recorded on the learner")
		}
		// The feed rows are purged after the feed retention; simulate it.
		if _, err := e.api.Store.SQL().Exec(e.sql(`DELETE FROM lifecycle_events WHERE learner_id = ?`), id); err != nil {
			t.Fatal(err)
		}
		// A new version of a compulsory policy makes the acceptance stale (ONC-1).
		var pols struct {
			Programme struct {
				Policies []struct {
					ID         string
					Compulsory bool
				}
			}
		}
		e.must(t, e.boot(), `query($id: ID!) { programme(id: $id) { policies { id compulsory } } }`, map[string]any{"id": e.ctl.ID}, &pols)
		var pid string
		for _, p := range pols.Programme.Policies {
			if p.Compulsory {
				pid = p.ID
				break
			}
		}
		e.must(t, e.boot(), `mutation($p: ID!, $in: PolicyVersionInput!) { publishPolicyVersion(policyId: $p, input: $in) { id } }`,
			map[string]any{"p": pid, "in": map[string]any{"label": "v-next", "summary": "changed", "content": "new text", "activate": true}}, nil)
		e.compulsoryCache = map[string][]string{}
		e.activate(t, e.ctl.ID, id)
		types := e.api.Count(`SELECT count(*) FROM lifecycle_events WHERE learner_id = ? AND type = 'LEARNER_ACTIVATED'`, id)
		granted := e.api.Count(`SELECT count(*) FROM lifecycle_events WHERE learner_id = ? AND type = 'ACCESS_GRANTED'`, id)
		if types != 0 || granted != 1 {
			t.Fatalf("re-activation after the feed was purged: %d LEARNER_ACTIVATED, %d ACCESS_GRANTED; want 0 and 1", types, granted)
		}
	})
}

// ---------------------------------------------------------------------------
// GEN-1: every trigger, the earliest as keptUntil.

func TestRetention_GEN1_ListsEveryTriggerAndKeepsTheEarliest(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		id := e.activeLearner(t, e.kcc, "")
		type trig struct {
			Rule, Reason string
			Date         *time.Time
		}
		type statement struct {
			KeptUntil    *time.Time
			Rule, Reason string
			Triggers     []trig
		}
		read := func() statement {
			var out struct{ Retention statement }
			e.must(t, e.boot(), `query($id: ID!) { retention(learnerId: $id) { keptUntil rule reason triggers { rule reason date } } }`,
				map[string]any{"id": id}, &out)
			return out.Retention
		}
		// Connect to Learn: inactivity (a year) and the seeded contract end,
		// earliest first; keptUntil is the first.
		s := read()
		if len(s.Triggers) != 2 || s.Triggers[0].Date == nil || s.Triggers[1].Date == nil || s.Triggers[1].Date.Before(*s.Triggers[0].Date) ||
			s.KeptUntil == nil || !s.KeptUntil.Equal(*s.Triggers[0].Date) || s.Rule != s.Triggers[0].Rule ||
			fmt.Sprint(map[string]bool{s.Triggers[0].Rule: true, s.Triggers[1].Rule: true}) != "map[CTL-6:true CTL-7:true]" {
			t.Fatalf("active learner: %+v", s)
		}
		// A leaver: the pending removal (30 days) and the contract end; the
		// contract now ends before the removal is due, so it is keptUntil.
		e.markLeaver(t, id)
		end := e.api.Clock.Now().Add(3 * 24 * time.Hour)
		e.must(t, e.boot(), `mutation($p: ID!, $in: RuleSettingsInput!) { updateProgrammeRules(programmeId: $p, input: $in) { id } }`,
			map[string]any{"p": e.ctl.ID, "in": map[string]any{"contractEndsAt": lmsTime(end), "reason": "contract shortened"}}, nil)
		s = read()
		rules := []string{}
		for _, tr := range s.Triggers {
			rules = append(rules, tr.Rule)
			if tr.Reason == "" {
				t.Errorf("trigger %s without words", tr.Rule)
			}
		}
		if fmt.Sprint(rules) != "[CTL-6 CTL-9]" || s.KeptUntil == nil || !s.KeptUntil.Equal(end) || s.Rule != "CTL-6" ||
			!strings.Contains(s.Reason, "contract") {
			t.Fatalf("leaver with an earlier contract end: %+v", s)
		}
	})
}

// ---------------------------------------------------------------------------
// A member of staff who administers is a learner too, with one identity.

func TestViewer_CTL12_StaffAdminSignsInAsALearnerWithTheSameIdentity(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		kcc := e.org(t, siKCC)
		ctx := lifecycle.WithSystem(context.Background(), "test")
		if _, err := e.api.Service.GrantRole(ctx, lifecycle.GrantRoleInput{Issuer: e.kcc.Issuer.URL(), Subject: "kcc-staff",
			Role: domain.RoleOrganisationAdmin, ProgrammeID: e.p.ID, OrganisationID: &kcc}); err != nil {
			t.Fatal(err)
		}
		tok := siToken(t, e, e.kcc, siUser{sub: "kcc-staff", email: "staff@kent.gov.uk", verified: siTrue, given: "Sam", family: "Staff"})
		var out struct {
			Viewer struct {
				Roles   []struct{ Role string }
				Learner *struct {
					ID, Email, Status string
				}
			}
		}
		e.api.MustDo(tok, `{ viewer { roles { role } learner { id email status } } }`, nil, &out)
		if len(out.Viewer.Roles) != 1 || out.Viewer.Roles[0].Role != "ORGANISATION_ADMIN" {
			t.Fatalf("roles %+v", out.Viewer.Roles)
		}
		if out.Viewer.Learner == nil || out.Viewer.Learner.Email != "staff@kent.gov.uk" || out.Viewer.Learner.Status != "PENDING_ACCEPTANCE" {
			t.Fatalf("the admin was not provisioned as a learner: %+v", out.Viewer.Learner)
		}
		// The same identity, once: a second request finds the same learner.
		e.api.MustDo(tok, `{ viewer { roles { role } learner { id email status } } }`, nil, &out)
		if n := e.count(t, `SELECT count(*) FROM learner_identities WHERE subject = 'kcc-staff'`); n != 1 {
			t.Fatalf("%d identities for the staff member", n)
		}
		// The admin issuer (not a learner provider) stays staff only, with no sign-in error.
		var admin struct {
			Viewer struct {
				Learner     *struct{ ID string }
				SignInError *string
			}
		}
		e.api.MustDo(e.api.BootstrapToken(), `{ viewer { learner { id } signInError } }`, nil, &admin)
		if admin.Viewer.Learner != nil || admin.Viewer.SignInError != nil {
			t.Fatalf("bootstrap admin viewer: %+v", admin.Viewer)
		}
	})
}
