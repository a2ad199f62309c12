package main

import (
	"context"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// Dev mode loads the demo on every start of `serve`; only the first start
// on a database writes anything, so what an admin changed since (a group's
// courses, an organisation's name) survives a restart and nothing is added
// twice.
func TestServe_DevModeDemoLoadsOnceAndRestartsKeepAdminChanges(t *testing.T) {
	api := testkit.NewAPI(t, migrations.SQLite)
	ctx := context.Background()
	if err := loadDemo(ctx, api.Service); err != nil {
		t.Fatal(err)
	}
	sys := lifecycle.WithSystem(ctx, "test")
	p, err := api.Service.ProgrammeByName(sys, "Connect to Learn")
	if err != nil {
		t.Fatal(err)
	}
	orgs, err := api.Service.OrganisationsByProgrammes(sys, []string{p.ID})
	if err != nil {
		t.Fatal(err)
	}
	before := len(orgs[p.ID])
	kcc := ""
	for _, o := range orgs[p.ID] {
		if o.Name == "Kent County Council" {
			kcc = o.ID
		}
	}
	groups, err := api.Service.AccessGroupsByOrganisations(sys, []string{kcc})
	if err != nil || len(groups[kcc]) == 0 {
		t.Fatalf("groups: %v", err)
	}
	g := groups[kcc][0]
	// An admin empties the group's courses; the organisation is renamed
	// below the API (no mutation renames one today; seeding matches by name).
	if _, err := api.Service.SetAccessGroupCourses(sys, g.ID, []string{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Store.SQL().Exec(`UPDATE organisations SET name = 'Kent County Council (renamed)' WHERE id = ?`, kcc); err != nil {
		t.Fatal(err)
	}

	if err := loadDemo(ctx, api.Service); err != nil { // the restart
		t.Fatal(err)
	}
	orgs, _ = api.Service.OrganisationsByProgrammes(sys, []string{p.ID})
	if len(orgs[p.ID]) != before {
		t.Fatalf("a restart admitted organisations: %d before, %d after", before, len(orgs[p.ID]))
	}
	cs, err := api.Service.CoursesByAccessGroups(sys, []string{g.ID})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cs[g.ID]); n != 0 {
		t.Fatalf("a restart gave the group back %d courses the admin removed", n)
	}
	ps, err := api.Service.Programmes(lifecycle.WithSystem(ctx, "test"))
	if err != nil || len(ps) != 2 {
		t.Fatalf("programmes after a restart: %d %v", len(ps), err)
	}
}
