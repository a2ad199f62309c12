package moodlefake_test

import (
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/moodlesync/moodlefake"
)

// The behaviours of Moodle 5.1 that broke the agent on a real site, one
// test each, named after the web-service function.

// public/user/lib.php user_get_user_details + public/user/externallib.php
// get_users_by_field: a user is returned only if the searched field is
// visible; idnumber and username need moodle/user:viewalldetails; email
// needs moodle/site:viewuseridentity with email in showuseridentity.
func TestCoreUserGetUsersByField_HidesFieldsAndUsersTheCallerCannotSee(t *testing.T) {
	m, c := newClient(t)
	id := m.AddUser(moodlefake.User{Username: "ada@example.org", Email: "ada@example.org", FirstName: "Ada", LastName: "L", IDNumber: "L1", Auth: "oauth2"})
	get := func(field string, values ...string) []map[string]any {
		t.Helper()
		var got []map[string]any
		if e := c.call("core_user_get_users_by_field", map[string]any{"field": field, "values": values}, &got); e != nil {
			t.Fatal(e)
		}
		return got
	}
	// The agent's set: username, idnumber, auth; no email.
	got := get("idnumber", "L1")
	if len(got) != 1 || got[0]["username"] != "ada@example.org" || got[0]["auth"] != "oauth2" || got[0]["idnumber"] != "L1" {
		t.Fatalf("with viewalldetails: %v", got)
	}
	if _, ok := got[0]["email"]; ok {
		t.Errorf("email shown without moodle/site:viewuseridentity: %v", got[0])
	}
	m.Grant("moodle/site:viewuseridentity")
	if got := get("idnumber", "L1"); got[0]["email"] != "ada@example.org" {
		t.Errorf("email not shown with viewuseridentity: %v", got)
	}
	// Without viewalldetails: an existing user is not found by idnumber or
	// username, and a search by id leaves those fields out.
	m.Revoke("moodle/user:viewalldetails")
	if got := get("idnumber", "L1"); len(got) != 0 {
		t.Errorf("found by idnumber without viewalldetails: %v", got)
	}
	if got := get("username", "ada@example.org"); len(got) != 0 {
		t.Errorf("found by username without viewalldetails: %v", got)
	}
	got = get("id", itoa(id))
	if len(got) != 1 || got[0]["username"] != nil || got[0]["idnumber"] != nil || got[0]["auth"] != nil {
		t.Errorf("by id without viewalldetails: %v", got)
	}
	// idnumber in showuseridentity makes it visible again (the other way).
	m.ShowUserIdentity = []string{"email", "idnumber"}
	if got := get("idnumber", "L1"); len(got) != 1 {
		t.Errorf("idnumber in showuseridentity: %v", got)
	}
	// Without viewdetails nobody is returned at all.
	m.Revoke("moodle/user:viewdetails")
	if got := get("id", itoa(id)); len(got) != 0 {
		t.Errorf("without viewdetails: %v", got)
	}
}

// public/course/externallib.php get_courses_by_field: idnumber is among the
// "information for managers only" (moodle/course:update); the search
// itself is exact. Hidden courses need viewhiddencourses.
func TestCoreCourseGetCoursesByField_IdnumberOnlyWithCourseUpdate(t *testing.T) {
	m, c := newClient(t)
	cid := m.AddCourse("C-101", "c101")
	m.AddCourse("C-1010", "c1010")
	var res struct{ Courses []map[string]any }
	c.call("core_course_get_courses_by_field", map[string]any{"field": "idnumber", "value": "C-101"}, &res)
	if len(res.Courses) != 1 || int64(res.Courses[0]["id"].(float64)) != cid {
		t.Fatalf("exact search: %v", res.Courses)
	}
	if _, ok := res.Courses[0]["idnumber"]; ok {
		t.Errorf("idnumber returned without moodle/course:update: %v", res.Courses[0]["idnumber"])
	}
	m.Grant("moodle/course:update")
	res.Courses = nil
	c.call("core_course_get_courses_by_field", map[string]any{"field": "idnumber", "value": "C-101"}, &res)
	if res.Courses[0]["idnumber"] != "C-101" {
		t.Errorf("idnumber with course:update: %v", res.Courses[0]["idnumber"])
	}
	m.Revoke("moodle/course:update", "moodle/course:viewhiddencourses")
	m.HideCourse("C-101")
	res.Courses = nil
	c.call("core_course_get_courses_by_field", map[string]any{"field": "idnumber", "value": "C-101"}, &res)
	if len(res.Courses) != 0 {
		t.Errorf("a hidden course without viewhiddencourses: %v", res.Courses)
	}
}

