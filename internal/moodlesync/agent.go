package moodlesync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
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
}

// Agent keeps one Moodle site in step with one Rollcall programme.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	rollcall *rollcallClient
	moodle   *moodleClient

	running sync.Mutex
	st      *state
	// cohorts maps a cohort idnumber to its Moodle id (nil: not loaded);
	// courses maps an lmsCourseId (course idnumber) to its Moodle id.
	cohorts map[string]int64
	courses map[string]int64
	// expiredInARow guards against a feed that expires every cursor.
	expiredInARow int
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
	st, err := loadState(cfg.StateFile, cfg.ProgrammeID, strings.TrimSuffix(moodleEndpoint, "/webservice/rest/server.php"))
	if err != nil {
		return nil, err
	}
	log := cfg.Log.With("programme", cfg.ProgrammeID)
	return &Agent{
		cfg: cfg,
		log: log,
		st:  st,
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

// RunOnce syncs until caught up: a full list of the desired state when there
// is no cursor (first run, or the cursor expired), then every feed page up to
// the present. The cursor is saved after every page. It returns the first
// error that retries could not overcome; what was applied until then is
// saved, and the next RunOnce (of this or a new Agent on the same state file)
// goes on from there.
func (a *Agent) RunOnce(ctx context.Context) error {
	if !a.running.TryLock() {
		return errBusy
	}
	defer a.running.Unlock()
	a.resetCaches()
	total := 0
	for {
		caughtUp, n, err := a.step(ctx, 0)
		total += n
		if err != nil {
			return err
		}
		if caughtUp {
			a.log.InfoContext(ctx, "caught up", "events", total)
			return nil
		}
	}
}

// Run syncs until ctx is done, long-polling the feed when caught up. Failures
// are logged and retried with back-off (up to 5 minutes apart); it returns
// nil when ctx is done, or an error only when retrying cannot help (a bad API
// key or Moodle token, a web-service function not enabled, an unusable state
// file).
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
		cu, n, err := a.step(ctx, wait)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			if Fatal(err) {
				return err
			}
			failures++
			d := (Retry{BaseDelay: time.Second, MaxDelay: 5 * time.Minute}).withDefaults().delay(failures)
			a.log.ErrorContext(ctx, "sync failed, will retry", "err", err.Error(), "retry_in", d, "failures", failures)
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
	a.courses = map[string]int64{}
}

func (a *Agent) save() error { return a.st.save(a.cfg.StateFile) }

