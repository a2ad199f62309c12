package moodlesync_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/moodlesync"
	"github.com/rollcall-dev/rollcall/internal/moodlesync/moodlefake"
)

func (e *env) reconcile(t *testing.T, a *moodlesync.Agent) {
	t.Helper()
	if err := a.Reconcile(context.Background()); err != nil {
		t.Fatalf("Reconcile: %v\nlog:\n%s", err, e.logs.String())
	}
}

// TestErasure_Invariant2_NothingOfThePersonLeftInMoodle: after erasure,
// nothing in Moodle (live and deleted user rows, cohorts, enrolments, the
// log store with its user_deleted event) holds the learner's email, names
// or Rollcall ID.
func TestErasure_Invariant2_NothingOfThePersonLeftInMoodle(t *testing.T) {
	e := newEnv(t)
	e.provision("L-ada-1", "Ada.Lovelace@Example.org", "Augusta", "Lovelace", "G1")
	e.rc.activate("L-ada-1")
	e.provision("L-bob-2", "bob.stays@example.org", "Robert", "Stays", "G1")
	e.rc.activate("L-bob-2")
	a := e.agent(t)
	e.runOnce(t, a)
	// The learner changes their email once: Moodle's log holds both.
	e.rc.update("L-ada-1", "ada.king@example.org", "Augusta", "Lovelace")
	e.runOnce(t, a)
	e.rc.withdraw("L-ada-1")
	e.rc.erase("L-ada-1")
	e.runOnce(t, a)
	e.checkDesired(t)

	dump := e.moodle.Dump()
	for _, p := range []string{"ada.lovelace@example.org", "Ada.Lovelace@Example.org", "ada.king@example.org", "Augusta", "Lovelace", "L-ada-1"} {
		if strings.Contains(strings.ToLower(dump), strings.ToLower(p)) {
			for _, line := range strings.Split(dump, "\n") {
				if strings.Contains(strings.ToLower(line), strings.ToLower(p)) {
					t.Errorf("Moodle still holds %q: %s", p, line)
				}
			}
		}
	}
	// The other learner is untouched: the scan can find what is there.
	if !strings.Contains(dump, "bob.stays@example.org") {
		t.Error("the scan does not see live data")
	}
	var deletedEvent bool
	for _, l := range e.moodle.Log() {
		if l.EventName == `\core\event\user_deleted` {
			deletedEvent = true
			if !strings.HasPrefix(l.Other["username"], "rollcall-erased-") || !strings.HasSuffix(l.Other["email"], "@rollcall.invalid") {
				t.Errorf("user_deleted event: %+v", l.Other)
			}
		}
	}
	if !deletedEvent {
		t.Error("no user_deleted event: the account was not deleted")
	}
}

// TestReconcile_LostStateFile: the state file is gone after learners were
// withdrawn and erased while the agent was down; --reconcile, with no
// state file, suspends the withdrawn, deletes the erased, and the agent
// follows the feed from there.
func TestReconcile_LostStateFile(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"L1", "L2", "L3", "L4"} {
		e.provision(id, strings.ToLower(id)+"@example.org", "Given"+id, "Family"+id, "G1")
		e.rc.activate(id)
	}
	e.runOnce(t, e.agent(t))
	// An account of another programme (same auth) must be left alone.
	other := e.moodle.AddUser(moodlefake.User{Username: "x@other.example", Email: "x@other.example", FirstName: "X", LastName: "Y",
		IDNumber: "OTHER-PROGRAMME-9", Auth: "oauth2"})
	e.rc.withdraw("L2")
	e.rc.withdraw("L3")
	e.rc.erase("L3")
	e.rc.changeGroup("L4", "G2")
	e.rc.expireAll()
	if err := os.Remove(e.stateFile); err != nil {
		t.Fatal(err)
	}
	e.reconcile(t, e.agent(t))
	if u, ok := e.moodle.UserByIDNumber("OTHER-PROGRAMME-9"); !ok || u.ID != other || u.Suspended {
		t.Errorf("another programme's account was touched: %+v %v", u, ok)
	}
	e.moodle.SetUser(other, func(u *moodlefake.User) { u.IDNumber = "" }) // for checkDesired
	e.checkDesired(t, "L2")
	if _, ok := e.moodle.UserByIDNumber("L3"); ok {
		t.Error("the erased learner's account survived the reconcile")
	}
	st := e.state(t)
	if st.Cursor != e.rc.headCursor() || !st.Learners["L3"].Erased {
		t.Errorf("state after reconcile: cursor %q, L3 %+v", st.Cursor, st.Learners["L3"])
	}
	// And the feed goes on from the list's asOf.
	e.rc.erase("L2")
	e.runOnce(t, e.agent(t))
	e.checkDesired(t)
}

