// Package graph is the GraphQL transport: it reads arguments, calls one
// lifecycle method and maps the result. No SQL, no rules, no permission checks.
package graph

//go:generate make -C .. generate

import (
	"context"

	"github.com/rollcall-dev/rollcall/graph/model"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

// Resolver is the one dependency-injection point of the GraphQL layer.
type Resolver struct {
	Svc *lifecycle.Service

	// fieldInterceptors: an extension intercepts fields, so plain fields
	// go through gqlgen's field resolution too (plainfield.go).
	fieldInterceptors bool
}

// freshViewer re-reads the caller after a change to their own learner.
func (r *Resolver) freshViewer(ctx context.Context) (*model.Viewer, error) {
	a, err := r.Svc.Actor(lifecycle.Refresh(ctx))
	if err != nil {
		return nil, err
	}
	return viewerOut(a), nil
}

func importOut(rep lifecycle.ImportReport) *model.ImportReport {
	out := &model.ImportReport{DryRun: rep.DryRun, Atomic: rep.Atomic, Total: rep.Total, Created: rep.Created, Failed: rep.Failed,
		Lines: make([]*model.ImportLine, len(rep.Lines))}
	lines := make([]model.ImportLine, len(rep.Lines)) // one allocation for a 100,000-line report
	for i, l := range rep.Lines {
		line := &lines[i]
		line.Row, line.Code = l.Row, l.Code
		if l.Reason != "" {
			line.Reason = &l.Reason
		}
		if l.Field != "" {
			line.Field = &l.Field
		}
		if l.Message != "" {
			line.Message = &l.Message
		}
		if l.LearnerID != "" {
			line.LearnerID = &l.LearnerID
		}
		out.Lines[i] = line
	}
	return out
}
