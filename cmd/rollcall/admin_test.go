package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// startIssuer runs a real OIDC provider (the council's, in this test) on a
// loopback server.
func startIssuer(t *testing.T) *oidcissuer.Issuer {
	t.Helper()
	key, err := oidcissuer.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss := oidcissuer.New(srv.URL, key)
	mux.Handle("/", iss.Handler())
	return iss
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// A first admin without ROLLCALL_BOOTSTRAP_ADMIN, end to end on both
// databases, as docs/admins.md walks it: seed the programme, register the
// council's provider, learn the admin's issuer|subject with whoami, grant
// with `rollcall grant`, and the running service accepts the admin's token as
// a programme admin. A grant to an issuer the installation would never accept
// is refused first, and writes nothing.
func TestFirstAdmin_WhoamiGrantAndSignIn_BothDatabases(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			iss := startIssuer(t)
			addr := freeAddr(t)
			vars := map[string]string{"ROLLCALL_DATABASE_URL": testkit.NewDatabaseURL(t, d), "ROLLCALL_LISTEN": addr,
				"ROLLCALL_ALLOW_INSECURE_ISSUERS": "1", "ROLLCALL_SWEEP_INTERVAL": "0"}
			e := envFor(vars)
			var out, errb bytes.Buffer
			if err := run(ctx, []string{"seed", "../../examples/onclick.yaml"}, e, &out, &errb); err != nil {
				t.Fatal(err)
			}

			tok, err := iss.Mint(oidcissuer.Claims{Subject: "entra-sub-7Qx", Audience: []string{"api://rollcall"},
				Email: "first.admin@westsussex.gov.uk", Expiry: time.Now().Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			out.Reset()
			if err := whoami(nil, strings.NewReader(tok+"\n"), &out); err != nil {
				t.Fatal(err)
			}
			identity := iss.URL() + "|entra-sub-7Qx"
			if !strings.Contains(out.String(), "identity: "+identity+"\n") ||
				!strings.Contains(out.String(), "ROLLCALL_BOOTSTRAP_AUDIENCE='api://rollcall'") {
				t.Fatalf("whoami output:\n%s", out.String())
			}

			grant := []string{"grant", "--programme", "Learn Public Health (West Sussex)", "--role", "PROGRAMME_ADMIN",
				"--issuer", iss.URL(), "--subject", "entra-sub-7Qx"}
			err = run(ctx, grant, e, &out, &errb)
			if err == nil || !strings.HasPrefix(err.Error(), "--issuer:") || !strings.Contains(err.Error(), "rollcall provider add") {
				t.Fatalf("a grant to an unregistered issuer must be refused, naming the fix: %v", err)
			}

			out.Reset()
			if err := run(ctx, []string{"provider", "add", "--programme", "Learn Public Health (West Sussex)", "--issuer", iss.URL(),
				"--client-id", "rollcall-app", "--audience", "api://rollcall", "--email-trust", "TRUSTED"}, e, &out, &errb); err != nil {
				t.Fatal(err)
			}
			out.Reset()
			if err := run(ctx, grant, e, &out, &errb); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "granted PROGRAMME_ADMIN") {
				t.Fatalf("grant output: %q", out.String())
			}

			sctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			var sout, serr syncBuffer
			go func() { done <- run(sctx, []string{"serve"}, e, &sout, &serr) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("serve: %v", err)
				}
			}()
			deadline := time.Now().Add(30 * time.Second)
			for run(ctx, []string{"ready"}, e, &out, &errb) != nil {
				if time.Now().After(deadline) {
					t.Fatalf("rollcall ready never succeeded\n%s", serr.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			body := `{"query":"{ viewer { issuer subject roles { role } } programmes { name } }"}`
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/graphql", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var got struct {
				Data struct {
					Viewer struct {
						Issuer, Subject string
						Roles           []struct{ Role string }
					}
					Programmes []struct{ Name string }
				}
				Errors []any
			}
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			v := got.Data.Viewer
			if len(got.Errors) != 0 || v.Issuer+"|"+v.Subject != identity || len(v.Roles) != 1 || v.Roles[0].Role != "PROGRAMME_ADMIN" ||
				len(got.Data.Programmes) != 1 {
				t.Fatalf("the granted admin is not a programme admin: %+v", got)
			}
		})
	}
}

func TestWhoami_RefusesWhatIsNotAToken(t *testing.T) {
	for _, in := range []string{"", "rk_abcdef", "not.a.jwt", "a.b"} {
		var out bytes.Buffer
		if err := whoami([]string{in}, strings.NewReader(""), &out); err == nil {
			t.Errorf("%q: accepted, printed %q", in, out.String())
		}
	}
}

// The container health check fails while nothing answers.
func TestReady_FailsWithoutAService(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"ready"}, envFor(map[string]string{"ROLLCALL_LISTEN": freeAddr(t)}), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("want not ready, got %v", err)
	}
}
