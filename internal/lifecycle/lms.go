package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// APIKeyIssuer is the issuer of API-key identities in role grants.
const APIKeyIssuer = "urn:rollcall:api-key"

// apiKeyPrefix marks Rollcall API keys, so the middleware can tell them from JWTs.
const apiKeyPrefix = "rk_"

// DefaultFeedRetention is how long feed rows are kept (cursors older expire).
const DefaultFeedRetention = 30 * 24 * time.Hour

// MaxWait bounds a long-poll.
const MaxWait = 30 * time.Second

// MaxWaitingPolls bounds the long-polls one credential (an API key, an
// identity) may have waiting at once; the reference agent keeps one.
const MaxWaitingPolls = 4

func canSync(a *domain.Actor, programmeID string) bool {
	return a.System || a.Bootstrap || a.ProgrammeAdmin(programmeID) || a.HasRoleIn(programmeID, domain.RoleLMS)
}

// IssueAPIKey creates an LMS key for a programme: a random secret shown once,
// stored as a hash, with an LMS grant so it can do the LMS operations of that
// programme and nothing else.
func (s *Service) IssueAPIKey(ctx context.Context, programmeID, name string) (domain.APIKey, string, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.APIKey{}, "", err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return domain.APIKey{}, "", err
	}
	if !isProgrammeAdmin(a, p.ID) {
		return domain.APIKey{}, "", apperr.Forbiddenf("only a programme admin can issue API keys")
	}
	if name, err = cleanText("name", name, 1, 100); err != nil {
		return domain.APIKey{}, "", err
	}
	secret := apiKeyPrefix + randomToken()
	now := s.clock()
	k := domain.APIKey{ID: newID(), ProgrammeID: p.ID, Name: name, Prefix: secret[:10], Hash: hashToken(secret), CreatedBy: a.ID, CreatedAt: now}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateAPIKey(ctx, k); err != nil {
			return err
		}
		if err := s.st.CreateGrant(ctx, domain.RoleGrant{ID: newID(), Issuer: APIKeyIssuer, Subject: k.ID, Role: domain.RoleLMS,
			ProgrammeID: p.ID, CreatedAt: now, CreatedBy: a.ID}); err != nil {
			return err
		}
		return s.audit(ctx, a, &p.ID, "api_key.issue", "api_key", k.ID, "", map[string]any{"name": name})
	})
	return k, secret, err
}

// RevokeAPIKey ends a key: at once on this replica, within authCacheTTL on
// others (their caches of the key and its grants).
func (s *Service) RevokeAPIKey(ctx context.Context, id string) (domain.APIKey, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.APIKey{}, err
	}
	if !validID(id) {
		return domain.APIKey{}, notFound("API key")
	}
	k, err := s.st.GetAPIKey(ctx, id)
	if err != nil || !canReadProgramme(a, k.ProgrammeID) {
		return domain.APIKey{}, notFound("API key")
	}
	if !isProgrammeAdmin(a, k.ProgrammeID) {
		return domain.APIKey{}, apperr.Forbiddenf("only a programme admin can revoke API keys")
	}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.RevokeAPIKey(ctx, k.ID, s.clock()); err != nil {
			return err
		}
		if err := s.st.DeleteGrantsOf(ctx, APIKeyIssuer, k.ID); err != nil {
			return err
		}
		return s.audit(ctx, a, &k.ProgrammeID, "api_key.revoke", "api_key", k.ID, "", nil)
	})
	if err != nil {
		return k, err
	}
	return s.st.GetAPIKey(ctx, k.ID)
}

// APIKeys lists a programme's keys (never their secrets).
func (s *Service) APIKeys(ctx context.Context, programmeID string) ([]domain.APIKey, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return nil, err
	}
	if !isProgrammeAdmin(a, p.ID) {
		return nil, apperr.Forbiddenf("only a programme admin can list API keys")
	}
	return s.st.APIKeysByProgramme(ctx, p.ID)
}

