package web_test

// The pages over plain HTTP, on both databases: what a browser is refused
// (a form without its CSRF token or from another origin), what every page
// sends (no-store, CSP), the console's door, sign-in errors shown as pages,
// and the Connect to Learn withdrawal and erasure (erased at once).

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/graph"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

type visitor struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newVisitor(t *testing.T, base string) *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

type reply struct {
	status int
	header http.Header
	body   string
	path   string
}

func (v *visitor) do(req *http.Request) reply {
	v.t.Helper()
	req.Header.Set("Accept", "text/html")
	res, err := v.c.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{status: res.StatusCode, header: res.Header, body: string(b), path: res.Request.URL.Path}
}

func (v *visitor) get(path string) reply {
	req, _ := http.NewRequest(http.MethodGet, v.base+path, nil)
	return v.do(req)
}

// post sends a form as the page would, from origin ("" for none).
func (v *visitor) post(path, origin string, form url.Values) reply {
	req, _ := http.NewRequest(http.MethodPost, v.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return v.do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the page has no CSRF token")
	}
	return m[1]
}

// signIn goes through the sign-in form, the provider and the callback.
func (v *visitor) signIn(iss *oidcissuer.Issuer, u oidcissuer.User) reply {
	v.t.Helper()
	iss.QueueLogin(u)
	r := v.post("/sign-in", v.base, url.Values{"email": {u.Email}})
	if r.status != 200 || r.path != "/" {
		v.t.Fatalf("sign-in ended at %s with %d: %.500s", r.path, r.status, r.body)
	}
	return r
}

type pagesEnv struct {
	api  *testkit.API
	p    testkit.Programme
	iss  *oidcissuer.Issuer
	base string
}

func newPagesEnv(t *testing.T, api *testkit.API, seed, org string) *pagesEnv {
	p := testkit.SeedExample(t, api.Service, seed)
	return &pagesEnv{api: api, p: p, iss: registerProvider(t, api, p.Orgs[org].ID), base: api.Server.URL}
}

func TestPages_CSRFAndOrigin_FormsFromElsewhereChangeNothing(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			e := newPagesEnv(t, testkit.NewAPI(t, d), "onclick.yaml", "West Sussex County Council")
			v := newVisitor(t, e.base)
			v.signIn(e.iss, oidcissuer.User{Subject: "s1", Email: "kim.lee@westsussex.gov.uk", EmailVerified: true, GivenName: "Kim", FamilyName: "Lee"})
			tok := csrfOf(t, v.get("/details").body)
			name := func() int {
				return e.api.Count(e.api.SQL(`SELECT count(*) FROM learners WHERE given_name = ?`), "Mallory")
			}
			form := url.Values{"given-name": {"Mallory"}, "family-name": {"Lee"}}
			if r := v.post("/details", e.base, form); r.status != http.StatusForbidden || !strings.Contains(r.body, "govuk-heading-l") {
				t.Errorf("a form without its token: %d", r.status)
			}
			form.Set("csrf", "not-the-token")
			if r := v.post("/details", e.base, form); r.status != http.StatusForbidden {
				t.Errorf("a form with a wrong token: %d", r.status)
			}
			form.Set("csrf", tok)
			if r := v.post("/details", "https://evil.example", form); r.status != http.StatusForbidden {
				t.Errorf("a form from another origin: %d", r.status)
			}
			if r := v.post("/details", "", form); r.status != http.StatusForbidden {
				t.Errorf("a form with neither Origin nor Sec-Fetch-Site: %d", r.status)
			}
			if r := v.post("/withdraw", "https://evil.example", url.Values{"csrf": {tok}}); r.status != http.StatusForbidden {
				t.Errorf("a withdrawal from another origin: %d", r.status)
			}
			if r := v.post("/sign-out", "https://evil.example", url.Values{"csrf": {tok}}); r.status != http.StatusForbidden {
				t.Errorf("a sign-out from another origin: %d", r.status)
			}
			if name() != 0 || e.api.Count(`SELECT count(*) FROM learners WHERE status = 'WITHDRAWN'`) != 0 {
				t.Fatal("a refused form changed the learner")
			}
			if r := v.post("/details", e.base, form); r.status != 200 || r.path != "/details" || !strings.Contains(r.body, "Your details have been saved") {
				t.Fatalf("the page's own form: %d at %s", r.status, r.path)
			}
			if name() != 1 {
				t.Fatal("the page's own form did not save")
			}
		})
	}
}

