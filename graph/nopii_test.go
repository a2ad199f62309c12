package graph_test

// Nothing personal reaches PostgreSQL's own log, and an unreachable database
// is a retryable 503 that heals without a restart. Both need the real
// PostgreSQL server: its log file, and its connections refused and allowed.

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// pgLog is the server's log file: pg_current_logfile() when the logging
// collector runs, otherwise the file the Debian/Ubuntu wrapper
// (pg_ctlcluster) sends the server's stderr to,
// /var/log/postgresql/postgresql-<cluster_name with - for />.log.
func pgLog(t *testing.T, db *sql.DB) (read func(from int64) string, size func() int64) {
	t.Helper()
	var path sql.NullString
	if err := db.QueryRow(`SELECT pg_current_logfile()`).Scan(&path); err != nil {
		t.Fatal(err)
	}
	if !path.Valid {
		var cluster string
		if err := db.QueryRow(`SHOW cluster_name`).Scan(&cluster); err != nil || cluster == "" {
			t.Fatalf("no logging collector and no cluster_name to find the server log by: %v", err)
		}
		path.String = "/var/log/postgresql/postgresql-" + strings.ReplaceAll(cluster, "/", "-") + ".log"
	}
	size = func() int64 {
		var n int64
		if err := db.QueryRow(`SELECT size FROM pg_stat_file($1)`, path.String).Scan(&n); err != nil {
			t.Fatalf("server log %s: %v", path.String, err)
		}
		return n
	}
	read = func(from int64) string {
		var s string
		if err := db.QueryRow(`SELECT convert_from(pg_read_binary_file($1, $2, $3), 'UTF8')`, path.String, from, size()-from).Scan(&s); err != nil {
			t.Fatalf("read server log %s: %v", path.String, err)
		}
		return s
	}
	return read, size
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestNoPII_PostgresLogHoldsNoEmailAfterDuplicateCreatesImportsAndSignIns(t *testing.T) {
	e := siNewEnv(t, migrations.Postgres)
	read, size := pgLog(t, e.api.Store.SQL())
	from := size()
	// The log is the right file and statement errors reach it: a duplicate
	// key on a table without personal data, with a marker, must show.
	marker := "nopii-marker-" + randHex(6)
	if _, err := e.api.Store.SQL().Exec(`INSERT INTO erased_identities (hash, erased_at) VALUES ($1, now())`, marker); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.Store.SQL().Exec(`INSERT INTO erased_identities (hash, erased_at) VALUES ($1, now())`, marker); err == nil {
		t.Fatal("the marker's duplicate was accepted")
	}

	tag := randHex(5)
	email := func(n string) string { return "nopii." + tag + "." + n + "@kent.gov.uk" }
	boot := e.api.BootstrapToken()
	kcc := e.org(t, siKCC)
	create := `mutation($o: ID!, $in: LearnerInput!) { createLearner(organisationId: $o, input: $in) { id } }`
	// Duplicate creates, one after another and at once.
	e.createLearner(t, siKCC, email("ann"), nil)
	if r := e.api.Do(boot, create, map[string]any{"o": kcc, "in": map[string]any{"email": email("ann"), "givenName": "Ann", "familyName": "Again"}}); r.Code() != "CONFLICT" {
		t.Fatalf("duplicate create: %s", r.Code())
	}
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.api.Do(boot, create, map[string]any{"o": kcc, "in": map[string]any{"email": email("race"), "givenName": "Rae", "familyName": "Race"}})
		}()
	}
	wg.Wait()
	// Imports over existing emails, and two imports of the same new rows at once.
	imp := `mutation($o: ID!, $rows: [LearnerInput!]!, $atomic: Boolean) { importLearners(organisationId: $o, rows: $rows, dryRun: false, atomic: $atomic) { created } }`
	rows := []any{map[string]any{"email": email("ann"), "givenName": "Ann", "familyName": "Imp"},
		map[string]any{"email": email("bob"), "givenName": "Bob", "familyName": "Imp"}}
	e.api.Do(boot, imp, map[string]any{"o": kcc, "rows": rows, "atomic": false})
	for _, atomic := range []bool{true, false} {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.api.Do(boot, imp, map[string]any{"o": kcc, "rows": []any{
					map[string]any{"email": email(fmt.Sprint("imp-", atomic)), "givenName": "Imp", "familyName": "Race"}}, "atomic": atomic})
			}()
		}
	}
	wg.Wait()
	// An email change onto another learner's email.
	var bob struct {
		Learners struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	e.api.MustDo(boot, `query($p: ID!, $s: String) { learners(programmeId: $p, search: $s) { edges { node { id } } } }`,
		map[string]any{"p": e.p.ID, "s": email("bob")}, &bob)
	if len(bob.Learners.Edges) != 1 {
		t.Fatalf("bob: %+v", bob)
	}
	if r := e.api.Do(boot, `mutation($l: ID!, $in: LearnerUpdateInput!) { updateLearner(learnerId: $l, input: $in) { id } }`,
		map[string]any{"l": bob.Learners.Edges[0].Node.ID, "in": map[string]any{"email": email("ann")}}); r.Code() != "CONFLICT" {
		t.Fatalf("email change onto ann's: %s %+v", r.Code(), r.Errors)
	}
	// Sign-ins: first sign-ins of one person at once (they race on the
	// unique email and identity), and another subject with a taken email.
	tok := siToken(t, e, e.kcc, siUser{sub: "nopii-" + tag, email: email("cat"), verified: siTrue, given: "Cat", family: "Sign"})
	for range 6 {
		wg.Add(1)
		go func() { defer wg.Done(); e.api.Do(tok, siViewerQuery, nil) }()
	}
	wg.Wait()
	other := siToken(t, e, e.kcc, siUser{sub: "nopii-other-" + tag, email: email("cat"), verified: siTrue, given: "Cat", family: "Other"})
	e.api.Do(other, siViewerQuery, nil)
	subjectIsEmail := siToken(t, e, e.kcc, siUser{sub: email("dan"), email: email("dan"), verified: siTrue, given: "Dan", family: "Sub"})
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); e.api.Do(subjectIsEmail, siViewerQuery, nil) }()
	}
	wg.Wait()
	if n := e.count(t, `SELECT count(*) FROM learners WHERE email LIKE ?`, "nopii."+tag+".%"); n < 6 {
		t.Fatalf("%d learners written, want ann, race, bob, imp-true, imp-false, cat and dan", n)
	}

	logged := read(from)
	if !strings.Contains(logged, marker) {
		t.Fatalf("the marker's duplicate key is not in the server log read (%d bytes): the test is not reading PostgreSQL's log", len(logged))
	}
	if strings.Contains(logged, tag) {
		for _, line := range strings.Split(logged, "\n") {
			if strings.Contains(line, tag) {
				t.Errorf("PostgreSQL logged personal data: %s", line)
			}
		}
	}
}

