package graph_test

// The LMS sync API over real HTTP (CTL-4, CTL-7, CTL-10, ONC-3, invariant 3):
// API keys scoped to one programme, the desired state (enrolments) with its
// asOf feed cursor, the lifecycle feed (order, resumable and expiring
// cursors, long-poll, no personal data in its rows) and the learning activity
// the LMS reports back.
//
// Every test runs on both dialects against a fresh database with both example
// programmes seeded. The LMS is an API key issued through the API, sent as
// `Authorization: Bearer rk_…`. The helpers here have the prefix lms.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// lmsEnv is a running service with Connect to Learn and Onclick seeded.
type lmsEnv struct {
	api               *testkit.API
	ctl, onc          testkit.Programme
	medway, kcc, wscc string // organisation IDs
	seq               int
	compulsoryCache   map[string][]string
}

func lmsEach(t *testing.T, fn func(t *testing.T, e *lmsEnv)) {
	t.Helper()
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			fn(t, lmsNewEnv(t, testkit.NewPartnership(t, d)))
		})
	}
}

// lmsNewEnv is the LMS tests' view of the seeded partnership.
func lmsNewEnv(t *testing.T, p *testkit.Partnership) *lmsEnv {
	t.Helper()
	return &lmsEnv{api: p.API, compulsoryCache: map[string][]string{}, ctl: p.CTL, onc: p.Onclick,
		medway: p.CTL.Org(t, "Medway Council").ID, kcc: p.CTL.Org(t, "Kent County Council").ID,
		wscc: p.Onclick.Org(t, "West Sussex County Council").ID}
}

// boot is a fresh bootstrap admin token: tests move the clock by days, so a
// token is minted per request.
func (e *lmsEnv) boot() string { return e.api.BootstrapToken() }

func (e *lmsEnv) uniq(prefix string) string {
	e.seq++
	return fmt.Sprintf("%s%d", prefix, e.seq)
}

func (e *lmsEnv) do(tok, query string, vars map[string]any) testkit.Response {
	return e.api.Do(tok, query, vars)
}

// must runs a request that has to succeed and decodes its data into out.
func (e *lmsEnv) must(t *testing.T, tok, query string, vars map[string]any, out any) {
	t.Helper()
	r := e.api.Do(tok, query, vars)
	if len(r.Errors) > 0 || r.Status != http.StatusOK {
		t.Fatalf("status %d %s\nin: %s", r.Status, lmsErrs(r), lmsOneLine(query))
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("decode %s: %v", r.Data, err)
		}
	}
}

func lmsOneLine(q string) string { return strings.Join(strings.Fields(q), " ") }

func lmsErrs(r testkit.Response) string {
	var parts []string
	for _, er := range r.Errors {
		parts = append(parts, fmt.Sprintf("%v %q %v", er.Extensions["code"], er.Message, er.Path))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// lmsRefused asserts a refusal with code and no data.
func lmsRefused(t *testing.T, r testkit.Response, code, what string) {
	t.Helper()
	if len(r.Errors) == 0 {
		t.Errorf("%s: want %s, got success: %s", what, code, r.Data)
		return
	}
	if r.Code() != code {
		t.Errorf("%s: want %s, got status %d %s", what, code, r.Status, lmsErrs(r))
	}
	if len(r.Data) > 0 && string(r.Data) != "null" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(r.Data, &m); err == nil {
			for k, v := range m {
				if string(v) != "null" {
					t.Errorf("%s: refused call returned data for %s: %s", what, k, v)
				}
			}
		}
	}
}

// lmsUnauthenticated asserts the HTTP-level refusal of a bad credential.
func lmsUnauthenticated(t *testing.T, r testkit.Response, what string) {
	t.Helper()
	if r.Status != http.StatusUnauthorized || r.Code() != "UNAUTHENTICATED" {
		t.Errorf("%s: want 401 UNAUTHENTICATED, got status %d %s %s", what, r.Status, lmsErrs(r), r.Data)
	}
	if len(r.Data) > 0 && string(r.Data) != "null" {
		t.Errorf("%s: 401 with data %s", what, r.Data)
	}
}

func lmsTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// ---------------------------------------------------------------------------
// SQL, rebound for the dialect.

func (e *lmsEnv) sql(q string) string { return e.api.SQL(q) }

func (e *lmsEnv) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := e.api.Store.SQL().QueryRow(e.sql(q), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (e *lmsEnv) maxEventID(t *testing.T, programmeID string) int64 {
	t.Helper()
	var id sql.NullInt64
	if err := e.api.Store.SQL().QueryRow(e.sql(`SELECT max(id) FROM lifecycle_events WHERE programme_id = ?`), programmeID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id.Int64
}

// dump reads every column of a table as text (CAST in SQL, so no driver
// type is printed as bytes): the column names and the rows.
func (e *lmsEnv) dump(t *testing.T, table, where string, args ...any) ([]string, [][]string) {
	t.Helper()
	db := e.api.Store.SQL()
	rows, err := db.Query(`SELECT * FROM ` + table + ` WHERE 1 = 0`)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := rows.Columns()
	rows.Close()
	if err != nil {
		t.Fatal(err)
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = "CAST(" + c + " AS TEXT)"
	}
	q := `SELECT ` + strings.Join(sel, ", ") + ` FROM ` + table
	if where != "" {
		q += ` WHERE ` + where
	}
	rows, err = db.Query(e.sql(q), args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return cols, out
}

// ---------------------------------------------------------------------------
// Fixtures, through the API as the bootstrap admin.

func (e *lmsEnv) domainOf(orgID string) string {
	switch orgID {
	case e.kcc:
		return "kent.gov.uk"
	case e.wscc:
		return "westsussex.gov.uk"
	}
	return "medway.gov.uk"
}

func (e *lmsEnv) programmeOf(orgID string) string {
	if orgID == e.wscc {
		return e.onc.ID
	}
	return e.ctl.ID
}

// createLearner creates a learner (PENDING_ACCEPTANCE); group "" is the
// default group the email's domain selects.
func (e *lmsEnv) createLearner(t *testing.T, orgID, email, given, family, group string) string {
	t.Helper()
	in := map[string]any{"email": email, "givenName": given, "familyName": family}
	if group != "" {
		in["accessGroupId"] = group
	}
	var out struct{ CreateLearner struct{ ID, Status string } }
	e.must(t, e.boot(), `mutation($o: ID!, $in: LearnerInput!) { createLearner(organisationId: $o, input: $in) { id status } }`,
		map[string]any{"o": orgID, "in": in}, &out)
	if out.CreateLearner.Status != "PENDING_ACCEPTANCE" {
		t.Fatalf("new learner is %s", out.CreateLearner.Status)
	}
	return out.CreateLearner.ID
}

func (e *lmsEnv) newLearner(t *testing.T, orgID, group string) string {
	t.Helper()
	n := e.uniq("")
	return e.createLearner(t, orgID, "lms.learner."+n+"@"+e.domainOf(orgID), "Given"+n, "Family"+n, group)
}

// activeLearner is a new learner who accepted the compulsory policies: ACTIVE.
func (e *lmsEnv) activeLearner(t *testing.T, orgID, group string) string {
	t.Helper()
	id := e.newLearner(t, orgID, group)
	e.activate(t, e.programmeOf(orgID), id)
	return id
}

func (e *lmsEnv) compulsory(t *testing.T, programmeID string) []string {
	t.Helper()
	if ids, ok := e.compulsoryCache[programmeID]; ok {
		return ids
	}
	var out struct {
		Programme struct {
			Policies []struct {
				Compulsory     bool
				CurrentVersion *struct{ ID string }
			}
		}
	}
	e.must(t, e.boot(), `query($id: ID!) { programme(id: $id) { policies { compulsory currentVersion { id } } } }`,
		map[string]any{"id": programmeID}, &out)
	var ids []string
	for _, p := range out.Programme.Policies {
		if p.Compulsory && p.CurrentVersion != nil {
			ids = append(ids, p.CurrentVersion.ID)
		}
	}
	if len(ids) == 0 {
		t.Fatalf("programme %s has no compulsory policy", programmeID)
	}
	e.compulsoryCache[programmeID] = ids
	return ids
}

// activate accepts the programme's compulsory policies on the learner's behalf (CTL-5).
func (e *lmsEnv) activate(t *testing.T, programmeID, learnerID string) {
	t.Helper()
	var out struct{ AcceptPoliciesOnBehalf struct{ Status string } }
	e.must(t, e.boot(), `mutation($id: ID!, $in: AcceptPoliciesInput!, $n: String!) {
		acceptPoliciesOnBehalf(learnerId: $id, input: $in, note: $n) { status } }`,
		map[string]any{"id": learnerID, "in": map[string]any{"policyVersionIds": e.compulsory(t, programmeID), "confirmMinimumAge": true},
			"n": "accepted on a paper form"}, &out)
	if out.AcceptPoliciesOnBehalf.Status != "ACTIVE" {
		t.Fatalf("learner %s is %s after accepting every compulsory policy", learnerID, out.AcceptPoliciesOnBehalf.Status)
	}
}

func (e *lmsEnv) updateLearner(t *testing.T, id string, in map[string]any) {
	t.Helper()
	in["reason"] = "LMS test"
	e.must(t, e.boot(), `mutation($id: ID!, $in: LearnerUpdateInput!) { updateLearner(learnerId: $id, input: $in) { id } }`,
		map[string]any{"id": id, "in": in}, nil)
}

// withdraw records a withdrawal on the learner's behalf: Connect to Learn
// erases at once (CTL-8).
func (e *lmsEnv) withdraw(t *testing.T, id string) {
	t.Helper()
	var out struct{ WithdrawConsentOnBehalf struct{ Status string } }
	e.must(t, e.boot(), `mutation($id: ID!) { withdrawConsentOnBehalf(learnerId: $id, reason: "letter of withdrawal") { status } }`,
		map[string]any{"id": id}, &out)
	if out.WithdrawConsentOnBehalf.Status != "ERASED" {
		t.Fatalf("withdrawn learner is %s, want ERASED", out.WithdrawConsentOnBehalf.Status)
	}
}

func (e *lmsEnv) markLeaver(t *testing.T, id string) {
	t.Helper()
	e.must(t, e.boot(), `mutation($id: ID!) { markLeaver(learnerId: $id, reason: "left the council") { id } }`, map[string]any{"id": id}, nil)
}

type lmsGroup struct {
	ID, Name  string
	IsDefault bool
	Courses   []string // lmsCourseIds, sorted
}

// groups lists an organisation's access groups by name.
func (e *lmsEnv) groups(t *testing.T, orgID string) map[string]lmsGroup {
	t.Helper()
	var out struct {
		Organisation struct {
			AccessGroups []struct {
				ID, Name  string
				IsDefault bool
				Courses   []struct{ LmsCourseID string }
			}
		}
	}
	e.must(t, e.boot(), `query($id: ID!) { organisation(id: $id) { accessGroups { id name isDefault courses { lmsCourseId } } } }`,
		map[string]any{"id": orgID}, &out)
	m := map[string]lmsGroup{}
	for _, g := range out.Organisation.AccessGroups {
		lg := lmsGroup{ID: g.ID, Name: g.Name, IsDefault: g.IsDefault}
		for _, c := range g.Courses {
			lg.Courses = append(lg.Courses, c.LmsCourseID)
		}
		sort.Strings(lg.Courses)
		m[g.Name] = lg
	}
	return m
}

func (e *lmsEnv) courseID(t *testing.T, p testkit.Programme, lmsID string) string {
	t.Helper()
	c, ok := p.Courses[lmsID]
	if !ok {
		t.Fatalf("no course %s", lmsID)
	}
	return c.ID
}

func (e *lmsEnv) createGroup(t *testing.T, orgID, name string, courseIDs []string) string {
	t.Helper()
	var out struct{ CreateAccessGroup struct{ ID string } }
	e.must(t, e.boot(), `mutation($o: ID!, $in: AccessGroupInput!) { createAccessGroup(organisationId: $o, input: $in) { id } }`,
		map[string]any{"o": orgID, "in": map[string]any{"name": name, "courseIds": courseIDs}}, &out)
	return out.CreateAccessGroup.ID
}

func (e *lmsEnv) setGroupCourses(t *testing.T, groupID string, courseIDs []string) {
	t.Helper()
	e.must(t, e.boot(), `mutation($id: ID!, $c: [ID!]!) { setAccessGroupCourses(accessGroupId: $id, courseIds: $c) { id } }`,
		map[string]any{"id": groupID, "c": courseIDs}, nil)
}

type lmsLearner struct {
	ID                           string
	Email, GivenName, FamilyName *string
	Status                       string
	RemovalReason                *string
	RemovalDueAt                 *time.Time
	LastActivityAt               *time.Time
	Version                      int
	AccessGroup                  *struct{ ID, Name string }
}

// learner reads a learner as the bootstrap admin.
func (e *lmsEnv) learner(t *testing.T, id string) lmsLearner {
	t.Helper()
	var out struct{ Learner *lmsLearner }
	e.must(t, e.boot(), `query($id: ID!) { learner(id: $id) { id email givenName familyName status removalReason removalDueAt
		lastActivityAt version accessGroup { id name } } }`, map[string]any{"id": id}, &out)
	if out.Learner == nil {
		t.Fatalf("learner %s not found", id)
	}
	return *out.Learner
}

// ---------------------------------------------------------------------------
// API keys.

type lmsKey struct {
	ID, ProgrammeID, Name, Prefix string
	CreatedAt                     time.Time
	RevokedAt                     *time.Time
}

const lmsKeyFields = `id programmeId name prefix createdAt revokedAt`

func (e *lmsEnv) issueKey(t *testing.T, programmeID, name string) (lmsKey, string) {
	t.Helper()
	var out struct {
		IssueAPIKey struct {
			APIKey lmsKey
			Secret string
		} `json:"issueApiKey"`
	}
	e.must(t, e.boot(), `mutation($p: ID!, $n: String!) { issueApiKey(programmeId: $p, name: $n) { apiKey { `+lmsKeyFields+` } secret } }`,
		map[string]any{"p": programmeID, "n": name}, &out)
	return out.IssueAPIKey.APIKey, out.IssueAPIKey.Secret
}

func (e *lmsEnv) apiKeys(t *testing.T, programmeID string) ([]lmsKey, json.RawMessage) {
	t.Helper()
	r := e.do(e.boot(), `query($p: ID!) { apiKeys(programmeId: $p) { `+lmsKeyFields+` } }`, map[string]any{"p": programmeID})
	var out struct {
		APIKeys []lmsKey `json:"apiKeys"`
	}
	r.Decode(t, &out)
	return out.APIKeys, r.Data
}

// ---------------------------------------------------------------------------
// The desired state.

type lmsEnrolment struct {
	LearnerID             string
	Email                 string
	GivenName, FamilyName *string
	AccessGroupID         string
	AccessGroupName       string
	LmsCourseID           string
	LearnerVersion        int
}

type lmsEnrolmentPage struct {
	Enrolments  []lmsEnrolment
	EndCursor   *string
	HasNextPage bool
	AsOf        *string
}

const lmsEnrolmentsQuery = `query($p: ID!, $first: Int, $after: String) { enrolments(programmeId: $p, first: $first, after: $after) {
	enrolments { learnerId email givenName familyName accessGroupId accessGroupName lmsCourseId learnerVersion }
	endCursor hasNextPage asOf } }`

func (e *lmsEnv) enrolmentsRaw(tok, programmeID string, first int, after *string) testkit.Response {
	return e.do(tok, lmsEnrolmentsQuery, map[string]any{"p": programmeID, "first": first, "after": after})
}

func (e *lmsEnv) enrolmentPage(t *testing.T, tok, programmeID string, first int, after *string) lmsEnrolmentPage {
	t.Helper()
	var out struct{ Enrolments lmsEnrolmentPage }
	r := e.enrolmentsRaw(tok, programmeID, first, after)
	if len(r.Errors) > 0 {
		t.Fatalf("enrolments(first: %d): %s", first, lmsErrs(r))
	}
	r.Decode(t, &out)
	return out.Enrolments
}

// listAll reads every page of the desired state, checking the page contract
// (at most first rows, or one learner's rows kept together; asOf on the
// first page only; endCursor exactly when there is a next page). between
// runs after each page that has a next one.
func (e *lmsEnv) listAll(t *testing.T, tok, programmeID string, first int, between func(page int)) (rows []lmsEnrolment, asOf string, pages [][]lmsEnrolment) {
	t.Helper()
	var after *string
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatalf("enrolments(first: %d): more than 10,000 pages", first)
		}
		p := e.enrolmentPage(t, tok, programmeID, first, after)
		// At most first rows; more only for one learner's rows kept together.
		if n := len(p.Enrolments); n > first && p.Enrolments[0].LearnerID != p.Enrolments[n-1].LearnerID {
			t.Errorf("enrolments(first: %d) page %d holds %d rows", first, i, n)
		}
		switch {
		case i == 0 && (p.AsOf == nil || *p.AsOf == ""):
			t.Fatalf("enrolments(first: %d): the first page has no asOf", first)
		case i == 0:
			asOf = *p.AsOf
		case p.AsOf != nil:
			t.Errorf("enrolments(first: %d): page %d carries asOf %q; only the first page does", first, i, *p.AsOf)
		}
		if p.HasNextPage != (p.EndCursor != nil) {
			t.Fatalf("enrolments(first: %d) page %d: hasNextPage %v with endCursor %v", first, i, p.HasNextPage, p.EndCursor)
		}
		rows = append(rows, p.Enrolments...)
		pages = append(pages, p.Enrolments)
		if !p.HasNextPage {
			return rows, asOf, pages
		}
		if between != nil {
			between(i)
		}
		after = p.EndCursor
	}
}

func lmsSortEnrolments(rows []lmsEnrolment) {
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].LearnerID != rows[j].LearnerID {
			return rows[i].LearnerID < rows[j].LearnerID
		}
		return rows[i].LmsCourseID < rows[j].LmsCourseID
	})
}

