package graph

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/rollcall-dev/rollcall/graph/model"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

// learnersPage runs Query.learners up to the page of learners: the resolver
// and the compiled plan below share it, so both authorise and filter alike.
func (r *Resolver) learnersPage(ctx context.Context, programmeID string, organisationID *string, status []model.LearnerStatus,
	search *string, first *int, after *string) ([]domain.Learner, *model.LearnerConnection, error) {
	q := lifecycle.LearnerQuery{ProgrammeID: programmeID, OrganisationID: organisationID, Search: deref(search), First: deref(first)}
	for _, st := range status {
		q.Statuses = append(q.Statuses, domain.LearnerStatus(st))
	}
	if after != nil {
		id, err := decodeIDCursor(*after)
		if err != nil {
			return nil, nil, err
		}
		q.After = id
	}
	ls, more, err := r.Svc.Learners(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	conn := &model.LearnerConnection{Edges: make([]*model.LearnerEdge, len(ls)), PageInfo: &model.PageInfo{HasNextPage: more}}
	for i, l := range ls {
		c := encodeIDCursor(l.ID)
		conn.Edges[i] = &model.LearnerEdge{Cursor: c, Node: learnerOut(l)}
		conn.PageInfo.EndCursor = &c
	}
	return ls, conn, nil
}

// The learners page is the busiest read: admin screens and LMS agents page
// through it all day. Through gqlgen's executor a 50-learner page with its
// organisation, access group and acceptances is about 400 resolved objects,
// each with its field contexts, a goroutine per list element and per
// resolver field, and their stack growth: about 3.5 ms of CPU, against well
// under 1 ms for the SQL. fastPaths.serve answers the same query from a plan
// compiled from the validated selection set and writes the JSON directly.
//
// It is deliberately narrow. gqlgen has parsed, validated and costed the
// operation first (token and complexity limits apply as before); the plan is
// used only when the operation is a query whose one root field is learners
// and every selected field is in fastFields; it produces a response only on
// success. Anything else (another field, a directive other than skip and
// include, any error, a null in a non-null field) returns false and gqlgen
// executes the operation from the start, so errors keep their one code path.
// TestFastPath_* compare both paths byte for byte. Resolver middlewares
// (AroundFields) would not run for a planned query: there are none.

// fastFields lists, per object type, the fields a plan can write and the
// object type of those that have a selection ("" for leaves).
var fastFields = map[string]map[string]string{
	"LearnerConnection": {"edges": "LearnerEdge", "pageInfo": "PageInfo"},
	"LearnerEdge":       {"cursor": "", "node": "Learner"},
	"PageInfo":          {"hasNextPage": "", "endCursor": ""},
	"Learner": {"id": "", "email": "", "givenName": "", "familyName": "", "status": "", "accessAllowed": "",
		"removalReason": "", "removalDueAt": "", "erasedAt": "", "createdAt": "", "lastSignInAt": "",
		"lastActivityAt": "", "version": "", "organisation": "Organisation", "accessGroup": "AccessGroup",
		"acceptances": "PolicyAcceptance"},
	"Organisation": {"id": "", "programmeId": "", "name": "", "kind": "", "status": "", "createdAt": "",
		"admittedAt": "", "removedAt": ""},
	"AccessGroup": {"id": "", "organisationId": "", "name": "", "isDefault": "", "createdAt": ""},
	"PolicyAcceptance": {"policyVersion": "PolicyVersion", "decision": "", "givenBy": "", "ageConfirmed": "",
		"note": "", "decidedAt": ""},
	"PolicyVersion": {"id": "", "policyId": "", "label": "", "summary": "", "content": "", "status": "",
		"publishedAt": "", "activatedAt": ""},
}

// pnode is one selected field of a plan.
type pnode struct {
	alias, name string
	kids        []pnode
}

// fastPaths serves planned queries; served, when set, counts them.
type fastPaths struct {
	r      *Resolver
	es     *executableSchema
	log    *slog.Logger
	served *atomic.Int64
}

func newFastPaths(r *Resolver, es graphql.ExecutableSchema, log *slog.Logger, served *atomic.Int64) *fastPaths {
	s, _ := es.(*executableSchema)
	return &fastPaths{r: r, es: s, log: log, served: served}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// serve writes the whole response to w and reports true, or writes nothing
// and reports false when gqlgen must execute the operation.
func (fp *fastPaths) serve(ctx context.Context, rc *graphql.OperationContext, w io.Writer) (ok bool) {
	if fp == nil || fp.es == nil || rc == nil || rc.Operation == nil || rc.Operation.Operation != ast.Query {
		return false
	}
	defer func() {
		// A panic here must not cost the request: gqlgen runs it instead.
		if p := recover(); p != nil {
			fp.log.ErrorContext(ctx, "learners plan panicked; gqlgen serves the request", "panic", fmt.Sprint(p),
				"stack", string(debug.Stack()))
			ok = false
		}
	}()
	root := graphql.CollectFields(rc, rc.Operation.SelectionSet, []string{"Query"})
	if len(root) != 1 || root[0].Name != "learners" || !plainField(&root[0]) {
		return false
	}
	kids, ok := compilePlan(rc, root[0].Selections, "LearnerConnection", 0)
	if !ok {
		return false
	}
	ctx = graphql.WithOperationContext(ctx, rc)
	ec := newExecutionContext(rc, fp.es, nil)
	args, err := ec.field_Query_learners_args(ctx, root[0].ArgumentMap(rc.Variables))
	if err != nil {
		return false
	}
	first, _ := args["first"].(*int)
	ls, conn, err := fp.r.learnersPage(ctx, args["programmeId"].(string), args["organisationId"].(*string),
		args["status"].([]model.LearnerStatus), args["search"].(*string), first, args["after"].(*string))
	if err != nil {
		return false
	}
	want := map[string]bool{}
	wanted(kids, want)
	rel, err := fp.r.loadLearnerRelations(ctx, ls, want)
	if err != nil {
		return false
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 { // an occasional huge page is not kept
			bufPool.Put(buf)
		}
	}()
	pw := planWriter{buf: buf, rel: rel, memo: map[memoKey][]byte{}}
	buf.WriteString(`{"data":{`)
	writeKey(buf, root[0].Alias)
	if !pw.connection(kids, conn) {
		return false
	}
	buf.WriteString("}}")
	if fp.served != nil {
		fp.served.Add(1)
	}
	_, _ = w.Write(buf.Bytes()) // a write error means the client has gone
	return true
}

// compilePlan resolves fragments, aliases and skip/include for one selection
// set of type typ, and reports false if any field is outside fastFields.
func compilePlan(rc *graphql.OperationContext, sel ast.SelectionSet, typ string, depth int) ([]pnode, bool) {
	allowed := fastFields[typ]
	if allowed == nil || depth > 8 {
		return nil, false
	}
	fields := graphql.CollectFields(rc, sel, []string{typ})
	out := make([]pnode, 0, len(fields))
	for _, f := range fields {
		if !plainField(&f) || len(f.Arguments) > 0 {
			return nil, false
		}
		n := pnode{alias: f.Alias, name: f.Name}
		if f.Name != "__typename" {
			child, known := allowed[f.Name]
			if !known {
				return nil, false
			}
			if child != "" {
				kids, ok := compilePlan(rc, f.Selections, child, depth+1)
				if !ok {
					return nil, false
				}
				n.kids = kids
			}
		}
		out = append(out, n)
	}
	return out, true
}

// plainField reports whether f carries no directive but skip and include,
// which CollectFields has already applied, and sits in no @defer fragment
// (gqlgen would answer those fields in a later part).
func plainField(f *graphql.CollectedField) bool {
	if len(f.Deferrables) > 0 {
		return false
	}
	for _, d := range f.Directives {
		if d.Name != "skip" && d.Name != "include" {
			return false
		}
	}
	return true
}

func wanted(ns []pnode, into map[string]bool) {
	for _, n := range ns {
		into[n.name] = true
		wanted(n.kids, into)
	}
}

type memoKey struct {
	node *pnode
	id   string
}

// planWriter writes values as gqlgen's marshallers do, byte for byte.
// Organisations, access groups and policy versions repeat across a page: each
// is written once per selection and copied after.
type planWriter struct {
	buf  *bytes.Buffer
	rel  learnerRelations
	memo map[memoKey][]byte
}

func writeKey(buf *bytes.Buffer, alias string) {
	quote(buf, alias)
	buf.WriteByte(':')
}

// quote writes s as gqlgen's MarshalString does (graphql.writeQuotedString):
// only control characters, quote and backslash are escaped; invalid UTF-8
// passes through as it does there. It appends to the buffer where gqlgen
// allocates a closure per value.
func quote(buf *bytes.Buffer, s string) {
	const hex = "0123456789ABCDEF" // as gqlgen: upper case
	start := 0
	buf.WriteByte('"')
	for i, c := range s {
		if c >= 0x20 && c != '\\' && c != '"' {
			continue
		}
		buf.WriteString(s[start:i])
		switch c {
		case '\t':
			buf.WriteString(`\t`)
		case '\r':
			buf.WriteString(`\r`)
		case '\n':
			buf.WriteString(`\n`)
		case '\\':
			buf.WriteString(`\\`)
		case '"':
			buf.WriteString(`\"`)
		default:
			buf.WriteString(`\u00`)
			buf.WriteByte(hex[c>>4])
			buf.WriteByte(hex[c&0xf])
		}
		start = i + 1
	}
	buf.WriteString(s[start:])
	buf.WriteByte('"')
}

// enum writes an enum value as its generated MarshalGQL does: strconv.Quote.
func enum[E ~string](buf *bytes.Buffer, e E) {
	buf.Write(strconv.AppendQuote(buf.AvailableBuffer(), string(e)))
}

func boolean(buf *bytes.Buffer, b bool) {
	if b {
		buf.WriteString("true")
	} else {
		buf.WriteString("false")
	}
}

func (pw *planWriter) object(ns []pnode, typename string, field func(n *pnode) bool) bool {
	pw.buf.WriteByte('{')
	for i := range ns {
		if i > 0 {
			pw.buf.WriteByte(',')
		}
		writeKey(pw.buf, ns[i].alias)
		if ns[i].name == "__typename" {
			quote(pw.buf, typename)
			continue
		}
		if !field(&ns[i]) {
			return false
		}
	}
	pw.buf.WriteByte('}')
	return true
}

// memoised writes the object for (n, id) once and copies it afterwards.
func (pw *planWriter) memoised(n *pnode, id string, write func() bool) bool {
	k := memoKey{n, id}
	if b, ok := pw.memo[k]; ok {
		pw.buf.Write(b)
		return true
	}
	start := pw.buf.Len()
	if !write() {
		return false
	}
	pw.memo[k] = bytes.Clone(pw.buf.Bytes()[start:])
	return true
}

func (pw *planWriter) connection(ns []pnode, c *model.LearnerConnection) bool {
	return pw.object(ns, "LearnerConnection", func(n *pnode) bool {
		switch n.name {
		case "edges":
			pw.buf.WriteByte('[')
			for i, e := range c.Edges {
				if i > 0 {
					pw.buf.WriteByte(',')
				}
				if !pw.edge(n.kids, e) {
					return false
				}
			}
			pw.buf.WriteByte(']')
			return true
		case "pageInfo":
			return pw.object(n.kids, "PageInfo", func(n *pnode) bool {
				switch n.name {
				case "hasNextPage":
					boolean(pw.buf, c.PageInfo.HasNextPage)
				case "endCursor":
					pw.optString(c.PageInfo.EndCursor)
				default:
					return false
				}
				return true
			})
		}
		return false
	})
}

func (pw *planWriter) edge(ns []pnode, e *model.LearnerEdge) bool {
	return pw.object(ns, "LearnerEdge", func(n *pnode) bool {
		switch n.name {
		case "cursor":
			quote(pw.buf, e.Cursor)
			return true
		case "node":
			return pw.learner(n.kids, e.Node)
		}
		return false
	})
}

func (pw *planWriter) learner(ns []pnode, l *model.Learner) bool {
	return pw.object(ns, "Learner", func(n *pnode) bool {
		b := pw.buf
		switch n.name {
		case "id":
			quote(b, l.ID)
		case "email":
			pw.optString(l.Email)
		case "givenName":
			pw.optString(l.GivenName)
		case "familyName":
			pw.optString(l.FamilyName)
		case "status":
			enum(b, l.Status)
		case "accessAllowed":
			boolean(b, l.AccessAllowed)
		case "removalReason":
			if l.RemovalReason == nil {
				b.WriteString("null")
			} else {
				enum(b, *l.RemovalReason)
			}
		case "removalDueAt":
			pw.optTime(l.RemovalDueAt)
		case "erasedAt":
			pw.optTime(l.ErasedAt)
		case "createdAt":
			return pw.time(l.CreatedAt)
		case "lastSignInAt":
			pw.optTime(l.LastSignInAt)
		case "lastActivityAt":
			pw.optTime(l.LastActivityAt)
		case "version":
			b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(l.Version), 10))
		case "organisation":
			o, ok := pw.rel.orgs[l.Domain.OrganisationID]
			if !ok {
				return false // non-null: gqlgen reports the error
			}
			return pw.memoised(n, o.ID, func() bool { return pw.organisation(n.kids, organisationOut(o)) })
		case "accessGroup":
			if l.Domain.AccessGroupID == nil {
				b.WriteString("null")
				return true
			}
			g, ok := pw.rel.groups[*l.Domain.AccessGroupID]
			if !ok {
				return false
			}
			return pw.memoised(n, g.ID, func() bool { return pw.group(n.kids, groupOut(g)) })
		case "acceptances":
			b.WriteByte('[')
			for i, a := range pw.rel.acceptances[l.ID] {
				if i > 0 {
					b.WriteByte(',')
				}
				if !pw.acceptance(n.kids, acceptanceOut(a)) {
					return false
				}
			}
			b.WriteByte(']')
		default:
			return false
		}
		return true
	})
}

