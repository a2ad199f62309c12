package moodlesync

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// MoodleError is Moodle's answer to a failed web-service call: HTTP 200 with
// {"exception": …, "errorcode": …, "message": …[, "debuginfo": …]}.
type MoodleError struct {
	// Function is the wsfunction that failed.
	Function  string `json:"-"`
	Exception string `json:"exception"`
	ErrorCode string `json:"errorcode"`
	Message   string `json:"message"`
	// DebugInfo is only sent by a Moodle with debugging on. It often names
	// the offending value (an email address, say), so Error() shows it with
	// email addresses redacted; read the field itself for the raw text.
	DebugInfo string `json:"debuginfo,omitempty"`
}

func (e *MoodleError) Error() string {
	s := fmt.Sprintf("moodle %s: %s (%s): %s", e.Function, e.ErrorCode, e.Exception, redact(e.Message))
	if e.DebugInfo != "" {
		s += " [debuginfo: " + redact(e.DebugInfo) + "]"
	}
	if h := fatalHints[e.ErrorCode]; h != "" {
		s += ": " + h
	}
	return s
}

// fatalHints say what to change where Moodle's own message does not
// (nopermissions names the capability itself).
var fatalHints = map[string]string{
	// external_api::validate_context() on a course is require_login() on
	// it (public/lib/external/classes/external_api.php, lib/moodlelib.php):
	// the agent's user, enrolled nowhere, needs moodle/course:view.
	"requireloginerror": "allow moodle/course:view (and moodle/course:viewhiddencourses) in the web-service user's system role (docs/moodle.md)",
	// public/enrol/manual/externallib.php enrol_users: the role must be in
	// get_assignable_roles() of the course.
	"wsusercannotassign": "allow the web-service user's role to assign the student role (Define roles > Allow role assignments) and moodle/role:assign, or correct MOODLE_STUDENT_ROLE_ID (docs/moodle.md)",
	"invalidtoken":       "check MOODLE_TOKEN (Site administration > Server > Web services > Manage tokens)",
}

// transientMoodleCodes are error codes that say "try again": database
// trouble (a deadlock or lost connection surfaces as a dml exception) and
// maintenance mode.
var transientMoodleCodes = map[string]bool{
	"dmlwriteexception":       true,
	"dmlreadexception":        true,
	"dmltransactionexception": true,
	"dbconnectionfailed":      true,
	"dbsessionfailed":         true,
	"sitemaintenance":         true,
}

// Transient reports whether retrying the call may succeed.
func (e *MoodleError) Transient() bool { return transientMoodleCodes[e.ErrorCode] }

// fatalMoodleCodes mean the agent's configuration is wrong: Run gives up
// instead of retrying forever, and says so once.
var fatalMoodleCodes = map[string]bool{
	"nopermissions":         true, // required_capability_exception: a capability is missing
	"wsusercannotassign":    true, // the student role is not assignable by the web-service user
	"requireloginerror":     true,
	"invalidtoken":          true, // wrong MOODLE_TOKEN
	"accessexception":       true, // function not in the token's service
	"servicerequireslogin":  true,
	"servicenotavailable":   true,
	"usernotallowed":        true,
	"wsaccessuserdeleted":   true,
	"wsaccessusersuspended": true,
}

// HTTPError is a non-2xx answer (or an unreadable 2xx one).
type HTTPError struct {
	Service    string // "moodle" or "rollcall"
	StatusCode int
	Body       string // the start of the body, for the log
}

func (e *HTTPError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("%s: HTTP %d", e.Service, e.StatusCode)
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.Service, e.StatusCode, redact(e.Body))
}

// Transient: server errors, throttling and timeouts, and 200s that were not
// the expected JSON (a proxy's or a maintenance page). Not redirects.
func (e *HTTPError) Transient() bool {
	return e.StatusCode >= 500 || e.StatusCode == 429 || e.StatusCode == 408 || e.StatusCode == 200
}

// GraphQLError is the first error of a Rollcall GraphQL response.
type GraphQLError struct {
	Code    string // extensions.code, e.g. CURSOR_EXPIRED
	Message string
	Path    []any
}

func (e *GraphQLError) Error() string {
	p := ""
	if len(e.Path) > 0 {
		parts := make([]string, len(e.Path))
		for i, s := range e.Path {
			parts[i] = fmt.Sprint(s)
		}
		p = " at " + strings.Join(parts, ".")
	}
	return fmt.Sprintf("rollcall: %s%s: %s", e.Code, p, redact(e.Message))
}

