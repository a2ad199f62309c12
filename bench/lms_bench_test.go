package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

func lmsKey(b *testing.B, api *testkit.API, programmeID string) string {
	_, secret, err := api.Service.IssueAPIKey(lifecycle.WithSystem(context.Background(), "bench"), programmeID, "bench LMS")
	if err != nil {
		b.Fatal(err)
	}
	return secret
}

// post sends one GraphQL request and decodes data into v.
func post(b *testing.B, url, token string, query string, vars map[string]any, v any) {
	status, raw := send(b, url, token, query, vars)
	decodeData(b, status, raw, v)
}

// decodeData decodes an answer's data into v in one pass, as a client
// would, and fails on an error answer.
func decodeData(b *testing.B, status int, raw []byte, v any) {
	out := struct {
		Data   any   `json:"data"`
		Errors []any `json:"errors"`
	}{Data: v}
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Errors) > 0 {
		b.Fatalf("%d %s", status, raw[:min(len(raw), 500)])
	}
}

// send posts a query with a bearer token and returns the answer's status
// and bytes.
func send(b *testing.B, url, token string, query string, vars map[string]any) (int, []byte) {
	return sendInto(b, nil, url, token, query, vars)
}

// sendInto is send reading the answer into buf, reused from answer to
// answer (a new buffer if buf is nil); the bytes returned are buf's, valid
// until its next use. The drains read every page into one buffer, as a
// client in its own process would: the service shares this process and
// its garbage collector, and io.ReadAll's growing copies of every page
// (about 0.7 GB a feed drain, in an allocation profile) were collected on
// the service's time.
func sendInto(b *testing.B, buf *bytes.Buffer, url, token string, query string, vars map[string]any) (int, []byte) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := sharedClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	if _, err := buf.ReadFrom(res.Body); err != nil {
		b.Fatal(err)
	}
	return res.StatusCode, buf.Bytes()
}

// checkAnswer fails on an error answer without decoding it, as the
// byte-reading drains read: a GraphQL error is answered with status 200,
// and an answer opens with {"data":{ only when it has data and no errors
// (graph/transport.go writeResponse; with errors, gqlgen's Response is
// marshalled with "errors" first).
func checkAnswer(b *testing.B, raw []byte) {
	if !bytes.HasPrefix(raw, []byte(`{"data":{`)) {
		b.Fatalf("%s", raw[:min(len(raw), 500)])
	}
}

// postRaw sends a query and returns the bytes of its answer, failing on any
// status but 200 (a GraphQL error answers 200 and is caught by decoding).
func postRaw(b *testing.B, buf *bytes.Buffer, url, token string, query string, vars map[string]any) []byte {
	status, raw := sendInto(b, buf, url, token, query, vars)
	if status != http.StatusOK {
		b.Fatalf("%d %s", status, raw[:min(len(raw), 500)])
	}
	return raw
}

// tail is the end of an answer, past its list: where the connection's
// hasMore or hasNextPage is. The byte-reading drains look there and count
// rows by the `{` that opens each (a rare byte, so bytes.Count skips ahead
// with IndexByte), so that they cost little more than COPY's client. They
// used to search whole answers twice for a key starting with `"`, a byte
// every few bytes: about 0.2 s of each drain of enrolments, in a CPU
// profile, counted as the service's time. A `{"key":` or `"key":` inside a
// string value is written with escaped quotes, so neither can match one.
func tail(raw []byte) []byte { return raw[max(0, len(raw)-256):] }

// lastString is the string value of the last "key":"…" in raw ("" if the
// last one is null or absent); the connection's cursor follows its list.
func lastString(raw []byte, key string) string {
	i := bytes.LastIndex(raw, []byte(`"`+key+`":`))
	if i < 0 {
		return ""
	}
	rest := raw[i+len(key)+3:]
	if !bytes.HasPrefix(rest, []byte(`"`)) {
		return ""
	}
	end := bytes.IndexByte(rest[1:], '"')
	return string(rest[1 : 1+end])
}

