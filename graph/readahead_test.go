package graph_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// The LMS's paged reads with the next page read ahead
// (internal/lifecycle/readahead.go), as an LMS with an API key drains them.

const (
	aheadFeedQuery = `query($p: ID!, $n: Int!, $a: String) { lifecycleEvents(programmeId: $p, first: $n, after: $a) {
		events { cursor learnerId learnerVersion } cursor hasMore } }`
	aheadEnrolmentsQuery = `query($p: ID!, $n: Int!, $a: String) { enrolments(programmeId: $p, first: $n, after: $a) {
		enrolments { learnerId lmsCourseId learnerVersion } endCursor hasNextPage } }`
)

type aheadFeedPage struct {
	LifecycleEvents struct {
		Events []struct {
			Cursor, LearnerID string
			LearnerVersion    int
		}
		Cursor  string
		HasMore bool
	}
}

type aheadEnrolmentsPage struct {
	Enrolments struct {
		Enrolments []struct {
			LearnerID, LmsCourseID string
			LearnerVersion         int
		}
		EndCursor   *string
		HasNextPage bool
	}
}

// aheadWorld is a programme with 12 active learners (their events in the
// feed, 3 courses each in enrolments) and an LMS key, the caller's caches
// warm: what a drain has after its first page.
func aheadWorld(t *testing.T, d migrations.Dialect) (*testkit.API, testkit.Programme, string) {
	api := testkit.NewAPI(t, d)
	p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
	stmtActiveLearners(t, api, p, "ra", 12)
	_, key, err := api.Service.IssueAPIKey(lifecycle.WithSystem(context.Background(), "test"), p.ID, "read-ahead LMS")
	if err != nil {
		t.Fatal(err)
	}
	return api, p, key
}

// aheadDrain reads every page of query (the programme's, n a page) as an
// LMS drains them, each read ahead settled before the next request; page
// takes a page's rows and says whether more follow and from which cursor.
// It returns how many pages it read.
func aheadDrain[P any](api *testkit.API, key, query, programmeID string, n int, page func(P) (more bool, after any)) int {
	var after any
	for pages := 1; ; pages++ {
		var pg P
		api.MustDo(key, query, map[string]any{"p": programmeID, "n": n, "a": after}, &pg)
		api.Service.SettleReadAhead()
		more, next := page(pg)
		if !more {
			return pages
		}
		after = next
	}
}

// feedEvents is the whole feed in one page (not full: nothing read ahead).
func feedEvents(t *testing.T, api *testkit.API, p testkit.Programme, key string) []string {
	var all aheadFeedPage
	api.MustDo(key, aheadFeedQuery, map[string]any{"p": p.ID, "n": 5000}, &all)
	api.Service.SettleReadAhead()
	var out []string
	for _, e := range all.LifecycleEvents.Events {
		out = append(out, e.Cursor)
	}
	return out
}

// INV-3 with read-ahead: a drain in pages reads each page once (the page
// after a full one comes from the read ahead), and sees every event once,
// in order.
func TestReadAhead_INV3_FeedDrainReadsEachPageOnceAndWhole(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api, p, key := aheadWorld(t, d)
			want := feedEvents(t, api, p, key)
			if len(want) < 20 {
				t.Fatalf("the feed has %d events, want at least 20", len(want))
			}
			api.Statements.Store(0)
			var got []string
			pages := aheadDrain(api, key, aheadFeedQuery, p.ID, 4, func(pg aheadFeedPage) (bool, any) {
				for _, e := range pg.LifecycleEvents.Events {
					got = append(got, e.Cursor)
				}
				return pg.LifecycleEvents.HasMore, pg.LifecycleEvents.Cursor
			})
			if !slices.Equal(got, want) {
				t.Fatalf("the drain saw %d events, not the feed's %d in order", len(got), len(want))
			}
			// The first page and the last (partial, so never served from a
			// read ahead) are read by their requests; every full page's
			// next page is read ahead once. Without read-ahead hits the
			// pages between would each be read twice: 2×pages-1.
			if n := api.Statements.Load(); n != int64(pages)+1 {
				t.Fatalf("a drain of %d pages ran %d statements, want %d (each page read once, one read ahead of the partial last page)", pages, n, pages+1)
			}
		})
	}
}

// A partial page read ahead (the feed's head) is not served: events
// committed after it are in the next page, as a fresh read has them.
func TestReadAhead_INV3_APartialPageIsReadAgain(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api, p, key := aheadWorld(t, d)
			all := feedEvents(t, api, p, key)
			n := len(all) - 2 // the first page full, the page after it 2 events
			var first aheadFeedPage
			api.MustDo(key, aheadFeedQuery, map[string]any{"p": p.ID, "n": n}, &first)
			api.Service.SettleReadAhead() // the 2 events after it read ahead
			if !first.LifecycleEvents.HasMore {
				t.Fatal("the first page says no more follow")
			}
			stmtActiveLearners(t, api, p, "late", 6) // more events, after the read ahead
			var next aheadFeedPage
			api.MustDo(key, aheadFeedQuery, map[string]any{"p": p.ID, "n": n, "a": first.LifecycleEvents.Cursor}, &next)
			if got := len(next.LifecycleEvents.Events); got <= 2 {
				t.Fatalf("the page after has %d events: the partial page read ahead was served", got)
			}
			if next.LifecycleEvents.Events[0].Cursor != all[n] {
				t.Fatalf("the page after starts at %q, want %q", next.LifecycleEvents.Events[0].Cursor, all[n])
			}
		})
	}
}