// Transient: the server's own failures and rate limiting.
func (e *GraphQLError) Transient() bool {
	return e.Code == "INTERNAL_SERVER_ERROR" || e.Code == "RATE_LIMITED"
}

// CodeCursorExpired is the extensions.code of a feed cursor older than the
// feed's retention.
const CodeCursorExpired = "CURSOR_EXPIRED"

func isCursorExpired(err error) bool {
	var ge *GraphQLError
	return errors.As(err, &ge) && ge.Code == CodeCursorExpired
}

// TransportError is a request that got no HTTP answer (refused, reset,
// timed out) or whose answer could not be read. Always transient.
type TransportError struct {
	Service string
	Err     error
}

func (e *TransportError) Error() string   { return e.Service + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error   { return e.Err }
func (e *TransportError) Transient() bool { return true }

// transient reports whether err is worth retrying.
func transient(err error) bool {
	var t interface{ Transient() bool }
	return errors.As(err, &t) && t.Transient()
}

// Fatal reports whether err means the configuration is wrong (bad API key,
// bad Moodle token, function not enabled): retrying cannot help.
func Fatal(err error) bool {
	var me *MoodleError
	var ge *GraphQLError
	var se *StateError
	switch {
	case errors.As(err, &me):
		// invalidrecord in external_functions: this Moodle lacks the function.
		return fatalMoodleCodes[me.ErrorCode] || me.ErrorCode == "invalidrecord" && strings.Contains(me.Message, "external_functions")
	case errors.As(err, &ge):
		return ge.Code == "UNAUTHENTICATED" || ge.Code == "FORBIDDEN"
	case errors.As(err, &se):
		return true
	case errors.As(err, new(*ConfigError)):
		return true
	}
	return false
}

var emailRE = regexp.MustCompile(`[^\s:;,'"<>()\[\]]+@[^\s:;,'"<>()\[\]]+`)

// redact hides email addresses: logs carry learner IDs, never personal data.
func redact(s string) string {
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return emailRE.ReplaceAllString(s, "<redacted>")
}

// hintFor is Moodle's (or the agent's) code for why a learner could not be
// applied, and what an administrator can do about it.
func hintFor(err error) (code, hint string) {
	var me *MoodleError
	var we *WarningError
	var mc *MissingCourseError
	switch {
	case errors.As(err, &mc):
		return "missingcourse", "create the course in Moodle with idnumber = the course's lmsCourseId (and a manual enrolment instance), or correct the lmsCourseId in Rollcall; a hidden course needs moodle/course:viewhiddencourses"
	case errors.As(err, &we):
		code = we.Code
	case errors.As(err, &me):
		code = me.ErrorCode
	default:
		msg := err.Error()
		switch {
		case strings.Contains(msg, "no email address"):
			return "noemail", "the learner has no email address in Rollcall"
		case strings.Contains(msg, "accounts with idnumber"):
			return "duplicateidnumber", "several Moodle accounts carry this learner's idnumber: merge them, or clear the idnumber of all but one"
		}
		return "error", "see the error; the learner is retried with back-off"
	}
	switch code {
	case "invalidparameter":
		return code, "Moodle refused to create the account. Most often its username (the learner's email in lower case) or its email address belongs to another Moodle account; a site without developer debugging does not say which. Find that account: give it this learner's ID as idnumber and the agent's auth to let the agent adopt it, or remove it. Otherwise: characters Moodle does not allow in usernames ($CFG->extendedusernamechars), or the auth plugin is not enabled"
	case "useremailduplicate":
		return code, "another Moodle account has the learner's new email address (and $CFG->allowaccountssameemail is off); Moodle kept the whole change back: merge or change that account"
	case "dmlwriteexception":
		return code, "another Moodle account has the learner's new username (their email in lower case): merge or rename that account"
	case "useremailinvalid":
		return code, "Moodle does not accept the learner's email address"
	case "usernamelowercase", "invalidusername":
		return code, "Moodle does not accept the username: enable $CFG->extendedusernamechars for addresses with characters outside a-z 0-9 . _ @ -"
	case "wsnoinstance":
		return code, "the course has no enabled manual enrolment instance: add one (Participants > Enrolment methods > Manual enrolments)"
	case "usernotupdatedadmin", "usernotupdatedguest", "usernotupdateddeleted", "invaliduserid":
		return code, "the account with this learner's idnumber cannot be updated by the web service: clear its idnumber"
	case "2":
		return code, "Moodle did not find the cohort or account to join: run --reconcile"
	}
	return code, "see Moodle's message; the learner is retried with back-off"
}
