package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/rollcall-dev/rollcall/graph/loaders"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// requested reports which of names appear anywhere in the current field's
// selection set (through fragments too).
func requested(ctx context.Context, names ...string) map[string]bool {
	out := map[string]bool{}
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return out
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var walk func(ast.SelectionSet, int)
	walk = func(ss ast.SelectionSet, depth int) {
		if depth > 12 {
			return
		}
		for _, s := range ss {
			switch s := s.(type) {
			case *ast.Field:
				if want[s.Name] {
					out[s.Name] = true
				}
				walk(s.SelectionSet, depth+1)
			case *ast.InlineFragment:
				walk(s.SelectionSet, depth+1)
			case *ast.FragmentSpread:
				if s.Definition != nil {
					walk(s.Definition.SelectionSet, depth+1)
				}
			}
		}
	}
	walk(fc.Field.Selections, 0)
	return out
}

// learnerRelations are the relations of one page of learners, each read in
// one batch.
type learnerRelations struct {
	orgs        map[string]domain.Organisation
	groups      map[string]domain.AccessGroup
	acceptances map[string][]domain.PolicyAcceptance
	versions    map[string]domain.PolicyVersion
}

// loadLearnerRelations reads the relations want names ("organisation",
// "accessGroup", "acceptances", "policyVersion") for a page of learners, one
// statement per relation, through the same service calls as the loaders.
func (r *Resolver) loadLearnerRelations(ctx context.Context, ls []domain.Learner, want map[string]bool) (learnerRelations, error) {
	var rel learnerRelations
	if len(ls) == 0 {
		return rel, nil
	}
	ids := make([]string, len(ls))
	orgSet, groupSet := map[string]bool{}, map[string]bool{}
	var orgIDs, groupIDs []string
	for i, x := range ls {
		ids[i] = x.ID
		if !orgSet[x.OrganisationID] {
			orgSet[x.OrganisationID] = true
			orgIDs = append(orgIDs, x.OrganisationID)
		}
		if x.AccessGroupID != nil && !groupSet[*x.AccessGroupID] {
			groupSet[*x.AccessGroupID] = true
			groupIDs = append(groupIDs, *x.AccessGroupID)
		}
	}
	var err error
	if want["organisation"] {
		if rel.orgs, err = r.Svc.OrganisationsByIDs(ctx, orgIDs); err != nil {
			return rel, err
		}
	}
	if want["accessGroup"] && len(groupIDs) > 0 {
		if rel.groups, err = r.Svc.AccessGroupsByIDs(ctx, groupIDs); err != nil {
			return rel, err
		}
	}
	if want["acceptances"] {
		if rel.acceptances, err = r.Svc.AcceptancesByLearners(ctx, ids); err != nil {
			return rel, err
		}
		vset := map[string]bool{}
		var vids []string
		for _, id := range ids {
			for _, a := range rel.acceptances[id] {
				if !vset[a.PolicyVersionID] {
					vset[a.PolicyVersionID] = true
					vids = append(vids, a.PolicyVersionID)
				}
			}
		}
		if want["policyVersion"] && len(vids) > 0 {
			if rel.versions, err = r.Svc.PolicyVersionsByIDs(ctx, vids); err != nil {
				return rel, err
			}
		}
	}
	return rel, nil
}

// prefetchLearners loads the relations a page of learners asks for in one
// batch each and primes the request's loaders, so the page costs a fixed
// number of statements without waiting on loader windows level by level.
func (r *Resolver) prefetchLearners(ctx context.Context, ls []domain.Learner) error {
	l := loaders.For(ctx)
	if l == nil || len(ls) == 0 {
		return nil
	}
	want := requested(ctx, "organisation", "accessGroup", "acceptances", "policyVersion")
	rel, err := r.loadLearnerRelations(ctx, ls, want)
	if err != nil {
		return err
	}
	for id, o := range rel.orgs {
		l.Organisation.Prime(id, o)
	}
	for id, g := range rel.groups {
		l.AccessGroup.Prime(id, g)
	}
	if want["acceptances"] {
		for _, x := range ls {
			l.Acceptances.Prime(x.ID, rel.acceptances[x.ID])
		}
	}
	for id, v := range rel.versions {
		l.PolicyVersion.Prime(id, v)
	}
	return nil
}
