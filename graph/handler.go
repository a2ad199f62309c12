package graph

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

// Limits bound what one request may cost.
type Limits struct {
	// Complexity: each field costs 1 plus its selection; a paginated field
	// costs its selection once per item `first` asks for (complexity.go). The
	// default is the cost of the largest single page the API allows to an
	// LMS (enrolments(first: 5000) with the reference agent's selection:
	// 60,001), so no one legitimate page is refused, while aliases that
	// multiply pages are (docs/security.md has the figures).
	Complexity int
	// Tokens bounds the parser's work on hostile documents.
	Tokens int
}

var DefaultLimits = Limits{Complexity: 64000, Tokens: 5000}

// HandlerOptions configure the /graphql endpoint.
type HandlerOptions struct {
	Dev    bool // introspection on
	Limits Limits
	Log    *slog.Logger
	// Extensions are used after Rollcall's own (tracing, metrics). One that
	// intercepts fields sees every field (plainfield.go). None may keep a
	// response's Data past the response: the transport gives its buffer
	// back for the next response once written (respbuf.go).
	Extensions []graphql.HandlerExtension
}

// NewHandler is the /graphql endpoint: POST JSON only (no GET, no multipart,
// no batching), complexity and token limits, no field suggestions,
// introspection only in dev mode, typed errors.
func NewHandler(svc *lifecycle.Service, o HandlerOptions) http.Handler {
	if o.Limits == (Limits{}) {
		o.Limits = DefaultLimits
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	// strictInputs first: the cost is then computed from arguments of the
	// types the schema says. operationLabel (metrics: the root field) comes
	// before a limit can refuse.
	exts := []graphql.HandlerExtension{&strictInputs{}, operationLabel{}, extension.FixedComplexityLimit(o.Limits.Complexity), noDefer{}}
	if o.Dev {
		exts = append(exts, extension.Introspection{})
	}
	exts = append(exts, o.Extensions...)
	r := &Resolver{Svc: svc}
	for _, e := range exts {
		if _, ok := e.(graphql.FieldInterceptor); ok {
			r.fieldInterceptors = true
		}
	}
	srv := handler.New(NewExecutableSchema(Config{Resolvers: r, Complexity: complexity()}))
	srv.AddTransport(postJSON{log: o.Log})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.SetParserTokenLimit(o.Limits.Tokens)
	srv.SetDisableSuggestion(true)
	for _, e := range exts {
		srv.Use(e)
	}
	srv.SetErrorPresenter(noteErrorCode(presentError(o.Log)))
	srv.SetRecoverFunc(recoverPanic(o.Log))
	return srv
}

// Playground is GraphiQL, mounted only in dev mode.
func Playground() http.Handler { return playground.Handler("Rollcall", "/graphql") }

// noDefer refuses @defer: the POST transport answers with one response, so
// the deferred parts would be lost (gqlgen sends them as later parts, and
// leaves their fields null in the first).
type noDefer struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = noDefer{}

func (noDefer) ExtensionName() string                          { return "NoDefer" }
func (noDefer) Validate(schema graphql.ExecutableSchema) error { return nil }

func (noDefer) MutateOperationContext(_ context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	if rc.Doc == nil {
		return nil
	}
	found := false
	var walk func(ast.SelectionSet)
	walk = func(ss ast.SelectionSet) {
		for _, sel := range ss {
			switch x := sel.(type) {
			case *ast.Field:
				walk(x.SelectionSet)
			case *ast.InlineFragment:
				found = found || x.Directives.ForName("defer") != nil
				walk(x.SelectionSet)
			case *ast.FragmentSpread:
				found = found || x.Directives.ForName("defer") != nil
			}
		}
	}
	for _, op := range rc.Doc.Operations {
		walk(op.SelectionSet)
	}
	for _, f := range rc.Doc.Fragments {
		walk(f.SelectionSet)
	}
	if !found {
		return nil
	}
	e := gqlerror.Errorf("@defer is not supported: ask for the fields without it")
	e.Extensions = map[string]any{"code": "DEFER_NOT_SUPPORTED"}
	return e
}
