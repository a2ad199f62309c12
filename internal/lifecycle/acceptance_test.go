package lifecycle_test

import (
	"context"
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

func accPendingIDs(e *testkit.World, l domain.Learner) []string {
	e.T.Helper()
	vs, err := e.Service.PendingPolicies(e.Sys, l)
	if err != nil {
		e.T.Fatal(err)
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	return out
}

func accByVersion(as []domain.PolicyAcceptance) map[string]domain.PolicyAcceptance {
	out := map[string]domain.PolicyAcceptance{}
	for _, a := range as {
		out[a.PolicyVersionID] = a
	}
	return out
}

func TestAcceptPolicies_CTL5_ActivatesOnlyWhenAllCompulsoryAccepted(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		l, self := w.LinkedKCC("alice")
		if l.Status != domain.StatusPendingAcceptance || l.AccessAllowed() || l.Version != 2 {
			t.Fatalf("fixture: %+v", l)
		}
		if got := accPendingIDs(w.World, l); !lrnSameSet(got, []string{w.SiteV1.ID, w.PrivacyV1.ID}) {
			t.Fatalf("pending: %v", got)
		}
		t0 := w.Clock.Now()

		// One of two compulsory policies: still pending, nothing for the LMS.
		out, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != domain.StatusPendingAcceptance || out.AccessAllowed() || out.Version != 2 {
			t.Fatalf("after one of two: %+v", out)
		}
		if got := accPendingIDs(w.World, w.Learner(l.ID)); !lrnSameSet(got, []string{w.PrivacyV1.ID}) {
			t.Fatalf("pending after one: %v", got)
		}
		w.WantFeed(l.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2))

		// The other (with the optional one): active, one LEARNER_ACTIVATED.
		w.Clock.Advance(time.Hour)
		t1 := w.Clock.Now()
		out, err = w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.PrivacyV1.ID, w.OptionalV1.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != domain.StatusActive || !out.AccessAllowed() || out.Version != 3 {
			t.Fatalf("after all compulsory: %+v", out)
		}
		if got := w.Learner(l.ID); got.Status != domain.StatusActive || got.Version != 3 {
			t.Fatalf("stored: %+v", got)
		}
		w.WantFeed(l.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3))
		if got := accPendingIDs(w.World, out); len(got) != 0 {
			t.Fatalf("pending when active: %v", got)
		}

		// CTL-5: who, which version, when, given by whom.
		acc := accByVersion(w.Acceptances(l.ID))
		if len(acc) != 3 {
			t.Fatalf("acceptances: %+v", acc)
		}
		for vid, when := range map[string]time.Time{w.SiteV1.ID: t0, w.PrivacyV1.ID: t1, w.OptionalV1.ID: t1} {
			a := acc[vid]
			if a.LearnerID != l.ID || a.Decision != domain.DecisionAccepted || a.GivenBy != "SELF" ||
				a.ActorID != lifecycle.ActorIDFor(testkit.KCCIssuer, "alice") || !a.DecidedAt.Equal(when) || a.Note != "" || a.AgeConfirmed {
				t.Errorf("acceptance of %s: %+v (want decided at %s)", vid, a, when)
			}
		}
		es := w.Audit(w.Programme.ID)
		if acc := lrnEntries(es, "policy.accept", l.ID); len(acc) != 2 || acc[0].Details["givenBy"] != "SELF" {
			t.Fatalf("policy.accept entries: %+v", acc)
		}
		if n := len(lrnEntries(es, "learner.activate", l.ID)); n != 1 {
			t.Fatalf("learner.activate entries: %d", n)
		}

		// Accepting again while active changes nothing the LMS sees.
		out, err = w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID}})
		if err != nil || out.Status != domain.StatusActive || out.Version != 3 {
			t.Fatalf("re-accept: %+v %v", out, err)
		}
		w.WantFeed(l.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3))

		// Malformed calls and callers who are not a learner.
		_, err = w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{})
		wantCode(t, err, apperr.BadUserInput)
		many := make([]string, 51)
		for i := range many {
			many[i] = w.SiteV1.ID
		}
		_, err = w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: many})
		wantCode(t, err, apperr.BadUserInput)
		_, err = w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID}, Decline: true})
		wantCode(t, err, apperr.BadUserInput)
		if ae := lrnAppErr(t, err); ae.Rule != "CTL-5" {
			t.Errorf("declining a compulsory policy: rule %q", ae.Rule)
		}
		_, err = w.Service.AcceptPolicies(w.As("kc"), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID}})
		wantCode(t, err, apperr.Forbidden)
		_, err = w.Service.AcceptPolicies(context.Background(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID}})
		wantCode(t, err, apperr.Unauthenticated)
		if got := accByVersion(w.Acceptances(l.ID))[w.SiteV1.ID]; got.Decision != domain.DecisionAccepted {
			t.Fatalf("a refused decline changed the acceptance: %+v", got)
		}
	})
}