// public/user/externallib.php update_users: each user in a transaction of
// its own; an email another account holds is a warning and the user's
// whole change (suspension too) is lost, while the others are updated.
func TestCoreUserUpdateUsers_UseremailduplicateLosesTheWholeChange(t *testing.T) {
	m, c := newClient(t)
	a := m.AddUser(moodlefake.User{Username: "a", Email: "a@example.org", FirstName: "A", LastName: "A"})
	b := m.AddUser(moodlefake.User{Username: "b", Email: "b@example.org", FirstName: "B", LastName: "B"})
	var res struct{ Warnings []map[string]any }
	if e := c.call("core_user_update_users", map[string]any{"users": []any{
		map[string]any{"id": a, "suspended": true, "lastname": "Changed", "email": "b@example.org"},
		map[string]any{"id": b, "suspended": true},
	}}, &res); e != nil {
		t.Fatal(e)
	}
	if len(res.Warnings) != 1 || res.Warnings[0]["warningcode"] != "useremailduplicate" ||
		res.Warnings[0]["itemid"] != float64(a) || res.Warnings[0]["message"] != "Duplicate email address" {
		t.Fatalf("warnings: %v", res.Warnings)
	}
	for _, u := range m.Users() {
		switch u.ID {
		case a:
			if u.Suspended || u.LastName != "A" || u.Email != "a@example.org" {
				t.Errorf("the refused user changed: %+v", u)
			}
		case b:
			if !u.Suspended {
				t.Error("the other user was not updated")
			}
		}
	}
}

// lib/classes/exception/*: 5.x names exceptions with their namespace;
// require_capability fails with required_capability_exception
// (nopermissions); a function outside the service is
// webservice_access_exception (accessexception).
func TestCoreUserCreateUsers_NamespacedExceptionsAndCapabilities(t *testing.T) {
	m, c := newClient(t)
	m.Revoke("moodle/user:create")
	user := map[string]any{"username": "x@example.org", "email": "x@example.org", "firstname": "X", "lastname": "Y", "auth": "oauth2"}
	e := c.call("core_user_create_users", map[string]any{"users": []any{user}}, nil)
	wantError(t, e, exCapability, "nopermissions")
	if e["message"] != "Sorry, but you do not currently have permissions to do that (Create users)." {
		t.Errorf("message: %v", e["message"])
	}
	m.Disable("core_user_create_users")
	wantError(t, c.call("core_user_create_users", map[string]any{"users": []any{user}}, nil), "webservice_access_exception", "accessexception")
}

// invalid_parameter_exception's debuginfo (the real reason, such as
// "Username already exists") is sent only with developer debugging on; a
// production site says "Invalid parameter value detected" and no more.
func TestCoreUserCreateUsers_DebuginfoOnlyWithDebugging(t *testing.T) {
	m, c := newClient(t)
	m.AddUser(moodlefake.User{Username: "x@example.org", Email: "other@example.org", FirstName: "X", LastName: "Y"})
	user := map[string]any{"username": "x@example.org", "email": "x@example.org", "firstname": "X", "lastname": "Y", "auth": "oauth2"}
	wantError(t, c.call("core_user_create_users", map[string]any{"users": []any{user}}, nil), exInvalidParameter, "invalidparameter", "Username already exists")
	m.Debug = false
	e := c.call("core_user_create_users", map[string]any{"users": []any{user}}, nil)
	wantError(t, e, exInvalidParameter, "invalidparameter")
	if _, ok := e["debuginfo"]; ok || e["message"] != "Invalid parameter value detected" {
		t.Errorf("without debugging: %v", e)
	}
	if moodlefake.New("t").Debug {
		t.Error("New must start with debugging off, like a production site")
	}
}