// A purge of the feed drops what was read ahead: a cursor with purged
// events after it is CURSOR_EXPIRED, not answered from the rows read before
// the purge.
func TestReadAhead_INV3_APurgeDropsPagesReadAhead(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api, p, key := aheadWorld(t, d)
			// Past the retention first, so the page read ahead is fresh when
			// the purge comes.
			api.Clock.Advance(31 * 24 * time.Hour)
			var first aheadFeedPage
			api.MustDo(key, aheadFeedQuery, map[string]any{"p": p.ID, "n": 4}, &first)
			api.Service.SettleReadAhead() // the next 4 (and one) read ahead
			if _, err := api.Service.SweepAll(context.Background()); err != nil {
				t.Fatal(err)
			}
			r := api.Do(key, aheadFeedQuery, map[string]any{"p": p.ID, "n": 4, "a": first.LifecycleEvents.Cursor})
			if r.Code() != "CURSOR_EXPIRED" {
				t.Fatalf("after the purge: %s %s, want CURSOR_EXPIRED", r.Code(), r.Data)
			}
		})
	}
}

// CTL-4 with read-ahead: a drain of enrolments reads each page once, the
// list whole and in order.
func TestReadAhead_CTL4_EnrolmentsDrainReadsEachPageOnceAndWhole(t *testing.T) {
	type row struct {
		learner, course string
		version         int
	}
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api, p, key := aheadWorld(t, d)
			var all aheadEnrolmentsPage
			api.MustDo(key, aheadEnrolmentsQuery, map[string]any{"p": p.ID, "n": 5000}, &all)
			api.Service.SettleReadAhead()
			var want []row
			for _, e := range all.Enrolments.Enrolments {
				want = append(want, row{e.LearnerID, e.LmsCourseID, e.LearnerVersion})
			}
			if len(want) < 30 || all.Enrolments.HasNextPage {
				t.Fatalf("one page of 5000 has %d rows (more: %v)", len(want), all.Enrolments.HasNextPage)
			}
			drain := func() (rows []row, pages int, stmts int64) {
				api.Statements.Store(0)
				pages = aheadDrain(api, key, aheadEnrolmentsQuery, p.ID, 6, func(pg aheadEnrolmentsPage) (bool, any) {
					for _, e := range pg.Enrolments.Enrolments {
						rows = append(rows, row{e.LearnerID, e.LmsCourseID, e.LearnerVersion})
					}
					return pg.Enrolments.HasNextPage, pg.Enrolments.EndCursor
				})
				return rows, pages, api.Statements.Load()
			}
			rows, pages, stmts := drain()
			if !slices.Equal(rows, want) {
				t.Fatalf("the drain saw %d rows, not the list's %d in order", len(rows), len(want))
			}
			if pages < 4 {
				t.Fatalf("%d pages of 6 rows: want at least 4", pages)
			}
			// The first page reads the feed's head (asOf) and its rows; each
			// page with more after it reads the next ahead (the feed's head,
			// then the rows); a page read ahead is served after one look at
			// the head; the last, the list's end, is never served from a
			// read ahead and is read again. That a page is served from its
			// read ahead is TestReadAhead_CTL4_INV5_AChangeAfterTheReadAheadIsInThePage's.
			if want := 2 + 2*(pages-1) + (pages - 2) + 1; stmts != int64(want) {
				t.Fatalf("a drain of %d pages ran %d statements, want %d", pages, stmts, want)
			}
		})
	}
}

// A page of enrolments read ahead is served only while the feed's head has
// not moved (invariant 5: every change writes its feed event): a change to
// a learner of the next page after it was read ahead is in that page, as a
// fresh read has it; without a change, the page comes from the read ahead.
func TestReadAhead_CTL4_INV5_AChangeAfterTheReadAheadIsInThePage(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			api, p, key := aheadWorld(t, d)
			var first aheadEnrolmentsPage
			api.MustDo(key, aheadEnrolmentsQuery, map[string]any{"p": p.ID, "n": 6}, &first)
			api.Service.SettleReadAhead() // the next page read ahead
			page2 := func() aheadEnrolmentsPage {
				var pg aheadEnrolmentsPage
				api.MustDo(key, aheadEnrolmentsQuery, map[string]any{"p": p.ID, "n": 6, "a": first.Enrolments.EndCursor}, &pg)
				api.Service.SettleReadAhead()
				return pg
			}
			// Unchanged: served from the read ahead, after one look at the
			// feed's head (and the page after it read ahead).
			api.Statements.Store(0)
			before := page2()
			if n := api.Statements.Load(); n != 3 {
				t.Fatalf("the page read ahead cost %d statements, want 3 (the feed's head; the next page read ahead: the head and its rows)", n)
			}
			// The first learner of that page changes after it was read
			// ahead (page 1 read again reads it ahead again).
			api.MustDo(key, aheadEnrolmentsQuery, map[string]any{"p": p.ID, "n": 6}, &first)
			api.Service.SettleReadAhead()
			learner := before.Enrolments.Enrolments[0]
			name := "Changed"
			if _, err := api.Service.UpdateLearner(lifecycle.WithSystem(context.Background(), "test"), learner.LearnerID, lifecycle.LearnerUpdate{GivenName: &name}); err != nil {
				t.Fatal(err)
			}
			after := page2()
			if got := after.Enrolments.Enrolments[0]; got.LearnerID != learner.LearnerID || got.LearnerVersion <= learner.LearnerVersion {
				t.Fatalf("after the change the page starts with %+v, want %s past version %d", got, learner.LearnerID, learner.LearnerVersion)
			}
		})
	}
}
