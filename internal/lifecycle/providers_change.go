package lifecycle

import (
	"context"
	"strings"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// IdentityProviderUpdate changes a registered provider. Nil fields keep their
// value; the issuer cannot change (remove the provider and register the new
// one, since every identity is issuer + subject).
type IdentityProviderUpdate struct {
	ClientID          *string
	ClientSecret      *string // a new secret, sealed (rotation)
	ClientSecretEnv   *string // or a new ROLLCALL_IDP_SECRET_* variable
	ClearClientSecret bool    // a public client (PKCE only)
	Audience          *string // when nil and the audience was the client ID, it follows a new client ID
	Scopes            []string
	EmailTrust        *domain.EmailTrust
}

// manageProvider loads a provider the caller may change: the programme's own
// provider needs a programme admin; an organisation's, a programme admin or
// that organisation's admin. A provider the caller may not see is NOT_FOUND.
func (s *Service) manageProvider(ctx context.Context, a *domain.Actor, id string) (domain.IdentityProvider, error) {
	p, err := s.st.GetProvider(ctx, id)
	if apperr.CodeOf(err) == apperr.NotFound {
		return p, notFound("identity provider").WithField("providerId")
	}
	if err != nil {
		return p, err
	}
	if p.OrganisationID != nil {
		if _, err := s.readOrganisation(ctx, a, *p.OrganisationID); err != nil {
			return p, notFound("identity provider").WithField("providerId")
		}
		if !isProgrammeAdmin(a, p.ProgrammeID) && !a.OrganisationAdmin(*p.OrganisationID) {
			return p, apperr.Forbiddenf("your role cannot change this identity provider")
		}
		return p, nil
	}
	if _, err := s.Programme(ctx, p.ProgrammeID); err != nil {
		return p, notFound("identity provider").WithField("providerId")
	}
	if !isProgrammeAdmin(a, p.ProgrammeID) {
		return p, apperr.Forbiddenf("only a programme admin can change the programme's own provider")
	}
	return p, nil
}

// UpdateIdentityProvider fixes or rotates a provider's client ID, secret,
// audience, scopes or email trust. Sessions it opened stay valid (the people
// are the same); tokens are checked against the new audience at once on this
// replica, and within the verifier's cache time on others.
func (s *Service) UpdateIdentityProvider(ctx context.Context, id string, in IdentityProviderUpdate) (domain.IdentityProvider, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.IdentityProvider{}, err
	}
	p, err := s.manageProvider(ctx, a, id)
	if err != nil {
		return p, err
	}
	changed := []string{}
	if in.ClientID != nil {
		cid, err := cleanText("clientId", *in.ClientID, 1, 255)
		if err != nil {
			return p, err
		}
		if in.Audience == nil && p.Audience == p.ClientID {
			p.Audience = cid
		}
		p.ClientID = cid
		changed = append(changed, "clientId")
	}
	if in.Audience != nil {
		if p.Audience, err = cleanText("audience", *in.Audience, 1, 255); err != nil {
			return p, err
		}
		changed = append(changed, "audience")
	}
	if len(in.Scopes) > 0 {
		if p.Scopes, err = cleanScopes(in.Scopes); err != nil {
			return p, err
		}
		changed = append(changed, "scopes")
	}
	if in.EmailTrust != nil {
		if err := checkEmailTrust(*in.EmailTrust); err != nil {
			return p, err
		}
		p.EmailTrust = *in.EmailTrust
		changed = append(changed, "emailTrust")
	}
	switch {
	case in.ClearClientSecret && (in.ClientSecret != nil || in.ClientSecretEnv != nil):
		return p, apperr.Invalid("clearClientSecret", "give a new secret or clear it, not both")
	case in.ClearClientSecret:
		p.ClientSecretEnc, p.ClientSecretEnv = nil, nil
		changed = append(changed, "clientSecret")
	case in.ClientSecret != nil || in.ClientSecretEnv != nil:
		if p.ClientSecretEnc, p.ClientSecretEnv, err = s.providerSecret(in.ClientSecret, in.ClientSecretEnv); err != nil {
			return p, err
		}
		changed = append(changed, "clientSecret")
	}
	if len(changed) == 0 {
		return p, apperr.Invalid("input", "nothing to change")
	}
	p.UpdatedAt = s.clock()
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.UpdateProvider(ctx, p); err != nil {
			return err
		}
		// Field names only: never a secret, nor the old or new client ID.
		return s.audit(ctx, a, &p.ProgrammeID, "identity_provider.update", "identity_provider", p.ID, "",
			map[string]any{"changed": strings.Join(changed, ","), "emailTrust": string(p.EmailTrust)})
	})
	if err == nil && s.onProviderChange != nil {
		s.onProviderChange(p.Issuer)
	}
	return p, err
}

