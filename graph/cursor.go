package graph

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/rollcall-dev/rollcall/internal/apperr"
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
