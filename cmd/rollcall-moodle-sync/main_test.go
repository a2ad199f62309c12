package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/moodlesync/moodlefake"
)

// rollcallStub answers the LMS API with one active learner and an empty feed.
func rollcallStub(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer key-1" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"message":"bad key","extensions":{"code":"UNAUTHENTICATED"}}],"data":null}`))
			return
		}
		var req struct{ Query string }
		json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(req.Query, "enrolments(") {
			w.Write([]byte(`{"data":{"enrolments":{"enrolments":[{"learnerId":"L-77","email":"secret.person@example.org",
				"givenName":"Secretgiven","familyName":"Secretfamily","accessGroupId":"G1","accessGroupName":"Group","lmsCourseId":"C1",
				"learnerVersion":3}],"endCursor":"e1","hasNextPage":false,"asOf":"c:0"}}}`))
			return
		}
		w.Write([]byte(`{"data":{"lifecycleEvents":{"events":[],"cursor":"c:0","hasMore":false}}}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func setup(t *testing.T) (map[string]string, *moodlefake.Server) {
	m := moodlefake.New("tok-1")
	m.AddCourse("C1", "c1")
	msrv := httptest.NewServer(m)
	t.Cleanup(msrv.Close)
	return map[string]string{
		"ROLLCALL_URL": rollcallStub(t).URL, "ROLLCALL_API_KEY": "key-1", "ROLLCALL_PROGRAMME_ID": "P1",
		"MOODLE_URL": msrv.URL, "MOODLE_TOKEN": "tok-1",
		"STATE_FILE": filepath.Join(t.TempDir(), "state.json"),
	}, m
}

func TestOnce(t *testing.T) {
	env, m := setup(t)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"--once"}, func(k string) string { return env[k] }, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if u, ok := m.UserByIDNumber("L-77"); !ok || u.Email != "secret.person@example.org" {
		t.Errorf("moodle user: %+v %v", u, ok)
	}
	if _, err := os.Stat(env["STATE_FILE"]); err != nil {
		t.Error(err)
	}
	logs := stderr.String()
	if !strings.Contains(logs, "learner=L-77") || !strings.Contains(logs, "caught up") {
		t.Errorf("log:\n%s", logs)
	}
	for _, p := range []string{"secret", "Secret", "key-1", "tok-1"} {
		if strings.Contains(logs, p) {
			t.Errorf("the log contains %q:\n%s", p, logs)
		}
	}
}

func TestFlagsAndDefaults(t *testing.T) {
	env, m := setup(t)
	stateDir := t.TempDir()
	t.Chdir(stateDir)
	moodleURL := env["MOODLE_URL"]
	env["MOODLE_URL"], env["STATE_FILE"] = "http://127.0.0.1:1", ""
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"--once", "--moodle-url", moodleURL, "--log-format", "json"},
		func(k string) string { return env[k] }, &stderr, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if _, ok := m.UserByIDNumber("L-77"); !ok {
		t.Error("--moodle-url was not used")
	}
	if _, err := os.Stat(filepath.Join(stateDir, "moodle-sync.state.json")); err != nil {
		t.Errorf("default state file: %v", err)
	}
	if !strings.HasPrefix(stderr.String(), "{") {
		t.Errorf("not JSON logs: %s", stderr.String())
	}
}

func TestConfigErrors(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--once"}, func(string) string { return "" }, &out, &out)
	if err == nil || err.Error() != "set ROLLCALL_URL, ROLLCALL_API_KEY, ROLLCALL_PROGRAMME_ID, MOODLE_URL, MOODLE_TOKEN" {
		t.Errorf("no configuration: %v", err)
	}
	env, _ := setup(t)
	get := func(k string) string { return env[k] }
	if err := run(context.Background(), []string{"extra"}, get, &out, &out); err == nil {
		t.Error("a stray argument was accepted")
	}
	if err := run(context.Background(), []string{"--log-level", "loud"}, get, &out, &out); err == nil {
		t.Error("a bad log level was accepted")
	}
	if err := run(context.Background(), []string{"--help"}, get, &out, &out); err != nil || !strings.Contains(out.String(), "MOODLE_TOKEN") {
		t.Errorf("--help: %v %s", err, out.String())
	}
	env["ROLLCALL_API_KEY"] = "wrong"
	if err := run(context.Background(), nil, get, &out, &out); err == nil || !strings.Contains(err.Error(), "UNAUTHENTICATED") {
		t.Errorf("Run with a bad key: %v", err)
	}
}

func TestRunStopsOnSignal(t *testing.T) {
	env, m := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr syncWriter
	go func() {
		done <- run(ctx, []string{"--poll-wait", "1s"}, func(k string) string { return env[k] }, &stderr, &stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := m.UserByIDNumber("L-77"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no sync")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestStatusListsParkedLearners: a learner Moodle refuses is parked; `status`
// lists them (code, hint, no personal data) and exits 3, for monitoring.
func TestStatusListsParkedLearners(t *testing.T) {
	env, m := setup(t)
	m.AddUser(moodlefake.User{Username: "secret.person@example.org", Email: "someone.else@example.org", FirstName: "X", LastName: "Y"})
	getenv := func(k string) string { return env[k] }
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"--once"}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "learner parked") || !strings.Contains(stderr.String(), "code=invalidparameter") {
		t.Errorf("log:\n%s", stderr.String())
	}
	stdout.Reset()
	err := run(context.Background(), []string{"status"}, getenv, &stdout, &stderr)
	if err == nil || err.Error() != "exit status 3" {
		t.Errorf("status: %v, want exit status 3", err)
	}
	out := stdout.String()
	if !strings.Contains(out, "parked      1") || !strings.Contains(out, "L-77") || !strings.Contains(out, "invalidparameter") {
		t.Errorf("status output:\n%s", out)
	}
	if strings.Contains(out, "secret") {
		t.Errorf("status shows personal data:\n%s", out)
	}
	// Resolved in Moodle: the next run applies the learner, status exits 0.
	for _, u := range m.Users() {
		if u.Username == "secret.person@example.org" {
			m.SetUser(u.ID, func(u *moodlefake.User) { u.Username = "renamed" })
		}
	}
	if err := run(context.Background(), []string{"--once"}, getenv, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	// The parked learner is due after its back-off (a minute); --reconcile
	// applies everyone at once.
	if err := run(context.Background(), []string{"--reconcile"}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("reconcile: %v\n%s", err, stderr.String())
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"status"}, getenv, &stdout, &stderr); err != nil {
		t.Errorf("status after the fix: %v\n%s", err, stdout.String())
	}
	if _, ok := m.UserByIDNumber("L-77"); !ok {
		t.Error("not applied after the fix")
	}
}

func TestConfigFlags(t *testing.T) {
	env, m := setup(t)
	env["MOODLE_AUTH"] = "saml2"
	env["MOODLE_STUDENT_ROLE_ID"] = "4"
	env["MOODLE_STUDENT_ROLE"] = "teacher"
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"--once", "--cohort-name", "{group} [{groupId}]"}, func(k string) string { return env[k] }, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	u, _ := m.UserByIDNumber("L-77")
	if u.Auth != "saml2" || m.EnrolmentRole("C1", u.ID) != 4 {
		t.Errorf("user %+v role %d", u, m.EnrolmentRole("C1", u.ID))
	}
	if c := m.Cohorts(); len(c) != 1 || c[0].Name != "Group [G1]" {
		t.Errorf("cohorts %+v", c)
	}
	env["MOODLE_STUDENT_ROLE_ID"] = "student"
	if err := run(context.Background(), []string{"--once"}, func(k string) string { return env[k] }, &stdout, &stderr); err == nil {
		t.Error("a role shortname where the ID goes was accepted")
	}
	env["MOODLE_STUDENT_ROLE_ID"] = "4"
	if err := run(context.Background(), []string{"--once", "--student-role", "Student role"}, func(k string) string { return env[k] }, &stdout, &stderr); err == nil ||
		!strings.Contains(err.Error(), "shortname") {
		t.Errorf("a role name that is no shortname: %v", err)
	}
	// The ID of another role than the shortname says stops the agent,
	// with what to set.
	env["MOODLE_STUDENT_ROLE"] = "student"
	err := run(context.Background(), []string{"--once", "--state-file", filepath.Join(t.TempDir(), "s.json")}, func(k string) string { return env[k] }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), `role 4 is "teacher" in this Moodle, not "student"`) {
		t.Errorf("role 4 as student: %v", err)
	}
	if err := run(context.Background(), []string{"--once", "--reconcile"}, func(k string) string { return env[k] }, &stdout, &stderr); err == nil {
		t.Error("--once with --reconcile was accepted")
	}
}
