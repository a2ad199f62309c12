package graph_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// postRaw returns the status and the exact bytes of a GraphQL answer.
func postRaw(t *testing.T, url, token, query, operation string, vars map[string]any) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars, "operationName": operation})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// fastPathFixture is a programme whose learners cover every value the
// learners plan writes: names needing escapes, nulls, every optional time,
// admin acceptances with notes, two organisations, a leaver and an erasure.
func fastPathFixture(t *testing.T, api *testkit.API) testkit.Programme {
	t.Helper()
	p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
	boot := api.BootstrapToken()
	kcc, medway := p.Orgs["Kent County Council"].ID, p.Orgs["Medway Council"].ID
	people := []struct{ org, email, given, family string }{
		{kcc, "zoe.obrien@kent.gov.uk", `Zoë "Z"`, `O'Brien \ Jr`},
		{kcc, "html@kent.gov.uk", "<b>&amp;</b>", "</script>"},
		{kcc, "emoji@kent.gov.uk", "Ana 🙂", "Nuñez-Łukasz"},
		{medway, "pat@medway.gov.uk", "Pat", "Smith"},
		{medway, "leaver@medway.gov.uk", "Lee", "Ver"},
		{kcc, "withdrawn@kent.gov.uk", "Wyn", "Drawn"},
	}
	var ids []string
	for _, x := range people {
		var out struct{ CreateLearner struct{ ID string } }
		api.MustDo(boot, `mutation($o: ID!, $in: LearnerInput!) { createLearner(organisationId: $o, input: $in) { id } }`,
			map[string]any{"o": x.org, "in": map[string]any{"email": x.email, "givenName": x.given, "familyName": x.family}}, &out)
		ids = append(ids, out.CreateLearner.ID)
	}
	var pol struct {
		Programme struct {
			Policies []struct {
				CurrentVersion *struct{ ID string }
			}
		}
	}
	api.MustDo(boot, `query($id: ID!) { programme(id: $id) { policies { currentVersion { id } } } }`, map[string]any{"id": p.ID}, &pol)
	var current []string
	for _, po := range pol.Programme.Policies {
		if po.CurrentVersion != nil {
			current = append(current, po.CurrentVersion.ID)
		}
	}
	for i, id := range ids[:4] {
		note := []string{`paper form "A" \ ref <1> & co`, "phoned, née Łukasz 🙂", "line one\nline two\ttabbed", "ok"}[i]
		api.MustDo(boot, `mutation($id: ID!, $in: AcceptPoliciesInput!, $note: String!) { acceptPoliciesOnBehalf(learnerId: $id, input: $in, note: $note) { id } }`,
			map[string]any{"id": id, "in": map[string]any{"policyVersionIds": current, "confirmMinimumAge": true}, "note": note}, &struct{}{})
	}
	api.MustDo(boot, `mutation($id: ID!, $r: String!) { markLeaver(learnerId: $id, reason: $r) { id } }`,
		map[string]any{"id": ids[4], "r": "left in March"}, &struct{}{})
	api.MustDo(boot, `mutation($id: ID!, $r: String!) { withdrawConsentOnBehalf(learnerId: $id, reason: $r) { id } }`,
		map[string]any{"id": ids[5], "r": "by letter"}, &struct{}{})
	// Values no mutation here produces: a tombstone (null names, email and
	// group; erasedAt), sign-in and activity times, and the learner's own
	// refusal of a policy.
	at := api.Clock.Now().Add(-time.Hour).Truncate(time.Microsecond)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE learners SET status = 'ERASED', email = NULL, given_name = NULL, family_name = NULL, access_group_id = NULL,
			erased_at = $1 WHERE id = $2`, []any{at, ids[5]}},
		{`UPDATE learners SET last_sign_in_at = $1, last_activity_at = $2 WHERE id = $3`, []any{at, at.Add(time.Minute + 7), ids[0]}},
		{`INSERT INTO policy_acceptances (id, learner_id, policy_version_id, decision, age_confirmed, given_by, actor_id, note, decided_at)
			VALUES ($1, $2, $3, 'DECLINED', false, 'SELF', 'self', '', $4)`, []any{uuid.NewString(), ids[4], current[0], at}},
	} {
		if _, err := api.Store.SQL().Exec(q.sql, q.args...); err != nil {
			t.Fatalf("fixture: %v", err)
		}
	}
	return p
}

const allLearnerFields = `__typename id email givenName familyName status accessAllowed removalReason removalDueAt erasedAt createdAt
	lastSignInAt lastActivityAt version
	organisation { __typename id programmeId name kind status createdAt admittedAt removedAt }
	accessGroup { __typename id organisationId name isDefault createdAt }
	acceptances { __typename decision givenBy ageConfirmed note decidedAt
		policyVersion { __typename id policyId label summary content status publishedAt activatedAt } }`

// TestLearnersPlan_SameBytesAsGqlgen: a learners query answered by the
// compiled plan is byte for byte what gqlgen's executor writes for it, with
// the same SQL statement count; queries outside the plan, and every error,
// are left to gqlgen.
func TestLearnersPlan_SameBytesAsGqlgen(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := fastPathFixture(t, api)
			boot := api.BootstrapToken()
			kcc := p.Orgs["Kent County Council"].ID
			admin := "kcc-admin"
			api.Grant(admin, domain.RoleOrganisationAdmin, p.ID, &kcc, nil)
			orgAdmin := api.Token(admin)
			learnerTok := api.Token("someone")

			var page1 struct {
				Learners struct{ PageInfo struct{ EndCursor string } }
			}
			api.MustDo(boot, `query($p: ID!) { learners(programmeId: $p, first: 2) { pageInfo { endCursor } } }`, map[string]any{"p": p.ID}, &page1)
			if page1.Learners.PageInfo.EndCursor == "" {
				t.Fatal("fixture: no cursor")
			}
			vars := map[string]any{"p": p.ID, "after": page1.Learners.PageInfo.EndCursor, "o": kcc, "yes": true, "no": false, "n": nil}

			cases := []struct {
				name, token, query string
				planned            bool
				operation          string
			}{
				{"issue 3's page", boot, `query($p: ID!, $after: String) { learners(programmeId: $p, first: 50, after: $after) { edges { node { id email givenName familyName status
					organisation { name } accessGroup { name } acceptances { decision decidedAt policyVersion { label } } } } pageInfo { endCursor } } }`, true, ""},
				{"every field", boot, `query($p: ID!) { learners(programmeId: $p) { __typename edges { __typename cursor node { ` + allLearnerFields + ` } }
					pageInfo { __typename hasNextPage endCursor } } }`, true, ""},
				{"after a cursor", boot, `query($p: ID!, $after: String) { learners(programmeId: $p, first: 2, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`, true, ""},
				{"aliases, fragments, skip and include", boot, `query($p: ID!, $yes: Boolean!, $no: Boolean!) {
					page: learners(programmeId: $p, first: 3) { ...Conn more: pageInfo { next: hasNextPage } } }
					fragment Conn on LearnerConnection { edges { node { ...L ... on Learner { who: email id } org: organisation { name id name } } }
					pageInfo @include(if: $yes) { endCursor } edges @skip(if: $no) { cursor } }
					fragment L on Learner { id a: givenName b: familyName status @skip(if: $yes) acceptances @include(if: $no) { note } }`, true, ""},
				{"filters", boot, `query($p: ID!, $o: ID) { learners(programmeId: $p, organisationId: $o, status: [PENDING_ACCEPTANCE, ACTIVE], search: "o'brien") {
					edges { node { id email } } pageInfo { hasNextPage endCursor } } }`, true, ""},
				{"leavers", boot, `query($p: ID!) { learners(programmeId: $p, status: [REMOVAL_SCHEDULED, WITHDRAWN, ERASED]) { edges { node { ` + allLearnerFields + ` } } } }`, true, ""},
				{"nothing found", boot, `query($p: ID!) { learners(programmeId: $p, search: "nobody at all") { edges { node { id } } pageInfo { hasNextPage endCursor } } }`, true, ""},
				{"an organisation admin sees their own", orgAdmin, `query($p: ID!) { learners(programmeId: $p) { edges { node { id email organisation { name } } } } }`, true, ""},
				{"named operation among two", boot, `query Other { viewer { bootstrapAdmin } } query Page($p: ID!) { learners(programmeId: $p, first: 1) { edges { node { id } } } }`, true, "Page"},

				{"the same field twice, merged", boot, `query($p: ID!) { learners(programmeId: $p, first: 3) { edges { node { id } } } learners(programmeId: $p, first: 3) { edges { node { email organisation { id } } } } }`, true, ""},
				{"a single status coerced to a list", boot, `query($p: ID!) { learners(programmeId: $p, status: ACTIVE) { edges { node { id status } } } }`, true, ""},
				{"LIKE metacharacters in search", boot, `query($p: ID!) { a: learners(programmeId: $p, search: "\\\\") { edges { node { id familyName } } } }`, true, ""},
				{"two aliases of one relation", boot, `query($p: ID!) { learners(programmeId: $p) { edges { node { o1: organisation { name } o2: organisation { id kind } } } } }`, true, ""},
				{"everything skipped below node", boot, `query($p: ID!, $yes: Boolean!) { learners(programmeId: $p, first: 2) { edges { node { id @skip(if: $yes) } } } }`, true, ""},
				{"a full page of 500", boot, `query($p: ID!) { learners(programmeId: $p, first: 500) { edges { node { ` + allLearnerFields + ` } } } }`, true, ""},

				{"@defer is refused on a fragment", boot, `query($p: ID!) { learners(programmeId: $p, first: 2) { edges { node { id ... @defer { organisation { name } } } } } }`, false, ""},
				{"@defer is refused on a spread", boot, `query($p: ID!) { learners(programmeId: $p) { edges { node { acceptances { ...V @defer(label: "v") } } } } } fragment V on PolicyAcceptance { policyVersion { id } }`, false, ""},
				{"courses are gqlgen's", boot, `query($p: ID!) { learners(programmeId: $p) { edges { node { id courses { lmsCourseId } } } } }`, false, ""},
				{"retention is gqlgen's", boot, `query($p: ID!) { learners(programmeId: $p) { edges { node { id retention { rule } } } } }`, false, ""},
				{"organisation domains are gqlgen's", boot, `query($p: ID!) { learners(programmeId: $p) { edges { node { organisation { domains { domain } } } } } }`, false, ""},
				{"two root fields", boot, `query($p: ID!) { viewer { bootstrapAdmin } learners(programmeId: $p) { edges { node { id } } } }`, false, ""},
				{"root typename", boot, `query($p: ID!) { __typename learners(programmeId: $p) { edges { node { id } } } }`, false, ""},
				{"an explicit null first", boot, `query($p: ID!, $n: Int) { learners(programmeId: $p, first: $n) { edges { node { id } } } }`, false, ""},
				{"a malformed cursor", boot, `query($p: ID!) { learners(programmeId: $p, after: "not a cursor") { edges { node { id } } } }`, false, ""},
				{"first out of range", boot, `query($p: ID!) { learners(programmeId: $p, first: 0) { edges { node { id } } } }`, false, ""},
				{"an unknown programme", boot, `query { learners(programmeId: "00000000-0000-0000-0000-000000000000") { edges { node { id } } } }`, false, ""},
				{"a learner may not list", learnerTok, `query($p: ID!) { learners(programmeId: $p) { edges { node { id } } } }`, false, ""},
				{"no token", "", `query($p: ID!) { learners(programmeId: $p) { edges { node { id } } } }`, false, ""},
				{"an organisation outside the admin's", orgAdmin, `query($p: ID!) { learners(programmeId: $p, organisationId: "` + p.Orgs["Medway Council"].ID + `") { edges { node { id } } } }`, false, ""},
			}
			sawNull, sawValue := map[string]bool{}, map[string]bool{}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					before := api.PlansServed.Load()
					api.Statements.Store(0)
					st1, planned := postRaw(t, api.Server.URL+"/graphql", c.token, c.query, c.operation, vars)
					stmtsPlanned := api.Statements.Load()
					served := api.PlansServed.Load() - before
					api.Statements.Store(0)
					st2, executed := postRaw(t, api.UnplannedURL(), c.token, c.query, c.operation, vars)
					stmtsExecuted := api.Statements.Load()
					if st1 != st2 || !bytes.Equal(planned, executed) {
						t.Fatalf("answers differ:\nplan   %d %s\ngqlgen %d %s", st1, planned, st2, executed)
					}
					if strings.HasPrefix(c.name, "@defer") && !bytes.Contains(planned, []byte(`"reason":"DEFER_NOT_SUPPORTED"`)) {
						t.Fatalf("@defer must be refused: %s", planned)
					}
					if want := map[bool]int64{true: 1, false: 0}[c.planned]; served != want {
						t.Fatalf("plan served %d requests, want %d: %s", served, want, planned)
					}
					if c.planned {
						// gqlgen's prefetch reads a relation named anywhere in
						// the document, even under @skip; the plan reads only
						// what is selected, so it may run fewer.
						if stmtsPlanned > stmtsExecuted || stmtsPlanned == 0 {
							t.Errorf("SQL statements: plan %d, gqlgen %d", stmtsPlanned, stmtsExecuted)
						}
						if bytes.Contains(planned, []byte(`"errors"`)) {
							t.Fatalf("a planned query answered with errors: %s", planned)
						}
						for _, k := range []string{"accessGroup", "removalReason", "removalDueAt", "erasedAt", "email", "lastSignInAt"} {
							if strings.Contains(string(planned), `"`+k+`":null`) {
								sawNull[k] = true
							}
						}
						for _, v := range []string{`"status":"ERASED"`, `"givenBy":"SELF"`, `"decision":"DECLINED"`, `"lastActivityAt":"20`} {
							if strings.Contains(string(planned), v) {
								sawValue[v] = true
							}
						}
					} else if !bytes.Contains(planned, []byte(`"data"`)) && !bytes.Contains(planned, []byte(`"errors"`)) {
						t.Fatalf("not a GraphQL answer: %s", planned)
					}
				})
			}
			// The fixture must exercise the nulls the plan writes, or the
			// comparison proves less than it says.
			for _, k := range []string{"accessGroup", "removalReason", "removalDueAt", "erasedAt", "email", "lastSignInAt"} {
				if !sawNull[k] {
					t.Errorf("no planned answer had %s null", k)
				}
			}
			for _, want := range []string{`"status":"ERASED"`, `"givenBy":"SELF"`, `"decision":"DECLINED"`, `"lastActivityAt":"20`} {
				if !sawValue[want] {
					t.Errorf("no planned answer had %s", want)
				}
			}
		})
	}
}