func (pw *planWriter) organisation(ns []pnode, o *model.Organisation) bool {
	return pw.object(ns, "Organisation", func(n *pnode) bool {
		b := pw.buf
		switch n.name {
		case "id":
			quote(b, o.ID)
		case "programmeId":
			quote(b, o.ProgrammeID)
		case "name":
			quote(b, o.Name)
		case "kind":
			enum(b, o.Kind)
		case "status":
			enum(b, o.Status)
		case "createdAt":
			return pw.time(o.CreatedAt)
		case "admittedAt":
			pw.optTime(o.AdmittedAt)
		case "removedAt":
			pw.optTime(o.RemovedAt)
		default:
			return false
		}
		return true
	})
}

func (pw *planWriter) group(ns []pnode, g *model.AccessGroup) bool {
	return pw.object(ns, "AccessGroup", func(n *pnode) bool {
		b := pw.buf
		switch n.name {
		case "id":
			quote(b, g.ID)
		case "organisationId":
			quote(b, g.OrganisationID)
		case "name":
			quote(b, g.Name)
		case "isDefault":
			boolean(b, g.IsDefault)
		case "createdAt":
			return pw.time(g.CreatedAt)
		default:
			return false
		}
		return true
	})
}

func (pw *planWriter) acceptance(ns []pnode, a *model.PolicyAcceptance) bool {
	return pw.object(ns, "PolicyAcceptance", func(n *pnode) bool {
		b := pw.buf
		switch n.name {
		case "policyVersion":
			v, ok := pw.rel.versions[a.PolicyVersionID]
			if !ok {
				return false
			}
			return pw.memoised(n, v.ID, func() bool { return pw.version(n.kids, versionOut(v)) })
		case "decision":
			enum(b, a.Decision)
		case "givenBy":
			enum(b, a.GivenBy)
		case "ageConfirmed":
			boolean(b, a.AgeConfirmed)
		case "note":
			quote(b, a.Note)
		case "decidedAt":
			return pw.time(a.DecidedAt)
		default:
			return false
		}
		return true
	})
}

