// Package web serves the learner's pages and the admin console: server-side
// HTML (html/template) in the GOV.UK Design System's markup, with
// govuk-frontend's compiled CSS, JS, fonts and images embedded in the binary.
// The pages work with JavaScript off. Every change a page makes goes through
// the same lifecycle service methods the GraphQL mutations call
// (AcceptPolicies, UpdateMyProfile, WithdrawConsent, RequestErasure, MyData),
// so no rule is decided here.
//
// Every POST carries a CSRF token derived from the session and must come from
// this service's own origin; pages are never cached and carry a strict
// Content-Security-Policy; errors are shown in the GOV.UK error summary
// pattern. URLs and logs carry no personal data.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/auth"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// DevPerson is a demo identity offered on the dev-mode sign-in page.
type DevPerson struct {
	Key         string // form value; not personal data
	Name        string
	Description string
}

// DevSignIn is dev mode's click-through sign-in: Choose arranges for the dev
// identity provider to sign the next login in as the person, and answers the
// organisation whose provider to start the login with.
type DevSignIn struct {
	People []DevPerson
	Choose func(key string) (organisationID string, err error)
}

// Deps are what the pages are built from.
type Deps struct {
	Service   *lifecycle.Service
	Log       *slog.Logger
	PublicURL string // its origin is the only one POSTs are accepted from
	// SDL is the GraphQL schema the console shows (from the SDL embedded in
	// the binary; introspection is not used).
	SDL string
	// StartLogin begins the OIDC code flow (server's /auth/login): on success
	// it has written the redirect; on error it has written nothing.
	StartLogin func(w http.ResponseWriter, r *http.Request, email, organisationID, returnTo string) error
	Dev        *DevSignIn // nil outside dev mode
}

// Handler serves the pages.
type Handler struct {
	d      Deps
	mux    *http.ServeMux
	pages  map[string]*template.Template
	origin string
	secure bool
}

var pageNames = []string{"signin", "home", "admin", "refused", "policies", "access", "details", "retention", "data",
	"withdraw", "erasure", "ended", "signedout", "problem", "console"}

// New builds the handler; it panics if an embedded template is broken (a
// build mistake, caught by every test).
func New(d Deps) *Handler {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{d: d, mux: http.NewServeMux(), pages: map[string]*template.Template{}}
	if u, err := url.Parse(d.PublicURL); err == nil {
		h.origin = u.Scheme + "://" + u.Host
		h.secure = u.Scheme == "https"
	}
	for _, name := range pageNames {
		h.pages[name] = template.Must(template.New("layout.tmpl").Funcs(funcs).ParseFS(templateFS, "templates/layout.tmpl", "templates/"+name+".tmpl"))
	}
	govuk, _ := fs.Sub(assetFS, "assets/govuk")
	own, _ := fs.Sub(assetFS, "assets/rollcall")
	console, _ := fs.Sub(assetFS, "assets/console")
	h.mux.Handle("GET /assets/rollcall/", assets(http.StripPrefix("/assets/rollcall/", http.FileServerFS(own))))
	h.mux.Handle("GET /assets/console/", assets(http.StripPrefix("/assets/console/", http.FileServerFS(console))))
	h.mux.Handle("GET /assets/", assets(http.StripPrefix("/assets/", http.FileServerFS(govuk))))
	h.mux.Handle("GET /favicon.ico", assets(http.StripPrefix("/", http.FileServerFS(mustSub(govuk, "images")))))

	h.mux.HandleFunc("GET /{$}", h.home)
	h.mux.HandleFunc("POST /sign-in", h.signIn)
	h.mux.HandleFunc("POST /dev/sign-in", h.devSignIn)
	h.mux.HandleFunc("GET /policies", h.learner(h.policies))
	h.mux.HandleFunc("POST /policies", h.learnerPost(h.acceptPolicies))
	h.mux.HandleFunc("POST /policies/optional", h.learnerPost(h.decideOptional))
	h.mux.HandleFunc("GET /access", h.learner(h.access))
	h.mux.HandleFunc("GET /details", h.learner(h.details))
	h.mux.HandleFunc("POST /details", h.learnerPost(h.saveDetails))
	h.mux.HandleFunc("GET /retention", h.learner(h.retention))
	h.mux.HandleFunc("GET /data", h.learner(h.data))
	h.mux.HandleFunc("GET /data/download", h.learner(h.download))
	h.mux.HandleFunc("GET /withdraw", h.learner(h.withdrawPage))
	h.mux.HandleFunc("POST /withdraw", h.learnerPost(h.withdraw))
	h.mux.HandleFunc("GET /erasure", h.learner(h.erasurePage))
	h.mux.HandleFunc("POST /erasure", h.learnerPost(h.erasure))
	h.mux.HandleFunc("POST /sign-out", h.signOut)
	h.mux.HandleFunc("GET /ended", h.ended)
	h.mux.HandleFunc("GET /signed-out", h.signedOut)
	h.mux.HandleFunc("GET /console", h.console)
	h.mux.HandleFunc("GET /console/schema.graphql", h.consoleSchema)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.problem(w, r, http.StatusNotFound, "problem.notfound", "problem.notfound.body")
	})
	return h
}

