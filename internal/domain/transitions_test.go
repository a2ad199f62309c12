package domain

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// transitionTable is every state × every transition: OK, or the refusal's
// code and rule ("-" when the refusal names no rule). Read it as the
// authorisation matrix is read: one row per state the learner is in.
const transitionTable = `
state                             activate        revoke         schedule       cancel         reinstate      withdraw       erasure         erase      correct    group      move       link        contract-end
PENDING_ACCEPTANCE                OK              CONFLICT/ONC-1 OK             CONFLICT/GEN-4 CONFLICT/GEN-4 OK             OK              OK         OK         OK         OK         OK          OK
PENDING_ACCEPTANCE+CONTRACT_ENDED FORBIDDEN/CTL-6 CONFLICT/ONC-1 OK             CONFLICT/GEN-4 CONFLICT/GEN-4 OK             OK              OK         OK         OK         OK         OK          OK
ACTIVE                            CONFLICT/CTL-5  OK             OK             CONFLICT/GEN-4 CONFLICT/GEN-4 OK             OK              OK         OK         OK         OK         OK          OK
SCHEDULED:INACTIVITY              CONFLICT/CTL-5  CONFLICT/ONC-1 OK             OK             OK             OK             OK              OK         OK         OK         OK         FORBIDDEN/- OK
SCHEDULED:LEAVER                  CONFLICT/CTL-5  CONFLICT/ONC-1 CONFLICT/CTL-9 CONFLICT/GEN-4 OK             OK             CONFLICT/CTL-11 OK         OK         OK         OK         FORBIDDEN/- OK
SCHEDULED:LEAVER+GRACE_OVER       CONFLICT/CTL-5  CONFLICT/ONC-1 CONFLICT/CTL-9 CONFLICT/GEN-4 CONFLICT/GEN-4 OK             CONFLICT/CTL-11 OK         OK         OK         OK         FORBIDDEN/- OK
SCHEDULED:ERASURE_REQUESTED       CONFLICT/CTL-5  CONFLICT/ONC-1 CONFLICT/CTL-9 CONFLICT/GEN-4 CONFLICT/GEN-4 OK             CONFLICT/CTL-11 OK         OK         OK         OK         FORBIDDEN/- OK
SCHEDULED:CONTRACT_ENDED          CONFLICT/CTL-5  CONFLICT/ONC-1 CONFLICT/CTL-9 CONFLICT/GEN-4 CONFLICT/GEN-4 OK             CONFLICT/CTL-11 OK         OK         OK         OK         FORBIDDEN/- OK
WITHDRAWN                         CONFLICT/CTL-5  CONFLICT/ONC-1 CONFLICT/CTL-9 CONFLICT/GEN-4 CONFLICT/GEN-4 CONFLICT/CTL-8 CONFLICT/CTL-11 OK         OK         OK         OK         FORBIDDEN/- OK
ERASED                            CONFLICT/CTL-5  CONFLICT/ONC-1 CONFLICT/CTL-9 CONFLICT/GEN-4 CONFLICT/GEN-4 CONFLICT/-     CONFLICT/CTL-11 CONFLICT/- CONFLICT/- CONFLICT/- CONFLICT/- FORBIDDEN/- CONFLICT/-
`

var tableTransitions = map[string]Transition{
	"activate": TActivate, "revoke": TRevokeAccess, "schedule": TSchedule, "cancel": TCancelRemoval, "reinstate": TReinstate,
	"withdraw": TWithdraw, "erasure": TRequestErasure, "erase": TErase, "correct": TCorrect, "group": TChangeGroup,
	"move": TMove, "link": TLinkIdentity, "contract-end": TContractEnd,
}

