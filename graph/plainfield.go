package graph

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// plainField marshals a plain scalar field (a scalar or enum read from a
// struct field: no resolver, no method, no directive) straight from its
// value, where graphql.ResolveField (gqlgen graphql/resolve_field.go) first
// builds the field's FieldContext, a context carrying it, a closure for the
// middleware chain and a deferred panic handler, and boxes the value twice.
// For such a field none of that can matter: the value is already there,
// reading it cannot fail or panic, and nothing below a scalar asks for its
// field context. On `enrolments` and the feed (1,000 objects of 5–8 such
// fields a page) that work was about half of gqlgen's CPU
// (docs/performance.md).
//
// One thing could need it: an extension that intercepts fields (tracing,
// per-field metrics). NewHandler records whether one is installed
// (Resolver.fieldInterceptors), and then every field goes through
// graphql.ResolveField as gqlgen generated it, so no interceptor misses a
// field (TestPlainFields_AFieldInterceptorStillSeesEveryField).
//
// `make generate` points the generated code of exactly these fields here
// (graph/internal/genpatch), and check-generate keeps it so.
func plainField[T any](root ResolverRoot, ctx context.Context, oc *graphql.OperationContext, field graphql.CollectedField,
	fieldContext func(context.Context, graphql.CollectedField) (*graphql.FieldContext, error),
	resolve func(context.Context) (any, error), middleware func(context.Context, graphql.Resolver) graphql.Resolver,
	marshal func(context.Context, ast.SelectionSet, T) graphql.Marshaler, recoverFromPanic, nonNull bool) graphql.Marshaler {
	if r, ok := root.(*Resolver); !ok || r.fieldInterceptors || middleware != nil {
		return graphql.ResolveField(ctx, oc, field, fieldContext, resolve, middleware, marshal, recoverFromPanic, nonNull)
	}
	v, _ := resolve(ctx)
	if mayMarshalNull(v) {
		return graphql.ResolveField(ctx, oc, field, fieldContext, resolve, middleware, marshal, recoverFromPanic, nonNull)
	}
	return marshal(ctx, field.Selections, v.(T))
}

// mayMarshalNull reports a value its marshaller may write as null: the zero
// time (Time), a nil map (JSON) or list. On a non-null field the marshaller
// then reports the error against the field context it finds, which
// plainField does not build, so such a value takes gqlgen's way and the
// error names the field and its path
// (TestPlainFields_ANullErrorNamesTheFieldAsGqlgenDoes). genpatch leaves
// fields of pointer types to gqlgen for the same reason.
func mayMarshalNull(v any) bool {
	switch x := v.(type) {
	case time.Time:
		return x.IsZero()
	case map[string]any:
		return x == nil
	case []string:
		return x == nil
	}
	return false
}
