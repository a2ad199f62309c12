package graph_test

// HTTP and GraphQL hygiene of /graphql, exercised over real HTTP against the
// whole service: transport refusals, limits, schema hiding, authentication
// before any GraphQL work, masked internal errors, health endpoints, and bad
// domain input that must change nothing (CTL-3).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/graph"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// hygResult is one raw HTTP exchange with /graphql (or another path).
type hygResult struct {
	Status int
	Header http.Header
	Body   []byte
	GQL    testkit.Response
}

type hygReq struct {
	Method      string // POST unless set
	Path        string // /graphql unless set
	ContentType string
	Auth        string // the whole Authorization header value
	Body        io.Reader
	Header      map[string]string
}

func hygDo(t *testing.T, api *testkit.API, r hygReq) hygResult {
	t.Helper()
	if r.Method == "" {
		r.Method = http.MethodPost
	}
	if r.Path == "" {
		r.Path = "/graphql"
	}
	req, err := http.NewRequest(r.Method, api.Server.URL+r.Path, r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	if r.Auth != "" {
		req.Header.Set("Authorization", r.Auth)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	res, err := api.Server.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	out := hygResult{Status: res.StatusCode, Header: res.Header, Body: b}
	if strings.HasPrefix(r.Path, "/graphql") {
		if err := json.Unmarshal(b, &out.GQL); err != nil {
			t.Fatalf("status %d: body is not a GraphQL JSON response: %.300s", res.StatusCode, b)
		}
		out.GQL.Status = res.StatusCode
	}
	hygCheckEnvelope(t, out)
	return out
}

// hygPost posts a JSON GraphQL request with an optional bearer token.
func hygPost(t *testing.T, api *testkit.API, token, query string, vars map[string]any) hygResult {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	return hygDo(t, api, hygReq{ContentType: "application/json", Auth: auth, Body: bytes.NewReader(body)})
}

var hygCodes = map[string]bool{"UNAUTHENTICATED": true, "FORBIDDEN": true, "NOT_FOUND": true, "BAD_USER_INPUT": true,
	"CONFLICT": true, "CURSOR_EXPIRED": true, "RATE_LIMITED": true, "SERVICE_UNAVAILABLE": true, "INTERNAL_SERVER_ERROR": true}

var hygRequestID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// hygCheckEnvelope holds for every response: an X-Request-ID, and every
// error carrying an extensions.code of the API contract.
func hygCheckEnvelope(t *testing.T, r hygResult) {
	t.Helper()
	if id := r.Header.Get("X-Request-ID"); !hygRequestID.MatchString(id) {
		t.Errorf("X-Request-ID = %q, want 16 hex digits", id)
	}
	for i, e := range r.GQL.Errors {
		code, _ := e.Extensions["code"].(string)
		if !hygCodes[code] {
			t.Errorf("error %d (%q) has extensions.code %q, not one of the contract's codes; extensions=%v",
				i, e.Message, code, e.Extensions)
		}
	}
}

// hygWantError asserts an error response with the given HTTP status (0: any
// 4xx) and code, and no data.
func hygWantError(t *testing.T, r hygResult, status int, code string) {
	t.Helper()
	if status != 0 && r.Status != status {
		t.Errorf("HTTP status = %d, want %d; body %.300s", r.Status, status, r.Body)
	}
	if status == 0 && (r.Status < 400 || r.Status > 499) && r.Status != http.StatusOK {
		t.Errorf("HTTP status = %d, want a 4xx or 200; body %.300s", r.Status, r.Body)
	}
	if len(r.GQL.Errors) == 0 {
		t.Fatalf("no errors; body %.300s", r.Body)
	}
	if got := r.GQL.Code(); got != code {
		t.Fatalf("code = %q, want %q; body %.500s", got, code, r.Body)
	}
	if d := strings.TrimSpace(string(r.GQL.Data)); d != "" && d != "null" {
		t.Errorf("refused request returned data %s", d)
	}
}

func hygSQLite(t *testing.T, o ...testkit.APIOptions) *testkit.API {
	t.Helper()
	return testkit.NewAPI(t, migrations.SQLite, o...)
}

func TestHygiene_GETRefused(t *testing.T) {
	api := hygSQLite(t)
	for _, path := range []string{"/graphql", "/graphql?query=%7Bviewer%7BactorId%7D%7D"} {
		r := hygDo(t, api, hygReq{Method: http.MethodGet, Path: path, Auth: "Bearer " + api.BootstrapToken()})
		hygWantError(t, r, http.StatusMethodNotAllowed, "BAD_USER_INPUT")
		if a := r.Header.Get("Allow"); a != "POST" {
			t.Errorf("Allow = %q, want POST", a)
		}
	}
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		r := hygDo(t, api, hygReq{Method: m, ContentType: "application/json", Body: strings.NewReader(`{"query":"{__typename}"}`)})
		hygWantError(t, r, http.StatusMethodNotAllowed, "BAD_USER_INPUT")
	}
}

func TestHygiene_NonJSONContentTypesRefused(t *testing.T) {
	api := hygSQLite(t)
	p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
	kcc := p.Orgs["Kent County Council"].ID
	before := hygDomains(t, api, p.ID)

	mutation := fmt.Sprintf(`mutation { addEmailDomain(organisationId: %q, domain: "csrf-test.example.org") { id } }`, kcc)
	jsonBody, _ := json.Marshal(map[string]any{"query": mutation})

	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("operations", string(jsonBody))
	_ = mw.WriteField("map", "{}")
	_ = mw.Close()

	cases := []struct {
		ct   string
		body []byte
	}{
		{"text/plain", jsonBody},
		{"text/plain; charset=utf-8", jsonBody},
		{"application/x-www-form-urlencoded", []byte("query=" + strings.ReplaceAll(mutation, " ", "+"))},
		{mw.FormDataContentType(), mp.Bytes()},
		{"multipart/form-data", jsonBody},
		{"application/graphql", []byte(mutation)},
		{"application/json-seq", jsonBody},
		{"", jsonBody},
	}
	for _, tc := range cases {
		t.Run(tc.ct, func(t *testing.T) {
			r := hygDo(t, api, hygReq{ContentType: tc.ct, Auth: "Bearer " + api.BootstrapToken(), Body: bytes.NewReader(tc.body)})
			hygWantError(t, r, http.StatusUnsupportedMediaType, "BAD_USER_INPUT")
		})
	}
	// None of them reached the mutation (a cross-site form cannot send JSON).
	if after := hygDomains(t, api, p.ID); after != before {
		t.Fatalf("a refused request changed domains:\nbefore %s\nafter  %s", before, after)
	}
	// JSON with parameters and any case is JSON.
	for _, ct := range []string{"application/json; charset=utf-8", "Application/JSON"} {
		r := hygDo(t, api, hygReq{ContentType: ct, Body: strings.NewReader(`{"query":"{ __typename }"}`)})
		if r.Status != http.StatusOK || len(r.GQL.Errors) != 0 {
			t.Errorf("Content-Type %q: status %d, body %s", ct, r.Status, r.Body)
		}
	}
}

func TestHygiene_BatchedRequestRefused(t *testing.T) {
	api := hygSQLite(t)
	tok := api.BootstrapToken()
	for _, body := range []string{
		`[{"query":"{ viewer { actorId } }"},{"query":"{ viewer { actorId } }"}]`,
		`[]`,
		`[{"query":"{ __typename }"}]`,
	} {
		r := hygDo(t, api, hygReq{ContentType: "application/json", Auth: "Bearer " + tok, Body: strings.NewReader(body)})
		hygWantError(t, r, 0, "BAD_USER_INPUT")
		if r.Status >= 500 {
			t.Errorf("batch %s: HTTP %d", body, r.Status)
		}
	}
	// Other undecodable bodies are the client's to fix too.
	for _, body := range []string{``, `{`, `"query"`, `{"query": 42}`, `{"query":"{ __typename }","variables":"x"}`, `null`} {
		r := hygDo(t, api, hygReq{ContentType: "application/json", Body: strings.NewReader(body)})
		if r.GQL.Code() == "INTERNAL_SERVER_ERROR" || r.Status >= 500 {
			t.Errorf("body %q: HTTP %d, code %s", body, r.Status, r.GQL.Code())
		}
		if len(r.GQL.Errors) == 0 {
			t.Errorf("body %q accepted: %s", body, r.Body)
		}
	}
}

// hygBigBody is a valid JSON GraphQL request larger than 1 MiB.
func hygBigBody() []byte {
	pad := strings.Repeat(" ", (1<<20)+1024)
	return []byte(`{"query":"{ __typename }` + pad + `"}`)
}

func TestHygiene_BodyOver1MiBRefused(t *testing.T) {
	api := hygSQLite(t)
	auth := "Bearer " + api.BootstrapToken()
	r := hygDo(t, api, hygReq{ContentType: "application/json", Auth: auth, Body: bytes.NewReader(hygBigBody())})
	hygWantError(t, r, http.StatusRequestEntityTooLarge, "BAD_USER_INPUT")
	// Just under the limit is fine.
	small := []byte(`{"query":"{ __typename }` + strings.Repeat(" ", (1<<20)-64) + `"}`)
	if len(small) > 1<<20 {
		t.Fatalf("setup: %d bytes", len(small))
	}
	r = hygDo(t, api, hygReq{ContentType: "application/json", Auth: auth, Body: bytes.NewReader(small)})
	if r.Status != http.StatusOK || len(r.GQL.Errors) != 0 {
		t.Fatalf("body of %d bytes refused: %d %.300s", len(small), r.Status, r.Body)
	}
}

// A client need not announce the length: a chunked body over the limit is
// refused the same way, with 413.
func TestHygiene_ChunkedBodyOver1MiBRefused(t *testing.T) {
	api := hygSQLite(t)
	// Hiding the length makes the client send Transfer-Encoding: chunked.
	body := struct{ io.Reader }{bytes.NewReader(hygBigBody())}
	r := hygDo(t, api, hygReq{ContentType: "application/json", Auth: "Bearer " + api.BootstrapToken(), Body: body})
	if len(r.GQL.Errors) == 0 || r.GQL.Code() != "BAD_USER_INPUT" {
		t.Fatalf("chunked body over 1 MiB not refused with BAD_USER_INPUT: %d %.300s", r.Status, r.Body)
	}
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over 1 MiB: HTTP %d, want 413", r.Status)
	}
}

