package moodlesync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// desired is one learner as Moodle should have them.
type desired struct {
	email         string
	given, family *string
	allowed       bool
	groupID       string
	groupName     string
	courses       []string // lmsCourseIds = Moodle course idnumbers
	// profile: email and names are known. An LMS key may read them as
	// null (CTL-10); then the account's profile is left as it is.
	profile bool
}

// DefaultAuth is the default auth plugin of the accounts the agent creates
// and manages (Config.Auth). Learners sign in to Moodle through the same
// identity provider they use for Rollcall (Moodle's OAuth 2 plugin,
// matched by email), so Moodle holds no password for them and none is sent;
// an internal plugin such as "manual" would need one.
const DefaultAuth = "oauth2"

// DefaultStudentRole is the shortname of the role learners get
// (Config.StudentRole), and DefaultStudentRoleID its ID on a standard
// install (lib/db/install.php creates student fifth).
const (
	DefaultStudentRole   = "student"
	DefaultStudentRoleID = 5
)

// placeholderName fills a missing given or family name: Moodle refuses
// blank first and last names.
const placeholderName = "-"

// erasedPrefix marks an account whose personal data the agent has
// overwritten before deleting it: its username and idnumber are
// erasedPrefix + the Moodle user ID. A reconcile deletes any such account
// left over (a deletion that failed after the overwrite).
const erasedPrefix = "rollcall-erased-"

func (d desired) username() string { return strings.ToLower(strings.TrimSpace(d.email)) }

func nameOr(p *string) string {
	if p == nil || strings.TrimSpace(*p) == "" {
		return placeholderName
	}
	return strings.TrimSpace(*p)
}

type itemKind int

const (
	kindErase   itemKind = iota // delete the account, after overwriting it
	kindSuspend                 // end access; keep the account
	kindUpsert                  // access allowed: create or update, cohort, courses
)

// item is one learner to apply: the learner's current data at version.
type item struct {
	id      string
	version int64
	kind    itemKind
	d       desired
	// force: apply even if the state holds this version (reconcile,
	// parked learners); also repairs cohorts and courses the state does
	// not know of.
	force bool
}

// itemFromLearner turns the learner's current data into an item. l nil: not
// readable (erased, or not this key's to read): access ends, the account
// is kept (deletion waits for LEARNER_ERASED).
func itemFromLearner(id string, version int64, l *learner, erasedEvent bool) item {
	it := item{id: id, version: version}
	switch {
	case erasedEvent || l != nil && l.Status == "ERASED":
		it.kind = kindErase
	case l == nil || l.AccessAllowed == nil || !*l.AccessAllowed:
		it.kind = kindSuspend
	default:
		it.kind = kindUpsert
		it.d.allowed = true
		if l.Email != nil {
			it.d.email, it.d.profile = *l.Email, true
		}
		it.d.given, it.d.family = l.GivenName, l.FamilyName
		if l.AccessGroup != nil {
			it.d.groupID, it.d.groupName = l.AccessGroup.ID, l.AccessGroup.Name
		}
		for _, c := range l.Courses {
			it.d.courses = appendUnique(it.d.courses, c.LMSCourseID)
		}
	}
	if l != nil {
		it.version = max(it.version, l.Version)
	}
	return it
}

// WarningError is a change Moodle answered with a warning instead of
// making it.
type WarningError struct {
	Function string
	Code     string
	Message  string
}

func (e *WarningError) Error() string {
	return fmt.Sprintf("moodle %s: warning %s: %s", e.Function, e.Code, redact(e.Message))
}

// MissingCourseError: Rollcall names a course that Moodle does not have
// (or that the web-service user cannot see).
type MissingCourseError struct{ LMSCourseID string }

func (e *MissingCourseError) Error() string {
	return fmt.Sprintf("moodle has no course with idnumber %q (the lmsCourseId in Rollcall) that the web-service user can see", e.LMSCourseID)
}

// batchResult: per learner, nil (applied) or why not.
type batchResult map[string]error

func (r batchResult) fail(id string, err error) {
	if r[id] == nil {
		r[id] = err
	}
}