// tableState builds a learner in the named state: an admin-made record,
// never linked, with a name, an email and a group, at version 4.
func tableState(t *testing.T, name string, now time.Time) Learner {
	t.Helper()
	email, given, family, group := "ann@kent.gov.uk", "Ann", "Smith", "group-1"
	l := Learner{ID: "l-1", ProgrammeID: "p-1", OrganisationID: "o-1", AccessGroupID: &group, Email: &email, GivenName: &given,
		FamilyName: &family, Version: 4, Origin: OriginAdmin, CreatedAt: now.Add(-100 * day), UpdatedAt: now.Add(-day)}
	base, extra, _ := strings.Cut(name, "+")
	status, reason, _ := strings.Cut(base, ":")
	due := now.Add(10 * day)
	switch status {
	case "PENDING_ACCEPTANCE":
		l.Status = StatusPendingAcceptance
	case "ACTIVE":
		l.Status = StatusActive
		l.FirstActivatedAt = &l.UpdatedAt
	case "SCHEDULED":
		r := RemovalReason(reason)
		l.Status, l.RemovalReason, l.RemovalDueAt = StatusRemovalScheduled, &r, &due
	case "WITHDRAWN":
		r := RemovalConsentWithdrawn
		l.Status, l.RemovalReason, l.RemovalDueAt = StatusWithdrawn, &r, &due
	case "ERASED":
		l.Status, l.ErasedAt, l.Email, l.GivenName, l.FamilyName = StatusErased, &l.UpdatedAt, nil, nil, nil
	default:
		t.Fatalf("unknown state %q", name)
	}
	switch extra {
	case "":
	case "CONTRACT_ENDED":
		l.ContractEnded = true
	case "GRACE_OVER":
		over := now.Add(-time.Minute)
		l.RemovalDueAt = &over
	default:
		t.Fatalf("unknown qualifier %q", extra)
	}
	return l
}

func TestTransitions_EveryStateTimesEveryTransition(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	lines := strings.Split(strings.TrimSpace(transitionTable), "\n")
	header := strings.Fields(lines[0])[1:]
	if len(header) != len(tableTransitions) {
		t.Fatalf("the table has %d transitions, the domain %d", len(header), len(tableTransitions))
	}
	for _, line := range lines[1:] {
		cells := strings.Fields(line)
		state, want := cells[0], cells[1:]
		if len(want) != len(header) {
			t.Fatalf("row %s has %d cells, want %d", state, len(want), len(header))
		}
		for i, name := range header {
			tr := tableTransitions[name]
			t.Run(state+"/"+name, func(t *testing.T) {
				l := tableState(t, state, now)
				before := l
				events, err := l.Apply(tr, now)
				got := "OK"
				if err != nil {
					var r *Refusal
					if !errors.As(err, &r) {
						t.Fatalf("error is not a Refusal: %v", err)
					}
					rule := r.Rule
					if rule == "" {
						rule = "-"
					}
					got = r.Code + "/" + rule
					if r.Reason == "" || r.Message == "" {
						t.Errorf("refusal without a reason or message: %+v", r)
					}
					if !reflect.DeepEqual(l, before) {
						t.Errorf("a refused transition changed the learner:\n%+v\n%+v", before, l)
					}
					if events != nil {
						t.Errorf("a refused transition returned events %v", events)
					}
				} else {
					// Allowed: the version moves exactly once, and the one
					// event carries the new version (invariant 3).
					if l.Version != before.Version+1 || len(events) != 1 || events[0].LearnerVersion != l.Version ||
						events[0].LearnerID != l.ID || events[0].ProgrammeID != l.ProgrammeID || !events[0].OccurredAt.Equal(now) {
						t.Errorf("allowed transition: version %d -> %d, events %+v", before.Version, l.Version, events)
					}
				}
				if got != want[i] {
					t.Errorf("%s on %s: %s, want %s", name, state, got, want[i])
				}
			})
		}
	}
}

