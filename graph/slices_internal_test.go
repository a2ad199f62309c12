package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// listContext is the context of a list field `events` of a query, as
// gqlgen's executor builds it: an operation, a response (for errors) and
// the list field's FieldContext.
func listContext() (context.Context, *graphql.FieldContext) {
	ctx := graphql.WithOperationContext(context.Background(), &graphql.OperationContext{})
	ctx = graphql.WithResponseContext(ctx, graphql.DefaultErrorPresenter, func(context.Context, any) error { return errors.New("internal system error") })
	list := &graphql.FieldContext{Field: graphql.CollectedField{Field: &ast.Field{Alias: "events", Name: "events"}}}
	return graphql.WithFieldContext(ctx, list), list
}

// gqlgen's key is known, so elements get the list's slice of contexts; if
// gqlgen changed how it keeps a FieldContext, this fails before the
// elements silently take gqlgen's way again.
func TestElementContext_GqlgensKeyIsKnown(t *testing.T) {
	if fieldContextKey == nil {
		t.Fatal("gqlgen's FieldContext key was not found: elements allocate gqlgen's contexts")
	}
}

// An element's FieldContext, built when asked for, is what gqlgen's would
// be: the list's as parent, the element's index and value, so paths,
// errors and panics name the element.
func TestElementContext_SamePathsAndValuesAsGqlgen(t *testing.T) {
	ctx, list := listContext()
	values := []string{"a", "b", "c", "d"}
	var paths []string
	ret := marshalSlice(ctx, len(values), 0, false, func(ctx context.Context, i int) graphql.Marshaler {
		setElementResult(ctx, &values[i])
		fc := graphql.GetFieldContext(ctx)
		if fc.Parent != list || *fc.Index != i || fc.Result != &values[i] {
			t.Errorf("element %d: parent %p (list %p), index %d, result %v", i, fc.Parent, list, *fc.Index, fc.Result)
		}
		paths = append(paths, graphql.GetPath(ctx).String())
		switch i {
		case 1:
			graphql.AddError(ctx, errors.New("refused"))
			return graphql.Null
		case 2:
			panic("element 2")
		}
		return graphql.MarshalString(values[i])
	})
	if want := []string{"events[0]", "events[1]", "events[2]", "events[3]"}; !slices.Equal(paths, want) {
		t.Fatalf("paths %v, want %v", paths, want)
	}
	if ret[2] != graphql.Null {
		t.Fatalf("a panicking element marshalled to %v, want null", ret[2])
	}
	errs := graphql.GetErrors(ctx)
	if len(errs) != 2 || errs[0].Path.String() != "events[1]" || errs[1].Path.String() != "events[2]" {
		t.Fatalf("errors %v, want one at events[1] and the panic at events[2]", gqlerror.List(errs))
	}
}

// An element whose fields resolve concurrently may ask for its
// FieldContext from several goroutines at once: all get the same one.
func TestElementContext_OneFieldContextUnderConcurrency(t *testing.T) {
	ctx, _ := listContext()
	marshalSlice(ctx, 3, 0, false, func(ctx context.Context, i int) graphql.Marshaler {
		var wg sync.WaitGroup
		got := make([]*graphql.FieldContext, 8)
		for g := range got {
			wg.Go(func() { got[g] = graphql.GetFieldContext(ctx) })
		}
		wg.Wait()
		for _, fc := range got {
			if fc != got[0] || *fc.Index != i {
				t.Errorf("element %d: two FieldContexts, or index %d", i, *fc.Index)
			}
		}
		return graphql.Null
	})
}

// A list's elements whose fields never ask for their FieldContext (plain
// fields) cost a fixed number of allocations for the whole list.
func TestElementContext_AllocationsDoNotGrowWithTheList(t *testing.T) {
	ctx, _ := listContext()
	fields := []graphql.CollectedField{{Field: &ast.Field{Alias: "cursor", Name: "cursor"}}}
	allocs := func(n int) float64 {
		values := make([]int, n)
		return testing.AllocsPerRun(20, func() {
			marshalSlice(ctx, n, 0, false, func(ctx context.Context, i int) graphql.Marshaler {
				setElementResult(ctx, &values[i])
				return newObjectSet(ctx, fields) // as an element's object does
			})
		})
	}
	if small, large := allocs(10), allocs(1000); small != large {
		t.Fatalf("%v allocations for a list of 10, %v for 1,000", small, large)
	}
}

