package graph

import (
	"context"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// strictInputs holds operations to the GraphQL specification's input
// coercion, where gqlparser is lenient, and refuses NUL characters:
//
//   - gqlparser's validator (validator/vars.go in vektah/gqlparser) accepts a
//     string holding digits for an Int or Float variable and matches enum
//     values case-insensitively; the spec's input coercion for Int, Float
//     and enums accepts neither ("first": "10" is an error, "active" is not
//     ACTIVE). The transport decodes with UseNumber, so a JSON number is a
//     json.Number here and a JSON string is a string: the two stay apart.
//   - a NUL (U+0000) in any string, in the variables or written in the
//     document, is BAD_USER_INPUT: PostgreSQL cannot store it in text and
//     no name, email, ID or reason holds one.
type strictInputs struct{ schema *ast.Schema }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = &strictInputs{}

func (*strictInputs) ExtensionName() string { return "StrictInputs" }

func (s *strictInputs) Validate(es graphql.ExecutableSchema) error {
	s.schema = es.Schema()
	return nil
}

func (s *strictInputs) MutateOperationContext(_ context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	if rc.Doc == nil {
		return nil
	}
	if docHasNUL(rc.Doc) || anyNUL(rc.Variables) {
		return nulError()
	}
	if rc.Operation == nil {
		return nil
	}
	for _, v := range rc.Operation.VariableDefinitions {
		val, ok := rc.Variables[v.Variable]
		if !ok {
			continue
		}
		if at, msg := s.check(v.Type, val); msg != "" {
			e := gqlerror.Errorf("$%s%s%s", v.Variable, at, msg)
			errcode.Set(e, errcode.ValidationFailed)
			return e
		}
	}
	return nil
}

func nulError() *gqlerror.Error {
	e := gqlerror.Errorf("a string argument holds a NUL character (U+0000), which no input may contain")
	errcode.Set(e, "NUL_CHARACTER")
	return e
}

// check returns what is wrong with val at a position of type t ("" if
// nothing), and where below that position: "[2].email" (the path is built
// only for a value that is wrong: an import's 100,000 rows are checked
// without a string made for each). Only what gqlparser lets through is
// checked here.
func (s *strictInputs) check(t *ast.Type, val any) (at, msg string) {
	if val == nil {
		return "", ""
	}
	if t.Elem != nil {
		if list, ok := val.([]any); ok {
			for i, item := range list {
				if at, msg := s.check(t.Elem, item); msg != "" {
					return "[" + strconv.Itoa(i) + "]" + at, msg
				}
			}
			return "", ""
		}
		return s.check(t.Elem, val) // a single value coerces to a list of one
	}
	def := s.schema.Types[t.NamedType]
	if def == nil {
		return "", ""
	}
	switch def.Kind {
	case ast.Scalar:
		if t.NamedType == "Int" || t.NamedType == "Float" {
			if _, isString := val.(string); isString {
				return "", " must be a JSON number for " + t.NamedType + ", not a string"
			}
		}
	case ast.Enum:
		str, _ := val.(string)
		if def.EnumValues.ForName(str) == nil {
			return "", " is not a value of " + def.Name + " (enum values are case-sensitive)"
		}
	case ast.InputObject:
		obj, _ := val.(map[string]any)
		for _, f := range def.Fields {
			if fv, ok := obj[f.Name]; ok {
				if at, msg := s.check(f.Type, fv); msg != "" {
					return "." + f.Name + at, msg
				}
			}
		}
	}
	return "", ""
}

// docHasNUL looks for a NUL in every string literal of the document:
// arguments, directive arguments and variable defaults.
func docHasNUL(doc *ast.QueryDocument) bool {
	var value func(v *ast.Value) bool
	value = func(v *ast.Value) bool {
		if v == nil {
			return false
		}
		if (v.Kind == ast.StringValue || v.Kind == ast.BlockValue) && strings.IndexByte(v.Raw, 0) >= 0 {
			return true
		}
		for _, c := range v.Children {
			if value(c.Value) {
				return true
			}
		}
		return false
	}
	args := func(as ast.ArgumentList) bool {
		for _, a := range as {
			if value(a.Value) {
				return true
			}
		}
		return false
	}
	dirs := func(ds ast.DirectiveList) bool {
		for _, d := range ds {
			if args(d.Arguments) {
				return true
			}
		}
		return false
	}
	var set func(ss ast.SelectionSet) bool
	set = func(ss ast.SelectionSet) bool {
		for _, sel := range ss {
			switch x := sel.(type) {
			case *ast.Field:
				if args(x.Arguments) || dirs(x.Directives) || set(x.SelectionSet) {
					return true
				}
			case *ast.InlineFragment:
				if dirs(x.Directives) || set(x.SelectionSet) {
					return true
				}
			case *ast.FragmentSpread:
				if dirs(x.Directives) {
					return true
				}
			}
		}
		return false
	}
	for _, op := range doc.Operations {
		for _, v := range op.VariableDefinitions {
			if value(v.DefaultValue) {
				return true
			}
		}
		if dirs(op.Directives) || set(op.SelectionSet) {
			return true
		}
	}
	for _, f := range doc.Fragments {
		if set(f.SelectionSet) {
			return true
		}
	}
	return false
}

// anyNUL looks for a NUL in every string of decoded JSON variables.
func anyNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.IndexByte(x, 0) >= 0
	case []any:
		for _, e := range x {
			if anyNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 || anyNUL(e) {
				return true
			}
		}
	}
	return false
}