func lmsEnrolmentKey(r lmsEnrolment) string { return r.LearnerID + "/" + r.LmsCourseID }

// ---------------------------------------------------------------------------
// The feed.

type lmsFeedLearner struct {
	ID                           string
	Email, GivenName, FamilyName *string
	Status                       string
	AccessAllowed                bool
	AccessGroup                  *struct{ ID, Name string }
	Courses                      []struct{ LmsCourseID string }
}

type lmsEvent struct {
	Cursor         string
	Type           string
	OccurredAt     time.Time
	LearnerID      string
	LearnerVersion int
	Learner        *lmsFeedLearner
}

type lmsFeedPage struct {
	Events  []lmsEvent
	Cursor  string
	HasMore bool
}

const lmsFeedQuery = `query($p: ID!, $after: String, $first: Int, $wait: Int) {
	lifecycleEvents(programmeId: $p, after: $after, first: $first, waitSeconds: $wait) {
		events { cursor type occurredAt learnerId learnerVersion
			learner { id email givenName familyName status accessAllowed accessGroup { id name } courses { lmsCourseId } } }
		cursor hasMore } }`

func lmsFeedVars(programmeID string, after *string, first, wait int) map[string]any {
	return map[string]any{"p": programmeID, "after": after, "first": first, "wait": wait}
}

func (e *lmsEnv) feedRaw(tok, programmeID string, after *string, first, wait int) testkit.Response {
	return e.do(tok, lmsFeedQuery, lmsFeedVars(programmeID, after, first, wait))
}

func (e *lmsEnv) feed(t *testing.T, tok, programmeID string, after *string, first, wait int) lmsFeedPage {
	t.Helper()
	r := e.feedRaw(tok, programmeID, after, first, wait)
	if len(r.Errors) > 0 {
		t.Fatalf("lifecycleEvents: %s", lmsErrs(r))
	}
	var out struct{ LifecycleEvents lmsFeedPage }
	r.Decode(t, &out)
	return out.LifecycleEvents
}

// drain follows the feed from after until it has no more, first at a time.
func (e *lmsEnv) drain(t *testing.T, tok, programmeID string, after *string, first int) ([]lmsEvent, string) {
	t.Helper()
	var all []lmsEvent
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatalf("lifecycleEvents: more than 10,000 pages")
		}
		p := e.feed(t, tok, programmeID, after, first, 0)
		if len(p.Events) > first {
			t.Errorf("lifecycleEvents(first: %d) returned %d events", first, len(p.Events))
		}
		if len(p.Events) == 0 && after != nil && p.Cursor != *after {
			t.Errorf("an empty read moved the cursor %q → %q", *after, p.Cursor)
		}
		if n := len(p.Events); n > 0 && p.Cursor != p.Events[n-1].Cursor {
			t.Errorf("the page cursor %q is not its last event's %q", p.Cursor, p.Events[n-1].Cursor)
		}
		all = append(all, p.Events...)
		c := p.Cursor
		after = &c
		if !p.HasMore {
			return all, c
		}
	}
}

func lmsOf(events []lmsEvent, learnerID string) []lmsEvent {
	var out []lmsEvent
	for _, ev := range events {
		if ev.LearnerID == learnerID {
			out = append(out, ev)
		}
	}
	return out
}

func lmsTypes(events []lmsEvent) []string {
	out := make([]string, len(events))
	for i, ev := range events {
		out[i] = ev.Type
	}
	return out
}

// asOfNow is a feed position taken now, from the desired state's first page.
func (e *lmsEnv) asOfNow(t *testing.T, tok, programmeID string) string {
	t.Helper()
	p := e.enrolmentPage(t, tok, programmeID, 1, nil)
	if p.AsOf == nil {
		t.Fatal("enrolments gave no asOf")
	}
	return *p.AsOf
}

// lmsPost is a GraphQL request that reports failures instead of failing the
// test, for use off the test goroutine.
func lmsPost(api *testkit.API, token, query string, vars map[string]any) (testkit.Response, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, api.Server.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		return testkit.Response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := api.Server.Client().Do(req)
	if err != nil {
		return testkit.Response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return testkit.Response{}, err
	}
	var r testkit.Response
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("status %d, body not JSON: %s", res.StatusCode, b)
	}
	r.Status = res.StatusCode
	return r, nil
}

// ---------------------------------------------------------------------------
// Activity.

type lmsReceipt struct {
	Applied, Rejected int
	Results           []struct {
		Index     int
		LearnerID string
		Status    string
		Message   *string
	}
}

const lmsActivityQuery = `mutation($p: ID!, $in: [LearningActivityInput!]!) { recordLearningActivity(programmeId: $p, input: $in) {
	applied rejected results { index learnerId status message } } }`

func (e *lmsEnv) recordRaw(tok, programmeID string, rows []map[string]any) testkit.Response {
	return e.do(tok, lmsActivityQuery, map[string]any{"p": programmeID, "in": rows})
}

func (e *lmsEnv) record(t *testing.T, tok, programmeID string, rows []map[string]any) lmsReceipt {
	t.Helper()
	r := e.recordRaw(tok, programmeID, rows)
	if len(r.Errors) > 0 {
		t.Fatalf("recordLearningActivity: %s", lmsErrs(r))
	}
	var out struct{ RecordLearningActivity lmsReceipt }
	r.Decode(t, &out)
	return out.RecordLearningActivity
}

type lmsActivity struct {
	CourseID     string
	State        string
	CompletedAt  *time.Time
	LastAccessAt *time.Time
	ObservedAt   *time.Time
	UpdatedAt    *time.Time
}

type lmsExport struct {
	LearnerID string
	Document  struct {
		Profile struct {
			ID             string
			LastActivityAt *time.Time
		}
		LearningActivity []lmsActivity
	}
}

// exportActivity is the learner's learning activity as the personal data
// export shows it (ONC-3, ONC-10), by course ID.
func (e *lmsEnv) exportActivity(t *testing.T, learnerID string) map[string]lmsActivity {
	t.Helper()
	var out struct{ PersonalDataExport lmsExport }
	e.must(t, e.boot(), `query($id: ID!) { personalDataExport(learnerId: $id) { learnerId document } }`, map[string]any{"id": learnerID}, &out)
	return lmsActivityByCourse(out.PersonalDataExport.Document.LearningActivity)
}

func lmsActivityByCourse(as []lmsActivity) map[string]lmsActivity {
	m := map[string]lmsActivity{}
	for _, a := range as {
		m[a.CourseID] = a
	}
	return m
}

func lmsTimeIs(got *time.Time, want time.Time) bool { return got != nil && got.Equal(want) }

func lmsFmt(p *time.Time) string {
	if p == nil {
		return "<nil>"
	}
	return lmsTime(*p)
}

// ---------------------------------------------------------------------------
// CTL-10: an API key is the LMS of one programme and nothing more.

