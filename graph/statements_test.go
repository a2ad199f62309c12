package graph_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/moodlesync"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

const setupQuery = `query($id: ID!) { programme(id: $id) { name governingBodies { name } organisations { name domains { domain } accessGroups { name courses { lmsCourseId } } } } }`

// The set-up query runs a fixed number of SQL statements whatever the number
// of organisations: each relation is read once for all its parents
// (graph/relations.go).
func TestSetupQuery_FixedStatementCountWhateverTheWidth(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			measure := func() (int64, int) {
				var out struct {
					Programme struct {
						Organisations []struct {
							AccessGroups []struct {
								Courses []struct{ LmsCourseId string }
							}
						}
					}
				}
				tok := api.BootstrapToken()
				api.MustDo(tok, `{ viewer { actorId } }`, nil, &struct{}{}) // the caller's grants cached, as for a returning caller
				api.Store.ForgetCachedRows()                                // counted cold: every relation read from the database
				api.Statements.Store(0)
				api.MustDo(tok, setupQuery, map[string]any{"id": p.ID}, &out)
				n := api.Statements.Load()
				courses := 0
				for _, o := range out.Programme.Organisations {
					for _, g := range o.AccessGroups {
						courses += len(g.Courses)
					}
				}
				if courses == 0 {
					t.Fatal("query returned no courses")
				}
				return n, len(out.Programme.Organisations)
			}
			narrow, orgs := measure()
			if orgs != 20 {
				t.Fatalf("want 20 organisations, got %d", orgs)
			}
			// Admit 30 more partners, each with a domain and an extra group.
			ctx := lifecycle.WithSystem(context.Background(), "test")
			for i := 0; i < 30; i++ {
				prop, err := api.Service.ProposeMembership(ctx, lifecycle.ProposeMembershipInput{ProgrammeID: p.ID, Action: domain.ProposalAdmit,
					Name: fmt.Sprintf("Parish %02d", i), Kind: "OTHER", Domains: []lifecycle.DomainInput{{Domain: fmt.Sprintf("parish%02d.org.uk", i)}}})
				if err != nil {
					t.Fatal(err)
				}
				for prop.Status == domain.ProposalPending {
					if prop, err = api.Service.ApproveMembership(ctx, prop.ID, ""); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := api.Service.CreateAccessGroup(ctx, *prop.OrganisationID, lifecycle.AccessGroupInput{Name: "Extra",
					CourseIDs: []string{p.Courses["CTL-GDPR-101"].ID}}); err != nil {
					t.Fatal(err)
				}
			}
			wide, orgs := measure()
			if orgs != 50 {
				t.Fatalf("want 50 organisations, got %d", orgs)
			}
			if wide != narrow {
				t.Fatalf("statements grew with width: %d for 20 organisations, %d for 50", narrow, wide)
			}
			if narrow > 10 {
				t.Fatalf("set-up query ran %d statements; expected a handful", narrow)
			}
			t.Logf("%s: %d statements for 20 and for 50 organisations", d, narrow)
		})
	}
}

// A page of learners with organisation, group and acceptances runs a fixed
// number of statements whatever the page size (relations are prefetched once
// per page).
func TestLearnersPage_FixedStatementCountWhateverThePageSize(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			// Learners with acceptances, so the page has all its relations.
			stmtActiveLearners(t, api, p, "p", 60)
			q := `query($p: ID!, $n: Int) { learners(programmeId: $p, first: $n) { edges { node { id email
				organisation { name } accessGroup { name } acceptances { decision policyVersion { label } } } } } }`
			tok := api.BootstrapToken()
			count := func(n int) int64 {
				var out struct {
					Learners struct {
						Edges []struct{ Node struct{ ID string } }
					}
				}
				api.MustDo(tok, `{ viewer { actorId } }`, nil, &struct{}{}) // the caller's grants cached, as for a returning caller
				api.Store.ForgetCachedRows()                                // counted cold: every relation read from the database
				api.Statements.Store(0)
				api.MustDo(tok, q, map[string]any{"p": p.ID, "n": n}, &out)
				if len(out.Learners.Edges) != n {
					t.Fatalf("page of %d: got %d learners", n, len(out.Learners.Edges))
				}
				return api.Statements.Load()
			}
			small, large := count(5), count(50)
			if small != large {
				t.Fatalf("statements grew with the page: %d for 5 learners, %d for 50", small, large)
			}
			// Warm, as for every page after the first: the programme, the
			// organisations, groups and policy versions come from the
			// store's reference cache; the learners and their acceptances
			// are read.
			api.Statements.Store(0)
			api.RoundTrips.Store(0)
			api.MustDo(tok, q, map[string]any{"p": p.ID, "n": 50}, &struct{}{})
			if warm := api.Statements.Load(); warm != 2 {
				t.Fatalf("a warm page ran %d statements, want 2 (learners, acceptances)", warm)
			}
			// On PostgreSQL the two go in one batch (store ListLearners).
			if trips, want := api.RoundTrips.Load(), map[migrations.Dialect]int64{migrations.Postgres: 1}[d]; trips != want {
				t.Fatalf("a warm page took %d round trips, want %d", trips, want)
			}
			t.Logf("%s: %d statements for a cold page of 5 and of 50, 2 warm", d, small)
		})
	}
}

