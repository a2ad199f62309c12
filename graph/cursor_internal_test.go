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
// feed), and decodes to the position it encodes.
func TestFeedCursor_INV3_SameTextAndRoundTrip(t *testing.T) {
	tag := lifecycle.CursorTag("01900000-0000-7000-8000-000000000001")
	for _, p := range []domain.FeedPosition{
		{},
		{TxID: 1, ID: 1, At: time.Unix(1, 0).UTC()},
		{TxID: math.MaxUint64, ID: math.MaxInt64, At: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)},
		{TxID: 987654321, ID: 123456789012, At: time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)},
	} {
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
