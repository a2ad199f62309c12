package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/auth"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/web"
)

const loginCookie = "rollcall_login"

// ProviderSource makes the database's identity providers an issuer source
// for the verifier.
func ProviderSource(svc *lifecycle.Service) auth.IssuerSource {
	return func(ctx context.Context, issuer string) (auth.Issuer, bool, error) {
		aud, trust, ok, err := svc.IssuerRegistration(ctx, issuer)
		if err != nil || !ok {
			return auth.Issuer{}, ok, err
		}
		return auth.Issuer{URL: issuer, Audiences: []string{aud}, TrustEmail: trust}, true, nil
	}
}

type login struct {
	d      Deps
	secure bool
	pages  *web.Handler // shows a browser its sign-in errors as pages
}

func (l *login) cookie(name, value string, maxAge int, path string) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		Secure: l.secure, SameSite: http.SameSiteLaxMode}
}

// start: GET /auth/login?email=… or ?organisation=ID. Home-realm discovery
// by email domain, then a redirect to that organisation's provider.
func (l *login) start(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := l.begin(w, r, strings.TrimSpace(q.Get("email")), q.Get("organisation"), q.Get("return_to")); err != nil {
		l.fail(w, r, err)
	}
}

// errProviderDown: the organisation's provider could not be discovered.
var errProviderDown = apperr.New(apperr.Internal, "the organisation's sign-in service is unavailable")

// begin starts the code flow (home-realm discovery by email, or an
// organisation ID) and redirects the browser to the provider; on error it
// writes nothing, so the caller (this API, or the sign-in page) answers.
func (l *login) begin(w http.ResponseWriter, r *http.Request, email, organisationID, returnTo string) error {
	ls, err := l.d.Service.BeginLogin(r.Context(), email, organisationID, returnTo)
	if err != nil {
		return err
	}
	scopes := strings.Fields(ls.Provider.Scopes)
	to, err := l.d.Verifier.AuthCodeURL(r.Context(), auth.Client{Issuer: ls.Provider.Issuer, ClientID: ls.Provider.ClientID,
		Scopes: scopes, RedirectURL: l.d.Config.PublicURL + "/auth/callback"}, ls.State, ls.Nonce, ls.Verifier)
	if err != nil {
		l.d.Log.WarnContext(r.Context(), "login: provider unavailable", "provider", ls.Provider.ID)
		return errProviderDown
	}
	http.SetCookie(w, l.cookie(loginCookie, ls.BrowserSecret, int((10*time.Minute)/time.Second), "/auth"))
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther // from the sign-in page's form: the provider wants a GET
	}
	http.Redirect(w, r, to, status)
	return nil
}

// callback: GET /auth/callback?code=…&state=…
func (l *login) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	secret := ""
	if c, err := r.Cookie(loginCookie); err == nil {
		secret = c.Value
	}
	http.SetCookie(w, l.cookie(loginCookie, "", -1, "/auth"))
	fin, err := l.d.Service.FinishLogin(r.Context(), q.Get("state"), secret)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	if q.Get("error") != "" || q.Get("code") == "" {
		l.fail(w, r, apperr.Unauthenticatedf("the identity provider did not sign you in"))
		return
	}
	id, err := l.d.Verifier.Exchange(r.Context(), auth.Client{Issuer: fin.Provider.Issuer, ClientID: fin.Provider.ClientID,
		ClientSecret: fin.ClientSecret, RedirectURL: l.d.Config.PublicURL + "/auth/callback",
		TrustEmail: fin.Provider.EmailTrust == "TRUSTED"}, q.Get("code"), fin.Verifier, fin.Nonce)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	tok, _, err := l.d.Service.StartSession(r.Context(), id)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	http.SetCookie(w, l.cookie(auth.SessionCookie, tok, int(lifecycle.SessionTTL/time.Second), "/"))
	http.Redirect(w, r, fin.ReturnTo, http.StatusFound)
}

// logout: POST /auth/logout revokes the session server-side. The cookie is
// SameSite=Lax, which still lets another site's page navigate here; the
// Origin header (sent by browsers on every POST) must be this service's own.
func (l *login) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r.Header.Get("Origin"), l.d.Config.PublicURL) {
		apperr.WriteHTTP(w, http.StatusForbidden,
			apperr.Forbiddenf("logout must come from this service's own pages (the Origin header must be %s)", origin(l.d.Config.PublicURL)).WithReason("ORIGIN_MISMATCH"))
		return
	}
	if c, err := r.Cookie(auth.SessionCookie); err == nil {
		if err := l.d.Service.EndSession(r.Context(), c.Value); err != nil {
			l.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, l.cookie(auth.SessionCookie, "", -1, "/"))
	w.WriteHeader(http.StatusNoContent)
}

func (l *login) fail(w http.ResponseWriter, r *http.Request, err error) {
	// A browser (the learner following a link or the callback) sees a page,
	// never raw JSON; API clients keep the JSON answer.
	if l.pages != nil && web.WantsHTML(r) {
		l.pages.Problem(w, r, err)
		return
	}
	switch code := apperr.CodeOf(err); {
	case errors.Is(err, errProviderDown):
		apperr.WriteHTTP(w, http.StatusBadGateway, apperr.New(apperr.Unavailable, errProviderDown.Message))
		return
	case errors.Is(err, lifecycle.ErrNoSignIn):
		// One answer for every reason (the reason would tell which domains exist).
		err = apperr.NotFoundf("%s", lifecycle.ErrNoSignIn.Message)
	case code == apperr.Internal:
		if r.Context().Err() != nil {
			l.d.Log.InfoContext(r.Context(), "login: client disconnected")
			return
		}
		l.d.Log.ErrorContext(r.Context(), "login failed", "err", err.Error())
	}
	apperr.WriteHTTP(w, 0, err)
}

// origin is the scheme://host[:port] of an absolute URL.
func origin(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return pu.Scheme + "://" + pu.Host
}

// sameOrigin compares an Origin header with the public URL's origin; a
// missing or "null" Origin is not the same origin.
func sameOrigin(hdr, publicURL string) bool {
	want := origin(publicURL)
	return hdr != "" && want != "" && strings.EqualFold(strings.TrimRight(hdr, "/"), want)
}
