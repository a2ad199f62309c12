package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// BenchmarkReconcileRoster: a 100,000-email roster against 100,000 learners
// with 1% leavers, through GraphQL on PostgreSQL.
func BenchmarkReconcileRoster(b *testing.B) {
	api := testkit.NewAPI(b, migrations.Postgres, testkit.APIOptions{MaxBodyBytes: 64 << 20})
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	seedLearners(b, api, p, 100_000)
	emails := make([]string, 0, 100_000)
	for i := 0; i < 100_000; i++ {
		if i%100 == 0 {
			emails = append(emails, fmt.Sprintf("new.starter.%d@kent.gov.uk", i)) // on the roster, not a learner yet
			continue
		}
		emails = append(emails, fmt.Sprintf("staff.%d@kent.gov.uk", i))
	}
	body, _ := json.Marshal(map[string]any{
		"query":     `mutation($o: ID!, $e: [String!]!) { reconcileRoster(organisationId: $o, emails: $e, dryRun: false) { toRemove activeLearners applied badLines { line } } }`,
		"variables": map[string]any{"o": p.Orgs["Kent County Council"].ID, "e": emails},
	})
	b.ResetTimer()
	start := time.Now()
	res := Load(api.Server.URL+"/graphql", api.BootstrapToken(), body, 1, 1)
	elapsed := time.Since(start)
	b.StopTimer()
	var scheduled int
	_ = api.Store.SQL().QueryRow(`SELECT count(*) FROM learners WHERE status = 'REMOVAL_SCHEDULED'`).Scan(&scheduled)
	if res.Errors > 0 || scheduled != 1000 {
		b.Fatalf("errors %d, scheduled %d (want 1000)", res.Errors, scheduled)
	}
	b.ReportMetric(elapsed.Seconds(), "s/roster")
	b.Logf("reconcileRoster, 100,000 emails vs 100,000 learners, 1%% leavers: %.2f s end to end (%d scheduled)", elapsed.Seconds(), scheduled)
}

// BenchmarkRetentionSweep: a sweep over 1,000,000 learners of which 1% are
// due for erasure, with heap sampled during the run.
func BenchmarkRetentionSweep(b *testing.B) {
	api := testkit.NewAPI(b, migrations.Postgres)
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	bulkLearners(b, api, p, 1_000_000, 10_000)
	ctx := lifecycle.WithSystem(context.Background(), "bench")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	peak := before
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak {
					peak = m.HeapInuse
				}
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	rep, err := api.Service.RunRetentionSweep(ctx, p.ID)
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	<-done
	if err != nil || rep.Erased != 10_000 {
		b.Fatalf("sweep: %v %+v", err, rep)
	}
	b.ReportMetric(elapsed.Seconds(), "s/sweep")
	b.ReportMetric(float64(peak-before)/(1<<20), "heap-growth-MB")
	b.Logf("retention sweep over 1,000,000 learners, 10,000 due: %.2f s, erased %d, heap in use %.0f MB before, peak %.0f MB",
		elapsed.Seconds(), rep.Erased, float64(before)/(1<<20), float64(peak)/(1<<20))
}

// BenchmarkErase10k: erasing 10,000 learners who each have learning
// activity, a linked identity and policy decisions.
func BenchmarkErase10k(b *testing.B) {
	api := testkit.NewAPI(b, migrations.Postgres)
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	bulkLearners(b, api, p, 10_000, 10_000)
	db := api.Store.SQL()
	for _, q := range []string{
		`INSERT INTO learning_activity (learner_id, course_id, state, updated_at)
			SELECT l.id, c.id, 'IN_PROGRESS', now() FROM learners l CROSS JOIN (SELECT id FROM courses LIMIT 3) c`,
		`INSERT INTO learner_identities (id, learner_id, issuer, subject, created_at)
			SELECT gen_random_uuid(), id, 'https://idp.example', 'sub-' || id, now() FROM learners`,
		`INSERT INTO policy_acceptances (id, learner_id, policy_version_id, decision, given_by, actor_id, decided_at)
			SELECT gen_random_uuid(), l.id, v.id, 'ACCEPTED', 'SELF', 'x', now() FROM learners l
			CROSS JOIN (SELECT id FROM policy_versions WHERE status = 'ACTIVE') v`,
		`ANALYZE`,
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	ctx := lifecycle.WithSystem(context.Background(), "bench")
	b.ResetTimer()
	start := time.Now()
	rep, err := api.Service.RunRetentionSweep(ctx, p.ID)
	elapsed := time.Since(start)
	b.StopTimer()
	var left int
	_ = db.QueryRow(`SELECT count(*) FROM learning_activity`).Scan(&left)
	if err != nil || rep.Erased != 10_000 || left != 0 {
		b.Fatalf("erase: %v %+v, activity rows left %d", err, rep, left)
	}
	b.ReportMetric(elapsed.Seconds(), "s/10k")
	b.Logf("erasing 10,000 learners (30,000 activity rows, 10,000 identities, 20,000 decisions): %.2f s", elapsed.Seconds())
}

// bulkLearners inserts n learners of Kent County Council straight into the
// database (seeding a million through the API would take minutes), the last
// `due` of them scheduled for removal with a due date in the past: the
// service's clock's past (the test clock), not the machine's.
func bulkLearners(b *testing.B, api *testkit.API, p testkit.Programme, n, due int) {
	org := p.Orgs["Kent County Council"].ID
	grp := p.DefaultGroups["Kent County Council"].ID
	_, err := api.Store.SQL().Exec(`INSERT INTO learners (id, programme_id, organisation_id, access_group_id, email, given_name, family_name,
			status, removal_reason, removal_due_at, version, created_at, updated_at)
		SELECT gen_random_uuid(), $1, $2, $3, 'bulk.' || g || '@kent.gov.uk', 'Given', 'Family' || g,
			CASE WHEN g > $4 - $5 THEN 'REMOVAL_SCHEDULED' ELSE 'ACTIVE' END,
			CASE WHEN g > $4 - $5 THEN 'LEAVER' END,
			CASE WHEN g > $4 - $5 THEN CAST($6 AS timestamptz) - interval '1 day' END,
			1, $6, $6
		FROM generate_series(1, $4) g`, p.ID, org, grp, n, due, api.Clock.Now())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := api.Store.SQL().Exec(`ANALYZE learners`); err != nil {
		b.Fatal(err)
	}
}
