// Package bench holds the benchmarks `make bench` runs against PostgreSQL.
// Each benchmark performs a fixed workload per iteration and reports its own
// figures (req/s, p99) with b.ReportMetric; run them with -benchtime 1x.
package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// LoadResult summarises a closed-loop load run.
type LoadResult struct {
	Requests int
	Errors   int64
	Elapsed  time.Duration
	P50, P99 time.Duration
}

func (r LoadResult) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

func (r LoadResult) String() string {
	return fmt.Sprintf("%d requests, %d errors, %.0f req/s, p50 %.2f ms, p99 %.2f ms", r.Requests, r.Errors, r.RPS(),
		ms(r.P50), ms(r.P99))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Load sends total POSTs of body to url from clients concurrent workers, each
// waiting for its answer before the next (closed loop), and checks every
// answer is 200 without GraphQL errors.
//
// The load runs in the measured process, on the same two cores as the
// service, so checking an answer must cost little beside serving it: every
// answer must be a 200 whose body starts {"data": (the transport writes that
// prefix only when there are no errors; gqlgen puts "errors" first), and each
// worker's first answer is decoded in full.
func Load(url, token string, body []byte, clients, total int) LoadResult {
	client := sharedClient
	lat := make([]time.Duration, total)
	var next atomic.Int64
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			decoded := false
			// One buffer a worker for the answers: the load runs in the
			// measured process, and a new buffer per answer (io.ReadAll)
			// was a ninth of the bytes the process allocated serving the
			// learners page, collected by the garbage collector the
			// service shares.
			var buf bytes.Buffer
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				t0 := time.Now()
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				res, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					lat[i] = time.Since(t0)
					continue
				}
				buf.Reset()
				_, _ = buf.ReadFrom(res.Body)
				b := buf.Bytes()
				res.Body.Close()
				lat[i] = time.Since(t0)
				if res.StatusCode != 200 || !bytes.HasPrefix(b, dataPrefix) {
					errs.Add(1)
					continue
				}
				if !decoded {
					decoded = true
					var r struct {
						Data   map[string]json.RawMessage
						Errors []any
					}
					if json.Unmarshal(b, &r) != nil || len(r.Errors) > 0 || len(r.Data) == 0 {
						errs.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	return summarise(lat, errs.Load(), time.Since(start))
}

var dataPrefix = []byte(`{"data":`)

var sharedClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func summarise(lat []time.Duration, errs int64, elapsed time.Duration) LoadResult {
	slices.Sort(lat)
	total := len(lat)
	return LoadResult{Requests: total, Errors: errs, Elapsed: elapsed, P50: lat[total/2], P99: lat[total*99/100]}
}
