package moodlesync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config configures an Agent. RollcallURL, APIKey, ProgrammeID, MoodleURL,
// MoodleToken and StateFile are required.
type Config struct {
	// RollcallURL is the Rollcall service's base URL (…/graphql is added) or
	// its GraphQL endpoint.
	RollcallURL string
	// APIKey is the programme's LMS API key (sent as Authorization: Bearer).
	APIKey      string
	ProgrammeID string
	// MoodleURL is the Moodle site's root URL (wwwroot), e.g.
	// https://moodle.example.org; the REST endpoint
	// /webservice/rest/server.php is added.
	MoodleURL string
	// MoodleToken is a web-service token whose service includes the
	// functions listed in the package documentation.
	MoodleToken string
	// StateFile is where the cursor and the per-learner versions are kept.
	// One file per programme and Moodle, used by one agent at a time.
	StateFile string
	// PollWait is how long Run long-polls the feed when caught up (default
	// and maximum 30s; the API counts in whole seconds).
	PollWait time.Duration
	// HTTPClient is used for both services (default: a client without a
	// global timeout, as every request gets its own deadline, that does not
	// follow redirects, as a redirected POST loses its body).
	HTTPClient *http.Client
	// Log receives progress and errors, with learner IDs but never names or
	// email addresses (default: discard).
	Log *slog.Logger
	// Retry bounds the retries of one request (zero value: defaults).
	Retry Retry
	// EventPageSize and ListPageSize are the `first` arguments of
	// lifecycleEvents (default 500) and enrolments (default 1000).
	EventPageSize int
	ListPageSize  int
	// Auth is the auth plugin of the accounts the agent creates, and how
	// --reconcile finds the accounts it manages (with their idnumber):
	// oauth2 (default), saml2, auth_oidc, … — whichever lets learners sign
	// in through their organisation's identity provider.
	Auth string
	// StudentRole is the shortname of the role learners get on their
	// courses (default "student"); StudentRoleID is its ID (default 5,
	// "student" on a standard install). Moodle's web services cannot list
	// roles, so the ID cannot be looked up by shortname; instead the agent
	// checks that the role with StudentRoleID has the shortname
	// StudentRole (core_user_get_course_user_profiles reports the roles a
	// user holds in a course): at start on an enrolment it made before,
	// else on its first enrolment, which it makes alone and undoes if the
	// role is another. A mismatch stops it with a ConfigError. See
	// docs/moodle.md.
	StudentRole   string
	StudentRoleID int64
	// CohortName names a new cohort: {organisation}, {group} and
	// {groupId} are filled in (default "{organisation}: {group}").
	CohortName string
	// BatchSize is how many learners go into one Moodle call (default
	// 100).
	BatchSize int
	// ParkRetry is the first wait before a parked learner is tried again
	// (default 1 minute); it doubles up to ParkRetryMax (default 6 hours).
	ParkRetry    time.Duration
	ParkRetryMax time.Duration
}

// Agent keeps one Moodle site in step with one Rollcall programme.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	rollcall *rollcallClient
	moodle   *moodleClient

	running sync.Mutex
	st      *state
	// cohorts maps a cohort idnumber to the cohort (nil: not loaded);
	// named: the access groups whose cohort name was compared with
	// Config.CohortName since namedAt; courses maps an lmsCourseId (course
	// idnumber) to its Moodle id.
	cohorts map[string]moodleCohort
	named   map[string]bool
	namedAt time.Time
	courses map[string]int64
	// roleChecked: the student role's shortname was checked (or could not
	// be, and the agent said so once).
	roleChecked bool
	// expiredInARow guards against a feed that expires every cursor.
	expiredInARow int
	// checked: the preflight passed.
	checked bool
	now     func() time.Time
}

const maxPollWait = 30 * time.Second

