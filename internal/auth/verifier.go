// Package auth verifies bearer tokens with go-oidc against registered issuers
// only: one verifier per issuer, discovery and JWKS cached by go-oidc.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Issuer is a registered token issuer and the audiences accepted from it.
type Issuer struct {
	URL       string
	Audiences []string
	// TrustEmail: the issuer vouches for email without an email_verified claim
	// (e.g. Microsoft Entra work accounts); otherwise email_verified must be true.
	TrustEmail bool
}

// IssuerSource finds the registration of an issuer URL (config, database).
type IssuerSource func(ctx context.Context, issuerURL string) (Issuer, bool, error)

// StaticIssuers is an IssuerSource over a fixed list.
func StaticIssuers(list ...Issuer) IssuerSource {
	m := map[string]Issuer{}
	for _, i := range list {
		m[i.URL] = i
	}
	return func(_ context.Context, u string) (Issuer, bool, error) {
		i, ok := m[u]
		return i, ok, nil
	}
}

// Chain tries sources in order.
func Chain(srcs ...IssuerSource) IssuerSource {
	return func(ctx context.Context, u string) (Issuer, bool, error) {
		for _, s := range srcs {
			i, ok, err := s(ctx, u)
			if err != nil || ok {
				return i, ok, err
			}
		}
		return Issuer{}, false, nil
	}
}

// asymmetricAlgs excludes HMAC and "none": a public key must never double as
// a shared secret (the classic HS256 key-confusion attack).
var asymmetricAlgs = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512}

// Verifier checks bearer tokens.
type Verifier struct {
	source        IssuerSource
	allowInsecure bool
	client        *http.Client
	now           func() time.Time
	log           *slog.Logger

	mu        sync.Mutex
	providers map[string]*providerEntry

	// verified remembers tokens already verified, by SHA-256 of the raw
	// token, until they expire: a client sends the same bearer token with
	// every request, and checking its RSA signature again proves nothing new.
	tokMu    sync.RWMutex
	verified map[[sha256.Size]byte]verifiedToken
}

type verifiedToken struct {
	id     domain.Identity
	expiry time.Time
}

// maxVerified bounds the verified-token cache; when full it starts again
// (tokens are attacker-chosen only once they verify, so this is a memory
// bound, not a defence).
const maxVerified = 20000

// maxVerifiedAge bounds how long a verified token is trusted without being
// checked again (the issuer registrations' cache time, cmd/rollcall).
const maxVerifiedAge = 30 * time.Second

type providerEntry struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	failedAt time.Time
	err      error
}

type VerifierOptions struct {
	// AllowInsecureIssuers accepts http:// issuers on loopback addresses only.
	AllowInsecureIssuers bool
	HTTPClient           *http.Client
	Clock                func() time.Time
	Log                  *slog.Logger
}

func NewVerifier(src IssuerSource, o VerifierOptions) *Verifier {
	v := &Verifier{source: src, allowInsecure: o.AllowInsecureIssuers, client: o.HTTPClient, now: o.Clock,
		log: o.Log, providers: map[string]*providerEntry{}, verified: map[[sha256.Size]byte]verifiedToken{}}
	if v.client == nil {
		v.client = &http.Client{Timeout: 10 * time.Second}
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	return v
}

var errUnauth = apperr.Unauthenticatedf("invalid or expired token")

// Verify checks a raw JWT and returns the identity it proves. Every failure is
// UNAUTHENTICATED with one message, so a caller learns nothing about why.
func (v *Verifier) Verify(ctx context.Context, raw string) (domain.Identity, error) {
	key := sha256.Sum256([]byte(raw))
	v.tokMu.RLock()
	e, hit := v.verified[key]
	v.tokMu.RUnlock()
	if hit && v.now().Before(e.expiry) {
		return e.id, nil
	}
	id, tok, err := v.verifySignature(ctx, raw)
	if err != nil {
		return id, err
	}
	// Until the token expires, but no longer than the issuer registrations
	// are cached (CachedSource): a registration changed on another replica
	// reaches this one's tokens as soon as it reaches new ones.
	expiry := tok.Expiry
	if cap := v.now().Add(maxVerifiedAge); expiry.After(cap) {
		expiry = cap
	}
	v.tokMu.Lock()
	if len(v.verified) >= maxVerified {
		v.verified = make(map[[sha256.Size]byte]verifiedToken, maxVerified)
	}
	v.verified[key] = verifiedToken{id: id, expiry: expiry}
	v.tokMu.Unlock()
	return id, nil
}

func (v *Verifier) verifySignature(ctx context.Context, raw string) (domain.Identity, *oidc.IDToken, error) {
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return domain.Identity{}, nil, errUnauth
	}
	reg, ok, err := v.source(ctx, iss)
	if err != nil {
		return domain.Identity{}, nil, apperr.Wrap(err, "issuer lookup")
	}
	if !ok {
		v.log.InfoContext(ctx, "token refused", "why", "unregistered issuer")
		return domain.Identity{}, nil, errUnauth
	}
	if err := CheckIssuerURL(reg.URL, v.allowInsecure); err != nil {
		v.log.WarnContext(ctx, "token refused", "why", "issuer URL not allowed")
		return domain.Identity{}, nil, errUnauth
	}
	ver, err := v.verifierFor(ctx, reg.URL)
	if err != nil {
		v.log.WarnContext(ctx, "issuer discovery failed", "err", err.Error())
		return domain.Identity{}, nil, errUnauth
	}
	tok, err := ver.Verify(ctx, raw)
	if err != nil {
		v.log.InfoContext(ctx, "token refused", "why", "verification failed")
		return domain.Identity{}, nil, errUnauth
	}
	if !audienceAllowed(tok.Audience, reg.Audiences) {
		v.log.InfoContext(ctx, "token refused", "why", "audience")
		return domain.Identity{}, nil, errUnauth
	}
	id, err := identityOf(tok, reg)
	return id, tok, err
}