// The LMS's two reads, as the benchmarks send them: pages of 1,000.
const (
	feedQuery       = `query($p: ID!, $a: String) { lifecycleEvents(programmeId: $p, after: $a, first: 1000) { events { cursor type learnerId learnerVersion occurredAt } cursor hasMore } }`
	enrolmentsQuery = `query($p: ID!, $a: String) { enrolments(programmeId: $p, first: 1000, after: $a) { enrolments { learnerId email givenName familyName accessGroupId lmsCourseId learnerVersion } endCursor hasNextPage asOf } }`
)

// feedWorld is a programme whose feed holds 1,000,000 events, and an LMS
// key for it.
func feedWorld(b *testing.B) (*testkit.API, testkit.Programme, string) {
	api := testkit.NewAPI(b, migrations.Postgres)
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	if _, err := api.Store.SQL().Exec(`INSERT INTO lifecycle_events (programme_id, learner_id, type, learner_version, occurred_at)
		SELECT $1, gen_random_uuid(), 'LEARNER_UPDATED', g, $2 FROM generate_series(1, 1000000) g`, p.ID, api.Clock.Now()); err != nil {
		b.Fatal(err)
	}
	if _, err := api.Store.SQL().Exec(`ANALYZE lifecycle_events`); err != nil {
		b.Fatal(err)
	}
	return api, p, lmsKey(b, api, p.ID)
}

// enrolmentsWorld is a programme of 100,000 active learners with 3 courses
// each, and an LMS key for it.
func enrolmentsWorld(b *testing.B) (*testkit.API, testkit.Programme, string) {
	api := testkit.NewAPI(b, migrations.Postgres)
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	bulkLearners(b, api, p, 100_000, 0)
	return api, p, lmsKey(b, api, p.ID)
}

// A paged LMS read as the drains follow it: the query, the bytes that open
// each row, the keys of the cursor to go on from and of "more pages
// follow", and the decoding client's reading of a page.
type pagedRead struct {
	query, rowOpen, cursorKey, moreKey string
	decode                             func(b *testing.B, raw []byte) (rows int, cursor string, more bool)
}

var (
	feedRead       = pagedRead{feedQuery, `{"cursor":`, "cursor", "hasMore", decodeFeedPage}
	enrolmentsRead = pagedRead{enrolmentsQuery, `{"learnerId":`, "endCursor", "hasNextPage", decodeEnrolmentsPage}
)

// drain reads every page of r, one after another, decoding each answer as
// a client would (decode) or reading its bytes only, the rows counted and
// the cursor taken without decoding the rest (as COPY's client reads into
// io.Discard). It returns the rows and pages read.
func drain(b *testing.B, api *testkit.API, programmeID, key string, r pagedRead, decode bool) (rows, pages int) {
	url := api.Server.URL + "/graphql"
	var after any
	var buf bytes.Buffer
	for {
		pages++
		vars := map[string]any{"p": programmeID, "a": after}
		raw := postRaw(b, &buf, url, key, r.query, vars)
		var n int
		var cursor string
		var more bool
		if decode {
			n, cursor, more = r.decode(b, raw)
		} else {
			checkAnswer(b, raw)
			n, cursor = bytes.Count(raw, []byte(r.rowOpen)), lastString(raw, r.cursorKey)
			more = bytes.Contains(tail(raw), []byte(`"`+r.moreKey+`":true`))
		}
		rows += n
		if !more {
			return rows, pages
		}
		after = cursor
	}
}

// drainFeed follows the whole feed (drain).
func drainFeed(b *testing.B, api *testkit.API, programmeID, key string, decode bool) (events, pages int) {
	return drain(b, api, programmeID, key, feedRead, decode)
}

// listEnrolments reads every page of enrolments (drain).
func listEnrolments(b *testing.B, api *testkit.API, programmeID, key string, decode bool) (rows, pages int) {
	return drain(b, api, programmeID, key, enrolmentsRead, decode)
}

