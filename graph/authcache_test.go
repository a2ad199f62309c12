package graph_test

import (
	"testing"

	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// CTL-12: the verified token and the caller's grants are cached between
// requests (a returning caller's request reads neither), yet a grant or a
// revocation takes effect on the very next request of the same token.
func TestAuthCache_CTL12_GrantAndRevokeTakeEffectOnTheNextRequest(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			boot := api.BootstrapToken()
			alice := api.Token("alice-staff")
			const read = `query($p: ID!) { programme(id: $p) { name } }`
			vars := map[string]any{"p": p.ID}
			grant := func() string {
				var out struct{ GrantRole struct{ ID string } }
				api.MustDo(boot, `mutation($in: GrantRoleInput!) { grantRole(input: $in) { id } }`, map[string]any{"in": map[string]any{
					"issuer": api.Issuer.URL(), "subject": "alice-staff", "role": "AUDITOR", "programmeId": p.ID}}, &out)
				return out.GrantRole.ID
			}
			revoke := func(id string) {
				api.MustDo(boot, `mutation($id: ID!) { revokeRole(grantId: $id) }`, map[string]any{"id": id}, &struct{}{})
			}
			readAs := func(tok string) (string, int64) {
				api.Statements.Store(0)
				r := api.Do(tok, read, vars)
				return r.Code(), api.Statements.Load()
			}

			id := grant()
			code, first := readAs(alice)
			if code != "" {
				t.Fatalf("granted AUDITOR, alice's read: %s", code)
			}
			code, again := readAs(alice)
			if code != "" || again >= first {
				t.Fatalf("returning caller: %q, %d statements after %d: grants and identity must come from the cache", code, again, first)
			}
			revoke(id)
			if code, _ := readAs(alice); code == "" {
				t.Fatal("revoked: alice still reads the programme with the same token")
			}
			grant()
			if code, _ := readAs(alice); code != "" {
				t.Fatalf("granted again: %s", code)
			}
			// The bootstrap admin's own requests are cached the same way.
			_, b1 := readAs(boot)
			_, b2 := readAs(boot)
			if b2 > b1 {
				t.Fatalf("bootstrap admin: %d statements, then %d", b1, b2)
			}
		})
	}
}

// CTL-12: an LMS's API key is resolved once and then cached with its grants,
// so a feed page with a key seen before runs only the feed's own statement;
// revoking the key refuses its very next request.
func TestAuthCache_CTL12_APIKeyCachedAndRevokedAtOnce(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			boot := api.BootstrapToken()
			var issued struct {
				IssueAPIKey struct {
					Secret string
					APIKey struct{ ID string } `json:"apiKey"`
				} `json:"issueApiKey"`
			}
			api.MustDo(boot, `mutation($p: ID!) { issueApiKey(programmeId: $p, name: "lms") { secret apiKey { id } } }`,
				map[string]any{"p": p.ID}, &issued)
			key := issued.IssueAPIKey.Secret
			api.MustDo(boot, `mutation($o: ID!, $in: LearnerInput!) { createLearner(organisationId: $o, input: $in) { id } }`,
				map[string]any{"o": p.Orgs["Kent County Council"].ID, "in": map[string]any{"email": "ann@kent.gov.uk", "givenName": "Ann", "familyName": "Lee"}}, &struct{}{})
			const page = `query($p: ID!) { lifecycleEvents(programmeId: $p, first: 10) { events { cursor } cursor } }`
			vars := map[string]any{"p": p.ID}
			readAs := func() (string, int64) {
				api.Statements.Store(0)
				r := api.Do(key, page, vars)
				return r.Code(), api.Statements.Load()
			}
			if code, _ := readAs(); code != "" {
				t.Fatalf("the LMS's first page: %s", code)
			}
			// Warm: the feed page (the learner's event) is read with its
			// purge horizon in one statement.
			if code, n := readAs(); code != "" || n != 1 {
				t.Fatalf("a returning LMS's page: %q, %d statements; want 1 (key, grants and programme cached)", code, n)
			}
			api.MustDo(boot, `mutation($id: ID!) { revokeApiKey(apiKeyId: $id) { id } }`, map[string]any{"id": issued.IssueAPIKey.APIKey.ID}, &struct{}{})
			if code, _ := readAs(); code != "UNAUTHENTICATED" {
				t.Fatalf("revoked key, next request: %q, want UNAUTHENTICATED", code)
			}
		})
	}
}
