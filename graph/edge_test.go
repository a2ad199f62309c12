package graph_test

// The HTTP edge under hostile traffic: bodies sized by who is asking and read
// once, strict JSON and GraphQL input coercion, NUL refused, costs that count
// list sizes, security headers on every response, logout bound to the
// service's own origin, one issuer with one meaning, and a client that goes
// away logged once at info.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/moodlesync"
	"github.com/rollcall-dev/rollcall/internal/server"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

func TestEdge_AnonymousBodyIsSmallAndBadTokensAreRefusedBeforeTheBody(t *testing.T) {
	api := hygSQLite(t)
	// Anonymous: a few KB at most, declared or chunked.
	big := []byte(`{"query":"{ __typename }` + strings.Repeat(" ", server.AnonymousBodyBytes) + `"}`)
	r := hygDo(t, api, hygReq{ContentType: "application/json", Body: bytes.NewReader(big)})
	hygWantError(t, r, http.StatusRequestEntityTooLarge, "BAD_USER_INPUT")
	if r.GQL.Ext("reason") != "BODY_TOO_LARGE" {
		t.Errorf("reason %q", r.GQL.Ext("reason"))
	}
	r = hygDo(t, api, hygReq{ContentType: "application/json", Body: struct{ *bytes.Reader }{bytes.NewReader(big)}})
	hygWantError(t, r, http.StatusRequestEntityTooLarge, "BAD_USER_INPUT")
	// A small anonymous request still works.
	r = hygDo(t, api, hygReq{ContentType: "application/json", Body: strings.NewReader(`{"query":"{ __typename }"}`)})
	if r.Status != http.StatusOK || len(r.GQL.Errors) > 0 {
		t.Fatalf("small anonymous request: %d %s", r.Status, r.Body)
	}
	// The same body with a valid token is fine: the limit follows the credential.
	r = hygDo(t, api, hygReq{ContentType: "application/json", Auth: "Bearer " + api.BootstrapToken(), Body: bytes.NewReader(big)})
	if r.Status != http.StatusOK || len(r.GQL.Errors) > 0 {
		t.Fatalf("authenticated %d-byte request: %d %s", len(big), r.Status, r.Body)
	}
	// A bad token is refused from the headers: 401 however large the body.
	r = hygDo(t, api, hygReq{ContentType: "application/json", Auth: "Bearer not-a-token", Body: bytes.NewReader(big)})
	hygWantError(t, r, http.StatusUnauthorized, "UNAUTHENTICATED")
}

func TestEdge_StrictJSONBodies(t *testing.T) {
	api := hygSQLite(t)
	auth := "Bearer " + api.BootstrapToken()
	for name, c := range map[string]struct {
		body   string
		reason string
	}{
		"trailing garbage":   {`{"query":"{ __typename }"} garbage`, "INVALID_JSON"},
		"a second object":    {`{"query":"{ __typename }"}{"query":"{ __typename }"}`, "INVALID_JSON"},
		"invalid UTF-8":      {"{\"query\":\"{ __typename }\",\"variables\":{\"n\":\"Ann\xff\"}}", "INVALID_UTF8"},
		"too deep variables": {`{"query":"{ __typename }","variables":{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`, "TOO_DEEP"},
		"a batch":            {`[{"query":"{ __typename }"}]`, "NOT_ONE_OBJECT"},
	} {
		t.Run(name, func(t *testing.T) {
			r := hygDo(t, api, hygReq{ContentType: "application/json", Auth: auth, Body: strings.NewReader(c.body)})
			hygWantError(t, r, http.StatusBadRequest, "BAD_USER_INPUT")
			if got := r.GQL.Ext("reason"); got != c.reason {
				t.Errorf("reason %q, want %s: %s", got, c.reason, r.Body)
			}
		})
	}
	// Whitespace after the object is not data.
	r := hygDo(t, api, hygReq{ContentType: "application/json", Auth: auth, Body: strings.NewReader("{\"query\":\"{ __typename }\"}\n \t")})
	if r.Status != http.StatusOK || len(r.GQL.Errors) > 0 {
		t.Fatalf("trailing whitespace refused: %d %s", r.Status, r.Body)
	}
}

