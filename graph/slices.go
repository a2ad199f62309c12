package graph

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
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
// `make generate` points the generated code here (genpatch, after
// gqlgen generate), so check-generate keeps it so.
func marshalSlice(ctx context.Context, length int, _ int64, omitPanicHandler bool,
	marshalElement func(ctx context.Context, i int) graphql.Marshaler) graphql.Array {
	ret := make(graphql.Array, length)
	// The elements' contexts, allocated once for the list (elementContext).
	elems := make([]elementContext, length)
	list := &elementList{length: length}
	for i := range length {
		e := &elems[i]
		e.Context, e.index, e.list = ctx, i, list
		var childCtx context.Context = e
		if fieldContextKey == nil { // gqlgen's key unknown: its own way
			childCtx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Index: &e.index})
		}
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

// elementContext is a list element's context. gqlgen gives each element a
// FieldContext (its index in the path, its value as Result) in a context of
// its own (graphql.MarshalSliceConcurrently): about 300 bytes and two
// allocations an element, a third of the service's allocations in a feed
// drain. Yet a plain field (plainfield.go) reads neither, and the elements
// of the two LMS reads have only plain fields. So an element's context is
// one of a slice allocated for the list, and its FieldContext is built the
// first time something asks for it: a field resolved by gqlgen (its
// FieldContext's parent), an error or a panic (their path), a resolver.
// What it holds then is what gqlgen's would: the list field's FieldContext
// as parent, the element's index and its value (setElementResult, which
// genpatch puts where the generated code set Result). Any one element's
// context keeps the list's slices (contexts and objects, and through them
// every element's values) alive where gqlgen's kept only that element's:
// nothing keeps a context past its request, so that is the response's
// lifetime.
type elementContext struct {
	context.Context // the list's
	index           int
	result          any
	fc              atomic.Pointer[graphql.FieldContext]
	list            *elementList
	hasObject       bool // its object taken from list.objects (newObjectSet)
}

// elementList is what a list's elements share: the slice their objects
// are taken from, allocated when the first element asks (a list of
// scalars never does).
type elementList struct {
	length  int
	objects []objectSet
	// values holds the objects' field values, width to an object: every
	// element of a list of one object type collects the same fields.
	values []graphql.Marshaler
	width  int
}

func (e *elementContext) Value(key any) any {
	if key == fieldContextKey {
		return e.fieldContext()
	}
	return e.Context.Value(key)
}

// fieldContext builds the element's FieldContext once; an element's fields
// resolved concurrently may ask at the same time, and all get the same.
func (e *elementContext) fieldContext() *graphql.FieldContext {
	if fc := e.fc.Load(); fc != nil {
		return fc
	}
	fc := &graphql.FieldContext{Parent: graphql.GetFieldContext(e.Context), Index: &e.index, Result: e.result}
	if e.fc.CompareAndSwap(nil, fc) {
		return fc
	}
	return e.fc.Load()
}

// setElementResult records a list element's value as its FieldContext's
// Result, where the generated code did
// `fc := graphql.GetFieldContext(ctx); fc.Result = &v[i]` (genpatch).
func setElementResult(ctx context.Context, result any) {
	if e, ok := ctx.(*elementContext); ok {
		e.result = result
		if fc := e.fc.Load(); fc != nil {
			fc.Result = result
		}
		return
	}
	graphql.GetFieldContext(ctx).Result = result
}

// fieldContextKey is the key gqlgen keeps a FieldContext under in a
// context (graphql/context_field.go: resolverCtx, unexported), learnt by
// asking graphql.GetFieldContext once and checked against
// graphql.WithFieldContext. If gqlgen changes how it keeps it, the key is
// nil and the elements get gqlgen's contexts
// (TestElementContext_GqlgensKeyIsKnown fails first).
var fieldContextKey any

func init() { fieldContextKey = probeFieldContextKey() }

