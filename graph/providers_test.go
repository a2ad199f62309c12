package graph_test

// Changing and removing identity providers (invariant 1, CTL-12): what an
// update changes, and what a removal does to sessions, tokens, learners and
// grants, end to end on both databases with real in-process providers.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/testkit"
)

const prFields = `id issuer clientId audience scopes emailTrust hasClientSecret`

type prProvider struct {
	ID, Issuer, ClientID, Audience, EmailTrust string
	Scopes                                     []string
	HasClientSecret                            bool
}

func (e *siEnv) updateProvider(t *testing.T, id string, in map[string]any) prProvider {
	t.Helper()
	var out struct{ UpdateIdentityProvider prProvider }
	e.api.MustDo(e.api.BootstrapToken(), `mutation($id: ID!, $in: IdentityProviderUpdateInput!) {
		updateIdentityProvider(providerId: $id, input: $in) { `+prFields+` } }`, map[string]any{"id": id, "in": in}, &out)
	return out.UpdateIdentityProvider
}

// A mistyped client ID and a secret that must rotate can be fixed: the
// audience follows the corrected client ID, the new secret is the one the
// code exchange uses, and scopes and email trust change what sign-in asks
// and accepts. The audit entry names the fields, never the values.
func TestProviders_INV1_UpdateFixesClientIDRotatesSecretAndChangesTrust(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		idp := &testkit.Provider{Issuer: e.api.NewIssuer(), ClientID: "rollcall-ashford", Secret: "rotated-secret"}
		var reg struct{ RegisterIdentityProvider struct{ ID string } }
		e.api.MustDo(e.api.BootstrapToken(), `mutation($o: ID!, $in: IdentityProviderInput!) {
			registerIdentityProvider(organisationId: $o, input: $in) { id } }`,
			map[string]any{"o": e.org(t, siAshf), "in": map[string]any{"issuer": idp.Issuer.URL(), "clientId": "rollcall-ashfrod",
				"clientSecret": "old-secret"}}, &reg)
		idp.ID = reg.RegisterIdentityProvider.ID
		idp.Issuer.RegisterClient(idp.ClientID, idp.Secret, e.api.Server.URL+"/auth/callback")

		ann := siUser{sub: "ashford-ann", email: "ann@ashford.gov.uk", verified: siTrue, given: "Ann", family: "Ash"}
		if r := e.api.Do(siToken(t, e, idp, ann), `{ viewer { actorId } }`, nil); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("a token for the real client ID passed the mistyped registration: %+v", r)
		}

		p := e.updateProvider(t, idp.ID, map[string]any{"clientId": idp.ClientID, "clientSecret": idp.Secret,
			"scopes": []string{"email", "profile", "offline_access"}})
		if p.ClientID != idp.ClientID || p.Audience != idp.ClientID || !p.HasClientSecret ||
			strings.Join(p.Scopes, " ") != "openid email profile offline_access" {
			t.Fatalf("updated provider: %+v", p)
		}
		if v := e.signedIn(t, siToken(t, e, idp, ann)); v.Learner.Organisation.Name != siAshf {
			t.Fatalf("signed in to %s", v.Learner.Organisation.Name)
		}

		// The rotated secret is the one the code exchange sends (the provider
		// knows only the new one), and the new scopes are asked for.
		b := lgNewBrowser(t)
		to := b.startLogin(t, e, url.Values{"email": {"bo@ashford.gov.uk"}})
		if !strings.Contains(to.Query().Get("scope"), "offline_access") {
			t.Errorf("authorization request scope %q lacks the updated scopes", to.Query().Get("scope"))
		}
		cb := b.authorize(t, idp.Issuer, to, lgUser("ashford-bo", "bo@ashford.gov.uk"))
		if done := b.get(t, cb.String()); done.cookie("rollcall_session") == nil {
			t.Fatalf("login with the rotated secret failed: %d %s", done.Status, done.Body)
		}

		// Email trust: an Entra-style token without email_verified signs in
		// only once the provider is TRUSTED.
		cy := siUser{sub: "ashford-cy", email: "cy@ashford.gov.uk", given: "Cy", family: "Ash"}
		e.refused(t, siToken(t, e, idp, cy), "EMAIL_NOT_VERIFIED")
		e.updateProvider(t, idp.ID, map[string]any{"emailTrust": "TRUSTED", "audience": "api://rollcall"})
		e.signedIn(t, siToken(t, e, idp, siUser{sub: cy.sub, email: cy.email, given: "Cy", family: "Ash", audience: "api://rollcall"}))
		if r := e.api.Do(siToken(t, e, idp, ann), `{ viewer { actorId } }`, nil); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("the old audience is still accepted after the audience changed: %+v", r)
		}

		n := e.count(t, `SELECT count(*) FROM audit_entries WHERE target_id = ? AND action = 'identity_provider.update'`, idp.ID)
		leaks := e.count(t, `SELECT count(*) FROM audit_entries WHERE target_id = ? AND (details LIKE '%rotated-secret%' OR details LIKE '%rollcall-ashf%')`, idp.ID)
		if n != 2 || leaks != 0 {
			t.Fatalf("audit: %d update entries (want 2), %d holding a value (want 0)", n, leaks)
		}
	})
}

