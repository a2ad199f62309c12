package lifecycle_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

func TestEmailDomain_CTL3_RefusesNonOrganisationDomainsAndWritesNothing(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		p, _ := e.ConnectToLearnProgramme()
		kcc := e.Admit(p.ID, "Kent County Council", "kent.gov.uk")
		police := e.Admit(p.ID, "Kent Police", "kent.police.uk")
		before := len(e.Audit(p.ID))
		cases := []struct {
			domain string
			code   apperr.Code
			reason string
		}{
			{"gov.uk", apperr.BadUserInput, "DOMAIN_PUBLIC_SUFFIX"},
			{"police.uk", apperr.BadUserInput, "DOMAIN_PUBLIC_SUFFIX"},
			{"co.uk", apperr.BadUserInput, "DOMAIN_PUBLIC_SUFFIX"},
			{"gmail.com", apperr.BadUserInput, "DOMAIN_WEBMAIL"},
			{"outlook.com", apperr.BadUserInput, "DOMAIN_WEBMAIL"},
			{"10.0.0.1", apperr.BadUserInput, "DOMAIN_IP_LITERAL"},
			{"[::1]", apperr.BadUserInput, "DOMAIN_IP_LITERAL"},
			{"localhost", apperr.BadUserInput, "DOMAIN_SINGLE_LABEL"},
			{"", apperr.BadUserInput, "DOMAIN_EMPTY"},
			{"KENT.GOV.UK.", apperr.Conflict, ""}, // normalised, then owned by KCC
			{"kent.gov.uk", apperr.Conflict, ""},
		}
		for _, c := range cases {
			_, err := e.Service.AddEmailDomain(e.As("kc"), police.ID, c.domain, false)
			wantCode(t, err, c.code)
			if ae, _ := apperr.As(err); c.reason != "" && (ae.Reason != c.reason || ae.Field != "domain" || ae.Rule != "CTL-3") {
				t.Errorf("%q: want reason %s field domain rule CTL-3, got %+v", c.domain, c.reason, ae)
			}
		}
		ds, _ := e.Service.DomainsByOrganisations(e.Sys, []string{kcc.ID, police.ID})
		if len(ds[police.ID]) != 1 || len(ds[kcc.ID]) != 1 {
			t.Fatalf("refused domains were written: %+v", ds)
		}
		if after := len(e.Audit(p.ID)); after != before {
			t.Fatalf("refused changes were audited: %d -> %d", before, after)
		}
	})
}

func TestEmailDomain_CTL3_OneOrganisationPerDomainAcrossTheInstallation(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		ctl, _ := e.ConnectToLearnProgramme()
		kcc := e.Admit(ctl.ID, "Kent County Council", "kent.gov.uk")
		onc := e.OnclickProgramme("Onclick", "WSCC")
		wscc := e.Admit(onc.ID, "West Sussex County Council", "westsussex.gov.uk")
		// kent.gov.uk already belongs to KCC in another programme.
		_, err := e.Service.AddEmailDomain(e.Sys, wscc.ID, "kent.gov.uk", false)
		wantCode(t, err, apperr.Conflict)
		// A proposal claiming it is refused up front.
		_, err = e.Service.ProposeMembership(e.Sys, lifecycle.ProposeMembershipInput{ProgrammeID: onc.ID, Action: domain.ProposalAdmit,
			Name: "Impostor", Kind: "OTHER", Domains: []lifecycle.DomainInput{{Domain: "kent.gov.uk"}}})
		wantCode(t, err, apperr.Conflict)
		// A subdomain of a rule that covers subdomains overlaps it.
		if _, err := e.Service.AddEmailDomain(e.Sys, kcc.ID, "kentcc.org.uk", true); err != nil {
			t.Fatal(err)
		}
		_, err = e.Service.AddEmailDomain(e.Sys, wscc.ID, "schools.kentcc.org.uk", false)
		wantCode(t, err, apperr.Conflict)
		// A parent rule with subdomains over another organisation's domain overlaps too.
		_, err = e.Service.AddEmailDomain(e.Sys, wscc.ID, "medway.gov.uk", false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Service.AddEmailDomain(e.Sys, kcc.ID, "hr.medway.gov.uk", false) // exact, different host: fine
		if err != nil {
			t.Fatalf("a distinct subdomain without overlap should be allowed: %v", err)
		}
		if _, err := e.Service.AddEmailDomain(e.Sys, wscc.ID, "hr.sussexcc.org.uk", false); err != nil {
			t.Fatal(err)
		}
		_, err = e.Service.AddEmailDomain(e.Sys, kcc.ID, "sussexcc.org.uk", true)
		wantCode(t, err, apperr.Conflict)
		if _, err := e.Service.AddEmailDomain(e.Sys, kcc.ID, "sussexcc.org.uk", false); err != nil {
			t.Fatalf("the parent alone, without subdomains, does not overlap: %v", err)
		}
		// Lookalikes are different domains, not matches.
		if _, err := e.Service.AddEmailDomain(e.Sys, wscc.ID, "evilkent.gov.uk", false); err != nil {
			t.Fatalf("evilkent.gov.uk is a different domain: %v", err)
		}
		// An organisation's own overlapping rules are allowed (subdomain rule under its own domain).
		if _, err := e.Service.AddEmailDomain(e.Sys, kcc.ID, "staff.kentcc.org.uk", false); err != nil {
			t.Fatalf("own overlapping rule: %v", err)
		}
	})
}

