package moodlefake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/moodlesync"
	"github.com/rollcall-dev/rollcall/internal/moodlesync/moodlefake"
)

type client struct {
	t   *testing.T
	url string
	tok string
}

func newClient(t *testing.T) (*moodlefake.Server, *client) {
	m := moodlefake.New("tok")
	m.Debug = true // most tests here read debuginfo
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return m, &client{t: t, url: srv.URL + moodlefake.Path, tok: "tok"}
}

// raw posts a body as given (after wstoken, wsfunction, moodlewsrestformat).
func (c *client) raw(fn, body string) (int, string) {
	c.t.Helper()
	b := "wstoken=" + url.QueryEscape(c.tok) + "&wsfunction=" + fn + "&moodlewsrestformat=json"
	if body != "" {
		b += "&" + body
	}
	resp, err := http.Post(c.url, "application/x-www-form-urlencoded", strings.NewReader(b))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// call encodes args with the agent's encoder.
func (c *client) call(fn string, args map[string]any, out any) map[string]any {
	c.t.Helper()
	p, err := moodlesync.EncodeParams(args)
	if err != nil {
		c.t.Fatal(err)
	}
	status, body := c.raw(fn, p.Encode())
	if status != 200 {
		c.t.Fatalf("%s: HTTP %d %s", fn, status, body)
	}
	var e map[string]any
	if json.Unmarshal([]byte(body), &e) == nil && e["exception"] != nil {
		return e
	}
	if out != nil {
		if err := json.Unmarshal([]byte(body), out); err != nil {
			c.t.Fatalf("%s: %v in %s", fn, err, body)
		}
	}
	return nil
}

const (
	exMoodle           = `core\exception\moodle_exception`
	exInvalidParameter = `core\exception\invalid_parameter_exception`
	exCapability       = `core\exception\required_capability_exception`
)

func wantError(t *testing.T, e map[string]any, exception, code string, debugContains ...string) {
	t.Helper()
	if e == nil {
		t.Fatalf("no error, want %s", code)
	}
	if e["exception"] != exception || e["errorcode"] != code {
		t.Errorf("got %v, want %s/%s", e, exception, code)
	}
	for _, d := range debugContains {
		if s, _ := e["debuginfo"].(string); !strings.Contains(s, d) {
			t.Errorf("debuginfo %q does not contain %q", s, d)
		}
	}
}

func TestProtocolErrors(t *testing.T) {
	m, c := newClient(t)
	c.tok = "wrong"
	_, body := c.raw("core_cohort_get_cohorts", "")
	if body != `{"exception":"core\\exception\\moodle_exception","errorcode":"invalidtoken","message":"Invalid token - token not found"}`+"\n" {
		t.Errorf("invalid token: %s", body)
	}
	c.tok = "tok"
	_, body = c.raw("core_nonexistent_function", "")
	if !strings.Contains(body, `"errorcode":"invalidrecord"`) || !strings.Contains(body, "external_functions") {
		t.Errorf("unknown function: %s", body)
	}
	m.Disable("core_user_delete_users")
	_, body = c.raw("core_user_delete_users", "userids[0]=3")
	if !strings.Contains(body, `"exception":"webservice_access_exception","errorcode":"accessexception"`) {
		t.Errorf("disabled function: %s", body)
	}
	resp, err := http.Get(strings.Replace(c.url, moodlefake.Path, "/nope", 1))
	if err != nil || resp.StatusCode != 404 {
		t.Errorf("other path: %v %v", resp.StatusCode, err)
	}
	// Parameters in the query string work too, as Moodle merges GET and POST.
	resp, err = http.Get(c.url + "?wstoken=tok&wsfunction=core_cohort_get_cohorts&moodlewsrestformat=json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "[]" {
		t.Errorf("GET: %s", b)
	}
}

func TestParameterValidation(t *testing.T) {
	_, c := newClient(t)
	for _, tc := range []struct {
		name, fn, body, debug string
	}{
		{"missing key", "core_user_create_users", "users[0][username]=a&users[0][firstname]=A&users[0][lastname]=B",
			"Missing required key in single structure: email"},
		{"unexpected key", "core_user_update_users", "users[0][id]=2&users[0][colour]=red", "Unexpected keys (colour)"},
		{"unexpected top-level key", "core_user_get_users_by_field", "field=id&values[0]=2&extra=1", "Unexpected keys (extra)"},
		{"not an int", "core_user_delete_users", "userids[0]=abc", `expecting "int"`},
		{"scalar for a list", "core_user_delete_users", "userids=3", "Only arrays accepted"},
		{"list for a scalar", "core_user_get_users_by_field", "field[0]=id&values[0]=2", "Scalar type expected"},
		{"upper-case username", "core_user_create_users",
			"users[0][username]=Ada&users[0][firstname]=A&users[0][lastname]=B&users[0][email]=a@example.org&users[0][auth]=oauth2",
			`expecting "username"`},
		{"bad email", "core_user_create_users",
			"users[0][username]=ada&users[0][firstname]=A&users[0][lastname]=B&users[0][email]=nope&users[0][auth]=oauth2",
			`expecting "email"`},
		{"blank name", "core_user_create_users",
			"users[0][username]=ada&users[0][firstname]=+&users[0][lastname]=B&users[0][email]=a@example.org&users[0][auth]=oauth2",
			"The field firstname cannot be blank"},
		{"manual needs a password", "core_user_create_users",
			"users[0][username]=ada&users[0][firstname]=A&users[0][lastname]=B&users[0][email]=a@example.org",
			"Invalid password: you must provide a password, or set createpassword."},
		{"unknown auth", "core_user_create_users",
			"users[0][username]=ada&users[0][firstname]=A&users[0][lastname]=B&users[0][email]=a@example.org&users[0][auth]=cas",
			"Invalid authentication type: cas"},
		{"cohort category", "core_cohort_create_cohorts",
			"cohorts[0][categorytype][type]=idnumber&cohorts[0][categorytype][value]=x&cohorts[0][name]=n&cohorts[0][idnumber]=i",
			"category not exists"},
		{"course field", "core_course_get_courses_by_field", "field=colour&value=red", "Invalid field name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := c.raw(tc.fn, tc.body)
			var e map[string]any
			if status != 200 || json.Unmarshal([]byte(body), &e) != nil {
				t.Fatalf("HTTP %d %s", status, body)
			}
			wantError(t, e, exInvalidParameter, "invalidparameter", tc.debug)
			if e["message"] != "Invalid parameter value detected" {
				t.Errorf("message %v", e["message"])
			}
		})
	}
}