// New checks cfg and reads the state file (a missing one means a first run).
func New(cfg Config) (*Agent, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"RollcallURL", cfg.RollcallURL}, {"APIKey", cfg.APIKey}, {"ProgrammeID", cfg.ProgrammeID},
		{"MoodleURL", cfg.MoodleURL}, {"MoodleToken", cfg.MoodleToken}, {"StateFile", cfg.StateFile},
	} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("moodlesync: missing configuration: %s", strings.Join(missing, ", "))
	}
	rollcallEndpoint, err := endpoint(cfg.RollcallURL, "/graphql")
	if err != nil {
		return nil, fmt.Errorf("moodlesync: RollcallURL: %w", err)
	}
	moodleEndpoint, err := endpoint(cfg.MoodleURL, "/webservice/rest/server.php")
	if err != nil {
		return nil, fmt.Errorf("moodlesync: MoodleURL: %w", err)
	}
	if cfg.PollWait <= 0 || cfg.PollWait > maxPollWait {
		cfg.PollWait = maxPollWait
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.EventPageSize <= 0 {
		cfg.EventPageSize = 500
	}
	if cfg.ListPageSize <= 0 {
		cfg.ListPageSize = 1000
	}
	cfg.Retry = cfg.Retry.withDefaults()
	if strings.TrimSpace(cfg.Auth) == "" {
		cfg.Auth = DefaultAuth
	}
	if cfg.StudentRoleID <= 0 {
		cfg.StudentRoleID = DefaultStudentRoleID
	}
	if strings.TrimSpace(cfg.StudentRole) == "" {
		cfg.StudentRole = DefaultStudentRole
	}
	if strings.TrimSpace(cfg.CohortName) == "" {
		cfg.CohortName = "{organisation}: {group}"
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.ParkRetry <= 0 {
		cfg.ParkRetry = time.Minute
	}
	if cfg.ParkRetryMax < cfg.ParkRetry {
		cfg.ParkRetryMax = max(cfg.ParkRetry, 6*time.Hour)
	}
	st, err := loadState(cfg.StateFile, cfg.ProgrammeID, strings.TrimSuffix(moodleEndpoint, "/webservice/rest/server.php"))
	if err != nil {
		return nil, err
	}
	log := cfg.Log.With("programme", cfg.ProgrammeID)
	return &Agent{
		cfg: cfg,
		log: log,
		st:  st,
		now: time.Now,
		rollcall: &rollcallClient{endpoint: rollcallEndpoint, apiKey: cfg.APIKey, programmeID: cfg.ProgrammeID,
			hc: cfg.HTTPClient, retry: cfg.Retry, log: log},
		moodle: &moodleClient{endpoint: moodleEndpoint, token: cfg.MoodleToken, hc: cfg.HTTPClient, retry: cfg.Retry, log: log},
	}, nil
}

// endpoint returns raw with suffix appended unless it already ends so.
func endpoint(raw, suffix string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL", raw)
	}
	u.RawQuery, u.Fragment = "", ""
	p := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(p, suffix) {
		p += suffix
	}
	u.Path = p
	return u.String(), nil
}

var errBusy = errors.New("moodlesync: this agent is already running")

// RunOnce syncs until caught up: the preflight (once per Agent), a full
// list of the desired state when there is no cursor (first run, or the
// cursor expired), the parked learners that are due, then every feed page
// up to the present. The cursor is saved after every page. Learners that
// cannot be applied are parked (see Status) and do not stop it; it returns
// an error only for what concerns every learner (configuration, Moodle or
// Rollcall unreachable after retries). What was applied until then is
// saved, and the next RunOnce goes on from there.
func (a *Agent) RunOnce(ctx context.Context) error {
	if !a.running.TryLock() {
		return errBusy
	}
	defer a.running.Unlock()
	a.resetCaches()
	if err := a.retryParked(ctx); err != nil {
		return err
	}
	total := 0
	for {
		caughtUp, n, err := a.step(ctx, 0)
		total += n
		if err != nil {
			return err
		}
		if caughtUp {
			a.log.InfoContext(ctx, "caught up", "events", total, "parked", len(a.st.Parked))
			return nil
		}
	}
}

