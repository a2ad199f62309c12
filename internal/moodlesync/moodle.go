package moodlesync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// moodleClient calls Moodle's REST web services: POST
// {base}/webservice/rest/server.php with wstoken, wsfunction and
// moodlewsrestformat=json in the form body (never in the URL, where proxies
// log it).
type moodleClient struct {
	endpoint string
	token    string
	hc       *http.Client
	retry    Retry
	log      *slog.Logger
}

const moodleRequestTimeout = 60 * time.Second

// call runs fn with args, retrying transient failures, and decodes the
// answer into out (nil: ignore it).
func (m *moodleClient) call(ctx context.Context, fn string, args map[string]any, out any) error {
	params, err := EncodeParams(args)
	if err != nil {
		return fmt.Errorf("%s: %w", fn, err)
	}
	// moodlewssettingraw: strings as stored, not through
	// \core_external\util::format_string (public/webservice/lib.php
	// set_web_service_call_settings), which would return a cohort named
	// "A & B" as "A &amp; B", and the agent compares names with what it wrote.
	body := append(Params{{"wstoken", m.token}, {"wsfunction", fn}, {"moodlewsrestformat", "json"}, {"moodlewssettingraw", "1"}},
		params...).Encode()
	return m.retry.do(ctx, m.log, fn, func(ctx context.Context) error {
		return m.once(ctx, fn, body, out)
	})
}

func (m *moodleClient) once(ctx context.Context, fn, body string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, moodleRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.endpoint, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := m.hc.Do(req)
	if err != nil {
		return &TransportError{Service: "moodle " + fn, Err: err}
	}
	defer resp.Body.Close()
	if err := redirected("moodle "+fn, resp); err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &TransportError{Service: "moodle " + fn, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return &HTTPError{Service: "moodle " + fn, StatusCode: resp.StatusCode, Body: snippet(b)}
	}
	return decodeMoodle(fn, b, out)
}

// decodeMoodle turns a 200 answer into out or a *MoodleError.
func decodeMoodle(fn string, b []byte, out any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil // functions that return nothing
	}
	if !json.Valid(b) {
		return &HTTPError{Service: "moodle " + fn, StatusCode: http.StatusOK, Body: "not JSON: " + snippet(b)}
	}
	if b[0] == '{' {
		var probe struct {
			Exception *string `json:"exception"`
			ErrorCode *string `json:"errorcode"`
		}
		if json.Unmarshal(b, &probe) == nil && probe.Exception != nil && probe.ErrorCode != nil {
			me := &MoodleError{Function: fn}
			_ = json.Unmarshal(b, me)
			return me
		}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("moodle %s: unexpected answer: %w", fn, err)
	}
	return nil
}

// redirected reports a redirect as an error: following one turns the POST
// into a GET without its body (and its token).
func redirected(service string, resp *http.Response) error {
	if resp.StatusCode < 300 || resp.StatusCode >= 400 {
		return nil
	}
	return &HTTPError{Service: service, StatusCode: resp.StatusCode,
		Body: "redirected to " + resp.Header.Get("Location") + ": configure that URL instead"}
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// moodleUser is what core_user_get_users_by_field returns, as far as used.
type moodleUser struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	FirstName string    `json:"firstname"`
	LastName  string    `json:"lastname"`
	Email     string    `json:"email"`
	IDNumber  string    `json:"idnumber"`
	Auth      string    `json:"auth"`
	Suspended *flexBool `json:"suspended"`
}

// flexBool accepts true/false, 0/1 and "0"/"1": Moodle versions differ.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	switch s {
	case "true", "1":
		*f = true
	case "false", "0", "", "null":
		*f = false
	default:
		return fmt.Errorf("not a boolean: %s", b)
	}
	return nil
}

type moodleCohort struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	IDNumber    string `json:"idnumber"`
	Description string `json:"description"`
}

// cohortMarker ends the description of the cohorts the agent creates, so
// that a reconcile without a state file knows them from hand-made ones.
const cohortMarker = "kept in step by rollcall-moodle-sync."

