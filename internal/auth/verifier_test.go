package auth_test

// These tests drive auth.Verifier against real OIDC issuers served over
// httptest (discovery, JWKS and tokens are the real thing), and guard:
//   - invariant 1: an identity is only what a registered issuer vouches for;
//   - CTL-10 / CTL-12: no forged, foreign, expired or mis-addressed token
//     becomes an identity that role-based access could be granted to.

import (
	"context"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/auth"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
)

const testAudience = "rollcall-verifier-test"

// RSA generation is slow: two keys are shared by the whole file.
var (
	issuerKey = sync.OnceValue(func() *rsa.PrivateKey { return mustKey() })
	otherKey  = sync.OnceValue(func() *rsa.PrivateKey { return mustKey() })
)

func mustKey() *rsa.PrivateKey {
	k, err := oidcissuer.GenerateKey()
	if err != nil {
		panic(err)
	}
	return k
}

// clock is a settable clock shared by the issuer and the verifier.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock                           { return &clock{t: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)} }
func (c *clock) Now() time.Time                  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration)         { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *clock) Minus(d time.Duration) time.Time { return c.Now().Add(-d) }

// testIssuer is a real issuer behind httptest that counts the requests made
// to it and can be made to fail discovery.
type testIssuer struct {
	*oidcissuer.Issuer
	srv       *httptest.Server
	requests  atomic.Int64
	discovery atomic.Int64
	fail      atomic.Bool // answer 500 to every request
}

func startIssuer(t *testing.T, key *rsa.PrivateKey, c *clock) *testIssuer {
	t.Helper()
	ti := &testIssuer{}
	mux := http.NewServeMux()
	ti.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti.requests.Add(1)
		if r.URL.Path == "/.well-known/openid-configuration" {
			ti.discovery.Add(1)
		}
		if ti.fail.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(ti.srv.Close)
	ti.Issuer = oidcissuer.New(ti.srv.URL, key)
	ti.Issuer.Now = c.Now
	mux.Handle("/", ti.Issuer.Handler())
	return ti
}

func (ti *testIssuer) reg() auth.Issuer {
	return auth.Issuer{URL: ti.URL(), Audiences: []string{testAudience}}
}

func newVerifier(c *clock, regs ...auth.Issuer) *auth.Verifier {
	return auth.NewVerifier(auth.StaticIssuers(regs...), auth.VerifierOptions{AllowInsecureIssuers: true, Clock: c.Now})
}

// claims are valid claims for subject at the clock's time.
func claims(c *clock, subject string) oidcissuer.Claims {
	return oidcissuer.Claims{Subject: subject, Audience: []string{testAudience},
		IssuedAt: c.Now(), Expiry: c.Now().Add(time.Hour)}
}

func mint(t *testing.T, ti *testIssuer, cl oidcissuer.Claims, opts ...oidcissuer.MintOption) string {
	t.Helper()
	tok, err := ti.Mint(cl, opts...)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	return tok
}

func boolp(b bool) *bool { return &b }

// wantUnauthenticated asserts Verify refused raw with UNAUTHENTICATED and a
// zero identity.
func wantUnauthenticated(t *testing.T, v *auth.Verifier, raw string) {
	t.Helper()
	id, err := v.Verify(context.Background(), raw)
	if err == nil {
		t.Fatalf("token accepted as %+v; want UNAUTHENTICATED", id)
	}
	if got := apperr.CodeOf(err); got != apperr.Unauthenticated {
		t.Fatalf("code = %s (%v); want %s", got, err, apperr.Unauthenticated)
	}
	if id != (domain.Identity{}) {
		t.Fatalf("refused token still returned identity %+v", id)
	}
}

func mustVerify(t *testing.T, v *auth.Verifier, raw string) domain.Identity {
	t.Helper()
	id, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	return id
}

// fixture: one registered issuer, a verifier for it, and the shared clock.
func fixture(t *testing.T) (*testIssuer, *auth.Verifier, *clock) {
	t.Helper()
	c := newClock()
	ti := startIssuer(t, issuerKey(), c)
	return ti, newVerifier(c, ti.reg()), c
}