func TestPages_EveryPageNoStoreCSPAndNoPersonalDataInURLs(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			e := newPagesEnv(t, testkit.NewAPI(t, d), "onclick.yaml", "West Sussex County Council")
			v := newVisitor(t, e.base)
			home := v.signIn(e.iss, oidcissuer.User{Subject: "s2", Email: "jo.park@westsussex.gov.uk", EmailVerified: true, GivenName: "Jo", FamilyName: "Park"})
			for _, path := range []string{"/", "/policies", "/details", "/retention", "/data", "/withdraw", "/erasure", "/signed-out", "/ended", "/no-such-page"} {
				r := v.get(path)
				if path == "/" {
					r = home
				}
				h := r.header
				if h.Get("Cache-Control") != "no-store" || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") ||
					h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" {
					t.Errorf("%s: headers %v", path, h)
				}
				if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
					t.Errorf("%s: Content-Type %s", path, h.Get("Content-Type"))
				}
				for _, href := range regexp.MustCompile(`(?:href|action|src)="([^"]*)"`).FindAllStringSubmatch(r.body, -1) {
					if strings.Contains(href[1], "@") || strings.Contains(strings.ToLower(href[1]), "park") {
						t.Errorf("%s: a link carries personal data: %s", path, href[1])
					}
				}
			}
			if r := v.get("/no-such-page"); r.status != 404 || !strings.Contains(r.body, "Page not found") {
				t.Errorf("an unknown page: %d", r.status)
			}
			res, err := v.c.Get(e.base + "/data/download")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if cd := res.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || strings.Contains(cd, "park") ||
				res.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Errorf("download headers: %v", res.Header)
			}
			if r := v.get("/assets/govuk-frontend.min.css"); r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
				t.Errorf("the embedded GOV.UK Frontend CSS: %d %s", r.status, r.header.Get("Content-Type"))
			}
		})
	}
}

// The console is for staff with a browser session; its schema is the SDL
// embedded in the binary, while /graphql keeps introspection off.
func TestConsole_StaffOnly_SchemaFromEmbeddedSDL(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			e := newPagesEnv(t, testkit.NewAPI(t, d), "onclick.yaml", "West Sussex County Council")
			anon := newVisitor(t, e.base)
			if r := anon.get("/console"); r.path != "/" || !strings.Contains(r.body, `data-page="signin"`) {
				t.Errorf("anonymous /console ends at %s", r.path)
			}
			if r := anon.get("/console/schema.graphql"); strings.Contains(r.body, "type Query") {
				t.Error("the schema was served without a session")
			}
			learner := newVisitor(t, e.base)
			learner.signIn(e.iss, oidcissuer.User{Subject: "s3", Email: "ali.khan@westsussex.gov.uk", EmailVerified: true})
			if r := learner.get("/console"); r.status != http.StatusForbidden {
				t.Errorf("a learner's /console: %d", r.status)
			}
			if r := learner.get("/console/schema.graphql"); r.status != http.StatusForbidden {
				t.Errorf("a learner's schema: %d", r.status)
			}
			e.api.MustDo(e.api.BootstrapToken(), `mutation($in: GrantRoleInput!) { grantRole(input: $in) { id } }`,
				map[string]any{"in": map[string]any{"programmeId": e.p.ID, "role": "AUDITOR", "issuer": e.iss.URL(), "subject": "s4"}}, &struct{}{})
			staff := newVisitor(t, e.base)
			if r := staff.signIn(e.iss, oidcissuer.User{Subject: "s4", Email: "lee.ray@westsussex.gov.uk", EmailVerified: true}); !strings.Contains(r.body, `data-page="admin"`) {
				t.Errorf("an auditor lands on: %.300s", r.body)
			}
			if n := e.api.Count(`SELECT count(*) FROM learners`); n != 1 {
				t.Errorf("signing staff in provisioned them: %d learners", n)
			}
			if r := staff.get("/console"); r.status != 200 || !strings.Contains(r.body, "/assets/console/console.js") {
				t.Errorf("staff /console: %d", r.status)
			}
			if r := staff.get("/console/schema.graphql"); r.status != 200 || r.body != graph.SDL() {
				t.Errorf("the console's schema is not the embedded SDL (%d, %d bytes)", r.status, len(r.body))
			}
			if r := staff.get("/assets/console/vendor/graphiql.min.js"); r.status != 200 {
				t.Errorf("the embedded GraphiQL: %d", r.status)
			}
			res := e.api.Do(e.api.BootstrapToken(), `{ __schema { types { name } } }`, nil)
			if len(res.Errors) == 0 {
				t.Error("introspection answered outside dev mode")
			}
		})
	}
}