// What each transition leaves behind, beyond the status.
func TestTransitions_Effects(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	// CTL-5: the first activation is recorded on the learner; a later one is ACCESS_GRANTED.
	l := tableState(t, "PENDING_ACCEPTANCE", now)
	ev, _ := l.Activate(now)
	if ev[0].Type != EventActivated || l.FirstActivatedAt == nil || !l.FirstActivatedAt.Equal(now) {
		t.Fatalf("first activation: %v %v", ev, l.FirstActivatedAt)
	}
	_, _ = l.RevokeAccess(now)
	ev, _ = l.Activate(now.Add(time.Hour))
	if ev[0].Type != EventAccessGranted || !l.FirstActivatedAt.Equal(now) {
		t.Fatalf("second activation: %v %v", ev, l.FirstActivatedAt)
	}
	// Invariant 2: erasure leaves a tombstone.
	l = tableState(t, "ACTIVE", now)
	_, _ = l.Erase(now)
	if l.Email != nil || l.GivenName != nil || l.FamilyName != nil || l.LastSignInAt != nil || l.ErasedAt == nil || l.Status != StatusErased {
		t.Fatalf("erased: %+v", l)
	}
	// A correction that changes nothing is no transition.
	l = tableState(t, "ACTIVE", now)
	same := "Ann"
	if ev, err := l.Correct(Correction{GivenName: &same}, now); err != nil || ev != nil || l.Version != 4 {
		t.Fatalf("no-op correction: %v %v v%d", ev, err, l.Version)
	}
	// ONC-9: a withdrawn learner no longer edits their own profile.
	l = tableState(t, "WITHDRAWN", now)
	if _, err := l.Correct(Correction{GivenName: &same, BySelf: true}, now); err == nil {
		t.Fatal("a withdrawn learner corrected their own name")
	}
	// CTL-6: nobody is provisioned after the contract end.
	if _, _, err := NewLearner(Learner{ID: "x"}, OriginAdmin, true, now); err == nil {
		t.Fatal("provisioned after the contract end")
	}
	nl, ev, err := NewLearner(Learner{ID: "x", ProgrammeID: "p"}, OriginImport, false, now)
	if err != nil || nl.Version != 1 || nl.Status != StatusPendingAcceptance || nl.Origin != OriginImport || len(ev) != 1 ||
		ev[0].Type != EventProvisioned || ev[0].LearnerVersion != 1 {
		t.Fatalf("new learner: %+v %v %v", nl, ev, err)
	}
}

// Invariant 1, CTL-5: the link-by-email decision table (docs/lifecycle.md).
func TestTransitions_LinkIdentityDecisionTable(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	linked := now.Add(-day)
	tests := []struct {
		state  string
		origin Origin
		linked *time.Time
		own    bool
		want   string
	}{
		{"PENDING_ACCEPTANCE", OriginAdmin, nil, true, LinkOK},
		{"ACTIVE", OriginImport, nil, true, LinkOK},
		{"PENDING_ACCEPTANCE", OriginDirectory, nil, true, LinkOK},
		{"PENDING_ACCEPTANCE", OriginSignIn, nil, true, LinkSignedUpItself},
		{"ACTIVE", OriginAdmin, &linked, true, LinkAlreadyLinked},
		{"WITHDRAWN", OriginAdmin, nil, true, LinkLearnerLeaving},
		{"SCHEDULED:LEAVER", OriginAdmin, nil, true, LinkLearnerLeaving},
		{"SCHEDULED:INACTIVITY", OriginAdmin, nil, true, LinkLearnerLeaving},
		{"ERASED", OriginAdmin, nil, true, LinkLearnerLeaving},
		{"PENDING_ACCEPTANCE", OriginAdmin, nil, false, LinkIssuerNotTheOrgs},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s/linked=%v/own=%v", tc.state, tc.origin, tc.linked != nil, tc.own), func(t *testing.T) {
			l := tableState(t, tc.state, now)
			l.Origin, l.IdentityLinkedAt = tc.origin, tc.linked
			_, err := l.LinkIdentity(tc.own, "Given", "Family", now)
			got := ""
			var r *Refusal
			if errors.As(err, &r) {
				got = r.Reason
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if got == "" && (l.IdentityLinkedAt == nil || *l.GivenName != "Given") {
				t.Fatalf("linked learner: %+v", l)
			}
		})
	}
}