// Bad updates change nothing: a secret variable that is not set, an empty
// change, clearing and setting a secret at once, and (registration too) a
// clientSecretEnv naming an unset variable, which would show as
// hasClientSecret and fail at the first browser login.
func TestProviders_INV1_BadUpdatesAndUnsetSecretVariablesAreRefused(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		for _, tc := range []struct {
			in         map[string]any
			field, why string
		}{
			{map[string]any{"clientSecretEnv": "ROLLCALL_IDP_SECRET_NEVER_SET_IN_TESTS"}, "clientSecretEnv", "SECRET_ENV_UNSET"},
			{map[string]any{}, "input", ""},
			{map[string]any{"clearClientSecret": true, "clientSecret": "x"}, "clearClientSecret", ""},
			{map[string]any{"emailTrust": "VERIFIED_CLAIM", "scopes": []string{"two words"}}, "scopes", ""},
		} {
			r := e.api.Do(e.api.BootstrapToken(), `mutation($id: ID!, $in: IdentityProviderUpdateInput!) {
				updateIdentityProvider(providerId: $id, input: $in) { id } }`, map[string]any{"id": e.kcc.ID, "in": tc.in})
			if r.Code() != "BAD_USER_INPUT" || r.Ext("field") != tc.field || (tc.why != "" && r.Ext("reason") != tc.why) {
				t.Errorf("%v: %+v, want BAD_USER_INPUT on %s %s", tc.in, r, tc.field, tc.why)
			}
		}
		if n := e.count(t, `SELECT count(*) FROM audit_entries WHERE action = 'identity_provider.update'`); n != 0 {
			t.Errorf("refused updates wrote %d audit entries", n)
		}
		e.signedIn(t, siToken(t, e, e.kcc, siUser{sub: "kcc-dee", email: "dee@kent.gov.uk", verified: siTrue, given: "D", family: "K"}))

		r := e.api.Do(e.api.BootstrapToken(), `mutation($o: ID!, $in: IdentityProviderInput!) {
			registerIdentityProvider(organisationId: $o, input: $in) { id } }`,
			map[string]any{"o": e.org(t, siAshf), "in": map[string]any{"issuer": e.api.NewIssuer().URL(), "clientId": "c",
				"clientSecretEnv": "ROLLCALL_IDP_SECRET_NEVER_SET_IN_TESTS"}})
		if r.Code() != "BAD_USER_INPUT" || r.Ext("reason") != "SECRET_ENV_UNSET" {
			t.Fatalf("registering an unset secret variable: %+v", r)
		}
		if n := e.count(t, `SELECT count(*) FROM identity_providers WHERE organisation_id = ?`, e.org(t, siAshf)); n != 0 {
			t.Fatalf("the refused registration wrote a provider")
		}
	})
}