// RemovedProvider reports what a removal did.
type RemovedProvider struct {
	ProviderID      string
	SessionsRevoked int64
}

// RemoveIdentityProvider ends a provider's sign-ins: from then on its tokens
// are refused (at once on this replica, within the verifier's cache time on
// others) and every browser session it opened is revoked, in the same
// transaction as the audit entry. Learners are not changed: their records,
// status, access in the LMS and linked identities stay, so registering a
// provider with the same issuer again lets them sign in as before; to end
// someone's access use the leaver operations (CTL-9). Role grants at the
// issuer stay too, unusable until it is registered again.
func (s *Service) RemoveIdentityProvider(ctx context.Context, id, reason string) (RemovedProvider, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return RemovedProvider{}, err
	}
	p, err := s.manageProvider(ctx, a, id)
	if err != nil {
		return RemovedProvider{}, err
	}
	if reason, err = cleanText("reason", reason, 1, 1000); err != nil {
		return RemovedProvider{}, err
	}
	out := RemovedProvider{ProviderID: p.ID}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.DeleteProvider(ctx, p.ID); err != nil {
			return err
		}
		n, err := s.st.RevokeSessionsByIssuer(ctx, p.Issuer, s.clock())
		if err != nil {
			return err
		}
		out.SessionsRevoked = n
		return s.audit(ctx, a, &p.ProgrammeID, "identity_provider.remove", "identity_provider", p.ID, reason,
			map[string]any{"issuer": p.Issuer, "sessionsRevoked": n})
	})
	if err == nil && s.onProviderChange != nil {
		s.onProviderChange(p.Issuer)
	}
	return out, err
}

func checkEmailTrust(t domain.EmailTrust) error {
	if t != domain.EmailVerifiedClaim && t != domain.EmailTrusted {
		return apperr.Invalid("emailTrust", "emailTrust must be VERIFIED_CLAIM or TRUSTED")
	}
	return nil
}

// cleanScopes returns the space-separated scopes with openid first.
func cleanScopes(in []string) (string, error) {
	seen := map[string]bool{"openid": true}
	scopes := []string{"openid"}
	for _, sc := range in {
		sc = strings.TrimSpace(sc)
		if sc == "" || len(sc) > 64 || strings.ContainsAny(sc, " \t\n\"\\") {
			return "", apperr.Invalid("scopes", "scopes are single words")
		}
		if !seen[sc] {
			seen[sc] = true
			scopes = append(scopes, sc)
		}
	}
	return strings.Join(scopes, " "), nil
}

// providerSecret checks a client secret given sealed or by variable name. A
// variable this process cannot read would show as hasClientSecret and fail at
// the first browser login, so it is refused now.
func (s *Service) providerSecret(secret, env *string) (enc, envName *string, err error) {
	switch {
	case secret != nil && env != nil:
		return nil, nil, apperr.Invalid("clientSecret", "give clientSecret or clientSecretEnv, not both")
	case secret != nil:
		if len(s.secretKey) != 32 {
			return nil, nil, apperr.Invalid("clientSecret", "this installation has no ROLLCALL_SECRET_KEY to store secrets with; use clientSecretEnv")
		}
		if *secret == "" {
			return nil, nil, apperr.Invalid("clientSecret", "the secret is empty")
		}
		sealed, err := s.sealSecret(*secret)
		if err != nil {
			return nil, nil, apperr.Wrap(err, "seal secret")
		}
		return &sealed, nil, nil
	case env != nil:
		if !secretEnvName.MatchString(*env) {
			return nil, nil, apperr.Invalid("clientSecretEnv", "the variable name must match ROLLCALL_IDP_SECRET_[A-Z0-9_]+")
		}
		if s.getenv(*env) == "" {
			return nil, nil, apperr.Invalid("clientSecretEnv", "the variable %s is not set in the service's environment; set it on every replica and restart before naming it", *env).WithReason("SECRET_ENV_UNSET")
		}
		return nil, env, nil
	}
	return nil, nil, nil
}