func TestUsers(t *testing.T) {
	m, c := newClient(t)
	var created []struct {
		ID       int64
		Username string
	}
	user := map[string]any{"username": "ada@example.org", "email": "Ada@Example.org", "firstname": "Ada", "lastname": "Lovelace", "idnumber": "L1", "auth": "oauth2"}
	if e := c.call("core_user_create_users", map[string]any{"users": []any{user}}, &created); e != nil {
		t.Fatal(e)
	}
	if len(created) != 1 || created[0].Username != "ada@example.org" {
		t.Fatalf("created %+v", created)
	}
	id := created[0].ID
	wantError(t, c.call("core_user_create_users", map[string]any{"users": []any{user}}, nil),
		exInvalidParameter, "invalidparameter", "Username already exists: ada@example.org")
	user2 := map[string]any{"username": "ada2", "email": "ada@example.org", "firstname": "A", "lastname": "L", "auth": "oauth2"}
	wantError(t, c.call("core_user_create_users", map[string]any{"users": []any{user2}}, nil),
		exInvalidParameter, "invalidparameter", "Email address already exists")

	// All or nothing: the second user's error undoes the first.
	ok := map[string]any{"username": "bob", "email": "bob@example.org", "firstname": "B", "lastname": "B", "auth": "oauth2"}
	wantError(t, c.call("core_user_create_users", map[string]any{"users": []any{ok, user}}, nil), exInvalidParameter, "invalidparameter")
	if _, found := findUser(m, "bob"); found {
		t.Error("a failed call left a user behind")
	}

	var got []map[string]any
	m.Grant("moodle/site:viewuseridentity") // email is in showuseridentity by default
	c.call("core_user_get_users_by_field", map[string]any{"field": "idnumber", "values": []string{"L1"}}, &got)
	if len(got) != 1 || got[0]["email"] != "Ada@Example.org" || got[0]["suspended"] != false || got[0]["auth"] != "oauth2" {
		t.Fatalf("get_users_by_field: %v", got)
	}

	// An update that would take someone else's email is skipped whole, as
	// in Moodle's update_users (TestCoreUserUpdateUsers_* has the warning).
	if e := c.call("core_user_update_users", map[string]any{"users": []any{map[string]any{"id": id, "suspended": true, "lastname": "King", "email": "admin@example.com"}}}, nil); e != nil {
		t.Fatal(e)
	}
	u, _ := m.UserByIDNumber("L1")
	if u.Suspended || u.LastName != "Lovelace" || u.Email != "Ada@Example.org" {
		t.Errorf("after an update with a taken email: %+v", u)
	}
	c.call("core_user_update_users", map[string]any{"users": []any{map[string]any{"id": id, "suspended": false, "lastname": "King"}}}, nil)
	if u, _ = m.UserByIDNumber("L1"); u.Suspended || u.LastName != "King" {
		t.Errorf("after update: %+v", u)
	}
	// A taken username fails in the database, caught as a warning.
	var res struct{ Warnings []map[string]any }
	c.call("core_user_update_users", map[string]any{"users": []any{map[string]any{"id": id, "username": "admin"}}}, &res)
	if len(res.Warnings) != 1 || res.Warnings[0]["warningcode"] != "dmlwriteexception" {
		t.Errorf("taken username: %v", res.Warnings)
	}

	// Delete: the row stays, renamed, with the names.
	m.AddCohort("G1", "Group")
	m.AddCohortMember("G1", id)
	m.AddCourse("C1", "c1")
	m.Enrol("C1", id, 5)
	if e := c.call("core_user_delete_users", map[string]any{"userids": []int64{id}}, nil); e != nil {
		t.Fatal(e)
	}
	if _, found := m.UserByIDNumber("L1"); found {
		t.Error("deleted user still found")
	}
	d := m.DeletedUsers()
	if len(d) != 1 || d[0].IDNumber != "" || !strings.HasPrefix(d[0].Username, "ada@example.org.") || d[0].Email == "Ada@Example.org" || d[0].FirstName != "Ada" {
		t.Errorf("deleted row: %+v", d)
	}
	if len(m.CohortMembers("G1")) != 0 || len(m.Enrolled("C1")) != 0 {
		t.Error("deleted user kept memberships")
	}
	got = nil
	c.call("core_user_get_users_by_field", map[string]any{"field": "id", "values": []int64{id}}, &got)
	if len(got) != 0 {
		t.Errorf("a deleted user is returned: %v", got)
	}
	wantError(t, c.call("core_user_delete_users", map[string]any{"userids": []int64{id}}, nil), "dml_missing_record_exception", "invalidrecord")
	wantError(t, c.call("core_user_delete_users", map[string]any{"userids": []int64{2}}, nil), exMoodle, "useradminodelete")
}