// GraphQL input coercion as the specification says: an Int variable is a
// JSON number, not a string of digits; enum values match exactly.
func TestEdge_VariablesCoercedAsTheSpecSays(t *testing.T) {
	api := hygSQLite(t)
	tok := api.BootstrapToken()
	p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
	q := `query($p: ID!, $first: Int, $status: [LearnerStatus!]) { learners(programmeId: $p, first: $first, status: $status) { edges { node { id } } } }`
	for name, c := range map[string]struct {
		vars map[string]any
		msg  string // the message, naming the variable and where in it
	}{
		"Int as a string":       {map[string]any{"p": p.ID, "first": "10"}, "$first must be a JSON number for Int, not a string"},
		"Int as a float string": {map[string]any{"p": p.ID, "first": "10.0"}, "cannot use string as Int"}, // gqlparser's own refusal
		"enum in lower case": {map[string]any{"p": p.ID, "first": 10, "status": []any{"ACTIVE", "active"}},
			"$status[1] is not a value of LearnerStatus (enum values are case-sensitive)"},
	} {
		r := hygPost(t, api, tok, q, c.vars)
		hygWantError(t, r, 0, "BAD_USER_INPUT")
		if got := r.GQL.Errors[0].Message; got != c.msg {
			t.Errorf("%s: message %q, want %q", name, got, c.msg)
		}
	}
	r := hygPost(t, api, tok, q, map[string]any{"p": p.ID, "first": 10, "status": []any{"ACTIVE"}})
	if r.Status != http.StatusOK || len(r.GQL.Errors) > 0 {
		t.Fatalf("well-typed variables refused: %s", r.Body)
	}
}

func TestEdge_NULInAnyStringArgumentIsBadUserInput(t *testing.T) {
	api := hygSQLite(t)
	tok := api.BootstrapToken()
	p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
	cases := map[string]struct {
		q    string
		vars map[string]any
	}{
		"learners(search:) variable": {`query($p: ID!, $s: String) { learners(programmeId: $p, search: $s) { edges { node { id } } } }`,
			map[string]any{"p": p.ID, "s": "ann\u0000"}},
		"learners(search:) literal": {`query($p: ID!) { learners(programmeId: $p, search: "ann\u0000") { edges { node { id } } } }`,
			map[string]any{"p": p.ID}},
		"auditLog(targetId:) variable": {`query($p: ID!, $t: ID) { auditLog(programmeId: $p, targetId: $t) { edges { node { id } } } }`,
			map[string]any{"p": p.ID, "t": "\u0000"}},
		"inside an input object": {`mutation($o: ID!, $in: LearnerInput!) { createLearner(organisationId: $o, input: $in) { id } }`,
			map[string]any{"o": p.Orgs["Kent County Council"].ID, "in": map[string]any{"email": "nul@kent.gov.uk", "givenName": "A\u0000n", "familyName": "B"}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := hygPost(t, api, tok, c.q, c.vars)
			hygWantError(t, r, 0, "BAD_USER_INPUT")
			if got := r.GQL.Ext("reason"); got != "NUL_CHARACTER" {
				t.Errorf("reason %q, want NUL_CHARACTER: %s", got, r.Body)
			}
		})
	}
	if n := api.Count(`SELECT count(*) FROM learners`); n != 0 {
		t.Fatalf("a NUL request wrote %d learners", n)
	}
}