func TestUpdateProgrammeRules_CTL12_ChangesAreValidatedAndAudited(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		p, _ := e.ConnectToLearnProgramme()
		if p.Settings.InactivityLimit == nil || *p.Settings.InactivityLimit != 365*24*time.Hour {
			t.Fatalf("CTL-7 preset inactivity limit: %+v", p.Settings.InactivityLimit)
		}
		if p.Settings.ContractEndsAt == nil || !p.Settings.ContractEndsAt.Equal(e.Clock.Now().AddDate(2, 0, 0)) {
			t.Fatalf("CTL-6 preset contract end: %v", p.Settings.ContractEndsAt)
		}
		bad := -1
		_, err := e.Service.UpdateProgrammeRules(e.As("kc"), p.ID, lifecycle.RuleSettingsPatch{MinimumAge: &bad}, "")
		wantCode(t, err, apperr.BadUserInput)
		threshold := 0.0
		_, err = e.Service.UpdateProgrammeRules(e.As("kc"), p.ID, lifecycle.RuleSettingsPatch{RosterRemovalThreshold: &threshold}, "")
		wantCode(t, err, apperr.BadUserInput)
		age, grace := 16, 30*24*time.Hour
		got, err := e.Service.UpdateProgrammeRules(e.As("kc"), p.ID, lifecycle.RuleSettingsPatch{MinimumAge: &age,
			AutomatedRemovalGrace: &grace, ClearInactivityLimit: true}, "board decision 12")
		if err != nil {
			t.Fatal(err)
		}
		reread, _ := e.Service.Programme(e.Sys, p.ID)
		for _, s := range []domain.RuleSettings{got.Settings, reread.Settings} {
			if s.MinimumAge != 16 || s.AutomatedRemovalGrace != grace || s.InactivityLimit != nil || s.ContractEndsAt == nil {
				t.Fatalf("settings not applied: %+v", s)
			}
		}
		es := e.Audit(p.ID)
		var entry *domain.AuditEntry
		for i := range es {
			if es[i].Action == "programme.rules.update" {
				entry = &es[i]
			}
		}
		if entry == nil || entry.Reason != "board decision 12" || entry.ActorID != lifecycle.ActorIDFor(testkit.TestIssuer, "kc") {
			t.Fatalf("audit entry: %+v", entry)
		}
		before, _ := entry.Details["before"].(map[string]any)
		after, _ := entry.Details["after"].(map[string]any)
		if before["inactivityLimit"] != "P365D" || after["inactivityLimit"] != nil || after["minimumAge"] != float64(16) {
			t.Fatalf("audit details: %+v", entry.Details)
		}
		// Only programme admins may change rules.
		e.Grant("auditor", domain.RoleAuditor, p.ID, nil, nil)
		_, err = e.Service.UpdateProgrammeRules(e.As("auditor"), p.ID, lifecycle.RuleSettingsPatch{MinimumAge: &age}, "")
		wantCode(t, err, apperr.Forbidden)
	})
}