// Removing a provider ends its sign-ins: its bearer tokens are refused, every
// browser session it opened is revoked (and counted), and its organisation
// has no login. Learners are untouched (record, status, email, access) and a
// provider registered again at the same issuer signs the same learner in.
// Role grants at the issuer stay, unusable meanwhile.
func TestProviders_INV1_RemoveEndsSignInsAndSessionsAndKeepsLearners(t *testing.T) {
	siEach(t, func(t *testing.T, e *siEnv) {
		mo := siUser{sub: "medway-mo", email: "mo@medway.gov.uk", verified: siTrue, given: "Mo", family: "Med"}
		tok := siToken(t, e, e.medway, mo)
		learner := e.signedIn(t, tok).Learner

		b := lgNewBrowser(t)
		cb := b.loginTo(t, e, e.medway, "mo@medway.gov.uk", lgUser("medway-mo", "mo@medway.gov.uk"), nil)
		if done := b.get(t, cb.String()); done.cookie("rollcall_session") == nil {
			t.Fatalf("browser login: %d %s", done.Status, done.Body)
		}
		if r := b.graphql(t, e, `{ viewer { learner { id } } }`); r.Code() != "" {
			t.Fatalf("session before removal: %+v", r)
		}
		kccSession := lgNewBrowser(t)
		cb = kccSession.loginTo(t, e, e.kcc, "kit@kent.gov.uk", lgUser("kcc-kit", "kit@kent.gov.uk"), nil)
		kccSession.get(t, cb.String())

		var out struct {
			RemoveIdentityProvider struct {
				ProviderID      string
				SessionsRevoked int
			}
		}
		e.api.MustDo(e.api.BootstrapToken(), `mutation($id: ID!) { removeIdentityProvider(providerId: $id, reason: "Medway moved to a new tenant") {
			providerId sessionsRevoked } }`, map[string]any{"id": e.medway.ID}, &out)
		if out.RemoveIdentityProvider.ProviderID != e.medway.ID || out.RemoveIdentityProvider.SessionsRevoked != 1 {
			t.Fatalf("removal: %+v, want one session revoked", out.RemoveIdentityProvider)
		}

		if r := e.api.Do(tok, `{ viewer { actorId } }`, nil); r.Status != http.StatusUnauthorized || r.Code() != "UNAUTHENTICATED" {
			t.Errorf("a token of the removed provider: %d %+v, want 401", r.Status, r)
		}
		if r := b.graphql(t, e, `{ viewer { learner { id } } }`); r.Code() != "UNAUTHENTICATED" {
			t.Errorf("the removed provider's session still authenticates: %+v", r)
		}
		if r := kccSession.graphql(t, e, `{ viewer { learner { id } } }`); r.Code() != "" {
			t.Errorf("another provider's session was revoked: %+v", r)
		}
		if r := lgNewBrowser(t).get(t, e.api.Server.URL+"/auth/login?email=mo%40medway.gov.uk"); r.Status != http.StatusNotFound {
			t.Errorf("login for the organisation without a provider: %d, want 404", r.Status)
		}

		var got struct {
			Learner struct {
				ID, Status string
				Email      *string
			}
		}
		e.api.MustDo(e.api.BootstrapToken(), `query($id: ID!) { learner(id: $id) { id status email } }`, map[string]any{"id": learner.ID}, &got)
		if got.Learner.Status != learner.Status || got.Learner.Email == nil || *got.Learner.Email != "mo@medway.gov.uk" {
			t.Fatalf("the learner changed: %+v, was %s", got.Learner, learner.Status)
		}
		if n := e.count(t, `SELECT count(*) FROM audit_entries WHERE target_id = ? AND action = 'identity_provider.remove' AND reason = ?`,
			e.medway.ID, "Medway moved to a new tenant"); n != 1 {
			t.Errorf("%d removal audit entries, want 1 with the reason", n)
		}

		// Registered again at the same issuer: the same learner signs in.
		e.api.MustDo(e.api.BootstrapToken(), `mutation($o: ID!, $in: IdentityProviderInput!) {
			registerIdentityProvider(organisationId: $o, input: $in) { id } }`,
			map[string]any{"o": e.org(t, siMedway), "in": map[string]any{"issuer": e.medway.Issuer.URL(), "clientId": e.medway.ClientID}}, &struct{}{})
		if v := e.signedIn(t, tok); v.Learner.ID != learner.ID {
			t.Fatalf("after re-registration signed in as %s, want the same learner %s", v.Learner.ID, learner.ID)
		}
	})
}