func hygAliases(n int, sel string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, " a%d: %s", i, sel)
	}
	b.WriteString(" }")
	return b.String()
}

func TestHygiene_ComplexityLimit(t *testing.T) {
	api := hygSQLite(t, testkit.APIOptions{Limits: graph.Limits{Complexity: 50, Tokens: 5000}})
	tok := api.BootstrapToken()

	// 20 x viewer{actorId} costs 40: inside the limit.
	r := hygPost(t, api, tok, hygAliases(20, "viewer { actorId }"), nil)
	if r.Status != http.StatusOK || len(r.GQL.Errors) != 0 {
		t.Fatalf("query inside the limit refused: %d %s", r.Status, r.Body)
	}
	// 30 of them cost 60; a nested query over the limit goes the same way.
	for _, q := range []string{
		hygAliases(30, "viewer { actorId }"),
		hygAliases(6, "programmes { id name organisations { id name domains { domain } accessGroups { id name } } }"),
	} {
		for _, token := range []string{tok, ""} {
			r := hygPost(t, api, token, q, nil)
			hygWantError(t, r, 0, "BAD_USER_INPUT")
			if got := r.GQL.Ext("reason"); got != "COMPLEXITY_LIMIT_EXCEEDED" {
				t.Errorf("reason = %q, want COMPLEXITY_LIMIT_EXCEEDED; %.300s", got, r.Body)
			}
		}
	}
}

