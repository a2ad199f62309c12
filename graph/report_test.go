package graph_test

import (
	"strings"
	"testing"
)

// ONC-7, GEN-3: the organisation report counts by opaque IDs and names each
// key for the admin reading it (the organisation, its access groups, policy
// versions with the decision, courses with the state), never a person. Both
// databases.
func TestReport_ONC7_NamesBesideIDsAndNoPeople(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		boot := e.api.BootstrapToken()
		medway := e.org(t, siMedway)
		var created struct{ CreateLearner struct{ ID string } }
		e.api.MustDo(boot, `mutation($o: ID!) { createLearner(organisationId: $o, input: {email: "rae.report@medway.gov.uk",
			givenName: "Rae", familyName: "Reportwright"}) { id } }`, map[string]any{"o": medway}, &created)
		lid := created.CreateLearner.ID
		var prog struct {
			Programme struct {
				Policies []struct {
					Name           string
					Compulsory     bool
					CurrentVersion *struct{ ID, Label string }
				}
			}
		}
		e.api.MustDo(boot, `query($p: ID!) { programme(id: $p) { policies { name compulsory currentVersion { id label } } } }`,
			map[string]any{"p": e.p.ID}, &prog)
		var ids []string
		wantPolicy := ""
		for _, p := range prog.Programme.Policies {
			if p.Compulsory && p.CurrentVersion != nil {
				ids = append(ids, p.CurrentVersion.ID)
				wantPolicy = p.Name + " " + p.CurrentVersion.Label + ": ACCEPTED"
			}
		}
		e.api.MustDo(boot, `mutation($l: ID!, $v: [ID!]!) { acceptPoliciesOnBehalf(learnerId: $l, input: {policyVersionIds: $v}, note: "paper form") { id } }`,
			map[string]any{"l": lid, "v": ids}, &struct{}{})
		e.api.MustDo(boot, `mutation($p: ID!, $l: ID!) { recordLearningActivity(programmeId: $p, input: [{learnerId: $l,
			enrolments: [{lmsCourseId: "CTL-GDPR-101", state: COMPLETED}]}]) { applied } }`,
			map[string]any{"p": e.p.ID, "l": lid}, &struct{}{})

		type entry struct {
			Key   string
			Count int
			Label *string
		}
		var out struct {
			OrganisationReport struct {
				OrganisationID, OrganisationName string
				ByStatus, ByAccessGroup          []entry
				PolicyDecisions, Activity        []entry
			}
		}
		r := e.api.Do(boot, `query($o: ID!) { organisationReport(organisationId: $o) { organisationId organisationName
			byStatus { key count label } byAccessGroup { key count label } policyDecisions { key count label } activity { key count label } } }`,
			map[string]any{"o": medway})
		r.Decode(t, &out)
		rep := out.OrganisationReport
		if rep.OrganisationID != medway || rep.OrganisationName != siMedway {
			t.Fatalf("report of %s %q", rep.OrganisationID, rep.OrganisationName)
		}
		label := func(es []entry, want string) {
			t.Helper()
			for _, en := range es {
				if en.Label != nil && *en.Label == want && en.Count == 1 && en.Key != want {
					return
				}
			}
			t.Errorf("no entry labelled %q beside its ID: %+v", want, es)
		}
		label(rep.ByAccessGroup, "All staff")
		label(rep.PolicyDecisions, wantPolicy)
		label(rep.Activity, "Data protection essentials (UK GDPR) (CTL-GDPR-101): COMPLETED")
		for _, s := range rep.ByStatus {
			if s.Label != nil {
				t.Errorf("a status needs no label: %+v", s)
			}
		}
		if body := string(r.Data); strings.Contains(body, "@") || strings.Contains(body, "Reportwright") || strings.Contains(body, lid) {
			t.Fatalf("the report names a person: %s", body)
		}
	})
}
