package graph_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/moodlesync"
	"github.com/rollcall-dev/rollcall/internal/moodlesync/moodlefake"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// The reference agent against the real service (not a fake Rollcall): after
// a scripted history — provision, accept, course change, withdrawal and
// erasure, a restart — Moodle equals the desired state (CTL-4, invariant 3).
func TestMoodleSync_CTL4_AgentMirrorsTheRealService(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d)
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			sys := lifecycle.WithSystem(context.Background(), "test")
			_, key, err := api.Service.IssueAPIKey(sys, p.ID, "moodle")
			if err != nil {
				t.Fatal(err)
			}
			moodle := moodlefake.New("moodle-token")
			for lms, c := range p.Courses {
				moodle.AddCourse(lms, c.Title)
			}
			msrv := httptest.NewServer(moodle)
			t.Cleanup(msrv.Close)
			state := filepath.Join(t.TempDir(), "state.json")
			newAgent := func() *moodlesync.Agent {
				a, err := moodlesync.New(moodlesync.Config{RollcallURL: api.Server.URL, APIKey: key, ProgrammeID: p.ID,
					MoodleURL: msrv.URL, MoodleToken: "moodle-token", StateFile: state})
				if err != nil {
					t.Fatal(err)
				}
				return a
			}
			run := func(a *moodlesync.Agent) {
				t.Helper()
				if err := a.RunOnce(context.Background()); err != nil {
					t.Fatalf("agent: %v", err)
				}
			}
			kcc := p.Orgs["Kent County Council"].ID
			var ids []string
			for _, e := range []string{"ann@kent.gov.uk", "bob@kent.gov.uk", "cat@kent.gov.uk"} {
				l, err := api.Service.CreateLearner(sys, kcc, lifecycle.LearnerInput{Email: e, GivenName: "G", FamilyName: "F"})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, l.ID)
			}
			accept := func(id string) {
				t.Helper()
				pend, err := api.Service.PendingPolicies(sys, mustLearner(t, api, id))
				if err != nil {
					t.Fatal(err)
				}
				var vs []string
				for _, v := range pend {
					vs = append(vs, v.ID)
				}
				if _, err := api.Service.AcceptPolicies(sys, lifecycle.AcceptInput{PolicyVersionIDs: vs, OnBehalfOf: id, Note: "paper form"}); err != nil {
					t.Fatal(err)
				}
			}
			accept(ids[0])
			accept(ids[1])

			agent := newAgent()
			run(agent)
			wantUsers(t, moodle, ids[0], ids[1]) // cat has not accepted: no account yet
			group := p.DefaultGroups["Kent County Council"].ID
			courses, _ := api.Service.CoursesByAccessGroups(sys, []string{group})
			for _, c := range courses[group] {
				if got := len(moodle.Enrolled(c.LMSCourseID)); got != 2 {
					t.Fatalf("course %s: %d enrolled, want 2", c.LMSCourseID, got)
				}
			}

			// The group loses a course and gains another; cat accepts; bob withdraws (erased at once, CTL-8).
			keep := []string{courses[group][0].ID, p.Courses["CTL-LEAD-201"].ID}
			if _, err := api.Service.SetAccessGroupCourses(sys, group, keep); err != nil {
				t.Fatal(err)
			}
			accept(ids[2])
			if _, err := api.Service.WithdrawConsentOnBehalf(sys, ids[1], "letter received"); err != nil {
				t.Fatal(err)
			}
			run(agent)
			wantUsers(t, moodle, ids[0], ids[2])
			if u, ok := moodle.UserByIDNumber(ids[1]); ok && !u.Deleted {
				t.Fatalf("the erased learner's account was not deleted: %+v", u)
			}
			for _, c := range courses[group] {
				want := 0
				if c.ID == keep[0] {
					want = 2
				}
				if got := len(moodle.Enrolled(c.LMSCourseID)); got != want {
					t.Fatalf("course %s: %d enrolled, want %d", c.LMSCourseID, got, want)
				}
			}
			if got := len(moodle.Enrolled("CTL-LEAD-201")); got != 2 {
				t.Fatalf("new course: %d enrolled, want 2", got)
			}

			// A restart resumes from the saved cursor and applies nothing twice.
			moodle.ResetCalls()
			run(newAgent())
			for _, fn := range []string{"core_user_create_users", "core_user_update_users", "enrol_manual_enrol_users", "core_user_delete_users"} {
				if n := moodle.CallCount(fn); n != 0 {
					t.Fatalf("after a restart with nothing new the agent called %s %d times", fn, n)
				}
			}

			// Cohorts are named after the organisation (read with the LMS key).
			var named bool
			for _, c := range moodle.Cohorts() {
				named = named || strings.HasPrefix(c.Name, "Kent County Council: ")
			}
			if !named {
				t.Errorf("cohorts: %+v", moodle.Cohorts())
			}

			// Recovery: Moodle restored from a backup brings bob's account
			// back, an admin un-suspends nobody but drops ann from a course
			// by hand, and the state file is lost. --reconcile asks the
			// service about bob (erased: his account is deleted) and repairs
			// ann, with no state file.
			restored := moodle.AddUser(moodlefake.User{Username: "bob@kent.gov.uk", Email: "bob@kent.gov.uk", FirstName: "G", LastName: "F",
				IDNumber: ids[1], Auth: "oauth2"})
			ann, _ := moodle.UserByIDNumber(ids[0])
			moodle.Unenrol("CTL-LEAD-201", ann.ID)
			if err := os.Remove(state); err != nil {
				t.Fatal(err)
			}
			if err := newAgent().Reconcile(context.Background()); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			wantUsers(t, moodle, ids[0], ids[2])
			for _, u := range moodle.Users() {
				if u.ID == restored {
					t.Fatalf("the restored account of the erased learner survived the reconcile: %+v", u)
				}
			}
			if got := len(moodle.Enrolled("CTL-LEAD-201")); got != 2 {
				t.Fatalf("after reconcile: %d enrolled on the new course, want 2", got)
			}
			run(newAgent()) // and the feed goes on from the reconcile's cursor
		})
	}
}

func mustLearner(t *testing.T, api *testkit.API, id string) domain.Learner {
	t.Helper()
	l, err := api.Service.Learner(lifecycle.WithSystem(context.Background(), "test"), id)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// wantUsers checks Moodle's live accounts are exactly these learners, unsuspended.
func wantUsers(t *testing.T, m *moodlefake.Server, learnerIDs ...string) {
	t.Helper()
	var got []string
	for _, u := range m.Users() {
		if u.Suspended || u.IDNumber == "" { // Moodle's own admin and guest accounts
			continue
		}
		got = append(got, u.IDNumber)
	}
	sort.Strings(got)
	want := append([]string(nil), learnerIDs...)
	sort.Strings(want)
	if len(got) != len(want) {
		t.Fatalf("Moodle accounts %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("Moodle accounts %v, want %v", got, want)
		}
	}
}