// The cost counts list sizes: aliases of a paginated field multiply by
// `first`, and the refusal says the cost and the limit.
func TestHygiene_DefaultComplexityLimit(t *testing.T) {
	api := hygSQLite(t)
	// 40 aliases of learners(first: 500) { edges { node { id email } } }:
	// 40 x (1 + 500 x 4) = 80,040, over the default 64,000.
	q := hygAliases(40, `learners(programmeId: "00000000-0000-0000-0000-000000000000", first: 500) { edges { node { id email } } }`)
	for _, token := range []string{api.BootstrapToken(), ""} {
		r := hygPost(t, api, token, q, nil)
		hygWantError(t, r, 0, "BAD_USER_INPUT")
		if got := r.GQL.Ext("reason"); got != "COMPLEXITY_LIMIT_EXCEEDED" {
			t.Fatalf("reason = %q, want COMPLEXITY_LIMIT_EXCEEDED; %.300s", got, r.Body)
		}
		if msg := r.GQL.Errors[0].Message; msg != "operation has complexity 80040, which exceeds the limit of 64000" {
			t.Fatalf("message = %q, want the cost and the limit", msg)
		}
	}
}

func TestHygiene_ParserTokenLimit(t *testing.T) {
	api := hygSQLite(t)
	for name, q := range map[string]string{
		"3000 aliases":  hygAliases(3000, "viewer { actorId }"),
		"typenames":     "{" + strings.Repeat(" __typename", 6000) + " }",
		"deep nesting":  strings.Repeat("{ viewer ", 3000) + strings.Repeat("}", 3000),
		"long argument": `{ programme(id: [` + strings.Repeat(`"x",`, 6000) + `]) { id } }`,
	} {
		t.Run(name, func(t *testing.T) {
			r := hygPost(t, api, api.BootstrapToken(), q, nil)
			hygWantError(t, r, 0, "BAD_USER_INPUT")
			if got := r.GQL.Ext("reason"); got != "GRAPHQL_PARSE_FAILED" {
				t.Errorf("reason = %q, want GRAPHQL_PARSE_FAILED; %.300s", got, r.Body)
			}
		})
	}
}