func probeFieldContextKey() any {
	p := &keyProbe{Context: context.Background()}
	graphql.GetFieldContext(p)
	fc := &graphql.FieldContext{}
	if p.key == nil || graphql.WithFieldContext(context.Background(), fc).Value(p.key) != fc {
		return nil
	}
	// And gqlgen finds an element's FieldContext where one is kept.
	fieldContextKey = p.key
	e := &elementContext{Context: context.Background()}
	if got := graphql.GetFieldContext(e); got == nil || got != e.fc.Load() {
		return nil
	}
	return p.key
}

type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	if p.key == nil {
		p.key = key
	}
	return nil
}

// newDeferredGroup stands in for graphql.NewDeferredGroup in the generated
// code (genpatch after gqlgen generate, as for marshalSlice).
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
// returns (genpatch rewrites its `return out`), to write the object, where
// the object resolves some fields concurrently and so needs gqlgen's
// FieldSet (its Dispatch runs them). The other objects use objectSet.
func objectOut(set *graphql.FieldSet, fields []graphql.CollectedField) graphql.Marshaler {
	return object{set: set, fields: fields}
}

type object struct {
	set    *graphql.FieldSet
	fields []graphql.CollectedField
}

func (o object) MarshalGQL(w io.Writer) { writeObject(w, o.fields, o.set.Values) }

// objectSet stands in for graphql.NewFieldSet in the generated code of an
// object that resolves every field in place (no field of it is resolved
// concurrently: genpatch checks), which is most of them, and every object
// of `enrolments` and the feed. Its generated code uses only the field
// set's Values, its Invalids and its Dispatch; with nothing scheduled
// concurrently, gqlgen's Dispatch (graphql/fieldset.go) has nothing to run.
// An objectSet is also the object's marshaller: a list's objects and
// their values take two allocations for the whole list (newObjectSet),
// another object one (soloObjectSet), where gqlgen's field set, its values
// and the marshaller took three per object.
type objectSet struct {
	Values   []graphql.Marshaler
	Invalids uint32
	fields   []graphql.CollectedField
}

// soloObjectSet is an objectSet that is no list's element, with room for
// the values of up to 8 fields: one allocation for the object.
type soloObjectSet struct {
	objectSet
	inline [8]graphql.Marshaler
}

// newObjectSet is an object's field set. A list's element takes it from a
// slice allocated for the list's objects (elementContext), and its values
// from another: a page of the feed or of enrolments allocates its thousand
// objects in two. Only the element's own object does, the
// first asked for with the element's context itself; an object below it
// gets a context of its own from gqlgen (every object-typed field goes
// through graphql.ResolveField, which wraps the context), and allocates its
// own. That is also why no two goroutines reach an element's slot: the
// fields gqlgen resolves concurrently (FieldSet.Dispatch) get wrapped
// contexts. A change that handed an element's own context to an object
// from a goroutine would have to take this slot away.
func newObjectSet(ctx context.Context, fields []graphql.CollectedField) *objectSet {
	if e, ok := ctx.(*elementContext); ok && !e.hasObject {
		e.hasObject = true
		l := e.list
		if l.objects == nil {
			l.objects = make([]objectSet, l.length)
			l.width = len(fields)
			l.values = make([]graphql.Marshaler, l.length*l.width)
		}
		o := &l.objects[e.index]
		o.fields = fields
		if w := l.width; len(fields) == w {
			o.Values = l.values[e.index*w : (e.index+1)*w : (e.index+1)*w]
		} else { // an element of another type, in a list of an interface or union
			o.Values = make([]graphql.Marshaler, len(fields))
		}
		return o
	}
	s := new(soloObjectSet)
	s.fields = fields
	if len(fields) <= len(s.inline) {
		s.Values = s.inline[:len(fields)]
	} else {
		s.Values = make([]graphql.Marshaler, len(fields))
	}
	return &s.objectSet
}

