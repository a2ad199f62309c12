package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// kccProvider registers a real in-process issuer as Kent County Council's
// identity provider and returns it.
func kccProvider(b *testing.B, api *testkit.API, p testkit.Programme) *oidcissuer.Issuer {
	iss := api.NewIssuer()
	ctx := lifecycle.WithSystem(context.Background(), "bench")
	if _, err := api.Service.RegisterIdentityProvider(ctx, "", p.Orgs["Kent County Council"].ID,
		lifecycle.IdentityProviderInput{Issuer: iss.URL(), ClientID: "rollcall-kcc"}); err != nil {
		b.Fatal(err)
	}
	return iss
}

// BenchmarkSignIn: issue 3's first sign-in (verify + provision + audit + feed
// row in one transaction) and returning sign-in, with bearer tokens over
// HTTP (`{ viewer { learner { id status } } }`) at 16 concurrent clients.
//
// The rates are a running service's: 200 other people sign in first, on
// the fresh service, and are timed apart. Their requests open the pool's
// connections (each new PostgreSQL backend loads its caches and plans
// every statement), fetch the issuer's discovery document and keys, and
// fill the service's caches of the provider and the reference rows: in one
// run the first 16 sign-ins took 0.42 s and used 0.7 s of PostgreSQL's CPU
// on the 2 cores. Counted in the 3,000, that start cost about a tenth of
// the first sign-ins' rate.
func BenchmarkSignIn(b *testing.B) {
	api := testkit.NewAPI(b, migrations.Postgres)
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	iss := kccProvider(b, api, p)
	const n, warm = 3000, 200
	verified := true
	mint := func(who string, n int) []string {
		toks := make([]string, n)
		for i := range toks {
			t, err := iss.Mint(oidcissuer.Claims{Subject: fmt.Sprintf("sub-%s%d", who, i), Audience: []string{"rollcall-kcc"},
				Email: fmt.Sprintf("person.%s%d@kent.gov.uk", who, i), EmailVerified: &verified, GivenName: "Ann", FamilyName: fmt.Sprintf("Person%d", i),
				IssuedAt: api.Clock.Now(), Expiry: api.Clock.Now().Add(10 * time.Hour)})
			if err != nil {
				b.Fatal(err)
			}
			toks[i] = t
		}
		return toks
	}
	early, toks := mint("early-", warm), mint("", n)
	body, _ := json.Marshal(map[string]any{"query": `{ viewer { learner { id status } signInError } }`})
	url := api.Server.URL + "/graphql"
	start := LoadTokens(url, early, body, 16)
	b.ResetTimer()
	first := LoadTokens(url, toks, body, 16)
	returning := LoadTokens(url, toks, body, 16)
	b.StopTimer()
	var count int
	_ = api.Store.SQL().QueryRow(`SELECT count(*) FROM learners`).Scan(&count)
	if start.Errors > 0 || first.Errors > 0 || returning.Errors > 0 || count != warm+n {
		b.Fatalf("errors: fresh service %d, first %d, returning %d; learners %d (want %d)", start.Errors, first.Errors, returning.Errors, count, warm+n)
	}
	b.ReportMetric(first.RPS(), "first-signin/s")
	b.ReportMetric(returning.RPS(), "returning-signin/s")
	b.Logf("first sign-in, fresh service:  %s", start)
	b.Logf("first sign-in (provision):     %s", first)
	b.Logf("returning sign-in:             %s", returning)
}