type navLink struct {
	Active      bool
	Href, Label string
}

type formField struct {
	Field, Label, Value, Autocomplete string
	Msg, Prefix                       string
}

var funcs = template.FuncMap{
	"navItem": func(p *page, key, href string) navLink {
		return navLink{Active: p.Nav == key, Href: href, Label: p.T("nav." + key)}
	},
	"fieldErr": func(p *page, field string) formField {
		return formField{Field: field, Msg: p.FieldError(field), Prefix: p.T("error.hidden")}
	},
	"input": func(p *page, field, label, value, autocomplete string) formField {
		return formField{Field: field, Label: label, Value: value, Autocomplete: autocomplete, Msg: p.FieldError(field), Prefix: p.T("error.hidden")}
	},
	"deref": deref,
	"decision": func(d *domain.Decision) string {
		if d == nil {
			return ""
		}
		return string(*d)
	},
	// paragraphs shows a policy's plain text with its blank-line breaks as
	// paragraphs; the text is escaped like any other.
	"paragraphs": func(s string) template.HTML {
		var b strings.Builder
		for _, para := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n") {
			if para = strings.TrimSpace(para); para != "" {
				b.WriteString(`<p class="govuk-body">` + template.HTMLEscapeString(para) + "</p>")
			}
		}
		return template.HTML(b.String())
	},
}

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return s
}

