package scim_test

// SCIM 2.0 over real HTTP on both databases, with request bodies shaped as
// Microsoft Entra ID and Okta document them:
//   - Entra: "Tutorial: Develop and plan provisioning for a SCIM endpoint"
//     (https://learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups),
//     its Create User, Get User by query, Update User and Disable User
//     examples; and the aadOptscim062020 behaviour
//     (https://learn.microsoft.com/en-us/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility).
//   - Okta: "Okta and SCIM Version 2.0"
//     (https://developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20),
//     its Create Users, Retrieve Users (filter + startIndex + count),
//     Update a specific User (PUT) and deactivate (PATCH without a path).
//
// The tokens are issued through GraphQL as an admin would; the directory is
// a plain HTTP client.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

type env struct {
	api         *testkit.API
	ctl         testkit.Programme
	kcc, medway string // organisation IDs
	kccToken    string // a SCIM secret of Kent County Council
}

func each(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			e := &env{api: api, ctl: testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")}
			e.kcc = e.ctl.Orgs["Kent County Council"].ID
			e.medway = e.ctl.Orgs["Medway Council"].ID
			e.kccToken = e.issue(t, e.api.BootstrapToken(), e.kcc, "Entra ID")
			fn(t, e)
		})
	}
}

const issueQ = `mutation($o: ID!, $n: String!) { issueScimToken(organisationId: $o, name: $n) { secret token { id name createdAt lastUsedAt } } }`

func (e *env) issue(t *testing.T, adminToken, orgID, name string) string {
	t.Helper()
	var out struct {
		IssueScimToken struct {
			Secret string
			Token  struct{ ID string }
		}
	}
	e.api.MustDo(adminToken, issueQ, map[string]any{"o": orgID, "n": name}, &out)
	if !strings.HasPrefix(out.IssueScimToken.Secret, "rcs_") {
		t.Fatalf("secret %q", out.IssueScimToken.Secret)
	}
	return out.IssueScimToken.Secret
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r reply) str(k string) string { s, _ := r.body[k].(string); return s }

// do sends one SCIM request as a directory would.
func (e *env) do(t *testing.T, token, method, path, body string, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.api.Server.URL+"/scim/v2"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.api.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := reply{status: res.StatusCode, header: res.Header, raw: string(b)}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %s", method, path, res.StatusCode, b)
		}
	}
	return r
}

func (e *env) want(t *testing.T, r reply, status int) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

func filterPath(f string, extra ...string) string {
	p := "/Users?filter=" + url.QueryEscape(f)
	for _, x := range extra {
		p += "&" + x
	}
	return p
}

// learnerRow reads the learner behind a SCIM user.
func (e *env) learner(t *testing.T, id string) (status, reason string, email, given *string, version int) {
	t.Helper()
	var rs *string
	err := e.api.Store.SQL().QueryRow(e.api.SQL(`SELECT status, removal_reason, email, given_name, version FROM learners WHERE id = ?`), id).
		Scan(&status, &rs, &email, &given, &version)
	if err != nil {
		t.Fatalf("learner %s: %v", id, err)
	}
	if rs != nil {
		reason = *rs
	}
	return
}

