package graph

import (
	"context"
	"io"

	"github.com/99designs/gqlgen/graphql"
)

// marshalSlice marshals a list's elements one after the other, as
// graphql.MarshalSliceConcurrently (gqlgen graphql/slice.go) does with a
// goroutine per element: the same field context per element, the same
// panic recovery, the same result.
//
// gqlgen 0.17.98 marshals every list of objects concurrently and has no
// setting to stop it (worker_limit only bounds how many goroutines run at
// once). Rollcall's read models carry their relations as plain fields
// (relations.go), so an element's marshalling blocks on nothing, and a
// goroutine per element costs more than the element: its start, its
// scheduling and, above all, growing its stack (runtime.copystack was 15%
// of the learners page's CPU profile). An element whose object has a
// resolver field still resolves those fields concurrently (gqlgen's
// ResolveConcurrently); only the elements follow each other.
//
// `make generate` points the generated code here (the Makefile's sed after
// gqlgen generate), so check-generate keeps it so.
func marshalSlice(ctx context.Context, length int, _ int64, omitPanicHandler bool,
	marshalElement func(ctx context.Context, i int) graphql.Marshaler) graphql.Array {
	ret := make(graphql.Array, length)
	// The elements' field contexts and indices, allocated once for the list.
	fcs, index := make([]graphql.FieldContext, length), make([]int, length)
	for i := range length {
		index[i] = i
		fcs[i].Index = &index[i]
		childCtx := graphql.WithFieldContext(ctx, &fcs[i])
		if omitPanicHandler {
			ret[i] = marshalElement(childCtx, i)
			continue
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					graphql.AddError(childCtx, graphql.Recover(childCtx, r))
					ret[i] = graphql.Null
				}
			}()
			ret[i] = marshalElement(childCtx, i)
		}()
	}
	return ret
}

// newDeferredGroup stands in for graphql.NewDeferredGroup in the generated
// code (the Makefile's sed after gqlgen generate, as for marshalSlice).
//
// gqlgen 0.17.98 builds a deferred group for every object it marshals
// (graphql/deferred.go): the object's whole path from the root, a field set
// and a map, for the fields an operation marks @defer. Rollcall refuses
// @defer before execution begins (noDefer in handler.go), so no field is
// ever deferred and every one of those groups stayed empty; building them
// was 7% of the learners page's CPU. The group returned here is empty and
// costs nothing; a deferred field reaching it anyway (noDefer removed)
// would fail loudly on the nil field set rather than be lost silently.
func newDeferredGroup(ctx context.Context) graphql.DeferredGroup {
	return graphql.DeferredGroup{Context: ctx}
}

// objectOut stands in for the *graphql.FieldSet an object's generated code
// returns (genpatch rewrites its `return out`), to write the object.
//
// gqlgen's FieldSet.MarshalGQL (graphql/fieldset.go marshalFieldSet)
// allocates a map for every object to skip a field whose alias was written
// already, and quotes every alias through its string escaper. The fields
// are the object's collected fields, so their aliases are GraphQL names
// ([_A-Za-z][_0-9A-Za-z]*, checked by the parser), which need no escaping;
// and a repeated alias (collectFields can keep two fields of one alias when
// fragments on different types select them: executable_schema.go
// getOrCreateAndAppendField) is found by comparing with the aliases before
// it, which for an object's handful of fields costs less than the map. The
// output is the same bytes; the values are the FieldSet's, filled by its
// Dispatch before the object is written.
func objectOut(set *graphql.FieldSet, fields []graphql.CollectedField) graphql.Marshaler {
	return object{set: set, fields: fields}
}

type object struct {
	set    *graphql.FieldSet
	fields []graphql.CollectedField
}

func (o object) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, "{")
	first := true
next:
	for i := range o.fields {
		alias := o.fields[i].Alias
		for j := range i {
			if o.fields[j].Alias == alias {
				continue next
			}
		}
		if first {
			_, _ = io.WriteString(w, `"`)
			first = false
		} else {
			_, _ = io.WriteString(w, `,"`)
		}
		_, _ = io.WriteString(w, alias)
		_, _ = io.WriteString(w, `":`)
		o.set.Values[i].MarshalGQL(w)
	}
	_, _ = io.WriteString(w, "}")
}
