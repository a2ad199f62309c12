package moodlesync

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDecodeMoodle(t *testing.T) {
	var users []moodleUser
	for _, body := range []string{"", "null", " null\n"} {
		if err := decodeMoodle("f", []byte(body), &users); err != nil {
			t.Errorf("%q: %v", body, err)
		}
	}
	err := decodeMoodle("core_user_create_users", []byte(`{"exception":"invalid_parameter_exception","errorcode":"invalidparameter","message":"Invalid parameter value detected","debuginfo":"Email address already exists: ada@example.org"}`), &users)
	var me *MoodleError
	if !errors.As(err, &me) {
		t.Fatalf("got %v", err)
	}
	if *me != (MoodleError{Function: "core_user_create_users", Exception: "invalid_parameter_exception", ErrorCode: "invalidparameter",
		Message: "Invalid parameter value detected", DebugInfo: "Email address already exists: ada@example.org"}) {
		t.Errorf("got %+v", *me)
	}
	if got := me.Error(); got != "moodle core_user_create_users: invalidparameter (invalid_parameter_exception): Invalid parameter value detected [debuginfo: Email address already exists: <redacted>]" {
		t.Errorf("Error() = %s", got)
	}
	if me.Transient() || Fatal(me) {
		t.Error("invalidparameter is neither transient nor fatal")
	}

	// A result object that happens to have other keys is not an error.
	var res struct{ Warnings []moodleWarning }
	if err := decodeMoodle("f", []byte(`{"warnings":[{"warningcode":"3","message":"m"}]}`), &res); err != nil || len(res.Warnings) != 1 {
		t.Errorf("warnings: %v %+v", err, res)
	}
	if err := decodeMoodle("f", []byte(`[{"id":3,"idnumber":"L1","suspended":1}]`), &users); err != nil || users[0].ID != 3 || !bool(*users[0].Suspended) {
		t.Errorf("users: %v %+v", err, users)
	}
	var he *HTTPError
	if err := decodeMoodle("f", []byte(`<html>maintenance</html>`), &users); !errors.As(err, &he) || !he.Transient() {
		t.Errorf("HTML: %v", err)
	}
}

func TestClassification(t *testing.T) {
	for _, tc := range []struct {
		err              error
		transient, fatal bool
	}{
		{&MoodleError{ErrorCode: "dmlwriteexception"}, true, false},
		{&MoodleError{ErrorCode: "sitemaintenance"}, true, false},
		{&MoodleError{ErrorCode: "invalidtoken"}, false, true},
		{&MoodleError{ErrorCode: "accessexception"}, false, true},
		{&MoodleError{ErrorCode: "invalidrecord", Message: "Can't find data record in database table external_functions."}, false, true},
		{&MoodleError{ErrorCode: "invalidrecord", Message: "Can't find data record in database table cohort."}, false, false},
		{&HTTPError{StatusCode: 503}, true, false},
		{&HTTPError{StatusCode: 429}, true, false},
		{&HTTPError{StatusCode: 404}, false, false},
		{&HTTPError{StatusCode: 301}, false, false},
		{&TransportError{Service: "x", Err: errors.New("connection refused")}, true, false},
		{&GraphQLError{Code: "INTERNAL_SERVER_ERROR"}, true, false},
		{&GraphQLError{Code: "RATE_LIMITED"}, true, false},
		{&GraphQLError{Code: "UNAUTHENTICATED"}, false, true},
		{&GraphQLError{Code: "FORBIDDEN"}, false, true},
		{&GraphQLError{Code: CodeCursorExpired}, false, false},
		{&StateError{Path: "p", Err: errors.New("x")}, false, true},
		// Moodle 5.x: namespaced exception classes; classified by errorcode.
		{&MoodleError{Exception: `core\exception\required_capability_exception`, ErrorCode: "nopermissions"}, false, true},
		{&MoodleError{Exception: `core\exception\moodle_exception`, ErrorCode: "wsusercannotassign"}, false, true},
		{&MoodleError{Exception: `core\exception\invalid_parameter_exception`, ErrorCode: "invalidparameter"}, false, false},
		{&MoodleError{Exception: "webservice_access_exception", ErrorCode: "accessexception"}, false, true},
		{&WarningError{Code: "useremailduplicate"}, false, false},
		{&ConfigError{Problem: "p", Hint: "h"}, false, true},
		{&MissingCourseError{LMSCourseID: "C"}, false, false},
		{errors.New("other"), false, false},
	} {
		wrapped := fmt.Errorf("learner L1: %w", tc.err)
		if transient(wrapped) != tc.transient || Fatal(wrapped) != tc.fatal {
			t.Errorf("%#v: transient %v fatal %v", tc.err, transient(wrapped), Fatal(wrapped))
		}
	}
	if !isCursorExpired(fmt.Errorf("x: %w", &GraphQLError{Code: CodeCursorExpired})) {
		t.Error("isCursorExpired")
	}
}

func TestRedact(t *testing.T) {
	in := "Username already exists: a.b+c@example.org; Email address already exists: 'x@y.z'"
	got := redact(in)
	if strings.Contains(got, "@") || got != "Username already exists: <redacted>; Email address already exists: '<redacted>'" {
		t.Errorf("redact: %s", got)
	}
}

func TestRetryDelay(t *testing.T) {
	r := Retry{BaseDelay: 100, MaxDelay: 1000}.withDefaults()
	for attempt, limit := range map[int]int64{1: 100, 2: 200, 3: 400, 4: 800, 5: 1000, 30: 1000} {
		for range 50 {
			d := int64(r.delay(attempt))
			if d < limit/2 || d > limit {
				t.Fatalf("attempt %d: delay %d outside [%d, %d]", attempt, d, limit/2, limit)
			}
		}
	}
}
