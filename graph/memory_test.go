package graph_test

// Memory is bounded before anyone is known: hostile 16 MB bodies, sent
// anonymously or with a bad token, cost the server kilobytes each; an admin's
// 100,000-row import (about 9 MB) still goes through.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// hostileBody streams n bytes of a GraphQL request whose variables hold one
// huge array, without holding them in the client's memory.
type hostileBody struct{ left int }

func (h *hostileBody) Read(p []byte) (int, error) {
	if h.left <= 0 {
		return 0, io.EOF
	}
	n := min(len(p), h.left)
	for i := range n {
		p[i] = "1,"[i%2]
	}
	if h.left == 16<<20 && n >= 64 {
		copy(p, `{"query":"query($x: [Int]) { __typename }","variables":{"x":[`)
	}
	h.left -= n
	return n, nil
}

// procStatus reads a field of /proc/self/status in bytes.
func procStatus(t *testing.T, field string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == field {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("%s not in /proc/self/status", field)
	return 0
}

func TestEdge_HostileBodiesBoundedMemory(t *testing.T) {
	api := testkit.NewAPI(t, migrations.SQLite, testkit.APIOptions{MaxBodyBytes: 16 << 20})
	// Resetting the peak RSS (VmHWM) needs Linux's clear_refs.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("cannot reset the peak RSS: %v", err)
	}
	base := procStatus(t, "VmRSS")
	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, auth := range []string{"", "Bearer not-a-valid-token", "Bearer " + strings.Repeat("x", 4000)} {
		for _, chunked := range []bool{false, true} {
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var body io.Reader = &hostileBody{left: 16 << 20}
					req, _ := http.NewRequest(http.MethodPost, api.Server.URL+"/graphql", body)
					if !chunked {
						req.ContentLength = 16 << 20
					}
					req.Header.Set("Content-Type", "application/json")
					if auth != "" {
						req.Header.Set("Authorization", auth)
					}
					res, err := api.Server.Client().Do(req)
					status := 0 // the server may close the connection before the client finishes sending
					if err == nil {
						status = res.StatusCode
						_, _ = io.Copy(io.Discard, res.Body)
						res.Body.Close()
					}
					mu.Lock()
					statuses[status]++
					mu.Unlock()
				}()
			}
		}
	}
	wg.Wait()
	peak := procStatus(t, "VmHWM")
	growth := peak - base
	t.Logf("60 hostile 16 MB bodies (10 each: anonymous, bad token, long bad token; declared and chunked): RSS %d MB -> peak %d MB (growth %d MB); statuses %v",
		base>>20, peak>>20, growth>>20, statuses)
	if growth > 100<<20 {
		t.Fatalf("RSS grew by %d MB under hostile bodies, want under 100 MB", growth>>20)
	}
	for s := range statuses {
		if s != 0 && s != http.StatusRequestEntityTooLarge && s != http.StatusUnauthorized {
			t.Errorf("a hostile body answered HTTP %d", s)
		}
	}
	if statuses[http.StatusRequestEntityTooLarge]+statuses[http.StatusUnauthorized] == 0 {
		t.Fatal("no hostile request was answered at all")
	}
}

// On PostgreSQL only: the edge is the same on both databases, and the
// import itself takes minutes on the embedded one on a loaded 2-core machine.
func TestEdge_AdminImportOf100000RowsStillWorks(t *testing.T) {
	for _, d := range []migrations.Dialect{migrations.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			api := testkit.NewAPI(t, d, testkit.APIOptions{MaxBodyBytes: 16 << 20})
			p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
			const n = 100_000
			rows := make([]map[string]any, n)
			for i := range rows {
				rows[i] = map[string]any{"email": fmt.Sprintf("staff.%06d@kent.gov.uk", i), "givenName": "Given", "familyName": fmt.Sprintf("Family %d", i)}
			}
			body, _ := json.Marshal(map[string]any{
				"query":     `mutation($o: ID!, $rows: [LearnerInput!]!) { importLearners(organisationId: $o, rows: $rows, dryRun: false) { created } }`,
				"variables": map[string]any{"o": p.Orgs["Kent County Council"].ID, "rows": rows}})
			if len(body) < 8<<20 {
				t.Fatalf("setup: the import is only %d bytes", len(body))
			}
			r := api.Raw(api.BootstrapToken(), "application/json", body)
			var out struct{ ImportLearners struct{ Created int } }
			r.Decode(t, &out)
			if r.Status != http.StatusOK || out.ImportLearners.Created != n {
				t.Fatalf("import of %d rows (%d bytes): HTTP %d, created %d", n, len(body), r.Status, out.ImportLearners.Created)
			}
		})
	}
}
