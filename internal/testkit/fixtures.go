package testkit

import (
	"context"
	"testing"

	"github.com/rollcall-dev/rollcall/examples"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/seed"
)

// Programme is a seeded programme with its objects by name.
type Programme struct {
	ID            string
	Orgs          map[string]domain.Organisation // by name
	Bodies        map[string]domain.GoverningBody
	Courses       map[string]domain.Course // by lmsCourseId
	DefaultGroups map[string]domain.AccessGroup
}

// SeedExample loads examples/<file> through the seeder as a system actor.
func SeedExample(t testing.TB, svc *lifecycle.Service, file string) Programme {
	t.Helper()
	f, err := examples.Files.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sf, err := seed.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	ctx := lifecycle.WithSystem(context.Background(), "test")
	rep, err := seed.Apply(ctx, svc, sf)
	if err != nil {
		t.Fatalf("seed %s: %v", file, err)
	}
	p := Programme{ID: rep.ProgrammeID, Orgs: map[string]domain.Organisation{}, Bodies: map[string]domain.GoverningBody{},
		Courses: map[string]domain.Course{}, DefaultGroups: map[string]domain.AccessGroup{}}
	orgs, err := svc.OrganisationsByProgrammes(ctx, []string{p.ID})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range orgs[p.ID] {
		p.Orgs[o.Name] = o
		ids = append(ids, o.ID)
	}
	groups, err := svc.AccessGroupsByOrganisations(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range orgs[p.ID] {
		for _, g := range groups[o.ID] {
			if g.IsDefault {
				p.DefaultGroups[o.Name] = g
			}
		}
	}
	bodies, err := svc.GoverningBodies(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		p.Bodies[b.Name] = b
	}
	cs, err := svc.CoursesByProgrammes(ctx, []string{p.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs[p.ID] {
		p.Courses[c.LMSCourseID] = c
	}
	return p
}

// Grant gives subject (of the API's issuer) a role, as a system actor.
func (a *API) Grant(subject string, role domain.Role, programmeID string, orgID, bodyID *string) domain.RoleGrant {
	a.t.Helper()
	ctx := lifecycle.WithSystem(context.Background(), "test")
	g, err := a.Service.GrantRole(ctx, lifecycle.GrantRoleInput{Issuer: a.Issuer.URL(), Subject: subject, Role: role,
		ProgrammeID: programmeID, OrganisationID: orgID, GoverningBodyID: bodyID})
	if err != nil {
		a.t.Fatalf("grant: %v", err)
	}
	return g
}