func TestAPIKey_CTL10_ScopedToOneProgrammeLMSOperations(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		ctlLearner := e.activeLearner(t, e.medway, "")
		oncLearner := e.activeLearner(t, e.wscc, "")

		key, secret := e.issueKey(t, e.ctl.ID, "Moodle production")
		if !strings.HasPrefix(secret, "rk_") || len(secret) < 32 {
			t.Fatalf("secret %q: want rk_ and at least 32 characters", secret)
		}
		if key.ProgrammeID != e.ctl.ID || key.Name != "Moodle production" || key.RevokedAt != nil || !key.CreatedAt.Equal(e.api.Clock.Now()) {
			t.Errorf("issued key = %+v", key)
		}
		if key.Prefix == "" || !strings.HasPrefix(secret, key.Prefix) || len(secret)-len(key.Prefix) < 32 {
			t.Errorf("prefix %q of %d-character secret: want a short start of the secret", key.Prefix, len(secret))
		}
		other, otherSecret := e.issueKey(t, e.ctl.ID, "Moodle staging")
		if other.ID == key.ID || otherSecret == secret || other.Prefix == key.Prefix {
			t.Fatalf("two keys share an ID, a secret or a prefix: %+v %+v", key, other)
		}

		t.Run("listedWithoutTheSecret", func(t *testing.T) {
			keys, raw := e.apiKeys(t, e.ctl.ID)
			byID := map[string]lmsKey{}
			for _, k := range keys {
				byID[k.ID] = k
			}
			for _, want := range []lmsKey{key, other} {
				got, ok := byID[want.ID]
				if !ok || got.Name != want.Name || got.Prefix != want.Prefix || got.ProgrammeID != e.ctl.ID || got.RevokedAt != nil {
					t.Errorf("apiKeys: %+v, want %+v", got, want)
				}
			}
			for _, s := range []string{secret, otherSecret, secret[len(key.Prefix):], otherSecret[len(other.Prefix):]} {
				if strings.Contains(string(raw), s) {
					t.Errorf("apiKeys returns (part of) a secret: %s", raw)
				}
			}
			if oncKeys, _ := e.apiKeys(t, e.onc.ID); len(oncKeys) != 0 {
				t.Errorf("Onclick lists Connect to Learn's keys: %+v", oncKeys)
			}
		})

		var viewer struct {
			Viewer struct {
				ActorID, Subject string
				BootstrapAdmin   bool
				Roles            []struct{ Role, ProgrammeID string }
				Learner          *struct{ ID string }
			}
		}
		e.must(t, secret, `{ viewer { actorId subject bootstrapAdmin roles { role programmeId } learner { id } } }`, nil, &viewer)
		v := viewer.Viewer
		if len(v.Roles) != 1 || v.Roles[0].Role != "LMS" || v.Roles[0].ProgrammeID != e.ctl.ID || v.BootstrapAdmin || v.Learner != nil || v.Subject != key.ID {
			t.Fatalf("the key's viewer = %+v, want only the LMS role of Connect to Learn", v)
		}

		t.Run("lmsOperationsOfItsProgramme", func(t *testing.T) {
			rows, _, _ := e.listAll(t, secret, e.ctl.ID, 1000, nil)
			if !slices.ContainsFunc(rows, func(r lmsEnrolment) bool { return r.LearnerID == ctlLearner }) {
				t.Errorf("enrolments lack the active learner %s: %+v", ctlLearner, rows)
			}
			events, _ := e.drain(t, secret, e.ctl.ID, nil, 500)
			if got := lmsTypes(lmsOf(events, ctlLearner)); !slices.Contains(got, "LEARNER_ACTIVATED") {
				t.Errorf("the feed of %s is %v, want its activation", ctlLearner, got)
			}
			if got := lmsOf(events, oncLearner); len(got) != 0 {
				t.Errorf("Connect to Learn's feed carries Onclick's learner: %+v", got)
			}
			at := e.api.Clock.Now().Add(-time.Hour)
			rec := e.record(t, secret, e.ctl.ID, []map[string]any{{"learnerId": ctlLearner, "lastAccessAt": lmsTime(at)}})
			if rec.Applied != 1 || rec.Rejected != 0 || rec.Results[0].Status != "APPLIED" {
				t.Fatalf("recordLearningActivity = %+v", rec)
			}
			if got := e.learner(t, ctlLearner).LastActivityAt; !lmsTimeIs(got, at) {
				t.Errorf("lastActivityAt = %s, want %s", lmsFmt(got), lmsTime(at))
			}
			// CTL-12: the audit entry names the key.
			var audit struct {
				AuditLog struct {
					Edges []struct {
						Node struct{ ActorID, Action string }
					}
				}
			}
			e.must(t, e.boot(), `query($p: ID!) { auditLog(programmeId: $p, targetId: $p, first: 200) { edges { node { actorId action } } } }`,
				map[string]any{"p": e.ctl.ID}, &audit)
			found := false
			for _, ed := range audit.AuditLog.Edges {
				found = found || ed.Node.Action == "activity.record" && ed.Node.ActorID == v.ActorID
			}
			if !found {
				t.Errorf("no activity.record audit entry by the key (%s): %+v", v.ActorID, audit.AuditLog.Edges)
			}
		})

		t.Run("anotherProgrammeIsNotFound", func(t *testing.T) {
			missing := uuid.NewString()
			for _, c := range []struct {
				name string
				call func(pid string) testkit.Response
			}{
				{"enrolments", func(pid string) testkit.Response { return e.enrolmentsRaw(secret, pid, 10, nil) }},
				{"lifecycleEvents", func(pid string) testkit.Response { return e.feedRaw(secret, pid, nil, 10, 0) }},
				{"recordLearningActivity", func(pid string) testkit.Response {
					return e.recordRaw(secret, pid, []map[string]any{{"learnerId": oncLearner, "lastAccessAt": lmsTime(e.api.Clock.Now())}})
				}},
			} {
				r, m := c.call(e.onc.ID), c.call(missing)
				lmsRefused(t, r, "NOT_FOUND", c.name+" of Onclick")
				if len(r.Errors) > 0 && len(m.Errors) > 0 && (r.Errors[0].Message != m.Errors[0].Message || fmt.Sprint(r.Errors[0].Extensions) != fmt.Sprint(m.Errors[0].Extensions)) {
					t.Errorf("%s: Onclick's answer %q %v differs from a missing programme's %q %v (CTL-10)", c.name,
						r.Errors[0].Message, r.Errors[0].Extensions, m.Errors[0].Message, m.Errors[0].Extensions)
				}
			}
			if got := e.learner(t, oncLearner).LastActivityAt; got != nil {
				t.Errorf("the refused report reached Onclick's learner: lastActivityAt %s", lmsFmt(got))
			}
		})

		t.Run("adminOperationsRefused", func(t *testing.T) {
			coursesBefore := e.count(t, `SELECT count(*) FROM courses`)
			grantsBefore := e.count(t, `SELECT count(*) FROM role_grants`)
			learnersBefore := e.count(t, `SELECT count(*) FROM learners`)
			before := e.learner(t, ctlLearner)
			for _, c := range []struct {
				name, query string
				vars        map[string]any
				want        string
			}{
				{"createCourse", `mutation($p: ID!) { createCourse(programmeId: $p, input: {lmsCourseId: "KEY-1", title: "By a key"}) { id } }`,
					map[string]any{"p": e.ctl.ID}, "FORBIDDEN"},
				// Organisations are not the LMS's to see (CTL-10): NOT_FOUND, as in the authorisation matrix.
				{"createLearner", `mutation($o: ID!) { createLearner(organisationId: $o, input: {email: "key.made@medway.gov.uk", givenName: "K", familyName: "M"}) { id } }`,
					map[string]any{"o": e.medway}, "NOT_FOUND"},
				{"updateLearner", `mutation($id: ID!) { updateLearner(learnerId: $id, input: {givenName: "Changed", reason: "by a key"}) { id } }`,
					map[string]any{"id": ctlLearner}, "FORBIDDEN"},
				{"grantRole AUDITOR", `mutation($in: GrantRoleInput!) { grantRole(input: $in) { id } }`,
					map[string]any{"in": map[string]any{"issuer": e.api.Issuer.URL(), "subject": "key-made-auditor", "role": "AUDITOR", "programmeId": e.ctl.ID}}, "FORBIDDEN"},
				{"grantRole LMS", `mutation($in: GrantRoleInput!) { grantRole(input: $in) { id } }`,
					map[string]any{"in": map[string]any{"issuer": e.api.Issuer.URL(), "subject": "key-made-lms", "role": "LMS", "programmeId": e.ctl.ID}}, "FORBIDDEN"},
				{"issueApiKey", `mutation($p: ID!) { issueApiKey(programmeId: $p, name: "minted by a key") { secret } }`,
					map[string]any{"p": e.ctl.ID}, "FORBIDDEN"},
				{"apiKeys", `query($p: ID!) { apiKeys(programmeId: $p) { id } }`, map[string]any{"p": e.ctl.ID}, "FORBIDDEN"},
				{"revokeApiKey of another key", `mutation($id: ID!) { revokeApiKey(apiKeyId: $id) { id } }`, map[string]any{"id": other.ID}, "FORBIDDEN"},
				{"revokeApiKey of itself", `mutation($id: ID!) { revokeApiKey(apiKeyId: $id) { id } }`, map[string]any{"id": key.ID}, "FORBIDDEN"},
				{"updateProgrammeRules", `mutation($p: ID!) { updateProgrammeRules(programmeId: $p, input: {minimumAge: 18, reason: "by a key"}) { id } }`,
					map[string]any{"p": e.ctl.ID}, "FORBIDDEN"},
				{"runRetentionSweep", `mutation($p: ID!) { runRetentionSweep(programmeId: $p) { erased } }`, map[string]any{"p": e.ctl.ID}, "FORBIDDEN"},
				{"auditLog", `query($p: ID!) { auditLog(programmeId: $p, first: 1) { edges { cursor } } }`, map[string]any{"p": e.ctl.ID}, "FORBIDDEN"},
			} {
				lmsRefused(t, e.do(secret, c.query, c.vars), c.want, c.name)
			}
			if n := e.count(t, `SELECT count(*) FROM courses`); n != coursesBefore {
				t.Errorf("courses %d → %d", coursesBefore, n)
			}
			if n := e.count(t, `SELECT count(*) FROM role_grants`); n != grantsBefore {
				t.Errorf("role grants %d → %d", grantsBefore, n)
			}
			if n := e.count(t, `SELECT count(*) FROM learners`); n != learnersBefore {
				t.Errorf("learners %d → %d", learnersBefore, n)
			}
			if after := e.learner(t, ctlLearner); after.Version != before.Version || *after.GivenName != *before.GivenName {
				t.Errorf("the learner changed: %+v → %+v", before, after)
			}
			keys, _ := e.apiKeys(t, e.ctl.ID)
			if len(keys) != 2 || keys[0].RevokedAt != nil || keys[1].RevokedAt != nil {
				t.Errorf("keys after the refusals: %+v", keys)
			}
			// A key cannot be given another role: the API-key issuer is no issuer of grants.
			body := e.ctl.Bodies["Smarter Digital Services"].ID
			r := e.do(e.boot(), `mutation($in: GrantRoleInput!) { grantRole(input: $in) { id } }`, map[string]any{"in": map[string]any{
				"issuer": "urn:rollcall:api-key", "subject": key.ID, "role": "PROGRAMME_ADMIN", "programmeId": e.ctl.ID, "governingBodyId": body}})
			lmsRefused(t, r, "BAD_USER_INPUT", "grantRole to an API key's identity")
		})

		t.Run("garbageKeysAreUnauthenticated", func(t *testing.T) {
			for _, bad := range []string{"rk_", "rk_" + strings.ReplaceAll(uuid.NewString(), "-", ""), secret[:len(secret)-1], secret + "x",
				"rk_" + strings.Repeat("a", 200)} {
				lmsUnauthenticated(t, e.enrolmentsRaw(bad, e.ctl.ID, 10, nil), fmt.Sprintf("key %.12s…", bad))
			}
		})

		t.Run("storedHashed", func(t *testing.T) {
			cols, rows := e.dump(t, "api_keys", "")
			if len(rows) != 2 {
				t.Fatalf("api_keys holds %d rows, want 2", len(rows))
			}
			all := fmt.Sprint(rows)
			if !strings.Contains(all, key.Prefix) || !strings.Contains(all, key.ID) {
				t.Fatalf("the dump of api_keys %v does not show the key, so the check would be blind: %s", cols, all)
			}
			for _, s := range []string{secret, otherSecret} {
				for _, part := range []string{s, s[len(key.Prefix):], s[10:30]} {
					for _, row := range rows {
						for i, cell := range row {
							if strings.Contains(cell, part) {
								t.Errorf("api_keys.%s holds (part of) a secret: %q", cols[i], cell)
							}
						}
					}
				}
			}
			_, audit := e.dump(t, "audit_entries", "")
			if strings.Contains(fmt.Sprint(audit), secret[len(key.Prefix):]) || strings.Contains(fmt.Sprint(audit), otherSecret[len(other.Prefix):]) {
				t.Errorf("the audit log holds a secret")
			}
		})

		t.Run("revokedKeyIsRefusedAtOnce", func(t *testing.T) {
			e.api.Clock.Advance(time.Minute)
			revokedAt := e.api.Clock.Now()
			var out struct {
				RevokeAPIKey lmsKey `json:"revokeApiKey"`
			}
			e.must(t, e.boot(), `mutation($id: ID!) { revokeApiKey(apiKeyId: $id) { `+lmsKeyFields+` } }`, map[string]any{"id": key.ID}, &out)
			if out.RevokeAPIKey.ID != key.ID || !lmsTimeIs(out.RevokeAPIKey.RevokedAt, revokedAt) {
				t.Fatalf("revokeApiKey = %+v, want revokedAt %s", out.RevokeAPIKey, lmsTime(revokedAt))
			}
			for _, c := range []struct {
				name string
				r    testkit.Response
			}{
				{"viewer", e.do(secret, `{ viewer { actorId } }`, nil)},
				{"enrolments", e.enrolmentsRaw(secret, e.ctl.ID, 10, nil)},
				{"lifecycleEvents", e.feedRaw(secret, e.ctl.ID, nil, 10, 0)},
				{"recordLearningActivity", e.recordRaw(secret, e.ctl.ID, []map[string]any{{"learnerId": ctlLearner, "lastAccessAt": lmsTime(revokedAt)}})},
			} {
				lmsUnauthenticated(t, c.r, "revoked key: "+c.name)
			}
			if got := e.learner(t, ctlLearner).LastActivityAt; got != nil && got.Equal(revokedAt) {
				t.Errorf("a revoked key's report was applied")
			}
			// Its grant is gone too; the other key still works.
			var grants struct {
				RoleGrants []struct{ Subject, Issuer string }
			}
			e.must(t, e.boot(), `query($p: ID!) { roleGrants(programmeId: $p) { subject issuer } }`, map[string]any{"p": e.ctl.ID}, &grants)
			for _, g := range grants.RoleGrants {
				if g.Subject == key.ID {
					t.Errorf("the revoked key still holds a grant: %+v", g)
				}
			}
			if p := e.enrolmentPage(t, otherSecret, e.ctl.ID, 10, nil); p.AsOf == nil {
				t.Errorf("the other key no longer works")
			}
			keys, _ := e.apiKeys(t, e.ctl.ID)
			for _, k := range keys {
				if (k.ID == key.ID) != (k.RevokedAt != nil) {
					t.Errorf("apiKeys after revoking %s: %+v", key.ID, k)
				}
			}
			// Revoking again keeps the first revocation time.
			e.api.Clock.Advance(time.Minute)
			e.must(t, e.boot(), `mutation($id: ID!) { revokeApiKey(apiKeyId: $id) { `+lmsKeyFields+` } }`, map[string]any{"id": key.ID}, &out)
			if !lmsTimeIs(out.RevokeAPIKey.RevokedAt, revokedAt) {
				t.Errorf("a second revocation moved revokedAt to %s", lmsFmt(out.RevokeAPIKey.RevokedAt))
			}
		})
	})
}

