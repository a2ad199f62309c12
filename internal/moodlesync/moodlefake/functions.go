package moodlefake

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type function struct {
	params *desc
	run    func(s *Server, args map[string]any) (any, *wsError)
}

// Auth plugins installed; the internal ones need a password.
var authPlugins = map[string]bool{"manual": true, "nologin": true, "email": true, "oauth2": true, "saml2": true, "ldap": true}
var internalAuth = map[string]bool{"manual": true, "email": true}

var functions map[string]function

func init() {
	userCreate := single(
		f("username", value(pUsername)),
		f("auth", dflt(value(pPlugin), "manual")),
		f("createpassword", opt(value(pBool))),
		f("password", opt(value(pRaw))),
		f("firstname", value(pNoTags)),
		f("lastname", value(pNoTags)),
		f("email", value(pEmail)),
		f("maildisplay", opt(value(pInt))),
		f("city", opt(value(pNoTags))),
		f("country", opt(value(pAlpha))),
		f("timezone", opt(value(pRaw))),
		f("description", opt(value(pRaw))),
		f("firstnamephonetic", opt(value(pNoTags))),
		f("lastnamephonetic", opt(value(pNoTags))),
		f("middlename", opt(value(pNoTags))),
		f("alternatename", opt(value(pNoTags))),
		f("idnumber", dflt(value(pRaw), "")),
		f("institution", opt(value(pText))),
		f("department", opt(value(pText))),
		f("lang", dflt(value(pPlugin), "en")),
		f("calendartype", opt(value(pPlugin))),
		f("theme", opt(value(pPlugin))),
		f("mailformat", opt(value(pInt))),
		f("customfields", opt(multiple(single(f("type", value(pAlphaNumExt)), f("value", value(pRaw)))))),
		f("preferences", opt(multiple(single(f("type", value(pRaw)), f("value", value(pRaw)))))),
	)
	userUpdate := single(
		f("id", value(pInt)),
		f("username", opt(value(pUsername))),
		f("auth", opt(value(pPlugin))),
		f("suspended", opt(value(pBool))),
		f("password", opt(value(pRaw))),
		f("firstname", opt(value(pNoTags))),
		f("lastname", opt(value(pNoTags))),
		f("email", opt(value(pEmail))),
		f("maildisplay", opt(value(pInt))),
		f("city", opt(value(pNoTags))),
		f("country", opt(value(pAlpha))),
		f("timezone", opt(value(pRaw))),
		f("description", opt(value(pRaw))),
		f("firstnamephonetic", opt(value(pNoTags))),
		f("lastnamephonetic", opt(value(pNoTags))),
		f("middlename", opt(value(pNoTags))),
		f("alternatename", opt(value(pNoTags))),
		f("idnumber", opt(value(pRaw))),
		f("institution", opt(value(pText))),
		f("department", opt(value(pText))),
		f("lang", opt(value(pPlugin))),
		f("calendartype", opt(value(pPlugin))),
		f("theme", opt(value(pPlugin))),
		f("mailformat", opt(value(pInt))),
		f("customfields", opt(multiple(single(f("type", value(pAlphaNumExt)), f("value", value(pRaw)))))),
		f("preferences", opt(multiple(single(f("type", value(pRaw)), f("value", value(pRaw)))))),
	)
	functions = map[string]function{
		"core_user_create_users":        {paramsOf(f("users", multiple(userCreate))), createUsers},
		"core_user_update_users":        {paramsOf(f("users", multiple(userUpdate))), updateUsers},
		"core_user_delete_users":        {paramsOf(f("userids", multiple(value(pInt)))), deleteUsers},
		"core_user_get_users_by_field":  {paramsOf(f("field", value(pAlpha)), f("values", multiple(value(pRaw)))), getUsersByField},
		"core_user_get_users":           {paramsOf(f("criteria", multiple(single(f("key", value(pAlpha)), f("value", value(pRaw)))))), getUsers},
		"core_webservice_get_site_info": {paramsOf(f("serviceshortnames", dflt(multiple(value(pAlphaNumExt)), []any{}))), getSiteInfo},
		"core_cohort_get_cohorts":       {paramsOf(f("cohortids", dflt(multiple(value(pInt)), []any{}))), getCohorts},
		"core_cohort_create_cohorts": {paramsOf(f("cohorts", multiple(single(
			f("categorytype", single(f("type", value(pText)), f("value", value(pRaw)))),
			f("name", value(pRaw)),
			f("idnumber", value(pRaw)),
			f("description", opt(value(pRaw))),
			f("descriptionformat", dflt(value(pInt), int64(1))),
			f("visible", opt(value(pBool))),
			f("theme", opt(value(pPlugin))),
			f("customfields", opt(multiple(single(f("shortname", value(pAlphaNumExt)), f("value", value(pRaw)))))),
		)))), createCohorts},
		"core_cohort_update_cohorts": {paramsOf(f("cohorts", multiple(single(
			f("id", value(pInt)),
			f("categorytype", single(f("type", value(pText)), f("value", value(pRaw)))),
			f("name", value(pRaw)),
			f("idnumber", value(pRaw)),
			f("description", opt(value(pRaw))),
			f("descriptionformat", dflt(value(pInt), int64(1))),
			f("visible", opt(value(pBool))),
			f("theme", opt(value(pPlugin))),
			f("customfields", opt(multiple(single(f("shortname", value(pAlphaNumExt)), f("value", value(pRaw)))))),
		)))), updateCohorts},
		"core_user_get_course_user_profiles": {paramsOf(f("userlist", multiple(single(
			f("userid", value(pInt)), f("courseid", value(pInt)),
		)))), getCourseUserProfiles},
		"core_cohort_add_cohort_members": {paramsOf(f("members", multiple(single(
			f("cohorttype", single(f("type", value(pAlphaNumExt)), f("value", value(pRaw)))),
			f("usertype", single(f("type", value(pAlphaNumExt)), f("value", value(pRaw)))),
		)))), addCohortMembers},
		"core_cohort_delete_cohort_members": {paramsOf(f("members", multiple(single(
			f("cohortid", value(pInt)), f("userid", value(pInt)),
		)))), deleteCohortMembers},
		"core_course_get_courses_by_field": {paramsOf(f("field", dflt(value(pAlpha), "")), f("value", dflt(value(pRaw), ""))), getCoursesByField},
		"enrol_manual_enrol_users": {paramsOf(f("enrolments", multiple(single(
			f("roleid", value(pInt)), f("userid", value(pInt)), f("courseid", value(pInt)),
			f("timestart", opt(value(pInt))), f("timeend", opt(value(pInt))), f("suspend", opt(value(pInt))),
		)))), enrolUsers},
		"enrol_manual_unenrol_users": {paramsOf(f("enrolments", multiple(single(
			f("userid", value(pInt)), f("courseid", value(pInt)), f("roleid", opt(value(pInt))),
		)))), unenrolUsers},
	}
}