func TestVerify_Inv1_ValidTokenGivesIdentity(t *testing.T) {
	ti, v, c := fixture(t)
	cl := claims(c, "user-123")
	cl.Email = "ada@kent.gov.uk"
	cl.EmailVerified = boolp(true)
	cl.GivenName = "Ada"
	cl.FamilyName = "Lovelace"
	id := mustVerify(t, v, mint(t, ti, cl))
	want := domain.Identity{Issuer: ti.URL(), Subject: "user-123", Email: "ada@kent.gov.uk", EmailVerified: true,
		GivenName: "Ada", FamilyName: "Lovelace", IssuedAt: cl.IssuedAt.Truncate(time.Second)}
	if id != want {
		t.Fatalf("identity = %+v, want %+v", id, want)
	}
}

func TestVerify_Inv1_AudienceAmongSeveral(t *testing.T) {
	ti, v, c := fixture(t)
	cl := claims(c, "user-1")
	cl.Audience = []string{"some-other-client", testAudience}
	if id := mustVerify(t, v, mint(t, ti, cl)); id.Subject != "user-1" {
		t.Fatalf("subject = %q", id.Subject)
	}
}

func TestVerify_Inv1_EmailVerifiedForms(t *testing.T) {
	cases := []struct {
		name  string
		claim any // nil: claim absent
		want  bool
	}{
		{"bool true", true, true},
		{"bool false", false, false},
		{"string true", "true", true},
		{"string false", "false", false},
		{"string yes is not true", "yes", false},
		{"number 1 is not true", 1, false},
		{"absent", nil, false},
	}
	ti, v, c := fixture(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := claims(c, "user-ev")
			cl.Email = "ada@kent.gov.uk"
			if tc.claim != nil {
				cl.Extra = map[string]any{"email_verified": tc.claim}
			}
			id := mustVerify(t, v, mint(t, ti, cl))
			if id.EmailVerified != tc.want {
				t.Fatalf("EmailVerified = %v, want %v", id.EmailVerified, tc.want)
			}
			if id.Email != "ada@kent.gov.uk" {
				t.Fatalf("Email = %q", id.Email)
			}
		})
	}
}

func TestVerify_Inv1_IdentityIsIssuerAndSubjectNotEmail(t *testing.T) {
	c := newClock()
	a := startIssuer(t, issuerKey(), c)
	b := startIssuer(t, otherKey(), c)
	v := newVerifier(c, a.reg(), b.reg())

	withEmail := func(sub string) oidcissuer.Claims {
		cl := claims(c, sub)
		cl.Email = "shared@kent.gov.uk"
		cl.EmailVerified = boolp(true)
		return cl
	}
	id1 := mustVerify(t, v, mint(t, a, withEmail("alice")))
	id2 := mustVerify(t, v, mint(t, a, withEmail("mallory")))
	if id1.Email != id2.Email {
		t.Fatalf("setup: emails differ: %q %q", id1.Email, id2.Email)
	}
	if id1.Subject == id2.Subject || id1 == id2 {
		t.Fatalf("same email, different subjects gave one identity: %+v / %+v", id1, id2)
	}
	// The same subject at another registered issuer is someone else.
	id3 := mustVerify(t, v, mint(t, b, withEmail("alice")))
	if id3.Issuer != b.URL() || id3.Issuer == id1.Issuer {
		t.Fatalf("issuer not kept apart: %+v / %+v", id1, id3)
	}
}

func TestVerify_Inv1_TrustEmailIssuerMarksEmailVerified(t *testing.T) {
	c := newClock()
	ti := startIssuer(t, issuerKey(), c)
	reg := ti.reg()
	reg.TrustEmail = true
	v := newVerifier(c, reg)

	cl := claims(c, "entra-user")
	cl.Email = "ada@kent.gov.uk" // no email_verified claim
	id := mustVerify(t, v, mint(t, ti, cl))
	if !id.EmailVerified {
		t.Fatalf("TrustEmail issuer: EmailVerified = false, want true")
	}

	// Without an email there is nothing to vouch for.
	id = mustVerify(t, v, mint(t, ti, claims(c, "no-email")))
	if id.EmailVerified {
		t.Fatalf("TrustEmail issuer, no email: EmailVerified = true")
	}

	// The same token from an issuer not trusted for email stays unverified.
	v2 := newVerifier(c, ti.reg())
	if id := mustVerify(t, v2, mint(t, ti, cl)); id.EmailVerified {
		t.Fatalf("untrusted issuer without email_verified: EmailVerified = true")
	}
}

