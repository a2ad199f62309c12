package domain

import (
	"strings"
	"testing"
	"time"
)

// GEN-1: every rule in force that ends the keeping of a learner's data is
// listed, with the parameters the programme runs under.
func TestRetentionTriggers_GEN1_EveryRuleInForceWithItsParameters(t *testing.T) {
	created := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	kinds := func(ts []RetentionTrigger) string {
		var ks []string
		for _, tr := range ts {
			ks = append(ks, string(tr.Kind)+"/"+tr.Rule)
		}
		return strings.Join(ks, " ")
	}
	ctl := RetentionTriggers(PresetSettings(PresetConnectToLearn, created))
	if got, want := kinds(ctl), "INACTIVITY/CTL-7 CONTRACT_END/CTL-6 LEAVER/CTL-9 WITHDRAWAL/CTL-8 ERASURE_REQUEST/CTL-11"; got != want {
		t.Fatalf("Connect to Learn triggers %s, want %s", got, want)
	}
	if ctl[0].Duration != 365*day || ctl[0].Erasure.Delay != 21*day || ctl[1].Date == nil || !ctl[1].Date.Equal(created.AddDate(2, 0, 0)) {
		t.Errorf("Connect to Learn parameters: %+v", ctl[:2])
	}
	if w := ctl[3].Erasure; w.NeedsApproval || w.Delay != 0 {
		t.Errorf("CTL-8 withdrawal: %+v, want erased at once", w)
	}
	onc := RetentionTriggers(PresetSettings(PresetOnclick, created))
	if got, want := kinds(onc), "WHILE_REGISTERED/ONC-6 LEAVER/CTL-9 WITHDRAWAL/CTL-8 ERASURE_REQUEST/CTL-11"; got != want {
		t.Fatalf("Onclick triggers %s, want %s", got, want)
	}
	for _, tr := range onc[1:] {
		if !tr.Erasure.NeedsApproval {
			t.Errorf("ONC-5: %s does not wait for the controller's approval", tr.Kind)
		}
	}
	s := PresetSettings(PresetConnectToLearn, created)
	s.WithdrawalErasureDelay = 30 * day
	if w := WithdrawalErasure(s); w.NeedsApproval || w.Delay != 30*day {
		t.Errorf("a withdrawal delay: %+v", w)
	}
	if e := RequestedErasure(s); e.NeedsApproval || e.Delay != 0 {
		t.Errorf("GEN-4: an erasure request waits: %+v", e)
	}
}

// The LMS address learners are sent to is a plain web address.
func TestRuleSettings_LMSURLMustBeAPlainWebAddress(t *testing.T) {
	s := PresetSettings(PresetOnclick, time.Now())
	for raw, ok := range map[string]bool{
		"":                                             true,
		"https://learn.example.org/":                   true,
		"http://127.0.0.1:8081/lms":                    true,
		"http://localhost/moodle":                      true,
		"http://learn.example.org":                     false,
		"javascript:alert(1)":                          false,
		"https://u:p@learn.example":                    false,
		"//learn.example.org":                          false,
		"learn.example.org":                            false,
		"ftp://learn.example.org":                      false,
		"https://" + strings.Repeat("a", 500) + ".org": false,
	} {
		s.LMSURL = raw
		if field, _, valid := s.Validate(); valid != ok || (!valid && field != "lmsUrl") {
			t.Errorf("lmsUrl %.40q: valid=%v field=%q, want valid=%v", raw, valid, field, ok)
		}
	}
}