// The same list marshalled with the elements' contexts and with gqlgen's
// (the key unknown: marshalSlice's fallback, which is what
// graphql.MarshalSliceConcurrently gives each element) leaves the same
// trace: each element's FieldContext (parent, index, value), the paths its
// fields and errors get, and the result.
func TestElementContext_SameTraceAsGqlgensContexts(t *testing.T) {
	trace := func() []string {
		ctx, list := listContext()
		values := []int{10, 11, 12}
		var out []string
		ret := marshalSlice(ctx, len(values), 0, false, func(ctx context.Context, i int) graphql.Marshaler {
			setElementResult(ctx, &values[i])
			fc := graphql.GetFieldContext(ctx)
			field := graphql.WithFieldContext(ctx, &graphql.FieldContext{Field: graphql.CollectedField{Field: &ast.Field{Alias: "n", Name: "n"}}})
			out = append(out, fmt.Sprintf("parent=%v index=%d result=%d field=%s", fc.Parent == list, *fc.Index, *fc.Result.(*int), graphql.GetPath(field)))
			if i == 1 {
				graphql.AddError(field, errors.New("refused"))
			}
			return graphql.MarshalInt(values[i])
		})
		for _, e := range graphql.GetErrors(ctx) {
			out = append(out, "error at "+e.Path.String())
		}
		return append(out, fmt.Sprint(len(ret), ret[2] != graphql.Null))
	}
	ours := trace()
	key := fieldContextKey
	fieldContextKey = nil
	gqlgens := trace()
	fieldContextKey = key
	if !slices.Equal(ours, gqlgens) || len(ours) != 5 {
		t.Fatalf("elements' contexts:\n%v\ngqlgen's:\n%v", ours, gqlgens)
	}
}

// A FieldContext asked for before the element's value is recorded gets it
// when it is.
func TestElementContext_ValueRecordedAfterTheFieldContextWasBuilt(t *testing.T) {
	ctx, _ := listContext()
	v := 7
	marshalSlice(ctx, 1, 0, false, func(ctx context.Context, i int) graphql.Marshaler {
		fc := graphql.GetFieldContext(ctx)
		setElementResult(ctx, &v)
		if fc.Result != &v || graphql.GetFieldContext(ctx) != fc {
			t.Fatalf("result %v, want the element's value in the same FieldContext", fc.Result)
		}
		return graphql.Null
	})
}

// collectFields answers each (selection set, type) with gqlgen's own
// collection, whichever was asked last, and a repeat costs no allocation.
func TestCollectFields_MemoAnswersEachSelectionAsGqlgen(t *testing.T) {
	field := func(name string) *ast.Field { return &ast.Field{Alias: name, Name: name} }
	a := ast.SelectionSet{field("cursor"), field("type")}
	b := ast.SelectionSet{field("learnerId"), field("email"), field("givenName")}
	op := &graphql.OperationContext{}
	ec := newExecutionContext(op, &executableSchema{}, nil)
	names := func(fs []graphql.CollectedField) (out []string) {
		for _, f := range fs {
			out = append(out, f.Name)
		}
		return out
	}
	for _, c := range []struct {
		sel  ast.SelectionSet
		typ  []string
		want []string
	}{{a, lifecycleEventImplementors, []string{"cursor", "type"}}, {b, enrolmentImplementors, []string{"learnerId", "email", "givenName"}},
		{a, lifecycleEventImplementors, []string{"cursor", "type"}}, {a[:1], lifecycleEventImplementors, []string{"cursor"}},
		{b, enrolmentImplementors, []string{"learnerId", "email", "givenName"}}} {
		if got, gqlgens := names(ec.collectFields(c.sel, c.typ)), names(graphql.CollectFields(op, c.sel, c.typ)); !slices.Equal(got, c.want) || !slices.Equal(got, gqlgens) {
			t.Fatalf("collected %v, gqlgen %v, want %v", got, gqlgens, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { ec.collectFields(b, enrolmentImplementors) }); n != 0 {
		t.Fatalf("%v allocations for a repeated collection", n)
	}
}

// An element's own object comes from the list's slice of objects, one per
// element, with its values in the list's slice of values, none shared; an
// element of another type (a list of an interface) has values of its own;
// any other object asked for with the element's context is an object of
// its own, never an element's slot twice.
func TestElementContext_EachElementsObjectIsItsOwn(t *testing.T) {
	ctx, _ := listContext()
	fields := []graphql.CollectedField{{Field: &ast.Field{Alias: "cursor", Name: "cursor"}}, {Field: &ast.Field{Alias: "type", Name: "type"}}}
	seen := map[*objectSet]bool{}
	ret := marshalSlice(ctx, 3, 0, false, func(ctx context.Context, i int) graphql.Marshaler {
		mine := fields
		if i == 1 {
			mine = fields[:1]
		}
		first, second := newObjectSet(ctx, mine), newObjectSet(ctx, fields)
		for _, o := range []*objectSet{first, second} {
			if seen[o] {
				t.Fatalf("element %d got an object already given out", i)
			}
			seen[o] = true
		}
		if e := ctx.(*elementContext); first != &e.list.objects[i] {
			t.Fatalf("element %d's object is not its slot in the list's slice", i)
		}
		for j := range first.Values {
			first.Values[j] = graphql.MarshalInt(10*i + j)
		}
		second.Values[0], second.Values[1] = graphql.MarshalInt(-1), graphql.MarshalInt(-2)
		return first
	})
	var b bytes.Buffer
	ret.MarshalGQL(&b)
	if b.String() != `[{"cursor":0,"type":1},{"cursor":10},{"cursor":20,"type":21}]` {
		t.Fatalf("wrote %s", b.String())
	}
}
