// Package moodlefake is an in-process stand-in for Moodle's REST web
// services, for tests: an http.Handler that answers
// POST (or GET) /webservice/rest/server.php with wstoken, wsfunction and
// moodlewsrestformat=json like Moodle does, for the functions a sync agent
// needs (see Functions), keeping users, cohorts, cohort members, courses and
// enrolments in memory.
//
// It follows Moodle 5.1's own code for these functions (read in the
// moodle/moodle repository: public/user/externallib.php, public/user/lib.php
// user_get_user_details, public/course/externallib.php,
// public/cohort/externallib.php, public/enrol/manual/externallib.php,
// lib/classes/exception/*, public/webservice/externallib.php): parameter
// names and PHP bracket encoding, validation by parameter type (an
// unexpected or missing key, or a value that cleaning would change, is
// "invalidparameter"), errors as HTTP 200 with {"exception", "errorcode",
// "message"[, "debuginfo"]} where 5.x names the exception class with its
// namespace (core\exception\invalid_parameter_exception) and sends
// debuginfo only with developer debugging on (Debug), capability checks
// (Caps: the token user's capabilities at system level) including the
// fields and search results that user_get_user_details hides without them,
// warnings where Moodle warns (core_user_update_users' useremailduplicate
// loses that user's whole change), all-or-nothing calls, what deleting a
// user leaves behind, and a log store (Log) of the user events Moodle
// writes, user_deleted with the account's username, email and idnumber as
// they were. It is a stand-in, not a Moodle: no contexts below the site,
// one course category.
package moodlefake

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// User is a row of Moodle's user table, as far as modelled.
type User struct {
	ID        int64
	Username  string
	Email     string
	FirstName string
	LastName  string
	IDNumber  string
	Auth      string
	Suspended bool
	Deleted   bool
}

// LogEntry is a row of Moodle's standard log store (logstore_standard_log)
// for the events the stand-in triggers: \core\event\user_created,
// user_updated and user_deleted. Other holds the event's "other" data:
// lib/moodlelib.php delete_user() triggers user_deleted with the username,
// email and idnumber the account had before deletion.
type LogEntry struct {
	EventName string
	ObjectID  int64
	Other     map[string]string
}

// Cohort is a site-level cohort.
type Cohort struct {
	ID          int64
	Name        string
	IDNumber    string
	Description string
	Visible     bool
}

// Role is a row of Moodle's role table, as far as modelled.
type Role struct {
	ShortName string
	Name      string
	SortOrder int
}

// StandardRoles are a standard install's roles (lib/db/install.php
// creates them in this order, so these are their IDs).
func StandardRoles() map[int64]Role {
	return map[int64]Role{
		1: {"manager", "Manager", 1}, 2: {"coursecreator", "Course creator", 2}, 3: {"editingteacher", "Teacher", 3},
		4: {"teacher", "Non-editing teacher", 4}, 5: {"student", "Student", 5}, 6: {"guest", "Guest", 6},
		7: {"user", "Authenticated user", 7}, 8: {"frontpage", "Authenticated user on site home", 8},
	}
}

// Course is a course with a manual enrolment instance.
type Course struct {
	ID          int64
	ShortName   string
	FullName    string
	IDNumber    string
	ManualEnrol bool // the manual enrolment instance exists and is enabled
	Hidden      bool // visible = 0
}

// Call is one web-service call as received (wstoken left out).
type Call struct {
	Function string
	Params   url.Values
}

// Failure is an injected failure: an HTTP status (other than 200) with an
// HTML body, or, with Status 0 or 200, a Moodle error answer.
type Failure struct {
	Status    int
	Exception string
	ErrorCode string
	Message   string
	// AfterApply runs the call first and then answers with the failure: the
	// answer is lost, the change is not.
	AfterApply bool
}

var (
	// HTTP500 is a web server failure.
	HTTP500 = Failure{Status: http.StatusInternalServerError}
	// DMLWriteException is a transient database failure (a deadlock, a
	// lost connection) as Moodle reports it.
	DMLWriteException = Failure{Exception: "dml_write_exception", ErrorCode: "dmlwriteexception", Message: "Error writing to database"}
)

const (
	guestID = 1
	adminID = 2
)

