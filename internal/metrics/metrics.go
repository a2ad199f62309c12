// Package metrics exports Rollcall's operational metrics in the Prometheus
// format with the official Go client (github.com/prometheus/client_golang),
// on a listener of its own (ROLLCALL_METRICS_LISTEN), never the public one.
//
// Labels hold only bounded, non-personal values: GraphQL root field names
// from the schema, error codes, HTTP routes and status codes, sweep outcomes,
// and opaque LMS client IDs (an API key's ID, or the actor ID of an LMS
// grant). Never a name, an email, a token, a query string or a programme name.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the service's collectors, registered on their own registry.
type Metrics struct {
	reg         *prometheus.Registry
	gqlRequests *prometheus.CounterVec
	gqlLatency  *prometheus.HistogramVec
	httpReqs    *prometheus.CounterVec
	httpLatency *prometheus.HistogramVec
	feedWritten prometheus.Counter
	feedServed  *prometheus.CounterVec
	lmsLag      *prometheus.GaugeVec
	lmsLastRead *prometheus.GaugeVec
	sweepRuns   *prometheus.CounterVec
	sweepDone   *prometheus.CounterVec
	sweepTime   prometheus.Histogram
}

// New registers every collector, the Go runtime's and the process's included.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.gqlRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rollcall_graphql_requests_total",
		Help: "GraphQL requests by operation (the root field, or multiple/invalid) and outcome (ok or the first error code)."},
		[]string{"operation", "outcome"})
	m.gqlLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rollcall_graphql_request_duration_seconds",
		Help:    "GraphQL request latency by operation, from the first byte read to the last byte written.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"operation"})
	m.httpReqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rollcall_http_requests_total",
		Help: "HTTP requests by route and status code."}, []string{"route", "code"})
	m.httpLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rollcall_http_request_duration_seconds",
		Help: "HTTP request latency by route.", Buckets: prometheus.DefBuckets}, []string{"route"})
	m.feedWritten = prometheus.NewCounter(prometheus.CounterOpts{Name: "rollcall_feed_events_written_total",
		Help: "Change-feed events committed by this process."})
	m.feedServed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rollcall_feed_events_served_total",
		Help: "Change-feed events returned by lifecycleEvents, by LMS client (an opaque API key or actor ID)."}, []string{"client"})
	m.lmsLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rollcall_lms_feed_lag_seconds",
		Help: "How far behind the feed's head each LMS client was at its last read: the age of the last event it was served when more were waiting, else 0."},
		[]string{"client"})
	m.lmsLastRead = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rollcall_lms_feed_last_read_timestamp_seconds",
		Help: "When each LMS client last read the feed (Unix time): alert when an LMS stops following."}, []string{"client"})
	m.sweepRuns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rollcall_sweep_runs_total",
		Help: "Scheduled retention sweeps by outcome: ok, skipped (another replica held the lock, or there is no programme) or error."}, []string{"outcome"})
	m.sweepDone = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rollcall_sweep_learners_total",
		Help: "Learners the scheduled sweeps acted on, by action: erased, scheduled_inactive, requests_opened, contract_warned."},
		[]string{"action"})
	m.sweepTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rollcall_sweep_duration_seconds",
		Help: "How long a scheduled retention sweep took.", Buckets: []float64{.1, .5, 1, 2.5, 5, 10, 30, 60, 300}})
	m.reg.MustRegister(m.gqlRequests, m.gqlLatency, m.httpReqs, m.httpLatency, m.feedWritten, m.feedServed,
		m.lmsLag, m.lmsLastRead, m.sweepRuns, m.sweepDone, m.sweepTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{"ok", "skipped", "error"} {
		m.sweepRuns.WithLabelValues(o)
	}
	return m
}

// RegisterDB exports the database pool's use (open, in use and idle
// connections, waits) with client_golang's DBStatsCollector.
func (m *Metrics) RegisterDB(db *sql.DB) {
	m.reg.MustRegister(collectors.NewDBStatsCollector(db, "rollcall"))
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	return mux
}

