package graph_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// relationsFixture is a programme whose learners cover every value the
// learners page writes: names needing escapes, nulls, every optional time,
// admin acceptances with notes, two organisations, a leaver and an erasure.
func relationsFixture(t *testing.T, api *testkit.API) testkit.Programme {
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
		ids = append(ids, api.CreateLearner(x.org, map[string]any{"email": x.email, "givenName": x.given, "familyName": x.family}))
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

type relLearner struct {
	ID, Status                   string
	Email, GivenName, FamilyName *string
	AccessAllowed                bool
	RemovalReason                *string
	RemovalDueAt, ErasedAt       *time.Time
	LastSignInAt, LastActivityAt *time.Time
	Version                      int
	Organisation                 struct{ ID, Name, Kind, Status string }
	AccessGroup                  *struct{ ID, Name string }
	Courses                      []struct{ LmsCourseID string }
	Acceptances                  []struct {
		Decision, GivenBy, Note string
		AgeConfirmed            bool
		PolicyVersion           struct{ ID, Label, Status string }
	}
}

// The learners page answers every relation and every kind of value from the
// read models the page loads: enums bound to the service's values, nulls of
// an erased learner, admin and self decisions with their policy versions.
func TestRelations_LearnersPageAnswersEveryField(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := relationsFixture(t, api)
			var out struct {
				Learners struct {
					Edges []struct {
						Cursor string
						Node   relLearner
					}
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
				}
			}
			api.MustDo(api.BootstrapToken(), `query($p: ID!) { learners(programmeId: $p, first: 500) {
			edges { cursor node { id email givenName familyName status accessAllowed removalReason removalDueAt erasedAt
				lastSignInAt lastActivityAt version organisation { id name kind status } accessGroup { id name }
				courses { lmsCourseId } acceptances { decision givenBy note ageConfirmed policyVersion { id label status } } } }
			pageInfo { hasNextPage endCursor } } }`, map[string]any{"p": p.ID}, &out)
			byEmail := map[string]relLearner{}
			var erased *relLearner
			for i, e := range out.Learners.Edges {
				n := e.Node
				if e.Cursor == "" || n.Organisation.ID == "" || n.Organisation.Kind == "" || n.Organisation.Status != "ADMITTED" {
					t.Fatalf("edge %d incomplete: %+v", i, e)
				}
				if n.Email == nil {
					erased = &out.Learners.Edges[i].Node
					continue
				}
				byEmail[*n.Email] = n
			}
			if len(out.Learners.Edges) < 6 || out.Learners.PageInfo.HasNextPage || out.Learners.PageInfo.EndCursor == nil ||
				*out.Learners.PageInfo.EndCursor != out.Learners.Edges[len(out.Learners.Edges)-1].Cursor {
				t.Fatalf("page: %d learners, pageInfo %+v", len(out.Learners.Edges), out.Learners.PageInfo)
			}
			zoe := byEmail["zoe.obrien@kent.gov.uk"]
			if deref(zoe.GivenName) != `Zoë "Z"` || deref(zoe.FamilyName) != `O'Brien \ Jr` || zoe.Organisation.Name != "Kent County Council" ||
				zoe.Organisation.Kind != "COUNTY_COUNCIL" || zoe.AccessGroup == nil || len(zoe.Courses) == 0 ||
				zoe.LastSignInAt == nil || zoe.LastActivityAt == nil || zoe.Version < 1 || zoe.Status != "ACTIVE" || !zoe.AccessAllowed {
				t.Fatalf("zoe: %+v", zoe)
			}
			if len(zoe.Acceptances) == 0 {
				t.Fatal("zoe has no acceptances")
			}
			for _, a := range zoe.Acceptances {
				if a.Decision != "ACCEPTED" || a.GivenBy != "ADMIN" || a.Note != `paper form "A" \ ref <1> & co` ||
					a.PolicyVersion.ID == "" || a.PolicyVersion.Label == "" || a.PolicyVersion.Status != "ACTIVE" {
					t.Fatalf("zoe's acceptance: %+v", a)
				}
			}
			lee := byEmail["leaver@medway.gov.uk"]
			if lee.Status != "REMOVAL_SCHEDULED" || deref(lee.RemovalReason) != "LEAVER" || lee.RemovalDueAt == nil || lee.AccessAllowed ||
				lee.Organisation.Name != "Medway Council" {
				t.Fatalf("leaver: %+v", lee)
			}
			self := false
			for _, a := range lee.Acceptances {
				self = self || (a.GivenBy == "SELF" && a.Decision == "DECLINED")
			}
			if !self {
				t.Fatalf("the leaver's own refusal is missing: %+v", lee.Acceptances)
			}
			if erased == nil || erased.Status != "ERASED" || erased.GivenName != nil || erased.AccessGroup != nil || erased.ErasedAt == nil ||
				len(erased.Courses) != 0 || erased.Courses == nil || erased.AccessAllowed {
				t.Fatalf("erased: %+v", erased)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// What a page reads is decided by the selection gqlgen will write, through
// its own field collection: a relation under @skip(if: true) or
// @include(if: false) is not read; one reached through a fragment, or asked
// for under two aliases, is read once.
func TestRelations_SkipIncludeAliasesAndFragmentsDecideWhatIsRead(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := relationsFixture(t, api)
			tok := api.BootstrapToken()
			vars := map[string]any{"p": p.ID, "yes": true, "no": false}
			count := func(q string) (int64, testkit.Response) {
				api.MustDo(tok, `{ viewer { actorId } }`, nil, &struct{}{}) // the caller's grants cached
				api.Store.ForgetCachedRows()                                // counted cold: every relation read from the database
				api.Statements.Store(0)
				r := api.Do(tok, q, vars)
				if len(r.Errors) > 0 {
					t.Fatalf("%s: %v", q, r.Errors)
				}
				return api.Statements.Load(), r
			}
			const head = `query($p: ID!, $yes: Boolean!, $no: Boolean!) { learners(programmeId: $p, first: 3) { edges { node { id @skip(if: $no) email @include(if: $yes) `
			base, _ := count(head + `} } } }`)
			cases := []struct {
				name, sel, frag string
				extra           int64
				answer          string
			}{
				{"skipped", `organisation @skip(if: $yes) { name } acceptances @include(if: $no) { note }`, "", 0, ""},
				{"skipped in a fragment", `...F`, `fragment F on Learner { accessGroup @include(if: $no) { name } }`, 0, ""},
				{"included through a fragment", `...F`, `fragment F on Learner { organisation @include(if: $yes) { name } }`, 1, `"name":"Kent County Council"`},
				{"inline fragment", `... on Learner { accessGroup { name } }`, "", 1, `"accessGroup":{"name":`},
				{"two aliases, one read", `o1: organisation { name } o2: organisation { id kind }`, "", 1, `"kind":"COUNTY_COUNCIL"`},
				{"nested relation skipped", `acceptances { note policyVersion @skip(if: $yes) { label } }`, "", 1, `"acceptances":[`},
				{"nested relation read", `acceptances { policyVersion { label } }`, "", 2, `"policyVersion":{"label":`},
			}
			for _, c := range cases {
				n, r := count(head + c.sel + ` } } } } ` + c.frag)
				if n != base+c.extra {
					t.Errorf("%s: %d statements, want %d + %d", c.name, n, base, c.extra)
				}
				if c.answer != "" && !strings.Contains(string(r.Data), c.answer) {
					t.Errorf("%s: answer lacks %s: %s", c.name, c.answer, r.Data)
				}
				if c.extra == 0 && strings.Contains(string(r.Data), "organisation") {
					t.Errorf("%s: a skipped field was answered: %s", c.name, r.Data)
				}
			}
		})
	}
}