func (e *env) events(t *testing.T, id string) []string {
	t.Helper()
	rows, err := e.api.Store.SQL().Query(e.api.SQL(`SELECT type FROM lifecycle_events WHERE learner_id = ? ORDER BY id`), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

func (e *env) audits(t *testing.T, id string) []string {
	t.Helper()
	rows, err := e.api.Store.SQL().Query(e.api.SQL(`SELECT action || ' by ' || actor_id FROM audit_entries WHERE target_id = ? ORDER BY id`), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

// entraCreate is the Create User request of Entra's tutorial, with a
// council's address, the enterprise extension and the attributes Entra's
// default mappings add (displayName, title, phone numbers).
func entraCreate(userName, externalID string) string {
	return fmt.Sprintf(`{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "externalId": %q,
  "userName": %q,
  "active": true,
  "displayName": "Jane Smith",
  "title": "Social Worker",
  "emails": [{"primary": true, "type": "work", "value": %q}],
  "phoneNumbers": [{"type": "work", "value": "+44 3000 41 41 41"}],
  "meta": {"resourceType": "User"},
  "name": {"formatted": "Jane Smith", "familyName": "Smith", "givenName": "Jane"},
  "roles": [],
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "KCC-001", "department": "Children's Services"}
}`, externalID, userName, strings.ToLower(userName))
}

// oktaCreate is Okta's Create Users request: a placeholder password, extra
// profile attributes, and here no externalId (Okta sometimes sends none).
func oktaCreate(userName string) string {
	return fmt.Sprintf(`{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
  "userName": %q,
  "name": {"givenName": "Test", "familyName": "User"},
  "emails": [{"primary": true, "value": %q, "type": "work"}],
  "displayName": "Test User",
  "locale": "en-US",
  "groups": [],
  "password": "1mz050nq",
  "active": true
}`, userName, userName)
}

const patchOp = `"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`

func patch(ops string) string { return `{` + patchOp + `, "Operations": [` + ops + `]}` }

func TestSCIM_DiscoveryAndConnectionTest(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		for _, p := range []string{"/ServiceProviderConfig", "/ResourceTypes", "/Schemas", "/Users", "/Groups"} {
			r := e.want(t, e.do(t, "", http.MethodGet, p, ""), http.StatusUnauthorized)
			if r.str("status") != "401" || r.header.Get("WWW-Authenticate") == "" {
				t.Fatalf("%s without a token: %s", p, r.raw)
			}
		}
		spc := e.want(t, e.do(t, e.kccToken, http.MethodGet, "/ServiceProviderConfig", ""), http.StatusOK)
		if spc.body["etag"].(map[string]any)["supported"] != true || spc.body["patch"].(map[string]any)["supported"] != true {
			t.Fatalf("service provider config: %s", spc.raw)
		}
		if ct := spc.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/scim+json") {
			t.Fatalf("content type %q", ct)
		}
		rt := e.want(t, e.do(t, e.kccToken, http.MethodGet, "/ResourceTypes", ""), http.StatusOK)
		if !strings.Contains(rt.raw, `"/Users"`) {
			t.Fatalf("resource types: %s", rt.raw)
		}
		e.want(t, e.do(t, e.kccToken, http.MethodGet, "/Schemas", ""), http.StatusOK)
		// Entra's and Okta's connection tests: a user that does not exist, and groups.
		u := e.want(t, e.do(t, e.kccToken, http.MethodGet, filterPath(`userName eq "`+"nobody-"+fmt.Sprint(time.Now().UnixNano())+`@kent.gov.uk"`), ""), http.StatusOK)
		if u.body["totalResults"] != float64(0) || !slices.Contains(anyStrings(u.body["schemas"]), "urn:ietf:params:scim:api:messages:2.0:ListResponse") {
			t.Fatalf("unknown user: %s", u.raw)
		}
		g := e.want(t, e.do(t, e.kccToken, http.MethodGet, "/Groups?startIndex=1&count=100", ""), http.StatusOK)
		if g.body["totalResults"] != float64(0) {
			t.Fatalf("groups: %s", g.raw)
		}
	})
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// The whole Entra story of one person (CTL-9, GEN-4): created, found by a
// mixed-case userName, disabled the pre-aadOptscim062020 way ("Replace",
// "False"), still returned with active false, re-enabled, re-enabled again
// (nothing changes), deleted (204, then 404 and absent from filters), and
// re-assigned within the grace (201, the same learner).
func TestSCIM_Entra_CTL9_GEN4_CreateFindDisableReenableDelete(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		r := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("Jane.Smith@Kent.gov.uk", "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef")), http.StatusCreated)
		id := r.str("id")
		if r.str("userName") != "jane.smith@kent.gov.uk" || r.str("externalId") != "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef" || r.body["active"] != true {
			t.Fatalf("created: %s", r.raw)
		}
		if loc := r.header.Get("Location"); loc != e.api.Server.URL+"/scim/v2/Users/"+id {
			t.Fatalf("location %q", loc)
		}
		meta := r.body["meta"].(map[string]any)
		if meta["resourceType"] != "User" || meta["version"] != r.header.Get("ETag") || meta["created"] == nil || meta["lastModified"] == nil {
			t.Fatalf("meta %v, etag %q", meta, r.header.Get("ETag"))
		}
		if st, _, _, _, _ := e.learner(t, id); st != "PENDING_ACCEPTANCE" {
			t.Fatalf("status %s", st)
		}

		// Entra's "Get User by query", the userName as Entra sends it.
		f := e.want(t, e.do(t, e.kccToken, http.MethodGet, filterPath(`userName eq "Jane.Smith@Kent.gov.uk"`), ""), http.StatusOK)
		if f.body["totalResults"] != float64(1) || f.body["Resources"].([]any)[0].(map[string]any)["id"] != id {
			t.Fatalf("filter: %s", f.raw)
		}

		// Disable, as Entra's tutorial and its pre-2020 string boolean.
		d := e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id, patch(`{"op": "Replace", "path": "active", "value": "False"}`)), http.StatusOK)
		if d.body["active"] != false {
			t.Fatalf("disabled: %s", d.raw)
		}
		st, reason, _, _, _ := e.learner(t, id)
		if st != "REMOVAL_SCHEDULED" || reason != "LEAVER" {
			t.Fatalf("after disable: %s %s", st, reason)
		}
		// Entra's validator: a disabled user is still returned, with active false.
		g := e.want(t, e.do(t, e.kccToken, http.MethodGet, "/Users/"+id, ""), http.StatusOK)
		f = e.want(t, e.do(t, e.kccToken, http.MethodGet, filterPath(`userName eq "jane.smith@kent.gov.uk"`), ""), http.StatusOK)
		if g.body["active"] != false || f.body["totalResults"] != float64(1) || f.body["Resources"].([]any)[0].(map[string]any)["active"] != false {
			t.Fatalf("disabled user read: %s / %s", g.raw, f.raw)
		}

		// Re-enabled within the grace: the directory reverses its own removal (GEN-4).
		e.api.Clock.Advance(24 * time.Hour)
		en := e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id, patch(`{"op": "Replace", "path": "active", "value": "True"}`)), http.StatusOK)
		if en.body["active"] != true {
			t.Fatalf("enabled: %s", en.raw)
		}
		st, _, _, _, version := e.learner(t, id)
		if st != "PENDING_ACCEPTANCE" {
			t.Fatalf("after enable: %s", st)
		}
		evs := e.events(t, id)

		// Entra re-sends active=true: nothing changes, no version, no event.
		again := e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id, patch(`{"op": "replace", "path": "active", "value": true}`)), http.StatusOK)
		if _, _, _, _, v := e.learner(t, id); v != version || len(e.events(t, id)) != len(evs) || again.header.Get("ETag") != en.header.Get("ETag") {
			t.Fatalf("active=true for an active user changed something: version %d→%d, events %d→%d", version, v, len(evs), len(e.events(t, id)))
		}

		// Hard delete: 204, then 404 and gone from filters; the learner is a leaver.
		e.want(t, e.do(t, e.kccToken, http.MethodDelete, "/Users/"+id, ""), http.StatusNoContent)
		e.want(t, e.do(t, e.kccToken, http.MethodGet, "/Users/"+id, ""), http.StatusNotFound)
		e.want(t, e.do(t, e.kccToken, http.MethodDelete, "/Users/"+id, ""), http.StatusNotFound)
		f = e.want(t, e.do(t, e.kccToken, http.MethodGet, filterPath(`userName eq "jane.smith@kent.gov.uk"`), ""), http.StatusOK)
		if f.body["totalResults"] != float64(0) {
			t.Fatalf("deleted user still listed: %s", f.raw)
		}
		if st, reason, _, _, _ := e.learner(t, id); st != "REMOVAL_SCHEDULED" || reason != "LEAVER" {
			t.Fatalf("after delete: %s %s", st, reason)
		}

		// Re-assigned in Entra within the grace: POST re-joins the same learner.
		re := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("Jane.Smith@Kent.gov.uk", "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef")), http.StatusCreated)
		if re.str("id") != id || re.body["active"] != true {
			t.Fatalf("re-join: %s", re.raw)
		}
		if st, _, _, _, _ := e.learner(t, id); st != "PENDING_ACCEPTANCE" {
			t.Fatalf("after re-join: %s", st)
		}
		wantEvents := []string{"LEARNER_PROVISIONED", "REMOVAL_SCHEDULED", "REMOVAL_CANCELLED", "REMOVAL_SCHEDULED", "REMOVAL_CANCELLED"}
		if got := e.events(t, id); !slices.Equal(got, wantEvents) {
			t.Fatalf("feed %v, want %v", got, wantEvents)
		}
		// Every change is audited, by the token (an opaque actor).
		audits := strings.Join(e.audits(t, id), "\n")
		for _, a := range []string{"learner.create by scim:", "learner.leaver by scim:", "learner.reinstate by scim:", "learner.directory_delete by scim:", "learner.directory_rejoin by scim:"} {
			if !strings.Contains(audits, a) {
				t.Fatalf("audit lacks %q:\n%s", a, audits)
			}
		}
	})
}

