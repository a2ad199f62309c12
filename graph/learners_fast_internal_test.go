package graph

import (
	"bytes"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// The plan writes strings and times itself; they must come out exactly as
// gqlgen's marshallers write them.
func FuzzPlanQuoteMatchesGqlgen(f *testing.F) {
	for _, s := range []string{"", "plain", `"quoted" \ back`, "tab\tnew\nline\rcr", "\x00\x01\x1f\x7f", "Zoë 🙂 Łukasz",
		"<b>&amp;</b>", "\u2028\u2029", "bad \xff\xfe utf-8", "\xe2\x82"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want bytes.Buffer
		quote(&got, s)
		graphql.MarshalString(s).MarshalGQL(&want)
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("quote(%q) = %s, gqlgen writes %s", s, got.Bytes(), want.Bytes())
		}
	})
}

func TestPlanWriteTimeMatchesGqlgen(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+1800)
	for _, tm := range []time.Time{
		{}, time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), time.Date(2026, 3, 29, 1, 30, 0, 123456789, ist),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC).Local(),
	} {
		var got, want bytes.Buffer
		(&planWriter{buf: &got}).writeTime(tm)
		graphql.MarshalTime(tm).MarshalGQL(&want)
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("writeTime(%v) = %s, gqlgen writes %s", tm, got.Bytes(), want.Bytes())
		}
	}
}