type model struct {
	users   map[int64]*User
	cohorts map[int64]*Cohort
	members map[int64]map[int64]bool // cohort → user
	courses map[int64]*Course
	enrol   map[int64]map[int64]int64 // course → user → role
	log     []LogEntry
	next    int64
}

func (m *model) clone() *model {
	c := &model{users: map[int64]*User{}, cohorts: map[int64]*Cohort{}, members: map[int64]map[int64]bool{},
		courses: map[int64]*Course{}, enrol: map[int64]map[int64]int64{}, next: m.next,
		log: m.log[:len(m.log):len(m.log)]}
	for k, v := range m.users {
		u := *v
		c.users[k] = &u
	}
	for k, v := range m.cohorts {
		x := *v
		c.cohorts[k] = &x
	}
	for k, v := range m.members {
		c.members[k] = map[int64]bool{}
		for u := range v {
			c.members[k][u] = true
		}
	}
	for k, v := range m.courses {
		x := *v
		c.courses[k] = &x
	}
	for k, v := range m.enrol {
		c.enrol[k] = map[int64]int64{}
		for u, r := range v {
			c.enrol[k][u] = r
		}
	}
	return c
}

func (m *model) id() int64 { m.next++; return m.next }

// Server is the stand-in. Create it with New.
type Server struct {
	// Token is the only accepted wstoken.
	Token string
	// AllowAccountsSameEmail mirrors $CFG->allowaccountssameemail.
	AllowAccountsSameEmail bool
	// ExtendedUsernameChars mirrors $CFG->extendedusernamechars: off, a
	// username may hold only a-z 0-9 - . @ _ (lib/moodlelib.php
	// clean_param, PARAM_USERNAME).
	ExtendedUsernameChars bool
	// Debug adds "debuginfo" to errors, as a Moodle with developer
	// debugging on does ($CFG->debug = DEBUG_DEVELOPER). Off by default, as
	// on a production site: then "Username already exists" is not sent,
	// only "Invalid parameter value detected".
	Debug bool
	// Caps are the token user's capabilities at system level. New grants
	// AgentCapabilities.
	Caps map[string]bool
	// ShowUserIdentity mirrors $CFG->showuseridentity (default "email"):
	// the identity fields shown to holders of moodle/site:viewuseridentity.
	ShowUserIdentity []string
	// Roles is the role table (id → role); New fills in a standard
	// install's roles, where "student" is 5.
	Roles map[int64]Role
	// Assignable are the roles the token's user may assign on a course
	// (its role's "Allow role assignments", get_assignable_roles()); New
	// allows manager, editingteacher, teacher and student.
	Assignable map[int64]bool

	mu       sync.Mutex
	m        *model
	disabled map[string]bool
	queued   map[string][]Failure
	hook     func(Call) *Failure
	calls    []Call
	now      func() time.Time
	// raw: the call asked for raw strings (moodlewssettingraw), so
	// \core_external\util::format_string leaves them as stored.
	raw bool
}

// AgentCapabilities is the least-privilege set docs/moodle.md asks for:
// what rollcall-moodle-sync needs, and no more. moodle/course:view because
// every function that works in a course (enrol_manual_*,
// core_user_get_course_user_profiles) validates the course context, which
// is require_login() on the course: a user who is not enrolled gets in
// only with it (lib/moodlelib.php require_login, is_viewing). Not moodle/course:update
// (the agent trusts Moodle's exact idnumber search instead), not
// moodle/site:viewuseridentity (fields it cannot see, it sends).
var AgentCapabilities = []string{
	"webservice/rest:use",
	"moodle/user:create", "moodle/user:update", "moodle/user:delete",
	"moodle/user:viewdetails", "moodle/user:viewalldetails",
	"moodle/cohort:view", "moodle/cohort:manage", "moodle/cohort:assign",
	"moodle/course:view", "moodle/course:viewhiddencourses",
	"enrol/manual:enrol", "enrol/manual:unenrol", "moodle/role:assign",
}