func TestAcceptPolicies_ONC2_PrivacyNeedsAgeConfirmation(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewOnclick(t, st)
		l, self := w.Linked(w.WSCC.ID, "sam@westsussex.gov.uk", testkit.WSCCIssuer, "sam")

		// Both policies at once without the confirmation: refused whole.
		_, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID}})
		wantCode(t, err, apperr.BadUserInput)
		ae := lrnAppErr(t, err)
		if ae.Rule != "ONC-2" || ae.Field != "confirmMinimumAge" || !strings.Contains(ae.Message, "16") {
			t.Fatalf("refusal: %+v", ae)
		}
		got := w.Learner(l.ID)
		if got.Status != domain.StatusPendingAcceptance || got.AccessAllowed() || got.Version != l.Version {
			t.Fatalf("a refused acceptance changed the learner: %+v", got)
		}
		if as := w.Acceptances(l.ID); len(as) != 0 {
			t.Fatalf("a refused acceptance recorded decisions: %+v", as)
		}
		w.WantFeed(l.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2))

		// The refusal is recorded, with the rule and nothing about the person's age.
		es := w.Audit(w.Programme.ID)
		refused := lrnEntries(es, "policy.accept.refused", l.ID)
		if len(refused) != 1 {
			rows := testkit.Count(t, st, `SELECT count(*) FROM audit_entries WHERE action = 'policy.accept.refused'`)
			t.Errorf("want one policy.accept.refused entry in the programme's audit log, got %d (rows in the whole table: %d)", len(refused), rows)
		} else {
			r := refused[0]
			if r.Details["rule"] != "ONC-2" || r.ActorID != lifecycle.ActorIDFor(testkit.WSCCIssuer, "sam") || r.TargetType != "learner" {
				t.Errorf("refusal entry: %+v", r)
			}
			for k := range r.Details {
				if strings.Contains(strings.ToLower(k), "age") || strings.Contains(strings.ToLower(k), "birth") {
					t.Errorf("refusal entry keeps age data: %+v", r.Details)
				}
			}
		}
		if n := len(lrnEntries(es, "policy.accept", l.ID)); n != 0 {
			t.Fatalf("refused acceptance audited as accepted: %d", n)
		}

		// The site policy alone needs no confirmation; the learner stays pending.
		out, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID}})
		if err != nil || out.Status != domain.StatusPendingAcceptance {
			t.Fatalf("site policy alone: %+v %v", out, err)
		}
		// With the confirmation: active, and the privacy acceptance records it.
		out, err = w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.PrivacyV1.ID}, ConfirmMinimumAge: true})
		if err != nil || out.Status != domain.StatusActive || !out.AccessAllowed() {
			t.Fatalf("confirmed: %+v %v", out, err)
		}
		acc := accByVersion(w.Acceptances(l.ID))
		if !acc[w.PrivacyV1.ID].AgeConfirmed || acc[w.SiteV1.ID].AgeConfirmed {
			t.Fatalf("age confirmation recorded on the wrong acceptance: %+v", acc)
		}
		w.WantFeed(l.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3))

		// An admin accepting on a learner's behalf needs the confirmation too.
		other := w.CreateLearner(w.WSCC.ID, "pat@westsussex.gov.uk", "G", "F")
		_, err = w.Service.AcceptPolicies(w.As("wscc-admin"), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID},
			OnBehalfOf: other.ID, Note: "paper form"})
		wantCode(t, err, apperr.BadUserInput)
		if ae := lrnAppErr(t, err); ae.Rule != "ONC-2" {
			t.Fatalf("on behalf refusal: %+v", ae)
		}
		if got := w.Learner(other.ID); got.Status != domain.StatusPendingAcceptance {
			t.Fatalf("on behalf refusal activated: %+v", got)
		}
	})
}