// identityOf reads the identity claims of a verified token.
func identityOf(tok *oidc.IDToken, reg Issuer) (domain.Identity, error) {
	var c struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
		GivenName     string `json:"given_name"`
		FamilyName    string `json:"family_name"`
		Name          string `json:"name"`
	}
	if err := tok.Claims(&c); err != nil {
		return domain.Identity{}, errUnauth
	}
	id := domain.Identity{Issuer: tok.Issuer, Subject: tok.Subject, Email: c.Email,
		GivenName: c.GivenName, FamilyName: c.FamilyName, IssuedAt: tok.IssuedAt.UTC()}
	if tok.Subject == "" {
		return domain.Identity{}, errUnauth
	}
	// Some providers send email_verified as a string. A trusted issuer that
	// sends no claim vouches for the email; an explicit false always wins.
	switch ev := c.EmailVerified.(type) {
	case bool:
		id.EmailVerified = ev
	case string:
		id.EmailVerified = ev == "true"
	case nil:
		id.EmailVerified = reg.TrustEmail && c.Email != ""
	}
	return id, nil
}

func audienceAllowed(got, allowed []string) bool {
	for _, g := range got {
		for _, a := range allowed {
			if g == a {
				return true
			}
		}
	}
	return false
}

// verifierFor returns the cached verifier of an issuer, doing discovery once.
// A failed discovery is retried after 30s, not on every request.
func (v *Verifier) verifierFor(ctx context.Context, issuer string) (*oidc.IDTokenVerifier, error) {
	v.mu.Lock()
	e := v.providers[issuer]
	if e != nil && (e.verifier != nil || v.now().Sub(e.failedAt) < 30*time.Second) {
		v.mu.Unlock()
		if e.verifier != nil {
			return e.verifier, nil
		}
		return nil, e.err
	}
	v.mu.Unlock()

	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	dctx = oidc.ClientContext(dctx, v.client)
	p, err := oidc.NewProvider(dctx, issuer)
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		v.providers[issuer] = &providerEntry{failedAt: v.now(), err: err}
		return nil, err
	}
	// The key set outlives this request: give it a background context with
	// our HTTP client so JWKS refreshes are not cancelled with the request.
	keyCtx := oidc.ClientContext(context.Background(), v.client)
	var meta struct {
		JWKSURL string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKSURL == "" {
		err = errors.Join(err, errors.New("discovery has no jwks_uri"))
		v.providers[issuer] = &providerEntry{failedAt: v.now(), err: err}
		return nil, err
	}
	ks := oidc.NewRemoteKeySet(keyCtx, meta.JWKSURL)
	ver := oidc.NewVerifier(issuer, ks, &oidc.Config{
		SkipClientIDCheck:    true, // audiences are checked against the registration above
		SupportedSigningAlgs: asymmetricAlgs,
		Now:                  v.now,
	})
	v.providers[issuer] = &providerEntry{verifier: ver, provider: p}
	return ver, nil
}

// Forget drops a cached verifier (after an identity provider is changed).
// Tokens it verified are checked again.
func (v *Verifier) Forget(issuer string) {
	v.mu.Lock()
	delete(v.providers, issuer)
	v.mu.Unlock()
	v.tokMu.Lock()
	for k, e := range v.verified {
		if e.id.Issuer == issuer {
			delete(v.verified, k)
		}
	}
	v.tokMu.Unlock()
}

// CheckIssuerURL allows https issuers, and http issuers only on loopback when
// insecure issuers are allowed (tests and local providers).
func CheckIssuerURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("issuer must be an absolute URL without query, fragment or credentials")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if !allowInsecure {
			return fmt.Errorf("http issuers need ROLLCALL_ALLOW_INSECURE_ISSUERS")
		}
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("http issuers are allowed on loopback addresses only")
	}
	return fmt.Errorf("issuer must use https")
}

// unverifiedIssuer reads iss from the payload to pick the verifier. Nothing
// else is trusted before the signature is checked.
func unverifiedIssuer(raw string) (string, error) {
	if len(raw) > 16<<10 {
		return "", errors.New("token too large")
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", errors.New("not a JWS compact token")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Iss == "" {
		return "", errors.New("no issuer")
	}
	return c.Iss, nil
}

// CachedSource remembers src's answers for ttl (misses too, so a flood of
// tokens from an unknown issuer does not become a flood of queries); forget
// drops one issuer at once when its registration changes on this replica.
func CachedSource(src IssuerSource, ttl time.Duration, now func() time.Time) (IssuerSource, func(issuer string)) {
	type entry struct {
		iss Issuer
		ok  bool
		at  time.Time
	}
	var mu sync.Mutex
	cache := map[string]entry{}
	get := func(ctx context.Context, u string) (Issuer, bool, error) {
		mu.Lock()
		e, hit := cache[u]
		mu.Unlock()
		if hit && now().Sub(e.at) < ttl {
			return e.iss, e.ok, nil
		}
		iss, ok, err := src(ctx, u)
		if err != nil {
			return iss, ok, err
		}
		mu.Lock()
		if len(cache) > 10000 { // unknown issuers are attacker-chosen: bound the map
			cache = map[string]entry{}
		}
		cache[u] = entry{iss: iss, ok: ok, at: now()}
		mu.Unlock()
		return iss, ok, nil
	}
	forget := func(u string) {
		mu.Lock()
		delete(cache, u)
		mu.Unlock()
	}
	return get, forget
}