// TestReconcile_HandMadeDrift: changes made by hand in Moodle (a withdrawn
// learner un-suspended, a learner taken out of their cohort and off a
// course, names changed, an extra enrolment) are repaired by --reconcile,
// although the state file says everything was applied.
func TestReconcile_HandMadeDrift(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"L1", "L2"} {
		e.provision(id, strings.ToLower(id)+"@example.org", "Given"+id, "Family"+id, "G1")
		e.rc.activate(id)
	}
	e.provision("L3", "l3@example.org", "GivenL3", "FamilyL3", "G2")
	e.rc.activate("L3")
	a := e.agent(t)
	e.runOnce(t, a)
	e.rc.withdraw("L2")
	e.runOnce(t, a)
	e.checkDesired(t, "L2")

	u1, _ := e.moodle.UserByIDNumber("L1")
	u2, _ := e.moodle.UserByIDNumber("L2")
	e.moodle.SetUser(u2.ID, func(u *moodlefake.User) { u.Suspended = false })
	e.moodle.SetUser(u1.ID, func(u *moodlefake.User) { u.FirstName = "Hand" })
	e.moodle.AddCohortMember("G2", u1.ID)
	e.moodle.Enrol("C-201", u1.ID, 5)
	e.moodle.Unenrol("C-101", u1.ID)
	e.moodle.RemoveCohortMember("G1", u1.ID)
	// The state holds everything as applied: a plain run does nothing.
	e.moodle.ResetCalls()
	e.runOnce(t, a)
	if n := writes(e.moodle); n != 0 {
		t.Errorf("a caught-up run made %d writes", n)
	}
	if u, _ := e.moodle.UserByIDNumber("L2"); u.Suspended {
		t.Fatal("the drift test needs the hand-made change to survive a plain run")
	}
	e.reconcile(t, a)
	e.checkDesired(t, "L2")
	if u, _ := e.moodle.UserByIDNumber("L2"); !u.Suspended {
		t.Error("the account un-suspended by hand is still active")
	}
}

// TestReconcile_ErasureDuringCursorExpiredGap: a learner erased while the
// agent's cursor was past the feed's retention has their account deleted
// (not only suspended) by the full list that follows CURSOR_EXPIRED, and by
// a reconcile.
func TestReconcile_ErasureDuringCursorExpiredGap(t *testing.T) {
	for _, mode := range []string{"cursor expired", "reconcile"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			for _, id := range []string{"L1", "L2"} {
				e.provision(id, strings.ToLower(id)+"@example.org", "Given"+id, "Family"+id, "G1")
				e.rc.activate(id)
			}
			a := e.agent(t)
			e.runOnce(t, a)
			e.rc.withdraw("L1")
			e.rc.erase("L1")
			e.rc.expireAll()
			if mode == "reconcile" {
				e.reconcile(t, a)
			} else {
				e.runOnce(t, a)
			}
			e.checkDesired(t)
			if d := e.moodle.DeletedUsers(); len(d) != 1 || d[0].FirstName != "Erased" {
				t.Errorf("deleted: %+v", d)
			}
		})
	}
}

