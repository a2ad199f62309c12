package lifecycle

import (
	"context"
	"sync"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Read-ahead for the LMS's two paged reads (the feed and enrolments).
//
// An LMS drains them one page after another: it asks for a page, takes
// its cursor, and asks for the next. Between two pages the service and the
// database sat idle while the answer crossed the network and the client
// decoded it, and the next page's statement then ran while the client sat
// idle. So when a page is full, the service reads the next one at once, in
// the background, while this one is written and read; the request for it
// takes the rows read. In a drain of 1,000,000 feed events in pages of
// 1,000, with the client decoding the JSON on the same two cores, that was
// about a fifth of the time (docs/performance.md).
//
// Only a full page read ahead is served (the feed: first+1 events;
// enrolments: a page that is not the list's last), and only one that is
// the page a fresh read at the request would give:
//
//   - The feed: events of a programme are numbered in commit order (the
//     per-programme feed lock is taken in the statement that draws the IDs
//     and held through commit, store.AppendEvents and the import; SQLite
//     has one writer), so once an event is visible no event before it can
//     appear later. The first+1 events after a cursor, once they exist, are
//     the same whenever they are read, until the retention purge removes
//     them. A purge by this process's sweep drops every page read ahead
//     (forget); one by another process (another replica, `rollcall sweep`
//     from cron) is seen within feedAheadTTL, and until then the page
//     served is the contiguous run of events that was there, its cursor
//     answering CURSOR_EXPIRED on the next read as it would have.
//   - Enrolments change with the learners (on a programme whose learners
//     change every moment, most pages read ahead are then read again: two
//     statements in the background for nothing, bounded by aheadMaxRunning). A page read ahead records the
//     feed's head before its rows are read, and is served only if the head
//     has not moved since (one cheap statement on the request's path): every
//     state change is written in the same transaction as its feed event
//     (invariant 5), so an unmoved head means no change was committed after
//     the rows' read began, and the rows are what a read now would return.
//     A learner who withdrew or was erased since is therefore never served,
//     and a drain started later (a retry, a second worker) never gets rows
//     older than its asOf.
//
// A partial page (the feed's head, the list's end) is never served from a
// read ahead: there, what a later read adds is what the client wants.
//
// Authorisation is decided for each request before it looks here
// (LifecycleEvents, Enrolments, after the contract end and the cursor's
// programme are checked); a read ahead is keyed by programme, position and
// page size only, and holds rows any caller allowed that page would get. It
// runs in the background with its own deadline, not the request's, holds no
// actor, and its failure is never an answer: the request then reads for
// itself. At most aheadMaxEntries are kept per read, and at most
// aheadMaxRunning run at once in the service, so they never take more than
// a few of the pool's connections; beyond that a page is simply not read
// ahead. One not taken within its TTL is dropped.
type readAhead[K comparable, V any] struct {
	ttl     time.Duration
	slots   chan struct{} // shared by the service's reads ahead (aheadMaxRunning)
	mu      sync.Mutex
	entries map[K]*aheadRead[V]
	closed  bool // StopReadAhead: none starts any more
	running sync.WaitGroup
}

type aheadRead[V any] struct {
	done  chan struct{}
	start time.Time
	v     V
	ok    bool // read without error, and a full page
}

// aheadMaxEntries bounds the pages kept per read: about 5 MB of pages of
// 1,000 events, 10 MB of enrolments.
const aheadMaxEntries = 32

// aheadMaxRunning bounds the reads ahead running at once in a service: a
// fifth of the store's default PostgreSQL pool (20 connections).
const aheadMaxRunning = 4

const (
	// feedAheadTTL: a full page of the feed does not change (above) but
	// for the purge; another replica's purge reaches this one's reads
	// ahead within this.
	feedAheadTTL = 30 * time.Second
	// enrolmentsAheadTTL: how long a page of enrolments read ahead is kept.
	// Its freshness is the head check's, whatever its age; the TTL only
	// bounds what an LMS that stopped leaves behind. An LMS applying a page
	// to Moodle (a call per learner) comes back after many seconds: the
	// reference agent's next page is still kept then.
	enrolmentsAheadTTL = 30 * time.Second
	// aheadDeadline bounds a read ahead's statement.
	aheadDeadline = 10 * time.Second
)

// start reads k in the background unless a read of it is kept already or
// too many are. now is the service's clock.
func (c *readAhead[K, V]) start(k K, now time.Time, read func(context.Context) (V, bool)) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if r, ok := c.entries[k]; ok && now.Sub(r.start) < c.ttl {
		c.mu.Unlock()
		return
	}
	if len(c.entries) >= aheadMaxEntries {
		for key, r := range c.entries {
			if now.Sub(r.start) >= c.ttl {
				delete(c.entries, key)
			}
		}
		if len(c.entries) >= aheadMaxEntries {
			c.mu.Unlock()
			return
		}
	}
	select {
	case c.slots <- struct{}{}:
	default: // as many running as the pool can spare: not read ahead
		c.mu.Unlock()
		return
	}
	if c.entries == nil {
		c.entries = make(map[K]*aheadRead[V])
	}
	r := &aheadRead[V]{done: make(chan struct{}), start: now}
	c.entries[k] = r
	c.running.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.running.Done()
		defer func() { <-c.slots }()
		defer close(r.done)
		ctx, cancel := context.WithTimeout(context.Background(), aheadDeadline)
		defer cancel()
		r.v, r.ok = read(ctx)
	}()
}

