package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// CTL-4: the desired state is every active learner × every course of their
// access group. Read page by page, at any page size, it is exactly the list
// read at once: in (learner ID, LMS course ID) order compared bytewise,
// learners in groups without courses (or no group) and learners without
// access left out, each page ending at a learner's last row (a learner's
// rows on two pages could come from two versions), at most limit rows or
// one learner's, full (the next learner's rows would not fit), and
// exhausted on the last page only; from the start or from a cursor inside a
// learner's courses.
func TestListEnrolments_CTL4_PagesConcatenateToTheWholeList(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		// LMS course IDs whose bytewise order differs from a linguistic one.
		lms := map[string]string{ctID(0x301): "m1", ctID(0x302): "b-2", ctID(0x303): "B-2", ctID(0x304): "_x", ctID(0x305): "a-1"}
		for id, l := range lms {
			if err := st.CreateCourse(ctx, domain.Course{ID: id, ProgrammeID: w.p.ID, LMSCourseID: l, Title: "Course " + l, CreatedAt: w.now}); err != nil {
				t.Fatal(err)
			}
		}
		if st.Dialect() == migrations.Postgres {
			// The test servers' databases collate as C.UTF-8, bytewise: a
			// linguistic collation on the column makes the statement's
			// COLLATE "C" the only thing keeping the order bytewise. ICU's
			// root collation, where the server has ICU and the database's
			// encoding can use it (SQL_ASCII, which initdb picks with no
			// locale in its environment, cannot: the probe fails).
			var linguistic bool
			if err := st.SQL().QueryRow(`SELECT 'b' COLLATE "und-x-icu" < 'B'`).Scan(&linguistic); err != nil || !linguistic {
				t.Logf("no ICU collation for this database (%v): the order is checked in the server's own collation only", err)
			} else if _, err := st.SQL().Exec(`ALTER TABLE courses ALTER COLUMN lms_course_id TYPE text COLLATE "und-x-icu"`); err != nil {
				t.Fatal(err)
			}
		}
		groups := map[string][]string{ // group ID → its courses
			ctID(0x310): nil,
			ctID(0x311): {ctID(0x301)},
			ctID(0x313): {ctID(0x302), ctID(0x303), ctID(0x304)},
		}
		ctGroups(t, st, w, groups)
		if rows, exhausted, err := st.ListEnrolments(ctx, w.p.ID, "", "", false, 10); err != nil || len(rows) != 0 || !exhausted {
			t.Fatalf("no learner yet: %d rows, exhausted %v, %v", len(rows), exhausted, err)
		}
		// Learners created out of ID order, in every kind of group, some
		// without access.
		type fixture struct {
			n      int
			group  string
			status domain.LearnerStatus
		}
		var learners []domain.Learner
		for i, f := range []fixture{
			{0x4a0, ctID(0x313), domain.StatusActive}, {0x40f, ctID(0x311), domain.StatusActive},
			{0x455, ctID(0x310), domain.StatusActive}, {0x401, ctID(0x313), domain.StatusActive},
			{0x4ff, ctID(0x313), domain.StatusActive}, {0x430, "", domain.StatusActive},
			{0x420, ctID(0x313), domain.StatusPendingAcceptance}, {0x421, ctID(0x311), domain.StatusWithdrawn},
			{0x470, ctID(0x311), domain.StatusActive}, {0x471, ctID(0x313), domain.StatusActive},
			{0x402, ctID(0x310), domain.StatusActive}, {0x4fe, ctID(0x311), domain.StatusActive},
			{0x480, ctID(0x313), domain.StatusRemovalScheduled}, {0x4e0, ctID(0x313), domain.StatusActive},
		} {
			email := fmt.Sprintf("l%d@org.example", i)
			l := domain.Learner{ID: ctID(f.n), ProgrammeID: w.p.ID, OrganisationID: w.org.ID, Email: &email, Status: f.status,
				Version: int64(i + 1), CreatedAt: w.now, UpdatedAt: w.now, Origin: domain.OriginAdmin}
			if f.group != "" {
				l.AccessGroupID = &f.group
			}
			if i%3 != 0 {
				given, family := fmt.Sprintf("Given%d", i), fmt.Sprintf("Family%d", i)
				l.GivenName, l.FamilyName = &given, &family
			}
			if err := st.CreateLearner(ctx, l); err != nil {
				t.Fatal(err)
			}
			learners = append(learners, l)
		}

		// The list, from the fixture, then with every group that has
		// courses holding two or more: the page's statement reads at most
		// limit/m + 2 learners (one more from inside a learner), m the
		// fewest courses of a group, so both m = 1 and m = 2 are paged
		// through at every limit.
		for _, setup := range []string{"fewest courses 1", "fewest courses 2"} {
			if setup == "fewest courses 2" {
				groups[ctID(0x311)] = []string{ctID(0x301), ctID(0x305)}
				if err := st.SetAccessGroupCourses(ctx, ctID(0x311), groups[ctID(0x311)]); err != nil {
					t.Fatal(err)
				}
			}
			want := wantEnrolments(learners, groups, lms)
			if n := map[string]int{"fewest courses 1": 18, "fewest courses 2": 21}[setup]; len(want) != n {
				t.Fatalf("%s, fixture: %d rows expected, want %d", setup, len(want), n)
			}
			pageThrough(t, st, w.p.ID, setup, want)
		}
	})
}

