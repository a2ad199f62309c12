package domain

import (
	"strings"
	"testing"
	"time"
)

func lrnTime(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 9, 0, 0, 0, time.UTC) }

func lrnTimePtr(t time.Time) *time.Time { return &t }

func lrnDur(d time.Duration) *time.Duration { return &d }

func lrnReason(r RemovalReason) *RemovalReason { return &r }

const lrnRights = "You can withdraw consent or ask for erasure at any time."

func TestRetention_GEN1(t *testing.T) {
	created := lrnTime(2026, 11, 24)
	ctl := PresetSettings(PresetConnectToLearn, created) // 365 days, contract end 24 November 2028
	onc := PresetSettings(PresetOnclick, created)
	base := Learner{ID: "l", Status: StatusActive, CreatedAt: created, UpdatedAt: created}
	with := func(f func(*Learner)) Learner { l := base; f(&l); return l }
	settings := func(inactivity *time.Duration, end *time.Time) RuleSettings {
		s := ctl
		s.InactivityLimit, s.ContractEndsAt = inactivity, end
		return s
	}

	tests := []struct {
		name      string
		l         Learner
		s         RuleSettings
		until     *time.Time
		rule      string
		contains  []string
		rightsEnd bool // the reason ends by stating the learner's rights
	}{
		{
			name: "CTL preset: inactivity (365 days) comes before the contract end",
			l:    base, s: ctl,
			until: lrnTimePtr(lrnTime(2027, 11, 24)), rule: "CTL-7",
			contains: []string{"24 November 2027", "a year"}, rightsEnd: true,
		},
		{
			name: "an earlier contract end wins over inactivity",
			l:    base, s: settings(lrnDur(365*day), lrnTimePtr(lrnTime(2027, 3, 1))),
			until: lrnTimePtr(lrnTime(2027, 3, 1)), rule: "CTL-6",
			contains: []string{"1 March 2027", "contract"}, rightsEnd: true,
		},
		{
			name: "the contract end alone",
			l:    base, s: settings(nil, lrnTimePtr(lrnTime(2028, 11, 24))),
			until: lrnTimePtr(lrnTime(2028, 11, 24)), rule: "CTL-6",
			contains: []string{"24 November 2028"}, rightsEnd: true,
		},
		{
			name: "LMS activity moves the inactivity date",
			l:    with(func(l *Learner) { l.LastActivityAt = lrnTimePtr(lrnTime(2027, 6, 1)) }),
			s:    settings(lrnDur(365*day), lrnTimePtr(lrnTime(2030, 1, 1))),
			// 2028 is a leap year: 365 days after 1 June 2027 is 31 May 2028.
			until: lrnTimePtr(lrnTime(2028, 5, 31)), rule: "CTL-7",
			contains: []string{"31 May 2028"}, rightsEnd: true,
		},
		{
			name: "a later sign-in counts over earlier activity",
			l: with(func(l *Learner) {
				l.LastActivityAt = lrnTimePtr(lrnTime(2027, 6, 1))
				l.LastSignInAt = lrnTimePtr(lrnTime(2027, 8, 10))
			}),
			s:     settings(lrnDur(365*day), nil),
			until: lrnTimePtr(lrnTime(2028, 8, 9)), rule: "CTL-7",
			contains: []string{"9 August 2028"}, rightsEnd: true,
		},
		{
			name:  "activity pushing inactivity past the contract end: the contract end wins",
			l:     with(func(l *Learner) { l.LastActivityAt = lrnTimePtr(lrnTime(2028, 6, 1)) }),
			s:     ctl,
			until: lrnTimePtr(lrnTime(2028, 11, 24)), rule: "CTL-6",
			contains: []string{"24 November 2028"}, rightsEnd: true,
		},
		{
			name: "two-year inactivity limit in words (GEN-5)",
			l:    base, s: settings(lrnDur(730*day), nil),
			until: lrnTimePtr(created.Add(730 * day)), rule: "CTL-7",
			contains: []string{"2 years"}, rightsEnd: true,
		},
		{
			name: "a limit in days",
			l:    base, s: settings(lrnDur(30*day), nil),
			until: lrnTimePtr(created.Add(30 * day)), rule: "CTL-7",
			contains: []string{"30 days", "24 December 2026"}, rightsEnd: true,
		},
		{
			name: "a one-day limit",
			l:    base, s: settings(lrnDur(day), nil),
			until: lrnTimePtr(created.Add(day)), rule: "CTL-7",
			contains: []string{"a day"}, rightsEnd: true,
		},
		{
			name: "ONCLICK preset: kept while registered, no date",
			l:    base, s: onc,
			until: nil, rule: "ONC-6",
			contains: []string{"registered user", lrnRights},
		},
		{
			name: "ONCLICK ignores activity: still no date",
			l:    with(func(l *Learner) { l.LastActivityAt = lrnTimePtr(lrnTime(2027, 6, 1)) }),
			s:    onc, until: nil, rule: "ONC-6",
		},
		{
			name: "pending learners get the same statement (at sign-up)",
			l:    with(func(l *Learner) { l.Status = StatusPendingAcceptance }),
			s:    ctl, until: lrnTimePtr(lrnTime(2027, 11, 24)), rule: "CTL-7", rightsEnd: true,
		},
		{
			name: "a scheduled removal states its own date and reason",
			l: with(func(l *Learner) {
				l.Status = StatusRemovalScheduled
				l.RemovalReason = lrnReason(RemovalLeaver)
				l.RemovalDueAt = lrnTimePtr(lrnTime(2026, 12, 1))
			}),
			s: ctl, until: lrnTimePtr(lrnTime(2026, 12, 1)), rule: "CTL-9",
			contains: []string{"1 December 2026", "left your organisation"},
		},
		{
			name: "withdrawn: erased after the withdrawal delay (CTL-8)",
			l: with(func(l *Learner) {
				l.Status = StatusWithdrawn
				l.RemovalReason = lrnReason(RemovalConsentWithdrawn)
				l.RemovalDueAt = lrnTimePtr(lrnTime(2026, 11, 25))
			}),
			s: onc, until: lrnTimePtr(lrnTime(2026, 11, 25)), rule: "CTL-8",
			contains: []string{"withdrew consent", "25 November 2026"},
		},
		{
			name: "inactivity removal scheduled (GEN-4 grace)",
			l: with(func(l *Learner) {
				l.Status = StatusRemovalScheduled
				l.RemovalReason = lrnReason(RemovalInactivity)
				l.RemovalDueAt = lrnTimePtr(lrnTime(2027, 12, 15))
			}),
			s: ctl, until: lrnTimePtr(lrnTime(2027, 12, 15)), rule: "CTL-7",
			contains: []string{"inactivity", "15 December 2027"},
		},
		{
			name: "a scheduled removal without a recorded reason",
			l: with(func(l *Learner) {
				l.Status = StatusRemovalScheduled
				l.RemovalDueAt = lrnTimePtr(lrnTime(2027, 1, 2))
			}),
			s: ctl, until: lrnTimePtr(lrnTime(2027, 1, 2)), rule: "GEN-4",
			contains: []string{"2 January 2027"},
		},
		{
			name: "erased: only the anonymous record remains (GEN-2)",
			l: with(func(l *Learner) {
				l.Status = StatusErased
				l.ErasedAt = lrnTimePtr(lrnTime(2027, 2, 3))
			}),
			s: ctl, until: lrnTimePtr(lrnTime(2027, 2, 3)), rule: "GEN-2",
			contains: []string{"erased"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := RetentionFor(tt.l, tt.s)
			if r.Rule != tt.rule {
				t.Errorf("rule: got %s, want %s (%q)", r.Rule, tt.rule, r.Reason)
			}
			switch {
			case tt.until == nil && r.KeptUntil != nil:
				t.Errorf("keptUntil: got %v, want none", *r.KeptUntil)
			case tt.until != nil && (r.KeptUntil == nil || !r.KeptUntil.Equal(*tt.until)):
				t.Errorf("keptUntil: got %v, want %v", r.KeptUntil, *tt.until)
			}
			if r.Reason == "" {
				t.Fatal("no reason given")
			}
			for _, want := range tt.contains {
				if !strings.Contains(r.Reason, want) {
					t.Errorf("reason %q lacks %q", r.Reason, want)
				}
			}
			if tt.rightsEnd && !strings.HasSuffix(r.Reason, " "+lrnRights) {
				t.Errorf("reason %q does not end with the learner's rights", r.Reason)
			}
			if strings.Count(r.Reason, lrnRights) > 1 {
				t.Errorf("rights stated twice: %q", r.Reason)
			}
			// Plain words: no rule IDs, no durations in Go syntax, no ISO timestamps.
			for _, jargon := range []string{"CTL-", "ONC-", "GEN-", "h0m0s", "T09:00", "UTC"} {
				if strings.Contains(r.Reason, jargon) {
					t.Errorf("reason %q is not plain words (%q)", r.Reason, jargon)
				}
			}
		})
	}
}

