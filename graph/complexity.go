package graph

import (
	"github.com/rollcall-dev/rollcall/graph/model"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Query cost. gqlgen's complexity walker (complexity/complexity.go in
// github.com/99designs/gqlgen) costs a field at 1 plus its selection unless
// the ComplexityRoot has a function for it; the function receives the
// selection's cost and the field's arguments, already coerced (variables and
// defaults applied). A paginated field costs its selection once per item it
// may return: `first` multiplies, so a hundred aliases of learners(first: 500)
// cost a hundred times five hundred rows and are refused before any resolver
// runs (extension.FixedComplexityLimit; docs/security.md gives the figures).
func complexity() ComplexityRoot {
	var c ComplexityRoot
	c.Query.Learners = func(child int, _ string, _ *string, _ []domain.LearnerStatus, _ *string, first *int, _ *string) int {
		return listCost(child, first, 50)
	}
	c.Query.Enrolments = func(child int, _ string, first *int, _ *string) int {
		return listCost(child, first, 1000)
	}
	c.Query.LifecycleEvents = func(child int, _ string, _ *string, first *int, _ *int) int {
		return listCost(child, first, 500)
	}
	c.Query.AuditLog = func(child int, _ string, _ *string, _ *string, first *int, _ *string) int {
		return listCost(child, first, 100)
	}
	c.Query.DataRequests = func(child int, _ string, _ *string, _ []model.DataRequestStatus, first *int, _ *string) int {
		return listCost(child, first, 50)
	}
	return c
}

// listCost is 1 + child × first, saturating; a missing or non-positive first
// counts as def (the resolver refuses a non-positive one anyway).
func listCost(child int, first *int, def int) int {
	n := def
	if first != nil && *first > 0 {
		n = *first
	}
	child = max(child, 1)
	const maxInt = int(^uint(0) >> 1)
	if n > (maxInt-1)/child {
		return maxInt
	}
	return 1 + child*n
}
