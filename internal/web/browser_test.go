package web_test

// The learner's pages and the admin console, driven in Debian's Chromium
// (headless, through the DevTools protocol with chromedp) as a person would:
// sign in through a real OIDC provider (the in-process issuer), accept the
// policies, confirm the minimum age (ONC-2), correct the name (ONC-9),
// download the data (ONC-10), withdraw consent (ONC-8, ONC-5) and find the
// session dead. Every page is checked with axe-core for WCAG 2.2 A and AA
// (zero violations) and photographed into testdata/out/.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/internal/web"
)

const chromiumPath = "/usr/bin/chromium"

// axeTags are the rule sets checked: WCAG 2.0, 2.1 and 2.2 at A and AA.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"}

// browserTools finds Chromium and axe-core. Missing tools fail the test in
// CI (CI is set) and skip it elsewhere, saying how to get them.
func browserTools(t *testing.T) (axeJS string) {
	t.Helper()
	axe := os.Getenv("ROLLCALL_AXE_JS")
	if axe == "" {
		axe = filepath.Join("..", "..", ".cache", "npm", "node_modules", "axe-core", "axe.min.js")
	}
	var missing []string
	if _, err := os.Stat(chromiumPath); err != nil {
		missing = append(missing, chromiumPath+" (apt-get install chromium)")
	}
	b, err := os.ReadFile(axe)
	if err != nil {
		missing = append(missing, axe+" (scripts/ensure-browser-tools.sh)")
	}
	if len(missing) > 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser tests need %s", strings.Join(missing, " and "))
		}
		t.Skipf("browser tests need %s", strings.Join(missing, " and "))
	}
	return string(b)
}

// chrome is one headless Chromium with a fresh profile, watching for
// requests to other origins, script errors and CSP refusals.
type chrome struct {
	t      *testing.T
	ctx    context.Context
	base   string
	axe    string
	outDir string

	mu       sync.Mutex
	allowed  []string // other origins the pages may send the browser to (the identity provider)
	foreign  []string
	problems []string
	download chan string
}

func newChrome(t *testing.T, base, axe, outDir string) *chrome {
	t.Helper()
	// A fresh profile, removed once Chromium has gone (its helpers can
	// still be writing to it as it exits, which t.TempDir would fail on).
	profile, err := os.MkdirTemp("", "rollcall-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1200, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelT()
		cancelC()
		cancelA()
		for i := 0; i < 50 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	c := &chrome{t: t, ctx: ctx, base: base, axe: axe, outDir: outDir, download: make(chan string, 4)}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			u := e.Request.URL
			c.mu.Lock()
			ok := strings.HasPrefix(u, base+"/") || strings.HasPrefix(u, "data:")
			for _, a := range c.allowed {
				ok = ok || strings.HasPrefix(u, a+"/")
			}
			if !ok {
				c.foreign = append(c.foreign, u)
			}
			c.mu.Unlock()
		case *browser.EventDownloadProgress:
			if e.State == browser.DownloadProgressStateCompleted {
				c.download <- e.GUID
			}
		case *cdpruntime.EventExceptionThrown:
			c.mu.Lock()
			c.problems = append(c.problems, "script exception: "+e.ExceptionDetails.Error())
			c.mu.Unlock()
		case *log.EventEntryAdded:
			// A form re-shown with its errors answers 400 or 403, which
			// Chromium logs; an asset that fails to load is a problem.
			expected := strings.HasPrefix(e.Entry.Text, "Failed to load resource: the server responded with a status of 4") &&
				!strings.Contains(e.Entry.URL, "/assets/") && !strings.Contains(e.Entry.URL, "/console/") ||
				strings.Contains(e.Entry.Text, "net::ERR_BLOCKED_BY_CLIENT") // the JavaScript-off test's own blocking
			if e.Entry.Level == log.LevelError && !expected {
				c.mu.Lock()
				c.problems = append(c.problems, "console: "+e.Entry.Text)
				c.mu.Unlock()
			}
		}
	})
	chromedp.ListenBrowser(ctx, func(ev any) {
		if e, ok := ev.(*browser.EventDownloadProgress); ok && e.State == browser.DownloadProgressStateCompleted {
			c.download <- e.GUID
		}
	})
	c.run(network.Enable(), log.Enable())
	return c
}

