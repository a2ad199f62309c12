// Command genpatch edits gqlgen's generated code after `gqlgen generate`
// (`make generate` runs it; `make check-generate` keeps it applied). Each
// edit replaces something gqlgen 0.17.98 does for every object or field
// with a function of package graph that does the same work with less:
//
//   - graphql.MarshalSliceConcurrently → marshalSlice (graph/slices.go):
//     a list's elements one after the other, not a goroutine each;
//   - graphql.NewDeferredGroup → newDeferredGroup (graph/slices.go): no
//     per-object @defer bookkeeping, since @defer is refused;
//   - an object's `return out` (its *graphql.FieldSet) → objectOut
//     (graph/slices.go): the object written without a map per object;
//   - graphql.ResolveField → plainField (graph/plainfield.go), only in the
//     functions of plain scalar fields: a scalar or enum field read from a
//     struct field, with no resolver, no method and no directive.
//
// It fails, writing nothing, if the generated code no longer has the shape
// these edits expect, so a gqlgen upgrade that changes it is noticed.
package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// A plain scalar field's field context: not a method, not a resolver.
var plainContext = regexp.MustCompile(`(?m)^func \(ec \*executionContext\) fieldContext_(\w+)\(_ context\.Context, field graphql\.CollectedField\) \(fc \*graphql\.FieldContext, err error\) \{\n\treturn graphql\.NewScalarFieldContext\("\w+", field, false, false, "\w+"\)\n\}$`)

// The resolver closure of a plain field: the struct field, no error.
var plainResolver = regexp.MustCompile(`\n\t\tfunc\(ctx context\.Context\) \(any, error\) \{\n\t\t\treturn obj\.\w+, nil\n\t\t\},\n\t\tnil,\n`)

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
		{"graphql.MarshalSliceConcurrently(", "marshalSlice("},
		{"graphql.NewDeferredGroup(ctx)", "newDeferredGroup(ctx)"},
	} {
		if !strings.Contains(s, r[0]) && !strings.Contains(s, r[1]) {
			return fmt.Errorf("%s: no call of %s to replace", path, r[0])
		}
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	// Every object's generated function ends by returning its field set.
	const ret, obj = "\n\treturn out\n}\n", "\n\treturn objectOut(out, fields)\n}\n"
	if !strings.Contains(s, ret) && !strings.Contains(s, obj) {
		return fmt.Errorf("%s: no object function returning its field set", path)
	}
	s = strings.ReplaceAll(s, ret, obj)
	const call, plain = "\treturn graphql.ResolveField(\n", "\treturn plainField(ec.Resolvers,\n"
	n := 0
	for _, m := range plainContext.FindAllStringSubmatch(s, -1) {
		head := "\nfunc (ec *executionContext) _" + m[1] + "(ctx context.Context, field graphql.CollectedField, obj "
		start := strings.Index(s, head)
		if start < 0 {
			return fmt.Errorf("%s: fieldContext_%s has no field function", path, m[1])
		}
		end := start + strings.Index(s[start:], "\n}\n")
		body := s[start:end]
		if strings.Contains(body, plain) {
			n++
			continue // applied already
		}
		at := strings.Index(body, call)
		if at < 0 || !plainResolver.MatchString(body) {
			return fmt.Errorf("%s: _%s is not the plain field function genpatch knows", path, m[1])
		}
		if nonNullPointer.MatchString(body) {
			continue
		}
		s = s[:start+at] + plain + s[start+at+len(call):]
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s: no plain scalar field found", path)
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