func TestAcceptPolicies_ONC1_NonCurrentVersionRefused(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		l, self := w.LinkedKCC("alice")
		draft := w.Publish(w.Site.ID, "v2-draft", false)
		_, onc := newOtherProgramme(w.World)
		wantRefused := func(name string, ids ...string) {
			t.Helper()
			_, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: ids, ConfirmMinimumAge: true})
			if apperr.CodeOf(err) != apperr.BadUserInput {
				t.Errorf("%s: want BAD_USER_INPUT, got %v", name, err)
				return
			}
			if ae := lrnAppErr(t, err); ae.Reason != "NOT_CURRENT_VERSION" || ae.Rule != "ONC-1" || ae.Field != "policyVersionIds" {
				t.Errorf("%s: %+v", name, ae)
			}
		}
		wantRefused("a draft version", draft.ID)
		wantRefused("a current version beside a draft", w.SiteV1.ID, w.PrivacyV1.ID, draft.ID)
		wantRefused("another programme's current version", onc.ID)
		wantRefused("an unknown version", "00000000-0000-0000-0000-000000000000")
		wantRefused("a malformed ID", "not-an-id")
		// A newer version activated: the first is archived and refused.
		v3 := w.Publish(w.Site.ID, "v3", true)
		wantRefused("an archived version", w.SiteV1.ID)
		if as := w.Acceptances(l.ID); len(as) != 0 {
			t.Fatalf("refused acceptances recorded: %+v", as)
		}
		if n := len(lrnEntries(w.Audit(w.Programme.ID), "policy.accept", l.ID)); n != 0 {
			t.Fatalf("refused acceptances audited: %d", n)
		}
		if got := w.Learner(l.ID); got.Version != l.Version || got.Status != domain.StatusPendingAcceptance {
			t.Fatalf("refused acceptances changed the learner: %+v", got)
		}
		// The current ones are accepted.
		out, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{v3.ID, w.PrivacyV1.ID}})
		if err != nil || out.Status != domain.StatusActive {
			t.Fatalf("current versions: %+v %v", out, err)
		}
	})
}

// newOtherProgramme adds a second programme with one active compulsory site
// policy version to an existing environment.
func newOtherProgramme(e *testkit.World) (string, domain.PolicyVersion) {
	e.T.Helper()
	p := e.OnclickProgramme("Other programme", "Other")
	_, v := e.Policy(p.ID, "Site policy", domain.PolicySite, domain.AudienceAll, true)
	return p.ID, v
}