// TrustEmail means "vouches for email without an email_verified claim"
// (auth.Issuer docs). When the issuer itself says the address is NOT verified,
// that statement must win: invariant 1 needs a verified email.
func TestVerify_Inv1_TrustEmailDoesNotOverrideExplicitFalse(t *testing.T) {
	c := newClock()
	ti := startIssuer(t, issuerKey(), c)
	reg := ti.reg()
	reg.TrustEmail = true
	v := newVerifier(c, reg)
	for _, ev := range []any{false, "false"} {
		cl := claims(c, "entra-guest")
		cl.Email = "someone@kent.gov.uk"
		cl.Extra = map[string]any{"email_verified": ev}
		if id := mustVerify(t, v, mint(t, ti, cl)); id.EmailVerified {
			t.Errorf("email_verified=%#v from a TrustEmail issuer gave EmailVerified = true", ev)
		}
	}
}

func TestVerify_CTL12_RefusesAlgNone(t *testing.T) {
	ti, v, c := fixture(t)
	wantUnauthenticated(t, v, mint(t, ti, claims(c, "attacker"), oidcissuer.WithAlgNone()))
	// Also without a kid, and with the signature segment dropped entirely.
	tok := mint(t, ti, claims(c, "attacker"), oidcissuer.WithAlgNone(), oidcissuer.WithKID(""))
	wantUnauthenticated(t, v, tok)
	wantUnauthenticated(t, v, strings.TrimSuffix(tok, "."))
}

func TestVerify_CTL12_RefusesHS256SignedWithPublicKey(t *testing.T) {
	ti, v, c := fixture(t)
	// Discovery and JWKS have been fetched by a valid token first, so the
	// public key is in the verifier's hands when the forged token arrives.
	mustVerify(t, v, mint(t, ti, claims(c, "user")))
	wantUnauthenticated(t, v, mint(t, ti, claims(c, "attacker"), oidcissuer.WithHS256PublicKey()))
	wantUnauthenticated(t, v, mint(t, ti, claims(c, "attacker"), oidcissuer.WithHS256PublicKey(), oidcissuer.WithKID("")))
}

func TestVerify_CTL12_RefusesForeignKeyWithRightKID(t *testing.T) {
	ti, v, c := fixture(t)
	wantUnauthenticated(t, v, mint(t, ti, claims(c, "attacker"), oidcissuer.WithKey(otherKey())))
	// Without a kid, every published key is tried: still none matches.
	wantUnauthenticated(t, v, mint(t, ti, claims(c, "attacker"), oidcissuer.WithKey(otherKey()), oidcissuer.WithKID("")))
}

func TestVerify_CTL12_RefusesUnknownKID(t *testing.T) {
	ti, v, c := fixture(t)
	wantUnauthenticated(t, v, mint(t, ti, claims(c, "attacker"), oidcissuer.WithKID("no-such-key")))
	wantUnauthenticated(t, v, mint(t, ti, claims(c, "attacker"), oidcissuer.WithKey(otherKey()), oidcissuer.WithKID("attacker-key")))
}

func TestVerify_Inv1_RefusesUnregisteredIssuer(t *testing.T) {
	c := newClock()
	registered := startIssuer(t, issuerKey(), c)
	stranger := startIssuer(t, otherKey(), c) // a real, working issuer nobody registered
	v := newVerifier(c, registered.reg())

	wantUnauthenticated(t, v, mint(t, stranger, claims(c, "stranger")))
	if n := stranger.requests.Load(); n != 0 {
		t.Fatalf("verifier made %d requests to an unregistered issuer; want none", n)
	}
	// The stranger claiming the registered issuer's URL: its kid is not in
	// the registered JWKS, and its key is not the registered key.
	wantUnauthenticated(t, v, mint(t, stranger, claims(c, "stranger"), oidcissuer.WithIssuerClaim(registered.URL())))
	wantUnauthenticated(t, v, mint(t, stranger, claims(c, "stranger"),
		oidcissuer.WithIssuerClaim(registered.URL()), oidcissuer.WithKID(registered.KeyID())))
	// And the registered issuer still works.
	mustVerify(t, v, mint(t, registered, claims(c, "user")))
}

