package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/metrics"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// Feed events are counted when their transaction commits, never when it
// rolls back (invariant 5 keeps them in the same transaction as the change).
// Both databases.
func TestMetrics_INV5_FeedEventsCountedOnlyWhenCommitted(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			m := metrics.New()
			st := testkit.NewStore(t, d, store.Options{OnEventsCommitted: m.EventsCommitted})
			ctx := context.Background()
			ev := func(n int) []domain.Event {
				es := make([]domain.Event, n)
				for i := range es {
					es[i] = domain.Event{ProgrammeID: uuid.NewString(), LearnerID: uuid.NewString(), Type: domain.EventType("LEARNER_PROVISIONED"),
						LearnerVersion: 1, OccurredAt: time.Now()}
				}
				return es
			}
			boom := errors.New("refused later in the transaction")
			err := st.InTx(ctx, func(ctx context.Context) error {
				if err := st.AppendEvents(ctx, ev(2)); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("want the transaction's error, got %v", err)
			}
			if err := st.InTx(ctx, func(ctx context.Context) error {
				if err := st.AppendEvents(ctx, ev(3)); err != nil {
					return err
				}
				return st.InTx(ctx, func(ctx context.Context) error { return st.AppendEvents(ctx, ev(1)) })
			}); err != nil {
				t.Fatal(err)
			}
			body := scrape(t, m)
			if !strings.Contains(body, "\nrollcall_feed_events_written_total 4\n") {
				t.Fatalf("want 4 committed events counted (3 + 1 nested, not the 2 rolled back):\n%s", grep(body, "feed_events_written"))
			}
		})
	}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return string(b)
}

func grep(body, s string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The HTTP edge: GraphQL requests by root field and outcome, other routes by
// path, and unknown paths folded into "other" so a scanner cannot grow the
// label set.
func TestMetrics_RequestsByOperationAndOutcomeWithBoundedLabels(t *testing.T) {
	m := metrics.New()
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/graphql":
			metrics.SetOperation(r.Context(), []string{r.URL.Query().Get("op")})
			if c := r.URL.Query().Get("code"); c != "" {
				metrics.NoteError(r.Context(), c)
				metrics.NoteError(r.Context(), "LATER_CODE_IGNORED")
			}
		case "/readyz":
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	for _, u := range []string{"/graphql?op=learners", "/graphql?op=learners", "/graphql?op=learners&code=FORBIDDEN",
		"/readyz", "/wp-admin/alice@example.org", "/../../etc/passwd"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, u, nil))
	}
	body := scrape(t, m)
	for _, want := range []string{
		`rollcall_graphql_requests_total{operation="learners",outcome="ok"} 2`,
		`rollcall_graphql_requests_total{operation="learners",outcome="FORBIDDEN"} 1`,
		`rollcall_graphql_request_duration_seconds_count{operation="learners"} 3`,
		`rollcall_http_requests_total{code="200",route="/readyz"} 1`,
		`rollcall_http_requests_total{code="404",route="other"} 2`,
		`rollcall_sweep_runs_total{outcome="skipped"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(body, "@") || strings.Contains(body, "passwd") || strings.Contains(body, "LATER_CODE") {
		t.Fatalf("a request path or a later code leaked into the labels:\n%s", grep(body, "rollcall_"))
	}
}