// APIKeyIdentity resolves a presented API key to its identity; anything
// else (unknown, revoked, malformed) is not a key.
func (s *Service) APIKeyIdentity(ctx context.Context, secret string) (domain.Identity, bool, error) {
	if !strings.HasPrefix(secret, apiKeyPrefix) || len(secret) > 100 {
		return domain.Identity{}, false, nil
	}
	// A live key's identity is cached as grants are (authCache): revoking
	// a key deletes its grants, which moves the store's AuthGeneration, so
	// the key stops working here at once. Only live keys are kept: an
	// unknown secret costs a lookup each time, and cannot fill the cache.
	hash, gen, now := hashToken(secret), s.st.AuthGeneration(), s.clock()
	if id, ok := s.apiKeys.get(hash, gen, now); ok {
		return id, true, nil
	}
	k, err := s.st.APIKeyByHash(ctx, hash)
	if apperr.CodeOf(err) == apperr.NotFound {
		return domain.Identity{}, false, nil
	}
	if err != nil {
		return domain.Identity{}, false, err
	}
	if k.RevokedAt != nil {
		return domain.Identity{}, false, nil
	}
	id := domain.Identity{Issuer: APIKeyIssuer, Subject: k.ID}
	s.apiKeys.put(hash, gen, now, id)
	return id, true, nil
}

// EnrolmentsPage is one page of the desired state.
type EnrolmentsPage struct {
	Enrolments []domain.Enrolment
	HasNext    bool
	Next       EnrolmentCursor
	AsOf       *domain.FeedPosition // first page only
}

// EnrolmentCursor is where the next page starts: after (Learner, Course), or
// after every course of Learner when LearnerDone.
type EnrolmentCursor struct {
	Learner     string
	Course      string
	LearnerDone bool
	Programme   string // CursorTag of the issuing programme; empty for cursors from before tags
}

// CursorTag binds feed and enrolment cursors to their programme: 48 bits of
// a hash of its ID. A cursor carrying another programme's tag is refused
// (after authorisation, like any other argument) instead of silently
// starting at its position in this programme.
func CursorTag(programmeID string) string {
	h := sha256.Sum256([]byte(programmeID))
	return hex.EncodeToString(h[:6])
}

// CursorTagLen is the length of CursorTag's result.
const CursorTagLen = 12

func checkCursorTag(tag, programmeID string) error {
	if tag != "" && tag != CursorTag(programmeID) {
		return apperr.Invalid("after", "this cursor belongs to another programme")
	}
	return nil
}

// Enrolments lists every active learner × course (CTL-4), keyset-paginated.
// The first page carries asOf: following the feed from it after reading all
// pages misses nothing (list + watch); events at or below a listed
// learnerVersion are already reflected.
func (s *Service) Enrolments(ctx context.Context, programmeID string, first int, after EnrolmentCursor) (EnrolmentsPage, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return EnrolmentsPage{}, err
	}
	var p domain.Programme
	if a.System || !(a.ProgrammeAdmin(programmeID) || a.HasRoleIn(programmeID, domain.RoleLMS)) {
		if p, err = s.Programme(ctx, programmeID); err != nil {
			return EnrolmentsPage{}, err
		}
	} else if !validID(programmeID) {
		return EnrolmentsPage{}, notFound("programme")
	} else if p, err = s.st.GetProgramme(ctx, programmeID); err != nil {
		// The LMS's grant proves the programme exists; its contract end
		// is read for CTL-6 below.
		return EnrolmentsPage{}, err
	}
	if !canSync(a, p.ID) {
		return EnrolmentsPage{}, apperr.Forbiddenf("only the programme's LMS and programme admins can read enrolments")
	}
	if first <= 0 || first > 5000 {
		return EnrolmentsPage{}, apperr.Invalid("first", "first must be between 1 and 5000")
	}
	if after.Learner != "" && !validID(after.Learner) {
		return EnrolmentsPage{}, apperr.Invalid("after", "malformed cursor")
	}
	if err := checkCursorTag(after.Programme, p.ID); err != nil {
		return EnrolmentsPage{}, err
	}
	var page EnrolmentsPage
	if after.Learner == "" {
		// Taken before the list is read: every change the first page cannot
		// see is after this position.
		head, err := s.st.FeedHead(ctx, p.ID, s.clock())
		if err != nil {
			return page, err
		}
		page.AsOf = &head
	}
	if contractOver(p, s.clock()) {
		// CTL-6: from the contract end nobody has access, before any sweep
		// erases them: the desired state is empty.
		return page, nil
	}
	// Whole learners only: a learner's rows split over two pages could come
	// from two versions of them, and "keep the highest version" would then
	// skip a change. The store never splits one.
	rows, exhausted, err := s.listEnrolments(ctx, p.ID, after, first)
	if err != nil {
		return page, err
	}
	if !exhausted && len(rows) > 0 {
		page.HasNext = true
		page.Next = EnrolmentCursor{Learner: rows[len(rows)-1].LearnerID, LearnerDone: true}
		s.readEnrolmentsAhead(p.ID, page.Next, first) // readahead.go
	}
	page.Enrolments = rows
	return page, nil
}

