package graph

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// An object is written byte for byte as gqlgen's FieldSet writes it,
// including a repeated alias (written once, its first value) and the empty
// object.
func TestObjectOut_SameBytesAsGqlgensFieldSet(t *testing.T) {
	field := func(alias string) graphql.CollectedField {
		return graphql.CollectedField{Field: &ast.Field{Alias: alias, Name: alias}}
	}
	for name, fields := range map[string][]graphql.CollectedField{
		"empty":    nil,
		"one":      {field("id")},
		"several":  {field("id"), field("email"), field("_n2"), field("learnerVersion")},
		"repeated": {field("id"), field("name"), field("id"), field("name"), field("kind")},
		"over 8":   {field("a"), field("b"), field("c"), field("d"), field("e"), field("f"), field("g"), field("h"), field("i"), field("j")},
	} {
		t.Run(name, func(t *testing.T) {
			set := graphql.NewFieldSet(fields)
			for i := range fields {
				set.Values[i] = graphql.MarshalString(fields[i].Alias + string(rune('a'+i)) + "\"\n")
			}
			set.Dispatch(t.Context())
			inPlace := newObjectSet(context.Background(), fields)
			copy(inPlace.Values, set.Values)
			inPlace.Dispatch(t.Context())
			var ours, inPlaces, theirs bytes.Buffer
			objectOut(set, fields).MarshalGQL(&ours)
			inPlace.MarshalGQL(&inPlaces)
			set.MarshalGQL(&theirs)
			var other strings.Builder // not a bytes.Buffer: writeObject's other path
			inPlace.MarshalGQL(&other)
			if ours.String() != theirs.String() || inPlaces.String() != theirs.String() || other.String() != theirs.String() {
				t.Fatalf("objectOut wrote %s, objectSet %s and %s, gqlgen writes %s", ours.String(), inPlaces.String(), other.String(), theirs.String())
			}
		})
	}
}
