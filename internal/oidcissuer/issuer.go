// Package oidcissuer is a small but real OpenID Connect provider that runs
// in-process.
//
// It exists so that Rollcall never needs an external identity provider to
// run locally or to be tested: dev mode mounts it inside the service (and the
// `rollcall dev-token` CLI mints tokens with the same persisted key), and
// tests start it behind httptest and point the production go-oidc verifier at
// it. Because the tokens, discovery document and JWKS are real, the code
// under test exercises exactly the same verification path as in production.
//
// It also mints deliberately hostile tokens (alg "none", HS256 key
// confusion, foreign keys, wrong issuer) so tests can prove the verifier
// rejects them.
//
// This is not a production identity provider: there is no login UI (tests
// choose the user with QueueLogin), no consent, no refresh tokens, and all
// state lives in memory.
package oidcissuer

import (
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	// DefaultTokenTTL is the lifetime of minted tokens when Claims.Expiry is
	// unset and of tokens issued by the token endpoint.
	DefaultTokenTTL = time.Hour
	// CodeTTL is how long an authorization code stays redeemable. Short, as
	// RFC 6749 §4.1.2 recommends, so tests can cover expiry by moving Now.
	CodeTTL = 60 * time.Second
)

// Issuer is an in-process OIDC provider. Create it with New; the zero value
// is not usable. All methods are safe for concurrent use.
type Issuer struct {
	// Now is the issuer's clock, used for iat/exp defaults and code expiry.
	// It defaults to time.Now. Set it before the handler starts serving; to
	// move time during a test, make it read a value you update under your
	// own synchronisation (e.g. an atomic) rather than reassigning the field.
	Now func() time.Time

	url string
	key *rsa.PrivateKey
	kid string

	mu      sync.Mutex
	clients map[string]*client
	logins  []User
	codes   map[string]*authCode
}

// New returns an issuer that identifies itself as issuerURL and signs with
// key. issuerURL must be exactly the URL at which Handler is reachable,
// because OIDC clients (go-oidc included) require the discovery document's
// "issuer" to equal the URL they discovered it from.
//
// The key ID is the RFC 7638 thumbprint of the public key, so the same
// persisted key always yields the same kid across processes (dev-token and
// serve agree) without storing it separately.
func New(issuerURL string, key *rsa.PrivateKey) *Issuer {
	if key == nil {
		panic("oidcissuer: New called with nil key")
	}
	return &Issuer{
		Now:     time.Now,
		url:     issuerURL,
		key:     key,
		kid:     thumbprint(&key.PublicKey),
		clients: make(map[string]*client),
		codes:   make(map[string]*authCode),
	}
}

// URL returns the issuer URL (the value of the "iss" claim).
func (i *Issuer) URL() string { return i.url }

// KeyID returns the "kid" placed in token headers and the JWKS.
func (i *Issuer) KeyID() string { return i.kid }

// PublicKey returns the public half of the signing key.
func (i *Issuer) PublicKey() *rsa.PublicKey { return &i.key.PublicKey }

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

func thumbprint(pub *rsa.PublicKey) string {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		// Only possible for unsupported key types; an RSA public key is
		// always supported.
		panic(fmt.Sprintf("oidcissuer: thumbprint: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

// endpoint joins a path onto the issuer URL. Endpoints are advertised as
// absolute URLs derived from the issuer, which is what lets the handler work
// unchanged at the root of an httptest server or under http.StripPrefix.
func (i *Issuer) endpoint(path string) string {
	return strings.TrimSuffix(i.url, "/") + path
}

// Handler serves discovery, JWKS, authorization and token endpoints,
// relative to wherever it is mounted:
//
//	/.well-known/openid-configuration
//	/jwks
//	/authorize
//	/token
//
// To mount it under a prefix, wrap it with http.StripPrefix and make the
// issuer URL include that prefix.
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", i.serveDiscovery)
	mux.HandleFunc("GET /jwks", i.serveJWKS)
	// OIDC Core §3.1.2.1 requires the authorization endpoint to accept
	// both GET and POST.
	mux.HandleFunc("GET /authorize", i.serveAuthorize)
	mux.HandleFunc("POST /authorize", i.serveAuthorize)
	mux.HandleFunc("POST /token", i.serveToken)
	return mux
}

type discoveryDoc struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, discoveryDoc{
		Issuer:                            i.url,
		AuthorizationEndpoint:             i.endpoint("/authorize"),
		TokenEndpoint:                     i.endpoint("/token"),
		JWKSURI:                           i.endpoint("/jwks"),
		ResponseTypesSupported:            []string{"code"},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256"},
		CodeChallengeMethodsSupported:     []string{"S256"},
		GrantTypesSupported:               []string{"authorization_code", "client_credentials"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "none"},
		ScopesSupported:                   []string{"openid", "email", "profile"},
		ClaimsSupported: []string{
			"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "azp",
			"email", "email_verified", "name", "given_name", "family_name",
		},
	})
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:       &i.key.PublicKey,
		KeyID:     i.kid,
		Algorithm: string(jose.RS256),
		Use:       "sig",
	}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