func TestAcceptPolicies_ONC1_NewCompulsoryVersionMakesAcceptanceStale(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		alice, aliceCtx := w.LinkedKCC("alice")
		bob, _ := w.LinkedKCC("bob") // never accepts: stays pending throughout
		if _, err := w.Service.AcceptPolicies(aliceCtx(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID}}); err != nil {
			t.Fatal(err)
		}
		// A Medway learner accepted on their behalf by their admin.
		dave := w.CreateLearner(w.Medway.ID, "dave@medway.gov.uk", "G", "F")
		if _, err := w.Service.AcceptPolicies(w.As("medway-admin"), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID},
			OnBehalfOf: dave.ID, Note: "signed form"}); err != nil {
			t.Fatal(err)
		}
		// A learner of another programme, active there.
		otherP, otherV := newOtherProgramme(w.World)
		tw := w.Admit(otherP, "Tunbridge Wells Borough Council", "tunbridgewells.gov.uk")
		erin := w.CreateLearner(tw.ID, "erin@tunbridgewells.gov.uk", "G", "F")
		if _, err := w.Service.AcceptPolicies(w.Sys, lifecycle.AcceptInput{PolicyVersionIDs: []string{otherV.ID},
			OnBehalfOf: erin.ID, Note: "n"}); err != nil {
			t.Fatal(err)
		}
		erinBefore := w.Learner(erin.ID)
		if erinBefore.Status != domain.StatusActive {
			t.Fatalf("fixture: %+v", erinBefore)
		}
		aliceBefore, daveBefore, bobBefore := w.Learner(alice.ID), w.Learner(dave.ID), w.Learner(bob.ID)
		if aliceBefore.Status != domain.StatusActive || daveBefore.Status != domain.StatusActive {
			t.Fatalf("fixture: %+v %+v", aliceBefore, daveBefore)
		}

		// An optional policy's new version changes nobody's access.
		w.Clock.Advance(time.Hour)
		w.Publish(w.Optional.ID, "v2", true)
		if got := w.Learner(alice.ID); got.Status != domain.StatusActive || got.Version != aliceBefore.Version {
			t.Fatalf("an optional policy's new version revoked access: %+v", got)
		}

		// A compulsory policy's new version: every active learner of the
		// programme goes back to PENDING_ACCEPTANCE with ACCESS_REVOKED.
		siteV2, err := w.Service.PublishPolicyVersion(w.As("kc"), w.Site.ID, lifecycle.PolicyVersionInput{Label: "v2", Content: "New text.", Activate: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, before := range []domain.Learner{aliceBefore, daveBefore} {
			got := w.Learner(before.ID)
			if got.Status != domain.StatusPendingAcceptance || got.AccessAllowed() || got.Version != before.Version+1 {
				t.Fatalf("after v2: %+v (version before %d)", got, before.Version)
			}
			feed := w.Feed(before.ID)
			if last := feed[len(feed)-1]; last != testkit.Ev(domain.EventAccessRevoked, before.Version+1) {
				t.Fatalf("feed of %s: %v", before.ID, feed)
			}
		}
		if got := w.Learner(bob.ID); got.Version != bobBefore.Version || got.Status != domain.StatusPendingAcceptance {
			t.Fatalf("a pending learner was changed: %+v", got)
		}
		if got := w.Learner(erin.ID); got.Status != domain.StatusActive || got.Version != erinBefore.Version {
			t.Fatalf("a learner of another programme was changed: %+v", got)
		}
		if got := w.Feed(bob.ID); len(got) != 2 {
			t.Fatalf("a pending learner got feed rows: %v", got)
		}
		stale := lrnEntries(w.Audit(w.Programme.ID), "policy.acceptances.stale", siteV2.ID)
		if len(stale) != 1 || stale[0].Details["rule"] != "ONC-1" || fmt.Sprint(stale[0].Details["learnersMovedToPendingAcceptance"]) != "2" {
			t.Fatalf("stale audit: %+v", stale)
		}
		if got := accPendingIDs(w.World, w.Learner(alice.ID)); !lrnSameSet(got, []string{siteV2.ID}) {
			t.Fatalf("pending after v2: %v", got)
		}

		// Accepting the new version restores access: ACCESS_GRANTED, not a second activation.
		out, err := w.Service.AcceptPolicies(aliceCtx(), lifecycle.AcceptInput{PolicyVersionIDs: []string{siteV2.ID}})
		if err != nil || out.Status != domain.StatusActive || !out.AccessAllowed() || out.Version != aliceBefore.Version+2 {
			t.Fatalf("accept v2: %+v %v", out, err)
		}
		w.WantFeed(alice.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
			testkit.Ev(domain.EventAccessRevoked, 4), testkit.Ev(domain.EventAccessGranted, 5))
		// Re-accepting the stale version does not help dave.
		_, err = w.Service.AcceptPolicies(w.As("medway-admin"), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID}, OnBehalfOf: dave.ID, Note: "n"})
		wantCode(t, err, apperr.BadUserInput)
		if got := w.Learner(dave.ID); got.Status != domain.StatusPendingAcceptance {
			t.Fatalf("dave: %+v", got)
		}
	})
}