func findUser(m *moodlefake.Server, username string) (moodlefake.User, bool) {
	for _, u := range m.Users() {
		if u.Username == username {
			return u, true
		}
	}
	return moodlefake.User{}, false
}

func TestCohorts(t *testing.T) {
	m, c := newClient(t)
	uid := m.AddUser(moodlefake.User{Username: "u", Email: "u@example.org", FirstName: "U", LastName: "U"})
	var cs []map[string]any
	cohort := map[string]any{"categorytype": map[string]any{"type": "system", "value": ""}, "name": "Group one", "idnumber": "G1"}
	if e := c.call("core_cohort_create_cohorts", map[string]any{"cohorts": []any{cohort}}, &cs); e != nil || len(cs) != 1 || cs[0]["idnumber"] != "G1" {
		t.Fatalf("create: %v %v", e, cs)
	}
	wantError(t, c.call("core_cohort_create_cohorts", map[string]any{"cohorts": []any{cohort}}, nil),
		exInvalidParameter, "invalidparameter", "record already exists: idnumber=G1")
	cs = nil
	c.call("core_cohort_get_cohorts", map[string]any{}, &cs)
	if len(cs) != 1 || cs[0]["name"] != "Group one" {
		t.Errorf("get_cohorts: %v", cs)
	}
	cid := int64(cs[0]["id"].(float64))

	add := func(cohortType, cohortValue, userType, userValue string) []map[string]any {
		var res struct{ Warnings []map[string]any }
		if e := c.call("core_cohort_add_cohort_members", map[string]any{"members": []any{map[string]any{
			"cohorttype": map[string]any{"type": cohortType, "value": cohortValue},
			"usertype":   map[string]any{"type": userType, "value": userValue}}}}, &res); e != nil {
			t.Fatal(e)
		}
		return res.Warnings
	}
	if w := add("idnumber", "G1", "id", itoa(uid)); len(w) != 0 {
		t.Errorf("warnings %v", w)
	}
	if w := add("idnumber", "G1", "id", itoa(uid)); len(w) != 1 || w[0]["warningcode"] != "3" {
		t.Errorf("already a member: %v", w)
	}
	if w := add("idnumber", "G9", "id", itoa(uid)); len(w) != 1 || w[0]["warningcode"] != "2" {
		t.Errorf("no such cohort: %v", w)
	}
	if w := add("idnumber", "G1", "idnumber", "L1"); len(w) != 1 || w[0]["warningcode"] != "1" {
		t.Errorf("bad usertype: %v", w)
	}
	if got := m.CohortMembers("G1"); len(got) != 1 || got[0].ID != uid {
		t.Errorf("members %v", got)
	}
	del := func(cohortID, userID int64) map[string]any {
		return c.call("core_cohort_delete_cohort_members", map[string]any{"members": []any{map[string]any{"cohortid": cohortID, "userid": userID}}}, nil)
	}
	if e := del(cid, uid); e != nil {
		t.Fatal(e)
	}
	if e := del(cid, uid); e != nil {
		t.Errorf("removing a non-member: %v", e)
	}
	wantError(t, del(999, uid), "dml_missing_record_exception", "invalidrecord")
	if len(m.CohortMembers("G1")) != 0 {
		t.Error("still a member")
	}
}