type moodleWarning struct {
	Item        string `json:"item"`
	ItemID      any    `json:"itemid"`
	WarningCode string `json:"warningcode"`
	Message     string `json:"message"`
}

// usersByIDNumber looks learners' accounts up by idnumber, one call for
// all of them (core_user_get_users_by_field takes a list of values). Moodle
// returns a user only if the caller can see the searched field
// (public/user/externallib.php get_users_by_field, public/user/lib.php
// user_get_user_details: idnumber needs moodle/user:viewalldetails), which
// the preflight checks, so an empty answer means "no account". Fields the
// caller cannot see (email without moodle/site:viewuseridentity) are absent
// from the answer, and left empty here.
func (m *moodleClient) usersByIDNumber(ctx context.Context, idnumbers []string) (map[string][]moodleUser, error) {
	out := map[string][]moodleUser{}
	if len(idnumbers) == 0 {
		return out, nil
	}
	var users []moodleUser
	if err := m.call(ctx, "core_user_get_users_by_field", map[string]any{"field": "idnumber", "values": idnumbers}, &users); err != nil {
		return nil, err
	}
	for _, u := range users {
		if u.IDNumber != "" {
			out[u.IDNumber] = append(out[u.IDNumber], u)
		}
	}
	return out, nil
}

func (m *moodleClient) usersByField(ctx context.Context, field string, values []string) ([]moodleUser, error) {
	var users []moodleUser
	err := m.call(ctx, "core_user_get_users_by_field", map[string]any{"field": field, "values": values}, &users)
	return users, err
}

// usersByAuth lists the live accounts with this auth plugin
// (core_user_get_users, criteria auth: returned only to holders of
// moodle/user:viewalldetails, who can see auth).
func (m *moodleClient) usersByAuth(ctx context.Context, auth string) ([]moodleUser, error) {
	var res struct {
		Users []moodleUser `json:"users"`
	}
	err := m.call(ctx, "core_user_get_users", map[string]any{"criteria": []any{map[string]any{"key": "auth", "value": auth}}}, &res)
	return res.Users, err
}

type siteInfo struct {
	Release   string `json:"release"`
	UserID    int64  `json:"userid"`
	Functions []struct {
		Name string `json:"name"`
	} `json:"functions"`
}

func (m *moodleClient) siteInfo(ctx context.Context) (*siteInfo, error) {
	var si siteInfo
	if err := m.call(ctx, "core_webservice_get_site_info", map[string]any{}, &si); err != nil {
		return nil, err
	}
	return &si, nil
}

// createUsers creates accounts in one call. core_user_create_users is all
// or nothing (one delegated transaction, public/user/externallib.php), so
// one refused user fails the call; the caller then tries them one by one.
func (m *moodleClient) createUsers(ctx context.Context, us []map[string]any) ([]int64, error) {
	var created []struct {
		ID       int64  `json:"id"`
		Username string `json:"username"`
	}
	list := make([]any, len(us))
	for i, u := range us {
		list[i] = u
	}
	if err := m.call(ctx, "core_user_create_users", map[string]any{"users": list}, &created); err != nil {
		return nil, err
	}
	if len(created) != len(us) {
		return nil, fmt.Errorf("moodle core_user_create_users: %d users sent, %d created", len(us), len(created))
	}
	ids := make([]int64, len(created))
	for i, c := range created {
		ids[i] = c.ID
	}
	return ids, nil
}

