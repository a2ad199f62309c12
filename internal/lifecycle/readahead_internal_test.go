package lifecycle

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// The read-ahead cache itself: a page is served once, only when read whole
// and within its TTL; a read kept is not started again; and no more than
// aheadMaxEntries are kept or running.
func TestReadAhead_ServedOnceWholeAndFresh(t *testing.T) {
	now := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	var c readAhead[int, string]
	c.ttl, c.slots = 5*time.Second, make(chan struct{}, 2*aheadMaxEntries)
	var reads atomic.Int32
	read := func(v string, ok bool) func(context.Context) (string, bool) {
		return func(ctx context.Context) (string, bool) {
			reads.Add(1)
			if _, has := ctx.Deadline(); !has {
				t.Error("a read ahead runs without a deadline")
			}
			return v, ok
		}
	}
	ctx := context.Background()

	c.start(1, now, read("page 1", true))
	c.start(1, now, read("page 1 again", true)) // kept already: not read again
	c.running.Wait()
	if v, ok := c.take(ctx, 1, now.Add(4*time.Second)); !ok || v != "page 1" || reads.Load() != 1 {
		t.Fatalf("take within the TTL: %q %v after %d reads", v, ok, reads.Load())
	}
	if _, ok := c.take(ctx, 1, now); ok {
		t.Fatal("a page read ahead was served twice")
	}

	c.start(2, now, read("page 2", true))
	if _, ok := c.take(ctx, 2, now.Add(5*time.Second)); ok {
		t.Fatal("a page read ahead was served past its TTL")
	}
	c.start(3, now, read("", false)) // failed, or not a full page
	if _, ok := c.take(ctx, 3, now); ok {
		t.Fatal("a failed read ahead was served")
	}
	if _, ok := c.take(ctx, 4, now); ok {
		t.Fatal("a page never read ahead was served")
	}

	// Full: a new read starts only once an entry has aged past the TTL.
	for k := 10; k < 10+aheadMaxEntries; k++ {
		c.start(k, now, read("kept", true))
		c.running.Wait()
	}
	c.running.Wait()
	before := reads.Load()
	c.start(100, now.Add(time.Second), read("one too many", true))
	c.running.Wait()
	if reads.Load() != before {
		t.Fatal("a read ahead started with the cache full of fresh entries")
	}
	c.start(100, now.Add(c.ttl), read("after the others aged", true))
	c.running.Wait()
	if v, ok := c.take(ctx, 100, now.Add(c.ttl)); !ok || v != "after the others aged" {
		t.Fatalf("after the others aged: %q %v", v, ok)
	}
	if n := len(c.entries); n != 0 {
		t.Fatalf("%d entries kept after they aged and one was taken", n)
	}

	// A request whose context ends while the read runs reads for itself.
	block := make(chan struct{})
	c.start(200, now, func(context.Context) (string, bool) { <-block; return "late", true })
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := c.take(cctx, 200, now); ok {
		t.Fatal("a read ahead still running was served to a request that had gone")
	}
	close(block)
	c.running.Wait()

	c.start(300, now, read("before the purge", true))
	c.running.Wait()
	c.forget()
	if _, ok := c.take(ctx, 300, now); ok {
		t.Fatal("a page read ahead before forget was served")
	}
}

// No more than aheadMaxRunning reads ahead run at once in a service, the
// feed's and the enrolments' together; a page past that is not read ahead.
func TestReadAhead_AtMostAFewRunAtOnce(t *testing.T) {
	now := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	s := New(nil, Options{Clock: func() time.Time { return now }})
	block := make(chan struct{})
	var started atomic.Int32
	slow := func(context.Context) (feedAheadPage, bool) { started.Add(1); <-block; return feedAheadPage{}, true }
	slowE := func(context.Context) (enrolmentsAheadPage, bool) {
		started.Add(1)
		<-block
		return enrolmentsAheadPage{}, true
	}
	for i := range aheadMaxRunning - 1 {
		s.feedAhead.start(feedAheadKey{"p", int64(i), 10}, now, slow)
	}
	s.enrolmentsAhead.start(enrolmentsAheadKey{programme: "p", learner: "l", first: 10}, now, slowE)
	s.feedAhead.start(feedAheadKey{"p", 99, 10}, now, slow)
	s.enrolmentsAhead.start(enrolmentsAheadKey{programme: "p", learner: "m", first: 10}, now, slowE)
	if n := len(s.feedAhead.entries) + len(s.enrolmentsAhead.entries); n != aheadMaxRunning {
		t.Fatalf("%d reads ahead kept with %d running at most", n, aheadMaxRunning)
	}
	close(block)
	s.SettleReadAhead()
	if n := started.Load(); n != aheadMaxRunning {
		t.Fatalf("%d reads ahead ran, want %d", n, aheadMaxRunning)
	}
	// Once they are done, a slot is free again.
	s.feedAhead.start(feedAheadKey{"p", 99, 10}, now, slow)
	s.SettleReadAhead()
	if n := started.Load(); n != aheadMaxRunning+1 {
		t.Fatalf("after the others finished: %d reads ahead ran, want %d", n, aheadMaxRunning+1)
	}
}

// After StopReadAhead nothing is read ahead any more.
func TestReadAhead_StopRefusesNewReads(t *testing.T) {
	now := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	s := New(nil, Options{Clock: func() time.Time { return now }})
	s.StopReadAhead()
	s.feedAhead.start(feedAheadKey{"p", 1, 10}, now, func(context.Context) (feedAheadPage, bool) {
		t.Error("a read ahead ran after StopReadAhead")
		return feedAheadPage{}, true
	})
	s.SettleReadAhead()
	if len(s.feedAhead.entries) != 0 {
		t.Fatal("a read ahead was kept after StopReadAhead")
	}
}
