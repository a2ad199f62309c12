package graph_test

// Long-polls wake on the feed's notifications (PostgreSQL LISTEN/NOTIFY, an
// in-process broadcast on SQLite): an idle poll holds no connection and runs
// no query, a change wakes only its programme's polls, and one credential
// may keep only lifecycle.MaxWaitingPolls waiting.

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

type lpResult struct {
	page lmsFeedPage
	code string
	err  string
}

func lpPoll(e *lmsEnv, tok, programmeID string, after *string, wait int) <-chan lpResult {
	ch := make(chan lpResult, 1)
	go func() {
		r, err := lmsPost(e.api, tok, lmsFeedQuery, lmsFeedVars(programmeID, after, 100, wait))
		var res lpResult
		switch {
		case err != nil:
			res.err = err.Error()
		case len(r.Errors) > 0:
			res.code, res.err = r.Code(), lmsErrs(r)
		default:
			var out struct{ LifecycleEvents lmsFeedPage }
			if err := json.Unmarshal(r.Data, &out); err != nil {
				res.err = err.Error()
			}
			res.page = out.LifecycleEvents
		}
		ch <- res
	}()
	return ch
}

// lpWaiting waits until n polls of programmeID are parked on the feed.
func lpWaiting(t *testing.T, e *lmsEnv, programmeID string, n int) {
	t.Helper()
	for i := 0; e.api.Store.Watchers(programmeID) != n; i++ {
		if i > 1000 {
			t.Fatalf("%d polls waiting on the feed, want %d", e.api.Store.Watchers(programmeID), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lpListening starts the replica's feed listener (the first long-poll does)
// and waits until it is connected, so its first wake-up of every poll (for
// events it may have missed while connecting) is over before a test counts.
func lpListening(t *testing.T, e *lmsEnv, tok, programmeID string, cur *string) {
	t.Helper()
	if r := lpGet(t, lpPoll(e, tok, programmeID, cur, 1)); r.err != "" {
		t.Fatalf("first poll: %s", r.err)
	}
	for i := 0; !e.api.Store.Listening(); i++ {
		if i > 1000 {
			t.Fatal("the feed listener did not connect")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lpGet(t *testing.T, ch <-chan lpResult) lpResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll did not return")
	}
	return lpResult{}
}

func TestFeed_LongPollIdleRunsNoQueryAndWakesOnlyItsProgramme(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		_, ctlKey := e.issueKey(t, e.ctl.ID, "Moodle")
		_, oncKey := e.issueKey(t, e.onc.ID, "Moodle")
		_, ctlCur := e.drain(t, ctlKey, e.ctl.ID, nil, 500)
		_, oncCur := e.drain(t, oncKey, e.onc.ID, nil, 500)
		lpListening(t, e, ctlKey, e.ctl.ID, &ctlCur)

		ctl := lpPoll(e, ctlKey, e.ctl.ID, &ctlCur, 20)
		onc := lpPoll(e, oncKey, e.onc.ID, &oncCur, 20)
		lpWaiting(t, e, e.ctl.ID, 1)
		lpWaiting(t, e, e.onc.ID, 1)

		// A poll watches the feed before its first read (so nothing is
		// missed between the two): let that read finish before counting.
		before := e.api.Statements.Load()
		for i := 0; i < 100; i++ {
			time.Sleep(200 * time.Millisecond)
			now := e.api.Statements.Load()
			if now == before {
				break
			}
			before = now
		}
		// Parked: no statement runs while they wait.
		time.Sleep(1500 * time.Millisecond)
		if n := e.api.Statements.Load() - before; n != 0 {
			t.Fatalf("two idle long-polls ran %d SQL statements in 1.5s, want none", n)
		}
		if e.api.Store.Dialect() == "postgres" {
			if used := e.api.Store.SQL().Stats().InUse; used != 0 {
				t.Fatalf("idle long-polls hold %d pooled connections, want none", used)
			}
		}

		// A change in Connect to Learn wakes its poll, and only its poll.
		learner := e.newLearner(t, e.kcc, "")
		r := lpGet(t, ctl)
		if r.err != "" || len(r.page.Events) != 1 || r.page.Events[0].LearnerID != learner {
			t.Fatalf("Connect to Learn's poll: %+v %s, want the new learner", r.page.Events, r.err)
		}
		select {
		case r := <-onc:
			t.Fatalf("Onclick's poll returned on Connect to Learn's change: %+v %s", r.page, r.err)
		case <-time.After(500 * time.Millisecond):
		}
		if n := e.api.Store.Watchers(e.onc.ID); n != 1 {
			t.Fatalf("Onclick's poll is no longer waiting (%d waiters)", n)
		}
		// And Onclick's own change wakes it.
		wsccLearner := e.newLearner(t, e.wscc, "")
		if r := lpGet(t, onc); r.err != "" || len(r.page.Events) != 1 || r.page.Events[0].LearnerID != wsccLearner {
			t.Fatalf("Onclick's poll: %+v %s", r.page.Events, r.err)
		}
	})
}

func TestFeed_LongPollsBoundedPerCredential(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		_, key := e.issueKey(t, e.ctl.ID, "Moodle")
		_, other := e.issueKey(t, e.ctl.ID, "Second Moodle")
		_, cur := e.drain(t, key, e.ctl.ID, nil, 500)
		var polls []<-chan lpResult
		for range lifecycle.MaxWaitingPolls {
			polls = append(polls, lpPoll(e, key, e.ctl.ID, &cur, 20))
		}
		lpWaiting(t, e, e.ctl.ID, lifecycle.MaxWaitingPolls)

		r := lpGet(t, lpPoll(e, key, e.ctl.ID, &cur, 20))
		if r.code != "RATE_LIMITED" {
			t.Fatalf("poll %d of one key: code %q (%s), want RATE_LIMITED", lifecycle.MaxWaitingPolls+1, r.code, r.err)
		}
		// A poll without waiting, and another key's poll, are not limited.
		if r := lpGet(t, lpPoll(e, key, e.ctl.ID, &cur, 0)); r.err != "" {
			t.Fatalf("a poll without wait refused: %s", r.err)
		}
		otherPoll := lpPoll(e, other, e.ctl.ID, &cur, 20)
		lpWaiting(t, e, e.ctl.ID, lifecycle.MaxWaitingPolls+1)

		// One change answers every waiting poll, which frees the slots.
		e.newLearner(t, e.kcc, "")
		for _, p := range append(polls, otherPoll) {
			if r := lpGet(t, p); r.err != "" || len(r.page.Events) != 1 {
				t.Fatalf("a waiting poll: %+v %s", r.page.Events, r.err)
			}
		}
		if r := lpGet(t, lpPoll(e, key, e.ctl.ID, &cur, 1)); r.err != "" {
			t.Fatalf("after the polls returned, a new one is refused: %s", r.err)
		}
	})
}