// updateUsers updates accounts in one call. Moodle 5.x updates each user in
// a transaction of its own and answers a user it would not update (another
// account has the email: useremailduplicate; a taken username:
// dmlwriteexception; …) with a warning whose itemid is the user, losing
// that user's whole change. The warnings are returned by user ID.
func (m *moodleClient) updateUsers(ctx context.Context, us []map[string]any) (map[int64]moodleWarning, error) {
	if len(us) == 0 {
		return nil, nil
	}
	list := make([]any, len(us))
	for i, u := range us {
		list[i] = u
	}
	var res struct {
		Warnings []moodleWarning `json:"warnings"`
	}
	if err := m.call(ctx, "core_user_update_users", map[string]any{"users": list}, &res); err != nil {
		return nil, err
	}
	out := map[int64]moodleWarning{}
	for _, w := range res.Warnings {
		id, _ := strconv.ParseInt(strings.Trim(fmt.Sprint(w.ItemID), `"`), 10, 64)
		out[id] = w
	}
	return out, nil
}

// deleteUsers is all or nothing, too.
func (m *moodleClient) deleteUsers(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return m.call(ctx, "core_user_delete_users", map[string]any{"userids": ids}, nil)
}

func (m *moodleClient) cohorts(ctx context.Context) ([]moodleCohort, error) {
	var cs []moodleCohort
	err := m.call(ctx, "core_cohort_get_cohorts", map[string]any{}, &cs)
	return cs, err
}

func (m *moodleClient) createCohort(ctx context.Context, idnumber, name string) (moodleCohort, error) {
	var cs []moodleCohort
	err := m.call(ctx, "core_cohort_create_cohorts", map[string]any{"cohorts": []any{map[string]any{
		"categorytype": map[string]any{"type": "system", "value": ""},
		"name":         name,
		"idnumber":     idnumber,
		"description":  "Rollcall access group " + idnumber + ", " + cohortMarker,
	}}}, &cs)
	if err != nil {
		return moodleCohort{}, err
	}
	if len(cs) != 1 {
		return moodleCohort{}, fmt.Errorf("moodle core_cohort_create_cohorts: expected one cohort, got %d", len(cs))
	}
	return cs[0], nil
}

// updateCohort renames one of the agent's cohorts
// (core_cohort_update_cohorts, public/cohort/externallib.php
// update_cohorts: moodle/cohort:manage in the cohort's context, which the
// agent holds at system level for core_cohort_create_cohorts already).
// Moodle requires categorytype, name and idnumber and writes the optional
// fields it is sent (cohort_update_cohort), so the description, with its
// marker, is left as it is by not sending it.
func (m *moodleClient) updateCohort(ctx context.Context, c moodleCohort, name string) error {
	return m.call(ctx, "core_cohort_update_cohorts", map[string]any{"cohorts": []any{map[string]any{
		"id":           c.ID,
		"categorytype": map[string]any{"type": "system", "value": ""},
		"name":         name,
		"idnumber":     c.IDNumber,
	}}}, nil)
}

// courseRole is one of a user's roles in a course, as
// core_user_get_course_user_profiles reports it.
type courseRole struct {
	RoleID    int64  `json:"roleid"`
	ShortName string `json:"shortname"`
}

// courseRoles reads the roles a user holds in a course
// (core_user_get_course_user_profiles, public/user/externallib.php
// get_course_user_profiles: user_get_user_details($user, $course) with the
// user's roles in the course, get_user_roles($context, $userid, false);
// it validates the course context, so it needs moodle/course:view like the
// enrolment functions, and moodle/user:viewdetails). Moodle's web services
// have no function that lists roles: this is the one way to learn a role's
// shortname from its ID, and only for a role somebody holds. found is
// false when Moodle returned no profile for the user.
func (m *moodleClient) courseRoles(ctx context.Context, userID, courseID int64) (roles []courseRole, found bool, err error) {
	var profiles []struct {
		ID    int64        `json:"id"`
		Roles []courseRole `json:"roles"`
	}
	if err := m.call(ctx, "core_user_get_course_user_profiles", map[string]any{"userlist": []any{
		map[string]any{"userid": userID, "courseid": courseID}}}, &profiles); err != nil {
		return nil, false, err
	}
	for _, p := range profiles {
		if p.ID == userID {
			return p.Roles, true, nil
		}
	}
	return nil, false, nil
}

type membership struct {
	cohort string // cohort idnumber
	user   int64
}

