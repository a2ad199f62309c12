package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// CTL-4: the desired state is every active learner × every course of their
// access group. Read page by page, at any page size, it is exactly the list
// read at once: in (learner ID, LMS course ID) order compared bytewise,
// learners in groups without courses (or no group) and learners without
// access left out, each page ending at a learner's last row (a learner's
// rows on two pages could come from two versions), at most limit rows or
// one learner's, and exhausted on the last page only.
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
		groups := map[string][]string{ // group ID → its courses
			ctID(0x310): nil,
			ctID(0x311): {ctID(0x301)},
			ctID(0x313): {ctID(0x302), ctID(0x303), ctID(0x304)},
		}
		for id, cs := range groups {
			if err := st.CreateAccessGroup(ctx, domain.AccessGroup{ID: id, OrganisationID: w.org.ID, Name: "Group " + id[len(id)-3:], CreatedAt: w.now}); err != nil {
				t.Fatal(err)
			}
			if err := st.SetAccessGroupCourses(ctx, id, cs); err != nil {
				t.Fatal(err)
			}
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

		// The list, from the fixture.
		var want []domain.Enrolment
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
		if len(want) != 18 {
			t.Fatalf("fixture: %d rows expected, want 18", len(want))
		}

		all, exhausted, err := st.ListEnrolments(ctx, w.p.ID, "", "", false, 5000)
		if err != nil || !exhausted {
			t.Fatalf("the list at once: exhausted %v, %v", exhausted, err)
		}
		sameEnrolments(t, "the list at once", all, want)

		for limit := 1; limit <= len(want)+1; limit++ {
			var got []domain.Enrolment
			after, done := "", false
			for page := 0; ; page++ {
				if page > len(want) {
					t.Fatalf("limit %d: more pages than rows", limit)
				}
				rows, exhausted, err := st.ListEnrolments(ctx, w.p.ID, after, "", done, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(rows) == 0 {
					t.Fatalf("limit %d, page %d: empty (exhausted %v)", limit, page, exhausted)
				}
				if len(rows) > limit && rows[0].LearnerID != rows[len(rows)-1].LearnerID {
					t.Errorf("limit %d, page %d: %d rows of several learners", limit, page, len(rows))
				}
				got = append(got, rows...)
				// Whole learners: the next row, if any, is another learner's.
				if n := len(got); n < len(want) && want[n].LearnerID == rows[len(rows)-1].LearnerID {
					t.Errorf("limit %d, page %d: ends inside learner %s", limit, page, rows[len(rows)-1].LearnerID)
				}
				if exhausted != (len(got) >= len(want)) {
					t.Fatalf("limit %d, page %d: exhausted %v after %d of %d rows", limit, page, exhausted, len(got), len(want))
				}
				if exhausted {
					break
				}
				after, done = rows[len(rows)-1].LearnerID, true
			}
			sameEnrolments(t, fmt.Sprintf("limit %d, pages concatenated", limit), got, want)
		}

		// A cursor inside a learner's courses (the text format allows it)
		// continues after that course.
		mid := want[1] // the first learner's second course
		if mid.LearnerID != want[0].LearnerID || mid.LearnerID != want[2].LearnerID {
			t.Fatalf("fixture: the first learner has not 3 courses: %+v", want[:3])
		}
		rest, exhausted, err := st.ListEnrolments(ctx, w.p.ID, mid.LearnerID, mid.LMSCourseID, false, 5000)
		if err != nil || !exhausted {
			t.Fatalf("after a course: exhausted %v, %v", exhausted, err)
		}
		sameEnrolments(t, "after a course", rest, want[2:])
		rest, exhausted, err = st.ListEnrolments(ctx, w.p.ID, mid.LearnerID, mid.LMSCourseID, false, 1)
		if err != nil || exhausted {
			t.Fatalf("after a course, limit 1: exhausted %v, %v", exhausted, err)
		}
		sameEnrolments(t, "after a course, limit 1", rest, want[2:3])
	})
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