func (c *chrome) run(actions ...chromedp.Action) {
	c.t.Helper()
	if err := chromedp.Run(c.ctx, actions...); err != nil {
		c.t.Fatalf("browser: %v", err)
	}
}

// submit clicks sel and waits for the next document, of page name.
func (c *chrome) submit(sel, name string) {
	c.t.Helper()
	c.run(chromedp.Evaluate(`window.__rollcallOld = true`, nil), chromedp.Click(sel, chromedp.ByQuery))
	deadline := time.Now().Add(20 * time.Second)
	for {
		var fresh bool
		// Evaluating while the browser navigates can fail; that is not yet
		// an answer.
		err := chromedp.Run(c.ctx, chromedp.Evaluate(`typeof window.__rollcallOld === 'undefined' && document.readyState === 'complete' && !!document.querySelector('main[data-page="`+name+`"]')`, &fresh))
		if err == nil && fresh {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("clicking %s did not lead to page %s (at %s)", sel, name, c.path())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// page waits for the page named name (main[data-page]) to be shown.
func (c *chrome) page(name string) chromedp.Action {
	return chromedp.WaitVisible(`main[data-page="`+name+`"]`, chromedp.ByQuery)
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	var s string
	c.run(chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

func (c *chrome) path() string {
	c.t.Helper()
	var loc string
	c.run(chromedp.Location(&loc))
	u, err := url.Parse(loc)
	if err != nil {
		c.t.Fatal(err)
	}
	return u.Path
}

type axeResult struct {
	Violations []struct {
		ID     string   `json:"id"`
		Impact string   `json:"impact"`
		Help   string   `json:"help"`
		Tags   []string `json:"tags"`
		Nodes  []struct {
			Target []any `json:"target"`
		} `json:"nodes"`
	} `json:"violations"`
	Passes []struct {
		ID string `json:"id"`
	} `json:"passes"`
}

// check runs axe-core on the page for WCAG 2.2 A/AA, fails on any
// violation, photographs the page, and fails on script errors, CSP
// refusals or requests to other origins so far.
func (c *chrome) check(shot string) axeResult {
	c.t.Helper()
	var res axeResult
	tags, _ := json.Marshal(axeTags)
	c.run(
		chromedp.Evaluate(c.axe, nil),
		chromedp.Evaluate(`axe.run(document, {runOnly: {type: 'tag', values: `+string(tags)+`}, resultTypes: ['violations']})`, &res,
			func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }),
	)
	for _, v := range res.Violations {
		var where []string
		for _, n := range v.Nodes {
			where = append(where, fmt.Sprint(n.Target...))
		}
		c.t.Errorf("%s: axe %s (%s): %s at %s", shot, v.ID, v.Impact, v.Help, strings.Join(where, ", "))
	}
	var png []byte
	c.run(chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(c.outDir, shot+".png"), png, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.foreign {
		c.t.Errorf("%s: the page loaded %s from another origin", shot, f)
	}
	for _, p := range c.problems {
		c.t.Errorf("%s: %s", shot, p)
	}
	c.foreign, c.problems = nil, nil
	c.t.Logf("%s: axe found 0 violations of %v (%d passes)", shot, axeTags, len(res.Passes))
	return res
}

func (c *chrome) sessionCookie() *network.Cookie {
	c.t.Helper()
	var cookies []*network.Cookie
	c.run(chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{c.base + "/"}).Do(ctx)
		return err
	}))
	for _, ck := range cookies {
		if ck.Name == "rollcall_session" {
			return ck
		}
	}
	return nil
}

// outDir is where the screenshots go: testdata/out/<test>/<dialect>.
func outDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("testdata", "out", strings.ReplaceAll(t.Name(), "/", "-"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// registerProvider registers a real OIDC issuer as the named organisation's
// provider, as an admin would over the API, with the callback of this
// server.
func registerProvider(t *testing.T, api *testkit.API, orgID string) *oidcissuer.Issuer {
	t.Helper()
	return api.RegisterProvider("", orgID, testkit.ProviderInput{ClientID: "rollcall-web", Secret: "web-secret",
		EmailTrust: "VERIFIED_CLAIM"}).Issuer
}

// TestBrowser_LearnerPath_ONC2_ONC9_ONC10_ONC8_AccessibleAndSessionEnds walks
// a West Sussex learner (Learn Public Health: minimum age 16, erasure on the
// council's approval) through every learner page in Chromium.
func TestBrowser_LearnerPath_ONC2_ONC9_ONC10_ONC8_AccessibleAndSessionEnds(t *testing.T) {
	axe := browserTools(t)
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "onclick.yaml")
			wscc := p.Orgs["West Sussex County Council"]
			iss := registerProvider(t, api, wscc.ID)
			iss.QueueLogin(oidcissuer.User{Subject: "wscc-4411", Email: "alex.morgan@westsussex.gov.uk", EmailVerified: true,
				GivenName: "Alex", FamilyName: "Morgan"})
			base := api.Server.URL
			c := newChrome(t, base, axe, outDir(t))
			c.allowed = []string{iss.URL()}
			downloads := t.TempDir()
			c.run(browser.SetDownloadBehavior(browser.SetDownloadBehaviorBehaviorAllowAndName).
				WithDownloadPath(downloads).WithEventsEnabled(true))

			// Sign in: home-realm discovery by the work email, then the
			// organisation's provider, then the callback, then home.
			c.run(chromedp.Navigate(base+"/"), c.page("signin"))
			c.check("01-sign-in")
			c.run(chromedp.SendKeys("#email", "alex.morgan@westsussex.gov.uk", chromedp.ByQuery))
			c.submit(`form[action="/sign-in"] button`, "home")
			if got := c.path(); got != "/" {
				t.Fatalf("after the callback the learner is at %s, want /", got)
			}
			home := c.text("main")
			for _, want := range []string{"Alex Morgan", "alex.morgan@westsussex.gov.uk", "West Sussex County Council", "All staff",
				"Waiting for you to accept the policies", "Read and accept the policies"} {
				if !strings.Contains(home, want) {
					t.Errorf("home page lacks %q:\n%s", want, home)
				}
			}
			c.check("02-home")

			// Policies: both compulsory versions, with summaries and full
			// texts, and the ONC-2 checkbox with the age in its label.
			c.submit(`a[href="/policies"].govuk-button`, "policies")
			pol := c.text("main")
			for _, want := range []string{"Privacy and Data Protection", "Privacy Policy", "What Learn Public Health stores about you",
				"I confirm I am 16 years old or older", "Course feedback survey"} {
				if !strings.Contains(pol, want) {
					t.Errorf("policies page lacks %q", want)
				}
			}
			c.check("03-policies")
			// Accepting without confirming the age is refused, on the page,
			// in the GOV.UK error summary (ONC-2), and changes nothing.
			c.submit(`form[action="/policies"] button[type=submit]`, "policies")
			if s := c.text(".govuk-error-summary"); !strings.Contains(s, "Confirm you are 16 years old or older") {
				t.Errorf("error summary says %q", s)
			}
			var title string
			c.run(chromedp.Title(&title))
			if !strings.HasPrefix(title, "Error: ") {
				t.Errorf("title %q does not start with Error:", title)
			}
			if n := api.Count(`SELECT count(*) FROM policy_acceptances`); n != 0 {
				t.Fatalf("a refused acceptance recorded %d decisions", n)
			}
			c.check("04-policies-error")
			c.run(chromedp.Click("#confirm-age", chromedp.ByQuery))
			c.submit(`form[action="/policies"] button[type=submit]`, "access")
			if s := c.text("main"); !strings.Contains(s, "You have access") {
				t.Errorf("access page: %s", s)
			}
			var lms string
			c.run(chromedp.AttributeValue(`a.govuk-button--start`, "href", &lms, nil, chromedp.ByQuery))
			if lms != "https://learnpublichealth.westsussex.gov.uk" {
				t.Errorf("LMS link %q", lms)
			}
			c.check("05-access")
			if n := api.Count(`SELECT count(*) FROM learners WHERE status = 'ACTIVE'`); n != 1 {
				t.Fatalf("%d active learners after accepting, want 1", n)
			}
			// The optional policy can be declined without affecting access.
			c.run(chromedp.Navigate(base+"/policies"), c.page("policies"))
			c.submit(`button[name=decision][value=decline]`, "policies")
			if n := api.Count(`SELECT count(*) FROM policy_acceptances WHERE decision = 'DECLINED'`); n != 1 {
				t.Errorf("%d declined decisions, want 1", n)
			}

			// Your details (ONC-9): an empty name is refused on the page;
			// a correction is saved; the email is read-only with the reason.
			c.run(chromedp.Navigate(base+"/details"), c.page("details"))
			c.check("06-details")
			c.run(chromedp.Clear("#given-name", chromedp.ByQuery))
			c.submit(`form[action="/details"] button`, "details")
			if s := c.text(".govuk-error-summary"); !strings.Contains(s, "Enter your given name") {
				t.Errorf("details error summary: %q", s)
			}
			c.check("07-details-error")
			c.run(chromedp.Clear("#given-name", chromedp.ByQuery), chromedp.SendKeys("#given-name", "Alexandra", chromedp.ByQuery))
			c.submit(`form[action="/details"] button`, "details")
			if n := api.Count(api.SQL(`SELECT count(*) FROM learners WHERE given_name = ? AND names_by_person`), "Alexandra"); n != 1 {
				t.Errorf("the corrected name was not saved")
			}
			if s := c.text("main"); !strings.Contains(s, "ask your organisation's e-learning administrator") {
				t.Errorf("details page does not say why the email cannot be changed")
			}
			c.check("08-details-saved")

			// How long we keep your data (GEN-1): the statement and every
			// trigger in force under ONC rules.
			c.run(chromedp.Navigate(base+"/retention"), c.page("retention"))
			ret := c.text("main")
			for _, want := range []string{"as long as you remain a registered user", "ONC-6",
				"If you withdraw consent, your access ends at once. Your data is then erased once your organisation",
				"If your organisation tells us you have left", "If you ask for your data to be erased"} {
				if !strings.Contains(ret, want) {
					t.Errorf("retention page lacks %q:\n%s", want, ret)
				}
			}
			c.check("09-retention")

			// Download your data (ONC-10): a real download of one JSON file.
			c.run(chromedp.Navigate(base+"/data"), c.page("data"))
			c.check("10-data")
			c.run(chromedp.Click(`a[href="/data/download"]`, chromedp.ByQuery))
			select {
			case guid := <-c.download:
				b, err := os.ReadFile(filepath.Join(downloads, guid))
				if err != nil {
					t.Fatal(err)
				}
				var doc map[string]any
				if err := json.Unmarshal(b, &doc); err != nil {
					t.Fatalf("the download is not JSON: %v", err)
				}
				if !strings.Contains(string(b), "Alexandra") || doc["format"] != "rollcall.personal-data/1" {
					t.Errorf("the download lacks the learner's data: %.300s", b)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("no download completed")
			}

			// Withdraw consent: the confirmation says what happens under
			// ONC-5 (erasure on the council's approval); then access ends.
			old := c.sessionCookie()
			if old == nil {
				t.Fatal("no session cookie")
			}
			c.run(chromedp.Navigate(base+"/withdraw"), c.page("withdraw"))
			if s := c.text("main"); !strings.Contains(s, "your data is erased once West Sussex County Council approves the erasure") {
				t.Errorf("withdraw page does not say what happens: %s", s)
			}
			c.check("11-withdraw")
			c.submit(`form[action="/withdraw"] button`, "ended")
			if s := c.text("main"); !strings.Contains(s, "You withdrew consent") {
				t.Errorf("ended page: %s", s)
			}
			c.check("12-withdrawn")
			if n := api.Count(`SELECT count(*) FROM learners WHERE status = 'WITHDRAWN'`); n != 1 {
				t.Errorf("%d withdrawn learners, want 1", n)
			}
			if n := api.Count(`SELECT count(*) FROM data_requests WHERE status = 'AWAITING_APPROVAL'`); n != 1 {
				t.Errorf("%d erasure requests awaiting approval, want 1 (ONC-5)", n)
			}

			// The session is dead: the browser has no cookie, the old
			// cookie no longer works for pages or for /graphql.
			if c.sessionCookie() != nil {
				t.Error("the session cookie is still set after withdrawal")
			}
			c.run(chromedp.Navigate(base+"/details"), c.page("signin"))
			c.run(chromedp.ActionFunc(func(ctx context.Context) error {
				return network.SetCookie(old.Name, old.Value).WithURL(base + "/").WithHTTPOnly(true).Do(ctx)
			}), chromedp.Navigate(base+"/details"), c.page("ended"))
			if s := c.text("h1"); s != "You have been signed out" {
				t.Errorf("an old session's page says %q", s)
			}
			c.check("13-session-ended")
			req, _ := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(`{"query":"{ viewer { learner { id } } }"}`))
			req.Header.Set("Content-Type", "application/json")
			req.AddCookie(&http.Cookie{Name: old.Name, Value: old.Value})
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out testkit.Response
			_ = json.NewDecoder(res.Body).Decode(&out)
			res.Body.Close()
			if out.Code() != "UNAUTHENTICATED" {
				t.Errorf("the old session still reaches /graphql as the learner: %s %+v", out.Data, out.Errors)
			}
		})
	}
}

