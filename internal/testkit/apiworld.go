package testkit

import (
	"testing"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/migrations"
)

// The builders of a world behind the GraphQL API. They act as the bootstrap
// admin over HTTP, so the world is built through the same edge the test
// then exercises; World (world.go) is the same idea without HTTP.

// Partnership is a running API with both example programmes seeded:
// Connect to Learn (examples/connect-to-learn.yaml) and Onclick
// (examples/onclick.yaml).
type Partnership struct {
	*API
	CTL, Onclick Programme
}

// NewPartnership starts the API on a fresh database of dialect d and seeds
// both example programmes.
func NewPartnership(t testing.TB, d migrations.Dialect, o ...APIOptions) *Partnership {
	t.Helper()
	api := NewAPI(t, d, o...)
	return &Partnership{API: api, CTL: SeedExample(t, api.Service, "connect-to-learn.yaml"),
		Onclick: SeedExample(t, api.Service, "onclick.yaml")}
}

// Org is the programme's organisation of that name; the test fails when the
// seed has none.
func (p Programme) Org(t testing.TB, name string) domain.Organisation {
	t.Helper()
	o, ok := p.Orgs[name]
	if !ok {
		t.Fatalf("the seed has no organisation %q", name)
	}
	return o
}

// Body is the programme's governing body of that name.
func (p Programme) Body(t testing.TB, name string) domain.GoverningBody {
	t.Helper()
	b, ok := p.Bodies[name]
	if !ok {
		t.Fatalf("the seed has no governing body %q", name)
	}
	return b
}

// Provider is a real OIDC issuer registered as an identity provider.
type Provider struct {
	Issuer   *oidcissuer.Issuer
	ID       string // the identity provider's ID in Rollcall
	ClientID string // Rollcall's client ID at the issuer, the tokens' audience
	Secret   string
}

// ProviderInput is what RegisterProvider sends besides the issuer's URL;
// empty fields are left out of the request.
type ProviderInput struct {
	ClientID   string
	Secret     string
	EmailTrust string // e.g. VERIFIED_CLAIM
}

// RegisterProvider starts a real issuer (NewIssuer) and registers it, as the
// bootstrap admin, as the identity provider of an organisation, or of the
// programme when orgID is "" (programmeID is used only then). The issuer
// knows Rollcall's callback, so a browser login works too.
func (a *API) RegisterProvider(programmeID, orgID string, in ProviderInput) *Provider {
	a.t.Helper()
	p := &Provider{Issuer: a.NewIssuer(), ClientID: in.ClientID, Secret: in.Secret}
	vars := map[string]any{"issuer": p.Issuer.URL(), "clientId": in.ClientID}
	if in.Secret != "" {
		vars["clientSecret"] = in.Secret
	}
	if in.EmailTrust != "" {
		vars["emailTrust"] = in.EmailTrust
	}
	if orgID == "" {
		var out struct{ RegisterProgrammeIdentityProvider struct{ ID string } }
		a.MustDo(a.BootstrapToken(), `mutation($p: ID!, $in: IdentityProviderInput!) {
			registerProgrammeIdentityProvider(programmeId: $p, input: $in) { id } }`, map[string]any{"p": programmeID, "in": vars}, &out)
		p.ID = out.RegisterProgrammeIdentityProvider.ID
	} else {
		var out struct{ RegisterIdentityProvider struct{ ID string } }
		a.MustDo(a.BootstrapToken(), `mutation($o: ID!, $in: IdentityProviderInput!) {
			registerIdentityProvider(organisationId: $o, input: $in) { id } }`, map[string]any{"o": orgID, "in": vars}, &out)
		p.ID = out.RegisterIdentityProvider.ID
	}
	p.Issuer.RegisterClient(p.ClientID, p.Secret, a.Server.URL+"/auth/callback")
	return p
}

// Mint is a token of the provider on the API's clock (the issuer's Now);
// its audience is the provider's client ID unless c names one.
func (p *Provider) Mint(t testing.TB, c oidcissuer.Claims) string {
	t.Helper()
	if len(c.Audience) == 0 {
		c.Audience = []string{p.ClientID}
	}
	tok, err := p.Issuer.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// CreateLearner creates a learner as the bootstrap admin (createLearner)
// with the LearnerInput fields in (email, givenName, familyName,
// accessGroupId) and returns its ID.
func (a *API) CreateLearner(orgID string, in map[string]any) string {
	a.t.Helper()
	var out struct{ CreateLearner struct{ ID string } }
	a.MustDo(a.BootstrapToken(), `mutation($o: ID!, $in: LearnerInput!) { createLearner(organisationId: $o, input: $in) { id } }`,
		map[string]any{"o": orgID, "in": in}, &out)
	return out.CreateLearner.ID
}