// applyBatch applies items (distinct learners) with as few calls as
// Moodle's array-taking functions allow: one lookup, one update, one
// create, one cohort and one enrolment call per kind of change. Removals
// (erasures, suspensions) go first. A learner that cannot be applied gets
// its error in the result, and the others go on; the returned error is for
// failures that concern every learner (configuration, Moodle unreachable).
func (a *Agent) applyBatch(ctx context.Context, items []item) (batchResult, error) {
	res := batchResult{}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.id
	}
	found, err := a.moodle.usersByIDNumber(ctx, ids)
	if err != nil {
		return nil, err
	}
	account := map[string]*moodleUser{}
	for _, it := range items {
		switch us := found[it.id]; len(us) {
		case 0:
		case 1:
			account[it.id] = &us[0]
			a.st.learner(it.id).MoodleID = us[0].ID
		default:
			res.fail(it.id, fmt.Errorf("moodle has %d accounts with idnumber %s: merge them by hand", len(us), it.id))
		}
	}
	var erase, suspend, upsert []item
	for _, it := range items {
		if res[it.id] != nil {
			continue
		}
		switch it.kind {
		case kindErase:
			erase = append(erase, it)
		case kindSuspend:
			suspend = append(suspend, it)
		default:
			upsert = append(upsert, it)
		}
	}
	if err := a.eraseAll(ctx, erase, account, res); err != nil {
		return nil, err
	}
	if err := a.suspendAll(ctx, suspend, account, res); err != nil {
		return nil, err
	}
	if err := a.upsertAll(ctx, upsert, account, res); err != nil {
		return nil, err
	}
	return res, nil
}

// eraseAll deletes the accounts of erased learners. Moodle's delete_user()
// (lib/moodlelib.php) logs a user_deleted event whose "other" holds the
// account's username, email and idnumber, and keeps the names and a hash
// of the username in the user row; so first the username, email, names and
// idnumber are overwritten with opaque values (invariant 2: nothing of the
// person stays in Moodle, its log included), then the account is deleted.
func (a *Agent) eraseAll(ctx context.Context, items []item, account map[string]*moodleUser, res batchResult) error {
	var scrubs []map[string]any
	byMoodle := map[int64]string{}
	for _, it := range items {
		u := account[it.id]
		if u == nil {
			// Overwritten by an earlier try whose delete failed?
			if ls := a.st.Learners[it.id]; ls != nil && ls.MoodleID != 0 {
				us, err := a.moodle.usersByField(ctx, "id", []string{strconv.FormatInt(ls.MoodleID, 10)})
				if err != nil {
					return err
				}
				if len(us) == 1 && us[0].IDNumber == erasedPrefix+strconv.FormatInt(ls.MoodleID, 10) {
					u = &us[0]
				}
			}
			if u == nil {
				continue
			}
		}
		byMoodle[u.ID] = it.id
		opaque := erasedPrefix + strconv.FormatInt(u.ID, 10)
		scrubs = append(scrubs, map[string]any{"id": u.ID, "username": opaque, "idnumber": opaque,
			"email": opaque + "@rollcall.invalid", "firstname": "Erased", "lastname": "learner", "suspended": true})
	}
	warnings, err := a.moodle.updateUsers(ctx, scrubs)
	if err != nil {
		return err
	}
	var del []int64
	for _, s := range scrubs {
		id := s["id"].(int64)
		if w, ok := warnings[id]; ok {
			res.fail(byMoodle[id], &WarningError{Function: "core_user_update_users", Code: w.WarningCode, Message: w.Message})
			continue
		}
		del = append(del, id)
	}
	err = a.moodle.deleteUsers(ctx, del)
	if err != nil && !Fatal(err) && !transient(err) {
		// All or nothing. Which are gone already (a lost answer to an
		// earlier try), and which does Moodle refuse?
		err = nil
		for _, id := range del {
			if derr := a.deleteOne(ctx, id); derr != nil {
				if Fatal(derr) || transient(derr) {
					return derr
				}
				res.fail(byMoodle[id], derr)
			}
		}
	}
	if err != nil {
		return err
	}
	for _, id := range del {
		if res[byMoodle[id]] == nil {
			a.log.InfoContext(ctx, "moodle account overwritten and deleted (learner erased)", "learner", byMoodle[id], "moodle_user", id)
		}
	}
	return nil
}