// FeedPage is one read of the feed.
type FeedPage struct {
	Events []domain.FeedEvent
	Next   domain.FeedPosition
	More   bool
}

// LifecycleEvents reads the feed after pos (invariant 3); with wait it
// long-polls until something arrives. A position older than the feed
// retention is CURSOR_EXPIRED: the LMS lists enrolments afresh.
func (s *Service) LifecycleEvents(ctx context.Context, programmeID string, pos *domain.FeedPosition, first int, wait time.Duration) (FeedPage, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return FeedPage{}, err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return FeedPage{}, err
	}
	if !canSync(a, p.ID) {
		return FeedPage{}, apperr.Forbiddenf("only the programme's LMS and programme admins can read the feed")
	}
	if first <= 0 || first > 5000 {
		return FeedPage{}, apperr.Invalid("first", "first must be between 1 and 5000")
	}
	if wait < 0 || wait > MaxWait {
		return FeedPage{}, apperr.Invalid("waitSeconds", "waitSeconds must be between 0 and 30")
	}
	if pos != nil {
		if err := checkCursorTag(pos.Programme, p.ID); err != nil {
			return FeedPage{}, err
		}
	}
	now := s.clock()
	var after int64
	if pos != nil {
		after = pos.ID
	}
	var wake <-chan struct{}
	if wait > 0 {
		if !s.polls.acquire(a.ID) {
			return FeedPage{}, apperr.Errorf(apperr.RateLimited,
				"at most %d long-polls may wait at once for one credential; let one return first", MaxWaitingPolls).
				WithField("waitSeconds").WithReason("TOO_MANY_WAITING_POLLS")
		}
		defer s.polls.release(a.ID)
		// Watch before the first read, so an event committed between the
		// read and the wait still wakes this poll.
		w, stop := s.st.WatchFeed(p.ID)
		defer stop()
		wake = w
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		es, horizon, err := s.readEvents(ctx, p.ID, after, first+1)
		if err != nil {
			return FeedPage{}, err
		}
		// Expired only when events after the cursor were purged (the
		// horizon read with the events, on every read of a long-poll): an
		// idle reader at the head keeps its place however long it waits.
		// Reading from the start begins at the horizon.
		from := domain.FeedPosition{ID: horizon}
		if pos != nil {
			from = *pos
			if from.ID < horizon {
				return FeedPage{}, apperr.New(apperr.CursorExpired, "events after this cursor are past the feed's retention; list enrolments again and follow the feed from its asOf").WithField("after")
			}
		}
		page := FeedPage{Next: from}
		if len(es) > first {
			// A full page: the next one is read while this one is written
			// and read (readahead.go).
			s.readFeedAhead(p.ID, es[first-1].ID, first+1)
			es, page.More = es[:first], true
		}
		page.Events = es
		if len(es) > 0 {
			last := es[len(es)-1]
			page.Next = domain.FeedPosition{TxID: last.TxID, ID: last.ID, At: last.OccurredAt}
		}
		page.Next.At = maxTime(page.Next.At, from.At)
		if len(es) == 0 && pos == nil {
			// An empty feed read from the start: hand out a position now,
			// so the reader's cursor ages from today.
			page.Next.At = now
		}
		if len(es) > 0 || wait == 0 {
			s.observeFeedRead(a, p.ID, page)
			return page, nil
		}
		// Idle: no connection held, no query run, until this programme's
		// feed grows, the wait ends or the client goes.
		select {
		case <-ctx.Done():
			return page, nil
		case <-timer.C:
			s.observeFeedRead(a, p.ID, page)
			return page, nil
		case <-wake:
		}
	}
}