// Reconcile compares every account the agent manages in Moodle (auth =
// Config.Auth with an idnumber) and every learner of the state file with
// the desired state, and repairs drift: it applies every listed learner
// whatever the state says (account, suspension, cohort, courses), ends
// access of accounts whose learner is not listed, deletes (after
// overwriting) those whose learner is erased, and deletes accounts left
// overwritten by a failed erasure. It needs no state file: run it after
// losing one, or on a schedule. It ends with the feed cursor at the list's
// asOf, so Run or RunOnce follow on from there.
func (a *Agent) Reconcile(ctx context.Context) error {
	if !a.running.TryLock() {
		return errBusy
	}
	defer a.running.Unlock()
	a.resetCaches()
	if err := a.preflight(ctx, true); err != nil {
		return err
	}
	return a.fullSync(ctx, true)
}

// Run syncs until ctx is done, long-polling the feed when caught up. Failures
// are logged and retried with back-off (up to 5 minutes apart); it returns
// nil when ctx is done, or an error only when retrying cannot help (a bad API
// key or Moodle token, a web-service function or capability missing, an
// unusable state file): that is reported once, and Run stops.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.TryLock() {
		return errBusy
	}
	defer a.running.Unlock()
	a.resetCaches()
	caughtUp, failures := false, 0
	for ctx.Err() == nil {
		wait := time.Duration(0)
		if caughtUp {
			wait = a.cfg.PollWait
		}
		start := time.Now()
		err := a.retryParked(ctx)
		cu, n := false, 0
		if err == nil {
			cu, n, err = a.step(ctx, wait)
		}
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			if Fatal(err) {
				return err
			}
			failures++
			d := (Retry{BaseDelay: time.Second, MaxDelay: 5 * time.Minute}).withDefaults().delay(failures)
			a.log.ErrorContext(ctx, "sync failed, will retry", "err", redact(err.Error()), "retry_in", d, "failures", failures)
			a.resetCaches()
			caughtUp = false
			sleep(ctx, d)
			continue
		}
		if failures > 0 {
			a.log.InfoContext(ctx, "sync recovered", "after_failures", failures)
		}
		failures = 0
		if caughtUp && n == 0 {
			// A server that does not hold the request must not be polled
			// in a tight loop.
			sleep(ctx, wait-time.Since(start))
		}
		caughtUp = cu
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (a *Agent) resetCaches() {
	a.cohorts = nil
	a.named = nil
	a.courses = map[string]int64{}
}

func (a *Agent) save() error { return a.st.save(a.cfg.StateFile) }

// requiredFunctions are the web-service functions the token's service must
// include; reconcile also needs core_user_get_users.
var requiredFunctions = []string{
	"core_webservice_get_site_info",
	"core_user_get_users_by_field", "core_user_create_users", "core_user_update_users", "core_user_delete_users",
	"core_cohort_get_cohorts", "core_cohort_create_cohorts", "core_cohort_update_cohorts",
	"core_cohort_add_cohort_members", "core_cohort_delete_cohort_members",
	"core_course_get_courses_by_field", "enrol_manual_enrol_users", "enrol_manual_unenrol_users",
	"core_user_get_course_user_profiles",
}

// ConfigError is a Moodle set-up the agent cannot work with; it says what
// to change. Fatal.
type ConfigError struct {
	Problem string
	Hint    string
}

func (e *ConfigError) Error() string { return "moodle set-up: " + e.Problem + ": " + e.Hint }

