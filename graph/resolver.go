// Package graph is the GraphQL transport: it reads arguments, calls one
// lifecycle method and maps the result. No SQL, no rules, no permission checks.
package graph

//go:generate go run github.com/99designs/gqlgen generate

import (
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

// Resolver is the one dependency-injection point of the GraphQL layer.
type Resolver struct {
	Svc *lifecycle.Service
}
