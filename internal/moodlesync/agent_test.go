package moodlesync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/moodlesync"
	"github.com/rollcall-dev/rollcall/internal/moodlesync/moodlefake"
)

// syncBuffer is a log sink safe for Run's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	rc        *fakeRollcall
	moodle    *moodlefake.Server
	moodleURL string
	stateFile string
	logs      *syncBuffer
	courses   []string        // every course idnumber in Moodle
	personal  []string        // every email and name used, none of which may be logged
	skip      map[string]bool // learners checkDesired leaves out
	studentID int64           // the student role's ID in Moodle, if not 5
}

func (e *env) roleID() int64 {
	if e.studentID == 0 {
		return 5
	}
	return e.studentID
}

const moodleToken = "ws-token-1"

// newEnv: a Rollcall with access groups G1 (courses C-101, C-102) and G2
// (C-201), and a Moodle with those courses.
func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{rc: newFakeRollcall(t), moodle: moodlefake.New(moodleToken), logs: &syncBuffer{},
		stateFile: filepath.Join(t.TempDir(), "moodle-sync.state.json")}
	srv := httptest.NewServer(e.moodle)
	t.Cleanup(srv.Close)
	e.moodleURL = srv.URL
	e.rc.group("G1", "Group one", "C-101", "C-102")
	e.rc.group("G2", "Group two", "C-201")
	for _, c := range []string{"C-101", "C-102", "C-201", "C-301"} {
		e.moodle.AddCourse(c, "course "+c)
		e.courses = append(e.courses, c)
	}
	t.Cleanup(func() {
		logs := e.logs.String()
		for _, p := range e.personal {
			if strings.Contains(logs, p) {
				t.Errorf("the log contains personal data %q:\n%s", p, logs)
			}
		}
	})
	return e
}

func (e *env) provision(id, email, given, family, group string) {
	for _, p := range []string{email, given, family} {
		if len(p) >= 4 { // short ones match by accident
			e.personal = append(e.personal, p)
		}
	}
	e.rc.provision(id, email, given, family, group)
}

func (e *env) config() moodlesync.Config {
	return moodlesync.Config{
		RollcallURL: e.rc.srv.URL, APIKey: e.rc.apiKey, ProgrammeID: e.rc.programme,
		MoodleURL: e.moodleURL, MoodleToken: moodleToken, StateFile: e.stateFile,
		Log:   slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Retry: moodlesync.Retry{Attempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond},
	}
}

func (e *env) agent(t *testing.T, mod ...func(*moodlesync.Config)) *moodlesync.Agent {
	t.Helper()
	cfg := e.config()
	for _, m := range mod {
		m(&cfg)
	}
	a, err := moodlesync.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (e *env) runOnce(t *testing.T, a *moodlesync.Agent) {
	t.Helper()
	if err := a.RunOnce(context.Background()); err != nil {
		t.Fatalf("RunOnce: %v\nlog:\n%s", err, e.logs.String())
	}
}

type savedState struct {
	Cursor   string `json:"cursor"`
	Learners map[string]struct {
		V       int64    `json:"v"`
		Erased  bool     `json:"erased"`
		Group   string   `json:"group"`
		Courses []string `json:"courses"`
	} `json:"learners"`
	Parked map[string]*moodlesync.Parked `json:"parked"`
}

func (e *env) state(t *testing.T) savedState {
	t.Helper()
	b, err := os.ReadFile(e.stateFile)
	if err != nil {
		t.Fatal(err)
	}
	var s savedState
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func userIDs(us []moodlefake.User) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.IDNumber)
	}
	sort.Strings(out)
	return out
}