// deleteOne deletes one account unless it is gone already (a lost answer
// to an earlier try: Moodle then says "invalidrecord").
func (a *Agent) deleteOne(ctx context.Context, id int64) error {
	us, err := a.moodle.usersByField(ctx, "id", []string{strconv.FormatInt(id, 10)})
	if err != nil {
		return err
	}
	if len(us) == 0 {
		return nil
	}
	return a.moodle.deleteUsers(ctx, []int64{id})
}

// suspendAll ends access: suspended = 1, in one call for all, and before
// anything else of the batch. The account, its cohort and enrolments stay.
func (a *Agent) suspendAll(ctx context.Context, items []item, account map[string]*moodleUser, res batchResult) error {
	var upd []map[string]any
	byMoodle := map[int64]string{}
	for _, it := range items {
		u := account[it.id]
		if u == nil || u.Suspended != nil && bool(*u.Suspended) {
			continue
		}
		byMoodle[u.ID] = it.id
		upd = append(upd, map[string]any{"id": u.ID, "suspended": true})
	}
	warnings, err := a.moodle.updateUsers(ctx, upd)
	if err != nil {
		return err
	}
	for id, learnerID := range byMoodle {
		if w, ok := warnings[id]; ok {
			res.fail(learnerID, &WarningError{Function: "core_user_update_users", Code: w.WarningCode, Message: w.Message})
			continue
		}
		a.log.InfoContext(ctx, "moodle account suspended", "learner", learnerID, "moodle_user", id)
	}
	return nil
}