// observeFeedRead tells the metrics of an LMS's read: how many events, and
// the age of the last one when more are waiting (how far behind it is).
func (s *Service) observeFeedRead(a *domain.Actor, programmeID string, page FeedPage) {
	if s.feedObs == nil || !a.HasRoleIn(programmeID, domain.RoleLMS) {
		return
	}
	client := a.ID
	if a.Identity.Issuer == APIKeyIssuer {
		client = "api-key:" + a.Identity.Subject
	}
	now := s.clock()
	var lag time.Duration
	if page.More && len(page.Events) > 0 {
		lag = max(now.Sub(page.Events[len(page.Events)-1].OccurredAt), 0)
	}
	s.feedObs.FeedRead(client, len(page.Events), lag, now)
}

// pollSlots counts the long-polls waiting per credential.
type pollSlots struct {
	mu sync.Mutex
	n  map[string]int
}

func (p *pollSlots) acquire(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == nil {
		p.n = map[string]int{}
	}
	if p.n[key] >= MaxWaitingPolls {
		return false
	}
	p.n[key]++
	return true
}

func (p *pollSlots) release(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[key]--; p.n[key] <= 0 {
		delete(p.n, key)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *Service) feedRetention() time.Duration {
	if s.feedKeep > 0 {
		return s.feedKeep
	}
	return DefaultFeedRetention
}

// ActivityResult is one row's outcome.
type ActivityResult struct {
	Index     int
	LearnerID string
	Status    string
	Message   string
}

// MaxActivityRows bounds one recordLearningActivity call.
const MaxActivityRows = 10_000

// RecordLearningActivity takes the LMS's report of activity (ONC-3): per
// learner lastAccessAt (monotonic: an older value never overwrites a newer
// one) and enrolment states. Idempotent, set-based, with per-row results for
// unknown, erased or other-programme learners. It keeps the inactivity clock
// (CTL-7) current, and activity cancels a removal for inactivity.
func (s *Service) RecordLearningActivity(ctx context.Context, programmeID string, rows []domain.ActivityRow) ([]ActivityResult, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return nil, err
	}
	if !canSync(a, p.ID) {
		return nil, apperr.Forbiddenf("only the programme's LMS can report activity")
	}
	if len(rows) == 0 || len(rows) > MaxActivityRows {
		return nil, apperr.Invalid("input", "give between 1 and %d rows", MaxActivityRows)
	}
	courses, err := s.st.CoursesByProgrammes(ctx, []string{p.ID})
	if err != nil {
		return nil, err
	}
	courseByLMS := map[string]string{}
	for _, c := range courses {
		courseByLMS[c.LMSCourseID] = c.ID
	}
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		if validID(r.LearnerID) {
			ids = append(ids, r.LearnerID)
		}
	}
	learners := map[string]domain.Learner{}
	for start := 0; start < len(ids); start += 5000 {
		ls, err := s.st.LearnersByIDs(ctx, ids[start:min(start+5000, len(ids))])
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			learners[l.ID] = l
		}
	}
	now := s.clock()
	results := make([]ActivityResult, len(rows))
	last := map[string]time.Time{}
	type key struct{ l, c string }
	states := map[key]domain.Activity{}
	var revive []string
	validStates := map[string]bool{"ENROLLED": true, "IN_PROGRESS": true, "COMPLETED": true, "SUSPENDED": true}