// The feed's learners and their relations are read once per page: the
// statement count does not grow with the page.
func TestRelations_FeedLearnersReadOncePerPage(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			rows := make([]lifecycle.ImportRow, 60)
			for i := range rows {
				rows[i] = lifecycle.ImportRow{Email: fmt.Sprintf("f%02d@kent.gov.uk", i), GivenName: "G", FamilyName: "F"}
			}
			if _, err := api.Service.ImportLearners(lifecycle.WithSystem(context.Background(), "test"), p.Orgs["Kent County Council"].ID, rows, false, true); err != nil {
				t.Fatal(err)
			}
			tok := api.BootstrapToken()
			count := func(n int) int64 {
				var out struct {
					LifecycleEvents struct {
						Events []struct {
							Learner *struct {
								Organisation struct{ Name string }
								AccessGroup  *struct{ Name string }
								Courses      []struct{ LmsCourseID string }
							}
						}
					}
				}
				api.MustDo(tok, `{ viewer { actorId } }`, nil, &struct{}{}) // the caller's grants cached
				api.Store.ForgetCachedRows()                                // counted cold: every relation read from the database
				api.Service.SettleReadAhead()                               // a page read ahead before is not counted here
				api.Statements.Store(0)
				api.MustDo(tok, `query($p: ID!, $n: Int) { lifecycleEvents(programmeId: $p, first: $n) { events { learnerId
				learner { id organisation { name } accessGroup { name } courses { lmsCourseId } acceptances { policyVersion { label } } } } } }`,
					map[string]any{"p": p.ID, "n": n}, &out)
				if len(out.LifecycleEvents.Events) != n {
					t.Fatalf("page of %d: %d events", n, len(out.LifecycleEvents.Events))
				}
				for _, e := range out.LifecycleEvents.Events {
					if e.Learner == nil || e.Learner.Organisation.Name != "Kent County Council" || e.Learner.AccessGroup == nil || len(e.Learner.Courses) == 0 {
						t.Fatalf("event's learner incomplete: %+v", e.Learner)
					}
				}
				// The page was full: the next is read ahead (one statement
				// more, whatever the page size), settled before counting.
				api.Service.SettleReadAhead()
				return api.Statements.Load()
			}
			if small, large := count(5), count(50); small != large {
				t.Fatalf("statements grew with the page: %d for 5 events, %d for 50", small, large)
			}
		})
	}
}