// RetentionFor must not alias the settings' contract end: a caller changing
// the statement's date must not move the programme's contract.
func TestRetention_GEN1_DoesNotAliasSettings(t *testing.T) {
	end := lrnTime(2027, 3, 1)
	s := RuleSettings{ContractEndsAt: &end}
	r := RetentionFor(Learner{Status: StatusActive, CreatedAt: lrnTime(2026, 11, 24)}, s)
	if r.KeptUntil == nil || !r.KeptUntil.Equal(end) {
		t.Fatalf("keptUntil: %v", r.KeptUntil)
	}
	*r.KeptUntil = r.KeptUntil.Add(day)
	if !end.Equal(lrnTime(2027, 3, 1)) {
		t.Fatalf("the statement aliases the programme's contract end")
	}
}

func TestLearner_CTL5_AccessAllowedOnlyWhenActive(t *testing.T) {
	for _, s := range []LearnerStatus{StatusPendingAcceptance, StatusActive, StatusRemovalScheduled, StatusWithdrawn, StatusErased} {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
		if got := (Learner{Status: s}).AccessAllowed(); got != (s == StatusActive) {
			t.Errorf("%s: accessAllowed %v", s, got)
		}
	}
	if LearnerStatus("SUSPENDED").Valid() || LearnerStatus("").Valid() {
		t.Error("unknown statuses are valid")
	}
}