func TestVerify_Inv1_IssuerClaimMustMatchExactly(t *testing.T) {
	ti, v, c := fixture(t)
	u := ti.URL()
	for _, iss := range []string{
		u + "/",
		u + "//",
		strings.ToUpper(u[:4]) + u[4:], // HTTP://127.0.0.1:port
		strings.Replace(u, "127.0.0.1", "localhost", 1),
		u + "/other",
		u + "?x=1",
		" " + u,
		u + " ",
		"",
	} {
		t.Run(iss, func(t *testing.T) {
			wantUnauthenticated(t, v, mint(t, ti, claims(c, "user"), oidcissuer.WithIssuerClaim(iss)))
		})
	}
	// A non-string iss is not an issuer either.
	wantUnauthenticated(t, v, mint(t, ti, oidcissuer.Claims{Subject: "user", Audience: []string{testAudience},
		Extra: map[string]any{"iss": []string{u}}}))
}

func TestVerify_CTL12_RefusesWrongAudience(t *testing.T) {
	ti, v, c := fixture(t)
	for name, aud := range map[string][]string{
		"other":      {"another-service"},
		"none":       nil,
		"empty":      {""},
		"prefix":     {testAudience + "-extra"},
		"case":       {strings.ToUpper(testAudience)},
		"several":    {"a", "b"},
		"substrings": {"rollcall", "verifier-test"},
	} {
		t.Run(name, func(t *testing.T) {
			cl := claims(c, "user")
			cl.Audience = aud
			wantUnauthenticated(t, v, mint(t, ti, cl))
		})
	}
}

func TestVerify_CTL12_RefusesExpired(t *testing.T) {
	ti, v, c := fixture(t)
	cl := claims(c, "user")
	cl.IssuedAt = c.Minus(2 * time.Hour)
	cl.Expiry = c.Minus(time.Minute)
	wantUnauthenticated(t, v, mint(t, ti, cl))

	// Expiry is judged by the verifier's clock: a token valid now is refused
	// once that clock passes exp.
	tok := mint(t, ti, claims(c, "user"))
	mustVerify(t, v, tok)
	c.Advance(time.Hour + time.Second)
	wantUnauthenticated(t, v, tok)
}

func TestVerify_CTL12_RefusesNotYetValid(t *testing.T) {
	ti, v, c := fixture(t)
	cl := claims(c, "user")
	cl.NotBefore = c.Now().Add(30 * time.Minute)
	cl.Expiry = c.Now().Add(2 * time.Hour)
	wantUnauthenticated(t, v, mint(t, ti, cl))
}

func TestVerify_CTL12_RefusesMissingSubject(t *testing.T) {
	ti, v, c := fixture(t)
	wantUnauthenticated(t, v, mint(t, ti, claims(c, "")))
	cl := claims(c, "")
	cl.Extra = map[string]any{"sub": ""}
	wantUnauthenticated(t, v, mint(t, ti, cl))
}

func TestVerify_CTL12_RefusesGarbage(t *testing.T) {
	ti, v, c := fixture(t)
	good := mint(t, ti, claims(c, "user"))
	parts := strings.Split(good, ".")
	for name, raw := range map[string]string{
		"empty":              "",
		"word":               "garbage",
		"dots":               "..",
		"four dots":          "a.b.c.d",
		"two parts":          parts[0] + "." + parts[1],
		"four parts":         good + ".x",
		"not base64":         "a.!!!.c",
		"payload not JSON":   "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",
		"payload JSON array": "eyJhbGciOiJSUzI1NiJ9.WyJhIl0.c2ln",
		"payload no iss":     "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
		"bearer prefix":      "Bearer " + good,
		"signature stripped": parts[0] + "." + parts[1] + ".",
		"signature swapped":  parts[0] + "." + parts[1] + "." + strings.Split(mint(t, ti, claims(c, "other")), ".")[2],
		"payload swapped": parts[0] + "." + strings.Split(mint(t, ti, claims(c, "admin")), ".")[1] + "." +
			parts[2],
		"JWE-like":     "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d",
		"binary":       "\x00\xff.\x00.\x00",
		"padded b64":   parts[0] + "." + parts[1] + "==." + parts[2],
		"unicode":      "ευ.ξ.ζ",
		"just a dot":   ".",
		"header alone": parts[0],
	} {
		t.Run(name, func(t *testing.T) { wantUnauthenticated(t, v, raw) })
	}
	// Whitespace-padded copies of good are not listed: go-jose strips
	// whitespace from a compact token, so the signed bytes are unchanged and
	// it is the same token, not a forgery. The untouched token still passes.
	mustVerify(t, v, good)
}

