package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// startServe runs `rollcall serve` with env until the test ends; it answers
// the server's base URL and its standard output.
func startServe(t *testing.T, env map[string]string) (string, *syncBuffer, func()) {
	t.Helper()
	addr := env["ROLLCALL_LISTEN"]
	if addr == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close()
		env["ROLLCALL_LISTEN"] = addr
	}
	env["ROLLCALL_LOG_LEVEL"] = "debug"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out, errb syncBuffer
	go func() { done <- run(ctx, []string{"serve"}, envFor(env), &out, &errb) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("serve did not stop")
			}
			if t.Failed() {
				t.Log(errb.String())
			}
			if strings.Contains(errb.String(), "@") {
				t.Errorf("logs contain something that looks like an email address:\n%s", errb.String())
			}
		})
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server not ready: %v\n%s", err, errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr, &out, stop
}

// signInAs picks a demo person on the dev sign-in page, as the page's form
// does, and follows the whole code flow; it answers the page landed on.
func signInAs(t *testing.T, base, person string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	req, _ := http.NewRequest(http.MethodPost, base+"/dev/sign-in", strings.NewReader(url.Values{"person": {person}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	req.Header.Set("Accept", "text/html")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path != "/" {
		t.Fatalf("signing in as %s ended at %s with %d: %s", person, res.Request.URL.Path, res.StatusCode, b)
	}
	return c, string(b)
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// Dev mode you can click through: the sign-in page offers the demo people,
// each signs in through the dev identity provider registered for the demo
// programmes (a learner lands on their home page, an admin on theirs and the
// console), a restart on the same database changes nothing, and the printed
// dev-token command works with the environment it prints.
func TestServe_DevModeDemoPeopleSignInAndHintWorksAsPrinted(t *testing.T) {
	env := map[string]string{"ROLLCALL_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "r.db"), "ROLLCALL_DEV": "1"}
	for round := 1; round <= 2; round++ {
		base, out, stop := startServe(t, env) // the same address both rounds
		_, page := get(t, http.DefaultClient, base+"/")
		for _, want := range []string{"Sign in as Sam Taylor", "Sign in as Alex Morgan", "Sign in as Priya Shah", "Sign in as Jo Evans"} {
			if !strings.Contains(page, want) {
				t.Errorf("round %d: the sign-in page lacks %q", round, want)
			}
		}
		_, home := signInAs(t, base, "kcc-learner")
		for _, want := range []string{"Sam Taylor", "sam.taylor@kent.gov.uk", "Kent County Council", "Connect to Learn"} {
			if !strings.Contains(home, want) {
				t.Errorf("round %d: the KCC learner's home lacks %q", round, want)
			}
		}
		_, home = signInAs(t, base, "wscc-learner")
		if !strings.Contains(home, "West Sussex County Council") || !strings.Contains(home, "Alex Morgan") {
			t.Errorf("round %d: the West Sussex learner's home: %s", round, home)
		}
		for _, admin := range []string{"kcc-org-admin", "ctl-programme-admin"} {
			c, home := signInAs(t, base, admin)
			if !strings.Contains(home, "You are signed in as an administrator") {
				t.Errorf("round %d: %s lands on: %s", round, admin, home)
			}
			if code, console := get(t, c, base+"/console"); code != 200 || !strings.Contains(console, "/assets/console/vendor/graphiql.min.js") {
				t.Errorf("round %d: %s gets the console with %d", round, admin, code)
			}
			if code, sdl := get(t, c, base+"/console/schema.graphql"); code != 200 || !strings.Contains(sdl, "type Query") {
				t.Errorf("round %d: %s gets the schema with %d", round, admin, code)
			}
		}
		if round == 1 {
			hint := out.String()
			m := regexp.MustCompile(`TOKEN=\$\((.*?) go run ./cmd/rollcall dev-token --role BOOTSTRAP\)`).FindStringSubmatch(hint)
			if m == nil || !strings.HasPrefix(m[1], "ROLLCALL_DEV=1") {
				t.Fatalf("the hint's dev-token command lacks ROLLCALL_DEV=1:\n%s", hint)
			}
			printed := map[string]string{}
			for _, kv := range strings.Fields(m[1]) {
				k, v, _ := strings.Cut(kv, "=")
				printed[k] = strings.Trim(v, "'")
			}
			var tok, warn syncBuffer
			if err := run(context.Background(), []string{"dev-token", "--role", "BOOTSTRAP"}, envFor(printed), &tok, &warn); err != nil {
				t.Fatalf("the printed dev-token command fails: %v", err)
			}
			req, _ := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(`{"query":"{ viewer { bootstrapAdmin } }"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok.String()))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if !strings.Contains(string(b), `"bootstrapAdmin":true`) {
				t.Errorf("the printed token is not the bootstrap admin's: %s", b)
			}
		}
		stop()
	}
	// Demo sign-in is set up for one address: another is refused at start
	// with a message saying what to do, not left to fail at sign-in.
	env["ROLLCALL_LISTEN"] = "127.0.0.1:1"
	var out, errb syncBuffer
	err := run(context.Background(), []string{"serve"}, envFor(env), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "serve on that address") {
		t.Fatalf("serving the demo database on another address: %v", err)
	}
}
