package moodlesync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// desired is one learner as Moodle should have them.
type desired struct {
	email         string
	given, family *string
	allowed       bool
	groupID       string
	groupName     string
	courses       []string // lmsCourseIds = Moodle course idnumbers
}

// MoodleAuth is the auth plugin of the accounts the agent creates. Learners
// sign in to Moodle through the same identity provider they use for
// Rollcall (Moodle's OAuth 2 plugin, matched by email), so Moodle holds no
// password for them and none is sent; "manual" would need one.
const MoodleAuth = "oauth2"

// placeholderName fills a missing given or family name: Moodle refuses
// blank first and last names.
const placeholderName = "-"

func (d desired) username() string { return strings.ToLower(strings.TrimSpace(d.email)) }

func nameOr(p *string) string {
	if p == nil || strings.TrimSpace(*p) == "" {
		return placeholderName
	}
	return strings.TrimSpace(*p)
}

// applyLearner makes Moodle match d and records version for the learner.
//
//   - No account yet: created only if access is allowed. A learner who has
//     not accepted the policies (or has withdrawn) gets no account, so no
//     personal data reaches Moodle before acceptance; the full list holds
//     active learners only, so list and feed agree on this.
//   - Account: username, email and names updated where they differ;
//     suspended = !accessAllowed.
//   - Cohort: the access group's (created if missing); removed from the
//     learner's previous Rollcall cohort (or, for a learner the state does
//     not know, from every Rollcall cohort but this one).
//   - Courses: enrolled (manual enrolment, student role) on each; unenrolled
//     from courses this agent enrolled them on that are no longer theirs.
func (a *Agent) applyLearner(ctx context.Context, id string, d desired, version int64) error {
	prev := a.st.Learners[id] // nil: never seen
	u, err := a.moodle.userByIDNumber(ctx, id)
	if err != nil {
		return err
	}
	created := false
	if u == nil {
		if !d.allowed {
			a.log.DebugContext(ctx, "no Moodle account and no access: nothing to do", "learner", id)
			ls := a.st.learner(id)
			ls.Version = max(ls.Version, version)
			ls.Erased, ls.Group, ls.Courses = false, "", nil
			return nil
		}
		if u, err = a.createUser(ctx, id, d); err != nil {
			return err
		}
		created = true
		a.log.InfoContext(ctx, "moodle account created", "learner", id, "moodle_user", u.ID)
	} else if err := a.updateUser(ctx, id, u, d); err != nil {
		return err
	}

	// Cohort membership.
	var remove []int64
	if d.groupID != "" {
		if _, err := a.ensureCohort(ctx, d.groupID, d.groupName); err != nil {
			return err
		}
		if err := a.moodle.addCohortMember(ctx, d.groupID, u.ID); err != nil {
			return err
		}
		a.st.addGroup(d.groupID)
	}
	if !created {
		var others []string
		if prev != nil {
			if prev.Group != "" && prev.Group != d.groupID {
				others = []string{prev.Group}
			}
		} else {
			for _, g := range a.st.AccessGroups {
				if g != d.groupID {
					others = append(others, g)
				}
			}
		}
		for _, g := range others {
			cid, ok, err := a.cohortID(ctx, g)
			if err != nil {
				return err
			}
			if ok {
				remove = append(remove, cid)
			}
		}
		if err := a.moodle.removeCohortMembers(ctx, u.ID, remove); err != nil {
			return err
		}
	}

	// Course enrolments.
	var enrol, unenrol []int64
	for _, c := range d.courses {
		cid, ok, err := a.courseID(ctx, c)
		if err != nil {
			return err
		}
		if !ok {
			return &MissingCourseError{LMSCourseID: c}
		}
		enrol = append(enrol, cid)
	}
	if err := a.moodle.enrol(ctx, u.ID, enrol); err != nil {
		return err
	}
	if prev != nil && !created {
		for _, c := range prev.Courses {
			if containsString(d.courses, c) {
				continue
			}
			cid, ok, err := a.courseID(ctx, c)
			if err != nil {
				return err
			}
			if ok {
				unenrol = append(unenrol, cid)
			}
		}
		if err := a.moodle.unenrol(ctx, u.ID, unenrol); err != nil {
			return err
		}
	}

	ls := a.st.learner(id)
	ls.Version = max(ls.Version, version)
	ls.Erased, ls.Group = false, d.groupID
	ls.Courses = append([]string(nil), d.courses...)
	sort.Strings(ls.Courses)
	a.log.InfoContext(ctx, "learner applied", "learner", id, "version", version, "access", d.allowed,
		"access_group", d.groupID, "courses", len(enrol), "unenrolled", len(unenrol), "cohorts_left", len(remove))
	return nil
}

