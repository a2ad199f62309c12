package graph

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/rollcall-dev/rollcall/graph/model"
)

// A non-null Time field holding the zero time is written as null with an
// error naming the field and its path, as gqlgen's own resolution reports
// it: plainField leaves such a value to gqlgen (mayMarshalNull).
func TestPlainFields_ANullErrorNamesTheFieldAsGqlgenDoes(t *testing.T) {
	run := func(r ResolverRoot) (graphql.Marshaler, []byte) {
		es := NewExecutableSchema(Config{Resolvers: r})
		oc := &graphql.OperationContext{RecoverFunc: graphql.DefaultRecover,
			ResolverMiddleware: func(ctx context.Context, next graphql.Resolver) (any, error) { return next(ctx) }}
		ctx := graphql.WithOperationContext(context.Background(), oc)
		ctx = graphql.WithResponseContext(ctx, graphql.DefaultErrorPresenter, graphql.DefaultRecover)
		ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: "Query",
			Field: graphql.CollectedField{Field: &ast.Field{Name: "accessGroup", Alias: "accessGroup"}}})
		ec := newExecutionContext(oc, es.(*executableSchema), nil)
		field := graphql.CollectedField{Field: &ast.Field{Name: "createdAt", Alias: "createdAt",
			Definition: &ast.FieldDefinition{Name: "createdAt", Type: ast.NonNullNamedType("Time", nil)}}}
		out := ec._AccessGroup_createdAt(ctx, field, &model.AccessGroup{})
		errs, _ := json.Marshal(graphql.GetErrors(ctx))
		return out, errs
	}
	gqlgenOut, gqlgenErrs := run(&Resolver{fieldInterceptors: true}) // every field through gqlgen's ResolveField
	out, errs := run(&Resolver{})
	if out != gqlgenOut || string(errs) != string(gqlgenErrs) {
		t.Fatalf("plainField wrote %v with errors %s; gqlgen writes %v with %s", out, errs, gqlgenOut, gqlgenErrs)
	}
	var parsed []struct{ Path []any }
	if err := json.Unmarshal(errs, &parsed); err != nil || len(parsed) != 1 || len(parsed[0].Path) != 2 || parsed[0].Path[1] != "createdAt" {
		t.Fatalf("want one error at [accessGroup createdAt], got %s", errs)
	}
}
