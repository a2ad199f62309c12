package moodlesync_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRollcall answers the LMS API's two queries from a scripted history.
// Feed cursors are "c:<n>" (after the n-th event); list cursors are
// "k:<learnerId>|<lmsCourseId>".
type fakeRollcall struct {
	t         testing.TB
	srv       *httptest.Server
	apiKey    string
	programme string

	mu       sync.Mutex
	groups   map[string]*fakeGroup
	learners map[string]*fakeLearner
	events   []fakeEvent
	// expiredBefore: cursors "c:n" with n < expiredBefore are past retention.
	expiredBefore int
	// fail500 answers the next n requests with HTTP 500.
	fail500 int
	// onListPage runs before each enrolments page is answered (page 0 first).
	onListPage func(page int)
	listPages  int
	feedCalls  int
	// unreadable learners read as null, as when the server cannot load them.
	unreadable map[string]bool
	// restricted: as for an LMS key under CTL-10, a learner without access
	// reads with null email, names and accessAllowed in the feed too.
	restricted bool
	// orgs names the organisation of a group's learners (default "Org of
	// <group>").
	orgs map[string]string
}

type fakeGroup struct {
	name    string
	courses []string
}

type fakeLearner struct {
	id, email, given, family string
	noFamily                 bool
	status                   string
	allowed                  bool
	group                    string
	version                  int64
	erased                   bool
}

type fakeEvent struct {
	typ       string
	learnerID string
	version   int64
	at        time.Time
}

func newFakeRollcall(t testing.TB) *fakeRollcall {
	f := &fakeRollcall{t: t, apiKey: "lms-key-1", programme: "prog-1", groups: map[string]*fakeGroup{}, learners: map[string]*fakeLearner{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRollcall) group(id, name string, courses ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[id] = &fakeGroup{name: name, courses: courses}
}

// renameGroup renames an access group; as in Rollcall, no event follows.
func (f *fakeRollcall) renameGroup(id, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[id].name = name
}

// renameOrg renames the organisation of a group's learners; no event.
func (f *fakeRollcall) renameOrg(group, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.orgs == nil {
		f.orgs = map[string]string{}
	}
	f.orgs[group] = name
}

func (f *fakeRollcall) orgName(group string) string {
	if n, ok := f.orgs[group]; ok {
		return n
	}
	return "Org of " + group
}

func (f *fakeRollcall) emit(l *fakeLearner, typ string) {
	l.version++
	f.events = append(f.events, fakeEvent{typ: typ, learnerID: l.id, version: l.version, at: time.Now().UTC()})
}

func (f *fakeRollcall) provision(id, email, given, family, group string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := &fakeLearner{id: id, email: email, given: given, family: family, status: "PENDING_ACCEPTANCE", group: group}
	f.learners[id] = l
	f.emit(l, "LEARNER_PROVISIONED")
}

// activate: the learner accepted the policies.
func (f *fakeRollcall) activate(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.learners[id]
	l.status, l.allowed = "ACTIVE", true
	f.emit(l, "LEARNER_ACTIVATED")
}

func (f *fakeRollcall) changeGroup(id, group string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.learners[id]
	l.group = group
	f.emit(l, "GROUP_CHANGED")
}

func (f *fakeRollcall) update(id, email, given, family string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.learners[id]
	l.email, l.given, l.family = email, given, family
	f.emit(l, "LEARNER_UPDATED")
}

// withdraw: consent withdrawn, access ends.
func (f *fakeRollcall) withdraw(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.learners[id]
	l.status, l.allowed = "WITHDRAWN", false
	f.emit(l, "ACCESS_REVOKED")
}

func (f *fakeRollcall) reinstate(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.learners[id]
	l.status, l.allowed = "ACTIVE", true
	f.emit(l, "ACCESS_GRANTED")
}

func (f *fakeRollcall) erase(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.learners[id]
	l.status, l.allowed, l.erased = "ERASED", false, true
	l.email, l.given, l.family = "", "", ""
	f.emit(l, "LEARNER_ERASED")
}

func (f *fakeRollcall) setCourses(group string, courses ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[group].courses = courses
	for _, id := range f.sortedIDs() {
		if l := f.learners[id]; l.group == group && !l.erased {
			f.emit(l, "COURSES_CHANGED")
		}
	}
}

// expireAll puts every cursor up to now past retention.
func (f *fakeRollcall) expireAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expiredBefore = len(f.events)
}

func (f *fakeRollcall) headCursor() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "c:" + strconv.Itoa(len(f.events))
}