// A browser sees sign-in problems as pages in the GOV.UK error pattern; an
// API client keeps its JSON.
func TestSignIn_ErrorsArePagesForBrowsersJSONForClients(t *testing.T) {
	e := newPagesEnv(t, testkit.NewAPI(t, testkit.Dialects[0]), "onclick.yaml", "West Sussex County Council")
	v := newVisitor(t, e.base)
	r := v.post("/sign-in", e.base, url.Values{"email": {"someone@no-such-council.gov.uk"}})
	if r.status != 400 || !strings.Contains(r.body, "govuk-error-summary") || !strings.Contains(r.body, `href="#email"`) ||
		!strings.Contains(r.body, "Single sign-on is not available") || !strings.Contains(r.body, "<title>Error:") {
		t.Errorf("an unknown domain: %d %.400s", r.status, r.body)
	}
	if r := v.post("/sign-in", e.base, url.Values{"email": {""}}); r.status != 400 || !strings.Contains(r.body, "Enter your work email address") {
		t.Errorf("an empty email: %d", r.status)
	}
	if r := v.get("/auth/callback?state=forged&code=x"); !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(r.body, "We could not sign you in") {
		t.Errorf("a forged callback in a browser: %d %s", r.status, r.header.Get("Content-Type"))
	}
	res, err := http.Get(e.base + "/auth/callback?state=forged&code=x")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("a forged callback from an API client: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// CTL-8 under Connect to Learn (no delay, no approval): the page says the
// data goes at once, and it does; CTL-11: asking for erasure the same way.
func TestPages_CTL8_CTL11_WithdrawAndErasureOnConnectToLearn(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			e := newPagesEnv(t, testkit.NewAPI(t, d), "connect-to-learn.yaml", "Kent County Council")
			one := newVisitor(t, e.base)
			one.signIn(e.iss, oidcissuer.User{Subject: "k1", Email: "sam.taylor@kent.gov.uk", EmailVerified: true, GivenName: "Sam", FamilyName: "Taylor"})
			r := one.get("/withdraw")
			if !strings.Contains(r.body, "your data is erased straight away") {
				t.Errorf("the withdraw page under CTL-8: %.600s", r.body)
			}
			ret := one.get("/retention").body
			// The demo seed has no fixed contract end: the preset counts CTL-6's
			// two years from the day it was seeded, so a year's inactivity
			// (CTL-7) comes first, and the contract end is listed with its date.
			prog, err := e.api.Service.ProgrammeByName(lifecycle.WithSystem(context.Background(), "test"), "Connect to Learn")
			if err != nil || prog.Settings.ContractEndsAt == nil {
				t.Fatalf("the demo programme's contract end: %+v %v", prog.Settings, err)
			}
			end := prog.Settings.ContractEndsAt.UTC().Format("2 January 2006")
			for _, want := range []string{"CTL-7", "If you do not sign in or use a course for a year", end} {
				if !strings.Contains(ret, want) {
					t.Errorf("the retention page lacks %q", want)
				}
			}
			r = one.post("/withdraw", e.base, url.Values{"csrf": {csrfOf(t, r.body)}})
			if r.path != "/ended" || !strings.Contains(r.body, "You withdrew consent") {
				t.Fatalf("after withdrawing: %s", r.path)
			}
			if n := e.api.Count(`SELECT count(*) FROM learners WHERE status = 'ERASED'`); n != 1 {
				t.Fatalf("%d erased learners, want 1 (CTL-8 without delay)", n)
			}
			if r := one.get("/details"); !strings.Contains(r.body, `data-page="signin"`) {
				t.Errorf("after withdrawing, /details shows %s", r.path)
			}

			two := newVisitor(t, e.base)
			two.signIn(e.iss, oidcissuer.User{Subject: "k2", Email: "ray.cole@kent.gov.uk", EmailVerified: true})
			r = two.get("/erasure")
			if !strings.Contains(r.body, "your data is erased straight away") {
				t.Errorf("the erasure page under CTL-11: %.600s", r.body)
			}
			r = two.post("/erasure", e.base, url.Values{"csrf": {csrfOf(t, r.body)}})
			if r.path != "/ended" || !strings.Contains(r.body, "You asked for your data to be erased") {
				t.Fatalf("after asking for erasure: %s", r.path)
			}
			if n := e.api.Count(`SELECT count(*) FROM learners WHERE status = 'ERASED'`); n != 2 {
				t.Fatalf("%d erased learners, want 2", n)
			}
			// Signing in again after the erasure is a fresh sign-in page, not
			// the old session.
			if r := two.get("/"); !strings.Contains(r.body, `data-page="signin"`) {
				t.Errorf("after erasure / shows %.200s", r.body)
			}
		})
	}
}

