package oidcissuer

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Claims describes the payload of a minted token. Zero-valued fields are
// omitted, except IssuedAt and Expiry which default to now and now+1h.
type Claims struct {
	Subject       string
	Audience      []string
	Email         string
	EmailVerified *bool
	Name          string
	GivenName     string
	FamilyName    string
	Nonce         string

	IssuedAt  time.Time // zero: Issuer.Now()
	Expiry    time.Time // zero: IssuedAt + DefaultTokenTTL
	NotBefore time.Time // zero: claim omitted

	// Extra claims are written last and therefore override any of the
	// above (including iss), so tests can craft malformed payloads such as
	// a numeric "sub" or a string "exp".
	Extra map[string]any
}

// MintOption alters how Mint builds or signs a token.
type MintOption func(*mintOptions)

type mintOptions struct {
	iss      *string
	algNone  bool
	hs256Pub bool
	key      *rsa.PrivateKey
	kid      *string
}

// WithIssuerClaim sets the "iss" claim instead of the issuer URL, to test
// that verifiers compare the issuer exactly.
func WithIssuerClaim(iss string) MintOption {
	return func(o *mintOptions) { o.iss = &iss }
}

// WithAlgNone produces an unsigned token: header alg "none" and an empty
// signature segment. A verifier that honours the header's alg accepts it.
func WithAlgNone() MintOption {
	return func(o *mintOptions) { o.algNone = true }
}

// WithHS256PublicKey signs with HMAC-SHA256 using the issuer's RSA public
// key, PEM-encoded ("PUBLIC KEY", PKIX), as the shared secret. This is the
// classic key-confusion attack: a verifier that picks the algorithm from the
// header and feeds it the published RSA key as "the key" validates it.
func WithHS256PublicKey() MintOption {
	return func(o *mintOptions) { o.hs256Pub = true }
}

// WithKey signs with key instead of the issuer's key while still advertising
// the issuer's kid, so the verifier finds the real public key and must reject
// the signature.
func WithKey(key *rsa.PrivateKey) MintOption {
	return func(o *mintOptions) { o.key = key }
}

// WithKID sets the header "kid" (e.g. to one absent from the JWKS). An empty
// string omits the kid header.
func WithKID(kid string) MintOption {
	return func(o *mintOptions) { o.kid = &kid }
}

// Mint returns a compact-serialised JWT carrying c, signed RS256 with the
// issuer's key unless options say otherwise. Used by dev-token and by tests
// that need a bearer token without running the browser flow.
//
// When several hostile options are given, WithAlgNone wins over
// WithHS256PublicKey, which wins over WithKey.
func (i *Issuer) Mint(c Claims, opts ...MintOption) (string, error) {
	var o mintOptions
	for _, opt := range opts {
		opt(&o)
	}
	iss := i.url
	if o.iss != nil {
		iss = *o.iss
	}
	kid := i.kid
	if o.kid != nil {
		kid = *o.kid
	}

	payload, err := json.Marshal(i.claimsMap(iss, c))
	if err != nil {
		return "", fmt.Errorf("oidcissuer: marshal claims: %w", err)
	}

	switch {
	case o.algNone:
		return handBuilt("none", kid, payload, nil)
	case o.hs256Pub:
		der, err := x509.MarshalPKIXPublicKey(&i.key.PublicKey)
		if err != nil {
			return "", fmt.Errorf("oidcissuer: marshal public key: %w", err)
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		return handBuilt("HS256", kid, payload, func(signingInput []byte) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write(signingInput)
			return m.Sum(nil)
		})
	}

	key := i.key
	if o.key != nil {
		key = o.key
	}
	return signRS256(key, kid, payload)
}

// signRS256 signs payload with go-jose, the normal (non-hostile) path.
func signRS256(key *rsa.PrivateKey, kid string, payload []byte) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return "", fmt.Errorf("oidcissuer: new signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("oidcissuer: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// handBuilt assembles header.payload.signature directly. go-jose refuses to
// produce these tokens (by design), so hostile ones are built by hand.
func handBuilt(alg, kid string, payload []byte, sign func([]byte) []byte) (string, error) {
	header := map[string]string{"alg": alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	input := b64(h) + "." + b64(payload)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + b64(sig), nil
}

func (i *Issuer) claimsMap(iss string, c Claims) map[string]any {
	iat := c.IssuedAt
	if iat.IsZero() {
		iat = i.now()
	}
	exp := c.Expiry
	if exp.IsZero() {
		exp = iat.Add(DefaultTokenTTL)
	}
	m := map[string]any{
		"iss": iss,
		"iat": iat.Unix(),
		"exp": exp.Unix(),
	}
	if !c.NotBefore.IsZero() {
		m["nbf"] = c.NotBefore.Unix()
	}
	switch len(c.Audience) {
	case 0:
	case 1:
		// A single audience as a string is the common form in the wild.
		m["aud"] = c.Audience[0]
	default:
		m["aud"] = c.Audience
	}
	setString := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	setString("sub", c.Subject)
	setString("email", c.Email)
	setString("name", c.Name)
	setString("given_name", c.GivenName)
	setString("family_name", c.FamilyName)
	setString("nonce", c.Nonce)
	if c.EmailVerified != nil {
		m["email_verified"] = *c.EmailVerified
	}
	for k, v := range c.Extra {
		m[k] = v
	}
	return m
}
