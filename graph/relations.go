package graph

import (
	"context"
	"slices"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/rollcall-dev/rollcall/graph/model"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Relations are loaded with their parents. A resolver that returns
// learners, organisations, access groups, policies or programmes hands them
// to the matching load function with the selection set they will be written
// with; it reads each relation that selection asks for in one statement for
// all of them (through the service, which authorises), then the relations'
// own relations the same way, and sets them as plain fields of the read
// models (graph/model/custom.go). A query therefore costs a fixed number of
// statements whatever its width, without dataloaders' batching windows, and
// gqlgen writes the relations inline instead of calling a resolver per object.
//
// The selection is read with gqlgen's own field collection
// (graphql.CollectFields, gqlgen graphql/executable_schema.go), which
// follows fragments and applies @skip and @include exactly as the executor
// will when it writes the answer.

// selections are the selection sets a relation is written with: one, or
// several when the relation is selected under several aliases and read
// once for all of them.
//
// Each is a selection set gqlgen holds for the whole operation (the
// field's own, or the sub-selection of a field gqlgen collected and
// cached), never a copy made here: gqlgen's per-operation cache of
// collected fields (graphql/collect_fields_cache_store.go) keys on a
// selection set's address and length without keeping it alive, so a
// merged copy handed to graphql.CollectFields and then collected by the
// garbage collector could leave an entry that a later selection set,
// allocated at the same address, would be answered from: the fields of
// another selection written in its place (found in review).
// TestRelations_SelectionsAreTheOperationsOwn checks they are gqlgen's
// own.
type selections []ast.SelectionSet

// selected maps each field name selected on an object of type typ in sels
// to its sub-selections (a relation asked for twice under two aliases is
// read once, with both aliases' fields).
func selected(ctx context.Context, sels selections, typ string) map[string]selections {
	oc := graphql.GetOperationContext(ctx)
	out := map[string]selections{}
	for _, sel := range sels {
		for _, f := range graphql.CollectFields(oc, sel, []string{typ}) {
			out[f.Name] = append(out[f.Name], f.Selections)
		}
	}
	return out
}

// fieldSelection is the selection set of the field being resolved.
func fieldSelection(ctx context.Context) selections {
	if fc := graphql.GetFieldContext(ctx); fc != nil && fc.Field.Field != nil {
		return selections{fc.Field.Selections}
	}
	return nil
}

// ptrs points at each element of xs (one allocation for the slice of
// pointers; the values are not copied).
func ptrs[T any](xs []T) []*T {
	out := make([]*T, len(xs))
	for i := range xs {
		out[i] = &xs[i]
	}
	return out
}

// unique returns the distinct keys of xs, in first-seen order.
func unique[T any](xs []T, key func(T) (string, bool)) []string {
	seen := make(map[string]struct{}, len(xs))
	var out []string
	for _, x := range xs {
		k, ok := key(x)
		if !ok {
			continue
		}
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

// learnersOut wraps ls as read models with the relations sel asks for.
//
// acc, when not nil, is the learners' decisions, read with them
// (lifecycle LearnerQuery.WithAcceptances); nil: read here if selected.
func (r *Resolver) learnersOut(ctx context.Context, sel selections, ls []domain.Learner, acc []domain.PolicyAcceptance) ([]*model.Learner, error) {
	ms := make([]model.Learner, len(ls))
	out := make([]*model.Learner, len(ls))
	for i := range ls {
		ms[i].Learner = ls[i]
		out[i] = &ms[i]
	}
	return out, r.loadLearners(ctx, sel, out, acc)
}

// learnerOut is learnersOut for one learner, selected by the current field.
func (r *Resolver) learnerOut(ctx context.Context, l domain.Learner) (*model.Learner, error) {
	out, err := r.learnersOut(ctx, fieldSelection(ctx), []domain.Learner{l}, nil)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (r *Resolver) loadLearners(ctx context.Context, sel selections, ls []*model.Learner, acc []domain.PolicyAcceptance) error {
	if len(ls) == 0 {
		return nil
	}
	want := selected(ctx, sel, "Learner")
	if sub, ok := want["organisation"]; ok {
		ids := unique(ls, func(l *model.Learner) (string, bool) { return l.OrganisationID, true })
		m, err := r.Svc.OrganisationsByIDs(ctx, ids)
		if err != nil {
			return err
		}
		orgs := make(map[string]*model.Organisation, len(m))
		list := make([]*model.Organisation, 0, len(m))
		for _, id := range ids {
			if o, ok := m[id]; ok {
				mo := &model.Organisation{Organisation: o}
				orgs[id] = mo
				list = append(list, mo)
			}
		}
		if err := r.loadOrganisations(ctx, sub, list); err != nil {
			return err
		}
		for _, l := range ls {
			l.Organisation = orgs[l.OrganisationID]
		}
	}
	groupOf := func(l *model.Learner) (string, bool) {
		if l.AccessGroupID == nil {
			return "", false
		}
		return *l.AccessGroupID, true
	}
	if sub, ok := want["accessGroup"]; ok {
		if ids := unique(ls, groupOf); len(ids) > 0 {
			m, err := r.Svc.AccessGroupsByIDs(ctx, ids)
			if err != nil {
				return err
			}
			groups := make(map[string]*model.AccessGroup, len(m))
			list := make([]*model.AccessGroup, 0, len(m))
			for _, id := range ids {
				if g, ok := m[id]; ok {
					mg := &model.AccessGroup{AccessGroup: g}
					groups[id] = mg
					list = append(list, mg)
				}
			}
			if err := r.loadAccessGroups(ctx, sub, list); err != nil {
				return err
			}
			for _, l := range ls {
				if l.AccessGroupID != nil {
					l.AccessGroup = groups[*l.AccessGroupID]
				}
			}
		}
	}
	if _, ok := want["courses"]; ok {
		// CTL-4: the courses of the learner's group; none once erased.
		enrolled := func(l *model.Learner) (string, bool) {
			if l.Status == domain.StatusErased {
				return "", false
			}
			return groupOf(l)
		}
		var m map[string][]domain.Course
		if ids := unique(ls, enrolled); len(ids) > 0 {
			var err error
			if m, err = r.Svc.CoursesByAccessGroups(ctx, ids); err != nil {
				return err
			}
		}
		byGroup := make(map[string][]*domain.Course, len(m))
		for id, cs := range m {
			byGroup[id] = ptrs(cs)
		}
		for _, l := range ls {
			l.Courses = []*domain.Course{}
			if id, ok := enrolled(l); ok && byGroup[id] != nil {
				l.Courses = byGroup[id]
			}
		}
	}
	if sub, ok := want["acceptances"]; ok {
		as := acc
		if as == nil {
			ids := make([]string, len(ls))
			for i, l := range ls {
				ids[i] = l.ID
			}
			var err error
			if as, err = r.Svc.AcceptancesByLearners(ctx, ids); err != nil {
				return err
			}
		}
		// One slice holds every learner's decisions, each learner's
		// together, in page order, and in the order they were made.
		at := make(map[string]int, len(ls)) // learner -> its first index in ls
		for i, l := range ls {
			if _, dup := at[l.ID]; !dup {
				at[l.ID] = i
			}
		}
		ends := make([]int, len(ls)+1) // ends[i+1]: where learner i's decisions end
		for _, a := range as {
			if i, ok := at[a.LearnerID]; ok {
				ends[i+1]++
			}
		}
		for i := range ls {
			ends[i+1] += ends[i]
		}
		all := make([]model.PolicyAcceptance, ends[len(ls)])
		next := slices.Clone(ends[:len(ls)])
		for _, a := range as {
			if i, ok := at[a.LearnerID]; ok {
				all[next[i]].PolicyAcceptance = a
				next[i]++
			}
		}
		ps := ptrs(all)
		for _, l := range ls {
			i := at[l.ID] // a learner listed twice shares its decisions
			l.Acceptances = ps[ends[i]:ends[i+1]:ends[i+1]]
		}
		if err := r.loadAcceptances(ctx, sub, ps); err != nil {
			return err
		}
	}
	return nil
}

func (r *Resolver) loadAcceptances(ctx context.Context, sel selections, as []*model.PolicyAcceptance) error {
	if _, ok := selected(ctx, sel, "PolicyAcceptance")["policyVersion"]; !ok || len(as) == 0 {
		return nil
	}
	ids := unique(as, func(a *model.PolicyAcceptance) (string, bool) { return a.PolicyVersionID, true })
	m, err := r.Svc.PolicyVersionsByIDs(ctx, ids)
	if err != nil {
		return err
	}
	vs := make(map[string]*domain.PolicyVersion, len(m))
	for id, v := range m {
		vs[id] = &v
	}
	for _, a := range as {
		a.PolicyVersion = vs[a.PolicyVersionID]
	}
	return nil
}

// organisationsOut wraps os as read models with the relations sel asks for.
func (r *Resolver) organisationsOut(ctx context.Context, sel selections, os []domain.Organisation) ([]*model.Organisation, error) {
	ms := make([]model.Organisation, len(os))
	out := make([]*model.Organisation, len(os))
	for i := range os {
		ms[i].Organisation = os[i]
		out[i] = &ms[i]
	}
	return out, r.loadOrganisations(ctx, sel, out)
}

func (r *Resolver) organisationOut(ctx context.Context, o domain.Organisation) (*model.Organisation, error) {
	out, err := r.organisationsOut(ctx, fieldSelection(ctx), []domain.Organisation{o})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (r *Resolver) loadOrganisations(ctx context.Context, sel selections, os []*model.Organisation) error {
	if len(os) == 0 {
		return nil
	}
	want := selected(ctx, sel, "Organisation")
	ids := make([]string, len(os))
	for i, o := range os {
		ids[i] = o.ID
	}
	if _, ok := want["domains"]; ok {
		m, err := r.Svc.DomainsByOrganisations(ctx, ids)
		if err != nil {
			return err
		}
		for _, o := range os {
			o.Domains = ptrs(m[o.ID])
		}
	}
	if sub, ok := want["accessGroups"]; ok {
		m, err := r.Svc.AccessGroupsByOrganisations(ctx, ids)
		if err != nil {
			return err
		}
		var all []*model.AccessGroup
		for _, o := range os {
			gs := m[o.ID]
			ms := make([]model.AccessGroup, len(gs))
			o.AccessGroups = make([]*model.AccessGroup, len(gs))
			for i := range gs {
				ms[i].AccessGroup = gs[i]
				o.AccessGroups[i] = &ms[i]
			}
			all = append(all, o.AccessGroups...)
		}
		if err := r.loadAccessGroups(ctx, sub, all); err != nil {
			return err
		}
	}
	return nil
}

func (r *Resolver) accessGroupOut(ctx context.Context, g domain.AccessGroup) (*model.AccessGroup, error) {
	out := &model.AccessGroup{AccessGroup: g}
	return out, r.loadAccessGroups(ctx, fieldSelection(ctx), []*model.AccessGroup{out})
}

func (r *Resolver) loadAccessGroups(ctx context.Context, sel selections, gs []*model.AccessGroup) error {
	if _, ok := selected(ctx, sel, "AccessGroup")["courses"]; !ok || len(gs) == 0 {
		return nil
	}
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	m, err := r.Svc.CoursesByAccessGroups(ctx, ids)
	if err != nil {
		return err
	}
	for _, g := range gs {
		g.Courses = ptrs(m[g.ID])
	}
	return nil
}

// policiesOut wraps ps as read models with the versions sel asks for.
func (r *Resolver) policiesOut(ctx context.Context, sel selections, ps []domain.Policy) ([]*model.Policy, error) {
	ms := make([]model.Policy, len(ps))
	out := make([]*model.Policy, len(ps))
	for i := range ps {
		ms[i].Policy = ps[i]
		out[i] = &ms[i]
	}
	want := selected(ctx, sel, "Policy")
	_, current := want["currentVersion"]
	_, versions := want["versions"]
	if len(ps) == 0 || (!current && !versions) {
		return out, nil
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	m, err := r.Svc.PolicyVersionsByPolicies(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, p := range out {
		p.Versions = ptrs(m[p.ID])
		for _, v := range p.Versions {
			if v.Status == domain.VersionActive {
				p.CurrentVersion = v
			}
		}
	}
	return out, nil
}

// programmesOut maps ps with the relations sel asks for.
func (r *Resolver) programmesOut(ctx context.Context, sel selections, ps []domain.Programme) ([]*model.Programme, error) {
	out := make([]*model.Programme, len(ps))
	ids := make([]string, len(ps))
	for i, p := range ps {
		out[i] = programmeOut(p)
		ids[i] = p.ID
	}
	if len(ps) == 0 {
		return out, nil
	}
	want := selected(ctx, sel, "Programme")
	if _, ok := want["governingBodies"]; ok {
		m, err := r.Svc.GoverningBodiesByProgrammes(ctx, ids)
		if err != nil {
			return nil, err
		}
		for _, p := range out {
			p.GoverningBodies = ptrs(m[p.ID])
		}
	}
	if sub, ok := want["organisations"]; ok {
		m, err := r.Svc.OrganisationsByProgrammes(ctx, ids)
		if err != nil {
			return nil, err
		}
		var all []*model.Organisation
		for _, p := range out {
			os := m[p.ID]
			ms := make([]model.Organisation, len(os))
			p.Organisations = make([]*model.Organisation, len(os))
			for i := range os {
				ms[i].Organisation = os[i]
				p.Organisations[i] = &ms[i]
			}
			all = append(all, p.Organisations...)
		}
		if err := r.loadOrganisations(ctx, sub, all); err != nil {
			return nil, err
		}
	}
	if _, ok := want["courses"]; ok {
		m, err := r.Svc.CoursesByProgrammes(ctx, ids)
		if err != nil {
			return nil, err
		}
		for _, p := range out {
			p.Courses = ptrs(m[p.ID])
		}
	}
	if sub, ok := want["policies"]; ok {
		m, err := r.Svc.PoliciesByProgrammes(ctx, ids)
		if err != nil {
			return nil, err
		}
		// One statement for every programme's policies' versions.
		var all []domain.Policy
		for _, p := range out {
			all = append(all, m[p.ID]...)
		}
		pols, err := r.policiesOut(ctx, sub, all)
		if err != nil {
			return nil, err
		}
		i := 0
		for _, p := range out {
			n := len(m[p.ID])
			p.Policies = pols[i : i+n : i+n]
			i += n
		}
	}
	return out, nil
}

func (r *Resolver) programmeOneOut(ctx context.Context, p domain.Programme) (*model.Programme, error) {
	out, err := r.programmesOut(ctx, fieldSelection(ctx), []domain.Programme{p})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}
