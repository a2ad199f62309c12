package graph

import "strings"

// SDL is the schema as written (graph/schema/*.graphqls, embedded in the
// binary by gqlgen's generated code), for the admin console: it builds its
// schema from this text, so introspection can stay off in production.
func SDL() string {
	var b strings.Builder
	for _, s := range sources {
		if s.BuiltIn {
			continue
		}
		b.WriteString("# " + s.Name + "\n")
		b.WriteString(s.Input)
		b.WriteString("\n")
	}
	return b.String()
}