// ---------------------------------------------------------------------------
// CTL-4: the desired state.

func TestEnrolments_CTL4_DesiredStateIsActiveLearnersTimesCourses(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		_, secret := e.issueKey(t, e.ctl.ID, "Moodle")
		medwayGroups, kccGroups := e.groups(t, e.medway), e.groups(t, e.kcc)
		managers := kccGroups["Managers"]
		noCourses := e.createGroup(t, e.medway, "Not enrolled yet", []string{})

		active := []string{
			e.activeLearner(t, e.medway, ""), e.activeLearner(t, e.medway, ""), e.activeLearner(t, e.medway, ""),
			e.activeLearner(t, e.kcc, managers.ID), e.activeLearner(t, e.kcc, ""),
		}
		emptyGroup := e.activeLearner(t, e.medway, noCourses)
		pending := e.newLearner(t, e.medway, "")
		leaver := e.activeLearner(t, e.medway, "")
		e.markLeaver(t, leaver)
		withdrawn := e.activeLearner(t, e.medway, "")
		e.withdraw(t, withdrawn)
		onclick := e.activeLearner(t, e.wscc, "")
		// A learner with no given name and an empty family name: the list
		// must keep NULL and "" apart.
		if _, err := e.api.Store.SQL().Exec(e.sql(`UPDATE learners SET given_name = NULL, family_name = '' WHERE id = ?`), active[1]); err != nil {
			t.Fatal(err)
		}

		// The expectation, from the learners and their groups' configured courses.
		groupCourses := map[string]lmsGroup{}
		for _, g := range medwayGroups {
			groupCourses[g.ID] = g
		}
		for _, g := range kccGroups {
			groupCourses[g.ID] = g
		}
		var want []lmsEnrolment
		for _, id := range active {
			l := e.learner(t, id)
			if l.Status != "ACTIVE" || l.AccessGroup == nil || l.Email == nil {
				t.Fatalf("fixture learner %+v", l)
			}
			g, ok := groupCourses[l.AccessGroup.ID]
			if !ok || len(g.Courses) == 0 {
				t.Fatalf("learner %s is in group %+v", id, l.AccessGroup)
			}
			for _, c := range g.Courses {
				want = append(want, lmsEnrolment{LearnerID: id, Email: *l.Email, GivenName: l.GivenName, FamilyName: l.FamilyName,
					AccessGroupID: g.ID, AccessGroupName: g.Name, LmsCourseID: c, LearnerVersion: l.Version})
			}
		}
		if l := e.learner(t, active[1]); l.GivenName != nil || l.FamilyName == nil || *l.FamilyName != "" {
			t.Fatalf("fixture: names of %s are %v %v, want NULL and empty", active[1], l.GivenName, l.FamilyName)
		}
		lmsSortEnrolments(want)
		if len(want) != 3*3+5+3 {
			t.Fatalf("fixture: %d rows expected, want 17", len(want))
		}

		check := func(t *testing.T, who string, got []lmsEnrolment) {
			t.Helper()
			if len(got) != len(want) {
				t.Errorf("%s: %d rows, want %d", who, len(got), len(want))
			}
			seen := map[string]bool{}
			for i, r := range got {
				k := lmsEnrolmentKey(r)
				if seen[k] {
					t.Errorf("%s: row %s listed twice", who, k)
				}
				seen[k] = true
				if i < len(want) && !lmsSameEnrolment(r, want[i]) {
					t.Errorf("%s: row %d = %+v, want %+v (rows are ordered by learner ID, then lmsCourseId)", who, i, lmsShow(r), lmsShow(want[i]))
				}
				for _, absent := range []string{emptyGroup, pending, leaver, withdrawn, onclick} {
					if r.LearnerID == absent {
						t.Errorf("%s: %s is listed but has no access (or no course, or is another programme's): %+v", who, absent, lmsShow(r))
					}
				}
			}
		}

		rows, asOf, pages := e.listAll(t, secret, e.ctl.ID, 5000, nil)
		if len(pages) != 1 || asOf == "" {
			t.Errorf("first: 5000 answered in %d pages, asOf %q", len(pages), asOf)
		}
		check(t, "the LMS", rows)
		adminRows, _, _ := e.listAll(t, e.boot(), e.ctl.ID, 5000, nil)
		check(t, "the bootstrap admin", adminRows)

		// Keyset pagination visits every row once, in order, whatever the page size.
		for _, first := range []int{2, 1, 3, 4, 5, 16, 17, 18} {
			t.Run(fmt.Sprintf("first%d", first), func(t *testing.T) {
				rows, _, pages := e.listAll(t, secret, e.ctl.ID, first, nil)
				check(t, fmt.Sprintf("first: %d", first), rows)
				if first < len(want) && len(pages) < 2 {
					t.Errorf("first: %d returned all %d rows in one page", first, len(want))
				}
			})
		}

		t.Run("badArguments", func(t *testing.T) {
			garbage := "garbage"
			encoded := base64.RawURLEncoding.EncodeToString([]byte("e:0:not-a-uuid:CTL-GDPR-101"))
			badID := base64.RawURLEncoding.EncodeToString([]byte("e:0:zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz:CTL-GDPR-101"))
			for _, c := range []struct {
				name  string
				first int
				after *string
			}{
				{"first 0", 0, nil}, {"first -1", -1, nil}, {"first 5001", 5001, nil},
				{"after garbage", 10, &garbage}, {"after a feed cursor", 10, &asOf}, {"after a malformed learner", 10, &encoded}, {"after a learner that is no ID", 10, &badID},
			} {
				r := e.enrolmentsRaw(secret, e.ctl.ID, c.first, c.after)
				lmsRefused(t, r, "BAD_USER_INPUT", c.name)
			}
		})
	})
}

func lmsSameEnrolment(a, b lmsEnrolment) bool {
	return a.LearnerID == b.LearnerID && a.Email == b.Email && lmsStr(a.GivenName) == lmsStr(b.GivenName) &&
		lmsStr(a.FamilyName) == lmsStr(b.FamilyName) && a.AccessGroupID == b.AccessGroupID && a.AccessGroupName == b.AccessGroupName &&
		a.LmsCourseID == b.LmsCourseID && a.LearnerVersion == b.LearnerVersion
}

func lmsShow(r lmsEnrolment) string {
	return fmt.Sprintf("{%s %s %s %s %s/%s %s v%d}", r.LearnerID, r.Email, lmsStr(r.GivenName), lmsStr(r.FamilyName),
		r.AccessGroupID, r.AccessGroupName, r.LmsCourseID, r.LearnerVersion)
}

