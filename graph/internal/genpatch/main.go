// Command genpatch edits gqlgen's generated code after `gqlgen generate`
// (`make generate` runs it; `make check-generate` keeps it applied). Each
// edit replaces something gqlgen 0.17.98 does for every object or field
// with a function of package graph that does the same work with less:
//
//   - graphql.MarshalSliceConcurrently → marshalSlice (graph/slices.go):
//     a list's elements one after the other, not a goroutine each, and in
//     the element closures `fc := graphql.GetFieldContext(ctx); fc.Result
//     = &v[i]` → setElementResult, so an element's FieldContext is built
//     only when something asks for it (elementContext);
//   - graphql.NewDeferredGroup → newDeferredGroup (graph/slices.go): no
//     per-object @defer bookkeeping, since @defer is refused;
//   - an object's graphql.NewFieldSet → newObjectSet(ctx, …)
//     (graph/slices.go) where no field of the object is resolved
//     concurrently: one allocation per object (a list element's taken from
//     the list's slice), written without a map; in the other objects,
//     `return out` (the *graphql.FieldSet) → objectOut, written the same
//     way;
//   - the bytes.Buffer each response is marshalled into → responseBuffer
//     (graph/respbuf.go), a pooled buffer that already has the room;
//   - graphql.CollectFields → ec.collectFields (graph/slices.go) in the
//     objects' functions, memoised in a field genpatch adds to the
//     executionContext: no allocated hash key per object;
//   - in the functions of plain scalar fields (a scalar or enum field read
//     from a struct field, with no resolver, no method and no directive), a
//     first branch before gqlgen's graphql.ResolveField that returns the
//     value's marshaller straight from the field, or for an enum from a
//     table of its values (graph/plainfield.go).
//
// It fails, writing nothing, if the generated code no longer has the shape
// these edits expect, so a gqlgen upgrade that changes it is noticed.
package main

import (
	"fmt"
	"go/format"
	"os"
	"regexp"
	"sort"
	"strings"
)

// A plain scalar field's field context: not a method, not a resolver.
var plainContext = regexp.MustCompile(`(?m)^func \(ec \*executionContext\) fieldContext_(\w+)\(_ context\.Context, field graphql\.CollectedField\) \(fc \*graphql\.FieldContext, err error\) \{\n\treturn graphql\.NewScalarFieldContext\("\w+", field, false, false, "\w+"\)\n\}$`)

// An object's generated function.
var objectFunc = regexp.MustCompile(`(?s)\nfunc \(ec \*executionContext\) _\w+\(ctx context\.Context, sel ast\.SelectionSet(?:, obj [^)]*)?\) graphql\.Marshaler \{\n.*?\n\}\n`)

// The resolver closure of a plain field: the struct field, no error.
var plainResolver = regexp.MustCompile(`\n\t\tfunc\(ctx context\.Context\) \(any, error\) \{\n\t\t\treturn obj\.(\w+), nil\n\t\t\},\n\t\tnil,\n`)

// The marshaller closure of a field: the generated marshaller of its type.
var fieldMarshaller = regexp.MustCompile(`\n\t\t\treturn ec\.(marshal[^(]+)\(ctx, selections, v\)\n`)

// plainValues are the plain values (graph/plainfield.go) written from a
// pointer to the field, by the generated marshaller they stand in for; the
// second element is a condition the value must meet first.
var plainValues = map[string][2]string{
	"marshalNString2string":   {"plainString{&obj.%s}", ""},
	"marshalNID2string":       {"plainString{&obj.%s}", ""},
	"marshalOString2ᚖstring":  {"plainOptString{obj.%s}", ""},
	"marshalOID2ᚖstring":      {"plainOptString{obj.%s}", ""},
	"marshalNInt2int":         {"plainInt{&obj.%s}", ""},
	"marshalNInt2int64":       {"plainInt64{&obj.%s}", ""},
	"marshalNBoolean2bool":    {"plainBool{&obj.%s}", ""},
	"marshalNTime2timeᚐTime":  {"plainTime{&obj.%s}", " && !obj.%s.IsZero()"},
	"marshalOTime2ᚖtimeᚐTime": {"plainOptTime{obj.%s}", ""},
}

// plainBranch is the first branch of a plain field's function.
func plainBranch(field, marshaller string) string {
	if v, ok := plainValues[marshaller]; ok {
		cond := ""
		if v[1] != "" {
			cond = fmt.Sprintf(v[1], field)
		}
		return fmt.Sprintf("\tif ec.plainFields()%s {\n\t\treturn "+v[0]+"\n\t}\n", cond, field)
	}
	if enums[marshaller] {
		return fmt.Sprintf("\tif v, ok := plain%s[obj.%s]; ok && ec.plainFields() {\n\t\treturn v\n\t}\n", marshaller, field)
	}
	return fmt.Sprintf("\tif ec.plainFields() && !mayMarshalNull(obj.%s) {\n\t\treturn ec.%s(ctx, field.Selections, obj.%s)\n\t}\n",
		field, marshaller, field)
}

// enums are the marshallers of the enums bound to Go values: gqlgen writes
// each value's name from a map of the same name as the marshaller. A plain
// enum field returns its value's entry of a table built from that map
// (plainEnums, graph/plainfield.go); a value missing from the map takes
// gqlgen's way.
var enums = map[string]bool{}