func TestCoursesAndEnrolments(t *testing.T) {
	m, c := newClient(t)
	uid := m.AddUser(moodlefake.User{Username: "u", Email: "u@example.org", FirstName: "U", LastName: "U"})
	cid := m.AddCourse("C-101", "c101")
	m.AddCourse("C-102", "c102")
	var res struct {
		Courses []map[string]any
	}
	c.call("core_course_get_courses_by_field", map[string]any{"field": "idnumber", "value": "C-101"}, &res)
	if len(res.Courses) != 1 || int64(res.Courses[0]["id"].(float64)) != cid {
		t.Fatalf("courses %v", res.Courses)
	}
	res.Courses = nil
	c.call("core_course_get_courses_by_field", map[string]any{}, &res)
	if len(res.Courses) != 2 {
		t.Errorf("all courses: %v", res.Courses)
	}
	enrol := func(role, user, course int64) map[string]any {
		return c.call("enrol_manual_enrol_users", map[string]any{"enrolments": []any{map[string]any{"roleid": role, "userid": user, "courseid": course}}}, nil)
	}
	if e := enrol(5, uid, cid); e != nil {
		t.Fatal(e)
	}
	if e := enrol(5, uid, cid); e != nil {
		t.Errorf("enrolling again: %v", e)
	}
	if m.EnrolmentRole("C-101", uid) != 5 || len(m.Enrolled("C-101")) != 1 {
		t.Error("not enrolled")
	}
	wantError(t, enrol(99, uid, cid), exMoodle, "wsusercannotassign")
	wantError(t, enrol(5, uid, 9999), exInvalidParameter, "invalidparameter", "Context does not exist")
	m.DisableManualEnrol("C-102")
	wantError(t, enrol(5, uid, cid+1), exMoodle, "wsnoinstance")
	unenrol := func(user, course int64) map[string]any {
		return c.call("enrol_manual_unenrol_users", map[string]any{"enrolments": []any{map[string]any{"userid": user, "courseid": course}}}, nil)
	}
	if e := unenrol(uid, cid); e != nil {
		t.Fatal(e)
	}
	if e := unenrol(uid, cid); e != nil {
		t.Errorf("unenrolling again: %v", e)
	}
	if len(m.Enrolled("C-101")) != 0 {
		t.Error("still enrolled")
	}
}