func TestEdge_DatabaseUnreachableIsRetryable503AndRecoversWithoutRestart(t *testing.T) {
	api := testkit.NewAPI(t, migrations.Postgres)
	p := testkit.SeedExample(t, api.Service, "connect-to-learn.yaml")
	tok := api.BootstrapToken()
	var dbName string
	if err := api.Store.SQL().QueryRow(`SELECT current_database()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	allow := testkit.ConnectionSwitch(t, api.Store.SQL())

	// Organisations are read from the database on every request (the
	// programme row itself may be served from the store's cache).
	read := `query($p: ID!) { programme(id: $p) { id name organisations { id } } }`
	write := `mutation($o: ID!, $in: LearnerInput!) { createLearner(organisationId: $o, input: $in) { id } }`
	writeVars := map[string]any{"o": p.Orgs["Kent County Council"].ID, "in": map[string]any{"email": "outage@kent.gov.uk", "givenName": "Out", "familyName": "Age"}}
	if r := hygPost(t, api, tok, read, map[string]any{"p": p.ID}); r.Status != http.StatusOK || len(r.GQL.Errors) > 0 {
		t.Fatalf("before the outage: %d %s", r.Status, r.Body)
	}

	allow(false)
	for name, r := range map[string]hygResult{
		"a read":  hygPost(t, api, tok, read, map[string]any{"p": p.ID}),
		"a write": hygPost(t, api, tok, write, writeVars),
	} {
		if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || r.GQL.Code() != "SERVICE_UNAVAILABLE" {
			t.Errorf("%s with the database refusing connections: HTTP %d, Retry-After %q, code %q, want 503, a Retry-After and SERVICE_UNAVAILABLE: %s",
				name, r.Status, r.Header.Get("Retry-After"), r.GQL.Code(), r.Body)
		}
		if strings.Contains(string(r.Body), dbName) || strings.Contains(string(r.Body), "ALLOW_CONNECTIONS") || strings.Contains(string(r.Body), "accepting") {
			t.Errorf("%s: the 503 tells internals: %s", name, r.Body)
		}
	}
	// An API key is checked in the database: also 503, not 401 or 500.
	if r := hygPost(t, api, "rk_whatever_key", read, map[string]any{"p": p.ID}); r.Status != http.StatusServiceUnavailable || r.GQL.Code() != "SERVICE_UNAVAILABLE" {
		t.Errorf("an API key during the outage: %d %s", r.Status, r.Body)
	}
	if r := hygDo(t, api, hygReq{Method: http.MethodGet, Path: "/readyz"}); r.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d", r.Status)
	}

	allow(true)
	if r := hygPost(t, api, tok, write, writeVars); r.Status != http.StatusOK || len(r.GQL.Errors) > 0 {
		t.Fatalf("after the outage, without a restart: %d %s", r.Status, r.Body)
	}
	if r := hygDo(t, api, hygReq{Method: http.MethodGet, Path: "/readyz"}); r.Status != http.StatusOK {
		t.Errorf("/readyz after the outage: %d", r.Status)
	}
	if n := api.Count(`SELECT count(*) FROM learners WHERE email = ?`, "outage@kent.gov.uk"); n != 1 {
		t.Fatalf("%d learners after the retried write, want 1 (the refused attempt wrote nothing)", n)
	}
}