func items(args map[string]any, key string) []map[string]any {
	var out []map[string]any
	for _, x := range args[key].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

func str(m map[string]any, k string) (string, bool) {
	v, ok := m[k].(string)
	return v, ok
}

// Exception classes as Moodle 5.x names them in the "exception" key
// (get_class() of the thrown exception; lib/classes/exception/*).
const (
	exMoodle             = `core\exception\moodle_exception`
	exInvalidParameter   = `core\exception\invalid_parameter_exception`
	exRequiredCapability = `core\exception\required_capability_exception`
	exCoding             = `core\exception\coding_exception`
	exRequireLogin       = `core\exception\require_login_exception`
)

// capabilityNames are get_capability_string() of the capabilities checked.
var capabilityNames = map[string]string{
	"webservice/rest:use":  "Use REST protocol",
	"moodle/user:create":   "Create users",
	"moodle/user:update":   "Update user profiles",
	"moodle/user:delete":   "Delete users",
	"moodle/cohort:view":   "View site-wide cohorts",
	"moodle/cohort:manage": "Create, delete and move cohorts",
	"moodle/cohort:assign": "Add and remove cohort members",
	"enrol/manual:enrol":   "Enrol users",
	"enrol/manual:unenrol": "Unenrol users from the course",
}

// noPermission is require_capability()'s failure: a
// required_capability_exception, errorcode nopermissions, naming the
// capability's description (lib/classes/exception/required_capability_exception.php).
func noPermission(capability string) *wsError {
	name := capabilityNames[capability]
	if name == "" {
		name = capability
	}
	return &wsError{Exception: exRequiredCapability, ErrorCode: "nopermissions",
		Message: "Sorry, but you do not currently have permissions to do that (" + name + ")."}
}

func (s *Server) require(capability string) *wsError {
	if !s.Caps[capability] {
		return noPermission(capability)
	}
	return nil
}

// requireCourseLogin is external_api::validate_context() on a course
// context (public/lib/external/classes/external_api.php), which calls
// require_login() on the course (lib/moodlelib.php): a hidden course needs
// moodle/course:viewhiddencourses, and a user who is not enrolled in it
// (the token's user never is) gets in only with moodle/course:view
// (is_viewing()). Otherwise a require_login_exception, whose reason is
// debuginfo.
func (s *Server) requireCourseLogin(c *Course) *wsError {
	if c.Hidden && !s.Caps["moodle/course:viewhiddencourses"] {
		return &wsError{Exception: exRequireLogin, ErrorCode: "requireloginerror", Message: "Course or activity not accessible.", DebugInfo: "Course is hidden"}
	}
	if !s.Caps["moodle/course:view"] {
		return &wsError{Exception: exRequireLogin, ErrorCode: "requireloginerror", Message: "Course or activity not accessible.", DebugInfo: "Not enrolled"}
	}
	return nil
}

func (s *Server) logEvent(name string, id int64, other map[string]string) {
	s.m.log = append(s.m.log, LogEntry{EventName: name, ObjectID: id, Other: other})
}

// core_user_create_users (public/user/externallib.php create_users): needs
// moodle/user:create; all or nothing (one delegated transaction); the
// reasons a user is refused are invalid_parameter_exception's debuginfo,
// which only a site with debugging on sends.
func createUsers(s *Server, args map[string]any) (any, *wsError) {
	if err := s.require("moodle/user:create"); err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, u := range items(args, "users") {
		username, _ := str(u, "username")
		for _, k := range []string{"username", "firstname", "lastname"} {
			if v, _ := str(u, k); strings.TrimSpace(v) == "" {
				return nil, invalidParam("The field " + k + " cannot be blank")
			}
		}
		if s.m.userByUsername(username) != nil {
			return nil, invalidParam("Username already exists: " + username)
		}
		auth, _ := str(u, "auth")
		if !authPlugins[auth] {
			return nil, invalidParam("Invalid authentication type: " + auth)
		}
		if lang, _ := str(u, "lang"); lang != "en" {
			return nil, invalidParam("Invalid language code: " + lang)
		}
		pw, _ := str(u, "password")
		cp, _ := u["createpassword"].(bool)
		if internalAuth[auth] && pw == "" && !cp {
			return nil, invalidParam("Invalid password: you must provide a password, or set createpassword.")
		}
		email, _ := str(u, "email")
		if !emailRE.MatchString(email) {
			return nil, invalidParam("Email address is invalid: " + email)
		}
		if !s.AllowAccountsSameEmail && s.m.emailTaken(email, 0) {
			return nil, invalidParam("Email address already exists: " + email)
		}
		first, _ := str(u, "firstname")
		last, _ := str(u, "lastname")
		idnumber, _ := str(u, "idnumber")
		nu := &User{ID: s.m.id(), Username: username, Email: email, FirstName: first, LastName: last, IDNumber: idnumber, Auth: auth}
		s.m.users[nu.ID] = nu
		s.logEvent(`\core\event\user_created`, nu.ID, nil)
		out = append(out, map[string]any{"id": nu.ID, "username": nu.Username})
	}
	return out, nil
}

func (m *model) userByUsername(username string) *User {
	for _, x := range m.users {
		if x.Username == username {
			return x
		}
	}
	return nil
}

func (m *model) emailTaken(email string, except int64) bool {
	for _, o := range m.users {
		if o.ID != except && strings.EqualFold(o.Email, email) {
			return true
		}
	}
	return false
}

// core_user_update_users (public/user/externallib.php update_users): needs
// moodle/user:update. Each user is updated in a transaction of its own;
// whatever goes wrong with one (not found, deleted, the guest, an invalid
// or taken email address, a username Moodle refuses or that another
// account holds) rolls back that user's whole change, suspension included,
// and becomes a warning {item: user, itemid, warningcode, message}; the
// others are updated.
func updateUsers(s *Server, args map[string]any) (any, *wsError) {
	if err := s.require("moodle/user:update"); err != nil {
		return nil, err
	}
	warnings := []map[string]any{}
	warn := func(id int64, code, msg string) {
		warnings = append(warnings, map[string]any{"item": "user", "itemid": id, "warningcode": code, "message": msg})
	}
	for _, u := range items(args, "users") {
		id := u["id"].(int64)
		x := s.m.users[id]
		switch {
		case x == nil:
			warn(id, "invaliduserid", "Invalid user ID")
			continue
		case x.ID == adminID:
			warn(id, "usernotupdatedadmin", "Cannot update admin accounts")
			continue
		case x.Deleted:
			warn(id, "usernotupdateddeleted", "User is a deleted user")
			continue
		case x.ID == guestID:
			warn(id, "usernotupdatedguest", "Cannot update guest account")
			continue
		}
		if email, ok := str(u, "email"); ok && email != x.Email {
			if !emailRE.MatchString(email) {
				warn(id, "useremailinvalid", "Invalid email address")
				continue
			}
			if !s.AllowAccountsSameEmail && s.m.emailTaken(email, x.ID) {
				warn(id, "useremailduplicate", "Duplicate email address")
				continue
			}
		}
		if username, ok := str(u, "username"); ok {
			// user_update_user() (public/user/lib.php).
			if username != strings.ToLower(username) {
				warn(id, "usernamelowercase", "The username must be in lower case")
				continue
			}
			if o := s.m.userByUsername(username); o != nil && o.ID != x.ID {
				// The unique index on (mnethostid, username): a
				// dml_write_exception, caught and turned into a warning.
				warn(id, "dmlwriteexception", "Error writing to database")
				continue
			}
			x.Username = username
		}
		if v, ok := str(u, "email"); ok {
			x.Email = v
		}
		if v, ok := str(u, "firstname"); ok {
			x.FirstName = v
		}
		if v, ok := str(u, "lastname"); ok {
			x.LastName = v
		}
		if v, ok := str(u, "idnumber"); ok {
			x.IDNumber = v
		}
		if v, ok := str(u, "auth"); ok && v != "" {
			x.Auth = v
		}
		if v, ok := u["suspended"].(bool); ok {
			x.Suspended = v
		}
		s.logEvent(`\core\event\user_updated`, x.ID, nil)
	}
	return map[string]any{"warnings": warnings}, nil
}

// core_user_delete_users: needs moodle/user:delete; all or nothing.
// delete_user() (lib/moodlelib.php) triggers user_deleted with the
// account's username, email and idnumber in "other" (so they stay in the
// log store), then marks the row deleted, frees the username and email
// (username = email.timestamp, email = md5 of the old username), clears
// the idnumber, drops cohort memberships and enrolments, and keeps the
// names.
func deleteUsers(s *Server, args map[string]any) (any, *wsError) {
	if err := s.require("moodle/user:delete"); err != nil {
		return nil, err
	}
	for _, v := range args["userids"].([]any) {
		x := s.m.liveUser(v.(int64))
		if x == nil {
			return nil, missingRecord("user")
		}
		if x.ID == adminID {
			return nil, &wsError{Exception: exMoodle, ErrorCode: "useradminodelete", Message: "You can not delete an admin account"}
		}
		s.logEvent(`\core\event\user_deleted`, x.ID, map[string]string{
			"username": x.Username, "email": x.Email, "idnumber": x.IDNumber, "picture": "0", "mnethostid": "1"})
		del := usernameBadRE.ReplaceAllString(strings.ToLower(fmt.Sprintf("%s.%d", x.Email, s.now().Unix())), "")
		for s.m.userByUsername(del) != nil {
			del += "1"
		}
		old := x.Username
		x.Deleted, x.Username, x.Email, x.IDNumber = true, del, md5hex(old), ""
		for _, m := range s.m.members {
			delete(m, x.ID)
		}
		for _, e := range s.m.enrol {
			delete(e, x.ID)
		}
	}
	return nil, nil
}

// userDetails is user_get_user_details() (public/user/lib.php) for a
// caller with s.Caps at system level and the default site settings: nil
// without moodle/user:viewdetails; username, auth (and the other "extra"
// fields) only with moodle/user:viewalldetails; idnumber with
// viewalldetails or, for holders of moodle/site:viewuseridentity, when it
// is in $CFG->showuseridentity; email only in the latter way (the default
// maildisplay shows it to course members only); an empty idnumber left
// out. Names and suspended are shown (default fullnamedisplay, no
// hiddenuserfields).
func (s *Server) userDetails(u User) map[string]any {
	if !s.Caps["moodle/user:viewdetails"] {
		return nil
	}
	all := s.Caps["moodle/user:viewalldetails"]
	identity := map[string]bool{}
	if s.Caps["moodle/site:viewuseridentity"] {
		for _, f := range s.ShowUserIdentity {
			identity[f] = true
		}
	}
	d := map[string]any{
		"id": u.ID, "fullname": strings.TrimSpace(u.FirstName + " " + u.LastName), "firstname": u.FirstName, "lastname": u.LastName,
		"suspended": u.Suspended, "firstaccess": 0, "lastaccess": 0, "description": "", "descriptionformat": 1,
		"profileimageurlsmall": "https://moodle.invalid/theme/image.php/boost/core/1/u/f2",
		"profileimageurl":      "https://moodle.invalid/theme/image.php/boost/core/1/u/f1",
	}
	if all {
		d["username"] = u.Username
		d["auth"], d["confirmed"], d["lang"], d["theme"], d["mailformat"], d["trackforums"] = u.Auth, true, "en", "", 1, 0
	}
	if u.IDNumber != "" && (all || identity["idnumber"]) {
		d["idnumber"] = u.IDNumber
	}
	if identity["email"] {
		d["email"] = u.Email
	}
	return d
}

// core_user_get_users_by_field: deleted users are left out, and so is a
// user whose searched field the caller cannot see ("Return the user only
// if the searched field is returned"): without viewalldetails a search by
// idnumber or username finds nobody.
func getUsersByField(s *Server, args map[string]any) (any, *wsError) {
	field := args["field"].(string)
	switch field {
	case "id", "idnumber", "username", "email":
	default:
		return nil, &wsError{Exception: exCoding, ErrorCode: "codingerror",
			Message:   "Coding error detected, it must be fixed by a programmer: invalid field parameter",
			DebugInfo: "The search field '" + field + "' is not supported, look at the web service documentation"}
	}
	want := map[string]bool{}
	for _, v := range args["values"].([]any) {
		want[v.(string)] = true
	}
	out := []map[string]any{}
	for _, u := range s.m.sortedUsers(allIDs(s.m)) {
		if u.Deleted {
			continue
		}
		var got string
		switch field {
		case "id":
			got = strconv.FormatInt(u.ID, 10)
		case "idnumber":
			got = u.IDNumber
		case "username":
			got = u.Username
		case "email":
			got = u.Email
		}
		if !want[got] {
			continue
		}
		d := s.userDetails(u)
		if d == nil || d[field] == nil || d[field] == "" {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// core_user_get_users (get_users): criteria ANDed (id, idnumber, username,
// auth exact; email, firstname, lastname LIKE); deleted users left out;
// unknown keys are warnings; a user is returned only if every searched
// field is visible to the caller (so searching by auth needs
// moodle/user:viewalldetails).
func getUsers(s *Server, args map[string]any) (any, *wsError) {
	crit := map[string]string{}
	warnings := []map[string]any{}
	for _, c := range items(args, "criteria") {
		k, v := c["key"].(string), c["value"].(string)
		if _, dup := crit[k]; dup {
			return nil, &wsError{Exception: exMoodle, ErrorCode: "keyalreadyset", Message: "error/keyalreadyset"}
		}
		switch k {
		case "id", "idnumber", "username", "auth", "email", "firstname", "lastname":
			crit[k] = v
		default:
			warnings = append(warnings, map[string]any{"item": k, "warningcode": "invalidfieldparameter",
				"message": "The search key '" + k + "' is not supported, look at the web service documentation"})
		}
	}
	users := []map[string]any{}
	for _, u := range s.m.sortedUsers(allIDs(s.m)) {
		if u.Deleted {
			continue
		}
		fields := map[string]string{"id": strconv.FormatInt(u.ID, 10), "idnumber": u.IDNumber, "username": u.Username,
			"auth": u.Auth, "email": u.Email, "firstname": u.FirstName, "lastname": u.LastName}
		match := true
		for k, v := range crit {
			switch k {
			case "email", "firstname", "lastname":
				match = match && likeMatch(strings.ToLower(v), strings.ToLower(fields[k]))
			default:
				match = match && fields[k] == v
			}
		}
		if !match {
			continue
		}
		d := s.userDetails(u)
		if d == nil {
			continue
		}
		visible := true
		for k := range crit {
			if d[k] == nil || d[k] == "" {
				visible = false
			}
		}
		if visible {
			users = append(users, d)
		}
	}
	return map[string]any{"users": users, "warnings": warnings}, nil
}

// likeMatch is SQL LIKE with % only.
func likeMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "%")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return true
}

// core_webservice_get_site_info (public/webservice/classes/external/
// get_site_info.php in 5.x): the site, the token's user and the functions
// of the token's service.
func getSiteInfo(s *Server, args map[string]any) (any, *wsError) {
	fns := []map[string]any{}
	for _, name := range Functions() {
		if !s.disabled[name] {
			fns = append(fns, map[string]any{"name": name, "version": "2025100600"})
		}
	}
	return map[string]any{"sitename": "Moodle stand-in", "username": "rollcall-sync", "firstname": "Rollcall", "lastname": "Sync",
		"fullname": "Rollcall Sync", "lang": "en", "userid": adminID + 1, "siteurl": "https://moodle.invalid",
		"userpictureurl": "", "functions": fns, "downloadfiles": 0, "uploadfiles": 0,
		"release": "5.1+ (Build: 20251017)", "version": "2025100600", "mobilecssurl": "", "usercanmanageownfiles": false,
		"userquota": 0, "usermaxuploadfilesize": 0, "userhomepage": 1, "siteid": 1, "sitecalendartype": "gregorian",
		"usercalendartype": "gregorian", "userissiteadmin": false, "theme": "boost", "limitconcurrentlogins": 0}, nil
}

func allIDs(m *model) map[int64]bool {
	ids := map[int64]bool{}
	for id := range m.users {
		ids[id] = true
	}
	return ids
}

func cohortJSON(c *Cohort) map[string]any {
	return map[string]any{"id": c.ID, "name": c.Name, "idnumber": c.IDNumber, "description": c.Description,
		"descriptionformat": 1, "visible": c.Visible, "theme": "", "customfields": []any{}}
}

// core_cohort_get_cohorts: no ids → every cohort; unknown ids are ignored.
// (public/cohort/externallib.php): moodle/cohort:view or manage; names go
// through \core_external\util::format_string (see formatString).
func getCohorts(s *Server, args map[string]any) (any, *wsError) {
	if !s.Caps["moodle/cohort:view"] && !s.Caps["moodle/cohort:manage"] {
		return nil, noPermission("moodle/cohort:view")
	}
	ids := args["cohortids"].([]any)
	out := []map[string]any{}
	for _, c := range s.sortedCohorts() {
		if len(ids) > 0 {
			found := false
			for _, id := range ids {
				found = found || id.(int64) == c.ID
			}
			if !found {
				continue
			}
		}
		j := cohortJSON(c)
		j["name"] = s.formatString(c.Name)
		out = append(out, j)
	}
	return out, nil
}

// formatString is \core_external\util::format_string with a site's
// defaults (formatstringstriptags on, filters off for web services):
// format_string() escapes an ampersand that starts no entity and strips
// tags, turning < and > into entities; a call with moodlewssettingraw
// gets the string as stored.
func (s *Server) formatString(v string) string {
	if s.raw {
		return v
	}
	v = escapeAmpersands(v)
	return strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(stripTagsRE.ReplaceAllString(v, ""))
}

var stripTagsRE = regexp.MustCompile(`<[^>]*>`)

// escapeAmpersands is replace_ampersands_not_followed_by_entity
// (lib/weblib.php): an & not followed by 1 to 8 of [a-zA-Z0-9#] and ;
// becomes &amp;.
func escapeAmpersands(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '&' {
			b.WriteByte(v[i])
			continue
		}
		j := i + 1
		for j < len(v) && j-i <= 8 && (v[j] == '#' || v[j] >= 'a' && v[j] <= 'z' || v[j] >= 'A' && v[j] <= 'Z' || v[j] >= '0' && v[j] <= '9') {
			j++
		}
		if j > i+1 && j-i <= 9 && j < len(v) && v[j] == ';' {
			b.WriteByte('&')
		} else {
			b.WriteString("&amp;")
		}
	}
	return b.String()
}

func (s *Server) sortedCohorts() []*Cohort {
	var cs []*Cohort
	for _, c := range s.m.cohorts {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].ID < cs[j].ID })
	return cs
}