// A learner who never became active, whose earlier partial acceptance went
// stale, is activated for the first time: the LMS must see
// LEARNER_ACTIVATED, not ACCESS_GRANTED (which means access regained).
func TestAcceptPolicies_CTL5_FirstActivationAfterNewVersionIsLearnerActivated(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		l, self := w.LinkedKCC("bob")
		if _, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID}}); err != nil {
			t.Fatal(err)
		}
		siteV2 := w.Publish(w.Site.ID, "v2", true)
		out, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{siteV2.ID, w.PrivacyV1.ID}})
		if err != nil || out.Status != domain.StatusActive {
			t.Fatalf("accept: %+v %v", out, err)
		}
		w.WantFeed(l.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3))
	})
}

func TestAcceptPolicies_OptionalPolicyDeclineDoesNotAffectAccess(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		alice, aliceCtx := w.LinkedKCC("alice")
		if _, err := w.Service.AcceptPolicies(aliceCtx(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID}}); err != nil {
			t.Fatal(err)
		}
		active := w.Learner(alice.ID)
		feedActive := w.Feed(alice.ID)

		// Decline, accept, decline again: access untouched, one record per version.
		for i, decline := range []bool{true, false, true} {
			out, err := w.Service.AcceptPolicies(aliceCtx(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.OptionalV1.ID}, Decline: decline})
			if err != nil || out.Status != domain.StatusActive || !out.AccessAllowed() || out.Version != active.Version {
				t.Fatalf("step %d (decline=%v): %+v %v", i, decline, out, err)
			}
			want := domain.DecisionAccepted
			if decline {
				want = domain.DecisionDeclined
			}
			var mine []domain.PolicyAcceptance
			for _, a := range w.Acceptances(alice.ID) {
				if a.PolicyVersionID == w.OptionalV1.ID {
					mine = append(mine, a)
				}
			}
			if len(mine) != 1 || mine[0].Decision != want || mine[0].GivenBy != "SELF" {
				t.Fatalf("step %d: records of the optional version: %+v", i, mine)
			}
		}
		if got := w.Feed(alice.ID); fmt.Sprint(got) != fmt.Sprint(feedActive) {
			t.Fatalf("optional decisions wrote feed rows: %v", got)
		}
		es := w.Audit(w.Programme.ID)
		if d, a := len(lrnEntries(es, "policy.decline", alice.ID)), len(lrnEntries(es, "policy.accept", alice.ID)); d != 2 || a != 2 {
			t.Fatalf("audit: %d declines, %d accepts", d, a)
		}

		// A pending learner who declines the optional policy is activated by
		// the compulsory ones alone.
		bob, bobCtx := w.LinkedKCC("bob")
		out, err := w.Service.AcceptPolicies(bobCtx(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.OptionalV1.ID}, Decline: true})
		if err != nil || out.Status != domain.StatusPendingAcceptance || out.Version != bob.Version {
			t.Fatalf("pending decline: %+v %v", out, err)
		}
		if got := accPendingIDs(w.World, out); !lrnSameSet(got, []string{w.SiteV1.ID, w.PrivacyV1.ID}) {
			t.Fatalf("the optional policy is listed as pending: %v", got)
		}
		out, err = w.Service.AcceptPolicies(bobCtx(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID}})
		if err != nil || out.Status != domain.StatusActive {
			t.Fatalf("compulsory after optional declined: %+v %v", out, err)
		}
		// Declining a mix with a compulsory policy is refused whole.
		_, err = w.Service.AcceptPolicies(bobCtx(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.OptionalV1.ID, w.PrivacyV1.ID}, Decline: true})
		wantCode(t, err, apperr.BadUserInput)
		if got := accByVersion(w.Acceptances(bob.ID))[w.PrivacyV1.ID]; got.Decision != domain.DecisionAccepted {
			t.Fatalf("refused decline recorded: %+v", got)
		}
	})
}