// TestBrowser_AdminConsole_OfflineSDLSchemaNoLocalStorage signs an
// organisation admin in with a browser session and runs a query in the
// console: every asset from this server, the schema from the embedded SDL
// (no introspection query is sent), nothing in localStorage.
func TestBrowser_AdminConsole_OfflineSDLSchemaNoLocalStorage(t *testing.T) {
	axe := browserTools(t)
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "onclick.yaml")
			wscc := p.Orgs["West Sussex County Council"]
			iss := registerProvider(t, api, wscc.ID)
			api.MustDo(api.BootstrapToken(), `mutation($in: GrantRoleInput!) { grantRole(input: $in) { id } }`,
				map[string]any{"in": map[string]any{"programmeId": p.ID, "role": "ORGANISATION_ADMIN", "organisationId": wscc.ID,
					"issuer": iss.URL(), "subject": "wscc-admin-7"}}, &struct{}{})
			iss.QueueLogin(oidcissuer.User{Subject: "wscc-admin-7", Email: "robin.hale@westsussex.gov.uk", EmailVerified: true,
				GivenName: "Robin", FamilyName: "Hale"})
			base := api.Server.URL
			c := newChrome(t, base, axe, outDir(t))
			var bodies []string
			var mu sync.Mutex
			chromedp.ListenTarget(c.ctx, func(ev any) {
				if e, ok := ev.(*network.EventRequestWillBeSent); ok && strings.HasSuffix(e.Request.URL, "/graphql") {
					mu.Lock()
					for _, entry := range e.Request.PostDataEntries {
						b, _ := base64.StdEncoding.DecodeString(entry.Bytes)
						bodies = append(bodies, string(b))
					}
					mu.Unlock()
				}
			})
			c.allowed = []string{iss.URL()}
			c.run(chromedp.Navigate(base+"/"), c.page("signin"),
				chromedp.SendKeys("#email", "robin.hale@westsussex.gov.uk", chromedp.ByQuery))
			c.submit(`form[action="/sign-in"] button`, "admin")
			if n := api.Count(`SELECT count(*) FROM learners`); n != 0 {
				t.Errorf("signing an admin in provisioned %d learners", n)
			}
			c.check("01-admin-home")
			c.submit(`a[href="/console"].govuk-button`, "console")
			c.run(chromedp.WaitVisible(".graphiql-container", chromedp.ByQuery),
				chromedp.Click(".graphiql-execute-button", chromedp.ByQuery))
			var result string
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(result, "Learn Public Health") && time.Now().Before(deadline) {
				c.run(chromedp.Sleep(200*time.Millisecond),
					chromedp.Evaluate(`(document.querySelector('.graphiql-response') || {}).innerText || ''`, &result))
			}
			if !strings.Contains(result, "Learn Public Health") || !strings.Contains(result, "ORGANISATION_ADMIN") {
				t.Fatalf("the console's query answered %q", result)
			}
			var stored int
			c.run(chromedp.Evaluate(`localStorage.length`, &stored))
			if stored != 0 {
				var keys string
				c.run(chromedp.Evaluate(`Object.keys(localStorage).join(',')`, &keys))
				t.Errorf("the console wrote %d localStorage entries: %s", stored, keys)
			}
			mu.Lock()
			for _, b := range bodies {
				if strings.Contains(b, "__schema") || strings.Contains(b, "IntrospectionQuery") {
					t.Errorf("the console sent an introspection query: %.200s", b)
				}
			}
			if len(bodies) == 0 {
				t.Error("the console sent no query")
			}
			mu.Unlock()
			c.check("02-console")
		})
	}
}