func (f *fakeRollcall) sortedIDs() []string {
	ids := make([]string, 0, len(f.learners))
	for id := range f.learners {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func gqlErr(w http.ResponseWriter, status int, code, msg string, path ...any) {
	writeJSON(w, status, map[string]any{"errors": []gqlError{{Message: msg, Path: path, Extensions: map[string]any{"code": code}}}, "data": nil})
}

func (f *fakeRollcall) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/graphql" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	if f.fail500 > 0 {
		f.fail500--
		f.mu.Unlock()
		http.Error(w, "upstream trouble", http.StatusInternalServerError)
		return
	}
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.apiKey {
		gqlErr(w, http.StatusUnauthorized, "UNAUTHENTICATED", "invalid API key")
		return
	}
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		gqlErr(w, http.StatusBadRequest, "BAD_USER_INPUT", "bad body")
		return
	}
	if strings.Contains(req.Query, "RollcallMoodleSyncLearners") || strings.Contains(req.Query, "RollcallMoodleSyncOrganisation") {
		f.learnerQuery(w, req.Query, req.Variables)
		return
	}
	if req.Variables["programmeId"] != f.programme {
		gqlErr(w, http.StatusOK, "FORBIDDEN", "not your programme")
		return
	}
	str := func(k string) string { s, _ := req.Variables[k].(string); return s }
	num := func(k string, def int) int {
		if v, ok := req.Variables[k].(float64); ok {
			return int(v)
		}
		return def
	}
	switch {
	case strings.Contains(req.Query, "lifecycleEvents("):
		f.feed(w, r, str("after"), num("first", 500), num("waitSeconds", 0))
	case strings.Contains(req.Query, "enrolments("):
		f.list(w, str("after"), num("first", 1000))
	default:
		gqlErr(w, http.StatusOK, "BAD_USER_INPUT", "unknown query")
	}
}

func (f *fakeRollcall) learnerJSON(l *fakeLearner) any {
	if l.erased || f.unreadable[l.id] {
		return nil
	}
	if f.restricted && !l.allowed {
		return map[string]any{"id": l.id, "email": nil, "givenName": nil, "familyName": nil, "status": l.status,
			"accessAllowed": nil, "accessGroup": nil, "courses": nil, "version": l.version}
	}
	opt := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var group any
	courses := []map[string]any{}
	if g := f.groups[l.group]; g != nil {
		group = map[string]any{"id": l.group, "name": g.name}
		for _, c := range g.courses {
			courses = append(courses, map[string]any{"lmsCourseId": c})
		}
	}
	return map[string]any{"id": l.id, "email": opt(l.email), "givenName": opt(l.given), "familyName": opt(l.family),
		"status": l.status, "accessAllowed": l.allowed, "accessGroup": group, "courses": courses, "version": l.version}
}

func (f *fakeRollcall) feed(w http.ResponseWriter, r *http.Request, after string, first, wait int) {
	n, err := strconv.Atoi(strings.TrimPrefix(after, "c:"))
	if err != nil || !strings.HasPrefix(after, "c:") {
		gqlErr(w, http.StatusOK, "BAD_USER_INPUT", "bad cursor", "lifecycleEvents")
		return
	}
	deadline := time.Now().Add(time.Duration(min(wait, 30)) * time.Second)
	for {
		f.mu.Lock()
		if n < f.expiredBefore {
			f.mu.Unlock()
			gqlErr(w, http.StatusOK, "CURSOR_EXPIRED", "the cursor is older than the feed's retention", "lifecycleEvents")
			return
		}
		if len(f.events) > n || !time.Now().Before(deadline) || r.Context().Err() != nil {
			break
		}
		f.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	defer f.mu.Unlock()
	f.feedCalls++
	end := min(len(f.events), n+first)
	events := []map[string]any{}
	for i := n; i < end; i++ {
		e := f.events[i]
		events = append(events, map[string]any{"cursor": "c:" + strconv.Itoa(i+1), "type": e.typ,
			"occurredAt": e.at.Format(time.RFC3339Nano), "learnerId": e.learnerID, "learnerVersion": e.version,
			"learner": f.learnerJSON(f.learners[e.learnerID])})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"lifecycleEvents": map[string]any{
		"events": events, "cursor": "c:" + strconv.Itoa(end), "hasMore": end < len(f.events)}}})
}