// checkDesired compares Moodle with Rollcall's current data: every learner
// with access has an account with their data, in their group's cohort only
// and enrolled (as student) on their group's courses only; a learner without
// access has no account or a suspended one (wantAccount: must have one);
// erased learners have none; no other account carries an idnumber.
func (e *env) checkDesired(t *testing.T, wantAccount ...string) {
	t.Helper()
	e.rc.mu.Lock()
	learners := map[string]fakeLearner{}
	for id, l := range e.rc.learners {
		learners[id] = *l
	}
	groups := map[string]fakeGroup{}
	for id, g := range e.rc.groups {
		groups[id] = *g
	}
	e.rc.mu.Unlock()

	live := map[string]moodlefake.User{}
	for _, u := range e.moodle.Users() {
		if u.IDNumber == "" {
			continue
		}
		if _, ok := learners[u.IDNumber]; !ok {
			t.Errorf("moodle user %d has idnumber %q, not a learner", u.ID, u.IDNumber)
		}
		live[u.IDNumber] = u
	}
	members := map[string]map[string]bool{}
	for g := range groups {
		members[g] = map[string]bool{}
		for _, u := range e.moodle.CohortMembers(g) {
			members[g][u.IDNumber] = true
		}
	}
	enrolled := map[string]map[string]int64{}
	for _, c := range e.courses {
		enrolled[c] = map[string]int64{}
		for _, u := range e.moodle.Enrolled(c) {
			enrolled[c][u.IDNumber] = e.moodle.EnrolmentRole(c, u.ID)
		}
	}
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for id, l := range learners {
		if e.skip[id] {
			continue
		}
		u, ok := live[id]
		if l.erased {
			if ok {
				t.Errorf("%s is erased but has Moodle account %d", id, u.ID)
			}
			continue
		}
		if !ok {
			if l.allowed || containsStr(wantAccount, id) {
				t.Errorf("%s (status %s) has no Moodle account", id, l.status)
			}
			continue
		}
		if u.Username != strings.ToLower(l.email) || u.Email != l.email || u.FirstName != orDash(l.given) || u.LastName != orDash(l.family) {
			t.Errorf("%s: moodle has %q %q %q %q, rollcall %q %q %q", id, u.Username, u.Email, u.FirstName, u.LastName, l.email, l.given, l.family)
		}
		if u.Auth != "oauth2" {
			t.Errorf("%s: auth %q", id, u.Auth)
		}
		if u.Suspended != !l.allowed {
			t.Errorf("%s: suspended=%v, accessAllowed=%v", id, u.Suspended, l.allowed)
		}
		for g := range groups {
			if members[g][id] != (g == l.group) {
				t.Errorf("%s (group %s): member of cohort %s = %v", id, l.group, g, members[g][id])
			}
		}
		for _, c := range e.courses {
			want := containsStr(groups[l.group].courses, c)
			role, got := enrolled[c][id]
			if got != want {
				t.Errorf("%s (group %s): enrolled on %s = %v", id, l.group, c, got)
			}
			if got && role != e.roleID() {
				t.Errorf("%s: role %d on %s", id, role, c)
			}
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", e.logs.String())
	}
}

func containsStr(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// writes counts the calls that change Moodle.
func writes(m *moodlefake.Server) int {
	n := 0
	for _, c := range m.Calls() {
		switch c.Function {
		case "core_user_get_users_by_field", "core_cohort_get_cohorts", "core_course_get_courses_by_field",
			"core_webservice_get_site_info", "core_user_get_users", "core_user_get_course_user_profiles":
		default:
			n++
		}
	}
	return n
}

// TestLifecycle walks learners through provisioning, acceptance, a group
// change, an update, withdrawal and erasure, one RunOnce per step, and
// compares Moodle with Rollcall after each.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	e.provision("L1", "Ada.Lovelace@Example.org", "Ada", "Lovelace", "G1")
	e.rc.activate("L1")
	e.provision("L2", "grace@example.org", "Grace", "", "G1") // no family name
	a := e.agent(t)

	// First run: the full list (L1 only: L2 has not accepted yet).
	e.runOnce(t, a)
	e.checkDesired(t)
	if st := e.state(t); st.Cursor != e.rc.headCursor() {
		t.Errorf("cursor %q after the list, want asOf %q", st.Cursor, e.rc.headCursor())
	}
	if _, ok := e.moodle.UserByIDNumber("L2"); ok {
		t.Error("L2 has an account before accepting the policies")
	}
	u1, _ := e.moodle.UserByIDNumber("L1")
	if u1.Username != "ada.lovelace@example.org" || u1.Email != "Ada.Lovelace@Example.org" {
		t.Errorf("L1: username %q, email %q", u1.Username, u1.Email)
	}
	if got := userIDs(e.moodle.CohortMembers("G1")); strings.Join(got, ",") != "L1" {
		t.Errorf("cohort G1: %v", got)
	}
	// Named after the organisation and the group: every organisation's
	// default group is "All staff".
	if c := e.moodle.Cohorts(); len(c) != 1 || c[0].Name != "Org of G1: Group one" {
		t.Errorf("cohorts: %+v", c)
	}

	// Acceptance.
	e.rc.activate("L2")
	e.runOnce(t, a)
	e.checkDesired(t)
	if u, ok := e.moodle.UserByIDNumber("L2"); !ok || u.Suspended || u.LastName != "-" {
		t.Errorf("L2 after acceptance: %+v (exists %v)", u, ok)
	}

	// Group change: G1 → G2 leaves G1's cohort and courses.
	e.rc.changeGroup("L1", "G2")
	e.runOnce(t, a)
	e.checkDesired(t)
	if got := userIDs(e.moodle.Enrolled("C-101")); strings.Join(got, ",") != "L2" {
		t.Errorf("C-101 after L1 moved: %v", got)
	}

	// New email and name.
	e.personal = append(e.personal, "ada@lovelace.example", "Augusta Ada", "King")
	e.rc.update("L1", "ada@lovelace.example", "Augusta Ada", "King")
	e.runOnce(t, a)
	e.checkDesired(t)

	// The group's courses change.
	e.rc.setCourses("G2", "C-201", "C-301")
	e.runOnce(t, a)
	e.checkDesired(t)

	// Withdrawal suspends; the account, cohort and enrolments stay.
	e.rc.withdraw("L2")
	e.runOnce(t, a)
	e.checkDesired(t, "L2")
	if u, _ := e.moodle.UserByIDNumber("L2"); !u.Suspended {
		t.Error("L2 not suspended after withdrawal")
	}

	// Reinstatement unsuspends.
	e.rc.reinstate("L2")
	e.runOnce(t, a)
	e.checkDesired(t, "L2")

	// Erasure deletes, after overwriting what Moodle keeps of a deleted user.
	u2, _ := e.moodle.UserByIDNumber("L2")
	e.rc.withdraw("L2")
	e.rc.erase("L2")
	e.runOnce(t, a)
	e.checkDesired(t)
	deleted := e.moodle.DeletedUsers()
	if len(deleted) != 1 || deleted[0].ID != u2.ID {
		t.Fatalf("deleted users: %+v", deleted)
	}
	for _, p := range []string{"grace", "Grace"} {
		d := deleted[0]
		if strings.Contains(d.Username+d.Email+d.FirstName+d.LastName, p) {
			t.Errorf("the deleted user row still holds %q: %+v", p, d)
		}
	}
	if len(e.moodle.CohortMembers("G1")) != 0 || len(e.moodle.Enrolled("C-101")) != 0 {
		t.Error("the deleted user is still in a cohort or on a course")
	}
	if st := e.state(t); !st.Learners["L2"].Erased {
		t.Errorf("state of L2: %+v", st.Learners["L2"])
	}

	// Caught up: running again changes nothing.
	e.moodle.ResetCalls()
	e.runOnce(t, a)
	if n := len(e.moodle.Calls()); n != 0 {
		t.Errorf("an idle RunOnce made %d Moodle calls", n)
	}
}

// TestCurrentDataAndVersionSkip: events are applied with the learner's
// current data, so a burst of events for one learner is one application and
// the rest are skipped by version; a learner erased before ever accepting
// never reaches Moodle.
func TestCurrentDataAndVersionSkip(t *testing.T) {
	e := newEnv(t)
	a := e.agent(t)
	e.runOnce(t, a) // empty list; cursor c:0

	e.provision("L3", "l3@example.org", "Lin", "Three", "G1")
	e.rc.activate("L3")
	e.rc.changeGroup("L3", "G2")
	e.provision("L4", "l4@example.org", "Lou", "Four", "G1")
	e.rc.erase("L4")
	e.moodle.ResetCalls()
	e.runOnce(t, a)
	e.checkDesired(t)

	if n := e.moodle.CallCount("core_user_create_users"); n != 1 {
		t.Errorf("%d accounts created, want 1 (L3)", n)
	}
	// One page, one lookup for both learners (L3's three events collapse
	// to its current data; L4's erasure to a delete if there is an
	// account); the preflight ran before.
	if n := e.moodle.CallCount("core_user_get_users_by_field"); n != 1 {
		for _, c := range e.moodle.Calls() {
			t.Log(c.Function, c.Params)
		}
		t.Errorf("%d lookups, want 1", n)
	}
	if n := e.moodle.CallCount("core_user_update_users") + e.moodle.CallCount("core_user_delete_users"); n != 0 {
		t.Errorf("%d updates/deletes, want none", n)
	}
	st := e.state(t)
	if st.Learners["L3"].V != 3 || st.Learners["L3"].Group != "G2" || !st.Learners["L4"].Erased {
		t.Errorf("state: %+v", st.Learners)
	}
}

// TestCursorExpired: the agent's cursor falls out of the feed's retention;
// it lists the desired state again and follows on from its asOf.
func TestCursorExpired(t *testing.T) {
	e := newEnv(t)
	for _, l := range []struct{ id, group string }{{"L1", "G1"}, {"L2", "G1"}, {"L3", "G2"}} {
		e.provision(l.id, strings.ToLower(l.id)+"@example.org", "Given "+l.id, "Family "+l.id, l.group)
		e.rc.activate(l.id)
	}
	a := e.agent(t)
	e.runOnce(t, a)
	e.checkDesired(t)

	// While the agent is away: a group change, a withdrawal, an erasure and
	// a newcomer; then the feed forgets all of it.
	e.rc.changeGroup("L1", "G2")
	e.rc.withdraw("L2")
	e.rc.withdraw("L3")
	e.rc.erase("L3")
	e.provision("L4", "l4@example.org", "Given L4", "Family L4", "G1")
	e.rc.activate("L4")
	e.rc.expireAll()
	listsBefore := e.rc.listPages

	e.runOnce(t, a)
	if e.rc.listPages != listsBefore+1 {
		t.Errorf("enrolments pages read: %d, want 1 more", e.rc.listPages-listsBefore)
	}
	if st := e.state(t); st.Cursor != e.rc.headCursor() {
		t.Errorf("cursor %q, want the new asOf %q", st.Cursor, e.rc.headCursor())
	}
	// The list holds active learners only; for those who left it the agent
	// asks Rollcall: L2 only lost access (suspended), L3 was erased while
	// the cursor was expired, and its account is deleted, after being
	// overwritten.
	if _, ok := e.moodle.UserByIDNumber("L3"); ok {
		t.Error("L3 (erased while the cursor expired) still has an account")
	}
	if d := e.moodle.DeletedUsers(); len(d) != 1 || !strings.HasPrefix(d[0].FirstName, "Erased") {
		t.Errorf("deleted: %+v", d)
	}
	e.checkDesired(t, "L2")
	if !strings.Contains(e.logs.String(), "cursor expired") {
		t.Error("the expiry was not logged")
	}

	// And the feed is followed again from the list's asOf.
	e.rc.erase("L2")
	e.runOnce(t, a)
	if _, ok := e.moodle.UserByIDNumber("L2"); ok {
		t.Error("L2 not deleted after its erasure event")
	}
}

// TestCrashAndResume: a Moodle failure that outlasts the retries stops
// RunOnce in the middle of a feed page; a new Agent on the same state file
// resumes from the saved cursor without applying anything twice.
func TestCrashAndResume(t *testing.T) {
	e := newEnv(t)
	small := func(c *moodlesync.Config) { c.EventPageSize = 4 }
	a := e.agent(t, small)
	e.runOnce(t, a) // nobody yet: cursor c:0

	for _, id := range []string{"L1", "L2", "L3", "L4", "L5", "L6"} {
		e.provision(id, strings.ToLower(id)+"@example.org", "Given"+id, "Family"+id, "G1")
		e.rc.activate(id)
	}
	// Pages of 4 events: [L1 L1 L2 L2] [L3 L3 L4 L4] [L5 L5 L6 L6].
	// Creating L4 (with L3, in one call) fails with a transient database
	// error, every time: Moodle is in trouble, not one learner.
	e.moodle.FailWhen(func(c moodlefake.Call) *moodlefake.Failure {
		if c.Function == "core_user_create_users" && c.Params.Get("users[1][idnumber]") == "L4" {
			return &moodlefake.DMLWriteException
		}
		return nil
	})
	err := a.RunOnce(context.Background())
	var me *moodlesync.MoodleError
	if !errors.As(err, &me) || me.ErrorCode != "dmlwriteexception" || me.Function != "core_user_create_users" {
		t.Fatalf("RunOnce: %v, want the dmlwriteexception", err)
	}
	if !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Errorf("error does not name the learner and the retries: %v", err)
	}
	st := e.state(t)
	if st.Cursor != "c:4" {
		t.Errorf("saved cursor %q, want c:4 (the end of the first page)", st.Cursor)
	}
	if got := userIDs(e.moodle.Users()[2:]); strings.Join(got, ",") != "L1,L2" {
		t.Errorf("accounts after the failure: %v", got)
	}

	// "Restart": a new agent, the same state file, Moodle healthy again.
	e.moodle.FailWhen(nil)
	e.moodle.ResetCalls()
	b := e.agent(t, small)
	e.runOnce(t, b)
	e.checkDesired(t)
	var created []string
	for _, c := range e.moodle.Calls() {
		if c.Function == "core_user_create_users" {
			created = append(created, c.Params.Get("users[0][idnumber]")+"+"+c.Params.Get("users[1][idnumber]"))
		}
	}
	if strings.Join(created, ",") != "L3+L4,L5+L6" {
		t.Errorf("accounts created after the restart: %v, want L3+L4,L5+L6", created)
	}
	// One lookup per page (and the preflight's probe): nothing of L1, L2
	// was looked at again.
	if n := e.moodle.CallCount("core_user_get_users_by_field"); n != 3 {
		t.Errorf("%d lookups after the restart, want 3", n)
	}
	if n := e.moodle.CallCount("enrol_manual_enrol_users"); n != 2 {
		t.Errorf("%d enrolment calls after the restart, want 2", n)
	}
}

