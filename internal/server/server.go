// Package server wires the HTTP surface: /graphql, /healthz, /readyz, the dev
// issuer, and the middleware every request passes (request ID, logging, body
// limit, CORS, authentication). cmd/rollcall and the tests share it.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/graph"
	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/auth"
	"github.com/rollcall-dev/rollcall/internal/config"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/scim"
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
}

// AnonymousBodyBytes bounds the body of a request that carries no valid
// credential. Nothing anonymous needs more: the only anonymous GraphQL a
// client sends is a small query (viewer, sign-in discovery), and /auth/*
// takes no body at all. Memory is bounded before anyone is known.
const AnonymousBodyBytes = 8 << 10

// New returns the service's root handler.
func New(d Deps) http.Handler {
	mux := http.NewServeMux()
	gql := graph.NewHandler(d.Service, graph.HandlerOptions{Dev: d.Config.Dev, Limits: d.Limits, Log: d.Log})
	maxBody := d.Config.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = 16 << 20
	}
	// The order is the point: method and media type, then the credential
	// from the headers, then a body limit sized by what the headers proved,
	// then the one reader of the body (graph.ReadParams in the transport).
	mux.Handle("/graphql", onlyPOSTJSON(maxBody, auth.Middleware(d.Verifier, d.Service.Authenticate,
		d.Service.SessionIdentity, d.Service.APIKeyIdentity, sizedBody(maxBody, gql))))
	mux.Handle(scim.Prefix+"/", scim.New(d.Service, scim.Options{PublicURL: d.Config.PublicURL, Log: d.Log, RequestID: func(r *http.Request) string { return RequestID(r.Context()) }}))
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
			w.Header().Set("Retry-After", strconv.Itoa(apperr.RetryAfter))
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
	h = limitBody(h)
	h = securityHeaders(strings.HasPrefix(d.Config.PublicURL, "https://"), h)
	h = logRequests(d.Log, h)
	return h
}

// securityHeaders go on every response: no MIME sniffing (the JSON is
// written without HTML escaping), no framing (clickjacking), no Referer
// leaving the service (a login URL can carry an email address), no caching
// of anything under /auth/ (the callback sets the session cookie) or of
// /graphql answers, and HSTS when the service is served over https.
func securityHeaders(https bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		if r.URL.Path == "/graphql" || strings.HasPrefix(r.URL.Path, "/auth/") || strings.HasPrefix(r.URL.Path, scim.Prefix+"/") {
			h.Set("Cache-Control", "no-store")
		}
		if https {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// onlyPOSTJSON refuses anything but POST with a JSON body, so no cross-site
// form or GET can reach a mutation, and a declared length over the largest
// body anyone may send, all before the credential is checked. It does not
// read the body.
func onlyPOSTJSON(maxBody int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			apperr.WriteHTTP(w, http.StatusMethodNotAllowed,
				apperr.Invalid("", "use POST with Content-Type: application/json").WithReason("METHOD_NOT_ALLOWED"))
			return
		}
		ct := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
		if ct != "application/json" {
			apperr.WriteHTTP(w, http.StatusUnsupportedMediaType,
				apperr.Invalid("", "Content-Type must be application/json").WithReason("UNSUPPORTED_MEDIA_TYPE"))
			return
		}
		if r.ContentLength > maxBody {
			apperr.WriteHTTP(w, http.StatusRequestEntityTooLarge, graph.ErrBodyTooLarge(maxBody))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sizedBody bounds the body by who is asking: maxBody for a verified
// credential, AnonymousBodyBytes for everyone else. A declared length over
// the bound is refused without reading; a chunked body is cut at the bound
// (graph.ReadParams answers 413).
func sizedBody(maxBody int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int64(AnonymousBodyBytes)
		if auth.Authenticated(r.Context()) {
			n = maxBody
		}
		if r.ContentLength > n {
			apperr.WriteHTTP(w, http.StatusRequestEntityTooLarge, graph.ErrBodyTooLarge(n))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}

// limitBody gives every other path the anonymous bound (none of them reads
// a body; a handler added later cannot be made to buffer megabytes).
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /scim/v2 bounds its body itself (scim.MaxBody) once the token in
		// the headers has been checked, as /graphql does.
		if r.URL.Path != "/graphql" && !strings.HasPrefix(r.URL.Path, scim.Prefix+"/") {
			r.Body = http.MaxBytesReader(w, r.Body, AnonymousBodyBytes)
		}
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

// writeJSON writes a non-error JSON body (health endpoints); errors go
// through apperr.WriteHTTP.
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