// upsertAll creates or updates the accounts of learners with access, puts
// them in their access group's cohort (and out of the agent's other
// cohorts) and enrols them on their group's courses (and off the agent's
// courses that are no longer theirs).
func (a *Agent) upsertAll(ctx context.Context, items []item, account map[string]*moodleUser, res batchResult) error {
	created := map[string]bool{}
	// Updates: only what differs; a field Moodle did not show (email,
	// without moodle/site:viewuseridentity) is sent, as it cannot be
	// compared. Moodle writes only the attributes that change
	// (public/user/lib.php user_update_user).
	var upd []map[string]any
	updOf := map[int64]string{}
	var create []item
	for _, it := range items {
		u := account[it.id]
		if u == nil {
			if strings.TrimSpace(it.d.email) == "" {
				res.fail(it.id, errors.New("learner has no email address: cannot create a Moodle account"))
				continue
			}
			create = append(create, it)
			continue
		}
		ch := map[string]any{"id": u.ID}
		if u.Suspended == nil || bool(*u.Suspended) {
			ch["suspended"] = false
		}
		want := map[string]string{}
		if it.d.profile {
			want["firstname"], want["lastname"] = nameOr(it.d.given), nameOr(it.d.family)
		}
		if it.d.profile && it.d.email != "" {
			want["username"], want["email"] = it.d.username(), strings.TrimSpace(it.d.email)
		}
		has := map[string]string{"username": u.Username, "email": u.Email, "firstname": u.FirstName, "lastname": u.LastName}
		for k, v := range want {
			if has[k] != v {
				ch[k] = v
			}
		}
		if len(ch) > 1 {
			upd = append(upd, ch)
			updOf[u.ID] = it.id
		}
	}
	warnings, err := a.moodle.updateUsers(ctx, upd)
	if err != nil {
		return err
	}
	for id, learnerID := range updOf {
		if w, ok := warnings[id]; ok {
			res.fail(learnerID, &WarningError{Function: "core_user_update_users", Code: w.WarningCode, Message: w.Message})
		}
	}

	// Creates: one call; if Moodle refuses one user the call fails whole,
	// and then each is tried alone to find which.
	if len(create) > 0 {
		fields := make([]map[string]any, len(create))
		for i, it := range create {
			fields[i] = map[string]any{
				"username": it.d.username(), "email": strings.TrimSpace(it.d.email),
				"firstname": nameOr(it.d.given), "lastname": nameOr(it.d.family),
				"idnumber": it.id, "auth": a.cfg.Auth,
			}
		}
		newIDs, err := a.moodle.createUsers(ctx, fields)
		switch {
		case err == nil:
			for i, it := range create {
				a.adopt(it, newIDs[i], fields[i], account, created)
			}
		case Fatal(err) || transient(err):
			return err
		default:
			for i, it := range create {
				ids, cerr := a.moodle.createUsers(ctx, fields[i:i+1])
				if cerr == nil {
					a.adopt(it, ids[0], fields[i], account, created)
					continue
				}
				if Fatal(cerr) || transient(cerr) {
					return cerr
				}
				// A lost answer to an earlier try may have created it.
				if us, lerr := a.moodle.usersByIDNumber(ctx, []string{it.id}); lerr == nil && len(us[it.id]) == 1 {
					account[it.id] = &us[it.id][0]
					continue
				}
				res.fail(it.id, cerr)
			}
		}
	}

	// Cohorts.
	var add []membership
	var remove []pair
	for _, it := range items {
		u := account[it.id]
		if res[it.id] != nil || u == nil {
			continue
		}
		if it.d.groupID != "" {
			if _, err := a.ensureCohort(ctx, it.id, it.d.groupID, it.d.groupName); err != nil {
				if Fatal(err) || transient(err) {
					return err
				}
				res.fail(it.id, err)
				continue
			}
			add = append(add, membership{it.d.groupID, u.ID})
		}
		if created[it.id] {
			continue
		}
		for _, g := range a.otherGroups(it) {
			if cid, ok, err := a.cohortID(ctx, g); err != nil {
				return err
			} else if ok {
				remove = append(remove, pair{cid, u.ID})
			}
		}
	}
	ws, err := a.moodle.addCohortMembers(ctx, add)
	if err != nil {
		return err
	}
	for _, w := range ws {
		// Warning 2 names the user (or cohort) it could not find.
		for _, it := range items {
			if u := account[it.id]; u != nil && strings.Contains(w.Message, "id="+strconv.FormatInt(u.ID, 10)+" ") {
				res.fail(it.id, &WarningError{Function: "core_cohort_add_cohort_members", Code: w.WarningCode, Message: w.Message})
			}
		}
	}
	if err := a.moodle.removeCohortMembers(ctx, remove); err != nil {
		return err
	}

	// Enrolments.
	var enrol, unenrol []pair
	enrolOf := map[string][]pair{}
	for _, it := range items {
		u := account[it.id]
		if res[it.id] != nil || u == nil {
			continue
		}
		for _, c := range it.d.courses {
			cid, ok, err := a.courseID(ctx, c)
			if err != nil {
				return err
			}
			if !ok {
				res.fail(it.id, &MissingCourseError{LMSCourseID: c})
				break
			}
			enrolOf[it.id] = append(enrolOf[it.id], pair{u.ID, cid})
		}
		if res[it.id] != nil {
			delete(enrolOf, it.id)
			continue
		}
		enrol = append(enrol, enrolOf[it.id]...)
		if created[it.id] {
			continue
		}
		for _, c := range a.otherCourses(it) {
			if cid, ok, err := a.courseID(ctx, c); err != nil {
				return err
			} else if ok {
				unenrol = append(unenrol, pair{u.ID, cid})
			}
		}
	}
	if !a.roleChecked && len(enrol) > 0 {
		// The first enrolment checks the role's shortname: a new account's
		// if there is one, as that enrolment can be undone.
		learnerOf := map[int64]string{}
		for _, it := range items {
			if u := account[it.id]; u != nil {
				learnerOf[u.ID] = it.id
			}
		}
		probe, fresh := enrol[0], false
		for _, p := range enrol {
			if created[learnerOf[p.a]] {
				probe, fresh = p, true
				break
			}
		}
		if err := a.probeRole(ctx, probe, fresh); err != nil {
			return err
		}
	}
	err = a.moodle.enrol(ctx, a.cfg.StudentRoleID, enrol)
	if err != nil && !Fatal(err) && !transient(err) {
		// All or nothing: one learner at a time, to find the one.
		for id, ps := range enrolOf {
			if eerr := a.moodle.enrol(ctx, a.cfg.StudentRoleID, ps); eerr != nil {
				if Fatal(eerr) || transient(eerr) {
					return eerr
				}
				res.fail(id, eerr)
			}
		}
		err = nil
	}
	if err != nil {
		return err
	}
	if err := a.moodle.unenrol(ctx, unenrol); err != nil {
		return err
	}

	for _, it := range items {
		if res[it.id] != nil || account[it.id] == nil {
			continue
		}
		a.log.InfoContext(ctx, "learner applied", "learner", it.id, "version", it.version, "moodle_user", account[it.id].ID,
			"created", created[it.id], "access_group", it.d.groupID, "courses", len(it.d.courses))
	}
	return nil
}