// TestNoHeadOfLineBlocking: a learner Moodle refuses (an existing account
// holds their username) is parked with Moodle's code and a hint; everyone
// else is applied, removals included, and the parked learner is applied
// once the clash is resolved, on a later run.
func TestNoHeadOfLineBlocking(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"L1", "L2", "L3", "L4"} {
		e.provision(id, strings.ToLower(id)+"@example.org", "Given"+id, "Family"+id, "G1")
		e.rc.activate(id)
	}
	a := e.agent(t, func(c *moodlesync.Config) { c.ListPageSize = 3; c.ParkRetry = time.Nanosecond })
	e.runOnce(t, a)
	// L5 clashes with an account made by hand; L2 is withdrawn and L4
	// erased in the same page.
	clash := e.moodle.AddUser(moodlefake.User{Username: "l5@example.org", Email: "someone@example.org", FirstName: "X", LastName: "Y"})
	e.provision("L5", "l5@example.org", "Given5", "Family5", "G1")
	e.rc.activate("L5")
	e.rc.withdraw("L2")
	e.rc.erase("L4")
	e.provision("L6", "l6@example.org", "Given6", "Family6", "G2")
	e.rc.activate("L6")
	e.runOnce(t, a)
	e.skip = map[string]bool{"L5": true}
	e.checkDesired(t, "L2")
	e.skip = nil
	st := e.state(t)
	if st.Cursor != e.rc.headCursor() {
		t.Errorf("the cursor waits behind L5: %q, head %q", st.Cursor, e.rc.headCursor())
	}
	p := st.Parked["L5"]
	if p == nil || p.Code != "invalidparameter" || !strings.Contains(p.Hint, "username") || p.Attempts != 1 {
		t.Fatalf("parked: %+v", st.Parked)
	}
	if !strings.Contains(e.logs.String(), "learner parked") || !strings.Contains(e.logs.String(), "code=invalidparameter") {
		t.Error("the parking is not logged with Moodle's code")
	}
	// Still refused: retried, attempts count up.
	e.runOnce(t, a)
	if p := e.state(t).Parked["L5"]; p == nil || p.Attempts != 2 {
		t.Fatalf("parked after a retry: %+v", p)
	}
	// The administrator removes the clashing account.
	e.moodle.SetUser(clash, func(u *moodlefake.User) { u.Username, u.Email = "renamed", "renamed@example.org" })
	e.runOnce(t, a)
	e.checkDesired(t, "L2")
	if p := e.state(t).Parked; len(p) != 0 {
		t.Errorf("still parked: %+v", p)
	}
}

