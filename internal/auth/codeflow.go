package auth

import (
	"context"
	"crypto/subtle"
	"net/http"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Client is what the code flow needs of a registered provider.
type Client struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	Scopes       []string
	RedirectURL  string
	TrustEmail   bool
}

func (c Client) config(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: c.RedirectURL, Scopes: c.Scopes}
}

func (v *Verifier) provider(ctx context.Context, issuer string) (*oidc.Provider, error) {
	if err := CheckIssuerURL(issuer, v.allowInsecure); err != nil {
		return nil, err
	}
	if _, err := v.verifierFor(ctx, issuer); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.providers[issuer].provider, nil
}

// AuthCodeURL is where the browser goes: authorization code with PKCE
// (S256), state and nonce.
func (v *Verifier) AuthCodeURL(ctx context.Context, c Client, state, nonce, verifier string) (string, error) {
	p, err := v.provider(ctx, c.Issuer)
	if err != nil {
		return "", errUnauth
	}
	return c.config(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// Exchange redeems the code and verifies the ID token: exact issuer, the
// client ID as audience, expiry, signature, and the nonce (which go-oidc
// leaves to the caller).
func (v *Verifier) Exchange(ctx context.Context, c Client, code, verifier, nonce string) (domain.Identity, error) {
	p, err := v.provider(ctx, c.Issuer)
	if err != nil {
		return domain.Identity{}, errUnauth
	}
	ctx = oidc.ClientContext(ctx, v.client)
	tok, err := c.config(p).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		v.log.InfoContext(ctx, "code exchange refused", "why", "token endpoint")
		return domain.Identity{}, errUnauth
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return domain.Identity{}, errUnauth
	}
	idt, err := p.VerifierContext(ctx, &oidc.Config{ClientID: c.ClientID, SupportedSigningAlgs: asymmetricAlgs, Now: v.now}).Verify(ctx, raw)
	if err != nil {
		v.log.InfoContext(ctx, "id token refused", "why", "verification failed")
		return domain.Identity{}, errUnauth
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		v.log.WarnContext(ctx, "id token refused", "why", "nonce mismatch")
		return domain.Identity{}, errUnauth
	}
	return identityOf(idt, Issuer{URL: c.Issuer, TrustEmail: c.TrustEmail})
}

// HTTPClient is the client used for discovery, keys and token exchanges.
func (v *Verifier) HTTPClient() *http.Client { return v.client }