func (a *Agent) adopt(it item, id int64, f map[string]any, account map[string]*moodleUser, created map[string]bool) {
	no := flexBool(false)
	account[it.id] = &moodleUser{ID: id, Username: f["username"].(string), Email: f["email"].(string), IDNumber: it.id,
		FirstName: f["firstname"].(string), LastName: f["lastname"].(string), Auth: a.cfg.Auth, Suspended: &no}
	created[it.id] = true
	a.st.learner(it.id).MoodleID = id
}

// otherGroups are the agent's cohorts the learner must leave: the previous
// group's, or, for a learner the state does not know (or a forced apply),
// every cohort of an access group the agent knows.
func (a *Agent) otherGroups(it item) []string {
	prev := a.st.Learners[it.id]
	var out []string
	if prev != nil && prev.Applied() && !it.force {
		if prev.Group != "" && prev.Group != it.d.groupID {
			out = append(out, prev.Group)
		}
		return out
	}
	for _, g := range a.st.AccessGroups {
		if g != it.d.groupID {
			out = append(out, g)
		}
	}
	return out
}

// otherCourses are the agent's courses the learner must leave, in the same
// way: the previous ones, or every course the agent knows.
func (a *Agent) otherCourses(it item) []string {
	prev := a.st.Learners[it.id]
	var out []string
	if prev != nil && prev.Applied() && !it.force {
		for _, c := range prev.Courses {
			if !containsString(it.d.courses, c) {
				out = append(out, c)
			}
		}
		return out
	}
	for _, c := range a.st.Courses {
		if !containsString(it.d.courses, c) {
			out = append(out, c)
		}
	}
	return out
}