// Dispatch runs the fields resolved concurrently: an objectSet has none.
func (*objectSet) Dispatch(context.Context) {}

func (o *objectSet) MarshalGQL(w io.Writer) { writeObject(w, o.fields, o.Values) }

// writeObject writes an object's fields as gqlgen's FieldSet.MarshalGQL
// (graphql/fieldset.go marshalFieldSet) does, without the map it allocates
// for every object to skip a field whose alias was written already, and
// without quoting every alias through its string escaper. The fields are
// the object's collected fields, so their aliases are GraphQL names
// ([_A-Za-z][_0-9A-Za-z]*, checked by the parser), which need no escaping;
// and a repeated alias (collectFields can keep two fields of one alias when
// fragments on different types select them: executable_schema.go
// getOrCreateAndAppendField) is found by comparing with the aliases before
// it, which for an object's handful of fields costs less than the map. The
// output is the same bytes.
func writeObject(w io.Writer, fields []graphql.CollectedField, values []graphql.Marshaler) {
	// The generated Exec writes the response into a bytes.Buffer; anything
	// else (tests) gets the object through one.
	b, ok := w.(*bytes.Buffer)
	if !ok {
		b = new(bytes.Buffer)
		defer func() { _, _ = w.Write(b.Bytes()) }()
	}
	b.WriteByte('{')
	first := true
next:
	for i := range fields {
		alias := fields[i].Alias
		for j := range i {
			if fields[j].Alias == alias {
				continue next
			}
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteByte('"')
		b.WriteString(alias)
		b.WriteString(`":`)
		values[i].MarshalGQL(b)
	}
	b.WriteByte('}')
}

// collectMemo is an operation's memo of its objects' collected fields, for
// collectFields. It lives in the executionContext (genpatch adds it), which
// gqlgen builds for each operation, so @skip and @include, decided by the
// operation's variables, are the same for every entry.
type collectMemo struct {
	mu      sync.Mutex
	entries map[collectKey]*collectEntry
	// last is the entry found last: a list's elements ask for the same
	// one after another, and then take neither the lock nor the map.
	last atomic.Pointer[collectEntry]
}

type collectEntry struct {
	key    collectKey
	fields []graphql.CollectedField
}

// collectKey is a selection set and an object type, by identity: the
// selection set's first element in the parsed operation and its length,
// and the generated implementors slice of the type.
type collectKey struct {
	sel       *ast.Selection
	n         int
	satisfies *string
	ns        int
}

// collectFields stands in for graphql.CollectFields in an object's
// generated code (genpatch). gqlgen 0.17.98 memoises the collected fields
// per operation too (graphql/collect_fields_cache_store.go), but its key is
// an FNV hash of the type's names, built with an allocated hasher for every
// object: 1,000 times a feed page for the same answer. This memo keys on
// identities and allocates only when it learns an entry. The slice returned
// is shared, as gqlgen's is, and never written.
func (ec *executionContext) collectFields(sel ast.SelectionSet, satisfies []string) []graphql.CollectedField {
	if len(sel) == 0 || len(satisfies) == 0 {
		return graphql.CollectFields(ec.OperationContext, sel, satisfies)
	}
	key := collectKey{sel: &sel[0], n: len(sel), satisfies: &satisfies[0], ns: len(satisfies)}
	m := &ec.fieldsMemo
	if e := m.last.Load(); e != nil && e.key == key {
		return e.fields
	}
	m.mu.Lock()
	e, ok := m.entries[key]
	m.mu.Unlock()
	if !ok {
		e = &collectEntry{key: key, fields: graphql.CollectFields(ec.OperationContext, sel, satisfies)}
		m.mu.Lock()
		if m.entries == nil {
			m.entries = make(map[collectKey]*collectEntry)
		}
		m.entries[key] = e
		m.mu.Unlock()
	}
	m.last.Store(e)
	return e.fields
}
