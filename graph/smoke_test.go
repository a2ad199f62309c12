package graph_test

import (
	"testing"

	"github.com/rollcall-dev/rollcall/internal/testkit"
)

func TestSetupQuery_CTL2_SeededPartnershipReadable(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			var out struct {
				Programme struct {
					Organisations []struct {
						Name    string
						Domains []struct{ Domain string }
					}
				}
			}
			api.MustDo(api.BootstrapToken(), `query($id: ID!) { programme(id: $id) { organisations { name domains { domain } } } }`,
				map[string]any{"id": p.ID}, &out)
			if n := len(out.Programme.Organisations); n != 20 {
				t.Fatalf("want the 20 Kent Connects partners, got %d", n)
			}
		})
	}
}