// lib/moodlelib.php delete_user: the user_deleted event keeps the
// account's username, email and idnumber in the log store.
func TestCoreUserDeleteUsers_LogStoreKeepsTheUsername(t *testing.T) {
	m, c := newClient(t)
	id := m.AddUser(moodlefake.User{Username: "grace@example.org", Email: "grace@example.org", FirstName: "Grace", LastName: "H", IDNumber: "L2"})
	if e := c.call("core_user_delete_users", map[string]any{"userids": []int64{id}}, nil); e != nil {
		t.Fatal(e)
	}
	var deleted *moodlefake.LogEntry
	for _, l := range m.Log() {
		if l.EventName == `\core\event\user_deleted` && l.ObjectID == id {
			deleted = &l
		}
	}
	if deleted == nil || deleted.Other["username"] != "grace@example.org" || deleted.Other["idnumber"] != "L2" {
		t.Fatalf("log: %+v", m.Log())
	}
	if !strings.Contains(m.Dump(), "grace@example.org") {
		t.Error("Dump does not show the log store")
	}
}

// get_users: criteria ANDed; searching by auth needs the auth field to be
// visible (viewalldetails).
func TestCoreUserGetUsers_ByAuthNeedsViewAllDetails(t *testing.T) {
	m, c := newClient(t)
	m.AddUser(moodlefake.User{Username: "a", Email: "a@example.org", FirstName: "A", LastName: "A", IDNumber: "L1", Auth: "oauth2"})
	m.AddUser(moodlefake.User{Username: "b", Email: "b@example.org", FirstName: "B", LastName: "B", Auth: "manual"})
	var res struct {
		Users    []map[string]any
		Warnings []map[string]any
	}
	c.call("core_user_get_users", map[string]any{"criteria": []any{map[string]any{"key": "auth", "value": "oauth2"}}}, &res)
	if len(res.Users) != 1 || res.Users[0]["idnumber"] != "L1" {
		t.Fatalf("by auth: %v", res.Users)
	}
	m.Revoke("moodle/user:viewalldetails")
	res.Users = nil
	c.call("core_user_get_users", map[string]any{"criteria": []any{map[string]any{"key": "auth", "value": "oauth2"}}}, &res)
	if len(res.Users) != 0 {
		t.Errorf("by auth without viewalldetails: %v", res.Users)
	}
}

// get_site_info lists the functions of the token's service.
func TestCoreWebserviceGetSiteInfo_ListsTheServiceFunctions(t *testing.T) {
	m, c := newClient(t)
	m.Disable("core_user_delete_users")
	var info struct {
		Release   string
		Functions []struct{ Name string }
	}
	if e := c.call("core_webservice_get_site_info", map[string]any{}, &info); e != nil {
		t.Fatal(e)
	}
	names := map[string]bool{}
	for _, f := range info.Functions {
		names[f.Name] = true
	}
	if !strings.HasPrefix(info.Release, "5.1") || names["core_user_delete_users"] || !names["core_user_create_users"] {
		t.Errorf("site info: %+v", info)
	}
}

// public/enrol/manual/externallib.php enrol_users and unenrol_users call
// validate_context() on each course, which is require_login() on it: the
// token's user, enrolled nowhere, gets in only with moodle/course:view
// (lib/moodlelib.php require_login, is_viewing); otherwise
// require_login_exception (requireloginerror), its reason in debuginfo.
func TestEnrolManualEnrolUsers_NeedsCourseView(t *testing.T) {
	m, c := newClient(t)
	cid := m.AddCourse("C-101", "c101")
	uid := m.AddUser(moodlefake.User{Username: "a", Email: "a@example.org", FirstName: "A", LastName: "A"})
	enrol := map[string]any{"enrolments": []any{map[string]any{"roleid": 5, "userid": uid, "courseid": cid}}}
	if e := c.call("enrol_manual_enrol_users", enrol, nil); e != nil {
		t.Fatalf("with the agent's capabilities: %v", e)
	}
	m.Revoke("moodle/course:view")
	wantError(t, c.call("enrol_manual_enrol_users", enrol, nil), `core\exception\require_login_exception`, "requireloginerror", "Not enrolled")
	wantError(t, c.call("enrol_manual_unenrol_users", map[string]any{"enrolments": []any{map[string]any{"userid": uid, "courseid": cid}}}, nil),
		`core\exception\require_login_exception`, "requireloginerror", "Not enrolled")
	if m.EnrolmentRole("C-101", uid) != 5 {
		t.Error("the enrolment changed")
	}
}