func TestVerify_CTL12_RefusesOversizedToken(t *testing.T) {
	ti, v, c := fixture(t)
	// A correctly signed token of a registered issuer, padded to ~20KB.
	cl := claims(c, "user")
	cl.Extra = map[string]any{"pad": strings.Repeat("x", 15<<10)}
	tok := mint(t, ti, cl)
	if len(tok) < 20<<10 {
		t.Fatalf("setup: token is %d bytes, want >= 20KB", len(tok))
	}
	wantUnauthenticated(t, v, tok)
	// Garbage of the same size goes the same way.
	wantUnauthenticated(t, v, strings.Repeat("A", 20<<10))
	wantUnauthenticated(t, v, strings.Repeat("A", 10<<10)+"."+strings.Repeat("B", 10<<10)+".c")
	if n := ti.requests.Load(); n != 0 {
		t.Fatalf("oversized tokens caused %d requests to the issuer; want none", n)
	}
}

func TestCheckIssuerURL(t *testing.T) {
	cases := []struct {
		url           string
		allowInsecure bool
		ok            bool
	}{
		{"https://login.microsoftonline.com/tenant/v2.0", false, true},
		{"https://accounts.google.com", false, true},
		{"https://idp.example.org:8443/realms/kent", false, true},
		{"https://idp.example.org", true, true},

		{"http://127.0.0.1:8080", false, false},
		{"http://localhost:8080", false, false},
		{"http://[::1]:8080", false, false},

		{"http://127.0.0.1:8080", true, true},
		{"http://127.0.0.1", true, true},
		{"http://localhost:8080/dev/oidc", true, true},
		{"http://localhost", true, true},
		{"http://[::1]:8080", true, true},
		{"http://[::1]", true, true},

		{"http://10.0.0.1", true, false},
		{"http://10.0.0.1:8080", true, false},
		{"http://192.168.1.1", true, false},
		{"http://169.254.169.254", true, false}, // cloud metadata
		{"http://0.0.0.0:8080", true, false},
		{"http://[::]:8080", true, false},
		{"http://example.org", true, false},
		{"http://localhost.example.org", true, false},
		{"http://127.0.0.1.nip.io", true, false},
		{"http://10.0.0.1", false, false},
		{"http://example.org", false, false},

		{"https://idp.example.org?tenant=x", false, false},
		{"https://idp.example.org/?tenant=x", false, false},
		{"https://idp.example.org#frag", false, false},
		{"https://user@idp.example.org", false, false},
		{"https://user:pass@idp.example.org", false, false},
		{"http://user:pass@localhost", true, false},
		{"http://localhost?x=1", true, false},
		{"http://localhost#x", true, false},

		{"", true, false},
		{"idp.example.org", true, false},
		{"/relative/path", true, false},
		{"//idp.example.org", true, false},
		{"https://", true, false},
		{"https:///path", true, false},
		{"ftp://idp.example.org", true, false},
		{"file:///etc/passwd", true, false},
		{"javascript:alert(1)", true, false},
		{"ws://localhost", true, false},
		{"https://idp.example.org/%zz", true, false},
	}
	for _, tc := range cases {
		err := auth.CheckIssuerURL(tc.url, tc.allowInsecure)
		if (err == nil) != tc.ok {
			t.Errorf("CheckIssuerURL(%q, allowInsecure=%v) = %v; want ok=%v", tc.url, tc.allowInsecure, err, tc.ok)
		}
	}
}