func TestAcceptPolicies_CTL5_OnBehalfRecordsAdminAndNote(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		carol := w.CreateLearner(w.KCC.ID, "carol@kent.gov.uk", "G", "F") // never signed in
		_, aliceCtx := w.LinkedKCC("alice")
		ids := []string{w.SiteV1.ID, w.PrivacyV1.ID}
		refusals := []struct {
			name string
			ctx  context.Context
			in   lifecycle.AcceptInput
			code apperr.Code
		}{
			{"no note", w.As("kcc-admin"), lifecycle.AcceptInput{PolicyVersionIDs: ids, OnBehalfOf: carol.ID}, apperr.BadUserInput},
			{"blank note", w.As("kcc-admin"), lifecycle.AcceptInput{PolicyVersionIDs: ids, OnBehalfOf: carol.ID, Note: "  \n "}, apperr.BadUserInput},
			{"note too long", w.As("kcc-admin"), lifecycle.AcceptInput{PolicyVersionIDs: ids, OnBehalfOf: carol.ID, Note: strings.Repeat("n", 1001)}, apperr.BadUserInput},
			{"other organisation's admin", w.As("medway-admin"), lifecycle.AcceptInput{PolicyVersionIDs: ids, OnBehalfOf: carol.ID, Note: "n"}, apperr.NotFound},
			{"another learner", aliceCtx(), lifecycle.AcceptInput{PolicyVersionIDs: ids, OnBehalfOf: carol.ID, Note: "n"}, apperr.NotFound},
			{"unknown learner", w.As("kcc-admin"), lifecycle.AcceptInput{PolicyVersionIDs: ids, OnBehalfOf: "00000000-0000-0000-0000-000000000000", Note: "n"}, apperr.NotFound},
		}
		for _, r := range refusals {
			_, err := w.Service.AcceptPolicies(r.ctx, r.in)
			if apperr.CodeOf(err) != r.code {
				t.Errorf("%s: want %s, got %v", r.name, r.code, err)
			}
		}
		if as := w.Acceptances(carol.ID); len(as) != 0 {
			t.Fatalf("refused acceptances recorded: %+v", as)
		}
		if ae, _ := apperr.As(func() error {
			_, err := w.Service.AcceptPolicies(w.As("kcc-admin"), lifecycle.AcceptInput{PolicyVersionIDs: ids, OnBehalfOf: carol.ID})
			return err
		}()); ae == nil || ae.Field != "note" {
			t.Fatalf("missing note names the field: %+v", ae)
		}

		out, err := w.Service.AcceptPolicies(w.As("kcc-admin"), lifecycle.AcceptInput{PolicyVersionIDs: ids, OnBehalfOf: carol.ID,
			Note: " Paper consent form signed 20 November "})
		if err != nil || out.Status != domain.StatusActive || out.ID != carol.ID || out.Version != 2 {
			t.Fatalf("on behalf: %+v %v", out, err)
		}
		admin := lifecycle.ActorIDFor(testkit.TestIssuer, "kcc-admin")
		for _, a := range w.Acceptances(carol.ID) {
			if a.GivenBy != "ADMIN" || a.ActorID != admin || a.Note != "Paper consent form signed 20 November" ||
				a.Decision != domain.DecisionAccepted || !a.DecidedAt.Equal(w.Clock.Now()) {
				t.Errorf("acceptance: %+v", a)
			}
		}
		es := w.Audit(w.Programme.ID)
		acc := lrnEntries(es, "policy.accept", carol.ID)
		if len(acc) != 1 || acc[0].ActorID != admin || acc[0].Reason != "Paper consent form signed 20 November" || acc[0].Details["givenBy"] != "ADMIN" {
			t.Fatalf("audit: %+v", acc)
		}
		if act := lrnEntries(es, "learner.activate", carol.ID); len(act) != 1 || act[0].ActorID != admin {
			t.Fatalf("activation audit: %+v", act)
		}
		w.WantFeed(carol.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventActivated, 2))
	})
}

