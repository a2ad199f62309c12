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
