package graph

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// The plan writes strings and times itself; they must come out exactly as
// gqlgen's marshallers write them.
func FuzzPlanQuoteMatchesGqlgen(f *testing.F) {
	for _, s := range []string{"", "plain", `"quoted" \ back`, "tab\tnew\nline\rcr", "\x00\x01\x1f\x7f", "Zoë 🙂 Łukasz",
		"<b>&amp;</b>", "\u2028\u2029", "bad \xff\xfe utf-8", "\xe2\x82"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want bytes.Buffer
		quote(&got, s)
		graphql.MarshalString(s).MarshalGQL(&want)
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("quote(%q) = %s, gqlgen writes %s", s, got.Bytes(), want.Bytes())
		}
	})
}

func TestPlanWriteTimeMatchesGqlgen(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+1800)
	for _, tm := range []time.Time{
		{}, time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), time.Date(2026, 3, 29, 1, 30, 0, 123456789, ist),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC).Local(),
	} {
		var got, want bytes.Buffer
		(&planWriter{buf: &got}).writeTime(tm)
		graphql.MarshalTime(tm).MarshalGQL(&want)
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("writeTime(%v) = %s, gqlgen writes %s", tm, got.Bytes(), want.Bytes())
		}
	}
}

// The plan hard-codes which fields it may write and how. This fails when the
// schema or the resolvers move under it: a planned field that gains a
// resolver (authorisation or masking the plan would skip), changes type or
// nullability, or a planned type that joins an interface or union (fragments
// on those the plan does not match).
func TestPlanFieldsStillMatchTheSchema(t *testing.T) {
	nonNullObjects := map[string]bool{"LearnerConnection.edges": true, "LearnerConnection.pageInfo": true,
		"LearnerEdge.node": true, "Learner.organisation": true, "Learner.acceptances": true, "PolicyAcceptance.policyVersion": true}
	for typ, fields := range fastFields {
		def := parsedSchema.Types[typ]
		if def == nil || def.Kind != "OBJECT" {
			t.Fatalf("%s is not an object type", typ)
		}
		if len(def.Interfaces) > 0 || len(parsedSchema.GetImplements(def)) > 0 {
			t.Errorf("%s implements an interface or sits in a union: the plan matches fragments by type name only", typ)
		}
		for name, child := range fields {
			f := def.Fields.ForName(name)
			if f == nil {
				t.Errorf("%s.%s is not in the schema", typ, name)
				continue
			}
			if len(f.Arguments) > 0 {
				t.Errorf("%s.%s takes arguments", typ, name)
			}
			if f.Type.Name() != child && child != "" {
				t.Errorf("%s.%s is %s, the plan writes %s", typ, name, f.Type.Name(), child)
			}
			if child != "" && f.Type.NonNull != nonNullObjects[typ+"."+name] {
				t.Errorf("%s.%s nullability changed: the plan's null handling must change with it", typ, name)
			}
		}
	}
	// A field with a resolver may authorise or mask; the plan writes only
	// these four relations itself (through the resolvers' own service calls).
	readByPlan := map[string]bool{"Learner.organisation": true, "Learner.accessGroup": true, "Learner.acceptances": true,
		"PolicyAcceptance.policyVersion": true}
	root := reflect.TypeOf((*ResolverRoot)(nil)).Elem()
	for typ, fields := range fastFields {
		m, ok := root.MethodByName(typ)
		if !ok {
			continue
		}
		iface := m.Type.Out(0)
		for i := 0; i < iface.NumMethod(); i++ {
			name := iface.Method(i).Name
			field := strings.ToLower(name[:1]) + name[1:]
			if _, planned := fields[field]; planned && !readByPlan[typ+"."+field] {
				t.Errorf("%s.%s has a resolver now; the plan writes the struct field and would skip it", typ, field)
			}
		}
	}
	for f := range readByPlan {
		typ, field, _ := strings.Cut(f, ".")
		m, _ := root.MethodByName(typ)
		if _, ok := m.Type.Out(0).MethodByName(strings.ToUpper(field[:1]) + field[1:]); !ok {
			t.Errorf("%s is no longer a resolver field; check what the plan writes for it", f)
		}
	}
}
