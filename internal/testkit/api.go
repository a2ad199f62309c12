package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/graph"
	"github.com/rollcall-dev/rollcall/internal/auth"
	"github.com/rollcall-dev/rollcall/internal/config"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/server"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/migrations"
)

// Audience is the audience tokens of the test issuer carry.
const Audience = "rollcall-test"

// BootstrapSubject is the test issuer's subject configured as bootstrap admin.
const BootstrapSubject = "bootstrap-admin"

// Clock is a settable clock for services under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

func NewClock(t time.Time) *Clock        { return &Clock{t: t.UTC()} }
func (c *Clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *Clock) Set(t time.Time)         { c.mu.Lock(); c.t = t.UTC(); c.mu.Unlock() }

// API is a running Rollcall over HTTP with a real OIDC issuer beside it.
type API struct {
	t          testing.TB
	Store      *store.Store
	Service    *lifecycle.Service
	Issuer     *oidcissuer.Issuer
	Clock      *Clock
	Server     *httptest.Server
	Statements *atomic.Int64
	// RoundTrips counts the exchanges with PostgreSQL (store
	// Options.CountRoundTrips); it stays 0 on SQLite.
	RoundTrips *atomic.Int64
}

// APIOptions tune NewAPI.
type APIOptions struct {
	Limits graph.Limits
	Dev    bool
	// MaxBodyBytes overrides the 1 MiB request limit (bulk imports).
	MaxBodyBytes int64
	// Log receives the service's log (default: discarded).
	Log *slog.Logger
	// PublicURL overrides ROLLCALL_PUBLIC_URL (default: the server's own
	// http:// address).
	PublicURL string
}

// TestSecretKey seals identity-provider secrets in tests.
var TestSecretKey = []byte("0123456789abcdef0123456789abcdef")

// NewAPI starts the service on a fresh database of dialect d.
func NewAPI(t testing.TB, d migrations.Dialect, o ...APIOptions) *API {
	t.Helper()
	var opt APIOptions
	if len(o) > 0 {
		opt = o[0]
	}
	counter, trips := &atomic.Int64{}, &atomic.Int64{}
	st := NewStore(t, d, store.Options{CountStatements: counter, CountRoundTrips: trips})
	key, err := oidcissuer.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	// The issuer's URL must be known before it is created; a mux lets the
	// server start first and the handler be filled in after.
	mux := http.NewServeMux()
	idp := httptest.NewServer(mux)
	t.Cleanup(idp.Close)
	iss := oidcissuer.New(idp.URL, key)
	mux.Handle("/", iss.Handler())

	clock := NewClock(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC))
	iss.Now = clock.Now
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Log != nil {
		log = opt.Log
	}
	var (
		ver    *auth.Verifier
		forget func(string)
	)
	svc := lifecycle.New(st, lifecycle.Options{Clock: clock.Now, Log: log,
		BootstrapAdmin: &domain.Identity{Issuer: iss.URL(), Subject: BootstrapSubject}, SecretKey: TestSecretKey,
		AllowInsecureIssuers: true, OnProviderChange: func(i string) { forget(i); ver.Forget(i) }})
	t.Cleanup(svc.StopReadAhead) // after the server closes, before the store does (cleanups run last first)
	providers, f := auth.CachedSource(server.ProviderSource(svc), 30*time.Second, clock.Now)
	forget = f
	ver = auth.NewVerifier(auth.Chain(auth.StaticIssuers(auth.Issuer{URL: iss.URL(), Audiences: []string{Audience}}), providers),
		auth.VerifierOptions{AllowInsecureIssuers: true, Clock: clock.Now, Log: log})
	maxBody := opt.MaxBodyBytes
	if maxBody == 0 {
		maxBody = 1 << 20
	}
	// The public URL (for login redirects) is the test server's own address,
	// known once its listener exists.
	var h http.Handler
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	cfg := config.Config{MaxBodyBytes: maxBody, Dev: opt.Dev, PublicURL: "http://" + srv.Listener.Addr().String()}
	if opt.PublicURL != "" {
		cfg.PublicURL = opt.PublicURL
	}
	h = server.New(server.Deps{Config: cfg, Service: svc, Verifier: ver, Ready: st, Log: log, Limits: opt.Limits})
	srv.Start()
	t.Cleanup(srv.Close)
	return &API{t: t, Store: st, Service: svc, Issuer: iss, Clock: clock, Server: srv, Statements: counter, RoundTrips: trips}
}

// Token mints a valid token for subject.
func (a *API) Token(subject string) string {
	a.t.Helper()
	tok, err := a.Issuer.Mint(oidcissuer.Claims{Subject: subject, Audience: []string{Audience},
		IssuedAt: a.Clock.Now(), Expiry: a.Clock.Now().Add(time.Hour)})
	if err != nil {
		a.t.Fatal(err)
	}
	return tok
}

// BootstrapToken is a token of the installation's bootstrap admin.
func (a *API) BootstrapToken() string { return a.Token(BootstrapSubject) }

// Response is a GraphQL response.
type Response struct {
	Status int
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// Code returns the first error's extensions.code ("" when none).
func (r Response) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// Ext returns an extension of the first error.
func (r Response) Ext(k string) string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions[k].(string)
	return c
}

// Decode unmarshals data into v, failing the test on errors.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("unexpected errors: %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode %s: %v", r.Data, err)
	}
}

// Do posts a GraphQL request with token ("" for none).
func (a *API) Do(token, query string, vars map[string]any) Response {
	a.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return a.Raw(token, "application/json", body)
}

// Raw posts a raw body.
func (a *API) Raw(token, contentType string, body []byte) Response {
	a.t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, a.Server.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := a.Server.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	var r Response
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &r); err != nil {
		a.t.Fatalf("status %d, body not JSON: %s", res.StatusCode, b)
	}
	r.Status = res.StatusCode
	return r
}

// MustDo is Do that fails the test on any error and decodes data into v.
func (a *API) MustDo(token, query string, vars map[string]any, v any) {
	a.t.Helper()
	r := a.Do(token, query, vars)
	r.Decode(a.t, v)
}

// NewIssuer starts another real OIDC provider (an organisation's identity
// provider in a test) on its own loopback server, on the API's clock.
func (a *API) NewIssuer() *oidcissuer.Issuer {
	a.t.Helper()
	key, err := oidcissuer.GenerateKey()
	if err != nil {
		a.t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	a.t.Cleanup(srv.Close)
	iss := oidcissuer.New(srv.URL, key)
	iss.Now = a.Clock.Now
	mux.Handle("/", iss.Handler())
	return iss
}

// SQL rebinds ? placeholders for the API's database ($1, $2… on PostgreSQL).
func (a *API) SQL(q string) string { return Rebind(a.Store.Dialect(), q) }

// Count runs a counting query with ? placeholders.
func (a *API) Count(q string, args ...any) int {
	a.t.Helper()
	return Count(a.t, a.Store, q, args...)
}
