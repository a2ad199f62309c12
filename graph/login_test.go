package graph_test

// Browser login (invariant 1, docs/admins.md "Browser login"): home-realm discovery,
// authorization code flow with PKCE (S256), state and nonce, the callback,
// the server-side session cookie and logout, driven end to end by a cookie
// jar browser that does not follow redirects by itself, against the real
// service and real in-process OIDC issuers (see signin_test.go for siEnv).

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// lgBrowser is a browser: it keeps cookies and lets the test follow each
// redirect itself.
type lgBrowser struct {
	c   *http.Client
	jar *cookiejar.Jar
}

func lgNewBrowser(t *testing.T) *lgBrowser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &lgBrowser{jar: jar, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type lgResp struct {
	Status int
	Header http.Header
	Body   []byte
	Res    *http.Response
}

func (r lgResp) location(t *testing.T) *url.URL {
	t.Helper()
	if r.Status != http.StatusFound {
		t.Fatalf("status %d, want 302: %s", r.Status, r.Body)
	}
	u, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatalf("Location %q: %v", r.Header.Get("Location"), err)
	}
	return u
}

func (r lgResp) cookie(name string) *http.Cookie {
	for _, c := range r.Res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (b *lgBrowser) do(t *testing.T, req *http.Request) lgResp {
	t.Helper()
	if req.Method == http.MethodPost && req.Header.Get("Origin") == "" {
		// A browser sends the page's origin with every POST: here, a page of
		// the service itself.
		req.Header.Set("Origin", req.URL.Scheme+"://"+req.URL.Host)
	}
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return lgResp{Status: res.StatusCode, Header: res.Header, Body: body, Res: res}
}

// raw is one GET straight through the transport with the jar's cookies, for
// responses the http.Client refuses to read (a Location it cannot parse).
func (b *lgBrowser) raw(t *testing.T, u string) lgResp {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return lgResp{Status: res.StatusCode, Header: res.Header, Body: body, Res: res}
}

func (b *lgBrowser) get(t *testing.T, u string) lgResp {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, req)
}

// graphql posts a query with whatever cookies the browser holds (no bearer).
func (b *lgBrowser) graphql(t *testing.T, e *siEnv, query string) testkit.Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequest(http.MethodPost, e.api.Server.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	r := b.do(t, req)
	var out testkit.Response
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("status %d, body %s", r.Status, r.Body)
	}
	out.Status = r.Status
	return out
}

// startLogin is GET /auth/login?…; it returns the provider's authorization URL.
func (b *lgBrowser) startLogin(t *testing.T, e *siEnv, q url.Values) *url.URL {
	t.Helper()
	r := b.get(t, e.api.Server.URL+"/auth/login?"+q.Encode())
	return r.location(t)
}

// authorize takes the browser to the provider, which logs in as user, and
// returns the callback URL it redirects back to.
func (b *lgBrowser) authorize(t *testing.T, iss *oidcissuer.Issuer, to *url.URL, user oidcissuer.User) *url.URL {
	t.Helper()
	iss.QueueLogin(user)
	cb := b.get(t, to.String()).location(t)
	return cb
}

// loginTo runs the flow as far as the callback URL, with tamper applied to
// the authorization request on its way to the provider.
func (b *lgBrowser) loginTo(t *testing.T, e *siEnv, idp *testkit.Provider, email string, user oidcissuer.User, tamper func(url.Values)) *url.URL {
	t.Helper()
	to := b.startLogin(t, e, url.Values{"email": {email}})
	if tamper != nil {
		q := to.Query()
		tamper(q)
		to.RawQuery = q.Encode()
	}
	return b.authorize(t, idp.Issuer, to, user)
}

func lgUser(sub, email string) oidcissuer.User {
	return oidcissuer.User{Subject: sub, Email: email, EmailVerified: true, GivenName: "Browser", FamilyName: "User"}
}

func (e *siEnv) sessions(t *testing.T) int {
	t.Helper()
	return e.count(t, `SELECT count(*) FROM sessions`)
}

// lgRefusedCallback asserts a callback is refused with status and leaves no
// session cookie, no session row and no learner behind.
func lgRefusedCallback(t *testing.T, e *siEnv, b *lgBrowser, cb string, status int) {
	t.Helper()
	sessions, learners := e.sessions(t), e.count(t, `SELECT count(*) FROM learners`)
	r := b.get(t, cb)
	if r.Status != status {
		t.Fatalf("callback: status %d, want %d: %s", r.Status, status, r.Body)
	}
	if c := r.cookie("rollcall_session"); c != nil && c.Value != "" {
		t.Fatalf("refused callback set a session cookie")
	}
	if n := e.sessions(t); n != sessions {
		t.Fatalf("refused callback created a session: %d -> %d", sessions, n)
	}
	if n := e.count(t, `SELECT count(*) FROM learners`); n != learners {
		t.Fatalf("refused callback changed the learners: %d -> %d", learners, n)
	}
	if r := b.graphql(t, e, `{ viewer { learner { email } } }`); r.Code() != "UNAUTHENTICATED" {
		t.Fatalf("after a refused callback the browser is signed in: %+v", r)
	}
}