// CTL-4: only the programme's courses are its learners' desired state. The
// services never link a group to another programme's course, but the
// schema allows it, and a page's statement bounds the learners it reads by
// the programme's courses per group: a group holding only another
// programme's course (whose learners have no rows) or one besides its own
// must neither end the list early nor add the other programme's course.
func TestListEnrolments_CTL4_AnotherProgrammesCourseIsNoRowAndEndsNoList(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		q := domain.Programme{ID: ctID(0x100), Name: "Other", Preset: domain.PresetOnclick, CreatedAt: w.now, UpdatedAt: w.now,
			Settings: domain.PresetSettings(domain.PresetOnclick, w.now)}
		if err := st.CreateProgramme(ctx, q, nil); err != nil {
			t.Fatal(err)
		}
		lms := map[string]string{ctID(0x301): "p1", ctID(0x302): "p2", ctID(0x303): "p3", ctID(0x309): "q1"}
		for id, l := range lms {
			prog := w.p.ID
			if l == "q1" {
				prog = q.ID
			}
			if err := st.CreateCourse(ctx, domain.Course{ID: id, ProgrammeID: prog, LMSCourseID: l, Title: l, CreatedAt: w.now}); err != nil {
				t.Fatal(err)
			}
		}
		linked := map[string][]string{ // as linked; q1 is the other programme's
			ctID(0x311): {ctID(0x301), ctID(0x302), ctID(0x303)},
			ctID(0x312): {ctID(0x309)},
			ctID(0x313): {ctID(0x309), ctID(0x302), ctID(0x303)},
		}
		ctGroups(t, st, w, linked)
		var learners []domain.Learner
		for i, g := range []string{ctID(0x312), ctID(0x312), ctID(0x311), ctID(0x312), ctID(0x312), ctID(0x313), ctID(0x312), ctID(0x311)} {
			email := fmt.Sprintf("l%d@org.example", i)
			l := domain.Learner{ID: ctID(0x400 + i), ProgrammeID: w.p.ID, OrganisationID: w.org.ID, AccessGroupID: &g, Email: &email,
				Status: domain.StatusActive, Version: 1, CreatedAt: w.now, UpdatedAt: w.now, Origin: domain.OriginAdmin}
			if err := st.CreateLearner(ctx, l); err != nil {
				t.Fatal(err)
			}
			learners = append(learners, l)
		}
		own := map[string][]string{ // what the desired state holds
			ctID(0x311): linked[ctID(0x311)],
			ctID(0x313): {ctID(0x302), ctID(0x303)},
		}
		want := wantEnrolments(learners, own, lms)
		if len(want) != 8 {
			t.Fatalf("fixture: %d rows expected, want 8", len(want))
		}
		pageThrough(t, st, w.p.ID, "another programme's course", want)
	})
}

// ctGroups creates the access groups of w's organisation, each named "Group"
// and its ID's last three digits (as wantEnrolments expects), with its
// courses.
func ctGroups(t *testing.T, st *store.Store, w ctWorld, groups map[string][]string) {
	t.Helper()
	ctx := context.Background()
	for id, cs := range groups {
		if err := st.CreateAccessGroup(ctx, domain.AccessGroup{ID: id, OrganisationID: w.org.ID, Name: "Group " + id[len(id)-3:], CreatedAt: w.now}); err != nil {
			t.Fatal(err)
		}
		if err := st.SetAccessGroupCourses(ctx, id, cs); err != nil {
			t.Fatal(err)
		}
	}
}