// addCohortMembers: problems are warnings (public/cohort/externallib.php
// add_cohort_members): 1 bad type, 2 no such cohort or user, 3 already a
// member (ignored).
func (m *moodleClient) addCohortMembers(ctx context.Context, ms []membership) ([]moodleWarning, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	members := make([]any, len(ms))
	for i, x := range ms {
		members[i] = map[string]any{
			"cohorttype": map[string]any{"type": "idnumber", "value": x.cohort},
			"usertype":   map[string]any{"type": "id", "value": strconv.FormatInt(x.user, 10)},
		}
	}
	var res struct {
		Warnings []moodleWarning `json:"warnings"`
	}
	if err := m.call(ctx, "core_cohort_add_cohort_members", map[string]any{"members": members}, &res); err != nil {
		return nil, err
	}
	var out []moodleWarning
	for _, w := range res.Warnings {
		if w.WarningCode != "3" {
			out = append(out, w)
		}
	}
	return out, nil
}

type pair struct{ a, b int64 }

// removeCohortMembers takes (cohort id, user id) pairs; removing a
// non-member does nothing; a missing cohort or user fails the call.
func (m *moodleClient) removeCohortMembers(ctx context.Context, ps []pair) error {
	if len(ps) == 0 {
		return nil
	}
	members := make([]any, len(ps))
	for i, p := range ps {
		members[i] = map[string]any{"cohortid": p.a, "userid": p.b}
	}
	return m.call(ctx, "core_cohort_delete_cohort_members", map[string]any{"members": members}, nil)
}

// courseByIDNumber finds the Moodle course whose idnumber is lmsCourseID.
// Moodle returns a course's idnumber only to holders of moodle/course:update
// (public/course/externallib.php get_courses_by_field, "Information for
// managers only"), but its search is exact ($DB->get_records('course',
// ['idnumber' => …])) and course idnumbers are unique, so the one course
// found is the one: the agent needs no course:update. An empty idnumber is
// never searched (it would match every course without one).
func (m *moodleClient) courseByIDNumber(ctx context.Context, lmsCourseID string) (int64, bool, error) {
	if strings.TrimSpace(lmsCourseID) == "" {
		return 0, false, nil
	}
	var res struct {
		Courses []struct {
			ID       int64   `json:"id"`
			IDNumber *string `json:"idnumber"`
		} `json:"courses"`
	}
	if err := m.call(ctx, "core_course_get_courses_by_field", map[string]any{"field": "idnumber", "value": lmsCourseID}, &res); err != nil {
		return 0, false, err
	}
	var found []int64
	for _, c := range res.Courses {
		if c.IDNumber == nil || *c.IDNumber == lmsCourseID {
			found = append(found, c.ID)
		}
	}
	switch len(found) {
	case 0:
		return 0, false, nil
	case 1:
		return found[0], true, nil
	}
	return 0, false, fmt.Errorf("moodle has %d courses with idnumber %q", len(found), lmsCourseID)
}

// enrol and unenrol take (user id, course id) pairs; enrol_manual_enrol_users
// is all or nothing (public/enrol/manual/externallib.php).
func (m *moodleClient) enrol(ctx context.Context, roleID int64, ps []pair) error {
	if len(ps) == 0 {
		return nil
	}
	es := make([]any, len(ps))
	for i, p := range ps {
		es[i] = map[string]any{"roleid": roleID, "userid": p.a, "courseid": p.b}
	}
	return m.call(ctx, "enrol_manual_enrol_users", map[string]any{"enrolments": es}, nil)
}

func (m *moodleClient) unenrol(ctx context.Context, ps []pair) error {
	if len(ps) == 0 {
		return nil
	}
	es := make([]any, len(ps))
	for i, p := range ps {
		es[i] = map[string]any{"userid": p.a, "courseid": p.b}
	}
	return m.call(ctx, "enrol_manual_unenrol_users", map[string]any{"enrolments": es}, nil)
}
