package graph

import (
	"encoding/base64"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

// A feed cursor is the same text as before it was built without fmt (an
// LMS holding one across an upgrade resumes where it was, INV-3's gap-free
// feed), and decodes to the position it encodes; a page's cursors, made in
// one string, are each its event's.
func TestFeedCursor_INV3_SameTextAndRoundTrip(t *testing.T) {
	tag := lifecycle.CursorTag("01900000-0000-7000-8000-000000000001")
	positions := []domain.FeedPosition{
		{},
		{TxID: 1, ID: 1, At: time.Unix(1, 0).UTC()},
		{TxID: math.MaxUint64, ID: math.MaxInt64, At: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)},
		{TxID: 987654321, ID: 123456789012, At: time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)},
	}
	es := make([]domain.FeedEvent, len(positions))
	for i, p := range positions {
		es[i] = domain.FeedEvent{TxID: p.TxID, Event: domain.Event{ID: p.ID, OccurredAt: p.At}}
	}
	for _, tg := range []string{tag, strings.Repeat("t", 100)} {
		cs := feedCursors(tg, es)
		if len(cs) != len(es) {
			t.Fatalf("%d cursors for %d events", len(cs), len(es))
		}
		for i, p := range positions {
			if want := encodeFeedCursor(tg, p); cs[i] != want {
				t.Fatalf("the page's cursor %d: %q, want %q", i, cs[i], want)
			}
		}
	}
	if cs := feedCursors(tag, nil); len(cs) != 0 {
		t.Fatalf("cursors of an empty page: %q", cs)
	}
	// A page's cursors cost the same few allocations whatever its size,
	// with the largest numbers a cursor can hold.
	page := make([]domain.FeedEvent, 1000)
	for i := range page {
		page[i] = domain.FeedEvent{TxID: math.MaxUint64, Event: domain.Event{ID: math.MaxInt64, OccurredAt: time.Unix(math.MinInt64, 0)}}
	}
	for _, n := range []int{1, 10, 1000} {
		if a := testing.AllocsPerRun(20, func() { feedCursors(tag, page[:n]) }); a > 4 {
			t.Fatalf("a page of %d events: %.0f allocations for its cursors, want at most 4", n, a)
		}
	}
	for _, p := range positions {
		got := encodeFeedCursor(tag, p)
		want := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("f:%s:%d:%d:%d", tag, p.TxID, p.ID, p.At.Unix())))
		if got != want {
			t.Fatalf("cursor text changed for %+v: %q, was %q", p, got, want)
		}
		long := strings.Repeat("t", 100) // longer than the encoder's buffer on the stack
		if got, want := encodeFeedCursor(long, p), base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("f:%s:%d:%d:%d", long, p.TxID, p.ID, p.At.Unix()))); got != want {
			t.Fatalf("cursor with a long tag: %q, want %q", got, want)
		}
		back, err := decodeFeedCursor(got)
		if err != nil || back.TxID != p.TxID || back.ID != p.ID || !back.At.Equal(time.Unix(p.At.Unix(), 0)) || back.Programme != tag {
			t.Fatalf("round trip of %+v: %+v %v", p, back, err)
		}
	}
}