// MissingCourseError: Rollcall names a course that Moodle does not have.
// Create it in Moodle with this idnumber (or fix the course's lmsCourseId in
// Rollcall); the learner is applied on the next try.
type MissingCourseError struct{ LMSCourseID string }

func (e *MissingCourseError) Error() string {
	return fmt.Sprintf("moodle has no course with idnumber %q (the lmsCourseId in Rollcall)", e.LMSCourseID)
}

func containsString(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (a *Agent) createUser(ctx context.Context, id string, d desired) (*moodleUser, error) {
	if strings.TrimSpace(d.email) == "" {
		return nil, errors.New("learner has no email address: cannot create a Moodle account")
	}
	fields := map[string]any{
		"username":  d.username(),
		"email":     strings.TrimSpace(d.email),
		"firstname": nameOr(d.given),
		"lastname":  nameOr(d.family),
		"idnumber":  id,
		"auth":      MoodleAuth,
	}
	newID, err := a.moodle.createUser(ctx, fields)
	if err != nil {
		// An earlier try whose answer was lost may have created it.
		var me *MoodleError
		if errors.As(err, &me) && me.ErrorCode == "invalidparameter" {
			if u, lerr := a.moodle.userByIDNumber(ctx, id); lerr == nil && u != nil {
				return u, a.updateUser(ctx, id, u, d)
			}
		}
		return nil, err
	}
	no := flexBool(false)
	return &moodleUser{ID: newID, Username: d.username(), Email: fields["email"].(string), IDNumber: id,
		FirstName: fields["firstname"].(string), LastName: fields["lastname"].(string), Auth: MoodleAuth, Suspended: &no}, nil
}

// updateUser sends only what differs. Suspension goes in a call of its
// own, first: Moodle's update_users skips a user whole (silently, in older
// versions) when the new email address belongs to another account, and
// access must end regardless. A profile change is read back to catch that.
func (a *Agent) updateUser(ctx context.Context, id string, u *moodleUser, d desired) error {
	if u.Suspended == nil || bool(*u.Suspended) != !d.allowed {
		if err := a.moodle.updateUser(ctx, map[string]any{"id": u.ID, "suspended": !d.allowed}); err != nil {
			return err
		}
		a.log.InfoContext(ctx, "moodle account suspension set", "learner", id, "suspended", !d.allowed)
	}
	want := map[string]string{"firstname": nameOr(d.given), "lastname": nameOr(d.family)}
	if d.email != "" {
		want["username"], want["email"] = d.username(), strings.TrimSpace(d.email)
	}
	has := func(u *moodleUser) map[string]string {
		return map[string]string{"username": u.Username, "email": u.Email, "firstname": u.FirstName, "lastname": u.LastName}
	}
	upd := map[string]any{"id": u.ID}
	for k, v := range want {
		if has(u)[k] != v {
			upd[k] = v
		}
	}
	if len(upd) == 1 {
		return nil
	}
	if err := a.moodle.updateUser(ctx, upd); err != nil {
		return err
	}
	after, err := a.moodle.userByIDNumber(ctx, id)
	if err != nil {
		return err
	}
	if after == nil {
		return errors.New("the Moodle account disappeared while being updated")
	}
	var skipped []string
	for k := range upd {
		if k != "id" && has(after)[k] != want[k] {
			skipped = append(skipped, k)
		}
	}
	if len(skipped) > 0 {
		sort.Strings(skipped)
		return &SkippedUpdateError{MoodleUserID: u.ID, Fields: skipped}
	}
	return nil
}

// SkippedUpdateError: Moodle accepted core_user_update_users but did not
// change the account, typically because the new email address belongs to
// another Moodle account. Resolve the clash in Moodle; the learner is
// applied again on the next run.
type SkippedUpdateError struct {
	MoodleUserID int64
	Fields       []string
}

func (e *SkippedUpdateError) Error() string {
	return fmt.Sprintf("moodle did not update user %d (%s): is the email address or username taken by another Moodle account?",
		e.MoodleUserID, strings.Join(e.Fields, ", "))
}

// erase deletes the learner's Moodle account, if there is one. Moodle's
// delete keeps the first and last name (and an email hash) in its user
// table, so they are overwritten first.
func (a *Agent) erase(ctx context.Context, id string) error {
	u, err := a.moodle.userByIDNumber(ctx, id)
	if err != nil || u == nil {
		return err
	}
	scrub := map[string]any{"id": u.ID}
	if u.FirstName != "Erased" {
		scrub["firstname"] = "Erased"
	}
	if u.LastName != "learner" {
		scrub["lastname"] = "learner"
	}
	if e := fmt.Sprintf("erased-%d@rollcall.invalid", u.ID); u.Email != e {
		scrub["email"] = e
	}
	if len(scrub) > 1 {
		if err := a.moodle.updateUser(ctx, scrub); err != nil {
			return err
		}
	}
	if err := a.moodle.deleteUser(ctx, u.ID); err != nil {
		// A lost answer to an earlier try may have deleted it.
		var me *MoodleError
		if !errors.As(err, &me) || me.ErrorCode != "invalidrecord" {
			return err
		}
		if still, lerr := a.moodle.userByIDNumber(ctx, id); lerr != nil || still != nil {
			return err
		}
	}
	a.log.InfoContext(ctx, "moodle account deleted (learner erased)", "learner", id, "moodle_user", u.ID)
	return nil
}

// suspendIfActive suspends the learner's account if it exists and is not.
func (a *Agent) suspendIfActive(ctx context.Context, id string) (bool, error) {
	u, err := a.moodle.userByIDNumber(ctx, id)
	if err != nil || u == nil {
		return false, err
	}
	if u.Suspended != nil && bool(*u.Suspended) {
		return false, nil
	}
	if err := a.moodle.updateUser(ctx, map[string]any{"id": u.ID, "suspended": true}); err != nil {
		return false, err
	}
	a.log.InfoContext(ctx, "moodle account suspended (no longer in the desired state)", "learner", id, "moodle_user", u.ID)
	return true, nil
}

func (a *Agent) loadCohorts(ctx context.Context) error {
	cs, err := a.moodle.cohorts(ctx)
	if err != nil {
		return err
	}
	a.cohorts = make(map[string]int64, len(cs))
	for _, c := range cs {
		if c.IDNumber != "" {
			a.cohorts[c.IDNumber] = c.ID
		}
	}
	return nil
}

// cohortID finds the cohort whose idnumber is groupID.
func (a *Agent) cohortID(ctx context.Context, groupID string) (int64, bool, error) {
	if a.cohorts == nil {
		if err := a.loadCohorts(ctx); err != nil {
			return 0, false, err
		}
	}
	id, ok := a.cohorts[groupID]
	return id, ok, nil
}

// ensureCohort finds or creates the access group's cohort (system context).
func (a *Agent) ensureCohort(ctx context.Context, groupID, name string) (int64, error) {
	fresh := a.cohorts == nil
	if id, ok, err := a.cohortID(ctx, groupID); err != nil || ok {
		return id, err
	}
	if !fresh { // made by someone since the cache was filled?
		if err := a.loadCohorts(ctx); err != nil {
			return 0, err
		}
		if id, ok := a.cohorts[groupID]; ok {
			return id, nil
		}
	}
	if strings.TrimSpace(name) == "" {
		name = groupID
	}
	c, err := a.moodle.createCohort(ctx, groupID, name)
	if err != nil {
		// A lost answer to an earlier try may have created it.
		if lerr := a.loadCohorts(ctx); lerr == nil {
			if id, ok := a.cohorts[groupID]; ok {
				return id, nil
			}
		}
		return 0, err
	}
	a.cohorts[groupID] = c.ID
	a.log.InfoContext(ctx, "moodle cohort created", "access_group", groupID, "cohort", c.ID)
	return c.ID, nil
}

func (a *Agent) courseID(ctx context.Context, lmsCourseID string) (int64, bool, error) {
	if id, ok := a.courses[lmsCourseID]; ok {
		return id, true, nil
	}
	id, ok, err := a.moodle.courseByIDNumber(ctx, lmsCourseID)
	if err == nil && ok {
		a.courses[lmsCourseID] = id
	}
	return id, ok, err
}