// decodeFeedPage decodes a feed page as the decoding drain's client does:
// the events, the cursor and whether more follow.
func decodeFeedPage(b *testing.B, raw []byte) (events int, cursor string, more bool) {
	var out struct {
		LifecycleEvents struct {
			Events  []struct{ LearnerVersion int }
			Cursor  string
			HasMore bool
		}
	}
	decodeData(b, http.StatusOK, raw, &out)
	return len(out.LifecycleEvents.Events), out.LifecycleEvents.Cursor, out.LifecycleEvents.HasMore
}

// decodeEnrolmentsPage decodes a page of enrolments as the decoding
// drain's client does: the rows, the end cursor and whether more follow.
func decodeEnrolmentsPage(b *testing.B, raw []byte) (rows int, cursor string, more bool) {
	var out struct {
		Enrolments struct {
			Enrolments  []struct{ LearnerID string }
			EndCursor   *string
			HasNextPage bool
		}
	}
	decodeData(b, http.StatusOK, raw, &out)
	if out.Enrolments.EndCursor != nil {
		cursor = *out.Enrolments.EndCursor
	}
	return len(out.Enrolments.Enrolments), cursor, out.Enrolments.HasNextPage
}

// BenchmarkFeedDrain: draining 1,000,000 feed events in pages of 1,000 over
// GraphQL with an LMS API key.
func BenchmarkFeedDrain(b *testing.B) {
	api, p, key := feedWorld(b)
	b.ResetTimer()
	start := time.Now()
	total, _ := drainFeed(b, api, p.ID, key, true)
	elapsed := time.Since(start)
	b.StopTimer()
	if total != 1_000_000 {
		b.Fatalf("drained %d events", total)
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
	b.Logf("drained %d feed events in pages of 1,000 in %.2f s: %.0f events/s", total, elapsed.Seconds(), float64(total)/elapsed.Seconds())
}

// BenchmarkEnrolmentsList: every page of enrolments over 100,000 active
// learners x 3 courses (pages of 1,000).
func BenchmarkEnrolmentsList(b *testing.B) {
	api, p, key := enrolmentsWorld(b)
	b.ResetTimer()
	start := time.Now()
	total, pages := listEnrolments(b, api, p.ID, key, true)
	elapsed := time.Since(start)
	b.StopTimer()
	if total != 300_000 {
		b.Fatalf("listed %d enrolments", total)
	}
	b.ReportMetric(elapsed.Seconds(), "s/all-pages")
	b.Logf("enrolments: %d rows in %d pages in %.2f s", total, pages, elapsed.Seconds())
}

// BenchmarkRecordActivity: recordLearningActivity with 10,000 rows.
func BenchmarkRecordActivity(b *testing.B) {
	api := testkit.NewAPI(b, migrations.Postgres, testkit.APIOptions{MaxBodyBytes: 16 << 20})
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	bulkLearners(b, api, p, 10_000, 0)
	var ids []string
	rows, err := api.Store.SQL().Query(`SELECT id FROM learners ORDER BY id`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	key := lmsKey(b, api, p.ID)
	input := make([]map[string]any, len(ids))
	at := api.Clock.Now().Add(-time.Hour).Format(time.RFC3339)
	for i, id := range ids {
		input[i] = map[string]any{"learnerId": id, "lastAccessAt": at,
			"enrolments": []map[string]any{{"lmsCourseId": "CTL-GDPR-101", "state": "IN_PROGRESS"}}}
	}
	q := `mutation($p: ID!, $in: [LearningActivityInput!]!) { recordLearningActivity(programmeId: $p, input: $in) { applied rejected } }`
	url := api.Server.URL + "/graphql"
	b.ResetTimer()
	start := time.Now()
	var out struct {
		RecordLearningActivity struct{ Applied, Rejected int }
	}
	post(b, url, key, q, map[string]any{"p": p.ID, "in": input}, &out)
	elapsed := time.Since(start)
	b.StopTimer()
	if out.RecordLearningActivity.Applied != 10_000 {
		b.Fatalf("applied %d", out.RecordLearningActivity.Applied)
	}
	b.ReportMetric(elapsed.Seconds(), "s/10k-rows")
	b.Logf("recordLearningActivity, 10,000 rows: %.2f s end to end", elapsed.Seconds())
	_ = fmt.Sprint()
}
