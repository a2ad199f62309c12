package model

import (
	"io"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// MarshalTime writes the Time scalar exactly as gqlgen's graphql.MarshalTime
// does (RFC 3339 with nanoseconds, quoted; the zero time is null), formatted
// into one buffer: gqlgen formats the text, then copies it quoted
// (strconv.Quote, which changes nothing else in such text). The feed writes
// one per event.
func MarshalTime(t time.Time) graphql.Marshaler {
	if t.IsZero() {
		return graphql.Null
	}
	return graphql.WriterFunc(func(w io.Writer) {
		var b [48]byte
		_, _ = w.Write(AppendTime(b[:0], t))
	})
}

// AppendTime appends a non-zero time as MarshalTime writes it.
func AppendTime(buf []byte, t time.Time) []byte {
	buf = append(buf, '"')
	buf = t.AppendFormat(buf, time.RFC3339Nano)
	return append(buf, '"')
}

// UnmarshalTime reads the Time scalar as gqlgen does.
func UnmarshalTime(v any) (time.Time, error) { return graphql.UnmarshalTime(v) }
