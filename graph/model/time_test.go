package model

import (
	"bytes"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// The Time scalar is written byte for byte as gqlgen writes it, so clients
// see no change (the feed's occurredAt, every other time).
func TestMarshalTime_SameTextAsGqlgen(t *testing.T) {
	paris := time.FixedZone("x", 3600)
	for _, v := range []time.Time{
		{},
		time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 6, 9, 0, 0, 123456789, time.UTC),
		time.Date(2026, 12, 6, 9, 0, 0, 120000000, paris),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	} {
		var got, want bytes.Buffer
		MarshalTime(v).MarshalGQL(&got)
		graphql.MarshalTime(v).MarshalGQL(&want)
		if got.String() != want.String() {
			t.Errorf("%v: wrote %s, gqlgen writes %s", v, got.String(), want.String())
		}
	}
}
