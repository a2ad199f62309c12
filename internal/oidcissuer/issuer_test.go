package oidcissuer

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// testKey is shared across tests because RSA generation is the slowest part
// of the suite; tests needing a distinct key generate their own.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := GenerateKey()
	if err != nil {
		panic(err)
	}
	return k
})

// newServer starts the issuer at the root of an httptest server, with the
// server URL as issuer, which is how tests across the repo will use it.
func newServer(t *testing.T) (*Issuer, *oidc.Provider) {
	t.Helper()
	// The issuer URL is only known once the server is listening, so the
	// handler is installed after start (before any request is made).
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	iss := New(srv.URL, testKey())
	h = iss.Handler()
	provider, err := oidc.NewProvider(context.Background(), srv.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return iss, provider
}

func verify(t *testing.T, p *oidc.Provider, aud, raw string) (*oidc.IDToken, error) {
	t.Helper()
	return p.Verifier(&oidc.Config{ClientID: aud}).Verify(context.Background(), raw)
}

func TestDiscoveryDocument(t *testing.T) {
	iss, p := newServer(t)
	var doc map[string]any
	if err := p.Claims(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != iss.URL() {
		t.Errorf("issuer = %v, want %v", doc["issuer"], iss.URL())
	}
	for k, want := range map[string]string{
		"jwks_uri":               iss.URL() + "/jwks",
		"authorization_endpoint": iss.URL() + "/authorize",
		"token_endpoint":         iss.URL() + "/token",
	} {
		if doc[k] != want {
			t.Errorf("%s = %v, want %v", k, doc[k], want)
		}
	}
	for k, want := range map[string][]string{
		"response_types_supported":              {"code"},
		"subject_types_supported":               {"public"},
		"id_token_signing_alg_values_supported": {"RS256"},
		"code_challenge_methods_supported":      {"S256"},
		"grant_types_supported":                 {"authorization_code", "client_credentials"},
	} {
		got, _ := json.Marshal(doc[k])
		wantJSON, _ := json.Marshal(want)
		if string(got) != string(wantJSON) {
			t.Errorf("%s = %s, want %s", k, got, wantJSON)
		}
	}
}

func TestMintVerifies(t *testing.T) {
	iss, p := newServer(t)
	verified := true
	raw, err := iss.Mint(Claims{
		Subject:       "user-1",
		Audience:      []string{"rollcall"},
		Email:         "ada@example.com",
		EmailVerified: &verified,
		Name:          "Ada Lovelace",
		GivenName:     "Ada",
		FamilyName:    "Lovelace",
		Extra:         map[string]any{"groups": []string{"admins"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := verify(t, p, "rollcall", raw)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var claims struct {
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		Name          string   `json:"name"`
		Groups        []string `json:"groups"`
	}
	if err := tok.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if tok.Subject != "user-1" || tok.Issuer != iss.URL() || claims.Email != "ada@example.com" ||
		!claims.EmailVerified || claims.Name != "Ada Lovelace" || len(claims.Groups) != 1 {
		t.Errorf("unexpected token: sub=%q iss=%q claims=%+v", tok.Subject, tok.Issuer, claims)
	}
	if d := time.Until(tok.Expiry); d < 59*time.Minute || d > time.Hour+time.Minute {
		t.Errorf("default expiry %v from now, want ~1h", d)
	}

	// Header carries the thumbprint kid and typ JWT.
	hdr := decodeSegment(t, raw, 0)
	if hdr["kid"] != iss.KeyID() || hdr["alg"] != "RS256" || hdr["typ"] != "JWT" {
		t.Errorf("header = %v", hdr)
	}
}

func TestKeyIDIsStableThumbprint(t *testing.T) {
	a := New("https://a.example", testKey())
	b := New("https://b.example", testKey())
	if a.KeyID() == "" || a.KeyID() != b.KeyID() {
		t.Fatalf("kid not derived from key alone: %q vs %q", a.KeyID(), b.KeyID())
	}
}

func TestHostileTokensRejected(t *testing.T) {
	iss, p := newServer(t)
	otherKey, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := Claims{Subject: "user-1", Audience: []string{"rollcall"}}

	cases := []struct {
		name   string
		claims Claims
		opts   []MintOption
		check  func(t *testing.T, raw string)
	}{
		{name: "alg none", claims: good, opts: []MintOption{WithAlgNone()}, check: func(t *testing.T, raw string) {
			if !strings.HasSuffix(raw, ".") || decodeSegment(t, raw, 0)["alg"] != "none" {
				t.Errorf("not an alg=none token: %s", raw)
			}
		}},
		{name: "HS256 with RSA public key", claims: good, opts: []MintOption{WithHS256PublicKey()}, check: func(t *testing.T, raw string) {
			if decodeSegment(t, raw, 0)["alg"] != "HS256" {
				t.Errorf("not an HS256 token")
			}
		}},
		{name: "wrong key same kid", claims: good, opts: []MintOption{WithKey(otherKey)}, check: func(t *testing.T, raw string) {
			if decodeSegment(t, raw, 0)["kid"] != iss.KeyID() {
				t.Errorf("kid should still be the issuer's")
			}
		}},
		{name: "unknown kid", claims: good, opts: []MintOption{WithKey(otherKey), WithKID("nope")}},
		{name: "foreign iss claim", claims: good, opts: []MintOption{WithIssuerClaim("https://evil.example")}},
		{name: "iss with trailing slash", claims: good, opts: []MintOption{WithIssuerClaim(iss.URL() + "/")}},
		{name: "expired", claims: Claims{
			Subject: "user-1", Audience: []string{"rollcall"},
			IssuedAt: now.Add(-2 * time.Hour), Expiry: now.Add(-time.Minute),
		}},
		{name: "not yet valid", claims: Claims{
			Subject: "user-1", Audience: []string{"rollcall"},
			NotBefore: now.Add(time.Hour), Expiry: now.Add(2 * time.Hour),
		}},
		{name: "wrong audience", claims: Claims{Subject: "user-1", Audience: []string{"someone-else"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := iss.Mint(tc.claims, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, raw)
			}
			if tok, err := verify(t, p, "rollcall", raw); err == nil {
				t.Fatalf("hostile token verified: sub=%q", tok.Subject)
			} else {
				t.Logf("rejected as expected: %v", err)
			}
		})
	}
}

// TestHS256SecretIsPublicKeyPEM proves the key-confusion token is what its
// name says: a naive verifier that uses the published RSA public key (PEM) as
// an HMAC secret accepts the signature.
func TestHS256SecretIsPublicKeyPEM(t *testing.T) {
	iss := New("https://issuer.example", testKey())
	raw, err := iss.Mint(Claims{Subject: "x"}, WithHS256PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(iss.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	dot := strings.LastIndex(raw, ".")
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(raw[:dot]))
	if got := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); got != raw[dot+1:] {
		t.Fatalf("signature is not HMAC-SHA256 keyed with the public key PEM")
	}
}

func TestMountedUnderPrefix(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	issuerURL := srv.URL + "/dev/oidc"
	iss := New(issuerURL, testKey())
	mux.Handle("/dev/oidc/", http.StripPrefix("/dev/oidc", iss.Handler()))

	p, err := oidc.NewProvider(context.Background(), issuerURL)
	if err != nil {
		t.Fatalf("discovery under prefix: %v", err)
	}
	if got := p.Endpoint().TokenURL; got != issuerURL+"/token" {
		t.Errorf("token endpoint = %q", got)
	}
	raw, err := iss.Mint(Claims{Subject: "dev", Audience: []string{"rollcall"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, p, "rollcall", raw); err != nil {
		t.Fatalf("verify under prefix (JWKS fetched via prefix): %v", err)
	}
}

const (
	testClientID     = "rollcall-web"
	testClientSecret = "s3cret/with+odd&chars"
	testRedirect     = "http://app.example/auth/callback"
)

// noRedirect returns the 302 from /authorize instead of following it to the
// (nonexistent) client callback, as a browser test would intercept it.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

func oauthConfig(p *oidc.Provider, style oauth2.AuthStyle) *oauth2.Config {
	ep := p.Endpoint()
	ep.AuthStyle = style
	return &oauth2.Config{
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		Endpoint:     ep,
		RedirectURL:  testRedirect,
		Scopes:       []string{oidc.ScopeOpenID, "email", "profile"},
	}
}

// authorize runs the front-channel leg and returns the code.
func authorize(t *testing.T, conf *oauth2.Config, state, nonce, verifier string) string {
	t.Helper()
	resp, err := noRedirect.Get(conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize status = %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
		t.Fatalf("redirected to %q", got)
	}
	if got := loc.Query().Get("state"); got != state {
		t.Fatalf("state = %q, want %q", got, state)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	return code
}

func TestAuthorizationCodeFlow(t *testing.T) {
	for _, style := range []struct {
		name  string
		style oauth2.AuthStyle
	}{
		{"autodetect", oauth2.AuthStyleAutoDetect},
		{"basic", oauth2.AuthStyleInHeader},
		{"post", oauth2.AuthStyleInParams},
	} {
		t.Run(style.name, func(t *testing.T) {
			iss, p := newServer(t)
			iss.RegisterClient(testClientID, testClientSecret, "http://other.example/cb", testRedirect)
			iss.QueueLogin(User{Subject: "u-42", Email: "grace@example.com", EmailVerified: true, GivenName: "Grace", FamilyName: "Hopper"})
			conf := oauthConfig(p, style.style)

			verifier := oauth2.GenerateVerifier()
			state := "st=a&b c/ü" // must round-trip verbatim
			nonce := "n-" + oauth2.GenerateVerifier()[:16]
			code := authorize(t, conf, state, nonce, verifier)

			ctx := context.Background()
			tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.Expiry.IsZero() {
				t.Errorf("token = %+v", tok)
			}
			rawID, _ := tok.Extra("id_token").(string)
			if rawID == "" {
				t.Fatal("no id_token")
			}
			idt, err := verify(t, p, testClientID, rawID)
			if err != nil {
				t.Fatalf("verify id_token: %v", err)
			}
			if idt.Nonce != nonce {
				t.Errorf("nonce = %q, want %q", idt.Nonce, nonce)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			var c struct {
				Email         string `json:"email"`
				EmailVerified bool   `json:"email_verified"`
				GivenName     string `json:"given_name"`
				FamilyName    string `json:"family_name"`
				Name          string `json:"name"`
				AZP           string `json:"azp"`
			}
			if err := idt.Claims(&c); err != nil {
				t.Fatal(err)
			}
			if idt.Subject != "u-42" || c.Email != "grace@example.com" || !c.EmailVerified ||
				c.GivenName != "Grace" || c.FamilyName != "Hopper" || c.Name != "Grace Hopper" || c.AZP != testClientID {
				t.Errorf("claims: sub=%q %+v", idt.Subject, c)
			}
			// The access token is itself a verifiable JWT for the client.
			if at, err := verify(t, p, testClientID, tok.AccessToken); err != nil || at.Subject != "u-42" {
				t.Errorf("access token: %v", err)
			}

			// Replay: the same code again must fail with invalid_grant.
			_, err = conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			assertOAuthError(t, err, "invalid_grant")
		})
	}
}

func TestWrongCodeVerifier(t *testing.T) {
	iss, p := newServer(t)
	iss.RegisterClient(testClientID, testClientSecret, testRedirect)
	iss.QueueLogin(User{Subject: "u"})
	conf := oauthConfig(p, oauth2.AuthStyleInHeader)
	verifier := oauth2.GenerateVerifier()
	code := authorize(t, conf, "s", "n", verifier)

	_, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	assertOAuthError(t, err, "invalid_grant")
	// A failed attempt burns the code; the legitimate verifier no longer works.
	_, err = conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	assertOAuthError(t, err, "invalid_grant")
	// Missing verifier entirely.
	iss.QueueLogin(User{Subject: "u"})
	code = authorize(t, conf, "s", "n", verifier)
	_, err = conf.Exchange(context.Background(), code)
	assertOAuthError(t, err, "invalid_grant")
}

func TestCodeExpires(t *testing.T) {
	iss, p := newServer(t)
	var offset atomic.Int64
	iss.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	iss.RegisterClient(testClientID, testClientSecret, testRedirect)
	iss.QueueLogin(User{Subject: "u"})
	conf := oauthConfig(p, oauth2.AuthStyleInHeader)
	verifier := oauth2.GenerateVerifier()
	code := authorize(t, conf, "s", "n", verifier)
	offset.Store(int64(CodeTTL + time.Second))
	_, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	assertOAuthError(t, err, "invalid_grant")
}

func TestTokenEndpointClientAuth(t *testing.T) {
	iss, p := newServer(t)
	iss.RegisterClient(testClientID, testClientSecret, testRedirect)
	iss.QueueLogin(User{Subject: "u"})
	conf := oauthConfig(p, oauth2.AuthStyleInHeader)
	verifier := oauth2.GenerateVerifier()
	code := authorize(t, conf, "s", "n", verifier)

	bad := *conf
	bad.ClientSecret = "wrong"
	_, err := bad.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	assertOAuthError(t, err, "invalid_client")
	// Client auth failure does not consume the code.
	if _, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("exchange after failed client auth: %v", err)
	}

	// Wrong redirect_uri at the token endpoint.
	iss.RegisterClient(testClientID, testClientSecret, testRedirect, "http://app.example/other")
	iss.QueueLogin(User{Subject: "u"})
	code = authorize(t, conf, "s", "n", verifier)
	other := *conf
	other.RedirectURL = "http://app.example/other"
	_, err = other.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	assertOAuthError(t, err, "invalid_grant")

	// Unsupported grant.
	resp, err := http.PostForm(p.Endpoint().TokenURL, url.Values{
		"grant_type": {"password"}, "client_id": {testClientID}, "client_secret": {testClientSecret},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusBadRequest || body["error"] != "unsupported_grant_type" || body["error_description"] == "" {
		t.Errorf("unsupported grant: %d %v", resp.StatusCode, body)
	}
}

func TestPublicClient(t *testing.T) {
	iss, p := newServer(t)
	iss.RegisterClient("spa", "", testRedirect)
	iss.QueueLogin(User{Subject: "u"})
	conf := oauthConfig(p, oauth2.AuthStyleInParams)
	conf.ClientID, conf.ClientSecret = "spa", ""
	verifier := oauth2.GenerateVerifier()
	code := authorize(t, conf, "s", "n", verifier)
	if _, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("public client exchange: %v", err)
	}
	cc := clientcredentials.Config{ClientID: "spa", TokenURL: p.Endpoint().TokenURL, AuthStyle: oauth2.AuthStyleInParams}
	_, err := cc.Token(context.Background())
	assertOAuthError(t, err, "unauthorized_client")
}

func TestAuthorizeRejections(t *testing.T) {
	iss, p := newServer(t)
	iss.RegisterClient(testClientID, testClientSecret, testRedirect)
	conf := oauthConfig(p, oauth2.AuthStyleInHeader)
	verifier := oauth2.GenerateVerifier()

	status := func(c *oauth2.Config, opts ...oauth2.AuthCodeOption) (int, *url.URL) {
		t.Helper()
		resp, err := noRedirect.Get(c.AuthCodeURL("st", opts...))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		return resp.StatusCode, loc
	}
	pkce := oauth2.S256ChallengeOption(verifier)

	if code, _ := status(conf, pkce); code != http.StatusBadRequest {
		t.Errorf("no queued login: status %d, want 400", code)
	}

	iss.QueueLogin(User{Subject: "u"})
	unknown := *conf
	unknown.ClientID = "nobody"
	if code, _ := status(&unknown, pkce); code != http.StatusBadRequest {
		t.Errorf("unknown client: status %d, want 400", code)
	}
	badRedirect := *conf
	badRedirect.RedirectURL = testRedirect + "/../evil"
	if code, _ := status(&badRedirect, pkce); code != http.StatusBadRequest {
		t.Errorf("unregistered redirect: status %d, want 400", code)
	}
	prefixRedirect := *conf
	prefixRedirect.RedirectURL = testRedirect + "x"
	if code, _ := status(&prefixRedirect, pkce); code != http.StatusBadRequest {
		t.Errorf("prefix redirect: status %d, want 400", code)
	}

	// Errors after the client is validated go back to the client.
	code, loc := status(conf) // no PKCE
	if code != http.StatusFound || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "st" {
		t.Errorf("missing PKCE: %d %v", code, loc)
	}
	code, loc = status(conf, oauth2.SetAuthURLParam("code_challenge", "x"), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
	if code != http.StatusFound || loc.Query().Get("error") != "invalid_request" {
		t.Errorf("plain PKCE: %d %v", code, loc)
	}
	noOpenID := *conf
	noOpenID.Scopes = []string{"email"}
	code, loc = status(&noOpenID, pkce)
	if code != http.StatusFound || loc.Query().Get("error") != "invalid_scope" {
		t.Errorf("no openid scope: %d %v", code, loc)
	}

	// None of the rejected requests consumed the queued login.
	if code, loc := status(conf, pkce); code != http.StatusFound || loc.Query().Get("code") == "" {
		t.Errorf("queued login was consumed by a rejected request: %d %v", code, loc)
	}
}

func TestClientCredentials(t *testing.T) {
	iss, p := newServer(t)
	iss.RegisterClient("worker", "worker-secret")
	ctx := context.Background()

	cc := clientcredentials.Config{ClientID: "worker", ClientSecret: "worker-secret", TokenURL: p.Endpoint().TokenURL}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tok.Extra("id_token").(string); ok {
		t.Error("client_credentials must not return an id_token")
	}
	at, err := verify(t, p, "worker", tok.AccessToken)
	if err != nil || at.Subject != "worker" {
		t.Fatalf("verify: %v", err)
	}

	cc.EndpointParams = url.Values{"audience": {"rollcall-api"}}
	tok, err = cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, p, "rollcall-api", tok.AccessToken); err != nil {
		t.Fatalf("verify with audience param: %v", err)
	}
	if _, err := verify(t, p, "worker", tok.AccessToken); err == nil {
		t.Error("audience param should replace client_id as aud")
	}

	cc.ClientSecret = "nope"
	cc.AuthStyle = oauth2.AuthStyleInHeader
	_, err = cc.Token(ctx)
	assertOAuthError(t, err, "invalid_client")
}

func TestConcurrentLogins(t *testing.T) {
	iss, p := newServer(t)
	iss.RegisterClient(testClientID, testClientSecret, testRedirect)
	conf := oauthConfig(p, oauth2.AuthStyleInHeader)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			iss.QueueLogin(User{Subject: "u"})
			verifier := oauth2.GenerateVerifier()
			resp, err := noRedirect.Get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			loc, err := resp.Location()
			if err != nil {
				errs <- err
				return
			}
			if _, err := conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "oidc-key.pem")
	k1, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %o, want 600", perm)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "-----BEGIN PRIVATE KEY-----") {
		t.Errorf("not PKCS#8 PEM: %.40q", data)
	}
	k2, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("second load returned a different key")
	}
	if New("x", k1).KeyID() != New("x", k2).KeyID() {
		t.Fatal("kid differs across loads")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}

	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKeyFile(path); err == nil {
		t.Error("corrupt key file should be an error, not silently replaced")
	}
}

func TestLoadOrCreateKeyFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	const n = 4
	keys := make([]*rsa.PrivateKey, n)
	var wg sync.WaitGroup
	for j := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadOrCreateKeyFile(path)
			if err != nil {
				t.Error(err)
			}
			keys[j] = k
		}()
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if k == nil || !k.Equal(keys[0]) {
			t.Fatal("concurrent creators disagreed on the key")
		}
	}
}

func assertOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want oauth2 error %q, got %v", code, err)
	}
	if re.ErrorCode != code {
		t.Fatalf("error code = %q (%s), want %q", re.ErrorCode, re.ErrorDescription, code)
	}
}

func decodeSegment(t *testing.T, raw string, n int) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[n])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
