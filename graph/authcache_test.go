package graph_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"

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

// CTL-12: the cache is dropped by what changes grants, not by learners
// signing in or being erased. A first sign-in links a new learner identity,
// an erasure removes one, and neither changes anyone's grants, so an
// admin's and an LMS key's next requests still read neither their token's
// identity nor their grants (during a cohort's first sign-ins, they would
// otherwise be read again after each one).
func TestAuthCache_CTL12_AFirstSignInKeepsOtherCallersCached(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			sys := lifecycle.WithSystem(context.Background(), "test")
			iss := api.NewIssuer()
			if _, err := api.Service.RegisterIdentityProvider(sys, "", p.Orgs["Kent County Council"].ID,
				lifecycle.IdentityProviderInput{Issuer: iss.URL(), ClientID: "rollcall-kcc"}); err != nil {
				t.Fatal(err)
			}
			_, key, err := api.Service.IssueAPIKey(sys, p.ID, "cache LMS")
			if err != nil {
				t.Fatal(err)
			}
			boot := api.BootstrapToken()
			const read = `query($p: ID!) { programme(id: $p) { name } }`
			const feed = `query($p: ID!) { lifecycleEvents(programmeId: $p, first: 10) { cursor } }`
			vars := map[string]any{"p": p.ID}
			count := func(tok, q string) int64 {
				t.Helper()
				api.Service.SettleReadAhead() // a full feed page's next page, read ahead, is not this request's
				api.Statements.Store(0)
				api.MustDo(tok, q, vars, &struct{}{})
				api.Service.SettleReadAhead()
				return api.Statements.Load()
			}
			verified := true
			signIn := func(i int) string {
				t.Helper()
				tok, err := iss.Mint(oidcissuer.Claims{Subject: fmt.Sprintf("cohort-%d", i), Audience: []string{"rollcall-kcc"},
					Email: fmt.Sprintf("cohort.%d@kent.gov.uk", i), EmailVerified: &verified, GivenName: "Ann", FamilyName: "Lee",
					IssuedAt: api.Clock.Now(), Expiry: api.Clock.Now().Add(time.Hour)})
				if err != nil {
					t.Fatal(err)
				}
				var out struct {
					Viewer struct{ Learner *struct{ ID string } }
				}
				api.MustDo(tok, `{ viewer { learner { id } } }`, nil, &out)
				if out.Viewer.Learner == nil {
					t.Fatalf("cohort member %d was not provisioned", i)
				}
				return tok
			}
			signIn(0) // the issuer's keys and the reference rows cached
			count(boot, read)
			count(key, feed)
			adminWarm, keyWarm := count(boot, read), count(key, feed)
			same := func(after string) {
				t.Helper()
				if n := count(boot, read); n != adminWarm {
					t.Fatalf("after %s the admin's read ran %d statements, %d before: their grants were read again", after, n, adminWarm)
				}
				if n := count(key, feed); n != keyWarm {
					t.Fatalf("after %s the LMS's feed page ran %d statements, %d before: the key was read again", after, n, keyWarm)
				}
			}
			var toks []string
			for i := 1; i <= 3; i++ {
				toks = append(toks, signIn(i))
				same(fmt.Sprintf("first sign-in %d", i))
			}
			// A learner withdrawing consent is erased at once in Connect to
			// Learn (CTL-8): their identity goes, no one's grants change.
			var out struct {
				WithdrawConsent struct{ Learner *struct{ Status string } }
			}
			api.MustDo(toks[0], `mutation { withdrawConsent(reason: "leaving") { learner { status } } }`, nil, &out)
			if out.WithdrawConsent.Learner != nil && out.WithdrawConsent.Learner.Status != "ERASED" {
				t.Fatalf("withdrawn learner is %s, want erased at once", out.WithdrawConsent.Learner.Status)
			}
			if n := testkit.Count(t, api.Store, `SELECT count(*) FROM learner_identities WHERE subject = ?`, "cohort-1"); n != 0 {
				t.Fatalf("the erased learner's identity is still linked (%d)", n)
			}
			same("an erasure")
			// A grant, to anyone, still drops the cache at once.
			api.Grant("someone-else", domain.RoleAuditor, p.ID, nil, nil)
			if n := count(boot, read); n <= adminWarm {
				t.Fatalf("after a grant the admin's read ran %d statements, as warm (%d): the cache outlived a grant", n, adminWarm)
			}
		})
	}
}