// The pages no walk above reaches: dev mode's sign-in page with its demo
// people, the signed-out page and the not-found page, each checked by axe.
func TestBrowser_DevSignInAndPlainPages_Accessible(t *testing.T) {
	axe := browserTools(t)
	api := testkit.NewAPI(t, testkit.Dialects[0])
	var h http.Handler
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	base := "http://" + srv.Listener.Addr().String()
	h = web.New(web.Deps{Service: api.Service, PublicURL: base, Dev: &web.DevSignIn{People: []web.DevPerson{
		{Key: "a", Name: "Sam Taylor", Description: "A learner at Kent County Council (sam.taylor@kent.gov.uk)"},
		{Key: "b", Name: "Jo Evans", Description: "A programme admin of Connect to Learn (jo.evans@kent.gov.uk)"},
	}}})
	srv.Start()
	t.Cleanup(srv.Close)
	c := newChrome(t, base, axe, outDir(t))
	c.run(chromedp.Navigate(base+"/"), c.page("signin"))
	if s := c.text("main"); !strings.Contains(s, "Sign in as Sam Taylor") || !strings.Contains(s, "Demo people (dev mode)") {
		t.Errorf("the dev sign-in page: %s", s)
	}
	c.check("01-dev-sign-in")
	c.run(chromedp.Navigate(base+"/signed-out"), c.page("signedout"))
	c.check("02-signed-out")
	c.run(chromedp.Navigate(base+"/no-such-page"), c.page("problem"))
	if s := c.text("h1"); s != "Page not found" {
		t.Errorf("the not-found page says %q", s)
	}
	c.check("03-not-found")
}