// GEN-4 and CTL-9: a leaver an admin marked stays one whatever the directory
// says (Entra re-sends active=true periodically); so does one the directory
// disabled after the grace has passed.
func TestSCIM_GEN4_DirectoryNeverUndoesAnAdminsLeaver(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		id := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("a.leaver@kent.gov.uk", "ext-1")), http.StatusCreated).str("id")
		var out struct{ MarkLeaver struct{ Status string } }
		e.api.MustDo(e.api.BootstrapToken(), `mutation($id: ID!) { markLeaver(learnerId: $id, reason: "left in March") { status } }`, map[string]any{"id": id}, &out)
		_, _, _, _, version := e.learner(t, id)
		evs := e.events(t, id)
		r := e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id, patch(`{"op": "replace", "value": {"active": true}}`)), http.StatusOK)
		if r.body["active"] != false {
			t.Fatalf("admin's leaver shown active: %s", r.raw)
		}
		if st, reason, _, _, v := e.learner(t, id); st != "REMOVAL_SCHEDULED" || reason != "LEAVER" || v != version || len(e.events(t, id)) != len(evs) {
			t.Fatalf("directory undid an admin's leaver: %s %s v%d", st, reason, v)
		}
		// A POST of the same userName is no re-join either.
		e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("a.leaver@kent.gov.uk", "ext-1")), http.StatusConflict)

		// The directory's own removal, after the grace: not reversed.
		id2 := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("b.leaver@kent.gov.uk", "ext-2")), http.StatusCreated).str("id")
		e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id2, patch(`{"op": "replace", "path": "active", "value": false}`)), http.StatusOK)
		e.api.Clock.Advance(8 * 24 * time.Hour)
		r = e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id2, patch(`{"op": "replace", "path": "active", "value": true}`)), http.StatusOK)
		if st, _, _, _, _ := e.learner(t, id2); st != "REMOVAL_SCHEDULED" || r.body["active"] != false {
			t.Fatalf("reinstated after the grace: %s %s", st, r.raw)
		}
	})
}

