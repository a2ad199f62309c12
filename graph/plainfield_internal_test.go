package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/rollcall-dev/rollcall/graph/model"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// A non-null Time field holding the zero time, and a Float holding NaN or
// an infinity, are written as null with an error naming the field and its
// path, as gqlgen's own resolution reports them: the plain branch leaves
// such a value to gqlgen (mayMarshalNull).
func TestPlainFields_ANullErrorNamesTheFieldAsGqlgenDoes(t *testing.T) {
	// run resolves one field of a parent field's object, with the plain
	// branch on or off, writes it as the response would, and returns what
	// was written and the errors.
	run := func(r ResolverRoot, parent, name, typ string, field func(*executionContext, context.Context, graphql.CollectedField) graphql.Marshaler) (string, []byte) {
		es := NewExecutableSchema(Config{Resolvers: r})
		oc := &graphql.OperationContext{RecoverFunc: graphql.DefaultRecover,
			ResolverMiddleware: func(ctx context.Context, next graphql.Resolver) (any, error) { return next(ctx) }}
		ctx := graphql.WithOperationContext(context.Background(), oc)
		ctx = graphql.WithResponseContext(ctx, graphql.DefaultErrorPresenter, graphql.DefaultRecover)
		ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: "Query",
			Field: graphql.CollectedField{Field: &ast.Field{Name: parent, Alias: parent}}})
		ec := newExecutionContext(oc, es.(*executableSchema), nil)
		f := graphql.CollectedField{Field: &ast.Field{Name: name, Alias: name,
			Definition: &ast.FieldDefinition{Name: name, Type: ast.NonNullNamedType(typ, nil)}}}
		var out bytes.Buffer
		field(ec, ctx, f).MarshalGQL(&out)
		errs, _ := json.Marshal(graphql.GetErrors(ctx))
		return out.String(), errs
	}
	for _, c := range []struct {
		parent, name, typ string
		field             func(*executionContext, context.Context, graphql.CollectedField) graphql.Marshaler
	}{
		{"accessGroup", "createdAt", "Time", func(ec *executionContext, ctx context.Context, f graphql.CollectedField) graphql.Marshaler {
			return ec._AccessGroup_createdAt(ctx, f, &model.AccessGroup{})
		}},
		{"reconcileRoster", "share", "Float", func(ec *executionContext, ctx context.Context, f graphql.CollectedField) graphql.Marshaler {
			return ec._RosterReconciliation_share(ctx, f, &model.RosterReconciliation{Share: math.NaN()})
		}},
		{"reconcileRoster", "threshold", "Float", func(ec *executionContext, ctx context.Context, f graphql.CollectedField) graphql.Marshaler {
			return ec._RosterReconciliation_threshold(ctx, f, &model.RosterReconciliation{Threshold: math.Inf(1)})
		}},
	} {
		gqlgenOut, gqlgenErrs := run(&Resolver{fieldInterceptors: true}, c.parent, c.name, c.typ, c.field) // through gqlgen's ResolveField
		out, errs := run(&Resolver{}, c.parent, c.name, c.typ, c.field)
		if out != gqlgenOut || string(errs) != string(gqlgenErrs) {
			t.Errorf("%s: plain wrote %s with errors %s; gqlgen writes %s with %s", c.name, out, errs, gqlgenOut, gqlgenErrs)
		}
		var parsed []struct{ Path []any }
		if err := json.Unmarshal(errs, &parsed); err != nil || len(parsed) != 1 || len(parsed[0].Path) != 2 || parsed[0].Path[1] != c.name {
			t.Errorf("%s: want one error at [%s %s], got %s", c.name, c.parent, c.name, errs)
		}
	}
}