func lmsStr(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// ---------------------------------------------------------------------------
// Invariant 3: list + watch.

// lmsMirror is what an LMS keeps: per learner the highest version it has seen,
// the profile at that version and the courses it enrols them on.
type lmsMirror map[string]*lmsMirrorUser

type lmsMirrorUser struct {
	Version               int
	Email                 string
	GivenName, FamilyName string
	GroupID, GroupName    string
	Courses               map[string]bool
}

// list applies rows of the desired state: the profile comes from the row of
// the highest version seen, courses accumulate.
func (m lmsMirror) list(rows []lmsEnrolment) {
	for _, r := range rows {
		u := m[r.LearnerID]
		if u == nil {
			u = &lmsMirrorUser{Version: -1, Courses: map[string]bool{}}
			m[r.LearnerID] = u
		}
		if r.LearnerVersion >= u.Version {
			u.Version, u.Email, u.GivenName, u.FamilyName = r.LearnerVersion, r.Email, lmsStr(r.GivenName), lmsStr(r.FamilyName)
			u.GroupID, u.GroupName = r.AccessGroupID, r.AccessGroupName
		}
		u.Courses[r.LmsCourseID] = true
	}
}

// apply applies feed events the way the API tells the LMS to: keep the
// highest version; an event at or below it is already reflected. An applied
// event takes the learner's current data (null once erased).
func (m lmsMirror) apply(events []lmsEvent) (applied, skipped int) {
	for _, ev := range events {
		u := m[ev.LearnerID]
		if u != nil && ev.LearnerVersion <= u.Version {
			skipped++
			continue
		}
		applied++
		u = &lmsMirrorUser{Version: ev.LearnerVersion, Courses: map[string]bool{}}
		m[ev.LearnerID] = u
		l := ev.Learner
		if l == nil || !l.AccessAllowed {
			continue // no access: unenrol from everything
		}
		u.Email, u.GivenName, u.FamilyName = lmsStr(l.Email), lmsStr(l.GivenName), lmsStr(l.FamilyName)
		if l.AccessGroup != nil {
			u.GroupID, u.GroupName = l.AccessGroup.ID, l.AccessGroup.Name
		}
		for _, c := range l.Courses {
			u.Courses[c.LmsCourseID] = true
		}
	}
	return applied, skipped
}

// diff compares the mirror with a fresh desired state.
func (m lmsMirror) diff(fresh []lmsEnrolment) []string {
	want := lmsMirror{}
	want.list(fresh)
	var out []string
	for id, w := range want {
		g := m[id]
		switch {
		case g == nil:
			out = append(out, fmt.Sprintf("%s: missing from the LMS, want %+v", id, *w))
		case g.Version != w.Version || g.Email != w.Email || g.GivenName != w.GivenName || g.FamilyName != w.FamilyName ||
			g.GroupID != w.GroupID || g.GroupName != w.GroupName || fmt.Sprint(g.Courses) != fmt.Sprint(w.Courses):
			out = append(out, fmt.Sprintf("%s: the LMS has %+v, want %+v", id, *g, *w))
		}
	}
	for id, g := range m {
		if want[id] == nil && len(g.Courses) > 0 {
			out = append(out, fmt.Sprintf("%s: the LMS still enrols %+v, the desired state has no row", id, *g))
		}
	}
	sort.Strings(out)
	return out
}

type lmsFeedRow struct {
	LearnerID string
	Type      string
	Version   int
}

// feedRowsAfter reads the programme's feed rows after id straight from the table.
func (e *lmsEnv) feedRowsAfter(t *testing.T, programmeID string, id int64) []lmsFeedRow {
	t.Helper()
	rows, err := e.api.Store.SQL().Query(e.sql(`SELECT CAST(learner_id AS TEXT), type, learner_version FROM lifecycle_events
		WHERE programme_id = ? AND id > ? ORDER BY id`), programmeID, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []lmsFeedRow
	for rows.Next() {
		var r lmsFeedRow
		if err := rows.Scan(&r.LearnerID, &r.Type, &r.Version); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEnrolments_INV3_ListThenWatchMissesNothing(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		_, secret := e.issueKey(t, e.ctl.ID, "Moodle")
		gdpr, infosec, safe := e.courseID(t, e.ctl, "CTL-GDPR-101"), e.courseID(t, e.ctl, "CTL-INFOSEC-101"), e.courseID(t, e.ctl, "CTL-SAFE-101")
		pilot := e.createGroup(t, e.medway, "Pilot cohort", []string{gdpr, infosec})

		var active []string
		for range 4 {
			active = append(active, e.activeLearner(t, e.medway, ""))
		}
		inPilot := []string{e.activeLearner(t, e.medway, pilot), e.activeLearner(t, e.medway, pilot)}
		active = append(active, inPilot...)
		kent := e.activeLearner(t, e.kcc, "")
		active = append(active, kent)
		toWithdraw, toMove, toLeave := active[0], active[1], active[2]
		pendingLater := e.newLearner(t, e.medway, "")
		pendingBetween := e.newLearner(t, e.kcc, "")
		sorted := slices.Sorted(slices.Values(active))
		firstListed, lastListed := sorted[0], sorted[len(sorted)-1]

		head := e.maxEventID(t, e.ctl.ID)
		mirror := lmsMirror{}
		// Changes while the LMS pages through the list: a learner already
		// (partly) listed, one not listed yet, and a learner who appears.
		rows, asOf, pages := e.listAll(t, secret, e.ctl.ID, 2, func(page int) {
			if page != 0 {
				return
			}
			e.updateLearner(t, firstListed, map[string]any{"givenName": "Renamed-first"})
			e.updateLearner(t, lastListed, map[string]any{"familyName": "Renamed-last"})
			e.activate(t, e.ctl.ID, pendingBetween)
		})
		if len(pages) < 5 {
			t.Fatalf("the list took %d pages; the test wants several", len(pages))
		}
		if got := e.maxEventID(t, e.ctl.ID); got == head {
			t.Fatalf("the changes between pages wrote no feed rows")
		}
		mirror.list(rows)

		// Changes after the list.
		e.activate(t, e.ctl.ID, pendingLater)
		e.setGroupCourses(t, pilot, []string{gdpr, safe})
		e.withdraw(t, toWithdraw)
		e.updateLearner(t, toMove, map[string]any{"accessGroupId": pilot})
		e.markLeaver(t, toLeave)

		events, end := e.drain(t, secret, e.ctl.ID, &asOf, 3)

		t.Run("theFeedFromAsOfIsExactlyTheChangesAfterIt", func(t *testing.T) {
			want := e.feedRowsAfter(t, e.ctl.ID, head)
			got := make([]lmsFeedRow, len(events))
			for i, ev := range events {
				got[i] = lmsFeedRow{ev.LearnerID, ev.Type, ev.LearnerVersion}
			}
			if !slices.Equal(got, want) {
				t.Errorf("the feed after asOf delivered\n  %v\nthe table holds after asOf\n  %v", got, want)
			}
			expect := map[string][]string{}
			add := func(id string, types ...string) { expect[id] = append(expect[id], types...) }
			add(firstListed, "LEARNER_UPDATED")
			add(lastListed, "LEARNER_UPDATED")
			add(pendingBetween, "LEARNER_ACTIVATED")
			add(pendingLater, "LEARNER_ACTIVATED")
			add(toWithdraw, "ACCESS_REVOKED", "LEARNER_ERASED")
			add(toMove, "GROUP_CHANGED") // a group change alone is one event (invariant 3)
			add(toLeave, "REMOVAL_SCHEDULED")
			for _, id := range inPilot {
				add(id, "COURSES_CHANGED")
			}
			for id, types := range expect {
				got := lmsTypes(lmsOf(events, id))
				for _, ty := range types {
					if !slices.Contains(got, ty) {
						t.Errorf("learner %s: the feed has %v, want %s among them", id, got, ty)
					}
				}
			}
			// Nothing from before asOf is delivered again: untouched learners have no event.
			for _, id := range active {
				if _, changed := expect[id]; !changed {
					if evs := lmsOf(events, id); len(evs) > 0 {
						t.Errorf("learner %s was not changed after asOf, yet the feed delivers %v", id, lmsTypes(evs))
					}
				}
			}
			seen := map[string]bool{}
			for _, ev := range events {
				if seen[ev.Cursor] {
					t.Errorf("cursor %q delivered twice", ev.Cursor)
				}
				seen[ev.Cursor] = true
			}
		})

		t.Run("keepHighestVersionGivesTheFreshList", func(t *testing.T) {
			applied, skipped := mirror.apply(events)
			if applied == 0 || skipped == 0 {
				t.Logf("applied %d events, skipped %d as already listed", applied, skipped)
			}
			fresh, _, _ := e.listAll(t, secret, e.ctl.ID, 5000, nil)
			for _, d := range mirror.diff(fresh) {
				t.Error(d)
			}
			for _, id := range []string{toWithdraw, toLeave} {
				if u := mirror[id]; u == nil || len(u.Courses) != 0 {
					t.Errorf("learner %s lost access, the LMS still has %+v", id, u)
				}
			}
		})

		t.Run("resumable", func(t *testing.T) {
			if p := e.feed(t, secret, e.ctl.ID, &end, 100, 0); len(p.Events) != 0 || p.Cursor != end || p.HasMore {
				t.Errorf("after the end: %d events, cursor %q (was %q), hasMore %v", len(p.Events), p.Cursor, end, p.HasMore)
			}
			for _, k := range []int{0, len(events) / 2, len(events) - 1} {
				rest, _ := e.drain(t, secret, e.ctl.ID, &events[k].Cursor, 500)
				if len(rest) != len(events)-k-1 {
					t.Errorf("resuming after event %d gave %d events, want %d", k, len(rest), len(events)-k-1)
					continue
				}
				for i, ev := range rest {
					if w := events[k+1+i]; ev.Cursor != w.Cursor || ev.LearnerID != w.LearnerID || ev.Type != w.Type || ev.LearnerVersion != w.LearnerVersion {
						t.Errorf("resuming after event %d: event %d is %+v, want %+v", k, i, ev, w)
					}
				}
			}
		})

		// A learner whose rows straddle two pages and whose courses change
		// between those pages: the rows on the first page are at the old
		// version, those on the second at the new one. Keeping the highest
		// version seen then skips the event that would correct the first
		// page's rows.
		t.Run("learnerSplitAcrossPagesChangesBetweenThem", func(t *testing.T) {
			_, _, onePage := e.listAll(t, secret, e.ctl.ID, 5000, nil)
			all := onePage[0]
			if len(all) < 3 {
				t.Fatalf("too few rows: %d", len(all))
			}
			first := all[0].LearnerID
			var courses []string
			for _, r := range all {
				if r.LearnerID == first {
					courses = append(courses, r.LmsCourseID)
				}
			}
			if len(courses) < 2 {
				t.Fatalf("the first learner has %d course; the seed must give them several", len(courses))
			}
			group := all[0].AccessGroupID
			// The first page holds all but the last of the first learner's courses;
			// between pages the first of them is taken off the group.
			keep := []string{}
			for _, c := range courses[1:] {
				keep = append(keep, e.courseID(t, e.ctl, c))
			}
			mirror := lmsMirror{}
			rows, asOf, _ := e.listAll(t, secret, e.ctl.ID, len(courses)-1, func(page int) {
				if page == 0 {
					e.setGroupCourses(t, group, keep)
				}
			})
			mirror.list(rows)
			evs, _ := e.drain(t, secret, e.ctl.ID, &asOf, 500)
			mirror.apply(evs)
			fresh, _, _ := e.listAll(t, secret, e.ctl.ID, 5000, nil)
			for _, d := range mirror.diff(fresh) {
				t.Errorf("%s\n(the learner's rows straddled pages at versions %v; the COURSES_CHANGED event is at or below the highest listed version, so the LMS skips it)",
					d, lmsVersionsOf(rows, first))
			}
		})
	})
}

func lmsVersionsOf(rows []lmsEnrolment, learnerID string) []string {
	var out []string
	for _, r := range rows {
		if r.LearnerID == learnerID {
			out = append(out, fmt.Sprintf("%s@v%d", r.LmsCourseID, r.LearnerVersion))
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Invariant 3 / invariant 2: the feed carries no personal data.

func TestFeed_INV3_NoPersonalDataInRowsAndLearnerNullOnceErased(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		_, secret := e.issueKey(t, e.ctl.ID, "Moodle")
		start := e.asOfNow(t, secret, e.ctl.ID)

		x := e.createLearner(t, e.medway, "xanthe.quillfeather@medway.gov.uk", "Xanthe", "Quillfeather", "")
		y := e.createLearner(t, e.kcc, "yusuf.brightwater@kent.gov.uk", "Yusuf", "Brightwater", "")
		e.activate(t, e.ctl.ID, x)
		e.activate(t, e.ctl.ID, y)
		e.updateLearner(t, x, map[string]any{"givenName": "Xanthippe"})
		e.updateLearner(t, y, map[string]any{"familyName": "Brightwell"})
		e.withdraw(t, x)
		personal := []string{"xanthe", "quillfeather", "xanthippe", "yusuf", "brightwater", "brightwell", "medway.gov.uk", "kent.gov.uk"}

		for _, who := range []struct{ name, tok string }{{"the LMS", secret}, {"the bootstrap admin", e.boot()}} {
			events, _ := e.drain(t, who.tok, e.ctl.ID, &start, 500)
			xs, ys := lmsOf(events, x), lmsOf(events, y)
			if got, want := lmsTypes(xs), []string{"LEARNER_PROVISIONED", "LEARNER_ACTIVATED", "LEARNER_UPDATED", "ACCESS_REVOKED", "LEARNER_ERASED"}; !slices.Equal(got, want) {
				t.Errorf("%s: the erased learner's feed is %v, want %v", who.name, got, want)
			}
			if got, want := lmsTypes(ys), []string{"LEARNER_PROVISIONED", "LEARNER_ACTIVATED", "LEARNER_UPDATED"}; !slices.Equal(got, want) {
				t.Errorf("%s: the live learner's feed is %v, want %v", who.name, got, want)
			}
			for _, ev := range xs {
				if ev.Learner != nil {
					t.Errorf("%s: %s event of the erased learner resolves learner %+v, want null", who.name, ev.Type, *ev.Learner)
				}
			}
			for _, ev := range ys {
				// Current data at read time, not the data when the event was written.
				if ev.Learner == nil || ev.Learner.ID != y || lmsStr(ev.Learner.Email) != "yusuf.brightwater@kent.gov.uk" ||
					lmsStr(ev.Learner.FamilyName) != "Brightwell" {
					t.Errorf("%s: %s event of the live learner resolves %+v, want the current data", who.name, ev.Type, ev.Learner)
				}
			}
			last := map[string]int{}
			for _, ev := range events {
				if ev.LearnerVersion <= last[ev.LearnerID] {
					t.Errorf("%s: learner %s: %s at version %d after version %d", who.name, ev.LearnerID, ev.Type, ev.LearnerVersion, last[ev.LearnerID])
				}
				last[ev.LearnerID] = ev.LearnerVersion
				if ev.OccurredAt.IsZero() {
					t.Errorf("%s: event without occurredAt: %+v", who.name, ev)
				}
			}
			for id, v := range last {
				if l := e.learner(t, id); l.Version != v {
					t.Errorf("%s: learner %s is at version %d, its last event at %d", who.name, id, l.Version, v)
				}
			}
		}
		erased := e.learner(t, x)
		if erased.Status != "ERASED" || erased.Email != nil || erased.GivenName != nil || erased.FamilyName != nil {
			t.Errorf("the erased learner reads %+v", erased)
		}

		cols, rows := e.dump(t, "lifecycle_events", "")
		for _, c := range cols {
			if lc := strings.ToLower(c); strings.Contains(lc, "email") || strings.Contains(lc, "name") {
				t.Errorf("lifecycle_events has a column %q", c)
			}
		}
		all := strings.ToLower(fmt.Sprint(rows))
		if !strings.Contains(all, x) || !strings.Contains(all, y) {
			t.Fatalf("the dump of lifecycle_events does not show the learners, so the check would be blind")
		}
		for _, p := range personal {
			if strings.Contains(all, p) {
				t.Errorf("lifecycle_events holds %q", p)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// Feed retention: CURSOR_EXPIRED.

// purge runs the scheduled sweep (the scheduler and `rollcall sweep`), which
// deletes feed rows older than the retention (30 days by default).
func (e *lmsEnv) purge(t *testing.T) {
	t.Helper()
	if _, err := e.api.Service.SweepAll(context.Background()); err != nil {
		t.Fatalf("sweep: %v", err)
	}
}

func TestFeed_CursorExpired(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		_, secret := e.issueKey(t, e.ctl.ID, "Moodle")
		e.activeLearner(t, e.medway, "") // three courses: an enrolment cursor below
		asOf := e.asOfNow(t, secret, e.ctl.ID)
		changed := e.newLearner(t, e.kcc, "")
		evs, cur := e.drain(t, secret, e.ctl.ID, &asOf, 500)
		if len(evs) != 1 || evs[0].LearnerID != changed {
			t.Fatalf("the feed after asOf: %+v", evs)
		}

		// Within the retention nothing is purged and every cursor works.
		e.api.Clock.Advance(29 * 24 * time.Hour)
		e.purge(t)
		if p := e.feed(t, secret, e.ctl.ID, &asOf, 10, 0); len(p.Events) != 1 {
			t.Errorf("a 29-day-old cursor: %d events, want the one change", len(p.Events))
		}
		if p := e.feed(t, secret, e.ctl.ID, &cur, 10, 0); len(p.Events) != 0 || p.Cursor != cur {
			t.Errorf("a 29-day-old cursor at the end: %+v", p)
		}

		// 31 days on, the sweep purges the rows: a cursor with purged events
		// after it has missed them.
		e.api.Clock.Advance(2 * 24 * time.Hour)
		e.purge(t)
		if n := e.count(t, `SELECT count(*) FROM lifecycle_events WHERE programme_id = ?`, e.ctl.ID); n != 0 {
			t.Fatalf("%d feed rows older than the retention survive the sweep", n)
		}
		r := e.feedRaw(secret, e.ctl.ID, &asOf, 10, 0)
		lmsRefused(t, r, "CURSOR_EXPIRED", "a cursor before purged events")
		if f := r.Ext("field"); len(r.Errors) > 0 && f != "after" {
			t.Errorf("CURSOR_EXPIRED names field %q, want after", f)
		}
		// A reader that had read everything missed nothing: it keeps its place.
		for name, c := range map[string]string{"page cursor": cur, "event cursor": evs[0].Cursor} {
			if p := e.feed(t, secret, e.ctl.ID, &c, 10, 0); len(p.Events) != 0 || p.Cursor != c {
				t.Errorf("the %s at the head after the purge: %+v", name, p)
			}
		}

		// Reading from the start of a purged feed hands out a cursor that works.
		t.Run("cursorOfAnEmptyReadFromTheStartWorks", func(t *testing.T) {
			p := e.feed(t, secret, e.ctl.ID, nil, 10, 0)
			if len(p.Events) != 0 {
				t.Fatalf("the purged feed from the start: %+v", p.Events)
			}
			if r := e.feedRaw(secret, e.ctl.ID, &p.Cursor, 10, 0); len(r.Errors) > 0 {
				t.Errorf("following the cursor the feed just handed out: %s", lmsErrs(r))
			}
		})

		// The way back: list again and follow the feed from the new asOf.
		t.Run("freshAsOfAfterAPurgeWorks", func(t *testing.T) {
			fresh := e.asOfNow(t, secret, e.ctl.ID)
			if r := e.feedRaw(secret, e.ctl.ID, &fresh, 10, 0); len(r.Errors) > 0 {
				t.Fatalf("following the asOf of a fresh list after the feed was purged: %s (the documented recovery from CURSOR_EXPIRED)", lmsErrs(r))
			}
			later := e.newLearner(t, e.medway, "")
			if p := e.feed(t, secret, e.ctl.ID, &fresh, 10, 0); len(p.Events) != 1 || p.Events[0].LearnerID != later {
				t.Errorf("following the fresh asOf: %+v", p)
			}
		})

		t.Run("malformedCursors", func(t *testing.T) {
			enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
			e.activeLearner(t, e.medway, "") // a second active learner: the list has a second page
			page := e.enrolmentPage(t, secret, e.ctl.ID, 1, nil)
			if page.EndCursor == nil {
				t.Fatal("no enrolment cursor")
			}
			for _, c := range []string{"garbage!", "%%%", enc("f:1:2"), enc("f:x:1:2"), enc("f:0:-5:0"), enc("f:0:1:2:3"), enc("a:12"), *page.EndCursor} {
				r := e.feedRaw(secret, e.ctl.ID, &c, 10, 0)
				lmsRefused(t, r, "BAD_USER_INPUT", fmt.Sprintf("lifecycleEvents(after: %q)", c))
				if f := r.Ext("field"); len(r.Errors) > 0 && f != "after" {
					t.Errorf("cursor %q: field %q, want after", c, f)
				}
			}
			for _, first := range []int{0, 5001} {
				lmsRefused(t, e.feedRaw(secret, e.ctl.ID, nil, first, 0), "BAD_USER_INPUT", fmt.Sprintf("lifecycleEvents(first: %d)", first))
			}
		})
	})
}

// ---------------------------------------------------------------------------
// Long-poll.

func TestFeed_LongPollReturnsWhenAnEventArrives(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		_, secret := e.issueKey(t, e.ctl.ID, "Moodle")
		e.newLearner(t, e.medway, "")
		_, cur := e.drain(t, secret, e.ctl.ID, nil, 500)

		type result struct {
			page    lmsFeedPage
			err     string
			elapsed time.Duration
		}
		poll := func(tok, programmeID string, after *string, wait int) <-chan result {
			ch := make(chan result, 1)
			start := time.Now()
			go func() {
				r, err := lmsPost(e.api, tok, lmsFeedQuery, lmsFeedVars(programmeID, after, 100, wait))
				res := result{elapsed: time.Since(start)}
				switch {
				case err != nil:
					res.err = err.Error()
				case len(r.Errors) > 0:
					res.err = lmsErrs(r)
				default:
					var out struct{ LifecycleEvents lmsFeedPage }
					if err := json.Unmarshal(r.Data, &out); err != nil {
						res.err = err.Error()
					}
					res.page = out.LifecycleEvents
				}
				ch <- res
			}()
			return ch
		}
		wait := func(t *testing.T, ch <-chan result) result {
			t.Helper()
			select {
			case r := <-ch:
				if r.err != "" {
					t.Fatalf("long poll: %s", r.err)
				}
				return r
			case <-time.After(15 * time.Second):
				t.Fatal("the long poll did not return")
			}
			return result{}
		}

		t.Run("wakesOnAChange", func(t *testing.T) {
			ch := poll(secret, e.ctl.ID, &cur, 5)
			time.Sleep(300 * time.Millisecond)
			changed := e.newLearner(t, e.kcc, "")
			r := wait(t, ch)
			if len(r.page.Events) != 1 || r.page.Events[0].LearnerID != changed || r.page.Events[0].Type != "LEARNER_PROVISIONED" {
				t.Fatalf("the long poll returned %+v, want the new learner's provisioning", r.page.Events)
			}
			if r.page.Cursor == cur || r.page.Cursor != r.page.Events[0].Cursor {
				t.Errorf("cursor %q after the event (was %q)", r.page.Cursor, cur)
			}
			if r.elapsed < 250*time.Millisecond || r.elapsed > 2500*time.Millisecond {
				t.Errorf("returned after %s: want it to wait for the change (~300ms) and answer well under the 5s wait", r.elapsed)
			}
			cur = r.page.Cursor
		})

		t.Run("emptyAfterTheWaitWithTheSameCursor", func(t *testing.T) {
			r := wait(t, poll(secret, e.ctl.ID, &cur, 1))
			if len(r.page.Events) != 0 || r.page.Cursor != cur || r.page.HasMore {
				t.Errorf("an idle wait returned %+v, want no events and cursor %q", r.page, cur)
			}
			if r.elapsed < 900*time.Millisecond || r.elapsed > 3*time.Second {
				t.Errorf("waitSeconds: 1 returned after %s", r.elapsed)
			}
		})

		t.Run("anotherProgrammesChangeDoesNotWakeIt", func(t *testing.T) {
			oncAt := e.asOfNow(t, e.boot(), e.onc.ID)
			ch := poll(e.boot(), e.onc.ID, &oncAt, 2)
			time.Sleep(300 * time.Millisecond)
			e.newLearner(t, e.medway, "")
			r := wait(t, ch)
			if len(r.page.Events) != 0 || r.elapsed < 1800*time.Millisecond {
				t.Errorf("Onclick's long poll returned %d events after %s on a change of Connect to Learn", len(r.page.Events), r.elapsed)
			}
			_, cur = e.drain(t, secret, e.ctl.ID, &cur, 500)
		})

		t.Run("noWaitAnswersAtOnce", func(t *testing.T) {
			start := time.Now()
			p := e.feed(t, secret, e.ctl.ID, &cur, 10, 0)
			if el := time.Since(start); el > time.Second || len(p.Events) != 0 || p.Cursor != cur {
				t.Errorf("waitSeconds: 0 answered %+v after %s", p, el)
			}
		})

		t.Run("waitBeyond30sRefused", func(t *testing.T) {
			for _, w := range []int{31, 3600, -1} {
				start := time.Now()
				r := e.feedRaw(secret, e.ctl.ID, &cur, 10, w)
				lmsRefused(t, r, "BAD_USER_INPUT", fmt.Sprintf("waitSeconds: %d", w))
				if f := r.Ext("field"); len(r.Errors) > 0 && f != "waitSeconds" {
					t.Errorf("waitSeconds: %d: field %q", w, f)
				}
				if el := time.Since(start); el > time.Second {
					t.Errorf("waitSeconds: %d was refused only after %s", w, el)
				}
			}
		})
	})
}

// ---------------------------------------------------------------------------
// ONC-3: activity reported back.

func TestActivity_ONC3_IdempotentMonotonicPerRowResults(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		_, secret := e.issueKey(t, e.ctl.ID, "Moodle")
		a := e.activeLearner(t, e.medway, "")
		b := e.newLearner(t, e.kcc, "") // pending: its activity is still recorded
		erased := e.activeLearner(t, e.medway, "")
		e.withdraw(t, erased)
		other := e.activeLearner(t, e.wscc, "")
		gdpr, edi, infosec := e.courseID(t, e.ctl, "CTL-GDPR-101"), e.courseID(t, e.ctl, "CTL-EDI-101"), e.courseID(t, e.ctl, "CTL-INFOSEC-101")

		now := e.api.Clock.Now()
		t1, t2 := now.Add(-3*time.Hour), now.Add(-time.Hour)
		batch := []map[string]any{
			{"learnerId": a, "lastAccessAt": lmsTime(t1), "enrolments": []map[string]any{
				{"lmsCourseId": "CTL-GDPR-101", "state": "IN_PROGRESS"},
				{"lmsCourseId": "CTL-EDI-101", "state": "COMPLETED", "completedAt": lmsTime(t1)}}},
			{"learnerId": uuid.NewString(), "lastAccessAt": lmsTime(t2)},
			{"learnerId": erased, "lastAccessAt": lmsTime(t2)},
			{"learnerId": other, "lastAccessAt": lmsTime(t2)},
			{"learnerId": a, "enrolments": []map[string]any{{"lmsCourseId": "ONC-MECC-101", "state": "ENROLLED"}}},
			{"learnerId": b, "lastAccessAt": lmsTime(t2), "enrolments": []map[string]any{{"lmsCourseId": "CTL-INFOSEC-101", "state": "ENROLLED"}}},
			{"learnerId": a, "lastAccessAt": lmsTime(t2)}, // a later access in the same batch wins
			{"learnerId": "not-a-learner-id"},
			{"learnerId": b, "lastAccessAt": lmsTime(now.Add(time.Hour))},
			{"learnerId": a, "enrolments": []map[string]any{{"lmsCourseId": "NO-SUCH-COURSE", "state": "ENROLLED"}}},
		}
		wantStatus := []string{"APPLIED", "UNKNOWN_LEARNER", "ERASED", "OTHER_PROGRAMME", "UNKNOWN_COURSE", "APPLIED", "APPLIED",
			"UNKNOWN_LEARNER", "BAD_INPUT", "UNKNOWN_COURSE"}
		checkReceipt := func(t *testing.T, rec lmsReceipt) {
			t.Helper()
			if rec.Applied != 3 || rec.Rejected != 7 || len(rec.Results) != len(batch) {
				t.Fatalf("receipt applied %d rejected %d with %d results, want 3, 7, %d", rec.Applied, rec.Rejected, len(rec.Results), len(batch))
			}
			for i, r := range rec.Results {
				if r.Index != i || r.LearnerID != batch[i]["learnerId"] || r.Status != wantStatus[i] {
					t.Errorf("result %d = %+v, want %s for %v", i, r, wantStatus[i], batch[i]["learnerId"])
				}
				if (r.Status == "APPLIED") == (r.Message != nil && *r.Message != "") {
					t.Errorf("result %d: status %s with message %v", i, r.Status, lmsStr(r.Message))
				}
			}
		}
		checkReceipt(t, e.record(t, secret, e.ctl.ID, batch))

		check := func(t *testing.T, id string, want time.Time) {
			t.Helper()
			if got := e.learner(t, id).LastActivityAt; !lmsTimeIs(got, want) {
				t.Errorf("learner %s: lastActivityAt %s, want %s", id, lmsFmt(got), lmsTime(want))
			}
		}
		check(t, a, t2)
		check(t, b, t2)
		if got := e.learner(t, other).LastActivityAt; got != nil {
			t.Errorf("Onclick's learner got lastActivityAt %s from a Connect to Learn report", lmsFmt(got))
		}
		act := e.exportActivity(t, a)
		if len(act) != 2 || act[gdpr].State != "IN_PROGRESS" || act[gdpr].CompletedAt != nil || !lmsTimeIs(act[gdpr].LastAccessAt, t1) ||
			act[edi].State != "COMPLETED" || !lmsTimeIs(act[edi].CompletedAt, t1) {
			t.Errorf("learner a's learning activity %+v, want GDPR IN_PROGRESS and EDI COMPLETED at %s", act, lmsTime(t1))
		}
		if act := e.exportActivity(t, b); len(act) != 1 || act[infosec].State != "ENROLLED" {
			t.Errorf("learner b's learning activity %+v", act)
		}
		if n := e.count(t, `SELECT count(*) FROM learning_activity WHERE learner_id IN (?, ?)`, erased, other); n != 0 {
			t.Errorf("%d activity rows for the erased or the other programme's learner", n)
		}

		t.Run("theSameBatchTwiceChangesNothing", func(t *testing.T) {
			_, before := e.dump(t, "learning_activity", "")
			la, lb := e.learner(t, a), e.learner(t, b)
			events := e.maxEventID(t, e.ctl.ID)
			e.api.Clock.Advance(10 * time.Minute)
			checkReceipt(t, e.record(t, secret, e.ctl.ID, batch))
			if _, after := e.dump(t, "learning_activity", ""); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("learning_activity changed:\n  %v\n→ %v", before, after)
			}
			for _, l := range []lmsLearner{la, lb} {
				if now := e.learner(t, l.ID); now.Version != l.Version || !lmsTimeIs(now.LastActivityAt, *l.LastActivityAt) {
					t.Errorf("learner %s: version %d → %d, lastActivityAt %s → %s", l.ID, l.Version, now.Version, lmsFmt(l.LastActivityAt), lmsFmt(now.LastActivityAt))
				}
			}
			if got := e.maxEventID(t, e.ctl.ID); got != events {
				t.Errorf("the repeated batch wrote feed events")
			}
		})

		t.Run("anOlderLastAccessAtNeverOverwritesANewerOne", func(t *testing.T) {
			older := t1.Add(-time.Hour)
			rec := e.record(t, secret, e.ctl.ID, []map[string]any{{"learnerId": a, "lastAccessAt": lmsTime(older),
				"enrolments": []map[string]any{{"lmsCourseId": "CTL-GDPR-101", "state": "IN_PROGRESS"}}}})
			if rec.Applied != 1 {
				t.Fatalf("receipt %+v", rec)
			}
			check(t, a, t2)
			if act := e.exportActivity(t, a); !lmsTimeIs(act[gdpr].LastAccessAt, t1) {
				t.Errorf("the GDPR enrolment's lastAccessAt went from %s to %s", lmsTime(t1), lmsFmt(act[gdpr].LastAccessAt))
			}
		})

		t.Run("aLaterLastAccessAtMovesForward", func(t *testing.T) {
			later := e.api.Clock.Now().Add(-time.Minute)
			e.record(t, secret, e.ctl.ID, []map[string]any{{"learnerId": a, "lastAccessAt": lmsTime(later),
				"enrolments": []map[string]any{{"lmsCourseId": "CTL-GDPR-101", "state": "IN_PROGRESS"}}}})
			check(t, a, later)
			if act := e.exportActivity(t, a); !lmsTimeIs(act[gdpr].LastAccessAt, later) {
				t.Errorf("the GDPR enrolment was reported IN_PROGRESS again at %s; its lastAccessAt stays %s", lmsTime(later), lmsFmt(act[gdpr].LastAccessAt))
			}
			// A state change is applied, with its completion time.
			done := e.api.Clock.Now().Add(-30 * time.Second)
			e.record(t, secret, e.ctl.ID, []map[string]any{{"learnerId": a, "lastAccessAt": lmsTime(done),
				"enrolments": []map[string]any{{"lmsCourseId": "CTL-GDPR-101", "state": "COMPLETED", "completedAt": lmsTime(done)}}}})
			if act := e.exportActivity(t, a); act[gdpr].State != "COMPLETED" || !lmsTimeIs(act[gdpr].CompletedAt, done) || !lmsTimeIs(act[gdpr].LastAccessAt, done) {
				t.Errorf("after completion: %+v", act[gdpr])
			}
			check(t, a, done)
		})

		t.Run("batchBounds", func(t *testing.T) {
			before := e.learner(t, b).LastActivityAt
			at := lmsTime(e.api.Clock.Now())
			rows := make([]map[string]any, 10_001)
			for i := range rows {
				rows[i] = map[string]any{"learnerId": b, "lastAccessAt": at}
			}
			r := e.recordRaw(secret, e.ctl.ID, rows)
			lmsRefused(t, r, "BAD_USER_INPUT", "10,001 rows")
			if f := r.Ext("field"); len(r.Errors) > 0 && f != "input" {
				t.Errorf("10,001 rows: field %q, want input", f)
			}
			if got := e.learner(t, b).LastActivityAt; !lmsTimeIs(got, *before) {
				t.Errorf("a refused batch moved lastActivityAt to %s", lmsFmt(got))
			}
			lmsRefused(t, e.recordRaw(secret, e.ctl.ID, []map[string]any{}), "BAD_USER_INPUT", "no rows")
			rec := e.record(t, secret, e.ctl.ID, rows[:10_000])
			if rec.Applied != 10_000 || rec.Rejected != 0 || len(rec.Results) != 10_000 {
				t.Errorf("10,000 rows: applied %d rejected %d results %d", rec.Applied, rec.Rejected, len(rec.Results))
			}
			check(t, b, e.api.Clock.Now())
		})

		t.Run("shownToTheLearnerInMyData", func(t *testing.T) {
			mint := e.medwayProvider(t)
			tok := mint("sam", "sam.signed-in@medway.gov.uk")
			var v struct {
				Viewer struct{ Learner *struct{ ID string } }
			}
			e.must(t, tok, `{ viewer { learner { id } } }`, nil, &v)
			if v.Viewer.Learner == nil {
				t.Fatal("the learner's first sign-in did not provision them")
			}
			self := v.Viewer.Learner.ID
			e.activate(t, e.ctl.ID, self)
			at := e.api.Clock.Now().Add(-time.Minute)
			e.record(t, secret, e.ctl.ID, []map[string]any{{"learnerId": self, "lastAccessAt": lmsTime(at),
				"enrolments": []map[string]any{{"lmsCourseId": "CTL-INFOSEC-101", "state": "IN_PROGRESS"}}}})
			var out struct{ MyData lmsExport }
			e.must(t, mint("sam", "sam.signed-in@medway.gov.uk"), `{ myData { learnerId document } }`, nil, &out)
			act := lmsActivityByCourse(out.MyData.Document.LearningActivity)
			if out.MyData.LearnerID != self || len(act) != 1 || act[infosec].State != "IN_PROGRESS" || !lmsTimeIs(act[infosec].LastAccessAt, at) ||
				!lmsTimeIs(out.MyData.Document.Profile.LastActivityAt, at) {
				t.Errorf("myData shows learning activity %+v, profile lastActivityAt %s; want INFOSEC IN_PROGRESS at %s",
					act, lmsFmt(out.MyData.Document.Profile.LastActivityAt), lmsTime(at))
			}
		})

		t.Run("erasedWithTheLearner", func(t *testing.T) {
			if n := e.count(t, `SELECT count(*) FROM learning_activity WHERE learner_id = ?`, a); n == 0 {
				t.Fatal("fixture: learner a has no activity rows")
			}
			e.withdraw(t, a)
			if n := e.count(t, `SELECT count(*) FROM learning_activity WHERE learner_id = ?`, a); n != 0 {
				t.Errorf("%d activity rows survive the learner's erasure (ONC-3)", n)
			}
			if l := e.learner(t, a); l.LastActivityAt != nil {
				t.Errorf("the erased learner keeps lastActivityAt %s", lmsFmt(l.LastActivityAt))
			}
			rec := e.record(t, secret, e.ctl.ID, []map[string]any{{"learnerId": a, "lastAccessAt": lmsTime(e.api.Clock.Now())}})
			if rec.Results[0].Status != "ERASED" {
				t.Errorf("a report for the erased learner: %+v", rec.Results[0])
			}
		})
	})
}

// medwayProvider registers a real OIDC issuer as Medway Council's identity
// provider and returns a function minting its tokens (verified email).
func (e *lmsEnv) medwayProvider(t *testing.T) func(sub, email string) string {
	t.Helper()
	p := e.api.RegisterProvider(e.ctl.ID, e.medway, testkit.ProviderInput{ClientID: "lms-test-medway"})
	return func(sub, email string) string {
		verified := true
		return p.Mint(t, oidcissuer.Claims{Subject: sub, Email: email, EmailVerified: &verified, GivenName: "Sam", FamilyName: "Signedin"})
	}
}

// ---------------------------------------------------------------------------
// CTL-7: activity keeps the inactivity clock current.

func TestActivity_CTL7_ActivityCancelsInactivityRemoval(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		_, secret := e.issueKey(t, e.ctl.ID, "Moodle")
		revived, stale, untouched := e.activeLearner(t, e.medway, ""), e.activeLearner(t, e.medway, ""), e.activeLearner(t, e.kcc, "")
		e.must(t, e.boot(), `mutation($p: ID!) { updateProgrammeRules(programmeId: $p, input: {inactivityLimit: "P1D", reason: "CTL-7 test"}) { id } }`,
			map[string]any{"p": e.ctl.ID}, nil)

		e.api.Clock.Advance(2 * 24 * time.Hour)
		type report struct {
			Skipped           bool
			ScheduledInactive int
		}
		sweep := func(t *testing.T) report {
			t.Helper()
			var out struct{ RunRetentionSweep report }
			e.must(t, e.boot(), `mutation($p: ID!) { runRetentionSweep(programmeId: $p) { skipped scheduledInactive } }`, map[string]any{"p": e.ctl.ID}, &out)
			return out.RunRetentionSweep
		}
		if rep := sweep(t); rep.Skipped || rep.ScheduledInactive != 3 {
			t.Fatalf("sweep = %+v, want the 3 inactive learners scheduled", rep)
		}
		due := e.api.Clock.Now().Add(21 * 24 * time.Hour)
		for _, id := range []string{revived, stale, untouched} {
			l := e.learner(t, id)
			if l.Status != "REMOVAL_SCHEDULED" || lmsStr(l.RemovalReason) != "INACTIVITY" || !lmsTimeIs(l.RemovalDueAt, due) {
				t.Fatalf("learner %s after the sweep: %s %s due %s, want REMOVAL_SCHEDULED INACTIVITY due %s (GEN-4)",
					id, l.Status, lmsStr(l.RemovalReason), lmsFmt(l.RemovalDueAt), lmsTime(due))
			}
		}
		cur := e.asOfNow(t, secret, e.ctl.ID)

		t.Run("freshActivityCancelsTheRemoval", func(t *testing.T) {
			at := e.api.Clock.Now().Add(-time.Minute)
			rec := e.record(t, secret, e.ctl.ID, []map[string]any{{"learnerId": revived, "lastAccessAt": lmsTime(at)}})
			if rec.Applied != 1 || rec.Results[0].Status != "APPLIED" {
				t.Fatalf("receipt %+v", rec)
			}
			l := e.learner(t, revived)
			if l.Status != "ACTIVE" || l.RemovalReason != nil || l.RemovalDueAt != nil || !lmsTimeIs(l.LastActivityAt, at) {
				t.Errorf("after fresh activity: %s %s due %s, lastActivityAt %s; want ACTIVE, no removal, %s",
					l.Status, lmsStr(l.RemovalReason), lmsFmt(l.RemovalDueAt), lmsFmt(l.LastActivityAt), lmsTime(at))
			}
			events, _ := e.drain(t, secret, e.ctl.ID, &cur, 500)
			evs := lmsOf(events, revived)
			if got := lmsTypes(evs); !slices.Equal(got, []string{"REMOVAL_CANCELLED", "ACCESS_GRANTED"}) {
				t.Errorf("the revived learner's events: %v, want REMOVAL_CANCELLED, ACCESS_GRANTED", got)
			}
			// Invariant 3: each event its own version, the last the learner's.
			for i, ev := range evs {
				if ev.LearnerVersion != l.Version-len(evs)+1+i || ev.Learner == nil || !ev.Learner.AccessAllowed {
					t.Errorf("%s at version %d (learner at %d), learner %+v", ev.Type, ev.LearnerVersion, l.Version, ev.Learner)
				}
			}
			if evs := lmsOf(events, untouched); len(evs) != 0 {
				t.Errorf("a learner without activity got events %v", lmsTypes(evs))
			}
			if rows, _, _ := e.listAll(t, secret, e.ctl.ID, 1000, nil); !slices.ContainsFunc(rows, func(r lmsEnrolment) bool { return r.LearnerID == revived }) {
				t.Errorf("the revived learner is not back in the desired state")
			}
			// The next sweep leaves them alone: their clock was reset.
			sweep(t)
			if l := e.learner(t, revived); l.Status != "ACTIVE" {
				t.Errorf("the next sweep scheduled the revived learner again: %s %s", l.Status, lmsStr(l.RemovalReason))
			}
			if l := e.learner(t, untouched); l.Status != "REMOVAL_SCHEDULED" {
				t.Errorf("the learner without activity is %s", l.Status)
			}
			// Reporting the same activity again changes nothing.
			before := e.learner(t, revived).Version
			e.record(t, secret, e.ctl.ID, []map[string]any{{"learnerId": revived, "lastAccessAt": lmsTime(at)}})
			if after := e.learner(t, revived).Version; after != before {
				t.Errorf("the repeated report moved the version %d → %d", before, after)
			}
		})

		// Activity older than the inactivity limit is no sign of use: the
		// learner is still inactive under CTL-7, so the removal stands.
		t.Run("activityOlderThanTheLimitDoesNotCancel", func(t *testing.T) {
			at := e.api.Clock.Now().Add(-36 * time.Hour)
			rec := e.record(t, secret, e.ctl.ID, []map[string]any{{"learnerId": stale, "lastAccessAt": lmsTime(at)}})
			if rec.Applied != 1 {
				t.Fatalf("receipt %+v", rec)
			}
			if l := e.learner(t, stale); l.Status != "REMOVAL_SCHEDULED" || lmsStr(l.RemovalReason) != "INACTIVITY" || !lmsTimeIs(l.RemovalDueAt, due) {
				t.Errorf("activity 36h old with a 1-day limit: the learner is %s %s due %s, want the removal to stand (due %s)",
					l.Status, lmsStr(l.RemovalReason), lmsFmt(l.RemovalDueAt), lmsTime(due))
			}
		})
	})
}