// Okta: check by userName with startIndex and count, create with a
// placeholder password and extra attributes (dropped, CTL-3), deactivate
// with a path-less replace, reactivate and rename with PUT (AIW apps).
func TestSCIM_Okta_CTL3_CTL9_CheckCreateDeactivatePut(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		okta := e.issue(t, e.api.BootstrapToken(), e.kcc, "Okta")
		chk := e.want(t, e.do(t, okta, http.MethodGet, filterPath(`userName eq "test.user@kent.gov.uk"`, "startIndex=1", "count=100"), ""), http.StatusOK)
		if chk.body["totalResults"] != float64(0) || chk.body["startIndex"] != float64(1) {
			t.Fatalf("check: %s", chk.raw)
		}
		c := e.want(t, e.do(t, okta, http.MethodPost, "/Users", oktaCreate("test.user@kent.gov.uk")), http.StatusCreated)
		id := c.str("id")
		for _, k := range []string{"password", "displayName", "locale", "groups", "externalId"} {
			if _, ok := c.body[k]; ok {
				t.Fatalf("%s echoed (CTL-3): %s", k, c.raw)
			}
		}
		if strings.Contains(c.raw, "1mz050nq") {
			t.Fatalf("password echoed: %s", c.raw)
		}
		// Nothing but the name and the email is stored.
		if n := e.api.Count(`SELECT count(*) FROM learners WHERE id = ? AND given_name = 'Test' AND family_name = 'User' AND email = 'test.user@kent.gov.uk'`, id); n != 1 {
			t.Fatal("learner not stored as name and email")
		}
		e.want(t, e.do(t, okta, http.MethodPatch, "/Users/"+id, patch(`{"op": "replace", "value": {"active": false}}`)), http.StatusOK)
		if st, reason, _, _, _ := e.learner(t, id); st != "REMOVAL_SCHEDULED" || reason != "LEAVER" {
			t.Fatalf("deactivated: %s %s", st, reason)
		}
		// Okta's PUT sends the whole user back, id and meta included.
		put := fmt.Sprintf(`{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
  "id": %q,
  "userName": "test.user2@kent.gov.uk",
  "name": {"givenName": "Another", "familyName": "User"},
  "emails": [{"primary": true, "value": "test.user2@kent.gov.uk", "type": "work"}],
  "displayName": "Another User",
  "locale": "en-US",
  "groups": [],
  "password": "t1meMa$heen",
  "active": true,
  "meta": {"resourceType": "User"}
}`, id)
		p := e.want(t, e.do(t, okta, http.MethodPut, "/Users/"+id, put), http.StatusOK)
		if p.str("userName") != "test.user2@kent.gov.uk" || p.body["active"] != true || p.body["name"].(map[string]any)["givenName"] != "Another" {
			t.Fatalf("put: %s", p.raw)
		}
		if st, _, email, given, _ := e.learner(t, id); st != "PENDING_ACCEPTANCE" || *email != "test.user2@kent.gov.uk" || *given != "Another" {
			t.Fatalf("after put: %s %s %s", st, *email, *given)
		}
		got := e.events(t, id)
		if !slices.Contains(got, "REMOVAL_CANCELLED") || !slices.Contains(got, "LEARNER_UPDATED") {
			t.Fatalf("feed %v", got)
		}
	})
}