func TestLogin_INV1_BrowserCodeFlowEndToEnd(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		b := lgNewBrowser(t)
		start := b.get(t, e.api.Server.URL+"/auth/login?email="+url.QueryEscape("Fay@Kent.gov.uk"))
		to := start.location(t)

		// Home-realm discovery sent the browser to KCC's provider, with PKCE
		// (S256), state and nonce, and our callback.
		if got := to.Scheme + "://" + to.Host + to.Path; got != e.kcc.Issuer.URL()+"/authorize" {
			t.Fatalf("redirected to %s, want KCC's provider %s/authorize", got, e.kcc.Issuer.URL())
		}
		q := to.Query()
		for k, want := range map[string]string{"code_challenge_method": "S256", "response_type": "code",
			"client_id": e.kcc.ClientID, "redirect_uri": e.api.Server.URL + "/auth/callback"} {
			if q.Get(k) != want {
				t.Errorf("authorization request %s=%q, want %q", k, q.Get(k), want)
			}
		}
		for _, k := range []string{"state", "nonce", "code_challenge"} {
			if len(q.Get(k)) < 32 {
				t.Errorf("authorization request %s=%q: missing or short", k, q.Get(k))
			}
		}
		if !strings.Contains(" "+q.Get("scope")+" ", " openid ") {
			t.Errorf("scope %q lacks openid", q.Get("scope"))
		}
		lc := start.cookie("rollcall_login")
		if lc == nil || !lc.HttpOnly || lc.SameSite != http.SameSiteLaxMode || lc.Value == "" {
			t.Fatalf("login cookie %+v, want HttpOnly SameSite=Lax", lc)
		}
		if strings.Contains(to.String(), lc.Value) {
			t.Errorf("the browser secret leaked into the authorization URL")
		}

		cb := b.authorize(t, e.kcc.Issuer, to, lgUser("kcc-fay", "fay@kent.gov.uk"))
		if got := cb.Scheme + "://" + cb.Host + cb.Path; got != e.api.Server.URL+"/auth/callback" {
			t.Fatalf("provider redirected to %s", got)
		}
		if cb.Query().Get("code") == "" || cb.Query().Get("state") != q.Get("state") {
			t.Fatalf("callback %s: want code and the same state", cb)
		}

		done := b.get(t, cb.String())
		if loc := done.location(t); loc.String() != "/" {
			t.Errorf("after login redirected to %q, want /", loc)
		}
		sc := done.cookie("rollcall_session")
		if sc == nil || sc.Value == "" {
			t.Fatalf("no session cookie: %v", done.Header["Set-Cookie"])
		}
		if !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" {
			t.Errorf("session cookie %+v, want HttpOnly SameSite=Lax Path=/", sc)
		}
		if c := done.cookie("rollcall_login"); c == nil || c.MaxAge >= 0 {
			t.Errorf("the login cookie was not cleared: %+v", c)
		}
		// The session is server-side and stored only as a hash.
		if n := e.count(t, `SELECT count(*) FROM sessions WHERE id = ?`, sc.Value); n != 0 {
			t.Errorf("the session token is stored in clear")
		}
		if n := e.sessions(t); n != 1 {
			t.Errorf("%d sessions, want 1", n)
		}

		// The cookie alone authenticates /graphql.
		r := b.graphql(t, e, `{ viewer { learner { email status organisation { name } } } }`)
		var out struct {
			Viewer struct {
				Learner *struct {
					Email        string
					Status       string
					Organisation struct{ Name string }
				}
			}
		}
		r.Decode(t, &out)
		if out.Viewer.Learner == nil || out.Viewer.Learner.Email != "fay@kent.gov.uk" || out.Viewer.Learner.Organisation.Name != siKCC ||
			out.Viewer.Learner.Status != "PENDING_ACCEPTANCE" {
			t.Fatalf("viewer by cookie: %+v", out.Viewer.Learner)
		}

		// Logout revokes the session server-side: the old cookie value no
		// longer authenticates even if a browser kept it.
		req, _ := http.NewRequest(http.MethodPost, e.api.Server.URL+"/auth/logout", nil)
		lo := b.do(t, req)
		if lo.Status != http.StatusNoContent {
			t.Fatalf("logout: status %d, want 204: %s", lo.Status, lo.Body)
		}
		if c := lo.cookie("rollcall_session"); c == nil || c.MaxAge >= 0 {
			t.Errorf("logout did not clear the cookie: %+v", c)
		}
		if r := b.graphql(t, e, `{ viewer { learner { email } } }`); r.Code() != "UNAUTHENTICATED" {
			t.Errorf("after logout: %+v", r)
		}
		kept := lgNewBrowser(t)
		srv, _ := url.Parse(e.api.Server.URL)
		kept.jar.SetCookies(srv, []*http.Cookie{{Name: "rollcall_session", Value: sc.Value, Path: "/"}})
		if r := kept.graphql(t, e, `{ viewer { learner { email } } }`); r.Code() != "UNAUTHENTICATED" {
			t.Errorf("the logged-out session cookie still authenticates: %+v", r)
		}
	})
}

