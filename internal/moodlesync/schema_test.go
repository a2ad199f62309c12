package moodlesync_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/lexer"

	"github.com/rollcall-dev/rollcall/internal/moodlesync"
)

// TestQueriesMatchSchema validates the agent's two query documents against
// the service's schema files, so a renamed field or argument on either side
// shows up here rather than in production.
func TestQueriesMatchSchema(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "graph", "schema", "*.graphqls"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schema files found (%v)", err)
	}
	var sources []*ast.Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, &ast.Source{Name: f, Input: string(b)})
	}
	schema, err := gqlparser.LoadSchema(sources...)
	if err != nil {
		t.Fatalf("the schema does not load: %v", err)
	}
	for name, q := range map[string]string{
		"enrolments":      moodlesync.EnrolmentsQuery,
		"lifecycleEvents": moodlesync.LifecycleEventsQuery,
		"learners":        moodlesync.LearnersQuery(3),
		"organisation":    moodlesync.OrganisationQuery,
	} {
		if _, errs := gqlparser.LoadQuery(schema, q); len(errs) > 0 {
			t.Errorf("%s query is not valid against the schema: %v", name, errs)
		}
	}
}

// TestLearnersQueryFitsTheTokenLimit: the service refuses documents of more
// than graph.DefaultLimits.Tokens (5,000) tokens; the agent reads 50
// learners per request.
func TestLearnersQueryFitsTheTokenLimit(t *testing.T) {
	lex := lexer.New(&ast.Source{Input: moodlesync.LearnersQuery(50)})
	n := 0
	for {
		tok, err := lex.ReadToken()
		if err != nil {
			t.Fatal(err)
		}
		if tok.Kind == lexer.EOF {
			break
		}
		n++
	}
	if n > 4000 {
		t.Errorf("LearnersQuery(50) has %d tokens; the service allows 5,000", n)
	}
	t.Logf("LearnersQuery(50): %d tokens", n)
}