func TestInjectedFailures(t *testing.T) {
	m, c := newClient(t)
	m.FailNext("core_cohort_get_cohorts", 1, moodlefake.HTTP500)
	m.FailNext("core_cohort_get_cohorts", 1, moodlefake.DMLWriteException)
	if status, body := c.raw("core_cohort_get_cohorts", ""); status != 500 || !strings.Contains(body, "500") {
		t.Errorf("HTTP500: %d %s", status, body)
	}
	_, body := c.raw("core_cohort_get_cohorts", "")
	if body != `{"exception":"dml_write_exception","errorcode":"dmlwriteexception","message":"Error writing to database"}`+"\n" {
		t.Errorf("DMLWriteException: %s", body)
	}
	if _, body := c.raw("core_cohort_get_cohorts", ""); body != "[]" {
		t.Errorf("third call: %s", body)
	}
	// AfterApply: done, but the answer is an error.
	m.FailNext("core_cohort_create_cohorts", 1, moodlefake.Failure{Status: 503, AfterApply: true})
	status, _ := c.raw("core_cohort_create_cohorts", "cohorts[0][categorytype][type]=system&cohorts[0][categorytype][value]=&cohorts[0][name]=n&cohorts[0][idnumber]=G1")
	if status != 503 || len(m.Cohorts()) != 1 {
		t.Errorf("AfterApply: HTTP %d, %d cohorts", status, len(m.Cohorts()))
	}
	m.FailWhen(func(c moodlefake.Call) *moodlefake.Failure {
		if c.Params.Get("values[0]") == "L9" {
			return &moodlefake.Failure{Exception: "moodle_exception", ErrorCode: "custom", Message: "Custom"}
		}
		return nil
	})
	_, body = c.raw("core_user_get_users_by_field", "field=idnumber&values[0]=L9")
	if !strings.Contains(body, `"errorcode":"custom"`) {
		t.Errorf("FailWhen: %s", body)
	}
	if n := m.CallCount("core_cohort_get_cohorts"); n != 3 {
		t.Errorf("CallCount %d", n)
	}
}

// PHP array semantics: a[] appends; keys keep their arrival order.
func TestBracketParsing(t *testing.T) {
	m, c := newClient(t)
	a := m.AddUser(moodlefake.User{Username: "a", Email: "a@example.org", IDNumber: "A"})
	b := m.AddUser(moodlefake.User{Username: "b", Email: "b@example.org", IDNumber: "B"})
	_, body := c.raw("core_user_get_users_by_field", "field=idnumber&values[]=B&values[]=A")
	var got []map[string]any
	json.Unmarshal([]byte(body), &got)
	if len(got) != 2 || int64(got[0]["id"].(float64)) != a || int64(got[1]["id"].(float64)) != b {
		t.Errorf("values[]: %s", body)
	}
	// users[1] before users[0]: Moodle processes (and answers) in arrival order.
	var created []map[string]any
	_, body = c.raw("core_user_create_users",
		"users[1][username]=y&users[1][firstname]=Y&users[1][lastname]=Y&users[1][email]=y@example.org&users[1][auth]=oauth2&"+
			"users[0][username]=x&users[0][firstname]=X&users[0][lastname]=X&users[0][email]=x@example.org&users[0][auth]=oauth2")
	json.Unmarshal([]byte(body), &created)
	if len(created) != 2 || created[0]["username"] != "y" {
		t.Errorf("order: %s", body)
	}
}

func itoa(i int64) string { return strings.TrimSpace(jsonNumber(i)) }

func jsonNumber(i int64) string { b, _ := json.Marshal(i); return string(b) }