// EventsCommitted counts feed events whose transaction committed.
func (m *Metrics) EventsCommitted(n int) {
	if m != nil && n > 0 {
		m.feedWritten.Add(float64(n))
	}
}

// FeedRead records an LMS client's read of the feed.
func (m *Metrics) FeedRead(client string, served int, lag time.Duration, at time.Time) {
	if m == nil || client == "" {
		return
	}
	m.feedServed.WithLabelValues(client).Add(float64(served))
	m.lmsLag.WithLabelValues(client).Set(lag.Seconds())
	m.lmsLastRead.WithLabelValues(client).Set(float64(at.Unix()))
}

// SweepRun records one scheduled sweep.
type SweepRun struct {
	Skipped, Failed                                 bool
	Erased, ScheduledInactive, RequestsOpened, Warn int
	Took                                            time.Duration
}

func (m *Metrics) Sweep(r SweepRun) {
	if m == nil {
		return
	}
	switch {
	case r.Failed:
		m.sweepRuns.WithLabelValues("error").Inc()
	case r.Skipped:
		m.sweepRuns.WithLabelValues("skipped").Inc()
		return
	default:
		m.sweepRuns.WithLabelValues("ok").Inc()
	}
	m.sweepTime.Observe(r.Took.Seconds())
	m.sweepDone.WithLabelValues("erased").Add(float64(r.Erased))
	m.sweepDone.WithLabelValues("scheduled_inactive").Add(float64(r.ScheduledInactive))
	m.sweepDone.WithLabelValues("requests_opened").Add(float64(r.RequestsOpened))
	m.sweepDone.WithLabelValues("contract_warned").Add(float64(r.Warn))
}

// ---------------------------------------------------------------------------
// The HTTP edge: a request carries a slot the GraphQL handler fills with the
// operation's root field and the first error code it presents.

type slotKey struct{}

type slot struct{ op, code string }

// SetOperation names the request's GraphQL operation by its root field (from
// the schema, so the label set is bounded); several root fields are "multiple".
func SetOperation(ctx context.Context, rootFields []string) {
	s, ok := ctx.Value(slotKey{}).(*slot)
	if !ok {
		return
	}
	switch {
	case len(rootFields) == 1:
		s.op = rootFields[0]
	case len(rootFields) > 1:
		s.op = "multiple"
	}
}

// NoteError records the first error code the request answered with.
func NoteError(ctx context.Context, code string) {
	if s, ok := ctx.Value(slotKey{}).(*slot); ok && s.code == "" {
		s.code = code
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// routes are the paths the service serves; anything else is "other", so a
// scanner cannot grow the label set.
var routes = map[string]bool{"/graphql": true, "/auth/login": true, "/auth/callback": true, "/auth/logout": true,
	"/healthz": true, "/readyz": true, "/graphiql": true}

// Middleware measures every request: by route and status, and for /graphql
// by operation and outcome.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route := r.URL.Path
		if !routes[route] {
			route = "other"
			if len(r.URL.Path) > len("/dev/oidc") && r.URL.Path[:len("/dev/oidc")] == "/dev/oidc" {
				route = "/dev/oidc"
			}
		}
		sw := &statusWriter{ResponseWriter: w}
		s := &slot{}
		if route == "/graphql" {
			r = r.WithContext(context.WithValue(r.Context(), slotKey{}, s))
		}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		took := time.Since(start).Seconds()
		m.httpReqs.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		m.httpLatency.WithLabelValues(route).Observe(took)
		if route != "/graphql" {
			return
		}
		op, outcome := s.op, s.code
		if op == "" {
			op = "invalid"
		}
		if outcome == "" {
			switch {
			case sw.status == http.StatusUnauthorized:
				outcome = "UNAUTHENTICATED"
			case sw.status >= 500:
				outcome = "INTERNAL_SERVER_ERROR"
			case sw.status >= 400:
				outcome = "BAD_USER_INPUT"
			default:
				outcome = "ok"
			}
		}
		m.gqlRequests.WithLabelValues(op, outcome).Inc()
		m.gqlLatency.WithLabelValues(op).Observe(took)
	})
}