// wantEnrolments is the desired state of the fixture: every active learner
// in a group × the group's courses, in (learner ID, LMS course ID) order.
func wantEnrolments(learners []domain.Learner, groups map[string][]string, lms map[string]string) []domain.Enrolment {
	var want []domain.Enrolment
	learners = slices.Clone(learners)
	slices.SortFunc(learners, func(a, b domain.Learner) int { return compare(a.ID, b.ID) })
	for _, l := range learners {
		if l.Status != domain.StatusActive || l.AccessGroupID == nil {
			continue
		}
		var cs []string
		for _, c := range groups[*l.AccessGroupID] {
			cs = append(cs, lms[c])
		}
		slices.Sort(cs) // Go compares bytewise
		for _, c := range cs {
			g := *l.AccessGroupID
			want = append(want, domain.Enrolment{LearnerID: l.ID, Email: *l.Email, GivenName: l.GivenName, FamilyName: l.FamilyName,
				AccessGroupID: g, AccessGroupName: "Group " + g[len(g)-3:], LMSCourseID: c, LearnerVersion: l.Version})
		}
	}
	return want
}

// pageThrough reads the list at once and then page by page at every limit
// from 1 to past its length, and checks each against want.
func pageThrough(t *testing.T, st *store.Store, programmeID, setup string, want []domain.Enrolment) {
	t.Helper()
	ctx := context.Background()
	all, exhausted, err := st.ListEnrolments(ctx, programmeID, "", "", false, 5000)
	if err != nil || !exhausted {
		t.Fatalf("%s, the list at once: exhausted %v, %v", setup, exhausted, err)
	}
	sameEnrolments(t, setup+", the list at once", all, want)
	// From the start, and from a cursor inside the first learner's
	// courses (the text format allows it) after each of them: the last
	// leaves none of theirs.
	type start struct {
		learner, course string
		rest            []domain.Enrolment
	}
	starts := []start{{"", "", want}}
	for i := 0; i < len(want) && want[i].LearnerID == want[0].LearnerID; i++ {
		starts = append(starts, start{want[i].LearnerID, want[i].LMSCourseID, want[i+1:]})
	}
	for _, from := range starts {
		for limit := 1; limit <= len(from.rest)+1; limit++ {
			pages(t, st, programmeID, fmt.Sprintf("%s, from %q, limit %d", setup, from.course, limit), from.learner, from.course, limit, from.rest)
		}
	}
}

// pages reads the list page by page at limit from a cursor (learner and
// course; none for the start) and checks each page and the whole against
// want, the rows after the cursor.
func pages(t *testing.T, st *store.Store, programmeID, what, learner, course string, limit int, want []domain.Enrolment) {
	t.Helper()
	ctx := context.Background()
	var got []domain.Enrolment
	after, done := learner, false
	for page := 0; ; page++ {
		if page > len(want) {
			t.Fatalf("%s: more pages than rows", what)
		}
		afterCourse := ""
		if page == 0 {
			afterCourse = course
		}
		rows, exhausted, err := st.ListEnrolments(ctx, programmeID, after, afterCourse, done, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			t.Fatalf("%s, page %d: empty (exhausted %v)", what, page, exhausted)
		}
		if len(rows) > limit && rows[0].LearnerID != rows[len(rows)-1].LearnerID {
			t.Errorf("%s, page %d: %d rows of several learners", what, page, len(rows))
		}
		got = append(got, rows...)
		// Whole learners: the next row, if any, is another learner's.
		if n := len(got); n < len(want) && want[n].LearnerID == rows[len(rows)-1].LearnerID {
			t.Errorf("%s, page %d: ends inside learner %s", what, page, rows[len(rows)-1].LearnerID)
		}
		// Full: the page stopped only where the next learner's rows
		// would not fit.
		if n := len(got); n < len(want) {
			next := 0
			for _, e := range want[n:] {
				if e.LearnerID != want[n].LearnerID {
					break
				}
				next++
			}
			if len(rows)+next <= limit {
				t.Errorf("%s, page %d: %d rows, and the next learner's %d would fit", what, page, len(rows), next)
			}
		}
		if exhausted != (len(got) >= len(want)) {
			t.Fatalf("%s, page %d: exhausted %v after %d of %d rows", what, page, exhausted, len(got), len(want))
		}
		if exhausted {
			break
		}
		after, done = rows[len(rows)-1].LearnerID, true
	}
	sameEnrolments(t, what+", pages concatenated", got, want)
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sameEnrolments(t *testing.T, what string, got, want []domain.Enrolment) {
	t.Helper()
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	line := func(e domain.Enrolment) string {
		return fmt.Sprintf("%s %s %s/%s %s %q %s v%d", e.LearnerID, e.Email, str(e.GivenName), str(e.FamilyName), e.AccessGroupID, e.AccessGroupName, e.LMSCourseID, e.LearnerVersion)
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if g, w := line(got[i]), line(want[i]); g != w {
			t.Errorf("%s: row %d is %s, want %s", what, i, g, w)
		}
	}
}
