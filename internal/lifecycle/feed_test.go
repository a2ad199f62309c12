package lifecycle_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// Invariant 3: 8 writers make 2,000 changes each while a reader follows the
// feed. The reader sees every event exactly once, and each learner's
// versions only increase along the feed.
func TestFeed_INV3_GapFreeUnderConcurrentWriters(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		const writers, changes, learnersN = 8, 2000, 32
		e := testkit.NewWorld(t, st)
		svc := e.Service
		p, _ := e.ConnectToLearnProgramme()
		org := e.Admit(p.ID, "Kent County Council", "kent.gov.uk")
		ids := make([]string, learnersN)
		for i := range ids {
			l, err := svc.CreateLearner(e.Sys, org.ID, lifecycle.LearnerInput{Email: fmt.Sprintf("p%d@kent.gov.uk", i), GivenName: "A", FamilyName: "B"})
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = l.ID
		}
		head, err := svc.LifecycleEvents(e.Sys, p.ID, nil, 5000, 0)
		if err != nil {
			t.Fatal(err)
		}
		start := head.Next
		if len(head.Events) != learnersN {
			t.Fatalf("want %d provisioning events first, got %d", learnersN, len(head.Events))
		}

		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < changes; i++ {
					// Writers share learners, so changes to one learner contend.
					id := ids[(w*7+i)%learnersN]
					name := fmt.Sprintf("W%dC%d", w, i)
					if _, err := svc.UpdateLearner(e.Sys, id, lifecycle.LearnerUpdate{GivenName: &name}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()

		seen := map[int64]bool{}
		lastVersion := map[string]int64{}
		pos := start
		total := 0
		finished := false
		for {
			page, err := svc.LifecycleEvents(e.Sys, p.ID, &pos, 500, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range page.Events {
				if seen[ev.ID] {
					t.Fatalf("event %d delivered twice", ev.ID)
				}
				seen[ev.ID] = true
				if ev.LearnerVersion <= lastVersion[ev.LearnerID] {
					t.Fatalf("learner %s: version %d after %d", ev.LearnerID, ev.LearnerVersion, lastVersion[ev.LearnerID])
				}
				lastVersion[ev.LearnerID] = ev.LearnerVersion
				total++
			}
			pos = page.Next
			if finished && len(page.Events) == 0 {
				break
			}
			select {
			case <-done:
				finished = true
			case err := <-errs:
				t.Fatal(err)
			default:
				if len(page.Events) == 0 {
					time.Sleep(2 * time.Millisecond)
				}
			}
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		if total != writers*changes {
			t.Fatalf("reader saw %d events, writers made %d changes", total, writers*changes)
		}
		// Every learner's last version in the feed is its current version.
		for _, id := range ids {
			l, err := svc.Learner(e.Sys, id)
			if err != nil {
				t.Fatal(err)
			}
			if lastVersion[id] != l.Version {
				t.Fatalf("learner %s: feed ended at version %d, learner is at %d", id, lastVersion[id], l.Version)
			}
		}
	})
}
