//go:build tools

package graph

import _ "github.com/99designs/gqlgen"