func TestUpdateMyProfile_ONC9_NameOnly(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		l, self := w.LinkedKCC("alice")
		before := w.Learner(l.ID)

		out, err := w.Service.UpdateMyProfile(self(), lrnPtr("  Ali "), nil)
		if err != nil {
			t.Fatal(err)
		}
		if lrnDeref(out.GivenName) != "Ali" || lrnDeref(out.FamilyName) != lrnDeref(before.FamilyName) || out.Version != before.Version+1 {
			t.Fatalf("updated: %+v", out)
		}
		after := w.Learner(l.ID)
		if lrnDeref(after.Email) != lrnDeref(before.Email) || after.OrganisationID != before.OrganisationID ||
			lrnDeref(after.AccessGroupID) != lrnDeref(before.AccessGroupID) || after.Status != before.Status || lrnDeref(after.GivenName) != "Ali" {
			t.Fatalf("a profile edit changed more than the name: %+v -> %+v", before, after)
		}
		out, err = w.Service.UpdateMyProfile(self(), nil, lrnPtr("Smith-Jones"))
		if err != nil || lrnDeref(out.FamilyName) != "Smith-Jones" || lrnDeref(out.GivenName) != "Ali" || out.Version != before.Version+2 {
			t.Fatalf("family name: %+v %v", out, err)
		}
		w.WantFeed(l.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventUpdated, 3), testkit.Ev(domain.EventUpdated, 4))
		if es := lrnEntries(w.Audit(w.Programme.ID), "learner.profile.update", l.ID); len(es) != 2 || es[0].ActorID != lifecycle.ActorIDFor(testkit.KCCIssuer, "alice") {
			t.Fatalf("audit: %+v", es)
		}

		// Bad names, and nothing to change.
		for _, c := range []struct{ given, family *string }{
			{nil, nil}, {lrnPtr(""), nil}, {nil, lrnPtr("   ")}, {lrnPtr("A\nB"), nil}, {lrnPtr(strings.Repeat("a", 101)), nil}, {nil, lrnPtr("x\x07")},
		} {
			_, err := w.Service.UpdateMyProfile(self(), c.given, c.family)
			wantCode(t, err, apperr.BadUserInput)
		}
		// The email is the membership: a learner cannot change it (only an admin can).
		_, err = w.Service.UpdateLearner(self(), l.ID, lifecycle.LearnerUpdate{Email: lrnPtr("alice2@kent.gov.uk")})
		wantCode(t, err, apperr.Forbidden)
		// Identities without a learner record have no profile.
		_, err = w.Service.UpdateMyProfile(w.As("kc"), lrnPtr("Admin"), nil)
		wantCode(t, err, apperr.Forbidden)
		_, err = w.Service.UpdateMyProfile(w.As("kcc-admin"), lrnPtr("Admin"), nil)
		wantCode(t, err, apperr.Forbidden)
		_, err = w.Service.UpdateMyProfile(w.As("nobody"), lrnPtr("Nobody"), nil)
		wantCode(t, err, apperr.Forbidden)
		_, err = w.Service.UpdateMyProfile(context.Background(), lrnPtr("Anon"), nil)
		wantCode(t, err, apperr.Unauthenticated)
		if got := w.Learner(l.ID); got.Version != before.Version+2 || lrnDeref(got.Email) != "alice@kent.gov.uk" {
			t.Fatalf("refused edits changed the learner: %+v", got)
		}
		if n := lrnEventRows(t, st, w.Programme.ID); n != 4 {
			t.Fatalf("feed rows: %d", n)
		}
	})
}