// public/user/externallib.php get_course_user_profiles: per {userid,
// courseid}, user_get_user_details in the course, with the user's roles
// there (roleid, name, shortname, sortorder); the course context is
// validated (moodle/course:view), deleted users are left out.
func TestCoreUserGetCourseUserProfiles_RolesWithShortnames(t *testing.T) {
	m, c := newClient(t)
	cid := m.AddCourse("C-101", "c101")
	a := m.AddUser(moodlefake.User{Username: "a", Email: "a@example.org", FirstName: "A", LastName: "A", IDNumber: "L1"})
	b := m.AddUser(moodlefake.User{Username: "b", Email: "b@example.org", FirstName: "B", LastName: "B"})
	m.Enrol("C-101", a, 5)
	list := map[string]any{"userlist": []any{map[string]any{"userid": a, "courseid": cid}, map[string]any{"userid": b, "courseid": cid}}}
	var got []struct {
		ID       int64
		IDNumber string
		Roles    []struct {
			RoleID    int64
			Name      string
			ShortName string
			SortOrder int
		}
	}
	if e := c.call("core_user_get_course_user_profiles", list, &got); e != nil {
		t.Fatal(e)
	}
	if len(got) != 2 || got[0].ID != a || len(got[0].Roles) != 1 || got[0].Roles[0].RoleID != 5 ||
		got[0].Roles[0].ShortName != "student" || got[0].IDNumber != "L1" || len(got[1].Roles) != 0 {
		t.Fatalf("profiles: %+v", got)
	}
	// A site whose role 5 is another one says so.
	m.Roles[5] = moodlefake.Role{ShortName: "learner", Name: "Learner", SortOrder: 5}
	got = nil
	c.call("core_user_get_course_user_profiles", list, &got)
	if got[0].Roles[0].ShortName != "learner" {
		t.Errorf("renamed role: %+v", got[0].Roles)
	}
	m.Revoke("moodle/course:view")
	wantError(t, c.call("core_user_get_course_user_profiles", list, nil), `core\exception\require_login_exception`, "requireloginerror")
}

// public/cohort/externallib.php update_cohorts: moodle/cohort:manage in the
// cohort's context; a blank name is refused; a cohort that does not exist
// is invalidrecord; all or nothing; a description not sent stays.
func TestCoreCohortUpdateCohorts_RenamesAndKeepsTheRest(t *testing.T) {
	m, c := newClient(t)
	var created []struct{ ID int64 }
	if e := c.call("core_cohort_create_cohorts", map[string]any{"cohorts": []any{map[string]any{
		"categorytype": map[string]any{"type": "system", "value": ""}, "name": "All staff", "idnumber": "G1", "description": "kept"}}}, &created); e != nil {
		t.Fatal(e)
	}
	other := m.AddCohort("G2", "Other")
	rename := func(id int64, name string) map[string]any {
		return map[string]any{"id": id, "categorytype": map[string]any{"type": "system", "value": ""}, "name": name, "idnumber": "G1"}
	}
	if e := c.call("core_cohort_update_cohorts", map[string]any{"cohorts": []any{rename(created[0].ID, "Council A: All staff")}}, nil); e != nil {
		t.Fatal(e)
	}
	// All or nothing: the second entry fails, the first is rolled back.
	wantError(t, c.call("core_cohort_update_cohorts", map[string]any{"cohorts": []any{rename(created[0].ID, "Changed"), rename(other, " ")}}, nil),
		exInvalidParameter, "invalidparameter", "Invalid cohort name")
	wantError(t, c.call("core_cohort_update_cohorts", map[string]any{"cohorts": []any{rename(9999, "X")}}, nil), "dml_missing_record_exception", "invalidrecord")
	for _, ch := range m.Cohorts() {
		if ch.ID == created[0].ID && (ch.Name != "Council A: All staff" || ch.Description != "kept" || ch.IDNumber != "G1") {
			t.Errorf("cohort after the updates: %+v", ch)
		}
	}
	m.Revoke("moodle/cohort:manage")
	wantError(t, c.call("core_cohort_update_cohorts", map[string]any{"cohorts": []any{rename(created[0].ID, "X")}}, nil), exCapability, "nopermissions")
}
