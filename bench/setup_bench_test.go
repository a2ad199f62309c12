package bench

import (
	"encoding/json"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// BenchmarkSetupQuery: issue 2's set-up query over the Kent Connects seed
// (20 partners with their domains, groups and courses) at 16 concurrent
// clients over HTTP, against PostgreSQL.
func BenchmarkSetupQuery(b *testing.B) {
	api := testkit.NewAPI(b, migrations.Postgres)
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	body, _ := json.Marshal(map[string]any{
		"query":     `query($id: ID!) { programme(id: $id) { name organisations { name domains { domain } accessGroups { name courses { lmsCourseId title } } } } }`,
		"variables": map[string]any{"id": p.ID},
	})
	tok := api.BootstrapToken()
	url := api.Server.URL + "/graphql"
	Load(url, tok, body, 16, 200) // warm up connections, caches and the query cache
	b.ResetTimer()
	var last LoadResult
	for i := 0; i < b.N; i++ {
		last = Load(url, tok, body, 16, 4000)
	}
	b.StopTimer()
	if last.Errors > 0 {
		b.Fatalf("%d requests failed", last.Errors)
	}
	b.ReportMetric(last.RPS(), "req/s")
	b.ReportMetric(ms(last.P99), "p99-ms")
	b.ReportMetric(ms(last.P50), "p50-ms")
	b.Logf("set-up query, 16 clients: %s", last)
}