// ServeHTTP serves the pages and their assets.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// assets are public, hold no personal data and change only with a release.
func assets(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// pageCSP allows nothing from another origin. formAction is relaxed only on
// the sign-in page, whose form ends in a redirect to the organisation's
// identity provider (browsers apply form-action to redirects too).
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; frame-ancestors 'none'"

// consoleCSP: GraphiQL sets inline styles and ships its fonts as data: URLs.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders go on every page: never cached (pages hold personal
// data), no framing, no sniffing, no referrer to other sites.
func securityHeaders(w http.ResponseWriter, csp string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: under no-referrer browsers send
	// "Origin: null" with same-origin POSTs, which the Origin check refuses.
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
}

// fieldError is one entry of the error summary; Field is the id of the
// input it links to.
type fieldError struct {
	Field   string
	Message string
}

// page is what every template gets.
type page struct {
	Name     string // the template; tests wait for main[data-page=…]
	Lang     string
	Title    string
	Nav      string
	CSRF     string
	Errors   []fieldError
	SignedIn bool
	Learner  bool
	Staff    bool
	Data     any
}

// T is the templates' way to the text catalogue: {{$.T "key" args}}.
func (p *page) T(key string, args ...any) string { return text(p.Lang, key, args...) }

// FieldError is the message for one field, "" when it has none.
func (p *page) FieldError(field string) string {
	for _, e := range p.Errors {
		if e.Field == field {
			return e.Message
		}
	}
	return ""
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	if p.Lang == "" {
		p.Lang = defaultLang
	}
	p.Name = name
	csp := pageCSP + "; form-action 'self'"
	switch name {
	case "signin":
		csp = pageCSP
	case "console":
		csp = consoleCSP
	}
	securityHeaders(w, csp)
	var buf strings.Builder
	if err := h.pages[name].Execute(&buf, p); err != nil {
		h.d.Log.ErrorContext(r.Context(), "page template failed", "page", name, "err", err.Error())
		http.Error(w, text(p.Lang, "problem.internal"), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// problem renders a plain page with a title and a body message.
func (h *Handler) problem(w http.ResponseWriter, r *http.Request, status int, titleKey, bodyKey string) {
	p := &page{Title: text(defaultLang, titleKey), Data: text(defaultLang, bodyKey)}
	h.render(w, r, status, "problem", p)
}

// Problem shows an error from the sign-in flow (server's /auth/*) to a
// browser as a page instead of JSON.
func (h *Handler) Problem(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, lifecycle.ErrNoSignIn):
		h.problem(w, r, http.StatusNotFound, "problem.title", "problem.nosso")
	case apperr.CodeOf(err) == apperr.Forbidden && reasonOf(err) == "ACCESS_ENDED":
		h.render(w, r, http.StatusForbidden, "ended", &page{Title: text(defaultLang, "ended.title"), Data: endedData{Message: text(defaultLang, "ended.account")}})
	case apperr.CodeOf(err) == apperr.Forbidden:
		h.render(w, r, http.StatusForbidden, "refused", &page{Title: text(defaultLang, "home.refused.title"), Data: refusal(err)})
	case apperr.CodeOf(err) == apperr.Unauthenticated || apperr.CodeOf(err) == apperr.BadUserInput:
		h.problem(w, r, http.StatusUnauthorized, "problem.title", "problem.signin")
	default:
		h.d.Log.ErrorContext(r.Context(), "sign-in failed", "err", err.Error())
		h.problem(w, r, http.StatusInternalServerError, "problem.title", "problem.internal")
	}
}

func reasonOf(err error) string {
	if ae, ok := apperr.As(err); ok {
		return ae.Reason
	}
	return ""
}

// WantsHTML tells a browser's page request from an API client's.
func WantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// sameOrigin: a POST must come from this service's own pages (a CSRF
// defence beside the token). Browsers send Origin with every POST; without
// it, Sec-Fetch-Site must say same-origin.
func (h *Handler) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return h.origin != "" && o == h.origin
	}
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

// csrfToken binds forms to the session: an HMAC of a fixed label keyed with
// the session token, which only this browser (HttpOnly cookie) and the
// server know.
func csrfToken(session string) string {
	m := hmac.New(sha256.New, []byte(session))
	m.Write([]byte("rollcall form v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *Handler) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: h.secure, SameSite: http.SameSiteLaxMode})
}

// session is a signed-in browser.
type session struct {
	token string
	ctx   context.Context
	actor *domain.Actor
}

type sessionState int

const (
	noSession sessionState = iota
	endedSession
	liveSession
)

// session resolves the cookie to an identity and loads the actor exactly as
// the /graphql middleware does.
func (h *Handler) session(r *http.Request) (*session, sessionState, error) {
	c, err := r.Cookie(auth.SessionCookie)
	if err != nil || c.Value == "" {
		return nil, noSession, nil
	}
	id, ok, err := h.d.Service.SessionIdentity(r.Context(), c.Value)
	if err != nil {
		return nil, noSession, err
	}
	if !ok {
		return nil, endedSession, nil
	}
	ctx := h.d.Service.Authenticate(r.Context(), id) // the sign-in step, as /graphql takes it
	a, err := h.d.Service.Actor(ctx)
	if err != nil {
		return nil, noSession, err
	}
	return &session{token: c.Value, ctx: ctx, actor: a}, liveSession, nil
}

func staff(a *domain.Actor) bool { return a.Bootstrap || len(a.Grants) > 0 }

func (h *Handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	h.d.Log.ErrorContext(r.Context(), "page failed", "path", r.URL.Path, "err", err.Error())
	h.problem(w, r, http.StatusInternalServerError, "problem.title", "problem.internal")
}

func (h *Handler) sessionEnded(w http.ResponseWriter, r *http.Request) {
	h.clearSession(w)
	h.render(w, r, http.StatusOK, "ended", &page{Title: text(defaultLang, "ended.session.title"),
		Data: endedData{Message: text(defaultLang, "ended.session"), SignIn: true}})
}

type learnerFunc func(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page)

// learner guards a learner page: a live session of a learner whose access
// has not ended. Anyone else goes to the page that fits them.
func (h *Handler) learner(fn learnerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, st, err := h.session(r)
		switch {
		case err != nil:
			h.internal(w, r, err)
			return
		case st == noSession:
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		case st == endedSession:
			h.sessionEnded(w, r)
			return
		}
		if s.actor.Learner == nil {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		home, err := h.d.Service.MyHome(s.ctx)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		if ended(home.Learner) {
			h.accountEnded(w, r)
			return
		}
		p := &page{CSRF: csrfToken(s.token), SignedIn: true, Learner: true, Staff: staff(s.actor)}
		fn(w, r, s, home, p)
	}
}

// learnerPost is learner for a form: same origin, a valid CSRF token, then
// the form parsed (bounded).
func (h *Handler) learnerPost(fn learnerFunc) http.HandlerFunc {
	inner := h.learner(fn)
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.sameOrigin(r) {
			h.problem(w, r, http.StatusForbidden, "problem.title", "problem.forbidden")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			h.problem(w, r, http.StatusBadRequest, "problem.title", "problem.method")
			return
		}
		c, err := r.Cookie(auth.SessionCookie)
		if err != nil || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(csrfToken(c.Value))) {
			h.problem(w, r, http.StatusForbidden, "problem.title", "problem.forbidden")
			return
		}
		inner(w, r)
	}
}

// ended: access is over for good (withdrawn, erased) or the learner is
// leaving (a removal other than for inactivity, which signing in cancels).
func ended(l domain.Learner) bool {
	switch l.Status {
	case domain.StatusWithdrawn, domain.StatusErased:
		return true
	case domain.StatusRemovalScheduled:
		return l.RemovalReason == nil || *l.RemovalReason != domain.RemovalInactivity
	}
	return false
}

func (h *Handler) accountEnded(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "ended", &page{Title: text(defaultLang, "ended.title"),
		Data: endedData{Message: text(defaultLang, "ended.account")}})
}