// INV-3: feed and enrolment cursors name their programme. One read against
// another programme is refused (BAD_USER_INPUT on after), where it used to
// start silently at the same position there; cursors issued before they
// named a programme are still followed.
func TestFeed_INV3_CursorsAreBoundToTheirProgramme(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		boot := e.boot()
		for i := 0; i < 3; i++ {
			e.activeLearner(t, e.medway, "")
			e.activeLearner(t, e.wscc, "")
		}
		ctlPage := e.enrolmentPage(t, boot, e.ctl.ID, 1, nil)
		if ctlPage.EndCursor == nil || ctlPage.AsOf == nil {
			t.Fatalf("first page: %+v", ctlPage)
		}
		ctlFeed := e.feed(t, boot, e.ctl.ID, nil, 2, 0)
		if len(ctlFeed.Events) == 0 {
			t.Fatal("no feed events")
		}
		for name, c := range map[string]string{"asOf": *ctlPage.AsOf, "page cursor": ctlFeed.Cursor, "event cursor": ctlFeed.Events[0].Cursor} {
			r := e.feedRaw(boot, e.onc.ID, &c, 10, 0)
			lmsRefused(t, r, "BAD_USER_INPUT", "lifecycleEvents of Onclick after a Connect to Learn "+name)
			if f := r.Ext("field"); f != "after" {
				t.Errorf("%s: field %q, want after", name, f)
			}
			if len(r.Errors) > 0 && !strings.Contains(r.Errors[0].Message, "another programme") {
				t.Errorf("%s: message %q", name, r.Errors[0].Message)
			}
			// The same cursor is fine where it came from.
			if r := e.feedRaw(boot, e.ctl.ID, &c, 10, 0); len(r.Errors) > 0 {
				t.Errorf("%s on its own programme: %s", name, lmsErrs(r))
			}
		}
		r := e.enrolmentsRaw(boot, e.onc.ID, 10, ctlPage.EndCursor)
		lmsRefused(t, r, "BAD_USER_INPUT", "enrolments of Onclick after a Connect to Learn cursor")

		// Cursors from before the binding: still followed on any programme.
		enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		legacyFeed := enc(fmt.Sprintf("f:0:0:%d", time.Now().Unix()))
		if p := e.feed(t, boot, e.ctl.ID, &legacyFeed, 100, 0); len(p.Events) == 0 {
			t.Error("a legacy feed cursor at the start read no events")
		}
		all, _, _ := e.listAll(t, boot, e.ctl.ID, 1000, nil)
		legacyEnrol := enc("e:1:" + all[0].LearnerID + ":")
		p := e.enrolmentPage(t, boot, e.ctl.ID, 1000, &legacyEnrol)
		if len(p.Enrolments) == 0 || p.Enrolments[0].LearnerID == all[0].LearnerID {
			t.Errorf("a legacy enrolment cursor after %s: %+v", all[0].LearnerID, p.Enrolments)
		}
	})
}

