package graph

import (
	"encoding/base64"
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
// position and when it was reached (for expiry).
func encodeFeedCursor(tag string, p domain.FeedPosition) string {
	var raw [128]byte // on the stack: one allocation, the string
	return string(appendFeedCursor(raw[:0], tag, p))
}

// appendFeedCursor appends p's cursor to dst: "f:TAG:TX:ID:UNIX", base64
// (URL alphabet, unpadded), built without fmt.
func appendFeedCursor(dst []byte, tag string, p domain.FeedPosition) []byte {
	var raw [96]byte
	b := append(raw[:0], "f:"...)
	b = append(b, tag...)
	b = append(b, ':')
	b = strconv.AppendUint(b, p.TxID, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, p.At.Unix(), 10)
	return base64.RawURLEncoding.AppendEncode(dst, b)
}

// feedCursors are the cursors of a page's events, in one string: each is a
// substring of it, so a page allocates four times for them (the bytes, the
// string, the ends, the list) whatever its size, not once an event.
func feedCursors(tag string, es []domain.FeedEvent) []string {
	// The longest text a cursor can have: "f:", the tag, and three
	// colon-prefixed numbers of at most 20 digits (a uint64; an int64 with
	// its sign).
	longest := base64.RawURLEncoding.EncodedLen(len("f:") + len(tag) + 3*(1+20))
	buf := make([]byte, 0, len(es)*longest)
	ends := make([]int, len(es))
	for i := range es {
		e := &es[i]
		buf = appendFeedCursor(buf, tag, domain.FeedPosition{TxID: e.TxID, ID: e.ID, At: e.OccurredAt})
		ends[i] = len(buf)
	}
	all, out, start := string(buf), make([]string, len(es)), 0
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out
}

func decodeFeedCursor(c string) (*domain.FeedPosition, error) {
	bad := apperr.Invalid("after", "malformed cursor")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "f:") {
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
