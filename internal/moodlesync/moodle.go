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
	body := append(Params{{"wstoken", m.token}, {"wsfunction", fn}, {"moodlewsrestformat", "json"}}, params...).Encode()
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
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	IDNumber string `json:"idnumber"`
}

type moodleWarning struct {
	Item        string `json:"item"`
	ItemID      any    `json:"itemid"`
	WarningCode string `json:"warningcode"`
	Message     string `json:"message"`
}

// WarningError is a call that Moodle answered with warnings instead of
// doing the work.
type WarningError struct {
	Function string
	Warnings []string // "code: message", emails redacted
}

func (e *WarningError) Error() string {
	return fmt.Sprintf("moodle %s: warnings: %s", e.Function, strings.Join(e.Warnings, "; "))
}

func warningError(fn string, ws []moodleWarning, ignore func(moodleWarning) bool) error {
	var out []string
	for _, w := range ws {
		if ignore != nil && ignore(w) {
			continue
		}
		out = append(out, w.WarningCode+": "+redact(w.Message))
	}
	if len(out) == 0 {
		return nil
	}
	return &WarningError{Function: fn, Warnings: out}
}

func (m *moodleClient) userByIDNumber(ctx context.Context, idnumber string) (*moodleUser, error) {
	var users []moodleUser
	err := m.call(ctx, "core_user_get_users_by_field", map[string]any{
		"field": "idnumber", "values": []string{idnumber},
	}, &users)
	if err != nil {
		return nil, err
	}
	var found *moodleUser
	for i := range users {
		if users[i].IDNumber != idnumber {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("moodle has more than one user with idnumber %s: merge them by hand", idnumber)
		}
		found = &users[i]
	}
	return found, nil
}

func (m *moodleClient) createUser(ctx context.Context, u map[string]any) (int64, error) {
	var created []struct {
		ID       int64  `json:"id"`
		Username string `json:"username"`
	}
	if err := m.call(ctx, "core_user_create_users", map[string]any{"users": []any{u}}, &created); err != nil {
		return 0, err
	}
	if len(created) != 1 || created[0].ID == 0 {
		return 0, fmt.Errorf("moodle core_user_create_users: expected one new user, got %d", len(created))
	}
	return created[0].ID, nil
}

// updateUser: older Moodles answer null, newer ones {"warnings": […]} and
// skip users they would not update.
func (m *moodleClient) updateUser(ctx context.Context, u map[string]any) error {
	var res struct {
		Warnings []moodleWarning `json:"warnings"`
	}
	if err := m.call(ctx, "core_user_update_users", map[string]any{"users": []any{u}}, &res); err != nil {
		return err
	}
	return warningError("core_user_update_users", res.Warnings, nil)
}

func (m *moodleClient) deleteUser(ctx context.Context, id int64) error {
	return m.call(ctx, "core_user_delete_users", map[string]any{"userids": []int64{id}}, nil)
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
		"description":  "Rollcall access group " + idnumber + ", kept in step by rollcall-moodle-sync.",
	}}}, &cs)
	if err != nil {
		return moodleCohort{}, err
	}
	if len(cs) != 1 {
		return moodleCohort{}, fmt.Errorf("moodle core_cohort_create_cohorts: expected one cohort, got %d", len(cs))
	}
	return cs[0], nil
}

func (m *moodleClient) addCohortMember(ctx context.Context, cohortIDNumber string, userID int64) error {
	var res struct {
		Warnings []moodleWarning `json:"warnings"`
	}
	err := m.call(ctx, "core_cohort_add_cohort_members", map[string]any{"members": []any{map[string]any{
		"cohorttype": map[string]any{"type": "idnumber", "value": cohortIDNumber},
		"usertype":   map[string]any{"type": "id", "value": strconv.FormatInt(userID, 10)},
	}}}, &res)
	if err != nil {
		return err
	}
	// Warning 3 is "record already exists": already a member.
	return warningError("core_cohort_add_cohort_members", res.Warnings, func(w moodleWarning) bool { return w.WarningCode == "3" })
}

func (m *moodleClient) removeCohortMembers(ctx context.Context, userID int64, cohortIDs []int64) error {
	if len(cohortIDs) == 0 {
		return nil
	}
	members := make([]any, len(cohortIDs))
	for i, c := range cohortIDs {
		members[i] = map[string]any{"cohortid": c, "userid": userID}
	}
	return m.call(ctx, "core_cohort_delete_cohort_members", map[string]any{"members": members}, nil)
}

// courseByIDNumber finds the Moodle course whose idnumber is lmsCourseID.
func (m *moodleClient) courseByIDNumber(ctx context.Context, lmsCourseID string) (int64, bool, error) {
	var res struct {
		Courses []struct {
			ID       int64  `json:"id"`
			IDNumber string `json:"idnumber"`
		} `json:"courses"`
	}
	if err := m.call(ctx, "core_course_get_courses_by_field", map[string]any{"field": "idnumber", "value": lmsCourseID}, &res); err != nil {
		return 0, false, err
	}
	for _, c := range res.Courses {
		if c.IDNumber == lmsCourseID {
			return c.ID, true, nil
		}
	}
	return 0, false, nil
}

// studentRoleID is Moodle's default "student" role.
const studentRoleID = 5

func (m *moodleClient) enrol(ctx context.Context, userID int64, courseIDs []int64) error {
	if len(courseIDs) == 0 {
		return nil
	}
	es := make([]any, len(courseIDs))
	for i, c := range courseIDs {
		es[i] = map[string]any{"roleid": studentRoleID, "userid": userID, "courseid": c}
	}
	return m.call(ctx, "enrol_manual_enrol_users", map[string]any{"enrolments": es}, nil)
}

func (m *moodleClient) unenrol(ctx context.Context, userID int64, courseIDs []int64) error {
	if len(courseIDs) == 0 {
		return nil
	}
	es := make([]any, len(courseIDs))
	for i, c := range courseIDs {
		es[i] = map[string]any{"userid": userID, "courseid": c}
	}
	return m.call(ctx, "enrol_manual_unenrol_users", map[string]any{"enrolments": es}, nil)
}
