package graph

import (
	"context"
	"slices"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// The selection sets selected hands on (and so hands to
// graphql.CollectFields on the next level) are the operation's own, never
// merged copies: gqlgen caches collected fields by a selection set's
// address without keeping it alive, so a copy freed during the operation
// could have its entry answer another selection set later allocated at the
// same address. Two aliases of one relation, a fragment and @include all
// resolve to selection sets of the parsed document.
func TestRelations_SelectionsAreTheOperationsOwn(t *testing.T) {
	doc, err := gqlparser.LoadQuery(parsedSchema, `query($more: Boolean!) {
		a: learners(programmeId: "p") { edges { node { id organisation { name } } } }
		b: learners(programmeId: "p") { edges { node { ...N organisation { id } accessGroup @include(if: $more) { name } } } }
	}
	fragment N on Learner { email acceptances { decision } }`)
	if err != nil {
		t.Fatal(err)
	}
	op := doc.Operations[0]
	ctx := graphql.WithOperationContext(context.Background(), &graphql.OperationContext{Doc: doc, Operation: op, Variables: map[string]any{"more": true}})
	oc := graphql.GetOperationContext(ctx)
	// check: what selected handed on for a field is, selection set by
	// selection set, what gqlgen's own collection of the same input holds
	// (cached by gqlgen for the operation): the same arrays, no copy.
	check := func(in selections, typ, name string, got selections) {
		t.Helper()
		var want selections
		for _, sel := range in {
			for _, f := range graphql.CollectFields(oc, sel, []string{typ}) {
				if f.Name == name {
					want = append(want, f.Selections)
				}
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d selection sets, gqlgen %d", name, len(got), len(want))
		}
		for i := range got {
			if len(got[i]) != len(want[i]) || len(got[i]) > 0 && &got[i][0] != &want[i][0] {
				t.Fatalf("%s: a selection set that is not gqlgen's own", name)
			}
		}
	}
	root := selections{op.SelectionSet[0].(*ast.Field).SelectionSet, op.SelectionSet[1].(*ast.Field).SelectionSet}
	edges := selected(ctx, root, "LearnerConnection")["edges"]
	check(root, "LearnerConnection", "edges", edges)
	nodes := selected(ctx, edges, "LearnerEdge")["node"]
	check(edges, "LearnerEdge", "node", nodes)
	want := selected(ctx, nodes, "Learner")
	var names []string
	for name, sels := range want {
		names = append(names, name)
		check(nodes, "Learner", name, sels)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"acceptances", "accessGroup", "email", "id", "organisation"}) {
		t.Fatalf("selected %v", names)
	}
	if len(want["organisation"]) != 2 {
		t.Fatalf("organisation under both aliases: %d selection sets, want 2", len(want["organisation"]))
	}
}