// With introspection off, validation messages must not enumerate the schema
// either: no "Did you mean" for fields, arguments, types, enum values or
// input fields.
func TestHygiene_NoSuggestions(t *testing.T) {
	api := hygSQLite(t)
	tok := api.BootstrapToken()
	cases := map[string]string{
		"field":           `{ viewr { actorId } }`,
		"subfield":        `{ viewer { actorI } }`,
		"scalar leaf":     `{ viewer }`,
		"argument":        `{ programme(idd: "x") { id } }`,
		"fragment type":   `fragment F on Viewr { actorId } { viewer { ...F } }`,
		"variable type":   `query($id: Idd!) { programme(id: $id) { id } }`,
		"enum value":      `{ membershipProposals(programmeId: "x", status: PENDNG) { id } }`,
		"input field":     `mutation { createCourse(programmeId: "x", input: {lmsCourseId: "a", titel: "b"}) { id } }`,
		"missing input f": `mutation { createCourse(programmeId: "x", input: {lmsCourseId: "a"}) { id } }`,
	}
	for name, q := range cases {
		t.Run(name, func(t *testing.T) {
			r := hygPost(t, api, tok, q, nil)
			hygWantError(t, r, 0, "BAD_USER_INPUT")
			if bytes.Contains(bytes.ToLower(r.Body), []byte("did you mean")) {
				t.Errorf("validation error suggests schema names: %s", r.Body)
			}
		})
	}
	// Variables coerced at run time neither.
	r := hygPost(t, api, tok, `query($s: ProposalStatus) { membershipProposals(programmeId: "x", status: $s) { id } }`,
		map[string]any{"s": "PENDNG"})
	if len(r.GQL.Errors) == 0 || bytes.Contains(bytes.ToLower(r.Body), []byte("did you mean")) {
		t.Errorf("bad enum variable: %s", r.Body)
	}
}

func TestHygiene_IntrospectionOnlyInDev(t *testing.T) {
	queries := []string{`{ __schema { types { name } } }`, `{ __type(name: "Query") { name fields { name } } }`}
	t.Run("not dev", func(t *testing.T) {
		api := hygSQLite(t)
		for _, tok := range []string{"", api.BootstrapToken()} {
			for _, q := range queries {
				r := hygPost(t, api, tok, q, nil)
				if len(r.GQL.Errors) == 0 {
					t.Fatalf("introspection answered outside dev mode: %.300s", r.Body)
				}
				if bytes.Contains(r.Body, []byte(`"Mutation"`)) || bytes.Contains(r.Body, []byte(`"addEmailDomain"`)) {
					t.Fatalf("schema leaked: %.300s", r.Body)
				}
				// A refusal the client caused, not an outage.
				if c := r.GQL.Code(); c != "BAD_USER_INPUT" {
					t.Errorf("introspection refusal code = %q, want BAD_USER_INPUT; %.300s", c, r.Body)
				}
			}
		}
		// __typename is not introspection of the schema and stays available.
		r := hygPost(t, api, "", `{ __typename }`, nil)
		if len(r.GQL.Errors) != 0 || !bytes.Contains(r.GQL.Data, []byte(`"Query"`)) {
			t.Fatalf("__typename: %s", r.Body)
		}
	})
	t.Run("dev", func(t *testing.T) {
		api := hygSQLite(t, testkit.APIOptions{Dev: true})
		r := hygPost(t, api, "", queries[0], nil)
		if len(r.GQL.Errors) != 0 || !bytes.Contains(r.GQL.Data, []byte(`"Mutation"`)) {
			t.Fatalf("dev introspection: %.300s", r.Body)
		}
		r = hygPost(t, api, "", queries[1], nil)
		if len(r.GQL.Errors) != 0 || !bytes.Contains(r.GQL.Data, []byte(`"viewer"`)) {
			t.Fatalf("dev __type: %.300s", r.Body)
		}
	})
}

