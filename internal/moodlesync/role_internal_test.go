package moodlesync

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// When the user Moodle reports also holds a role with the configured
// shortname (core_user_get_course_user_profiles lists every role a user
// holds in the course), the mismatch error names that role's ID.
func TestCoreUserGetCourseUserProfiles_MismatchNamesTheShortnamesID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(b), "wsfunction=core_user_get_course_user_profiles") {
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		io.WriteString(w, `[{"id":7,"fullname":"x","roles":[{"roleid":5,"name":"Teacher","shortname":"editingteacher","sortorder":3},{"roleid":9,"name":"Student","shortname":"student","sortorder":5}]}]`)
	}))
	defer srv.Close()
	log := slog.New(slog.DiscardHandler)
	a := &Agent{cfg: Config{StudentRole: "student", StudentRoleID: 5}, log: log,
		moodle: &moodleClient{endpoint: srv.URL, token: "t", hc: srv.Client(), retry: Retry{}.withDefaults(), log: log}}
	ok, err := a.checkRole(context.Background(), 7, 44)
	var ce *ConfigError
	if ok || !errors.As(err, &ce) || !strings.Contains(err.Error(), `role 5 is "editingteacher" in this Moodle, not "student"`) ||
		!strings.Contains(err.Error(), `MOODLE_STUDENT_ROLE_ID (--student-role-id) to 9, the ID of the role "student"`) {
		t.Fatalf("checkRole: %v, %v", ok, err)
	}
	a.cfg.StudentRoleID = 9
	if ok, err := a.checkRole(context.Background(), 7, 44); !ok || err != nil || !a.roleChecked {
		t.Errorf("role 9: %v, %v", ok, err)
	}
}
