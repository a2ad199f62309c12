package lifecycle_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// ---- fixtures for leaving: withdrawal, erasure requests, leavers, rosters ----

const lvDay = 24 * time.Hour

// lvRequests lists a learner's data requests, read back through the API.
func lvRequests(e *testkit.World, programmeID, learnerID string) []domain.DataRequest {
	e.T.Helper()
	rs, _, err := e.Service.DataRequests(e.Sys, programmeID, nil, nil, 500, "")
	if err != nil {
		e.T.Fatalf("data requests: %v", err)
	}
	var out []domain.DataRequest
	for _, r := range rs {
		if r.LearnerID == learnerID {
			out = append(out, r)
		}
	}
	return out
}

// lvOneRequest expects exactly one data request for the learner.
func lvOneRequest(e *testkit.World, programmeID, learnerID string) domain.DataRequest {
	e.T.Helper()
	rs := lvRequests(e, programmeID, learnerID)
	if len(rs) != 1 {
		e.T.Fatalf("want one data request for %s, got %+v", learnerID, rs)
	}
	return rs[0]
}

// lvSession opens a browser session for the identity and checks it works.
func lvSession(e *testkit.World, issuer, subject string) string {
	e.T.Helper()
	tok, _, err := e.Service.StartSession(context.Background(), domain.Identity{Issuer: issuer, Subject: subject})
	if err != nil {
		e.T.Fatalf("start session for %s: %v", subject, err)
	}
	if !lvSessionLive(e, tok) {
		e.T.Fatalf("a new session of %s does not resolve", subject)
	}
	return tok
}

func lvSessionLive(e *testkit.World, tok string) bool {
	e.T.Helper()
	_, ok, err := e.Service.SessionIdentity(context.Background(), tok)
	if err != nil {
		e.T.Fatalf("session identity: %v", err)
	}
	return ok
}