// ONC-3: with observedAt, a late retry of an older reading cannot move an
// enrolment state back (lastAccessAt still only moves forward); a newer
// reading applies; a batch holding two readings keeps the later one; a row
// without observedAt applies as sent; an observedAt in the future is refused.
func TestActivity_ONC3_ObservedAtKeepsTheLatestReading(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		_, secret := e.issueKey(t, e.ctl.ID, "Moodle")
		a := e.activeLearner(t, e.medway, "")
		gdpr := e.courseID(t, e.ctl, "CTL-GDPR-101")
		now := e.api.Clock.Now()
		t1, t2, t3 := now.Add(-3*time.Hour), now.Add(-2*time.Hour), now.Add(-time.Hour)
		row := func(state string, observed, access time.Time) map[string]any {
			r := map[string]any{"learnerId": a, "lastAccessAt": lmsTime(access),
				"enrolments": []map[string]any{{"lmsCourseId": "CTL-GDPR-101", "state": state}}}
			if !observed.IsZero() {
				r["observedAt"] = lmsTime(observed)
			}
			if state == "COMPLETED" {
				r["enrolments"].([]map[string]any)[0]["completedAt"] = lmsTime(observed)
			}
			return r
		}
		state := func() (string, *time.Time) {
			act := e.exportActivity(t, a)[gdpr]
			return act.State, act.CompletedAt
		}

		e.record(t, secret, e.ctl.ID, []map[string]any{row("COMPLETED", t2, t2)})
		// The retry of the earlier reading (IN_PROGRESS at t1) arrives late.
		if rec := e.record(t, secret, e.ctl.ID, []map[string]any{row("IN_PROGRESS", t1, t1)}); rec.Applied != 1 {
			t.Fatalf("late row: %+v", rec)
		}
		if s, c := state(); s != "COMPLETED" || c == nil {
			t.Fatalf("a late, older reading moved the state to %s (completedAt %v)", s, c)
		}
		// ONC-10: the reading's time is the learner's data too.
		if got := e.exportActivity(t, a)[gdpr].ObservedAt; !lmsTimeIs(got, t2) {
			t.Fatalf("export observedAt %s, want %s", lmsFmt(got), lmsTime(t2))
		}
		if got := e.learner(t, a).LastActivityAt; !lmsTimeIs(got, t2) {
			t.Fatalf("lastActivityAt %s, want %s", lmsFmt(got), lmsTime(t2))
		}

		// A newer reading applies (a course reset in the LMS).
		e.record(t, secret, e.ctl.ID, []map[string]any{row("IN_PROGRESS", t3, t3)})
		if s, c := state(); s != "IN_PROGRESS" || c != nil {
			t.Fatalf("a newer reading left the state %s (completedAt %v)", s, c)
		}

		// Two readings in one batch, the later first: the later one stays.
		t4, t5 := now.Add(-30*time.Minute), now.Add(-10*time.Minute)
		e.record(t, secret, e.ctl.ID, []map[string]any{row("COMPLETED", t5, t5), row("ENROLLED", t4, t4)})
		if s, _ := state(); s != "COMPLETED" {
			t.Fatalf("within one batch the earlier reading won: %s", s)
		}

		// Without observedAt, the row applies as sent.
		e.record(t, secret, e.ctl.ID, []map[string]any{row("SUSPENDED", time.Time{}, t5)})
		if s, _ := state(); s != "SUSPENDED" {
			t.Fatalf("a row without observedAt was not applied: %s", s)
		}

		// The future is refused, and changes nothing.
		rec := e.record(t, secret, e.ctl.ID, []map[string]any{row("ENROLLED", now.Add(time.Hour), t5)})
		if rec.Rejected != 1 || rec.Results[0].Status != "BAD_INPUT" {
			t.Fatalf("observedAt in the future: %+v", rec)
		}
		if s, _ := state(); s != "SUSPENDED" {
			t.Fatalf("a refused row changed the state to %s", s)
		}
	})
}