// A sign-in runs a fixed number of SQL statements: a returning learner's is
// one (the learner; the caller's grants are cached from the first sign-in,
// which changed no grant), a first sign-in's the reads that
// decide it and the transaction that provisions the learner with its
// identity, audit entry and feed event. The reference rows it needs (the
// provider, the programme, the email's organisation and default group)
// come from the store's cache once warm; the organisation is read again
// inside the transaction (CTL-9). The learner by identity and the
// identity's erasure are one statement (store.SignInLearner); the
// programme's contract end is read with the organisation. On PostgreSQL the
// learner's insert takes the email writers' lock in the same statement, and
// the statements nothing waits for travel with others (store/pgtx.go,
// later): BEGIN with the learner by email, the organisation's lock with its
// read, the audit entry and the feed insert with the COMMIT; the identity's
// insert is written in the learner's (store.CreateLearnerWithIdentity): 9
// statements, 7 round trips. The counts are the figures of docs/performance.md: a
// change that adds a statement or a round trip to every first sign-in
// shows here.
func TestSignIn_FixedStatementCountFirstAndReturning(t *testing.T) {
	want := map[string][2]int64{"postgres": {9, 1}, "sqlite": {9, 1}}
	wantTrips := map[string][2]int64{"postgres": {7, 1}, "sqlite": {0, 0}}
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			iss := api.NewIssuer()
			if _, err := api.Service.RegisterIdentityProvider(lifecycle.WithSystem(context.Background(), "test"), "",
				p.Orgs["Kent County Council"].ID, lifecycle.IdentityProviderInput{Issuer: iss.URL(), ClientID: "rollcall-kcc"}); err != nil {
				t.Fatal(err)
			}
			verified := true
			token := func(i int) string {
				tok, err := iss.Mint(oidcissuer.Claims{Subject: fmt.Sprintf("sub-%d", i), Audience: []string{"rollcall-kcc"},
					Email: fmt.Sprintf("person.%d@kent.gov.uk", i), EmailVerified: &verified, GivenName: "Ann", FamilyName: "Lee",
					IssuedAt: api.Clock.Now(), Expiry: api.Clock.Now().Add(time.Hour)})
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			signIn := func(tok string) (statements, trips int64) {
				var out struct {
					Viewer struct {
						Learner     *struct{ ID string }
						SignInError *string
					}
				}
				api.Statements.Store(0)
				api.RoundTrips.Store(0)
				api.MustDo(tok, `{ viewer { learner { id } signInError } }`, nil, &out)
				if out.Viewer.Learner == nil {
					t.Fatalf("no learner signed in: %v", out.Viewer.SignInError)
				}
				return api.Statements.Load(), api.RoundTrips.Load()
			}
			signIn(token(0)) // the reference rows cached, as for every sign-in but the first
			first, firstTrips := signIn(token(1))
			returning, returningTrips := signIn(token(1))
			if got := [2]int64{first, returning}; got != want[string(d)] {
				t.Fatalf("statements for a first and a returning sign-in: %v, want %v", got, want[string(d)])
			}
			if got := [2]int64{firstTrips, returningTrips}; got != wantTrips[string(d)] {
				t.Fatalf("round trips for a first and a returning sign-in: %v, want %v", got, wantTrips[string(d)])
			}
		})
	}
}

