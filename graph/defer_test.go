package graph_test

import (
	"testing"

	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// @defer is refused before execution, with a code a client can act on: the
// POST transport answers with one response, so deferred parts would be lost,
// and the generated code keeps no per-object @defer bookkeeping
// (graph/slices.go newDeferredGroup) because no field is ever deferred.
func TestHygiene_DeferIsRefusedBeforeExecution(t *testing.T) {
	api := testkit.NewAPI(t, migrations.SQLite)
	p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
	tok := api.BootstrapToken()
	for name, q := range map[string]string{
		"inline fragment": `query($p: ID!) { programme(id: $p) { id ... @defer { organisations { name } } } }`,
		"fragment spread": `query($p: ID!) { programme(id: $p) { id ...Orgs @defer } } fragment Orgs on Programme { organisations { name } }`,
		"nested":          `query($p: ID!) { programme(id: $p) { organisations { id ... @defer(label: "g") { accessGroups { name } } } } }`,
	} {
		t.Run(name, func(t *testing.T) {
			r := hygPost(t, api, tok, q, map[string]any{"p": p.ID})
			if r.GQL.Code() != "BAD_USER_INPUT" || r.GQL.Ext("reason") != "DEFER_NOT_SUPPORTED" {
				t.Fatalf("want BAD_USER_INPUT/DEFER_NOT_SUPPORTED, got %d %s", r.Status, r.Body)
			}
			if len(r.GQL.Data) != 0 && string(r.GQL.Data) != "null" {
				t.Fatalf("a refused operation returned data: %s", r.GQL.Data)
			}
		})
	}
	// Without @defer the same selection is answered in full.
	r := hygPost(t, api, tok, `query($p: ID!) { programme(id: $p) { id organisations { id accessGroups { name } } } }`, map[string]any{"p": p.ID})
	if len(r.GQL.Errors) != 0 || len(r.GQL.Data) < 100 {
		t.Fatalf("plain query: %d %s", r.Status, r.Body)
	}
}
