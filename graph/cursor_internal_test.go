package graph

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

// A feed cursor decodes to the position it encodes, its programme's tag
// included; a page's cursors, made in one string, are each its event's;
// and a cursor in the text form cursors had until December 2026 still
// decodes to its position, so an LMS holding one across the upgrade
// resumes where it was (INV-3's gap-free feed).
func TestFeedCursor_INV3_RoundTripAndOldCursorsResume(t *testing.T) {
	programme := "01900000-0000-7000-8000-000000000001"
	hexTag, tag := lifecycle.CursorTag(programme), newFeedTag(programme)
	positions := []domain.FeedPosition{
		{},
		{TxID: 1, ID: 1, At: time.Unix(1, 0).UTC()},
		{TxID: math.MaxUint64, ID: math.MaxInt64, At: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)},
		{TxID: 987654321, ID: 123456789012, At: time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)},
		{TxID: 12, ID: 7, At: time.Time{}},                                          // the zero time: a negative Unix time
		{TxID: 0, ID: 1_000_000, At: time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)}, // today's: the transaction ID is reserved, 0
	}
	es := make([]domain.FeedEvent, len(positions))
	for i, p := range positions {
		es[i] = domain.FeedEvent{TxID: p.TxID, Event: domain.Event{ID: p.ID, OccurredAt: p.At}}
	}
	cs := feedCursors(tag, es)
	if len(cs) != len(es) {
		t.Fatalf("%d cursors for %d events", len(cs), len(es))
	}
	for i, p := range positions {
		got := encodeFeedCursor(tag, p)
		if cs[i] != got {
			t.Fatalf("the page's cursor %d: %q, want %q", i, cs[i], got)
		}
		back, err := decodeFeedCursor(got)
		if err != nil || back.TxID != p.TxID || back.ID != p.ID || !back.At.Equal(time.Unix(p.At.Unix(), 0)) || back.Programme != hexTag {
			t.Fatalf("round trip of %+v: %+v %v", p, back, err)
		}
		// The text form, as encodeFeedCursor wrote it before (with the
		// programme's tag, and older still without), reads as the same
		// position.
		for _, text := range []string{fmt.Sprintf("f:%s:%d:%d:%d", hexTag, p.TxID, p.ID, p.At.Unix()), fmt.Sprintf("f:%d:%d:%d", p.TxID, p.ID, p.At.Unix())} {
			old, err := decodeFeedCursor(base64.RawURLEncoding.EncodeToString([]byte(text)))
			if err != nil || old.TxID != p.TxID || old.ID != p.ID || !old.At.Equal(back.At) {
				t.Fatalf("the old cursor %q: %+v %v", text, old, err)
			}
			if want := hexTag; strings.Count(text, ":") == 3 {
				want = ""
				if old.Programme != want {
					t.Fatalf("the old untagged cursor %q names programme %q", text, old.Programme)
				}
			} else if old.Programme != want {
				t.Fatalf("the old cursor %q names programme %q, want %q", text, old.Programme, want)
			}
		}
	}
	// Today's numbers (a million events, the transaction ID 0) make a cursor
	// of 22 characters, where the text form took 47.
	if c := cs[len(cs)-1]; len(c) != 22 {
		t.Fatalf("a cursor of today's numbers is %d characters: %q", len(c), c)
	}
	if cs := feedCursors(tag, nil); len(cs) != 0 {
		t.Fatalf("cursors of an empty page: %q", cs)
	}
	// A page's cursors cost the same two allocations whatever its size,
	// with the largest numbers a cursor can hold.
	page := make([]domain.FeedEvent, 1000)
	for i := range page {
		page[i] = domain.FeedEvent{TxID: math.MaxUint64, Event: domain.Event{ID: math.MaxInt64, OccurredAt: time.Unix(math.MinInt64, 0)}}
	}
	for _, n := range []int{1, 10, 1000} {
		if a := testing.AllocsPerRun(20, func() { feedCursors(tag, page[:n]) }); a > 2 {
			t.Fatalf("a page of %d events: %.0f allocations for its cursors, want at most 2", n, a)
		}
		cs := feedCursors(tag, page[:n])
		if want := encodeFeedCursor(tag, domain.FeedPosition{TxID: math.MaxUint64, ID: math.MaxInt64, At: time.Unix(math.MinInt64, 0)}); cs[n-1] != want {
			t.Fatalf("the largest cursor: %q, want %q", cs[n-1], want)
		}
	}
}

