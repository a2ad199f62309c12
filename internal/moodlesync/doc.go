// Package moodlesync is the reference Moodle sync agent for Rollcall's LMS
// API: it keeps one Moodle site's accounts, cohorts and course enrolments in
// step with one Rollcall programme.
//
//	agent, err := moodlesync.New(moodlesync.Config{…})
//	err = agent.RunOnce(ctx) // sync until caught up, or
//	err = agent.Run(ctx)     // keep syncing, long-polling the feed
//
// # Algorithm (list, then watch)
//
// With no cursor in the state file (first run, or after CURSOR_EXPIRED) the
// agent reads every page of `enrolments` (active learners × the courses of
// their access group), applies that desired state, suspends learners it
// knows who are no longer listed, and saves the first page's asOf as the
// feed cursor. It then follows `lifecycleEvents` from the cursor. For each
// event it applies the learner's current data (the event's `learner`
// field); a LEARNER_ERASED event (or status ERASED) deletes the Moodle
// account. A null learner on any other event suspends the account but does
// not delete it: null is also how the server answers for a learner it could
// not load, deletion cannot be undone, and an erased learner's
// LEARNER_ERASED event follows in the feed anyway. The highest applied learnerVersion per learner is
// kept in the state file and events at or below it are skipped, so a page
// read again after a crash or an error changes nothing twice. The cursor is
// saved after every applied page, durably (temporary file, fsync, rename,
// fsync of the directory). CURSOR_EXPIRED drops the cursor and lists again.
// The list holds active learners only, so it cannot tell a withdrawn learner
// from an erased one: an account whose learner was erased while the cursor
// was expired is suspended, not deleted.
//
// # What is applied to Moodle
//
//   - Account: matched by idnumber = Rollcall learner ID; username = the
//     email in lower case; auth = oauth2 (see MoodleAuth: no password is
//     held by Moodle); names (a missing one becomes "-", as Moodle refuses
//     blanks); suspended = !accessAllowed. An account is only created while
//     access is allowed.
//   - Cohort: one per access group, idnumber = access-group ID, created in
//     the system context if missing; a learner is removed from the other
//     Rollcall cohorts.
//   - Enrolments: manual enrolment with the student role (5) on each course
//     whose idnumber is the lmsCourseId; unenrolment from courses the agent
//     enrolled the learner on that are no longer theirs.
//   - Erasure: names and email overwritten, then the account deleted.
//
// # Moodle web-service functions needed by the token's service
//
// core_user_get_users_by_field, core_user_create_users,
// core_user_update_users, core_user_delete_users, core_cohort_get_cohorts,
// core_cohort_create_cohorts, core_cohort_add_cohort_members,
// core_cohort_delete_cohort_members, core_course_get_courses_by_field,
// enrol_manual_enrol_users, enrol_manual_unenrol_users. The token's user
// needs (at system level) webservice/rest:use, moodle/user:create,
// moodle/user:update, moodle/user:delete, moodle/user:viewdetails,
// moodle/user:viewhiddendetails, moodle/cohort:manage, moodle/cohort:assign,
// moodle/cohort:view, moodle/course:view, moodle/course:viewhiddencourses,
// enrol/manual:enrol, enrol/manual:unenrol and moodle/role:assign (with the
// student role assignable). Sites letting learners sign in with OAuth 2
// need the oauth2 auth plugin enabled; email addresses with characters
// outside [a-z0-9._@-] need $CFG->extendedusernamechars to be usernames.
//
// # Failures
//
// Transient failures (network errors, HTTP 5xx/429/408, Moodle database and
// maintenance errors, Rollcall INTERNAL_SERVER_ERROR/RATE_LIMITED) are
// retried per request with exponential back-off and jitter (see Retry).
// Moodle's errors surface as *MoodleError (exception, errorcode, message,
// debuginfo), Rollcall's as *GraphQLError (extensions.code), others as
// *HTTPError or *TransportError. A learner that cannot be applied stops the
// run: the error names the learner ID, and the next run starts again at
// that learner.
//
// Logs carry learner, access-group and Moodle IDs, never names or email
// addresses; email addresses in Moodle's debuginfo are redacted in Error().
package moodlesync
