package store

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rollcall-dev/rollcall/migrations"
)

// Feed wake-ups for long-polls (lifecycleEvents(waitSeconds)).
//
// On PostgreSQL a writer's transaction runs pg_notify(feedChannel,
// programmeID) beside the feed rows it appends; PostgreSQL delivers the
// notification when, and only if, the transaction commits, and folds
// duplicates within one transaction ("NOTIFY" in the PostgreSQL manual). Each
// replica keeps ONE connection that LISTENs, outside the pool, and fans each
// notification out in process to the waiters of that programme only (pgx's
// Conn.WaitForNotification blocks on the socket; conn.go in jackc/pgx/v5). A
// waiting poller holds no pooled connection and runs no query until it is
// woken. When the listening connection drops, every waiter is woken (they
// read once and wait again) and it reconnects with a backoff.
//
// On SQLite (one process) InTx broadcasts in process after the commit.
const feedChannel = "rollcall_feed"

type feedHub struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
	started bool
	stop    context.CancelFunc
	done    chan struct{}
	// listening reports whether the PostgreSQL listener is connected (tests).
	listening bool
}

// WatchFeed returns a channel that receives when events of programmeID have
// committed after this call, and a function to stop watching. The channel
// holds at most one pending wake-up.
func (s *Store) WatchFeed(programmeID string) (<-chan struct{}, func()) {
	h := &s.hub
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.waiters == nil {
		h.waiters = map[string]map[chan struct{}]struct{}{}
	}
	set := h.waiters[programmeID]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		h.waiters[programmeID] = set
	}
	set[ch] = struct{}{}
	if !h.started && s.dialect == migrations.Postgres {
		h.started = true
		ctx, cancel := context.WithCancel(context.Background())
		h.stop, h.done = cancel, make(chan struct{})
		go s.listen(ctx)
	}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.waiters[programmeID], ch)
		if len(h.waiters[programmeID]) == 0 {
			delete(h.waiters, programmeID)
		}
		h.mu.Unlock()
	}
}

// Watchers counts the waiters of a programme (tests, metrics).
func (s *Store) Watchers(programmeID string) int {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return len(s.hub.waiters[programmeID])
}

// wake tells the waiters of programmeID ("" : every waiter).
func (h *feedHub) wake(programmeID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	send := func(set map[chan struct{}]struct{}) {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default: // already has a wake-up pending
			}
		}
	}
	if programmeID == "" {
		for _, set := range h.waiters {
			send(set)
		}
		return
	}
	send(h.waiters[programmeID])
}

// listen keeps the replica's one listening connection until Close.
func (s *Store) listen(ctx context.Context) {
	defer close(s.hub.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		s.hub.mu.Lock()
		s.hub.listening = false
		s.hub.mu.Unlock()
		// Whatever was notified while the connection was down is lost: let
		// every waiter read once.
		s.hub.wake("")
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}

func (s *Store) listenOnce(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, s.dsn)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+feedChannel); err != nil {
		return err
	}
	s.hub.mu.Lock()
	s.hub.listening = true
	s.hub.mu.Unlock()
	// Events may have committed between the last connection's loss and
	// this LISTEN.
	s.hub.wake("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		s.hub.wake(n.Payload)
	}
}

// Listening reports whether this replica's feed listener is connected
// (always true on SQLite, which needs none).
func (s *Store) Listening() bool {
	if s.dialect != migrations.Postgres {
		return true
	}
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.hub.listening
}

func (h *feedHub) close() {
	h.mu.Lock()
	stop, done := h.stop, h.done
	h.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// committedKey carries the programmes whose feed a transaction appended to,
// for the SQLite broadcast after commit.
type committedKey struct{}

type touched struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (t *touched) add(id string) {
	t.mu.Lock()
	if t.ids == nil {
		t.ids = map[string]bool{}
	}
	t.ids[id] = true
	t.mu.Unlock()
}

// feedAppended records that the feed of programmeID grew in ctx's
// transaction (SQLite: woken after commit; outside a transaction: now).
func (s *Store) feedAppended(ctx context.Context, programmeID string) {
	if s.dialect == migrations.Postgres {
		return // pg_notify in the transaction
	}
	if t, ok := ctx.Value(committedKey{}).(*touched); ok {
		t.add(programmeID)
		return
	}
	s.hub.wake(programmeID)
}