// The default budget passes the pages clients use and refuses aliased
// multiplication, saying the cost and the limit.
func TestEdge_CostCountsListSizes(t *testing.T) {
	api := hygSQLite(t)
	tok := api.BootstrapToken()
	p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
	adminPage := `query($p: ID!, $after: String) { learners(programmeId: $p, first: 50, after: $after) { edges { node { id email givenName familyName status
		organisation { id name } accessGroup { id name } acceptances { decision decidedAt policyVersion { id label } } } } pageInfo { endCursor hasNextPage } } }`
	for name, c := range map[string]struct {
		q    string
		vars map[string]any
	}{
		"admin learners page (first: 50)":  {adminPage, map[string]any{"p": p.ID}},
		"LMS enrolments (first: 1000)":     {moodlesync.EnrolmentsQuery, map[string]any{"programmeId": p.ID, "first": 1000}},
		"LMS lifecycleEvents (first: 500)": {moodlesync.LifecycleEventsQuery, map[string]any{"programmeId": p.ID, "first": 500, "waitSeconds": 0}},
	} {
		r := hygPost(t, api, tok, c.q, c.vars)
		if r.Status != http.StatusOK || len(r.GQL.Errors) > 0 {
			t.Errorf("%s refused: %d %.300s", name, r.Status, r.Body)
		}
	}
	// 100 aliases of learners(first: 500): 100 x (1 + 500 x 4) = 200,100.
	q := hygAliases(100, fmt.Sprintf(`learners(programmeId: %q, first: 500) { edges { node { id email } } }`, p.ID))
	r := hygPost(t, api, tok, q, nil)
	hygWantError(t, r, 0, "BAD_USER_INPUT")
	if r.GQL.Ext("reason") != "COMPLEXITY_LIMIT_EXCEEDED" || r.GQL.Errors[0].Message != "operation has complexity 200100, which exceeds the limit of 64000" {
		t.Fatalf("aliased multiplication: %s", r.Body)
	}
	// first as a variable counts the same.
	q = `query($n: Int) {` + strings.TrimPrefix(hygAliases(40, fmt.Sprintf(`learners(programmeId: %q, first: $n) { edges { node { id email } } }`, p.ID)), "{")
	r = hygPost(t, api, tok, q, map[string]any{"n": 500})
	if r.GQL.Ext("reason") != "COMPLEXITY_LIMIT_EXCEEDED" || !strings.Contains(r.GQL.Errors[0].Message, "complexity 80040,") {
		t.Fatalf("first from a variable: %s", r.Body)
	}
}

func TestEdge_SecurityHeadersOnEveryResponse(t *testing.T) {
	for _, public := range []string{"", "https://rollcall.example.org"} {
		api := hygSQLite(t, testkit.APIOptions{PublicURL: public})
		for _, c := range []hygReq{
			{Path: "/graphql", ContentType: "application/json", Body: strings.NewReader(`{"query":"{ __typename }"}`)},
			{Path: "/graphql", ContentType: "application/json", Auth: "Bearer bad", Body: strings.NewReader(`{}`)},
			{Method: http.MethodGet, Path: "/auth/login?email=someone@nowhere.example"},
			{Method: http.MethodGet, Path: "/auth/callback?state=x&code=y"},
			{Method: http.MethodPost, Path: "/auth/logout"},
			{Method: http.MethodGet, Path: "/healthz"},
			{Method: http.MethodGet, Path: "/nowhere"},
		} {
			r := hygDo(t, api, c)
			what := c.Method + " " + c.Path
			for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"} {
				if got := r.Header.Get(h); got != want {
					t.Errorf("%s: %s = %q, want %q", what, h, got, want)
				}
			}
			// The pages (internal/web) set a fuller policy of their own; every
			// policy must forbid framing.
			if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("%s: Content-Security-Policy = %q, want frame-ancestors 'none'", what, csp)
			}
			// The pages choose same-origin (the Referer never leaves the
			// service); everything else sends none.
			if rp := r.Header.Get("Referrer-Policy"); rp != "no-referrer" && !(c.Path == "/nowhere" && rp == "same-origin") {
				t.Errorf("%s: Referrer-Policy = %q, want no-referrer", what, rp)
			}
			noStore := strings.HasPrefix(c.Path, "/graphql") || strings.HasPrefix(c.Path, "/auth/")
			if got := r.Header.Get("Cache-Control"); noStore && got != "no-store" {
				t.Errorf("%s: Cache-Control = %q, want no-store", what, got)
			}
			hsts := r.Header.Get("Strict-Transport-Security")
			if public != "" && !strings.HasPrefix(hsts, "max-age=31536000") {
				t.Errorf("%s over https: Strict-Transport-Security = %q", what, hsts)
			}
			if public == "" && hsts != "" {
				t.Errorf("%s over http: Strict-Transport-Security = %q, want none", what, hsts)
			}
		}
	}
}