func TestHygiene_CTL12_BadAuthorizationRefusedBeforeGraphQL(t *testing.T) {
	api := hygSQLite(t)
	expired, err := api.Issuer.Mint(oidcissuer.Claims{Subject: testkit.BootstrapSubject, Audience: []string{testkit.Audience},
		IssuedAt: api.Clock.Now().Add(-2 * time.Hour), Expiry: api.Clock.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	algNone, err := api.Issuer.Mint(oidcissuer.Claims{Subject: testkit.BootstrapSubject, Audience: []string{testkit.Audience},
		IssuedAt: api.Clock.Now()}, oidcissuer.WithAlgNone())
	if err != nil {
		t.Fatal(err)
	}
	valid := api.BootstrapToken()
	for name, h := range map[string]string{
		"garbage bearer":     "Bearer not-a-jwt",
		"expired":            "Bearer " + expired,
		"alg none":           "Bearer " + algNone,
		"tampered":           "Bearer " + valid[:len(valid)-4] + "AAAA",
		"basic":              "Basic dXNlcjpwYXNz",
		"basic with a jwt":   "Basic " + valid,
		"bearer no token":    "Bearer",
		"bearer blank token": "Bearer    ",
		"token without type": valid,
		"digest":             `Digest username="x"`,
	} {
		t.Run(name, func(t *testing.T) {
			// The body is not even valid GraphQL: only the middleware can answer.
			r := hygDo(t, api, hygReq{ContentType: "application/json", Auth: h,
				Body: strings.NewReader(`{"query":"{ this is not graphql"}`)})
			hygWantError(t, r, http.StatusUnauthorized, "UNAUTHENTICATED")
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
			}
			if len(r.GQL.Errors) != 1 {
				t.Errorf("want exactly one error, got %s", r.Body)
			}
		})
	}
	// The scheme is case-insensitive (RFC 7235); a valid token passes.
	r := hygDo(t, api, hygReq{ContentType: "application/json", Auth: "bearer " + valid,
		Body: strings.NewReader(`{"query":"{ viewer { actorId } }"}`)})
	if r.Status != http.StatusOK || len(r.GQL.Errors) != 0 {
		t.Fatalf("valid token refused: %d %s", r.Status, r.Body)
	}
}

func TestHygiene_CTL12_AnonymousViewerUnauthenticated(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			for _, q := range []string{
				`{ viewer { actorId } }`,
				`{ programmes { id name } }`,
				fmt.Sprintf(`{ programme(id: %q) { organisations { domains { domain } } } }`, p.ID),
			} {
				r := hygPost(t, api, "", q, nil)
				if r.GQL.Code() != "UNAUTHENTICATED" {
					t.Fatalf("%s anonymously: %s", q, r.Body)
				}
				if bytes.Contains(r.Body, []byte("kent.gov.uk")) {
					t.Fatalf("anonymous read leaked data: %s", r.Body)
				}
			}
		})
	}
}

// hygLeaks are fragments of database and Go internals a client must never see.
var hygLeaks = []string{"sql", "database", "closed", "gorm", "pgx", "sqlite", "select", "postgres", "driver", "panic",
	"goroutine", "runtime", "grants", "load grants"}