func TestLearner_CTL7_LastActiveIsTheLatestOfCreationSignInAndActivity(t *testing.T) {
	created := lrnTime(2026, 1, 1)
	tests := []struct {
		name             string
		signIn, activity *time.Time
		want             time.Time
	}{
		{"never seen since creation", nil, nil, created},
		{"sign-in", lrnTimePtr(lrnTime(2026, 3, 1)), nil, lrnTime(2026, 3, 1)},
		{"activity", nil, lrnTimePtr(lrnTime(2026, 4, 1)), lrnTime(2026, 4, 1)},
		{"activity after sign-in", lrnTimePtr(lrnTime(2026, 3, 1)), lrnTimePtr(lrnTime(2026, 4, 1)), lrnTime(2026, 4, 1)},
		{"sign-in after activity", lrnTimePtr(lrnTime(2026, 5, 1)), lrnTimePtr(lrnTime(2026, 4, 1)), lrnTime(2026, 5, 1)},
		{"dates before creation are ignored", lrnTimePtr(lrnTime(2025, 5, 1)), lrnTimePtr(lrnTime(2025, 4, 1)), created},
	}
	for _, tt := range tests {
		l := Learner{CreatedAt: created, LastSignInAt: tt.signIn, LastActivityAt: tt.activity}
		if got := l.LastActive(); !got.Equal(tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// GEN-1 under ONC-5: a withdrawn learner waiting for the controller's
// approval is told so, not that data is kept while registered.
func TestRetention_GEN1_WithdrawnAwaitingApproval(t *testing.T) {
	reason := RemovalConsentWithdrawn
	l := Learner{Status: StatusWithdrawn, RemovalReason: &reason, CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := RetentionFor(l, PresetSettings(PresetOnclick, l.CreatedAt))
	if r.Rule != "ONC-5" || r.KeptUntil != nil || !strings.Contains(r.Reason, "approves the erasure") {
		t.Fatalf("%+v", r)
	}
}
