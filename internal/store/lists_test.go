package store_test

import (
	"context"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// The list reads behind the learners page and the set-up query scan their
// rows straight into the store's row types (readRows: pgx on PostgreSQL).
// They give back exactly what was written, in their documented order, on
// both databases: a NULL-able column of one row is never another row's
// value, an ID that is not a UUID matches nothing rather than failing the
// statement, and an organisation admin's scope (CTL-10) and a status filter
// keep to what they name.
func TestContract_CTL10_CTL4_ListsReadBackWhatWasWritten(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) { listsReadBack(t, d) })
	}
}

func listsReadBack(t *testing.T, d migrations.Dialect) {
	var n atomic.Int64
	st := testkit.NewStore(t, d, store.Options{CountStatements: &n})
	ctx := context.Background()
	w := ctNew(t, st)
	other := domain.Organisation{ID: ctID(0x201), ProgrammeID: w.p.ID, Name: "Another", Kind: "OTHER", Status: domain.OrgAdmitted, CreatedAt: w.now}
	if err := st.CreateOrganisation(ctx, other); err != nil {
		t.Fatal(err)
	}
	// Groups: the org's default and a second; the other org's one.
	staff := domain.AccessGroup{ID: ctID(0x210), OrganisationID: w.org.ID, Name: "Staff", IsDefault: true, CreatedAt: w.now}
	admins := domain.AccessGroup{ID: ctID(0x211), OrganisationID: w.org.ID, Name: "Admins", CreatedAt: w.now.Add(time.Minute)}
	crew := domain.AccessGroup{ID: ctID(0x212), OrganisationID: other.ID, Name: "Crew", IsDefault: true, CreatedAt: w.now}
	for _, g := range []domain.AccessGroup{staff, admins, crew} {
		if err := st.CreateAccessGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	rules := []domain.DomainRule{
		{ID: ctID(0x220), OrganisationID: w.org.ID, Domain: "org.example", IncludeSubdomains: true, AccessGroupID: &admins.ID, CreatedAt: w.now},
		{ID: ctID(0x221), OrganisationID: w.org.ID, Domain: "b.org.example", CreatedAt: w.now},
		{ID: ctID(0x222), OrganisationID: other.ID, Domain: "another.example", AccessGroupID: &crew.ID, CreatedAt: w.now},
	}
	for _, d := range rules {
		if err := st.CreateEmailDomain(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	c1 := domain.Course{ID: ctID(0x230), ProgrammeID: w.p.ID, LMSCourseID: "b-course", Title: "B", CreatedAt: w.now}
	c2 := domain.Course{ID: ctID(0x231), ProgrammeID: w.p.ID, LMSCourseID: "a-course", Title: "A", CreatedAt: w.now}
	for _, c := range []domain.Course{c1, c2} {
		if err := st.CreateCourse(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetAccessGroupCourses(ctx, staff.ID, []string{c1.ID, c2.ID}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAccessGroupCourses(ctx, crew.ID, []string{c1.ID}); err != nil {
		t.Fatal(err)
	}

	// Learners: two of the org (one active in a group, one pending in
	// none) and one of the other organisation.
	learner := func(n int, org string, group *string, email, given string, status domain.LearnerStatus) domain.Learner {
		t.Helper()
		l, _, err := domain.NewLearner(domain.Learner{ID: ctID(n), ProgrammeID: w.p.ID, OrganisationID: org, AccessGroupID: group,
			Email: &email, GivenName: &given}, domain.OriginImport, false, w.now)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateLearner(ctx, l); err != nil {
			t.Fatal(err)
		}
		if status != l.Status {
			l.Status, l.Version = status, l.Version+1
			if err := st.UpdateLearner(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		return l
	}
	ann := learner(0x240, w.org.ID, &staff.ID, "ann@org.example", "Ann", domain.StatusActive)
	bob := learner(0x241, w.org.ID, nil, "bob@b.org.example", "Bob", domain.StatusPendingAcceptance)
	cat := learner(0x242, other.ID, &crew.ID, "cat@another.example", "Cat", domain.StatusPendingAcceptance)

	ids := func(ls []domain.Learner) []string {
		out := []string{}
		for _, l := range ls {
			out = append(out, l.ID)
		}
		return out
	}
	utc := func(as []domain.PolicyAcceptance) []domain.PolicyAcceptance {
		for i := range as {
			as[i].DecidedAt = as[i].DecidedAt.UTC()
		}
		return as
	}
	// withAcceptances: each list is also read with its learners' decisions
	// (one round trip on PostgreSQL), which must be what
	// AcceptancesByLearners gives for the learners listed.
	withAcceptances := false
	list := func(what string, f domain.LearnerFilter, want ...domain.Learner) []domain.Learner {
		t.Helper()
		if f.Limit == 0 {
			f.Limit = 10
		}
		f.ProgrammeID = w.p.ID
		got, acc, err := st.ListLearners(ctx, f)
		if err != nil || acc != nil {
			t.Fatalf("%s: %v, decisions %v without asking", what, err, acc)
		}
		if !reflect.DeepEqual(ids(got), ids(want)) {
			t.Fatalf("%s: %v, want %v", what, ids(got), ids(want))
		}
		if withAcceptances {
			f.WithAcceptances = true
			with, acc, err := st.ListLearners(ctx, f)
			if err != nil || !reflect.DeepEqual(ids(with), ids(want)) {
				t.Fatalf("%s with the decisions: %v %v", what, ids(with), err)
			}
			sep, err := st.AcceptancesByLearners(ctx, ids(with))
			if err != nil || acc == nil || !reflect.DeepEqual(utc(acc), utc(sep)) {
				t.Fatalf("%s: decisions read with the page %+v, by the learners' IDs %+v (%v)", what, acc, sep, err)
			}
		}
		return got
	}
	lists := func() {
		t.Helper()
		list("one organisation's admin", domain.LearnerFilter{OrganisationIDs: []string{w.org.ID}}, ann, bob)
		list("a scope with an ID that is not a UUID", domain.LearnerFilter{OrganisationIDs: []string{"not-a-uuid", other.ID}}, cat)
		list("a scope of nothing valid", domain.LearnerFilter{OrganisationIDs: []string{"not-a-uuid"}})
		list("an empty scope", domain.LearnerFilter{OrganisationIDs: []string{}})
		list("active only", domain.LearnerFilter{Statuses: []domain.LearnerStatus{domain.StatusActive}}, ann)
		list("two statuses", domain.LearnerFilter{Statuses: []domain.LearnerStatus{domain.StatusPendingAcceptance, domain.StatusActive}}, ann, bob, cat)
		list("a status twice", domain.LearnerFilter{Statuses: []domain.LearnerStatus{domain.StatusActive, "BOGUS", domain.StatusActive}}, ann)
		list("a status that is none", domain.LearnerFilter{Statuses: []domain.LearnerStatus{"ACTIVE') OR ('1'='1"}})
		list("scope and status", domain.LearnerFilter{OrganisationIDs: []string{w.org.ID}, Statuses: []domain.LearnerStatus{domain.StatusPendingAcceptance}}, bob)
		list("after the first", domain.LearnerFilter{AfterID: ann.ID}, bob, cat)
		list("search", domain.LearnerFilter{Search: "CAT"}, cat)
		list("a page of one", domain.LearnerFilter{Limit: 1}, ann)
		list("a page of two after the first", domain.LearnerFilter{AfterID: ann.ID, Limit: 2}, bob, cat)
	}
	all := list("every learner", domain.LearnerFilter{}, ann, bob, cat)
	if g := all[0].AccessGroupID; g == nil || *g != staff.ID || all[1].AccessGroupID != nil || *all[2].AccessGroupID != crew.ID {
		t.Fatalf("access groups read back: %v %v %v", all[0].AccessGroupID, all[1].AccessGroupID, all[2].AccessGroupID)
	}
	if *all[1].Email != "bob@b.org.example" || *all[2].GivenName != "Cat" || all[0].Status != domain.StatusActive ||
		all[0].Version != ann.Version || !all[0].CreatedAt.Equal(w.now) {
		t.Fatalf("learners read back: %+v", all)
	}
	lists()

	// Acceptances, in decision order, for the learners asked about.
	pol := domain.Policy{ID: ctID(0x250), ProgrammeID: w.p.ID, Name: "Site", Type: domain.PolicySite, Audience: domain.AudienceAll, CreatedAt: w.now}
	if err := st.CreatePolicy(ctx, pol); err != nil {
		t.Fatal(err)
	}
	v := domain.PolicyVersion{ID: ctID(0x251), PolicyID: pol.ID, Label: "v1", Summary: "s", Content: "c", Status: domain.VersionDraft, PublishedAt: w.now}
	if err := st.CreatePolicyVersion(ctx, v); err != nil {
		t.Fatal(err)
	}
	accs := []domain.PolicyAcceptance{
		{ID: ctID(0x260), LearnerID: bob.ID, PolicyVersionID: v.ID, Decision: domain.DecisionAccepted, GivenBy: "SELF", ActorID: "bob", DecidedAt: w.now.Add(2 * time.Minute)},
		{ID: ctID(0x261), LearnerID: ann.ID, PolicyVersionID: v.ID, Decision: domain.DecisionAccepted, AgeConfirmed: true, GivenBy: "ADMIN", ActorID: "boss",
			Note: "on paper", DecidedAt: w.now.Add(time.Minute)},
		{ID: ctID(0x262), LearnerID: cat.ID, PolicyVersionID: v.ID, Decision: domain.DecisionAccepted, GivenBy: "SELF", ActorID: "cat", DecidedAt: w.now},
	}
	for _, a := range accs {
		if err := st.SaveAcceptance(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.AcceptancesByLearners(ctx, []string{bob.ID, "not-a-uuid", ann.ID})
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].DecidedAt = got[i].DecidedAt.UTC()
	}
	if want := []domain.PolicyAcceptance{accs[1], accs[0]}; !reflect.DeepEqual(got, want) {
		t.Fatalf("acceptances: %+v, want %+v", got, want)
	}
	// The lists again, each with its learners' decisions; a page of one
	// has its learner's only.
	withAcceptances = true
	lists()
	if _, acc, err := st.ListLearners(ctx, domain.LearnerFilter{ProgrammeID: w.p.ID, Limit: 1, WithAcceptances: true}); err != nil ||
		!reflect.DeepEqual(utc(acc), []domain.PolicyAcceptance{accs[1]}) {
		t.Fatalf("a page of one with its decisions: %+v (%v), want Ann's", acc, err)
	}

	// The set-up lists.
	orgNames := func(os []domain.Organisation) []string {
		out := []string{}
		for _, o := range os {
			out = append(out, o.Name)
		}
		return out
	}
	if os, err := st.OrganisationsByProgrammes(ctx, []string{w.p.ID}, nil); err != nil || !reflect.DeepEqual(orgNames(os), []string{"Another", "Org"}) {
		t.Fatalf("organisations by name: %v %v", orgNames(os), err)
	}
	if os, err := st.OrganisationsByProgrammes(ctx, []string{w.p.ID}, []string{other.ID, "not-a-uuid"}); err != nil || !reflect.DeepEqual(orgNames(os), []string{"Another"}) {
		t.Fatalf("organisations in a scope: %v %v", orgNames(os), err)
	}
	ds, err := st.DomainsByOrganisations(ctx, []string{w.org.ID, other.ID})
	if err != nil || len(ds) != 3 || ds[0].Domain != "another.example" || ds[1].Domain != "b.org.example" || ds[2].Domain != "org.example" {
		t.Fatalf("domains by name: %+v %v", ds, err)
	}
	if *ds[0].AccessGroupID != crew.ID || ds[1].AccessGroupID != nil || *ds[2].AccessGroupID != admins.ID || !ds[2].IncludeSubdomains || ds[1].IncludeSubdomains {
		t.Fatalf("domains read back: %+v", ds)
	}
	gs, err := st.AccessGroupsByOrganisations(ctx, []string{w.org.ID, other.ID})
	if err != nil || len(gs) != 3 || !gs[0].IsDefault || !gs[1].IsDefault || gs[2].Name != "Admins" || gs[2].OrganisationID != w.org.ID {
		t.Fatalf("access groups, the defaults first: %+v %v", gs, err)
	}
	cs, err := st.CoursesByAccessGroups(ctx, []string{staff.ID, crew.ID, admins.ID, "not-a-uuid"})
	if err != nil || len(cs) != 2 || len(cs[staff.ID]) != 2 || cs[staff.ID][0].LMSCourseID != "a-course" || cs[staff.ID][1].ID != c1.ID ||
		len(cs[crew.ID]) != 1 || cs[crew.ID][0].Title != "B" {
		t.Fatalf("courses by group: %+v %v", cs, err)
	}
	st.ForgetCachedRows()
	if os, err := st.OrganisationsByIDs(ctx, []string{"not-a-uuid", other.ID}); err != nil || !reflect.DeepEqual(orgNames(os), []string{"Another"}) {
		t.Fatalf("organisations by ID: %v %v", orgNames(os), err)
	}
	if vs, err := st.PolicyVersionsByIDs(ctx, []string{v.ID, "not-a-uuid"}); err != nil || len(vs) != 1 || vs[0].Label != "v1" || vs[0].ActivatedAt != nil {
		t.Fatalf("policy versions by ID: %+v %v", vs, err)
	}

	// A set of IDs none of which can match is answered without a
	// statement, with an empty list.
	nothing := []string{"not-a-uuid"}
	if d != migrations.Postgres {
		nothing = []string{} // on SQLite any text could be an ID
	}
	st.ForgetCachedRows()
	n.Store(0)
	for what, read := range map[string]func() (int, error){
		"learners": func() (int, error) {
			ls, acc, err := st.ListLearners(ctx, domain.LearnerFilter{ProgrammeID: w.p.ID, OrganisationIDs: nothing, Limit: 10, WithAcceptances: true})
			return len(ls) + len(acc), err
		},
		"acceptances": func() (int, error) { as, err := st.AcceptancesByLearners(ctx, nothing); return len(as), err },
		"organisations": func() (int, error) {
			os, err := st.OrganisationsByProgrammes(ctx, []string{w.p.ID}, nothing)
			return len(os), err
		},
		"domains": func() (int, error) { ds, err := st.DomainsByOrganisations(ctx, nothing); return len(ds), err },
		"groups": func() (int, error) {
			gs, err := st.AccessGroupsByOrganisations(ctx, append(nothing, nothing...))
			return len(gs), err
		},
		"courses": func() (int, error) { cs, err := st.CoursesByAccessGroups(ctx, nothing); return len(cs), err },
		"by ID":   func() (int, error) { os, err := st.OrganisationsByIDs(ctx, nothing); return len(os), err },
	} {
		if got, err := read(); err != nil || got != 0 {
			t.Fatalf("%s of nothing: %d rows, %v", what, got, err)
		}
	}
	if got := n.Load(); got != 0 {
		t.Fatalf("reads of nothing ran %d statements, want none", got)
	}
}
