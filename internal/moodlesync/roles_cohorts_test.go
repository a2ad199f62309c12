package moodlesync_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/moodlesync"
	"github.com/rollcall-dev/rollcall/internal/moodlesync/moodlefake"
)

// The student role is configured by shortname (default "student") and ID
// (default 5). Moodle's web services cannot list roles, so the agent
// checks the pair with core_user_get_course_user_profiles, which reports
// the roles a user holds in a course with their shortnames.

// TestCoreUserGetCourseUserProfiles_StudentRoleCheckedOnce: on a standard
// site the first enrolment checks role 5 is "student", once per agent.
func TestCoreUserGetCourseUserProfiles_StudentRoleCheckedOnce(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"L1", "L2", "L3"} {
		e.provision(id, strings.ToLower(id)+"@example.org", "Given"+id, "Family"+id, "G1")
		e.rc.activate(id)
	}
	a := e.agent(t, func(c *moodlesync.Config) { c.BatchSize = 1 })
	e.runOnce(t, a)
	e.checkDesired(t, "L1", "L2", "L3")
	if n := e.moodle.CallCount("core_user_get_course_user_profiles"); n != 1 {
		t.Errorf("%d role checks for three batches, want 1", n)
	}
	if !strings.Contains(e.logs.String(), `msg="student role checked" programme=prog-1 student_role=student student_role_id=5`) {
		t.Errorf("no log line for the check:\n%s", e.logs.String())
	}
}

// TestCoreUserGetCourseUserProfiles_WrongStudentRoleIDStopsAndUndoes: on a
// site whose role 5 is not "student" (roles created in another order),
// the agent enrols one new learner, sees the role is another, undoes that
// enrolment and stops with a configuration error that says what to set;
// nobody keeps a wrong role. With the right ID it goes on.
func TestCoreUserGetCourseUserProfiles_WrongStudentRoleIDStopsAndUndoes(t *testing.T) {
	e := newEnv(t)
	e.moodle.Roles[5] = moodlefake.Role{ShortName: "learnerplus", Name: "Learner plus", SortOrder: 5}
	e.moodle.Roles[9] = moodlefake.Role{ShortName: "student", Name: "Student", SortOrder: 9}
	e.moodle.Assignable[9] = true
	for _, id := range []string{"L1", "L2"} {
		e.provision(id, strings.ToLower(id)+"@example.org", "Given"+id, "Family"+id, "G1")
		e.rc.activate(id)
	}
	err := e.agent(t).RunOnce(context.Background())
	var ce *moodlesync.ConfigError
	if !errors.As(err, &ce) || !moodlesync.Fatal(err) ||
		!strings.Contains(err.Error(), `role 5 is "learnerplus" in this Moodle, not "student"`) ||
		!strings.Contains(err.Error(), "MOODLE_STUDENT_ROLE_ID") || !strings.Contains(err.Error(), "was undone") {
		t.Fatalf("err = %v", err)
	}
	for _, c := range e.courses {
		if us := e.moodle.Enrolled(c); len(us) != 0 {
			t.Errorf("enrolled on %s with the wrong role: %v", c, userIDs(us))
		}
	}
	e.studentID = 9
	e.runOnce(t, e.agent(t, func(c *moodlesync.Config) { c.StudentRoleID = 9 }))
	e.checkDesired(t, "L1", "L2")
	for _, id := range []string{"L1", "L2"} {
		u, _ := e.moodle.UserByIDNumber(id)
		if r := e.moodle.EnrolmentRole("C-101", u.ID); r != 9 {
			t.Errorf("%s has role %d on C-101, want 9", id, r)
		}
	}
}

// TestCoreUserGetCourseUserProfiles_RoleCheckedAtStartBeforeAnyChange: the
// agent restarts against a site where role 5 has become another role; it
// checks on an enrolment it made before and stops before changing
// anything.
func TestCoreUserGetCourseUserProfiles_RoleCheckedAtStartBeforeAnyChange(t *testing.T) {
	e := newEnv(t)
	e.provision("L1", "l1@example.org", "One", "Learner", "G1")
	e.rc.activate("L1")
	e.runOnce(t, e.agent(t))
	e.moodle.Roles[5] = moodlefake.Role{ShortName: "guestlike", Name: "Guest-like", SortOrder: 5}
	e.provision("L2", "l2@example.org", "Two", "Learner", "G1")
	e.rc.activate("L2")
	e.moodle.ResetCalls()
	err := e.agent(t).RunOnce(context.Background())
	if !moodlesync.Fatal(err) || !strings.Contains(err.Error(), `role 5 is "guestlike"`) || strings.Contains(err.Error(), "undone") {
		t.Fatalf("err = %v", err)
	}
	if n := writes(e.moodle); n != 0 {
		t.Errorf("%d writes before the role was checked", n)
	}
	if _, ok := e.moodle.UserByIDNumber("L2"); ok {
		t.Error("L2 got an account")
	}
}