// TestTransientFailuresAreRetried: HTTP 500s from both services, a Moodle
// database error, and a create whose answer is lost after Moodle did it.
func TestTransientFailuresAreRetried(t *testing.T) {
	e := newEnv(t)
	e.provision("L1", "l1@example.org", "One", "Learner", "G1")
	e.rc.activate("L1")
	e.provision("L2", "l2@example.org", "Two", "Learner", "G2")
	e.rc.activate("L2")
	e.rc.fail500 = 2
	e.moodle.FailNext("core_user_create_users", 1, moodlefake.HTTP500)
	e.moodle.FailNext("core_user_create_users", 1, moodlefake.Failure{Status: 500, AfterApply: true})
	e.moodle.FailNext("enrol_manual_enrol_users", 2, moodlefake.DMLWriteException)
	e.moodle.FailNext("core_cohort_create_cohorts", 1, moodlefake.Failure{Status: 502, AfterApply: true})
	a := e.agent(t)
	e.runOnce(t, a)
	e.checkDesired(t)
	if n := len(e.moodle.Users()); n != 4 {
		t.Errorf("%d users, want guest, admin, L1, L2", n)
	}
	if n := len(e.moodle.Cohorts()); n != 2 {
		t.Errorf("%d cohorts, want 2", n)
	}
	if !strings.Contains(e.logs.String(), "transient failure, retrying") {
		t.Error("retries not logged")
	}
	// A delete whose answer is lost: the retry finds the account gone.
	e.rc.erase("L2")
	e.moodle.FailNext("core_user_delete_users", 1, moodlefake.Failure{Status: 504, AfterApply: true})
	e.runOnce(t, a)
	e.checkDesired(t)
	if n := e.moodle.CallCount("core_user_delete_users"); n != 2 {
		t.Errorf("%d delete calls, want 2", n)
	}
}