// The pages work with JavaScript off: sign in, accept with the age
// confirmation, correct the name.
func TestBrowser_JavaScriptOff_SignInAcceptRename(t *testing.T) {
	axe := browserTools(t)
	api := testkit.NewAPI(t, testkit.Dialects[0])
	p := testkit.SeedExample(t, api.Service, "onclick.yaml")
	iss := registerProvider(t, api, p.Orgs["West Sussex County Council"].ID)
	iss.QueueLogin(oidcissuer.User{Subject: "nojs-1", Email: "chris.bell@westsussex.gov.uk", EmailVerified: true, GivenName: "Chris", FamilyName: "Bell"})
	base := api.Server.URL
	c := newChrome(t, base, axe, outDir(t))
	c.allowed = []string{iss.URL()}
	// The pages have no inline scripts (CSP), so blocking their script files
	// is JavaScript off for them. (Turning script execution off in the
	// browser would also stop the test's own DOM queries.)
	c.run(network.SetBlockedURLs().WithURLPatterns([]*network.BlockPattern{
		{URLPattern: "*://*:*/*.js", Block: true}, {URLPattern: "*://*:*/*.mjs", Block: true}}), chromedp.Navigate(base+"/"), c.page("signin"),
		chromedp.SendKeys("#email", "chris.bell@westsussex.gov.uk", chromedp.ByQuery))
	c.submit(`form[action="/sign-in"] button`, "home")
	var ran bool
	c.run(chromedp.Evaluate(`document.body.classList.contains('govuk-frontend-supported')`, &ran))
	if ran {
		t.Fatal("the page's scripts ran: JavaScript is not off")
	}
	c.run(chromedp.Navigate(base+"/policies"), c.page("policies"), chromedp.Click("#confirm-age", chromedp.ByQuery))
	c.submit(`form[action="/policies"] button[type=submit]`, "access")
	c.run(chromedp.Navigate(base+"/details"), c.page("details"),
		chromedp.Clear("#family-name", chromedp.ByQuery), chromedp.SendKeys("#family-name", "Bell-Ward", chromedp.ByQuery))
	c.submit(`form[action="/details"] button`, "details")
	if n := api.Count(api.SQL(`SELECT count(*) FROM learners WHERE status = 'ACTIVE' AND family_name = ?`), "Bell-Ward"); n != 1 {
		t.Fatalf("with JavaScript off the learner is not active and renamed (%d)", n)
	}
	c.check("01-details-saved-without-javascript")
}