// lvState is a digest of everything the leaving operations write: every
// learner's status, reason, due date and version, and the row counts of the
// feed, the audit log, data requests and live sessions.
func lvState(t *testing.T, st *store.Store) string {
	t.Helper()
	rows, err := st.SQL().Query(`SELECT id, status, coalesce(removal_reason, ''), version FROM learners ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var sb strings.Builder
	for rows.Next() {
		var id, status, reason string
		var v int64
		if err := rows.Scan(&id, &status, &reason, &v); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%s:%s:%s:%d;", id, status, reason, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`SELECT count(*) FROM lifecycle_events`, `SELECT count(*) FROM audit_entries`,
		`SELECT count(*) FROM data_requests`, `SELECT count(*) FROM sessions WHERE revoked_at IS NULL`} {
		fmt.Fprintf(&sb, "%d;", testkit.Count(t, st, q))
	}
	return sb.String()
}

func lvWantErr(t *testing.T, err error, code apperr.Code, reason, rule string) *apperr.Error {
	t.Helper()
	wantCode(t, err, code)
	ae := lrnAppErr(t, err)
	if reason != "" && ae.Reason != reason {
		t.Errorf("error reason: want %s, got %+v", reason, ae)
	}
	if rule != "" && ae.Rule != rule {
		t.Errorf("error rule: want %s, got %+v", rule, ae)
	}
	return ae
}

// lvAbout returns every audit entry whose target is id.
func lvAbout(es []domain.AuditEntry, id string) []domain.AuditEntry {
	var out []domain.AuditEntry
	for _, e := range es {
		if e.TargetID == id {
			out = append(out, e)
		}
	}
	return out
}

func lvReason(l domain.Learner) string {
	if l.RemovalReason == nil {
		return "<nil>"
	}
	return string(*l.RemovalReason)
}

func lvDue(l domain.Learner, want time.Time) bool {
	return l.RemovalDueAt != nil && l.RemovalDueAt.Equal(want)
}

// ---- withdrawConsent (CTL-8, ONC-8) ----

func TestWithdraw_CTL8_EndsAccessAndErasesAtOnce(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		if w.Programme.Settings.WithdrawalErasureDelay != 0 || w.Programme.Settings.ErasureNeedsApproval {
			t.Fatalf("CONNECT_TO_LEARN preset: %+v", w.Programme.Settings)
		}
		alice, self := w.Active("alice")
		bob, _ := w.Active("bob")
		now := w.Clock.Now()

		out, err := w.Service.WithdrawConsent(self(), "  I no longer need the courses ")
		if err != nil {
			t.Fatal(err)
		}
		// Delay 0: erased in the same request.
		if out.ID != alice.ID || out.Status != domain.StatusErased || out.AccessAllowed() || out.Email != nil || out.GivenName != nil ||
			out.FamilyName != nil || out.ErasedAt == nil || !out.ErasedAt.Equal(now) || out.Version != 5 || lvReason(out) != string(domain.RemovalConsentWithdrawn) {
			t.Fatalf("after withdrawal: %+v", out)
		}
		if got := w.Learner(alice.ID); got.Status != domain.StatusErased || got.Email != nil || got.Version != 5 {
			t.Fatalf("stored: %+v", got)
		}
		// The LMS is told access ended, then that the learner is gone.
		w.WantFeed(alice.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
			testkit.Ev(domain.EventAccessRevoked, 4), testkit.Ev(domain.EventErased, 5))
		es := w.Audit(w.Programme.ID)
		wd := lrnEntries(es, "learner.withdraw", alice.ID)
		// (The learner's own reason is not required here: see TestWithdraw_GEN2_LearnersOwnReasonNotKeptAfterErasure.)
		if len(wd) != 1 || wd[0].ActorID != lifecycle.ActorIDFor(testkit.KCCIssuer, "alice") || wd[0].Details["rule"] != "CTL-8" || !wd[0].OccurredAt.Equal(now) {
			t.Fatalf("learner.withdraw audit: %+v", wd)
		}
		if er := lrnEntries(es, "learner.erase", alice.ID); len(er) != 1 || er[0].Reason != "CTL-8" {
			t.Fatalf("learner.erase audit: %+v", er)
		}
		// Connect to Learn needs no controller approval: no data request.
		if rs := lvRequests(w.World, w.Programme.ID, alice.ID); len(rs) != 0 {
			t.Fatalf("data requests under CTL: %+v", rs)
		}
		// Bob is untouched.
		if got := w.Learner(bob.ID); got.Status != domain.StatusActive || got.Version != 3 {
			t.Fatalf("another learner changed: %+v", got)
		}
		// The identity went with the data: it no longer signs in as alice.
		_, err = w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "alice"})
		wantCode(t, err, apperr.Forbidden)
		// An admin cannot withdraw an erased learner either.
		_, err = w.Service.WithdrawConsentOnBehalf(w.As("kcc-admin"), alice.ID, "letter")
		wantCode(t, err, apperr.Conflict)
		if got := w.Learner(alice.ID); got.Version != 5 {
			t.Fatalf("a refused withdrawal changed the tombstone: %+v", got)
		}
	})
}

func TestWithdraw_CTL8_OnBehalfNeedsReasonAndTheLearnersOrganisation(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		carol := w.CreateLearner(w.KCC.ID, "carol@kent.gov.uk", "Carol", "King")
		w.Grant("auditor", domain.RoleAuditor, w.Programme.ID, nil, nil)
		w.Grant("lms", domain.RoleLMS, w.Programme.ID, nil, nil)
		before := lvState(t, st)

		_, err := w.Service.WithdrawConsentOnBehalf(w.As("kcc-admin"), carol.ID, "   ")
		if ae := lvWantErr(t, err, apperr.BadUserInput, "", ""); ae.Field != "reason" {
			t.Errorf("missing reason: %+v", ae)
		}
		_, err = w.Service.WithdrawConsentOnBehalf(w.As("kcc-admin"), carol.ID, "bad\x00reason")
		wantCode(t, err, apperr.BadUserInput)
		_, err = w.Service.WithdrawConsentOnBehalf(w.As("kcc-admin"), carol.ID, strings.Repeat("r", 1001))
		wantCode(t, err, apperr.BadUserInput)
		// CTL-10: other organisations and roles without learner access see nothing.
		_, err = w.Service.WithdrawConsentOnBehalf(w.As("medway-admin"), carol.ID, "letter")
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.WithdrawConsentOnBehalf(w.As("auditor"), carol.ID, "letter")
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.WithdrawConsentOnBehalf(w.As("lms"), carol.ID, "letter")
		wantCode(t, err, apperr.Forbidden)
		_, err = w.Service.WithdrawConsentOnBehalf(w.As("kcc-admin"), "not-an-id", "letter")
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.WithdrawConsentOnBehalf(w.As("kcc-admin"), "00000000-0000-0000-0000-000000000000", "letter")
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.WithdrawConsentOnBehalf(context.Background(), carol.ID, "letter")
		wantCode(t, err, apperr.Unauthenticated)
		// Self-service withdrawal needs a learner: an admin has none.
		_, err = w.Service.WithdrawConsent(w.As("kcc-admin"), "")
		wantCode(t, err, apperr.Forbidden)
		_, err = w.Service.WithdrawConsent(context.Background(), "")
		wantCode(t, err, apperr.Unauthenticated)
		if after := lvState(t, st); after != before {
			t.Fatalf("refused withdrawals wrote something:\n%s\n%s", before, after)
		}

		out, err := w.Service.WithdrawConsentOnBehalf(w.As("kcc-admin"), carol.ID, "Letter received 20 November")
		if err != nil || out.Status != domain.StatusErased || out.Version != 3 {
			t.Fatalf("on behalf: %+v %v", out, err)
		}
		w.WantFeed(carol.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventAccessRevoked, 2), testkit.Ev(domain.EventErased, 3))
		es := w.Audit(w.Programme.ID)
		ob := lrnEntries(es, "learner.withdraw.on_behalf", carol.ID)
		// The admin's reason was recorded (CTL-12) and blanked when carol was
		// erased in the same request (GEN-2); actor and action remain.
		if len(ob) != 1 || ob[0].ActorID != lifecycle.ActorIDFor(testkit.TestIssuer, "kcc-admin") || ob[0].Reason != "" {
			t.Fatalf("on behalf audit: %+v", ob)
		}
		if n := len(lrnEntries(es, "learner.withdraw", carol.ID)); n != 0 {
			t.Fatalf("on-behalf withdrawal audited as self-service: %d", n)
		}
		// A programme admin may record one too (a Medway learner, by "kc").
		m := w.CreateLearner(w.Medway.ID, "mo@medway.gov.uk", "Mo", "Ali")
		if out, err := w.Service.WithdrawConsentOnBehalf(w.As("kc"), m.ID, "phone call"); err != nil || out.Status != domain.StatusErased {
			t.Fatalf("programme admin on behalf: %+v %v", out, err)
		}
	})
}

func TestWithdraw_CTL8_Twice_IsConflict(t *testing.T) {
	t.Run("CTL with a delay", func(t *testing.T) {
		testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
			w := testkit.NewConnectToLearn(t, st).WithPolicies()
			w.UpdateRules(w.Programme.ID, lifecycle.RuleSettingsPatch{WithdrawalErasureDelay: lrnPtr(3 * lvDay)})
			alice, self := w.Active("alice")
			out, err := w.Service.WithdrawConsent(self(), "")
			if err != nil || out.Status != domain.StatusWithdrawn || out.Version != 4 {
				t.Fatalf("first withdrawal: %+v %v", out, err)
			}
			before := lvState(t, st)
			_, err = w.Service.WithdrawConsent(self(), "again")
			lvWantErr(t, err, apperr.Conflict, "", "CTL-8")
			_, err = w.Service.WithdrawConsentOnBehalf(w.As("kcc-admin"), alice.ID, "letter")
			lvWantErr(t, err, apperr.Conflict, "", "CTL-8")
			if after := lvState(t, st); after != before {
				t.Fatalf("a second withdrawal wrote something:\n%s\n%s", before, after)
			}
			if n := len(lrnEntries(w.Audit(w.Programme.ID), "learner.withdraw", alice.ID)); n != 1 {
				t.Fatalf("withdrawals audited: %d", n)
			}
		})
	})
	t.Run("ONC", func(t *testing.T) {
		testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
			w := testkit.NewOnclick(t, st)
			sam, self := w.Active("sam")
			if _, err := w.Service.WithdrawConsent(self(), ""); err != nil {
				t.Fatal(err)
			}
			before := lvState(t, st)
			_, err := w.Service.WithdrawConsent(self(), "")
			lvWantErr(t, err, apperr.Conflict, "", "CTL-8")
			_, err = w.Service.WithdrawConsentOnBehalf(w.As("wscc-admin"), sam.ID, "letter")
			lvWantErr(t, err, apperr.Conflict, "", "CTL-8")
			if after := lvState(t, st); after != before {
				t.Fatalf("a second withdrawal wrote something:\n%s\n%s", before, after)
			}
			lvOneRequest(w.World, w.Programme.ID, sam.ID)
		})
	})
}

func TestWithdraw_CTL8_DelayWaitsForSweep(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		delay := 2 * lvDay
		w.UpdateRules(w.Programme.ID, lifecycle.RuleSettingsPatch{WithdrawalErasureDelay: &delay})
		alice, self := w.Active("alice")
		t0 := w.Clock.Now()
		tok := lvSession(w.World, testkit.KCCIssuer, "alice")

		out, err := w.Service.WithdrawConsent(self(), "")
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != domain.StatusWithdrawn || out.AccessAllowed() || lvReason(out) != string(domain.RemovalConsentWithdrawn) ||
			!lvDue(out, t0.Add(delay)) || out.Version != 4 || lrnDeref(out.Email) != "alice@kent.gov.uk" {
			t.Fatalf("withdrawn with a delay: %+v", out)
		}
		// Access ends at once even though erasure waits.
		if lvSessionLive(w.World, tok) {
			t.Fatal("the session survived the withdrawal")
		}
		w.WantFeed(alice.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
			testkit.Ev(domain.EventAccessRevoked, 4))
		// GEN-1: the learner sees when and why.
		if r, err := w.Service.Retention(self(), alice.ID); err != nil || r.Rule != "CTL-8" || r.KeptUntil == nil || !r.KeptUntil.Equal(t0.Add(delay)) {
			t.Fatalf("retention while withdrawn: %+v %v", r, err)
		}

		w.Clock.Advance(delay - time.Second)
		if rep := w.Sweep(w.As("kc"), w.Programme.ID); rep.Erased != 0 {
			t.Fatalf("erased before the delay passed: %+v", rep)
		}
		if got := w.Learner(alice.ID); got.Status != domain.StatusWithdrawn || got.Version != 4 {
			t.Fatalf("before the delay: %+v", got)
		}
		w.Clock.Advance(time.Second)
		if rep := w.Sweep(w.As("kc"), w.Programme.ID); rep.Erased != 1 {
			t.Fatalf("sweep at the due time: %+v", rep)
		}
		got := w.Learner(alice.ID)
		if got.Status != domain.StatusErased || got.Email != nil || got.Version != 5 || got.ErasedAt == nil || !got.ErasedAt.Equal(t0.Add(delay)) {
			t.Fatalf("after the delay: %+v", got)
		}
		w.WantFeed(alice.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
			testkit.Ev(domain.EventAccessRevoked, 4), testkit.Ev(domain.EventErased, 5))
		if er := lrnEntries(w.Audit(w.Programme.ID), "learner.erase", alice.ID); len(er) != 1 || er[0].ActorID != lifecycle.ActorIDFor(testkit.TestIssuer, "kc") {
			t.Fatalf("erase audit: %+v", er)
		}
		// Idempotent.
		if rep := w.Sweep(w.As("kc"), w.Programme.ID); rep.Erased != 0 {
			t.Fatalf("second sweep: %+v", rep)
		}
		w.WantFeed(alice.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
			testkit.Ev(domain.EventAccessRevoked, 4), testkit.Ev(domain.EventErased, 5))
		// Only programme admins sweep.
		_, err = w.Service.RunRetentionSweep(w.As("kcc-admin"), w.Programme.ID)
		wantCode(t, err, apperr.Forbidden)
	})
}

func TestWithdraw_ONC5_OpensRequestAwaitingApproval(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewOnclick(t, st)
		if !w.Programme.Settings.ErasureNeedsApproval {
			t.Fatalf("ONCLICK preset: %+v", w.Programme.Settings)
		}
		sam, self := w.Active("sam")
		t0 := w.Clock.Now()
		out, err := w.Service.WithdrawConsent(self(), "moving away")
		if err != nil {
			t.Fatal(err)
		}
		// ONC-8: access ends at once; ONC-5: nothing is removed yet.
		if out.Status != domain.StatusWithdrawn || out.AccessAllowed() || out.RemovalDueAt != nil || out.Version != 4 ||
			lrnDeref(out.Email) != "sam@westsussex.gov.uk" || lvReason(out) != string(domain.RemovalConsentWithdrawn) {
			t.Fatalf("withdrawn: %+v", out)
		}
		w.WantFeed(sam.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
			testkit.Ev(domain.EventAccessRevoked, 4))
		samActor := lifecycle.ActorIDFor(testkit.WSCCIssuer, "sam")
		r := lvOneRequest(w.World, w.Programme.ID, sam.ID)
		if r.Kind != "ERASURE" || r.Origin != domain.RemovalConsentWithdrawn || r.Status != domain.RequestAwaitingApproval ||
			r.OrganisationID != w.WSCC.ID || r.ProgrammeID != w.Programme.ID || r.RequestedBy != samActor || !r.RequestedAt.Equal(t0) ||
			r.Reason != "moving away" || r.DecidedBy != nil || r.DecidedAt != nil || r.CompletedAt != nil {
			t.Fatalf("data request: %+v", r)
		}
		// The organisation's admin sees it, filtered by status too.
		rs, more, err := w.Service.DataRequests(w.As("wscc-admin"), w.Programme.ID, &w.WSCC.ID, []domain.DataRequestStatus{domain.RequestAwaitingApproval}, 10, "")
		if err != nil || more || len(rs) != 1 || rs[0].ID != r.ID {
			t.Fatalf("organisation admin's list: %+v %v", rs, err)
		}
		rs, _, err = w.Service.DataRequests(w.As("wscc-admin"), w.Programme.ID, nil, []domain.DataRequestStatus{domain.RequestCompleted}, 10, "")
		if err != nil || len(rs) != 0 {
			t.Fatalf("completed filter: %+v %v", rs, err)
		}
		_, _, err = w.Service.DataRequests(w.As("wscc-admin"), w.Programme.ID, nil, nil, 0, "")
		wantCode(t, err, apperr.BadUserInput)
		es := w.Audit(w.Programme.ID)
		if op := lrnEntries(es, "data_request.open", sam.ID); len(op) != 1 || op[0].Details["dataRequestId"] != r.ID ||
			op[0].Details["origin"] != string(domain.RemovalConsentWithdrawn) || op[0].ActorID != samActor {
			t.Fatalf("data_request.open audit: %+v", op)
		}
		if n := len(lrnEntries(es, "learner.erase", sam.ID)); n != 0 {
			t.Fatalf("erased without authorisation: %d", n)
		}
		// The sweep does not erase without the controller either, however long it waits.
		w.Clock.Advance(30 * lvDay)
		if rep := w.Sweep(w.Sys, w.Programme.ID); rep.Erased != 0 || rep.RequestsOpened != 0 {
			t.Fatalf("sweep: %+v", rep)
		}
		if got := w.Learner(sam.ID); got.Status != domain.StatusWithdrawn || got.Version != 4 {
			t.Fatalf("after the sweep: %+v", got)
		}

		// The controller approves: the erasure is carried out in the same request.
		t1 := w.Clock.Now()
		done, err := w.Service.ApproveDataRequest(w.As("wscc-admin"), r.ID, " authorised ")
		if err != nil {
			t.Fatal(err)
		}
		admin := lifecycle.ActorIDFor(testkit.TestIssuer, "wscc-admin")
		if done.Status != domain.RequestCompleted || lrnDeref(done.DecidedBy) != admin || done.DecidedAt == nil || !done.DecidedAt.Equal(t1) ||
			done.CompletedAt == nil || !done.CompletedAt.Equal(t1) || done.DecisionNote != "authorised" || done.RequestedBy != samActor {
			t.Fatalf("approved: %+v", done)
		}
		got := w.Learner(sam.ID)
		if got.Status != domain.StatusErased || got.Email != nil || got.GivenName != nil || got.Version != 5 {
			t.Fatalf("after approval: %+v", got)
		}
		w.WantFeed(sam.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
			testkit.Ev(domain.EventAccessRevoked, 4), testkit.Ev(domain.EventErased, 5))
		stored := lvOneRequest(w.World, w.Programme.ID, sam.ID)
		if stored.Status != domain.RequestCompleted || lrnDeref(stored.DecidedBy) != admin || !stored.RequestedAt.Equal(t0) ||
			stored.CompletedAt == nil || !stored.CompletedAt.Equal(t1) || stored.Reason != "" || stored.DecisionNote != "" {
			t.Fatalf("stored request (free text goes with the erasure): %+v", stored)
		}
		es = w.Audit(w.Programme.ID)
		if ap := lrnEntries(es, "data_request.approve", sam.ID); len(ap) != 1 || ap[0].ActorID != admin || ap[0].Details["rule"] != "ONC-5" {
			t.Fatalf("approve audit: %+v", ap)
		}
		if er := lrnEntries(es, "learner.erase", sam.ID); len(er) != 1 || er[0].Reason != "ONC-5" {
			t.Fatalf("erase audit: %+v", er)
		}
		// A decided request cannot be decided again.
		_, err = w.Service.ApproveDataRequest(w.As("wscc-admin"), r.ID, "")
		wantCode(t, err, apperr.Conflict)
		_, err = w.Service.RejectDataRequest(w.As("wscc-admin"), r.ID, "changed our mind")
		wantCode(t, err, apperr.Conflict)
	})
}

func TestWithdraw_ONC8_RevokesSessions(t *testing.T) {
	t.Run("CTL", func(t *testing.T) {
		testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
			w := testkit.NewConnectToLearn(t, st).WithPolicies()
			alice, self := w.Active("alice")
			w.Active("bob")
			a1, a2 := lvSession(w.World, testkit.KCCIssuer, "alice"), lvSession(w.World, testkit.KCCIssuer, "alice")
			b := lvSession(w.World, testkit.KCCIssuer, "bob")
			if _, err := w.Service.WithdrawConsent(self(), ""); err != nil {
				t.Fatal(err)
			}
			if lvSessionLive(w.World, a1) || lvSessionLive(w.World, a2) {
				t.Fatal("a session of the withdrawn learner still resolves")
			}
			if !lvSessionLive(w.World, b) {
				t.Fatal("another learner's session was revoked")
			}
			// Erased: the sessions are gone, not just revoked (invariant 2).
			if n := testkit.Count(t, st, `SELECT count(*) FROM sessions WHERE learner_id = ?`, alice.ID); n != 0 {
				t.Fatalf("sessions of an erased learner: %d", n)
			}
		})
	})
	t.Run("ONC", func(t *testing.T) {
		testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
			w := testkit.NewOnclick(t, st)
			sam, self := w.Active("sam")
			s1, s2 := lvSession(w.World, testkit.WSCCIssuer, "sam"), lvSession(w.World, testkit.WSCCIssuer, "sam")
			if _, err := w.Service.WithdrawConsent(self(), ""); err != nil {
				t.Fatal(err)
			}
			if lvSessionLive(w.World, s1) || lvSessionLive(w.World, s2) {
				t.Fatal("a session of the withdrawn learner still resolves")
			}
			if n := testkit.Count(t, st, `SELECT count(*) FROM sessions WHERE learner_id = ? AND revoked_at IS NOT NULL`, sam.ID); n != 2 {
				t.Fatalf("revoked sessions: %d", n)
			}
			// And no new session can be opened.
			_, _, err := w.Service.StartSession(context.Background(), domain.Identity{Issuer: testkit.WSCCIssuer, Subject: "sam"})
			lvWantErr(t, err, apperr.Forbidden, "ACCESS_ENDED", "")
			if n := testkit.Count(t, st, `SELECT count(*) FROM sessions WHERE learner_id = ?`, sam.ID); n != 2 {
				t.Fatalf("a refused session was stored: %d rows", n)
			}
		})
	})
}

// ---- data requests (ONC-5, CTL-11) ----

func TestDataRequest_ONC5_ApproveOnlyByOwnOrganisation(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		// A programme run from the CTL preset with ONC-5's controller approval switched on.
		w.UpdateRules(w.Programme.ID, lifecycle.RuleSettingsPatch{ErasureNeedsApproval: lrnPtr(true)})
		w.Grant("auditor", domain.RoleAuditor, w.Programme.ID, nil, nil)
		alice, self := w.Active("alice")
		if _, err := w.Service.WithdrawConsent(self(), ""); err != nil {
			t.Fatal(err)
		}
		r := lvOneRequest(w.World, w.Programme.ID, alice.ID)
		if r.Status != domain.RequestAwaitingApproval || r.OrganisationID != w.KCC.ID {
			t.Fatalf("request: %+v", r)
		}
		before := lvState(t, st)

		// Medway's admin cannot see KCC's request (CTL-10): NOT_FOUND, as if missing.
		_, err := w.Service.ApproveDataRequest(w.As("medway-admin"), r.ID, "")
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.RejectDataRequest(w.As("medway-admin"), r.ID, "no")
		wantCode(t, err, apperr.NotFound)
		_, _, err = w.Service.DataRequests(w.As("medway-admin"), w.Programme.ID, &w.KCC.ID, nil, 10, "")
		wantCode(t, err, apperr.NotFound)
		if rs, _, err := w.Service.DataRequests(w.As("medway-admin"), w.Programme.ID, nil, nil, 10, ""); err != nil || len(rs) != 0 {
			t.Fatalf("Medway admin's own list shows KCC's request: %+v %v", rs, err)
		}
		// A programme admin sees it but may not decide it (ONC-5: the controller decides).
		if rs, _, err := w.Service.DataRequests(w.As("kc"), w.Programme.ID, nil, nil, 10, ""); err != nil || len(rs) != 1 {
			t.Fatalf("programme admin's list: %+v %v", rs, err)
		}
		_, err = w.Service.ApproveDataRequest(w.As("kc"), r.ID, "")
		lvWantErr(t, err, apperr.Forbidden, "", "ONC-5")
		_, err = w.Service.RejectDataRequest(w.As("kc"), r.ID, "no")
		lvWantErr(t, err, apperr.Forbidden, "", "ONC-5")
		// Nor may auditors, the learner herself, or strangers.
		_, err = w.Service.ApproveDataRequest(w.As("auditor"), r.ID, "")
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.ApproveDataRequest(self(), r.ID, "")
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.ApproveDataRequest(context.Background(), r.ID, "")
		wantCode(t, err, apperr.Unauthenticated)
		// Malformed calls.
		_, err = w.Service.ApproveDataRequest(w.As("kcc-admin"), "not-an-id", "")
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.ApproveDataRequest(w.As("kcc-admin"), "00000000-0000-0000-0000-000000000000", "")
		wantCode(t, err, apperr.NotFound)
		_, err = w.Service.RejectDataRequest(w.As("kcc-admin"), r.ID, " ")
		wantCode(t, err, apperr.BadUserInput)
		_, err = w.Service.ApproveDataRequest(w.As("kcc-admin"), r.ID, strings.Repeat("n", 1001))
		wantCode(t, err, apperr.BadUserInput)
		if after := lvState(t, st); after != before {
			t.Fatalf("refused decisions wrote something:\n%s\n%s", before, after)
		}
		if got := lvOneRequest(w.World, w.Programme.ID, alice.ID); got.Status != domain.RequestAwaitingApproval || got.DecidedBy != nil {
			t.Fatalf("request after refusals: %+v", got)
		}

		// KCC's own admin approves: completed, and the learner erased.
		done, err := w.Service.ApproveDataRequest(w.As("kcc-admin"), r.ID, "")
		if err != nil || done.Status != domain.RequestCompleted || lrnDeref(done.DecidedBy) != lifecycle.ActorIDFor(testkit.TestIssuer, "kcc-admin") {
			t.Fatalf("approve: %+v %v", done, err)
		}
		if got := w.Learner(alice.ID); got.Status != domain.StatusErased || got.Version != 5 {
			t.Fatalf("learner after approval: %+v", got)
		}
		if n := countActions(w.Audit(w.Programme.ID), "data_request.approve"); n != 1 {
			t.Fatalf("approvals audited: %d", n)
		}
	})
}

func TestDataRequest_CTL11_RequestErasure(t *testing.T) {
	t.Run("CTL erases at once", func(t *testing.T) {
		testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
			w := testkit.NewConnectToLearn(t, st).WithPolicies()
			alice, self := w.Active("alice")
			tok := lvSession(w.World, testkit.KCCIssuer, "alice")
			now := w.Clock.Now()
			r, err := w.Service.RequestErasure(self(), "please delete my account")
			if err != nil {
				t.Fatal(err)
			}
			me := lifecycle.ActorIDFor(testkit.KCCIssuer, "alice")
			if r.Kind != "ERASURE" || r.Origin != domain.RemovalErasureRequested || r.Status != domain.RequestCompleted || r.LearnerID != alice.ID ||
				r.OrganisationID != w.KCC.ID || r.RequestedBy != me || !r.RequestedAt.Equal(now) || lrnDeref(r.DecidedBy) != me ||
				r.DecidedAt == nil || !r.DecidedAt.Equal(now) || r.CompletedAt == nil || !r.CompletedAt.Equal(now) {
				t.Fatalf("request: %+v", r)
			}
			got := w.Learner(alice.ID)
			if got.Status != domain.StatusErased || got.Email != nil || got.Version != 5 || lvReason(got) != string(domain.RemovalErasureRequested) {
				t.Fatalf("learner: %+v", got)
			}
			if lvSessionLive(w.World, tok) {
				t.Fatal("session survived the erasure")
			}
			w.WantFeed(alice.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
				testkit.Ev(domain.EventAccessRevoked, 4), testkit.Ev(domain.EventErased, 5))
			if stored := lvOneRequest(w.World, w.Programme.ID, alice.ID); stored.Status != domain.RequestCompleted || stored.Reason != "" {
				t.Fatalf("stored request: %+v", stored)
			}
			es := w.Audit(w.Programme.ID)
			if rq := lrnEntries(es, "learner.erasure.request", alice.ID); len(rq) != 1 || rq[0].Details["rule"] != "CTL-11" || rq[0].ActorID != me {
				t.Fatalf("request audit: %+v", rq)
			}
			if er := lrnEntries(es, "learner.erase", alice.ID); len(er) != 1 || er[0].Reason != "CTL-11" {
				t.Fatalf("erase audit: %+v", er)
			}
			// Gone: the identity no longer resolves to a learner.
			_, err = w.Service.RequestErasure(self(), "")
			wantCode(t, err, apperr.Forbidden)
			// Admins have no self to erase.
			_, err = w.Service.RequestErasure(w.As("kcc-admin"), "")
			wantCode(t, err, apperr.Forbidden)
			_, err = w.Service.RequestErasure(context.Background(), "")
			wantCode(t, err, apperr.Unauthenticated)
		})
	})
	t.Run("CTL while withdrawn with a delay", func(t *testing.T) {
		testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
			// The explicit request does not wait for the withdrawal delay (GEN-4).
			w := testkit.NewConnectToLearn(t, st).WithPolicies()
			w.UpdateRules(w.Programme.ID, lifecycle.RuleSettingsPatch{WithdrawalErasureDelay: lrnPtr(10 * lvDay)})
			alice, self := w.Active("alice")
			if _, err := w.Service.WithdrawConsent(self(), ""); err != nil {
				t.Fatal(err)
			}
			r, err := w.Service.RequestErasure(self(), "")
			if err != nil || r.Status != domain.RequestCompleted {
				t.Fatalf("request: %+v %v", r, err)
			}
			if got := w.Learner(alice.ID); got.Status != domain.StatusErased {
				t.Fatalf("learner: %+v", got)
			}
		})
	})
	t.Run("ONC waits, and a rejection restores access", func(t *testing.T) {
		testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
			w := testkit.NewOnclick(t, st)
			sam, self := w.Active("sam")
			tok := lvSession(w.World, testkit.WSCCIssuer, "sam")
			t0 := w.Clock.Now()
			r, err := w.Service.RequestErasure(self(), "please delete")
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != domain.RequestAwaitingApproval || r.Origin != domain.RemovalErasureRequested || r.DecidedBy != nil ||
				r.CompletedAt != nil || !r.RequestedAt.Equal(t0) || r.RequestedBy != lifecycle.ActorIDFor(testkit.WSCCIssuer, "sam") {
				t.Fatalf("request: %+v", r)
			}
			got := w.Learner(sam.ID)
			if got.Status != domain.StatusRemovalScheduled || got.AccessAllowed() || lvReason(got) != string(domain.RemovalErasureRequested) ||
				got.RemovalDueAt != nil || got.Version != 4 || lrnDeref(got.Email) != "sam@westsussex.gov.uk" {
				t.Fatalf("learner awaiting approval: %+v", got)
			}
			if lvSessionLive(w.World, tok) {
				t.Fatal("session survived the erasure request")
			}
			// An admin cannot reinstate past an erasure request (only its rejection can).
			_, err = w.Service.ReinstateLearner(w.As("wscc-admin"), sam.ID, "oops")
			lvWantErr(t, err, apperr.Conflict, "", "GEN-4")

			w.Clock.Advance(time.Hour)
			t1 := w.Clock.Now()
			rej, err := w.Service.RejectDataRequest(w.As("wscc-admin"), r.ID, "records must be kept until the audit")
			if err != nil {
				t.Fatal(err)
			}
			admin := lifecycle.ActorIDFor(testkit.TestIssuer, "wscc-admin")
			if rej.Status != domain.RequestRejected || rej.DecisionNote != "records must be kept until the audit" || lrnDeref(rej.DecidedBy) != admin ||
				rej.DecidedAt == nil || !rej.DecidedAt.Equal(t1) || rej.CompletedAt != nil {
				t.Fatalf("rejected: %+v", rej)
			}
			got = w.Learner(sam.ID)
			if got.Status != domain.StatusActive || !got.AccessAllowed() || got.RemovalReason != nil || got.RemovalDueAt != nil || got.Version != 6 {
				t.Fatalf("learner after rejection: %+v", got)
			}
			w.WantFeed(sam.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
				testkit.Ev(domain.EventAccessRevoked, 4), testkit.Ev(domain.EventRemovalCancelled, 5), testkit.Ev(domain.EventAccessGranted, 6))
			if rj := lrnEntries(w.Audit(w.Programme.ID), "data_request.reject", sam.ID); len(rj) != 1 || rj[0].Reason != "records must be kept until the audit" ||
				rj[0].ActorID != admin {
				t.Fatalf("reject audit: %+v", rj)
			}
			_, err = w.Service.RejectDataRequest(w.As("wscc-admin"), r.ID, "again")
			wantCode(t, err, apperr.Conflict)
			_, err = w.Service.ApproveDataRequest(w.As("wscc-admin"), r.ID, "")
			wantCode(t, err, apperr.Conflict)
			if got := w.Learner(sam.ID); got.Status != domain.StatusActive || got.Version != 6 {
				t.Fatalf("approving a rejected request erased: %+v", got)
			}
			// A new request after a rejection is a new request; approved, it erases.
			r2, err := w.Service.RequestErasure(self(), "asking again")
			if err != nil || r2.ID == r.ID || r2.Status != domain.RequestAwaitingApproval {
				t.Fatalf("new request: %+v %v", r2, err)
			}
			if _, err := w.Service.ApproveDataRequest(w.As("wscc-admin"), r2.ID, ""); err != nil {
				t.Fatal(err)
			}
			if got := w.Learner(sam.ID); got.Status != domain.StatusErased {
				t.Fatalf("after approval: %+v", got)
			}
			if rs := lvRequests(w.World, w.Programme.ID, sam.ID); len(rs) != 2 {
				t.Fatalf("requests: %+v", rs)
			}
		})
	})
}

// A leaver (access already ended, removal due after the grace) who asks for
// erasure under ONC-5, and whose request the controller rejects, must stay a
// leaver: the rejection may only undo what the request itself did.
func TestDataRequest_CTL9_RejectedErasureRequestDoesNotReinstateLeaver(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewOnclick(t, st)
		sam, self := w.Active("sam")
		left, err := w.Service.MarkLeaver(w.As("wscc-admin"), sam.ID, "left on 30 November")
		if err != nil {
			t.Fatal(err)
		}
		r, err := w.Service.RequestErasure(self(), "delete me")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Service.RejectDataRequest(w.As("wscc-admin"), r.ID, "we keep leavers' records for the grace period"); err != nil {
			t.Fatal(err)
		}
		got := w.Learner(sam.ID)
		if got.AccessAllowed() || got.Status != domain.StatusRemovalScheduled {
			t.Errorf("BUG: a leaver regained access when their erasure request was rejected: status %s, reason %s", got.Status, lvReason(got))
		}
		if lvReason(got) != string(domain.RemovalLeaver) || !lvDue(got, *left.RemovalDueAt) {
			t.Errorf("BUG: the leaver's scheduled removal was lost: reason %s, due %v (want LEAVER, %v)", lvReason(got), got.RemovalDueAt, left.RemovalDueAt)
		}
	})
}

// Asking for erasure again while a request is open reuses the request, and
// should change nothing else: the learner's access already ended.
func TestDataRequest_CTL11_RepeatedRequestWritesNothing(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewOnclick(t, st)
		sam, self := w.Active("sam")
		r, err := w.Service.RequestErasure(self(), "please delete")
		if err != nil {
			t.Fatal(err)
		}
		again, err := w.Service.RequestErasure(self(), "please")
		if err != nil || again.ID != r.ID || again.Status != domain.RequestAwaitingApproval {
			t.Fatalf("second request: %+v %v", again, err)
		}
		lvOneRequest(w.World, w.Programme.ID, sam.ID)
		if got := w.Learner(sam.ID); got.Version != 4 {
			t.Errorf("BUG: a repeated erasure request rewrote the learner: version %d, want 4", got.Version)
		}
		if got := w.Feed(sam.ID); len(got) != 4 {
			t.Errorf("BUG: a repeated erasure request wrote feed events: %v", got)
		}
	})
}

// A learner whose removal is cancelled (here: an inactivity removal under an
// ONC-5 programme, cancelled by signing in after the sweep handed it to the
// controller) must not be erased by approving the request that is now stale.
func TestDataRequest_ONC5_CancelledRemovalLeavesNoApprovableRequest(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewOnclick(t, st)
		w.UpdateRules(w.Programme.ID, lifecycle.RuleSettingsPatch{InactivityLimit: lrnPtr(lvDay)})
		sam, _ := w.Active("sam")
		w.Clock.Advance(2 * lvDay)
		if rep := w.Sweep(w.Sys, w.Programme.ID); rep.ScheduledInactive != 1 {
			t.Fatalf("inactivity sweep: %+v", rep)
		}
		w.Clock.Advance(21 * lvDay)
		if rep := w.Sweep(w.Sys, w.Programme.ID); rep.RequestsOpened != 1 {
			t.Fatalf("due sweep: %+v", rep)
		}
		r := lvOneRequest(w.World, w.Programme.ID, sam.ID)
		if r.Origin != domain.RemovalInactivity || r.Status != domain.RequestAwaitingApproval || r.RequestedBy != "system:test" {
			t.Fatalf("request: %+v", r)
		}
		// Sam signs in: activity cancels the inactivity removal (CTL-7).
		back, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.WSCCIssuer, Subject: "sam"})
		if err != nil || back.Status != domain.StatusActive {
			t.Fatalf("sign-in: %+v %v", back, err)
		}
		if open, _, _ := w.Service.DataRequests(w.Sys, w.Programme.ID, nil, []domain.DataRequestStatus{domain.RequestAwaitingApproval}, 10, ""); len(open) != 0 {
			t.Errorf("BUG: the erasure request stays open after the removal was cancelled: %+v", open)
		}
		_, err = w.Service.ApproveDataRequest(w.As("wscc-admin"), r.ID, "")
		if got := w.Learner(sam.ID); got.Status != domain.StatusActive {
			t.Errorf("BUG: approving the stale request erased an active learner (approve returned %v): %+v", err, got)
		}
	})
}

// ---- leavers (CTL-9) ----

func TestLeaver_CTL9_MarkLeaverSchedulesWithGrace(t *testing.T) {
	t.Run("CTL", func(t *testing.T) {
		testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
			w := testkit.NewConnectToLearn(t, st).WithPolicies()
			alice, self := w.Active("alice")
			tok := lvSession(w.World, testkit.KCCIssuer, "alice")
			t0 := w.Clock.Now()
			grace := w.Programme.Settings.LeaverGracePeriod
			if grace != 7*lvDay {
				t.Fatalf("preset leaver grace: %v", grace)
			}
			before := lvState(t, st)
			_, err := w.Service.MarkLeaver(w.As("kcc-admin"), alice.ID, " ")
			wantCode(t, err, apperr.BadUserInput)
			_, err = w.Service.MarkLeaver(w.As("medway-admin"), alice.ID, "left")
			wantCode(t, err, apperr.NotFound)
			_, err = w.Service.MarkLeaver(self(), alice.ID, "I left")
			wantCode(t, err, apperr.Forbidden)
			_, err = w.Service.MarkLeaver(w.As("kcc-admin"), "not-an-id", "left")
			wantCode(t, err, apperr.NotFound)
			if after := lvState(t, st); after != before {
				t.Fatalf("refused leaver marks wrote something:\n%s\n%s", before, after)
			}

			out, err := w.Service.MarkLeaver(w.As("kcc-admin"), alice.ID, "left on 30 November")
			if err != nil {
				t.Fatal(err)
			}
			if out.Status != domain.StatusRemovalScheduled || out.AccessAllowed() || lvReason(out) != string(domain.RemovalLeaver) ||
				!lvDue(out, t0.Add(grace)) || out.Version != 4 || lrnDeref(out.Email) != "alice@kent.gov.uk" {
				t.Fatalf("leaver: %+v", out)
			}
			if lvSessionLive(w.World, tok) {
				t.Fatal("a leaver's session survived")
			}
			w.WantFeed(alice.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
				testkit.Ev(domain.EventRemovalScheduled, 4))
			if lv := lrnEntries(w.Audit(w.Programme.ID), "learner.leaver", alice.ID); len(lv) != 1 || lv[0].Reason != "left on 30 November" ||
				lv[0].Details["rule"] != "CTL-9" || lv[0].ActorID != lifecycle.ActorIDFor(testkit.TestIssuer, "kcc-admin") {
				t.Fatalf("leaver audit: %+v", lv)
			}
			if r, err := w.Service.Retention(w.As("kcc-admin"), alice.ID); err != nil || r.Rule != "CTL-9" || !r.KeptUntil.Equal(t0.Add(grace)) {
				t.Fatalf("retention: %+v %v", r, err)
			}
			// Marking twice is a conflict.
			_, err = w.Service.MarkLeaver(w.As("kcc-admin"), alice.ID, "again")
			wantCode(t, err, apperr.Conflict)

			w.Clock.Advance(grace - time.Second)
			if rep := w.Sweep(w.As("kc"), w.Programme.ID); rep.Erased != 0 {
				t.Fatalf("erased within the grace: %+v", rep)
			}
			if got := w.Learner(alice.ID); got.Status != domain.StatusRemovalScheduled || got.Version != 4 {
				t.Fatalf("within the grace: %+v", got)
			}
			w.Clock.Advance(time.Second)
			if rep := w.Sweep(w.As("kc"), w.Programme.ID); rep.Erased != 1 {
				t.Fatalf("sweep when due: %+v", rep)
			}
			if got := w.Learner(alice.ID); got.Status != domain.StatusErased || got.Email != nil || got.Version != 5 {
				t.Fatalf("after the grace: %+v", got)
			}
			w.WantFeed(alice.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
				testkit.Ev(domain.EventRemovalScheduled, 4), testkit.Ev(domain.EventErased, 5))
			_, err = w.Service.MarkLeaver(w.As("kcc-admin"), alice.ID, "again")
			wantCode(t, err, apperr.Conflict)
		})
	})
	t.Run("ONC hands the due erasure to the controller", func(t *testing.T) {
		testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
			w := testkit.NewOnclick(t, st)
			sam, _ := w.Active("sam")
			if _, err := w.Service.MarkLeaver(w.As("wscc-admin"), sam.ID, "left"); err != nil {
				t.Fatal(err)
			}
			w.Clock.Advance(w.Programme.Settings.LeaverGracePeriod)
			if rep := w.Sweep(w.Sys, w.Programme.ID); rep.Erased != 0 || rep.RequestsOpened != 1 {
				t.Fatalf("sweep: %+v", rep)
			}
			got := w.Learner(sam.ID)
			if got.Status != domain.StatusRemovalScheduled || lvReason(got) != string(domain.RemovalLeaver) || got.Email == nil {
				t.Fatalf("erased without the controller: %+v", got)
			}
			r := lvOneRequest(w.World, w.Programme.ID, sam.ID)
			if r.Origin != domain.RemovalLeaver || r.Status != domain.RequestAwaitingApproval || !r.RequestedAt.Equal(w.Clock.Now()) {
				t.Fatalf("request: %+v", r)
			}
			// A later sweep does not open a second one.
			w.Clock.Advance(lvDay)
			if rep := w.Sweep(w.Sys, w.Programme.ID); rep.RequestsOpened != 0 {
				t.Fatalf("second sweep: %+v", rep)
			}
			lvOneRequest(w.World, w.Programme.ID, sam.ID)
			if _, err := w.Service.ApproveDataRequest(w.As("wscc-admin"), r.ID, ""); err != nil {
				t.Fatal(err)
			}
			if got := w.Learner(sam.ID); got.Status != domain.StatusErased {
				t.Fatalf("after approval: %+v", got)
			}
		})
	})
}

// ---- reinstatement (GEN-4) ----

func TestReinstate_GEN4_WithinGrace(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		alice, _ := w.Active("alice")
		carol := w.CreateLearner(w.KCC.ID, "carol@kent.gov.uk", "Carol", "King") // never accepted: PENDING_ACCEPTANCE
		others := []string{"bob", "dan", "eve", "fay", "gus", "hal", "ivy", "jo"}
		var roster []string
		for _, n := range others {
			w.Active(n)
			roster = append(roster, n+"@kent.gov.uk")
		}
		// Alice and Carol are missing from the roster: 2 of 10, allowed explicitly.
		rep, err := w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, roster, false, false, lrnPtr(0.25))
		if err != nil || rep.ToRemove != 2 || !rep.Applied {
			t.Fatalf("roster: %+v %v", lvRep(rep), err)
		}
		due := w.Clock.Now().Add(w.Programme.Settings.AutomatedRemovalGrace)
		w.Clock.Advance(20 * lvDay)

		before := lvState(t, st)
		_, err = w.Service.ReinstateLearner(w.As("kcc-admin"), alice.ID, "")
		wantCode(t, err, apperr.BadUserInput)
		_, err = w.Service.ReinstateLearner(w.As("medway-admin"), alice.ID, "mistake")
		wantCode(t, err, apperr.NotFound)
		if after := lvState(t, st); after != before {
			t.Fatalf("refused reinstatements wrote something:\n%s\n%s", before, after)
		}

		out, err := w.Service.ReinstateLearner(w.As("kcc-admin"), alice.ID, "still employed, roster was out of date")
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != domain.StatusActive || !out.AccessAllowed() || out.RemovalReason != nil || out.RemovalDueAt != nil || out.Version != 6 {
			t.Fatalf("reinstated: %+v", out)
		}
		w.WantFeed(alice.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
			testkit.Ev(domain.EventRemovalScheduled, 4), testkit.Ev(domain.EventRemovalCancelled, 5), testkit.Ev(domain.EventAccessGranted, 6))
		if re := lrnEntries(w.Audit(w.Programme.ID), "learner.reinstate", alice.ID); len(re) != 1 || re[0].Reason != "still employed, roster was out of date" ||
			re[0].Details["rule"] != "GEN-4" || re[0].ActorID != lifecycle.ActorIDFor(testkit.TestIssuer, "kcc-admin") {
			t.Fatalf("reinstate audit: %+v", re)
		}
		// A learner who had not accepted goes back to waiting for acceptance,
		// and the LMS is not told to grant access.
		out, err = w.Service.ReinstateLearner(w.As("kc"), carol.ID, "on long leave")
		if err != nil || out.Status != domain.StatusPendingAcceptance || out.AccessAllowed() || out.Version != 3 {
			t.Fatalf("reinstated pending learner: %+v %v", out, err)
		}
		w.WantFeed(carol.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventRemovalScheduled, 2), testkit.Ev(domain.EventRemovalCancelled, 3))
		// Nothing left to reverse.
		_, err = w.Service.ReinstateLearner(w.As("kcc-admin"), alice.ID, "again")
		lvWantErr(t, err, apperr.Conflict, "", "GEN-4")
		// Past the original due date, the sweep leaves them alone.
		w.Clock.Set(due.Add(time.Hour))
		if rep := w.Sweep(w.As("kc"), w.Programme.ID); rep.Erased != 0 {
			t.Fatalf("sweep erased reinstated learners: %+v", rep)
		}
		if got := w.Learner(alice.ID); got.Status != domain.StatusActive {
			t.Fatalf("after the sweep: %+v", got)
		}
	})
}

func TestReinstate_GEN4_WithdrawalAndActiveAreNotReversible(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		w.UpdateRules(w.Programme.ID, lifecycle.RuleSettingsPatch{WithdrawalErasureDelay: lrnPtr(5 * lvDay)})
		alice, self := w.Active("alice")
		bob, _ := w.Active("bob")
		if _, err := w.Service.WithdrawConsent(self(), ""); err != nil {
			t.Fatal(err)
		}
		before := lvState(t, st)
		// GEN-4: a withdrawal is the learner's decision, not a rule's; it is not reversible by an admin.
		_, err := w.Service.ReinstateLearner(w.As("kcc-admin"), alice.ID, "talked them round")
		lvWantErr(t, err, apperr.Conflict, "", "GEN-4")
		_, err = w.Service.ReinstateLearner(w.As("kcc-admin"), bob.ID, "nothing scheduled")
		lvWantErr(t, err, apperr.Conflict, "", "GEN-4")
		if after := lvState(t, st); after != before {
			t.Fatalf("refused reinstatements wrote something:\n%s\n%s", before, after)
		}
	})
}

func TestReinstate_GEN4_AfterErasureIsConflict(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		alice, _ := w.Active("alice")
		if _, err := w.Service.MarkLeaver(w.As("kcc-admin"), alice.ID, "left"); err != nil {
			t.Fatal(err)
		}
		w.Clock.Advance(w.Programme.Settings.LeaverGracePeriod)
		if rep := w.Sweep(w.As("kc"), w.Programme.ID); rep.Erased != 1 {
			t.Fatalf("sweep: %+v", rep)
		}
		before := lvState(t, st)
		_, err := w.Service.ReinstateLearner(w.As("kcc-admin"), alice.ID, "came back")
		lvWantErr(t, err, apperr.Conflict, "", "GEN-4")
		_, err = w.Service.ReinstateLearner(w.As("kc"), alice.ID, "came back")
		wantCode(t, err, apperr.Conflict)
		if after := lvState(t, st); after != before {
			t.Fatalf("a refused reinstatement wrote something:\n%s\n%s", before, after)
		}
		if got := w.Learner(alice.ID); got.Status != domain.StatusErased || got.Email != nil {
			t.Fatalf("tombstone: %+v", got)
		}
	})
}

func TestReinstate_GEN4_AfterGraceIsConflict(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		alice, _ := w.Active("alice")
		bob, _ := w.Active("bob")
		for _, id := range []string{alice.ID, bob.ID} {
			if _, err := w.Service.MarkLeaver(w.As("kcc-admin"), id, "left"); err != nil {
				t.Fatal(err)
			}
		}
		grace := w.Programme.Settings.LeaverGracePeriod
		// One second before the end: still reversible.
		w.Clock.Advance(grace - time.Second)
		if out, err := w.Service.ReinstateLearner(w.As("kcc-admin"), bob.ID, "did not leave"); err != nil || out.Status != domain.StatusActive {
			t.Fatalf("within the grace: %+v %v", out, err)
		}
		// At the due time, not swept yet: the grace is over.
		w.Clock.Advance(time.Second)
		before := lvState(t, st)
		_, err := w.Service.ReinstateLearner(w.As("kcc-admin"), alice.ID, "did not leave")
		lvWantErr(t, err, apperr.Conflict, "", "GEN-4")
		if after := lvState(t, st); after != before {
			t.Fatalf("a refused reinstatement wrote something:\n%s\n%s", before, after)
		}
		if got := w.Learner(alice.ID); got.Status != domain.StatusRemovalScheduled || got.Version != 4 {
			t.Fatalf("after the grace: %+v", got)
		}
	})
}

// ---- roster reconciliation (CTL-9, GEN-4, invariant 4) ----

// lvRosterLearners adds ten KCC learners k00..k09 (PENDING_ACCEPTANCE,
// created by the organisation) and two Medway learners, m0 and m1.
func lvRosterLearners(w *testkit.ConnectToLearn) (k, m []domain.Learner) {
	w.T.Helper()
	for i := 0; i < 10; i++ {
		k = append(k, w.CreateLearner(w.KCC.ID, fmt.Sprintf("k%02d@kent.gov.uk", i), "K", fmt.Sprint("Number ", i)))
	}
	for i := 0; i < 2; i++ {
		m = append(m, w.CreateLearner(w.Medway.ID, fmt.Sprintf("m%d@medway.gov.uk", i), "M", fmt.Sprint("Number ", i)))
	}
	return k, m
}

// lvRoster lists the KCC addresses of k[i] for the given indexes.
func lvRoster(idx ...int) []string {
	out := make([]string, len(idx))
	for i, n := range idx {
		out[i] = fmt.Sprintf("k%02d@kent.gov.uk", n)
	}
	return out
}

// lvRep prints a report's fields (RosterReport's String hides them).
type lvRep lifecycle.RosterReport

func lvRange(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestRoster_CTL9_SchedulesMissingLearners(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		k, m := lvRosterLearners(w)
		roster := lvRoster(lvRange(0, 9)...) // k09 is missing: 1 of 10, exactly the 10% threshold
		roster[3] = "  K03@KENT.GOV.UK. "    // spelled differently, still k03
		now := w.Clock.Now()
		due := now.Add(21 * lvDay)
		if w.Programme.Settings.AutomatedRemovalGrace != 21*lvDay || w.Programme.Settings.RosterRemovalThreshold != 0.10 {
			t.Fatalf("preset: %+v", w.Programme.Settings)
		}
		rep, err := w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, roster, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.DryRun || !rep.Applied || rep.RosterSize != 9 || rep.ActiveLearners != 10 || rep.ToRemove != 1 ||
			math.Abs(rep.Share-0.1) > 1e-9 || rep.Threshold != 0.1 || rep.RemovalDueAt != due.Format("2006-01-02T15:04:05Z") ||
			len(rep.BadLines) != 0 || !lrnSameSet(rep.Learners, []string{k[9].ID}) {
			t.Fatalf("report: %+v", lvRep(rep))
		}
		got := w.Learner(k[9].ID)
		if got.Status != domain.StatusRemovalScheduled || lvReason(got) != string(domain.RemovalRoster) || !lvDue(got, due) ||
			got.Version != 2 || got.AccessAllowed() {
			t.Fatalf("missing learner: %+v", got)
		}
		w.WantFeed(k[9].ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventRemovalScheduled, 2))
		for _, l := range append(append([]domain.Learner{}, k[:9]...), m...) {
			if got := w.Learner(l.ID); got.Status != domain.StatusPendingAcceptance || got.Version != 1 {
				t.Fatalf("a learner on the roster (or of Medway) changed: %+v", got)
			}
		}
		es := w.Audit(w.Programme.ID)
		rc := lrnEntries(es, "roster.reconcile", w.KCC.ID)
		if len(rc) != 1 || rc[0].ActorID != lifecycle.ActorIDFor(testkit.TestIssuer, "kcc-admin") || rc[0].Details["rule"] != "CTL-9" ||
			rc[0].Details["rosterSize"] != float64(9) || rc[0].Details["scheduled"] != float64(1) {
			t.Fatalf("roster audit: %+v", rc)
		}
		if sr := lrnEntries(es, "learner.schedule_removal", k[9].ID); len(sr) != 1 || sr[0].Reason != string(domain.RemovalRoster) {
			t.Fatalf("schedule audit: %+v", sr)
		}
		// GEN-1: the learner (and their admin) can see why and until when.
		if r, err := w.Service.Retention(w.As("kcc-admin"), k[9].ID); err != nil || r.Rule != "CTL-9" || !r.KeptUntil.Equal(due) {
			t.Fatalf("retention: %+v %v", r, err)
		}

		// The same roster again: nothing more to do, nothing written.
		before := lvState(t, st)
		rep, err = w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, roster, false, false, nil)
		if err != nil || rep.ToRemove != 0 || rep.Applied || rep.ActiveLearners != 9 || len(rep.Learners) != 0 {
			t.Fatalf("rerun: %+v %v", lvRep(rep), err)
		}
		if after := lvState(t, st); after != before {
			t.Fatalf("a rerun wrote something:\n%s\n%s", before, after)
		}

		// Who may reconcile, and malformed calls.
		for _, c := range []struct {
			name  string
			ctx   context.Context
			org   string
			allow *float64
			code  apperr.Code
		}{
			{"Medway admin on KCC", w.As("medway-admin"), w.KCC.ID, nil, apperr.NotFound},
			{"stranger", w.As("stranger"), w.KCC.ID, nil, apperr.NotFound},
			{"anonymous", context.Background(), w.KCC.ID, nil, apperr.Unauthenticated},
			{"malformed organisation", w.As("kcc-admin"), "not-an-id", nil, apperr.NotFound},
			{"share above 1", w.As("kcc-admin"), w.KCC.ID, lrnPtr(1.5), apperr.BadUserInput},
			{"negative share", w.As("kcc-admin"), w.KCC.ID, lrnPtr(-0.1), apperr.BadUserInput},
			{"NaN share", w.As("kcc-admin"), w.KCC.ID, lrnPtr(math.NaN()), apperr.BadUserInput},
		} {
			_, err := w.Service.ReconcileRoster(c.ctx, c.org, lvRoster(lvRange(0, 5)...), false, false, c.allow)
			if apperr.CodeOf(err) != c.code {
				t.Errorf("%s: want %s, got %v", c.name, c.code, err)
			}
		}
		if after := lvState(t, st); after != before {
			t.Fatalf("refused reconciliations wrote something:\n%s\n%s", before, after)
		}
		// A programme admin may reconcile any partner.
		rep, err = w.Service.ReconcileRoster(w.As("kc"), w.Medway.ID, []string{"m0@medway.gov.uk", "m1@medway.gov.uk"}, false, false, nil)
		if err != nil || rep.ToRemove != 0 || rep.ActiveLearners != 2 {
			t.Fatalf("programme admin: %+v %v", lvRep(rep), err)
		}
	})
}

func TestRoster_GEN4_SafetyValve(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		k, _ := lvRosterLearners(w)
		roster := lvRoster(lvRange(0, 8)...) // k08, k09 missing: 2 of 10 = 20% > 10%
		before := lvState(t, st)
		rep, err := w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, roster, false, false, nil)
		ae := lvWantErr(t, err, apperr.BadUserInput, "SAFETY_VALVE", "GEN-4")
		if ae.Field != "allowRemovingMoreThan" || !strings.Contains(ae.Message, "2 of 10") {
			t.Errorf("safety valve error: %+v", ae)
		}
		// The refusal still says what would have happened.
		if rep.Applied || rep.ToRemove != 2 || rep.ActiveLearners != 10 || math.Abs(rep.Share-0.2) > 1e-9 || rep.Threshold != 0.1 ||
			!lrnSameSet(rep.Learners, []string{k[8].ID, k[9].ID}) {
			t.Errorf("refused report: %+v", lvRep(rep))
		}
		// A share still below what the roster needs, or one below the programme's own threshold, does not help.
		_, err = w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, roster, false, false, lrnPtr(0.15))
		lvWantErr(t, err, apperr.BadUserInput, "SAFETY_VALVE", "GEN-4")
		rep, err = w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, roster, false, false, lrnPtr(0.05))
		lvWantErr(t, err, apperr.BadUserInput, "SAFETY_VALVE", "GEN-4")
		if rep.Threshold != 0.1 {
			t.Errorf("a lower allowRemovingMoreThan lowered the threshold: %+v", lvRep(rep))
		}
		if after := lvState(t, st); after != before {
			t.Fatalf("a refused reconciliation wrote something:\n%s\n%s", before, after)
		}
		if n := countActions(w.Audit(w.Programme.ID), "roster.reconcile"); n != 0 {
			t.Fatalf("refused reconciliations audited: %d", n)
		}

		// Raised explicitly: applied.
		rep, err = w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, roster, false, false, lrnPtr(0.25))
		if err != nil || !rep.Applied || rep.ToRemove != 2 || rep.Threshold != 0.25 || !lrnSameSet(rep.Learners, []string{k[8].ID, k[9].ID}) {
			t.Fatalf("allowed: %+v %v", lvRep(rep), err)
		}
		for _, l := range k[8:] {
			if got := w.Learner(l.ID); got.Status != domain.StatusRemovalScheduled || lvReason(got) != string(domain.RemovalRoster) {
				t.Fatalf("scheduled: %+v", got)
			}
		}
		if n := countActions(w.Audit(w.Programme.ID), "learner.schedule_removal"); n != 2 {
			t.Fatalf("schedule audits: %d", n)
		}
	})
}

func TestRoster_GEN4_EmptyRosterRefused(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		lvRosterLearners(w)
		before := lvState(t, st)
		for name, emails := range map[string][]string{
			"nil":              nil,
			"empty":            {},
			"blank lines only": {"", "   ", "\t"},
			"all malformed":    {"not an email", "Bob <k00@kent.gov.uk>"},
		} {
			rep, err := w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, emails, false, false, nil)
			if apperr.CodeOf(err) != apperr.BadUserInput {
				t.Errorf("%s: want the safety valve, got %v (%+v)", name, err, lvRep(rep))
				continue
			}
			if ae := lrnAppErr(t, err); ae.Reason != "SAFETY_VALVE" {
				t.Errorf("%s: %+v", name, ae)
			}
			if rep.RosterSize != 0 || rep.ToRemove != 10 || rep.Share != 1 || rep.Applied || len(rep.BadLines) != len(emails) {
				t.Errorf("%s: report %+v", name, lvRep(rep))
			}
		}
		// Even as a dry run.
		_, err := w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, nil, true, false, nil)
		lvWantErr(t, err, apperr.BadUserInput, "SAFETY_VALVE", "GEN-4")
		if after := lvState(t, st); after != before {
			t.Fatalf("an empty roster wrote something:\n%s\n%s", before, after)
		}
		// An organisation with no learners has nothing to remove: not an error.
		o := w.Admit(w.Programme.ID, "Swale Borough Council", "swale.gov.uk")
		rep, err := w.Service.ReconcileRoster(w.As("kc"), o.ID, nil, false, false, nil)
		if err != nil || rep.ToRemove != 0 || rep.ActiveLearners != 0 || rep.Applied {
			t.Fatalf("empty organisation: %+v %v", lvRep(rep), err)
		}
	})
}

func TestRoster_INV4_DryRunWritesNothing(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		k, _ := lvRosterLearners(w)
		roster := append(lvRoster(lvRange(0, 9)...), "not an email")
		before := lvState(t, st)
		dry, err := w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, roster, true, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !dry.DryRun || dry.Applied || dry.ToRemove != 1 || dry.ActiveLearners != 10 || dry.RosterSize != 9 ||
			!lrnSameSet(dry.Learners, []string{k[9].ID}) || len(dry.BadLines) != 1 || dry.BadLines[0].Line != 10 {
			t.Fatalf("dry run: %+v", lvRep(dry))
		}
		if after := lvState(t, st); after != before {
			t.Fatalf("a dry run wrote something:\n%s\n%s", before, after)
		}
		// The real run does what the dry run said.
		real, err := w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, roster, false, false, nil)
		if err != nil || real.DryRun || !real.Applied || !lrnSameSet(real.Learners, dry.Learners) || real.ToRemove != dry.ToRemove ||
			real.RemovalDueAt != dry.RemovalDueAt || len(real.BadLines) != 1 {
			t.Fatalf("real run: %+v %v (dry run %+v)", lvRep(real), err, lvRep(dry))
		}
		if got := w.Learner(k[9].ID); got.Status != domain.StatusRemovalScheduled {
			t.Fatalf("after the real run: %+v", got)
		}
	})
}

// Bad lines are listed with their line numbers and never guessed at: a line
// that does not parse keeps nobody, so the learner it was probably meant for
// counts as missing (that is what the code does; the dry run is how an admin
// sees it first). Another organisation's address keeps nobody and removes
// nobody of that organisation.
func TestRoster_BadLinesReportedNotGuessed(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		k, m := lvRosterLearners(w)
		lines := []string{
			"k00@kent.gov.uk",         // 1
			"K01 <k01@kent.gov.uk>",   // 2: display name: k01 is not on the roster
			"k02@kent.gov.uk",         // 3
			"m0@medway.gov.uk",        // 4: Medway's learner, on KCC's roster
			"",                        // 5
			"k03 @kent.gov.uk",        // 6
			"k04@kent.gov.uk",         // 7
			"k05@kent.gov.uk",         // 8
			"k06@kent.gov.uk",         // 9
			"k07@kent.gov.uk",         // 10
			"k08@kent.gov.uk",         // 11
			"k09@kent.gov.uk",         // 12
			"someone@gmail.com",       // 13
			"k03@kent.gov.uk",         // 14: k03's well-formed line
			"\"k04\"@kent.gov.uk",     // 15
			"k00@kent.gov.uk@evil.uk", // 16
		}
		rep, err := w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, lines, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			line   int
			reason string
		}{{2, "EMAIL_DISPLAY_NAME"}, {4, "DOMAIN_NOT_OWNED"}, {5, "EMAIL_EMPTY"}, {6, "EMAIL_SYNTAX"}, {13, ""}, {15, "EMAIL_QUOTED"}, {16, "EMAIL_SYNTAX"}}
		if len(rep.BadLines) != len(want) {
			t.Fatalf("bad lines: %+v", rep.BadLines)
		}
		for i, wl := range want {
			bl := rep.BadLines[i]
			if bl.Line != wl.line || bl.Code != string(apperr.BadUserInput) || bl.Message == "" || (wl.reason != "" && bl.Reason != wl.reason) {
				t.Errorf("bad line %d: want line %d reason %s, got %+v", i, wl.line, wl.reason, bl)
			}
		}
		// A webmail address is refused either as such or as not KCC's: never kept.
		if r := rep.BadLines[4].Reason; r != "DOMAIN_WEBMAIL" && r != "DOMAIN_NOT_OWNED" {
			t.Errorf("webmail line: %+v", rep.BadLines[4])
		}
		// Nine well-formed KCC lines; k01's only line was malformed, so k01 is missing.
		if rep.RosterSize != 9 || rep.ToRemove != 1 || !rep.Applied || !lrnSameSet(rep.Learners, []string{k[1].ID}) {
			t.Fatalf("report: %+v", lvRep(rep))
		}
		if got := w.Learner(k[1].ID); got.Status != domain.StatusRemovalScheduled || lvReason(got) != string(domain.RemovalRoster) {
			t.Fatalf("k01: %+v", got)
		}
		// Medway's learners are not touched by KCC's roster either way.
		for _, l := range m {
			if got := w.Learner(l.ID); got.Status != domain.StatusPendingAcceptance || got.Version != 1 || got.OrganisationID != w.Medway.ID {
				t.Fatalf("Medway learner: %+v", got)
			}
		}
		// The report does not echo hostile input at length.
		huge := strings.Repeat("x", 5000) + "@kent.gov.uk"
		rep, err = w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, append(lvRoster(lvRange(0, 10)...), huge), true, false, nil)
		if err != nil || len(rep.BadLines) != 1 || rep.BadLines[0].Line != 11 || len(rep.BadLines[0].Message) > 300 {
			t.Fatalf("long line: %+v %v", rep.BadLines, err)
		}
	})
}

// ---- sign-in and scheduled removals (CTL-7, GEN-4) ----

func TestSignIn_CTL7_ActivityCancelsInactivityRemoval(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		w.UpdateRules(w.Programme.ID, lifecycle.RuleSettingsPatch{InactivityLimit: lrnPtr(lvDay)})
		alice, _ := w.Active("alice")
		bob, _ := w.Active("bob")
		// Bob signs in a day and a half later: within the limit at the sweep.
		w.Clock.Advance(36 * time.Hour)
		if _, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "bob"}); err != nil {
			t.Fatal(err)
		}
		w.Clock.Advance(12 * time.Hour)
		now := w.Clock.Now()
		rep := w.Sweep(w.As("kc"), w.Programme.ID)
		if rep.ScheduledInactive != 1 || rep.Erased != 0 {
			t.Fatalf("sweep: %+v", rep)
		}
		got := w.Learner(alice.ID)
		if got.Status != domain.StatusRemovalScheduled || lvReason(got) != string(domain.RemovalInactivity) ||
			!lvDue(got, now.Add(w.Programme.Settings.AutomatedRemovalGrace)) || got.Version != 4 {
			t.Fatalf("inactive learner: %+v", got)
		}
		if got := w.Learner(bob.ID); got.Status != domain.StatusActive {
			t.Fatalf("active learner scheduled: %+v", got)
		}
		if sr := lrnEntries(w.Audit(w.Programme.ID), "learner.schedule_removal", alice.ID); len(sr) != 1 || sr[0].Reason != string(domain.RemovalInactivity) {
			t.Fatalf("schedule audit: %+v", sr)
		}

		// Alice signs in within the grace: activity cancels the removal.
		w.Clock.Advance(3 * lvDay)
		back, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if back.Status != domain.StatusActive || !back.AccessAllowed() || back.RemovalReason != nil || back.RemovalDueAt != nil || back.Version != 6 ||
			back.LastSignInAt == nil || !back.LastSignInAt.Equal(w.Clock.Now()) {
			t.Fatalf("after sign-in: %+v", back)
		}
		w.WantFeed(alice.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
			testkit.Ev(domain.EventRemovalScheduled, 4), testkit.Ev(domain.EventRemovalCancelled, 5), testkit.Ev(domain.EventAccessGranted, 6))
		ca := lrnEntries(w.Audit(w.Programme.ID), "learner.removal.cancelled_by_activity", alice.ID)
		if len(ca) != 1 || ca[0].Details["rule"] != "CTL-7" || ca[0].ActorID != lifecycle.ActorIDFor(testkit.KCCIssuer, "alice") {
			t.Fatalf("cancel audit: %+v", ca)
		}
		// The sign-in restarted alice's inactivity clock: the next sweep leaves
		// her alone (bob, silent for 3.5 days by now, is scheduled).
		if rep := w.Sweep(w.As("kc"), w.Programme.ID); rep.ScheduledInactive != 1 {
			t.Fatalf("sweep after sign-in: %+v", rep)
		}
		if got := w.Learner(alice.ID); got.Status != domain.StatusActive || got.Version != 6 {
			t.Fatalf("alice rescheduled after signing in: %+v", got)
		}
		if got := w.Learner(bob.ID); lvReason(got) != string(domain.RemovalInactivity) {
			t.Fatalf("bob: %+v", got)
		}
		// Signing in again changes nothing more.
		if again, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "alice"}); err != nil || again.Version != 6 {
			t.Fatalf("second sign-in: %+v %v", again, err)
		}
	})
}

func TestSignIn_GEN4_LeaverStaysScheduled(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		w.UpdateRules(w.Programme.ID, lifecycle.RuleSettingsPatch{InactivityLimit: lrnPtr(lvDay)})
		alice, _ := w.Active("alice") // marked a leaver
		bob, _ := w.Active("bob")     // scheduled for inactivity, then marked a leaver
		carl, _ := w.Active("carl")   // missing from the roster
		var roster []string
		for _, n := range []string{"alice", "bob", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"} {
			if n[0] == 'd' {
				w.Active(n)
			}
			roster = append(roster, n+"@kent.gov.uk")
		}
		if _, err := w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, roster, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Service.MarkLeaver(w.As("kcc-admin"), alice.ID, "left"); err != nil {
			t.Fatal(err)
		}
		// Bob becomes inactive; everyone else signs in meanwhile.
		w.Clock.Advance(36 * time.Hour)
		for _, n := range []string{"d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"} {
			if _, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: n}); err != nil {
				t.Fatal(err)
			}
		}
		w.Clock.Advance(12 * time.Hour)
		if rep := w.Sweep(w.As("kc"), w.Programme.ID); rep.ScheduledInactive != 1 {
			t.Fatalf("sweep: %+v", rep)
		}
		if got := w.Learner(bob.ID); lvReason(got) != string(domain.RemovalInactivity) {
			t.Fatalf("bob: %+v", got)
		}
		// An inactivity removal can be turned into a leaver's.
		if _, err := w.Service.MarkLeaver(w.As("kcc-admin"), bob.ID, "left as well"); err != nil {
			t.Fatal(err)
		}
		w.Clock.Advance(time.Hour)
		for _, c := range []struct {
			name   string
			l      domain.Learner
			reason domain.RemovalReason
		}{{"alice", alice, domain.RemovalLeaver}, {"bob", bob, domain.RemovalLeaver}, {"carl", carl, domain.RemovalRoster}} {
			before := w.Learner(c.l.ID)
			feed := w.Feed(c.l.ID)
			got, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: c.name})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got.Status != domain.StatusRemovalScheduled || got.AccessAllowed() || lvReason(got) != string(c.reason) ||
				!lvDue(got, *before.RemovalDueAt) {
				t.Errorf("%s: signing in cancelled a %s removal: %+v", c.name, c.reason, got)
			}
			if after := w.Feed(c.l.ID); fmt.Sprint(after) != fmt.Sprint(feed) {
				t.Errorf("%s: sign-in wrote feed events: %v -> %v", c.name, feed, after)
			}
			if n := len(lrnEntries(w.Audit(w.Programme.ID), "learner.removal.cancelled_by_activity", c.l.ID)); n != 0 {
				t.Errorf("%s: cancellation audited", c.name)
			}
		}
	})
}

// ---- an organisation leaving the programme (CTL-9, CTL-1) ----

func lvRemoveOrganisation(e *testkit.World, programmeID, orgID string) {
	e.T.Helper()
	prop, err := e.Service.ProposeMembership(e.As("sds"), lifecycle.ProposeMembershipInput{ProgrammeID: programmeID,
		Action: domain.ProposalRemove, OrganisationID: orgID, Reason: "left the partnership"})
	if err != nil {
		e.T.Fatal(err)
	}
	if _, err := e.Service.ApproveMembership(e.As("sds"), prop.ID, ""); err != nil {
		e.T.Fatal(err)
	}
	if _, err := e.Service.ApproveMembership(e.As("kc"), prop.ID, ""); err != nil {
		e.T.Fatal(err)
	}
}

func TestOrganisationRemoval_CTL9_SchedulesAllLearners(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		alice, _ := w.Active("alice")
		carol := w.CreateLearner(w.KCC.ID, "carol@kent.gov.uk", "Carol", "King") // pending
		dave, _ := w.Active("dave")
		left, err := w.Service.MarkLeaver(w.As("kcc-admin"), dave.ID, "left")
		if err != nil {
			t.Fatal(err)
		}
		mo := w.CreateLearner(w.Medway.ID, "mo@medway.gov.uk", "Mo", "Ali")

		// After one governing body's approval nothing happens (CTL-1).
		prop, err := w.Service.ProposeMembership(w.As("sds"), lifecycle.ProposeMembershipInput{ProgrammeID: w.Programme.ID,
			Action: domain.ProposalRemove, OrganisationID: w.KCC.ID, Reason: "left the partnership"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Service.ApproveMembership(w.As("sds"), prop.ID, ""); err != nil {
			t.Fatal(err)
		}
		if got := w.Learner(alice.ID); got.Status != domain.StatusActive {
			t.Fatalf("scheduled after one approval: %+v", got)
		}
		w.Clock.Advance(time.Hour)
		now := w.Clock.Now()
		due := now.Add(w.Programme.Settings.AutomatedRemovalGrace)
		if _, err := w.Service.ApproveMembership(w.As("kc"), prop.ID, ""); err != nil {
			t.Fatal(err)
		}
		a := w.Learner(alice.ID)
		if a.Status != domain.StatusRemovalScheduled || a.AccessAllowed() || lvReason(a) != string(domain.RemovalOrganisationLeft) || !lvDue(a, due) || a.Version != 4 {
			t.Fatalf("alice: %+v", a)
		}
		c := w.Learner(carol.ID)
		if c.Status != domain.StatusRemovalScheduled || lvReason(c) != string(domain.RemovalOrganisationLeft) || !lvDue(c, due) || c.Version != 2 {
			t.Fatalf("carol: %+v", c)
		}
		// A leaver already on their way keeps their own (earlier) schedule.
		if d := w.Learner(dave.ID); lvReason(d) != string(domain.RemovalLeaver) || !lvDue(d, *left.RemovalDueAt) || d.Version != 4 {
			t.Fatalf("dave: %+v", d)
		}
		if m := w.Learner(mo.ID); m.Status != domain.StatusPendingAcceptance || m.Version != 1 {
			t.Fatalf("another organisation's learner: %+v", m)
		}
		w.WantFeed(alice.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventUpdated, 2), testkit.Ev(domain.EventActivated, 3),
			testkit.Ev(domain.EventRemovalScheduled, 4))
		w.WantFeed(carol.ID, testkit.Ev(domain.EventProvisioned, 1), testkit.Ev(domain.EventRemovalScheduled, 2))
		es := w.Audit(w.Programme.ID)
		for _, id := range []string{alice.ID, carol.ID} {
			if sr := lrnEntries(es, "learner.schedule_removal", id); len(sr) != 1 || sr[0].Reason != string(domain.RemovalOrganisationLeft) ||
				sr[0].ActorID != lifecycle.ActorIDFor(testkit.TestIssuer, "kc") {
				t.Fatalf("schedule audit of %s: %+v", id, sr)
			}
		}
		if n := len(lrnEntries(es, "learner.schedule_removal", dave.ID)); n != 0 {
			t.Fatalf("the leaver was rescheduled: %d", n)
		}
		if n := len(lrnEntries(es, "organisation.remove", w.KCC.ID)); n != 1 {
			t.Fatalf("organisation.remove audits: %d", n)
		}
		if r, err := w.Service.Retention(w.As("kc"), alice.ID); err != nil || r.Rule != "CTL-9" || !r.KeptUntil.Equal(due) {
			t.Fatalf("retention: %+v %v", r, err)
		}
		// Signing in does not cancel it.
		if got, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "alice"}); err != nil ||
			got.Status != domain.StatusRemovalScheduled {
			t.Fatalf("sign-in: %+v %v", got, err)
		}
		// A removed organisation's roster cannot be reconciled any more.
		_, err = w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, []string{"alice@kent.gov.uk"}, true, false, nil)
		wantCode(t, err, apperr.Conflict)

		// When the grace ends, everyone of KCC is erased.
		w.Clock.Set(due)
		if rep := w.Sweep(w.As("kc"), w.Programme.ID); rep.Erased != 3 {
			t.Fatalf("sweep: %+v", rep)
		}
		for _, id := range []string{alice.ID, carol.ID, dave.ID} {
			if got := w.Learner(id); got.Status != domain.StatusErased {
				t.Fatalf("not erased: %+v", got)
			}
		}
		if m := w.Learner(mo.ID); m.Status != domain.StatusPendingAcceptance {
			t.Fatalf("Medway's learner erased: %+v", m)
		}
	})
}

// A learner of an organisation that has left the programme cannot get access
// back: not by an admin's reinstatement, not by signing in after an earlier
// inactivity schedule. (The organisation's removal was decided by every
// governing body, CTL-1; it is not an automated decision GEN-4 lets an
// organisation admin reverse.)
func TestOrganisationRemoval_CTL9_LearnersCannotRegainAccess(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		w.UpdateRules(w.Programme.ID, lifecycle.RuleSettingsPatch{InactivityLimit: lrnPtr(lvDay)})
		alice, _ := w.Active("alice")
		w.Active("bob")
		// Bob goes inactive; alice keeps signing in.
		w.Clock.Advance(36 * time.Hour)
		if _, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "alice"}); err != nil {
			t.Fatal(err)
		}
		w.Clock.Advance(12 * time.Hour)
		if rep := w.Sweep(w.As("kc"), w.Programme.ID); rep.ScheduledInactive != 1 {
			t.Fatalf("sweep: %+v", rep)
		}
		lvRemoveOrganisation(w.World, w.Programme.ID, w.KCC.ID)
		if got := w.Learner(alice.ID); lvReason(got) != string(domain.RemovalOrganisationLeft) {
			t.Fatalf("alice: %+v", got)
		}

		out, err := w.Service.ReinstateLearner(w.As("kcc-admin"), alice.ID, "please keep her")
		if err == nil || out.AccessAllowed() || w.Learner(alice.ID).AccessAllowed() {
			t.Errorf("BUG: a learner of a removed organisation was reinstated: err %v, learner %+v", err, w.Learner(alice.ID))
		} else {
			wantCode(t, err, apperr.Conflict)
		}
		back, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "bob"})
		if err == nil && back.AccessAllowed() {
			t.Errorf("BUG: an inactivity-scheduled learner of a removed organisation regained access by signing in: %+v", back)
		}
	})
}

// ---- erasure keeps a pseudonymous trail only (GEN-2, invariant 2) ----

// Withdrawal and erasure-request reasons are the learner's free text. Erasure
// blanks them on the data request; the append-only audit log must not keep
// them either, since they can name or address the person.
func TestWithdraw_GEN2_LearnersOwnReasonNotKeptAfterErasure(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		alice, self := w.Active("alice")
		bob, bobSelf := w.Active("bob")
		if _, err := w.Service.WithdrawConsent(self(), "Alice Given here: write to alice@kent.gov.uk, not my manager"); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Service.RequestErasure(bobSelf(), "bob@kent.gov.uk wants out"); err != nil {
			t.Fatal(err)
		}
		for _, l := range []domain.Learner{alice, bob} {
			if got := w.Learner(l.ID); got.Status != domain.StatusErased {
				t.Fatalf("not erased: %+v", got)
			}
			for _, e := range lvAbout(w.Audit(w.Programme.ID), l.ID) {
				text := e.Reason + fmt.Sprint(e.Details)
				if strings.Contains(text, "@kent.gov.uk") || strings.Contains(text, "Alice Given") {
					t.Errorf("BUG: audit entry %s about erased learner %s keeps the learner's free text: %q", e.Action, l.ID, e.Reason)
				}
			}
		}
	})
}

// Invariant 4: with atomic, a roster with a bad line applies nothing; the
// report still says what it found, so the admin can fix the file.
func TestRoster_INV4_AtomicRosterWithBadLinesAppliesNothing(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		k, _ := lvRosterLearners(w)
		lines := lvRoster(lvRange(0, 10)...)
		lines[1] = "K01 <k01@kent.gov.uk>" // k01's line is malformed
		before := len(w.Audit(w.Programme.ID))
		rep, err := w.Service.ReconcileRoster(w.As("kcc-admin"), w.KCC.ID, lines, false, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Applied || len(rep.BadLines) != 1 || rep.BadLines[0].Line != 2 || rep.ToRemove != 1 {
			t.Fatalf("report: %+v", lvRep(rep))
		}
		if got := w.Learner(k[1].ID); got.Status == domain.StatusRemovalScheduled {
			t.Fatalf("an atomic roster with a bad line scheduled k01: %+v", got)
		}
		if after := len(w.Audit(w.Programme.ID)); after != before {
			t.Fatalf("an atomic roster with a bad line wrote %d audit entries", after-before)
		}
	})
}