// Since aadOptscim062020 Entra sends lower-case ops, real booleans, "Add"
// for attributes that were empty, path-less replaces keyed by dotted paths,
// and value paths such as emails[type eq "work"].value. The names change;
// the other attributes are accepted and dropped (CTL-3).
func TestSCIM_CTL3_EntraPatchShapes(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		id := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("p.shape@kent.gov.uk", "ext-p")), http.StatusCreated).str("id")
		r := e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id, patch(`
  {"op": "replace", "value": {"name.givenName": "Janet", "name.familyName": "Smythe"}},
  {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "p.shape@kent.gov.uk"},
  {"op": "Add", "path": "title", "value": "Team Manager"},
  {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Adult Social Care"},
  {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+44 7700 900000"},
  {"op": "replace", "path": "displayName", "value": "Janet Smythe"}`)), http.StatusOK)
		name := r.body["name"].(map[string]any)
		if name["givenName"] != "Janet" || name["familyName"] != "Smythe" {
			t.Fatalf("names: %s", r.raw)
		}
		if strings.Contains(r.raw, "Team Manager") || strings.Contains(r.raw, "Adult Social Care") || strings.Contains(r.raw, "7700") {
			t.Fatalf("dropped attributes echoed: %s", r.raw)
		}
		if _, _, _, given, _ := e.learner(t, id); *given != "Janet" {
			t.Fatalf("given name %s", *given)
		}
		if ev := e.events(t, id); ev[len(ev)-1] != "LEARNER_UPDATED" {
			t.Fatalf("feed %v", ev)
		}
		// A path-less replace of the whole name object, and of externalId.
		e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id, patch(`{"op": "replace", "value": {"name": {"givenName": "Jan", "familyName": "Smythe"}, "externalId": "ext-p2"}}`)), http.StatusOK)
		g := e.want(t, e.do(t, e.kccToken, http.MethodGet, filterPath(`externalId eq "ext-p2"`), ""), http.StatusOK)
		if g.body["totalResults"] != float64(1) || g.body["Resources"].([]any)[0].(map[string]any)["name"].(map[string]any)["givenName"] != "Jan" {
			t.Fatalf("after name object: %s", g.raw)
		}
		// Removing the name is refused and changes nothing.
		bad := e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id, patch(`{"op": "remove", "path": "name.givenName"}`)), http.StatusBadRequest)
		if bad.str("status") != "400" || bad.str("scimType") == "" {
			t.Fatalf("remove name: %s", bad.raw)
		}
	})
}

// A userName change to another of the organisation's domains is allowed;
// to another organisation's domain, or a domain nobody owns, it is 400
// invalidValue and changes nothing (CTL-3, invariant 1).
func TestSCIM_CTL3_Invariant1_RenameWithinTheOrganisationOnly(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		var dom struct{ AddEmailDomain struct{ Domain string } }
		e.api.MustDo(e.api.BootstrapToken(), `mutation($o: ID!) { addEmailDomain(organisationId: $o, domain: "kentcountycouncil.org.uk") { domain } }`,
			map[string]any{"o": e.kcc}, &dom)
		id := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("r.name@kent.gov.uk", "ext-r")), http.StatusCreated).str("id")
		// Entra's "Update User [Single-valued properties]".
		r := e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id, patch(`{"op": "Replace", "path": "userName", "value": "R.Name@KentCountyCouncil.org.uk"}`)), http.StatusOK)
		if r.str("userName") != "r.name@kentcountycouncil.org.uk" {
			t.Fatalf("rename: %s", r.raw)
		}
		_, _, _, _, version := e.learner(t, id)
		for _, to := range []string{"r.name@medway.gov.uk", "r.name@gmail.com", "not an address"} {
			bad := e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id, patch(`{"op": "Replace", "path": "userName", "value": "`+to+`"}`)), http.StatusBadRequest)
			if bad.str("scimType") != "invalidValue" || bad.str("status") != "400" {
				t.Fatalf("rename to %s: %s", to, bad.raw)
			}
		}
		if _, _, email, _, v := e.learner(t, id); *email != "r.name@kentcountycouncil.org.uk" || v != version {
			t.Fatalf("refused rename changed the learner: %s v%d", *email, v)
		}
		// Creating in another organisation's domain: refused, nothing written.
		before := e.api.Count(`SELECT count(*) FROM learners`)
		bad := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("someone@medway.gov.uk", "ext-m")), http.StatusBadRequest)
		if bad.str("scimType") != "invalidValue" || e.api.Count(`SELECT count(*) FROM learners`) != before {
			t.Fatalf("foreign domain: %s", bad.raw)
		}
		// The same userName twice: 409 uniqueness; the same externalId too.
		dup := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("r.name@kentcountycouncil.org.uk", "other")), http.StatusConflict)
		if dup.str("scimType") != "uniqueness" {
			t.Fatalf("duplicate: %s", dup.raw)
		}
		dupx := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("x.other@kent.gov.uk", "ext-r")), http.StatusConflict)
		if dupx.str("scimType") != "uniqueness" || e.api.Count(`SELECT count(*) FROM learners WHERE email = 'x.other@kent.gov.uk'`) != 0 {
			t.Fatalf("duplicate externalId: %s", dupx.raw)
		}
	})
}