func (pw *planWriter) version(ns []pnode, v *model.PolicyVersion) bool {
	return pw.object(ns, "PolicyVersion", func(n *pnode) bool {
		b := pw.buf
		switch n.name {
		case "id":
			quote(b, v.ID)
		case "policyId":
			quote(b, v.PolicyID)
		case "label":
			quote(b, v.Label)
		case "summary":
			quote(b, v.Summary)
		case "content":
			quote(b, v.Content)
		case "status":
			enum(b, v.Status)
		case "publishedAt":
			return pw.time(v.PublishedAt)
		case "activatedAt":
			pw.optTime(v.ActivatedAt)
		default:
			return false
		}
		return true
	})
}

func (pw *planWriter) optString(s *string) {
	if s == nil {
		pw.buf.WriteString("null")
		return
	}
	quote(pw.buf, *s)
}

// time writes a non-null Time; gqlgen turns a zero time into an error.
func (pw *planWriter) time(t time.Time) bool {
	if t.IsZero() {
		return false
	}
	pw.writeTime(t)
	return true
}

// writeTime writes t as graphql.MarshalTime does: RFC 3339 with nanoseconds,
// quoted (the layout needs no escapes); a zero time is null.
func (pw *planWriter) writeTime(t time.Time) {
	if t.IsZero() {
		pw.buf.WriteString("null")
		return
	}
	pw.buf.WriteByte('"')
	pw.buf.Write(t.AppendFormat(pw.buf.AvailableBuffer(), time.RFC3339Nano))
	pw.buf.WriteByte('"')
}

func (pw *planWriter) optTime(t *time.Time) {
	if t == nil {
		pw.buf.WriteString("null")
		return
	}
	pw.writeTime(*t)
}