func TestLogin_INV1_ReplayedCallbackRefused(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		b := lgNewBrowser(t)
		cb := b.loginTo(t, e, e.kcc, "gil@kent.gov.uk", lgUser("kcc-gil", "gil@kent.gov.uk"), nil)
		srv, _ := url.Parse(e.api.Server.URL + "/auth/callback")
		var secret string
		for _, c := range b.jar.Cookies(srv) {
			if c.Name == "rollcall_login" {
				secret = c.Value
			}
		}
		if secret == "" {
			t.Fatal("no login cookie for /auth")
		}
		if r := b.get(t, cb.String()); r.Status != http.StatusFound || r.cookie("rollcall_session") == nil {
			t.Fatalf("first callback: %d %s", r.Status, r.Body)
		}

		// The same callback URL again, even with the login cookie put back:
		// the state is spent.
		attacker := lgNewBrowser(t)
		attacker.jar.SetCookies(srv, []*http.Cookie{{Name: "rollcall_login", Value: secret, Path: "/auth"}})
		lgRefusedCallback(t, e, attacker, cb.String(), http.StatusUnauthorized)
		// And in the original browser (whose login cookie was cleared).
		sessions := e.sessions(t)
		if r := b.get(t, cb.String()); r.Status != http.StatusUnauthorized || r.cookie("rollcall_session") != nil {
			t.Fatalf("replay in the same browser: status %d", r.Status)
		}
		if n := e.sessions(t); n != sessions {
			t.Fatalf("replay created a session")
		}

		// The spent code with a fresh, valid state of the same (logged-out)
		// browser: the provider refuses the code (and PKCE would too).
		req, _ := http.NewRequest(http.MethodPost, e.api.Server.URL+"/auth/logout", nil)
		if r := b.do(t, req); r.Status != http.StatusNoContent {
			t.Fatalf("logout: %d", r.Status)
		}
		fresh := b.startLogin(t, e, url.Values{"email": {"gil@kent.gov.uk"}})
		replay := *cb
		v := replay.Query()
		v.Set("state", fresh.Query().Get("state"))
		replay.RawQuery = v.Encode()
		lgRefusedCallback(t, e, b, replay.String(), http.StatusUnauthorized)
	})
}

func TestLogin_INV1_TamperedOrMissingStateRefused(t *testing.T) {
	for name, mutate := range map[string]func(url.Values){
		"tampered": func(v url.Values) { v.Set("state", v.Get("state")+"x") },
		"missing":  func(v url.Values) { v.Del("state") },
		"empty":    func(v url.Values) { v.Set("state", "") },
		"other":    func(v url.Values) { v.Set("state", strings.Repeat("A", 43)) },
	} {
		t.Run(name, func(t *testing.T) {
			siEach(t, func(t *testing.T, e *siEnv) {
				b := lgNewBrowser(t)
				cb := b.loginTo(t, e, e.kcc, "hal@kent.gov.uk", lgUser("kcc-hal", "hal@kent.gov.uk"), nil)
				q := cb.Query()
				mutate(q)
				cb.RawQuery = q.Encode()
				lgRefusedCallback(t, e, b, cb.String(), http.StatusUnauthorized)
			})
		})
	}
}

