package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// BenchmarkLongPollIdle: 300 long-polls (lifecycleEvents(waitSeconds: 30),
// each with its own API key, re-polling when answered) wait on one
// programme's feed while writers create learners in another programme.
// Reports the database's transactions per second while the polls only wait
// (pg_stat_database.xact_commit of the test database), and the writers'
// throughput with the polls against without.
func BenchmarkLongPollIdle(b *testing.B) {
	const pollers, writers, creates = 300, 4, 400
	api := testkit.NewAPI(b, migrations.Postgres)
	ctl := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	onc := testkit.SeedExample(b, api.Service, "onclick.yaml")
	url := api.Server.URL + "/graphql"
	boot := api.BootstrapToken()
	kcc := ctl.Orgs["Kent County Council"].ID
	var seq atomic.Int64

	write := func() (float64, time.Duration) {
		lat := make([]time.Duration, creates)
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1)) - 1; i < creates; i = int(next.Add(1)) - 1 {
					t0 := time.Now()
					var out any
					post(b, url, boot, `mutation($o: ID!, $in: LearnerInput!) { createLearner(organisationId: $o, input: $in) { id } }`,
						map[string]any{"o": kcc, "in": map[string]any{"email": fmt.Sprintf("writer.%d@kent.gov.uk", seq.Add(1)),
							"givenName": "Writer", "familyName": "Bench"}}, &out)
					lat[i] = time.Since(t0)
				}
			}()
		}
		wg.Wait()
		rps := float64(creates) / time.Since(start).Seconds()
		slices.Sort(lat)
		return rps, lat[len(lat)/2]
	}
	xacts := func() int64 {
		var n int64
		if err := api.Store.SQL().QueryRow(`SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}

	write() // warm up
	b.ResetTimer()
	baseRPS, baseP50 := write()

	keys := make([]string, pollers)
	for i := range keys {
		keys[i] = lmsKey(b, api, onc.ID)
	}
	var cursor struct {
		LifecycleEvents struct{ Cursor string }
	}
	post(b, url, keys[0], `query($p: ID!) { lifecycleEvents(programmeId: $p, first: 1000) { cursor } }`, map[string]any{"p": onc.ID}, &cursor)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: pollers + 10}}
	ctx, cancel := context.WithCancel(context.Background())
	var pollsAnswered, pollErrors atomic.Int64
	var pw sync.WaitGroup
	for _, key := range keys {
		pw.Add(1)
		go func() {
			defer pw.Done()
			cur := cursor.LifecycleEvents.Cursor
			for ctx.Err() == nil {
				body, _ := json.Marshal(map[string]any{"query": `query($p: ID!, $a: String) { lifecycleEvents(programmeId: $p, after: $a, first: 500, waitSeconds: 30) { cursor events { learnerId } } }`,
					"variables": map[string]any{"p": onc.ID, "a": cur}})
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+key)
				res, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						pollErrors.Add(1)
					}
					continue
				}
				raw, _ := io.ReadAll(res.Body)
				res.Body.Close()
				var out struct {
					Data struct {
						LifecycleEvents struct{ Cursor string }
					}
					Errors []any
				}
				if json.Unmarshal(raw, &out) != nil || len(out.Errors) > 0 {
					pollErrors.Add(1)
					time.Sleep(time.Second)
					continue
				}
				pollsAnswered.Add(1)
				cur = out.Data.LifecycleEvents.Cursor
			}
		}()
	}
	for i := 0; api.Store.Watchers(onc.ID) < pollers; i++ {
		if i > 6000 {
			b.Fatalf("%d of %d polls waiting", api.Store.Watchers(onc.ID), pollers)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// PostgreSQL 15 flushes an idle backend's pending statistics up to 10 s
	// late (PGSTAT_IDLE_INTERVAL in src/backend/utils/activity/pgstat.c): let
	// the counts of the set-up and of the polls' first reads arrive first.
	// The idle window and the writes that follow end before the polls' 30 s
	// waits do: the writers meet 300 waiting polls, not the wave of
	// re-polls when all 300 waits end together (a real fleet's are spread).
	time.Sleep(11 * time.Second)
	a0, x0, s0, t0 := pollsAnswered.Load(), xacts(), api.Statements.Load(), time.Now()
	time.Sleep(8 * time.Second)
	x1, s1, idleFor := xacts(), api.Statements.Load(), time.Since(t0)
	answeredInWindow := pollsAnswered.Load() - a0
	idleTPS := float64(x1-x0-1) / idleFor.Seconds() // less this measurement's own first query
	idleStmts := s1 - s0
	inUse := api.Store.SQL().Stats().InUse

	withRPS, withP50 := write()
	answeredByWrites := pollsAnswered.Load() - a0
	b.StopTimer()
	waiting := api.Store.Watchers(onc.ID)
	cancel()
	pw.Wait()
	if pollErrors.Load() > 0 {
		b.Fatalf("%d poll errors", pollErrors.Load())
	}
	b.ReportMetric(idleTPS, "idle-xact/s")
	b.ReportMetric(withRPS/baseRPS*100, "writers-%-of-baseline")
	b.Logf("%d long-polls (waitSeconds: 30) waiting on Onclick's feed: %.2f transactions/s (pg_stat_database.xact_commit) and %d SQL statements from the service over %.0fs while they waited (%d polls answered in the window), %d pooled connections in use; %d answered in all (at the end of their wait), %d waiting after the writes",
		pollers, idleTPS, idleStmts, idleFor.Seconds(), answeredInWindow, inUse, pollsAnswered.Load(), waiting)
	b.Logf("writers (%d clients, %d createLearner in Connect to Learn): %.0f/s p50 %.1f ms without the polls, %.0f/s p50 %.1f ms with them (%.0f%%); %d polls answered from the idle window to the end of the writes",
		writers, creates, baseRPS, ms(baseP50), withRPS, ms(withP50), withRPS/baseRPS*100, answeredByWrites)
}