var enumMap = regexp.MustCompile(`(?m)^\t(marshalN[^ ]+) = map\[[^]]+\]string\{$`)

// A non-null field of a pointer type: its marshaller reports a nil as an
// error against the field context, which plainField does not build, so it
// stays with gqlgen's ResolveField.
var nonNullPointer = regexp.MustCompile(`return ec\.marshalN\w*2ᚖ\w*\(ctx, selections, v\)`)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: genpatch graph/generated.go")
		os.Exit(2)
	}
	if err := patch(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "genpatch:", err)
		os.Exit(1)
	}
}

func patch(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	for _, r := range [][2]string{
		{"var buf bytes.Buffer\n\t\t\tdata.MarshalGQL(&buf)\n", "buf := responseBuffer()\n\t\t\tdata.MarshalGQL(buf)\n"},
		{"graphql.MarshalSliceConcurrently(", "marshalSlice("},
		{"graphql.NewDeferredGroup(ctx)", "newDeferredGroup(ctx)"},
		{"fc := graphql.GetFieldContext(ctx)\n\t\tfc.Result = &v[i]\n", "setElementResult(ctx, &v[i])\n"},
	} {
		if !strings.Contains(s, r[0]) && !strings.Contains(s, r[1]) {
			return fmt.Errorf("%s: no call of %s to replace", path, r[0])
		}
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	const ecType, ecMemo = "type executionContext struct {\n\t*graphql.ExecutionContextState[ResolverRoot, DirectiveRoot, ComplexityRoot]\n",
		"\tfieldsMemo collectMemo // graph/slices.go collectFields\n"
	if !strings.Contains(s, ecType) {
		return fmt.Errorf("%s: no executionContext of the shape genpatch knows", path)
	}
	if !strings.Contains(s, ecType+ecMemo) {
		s = strings.Replace(s, ecType, ecType+ecMemo, 1)
	}
	const collect, memo = "fields := graphql.CollectFields(ec.OperationContext, sel, ", "fields := ec.collectFields(sel, "
	if !strings.Contains(s, collect) && !strings.Contains(s, memo) {
		return fmt.Errorf("%s: no call of graphql.CollectFields to replace", path)
	}
	s = strings.ReplaceAll(s, collect, memo)
	if !strings.Contains(s, "bytes.") { // its one use was the response's buffer
		s = strings.Replace(s, "\n\t\"bytes\"\n", "\n", 1)
	}
	// Every object's generated function builds its field set and ends by
	// returning it.
	s = objectFunc.ReplaceAllStringFunc(s, func(f string) string {
		const set, ret = "\tout := graphql.NewFieldSet(fields)\n", "\n\treturn out\n}\n"
		if !strings.Contains(f, set) {
			return f // applied already, or not an object's function
		}
		if strings.Contains(f, "Concurrently(") {
			return strings.Replace(f, ret, "\n\treturn objectOut(out, fields)\n}\n", 1)
		}
		return strings.Replace(f, set, "\tout := newObjectSet(ctx, fields)\n", 1)
	})
	if !strings.Contains(s, "newObjectSet(ctx, fields)") {
		return fmt.Errorf("%s: no object function building its field set", path)
	}
	for _, m := range enumMap.FindAllStringSubmatch(s, -1) {
		enums[m[1]] = true
	}
	const call, branch = "\treturn graphql.ResolveField(\n", "ec.plainFields()"
	n := 0
	for _, m := range plainContext.FindAllStringSubmatch(s, -1) {
		head := "\nfunc (ec *executionContext) _" + m[1] + "(ctx context.Context, field graphql.CollectedField, obj "
		start := strings.Index(s, head)
		if start < 0 {
			return fmt.Errorf("%s: fieldContext_%s has no field function", path, m[1])
		}
		end := start + strings.Index(s[start:], "\n}\n")
		body := s[start:end]
		if strings.Contains(body, branch) {
			n++
			continue // applied already
		}
		at := strings.Index(body, call)
		field, marshaller := plainResolver.FindStringSubmatch(body), fieldMarshaller.FindStringSubmatch(body)
		if at < 0 || field == nil || marshaller == nil {
			return fmt.Errorf("%s: _%s is not the plain field function genpatch knows", path, m[1])
		}
		if nonNullPointer.MatchString(body) {
			continue
		}
		s = s[:start+at] + plainBranch(field[1], marshaller[1]) + s[start+at:]
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s: no plain scalar field found", path)
	}
	// The enums' tables, for the plain enum fields' branches.
	var tables []string
	for m := range enums {
		if strings.Contains(s, "plain"+m+"[obj.") && !strings.Contains(s, "= plainEnums("+m+")") {
			tables = append(tables, "\tplain"+m+" = plainEnums("+m+")\n")
		}
	}
	if len(tables) > 0 {
		sort.Strings(tables)
		s += "\n// The plain enum fields' values (graph/plainfield.go plainEnums).\nvar (\n" + strings.Join(tables, "") + ")\n"
	}
	// gofmt, as gqlgen leaves its output (CI checks every file).
	out, err := format.Source([]byte(s))
	if err != nil {
		return fmt.Errorf("%s: the patched code does not parse: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}