// Invariant 1, CTL-10: Medway's token reaches no Kent County Council user,
// by ID or by filter; a revoked token, an unknown one and an LMS key are 401.
func TestSCIM_Invariant1_TokenIsScopedToItsOrganisation(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		id := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("scoped@kent.gov.uk", "ext-s")), http.StatusCreated).str("id")
		medway := e.issue(t, e.api.BootstrapToken(), e.medway, "Medway Entra")
		e.want(t, e.do(t, medway, http.MethodGet, "/Users/"+id, ""), http.StatusNotFound)
		e.want(t, e.do(t, medway, http.MethodPatch, "/Users/"+id, patch(`{"op": "replace", "path": "active", "value": false}`)), http.StatusNotFound)
		e.want(t, e.do(t, medway, http.MethodPut, "/Users/"+id, oktaCreate("scoped@kent.gov.uk")), http.StatusNotFound)
		e.want(t, e.do(t, medway, http.MethodDelete, "/Users/"+id, ""), http.StatusNotFound)
		l := e.want(t, e.do(t, medway, http.MethodGet, filterPath(`userName eq "scoped@kent.gov.uk"`), ""), http.StatusOK)
		all := e.want(t, e.do(t, medway, http.MethodGet, "/Users", ""), http.StatusOK)
		if l.body["totalResults"] != float64(0) || all.body["totalResults"] != float64(0) {
			t.Fatalf("Medway sees Kent: %s %s", l.raw, all.raw)
		}
		if st, _, _, _, _ := e.learner(t, id); st != "PENDING_ACCEPTANCE" {
			t.Fatalf("Medway's token changed a Kent learner: %s", st)
		}
		// Medway's token cannot create in Kent's domain either.
		e.want(t, e.do(t, medway, http.MethodPost, "/Users", entraCreate("other@kent.gov.uk", "x")), http.StatusBadRequest)

		// Revoked: 401 at once. Unknown and LMS keys: 401.
		var list struct {
			ScimTokens []struct{ ID, Name, Prefix string }
		}
		e.api.MustDo(e.api.BootstrapToken(), `query($o: ID!) { scimTokens(organisationId: $o) { id name prefix lastUsedAt } }`, map[string]any{"o": e.medway}, &list)
		if len(list.ScimTokens) != 1 || !strings.HasPrefix(medway, list.ScimTokens[0].Prefix) {
			t.Fatalf("tokens: %+v", list)
		}
		var rv struct{ RevokeScimToken bool }
		e.api.MustDo(e.api.BootstrapToken(), `mutation($id: ID!) { revokeScimToken(tokenId: $id) }`, map[string]any{"id": list.ScimTokens[0].ID}, &rv)
		for _, tok := range []string{medway, "rcs_unknown", "rk_notanlmskey", "garbage"} {
			e.want(t, e.do(t, tok, http.MethodGet, "/Users", ""), http.StatusUnauthorized)
		}
		// The revoked token's secret is of no use on /graphql either.
		if r := e.api.Do(medway, `{ viewer { subject } }`, nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("SCIM secret on /graphql: %d", r.Status)
		}
	})
}

// Who manages tokens: programme admins and the organisation's own admins;
// another organisation's admin sees no such organisation.
func TestSCIM_CTL12_TokensAreManagedByTheOrganisationsAdmins(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		kccID, medID := e.kcc, e.medway
		e.api.Grant("kcc-admin", domain.RoleOrganisationAdmin, e.ctl.ID, &kccID, nil)
		e.api.Grant("medway-admin", domain.RoleOrganisationAdmin, e.ctl.ID, &medID, nil)
		own := e.issue(t, e.api.Token("kcc-admin"), e.kcc, "KCC's Entra")
		e.want(t, e.do(t, own, http.MethodGet, "/Users", ""), http.StatusOK)
		r := e.api.Do(e.api.Token("medway-admin"), issueQ, map[string]any{"o": e.kcc, "n": "sneaky"})
		if r.Code() != "NOT_FOUND" {
			t.Fatalf("Medway admin issuing for Kent: %+v", r.Errors)
		}
		r = e.api.Do(e.api.Token("medway-admin"), `query($o: ID!) { scimTokens(organisationId: $o) { id } }`, map[string]any{"o": e.kcc})
		if r.Code() != "NOT_FOUND" {
			t.Fatalf("Medway admin listing Kent's tokens: %+v", r.Errors)
		}
		// Only a hash is stored; lastUsedAt records use (the token of the
		// test's set-up has not been used).
		if n := e.api.Count(`SELECT count(*) FROM scim_tokens WHERE hash = ?`, own); n != 0 {
			t.Fatal("the secret is stored in clear")
		}
		var list struct {
			ScimTokens []struct{ LastUsedAt *time.Time }
		}
		e.api.MustDo(e.api.Token("kcc-admin"), `query($o: ID!) { scimTokens(organisationId: $o) { lastUsedAt } }`, map[string]any{"o": e.kcc}, &list)
		used := 0
		for _, x := range list.ScimTokens {
			if x.LastUsedAt != nil {
				used++
			}
		}
		if len(list.ScimTokens) != 2 || used != 1 || list.ScimTokens[1].LastUsedAt == nil {
			t.Fatalf("tokens %+v", list.ScimTokens)
		}
	})
}

