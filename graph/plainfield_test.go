package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/99designs/gqlgen/graphql"

	"github.com/rollcall-dev/rollcall/graph"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// fieldCounter is an extension that intercepts every field, as tracing or
// per-field metrics would.
type fieldCounter struct {
	mu   sync.Mutex
	seen map[string]int
}

func (*fieldCounter) ExtensionName() string                   { return "fieldCounter" }
func (*fieldCounter) Validate(graphql.ExecutableSchema) error { return nil }
func (c *fieldCounter) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	c.mu.Lock()
	c.seen[fc.Object+"."+fc.Field.Name]++
	c.mu.Unlock()
	return next(ctx)
}

// Plain scalar fields skip gqlgen's per-field resolution (plainfield.go),
// unless an extension intercepts fields: then that extension sees every
// field, plain ones included, and the answer is the same.
func TestPlainFields_AFieldInterceptorStillSeesEveryField(t *testing.T) {
	api := testkit.NewAPI(t, migrations.SQLite)
	p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
	admin := domain.Identity{Issuer: api.Issuer.URL(), Subject: testkit.BootstrapSubject}
	query, _ := json.Marshal(map[string]any{"query": `query($p: ID!) { programme(id: $p) { id name organisations { id name kind status } } }`,
		"variables": map[string]any{"p": p.ID}})
	run := func(o graph.HandlerOptions) []byte {
		t.Helper()
		h := graph.NewHandler(api.Service, o)
		r := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(query))
		r.Header.Set("Content-Type", "application/json")
		r = r.WithContext(lifecycle.WithIdentity(r.Context(), admin))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK || bytes.Contains(w.Body.Bytes(), []byte(`"errors"`)) {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		return w.Body.Bytes()
	}
	plain := run(graph.HandlerOptions{})
	c := &fieldCounter{seen: map[string]int{}}
	traced := run(graph.HandlerOptions{Extensions: []graphql.HandlerExtension{c}})
	if !bytes.Equal(plain, traced) {
		t.Fatalf("the answers differ:\n%s\n%s", plain, traced)
	}
	var out struct {
		Data struct {
			Programme struct{ Organisations []struct{ ID string } }
		}
	}
	if err := json.Unmarshal(plain, &out); err != nil {
		t.Fatal(err)
	}
	orgs := len(out.Data.Programme.Organisations)
	if orgs < 2 {
		t.Fatalf("want the example's organisations, got %d", orgs)
	}
	for field, want := range map[string]int{"Query.programme": 1, "Programme.id": 1, "Programme.name": 1,
		"Programme.organisations": 1, "Organisation.id": orgs, "Organisation.name": orgs, "Organisation.kind": orgs, "Organisation.status": orgs} {
		if got := c.seen[field]; got != want {
			t.Errorf("the interceptor saw %s %d times, want %d (all: %v)", field, got, want, c.seen)
		}
	}
}

// Responses are marshalled into pooled buffers (respbuf.go): concurrent
// requests of different sizes each get their own answer, whole, while the
// buffers go round between them.
func TestResponseBuffers_ConcurrentAnswersStayWhole(t *testing.T) {
	api := testkit.NewAPI(t, migrations.SQLite)
	p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
	admin := domain.Identity{Issuer: api.Issuer.URL(), Subject: testkit.BootstrapSubject}
	h := graph.NewHandler(api.Service, graph.HandlerOptions{})
	queries := []string{
		`query($p: ID!) { programme(id: $p) { id name } }`,
		`query($p: ID!) { programme(id: $p) { id name organisations { id name kind status domains { domain includeSubdomains createdAt } accessGroups { id name } } } }`,
		`query($p: ID!) { programme(id: $p) { organisations { name } } }`,
	}
	run := func(q string) []byte {
		body, _ := json.Marshal(map[string]any{"query": q, "variables": map[string]any{"p": p.ID}})
		r := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r = r.WithContext(lifecycle.WithIdentity(r.Context(), admin))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Body.Bytes()
	}
	want := make([][]byte, len(queries))
	for i, q := range queries {
		if want[i] = run(q); bytes.Contains(want[i], []byte(`"errors"`)) {
			t.Fatalf("%s", want[i])
		}
	}
	if len(want[1]) < 4*len(want[0]) {
		t.Fatalf("the answers should differ in size: %d and %d bytes", len(want[0]), len(want[1]))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 60 {
				i := (g + n) % len(queries)
				if got := run(queries[i]); !bytes.Equal(got, want[i]) {
					errs <- string(got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("an answer changed under concurrency: %.300s", e)
	}
}