func TestLogin_INV1_ProviderErrorMissingCodeOrLateCallbackRefused(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		for name, mutate := range map[string]func(url.Values){
			"provider error": func(v url.Values) { v.Del("code"); v.Set("error", "access_denied") },
			"error and code": func(v url.Values) { v.Set("error", "access_denied") },
			"missing code":   func(v url.Values) { v.Del("code") },
			"forged code":    func(v url.Values) { v.Set("code", strings.Repeat("c", 43)) },
		} {
			t.Run(name, func(t *testing.T) {
				b := lgNewBrowser(t)
				cb := b.loginTo(t, e, e.kcc, "ned@kent.gov.uk", lgUser("kcc-ned", "ned@kent.gov.uk"), nil)
				q := cb.Query()
				mutate(q)
				cb.RawQuery = q.Encode()
				lgRefusedCallback(t, e, b, cb.String(), http.StatusUnauthorized)
			})
		}
		// A login left for longer than it may take.
		b := lgNewBrowser(t)
		cb := b.loginTo(t, e, e.kcc, "ned@kent.gov.uk", lgUser("kcc-ned", "ned@kent.gov.uk"), nil)
		e.api.Clock.Advance(11 * time.Minute)
		lgRefusedCallback(t, e, b, cb.String(), http.StatusUnauthorized)
	})
}

func TestLogin_INV1_CallbackInAnotherBrowserRefused(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		victim := lgNewBrowser(t)
		cb := victim.loginTo(t, e, e.kcc, "ivy@kent.gov.uk", lgUser("kcc-ivy", "ivy@kent.gov.uk"), nil)
		// The callback URL (code and state) delivered to a browser without
		// the login cookie that started it.
		lgRefusedCallback(t, e, lgNewBrowser(t), cb.String(), http.StatusUnauthorized)
		// With someone else's login cookie.
		other := lgNewBrowser(t)
		other.startLogin(t, e, url.Values{"email": {"mal@kent.gov.uk"}})
		cb2 := victim.loginTo(t, e, e.kcc, "ivy@kent.gov.uk", lgUser("kcc-ivy", "ivy@kent.gov.uk"), nil)
		lgRefusedCallback(t, e, other, cb2.String(), http.StatusUnauthorized)
	})
}

func TestLogin_INV1_WrongOrMissingNonceRefused(t *testing.T) {
	// The authorization request is altered on its way to the provider, so
	// the ID token carries another nonce than the one bound to the state;
	// state, PKCE and the code are all genuine.
	for name, mutate := range map[string]func(url.Values){
		"wrong":   func(v url.Values) { v.Set("nonce", strings.Repeat("n", 43)) },
		"missing": func(v url.Values) { v.Del("nonce") },
	} {
		t.Run(name, func(t *testing.T) {
			siEach(t, func(t *testing.T, e *siEnv) {
				b := lgNewBrowser(t)
				cb := b.loginTo(t, e, e.kcc, "jo@kent.gov.uk", lgUser("kcc-jo", "jo@kent.gov.uk"), mutate)
				lgRefusedCallback(t, e, b, cb.String(), http.StatusUnauthorized)
			})
		})
	}
}

func TestLogin_INV1_ProviderVouchingForAnotherPartnerRefused(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		// KCC's provider answers for a Medway address.
		b := lgNewBrowser(t)
		cb := b.loginTo(t, e, e.kcc, "kim@kent.gov.uk", lgUser("kcc-kim", "kim@medway.gov.uk"), nil)
		lgRefusedCallback(t, e, b, cb.String(), http.StatusForbidden)
		// An unverified email.
		u := lgUser("kcc-lee", "lee@kent.gov.uk")
		u.EmailVerified = false
		cb = b.loginTo(t, e, e.kcc, "lee@kent.gov.uk", u, nil)
		lgRefusedCallback(t, e, b, cb.String(), http.StatusForbidden)
	})
}

func TestLogin_INV1_HomeRealmDiscovery(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		b := lgNewBrowser(t)
		at := func(q url.Values) string {
			t.Helper()
			to := b.startLogin(t, e, q)
			return to.Scheme + "://" + to.Host
		}
		if got := at(url.Values{"email": {"a@kent.gov.uk"}}); got != e.kcc.Issuer.URL() {
			t.Errorf("kent.gov.uk -> %s, want KCC's provider", got)
		}
		if got := at(url.Values{"email": {"a@medway.gov.uk"}}); got != e.medway.Issuer.URL() {
			t.Errorf("medway.gov.uk -> %s, want Medway's provider", got)
		}
		if got := at(url.Values{"organisation": {e.org(t, siKCC)}}); got != e.kcc.Issuer.URL() {
			t.Errorf("organisation=KCC -> %s, want KCC's provider", got)
		}
		// The programme's provider serves partners without their own; a
		// partner's own provider still wins.
		prog := e.registerProgramme(t)
		if got := at(url.Values{"email": {"a@ashford.gov.uk"}}); got != prog.Issuer.URL() {
			t.Errorf("ashford.gov.uk -> %s, want the programme's provider", got)
		}
		if got := at(url.Values{"email": {"a@kent.gov.uk"}}); got != e.kcc.Issuer.URL() {
			t.Errorf("kent.gov.uk with a programme provider -> %s, want KCC's own", got)
		}
		// And the programme's provider signs an Ashford learner in.
		cb := b.loginTo(t, e, prog, "ann@ashford.gov.uk", lgUser("prog-ann", "ann@ashford.gov.uk"), nil)
		if r := b.get(t, cb.String()); r.Status != http.StatusFound || r.cookie("rollcall_session") == nil {
			t.Fatalf("programme provider login: %d %s", r.Status, r.Body)
		}
	})
}

