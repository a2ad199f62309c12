package domain

import "time"

// EmailTrust is how an identity provider vouches for the email claim.
type EmailTrust string

const (
	// EmailVerifiedClaim: the token must carry email_verified=true (default).
	EmailVerifiedClaim EmailTrust = "VERIFIED_CLAIM"
	// EmailTrusted: the issuer only issues addresses of its own tenant (e.g.
	// Microsoft Entra work accounts, which send no email_verified claim).
	EmailTrusted EmailTrust = "TRUSTED"
)

// IdentityProvider is an organisation's (or the programme's own) OIDC
// provider. The client secret never leaves the store in clear.
type IdentityProvider struct {
	ID              string
	ProgrammeID     string
	OrganisationID  *string // nil: the programme's own provider
	Issuer          string
	ClientID        string
	ClientSecretEnc *string
	ClientSecretEnv *string
	Audience        string
	Scopes          string
	EmailTrust      EmailTrust
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Session is a browser session; the cookie value is never stored.
type Session struct {
	ID        string // SHA-256 of the cookie value
	LearnerID *string
	Issuer    string
	Subject   string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

// LoginState is a pending authorization-code login.
type LoginState struct {
	ID          string // SHA-256 of the state parameter
	ProviderID  string
	Nonce       string
	Verifier    string
	BrowserHash string
	ReturnTo    string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}