rowLoop:
	for i, r := range rows {
		res := ActivityResult{Index: i, LearnerID: r.LearnerID, Status: "APPLIED"}
		l, ok := learners[r.LearnerID]
		switch {
		case !ok:
			res.Status, res.Message = "UNKNOWN_LEARNER", "no such learner"
		case l.ProgrammeID != p.ID:
			res.Status, res.Message = "OTHER_PROGRAMME", "the learner belongs to another programme"
		case l.Status == domain.StatusErased:
			res.Status, res.Message = "ERASED", "the learner has been erased"
		case r.LastAccessAt != nil && r.LastAccessAt.After(now.Add(5*time.Minute)):
			res.Status, res.Message = "BAD_INPUT", "lastAccessAt is in the future"
		case r.ObservedAt != nil && r.ObservedAt.After(now.Add(5*time.Minute)):
			res.Status, res.Message = "BAD_INPUT", "observedAt is in the future"
		}
		if res.Status != "APPLIED" {
			results[i] = res
			continue
		}
		for _, e := range r.Enrolments {
			if _, ok := courseByLMS[e.LMSCourseID]; !ok {
				results[i] = ActivityResult{Index: i, LearnerID: r.LearnerID, Status: "UNKNOWN_COURSE", Message: "no course with this lmsCourseId in the programme"}
				continue rowLoop
			}
			if !validStates[e.State] {
				results[i] = ActivityResult{Index: i, LearnerID: r.LearnerID, Status: "BAD_INPUT", Message: "unknown state"}
				continue rowLoop
			}
		}
		if r.LastAccessAt != nil {
			t := r.LastAccessAt.UTC()
			if cur, ok := last[l.ID]; !ok || t.After(cur) {
				last[l.ID] = t
			}
			if l.Status == domain.StatusRemovalScheduled && l.RemovalReason != nil && *l.RemovalReason == domain.RemovalInactivity &&
				(l.LastActivityAt == nil || t.After(*l.LastActivityAt)) &&
				(p.Settings.InactivityLimit == nil || t.After(now.Add(-*p.Settings.InactivityLimit))) {
				revive = append(revive, l.ID)
			}
		}
		for _, e := range r.Enrolments {
			k := key{l.ID, courseByLMS[e.LMSCourseID]}
			if prev, ok := states[k]; ok && prev.ObservedAt != nil && r.ObservedAt != nil && r.ObservedAt.Before(*prev.ObservedAt) {
				continue // the batch holds a later reading of this enrolment
			}
			states[k] = domain.Activity{LearnerID: l.ID, CourseID: k.c, State: e.State, CompletedAt: e.CompletedAt,
				LastAccessAt: r.LastAccessAt, ObservedAt: r.ObservedAt}
		}
		results[i] = res
	}
	list := make([]domain.Activity, 0, len(states))
	for _, a := range states {
		list = append(list, a)
	}
	applied := 0
	for _, r := range results {
		if r.Status == "APPLIED" {
			applied++
		}
	}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.RecordActivity(ctx, last, list, now); err != nil {
			return err
		}
		for _, id := range revive {
			// CTL-7: activity cancels a removal for inactivity.
			l, err := s.st.GetLearner(ctx, id, true)
			if err != nil {
				return err
			}
			if l.Status != domain.StatusRemovalScheduled || l.RemovalReason == nil || *l.RemovalReason != domain.RemovalInactivity {
				continue // changed since it was read
			}
			if _, err := s.changeLocked(ctx, a, l, func(ctx context.Context, c *change) error {
				return s.cancelRemoval(ctx, a, c, domain.RemovalInactivity)
			}); err != nil {
				return err
			}
		}
		return s.audit(ctx, a, &p.ID, "activity.record", "programme", p.ID, "",
			map[string]any{"rows": len(rows), "applied": applied, "removalsCancelled": len(revive)})
	})
	return results, err
}
