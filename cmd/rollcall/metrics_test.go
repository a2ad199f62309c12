package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gql posts a query to the service and decodes data into v.
func gql(t *testing.T, addr, token, query string, vars map[string]any, v any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Data   json.RawMessage
		Errors []any
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if len(out.Errors) != 0 {
			t.Fatalf("%s: %v", query, out.Errors)
		}
		if err := json.Unmarshal(out.Data, v); err != nil {
			t.Fatal(err)
		}
	}
}

// /metrics, end to end: only on ROLLCALL_METRICS_LISTEN, never on the public
// listener; requests by operation and outcome, a feed event written and
// served to an LMS (by its opaque key ID) with its last read and lag, the
// scheduled sweep's run, the database pool; and no personal data anywhere.
func TestServe_MetricsOnTheirOwnListenerWithoutPersonalData(t *testing.T) {
	addr, maddr := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	e := envFor(map[string]string{"ROLLCALL_DATABASE_URL": "sqlite:" + filepath.Join(dir, "r.db"), "ROLLCALL_DEV": "1",
		"ROLLCALL_LISTEN": addr, "ROLLCALL_METRICS_LISTEN": maddr, "ROLLCALL_SWEEP_INTERVAL": "1h"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var sout, serr syncBuffer
	go func() { done <- run(ctx, []string{"serve"}, e, &sout, &serr) }()
	defer func() {
		cancel()
		<-done
	}()
	var out, errb bytes.Buffer
	deadline := time.Now().Add(60 * time.Second)
	for run(context.Background(), []string{"ready"}, e, &out, &errb) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready\n%s", serr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out.Reset()
	if err := run(context.Background(), []string{"dev-token", "--role", "PROGRAMME_ADMIN", "--programme", "Connect to Learn"}, e, &out, &errb); err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(out.String())
	var setup struct {
		Programmes []struct {
			ID, Name      string
			Organisations []struct{ ID, Name string }
		}
	}
	gql(t, addr, admin, `{ programmes { id name organisations { id name } } }`, nil, &setup)
	var pid, medway string
	for _, p := range setup.Programmes {
		if p.Name == "Connect to Learn" {
			pid = p.ID
			for _, o := range p.Organisations {
				if o.Name == "Medway Council" {
					medway = o.ID
				}
			}
		}
	}
	var key struct {
		IssueApiKey struct {
			Secret string
			ApiKey struct{ ID string }
		}
	}
	gql(t, addr, admin, `mutation($p: ID!) { issueApiKey(programmeId: $p, name: "moodle") { secret apiKey { id } } }`, map[string]any{"p": pid}, &key)
	gql(t, addr, admin, `mutation($o: ID!) { createLearner(organisationId: $o, input: {email: "pat.metrics@medway.gov.uk", givenName: "Pat", familyName: "Metricsperson"}) { id } }`,
		map[string]any{"o": medway}, &struct{}{})
	var feed struct {
		LifecycleEvents struct{ Events []struct{ Type string } }
	}
	gql(t, addr, key.IssueApiKey.Secret, `query($p: ID!) { lifecycleEvents(programmeId: $p, first: 100) { events { type } } }`, map[string]any{"p": pid}, &feed)
	if len(feed.LifecycleEvents.Events) == 0 {
		t.Fatal("the LMS read no events")
	}
	gql(t, addr, "not-a-token", `{ viewer { actorId } }`, nil, nil)

	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("the public listener serves /metrics: %d", res.StatusCode)
	}
	res, err = http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	body := string(b)
	client := `client="api-key:` + key.IssueApiKey.ApiKey.ID + `"`
	for _, want := range []string{
		`rollcall_graphql_requests_total{operation="programmes",outcome="ok"} 1`,
		`rollcall_graphql_requests_total{operation="createLearner",outcome="ok"} 1`,
		`rollcall_graphql_requests_total{operation="invalid",outcome="UNAUTHENTICATED"} 1`,
		`rollcall_graphql_request_duration_seconds_bucket{operation="lifecycleEvents",le="+Inf"} 1`,
		`rollcall_feed_events_served_total{` + client + `} ` + itoa(len(feed.LifecycleEvents.Events)),
		`rollcall_lms_feed_lag_seconds{` + client + `} 0`,
		`rollcall_lms_feed_last_read_timestamp_seconds{` + client + `}`,
		`rollcall_sweep_runs_total{outcome="ok"} 1`,
		`go_sql_max_open_connections{db_name="rollcall"}`,
		`rollcall_feed_events_written_total `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `rollcall_feed_events_written_total 0`) {
		t.Errorf("createLearner's feed event was not counted")
	}
	for _, personal := range []string{"@", "Metricsperson", "medway.gov.uk", key.IssueApiKey.Secret, "Medway", "Connect to Learn"} {
		if strings.Contains(body, personal) {
			t.Errorf("/metrics holds %q", personal)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