// CTL-4: a learner is never split across pages, even with more courses than
// first; when that learner is the last, the page says so (no empty page).
func TestEnrolments_CTL4_LastLearnerWithMoreCoursesThanFirstEndsTheList(t *testing.T) {
	lmsEach(t, func(t *testing.T, e *lmsEnv) {
		courses := []string{e.courseID(t, e.onc, "ONC-MECC-101"), e.courseID(t, e.onc, "ONC-MH-101"), e.courseID(t, e.onc, "ONC-ALC-101")}
		g := e.createGroup(t, e.wscc, "Three courses", courses)
		id := e.activeLearner(t, e.wscc, g)
		p := e.enrolmentPage(t, e.boot(), e.onc.ID, 2, nil)
		if len(p.Enrolments) != 3 || p.HasNextPage || p.EndCursor != nil {
			t.Fatalf("enrolments(first: 2) of a programme whose one learner %s has 3 courses: %d rows, hasNextPage %v, endCursor %v",
				id, len(p.Enrolments), p.HasNextPage, p.EndCursor)
		}
		// after: "" is the start, as for lifecycleEvents.
		empty := ""
		if q := e.enrolmentPage(t, e.boot(), e.onc.ID, 2, &empty); len(q.Enrolments) != 3 || q.AsOf == nil {
			t.Fatalf(`enrolments(after: ""): %d rows, asOf %v`, len(q.Enrolments), q.AsOf)
		}
	})
}