// take removes k's read ahead and returns its page once read, if it was
// read whole and within the TTL; otherwise the caller reads for itself.
func (c *readAhead[K, V]) take(ctx context.Context, k K, now time.Time) (V, bool) {
	var zero V
	c.mu.Lock()
	r, ok := c.entries[k]
	delete(c.entries, k)
	c.mu.Unlock()
	if !ok || now.Sub(r.start) >= c.ttl {
		return zero, false
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return zero, false
	}
	if !r.ok {
		return zero, false
	}
	return r.v, true
}

// forget drops every read ahead (those running finish unseen).
func (c *readAhead[K, V]) forget() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}

// The feed's reads ahead: the events after a position, limit rows.
type feedAheadKey struct {
	programme string
	after     int64
	limit     int
}

type feedAheadPage struct {
	events  []domain.FeedEvent
	horizon int64
}

// The enrolments' reads ahead: the page after a cursor (its position; the
// programme it names is checked before).
type enrolmentsAheadKey struct {
	programme, learner, course string
	learnerDone                bool
	first                      int
}

type enrolmentsAheadPage struct {
	rows      []domain.Enrolment
	exhausted bool
	head      int64 // the feed's head before the rows were read
}

// readEvents is the feed's read of limit events after a position: the
// page read ahead if there is one, else the store's.
func (s *Service) readEvents(ctx context.Context, programmeID string, after int64, limit int) ([]domain.FeedEvent, int64, error) {
	if pg, ok := s.feedAhead.take(ctx, feedAheadKey{programmeID, after, limit}, s.clock()); ok {
		return pg.events, pg.horizon, nil
	}
	return s.st.ReadEvents(ctx, programmeID, after, limit)
}

// readFeedAhead reads the limit events after a position in the background.
func (s *Service) readFeedAhead(programmeID string, after int64, limit int) {
	s.feedAhead.start(feedAheadKey{programmeID, after, limit}, s.clock(), func(ctx context.Context) (feedAheadPage, bool) {
		es, horizon, err := s.st.ReadEvents(ctx, programmeID, after, limit)
		return feedAheadPage{es, horizon}, err == nil && len(es) == limit
	})
}

// listEnrolments is a page of enrolments after a cursor: the page read
// ahead if there is one, else the store's.
func (s *Service) listEnrolments(ctx context.Context, programmeID string, after EnrolmentCursor, first int) ([]domain.Enrolment, bool, error) {
	k := enrolmentsAheadKey{programmeID, after.Learner, after.Course, after.LearnerDone, first}
	if pg, ok := s.enrolmentsAhead.take(ctx, k, s.clock()); ok {
		// Nothing committed since the rows were read (a failed look reads
		// for itself below).
		if head, err := s.st.FeedHead(ctx, programmeID, s.clock()); err == nil && head.ID == pg.head {
			return pg.rows, pg.exhausted, nil
		}
	}
	return s.st.ListEnrolments(ctx, programmeID, after.Learner, after.Course, after.LearnerDone, first)
}

// readEnrolmentsAhead reads the page after a cursor in the background.
func (s *Service) readEnrolmentsAhead(programmeID string, after EnrolmentCursor, first int) {
	s.enrolmentsAhead.start(enrolmentsAheadKey{programmeID, after.Learner, after.Course, after.LearnerDone, first}, s.clock(), func(ctx context.Context) (enrolmentsAheadPage, bool) {
		head, err := s.st.FeedHead(ctx, programmeID, s.clock())
		if err != nil {
			return enrolmentsAheadPage{}, false
		}
		rows, exhausted, err := s.st.ListEnrolments(ctx, programmeID, after.Learner, after.Course, after.LearnerDone, first)
		return enrolmentsAheadPage{rows, exhausted, head.ID}, err == nil && !exhausted && len(rows) > 0
	})
}

// SettleReadAhead waits for the reads ahead running now, for tests that
// count statements; call it when no request is being served.
func (s *Service) SettleReadAhead() {
	s.feedAhead.running.Wait()
	s.enrolmentsAhead.running.Wait()
}

// StopReadAhead stops reading ahead, for good, and waits for the reads
// running: before the store closes, even while requests are still served
// (a shutdown that timed out).
func (s *Service) StopReadAhead() {
	for _, c := range []interface{ stop() }{&s.feedAhead, &s.enrolmentsAhead} {
		c.stop()
	}
	s.SettleReadAhead()
}

// stop makes start refuse from now on; a start that got in before has
// added itself to running already (under mu).
func (c *readAhead[K, V]) stop() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}