// The LMS's two paged reads run a fixed number of SQL statements whatever
// the page size: a page of enrolments (the desired state, CTL-4) and a
// page of the feed (INV-3), each read with the programme's API key as an
// LMS does, first page and the pages after it.
func TestLMSPages_CTL4_INV3_FixedStatementCountWhateverThePageSize(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			ctx := lifecycle.WithSystem(context.Background(), "test")
			stmtActiveLearners(t, api, p, "s", 60)
			_, key, err := api.Service.IssueAPIKey(ctx, p.ID, "statements LMS")
			if err != nil {
				t.Fatal(err)
			}
			const enrolments = `query($programmeId: ID!, $first: Int!, $after: String) { enrolments(programmeId: $programmeId, first: $first, after: $after) {
				enrolments { learnerId email givenName familyName accessGroupId lmsCourseId learnerVersion } endCursor hasNextPage asOf } }`
			const feed = `query($programmeId: ID!, $first: Int!, $after: String) { lifecycleEvents(programmeId: $programmeId, first: $first, after: $after) {
				events { cursor type learnerId learnerVersion occurredAt } cursor hasMore } }`
			type page struct {
				Enrolments struct {
					Enrolments []struct{ LearnerID string }
					EndCursor  *string
				}
				LifecycleEvents struct {
					Events []struct {
						Cursor  string
						Learner *struct{ ID string }
					}
					Cursor string
				}
			}
			// count reads the page of n after a (from the start when nil),
			// once to warm the caches as a drain has them, then counted; it
			// returns the statements, the rows and the first row's key.
			count := func(q string, n int, a *string) (int64, int, string, page) {
				t.Helper()
				vars := map[string]any{"programmeId": p.ID, "first": n, "after": a}
				api.MustDo(key, q, vars, &struct{}{})
				// The warm read took any page read ahead for this one and
				// read the next page ahead (readahead.go), in the
				// background: settled before counting. The counted read, of
				// the same page, finds none for it and reads it; the next
				// page's read ahead is kept from the warm read, not run again.
				api.Service.SettleReadAhead()
				var out page
				api.Statements.Store(0)
				api.MustDo(key, q, vars, &out)
				api.Service.SettleReadAhead()
				first := ""
				if es := out.Enrolments.Enrolments; len(es) > 0 {
					first = es[0].LearnerID
				}
				if es := out.LifecycleEvents.Events; len(es) > 0 {
					first = es[0].Cursor
					if q == moodlesync.LifecycleEventsQuery && es[0].Learner == nil {
						t.Fatalf("the reference agent's feed page has no learner for its first event")
					}
				}
				return api.Statements.Load(), len(out.Enrolments.Enrolments) + len(out.LifecycleEvents.Events), first, out
			}
			for _, c := range []struct {
				name, q string
				next    func(page) *string
				want    [2]int64 // statements: a first page, a page after it
			}{
				// The page's one statement; a first page also reads the
				// feed's head (asOf) before it.
				{"enrolments", enrolments, func(o page) *string { return o.Enrolments.EndCursor }, [2]int64{2, 1}},
				{"feed", feed, func(o page) *string { return &o.LifecycleEvents.Cursor }, [2]int64{1, 1}},
				// As the reference agent reads it (internal/moodlesync):
				// each event with its learner, their group and courses,
				// read once for the page.
				{"feed with learners", moodlesync.LifecycleEventsQuery, func(o page) *string { return &o.LifecycleEvents.Cursor }, [2]int64{3, 3}},
			} {
				var firsts, afters [2]int64
				for i, n := range []int{3, 60} {
					s, got, head, out := count(c.q, n, nil)
					if got != n {
						t.Fatalf("%s: a first page of %d has %d rows", c.name, n, got)
					}
					firsts[i] = s
					a := c.next(out)
					if a == nil || *a == "" {
						t.Fatalf("%s: no cursor after a page of %d", c.name, n)
					}
					s, got, next, _ := count(c.q, n, a)
					if got != n || next == head {
						t.Fatalf("%s: the page after a page of %d has %d rows, starting at %q (the first page at %q)", c.name, n, got, next, head)
					}
					afters[i] = s
				}
				if firsts[0] != firsts[1] || afters[0] != afters[1] {
					t.Fatalf("%s: statements grew with the page: first pages %v, pages after %v (3 and 60 rows)", c.name, firsts, afters)
				}
				// The programme and the key's grants come from the caches
				// (warm, as mid-drain: an entry lives 10 s, and a change of
				// grants or identities anywhere drops them).
				if got := [2]int64{firsts[0], afters[0]}; got != c.want {
					t.Fatalf("%s: %d statements for a first page and %d for a page after it, want %v", c.name, firsts[0], afters[0], c.want)
				}
				t.Logf("%s %s: %d statements for a first page, %d for a page after it", d, c.name, firsts[0], afters[0])
			}
		})
	}
}

// stmtActiveLearners imports n Kent County Council staff (prefix00@kent.gov.uk
// on) and accepts the compulsory policies on each one's behalf: n ACTIVE
// learners, each with acceptances and the default group's courses.
func stmtActiveLearners(t *testing.T, api *testkit.API, p testkit.Programme, prefix string, n int) {
	t.Helper()
	ctx := lifecycle.WithSystem(context.Background(), "test")
	rows := make([]lifecycle.ImportRow, n)
	for i := range rows {
		rows[i] = lifecycle.ImportRow{Email: fmt.Sprintf("%s%02d@kent.gov.uk", prefix, i), GivenName: "G", FamilyName: "F"}
	}
	rep, err := api.Service.ImportLearners(ctx, p.Orgs["Kent County Council"].ID, rows, false, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range rep.Lines {
		l, err := api.Service.Learner(ctx, line.LearnerID)
		if err != nil {
			t.Fatal(err)
		}
		pending, err := api.Service.PendingPolicies(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		var vs []string
		for _, v := range pending {
			vs = append(vs, v.ID)
		}
		if _, err := api.Service.AcceptPolicies(ctx, lifecycle.AcceptInput{PolicyVersionIDs: vs, OnBehalfOf: l.ID, Note: "paper form"}); err != nil {
			t.Fatal(err)
		}
	}
}