// The programme's LMS address (the "You have access" link) is a rule
// setting: validated (only plain web addresses), audited, shown to learners.
func TestProgramme_LMSURLSettingValidatedAndLinkedFromHome(t *testing.T) {
	e := newPagesEnv(t, testkit.NewAPI(t, testkit.Dialects[0]), "connect-to-learn.yaml", "Kent County Council")
	set := func(u string) testkit.Response {
		return e.api.Do(e.api.BootstrapToken(), `mutation($p: ID!, $u: String) { updateProgrammeRules(programmeId: $p, input: {lmsUrl: $u, reason: "LMS moved"}) { settings { lmsUrl } } }`,
			map[string]any{"p": e.p.ID, "u": u})
	}
	for _, bad := range []string{"javascript:alert(1)", "http://lms.example.org", "https://user:pw@lms.example.org", "//lms.example.org", "lms.example.org"} {
		if r := set(bad); r.Code() != "BAD_USER_INPUT" || r.Ext("field") != "lmsUrl" {
			t.Errorf("lmsUrl %q: %s %v", bad, r.Code(), r.Errors)
		}
	}
	if n := e.api.Count(`SELECT count(*) FROM audit_entries WHERE action = 'programme.rules.update'`); n != 0 {
		t.Fatalf("refused settings were audited (%d)", n)
	}
	var out struct {
		UpdateProgrammeRules struct{ Settings struct{ LmsURL *string } }
	}
	set("https://learn.kentconnects.example/courses").Decode(t, &out)
	if u := out.UpdateProgrammeRules.Settings.LmsURL; u == nil || *u != "https://learn.kentconnects.example/courses" {
		t.Fatalf("lmsUrl after setting: %v", u)
	}
	v := newVisitor(t, e.base)
	v.signIn(e.iss, oidcissuer.User{Subject: "k9", Email: "pat.doe@kent.gov.uk", EmailVerified: true})
	r := v.get("/policies")
	form := url.Values{"csrf": {csrfOf(t, r.body)}}
	for _, m := range regexp.MustCompile(`name="version" value="([^"]+)"`).FindAllStringSubmatch(r.body, -1) {
		form.Add("version", m[1])
	}
	r = v.post("/policies", e.base, form)
	if r.path != "/access" || !strings.Contains(r.body, `href="https://learn.kentconnects.example/courses"`) {
		t.Fatalf("after accepting: %s %.400s", r.path, r.body)
	}
	if r := v.get("/"); !strings.Contains(r.body, `href="https://learn.kentconnects.example/courses"`) || !strings.Contains(r.body, "You have access") {
		t.Errorf("the home page of an active learner lacks the LMS link")
	}
}