// TestMissingCapabilityStopsOnce: a capability taken away from the
// web-service user (core_user_create_users answers nopermissions) stops Run
// with Moodle's message, logged once, instead of retrying forever or
// parking every learner.
func TestMissingCapabilityStopsOnce(t *testing.T) {
	e := newEnv(t)
	e.moodle.Revoke("moodle/user:create")
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
		t.Fatal("Run kept going after a missing capability")
	}
	var me *moodlesync.MoodleError
	if !errors.As(err, &me) || me.ErrorCode != "nopermissions" || !moodlesync.Fatal(err) ||
		!strings.Contains(err.Error(), "Create users") || !strings.Contains(me.Exception, "required_capability_exception") {
		t.Fatalf("Run: %v", err)
	}
	if n := e.moodle.CallCount("core_user_create_users"); n != 1 {
		t.Errorf("%d create calls: a missing capability is not retried", n)
	}
	if _, err := os.Stat(e.stateFile); err == nil {
		if p := e.state(t).Parked; len(p) != 0 {
			t.Errorf("learners parked for a configuration problem: %+v", p)
		}
	}
}

// TestPreflight_CannotSeeIdnumbers: without moodle/user:viewalldetails,
// core_user_get_users_by_field finds nobody by idnumber; the agent says so
// before writing anything, instead of trying to create every account again.
func TestPreflight_CannotSeeIdnumbers(t *testing.T) {
	e := newEnv(t)
	e.moodle.Revoke("moodle/user:viewalldetails")
	e.provision("L1", "l1@example.org", "One", "Learner", "G1")
	e.rc.activate("L1")
	err := e.agent(t).RunOnce(context.Background())
	var ce *moodlesync.ConfigError
	if !errors.As(err, &ce) || !moodlesync.Fatal(err) || !strings.Contains(err.Error(), "moodle/user:viewalldetails") {
		t.Fatalf("RunOnce: %v", err)
	}
	if n := writes(e.moodle); n != 0 {
		t.Errorf("%d writes", n)
	}
}

// TestCoreUserUpdateUsers_UseremailduplicateParksOnlyThatLearner: a new
// email another Moodle account holds is Moodle's useremailduplicate
// warning; that learner is parked with the code and a hint, and the
// suspension of another learner in the same page happens.
func TestCoreUserUpdateUsers_UseremailduplicateParksOnlyThatLearner(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"L1", "L2"} {
		e.provision(id, strings.ToLower(id)+"@example.org", "Given"+id, "Family"+id, "G1")
		e.rc.activate(id)
	}
	a := e.agent(t)
	e.runOnce(t, a)
	e.moodle.AddUser(moodlefake.User{Username: "someone", Email: "taken@example.org", FirstName: "Some", LastName: "One"})
	e.personal = append(e.personal, "taken@example.org")
	e.rc.update("L1", "taken@example.org", "GivenL1", "FamilyL1")
	e.rc.withdraw("L2")
	e.runOnce(t, a)
	if u, _ := e.moodle.UserByIDNumber("L2"); !u.Suspended {
		t.Error("L2's suspension waited behind L1")
	}
	p := e.state(t).Parked["L1"]
	if p == nil || p.Code != "useremailduplicate" || !strings.Contains(p.Hint, "email") {
		t.Fatalf("parked: %+v", e.state(t).Parked)
	}
	// A withdrawal of the parked learner is applied at once.
	e.rc.withdraw("L1")
	e.runOnce(t, a)
	if u, _ := e.moodle.UserByIDNumber("L1"); !u.Suspended {
		t.Error("the parked learner's suspension waited")
	}
	if p := e.state(t).Parked; len(p) != 0 {
		t.Errorf("still parked: %+v", p)
	}
}

// TestFeed_CTL10_NullNamesForLearnersWithoutAccess: an LMS key reads name
// and email only of learners in the desired state; the agent suspends and
// erases learners whose feed data has null email, names and accessAllowed.
func TestFeed_CTL10_NullNamesForLearnersWithoutAccess(t *testing.T) {
	e := newEnv(t)
	e.rc.restricted = true
	for _, id := range []string{"L1", "L2"} {
		e.provision(id, strings.ToLower(id)+"@example.org", "Given"+id, "Family"+id, "G1")
		e.rc.activate(id)
	}
	a := e.agent(t)
	e.runOnce(t, a)
	e.rc.withdraw("L1")
	e.rc.withdraw("L2")
	e.runOnce(t, a)
	for _, id := range []string{"L1", "L2"} {
		if u, _ := e.moodle.UserByIDNumber(id); !u.Suspended || u.FirstName != "Given"+id {
			t.Errorf("%s: %+v", id, u)
		}
	}
	e.rc.erase("L2")
	e.runOnce(t, a)
	e.checkDesired(t, "L1")
}

