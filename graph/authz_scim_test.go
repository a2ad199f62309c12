package graph_test

// SCIM token management in the authorisation matrix (authz_test.go):
// programme admins and the organisation's own admins issue, list and revoke
// an organisation's tokens; internal/scim tests what a token can do.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func authzScimOperations(ops map[string]authzOp) {
	for _, target := range []string{"ownOrg", "otherOrg"} {
		ops["scimTokens@"+target] = azOpScimTokens(target)
		ops["issueScimToken@"+target] = azOpIssueScimToken(target)
		ops["revokeScimToken@"+target] = azOpRevokeScimToken(target)
	}
}

type authzScimToken struct {
	ID, OrganisationID, Name, Prefix string
	RevokedAt                        *string
}

const authzScimTokenFields = `id organisationId name prefix createdAt lastUsedAt revokedAt`

func (e *authzEnv) newScimToken(t *testing.T, orgID string) (authzScimToken, string) {
	t.Helper()
	var out struct {
		IssueScimToken struct {
			Token  authzScimToken
			Secret string
		}
	}
	e.boot(t, `mutation($o: ID!, $n: String!) { issueScimToken(organisationId: $o, name: $n) { token { `+authzScimTokenFields+` } secret } }`,
		map[string]any{"o": orgID, "n": e.uniq("authorisation matrix fixture token ")}, &out)
	return out.IssueScimToken.Token, out.IssueScimToken.Secret
}

func (e *authzEnv) scimTokens(t *testing.T, orgID string) []authzScimToken {
	t.Helper()
	var out struct{ ScimTokens []authzScimToken }
	e.boot(t, `query($o: ID!) { scimTokens(organisationId: $o) { `+authzScimTokenFields+` } }`, map[string]any{"o": orgID}, &out)
	return out.ScimTokens
}

// scimStatus presents a SCIM secret to /scim/v2/Users.
func (e *authzEnv) scimStatus(t *testing.T, secret string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.api.Server.URL+"/scim/v2/Users?count=1", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	res, err := e.api.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func azOpScimTokens(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		org := e.org(target)
		tok, _ := e.newScimToken(t, org.ID)
		vars := map[string]any{"o": org.ID}
		return authzCall{
			query:   `query($o: ID!) { scimTokens(organisationId: $o) { ` + authzScimTokenFields + ` } }`,
			vars:    vars,
			missing: authzWith(vars, "o", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct{ ScimTokens []authzScimToken }
				authzDecode(t, data, &out)
				found := false
				for _, x := range out.ScimTokens {
					found = found || x.ID == tok.ID
					if x.OrganisationID != org.ID {
						t.Errorf("scimTokens(%s) lists a token of %s", org.ID, x.OrganisationID)
					}
				}
				if !found {
					t.Errorf("scimTokens lacks %s: %+v", tok.ID, out.ScimTokens)
				}
				if strings.Contains(string(data), "rcs_") && !strings.Contains(string(data), `"prefix":"rcs_`) {
					t.Errorf("a secret is listed: %s", data)
				}
			},
		}
	}
}

func azOpIssueScimToken(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		org := e.org(target)
		name := e.uniq("matrix token ")
		vars := map[string]any{"o": org.ID, "n": name}
		issued := func(t *testing.T) (authzScimToken, bool) {
			for _, x := range e.scimTokens(t, org.ID) {
				if x.Name == name {
					return x, true
				}
			}
			return authzScimToken{}, false
		}
		return authzCall{
			query:   `mutation($o: ID!, $n: String!) { issueScimToken(organisationId: $o, name: $n) { token { ` + authzScimTokenFields + ` } secret } }`,
			vars:    vars,
			missing: authzWith(vars, "o", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					IssueScimToken struct {
						Token  authzScimToken
						Secret string
					}
				}
				authzDecode(t, data, &out)
				tok := out.IssueScimToken.Token
				if tok.OrganisationID != org.ID || tok.Name != name || !strings.HasPrefix(out.IssueScimToken.Secret, tok.Prefix) {
					t.Fatalf("issueScimToken = %+v", out.IssueScimToken)
				}
				if got, ok := issued(t); !ok || got.ID != tok.ID {
					t.Errorf("follow-up read: %+v", got)
				}
				if s := e.scimStatus(t, out.IssueScimToken.Secret); s != http.StatusOK {
					t.Errorf("the new token answers %d", s)
				}
				e.expectAudit(t, e.ctl.ID, tok.ID, "scim_token.issue", who, nil)
			},
			unchanged: func(t *testing.T) {
				if got, ok := issued(t); ok {
					t.Errorf("refused issueScimToken created %+v", got)
				}
			},
		}
	}
}

func azOpRevokeScimToken(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		org := e.org(target)
		tok, secret := e.newScimToken(t, org.ID)
		vars := map[string]any{"id": tok.ID}
		return authzCall{
			query:   `mutation($id: ID!) { revokeScimToken(tokenId: $id) }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct{ RevokeScimToken bool }
				authzDecode(t, data, &out)
				if !out.RevokeScimToken {
					t.Fatal("revokeScimToken = false")
				}
				if s := e.scimStatus(t, secret); s != http.StatusUnauthorized {
					t.Errorf("the revoked token answers %d, want 401 at once", s)
				}
				e.expectAudit(t, e.ctl.ID, tok.ID, "scim_token.revoke", who, nil)
			},
			unchanged: func(t *testing.T) {
				if s := e.scimStatus(t, secret); s != http.StatusOK {
					t.Errorf("refused revokeScimToken: the token answers %d", s)
				}
			},
		}
	}
}