// step lists the desired state if there is no cursor, then reads and applies
// one feed page. caughtUp: the page was the last one for now.
func (a *Agent) step(ctx context.Context, wait time.Duration) (caughtUp bool, events int, err error) {
	if a.st.Cursor == "" {
		if err := a.fullSync(ctx); err != nil {
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

func (a *Agent) applyPage(ctx context.Context, page *eventPage) error {
	if page.Cursor == "" {
		return errors.New("rollcall lifecycleEvents: empty cursor")
	}
	if page.HasMore && len(page.Events) == 0 && page.Cursor == a.st.Cursor {
		return errors.New("rollcall lifecycleEvents: hasMore without progress")
	}
	applied := 0
	for _, ev := range page.Events {
		did, err := a.applyEvent(ctx, ev)
		if err != nil {
			// Keep what was applied: the page is read again from its
			// start, and its applied events are skipped by version.
			if serr := a.save(); serr != nil {
				err = errors.Join(err, serr)
			}
			return fmt.Errorf("learner %s, event %s v%d: %w", ev.LearnerID, ev.Type, ev.LearnerVersion, err)
		}
		if did {
			applied++
		}
	}
	a.st.Cursor = page.Cursor
	if err := a.save(); err != nil {
		return err
	}
	if len(page.Events) > 0 {
		a.log.InfoContext(ctx, "feed page applied", "events", len(page.Events), "applied", applied, "skipped", len(page.Events)-applied)
	}
	return nil
}

// applyEvent applies the learner's current data, unless an equal or later
// version was applied already. did: something was applied.
func (a *Agent) applyEvent(ctx context.Context, ev lifecycleEvent) (did bool, err error) {
	id := ev.LearnerID
	if id == "" {
		return false, errors.New("event without learnerId")
	}
	if ls := a.st.Learners[id]; ls != nil && ev.LearnerVersion <= ls.Version {
		a.log.DebugContext(ctx, "event already applied", "learner", id, "type", ev.Type, "version", ev.LearnerVersion, "applied_version", ls.Version)
		return false, nil
	}
	l := ev.Learner
	if ls := a.st.Learners[id]; ls != nil && ls.Erased && (l == nil || l.Status == "ERASED") {
		// Erasure is final and done; an erased learner's events carry no
		// data, so their versions could not be skipped at once.
		ls.Version = max(ls.Version, ev.LearnerVersion)
		return false, nil
	}
	if ev.Type == "LEARNER_ERASED" || l != nil && l.Status == "ERASED" {
		if err := a.erase(ctx, id); err != nil {
			return false, err
		}
		ls := a.st.learner(id)
		ls.Version = max(ls.Version, ev.LearnerVersion)
		ls.Erased, ls.Group, ls.Courses = true, "", nil
		return true, nil
	}
	if l == nil {
		// Null is what an erased learner reads as, and their
		// LEARNER_ERASED event follows in the feed; but it is also what the
		// server answers for a learner it could not load. Deleting cannot
		// be undone, so: end access now, delete on the erasure event.
		did, err := a.suspendIfActive(ctx, id)
		if err != nil {
			return false, err
		}
		a.log.WarnContext(ctx, "learner data unavailable (erased, or not readable): access ended, deletion waits for LEARNER_ERASED",
			"learner", id, "type", ev.Type, "version", ev.LearnerVersion, "suspended_now", did)
		ls := a.st.learner(id)
		ls.Version = max(ls.Version, ev.LearnerVersion)
		return true, nil
	}
	if l.ID != "" && l.ID != id {
		return false, fmt.Errorf("event for learner %s carries learner %s", id, l.ID)
	}
	d := desired{allowed: l.AccessAllowed}
	if l.Email != nil {
		d.email = *l.Email
	}
	d.given, d.family = l.GivenName, l.FamilyName
	if l.AccessGroup != nil {
		d.groupID, d.groupName = l.AccessGroup.ID, l.AccessGroup.Name
	}
	for _, c := range l.Courses {
		d.courses = appendUnique(d.courses, c.LMSCourseID)
	}
	// The learner field is read now: it may be ahead of the event, and
	// then the events up to its version are covered too.
	if err := a.applyLearner(ctx, id, d, max(ev.LearnerVersion, l.Version)); err != nil {
		return false, err
	}
	return true, nil
}

func appendUnique(xs []string, x string) []string {
	for _, y := range xs {
		if y == x {
			return xs
		}
	}
	return append(xs, x)
}

// fullSync lists every page of the desired state, applies it, suspends
// known learners that left it, and saves its asOf as the cursor.
func (a *Agent) fullSync(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := a.fullSyncOnce(ctx)
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

func (a *Agent) fullSyncOnce(ctx context.Context) error {
	a.log.InfoContext(ctx, "listing the desired state (full sync)")
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
				w.desired = desired{email: r.Email, given: r.GivenName, family: r.FamilyName, allowed: true,
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
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	applied := 0
	for _, id := range ids {
		w := want[id]
		if ls := a.st.Learners[id]; ls != nil && !ls.Erased && w.version <= ls.Version {
			continue
		}
		if err := a.applyLearner(ctx, id, w.desired, w.minVersion); err != nil {
			if serr := a.save(); serr != nil {
				err = errors.Join(err, serr)
			}
			return fmt.Errorf("full sync, learner %s: %w", id, err)
		}
		applied++
		if applied%200 == 0 {
			if err := a.save(); err != nil {
				return err
			}
		}
	}
	// Learners this agent put in Moodle who are no longer in the list have
	// lost access (withdrawn, removal scheduled, or erased: the list cannot
	// tell which). Suspend them; deleting would destroy the Moodle record of
	// someone who may be reinstated.
	known := make([]string, 0, len(a.st.Learners))
	for id, ls := range a.st.Learners {
		if want[id] == nil && !ls.Erased {
			known = append(known, id)
		}
	}
	sort.Strings(known)
	suspended := 0
	for _, id := range known {
		did, err := a.suspendIfActive(ctx, id)
		if err != nil {
			if serr := a.save(); serr != nil {
				err = errors.Join(err, serr)
			}
			return fmt.Errorf("full sync, learner %s: %w", id, err)
		}
		if did {
			suspended++
		}
	}
	a.st.Cursor = asOf
	if err := a.save(); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "full sync done", "learners", len(want), "rows", rows, "applied", applied, "suspended_absent", suspended)
	return nil
}
