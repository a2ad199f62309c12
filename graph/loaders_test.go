package graph_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

const setupQuery = `query($id: ID!) { programme(id: $id) { name governingBodies { name } organisations { name domains { domain } accessGroups { name courses { lmsCourseId } } } } }`

// The set-up query runs a fixed number of SQL statements whatever the number
// of organisations: relations are batched per request by dataloaders.
func TestSetupQuery_FixedStatementCountWhateverTheWidth(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			// A wide window: the count must not depend on how busy the machine is.
			api := testkit.NewAPI(t, d, testkit.APIOptions{LoaderWait: 50 * time.Millisecond})
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			measure := func() (int64, int) {
				var out struct {
					Programme struct {
						Organisations []struct {
							AccessGroups []struct {
								Courses []struct{ LmsCourseId string }
							}
						}
					}
				}
				tok := api.BootstrapToken()
				api.Statements.Store(0)
				api.MustDo(tok, setupQuery, map[string]any{"id": p.ID}, &out)
				n := api.Statements.Load()
				courses := 0
				for _, o := range out.Programme.Organisations {
					for _, g := range o.AccessGroups {
						courses += len(g.Courses)
					}
				}
				if courses == 0 {
					t.Fatal("query returned no courses")
				}
				return n, len(out.Programme.Organisations)
			}
			narrow, orgs := measure()
			if orgs != 20 {
				t.Fatalf("want 20 organisations, got %d", orgs)
			}
			// Admit 30 more partners, each with a domain and an extra group.
			ctx := lifecycle.WithSystem(context.Background(), "test")
			for i := 0; i < 30; i++ {
				prop, err := api.Service.ProposeMembership(ctx, lifecycle.ProposeMembershipInput{ProgrammeID: p.ID, Action: domain.ProposalAdmit,
					Name: fmt.Sprintf("Parish %02d", i), Kind: "OTHER", Domains: []lifecycle.DomainInput{{Domain: fmt.Sprintf("parish%02d.org.uk", i)}}})
				if err != nil {
					t.Fatal(err)
				}
				for prop.Status == domain.ProposalPending {
					if prop, err = api.Service.ApproveMembership(ctx, prop.ID, ""); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := api.Service.CreateAccessGroup(ctx, *prop.OrganisationID, lifecycle.AccessGroupInput{Name: "Extra",
					CourseIDs: []string{p.Courses["CTL-GDPR-101"].ID}}); err != nil {
					t.Fatal(err)
				}
			}
			wide, orgs := measure()
			if orgs != 50 {
				t.Fatalf("want 50 organisations, got %d", orgs)
			}
			if wide != narrow {
				t.Fatalf("statements grew with width: %d for 20 organisations, %d for 50", narrow, wide)
			}
			if narrow > 10 {
				t.Fatalf("set-up query ran %d statements; expected a handful", narrow)
			}
			t.Logf("%s: %d statements for 20 and for 50 organisations", d, narrow)
		})
	}
}
