package graph_test

import (
	"context"
	"net/url"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// An LMS may also authenticate with an OAuth2 client-credentials token from
// a registered provider, when its client ID holds the LMS grant (CTL-10,
// CTL-12): it then does the LMS operations of its programme and nothing else.
func TestLMS_CTL12_ClientCredentialsTokenWithLMSGrant(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			idp := api.NewIssuer()
			idp.RegisterClient("moodle-sync", "s3cret")
			idp.RegisterClient("intruder", "other")

			boot := api.BootstrapToken()
			var reg struct{ RegisterProgrammeIdentityProvider struct{ ID string } }
			api.MustDo(boot, `mutation($p: ID!, $i: String!) { registerProgrammeIdentityProvider(programmeId: $p,
				input: {issuer: $i, clientId: "rollcall", audience: "rollcall-lms"}) { id } }`,
				map[string]any{"p": p.ID, "i": idp.URL()}, &reg)
			var g struct{ GrantRole struct{ ID string } }
			api.MustDo(boot, `mutation($p: ID!, $i: String!) { grantRole(input: {programmeId: $p, role: LMS, issuer: $i, subject: "moodle-sync"}) { id } }`,
				map[string]any{"p": p.ID, "i": idp.URL()}, &g)

			token := func(id, secret string) string {
				cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: idp.URL() + "/token",
					EndpointParams: url.Values{"audience": {"rollcall-lms"}}}
				tok, err := cc.Token(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return tok.AccessToken
			}
			lms := token("moodle-sync", "s3cret")
			q := `query($p: ID!) { enrolments(programmeId: $p, first: 10) { enrolments { learnerId } hasNextPage asOf } }`
			var out struct {
				Enrolments struct{ AsOf *string }
			}
			api.MustDo(lms, q, map[string]any{"p": p.ID}, &out)
			if out.Enrolments.AsOf == nil {
				t.Fatal("the LMS token read no asOf")
			}
			// Nothing but the LMS operations of its programme.
			r := api.Do(lms, `mutation($p: ID!) { createCourse(programmeId: $p, input: {lmsCourseId: "X-1", title: "x"}) { id } }`, map[string]any{"p": p.ID})
			if r.Code() != "FORBIDDEN" {
				t.Fatalf("createCourse with the LMS token: %s %+v", r.Code(), r.Errors)
			}
			// Another client of the same provider holds no grant: not the programme's LMS.
			r = api.Do(token("intruder", "other"), q, map[string]any{"p": p.ID})
			if r.Code() != "NOT_FOUND" {
				t.Fatalf("a client without the LMS grant: %s %+v", r.Code(), r.Errors)
			}
			// Revoking the grant ends it.
			api.MustDo(boot, `mutation($g: ID!) { revokeRole(grantId: $g) }`, map[string]any{"g": g.GrantRole.ID}, &struct{ RevokeRole bool }{})
			if r = api.Do(lms, q, map[string]any{"p": p.ID}); r.Code() != "NOT_FOUND" {
				t.Fatalf("after revokeRole: %s %+v", r.Code(), r.Errors)
			}
		})
	}
}