// TestMoodleErrorReporting: Moodle's error JSON surfaces as a MoodleError
// with its exception, errorcode and message.
func TestMoodleErrorReporting(t *testing.T) {
	t.Run("invalid token", func(t *testing.T) {
		e := newEnv(t)
		e.provision("L1", "l1@example.org", "One", "Learner", "G1")
		e.rc.activate("L1")
		err := e.agent(t, func(c *moodlesync.Config) { c.MoodleToken = "wrong" }).RunOnce(context.Background())
		var me *moodlesync.MoodleError
		if !errors.As(err, &me) {
			t.Fatalf("RunOnce: %v, want a MoodleError", err)
		}
		if me.Exception != `core\exception\moodle_exception` || me.ErrorCode != "invalidtoken" || me.Message != "Invalid token - token not found" {
			t.Errorf("got %+v", me)
		}
		if !moodlesync.Fatal(err) {
			t.Error("an invalid token must be fatal")
		}
		for _, want := range []string{"invalidtoken", "moodle_exception", "Invalid token - token not found", "core_webservice_get_site_info"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not show %q", err, want)
			}
		}
	})
	t.Run("invalid parameter, debuginfo redacted", func(t *testing.T) {
		e := newEnv(t)
		e.moodle.Debug = true
		// Someone already has L1's username, without the idnumber.
		e.moodle.AddUser(moodlefake.User{Username: "l1@example.org", Email: "other@example.org", FirstName: "X", LastName: "Y"})
		e.provision("L1", "l1@example.org", "One", "Learner", "G1")
		e.rc.activate("L1")
		e.runOnce(t, e.agent(t))
		p := e.state(t).Parked["L1"]
		if p == nil || p.Code != "invalidparameter" || !strings.Contains(p.Reason, "Username already exists: <redacted>") ||
			!strings.Contains(p.Reason, `core\exception\invalid_parameter_exception`) {
			t.Errorf("parked: %+v", p)
		}
	})
	t.Run("function not enabled", func(t *testing.T) {
		e := newEnv(t)
		e.provision("L1", "l1@example.org", "One", "Learner", "G1")
		e.rc.activate("L1")
		e.moodle.Disable("core_cohort_create_cohorts")
		err := e.agent(t).RunOnce(context.Background())
		var ce *moodlesync.ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "core_cohort_create_cohorts") || !moodlesync.Fatal(err) {
			t.Errorf("RunOnce: %v", err)
		}
		if n := writes(e.moodle); n != 0 {
			t.Errorf("%d writes before the preflight failed", n)
		}
	})
	t.Run("missing course", func(t *testing.T) {
		e := newEnv(t)
		e.rc.group("G9", "Group nine", "C-999")
		e.provision("L1", "l1@example.org", "One", "Learner", "G9")
		e.rc.activate("L1")
		e.runOnce(t, e.agent(t))
		if p := e.state(t).Parked["L1"]; p == nil || p.Code != "missingcourse" || !strings.Contains(p.Reason, "C-999") {
			t.Errorf("parked: %+v", p)
		}
	})
}

