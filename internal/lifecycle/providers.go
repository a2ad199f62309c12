package lifecycle

import (
	"context"
	"net"
	"net/url"
	"strings"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

type IdentityProviderInput struct {
	Issuer          string
	ClientID        string
	ClientSecret    *string // sealed with the secret key; never returned
	ClientSecretEnv *string // or the name of a ROLLCALL_IDP_SECRET_* variable
	Audience        string  // accepted in bearer tokens; default: the client ID
	Scopes          []string
	EmailTrust      domain.EmailTrust
}

// RegisterIdentityProvider registers an organisation's OIDC provider, or the
// programme's own when organisationID is empty and programmeID is given. Its
// tokens may then provision learners of that organisation's domains only
// (invariant 1).
func (s *Service) RegisterIdentityProvider(ctx context.Context, programmeID, organisationID string, in IdentityProviderInput) (domain.IdentityProvider, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.IdentityProvider{}, err
	}
	p := domain.IdentityProvider{ID: newID(), Scopes: "openid email profile", EmailTrust: in.EmailTrust}
	if organisationID != "" {
		o, err := s.manageOrganisation(ctx, a, organisationID, false)
		if err != nil {
			return p, err
		}
		p.ProgrammeID, p.OrganisationID = o.ProgrammeID, &o.ID
	} else {
		prog, err := s.Programme(ctx, programmeID)
		if err != nil {
			return p, err
		}
		if !isProgrammeAdmin(a, prog.ID) {
			return p, apperr.Forbiddenf("only a programme admin can register the programme's own provider")
		}
		p.ProgrammeID = prog.ID
	}
	if p.Issuer, err = s.checkIssuer(in.Issuer); err != nil {
		return p, err
	}
	if p.ClientID, err = cleanText("clientId", in.ClientID, 1, 255); err != nil {
		return p, err
	}
	p.Audience = strings.TrimSpace(in.Audience)
	if p.Audience == "" {
		p.Audience = p.ClientID
	}
	if p.Audience, err = cleanText("audience", p.Audience, 1, 255); err != nil {
		return p, err
	}
	if p.EmailTrust == "" {
		p.EmailTrust = domain.EmailVerifiedClaim
	}
	if err := checkEmailTrust(p.EmailTrust); err != nil {
		return p, err
	}
	if len(in.Scopes) > 0 {
		if p.Scopes, err = cleanScopes(in.Scopes); err != nil {
			return p, err
		}
	}
	if p.ClientSecretEnc, p.ClientSecretEnv, err = s.providerSecret(in.ClientSecret, in.ClientSecretEnv); err != nil {
		return p, err
	}
	p.CreatedAt, p.UpdatedAt = s.clock(), s.clock()
	target := p.ProgrammeID
	if p.OrganisationID != nil {
		target = *p.OrganisationID
	}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateProvider(ctx, p); err != nil {
			if apperr.CodeOf(err) == apperr.Conflict {
				return apperr.Conflictf("this issuer, or a provider for this organisation, is already registered").WithField("issuer")
			}
			return err
		}
		return s.audit(ctx, a, &p.ProgrammeID, "identity_provider.register", "identity_provider", p.ID, "",
			map[string]any{"issuer": p.Issuer, "for": target, "emailTrust": string(p.EmailTrust)})
	})
	if err == nil && s.onProviderChange != nil {
		s.onProviderChange(p.Issuer)
	}
	return p, err
}

// One issuer has one meaning. The bootstrap admin's issuer
// (ROLLCALL_BOOTSTRAP_ADMIN) is answered by the verifier's static entry with
// its own audience before any registered provider is consulted, so a
// provider registered at that issuer would have every learner token refused;
// it is refused here instead (not merged: docs/security.md).
func (s *Service) checkIssuer(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || len(raw) > 500 {
		return "", apperr.Invalid("issuer", "the issuer must be an absolute URL without query, fragment or credentials")
	}
	if s.bootstrap != nil && strings.EqualFold(strings.TrimRight(raw, "/"), strings.TrimRight(s.bootstrap.Issuer, "/")) {
		return "", apperr.Invalid("issuer", "this issuer is the installation's bootstrap admin issuer (ROLLCALL_BOOTSTRAP_ADMIN): "+
			"one issuer has one meaning, so an organisation's provider must have its own issuer").WithReason("BOOTSTRAP_ISSUER")
	}
	switch u.Scheme {
	case "https":
		return raw, nil
	case "http":
		host := u.Hostname()
		ip := net.ParseIP(host)
		if s.allowInsecureIssuers && (host == "localhost" || (ip != nil && ip.IsLoopback())) {
			return raw, nil
		}
	}
	return "", apperr.Invalid("issuer", "the issuer must use https")
}

// IssuerRegistration tells the token verifier whether an issuer is a
// registered provider and which audience it accepts.
func (s *Service) IssuerRegistration(ctx context.Context, issuer string) (audience string, trustEmail, ok bool, err error) {
	p, err := s.st.ProviderByIssuer(ctx, issuer)
	if apperr.CodeOf(err) == apperr.NotFound {
		return "", false, false, nil
	}
	if err != nil {
		return "", false, false, err
	}
	return p.Audience, p.EmailTrust == domain.EmailTrusted, true, nil
}

// IdentityProviders lists a programme's providers (no secrets).
func (s *Service) IdentityProviders(ctx context.Context, programmeID string) ([]domain.IdentityProvider, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return nil, err
	}
	all, err := s.st.ProvidersByProgramme(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	var out []domain.IdentityProvider
	for _, ip := range all {
		if isProgrammeAdmin(a, p.ID) || (ip.OrganisationID != nil && a.OrganisationAdmin(*ip.OrganisationID)) {
			out = append(out, ip)
		}
	}
	return out, nil
}