func TestHygiene_InternalErrorsAreMasked(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			tok := api.BootstrapToken()
			if err := api.Store.Close(); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				`{ viewer { actorId } }`,
				fmt.Sprintf(`{ programme(id: %q) { organisations { domains { domain } } } }`, p.ID),
				fmt.Sprintf(`mutation { addEmailDomain(organisationId: %q, domain: "new.kent.example.org") { id } }`,
					p.Orgs["Kent County Council"].ID),
			} {
				r := hygPost(t, api, tok, q, nil)
				if len(r.GQL.Errors) == 0 {
					t.Fatalf("%s: no error with the database closed: %s", q, r.Body)
				}
				for _, e := range r.GQL.Errors {
					if c, _ := e.Extensions["code"].(string); c != "INTERNAL_SERVER_ERROR" {
						t.Errorf("%s: code %q, want INTERNAL_SERVER_ERROR", q, c)
					}
					if e.Message != "internal error" {
						t.Errorf("%s: message %q, want exactly \"internal error\"", q, e.Message)
					}
					if len(e.Extensions) != 1 {
						t.Errorf("%s: extensions carry more than the code: %v", q, e.Extensions)
					}
				}
				low := strings.ToLower(string(r.Body))
				for _, leak := range hygLeaks {
					if strings.Contains(low, leak) {
						t.Errorf("%s: response mentions %q: %s", q, leak, r.Body)
					}
				}
			}
		})
	}
}

func TestHygiene_HealthAndReadiness(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			get := func(path string) hygResult {
				t.Helper()
				return hygDo(t, api, hygReq{Method: http.MethodGet, Path: path})
			}
			if r := get("/healthz"); r.Status != http.StatusOK {
				t.Fatalf("/healthz = %d %s", r.Status, r.Body)
			}
			if r := get("/readyz"); r.Status != http.StatusOK {
				t.Fatalf("/readyz = %d %s", r.Status, r.Body)
			}
			if err := api.Store.Close(); err != nil {
				t.Fatal(err)
			}
			r := get("/readyz")
			if r.Status != http.StatusServiceUnavailable {
				t.Fatalf("/readyz with the database closed = %d %s", r.Status, r.Body)
			}
			low := strings.ToLower(string(r.Body))
			for _, leak := range hygLeaks {
				if strings.Contains(low, leak) {
					t.Errorf("/readyz mentions %q: %s", leak, r.Body)
				}
			}
			// Liveness does not depend on the database.
			if r := get("/healthz"); r.Status != http.StatusOK {
				t.Fatalf("/healthz with the database closed = %d", r.Status)
			}
		})
	}
}

func TestHygiene_RequestIDOnEveryResponse(t *testing.T) {
	api := hygSQLite(t)
	seen := map[string]bool{}
	for _, rq := range []hygReq{
		{Method: http.MethodGet, Path: "/healthz"},
		{Method: http.MethodGet, Path: "/readyz"},
		{Method: http.MethodGet, Path: "/graphql"},
		{ContentType: "text/plain", Body: strings.NewReader("x")},
		{ContentType: "application/json", Auth: "Bearer nope", Body: strings.NewReader(`{"query":"{ __typename }"}`)},
		{ContentType: "application/json", Body: strings.NewReader(`{"query":"{ __typename }"}`)},
		{ContentType: "application/json", Body: strings.NewReader(`{"query":"{ __typename }"}`),
			Header: map[string]string{"X-Request-ID": "attacker chosen id"}},
		{ContentType: "application/json", Body: strings.NewReader(`{"query":"{ __typename }"}`),
			Header: map[string]string{"X-Request-ID": "0123456789abcdef"}},
	} {
		r := hygDo(t, api, rq) // checks the header is there and well-formed
		id := r.Header.Get("X-Request-ID")
		if sent := rq.Header["X-Request-ID"]; sent != "" && id == sent {
			t.Errorf("client-chosen X-Request-ID %q echoed", sent)
		}
		if seen[id] {
			t.Errorf("X-Request-ID %q repeated", id)
		}
		seen[id] = true
	}
}

// hygDomains is a canonical dump of every organisation's domains.
func hygDomains(t *testing.T, api *testkit.API, programmeID string) string {
	t.Helper()
	var out struct {
		Programme struct {
			Organisations []struct {
				ID      string
				Domains []struct {
					ID                string
					Domain            string
					IncludeSubdomains bool
				}
			}
		}
	}
	api.MustDo(api.BootstrapToken(),
		`query($id: ID!) { programme(id: $id) { organisations { id domains { id domain includeSubdomains } } } }`,
		map[string]any{"id": programmeID}, &out)
	b, _ := json.Marshal(out)
	return string(b)
}