type endedData struct {
	Message string
	SignIn  bool
}

// ---- sign-in

type signinData struct {
	Email string
	Dev   *DevSignIn
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	s, st, err := h.session(r)
	switch {
	case err != nil:
		h.internal(w, r, err)
		return
	case st == noSession:
		h.render(w, r, http.StatusOK, "signin", &page{Title: text(defaultLang, "signin.title"), Data: signinData{Dev: h.d.Dev}})
		return
	case st == endedSession:
		h.sessionEnded(w, r)
		return
	}
	p := &page{CSRF: csrfToken(s.token), SignedIn: true, Staff: staff(s.actor), Nav: "home"}
	if s.actor.Learner == nil {
		if p.Staff {
			p.Title = text(defaultLang, "home.admin.title")
			h.render(w, r, http.StatusOK, "admin", p)
			return
		}
		p.Title = text(defaultLang, "home.refused.title")
		p.Data = refusal(s.actor.SignInErr)
		h.render(w, r, http.StatusForbidden, "refused", p)
		return
	}
	home, err := h.d.Service.MyHome(s.ctx)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if ended(home.Learner) {
		h.accountEnded(w, r)
		return
	}
	p.Learner = true
	p.Title = text(defaultLang, "home.title")
	p.Data = home
	h.render(w, r, http.StatusOK, "home", p)
}

type refusalData struct{ Message string }