// New returns a Moodle with its guest (id 1) and admin (id 2) users and
// nothing else, accepting token, whose user holds AgentCapabilities, with
// debugging off.
func New(token string) *Server {
	m := &model{users: map[int64]*User{}, cohorts: map[int64]*Cohort{}, members: map[int64]map[int64]bool{},
		courses: map[int64]*Course{}, enrol: map[int64]map[int64]int64{}, next: 100}
	m.users[guestID] = &User{ID: guestID, Username: "guest", Email: "root@localhost", FirstName: "Guest user", LastName: " ", Auth: "manual"}
	m.users[adminID] = &User{ID: adminID, Username: "admin", Email: "admin@example.com", FirstName: "Admin", LastName: "User", Auth: "manual"}
	caps := map[string]bool{}
	for _, c := range AgentCapabilities {
		caps[c] = true
	}
	return &Server{Token: token, Caps: caps, ShowUserIdentity: []string{"email"}, m: m,
		Roles: StandardRoles(), Assignable: map[int64]bool{1: true, 3: true, 4: true, 5: true},
		disabled: map[string]bool{}, queued: map[string][]Failure{}, now: time.Now}
}

// Path is where Moodle answers REST calls.
const Path = "/webservice/rest/server.php"

type wsError struct {
	Exception string `json:"exception"`
	ErrorCode string `json:"errorcode"`
	Message   string `json:"message"`
	DebugInfo string `json:"debuginfo,omitempty"`
}

func (e *wsError) Error() string { return e.ErrorCode + ": " + e.Message }

func missingRecord(table string) *wsError {
	return &wsError{Exception: "dml_missing_record_exception", ErrorCode: "invalidrecord",
		Message: "Can't find data record in database table " + table + "."}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, Path) {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	raws := []string{r.URL.RawQuery}
	if r.Method == http.MethodPost {
		b, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") || ct == "" {
			raws = append(raws, string(b))
		}
	}
	vars, err := parseVars(raws...)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	scalar := func(k string) string {
		if n, ok := vars.kids[k]; ok && n.leaf {
			return n.value
		}
		return ""
	}
	token, fn, format := scalar("wstoken"), scalar("wsfunction"), scalar("moodlewsrestformat")
	// public/webservice/lib.php set_web_service_call_settings: the
	// moodlewssetting* parameters are settings, not the function's.
	raw := scalar("moodlewssettingraw") == "1" || scalar("moodlewssettingraw") == "true"
	for _, k := range []string{"wstoken", "wsfunction", "moodlewsrestformat", "moodlewssettingraw", "moodlewssettingfilter",
		"moodlewssettingfileurl", "moodlewssettinglang", "moodlewssettingtimezone"} {
		vars.remove(k)
	}
	if format != "json" {
		http.Error(w, "moodlefake answers moodlewsrestformat=json only", http.StatusNotImplemented)
		return
	}
	res, failure, werr := s.call(token, fn, vars, raws, raw)
	if failure != nil && failure.Status != 0 && failure.Status != http.StatusOK {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(failure.Status)
		fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>\n", failure.Status, http.StatusText(failure.Status))
		return
	}
	if failure != nil {
		werr = &wsError{Exception: failure.Exception, ErrorCode: failure.ErrorCode, Message: failure.Message}
	}
	w.Header().Set("Content-Type", "application/json")
	if werr != nil {
		if !s.Debug {
			werr.DebugInfo = ""
		}
		json.NewEncoder(w).Encode(werr)
		return
	}
	b, err := json.Marshal(res)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(b)
}

func (s *Server) call(token, fn string, vars *node, raws []string, raw bool) (any, *Failure, *wsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw = raw
	if token == "" || token != s.Token {
		return nil, nil, &wsError{Exception: exMoodle, ErrorCode: "invalidtoken", Message: "Invalid token - token not found"}
	}
	def, ok := functions[fn]
	if !ok {
		return nil, nil, missingRecord("external_functions")
	}
	if s.disabled[fn] {
		// public/webservice/lib.php: a function not in the token's service.
		return nil, nil, &wsError{Exception: "webservice_access_exception", ErrorCode: "accessexception", Message: "Access control exception",
			DebugInfo: "Access to the function " + fn + "() is not allowed.\nThere could be multiple reasons for this:\n1. The service linked to the user token does not contain the function.\n2. The service is user-restricted and the user is not listed.\n3. The service is IP-restricted and the user IP is not listed.\n4. The service is time-restricted and the time has expired.\n5. The token is time-restricted and the time has expired.\n6. The service requires a specific capability which the user does not have.\n7. The function is called with username/password (no user token is sent)\nand none of the services has the function to allow the user.\nThese settings can be found in Administration > Site administration\n> Server > Web services > External services and Manage tokens."}
	}
	if !s.Caps["webservice/rest:use"] {
		return nil, nil, noPermission("webservice/rest:use")
	}
	params := url.Values{}
	for _, raw := range raws {
		if v, err := url.ParseQuery(raw); err == nil {
			for k, vs := range v {
				if k != "wstoken" {
					params[k] = append(params[k], vs...)
				}
			}
		}
	}
	c := Call{Function: fn, Params: params}
	s.calls = append(s.calls, c)
	var failure *Failure
	if s.hook != nil {
		failure = s.hook(c)
	}
	if failure == nil && len(s.queued[fn]) > 0 {
		f := s.queued[fn][0]
		s.queued[fn] = s.queued[fn][1:]
		failure = &f
	}
	if failure != nil && !failure.AfterApply {
		return nil, failure, nil
	}
	args, werr := validate(def.params, vars, "", s.ExtendedUsernameChars)
	if werr != nil {
		return nil, failure, werr
	}
	saved := s.m.clone()
	res, werr := def.run(s, args.(map[string]any))
	if werr != nil {
		s.m = saved // Moodle's delegated transaction rolls back
	}
	return res, failure, werr
}