// core_cohort_create_cohorts: system context only (no course categories
// here); the idnumber must be new.
func createCohorts(s *Server, args map[string]any) (any, *wsError) {
	if err := s.require("moodle/cohort:manage"); err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, c := range items(args, "cohorts") {
		ct := c["categorytype"].(map[string]any)
		switch t := ct["type"].(string); t {
		case "system":
		case "id", "idnumber":
			return nil, invalidParam("category not exists: category " + t + " = " + ct["value"].(string))
		default:
			return nil, invalidParam("category type must be id, idnumber or system:" + t)
		}
		idnumber, _ := str(c, "idnumber")
		if s.m.cohortByIDNumber(idnumber) != nil {
			return nil, invalidParam("record already exists: idnumber=" + idnumber)
		}
		visible := true
		if v, ok := c["visible"].(bool); ok {
			visible = v
		}
		name, _ := str(c, "name")
		descr, _ := str(c, "description")
		nc := &Cohort{ID: s.m.id(), Name: name, IDNumber: idnumber, Description: descr, Visible: visible}
		s.m.cohorts[nc.ID] = nc
		j := cohortJSON(nc)
		delete(j, "customfields")
		out = append(out, j)
	}
	return out, nil
}

// core_cohort_add_cohort_members answers problems with warnings, not
// errors: 1 bad type, 2 no such cohort or user, 3 already a member.
func addCohortMembers(s *Server, args map[string]any) (any, *wsError) {
	if err := s.require("moodle/cohort:assign"); err != nil {
		return nil, err
	}
	warnings := []map[string]any{}
	warn := func(code, msg string) {
		warnings = append(warnings, map[string]any{"warningcode": code, "message": msg})
	}
	for _, m := range items(args, "members") {
		ct, ut := m["cohorttype"].(map[string]any), m["usertype"].(map[string]any)
		ctype, cval := ct["type"].(string), ct["value"].(string)
		utype, uval := ut["type"].(string), ut["value"].(string)
		if ctype != "id" && ctype != "idnumber" {
			warn("1", "invalid parameter: cohortype="+ctype)
			continue
		}
		if utype != "id" && utype != "username" {
			warn("1", "invalid parameter: usertype="+utype)
			continue
		}
		var cohort *Cohort
		if ctype == "idnumber" {
			cohort = s.m.cohortByIDNumber(cval)
		} else if id, err := strconv.ParseInt(cval, 10, 64); err == nil {
			cohort = s.m.cohorts[id]
		}
		if cohort == nil {
			warn("2", "cohort "+ctype+"="+cval+" not exists")
			continue
		}
		var user *User
		for _, u := range s.m.users {
			if !u.Deleted && ((utype == "id" && strconv.FormatInt(u.ID, 10) == uval) || (utype == "username" && u.Username == uval)) {
				user = u
			}
		}
		if user == nil {
			warn("2", "user "+utype+"="+uval+" not exists")
			continue
		}
		if s.m.members[cohort.ID][user.ID] {
			warn("3", "record already exists: cohort("+ctype+"="+cval+" "+utype+"="+uval+")")
			continue
		}
		if s.m.members[cohort.ID] == nil {
			s.m.members[cohort.ID] = map[int64]bool{}
		}
		s.m.members[cohort.ID][user.ID] = true
	}
	return map[string]any{"warnings": warnings}, nil
}