// TestCoreCohortUpdateCohorts_RenamedOrganisationRenamesTheCohort: cohort
// names tell organisations apart, so a renamed organisation or group
// renames the agent's cohort: with the next learner of the group the
// agent applies, and in --reconcile without a state file. Cohorts made by
// hand keep their names.
func TestCoreCohortUpdateCohorts_RenamedOrganisationRenamesTheCohort(t *testing.T) {
	e := newEnv(t)
	e.moodle.AddCohort("G2", "Made by hand")
	e.provision("L1", "l1@example.org", "One", "Learner", "G1")
	e.rc.activate("L1")
	e.provision("L2", "l2@example.org", "Two", "Learner", "G2")
	e.rc.activate("L2")
	e.runOnce(t, e.agent(t))
	name := func(g string) string {
		for _, c := range e.moodle.Cohorts() {
			if c.IDNumber == g {
				return c.Name
			}
		}
		return ""
	}
	if got := name("G1"); got != "Org of G1: Group one" {
		t.Fatalf("cohort G1 named %q", got)
	}

	// The normal path: the organisation is renamed (no event), then a
	// learner of the group changes.
	e.rc.renameOrg("G1", "Council of Avalon")
	e.rc.renameOrg("G2", "Council of Lyonesse")
	e.rc.update("L1", "l1@example.org", "Uno", "Learner")
	e.rc.update("L2", "l2@example.org", "Due", "Learner")
	e.runOnce(t, e.agent(t))
	if got := name("G1"); got != "Council of Avalon: Group one" {
		t.Errorf("after the organisation's rename: %q", got)
	}
	if got := name("G2"); got != "Made by hand" {
		t.Errorf("a hand-made cohort was renamed: %q", got)
	}
	if n := e.moodle.CallCount("core_cohort_update_cohorts"); n != 1 {
		t.Errorf("%d cohort updates, want 1", n)
	}

	// --reconcile without a state file: the group is renamed, no learner
	// changes.
	e.rc.renameGroup("G1", "All staff")
	if err := os.Remove(e.stateFile); err != nil {
		t.Fatal(err)
	}
	e.reconcile(t, e.agent(t))
	if got := name("G1"); got != "Council of Avalon: All staff" {
		t.Errorf("after --reconcile: %q", got)
	}
	e.checkDesired(t, "L1", "L2")

	// Nothing changed: nothing is renamed.
	e.moodle.ResetCalls()
	e.reconcile(t, e.agent(t))
	if n := e.moodle.CallCount("core_cohort_update_cohorts"); n != 0 {
		t.Errorf("%d cohort updates without a change", n)
	}
}

// A rename whose organisation name cannot be read right now is not made:
// the fallback name is for new cohorts only.
func TestCoreCohortUpdateCohorts_NoRenameWithoutTheOrganisationName(t *testing.T) {
	e := newEnv(t)
	e.provision("L1", "l1@example.org", "One", "Learner", "G1")
	e.rc.activate("L1")
	e.runOnce(t, e.agent(t))
	e.rc.renameOrg("G1", "") // the organisation query answers an empty name
	e.rc.update("L1", "l1@example.org", "Uno", "Learner")
	e.runOnce(t, e.agent(t))
	if n := e.moodle.CallCount("core_cohort_update_cohorts"); n != 0 {
		t.Errorf("renamed to the fallback name (%d updates): %+v", n, e.moodle.Cohorts())
	}
}

// TestEnrolManualEnrolUsers_WithoutCourseViewStopsOnce: Moodle's
// enrol_manual_enrol_users validates the course context, which is
// require_login() on the course; without moodle/course:view the agent's
// user (enrolled nowhere) is refused with requireloginerror. That is a
// set-up problem: Run stops with what to allow, and no learner is parked.
func TestEnrolManualEnrolUsers_WithoutCourseViewStopsOnce(t *testing.T) {
	e := newEnv(t)
	e.moodle.Revoke("moodle/course:view")
	for _, id := range []string{"L1", "L2"} {
		e.provision(id, strings.ToLower(id)+"@example.org", "Given"+id, "Family"+id, "G1")
		e.rc.activate(id)
	}
	done := make(chan error, 1)
	go func() { done <- e.agent(t).Run(context.Background()) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept going without moodle/course:view")
	}
	var me *moodlesync.MoodleError
	if !errors.As(err, &me) || me.ErrorCode != "requireloginerror" || !moodlesync.Fatal(err) ||
		!strings.Contains(err.Error(), "moodle/course:view") {
		t.Fatalf("Run: %v", err)
	}
	if n := e.moodle.CallCount("enrol_manual_enrol_users"); n != 1 {
		t.Errorf("%d enrol calls: a set-up problem is not retried", n)
	}
	if _, err := os.Stat(e.stateFile); err == nil {
		if p := e.state(t).Parked; len(p) != 0 {
			t.Errorf("learners parked for a set-up problem: %+v", p)
		}
	}
}

// TestCoreCohortGetCohorts_RawNamesSoNoRenameLoop: Moodle formats cohort
// names it returns (an ampersand comes back as &amp;); the agent asks for
// raw strings, so a name with "&" compares equal and is not renamed again
// and again.
func TestCoreCohortGetCohorts_RawNamesSoNoRenameLoop(t *testing.T) {
	e := newEnv(t)
	e.rc.renameOrg("G1", "Tunbridge Wells & Sevenoaks")
	e.provision("L1", "l1@example.org", "One", "Learner", "G1")
	e.rc.activate("L1")
	e.runOnce(t, e.agent(t))
	e.rc.update("L1", "l1@example.org", "Uno", "Learner")
	e.runOnce(t, e.agent(t))
	e.reconcile(t, e.agent(t))
	if n := e.moodle.CallCount("core_cohort_update_cohorts"); n != 0 {
		t.Errorf("%d renames of an unchanged cohort: %+v", n, e.moodle.Cohorts())
	}
	if c := e.moodle.Cohorts(); len(c) != 1 || c[0].Name != "Tunbridge Wells & Sevenoaks: Group one" {
		t.Errorf("cohorts: %+v", c)
	}
}