func TestRollcallErrors(t *testing.T) {
	e := newEnv(t)
	err := e.agent(t, func(c *moodlesync.Config) { c.APIKey = "wrong" }).RunOnce(context.Background())
	var ge *moodlesync.GraphQLError
	if !errors.As(err, &ge) || ge.Code != "UNAUTHENTICATED" || !moodlesync.Fatal(err) {
		t.Errorf("RunOnce with a bad key: %v", err)
	}
	// Run gives up at once on a fatal error instead of retrying.
	done := make(chan error, 1)
	go func() {
		done <- e.agent(t, func(c *moodlesync.Config) { c.APIKey = "wrong" }).Run(context.Background())
	}()
	select {
	case err := <-done:
		if !errors.As(err, &ge) {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept going after a fatal error")
	}
}

// TestRun: the long-polling loop applies events as they come and stops
// cleanly when its context ends.
func TestRun(t *testing.T) {
	e := newEnv(t)
	a := e.agent(t, func(c *moodlesync.Config) { c.PollWait = time.Second })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\nlog:\n%s", what, e.logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	e.provision("L1", "l1@example.org", "One", "Learner", "G1")
	e.rc.activate("L1")
	waitFor("L1's account", func() bool { _, ok := e.moodle.UserByIDNumber("L1"); return ok })
	e.rc.withdraw("L1")
	waitFor("L1's suspension", func() bool { u, _ := e.moodle.UserByIDNumber("L1"); return u.Suspended })
	if err := a.RunOnce(context.Background()); err == nil {
		t.Error("RunOnce while Run is running: no error")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	e.checkDesired(t, "L1")
}

// TestLearnerChangedDuringList: a learner's rows straddle a page boundary
// and change in between; the agent keeps the older version so the change's
// event is applied after the list.
func TestLearnerChangedDuringList(t *testing.T) {
	e := newEnv(t)
	e.rc.group("G3", "Group three", "C-101", "C-201", "C-301")
	e.provision("L1", "l1@example.org", "One", "Learner", "G3")
	e.rc.activate("L1")
	e.rc.onListPage = func(page int) {
		if page == 1 {
			e.rc.setCourses("G3", "C-102", "C-201", "C-301")
		}
	}
	e.runOnce(t, e.agent(t, func(c *moodlesync.Config) { c.ListPageSize = 1 }))
	e.checkDesired(t)
}

func TestStateFile(t *testing.T) {
	e := newEnv(t)
	e.runOnce(t, e.agent(t))
	info, err := os.Stat(e.stateFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v", info.Mode().Perm())
	}
	if _, err := moodlesync.New(func() moodlesync.Config { c := e.config(); c.ProgrammeID = "prog-2"; return c }()); err == nil {
		t.Error("a state file of another programme was accepted")
	}
	if _, err := moodlesync.New(func() moodlesync.Config { c := e.config(); c.MoodleURL = "https://other.example"; return c }()); err == nil {
		t.Error("a state file of another Moodle was accepted")
	}
	os.WriteFile(e.stateFile, []byte("{torn"), 0o600)
	var se *moodlesync.StateError
	if _, err := moodlesync.New(e.config()); !errors.As(err, &se) {
		t.Errorf("a corrupt state file: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(e.stateFile))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestNewValidates(t *testing.T) {
	_, err := moodlesync.New(moodlesync.Config{RollcallURL: "ftp://x"})
	if err == nil || !strings.Contains(err.Error(), "APIKey") || !strings.Contains(err.Error(), "MoodleToken") {
		t.Errorf("New: %v", err)
	}
	_, err = moodlesync.New(moodlesync.Config{RollcallURL: "ftp://x", APIKey: "k", ProgrammeID: "p", MoodleURL: "https://m", MoodleToken: "t", StateFile: filepath.Join(t.TempDir(), "s")})
	if err == nil || !strings.Contains(err.Error(), "RollcallURL") {
		t.Errorf("New: %v", err)
	}
}

func TestRedirectIsAnError(t *testing.T) {
	e := newEnv(t)
	redirect := httptest.NewServer(http.RedirectHandler(e.moodleURL+"/webservice/rest/server.php", http.StatusMovedPermanently))
	t.Cleanup(redirect.Close)
	e.provision("L1", "l1@example.org", "One", "Learner", "G1")
	e.rc.activate("L1")
	err := e.agent(t, func(c *moodlesync.Config) { c.MoodleURL = redirect.URL }).RunOnce(context.Background())
	var he *moodlesync.HTTPError
	if !errors.As(err, &he) || he.StatusCode != 301 || !strings.Contains(err.Error(), "redirected to "+e.moodleURL) {
		t.Errorf("RunOnce: %v", err)
	}
}

// TestHardCrashReplay: a crash that loses the state saved after a page
// (kill -9 before the rename) makes the next agent apply that page again;
// doing so changes nothing in Moodle and creates nothing twice.
func TestHardCrashReplay(t *testing.T) {
	e := newEnv(t)
	e.provision("L1", "l1@example.org", "One", "Learner", "G1")
	e.rc.activate("L1")
	e.provision("L2", "l2@example.org", "Two", "Learner", "G1")
	e.rc.activate("L2")
	e.runOnce(t, e.agent(t))
	before, err := os.ReadFile(e.stateFile)
	if err != nil {
		t.Fatal(err)
	}
	e.rc.changeGroup("L1", "G2")
	e.rc.withdraw("L2")
	e.rc.erase("L2")
	e.provision("L3", "l3@example.org", "Three", "Learner", "G2")
	e.rc.activate("L3")
	e.runOnce(t, e.agent(t))
	e.checkDesired(t)
	users := e.moodle.Users()

	if err := os.WriteFile(e.stateFile, before, 0o600); err != nil { // the crash
		t.Fatal(err)
	}
	e.moodle.ResetCalls()
	// With email visible (moodle/site:viewuseridentity, email in
	// showuseridentity) the agent compares it instead of sending it.
	e.moodle.Grant("moodle/site:viewuseridentity")
	e.runOnce(t, e.agent(t))
	e.checkDesired(t)
	if n := e.moodle.CallCount("core_user_create_users") + e.moodle.CallCount("core_user_delete_users") +
		e.moodle.CallCount("core_user_update_users") + e.moodle.CallCount("core_cohort_create_cohorts"); n != 0 {
		t.Errorf("the replay made %d account or cohort changes", n)
	}
	if after := e.moodle.Users(); len(after) != len(users) {
		t.Errorf("%d users after the replay, %d before", len(after), len(users))
	}
}

// TestNullLearnerIsNotErasure: a learner the server cannot load reads as
// null. That ends access at once but deletes nothing; the account comes back
// with the next readable event, and only LEARNER_ERASED deletes it.
func TestNullLearnerIsNotErasure(t *testing.T) {
	e := newEnv(t)
	e.provision("L1", "l1@example.org", "One", "Learner", "G1")
	e.rc.activate("L1")
	a := e.agent(t)
	e.runOnce(t, a)

	e.rc.unreadable = map[string]bool{"L1": true}
	e.rc.update("L1", "l1@example.org", "One", "Changed")
	e.runOnce(t, a)
	u, ok := e.moodle.UserByIDNumber("L1")
	if !ok || !u.Suspended {
		t.Fatalf("L1 after a null learner: %+v, exists %v; want suspended, not deleted", u, ok)
	}
	if len(e.moodle.DeletedUsers()) != 0 {
		t.Error("an account was deleted")
	}
	if !strings.Contains(e.logs.String(), "learner data unavailable") {
		t.Error("not logged")
	}

	e.rc.unreadable = nil
	e.rc.changeGroup("L1", "G2")
	e.runOnce(t, a)
	e.checkDesired(t)

	e.rc.unreadable = map[string]bool{"L1": true}
	e.rc.erase("L1")
	e.runOnce(t, a)
	e.checkDesired(t)
	if len(e.moodle.DeletedUsers()) != 1 {
		t.Error("LEARNER_ERASED did not delete the account")
	}
}