// core_cohort_delete_cohort_members: cohort and user must exist; removing a
// non-member does nothing.
func deleteCohortMembers(s *Server, args map[string]any) (any, *wsError) {
	if err := s.require("moodle/cohort:assign"); err != nil {
		return nil, err
	}
	for _, m := range items(args, "members") {
		cid, uid := m["cohortid"].(int64), m["userid"].(int64)
		if s.m.cohorts[cid] == nil {
			return nil, missingRecord("cohort")
		}
		if s.m.liveUser(uid) == nil {
			return nil, missingRecord("user")
		}
		delete(s.m.members[cid], uid)
	}
	return nil, nil
}

// courseJSON is get_course_public_information plus the fields for those
// who can access the course; idnumber (with legacyfiles, calendartype,
// timecreated, timemodified, requested, cacherev) only for holders of
// moodle/course:update (public/course/externallib.php get_courses_by_field,
// "Information for managers only").
func (s *Server) courseJSON(c *Course) map[string]any {
	methods := []string{}
	if c.ManualEnrol {
		methods = append(methods, "manual")
	}
	out := map[string]any{"id": c.ID, "fullname": c.FullName, "displayname": c.FullName, "shortname": c.ShortName,
		"categoryid": 1, "categoryname": "Category 1", "sortorder": 10001, "summary": "", "summaryformat": 1,
		"summaryfiles": []any{}, "overviewfiles": []any{}, "contacts": []any{}, "enrollmentmethods": methods,
		"format": "topics", "showgrades": 1, "newsitems": 5, "startdate": 0, "enddate": 0,
		"maxbytes": 0, "showreports": 0, "visible": boolInt(!c.Hidden), "groupmode": 0, "groupmodeforce": 0, "defaultgroupingid": 0,
		"enablecompletion": 1, "completionnotify": 0, "lang": "", "theme": "", "marker": 0, "filters": []any{},
		"courseformatoptions": []any{}}
	if s.Caps["moodle/course:update"] {
		for k, v := range map[string]any{"idnumber": c.IDNumber, "legacyfiles": 0, "calendartype": "", "timecreated": 0,
			"timemodified": 0, "requested": 0, "cacherev": 0} {
			out[k] = v
		}
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// core_course_get_courses_by_field: no field → every course; the search is
// exact ($DB->get_records('course', [field => value])); a hidden course is
// left out without moodle/course:viewhiddencourses (or course:update).
func getCoursesByField(s *Server, args map[string]any) (any, *wsError) {
	field, val := args["field"].(string), args["value"].(string)
	switch field {
	case "", "id", "ids", "shortname", "idnumber", "category", "sectionid":
	default:
		return nil, invalidParam("Invalid field name")
	}
	courses := []map[string]any{}
	var ids []int64
	for id := range s.m.courses {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		c := s.m.courses[id]
		match := false
		switch field {
		case "":
			match = true
		case "id":
			match = strconv.FormatInt(c.ID, 10) == val
		case "ids":
			for _, x := range strings.Split(val, ",") {
				match = match || strings.TrimSpace(x) == strconv.FormatInt(c.ID, 10)
			}
		case "shortname":
			match = c.ShortName == val
		case "idnumber":
			match = c.IDNumber == val
		case "category":
			match = val == "1"
		}
		if c.Hidden && !s.Caps["moodle/course:viewhiddencourses"] && !s.Caps["moodle/course:update"] {
			continue
		}
		if match {
			courses = append(courses, s.courseJSON(c))
		}
	}
	return map[string]any{"courses": courses, "warnings": []any{}}, nil
}

// enrol_manual_enrol_users (public/enrol/manual/externallib.php): all or
// nothing; per enrolment validate_context() on the course (see
// requireCourseLogin), enrol/manual:enrol, an assignable role, an enabled
// manual instance. Enrolling again only updates the enrolment; the role is
// assigned in addition to any the user has (enrol_user, role_assign), but
// the stand-in keeps one role per enrolment.
func enrolUsers(s *Server, args map[string]any) (any, *wsError) {
	for _, e := range items(args, "enrolments") {
		rid, uid, cid := e["roleid"].(int64), e["userid"].(int64), e["courseid"].(int64)
		c := s.m.courses[cid]
		if c == nil {
			return nil, invalidParam("Context does not exist")
		}
		if err := s.requireCourseLogin(c); err != nil {
			return nil, err
		}
		if err := s.require("enrol/manual:enrol"); err != nil {
			return nil, err
		}
		// get_assignable_roles(): needs moodle/role:assign and the role
		// in the "allow role assignments" table.
		if !s.Caps["moodle/role:assign"] || !s.Assignable[rid] {
			return nil, &wsError{Exception: exMoodle, ErrorCode: "wsusercannotassign",
				Message: fmt.Sprintf("You don't have the permission to assign this role (%d) to this user (%d) in this course(%d).", rid, uid, cid)}
		}
		if !c.ManualEnrol {
			return nil, &wsError{Exception: exMoodle, ErrorCode: "wsnoinstance",
				Message: fmt.Sprintf("Manual enrolment plugin instance doesn't exist or is disabled for the course (id = %d)", cid)}
		}
		if s.m.liveUser(uid) == nil {
			return nil, &wsError{Exception: exCoding, ErrorCode: "codingerror",
				Message: "Coding error detected, it must be fixed by a programmer: User ID does not exist or is deleted!"}
		}
		if s.m.enrol[cid] == nil {
			s.m.enrol[cid] = map[int64]int64{}
		}
		s.m.enrol[cid][uid] = rid
	}
	return nil, nil
}

// enrol_manual_unenrol_users: validate_context() on the course as for
// enrol; unenrolling someone not enrolled does nothing.
func unenrolUsers(s *Server, args map[string]any) (any, *wsError) {
	for _, e := range items(args, "enrolments") {
		uid, cid := e["userid"].(int64), e["courseid"].(int64)
		c := s.m.courses[cid]
		if c == nil {
			return nil, missingRecord("course")
		}
		if err := s.requireCourseLogin(c); err != nil {
			return nil, err
		}
		if err := s.require("enrol/manual:unenrol"); err != nil {
			return nil, err
		}
		if s.m.users[uid] == nil {
			return nil, invalidParam(fmt.Sprintf("User id not exist: %d", uid))
		}
		delete(s.m.enrol[cid], uid)
	}
	return nil, nil
}

// core_cohort_update_cohorts (public/cohort/externallib.php update_cohorts):
// all or nothing (one delegated transaction); a blank name is
// invalid_parameter_exception "Invalid cohort name"; the cohort must exist
// (MUST_EXIST: invalidrecord); moodle/cohort:manage in the cohort's context;
// categorytype as for create (system only here); name, idnumber and the
// optional fields that are sent are written (cohort_update_cohort), so a
// description left out stays as it was.
func updateCohorts(s *Server, args map[string]any) (any, *wsError) {
	for _, c := range items(args, "cohorts") {
		name, _ := str(c, "name")
		if strings.TrimSpace(name) == "" {
			return nil, invalidParam("Invalid cohort name")
		}
		old := s.m.cohorts[c["id"].(int64)]
		if old == nil {
			return nil, missingRecord("cohort")
		}
		if err := s.require("moodle/cohort:manage"); err != nil {
			return nil, err
		}
		ct := c["categorytype"].(map[string]any)
		switch t := ct["type"].(string); t {
		case "system":
		case "id", "idnumber":
			return nil, invalidParam("category not exists: category=" + ct["value"].(string))
		default:
			return nil, invalidParam("category type must be id, idnumber or system:" + t)
		}
		old.Name = name
		old.IDNumber, _ = str(c, "idnumber")
		if d, ok := str(c, "description"); ok {
			old.Description = d
		}
		if v, ok := c["visible"].(bool); ok {
			old.Visible = v
		}
	}
	return nil, nil
}

// core_user_get_course_user_profiles (public/user/externallib.php
// get_course_user_profiles): for each {userid, courseid}, one per user (a
// user's last pair wins); deleted users are left out; validate_context() on
// the course (see requireCourseLogin); user_get_user_details($user, $course)
// (nil without moodle/user:viewdetails: left out) with, in a course, the
// user's roles there (get_user_roles($context, $userid, false)): roleid,
// name, shortname, sortorder. The one web-service function of core that
// tells a role's shortname from its ID, and only for roles someone holds.
func getCourseUserProfiles(s *Server, args map[string]any) (any, *wsError) {
	courseOf := map[int64]int64{}
	var order []int64
	for _, p := range items(args, "userlist") {
		uid := p["userid"].(int64)
		if _, seen := courseOf[uid]; !seen {
			order = append(order, uid)
		}
		courseOf[uid] = p["courseid"].(int64)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	out := []map[string]any{}
	for _, uid := range order {
		u := s.m.users[uid]
		if u == nil || u.Deleted {
			continue
		}
		c := s.m.courses[courseOf[uid]]
		if c == nil {
			return nil, invalidParam("Context does not exist")
		}
		if err := s.requireCourseLogin(c); err != nil {
			return nil, err
		}
		d := s.userDetails(*u)
		if d == nil {
			continue
		}
		roles := []map[string]any{}
		if rid, ok := s.m.enrol[c.ID][uid]; ok {
			r := s.Roles[rid]
			roles = append(roles, map[string]any{"roleid": rid, "name": r.Name, "shortname": r.ShortName, "sortorder": r.SortOrder})
		}
		d["roles"] = roles
		out = append(out, d)
	}
	return out, nil
}
