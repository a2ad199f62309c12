// Package server wires the HTTP surface: /graphql, /healthz, /readyz, the dev
// issuer, and the middleware every request passes (request ID, logging, body
// limit, CORS, authentication). cmd/rollcall and the tests share it.
package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rollcall-dev/rollcall/graph"
	"github.com/rollcall-dev/rollcall/internal/auth"
	"github.com/rollcall-dev/rollcall/internal/config"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/web"
)

// Readiness reports whether the database answers and the schema is current.
type Readiness interface {
	Ready(ctx context.Context) error
}

// Deps are what the server is built from.
type Deps struct {
	Config    config.Config
	Service   *lifecycle.Service
	Verifier  *auth.Verifier
	Ready     Readiness
	Log       *slog.Logger
	DevIssuer *oidcissuer.Issuer // dev mode only
	// DevIdP serves dev mode's identity providers for the demo programmes
	// (mounted at /dev/idp/), and DevSignIn offers their demo people on the
	// sign-in page. Dev mode only.
	DevIdP    http.Handler
	DevSignIn *web.DevSignIn
	Limits    graph.Limits
	// LoaderWait overrides the dataloaders' batching window (tests).
	LoaderWait time.Duration
	// PlansServed, when set, counts requests a compiled query plan answered.
	PlansServed *atomic.Int64
}

// New returns the service's root handler.
func New(d Deps) http.Handler {
	mux := http.NewServeMux()
	gql := graph.NewHandler(d.Service, graph.HandlerOptions{Dev: d.Config.Dev, Limits: d.Limits, Log: d.Log,
		LoaderWait: d.LoaderWait, NoPlans: d.Config.NoQueryPlans, PlansServed: d.PlansServed})
	mux.Handle("/graphql", onlyPOSTJSON(auth.Middleware(d.Verifier, d.Service.Authenticate, d.Service.SessionIdentity, d.Service.APIKeyIdentity, gql)))
	lg := &login{d: d, secure: strings.HasPrefix(d.Config.PublicURL, "https://")}
	wd := web.Deps{Service: d.Service, Log: d.Log, PublicURL: d.Config.PublicURL, SDL: graph.SDL(), StartLogin: lg.begin}
	if d.Config.Dev {
		wd.Dev = d.DevSignIn
	}
	lg.pages = web.New(wd)
	// The learner pages, the admin console and their assets: everything
	// not routed below.
	mux.Handle("/", lg.pages)
	mux.HandleFunc("GET /auth/login", lg.start)
	mux.HandleFunc("GET /auth/callback", lg.callback)
	mux.HandleFunc("POST /auth/logout", lg.logout)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := d.Ready.Ready(ctx); err != nil {
			d.Log.WarnContext(ctx, "not ready", "err", err.Error())
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if d.Config.Dev && d.DevIssuer != nil {
		mux.Handle("/dev/oidc/", http.StripPrefix("/dev/oidc", d.DevIssuer.Handler()))
		if d.DevIdP != nil {
			mux.Handle("/dev/idp/", http.StripPrefix("/dev/idp", d.DevIdP))
		}
	}
	// GraphiQL now lives in the admin console, from embedded assets.
	mux.Handle("GET /graphiql", http.RedirectHandler("/console", http.StatusFound))
	var h http.Handler = mux
	h = cors(d.Config.CORSOrigins, h)
	h = limitBody(d.Config.MaxBodyBytes, h)
	h = logRequests(d.Log, h)
	return h
}

// onlyPOSTJSON refuses anything but POST with a JSON body, so no cross-site
// form or GET can reach a mutation.
func onlyPOSTJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeJSON(w, http.StatusMethodNotAllowed, gqlErr("use POST with Content-Type: application/json", "BAD_USER_INPUT"))
			return
		}
		ct := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
		if ct != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, gqlErr("Content-Type must be application/json", "BAD_USER_INPUT"))
			return
		}
		// Read the (size-limited) body here so an oversized chunked body is a
		// 413 and a batch is refused before gqlgen sees either.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeJSON(w, http.StatusRequestEntityTooLarge, gqlErr("request body too large", "BAD_USER_INPUT"))
				return
			}
			writeJSON(w, http.StatusBadRequest, gqlErr("could not read the request body", "BAD_USER_INPUT"))
			return
		}
		if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
			writeJSON(w, http.StatusBadRequest, gqlErr("the body must be one JSON object {\"query\": …}; batches are not accepted", "BAD_USER_INPUT"))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			writeJSON(w, http.StatusRequestEntityTooLarge, gqlErr("request body too large", "BAD_USER_INPUT"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}

// cors is closed unless origins are configured; credentials are never allowed
// cross-origin (bearer tokens only).
func cors(origins []string, next http.Handler) http.Handler {
	allowed := map[string]bool{}
	for _, o := range origins {
		allowed[o] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && allowed[origin] {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Vary", "Origin")
			if r.Method == http.MethodOptions {
				w.Header().Set("Access-Control-Allow-Methods", "POST")
				w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				w.Header().Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

type reqIDKey struct{}

// RequestID returns the ID of the request being served.
func RequestID(ctx context.Context) string { s, _ := ctx.Value(reqIDKey{}).(string); return s }

// logRequests gives every request an ID (echoed as X-Request-ID) and logs
// method, path, status and duration: no query strings, bodies or tokens,
// which could carry personal data.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		ctx := context.WithValue(r.Context(), reqIDKey{}, id)
		w.Header().Set("X-Request-ID", id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rec, r.WithContext(ctx))
		lvl := slog.LevelInfo
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			lvl = slog.LevelDebug
		}
		log.Log(ctx, lvl, "request", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "duration_ms", time.Since(start).Milliseconds())
	})
}

// LogHandler adds the request ID to every log record made with a request context.
type LogHandler struct{ slog.Handler }

func (h LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}
func (h LogHandler) WithAttrs(a []slog.Attr) slog.Handler { return LogHandler{h.Handler.WithAttrs(a)} }
func (h LogHandler) WithGroup(n string) slog.Handler      { return LogHandler{h.Handler.WithGroup(n)} }

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int)        { s.status = code; s.ResponseWriter.WriteHeader(code) }
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func gqlErr(msg, code string) map[string]any {
	return map[string]any{"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": code}}}, "data": nil}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// InProcessClient routes requests for prefix to h without the network, and
// everything else through the default transport. Dev mode verifies its own
// issuer's tokens this way, whatever address the server listens on.
func InProcessClient(prefix string, h http.Handler) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasPrefix(r.URL.String(), prefix) {
			rec := httptest.NewRecorder()
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimPrefix(r.URL.String(), prefix)
			if i := strings.IndexByte(r2.URL.Path, '?'); i >= 0 {
				r2.URL.Path = r2.URL.Path[:i]
			}
			r2.RequestURI = r2.URL.Path
			h.ServeHTTP(rec, r2)
			return rec.Result(), nil
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