// A name the learner corrected (ONC-9) or an admin corrected (ONC-4) stays:
// later sign-ins whose token carries other names change nothing, while a
// learner nobody corrected still takes the provider's names.
func TestSignIn_ONC9_CorrectedNameSurvivesTokenNames(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		signIn := func(subject, email, given, family string) domain.Learner {
			t.Helper()
			l, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: subject, Email: email,
				EmailVerified: true, GivenName: given, FamilyName: family})
			if err != nil {
				t.Fatalf("sign in %s: %v", subject, err)
			}
			return l
		}

		// Nobody corrected bob: the provider's names are taken.
		bob, _ := w.LinkedKCC("bob")
		got := signIn("bob", "bob@kent.gov.uk", "Robert", "Provider")
		if lrnDeref(got.GivenName) != "Robert" || lrnDeref(got.FamilyName) != "Provider" || got.Version != bob.Version+1 {
			t.Fatalf("uncorrected learner: %+v", got)
		}

		// Alice corrects her name; her next sign-ins carry the old one.
		alice, self := w.LinkedKCC("alice")
		corrected, err := w.Service.UpdateMyProfile(self(), lrnPtr("Ali"), lrnPtr("Smith-Jones"))
		if err != nil {
			t.Fatal(err)
		}
		rowsBefore := lrnEventRows(t, st, w.Programme.ID)
		for _, names := range [][2]string{{"Alice", "Smith"}, {"Alicia", ""}, {"", "Jones"}} {
			got := signIn("alice", "alice@kent.gov.uk", names[0], names[1])
			if lrnDeref(got.GivenName) != "Ali" || lrnDeref(got.FamilyName) != "Smith-Jones" || got.Version != corrected.Version {
				t.Fatalf("token names %v replaced the learner's correction: %+v", names, got)
			}
		}
		if after := w.Learner(alice.ID); lrnDeref(after.GivenName) != "Ali" || lrnDeref(after.FamilyName) != "Smith-Jones" {
			t.Fatalf("stored names: %v %v", after.GivenName, after.FamilyName)
		}
		if n := lrnEventRows(t, st, w.Programme.ID); n != rowsBefore {
			t.Fatalf("sign-ins with stale names wrote %d feed rows", n-rowsBefore)
		}

		// An admin's correction is kept the same way.
		carol, _ := w.LinkedKCC("carol")
		if _, err := w.Service.UpdateLearner(w.Sys, carol.ID, lifecycle.LearnerUpdate{FamilyName: lrnPtr("Corrected")}); err != nil {
			t.Fatal(err)
		}
		if got := signIn("carol", "carol@kent.gov.uk", "Caroline", "FromToken"); lrnDeref(got.FamilyName) != "Corrected" || lrnDeref(got.GivenName) != "Given carol" {
			t.Fatalf("admin correction replaced: %+v", got)
		}
	})
}

// Token names are compared as they would be stored: a claim with stray
// spaces, or one too long to keep, is no change, so repeated sign-ins do
// not bump the version or write feed rows.
func TestSignIn_ONC9_UnchangedTokenNamesWriteNothing(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		w.LinkedKCC("dan")
		first, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "dan", Email: "dan@kent.gov.uk",
			EmailVerified: true, GivenName: " Daniel ", FamilyName: strings.Repeat("x", 101)})
		if err != nil || lrnDeref(first.GivenName) != "Daniel" || lrnDeref(first.FamilyName) != "Family" {
			t.Fatalf("first sign-in: %+v %v", first, err)
		}
		rows := lrnEventRows(t, st, w.Programme.ID)
		for i := 0; i < 3; i++ {
			l, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "dan", Email: "dan@kent.gov.uk",
				EmailVerified: true, GivenName: "Daniel  ", FamilyName: strings.Repeat("x", 101)})
			if err != nil || l.Version != first.Version {
				t.Fatalf("sign-in %d with the same names: version %d -> %d (%v)", i, first.Version, l.Version, err)
			}
		}
		if n := lrnEventRows(t, st, w.Programme.ID); n != rows {
			t.Fatalf("unchanged names wrote %d feed rows", n-rows)
		}
	})
}