// Paging over 250 users in a stable order, with totalResults; count is capped.
func TestSCIM_PaginationOver250Users(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		rows := make([]map[string]any, 250)
		for i := range rows {
			rows[i] = map[string]any{"email": fmt.Sprintf("staff%03d@kent.gov.uk", i), "givenName": "Staff", "familyName": fmt.Sprintf("Number%d", i)}
		}
		var imp struct {
			ImportLearners struct {
				Created, Failed int
				Lines           []map[string]any
			}
		}
		e.api.MustDo(e.api.BootstrapToken(), `mutation($o: ID!, $rows: [LearnerInput!]!) { importLearners(organisationId: $o, rows: $rows, dryRun: false) { created failed lines { row code reason message } } }`,
			map[string]any{"o": e.kcc, "rows": rows}, &imp)
		if imp.ImportLearners.Created != 250 {
			t.Fatalf("imported %d: %v", imp.ImportLearners.Created, imp.ImportLearners.Lines[:min(3, len(imp.ImportLearners.Lines))])
		}
		seen := map[string]bool{}
		var order []string
		for start := 1; start <= 250; start += 100 {
			r := e.want(t, e.do(t, e.kccToken, http.MethodGet, fmt.Sprintf("/Users?startIndex=%d&count=100", start), ""), http.StatusOK)
			if r.body["totalResults"] != float64(250) || r.body["startIndex"] != float64(start) {
				t.Fatalf("page %d: %v %v", start, r.body["totalResults"], r.body["startIndex"])
			}
			res := r.body["Resources"].([]any)
			if want := min(100, 251-start); len(res) != want {
				t.Fatalf("page %d has %d, want %d", start, len(res), want)
			}
			for _, x := range res {
				id := x.(map[string]any)["id"].(string)
				if seen[id] {
					t.Fatalf("%s twice", id)
				}
				seen[id] = true
				order = append(order, id)
			}
		}
		if len(seen) != 250 || !slices.IsSorted(order) {
			t.Fatalf("%d users, sorted %v", len(seen), slices.IsSorted(order))
		}
		big := e.want(t, e.do(t, e.kccToken, http.MethodGet, "/Users?count=1000", ""), http.StatusOK)
		if n := len(big.body["Resources"].([]any)); n != 200 {
			t.Fatalf("count=1000 gave %d", n)
		}
		past := e.want(t, e.do(t, e.kccToken, http.MethodGet, "/Users?startIndex=300&count=10", ""), http.StatusOK)
		if past.body["totalResults"] != float64(250) {
			t.Fatalf("past the end: %s", past.raw)
		}
	})
}

// ETags: GET's ETag is meta.version; a stale If-Match is 412 and changes
// nothing; a change moves the ETag.
func TestSCIM_ETagPreconditions(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		c := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("etag@kent.gov.uk", "ext-e")), http.StatusCreated)
		id, tag := c.str("id"), c.header.Get("ETag")
		g := e.want(t, e.do(t, e.kccToken, http.MethodGet, "/Users/"+id, ""), http.StatusOK)
		if g.header.Get("ETag") != tag || !strings.HasPrefix(tag, `W/"`) {
			t.Fatalf("etag %q vs %q", g.header.Get("ETag"), tag)
		}
		p := e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id, patch(`{"op": "replace", "path": "name.givenName", "value": "Etta"}`), "If-Match", tag), http.StatusOK)
		if p.header.Get("ETag") == tag {
			t.Fatal("the ETag did not move")
		}
		stale := e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id, patch(`{"op": "replace", "path": "name.givenName", "value": "Stale"}`), "If-Match", tag), http.StatusPreconditionFailed)
		if stale.str("status") != "412" {
			t.Fatalf("stale: %s", stale.raw)
		}
		e.want(t, e.do(t, e.kccToken, http.MethodDelete, "/Users/"+id, "", "If-Match", tag), http.StatusPreconditionFailed)
		if _, _, _, given, _ := e.learner(t, id); *given != "Etta" {
			t.Fatalf("a stale If-Match changed the learner: %s", *given)
		}
	})
}

