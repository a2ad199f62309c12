package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// scimClients is how many requests a directory has in flight. Entra's
// provisioning service and Okta both send requests concurrently; 8 is this
// benchmark's choice, not a documented figure of either.
const scimClients = 8

// scimEnv is Connect to Learn on PostgreSQL with a SCIM token of Kent
// County Council, issued through GraphQL.
func scimEnv(b *testing.B) (*testkit.API, string) {
	api := testkit.NewAPI(b, migrations.Postgres)
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	var out struct{ IssueScimToken struct{ Secret string } }
	api.MustDo(api.BootstrapToken(), `mutation($o: ID!) { issueScimToken(organisationId: $o, name: "bench") { secret } }`,
		map[string]any{"o": p.Orgs["Kent County Council"].ID}, &out)
	return api, out.IssueScimToken.Secret
}

// scimCall is one SCIM request; it returns the status and the body.
func scimCall(base, token, method, path, body string) (int, []byte, time.Duration, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, base+"/scim/v2"+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	t0 := time.Now()
	res, err := sharedClient.Do(req)
	if err != nil {
		return 0, nil, time.Since(t0), err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, b, time.Since(t0), nil
}

// scimCreateBody is Entra's Create User request (the tutorial's example,
// with a council address and the enterprise extension).
func scimCreateBody(i int) string {
	return fmt.Sprintf(`{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
 "externalId": "%08d-8d2a-4f8e-bf98-7363c4aed4ef", "userName": "Staff.Member%d@kent.gov.uk", "active": true,
 "displayName": "Staff Member %d", "emails": [{"primary": true, "type": "work", "value": "staff.member%d@kent.gov.uk"}],
 "meta": {"resourceType": "User"}, "name": {"formatted": "Staff Member", "familyName": "Member", "givenName": "Staff"}, "roles": [],
 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Adult Social Care"}}`, i, i, i, i)
}

// run spreads n jobs over scimClients workers and gathers per-request
// latencies by kind.
func scimRun(n int, job func(i int, record func(kind string, d time.Duration, ok bool))) (map[string][]time.Duration, map[string]int64, time.Duration) {
	var mu sync.Mutex
	lat := map[string][]time.Duration{}
	errs := map[string]int64{}
	record := func(kind string, d time.Duration, ok bool) {
		mu.Lock()
		lat[kind] = append(lat[kind], d)
		if !ok {
			errs[kind]++
		}
		mu.Unlock()
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < scimClients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				job(i, record)
			}
		}()
	}
	wg.Wait()
	return lat, errs, time.Since(start)
}

// BenchmarkSCIMEntraInitialCycle: Entra's initial cycle over 10,000 people
// of one council: for each, GET /Users?filter=userName eq "…" (no match),
// then POST /Users. Each create is a learner, an audit entry and a feed
// event in one transaction.
func BenchmarkSCIMEntraInitialCycle(b *testing.B) {
	api, token := scimEnv(b)
	base := api.Server.URL
	const n = 10_000
	b.ResetTimer()
	lat, errs, elapsed := scimRun(n, func(i int, record func(string, time.Duration, bool)) {
		f := url.QueryEscape(fmt.Sprintf(`userName eq "Staff.Member%d@kent.gov.uk"`, i))
		st, body, d, err := scimCall(base, token, http.MethodGet, "/Users?filter="+f, "")
		record("filter", d, err == nil && st == http.StatusOK && strings.Contains(string(body), `"totalResults":0`))
		st, _, d, err = scimCall(base, token, http.MethodPost, "/Users", scimCreateBody(i))
		record("create", d, err == nil && st == http.StatusCreated)
	})
	b.StopTimer()
	created := api.Count(`SELECT count(*) FROM learners WHERE email LIKE 'staff.member%' AND status = 'PENDING_ACCEPTANCE'`)
	events := api.Count(`SELECT count(*) FROM lifecycle_events WHERE type = 'LEARNER_PROVISIONED'`)
	if errs["filter"]+errs["create"] > 0 || created != n || events != n {
		b.Fatalf("errors %v, created %d, provisioned events %d (want %d)", errs, created, events, n)
	}
	f, c := summarise(lat["filter"], 0, elapsed), summarise(lat["create"], 0, elapsed)
	b.ReportMetric(elapsed.Seconds(), "s/cycle")
	b.ReportMetric(float64(2*n)/elapsed.Seconds(), "req/s")
	b.ReportMetric(ms(f.P50), "filter-p50-ms")
	b.ReportMetric(ms(f.P99), "filter-p99-ms")
	b.ReportMetric(ms(c.P50), "create-p50-ms")
	b.ReportMetric(ms(c.P99), "create-p99-ms")
	b.Logf("SCIM initial cycle, %d users (filter + create each), %d clients: %.1f s, %.0f req/s; filter p50 %.2f ms p99 %.2f ms; create p50 %.2f ms p99 %.2f ms",
		n, scimClients, elapsed.Seconds(), float64(2*n)/elapsed.Seconds(), ms(f.P50), ms(f.P99), ms(c.P50), ms(c.P99))
}

// BenchmarkSCIMDisableCycle: 1,000 leavers reported by Entra, each a PATCH
// {"op":"Replace","path":"active","value":"False"}: MarkLeaver with its
// audit entry and REMOVAL_SCHEDULED event, among 10,000 users.
func BenchmarkSCIMDisableCycle(b *testing.B) {
	api, token := scimEnv(b)
	base := api.Server.URL
	const users, leavers = 10_000, 1_000
	ids := make([]string, users)
	_, errs, _ := scimRun(users, func(i int, record func(string, time.Duration, bool)) {
		st, body, d, err := scimCall(base, token, http.MethodPost, "/Users", scimCreateBody(i))
		var out struct{ ID string }
		_ = json.Unmarshal(body, &out)
		ids[i] = out.ID
		record("create", d, err == nil && st == http.StatusCreated)
	})
	if errs["create"] > 0 {
		b.Fatalf("set-up: %d creates failed", errs["create"])
	}
	const disable = `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}`
	b.ResetTimer()
	lat, errs, elapsed := scimRun(leavers, func(i int, record func(string, time.Duration, bool)) {
		st, body, d, err := scimCall(base, token, http.MethodPatch, "/Users/"+ids[i*(users/leavers)], disable)
		record("disable", d, err == nil && st == http.StatusOK && strings.Contains(string(body), `"active":false`))
	})
	b.StopTimer()
	scheduled := api.Count(`SELECT count(*) FROM learners WHERE status = 'REMOVAL_SCHEDULED' AND removal_reason = 'LEAVER'`)
	if errs["disable"] > 0 || scheduled != leavers {
		b.Fatalf("errors %d, scheduled %d (want %d)", errs["disable"], scheduled, leavers)
	}
	d := summarise(lat["disable"], 0, elapsed)
	b.ReportMetric(elapsed.Seconds(), "s/cycle")
	b.ReportMetric(float64(leavers)/elapsed.Seconds(), "req/s")
	b.ReportMetric(ms(d.P50), "disable-p50-ms")
	b.ReportMetric(ms(d.P99), "disable-p99-ms")
	b.Logf("SCIM disables, %d of %d users, %d clients: %.2f s, %.0f req/s; p50 %.2f ms, p99 %.2f ms",
		leavers, users, scimClients, elapsed.Seconds(), float64(leavers)/elapsed.Seconds(), ms(d.P50), ms(d.P99))
}