func (f *fakeRollcall) list(w http.ResponseWriter, after string, first int) {
	f.mu.Lock()
	page := f.listPages
	f.listPages++
	hook := f.onListPage
	f.mu.Unlock()
	if hook != nil {
		hook(page)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	type row struct {
		key string
		v   map[string]any
	}
	var rows []row
	for _, id := range f.sortedIDs() {
		l := f.learners[id]
		if l.erased || !l.allowed {
			continue
		}
		g := f.groups[l.group]
		if g == nil {
			continue
		}
		cs := append([]string(nil), g.courses...)
		sort.Strings(cs)
		for _, c := range cs {
			var given, family any
			if l.given != "" {
				given = l.given
			}
			if l.family != "" {
				family = l.family
			}
			rows = append(rows, row{id + "|" + c, map[string]any{"learnerId": id, "email": l.email, "givenName": given,
				"familyName": family, "accessGroupId": l.group, "accessGroupName": g.name, "lmsCourseId": c, "learnerVersion": l.version}})
		}
	}
	start := 0
	if after != "" {
		k := strings.TrimPrefix(after, "k:")
		for start < len(rows) && rows[start].key <= k {
			start++
		}
	}
	end := min(len(rows), start+first)
	out := []map[string]any{}
	for _, r := range rows[start:end] {
		out = append(out, r.v)
	}
	var endCursor, asOf any
	if end > start {
		endCursor = "k:" + rows[end-1].key
	}
	if after == "" {
		asOf = "c:" + strconv.Itoa(len(f.events))
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"enrolments": map[string]any{
		"enrolments": out, "endCursor": endCursor, "hasNextPage": end < len(rows), "asOf": asOf}}})
}

// learnerQuery answers learner(id) by alias (l0: learner(id: $i0)) or the
// organisation query. As the service does for an LMS key (CTL-10): an
// erased learner reads as its tombstone (status ERASED, no name or email);
// a learner outside the desired state without name or email; an unknown
// or unreadable one as null with NOT_FOUND.
func (f *fakeRollcall) learnerQuery(w http.ResponseWriter, query string, vars map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.Contains(query, "RollcallMoodleSyncOrganisation") {
		id, _ := vars["id"].(string)
		l := f.learners[id]
		if l == nil || l.erased {
			gqlErr(w, http.StatusOK, "NOT_FOUND", "learner not found", "learner")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"learner": map[string]any{
			"organisation": map[string]any{"name": f.orgName(l.group)}}}})
		return
	}
	data := map[string]any{}
	var errs []gqlError
	for i := 0; ; i++ {
		v, ok := vars["i"+strconv.Itoa(i)].(string)
		if !ok {
			break
		}
		alias := "l" + strconv.Itoa(i)
		l := f.learners[v]
		switch {
		case l == nil || f.unreadable[v]:
			data[alias] = nil
			errs = append(errs, gqlError{Message: "learner not found", Path: []any{alias}, Extensions: map[string]any{"code": "NOT_FOUND"}})
		case l.erased:
			data[alias] = map[string]any{"id": l.id, "email": nil, "givenName": nil, "familyName": nil, "status": "ERASED",
				"accessAllowed": false, "accessGroup": nil, "courses": []any{}, "version": l.version}
		case !l.allowed:
			data[alias] = map[string]any{"id": l.id, "email": nil, "givenName": nil, "familyName": nil, "status": l.status,
				"accessAllowed": nil, "accessGroup": nil, "courses": nil, "version": l.version}
		default:
			data[alias] = f.learnerJSON(l)
		}
	}
	out := map[string]any{"data": data}
	if len(errs) > 0 {
		out["errors"] = errs
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *fakeRollcall) String() string { return fmt.Sprintf("fakeRollcall(%d events)", len(f.events)) }
