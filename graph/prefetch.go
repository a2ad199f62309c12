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

// prefetchLearners loads the relations a page of learners asks for in one
// batch each and primes the request's loaders, so the page costs a fixed
// number of statements without waiting on loader windows level by level.
func (r *Resolver) prefetchLearners(ctx context.Context, ls []domain.Learner) error {
	l := loaders.For(ctx)
	if l == nil || len(ls) == 0 {
		return nil
	}
	want := requested(ctx, "organisation", "accessGroup", "acceptances", "policyVersion")
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
	if want["organisation"] {
		os, err := r.Svc.OrganisationsByIDs(ctx, orgIDs)
		if err != nil {
			return err
		}
		for id, o := range os {
			l.Organisation.Prime(id, o)
		}
	}
	if want["accessGroup"] && len(groupIDs) > 0 {
		gs, err := r.Svc.AccessGroupsByIDs(ctx, groupIDs)
		if err != nil {
			return err
		}
		for id, g := range gs {
			l.AccessGroup.Prime(id, g)
		}
	}
	if want["acceptances"] {
		as, err := r.Svc.AcceptancesByLearners(ctx, ids)
		if err != nil {
			return err
		}
		vset := map[string]bool{}
		var vids []string
		for _, id := range ids {
			l.Acceptances.Prime(id, as[id])
			for _, a := range as[id] {
				if !vset[a.PolicyVersionID] {
					vset[a.PolicyVersionID] = true
					vids = append(vids, a.PolicyVersionID)
				}
			}
		}
		if want["policyVersion"] && len(vids) > 0 {
			vs, err := r.Svc.PolicyVersionsByIDs(ctx, vids)
			if err != nil {
				return err
			}
			for id, v := range vs {
				l.PolicyVersion.Prime(id, v)
			}
		}
	}
	return nil
}