// importWorld is the service on PostgreSQL with the example partnership, and
// the body of an importLearners request of 100,000 new Kent County Council
// staff (8.4 MB).
func importWorld(b *testing.B) (*testkit.API, []byte) {
	api := testkit.NewAPI(b, migrations.Postgres, testkit.APIOptions{MaxBodyBytes: 64 << 20})
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	var sb strings.Builder
	sb.WriteString(`{"query":"mutation($o: ID!, $rows: [LearnerInput!]!) { importLearners(organisationId: $o, rows: $rows, dryRun: false, atomic: true) { total created failed } }","variables":{"o":"`)
	sb.WriteString(p.Orgs["Kent County Council"].ID)
	sb.WriteString(`","rows":[`)
	for i := 0; i < importRows; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"email":"staff.%d@kent.gov.uk","givenName":"Given%d","familyName":"Family%d"}`, i, i, i)
	}
	sb.WriteString(`]}}`)
	return api, []byte(sb.String())
}

const importRows = 100_000

// runImport sends the import, returns how long its answer took, and checks
// every row was written.
func runImport(b *testing.B, api *testkit.API, body []byte) time.Duration {
	runtime.GC()
	start := time.Now()
	res := LoadTokens(api.Server.URL+"/graphql", []string{api.BootstrapToken()}, body, 1)
	elapsed := time.Since(start)
	var count int
	_ = api.Store.SQL().QueryRow(`SELECT count(*) FROM learners`).Scan(&count)
	if res.Errors > 0 || count != importRows {
		b.Fatalf("import failed: %d errors, %d learners", res.Errors, count)
	}
	return elapsed
}

// BenchmarkImportLearners: importLearners of 100,000 rows through GraphQL,
// end to end on PostgreSQL, with the process's peak RSS.
func BenchmarkImportLearners(b *testing.B) {
	api, body := importWorld(b)
	b.ResetTimer()
	elapsed := runImport(b, api, body)
	b.StopTimer()
	b.ReportMetric(elapsed.Seconds(), "s/100k-rows")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MB")
	b.Logf("importLearners 100,000 rows: %.2f s end to end, request body %.1f MB, peak RSS of the test process (client and server) %d MB",
		elapsed.Seconds(), float64(len(body))/(1<<20), peakRSS()>>20)
}

// BenchmarkLearnersPage: learners(programmeId, first: 50) with organisation,
// access group and acceptances over 100,000 learners, 16 clients.
func BenchmarkLearnersPage(b *testing.B) {
	api := testkit.NewAPI(b, migrations.Postgres)
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	seedLearners(b, api, p, 100_000)
	q := `query($p: ID!, $after: String) { learners(programmeId: $p, first: 50, after: $after) { edges { node { id email givenName familyName status
		organisation { name } accessGroup { name } acceptances { decision decidedAt policyVersion { label } } } } pageInfo { endCursor } } }`
	body, _ := json.Marshal(map[string]any{"query": q, "variables": map[string]any{"p": p.ID}})
	tok := api.BootstrapToken()
	url := api.Server.URL + "/graphql"
	Load(url, tok, body, 16, 200)
	api.Statements.Store(0)
	one := Load(url, tok, body, 1, 1)
	stmts := api.Statements.Load()
	b.ResetTimer()
	res := Load(url, tok, body, 16, 5000)
	b.StopTimer()
	if res.Errors > 0 || one.Errors > 0 {
		b.Fatalf("%d errors", res.Errors)
	}
	b.ReportMetric(res.RPS(), "req/s")
	b.ReportMetric(ms(res.P99), "p99-ms")
	b.ReportMetric(float64(stmts), "SQL/request")
	b.Logf("learners(first: 50) over 100,000 learners, 16 clients: %s; %d SQL statements per request", res, stmts)
}

// seedLearners imports n learners into KCC (set-based import) and gives each
// an acceptance of the site policy with one SQL statement.
func seedLearners(b *testing.B, api *testkit.API, p testkit.Programme, n int) {
	ctx := lifecycle.WithSystem(context.Background(), "bench")
	rows := make([]lifecycle.ImportRow, n)
	for i := range rows {
		rows[i] = lifecycle.ImportRow{Email: fmt.Sprintf("staff.%d@kent.gov.uk", i), GivenName: "Given", FamilyName: fmt.Sprintf("F%d", i)}
	}
	rep, err := api.Service.ImportLearners(ctx, p.Orgs["Kent County Council"].ID, rows, false, true)
	if err != nil || rep.Created != n {
		b.Fatalf("seed: %v %+v", err, rep.Failed)
	}
	if _, err := api.Store.SQL().Exec(`INSERT INTO policy_acceptances (id, learner_id, policy_version_id, decision, age_confirmed, given_by, actor_id, note, decided_at)
		SELECT gen_random_uuid(), l.id, v.id, 'ACCEPTED', false, 'SELF', 'bench', '', now()
		FROM learners l CROSS JOIN (SELECT pv.id FROM policy_versions pv JOIN policies po ON po.id = pv.policy_id
			WHERE po.programme_id = $1 AND pv.status = 'ACTIVE') v`, p.ID); err != nil {
		b.Fatal(err)
	}
	// Bulk-loaded tables need fresh statistics before the planner uses their
	// indexes (autovacuum would get there a little later in production).
	if _, err := api.Store.SQL().Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
}

// LoadTokens sends one request per token from clients workers.
func LoadTokens(url string, toks []string, body []byte, clients int) LoadResult {
	if len(toks) == 1 {
		return Load(url, toks[0], body, clients, 1)
	}
	var next atomic.Int64
	results := make([]LoadResult, clients)
	var wg sync.WaitGroup
	start := time.Now()
	lat := make([]time.Duration, len(toks))
	var errs atomic.Int64
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(toks) {
					return
				}
				r := Load(url, toks[i], body, 1, 1)
				lat[i] = r.P50
				errs.Add(r.Errors)
			}
		}()
	}
	wg.Wait()
	_ = results
	return summarise(lat, errs.Load(), time.Since(start))
}

func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkLearnersPageShapes shows where the learners page's time goes: the
// same 16-client load on three shapes of the query. No issue sets a target
// for these.
func BenchmarkLearnersPageShapes(b *testing.B) {
	api := testkit.NewAPI(b, migrations.Postgres)
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	seedLearners(b, api, p, 5_000)
	tok := api.BootstrapToken()
	shapes := []struct{ name, query string }{
		{"1 learner, id only", `query($p: ID!) { learners(programmeId: $p, first: 1) { edges { node { id } } } }`},
		{"50 learners, scalars only", `query($p: ID!) { learners(programmeId: $p, first: 50) { edges { node { id email givenName familyName status } } pageInfo { endCursor } } }`},
		{"50 learners, full (as BenchmarkLearnersPage)", `query($p: ID!) { learners(programmeId: $p, first: 50) { edges { node { id email givenName familyName status
			organisation { name } accessGroup { name } acceptances { decision decidedAt policyVersion { label } } } } pageInfo { endCursor } } }`},
	}
	url := api.Server.URL + "/graphql"
	b.ResetTimer()
	for i, s := range shapes {
		body, _ := json.Marshal(map[string]any{"query": s.query, "variables": map[string]any{"p": p.ID}})
		Load(url, tok, body, 16, 300)
		res := Load(url, tok, body, 16, 3000)
		if res.Errors > 0 {
			b.Fatalf("%s: %d errors", s.name, res.Errors)
		}
		b.ReportMetric(res.RPS(), fmt.Sprintf("shape%d-req/s", i+1))
		b.Logf("%s: %s", s.name, res)
	}
}
