package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/rollcall-dev/rollcall/internal/metrics"
)

// operationLabel names the request's operation for the metrics by its root
// fields (schema names: a bounded label set, never the client's
// operationName). It runs for every operation gqlgen has parsed and
// validated, the ones a compiled plan answers included.
type operationLabel struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = operationLabel{}

func (operationLabel) ExtensionName() string                          { return "OperationLabel" }
func (operationLabel) Validate(schema graphql.ExecutableSchema) error { return nil }

func (operationLabel) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	if rc.Operation == nil {
		return nil
	}
	seen := map[string]bool{}
	var names []string
	var walk func(ast.SelectionSet)
	walk = func(ss ast.SelectionSet) {
		for _, sel := range ss {
			switch x := sel.(type) {
			case *ast.Field:
				if !seen[x.Name] {
					seen[x.Name] = true
					names = append(names, x.Name)
				}
			case *ast.InlineFragment:
				walk(x.SelectionSet)
			case *ast.FragmentSpread:
				if f := rc.Doc.Fragments.ForName(x.Name); f != nil {
					walk(f.SelectionSet)
				}
			}
		}
	}
	walk(rc.Operation.SelectionSet)
	metrics.SetOperation(ctx, names)
	return nil
}

// noteErrorCode tells the metrics the first error code a request answers with.
func noteErrorCode(p graphql.ErrorPresenterFunc) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		e := p(ctx, err)
		if c, ok := e.Extensions["code"].(string); ok {
			metrics.NoteError(ctx, c)
		}
		return e
	}
}