// Each plain value writes exactly what gqlgen's marshaller of its type
// writes, into the response's bytes.Buffer and into any other writer.
func TestPlainValues_SameBytesAsGqlgen(t *testing.T) {
	strs := []string{"", "Ada", `quo"te\back`, "tab\tnew\nline\r\x00\x1f\x7f", "é ünïcødé 漢字 🙂", "\u2028\u2029", "bad \xff utf8", "<script>&amp;"}
	ints := []int64{0, 1, -1, 99, 100, 12345, -987654321, math.MaxInt64, math.MinInt64}
	times := []time.Time{
		time.Date(2026, 12, 6, 13, 5, 0, 0, time.UTC),
		time.Date(2026, 12, 6, 13, 5, 0, 123456789, time.UTC),
		time.Date(1999, 1, 2, 3, 4, 5, 100, time.FixedZone("x", 3600)),
	}
	type pair struct {
		name        string
		plain, want graphql.Marshaler
	}
	var cases []pair
	for _, s := range strs {
		cases = append(cases, pair{"string " + strconv.Quote(s), plainString{&s}, graphql.MarshalString(s)},
			pair{"optional string", plainOptString{&s}, graphql.MarshalString(s)})
	}
	cases = append(cases, pair{"nil string", plainOptString{}, graphql.Null})
	for _, i := range ints {
		cases = append(cases, pair{"int64 " + strconv.FormatInt(i, 10), plainInt64{&i}, graphql.MarshalInt64(i)})
		if n := int(i); int64(n) == i {
			cases = append(cases, pair{"int", plainInt{&n}, graphql.MarshalInt(n)})
		}
	}
	for _, b := range []bool{true, false} {
		cases = append(cases, pair{"bool", plainBool{&b}, graphql.MarshalBoolean(b)})
	}
	for _, tm := range times {
		cases = append(cases, pair{"time " + tm.String(), plainTime{&tm}, graphql.MarshalTime(tm)},
			pair{"optional time", plainOptTime{&tm}, graphql.MarshalTime(tm)})
	}
	zero := time.Time{}
	cases = append(cases, pair{"nil time", plainOptTime{}, graphql.Null}, pair{"zero time", plainOptTime{&zero}, graphql.Null})
	for _, c := range cases {
		var want, buf bytes.Buffer
		c.want.MarshalGQL(&want)
		c.plain.MarshalGQL(&buf)
		var other strings.Builder // not a bytes.Buffer: the writer's own path
		c.plain.MarshalGQL(&other)
		if buf.String() != want.String() || other.String() != want.String() {
			t.Errorf("%s: plain wrote %q and %q, gqlgen %q", c.name, buf.String(), other.String(), want.String())
		}
	}
}

// Storing and writing a plain value into the response allocates nothing:
// the point of them (a page of the feed holds 5,000 of them).
func TestPlainValues_NoAllocationPerValue(t *testing.T) {
	obj := &model.LifecycleEvent{Cursor: "ZjpjdXJzb3I", FeedEvent: &domain.FeedEvent{Event: domain.Event{LearnerID: "4b8e1a0c-3f0e-4f57-9d55-0c1c1a1b2c3d",
		LearnerVersion: 123456, OccurredAt: time.Date(2026, 12, 6, 13, 5, 0, 123456789, time.UTC)}}}
	var buf bytes.Buffer
	buf.Grow(1 << 20)
	vals := make([]graphql.Marshaler, 4)
	if n := testing.AllocsPerRun(100, func() {
		vals[0], vals[1] = plainString{&obj.Cursor}, plainString{&obj.LearnerID}
		vals[2], vals[3] = plainInt64{&obj.LearnerVersion}, plainTime{&obj.OccurredAt}
		for _, v := range vals {
			v.MarshalGQL(&buf)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per four values", n)
	}
}

// A plain enum field writes its value's name as gqlgen does, from a table
// built from gqlgen's own map; every value of the map is in the table.
func TestPlainValues_EnumsSameBytesAsGqlgen(t *testing.T) {
	table := plainmarshalNLifecycleEventType2githubᚗcomᚋrollcallᚑdevᚋrollcallᚋinternalᚋdomainᚐEventType
	names := marshalNLifecycleEventType2githubᚗcomᚋrollcallᚑdevᚋrollcallᚋinternalᚋdomainᚐEventType
	if len(table) != len(names) || len(names) != len(domain.EventTypes) {
		t.Fatalf("%d plain values, %d names, %d event types", len(table), len(names), len(domain.EventTypes))
	}
	for _, typ := range domain.EventTypes {
		var got, want bytes.Buffer
		table[typ].MarshalGQL(&got)
		graphql.MarshalString(names[typ]).MarshalGQL(&want)
		if got.String() != want.String() || got.String() != strconv.Quote(names[typ]) {
			t.Errorf("%s: plain %s, gqlgen %s", typ, got.String(), want.String())
		}
	}
}

// writeString writes every string as gqlgen's graphql.MarshalString does:
// every byte value alone and between others, and random strings of bytes
// that need escaping, UTF-8 and invalid UTF-8.
func TestAppendQuoted_SameBytesAsGqlgen(t *testing.T) {
	var strs []string
	for c := range 256 {
		strs = append(strs, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"z\xe6\xbc\xa2")
	}
	alphabet := []string{"a", "Z", " ", `"`, `\`, "\t", "\r", "\n", "\x00", "\x1f", "\x7f", "\xff", "\xe6\xbc", "é", "🙂", "\u2028", "<", "&"}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		var s strings.Builder
		for range rnd.IntN(40) {
			s.WriteString(alphabet[rnd.IntN(len(alphabet))])
		}
		strs = append(strs, s.String())
	}
	for _, s := range strs {
		var want, buf bytes.Buffer
		graphql.MarshalString(s).MarshalGQL(&want)
		buf.WriteString("prefix ")
		writeString(&buf, s)
		var other strings.Builder
		writeString(&other, s)
		if got := strings.TrimPrefix(buf.String(), "prefix "); got != want.String() || other.String() != want.String() {
			t.Fatalf("%q: wrote %q and %q, gqlgen %q", s, got, other.String(), want.String())
		}
	}
}