func containsString(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func appendUnique(xs []string, x string) []string {
	if containsString(xs, x) {
		return xs
	}
	return append(xs, x)
}

func (a *Agent) loadCohorts(ctx context.Context) error {
	cs, err := a.moodle.cohorts(ctx)
	if err != nil {
		return err
	}
	a.cohorts = make(map[string]moodleCohort, len(cs))
	for _, c := range cs {
		if c.IDNumber != "" {
			a.cohorts[c.IDNumber] = c
			if ours(c) {
				a.st.addGroup(c.IDNumber) // the agent's, though the state may not know it
			}
		}
	}
	return nil
}

// ours: the agent created the cohort (its description ends so).
func ours(c moodleCohort) bool { return strings.Contains(c.Description, cohortMarker) }

// cohortID finds the cohort whose idnumber is groupID.
func (a *Agent) cohortID(ctx context.Context, groupID string) (int64, bool, error) {
	if a.cohorts == nil {
		if err := a.loadCohorts(ctx); err != nil {
			return 0, false, err
		}
	}
	c, ok := a.cohorts[groupID]
	return c.ID, ok, nil
}

// ensureCohort finds or creates the access group's cohort (system context,
// idnumber = access-group ID), named by Config.CohortName so that the
// default groups of different organisations ("All staff") can be told
// apart, and renames a cohort of the agent's whose organisation or group
// has been renamed (nameCohort).
func (a *Agent) ensureCohort(ctx context.Context, learnerID, groupID, groupName string) (int64, error) {
	fresh := a.cohorts == nil
	if id, ok, err := a.cohortID(ctx, groupID); err != nil || ok {
		if ok {
			a.st.addGroup(groupID)
			err = a.nameCohort(ctx, learnerID, groupID, groupName)
		}
		return id, err
	}
	if !fresh { // made by someone since the cache was filled?
		if err := a.loadCohorts(ctx); err != nil {
			return 0, err
		}
		if c, ok := a.cohorts[groupID]; ok {
			a.st.addGroup(groupID)
			return c.ID, a.nameCohort(ctx, learnerID, groupID, groupName)
		}
	}
	name, _ := a.cohortName(ctx, learnerID, groupID, groupName)
	c, err := a.moodle.createCohort(ctx, groupID, name)
	if err != nil {
		// A lost answer to an earlier try may have created it.
		if lerr := a.loadCohorts(ctx); lerr == nil {
			if c, ok := a.cohorts[groupID]; ok {
				a.st.addGroup(groupID)
				return c.ID, nil
			}
		}
		return 0, err
	}
	a.cohorts[groupID] = c
	a.markNamed(groupID)
	a.st.addGroup(groupID)
	a.log.InfoContext(ctx, "moodle cohort created", "access_group", groupID, "cohort", c.ID)
	return c.ID, nil
}

// namedFor is how long a cohort's name, once compared, is taken as
// current: Run keeps its caches for as long as it runs, and the feed has
// no event for a renamed organisation or group.
const namedFor = time.Hour

func (a *Agent) markNamed(groupID string) {
	if a.named == nil || a.now().Sub(a.namedAt) > namedFor {
		a.named, a.namedAt = map[string]bool{}, a.now()
	}
	a.named[groupID] = true
}

// nameCohort compares the name of the agent's cohort for groupID with
// Config.CohortName filled in with the current organisation and group
// names, once per group per cache (RunOnce, Reconcile, or an hour of Run),
// and renames it if they differ (core_cohort_update_cohorts). Cohorts made
// by hand keep their names. A rename Moodle refuses is logged and does not
// hold the learner back; configuration errors stop the agent.
func (a *Agent) nameCohort(ctx context.Context, learnerID, groupID, groupName string) error {
	c := a.cohorts[groupID]
	if a.named != nil && a.now().Sub(a.namedAt) <= namedFor && a.named[groupID] || !ours(c) {
		return nil
	}
	name, complete := a.cohortName(ctx, learnerID, groupID, groupName)
	if !complete {
		return nil // not known now: compared again with the next learner
	}
	if name == c.Name {
		a.markNamed(groupID)
		return nil
	}
	if err := a.moodle.updateCohort(ctx, c, name); err != nil {
		if Fatal(err) || transient(err) {
			return err
		}
		a.log.WarnContext(ctx, "moodle cohort not renamed", "access_group", groupID, "cohort", c.ID, "err", redact(err.Error()))
		a.markNamed(groupID)
		return nil
	}
	c.Name = name
	a.cohorts[groupID] = c
	a.markNamed(groupID)
	a.log.InfoContext(ctx, "moodle cohort renamed", "access_group", groupID, "cohort", c.ID)
	return nil
}

// cohortName fills Config.CohortName: {organisation}, {group}, {groupId}.
// The organisation's name is read from Rollcall (best effort: without it,
// the group's ID tells groups of the same name apart). complete: every
// name was known, so the result may replace a cohort's current name.
func (a *Agent) cohortName(ctx context.Context, learnerID, groupID, groupName string) (name string, complete bool) {
	complete = strings.TrimSpace(groupName) != ""
	if !complete {
		groupName = groupID
	}
	tmpl := a.cfg.CohortName
	org := ""
	if strings.Contains(tmpl, "{organisation}") {
		org = a.rollcall.organisationName(ctx, learnerID)
		if org == "" {
			tmpl, complete = "{group} ({groupId})", false
		}
	}
	name = strings.NewReplacer("{organisation}", org, "{group}", groupName, "{groupId}", groupID).Replace(tmpl)
	if r := []rune(name); len(r) > 254 { // cohort.name is varchar(254), in characters
		name = string(r[:254])
	}
	return name, complete
}

func (a *Agent) courseID(ctx context.Context, lmsCourseID string) (int64, bool, error) {
	if id, ok := a.courses[lmsCourseID]; ok {
		return id, true, nil
	}
	id, ok, err := a.moodle.courseByIDNumber(ctx, lmsCourseID)
	if err == nil && ok {
		a.courses[lmsCourseID] = id
		a.st.addCourse(lmsCourseID)
	}
	return id, ok, err
}

// sortItems puts removals first: an erasure or a suspension never waits
// behind anyone's account creation.
func sortItems(items []item) {
	sort.SliceStable(items, func(i, j int) bool { return items[i].kind < items[j].kind })
}