// Functions lists the web-service functions the stand-in implements.
func Functions() []string {
	out := make([]string, 0, len(functions))
	for k := range functions {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// --- helpers for tests ----------------------------------------------------

// Users returns the users that are not deleted (guest and admin included),
// by ID.
func (s *Server) Users() []User { return s.users(func(u *User) bool { return !u.Deleted }) }

// DeletedUsers returns the rows Moodle keeps for deleted users.
func (s *Server) DeletedUsers() []User { return s.users(func(u *User) bool { return u.Deleted }) }

func (s *Server) users(keep func(*User) bool) []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []User
	for _, u := range s.m.users {
		if keep(u) {
			out = append(out, *u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// UserByIDNumber returns the live user with that idnumber.
func (s *Server) UserByIDNumber(idnumber string) (User, bool) {
	for _, u := range s.Users() {
		if u.IDNumber == idnumber && idnumber != "" {
			return u, true
		}
	}
	return User{}, false
}

// Cohorts returns every cohort, by ID.
func (s *Server) Cohorts() []Cohort {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Cohort
	for _, c := range s.m.cohorts {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// CohortMembers returns the members of the cohort with that idnumber, by
// user ID (nil if there is no such cohort).
func (s *Server) CohortMembers(idnumber string) []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m.cohortByIDNumber(idnumber)
	if c == nil {
		return nil
	}
	return s.m.sortedUsers(s.m.members[c.ID])
}

// Enrolled returns the users enrolled on the course with that idnumber, by
// user ID (nil if there is no such course).
func (s *Server) Enrolled(courseIDNumber string) []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m.courseByIDNumber(courseIDNumber)
	if c == nil {
		return nil
	}
	set := map[int64]bool{}
	for u := range s.m.enrol[c.ID] {
		set[u] = true
	}
	return s.m.sortedUsers(set)
}

// EnrolmentRole returns the role a user has on a course (0: not enrolled).
func (s *Server) EnrolmentRole(courseIDNumber string, userID int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m.courseByIDNumber(courseIDNumber)
	if c == nil {
		return 0
	}
	return s.m.enrol[c.ID][userID]
}

func (m *model) sortedUsers(set map[int64]bool) []User {
	out := []User{}
	for id := range set {
		if u := m.users[id]; u != nil {
			out = append(out, *u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// AddCourse creates a course with an enabled manual enrolment instance and
// returns its ID.
func (s *Server) AddCourse(idnumber, shortname string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.m.id()
	s.m.courses[id] = &Course{ID: id, ShortName: shortname, FullName: shortname, IDNumber: idnumber, ManualEnrol: true}
	return id
}

// DisableManualEnrol disables the course's manual enrolment instance.
func (s *Server) DisableManualEnrol(courseIDNumber string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.m.courseByIDNumber(courseIDNumber); c != nil {
		c.ManualEnrol = false
	}
}

// AddUser creates a user as given (ID assigned) and returns its ID.
func (s *Server) AddUser(u User) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.ID = s.m.id()
	if u.Auth == "" {
		u.Auth = "manual"
	}
	s.m.users[u.ID] = &u
	return u.ID
}

// AddCohort creates a site cohort and returns its ID.
func (s *Server) AddCohort(idnumber, name string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.m.id()
	s.m.cohorts[id] = &Cohort{ID: id, Name: name, IDNumber: idnumber, Visible: true}
	return id
}

// AddCohortMember puts a user in a cohort directly.
func (s *Server) AddCohortMember(cohortIDNumber string, userID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.m.cohortByIDNumber(cohortIDNumber); c != nil {
		if s.m.members[c.ID] == nil {
			s.m.members[c.ID] = map[int64]bool{}
		}
		s.m.members[c.ID][userID] = true
	}
}

// Enrol enrols a user on a course directly.
func (s *Server) Enrol(courseIDNumber string, userID, roleID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.m.courseByIDNumber(courseIDNumber); c != nil {
		if s.m.enrol[c.ID] == nil {
			s.m.enrol[c.ID] = map[int64]int64{}
		}
		s.m.enrol[c.ID][userID] = roleID
	}
}

// Revoke takes capabilities away from the token's user.
func (s *Server) Revoke(caps ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range caps {
		delete(s.Caps, c)
	}
}

// Grant gives the token's user capabilities.
func (s *Server) Grant(caps ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range caps {
		s.Caps[c] = true
	}
}

// Log returns the log store's rows so far.
func (s *Server) Log() []LogEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LogEntry(nil), s.m.log...)
}

// Dump is everything the stand-in holds (users live and deleted, cohorts,
// members, courses, enrolments, the log store) as text, for tests that
// look for personal data left behind.
func (s *Server) Dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, u := range s.m.sortedUsers(allIDs(s.m)) {
		fmt.Fprintf(&b, "user %+v\n", u)
	}
	for _, c := range s.sortedCohorts() {
		fmt.Fprintf(&b, "cohort %+v members %v\n", *c, s.m.members[c.ID])
	}
	for _, c := range s.m.courses {
		fmt.Fprintf(&b, "course %+v enrolled %v\n", *c, s.m.enrol[c.ID])
	}
	for _, l := range s.m.log {
		fmt.Fprintf(&b, "log %+v\n", l)
	}
	return b.String()
}

// SetUser changes a live user by hand, as an administrator would in
// Moodle's user editor (for drift tests).
func (s *Server) SetUser(id int64, change func(*User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.m.liveUser(id); u != nil {
		change(u)
	}
}

// RemoveCohortMember takes a user out of a cohort by hand.
func (s *Server) RemoveCohortMember(cohortIDNumber string, userID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.m.cohortByIDNumber(cohortIDNumber); c != nil {
		delete(s.m.members[c.ID], userID)
	}
}

// Unenrol removes an enrolment by hand.
func (s *Server) Unenrol(courseIDNumber string, userID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.m.courseByIDNumber(courseIDNumber); c != nil {
		delete(s.m.enrol[c.ID], userID)
	}
}

// HideCourse sets a course's visibility to hidden.
func (s *Server) HideCourse(courseIDNumber string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.m.courseByIDNumber(courseIDNumber); c != nil {
		c.Hidden = true
	}
}

// FailNext makes the next n calls of function fail with f.
func (s *Server) FailNext(function string, n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.queued[function] = append(s.queued[function], f)
	}
}

// FailWhen consults hook on every authenticated call of a known function
// (before FailNext's queue); a non-nil answer is the call's failure. Nil
// removes the hook.
func (s *Server) FailWhen(hook func(Call) *Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = hook
}

// Disable takes a function out of the token's service: calls get
// "accessexception".
func (s *Server) Disable(function string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disabled[function] = true
}

// Calls returns the authenticated calls of known functions so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallCount counts the calls of one function so far.
func (s *Server) CallCount(function string) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Function == function {
			n++
		}
	}
	return n
}

// ResetCalls forgets the calls so far.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// --- model queries ----------------------------------------------------------

func (m *model) cohortByIDNumber(idnumber string) *Cohort {
	for _, c := range m.cohorts {
		if c.IDNumber == idnumber {
			return c
		}
	}
	return nil
}

func (m *model) courseByIDNumber(idnumber string) *Course {
	for _, c := range m.courses {
		if c.IDNumber == idnumber {
			return c
		}
	}
	return nil
}

func (m *model) liveUser(id int64) *User {
	if u := m.users[id]; u != nil && !u.Deleted {
		return u
	}
	return nil
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