func TestEdge_LogoutChecksOrigin(t *testing.T) {
	api := hygSQLite(t)
	for origin, want := range map[string]int{
		"":                       http.StatusForbidden,
		"null":                   http.StatusForbidden,
		"https://evil.example":   http.StatusForbidden,
		api.Server.URL + ".evil": http.StatusForbidden,
		api.Server.URL:           http.StatusNoContent,
	} {
		h := map[string]string{}
		if origin != "" {
			h["Origin"] = origin
		}
		r := hygDo(t, api, hygReq{Method: http.MethodPost, Path: "/auth/logout", Header: h})
		if r.Status != want {
			t.Errorf("logout with Origin %q: %d, want %d: %s", origin, r.Status, want, r.Body)
		}
	}
}

// A provider at the bootstrap admin's issuer would be shadowed by the
// bootstrap entry (its learners' tokens refused): it is refused instead.
func TestEdge_ProviderAtTheBootstrapIssuerRefused(t *testing.T) {
	api := hygSQLite(t)
	p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
	for _, iss := range []string{api.Issuer.URL(), api.Issuer.URL() + "/"} {
		r := hygPost(t, api, api.BootstrapToken(), `mutation($o: ID!, $in: IdentityProviderInput!) { registerIdentityProvider(organisationId: $o, input: $in) { id } }`,
			map[string]any{"o": p.Orgs["Kent County Council"].ID, "in": map[string]any{"issuer": iss, "clientId": "kcc"}})
		hygWantError(t, r, 0, "BAD_USER_INPUT")
		if r.GQL.Ext("reason") != "BOOTSTRAP_ISSUER" || r.GQL.Ext("field") != "issuer" {
			t.Fatalf("provider at the bootstrap issuer %q: %s", iss, r.Body)
		}
	}
	if n := api.Count(`SELECT count(*) FROM identity_providers`); n != 0 {
		t.Fatalf("%d providers registered", n)
	}
}

// A client that disconnects mid-request is one info line, not an error per
// field.
func TestEdge_ClientDisconnectLoggedOnceAtInfo(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := lmsNewEnv(t, testkit.NewPartnership(t, migrations.SQLite, testkit.APIOptions{Log: log}))
	api := e.api
	_, key := e.issueKey(t, e.ctl.ID, "Moodle")
	_, cur := e.drain(t, key, e.ctl.ID, nil, 500)

	ctx, cancel := context.WithCancel(context.Background())
	body := fmt.Sprintf(`{"query":%q,"variables":{"p":%q,"after":%q,"first":100,"wait":20}}`, lmsOneLine(lmsFeedQuery), e.ctl.ID, cur)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api.Server.URL+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	done := make(chan error, 1)
	go func() { _, err := api.Server.Client().Do(req); done <- err }()
	for i := 0; api.Store.Watchers(e.ctl.ID) != 1; i++ {
		if i > 1000 {
			t.Fatal("the poll did not start waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	for i := 0; api.Store.Watchers(e.ctl.ID) != 0; i++ {
		if i > 1000 {
			t.Fatal("the poll did not end with its client")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the request's log lines follow its end
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if n := strings.Count(out, "client disconnected"); n != 1 {
		t.Fatalf("%d 'client disconnected' lines, want 1:\n%s", n, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "client disconnected") && !strings.Contains(line, "level=INFO") {
			t.Errorf("the disconnect is not logged at info: %s", line)
		}
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("an error logged for a client that went away: %s", line)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