func TestLogin_INV1_UnknownDomainAnswersLikeOrganisationWithoutProvider(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		b := lgNewBrowser(t)
		get := func(q url.Values) lgResp {
			t.Helper()
			return b.get(t, e.api.Server.URL+"/auth/login?"+q.Encode())
		}
		// Ashford is an admitted partner without a provider.
		ref := get(url.Values{"email": {"x@ashford.gov.uk"}})
		if ref.Status == http.StatusFound || ref.Status < 400 || ref.Status >= 500 {
			t.Fatalf("known organisation without provider: status %d", ref.Status)
		}
		for name, q := range map[string]url.Values{
			"unknown domain":          {"email": {"x@nowhere-council.gov.uk"}},
			"unknown subdomain":       {"email": {"x@sub.kent.gov.uk"}},
			"without provider by ID":  {"organisation": {e.org(t, siAshf)}},
			"unknown organisation ID": {"organisation": {"0192f3c4-0000-7000-8000-000000000000"}},
			"malformed organisation":  {"organisation": {"kcc"}},
		} {
			r := get(q)
			if r.Status != ref.Status || !bytes.Equal(r.Body, ref.Body) || r.Header.Get("Content-Type") != ref.Header.Get("Content-Type") {
				t.Errorf("%s: %d %s %q, want the same answer as a known organisation without provider: %d %s %q", name,
					r.Status, r.Header.Get("Content-Type"), r.Body, ref.Status, ref.Header.Get("Content-Type"), ref.Body)
			}
			if len(r.Res.Cookies()) != 0 {
				t.Errorf("%s: set cookies %v", name, r.Res.Cookies())
			}
		}
		for _, bad := range []string{"not-an-email", "a@@kent.gov.uk", "Bob <bob@kent.gov.uk>"} {
			if r := get(url.Values{"email": {bad}}); r.Status != http.StatusBadRequest {
				t.Errorf("malformed email %q: status %d, want 400: %s", bad, r.Status, r.Body)
			}
		}
		if r := get(url.Values{}); r.Status != http.StatusBadRequest {
			t.Errorf("neither email nor organisation: status %d, want 400", r.Status)
		}
		if n := e.count(t, `SELECT count(*) FROM login_states`); n != 0 {
			t.Errorf("refused logins stored %d login states", n)
		}
	})
}

func TestLogin_INV1_ReturnToStaysOnTheSite(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		srv, _ := url.Parse(e.api.Server.URL)
		for i, c := range []struct{ returnTo, want string }{
			{"https://evil.example/", "/"},
			{"//evil.example/x", "/"},
			{"/\\evil.example", "/"},
			{"\\\\evil.example", "/"},
			{"javascript:alert(1)", "/"},
			{"/learn/courses?tab=2", "/learn/courses?tab=2"},
			{"/\t/evil.example", ""}, // browsers drop tabs: must not become //evil.example
			{"/\n/evil.example", ""},
		} {
			b := lgNewBrowser(t)
			to := b.startLogin(t, e, url.Values{"email": {"ret@kent.gov.uk"}, "return_to": {c.returnTo}})
			cb := b.authorize(t, e.kcc.Issuer, to, lgUser("kcc-ret", "ret@kent.gov.uk"))
			r := b.raw(t, cb.String())
			if r.Status != http.StatusFound {
				t.Fatalf("return_to %q: status %d %s", c.returnTo, r.Status, r.Body)
			}
			loc := r.Header.Get("Location")
			if c.want != "" && loc != c.want {
				t.Errorf("#%d return_to %q: redirected to %q, want %q", i, c.returnTo, loc, c.want)
			}
			// Whatever the Location, a browser (which strips tabs and
			// newlines and treats \ as /) must land on this site.
			cleaned := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(loc)
			u, err := srv.Parse(cleaned)
			if err != nil || u.Host != srv.Host {
				t.Errorf("#%d return_to %q: Location %q leaves the site (a browser reads %v)", i, c.returnTo, loc, u)
			}
		}
	})
}