// TestConfigurableAuthAndRole: councils sign in with other plugins, and
// sites number roles differently.
func TestConfigurableAuthAndRole(t *testing.T) {
	e := newEnv(t)
	e.provision("L1", "l1@example.org", "One", "Learner", "G1")
	e.rc.activate("L1")
	e.runOnce(t, e.agent(t, func(c *moodlesync.Config) { c.Auth = "saml2"; c.StudentRole = "teacher"; c.StudentRoleID = 4 }))
	u, ok := e.moodle.UserByIDNumber("L1")
	if !ok || u.Auth != "saml2" || e.moodle.EnrolmentRole("C-101", u.ID) != 4 {
		t.Errorf("account %+v, role %d", u, e.moodle.EnrolmentRole("C-101", u.ID))
	}
}

// BenchmarkFirstLoad10000 applies 10,000 new learners (two groups, three
// courses) to the stand-in and reports Moodle calls per learner.
//
//	go test -run '^$' -bench FirstLoad -benchtime 1x ./internal/moodlesync/
func BenchmarkFirstLoad10000(b *testing.B) {
	const n = 10000
	for range b.N {
		b.StopTimer()
		e := newEnv(b)
		e.personal = nil
		for i := range n {
			id := fmt.Sprintf("L%05d", i)
			g := "G1"
			if i%2 == 1 {
				g = "G2"
			}
			e.rc.provision(id, fmt.Sprintf("learner%05d@example.org", i), "Given", "Family", g)
			e.rc.activate(id)
		}
		cfg := e.config()
		cfg.Log = slog.New(slog.DiscardHandler)
		a, err := moodlesync.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		e.moodle.ResetCalls()
		b.StartTimer()
		start := time.Now()
		if err := a.RunOnce(context.Background()); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		if got := len(e.moodle.Users()) - 2; got != n {
			b.Fatalf("%d accounts, want %d", got, n)
		}
		calls := len(e.moodle.Calls())
		b.ReportMetric(float64(calls)/n, "calls/learner")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "learners/s")
		b.Logf("%d learners: %d Moodle calls (%.3f per learner), %s", n, calls, float64(calls)/n, elapsed)
	}
}

// TestCoreUserCreateUsers_ExtendedUsernameChars: a work email with a
// character outside a-z 0-9 - . @ _ is not a username Moodle accepts unless
// $CFG->extendedusernamechars is on; the learner is parked with a hint that
// says so, the others are created in the same batch, and the learner is
// applied once the setting is on.
func TestCoreUserCreateUsers_ExtendedUsernameChars(t *testing.T) {
	e := newEnv(t)
	e.provision("L1", "ann+training@example.org", "Ann", "Plus", "G1")
	e.rc.activate("L1")
	e.provision("L2", "bob@example.org", "Bob", "Plain", "G1")
	e.rc.activate("L2")
	a := e.agent(t, func(c *moodlesync.Config) { c.ParkRetry = time.Nanosecond })
	e.runOnce(t, a)
	if _, ok := e.moodle.UserByIDNumber("L2"); !ok {
		t.Fatal("L2 waited behind L1")
	}
	p := e.state(t).Parked["L1"]
	if p == nil || p.Code != "invalidparameter" || !strings.Contains(p.Hint, "extendedusernamechars") {
		t.Fatalf("parked: %+v", e.state(t).Parked)
	}
	e.moodle.ExtendedUsernameChars = true
	e.runOnce(t, a)
	e.checkDesired(t)
	if u, _ := e.moodle.UserByIDNumber("L1"); u.Username != "ann+training@example.org" {
		t.Errorf("L1: %+v", u)
	}
}