func refusal(err error) refusalData {
	if ae, ok := apperr.As(err); ok && ae != nil {
		return refusalData{Message: ae.Message}
	}
	return refusalData{Message: text(defaultLang, "problem.signin")}
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	if !h.sameOrigin(r) {
		h.problem(w, r, http.StatusForbidden, "problem.title", "problem.forbidden")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	email := strings.TrimSpace(r.PostFormValue("email"))
	p := &page{Title: text(defaultLang, "signin.title"), Data: signinData{Email: email, Dev: h.d.Dev}}
	if email == "" {
		p.Errors = []fieldError{{Field: "email", Message: text(defaultLang, "signin.error.empty")}}
		h.render(w, r, http.StatusBadRequest, "signin", p)
		return
	}
	err := h.d.StartLogin(w, r, email, "", "/")
	if err == nil {
		return
	}
	msg := text(defaultLang, "problem.nosso")
	if apperr.CodeOf(err) == apperr.BadUserInput && !errors.Is(err, lifecycle.ErrNoSignIn) {
		if ae, ok := apperr.As(err); ok {
			msg = ae.Message
		}
	} else if c := apperr.CodeOf(err); c != apperr.NotFound && c != apperr.BadUserInput {
		h.d.Log.ErrorContext(r.Context(), "sign-in could not start", "err", err.Error())
		msg = text(defaultLang, "problem.internal")
	}
	p.Errors = []fieldError{{Field: "email", Message: msg}}
	h.render(w, r, http.StatusBadRequest, "signin", p)
}

func (h *Handler) devSignIn(w http.ResponseWriter, r *http.Request) {
	if h.d.Dev == nil {
		h.problem(w, r, http.StatusNotFound, "problem.notfound", "problem.notfound.body")
		return
	}
	if !h.sameOrigin(r) {
		h.problem(w, r, http.StatusForbidden, "problem.title", "problem.forbidden")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	org, err := h.d.Dev.Choose(r.PostFormValue("person"))
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if err := h.d.StartLogin(w, r, "", org, "/"); err != nil {
		h.Problem(w, r, err)
	}
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	if !h.sameOrigin(r) {
		h.problem(w, r, http.StatusForbidden, "problem.title", "problem.forbidden")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	c, err := r.Cookie(auth.SessionCookie)
	if err == nil && c.Value != "" {
		if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(csrfToken(c.Value))) {
			h.problem(w, r, http.StatusForbidden, "problem.title", "problem.forbidden")
			return
		}
		if err := h.d.Service.EndSession(r.Context(), c.Value); err != nil {
			h.internal(w, r, err)
			return
		}
	}
	h.clearSession(w)
	http.Redirect(w, r, "/signed-out", http.StatusSeeOther)
}

func (h *Handler) signedOut(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "signedout", &page{Title: text(defaultLang, "signedout.title")})
}

// ended is where withdrawal and erasure land: the session is already gone.
func (h *Handler) ended(w http.ResponseWriter, r *http.Request) {
	msg := text(defaultLang, "ended.account")
	switch r.URL.Query().Get("why") {
	case "withdrawn":
		msg = text(defaultLang, "ended.withdrawn")
	case "erasure":
		msg = text(defaultLang, "ended.erasure")
	}
	h.render(w, r, http.StatusOK, "ended", &page{Title: text(defaultLang, "ended.title"), Data: endedData{Message: msg}})
}

// ---- policies (CTL-5, ONC-1, ONC-2)

type policiesData struct {
	Home     lifecycle.LearnerHome
	Pending  []lifecycle.PolicyItem
	Accepted []lifecycle.PolicyItem
	NeedsAge bool
	Age      int
	AgeTick  bool
}

func policiesOf(home lifecycle.LearnerHome) policiesData {
	d := policiesData{Home: home, Age: home.Settings.MinimumAge}
	for _, it := range home.Compulsory {
		if it.Decision != nil && *it.Decision == domain.DecisionAccepted {
			d.Accepted = append(d.Accepted, it)
			continue
		}
		d.Pending = append(d.Pending, it)
		d.NeedsAge = d.NeedsAge || it.NeedsAgeConfirmation
	}
	return d
}

func (h *Handler) policies(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page) {
	p.Title, p.Nav, p.Data = text(p.Lang, "policies.title"), "policies", policiesOf(home)
	h.render(w, r, http.StatusOK, "policies", p)
}

func (h *Handler) acceptPolicies(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page) {
	d := policiesOf(home)
	d.AgeTick = r.PostForm.Get("confirm-age") == "yes"
	ids := r.PostForm["version"]
	if len(ids) > 50 {
		ids = ids[:50]
	}
	l, err := h.d.Service.AcceptPolicies(s.ctx, lifecycle.AcceptInput{PolicyVersionIDs: ids, ConfirmMinimumAge: d.AgeTick})
	if err == nil {
		if l.Status == domain.StatusActive {
			http.Redirect(w, r, "/access", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/policies", http.StatusSeeOther)
		return
	}
	fe, ok := policyError(p.Lang, err, home.Settings.MinimumAge)
	if !ok {
		h.internal(w, r, err)
		return
	}
	p.Title, p.Nav, p.Data, p.Errors = text(p.Lang, "policies.title"), "policies", d, []fieldError{fe}
	h.render(w, r, http.StatusBadRequest, "policies", p)
}

// policyError words a refusal of AcceptPolicies for the page.
func policyError(lang string, err error, age int) (fieldError, bool) {
	ae, ok := apperr.As(err)
	if !ok || ae == nil {
		return fieldError{}, false
	}
	switch {
	case ae.Code == apperr.BadUserInput && ae.Field == "confirmMinimumAge":
		return fieldError{Field: "confirm-age", Message: text(lang, "policies.error.age", age)}, true
	case ae.Code == apperr.BadUserInput && ae.Reason == "NOT_CURRENT_VERSION":
		return fieldError{Field: "policies", Message: text(lang, "policies.error.stale")}, true
	case ae.Code == apperr.BadUserInput:
		return fieldError{Field: "policies", Message: text(lang, "policies.error.none")}, true
	case ae.Code == apperr.Conflict || ae.Code == apperr.Forbidden:
		return fieldError{Field: "policies", Message: text(lang, "policies.error.state")}, true
	}
	return fieldError{}, false
}

func (h *Handler) decideOptional(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page) {
	in := lifecycle.AcceptInput{PolicyVersionIDs: []string{r.PostForm.Get("version")}, Decline: r.PostForm.Get("decision") == "decline"}
	if _, err := h.d.Service.AcceptPolicies(s.ctx, in); err != nil {
		fe, ok := policyError(p.Lang, err, home.Settings.MinimumAge)
		if !ok {
			h.internal(w, r, err)
			return
		}
		p.Title, p.Nav, p.Data, p.Errors = text(p.Lang, "policies.title"), "policies", policiesOf(home), []fieldError{fe}
		h.render(w, r, http.StatusBadRequest, "policies", p)
		return
	}
	http.Redirect(w, r, "/policies#optional", http.StatusSeeOther)
}

func (h *Handler) access(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page) {
	if !home.AccessAllowed {
		http.Redirect(w, r, "/policies", http.StatusSeeOther)
		return
	}
	p.Title, p.Nav, p.Data = text(p.Lang, "access.title"), "home", home
	h.render(w, r, http.StatusOK, "access", p)
}

// ---- your details (ONC-9)

type detailsData struct {
	Given, Family string
	Email         string
	Saved         bool
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (h *Handler) details(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page) {
	l := home.Learner
	p.Title, p.Nav = text(p.Lang, "details.title"), "details"
	p.Data = detailsData{Given: deref(l.GivenName), Family: deref(l.FamilyName), Email: deref(l.Email), Saved: r.URL.Query().Get("saved") == "1"}
	h.render(w, r, http.StatusOK, "details", p)
}

func (h *Handler) saveDetails(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page) {
	given, family := r.PostForm.Get("given-name"), r.PostForm.Get("family-name")
	_, err := h.d.Service.UpdateMyProfile(s.ctx, &given, &family)
	if err == nil {
		http.Redirect(w, r, "/details?saved=1", http.StatusSeeOther)
		return
	}
	ae, ok := apperr.As(err)
	if !ok || ae == nil || ae.Code != apperr.BadUserInput {
		if apperr.CodeOf(err) == apperr.Conflict {
			h.accountEnded(w, r)
			return
		}
		h.internal(w, r, err)
		return
	}
	field, label := "given-name", text(p.Lang, "details.given")
	if ae.Field == "familyName" {
		field, label = "family-name", text(p.Lang, "details.family")
	}
	msg := text(p.Lang, "details.error.control", label)
	switch {
	case strings.Contains(ae.Message, "required"):
		msg = text(p.Lang, "details.error."+map[string]string{"given-name": "given", "family-name": "family"}[field])
	case strings.Contains(ae.Message, "at most"):
		msg = text(p.Lang, "details.error.long", label)
	}
	p.Title, p.Nav, p.Errors = text(p.Lang, "details.title"), "details", []fieldError{{Field: field, Message: msg}}
	p.Data = detailsData{Given: given, Family: family, Email: deref(home.Learner.Email)}
	h.render(w, r, http.StatusBadRequest, "details", p)
}

// ---- retention (GEN-1)

type retentionData struct {
	Home     lifecycle.LearnerHome
	Until    string
	Triggers []string
}

func (h *Handler) retention(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page) {
	d := retentionData{Home: home}
	if home.Retention.KeptUntil != nil {
		d.Until = date(*home.Retention.KeptUntil)
	}
	for _, tr := range home.Triggers {
		d.Triggers = append(d.Triggers, triggerText(p.Lang, tr))
	}
	p.Title, p.Nav, p.Data = text(p.Lang, "retention.title"), "retention", d
	h.render(w, r, http.StatusOK, "retention", p)
}

// ---- download (ONC-10)

func (h *Handler) data(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page) {
	p.Title, p.Nav = text(p.Lang, "data.title"), "data"
	h.render(w, r, http.StatusOK, "data", p)
}

func (h *Handler) download(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page) {
	doc, err := h.d.Service.MyData(s.ctx)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		h.internal(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	// No name or email in the file name: it ends up in download lists.
	hd.Set("Content-Disposition", `attachment; filename="my-e-learning-data-`+time.Now().UTC().Format("2006-01-02")+`.json"`)
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

// ---- withdraw consent (CTL-8, ONC-8, ONC-5) and erasure (CTL-11)

type leaveData struct {
	Home       lifecycle.LearnerHome
	Timing     domain.ErasureTiming
	Delay      string
	Controller string
}

func leaveOf(lang string, home lifecycle.LearnerHome, t domain.ErasureTiming) leaveData {
	return leaveData{Home: home, Timing: t, Delay: duration(lang, t.Delay), Controller: home.Organisation}
}

func (h *Handler) withdrawPage(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page) {
	p.Title, p.Data = text(p.Lang, "withdraw.title"), leaveOf(p.Lang, home, home.Withdrawal)
	h.render(w, r, http.StatusOK, "withdraw", p)
}

func (h *Handler) withdraw(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page) {
	_, err := h.d.Service.WithdrawConsent(s.ctx, "")
	h.afterLeaving(w, r, err, "withdrawn")
}

// afterLeaving finishes a withdrawal or an erasure request: the session goes and the
// learner lands on the plain page saying why; an account that had already
// ended (CONFLICT) lands on the page for that.
func (h *Handler) afterLeaving(w http.ResponseWriter, r *http.Request, err error, why string) {
	if err != nil {
		if apperr.CodeOf(err) == apperr.Conflict {
			h.accountEnded(w, r)
			return
		}
		h.internal(w, r, err)
		return
	}
	h.clearSession(w)
	http.Redirect(w, r, "/ended?why="+why, http.StatusSeeOther)
}

func (h *Handler) erasurePage(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page) {
	p.Title, p.Data = text(p.Lang, "erasure.title"), leaveOf(p.Lang, home, home.ErasureAsked)
	h.render(w, r, http.StatusOK, "erasure", p)
}

func (h *Handler) erasure(w http.ResponseWriter, r *http.Request, s *session, home lifecycle.LearnerHome, p *page) {
	_, err := h.d.Service.RequestErasure(s.ctx, "")
	h.afterLeaving(w, r, err, "erasure")
}

// ---- admin console

// console serves GraphiQL from the embedded assets to a signed-in admin.
// The browser session authenticates its /graphql requests (HttpOnly cookie,
// so no token is ever visible to the page or kept in localStorage).
func (h *Handler) console(w http.ResponseWriter, r *http.Request) {
	s, ok := h.staffSession(w, r)
	if !ok {
		return
	}
	h.render(w, r, http.StatusOK, "console", &page{Title: text(defaultLang, "console.title"), CSRF: csrfToken(s.token),
		SignedIn: true, Staff: true, Learner: s.actor.Learner != nil, Nav: "console"})
}

func (h *Handler) consoleSchema(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.staffSession(w, r); !ok {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte(h.d.SDL))
}

func (h *Handler) staffSession(w http.ResponseWriter, r *http.Request) (*session, bool) {
	s, st, err := h.session(r)
	switch {
	case err != nil:
		h.internal(w, r, err)
		return nil, false
	case st == noSession:
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil, false
	case st == endedSession:
		h.sessionEnded(w, r)
		return nil, false
	}
	if !staff(s.actor) {
		h.problem(w, r, http.StatusForbidden, "console.title", "console.notadmin")
		return nil, false
	}
	return s, true
}