func TestHygiene_CTL3_BadDomainsChangeNothing(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			kcc := p.Orgs["Kent County Council"].ID
			if kcc == "" {
				t.Fatal("seed has no Kent County Council")
			}
			tok := api.BootstrapToken()
			before := hygDomains(t, api, p.ID)
			if !strings.Contains(before, `"medway.gov.uk"`) || !strings.Contains(before, `"kent.gov.uk"`) {
				t.Fatalf("seed domains unexpected: %s", before)
			}
			const add = `mutation($org: ID!, $d: String!, $sub: Boolean) {
				addEmailDomain(organisationId: $org, domain: $d, includeSubdomains: $sub) { id domain } }`
			cases := []struct {
				name   string
				domain string
				sub    bool
				code   string
				reason string // for BAD_USER_INPUT
			}{
				{"public suffix", "gov.uk", false, "BAD_USER_INPUT", "DOMAIN_PUBLIC_SUFFIX"},
				{"public suffix with subdomains", "gov.uk", true, "BAD_USER_INPUT", "DOMAIN_PUBLIC_SUFFIX"},
				{"public suffix upper case", "GOV.UK.", false, "BAD_USER_INPUT", "DOMAIN_PUBLIC_SUFFIX"},
				{"police.uk", "police.uk", false, "BAD_USER_INPUT", "DOMAIN_PUBLIC_SUFFIX"},
				{"sch.uk", "sch.uk", false, "BAD_USER_INPUT", "DOMAIN_PUBLIC_SUFFIX"},
				{"webmail", "gmail.com", false, "BAD_USER_INPUT", "DOMAIN_WEBMAIL"},
				{"webmail subdomain", "mail.outlook.com", false, "BAD_USER_INPUT", "DOMAIN_WEBMAIL"},
				{"IPv4 literal", "10.0.0.1", false, "BAD_USER_INPUT", "DOMAIN_IP_LITERAL"},
				{"bracketed IP literal", "[192.168.1.1]", false, "BAD_USER_INPUT", "DOMAIN_IP_LITERAL"},
				{"IPv6 literal", "::1", false, "BAD_USER_INPUT", "DOMAIN_IP_LITERAL"},
				{"single label", "kent", false, "BAD_USER_INPUT", "DOMAIN_SINGLE_LABEL"},
				{"localhost", "localhost", false, "BAD_USER_INPUT", "DOMAIN_SINGLE_LABEL"},
				{"empty", "  ", false, "BAD_USER_INPUT", "DOMAIN_EMPTY"},
				{"invalid", "kent_gov.uk", false, "BAD_USER_INPUT", "DOMAIN_INVALID"},
				{"another organisation's", "medway.gov.uk", false, "CONFLICT", ""},
				{"another organisation's, other case", "Medway.Gov.UK.", false, "CONFLICT", ""},
				{"another organisation's, with subdomains", "medway.gov.uk", true, "CONFLICT", ""},
				{"its own again", "kent.gov.uk", false, "CONFLICT", ""},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					r := hygPost(t, api, tok, add, map[string]any{"org": kcc, "d": tc.domain, "sub": tc.sub})
					hygWantError(t, r, 0, tc.code)
					if got := r.GQL.Ext("field"); got != "domain" {
						t.Errorf("field = %q, want domain", got)
					}
					if tc.code == "BAD_USER_INPUT" {
						if got := r.GQL.Ext("reason"); got != tc.reason {
							t.Errorf("reason = %q, want %q", got, tc.reason)
						}
						if got := r.GQL.Ext("rule"); got != "CTL-3" {
							t.Errorf("rule = %q, want CTL-3", got)
						}
					}
				})
			}
			if after := hygDomains(t, api, p.ID); after != before {
				t.Fatalf("refused domains changed the organisations' domains:\nbefore %s\nafter  %s", before, after)
			}
			// Control: a good domain is accepted through the same path.
			r := hygPost(t, api, tok, add, map[string]any{"org": kcc, "d": "Learning.Kent.Gov.UK", "sub": false})
			if len(r.GQL.Errors) != 0 {
				t.Fatalf("good domain refused: %s", r.Body)
			}
			if !bytes.Contains(r.GQL.Data, []byte(`"learning.kent.gov.uk"`)) {
				t.Fatalf("domain not normalised: %s", r.Body)
			}
		})
	}
}