// countingTransport counts outgoing requests and refuses them all, so a test
// can prove no request was even attempted.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	c.n.Add(1)
	return nil, errors.New("network disabled in this test")
}

func TestVerify_Inv1_RegisteredButDisallowedIssuerURLRefusedWithoutFetching(t *testing.T) {
	c := newClock()
	ti := startIssuer(t, issuerKey(), c)
	for _, u := range []string{"http://10.0.0.1", "http://example.org", "https://idp.example.org?x=1", "ftp://idp.example.org"} {
		t.Run(u, func(t *testing.T) {
			tr := &countingTransport{}
			v := auth.NewVerifier(auth.StaticIssuers(auth.Issuer{URL: u, Audiences: []string{testAudience}}),
				auth.VerifierOptions{AllowInsecureIssuers: true, Clock: c.Now, HTTPClient: &http.Client{Transport: tr}})
			wantUnauthenticated(t, v, mint(t, ti, claims(c, "user"), oidcissuer.WithIssuerClaim(u)))
			if n := tr.n.Load(); n != 0 {
				t.Fatalf("%d requests made to a disallowed issuer URL; want none", n)
			}
		})
	}
}

func TestVerify_Inv1_HTTPIssuerNeedsAllowInsecure(t *testing.T) {
	c := newClock()
	ti := startIssuer(t, issuerKey(), c)
	strict := auth.NewVerifier(auth.StaticIssuers(ti.reg()), auth.VerifierOptions{Clock: c.Now})
	tok := mint(t, ti, claims(c, "user"))
	wantUnauthenticated(t, strict, tok)
	if n := ti.requests.Load(); n != 0 {
		t.Fatalf("strict verifier contacted an http issuer %d times", n)
	}
	mustVerify(t, newVerifier(c, ti.reg()), tok)
}

func TestVerify_Inv1_DiscoveryFailureIsUnauthenticated(t *testing.T) {
	c := newClock()
	ti := startIssuer(t, issuerKey(), c)
	tok := mint(t, ti, claims(c, "user"))
	ti.srv.Close() // registered, but the server is down
	v := newVerifier(c, ti.reg())
	wantUnauthenticated(t, v, tok)
	wantUnauthenticated(t, v, tok)
}

func TestVerify_Inv1_FailedDiscoveryIsNotRetriedOnEveryRequest(t *testing.T) {
	c := newClock()
	ti := startIssuer(t, issuerKey(), c)
	ti.fail.Store(true)
	v := newVerifier(c, ti.reg())
	tok := mint(t, ti, oidcissuer.Claims{Subject: "user", Audience: []string{testAudience},
		IssuedAt: c.Now(), Expiry: c.Now().Add(2 * time.Hour)})

	wantUnauthenticated(t, v, tok)
	c.Advance(10 * time.Second)
	wantUnauthenticated(t, v, tok)
	c.Advance(19 * time.Second) // 29s after the failure
	wantUnauthenticated(t, v, tok)
	if n := ti.discovery.Load(); n != 1 {
		t.Fatalf("discovery requests within 30s of a failure = %d, want 1", n)
	}

	// After 30s it is tried again; once the issuer is back, tokens verify.
	ti.fail.Store(false)
	c.Advance(2 * time.Second)
	if id := mustVerify(t, v, tok); id.Subject != "user" {
		t.Fatalf("subject = %q", id.Subject)
	}
	if n := ti.discovery.Load(); n != 2 {
		t.Fatalf("discovery requests after the retry window = %d, want 2", n)
	}
	// And a working discovery is cached.
	mustVerify(t, v, tok)
	mustVerify(t, v, mint(t, ti, claims(c, "user-2")))
	if n := ti.discovery.Load(); n != 2 {
		t.Fatalf("discovery repeated for a cached issuer: %d requests", n)
	}
}

