package graph

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

// Cursors are opaque to clients: base64 of a typed position.

func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("a:" + strconv.FormatInt(id, 10)))
}

func decodeCursor(c *string) (int64, error) {
	if c == nil || *c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*c)
	if err != nil || !strings.HasPrefix(string(b), "a:") {
		return 0, apperr.Invalid("after", "malformed cursor")
	}
	n, err := strconv.ParseInt(string(b[2:]), 10, 64)
	if err != nil || n < 0 {
		return 0, apperr.Invalid("after", "malformed cursor")
	}
	return n, nil
}

func encodeIDCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("l:" + id))
}

func decodeIDCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "l:") || len(b) != 38 {
		return "", apperr.Invalid("after", "malformed cursor")
	}
	return string(b[2:]), nil
}

// Feed cursors carry the programme's cursor tag (lifecycle checks it), the
// position and when it was reached (for expiry), in binary: a version byte
// (1), the tag's 6 bytes, the transaction and event IDs as unsigned varints
// and the Unix time as a signed one (encoding/binary), base64 (URL
// alphabet, unpadded). A cursor is 22 characters for today's numbers (the
// transaction ID is reserved, 0; event IDs under 2 million) where its text
// form ("f:TAG:TX:ID:UNIX", what cursors were until December 2026) took
// about 40 to 55: every feed event carries one, so it was a fifth
// to a quarter of a feed page's bytes, written by the service and read by every
// LMS. Text cursors are still read (decodeFeedCursor), so an LMS holding one
// across the upgrade resumes where it was.
const feedCursorV1 = 1

// feedTag is a programme's cursor tag (lifecycle.CursorTag, 12 hex digits)
// as the 6 bytes it spells.
type feedTag [6]byte

func newFeedTag(programmeID string) feedTag {
	var t feedTag
	_, _ = hex.Decode(t[:], []byte(lifecycle.CursorTag(programmeID))) // 12 hex digits: cannot fail
	return t
}

func encodeFeedCursor(tag feedTag, p domain.FeedPosition) string {
	var raw [feedCursorMaxRaw]byte // on the stack: one allocation, the string
	return base64.RawURLEncoding.EncodeToString(appendFeedPosition(raw[:0], tag, p.TxID, p.ID, p.At.Unix()))
}

// feedCursorMaxRaw is the most bytes a cursor's binary form takes: the
// version, the tag, and three varints of at most 10 bytes.
const feedCursorMaxRaw = 1 + len(feedTag{}) + 3*binary.MaxVarintLen64

func appendFeedPosition(b []byte, tag feedTag, tx uint64, id, unix int64) []byte {
	b = append(b, feedCursorV1)
	b = append(b, tag[:]...)
	b = binary.AppendUvarint(b, tx)
	b = binary.AppendUvarint(b, uint64(id)) // an event ID is never negative
	return binary.AppendVarint(b, unix)
}

// feedCursorLen is the length of the cursor appendFeedPosition's bytes
// encode to, worked out without encoding it.
func feedCursorLen(tx uint64, id, unix int64) int {
	n := 1 + len(feedTag{}) + uvarintLen(tx) + uvarintLen(uint64(id)) + uvarintLen(uint64(unix)<<1^uint64(unix>>63))
	return base64.RawURLEncoding.EncodedLen(n)
}

// uvarintLen is how many bytes binary.AppendUvarint writes for x.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// feedCursors are the cursors of a page's events, in one string: each is a
// substring of it, so a page allocates twice for them (the string, sized
// exactly beforehand, and the list) whatever its size, not once an event.
func feedCursors(tag feedTag, es []domain.FeedEvent) []string {
	total := 0
	for i := range es {
		total += feedCursorLen(es[i].TxID, es[i].ID, es[i].OccurredAt.Unix())
	}
	var all strings.Builder
	all.Grow(total)
	var raw [feedCursorMaxRaw]byte
	var text [4 * (feedCursorMaxRaw + 2) / 3]byte
	for i := range es {
		e := &es[i]
		r := appendFeedPosition(raw[:0], tag, e.TxID, e.ID, e.OccurredAt.Unix())
		n := base64.RawURLEncoding.EncodedLen(len(r))
		base64.RawURLEncoding.Encode(text[:n], r)
		all.Write(text[:n])
	}
	s, out, start := all.String(), make([]string, len(es)), 0
	for i := range es {
		end := start + feedCursorLen(es[i].TxID, es[i].ID, es[i].OccurredAt.Unix())
		out[i], start = s[start:end], end
	}
	return out
}