// Root query fields resolve concurrently: the caller's grants must be loaded
// once per request and shared safely, not once per field (and not raced on).
// Run with -race to see the race as well as the extra statements.
func TestHygiene_ConcurrentRootFieldsLoadTheActorOnce(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			tok := api.BootstrapToken()
			n := 0
			count := func(q string) int64 {
				t.Helper()
				// A grant to someone else empties the cache of grants, so
				// the request loads the actor as a first request does.
				n++
				api.Grant(fmt.Sprintf("someone-%d", n), domain.RoleAuditor, p.ID, nil, nil)
				before := api.Statements.Load()
				r := hygPost(t, api, tok, q, nil)
				if len(r.GQL.Errors) != 0 {
					t.Fatalf("%s", r.Body)
				}
				return api.Statements.Load() - before
			}
			count(`{ viewer { actorId } }`) // the issuer's (absent) provider is cached from here on
			one := count(`{ viewer { actorId roles { id } } }`)
			if one == 0 {
				t.Fatal("the actor was not loaded at all")
			}
			for range 5 {
				if many := count(hygAliases(24, "viewer { actorId roles { id } }")); many != one {
					t.Fatalf("24 root viewer fields ran %d statements, one ran %d: the actor is loaded per field", many, one)
				}
			}
		})
	}
}

// The POST transport writes successful responses as gqlgen marshalled them
// and negotiates status codes as the stock transport does; an undecodable
// body is refused without being echoed back.
func TestHygiene_TransportStatusesAndNoEcho(t *testing.T) {
	api := hygSQLite(t)
	tok := api.BootstrapToken()

	ok := hygPost(t, api, tok, `{ viewer { actorId } }`, nil)
	if ok.Status != http.StatusOK || ok.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("success: %d %q", ok.Status, ok.Header.Get("Content-Type"))
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, ok.Body); err != nil || !bytes.Equal(compact.Bytes(), ok.Body) || !bytes.HasPrefix(ok.Body, []byte(`{"data":{"viewer":`)) {
		t.Fatalf("success body is not compact JSON data: %s", ok.Body)
	}

	if ok.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("X-Content-Type-Options = %q", ok.Header.Get("X-Content-Type-Options"))
	}
	// The data is written as gqlgen produced it, not re-encoded by
	// encoding/json (which would escape < and & as \u003c and \u0026).
	created := hygPost(t, api, tok, `mutation($in: CreateProgrammeInput!) { createProgramme(input: $in) { name } }`,
		map[string]any{"in": map[string]any{"name": "Tom & Jerry <Trust>", "preset": "ONCLICK",
			"governingBodies": []any{map[string]any{"name": "Controller", "role": "CONTROLLER"}}}})
	if created.Status != http.StatusOK || len(created.GQL.Errors) > 0 || !bytes.Contains(created.Body, []byte(`"Tom & Jerry <Trust>"`)) {
		t.Fatalf("success body not written as gqlgen marshalled it: %s", created.Body)
	}

	bad := hygDo(t, api, hygReq{ContentType: "application/json", Auth: "Bearer " + tok, Body: strings.NewReader(`{"query": "ECHO-ME-NOT`)})
	hygWantError(t, bad, http.StatusBadRequest, "BAD_USER_INPUT")
	if bytes.Contains(bad.Body, []byte("ECHO-ME-NOT")) {
		t.Fatalf("undecodable body echoed back: %s", bad.Body)
	}

	parse := hygDo(t, api, hygReq{ContentType: "application/json", Auth: "Bearer " + tok, Body: strings.NewReader(`{"query": "{ viewer { "}`)})
	hygWantError(t, parse, http.StatusUnprocessableEntity, "BAD_USER_INPUT")
	parse = hygDo(t, api, hygReq{ContentType: "application/json", Auth: "Bearer " + tok, Body: strings.NewReader(`{"query": "{ viewer { "}`),
		Header: map[string]string{"Accept": "application/graphql-response+json"}})
	hygWantError(t, parse, http.StatusBadRequest, "BAD_USER_INPUT")
	if ct := parse.Header.Get("Content-Type"); ct != "application/graphql-response+json" {
		t.Fatalf("Accept application/graphql-response+json answered as %q", ct)
	}
}