// A binary cursor that is cut short, runs on, or holds an event ID past
// int64 is malformed, BAD_USER_INPUT, and never a position.
func TestFeedCursor_INV3_MalformedBinaryCursorsAreRefused(t *testing.T) {
	tag := newFeedTag("01900000-0000-7000-8000-000000000001")
	good := appendFeedPosition(nil, tag, 5, 6, 1_795_510_800)
	bigID := append(append(append([]byte{feedCursorV1}, tag[:]...), 1), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 2)
	for name, raw := range map[string][]byte{
		"empty":            {},
		"version only":     {feedCursorV1},
		"short tag":        append([]byte{feedCursorV1}, tag[:3]...),
		"no numbers":       append([]byte{feedCursorV1}, tag[:]...),
		"no time":          good[:len(good)-5],
		"a byte too many":  append(append([]byte(nil), good...), 0),
		"unknown version":  append([]byte{2}, good[1:]...),
		"ID past int64":    bigID,
		"varint runs over": append(append([]byte{feedCursorV1}, tag[:]...), 0x80, 0x80),
		// 5 spelt in two bytes: the same position, another spelling.
		"varint not minimal": append(append(append([]byte{feedCursorV1}, tag[:]...), 0x85, 0x00), good[8:]...),
	} {
		if p, err := decodeFeedCursor(base64.RawURLEncoding.EncodeToString(raw)); err == nil {
			t.Errorf("%s: decoded to %+v", name, p)
		}
	}
	if p, err := decodeFeedCursor(base64.RawURLEncoding.EncodeToString(good)); err != nil || p.TxID != 5 || p.ID != 6 || p.At.Unix() != 1_795_510_800 {
		t.Fatalf("the good cursor: %+v %v", p, err)
	}
	// Longer than any cursor can be: refused (a hostile megabyte costs no
	// decoding); the longest text cursor still reads.
	longest := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("f:%s:%d:%d:%d", lifecycle.CursorTag("01900000-0000-7000-8000-000000000001"), uint64(math.MaxUint64), int64(math.MaxInt64), int64(math.MinInt64))))
	if p, err := decodeFeedCursor(longest); err != nil || p.ID != math.MaxInt64 {
		t.Fatalf("the longest text cursor (%d characters): %+v %v", len(longest), p, err)
	}
	// Zeros before a number would otherwise read (strconv takes them).
	padded := base64.RawURLEncoding.EncodeToString([]byte("f:0:" + strings.Repeat("0", 200) + "1:0"))
	if p, err := decodeFeedCursor(padded); err == nil {
		t.Fatalf("a cursor of %d characters decoded to %+v", len(padded), p)
	}
	// The good cursor with its last character's unused bits set: another
	// spelling of the same bytes, refused.
	text := base64.RawURLEncoding.EncodeToString(good)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(good)%3 != 0 {
		last := strings.IndexByte(alphabet, text[len(text)-1])
		stray := text[:len(text)-1] + string(alphabet[last|1])
		if p, err := decodeFeedCursor(stray); err == nil {
			t.Errorf("a cursor with stray bits decoded to %+v", p)
		}
	}
}

// Any text given as a feed cursor (a client's, or an attacker's) decodes
// without a panic to a position or to BAD_USER_INPUT; a binary cursor that
// decodes is the one spelling the encoder gives its position (INV-3: one
// position, one cursor).
func FuzzDecodeFeedCursor_INV3(f *testing.F) {
	tag := newFeedTag("01900000-0000-7000-8000-000000000001")
	for _, p := range []domain.FeedPosition{{}, {ID: 1_000_000, At: time.Unix(1_795_510_800, 0)}, {TxID: math.MaxUint64, ID: math.MaxInt64, At: time.Unix(math.MinInt64, 0)}} {
		f.Add(encodeFeedCursor(tag, p))
	}
	f.Add(base64.RawURLEncoding.EncodeToString([]byte("f:0:1:2")))
	f.Add("")
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, c string) {
		p, err := decodeFeedCursor(c)
		if err != nil {
			return
		}
		if p.ID < 0 {
			t.Fatalf("%q decoded to a negative event ID %d", c, p.ID)
		}
		b, _ := base64.RawURLEncoding.DecodeString(c)
		if b[0] != feedCursorV1 {
			return // the text form, read as before
		}
		var back feedTag
		if _, err := hex.Decode(back[:], []byte(p.Programme)); err != nil {
			t.Fatalf("%q names programme %q", c, p.Programme)
		}
		if again := encodeFeedCursor(back, *p); again != c {
			t.Fatalf("%q decoded to %+v, which encodes as %q", c, p, again)
		}
	})
}
