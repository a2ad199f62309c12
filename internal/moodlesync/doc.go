// Package moodlesync is the reference Moodle sync agent for Rollcall's LMS
// API: it keeps one Moodle site's accounts, cohorts and course enrolments in
// step with one Rollcall programme. docs/moodle.md is the integrator's guide
// (the least-privilege Moodle set-up, sign-in, operation, recovery).
//
//	agent, err := moodlesync.New(moodlesync.Config{…})
//	err = agent.RunOnce(ctx)   // sync until caught up, or
//	err = agent.Run(ctx)       // keep syncing, long-polling the feed, or
//	err = agent.Reconcile(ctx) // compare Moodle with the desired state, repair drift
//
// # Algorithm (list, then watch)
//
// Once per Agent a preflight checks the token's service functions
// (core_webservice_get_site_info) and that its user can see other users'
// usernames and idnumbers (a lookup of the guest account by username). With
// no cursor in the state file (first run, or after CURSOR_EXPIRED) the agent
// reads every page of `enrolments`, applies it, asks Rollcall about the
// learners it knows who left the list (`learner(id)`: erased ones' accounts
// are deleted, the others suspended), and saves the first page's asOf as
// the feed cursor. It then follows `lifecycleEvents`. A feed page collapses
// to one item per learner (their current data, the event's `learner`
// field) and the items go to Moodle in batches (Config.BatchSize): one
// lookup, one update, one create, one cohort and one enrolment call per
// batch, removals (erasures, suspensions) first. A null learner on an event
// other than LEARNER_ERASED suspends the account and deletes nothing. The
// highest applied learnerVersion per learner is kept in the state file and
// events at or below it are skipped.
//
// # No head-of-line blocking
//
// A learner Moodle will not take is parked (state file, Parked) with
// Moodle's error code, the reason and a hint, logged, and retried with
// back-off (Config.ParkRetry) with their current data; everyone else goes
// on, and the cursor moves past the page. Configuration problems (a
// missing function or capability, a bad token or key) are not parked: they
// stop the agent with one clear error (Fatal, ConfigError).
//
// # What is applied to Moodle
//
//   - Account: matched by idnumber = Rollcall learner ID; username = the
//     email in lower case; auth = Config.Auth (default oauth2: no password
//     is held by Moodle); names (a missing one becomes "-", as Moodle
//     refuses blanks); suspended = !accessAllowed. An account is only
//     created while access is allowed.
//   - Cohort: one per access group, idnumber = access-group ID, created in
//     the system context if missing and named by Config.CohortName
//     (default "{organisation}: {group}"), renamed when the organisation
//     or group is (core_cohort_update_cohorts); a learner is removed from
//     the agent's other cohorts.
//   - Enrolments: manual enrolment with Config.StudentRoleID on each course
//     whose idnumber is the lmsCourseId (found by Moodle's exact idnumber
//     search: no moodle/course:update needed); unenrolment from the agent's
//     courses that are no longer theirs. The role's shortname is checked
//     against Config.StudentRole with core_user_get_course_user_profiles
//     (Moodle's web services cannot list roles), and a mismatch stops the
//     agent.
//   - Erasure: username, email, names and idnumber overwritten with opaque
//     values, then the account deleted: Moodle's user_deleted log event
//     keeps the username, email and idnumber it is given (invariant 2).
//
// # Moodle web-service functions needed by the token's service
//
// core_webservice_get_site_info, core_user_get_users_by_field,
// core_user_get_users (Reconcile), core_user_create_users,
// core_user_update_users, core_user_delete_users, core_cohort_get_cohorts,
// core_cohort_create_cohorts, core_cohort_update_cohorts,
// core_cohort_add_cohort_members, core_cohort_delete_cohort_members,
// core_course_get_courses_by_field, enrol_manual_enrol_users,
// enrol_manual_unenrol_users, core_user_get_course_user_profiles. The token's user
// needs, at system level, exactly the capabilities in
// moodlefake.AgentCapabilities (listed with reasons in docs/moodle.md).
//
// # Failures
//
// Transient failures (network errors, HTTP 5xx/429/408, Moodle database and
// maintenance errors, Rollcall INTERNAL_SERVER_ERROR/RATE_LIMITED) are
// retried per request with exponential back-off and jitter (see Retry).
// Moodle's errors surface as *MoodleError (exception, errorcode, message,
// debuginfo), Moodle's warnings as *WarningError, Rollcall's as
// *GraphQLError (extensions.code), others as *HTTPError or *TransportError.
//
// Logs carry learner, access-group and Moodle IDs, never names or email
// addresses; email addresses in Moodle's messages are redacted.
package moodlesync
