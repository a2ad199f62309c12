package seed_test

import (
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/seed"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

var tables = []string{"programmes", "governing_bodies", "organisations", "email_domains", "access_groups",
	"courses", "access_group_courses", "membership_proposals", "membership_approvals", "policies", "policy_versions",
	"role_grants", "audit_entries"}

func counts(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, tb := range tables {
		var n int
		if err := st.SQL().QueryRow(`SELECT count(*) FROM ` + tb).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[tb] = n
	}
	return out
}

// CTL-2: the Kent Connects partnership as seed data; seeding twice changes nothing.
func TestSeed_CTL2_KentConnectsPartnershipIdempotent(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		svc := lifecycle.New(st, lifecycle.Options{})
		p := testkit.SeedExample(t, svc, "connect-to-learn.yaml")
		first := counts(t, st)
		if first["organisations"] != 20 || first["governing_bodies"] != 2 || first["email_domains"] != 20 {
			t.Fatalf("unexpected seed: %+v", first)
		}
		// CTL-1 was followed: every admission was approved by both bodies.
		if first["membership_approvals"] != 40 {
			t.Fatalf("want 2 approvals per organisation, got %d", first["membership_approvals"])
		}
		for name, domain := range map[string]string{"Kent County Council": "kent.gov.uk", "Kent Police": "kent.police.uk",
			"University of Kent": "kent.ac.uk", "Kent Fire and Rescue Service": "kent.fire-uk.org"} {
			o, ok := p.Orgs[name]
			if !ok {
				t.Fatalf("organisation %s missing", name)
			}
			ds, _ := svc.DomainsByOrganisations(lifecycle.WithSystem(t.Context(), "t"), []string{o.ID})
			if len(ds[o.ID]) != 1 || ds[o.ID][0].Domain != domain {
				t.Errorf("%s: want domain %s, got %+v", name, domain, ds[o.ID])
			}
		}
		// Governing bodies are linked to KCC and TWBC.
		for _, b := range p.Bodies {
			if b.OrganisationID == nil {
				t.Errorf("governing body %s not linked to its organisation", b.Name)
			}
		}
		testkit.SeedExample(t, svc, "connect-to-learn.yaml")
		second := counts(t, st)
		for tb, n := range first {
			if second[tb] != n {
				t.Errorf("seeding twice changed %s: %d -> %d", tb, n, second[tb])
			}
		}
		testkit.SeedExample(t, svc, "onclick.yaml")
		third := counts(t, st)
		if third["programmes"] != 2 || third["organisations"] != 21 {
			t.Fatalf("onclick seed: %+v", third)
		}
	})
}

func TestSeed_RefusesUnknownKeys(t *testing.T) {
	_, err := seed.Parse(strings.NewReader("programme:\n  name: X\n  presett: ONCLICK\n"))
	if err == nil || !strings.Contains(err.Error(), "presett") {
		t.Fatalf("want an error naming the unknown key, got %v", err)
	}
	_, err = seed.Parse(strings.NewReader("courses: []\n"))
	if err == nil {
		t.Fatal("a file without programme.name was accepted")
	}
}

// Seeding again (as `rollcall serve` does in dev mode on every start) leaves
// an admin's change to a group's courses alone: no course set is reverted
// and no COURSES_CHANGED reaches the LMS feed.
func TestSeed_SeedingTwiceKeepsAnAdminsCourseChange(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		svc := lifecycle.New(st, lifecycle.Options{})
		p := testkit.SeedExample(t, svc, "connect-to-learn.yaml")
		ctx := lifecycle.WithSystem(t.Context(), "admin")
		var group string
		for _, g := range p.DefaultGroups {
			group = g.ID
			break
		}
		if group == "" {
			t.Fatal("the seed made no default group")
		}
		before, err := svc.CoursesByAccessGroups(ctx, []string{group})
		if err != nil {
			t.Fatal(err)
		}
		if len(before[group]) < 1 {
			t.Fatalf("the seed gave the default group no courses: %+v", before)
		}
		// The admin drops every course but the first.
		keep := []string{before[group][0].ID}
		if _, err := svc.SetAccessGroupCourses(ctx, group, keep); err != nil {
			t.Fatal(err)
		}
		audits := counts(t, st)["audit_entries"]
		testkit.SeedExample(t, svc, "connect-to-learn.yaml") // a restart of serve in dev mode
		after, err := svc.CoursesByAccessGroups(ctx, []string{group})
		if err != nil {
			t.Fatal(err)
		}
		if len(after[group]) != 1 || after[group][0].ID != keep[0] {
			t.Errorf("seeding again reverted the admin's change: %d courses, want 1", len(after[group]))
		}
		if n := counts(t, st)["audit_entries"]; n != audits {
			t.Errorf("seeding again wrote %d audit entries", n-audits)
		}
	})
}