// preflight checks, once, what would otherwise fail learner after learner:
// the service's functions (core_webservice_get_site_info lists them), and
// that the token's user can see other users' idnumbers and usernames
// (public/user/lib.php user_get_user_details: moodle/user:viewdetails and
// moodle/user:viewalldetails; without them core_user_get_users_by_field
// finds nobody by idnumber, and the agent would try to create every
// account again). The probe looks up the guest account by username.
func (a *Agent) preflight(ctx context.Context, reconcile bool) error {
	if a.checked && !reconcile {
		return nil
	}
	si, err := a.moodle.siteInfo(ctx)
	var me *MoodleError
	if errors.As(err, &me) && (me.ErrorCode == "accessexception" || me.ErrorCode == "invalidrecord") {
		// public/webservice/lib.php: a function outside the service, and
		// also a nologin, suspended or password-expired user, or an IP
		// restriction, are webservice_access_exception.
		return &ConfigError{Problem: "Moodle refused core_webservice_get_site_info (" + me.ErrorCode + ": " + redact(me.Message) + ")",
			Hint: "add it and the other functions in docs/moodle.md to the external service; the token's user must not use the nologin auth, be suspended or have an expired password, and the service's IP restriction must allow this host"}
	}
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, f := range si.Functions {
		have[f.Name] = true
	}
	need := requiredFunctions
	if reconcile {
		need = append(append([]string(nil), need...), "core_user_get_users")
	}
	var missing []string
	for _, f := range need {
		if !have[f] {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return &ConfigError{Problem: "the token's service lacks " + strings.Join(missing, ", "),
			Hint: "add them in Site administration > Server > Web services > External services > Functions"}
	}
	guest, err := a.moodle.usersByField(ctx, "username", []string{"guest"})
	if err != nil {
		return err
	}
	if len(guest) == 0 {
		return &ConfigError{Problem: "the web-service user cannot see other users' usernames and idnumbers",
			Hint: "allow moodle/user:viewdetails and moodle/user:viewalldetails in its system role (docs/moodle.md)"}
	}
	if err := a.checkKnownRole(ctx); err != nil {
		return err
	}
	if !a.checked {
		a.log.InfoContext(ctx, "moodle preflight passed", "release", si.Release, "auth", a.cfg.Auth,
			"student_role", a.cfg.StudentRole, "student_role_id", a.cfg.StudentRoleID, "student_role_checked", a.roleChecked)
	}
	a.checked = true
	return nil
}

// checkKnownRole checks the student role, before anything changes, on an
// enrolment the state file says the agent made: the first learner (by ID)
// with an account and courses. If Moodle shows no role with the
// configured ID there (unenrolled by hand, say), the check waits for the
// agent's next enrolment (probeRole).
func (a *Agent) checkKnownRole(ctx context.Context) error {
	if a.roleChecked {
		return nil
	}
	ids := make([]string, 0, len(a.st.Learners))
	for id, ls := range a.st.Learners {
		if ls.MoodleID != 0 && !ls.Erased && len(ls.Courses) > 0 && a.st.Parked[id] == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	sort.Strings(ids)
	ls := a.st.Learners[ids[0]]
	cid, ok, err := a.courseID(ctx, ls.Courses[0])
	if err != nil || !ok {
		return err
	}
	_, err = a.checkRole(ctx, ls.MoodleID, cid)
	if err != nil && !Fatal(err) && !transient(err) {
		a.log.WarnContext(ctx, "could not check the student role; the next enrolment will", "err", redact(err.Error()))
		return nil
	}
	return err
}

// checkRole reads the roles a user holds in a course and compares the one
// with Config.StudentRoleID with Config.StudentRole. ok: it matches (the
// role is checked); a *ConfigError if that role has another shortname;
// neither when the user holds no role with that ID there.
func (a *Agent) checkRole(ctx context.Context, userID, courseID int64) (ok bool, err error) {
	roles, _, err := a.moodle.courseRoles(ctx, userID, courseID)
	if err != nil {
		return false, err
	}
	for _, r := range roles {
		if r.RoleID != a.cfg.StudentRoleID {
			continue
		}
		if r.ShortName != a.cfg.StudentRole {
			id := "the ID of the role " + strconv.Quote(a.cfg.StudentRole)
			for _, o := range roles {
				if o.ShortName == a.cfg.StudentRole {
					// The same user holds it there: its ID is known.
					id = fmt.Sprintf("%d, the ID of the role %q", o.RoleID, o.ShortName)
				}
			}
			return false, &ConfigError{
				Problem: fmt.Sprintf("role %d is %q in this Moodle, not %q", r.RoleID, r.ShortName, a.cfg.StudentRole),
				Hint: fmt.Sprintf("set MOODLE_STUDENT_ROLE_ID (--student-role-id) to %s (Site administration > Users > Permissions > Define roles: its link ends in roleid=<ID>), or MOODLE_STUDENT_ROLE (--student-role) to %q if learners are to have that role (docs/moodle.md)",
					id, r.ShortName),
			}
		}
		a.roleChecked = true
		a.log.InfoContext(ctx, "student role checked", "student_role", r.ShortName, "student_role_id", r.RoleID)
		return true, nil
	}
	return false, nil
}

// probeRole checks the student role on the first enrolment the agent
// makes (when checkKnownRole could not): it enrols that one (user,
// course) alone, reads the role back, and if it is another role stops
// with a ConfigError, having undone that enrolment when the account is
// new (fresh; an older account may have been enrolled there before, so
// that enrolment is left, and the error says so). A failure to enrol the
// probe is left to the batch that follows, which finds whose it is.
func (a *Agent) probeRole(ctx context.Context, p pair, fresh bool) error {
	if err := a.moodle.enrol(ctx, a.cfg.StudentRoleID, []pair{p}); err != nil {
		if Fatal(err) || transient(err) {
			return err
		}
		return nil
	}
	ok, err := a.checkRole(ctx, p.a, p.b)
	var ce *ConfigError
	switch {
	case errors.As(err, &ce):
		if !fresh {
			ce.Hint += fmt.Sprintf("; Moodle user %d was enrolled on course %d with role %d: remove it there by hand", p.a, p.b, a.cfg.StudentRoleID)
		} else if uerr := a.moodle.unenrol(ctx, []pair{p}); uerr != nil {
			ce.Hint += fmt.Sprintf("; undoing the enrolment of Moodle user %d on course %d with role %d failed (%s): remove it by hand", p.a, p.b, a.cfg.StudentRoleID, redact(uerr.Error()))
		} else {
			ce.Hint += fmt.Sprintf("; the one enrolment made with role %d (Moodle user %d, course %d) was undone", a.cfg.StudentRoleID, p.a, p.b)
		}
		return ce
	case err != nil && (Fatal(err) || transient(err)):
		return err
	case err != nil:
		a.log.WarnContext(ctx, "could not check the student role; the next enrolment will", "err", redact(err.Error()))
	case !ok:
		// Moodle did not show the role it was just asked to assign: say so
		// once rather than ask again on every batch.
		a.roleChecked = true
		a.log.WarnContext(ctx, "could not check the student role: Moodle does not show it on the enrolment just made",
			"student_role", a.cfg.StudentRole, "student_role_id", a.cfg.StudentRoleID, "moodle_user", p.a, "course", p.b)
	}
	return nil
}

// step lists the desired state if there is no cursor, then reads and applies
// one feed page. caughtUp: the page was the last one for now.
func (a *Agent) step(ctx context.Context, wait time.Duration) (caughtUp bool, events int, err error) {
	if err := a.preflight(ctx, false); err != nil {
		return false, 0, err
	}
	if a.st.Cursor == "" {
		if err := a.fullSync(ctx, false); err != nil {
			return false, 0, err
		}
	}
	page, err := a.rollcall.lifecycleEvents(ctx, a.st.Cursor, a.cfg.EventPageSize, wait)
	if isCursorExpired(err) {
		a.expiredInARow++
		if a.expiredInARow > 2 {
			return false, 0, fmt.Errorf("the feed expired the cursor of a fresh full list %d times in a row: %w", a.expiredInARow-1, err)
		}
		a.log.WarnContext(ctx, "feed cursor expired: listing the desired state again")
		a.st.Cursor = ""
		if err := a.save(); err != nil {
			return false, 0, err
		}
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	a.expiredInARow = 0
	if err := a.applyPage(ctx, page); err != nil {
		return false, len(page.Events), err
	}
	return !page.HasMore, len(page.Events), nil
}

// applyPage applies a feed page: the events collapse to one item per
// learner (its current data, which covers every event of the page), the
// items are applied in batches, removals first, and learners that cannot
// be applied are parked. The cursor then moves past the page.
func (a *Agent) applyPage(ctx context.Context, page *eventPage) error {
	if page.Cursor == "" {
		return errors.New("rollcall lifecycleEvents: empty cursor")
	}
	if page.HasMore && len(page.Events) == 0 && page.Cursor == a.st.Cursor {
		return errors.New("rollcall lifecycleEvents: hasMore without progress")
	}
	byID := map[string]int{}
	var items []item
	for _, ev := range page.Events {
		id := ev.LearnerID
		if id == "" {
			return errors.New("rollcall lifecycleEvents: an event without learnerId")
		}
		if ev.Learner != nil && ev.Learner.ID != "" && ev.Learner.ID != id {
			return fmt.Errorf("rollcall lifecycleEvents: the event for learner %s carries learner %s", id, ev.Learner.ID)
		}
		ls := a.st.Learners[id]
		if ls != nil && ev.LearnerVersion <= ls.Version && a.st.Parked[id] == nil {
			continue // applied already
		}
		if ls != nil && ls.Erased && (ev.Learner == nil || ev.Learner.Status == "ERASED") {
			// Erasure is final and done; an erased learner's events
			// carry no data, so their versions could not be skipped.
			ls.Version = max(ls.Version, ev.LearnerVersion)
			continue
		}
		it := itemFromLearner(id, ev.LearnerVersion, ev.Learner, ev.Type == "LEARNER_ERASED")
		if ev.Learner == nil && it.kind == kindSuspend {
			a.log.WarnContext(ctx, "learner data unavailable (erased, or not readable): access ends, deletion waits for LEARNER_ERASED",
				"learner", id, "type", ev.Type, "version", ev.LearnerVersion)
		}
		if i, ok := byID[id]; ok {
			// A later event of the same learner: its data is as current,
			// its version higher; an erasure stays an erasure.
			if items[i].kind == kindErase {
				it.kind = kindErase
			}
			it.version = max(it.version, items[i].version)
			items[i] = it
			continue
		}
		byID[id] = len(items)
		items = append(items, it)
	}
	applied, parked, err := a.applyItems(ctx, items)
	if err != nil {
		if serr := a.save(); serr != nil {
			err = errors.Join(err, serr)
		}
		return err
	}
	a.st.Cursor = page.Cursor
	if err := a.save(); err != nil {
		return err
	}
	if len(page.Events) > 0 {
		a.log.InfoContext(ctx, "feed page applied", "events", len(page.Events), "learners_applied", applied, "parked_now", parked)
	}
	return nil
}

// applyItems applies items in batches, removals first, recording each
// applied learner's version and parking the ones that failed. The error is
// one that concerns every learner.
func (a *Agent) applyItems(ctx context.Context, items []item) (applied, parked int, err error) {
	sortItems(items)
	for start := 0; start < len(items); start += a.cfg.BatchSize {
		batch := items[start:min(len(items), start+a.cfg.BatchSize)]
		res, err := a.applyBatch(ctx, batch)
		if err != nil {
			return applied, parked, err
		}
		for _, it := range batch {
			if lerr := res[it.id]; lerr != nil {
				a.park(ctx, it.id, lerr)
				parked++
				continue
			}
			a.record(it)
			applied++
		}
		if err := a.save(); err != nil {
			return applied, parked, err
		}
	}
	return applied, parked, nil
}

// record notes what was applied of a learner, and unparks them.
func (a *Agent) record(it item) {
	ls := a.st.learner(it.id)
	ls.Version = max(ls.Version, it.version)
	switch it.kind {
	case kindErase:
		ls.Erased, ls.Group, ls.Courses, ls.MoodleID = true, "", nil, 0
	case kindUpsert:
		ls.Erased, ls.Group = false, it.d.groupID
		ls.Courses = append([]string(nil), it.d.courses...)
		sort.Strings(ls.Courses)
	}
	if p := a.st.Parked[it.id]; p != nil {
		a.log.InfoContext(context.Background(), "parked learner applied", "learner", it.id, "after_attempts", p.Attempts)
		delete(a.st.Parked, it.id)
	}
}

// park sets a learner aside with why, to be tried again with back-off; the
// log line carries Moodle's error code and a hint, never personal data.
func (a *Agent) park(ctx context.Context, id string, err error) {
	p := a.st.Parked[id]
	if p == nil {
		p = &Parked{Since: a.now().UTC()}
		a.st.Parked[id] = p
	}
	p.Attempts++
	d := a.cfg.ParkRetry
	for i := 1; i < p.Attempts && d < a.cfg.ParkRetryMax; i++ {
		d *= 2
	}
	d = min(d, a.cfg.ParkRetryMax)
	p.Next = a.now().UTC().Add(d)
	p.Code, p.Hint = hintFor(err)
	p.Reason = redact(err.Error())
	a.log.WarnContext(ctx, "learner parked: not applied, will retry", "learner", id, "code", p.Code, "hint", p.Hint,
		"err", p.Reason, "attempts", p.Attempts, "retry_in", d)
}

// retryParked applies again the parked learners that are due, with their
// current data read from Rollcall.
func (a *Agent) retryParked(ctx context.Context) error {
	var due []string
	now := a.now()
	for id, p := range a.st.Parked {
		if !p.Next.After(now) {
			due = append(due, id)
		}
	}
	if len(due) == 0 {
		return nil
	}
	if err := a.preflight(ctx, false); err != nil {
		return err
	}
	sort.Strings(due)
	ls, err := a.rollcall.learners(ctx, due)
	if err != nil {
		return err
	}
	items := make([]item, 0, len(due))
	for _, id := range due {
		it := itemFromLearner(id, 0, ls[id], false)
		it.force = true
		items = append(items, it)
	}
	applied, parked, err := a.applyItems(ctx, items)
	if err != nil {
		return err
	}
	a.log.InfoContext(ctx, "parked learners retried", "due", len(due), "applied", applied, "still_parked", parked)
	return a.save()
}

// fullSync lists every page of the desired state, applies it, ends access
// of learners no longer in it (deleting the erased ones' accounts), and
// saves its asOf as the cursor. reconcile: also every account in Moodle
// with the agent's auth, and every listed learner whatever its version.
func (a *Agent) fullSync(ctx context.Context, reconcile bool) error {
	for attempt := 1; ; attempt++ {
		err := a.fullSyncOnce(ctx, reconcile)
		if isCursorExpired(err) && attempt < 3 {
			// The list's own page cursor went stale: start the list over.
			a.log.WarnContext(ctx, "enrolments cursor expired: listing again")
			continue
		}
		return err
	}
}

type listed struct {
	desired
	// version is the newest learnerVersion among the learner's rows;
	// minVersion the oldest. They differ when the learner changed while the
	// pages were read: the rows on either side of that page boundary are
	// from different versions and some may be missing, so only minVersion
	// is recorded, and the change's event (after asOf) is applied again.
	version, minVersion int64
}

func (a *Agent) fullSyncOnce(ctx context.Context, reconcile bool) error {
	a.log.InfoContext(ctx, "listing the desired state (full sync)", "reconcile", reconcile)
	want := map[string]*listed{}
	after, asOf, rows := "", "", 0
	for page := 0; ; page++ {
		p, err := a.rollcall.enrolments(ctx, after, a.cfg.ListPageSize)
		if err != nil {
			return err
		}
		if page == 0 {
			if p.AsOf == nil || *p.AsOf == "" {
				return errors.New("rollcall enrolments: the first page has no asOf feed cursor")
			}
			asOf = *p.AsOf
		}
		for _, r := range p.Enrolments {
			rows++
			w := want[r.LearnerID]
			if w == nil {
				w = &listed{}
				want[r.LearnerID] = w
			}
			switch {
			case w.version == 0 || r.LearnerVersion > w.version:
				// The first row, or a learner who changed while being
				// listed: keep the newest rows only.
				w.desired = desired{email: r.Email, given: r.GivenName, family: r.FamilyName, allowed: true, profile: true,
					groupID: r.AccessGroupID, groupName: r.AccessGroupName, courses: []string{r.LMSCourseID}}
				if w.version == 0 {
					w.minVersion = r.LearnerVersion
				}
				w.version = r.LearnerVersion
			case r.LearnerVersion == w.version:
				w.courses = appendUnique(w.courses, r.LMSCourseID)
			}
			w.minVersion = min(w.minVersion, r.LearnerVersion)
		}
		if !p.HasNextPage {
			break
		}
		if p.EndCursor == nil || *p.EndCursor == "" || *p.EndCursor == after {
			return errors.New("rollcall enrolments: hasNextPage without a new endCursor")
		}
		after = *p.EndCursor
	}
	// Every group and course of the list is the agent's: a reconcile
	// without a state file must know them to repair cohorts and courses.
	for _, w := range want {
		a.st.addGroup(w.groupID)
		for _, c := range w.courses {
			a.st.addCourse(c)
		}
	}

	var items []item
	for id, w := range want {
		ls := a.st.Learners[id]
		if !reconcile && ls != nil && !ls.Erased && w.version <= ls.Version && a.st.Parked[id] == nil {
			continue
		}
		items = append(items, item{id: id, version: w.minVersion, kind: kindUpsert, d: w.desired, force: reconcile})
	}

	// Learners that left the list: the state's, and with reconcile every
	// account with the agent's auth and an idnumber. Rollcall says which
	// were erased (delete) and which only lost access (suspend); an
	// account whose learner this key cannot read is not this programme's,
	// and is left alone.
	absent := map[string]bool{}
	for id, ls := range a.st.Learners {
		if want[id] == nil && !ls.Erased {
			absent[id] = true
		}
	}
	var remnants []int64
	if reconcile {
		us, err := a.moodle.usersByAuth(ctx, a.cfg.Auth)
		if err != nil {
			return err
		}
		for _, u := range us {
			switch {
			case strings.HasPrefix(u.IDNumber, erasedPrefix):
				remnants = append(remnants, u.ID)
			case u.IDNumber != "" && want[u.IDNumber] == nil:
				absent[u.IDNumber] = true
			}
		}
	}
	if len(absent) > 0 {
		ids := make([]string, 0, len(absent))
		for id := range absent {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		current, err := a.rollcall.learners(ctx, ids)
		if err != nil {
			return err
		}
		for _, id := range ids {
			l := current[id]
			if l == nil && a.st.Learners[id] == nil {
				a.log.WarnContext(ctx, "moodle account with the agent's auth whose learner this API key cannot read: left alone", "idnumber", id)
				continue
			}
			version := int64(0)
			if ls := a.st.Learners[id]; ls != nil {
				version = ls.Version
			}
			// With access but not listed: a learner whose group has no
			// courses (the list has learner × course rows), or one who
			// gained access after the list was read. Applied as read.
			it := itemFromLearner(id, version, l, false)
			it.force = true
			items = append(items, it)
		}
	}
	applied, parked, err := a.applyItems(ctx, items)
	if err != nil {
		return err
	}
	for _, id := range remnants {
		if err := a.deleteOne(ctx, id); err != nil {
			return err
		}
		a.log.InfoContext(ctx, "overwritten account of an erased learner deleted", "moodle_user", id)
	}
	a.st.Cursor = asOf
	if err := a.save(); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "full sync done", "learners", len(want), "rows", rows, "applied", applied, "parked", parked,
		"absent_checked", len(absent), "reconcile", reconcile)
	return nil
}