func TestRules_ListsTheRulebookInForcePerPreset(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		p, _ := e.ConnectToLearnProgramme()
		rules, err := e.Service.Rules(e.As("kc"), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]domain.Rule{}
		for _, r := range rules {
			ids[r.ID] = r
			if r.Source == "" || r.Text == "" || r.Notice == "" {
				t.Errorf("%s lacks source, notice or text", r.ID)
			}
		}
		for _, want := range []string{"CTL-1", "CTL-6", "CTL-7", "CTL-8", "CTL-12", "GEN-1", "GEN-4"} {
			if _, ok := ids[want]; !ok {
				t.Errorf("CTL programme lacks %s", want)
			}
		}
		if _, ok := ids["ONC-5"]; ok {
			t.Error("CTL programme lists ONC-5 though erasure needs no approval")
		}
		if ids["CTL-7"].Parameters["inactivityLimit"] != "P365D" || ids["GEN-4"].Parameters["automatedRemovalGrace"] != "P21D" {
			t.Errorf("parameters: %+v %+v", ids["CTL-7"].Parameters, ids["GEN-4"].Parameters)
		}
		onc := e.OnclickProgramme("Onclick", "WSCC")
		rules, _ = e.Service.Rules(e.Sys, onc.ID)
		var got []string
		for _, r := range rules {
			got = append(got, r.ID)
			if strings.HasPrefix(r.ID, "CTL-") {
				t.Errorf("Onclick lists %s", r.ID)
			}
		}
		joined := strings.Join(got, ",")
		for _, want := range []string{"ONC-2", "ONC-5", "ONC-6", "GEN-2"} {
			if !strings.Contains(joined+",", want+",") {
				t.Errorf("Onclick lacks %s: %s", want, joined)
			}
		}
		// ONC-6: no inactivity limit, no contract end.
		if onc.Settings.InactivityLimit != nil || onc.Settings.ContractEndsAt != nil || onc.Settings.MinimumAge != 16 {
			t.Errorf("ONCLICK preset: %+v", onc.Settings)
		}
	})
}

func TestCreateProgramme_OnlyTheBootstrapAdmin(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		e := testkit.NewWorld(t, st)
		in := lifecycle.CreateProgrammeInput{Name: "Third programme", Preset: domain.PresetOnclick,
			GoverningBodies: []lifecycle.GoverningBodyInput{{Name: "Council", Role: domain.BodyController}}}
		p, _ := e.ConnectToLearnProgramme()
		_, err := e.Service.CreateProgramme(e.As("kc"), in) // a programme admin elsewhere
		wantCode(t, err, apperr.Forbidden)
		_, err = e.Service.CreateProgramme(lifecycle.WithIdentity(e.Sys, domain.Identity{Issuer: "https://other.example", Subject: "bootstrap"}), in)
		wantCode(t, err, apperr.Forbidden) // same subject, other issuer: not the bootstrap admin
		created, err := e.Service.CreateProgramme(e.As("bootstrap"), in)
		if err != nil {
			t.Fatal(err)
		}
		// The creator administers it; the other programme's admin cannot see it.
		if _, err := e.Service.Programme(e.As("bootstrap"), created.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.Service.Programme(e.As("kc"), created.ID)
		wantCode(t, err, apperr.NotFound)
		_, err = e.Service.CreateProgramme(e.As("bootstrap"), in)
		wantCode(t, err, apperr.Conflict)
		in.GoverningBodies = nil
		in.Name = "No bodies"
		_, err = e.Service.CreateProgramme(e.As("bootstrap"), in)
		wantCode(t, err, apperr.BadUserInput)
		_ = p
	})
}
