package moodlefake

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

type function struct {
	params *desc
	run    func(s *Server, args map[string]any) (any, *wsError)
}

// Auth plugins installed; the internal ones need a password.
var authPlugins = map[string]bool{"manual": true, "nologin": true, "email": true, "oauth2": true}
var internalAuth = map[string]bool{"manual": true, "email": true}

// Roles the token's (admin) user may assign on a course.
var assignableRoles = map[int64]bool{1: true, 3: true, 4: true, 5: true}

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
		"core_user_create_users":       {paramsOf(f("users", multiple(userCreate))), createUsers},
		"core_user_update_users":       {paramsOf(f("users", multiple(userUpdate))), updateUsers},
		"core_user_delete_users":       {paramsOf(f("userids", multiple(value(pInt)))), deleteUsers},
		"core_user_get_users_by_field": {paramsOf(f("field", value(pAlpha)), f("values", multiple(value(pRaw)))), getUsersByField},
		"core_cohort_get_cohorts":      {paramsOf(f("cohortids", dflt(multiple(value(pInt)), []any{}))), getCohorts},
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

// core_user_create_users (user/externallib.php create_users).
func createUsers(s *Server, args map[string]any) (any, *wsError) {
	var out []map[string]any
	for _, u := range items(args, "users") {
		username, _ := str(u, "username")
		for _, k := range []string{"username", "firstname", "lastname"} {
			if v, _ := str(u, k); strings.TrimSpace(v) == "" {
				return nil, invalidParam("The field " + k + " cannot be blank")
			}
		}
		for _, x := range s.m.users {
			if x.Username == username {
				return nil, invalidParam("Username already exists: " + username)
			}
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
		if !s.AllowAccountsSameEmail {
			for _, x := range s.m.users {
				if strings.EqualFold(x.Email, email) {
					return nil, invalidParam("Email address already exists: " + email)
				}
			}
		}
		first, _ := str(u, "firstname")
		last, _ := str(u, "lastname")
		idnumber, _ := str(u, "idnumber")
		nu := &User{ID: s.m.id(), Username: username, Email: email, FirstName: first, LastName: last, IDNumber: idnumber, Auth: auth}
		s.m.users[nu.ID] = nu
		out = append(out, map[string]any{"id": nu.ID, "username": nu.Username})
	}
	return out, nil
}

// core_user_update_users (update_users): users that do not exist, are
// deleted or are the guest are skipped, and so are changes to an invalid
// or taken email address; a taken username fails in the database.
func updateUsers(s *Server, args map[string]any) (any, *wsError) {
	for _, u := range items(args, "users") {
		x := s.m.liveUser(u["id"].(int64))
		if x == nil || x.ID == guestID {
			continue
		}
		if email, ok := str(u, "email"); ok && email != x.Email {
			if !emailRE.MatchString(email) {
				continue
			}
			if !s.AllowAccountsSameEmail {
				taken := false
				for _, o := range s.m.users {
					if o.ID != x.ID && strings.EqualFold(o.Email, email) {
						taken = true
					}
				}
				if taken {
					continue
				}
			}
		}
		if username, ok := str(u, "username"); ok {
			for _, o := range s.m.users {
				if o.ID != x.ID && o.Username == username {
					return nil, &wsError{Exception: "dml_write_exception", ErrorCode: "dmlwriteexception", Message: "Error writing to database",
						DebugInfo: "Duplicate entry '" + username + "-1' for key 'mdl_user_mneuse_uix'"}
				}
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
			if v && x.ID == adminID {
				return nil, &wsError{Exception: "moodle_exception", ErrorCode: "useradminodelete", Message: "You can not suspend an admin account"}
			}
			x.Suspended = v
		}
	}
	return nil, nil
}

// core_user_delete_users: user_delete_user() marks the row deleted, frees
// the username and email (username = email.timestamp, email = md5 of the
// old username), clears the idnumber, drops cohort memberships and
// enrolments, and keeps the names.
func deleteUsers(s *Server, args map[string]any) (any, *wsError) {
	for _, v := range args["userids"].([]any) {
		x := s.m.liveUser(v.(int64))
		if x == nil {
			return nil, missingRecord("user")
		}
		if x.ID == adminID {
			return nil, &wsError{Exception: "moodle_exception", ErrorCode: "useradminodelete", Message: "You can not delete an admin account"}
		}
		del := usernameBadRE.ReplaceAllString(strings.ToLower(fmt.Sprintf("%s.%d", x.Email, s.now().Unix())), "")
		for taken := true; taken; {
			taken = false
			for _, o := range s.m.users {
				if o.Username == del {
					taken = true
					del += "1"
				}
			}
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

// core_user_get_users_by_field: deleted users are left out.
func getUsersByField(s *Server, args map[string]any) (any, *wsError) {
	field := args["field"].(string)
	switch field {
	case "id", "idnumber", "username", "email":
	default:
		return nil, invalidParam("Invalid field: " + field)
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
		out = append(out, map[string]any{
			"id": u.ID, "username": u.Username, "firstname": u.FirstName, "lastname": u.LastName,
			"fullname": strings.TrimSpace(u.FirstName + " " + u.LastName), "email": u.Email, "idnumber": u.IDNumber,
			"auth": u.Auth, "suspended": u.Suspended, "confirmed": true, "lang": "en", "theme": "", "timezone": "99",
			"mailformat": 1, "department": "", "institution": "", "firstaccess": 0, "lastaccess": 0,
			"description": "", "descriptionformat": 1,
			"profileimageurlsmall": "https://moodle.invalid/theme/image.php/boost/core/1/u/f2",
			"profileimageurl":      "https://moodle.invalid/theme/image.php/boost/core/1/u/f1",
		})
	}
	return out, nil
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
func getCohorts(s *Server, args map[string]any) (any, *wsError) {
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
		out = append(out, cohortJSON(c))
	}
	return out, nil
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

func courseJSON(c *Course) map[string]any {
	methods := []string{}
	if c.ManualEnrol {
		methods = append(methods, "manual")
	}
	return map[string]any{"id": c.ID, "fullname": c.FullName, "displayname": c.FullName, "shortname": c.ShortName,
		"categoryid": 1, "categoryname": "Category 1", "sortorder": 10001, "summary": "", "summaryformat": 1,
		"summaryfiles": []any{}, "overviewfiles": []any{}, "contacts": []any{}, "enrollmentmethods": methods,
		"idnumber": c.IDNumber, "format": "topics", "showgrades": 1, "newsitems": 5, "startdate": 0, "enddate": 0,
		"maxbytes": 0, "showreports": 0, "visible": 1, "groupmode": 0, "groupmodeforce": 0, "defaultgroupingid": 0,
		"enablecompletion": 1, "completionnotify": 0, "lang": "", "theme": "", "marker": 0, "legacyfiles": 0,
		"calendartype": "", "timecreated": 0, "timemodified": 0, "requested": 0, "cacherev": 0, "filters": []any{},
		"courseformatoptions": []any{}}
}

// core_course_get_courses_by_field: no field → every course.
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
		if match {
			courses = append(courses, courseJSON(c))
		}
	}
	return map[string]any{"courses": courses, "warnings": []any{}}, nil
}

// enrol_manual_enrol_users: all or nothing; enrolling again only updates.
func enrolUsers(s *Server, args map[string]any) (any, *wsError) {
	for _, e := range items(args, "enrolments") {
		rid, uid, cid := e["roleid"].(int64), e["userid"].(int64), e["courseid"].(int64)
		c := s.m.courses[cid]
		if c == nil {
			return nil, invalidParam("Context does not exist")
		}
		if !assignableRoles[rid] {
			return nil, &wsError{Exception: "moodle_exception", ErrorCode: "wsusercannotassign",
				Message: fmt.Sprintf("You don't have the permission to assign this role (%d) to this user (%d) in this course(%d).", rid, uid, cid)}
		}
		if !c.ManualEnrol {
			return nil, &wsError{Exception: "moodle_exception", ErrorCode: "wsnoinstance",
				Message: fmt.Sprintf("Manual enrolment plugin instance doesn't exist or is disabled for the course (id = %d)", cid)}
		}
		if s.m.liveUser(uid) == nil {
			return nil, &wsError{Exception: "coding_exception", ErrorCode: "codingerror",
				Message: "Coding error detected, it must be fixed by a programmer: User ID does not exist or is deleted!"}
		}
		if s.m.enrol[cid] == nil {
			s.m.enrol[cid] = map[int64]int64{}
		}
		s.m.enrol[cid][uid] = rid
	}
	return nil, nil
}

// enrol_manual_unenrol_users: unenrolling someone not enrolled does nothing.
func unenrolUsers(s *Server, args map[string]any) (any, *wsError) {
	for _, e := range items(args, "enrolments") {
		uid, cid := e["userid"].(int64), e["courseid"].(int64)
		if s.m.courses[cid] == nil {
			return nil, missingRecord("course")
		}
		if s.m.users[uid] == nil {
			return nil, invalidParam(fmt.Sprintf("User id not exist: %d", uid))
		}
		delete(s.m.enrol[cid], uid)
	}
	return nil, nil
}