// Filters: names and operators in any case, "and", value filters on emails;
// anything else is invalidFilter, and hostile input changes nothing.
func TestSCIM_FiltersRunInSQL(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		id := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("f.ilter@kent.gov.uk", "ext-f")), http.StatusCreated).str("id")
		for _, f := range []string{
			`USERNAME EQ "F.Ilter@kent.gov.uk"`,
			`userName eq "f.ilter@kent.gov.uk" and externalId eq "ext-f"`,
			`emails[type eq "work" and value eq "f.ilter@kent.gov.uk"]`,
			`emails.value eq "f.ilter@kent.gov.uk"`,
			`id eq "` + id + `"`,
		} {
			r := e.want(t, e.do(t, e.kccToken, http.MethodGet, filterPath(f), ""), http.StatusOK)
			if r.body["totalResults"] != float64(1) {
				t.Fatalf("%s: %s", f, r.raw)
			}
		}
		for _, f := range []string{`userName eq "f.ilter@kent.gov.uk" and externalId eq "other"`, `userName eq "not an email"`, `id eq "x"`, `emails[type eq "home" and value eq "f.ilter@kent.gov.uk"]`} {
			r := e.want(t, e.do(t, e.kccToken, http.MethodGet, filterPath(f), ""), http.StatusOK)
			if r.body["totalResults"] != float64(0) {
				t.Fatalf("%s: %s", f, r.raw)
			}
		}
		for _, f := range []string{`userName co "kent"`, `userName eq "a" or userName eq "b"`, `title eq "x"`, `userName eq`, `userName eq "x"; DROP TABLE learners`} {
			r := e.want(t, e.do(t, e.kccToken, http.MethodGet, filterPath(f), ""), http.StatusBadRequest)
			if r.str("scimType") != "invalidFilter" {
				t.Fatalf("%s: %s", f, r.raw)
			}
		}
		if e.api.Count(`SELECT count(*) FROM learners WHERE id = ?`, id) != 1 {
			t.Fatal("learner gone")
		}
	})
}

// Invariant 2: once the leaver grace has passed the sweep erases the
// learner, and what the directory knew of them (externalId) goes too; the
// same userName then provisions a new learner.
func TestSCIM_Invariant2_ErasureForgetsTheDirectoryLink(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		id := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("gone@kent.gov.uk", "jsmith-nickname")), http.StatusCreated).str("id")
		e.want(t, e.do(t, e.kccToken, http.MethodDelete, "/Users/"+id, ""), http.StatusNoContent)
		e.api.Clock.Advance(8 * 24 * time.Hour)
		var sw struct{ RunRetentionSweep struct{ Erased int } }
		e.api.MustDo(e.api.BootstrapToken(), `mutation($p: ID!) { runRetentionSweep(programmeId: $p) { erased } }`, map[string]any{"p": e.ctl.ID}, &sw)
		if st, _, _, _, _ := e.learner(t, id); st != "ERASED" {
			t.Fatalf("status %s", st)
		}
		if n := e.api.Count(`SELECT count(*) FROM scim_users WHERE learner_id = ? OR external_id = 'jsmith-nickname'`, id); n != 0 {
			t.Fatalf("%d directory rows survive the erasure", n)
		}
		re := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", entraCreate("gone@kent.gov.uk", "jsmith-nickname")), http.StatusCreated)
		if re.str("id") == id {
			t.Fatal("an erased learner came back")
		}
	})
}

// Entra creates an in-scope user whose account is disabled with active
// false: a learner who is a leaver from the start (CTL-9), still returned.
func TestSCIM_CTL9_CreatedDisabledIsALeaver(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		body := strings.Replace(entraCreate("disabled@kent.gov.uk", "ext-d"), `"active": true`, `"active": false`, 1)
		r := e.want(t, e.do(t, e.kccToken, http.MethodPost, "/Users", body), http.StatusCreated)
		if r.body["active"] != false {
			t.Fatalf("created: %s", r.raw)
		}
		id := r.str("id")
		if st, reason, _, _, _ := e.learner(t, id); st != "REMOVAL_SCHEDULED" || reason != "LEAVER" {
			t.Fatalf("status %s %s", st, reason)
		}
		if got := e.events(t, id); !slices.Equal(got, []string{"LEARNER_PROVISIONED", "REMOVAL_SCHEDULED"}) {
			t.Fatalf("feed %v", got)
		}
		// Enabled later, within the grace: the directory's own removal is reversed (GEN-4).
		e.want(t, e.do(t, e.kccToken, http.MethodPatch, "/Users/"+id, patch(`{"op": "replace", "value": {"active": true}}`)), http.StatusOK)
		if st, _, _, _, _ := e.learner(t, id); st != "PENDING_ACCEPTANCE" {
			t.Fatalf("after enable: %s", st)
		}
	})
}