func TestVerify_IssuerSourceErrorIsNotUnauthenticated(t *testing.T) {
	c := newClock()
	ti := startIssuer(t, issuerKey(), c)
	src := func(context.Context, string) (auth.Issuer, bool, error) {
		return auth.Issuer{}, false, errors.New("db down: SELECT * FROM identity_providers")
	}
	v := auth.NewVerifier(src, auth.VerifierOptions{AllowInsecureIssuers: true, Clock: c.Now})
	_, err := v.Verify(context.Background(), mint(t, ti, claims(c, "user")))
	// A broken registry is our fault, not the caller's: INTERNAL, not a
	// "your token is bad" answer that hides an outage.
	if got := apperr.CodeOf(err); got != apperr.Internal {
		t.Fatalf("code = %s, want %s", got, apperr.Internal)
	}
}

func TestVerify_RefusalsAreIndistinguishable(t *testing.T) {
	ti, v, c := fixture(t)
	expired := claims(c, "u")
	expired.IssuedAt, expired.Expiry = c.Minus(2*time.Hour), c.Minus(time.Hour)
	wrongAud := claims(c, "u")
	wrongAud.Audience = []string{"other"}
	var msgs []string
	for _, raw := range []string{
		"garbage",
		mint(t, ti, claims(c, "u"), oidcissuer.WithAlgNone()),
		mint(t, ti, claims(c, "u"), oidcissuer.WithKey(otherKey())),
		mint(t, ti, claims(c, "u"), oidcissuer.WithIssuerClaim("https://unregistered.example")),
		mint(t, ti, expired),
		mint(t, ti, wrongAud),
		mint(t, ti, claims(c, "")),
	} {
		_, err := v.Verify(context.Background(), raw)
		ae, ok := apperr.As(err)
		if !ok {
			t.Fatalf("refusal is not an apperr: %v", err)
		}
		msgs = append(msgs, ae.Message)
	}
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Fatalf("refusal messages differ, leaking why: %q", msgs)
		}
	}
}

// A verified token is remembered until it expires (at most maxVerifiedAge):
// the same bearer token on later requests skips issuer lookup and the
// signature check; any other token, even one differing in its signature
// alone, is verified in full; Forget(issuer) drops that issuer's tokens.
func TestVerify_CTL12_VerifiedTokenCachedUntilExpiryOrForget(t *testing.T) {
	c := newClock()
	ti := startIssuer(t, issuerKey(), c)
	var lookups atomic.Int64
	src := auth.StaticIssuers(ti.reg())
	v := auth.NewVerifier(func(ctx context.Context, u string) (auth.Issuer, bool, error) {
		lookups.Add(1)
		return src(ctx, u)
	}, auth.VerifierOptions{AllowInsecureIssuers: true, Clock: c.Now})
	cl := claims(c, "user")
	cl.Expiry = c.Now().Add(45 * time.Second)
	tok := mint(t, ti, cl)
	if id := mustVerify(t, v, tok); id.Subject != "user" {
		t.Fatalf("identity %+v", id)
	}
	for i := 0; i < 50; i++ {
		if id := mustVerify(t, v, tok); id.Subject != "user" || id.Issuer != ti.URL() {
			t.Fatalf("cached identity %+v", id)
		}
	}
	if n := lookups.Load(); n != 1 {
		t.Fatalf("the same token was verified %d times; want once", n)
	}
	// One byte of the signature changed: not the cached token.
	forged := tok[:len(tok)-2] + map[bool]string{true: "A", false: "B"}[tok[len(tok)-2] != 'A'] + tok[len(tok)-1:]
	wantUnauthenticated(t, v, forged)
	if n := lookups.Load(); n != 2 {
		t.Fatalf("a different token must be verified in full: %d lookups", n)
	}
	// Past maxVerifiedAge (30 s) the token is checked again.
	c.Advance(31 * time.Second)
	mustVerify(t, v, tok)
	if n := lookups.Load(); n != 3 {
		t.Fatalf("after 31 s: %d lookups, want 3", n)
	}
	// Forgetting the issuer drops its tokens.
	v.Forget(ti.URL())
	mustVerify(t, v, tok)
	if n := lookups.Load(); n != 4 {
		t.Fatalf("after Forget: %d lookups, want 4", n)
	}
	// Past exp the cached token is refused.
	c.Advance(15 * time.Second)
	wantUnauthenticated(t, v, tok)
}