// maxFeedCursor is the longest feed cursor either form can be: the text
// form's "f:", tag and three colon-prefixed numbers of up to 20 digits,
// base64 (a binary cursor is shorter).
var maxFeedCursor = base64.RawURLEncoding.EncodedLen(len("f:") + lifecycle.CursorTagLen + 3*(1+20))

// decodeFeedCursor reads a cursor of either form: binary (above) or the
// text one cursors had before, with its programme's tag or, older still,
// without.
func decodeFeedCursor(c string) (*domain.FeedPosition, error) {
	bad := apperr.Invalid("after", "malformed cursor")
	if len(c) > maxFeedCursor { // refused before anything is decoded
		return nil, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) == 0 {
		return nil, bad
	}
	if b[0] == feedCursorV1 {
		// One spelling per position, as the encoder writes it: strict
		// base64 (no stray bits), nothing but its characters (the decoder
		// skips line breaks, even strict: found by FuzzDecodeFeedCursor_INV3),
		// and minimal varints below.
		if b, err = base64.RawURLEncoding.Strict().DecodeString(c); err != nil || base64.RawURLEncoding.EncodedLen(len(b)) != len(c) {
			return nil, bad
		}
		rest := b[1:]
		if len(rest) < len(feedTag{}) {
			return nil, bad
		}
		tag, rest := hex.EncodeToString(rest[:len(feedTag{})]), rest[len(feedTag{}):]
		tx, n1 := binary.Uvarint(rest)
		if n1 <= 0 {
			return nil, bad
		}
		id, n2 := binary.Uvarint(rest[n1:])
		if n2 <= 0 || id > math.MaxInt64 {
			return nil, bad
		}
		at, n3 := binary.Varint(rest[n1+n2:])
		if n3 <= 0 || n1+n2+n3 != len(rest) || n1 != uvarintLen(tx) || n2 != uvarintLen(id) || n3 != uvarintLen(uint64(at)<<1^uint64(at>>63)) {
			return nil, bad
		}
		return &domain.FeedPosition{TxID: tx, ID: int64(id), At: time.Unix(at, 0).UTC(), Programme: tag}, nil
	}
	if !strings.HasPrefix(string(b), "f:") {
		return nil, bad
	}
	parts := strings.Split(string(b[2:]), ":")
	tag := ""
	switch {
	case len(parts) == 4 && len(parts[0]) == lifecycle.CursorTagLen:
		tag, parts = parts[0], parts[1:]
	case len(parts) != 3: // 3: a cursor from before cursors named their programme
		return nil, bad
	}
	tx, err1 := strconv.ParseUint(parts[0], 10, 64)
	id, err2 := strconv.ParseInt(parts[1], 10, 64)
	at, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || id < 0 {
		return nil, bad
	}
	return &domain.FeedPosition{TxID: tx, ID: id, At: time.Unix(at, 0).UTC(), Programme: tag}, nil
}

func encodeEnrolmentCursor(tag string, c lifecycle.EnrolmentCursor) string {
	done := "0"
	if c.LearnerDone {
		done = "1"
	}
	return base64.RawURLEncoding.EncodeToString([]byte("e:" + tag + ":" + done + ":" + c.Learner + ":" + c.Course))
}

func decodeEnrolmentCursor(c string) (lifecycle.EnrolmentCursor, error) {
	bad := apperr.Invalid("after", "malformed cursor")
	b, err := base64.RawURLEncoding.DecodeString(c)
	s := string(b)
	if err != nil || !strings.HasPrefix(s, "e:") {
		return lifecycle.EnrolmentCursor{}, bad
	}
	s = s[2:]
	tag := ""
	if len(s) > lifecycle.CursorTagLen && s[lifecycle.CursorTagLen] == ':' {
		tag, s = s[:lifecycle.CursorTagLen], s[lifecycle.CursorTagLen+1:]
	} // else a cursor from before cursors named their programme
	// done ":" learner(36) ":" course
	if len(s) < 39 || s[1] != ':' || s[38] != ':' || (s[0] != '0' && s[0] != '1') {
		return lifecycle.EnrolmentCursor{}, bad
	}
	return lifecycle.EnrolmentCursor{LearnerDone: s[0] == '1', Learner: s[2:38], Course: s[39:], Programme: tag}, nil
}
