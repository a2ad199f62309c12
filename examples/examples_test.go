package examples_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/examples"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/seed"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

func parse(t *testing.T, name string) *seed.File {
	t.Helper()
	f, err := examples.Files.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sf, err := seed.Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return sf
}

// Every seed file says what it is: demo files are labelled DEMO DATA in their
// header; the partner files carry organisations and domains only, with no demo
// course, policy, access group, date or illustrative organisation.
func TestExamples_DemoIsLabelledAndPartnersHoldOnlyOrganisations(t *testing.T) {
	names, _ := fs.Glob(examples.Files, "*.yaml")
	partners := 0
	for _, n := range names {
		raw, _ := fs.ReadFile(examples.Files, n)
		sf := parse(t, n)
		if !strings.HasPrefix(n, "partners-") {
			if !strings.HasPrefix(string(raw), "# DEMO DATA") {
				t.Errorf("%s: a demo file must start with '# DEMO DATA'", n)
			}
			continue
		}
		partners++
		if len(sf.Courses) != 0 || len(sf.Policies) != 0 || sf.Programme.Rules != nil {
			t.Errorf("%s: partner files hold no courses, policies or rule dates", n)
		}
		for _, o := range sf.Organisations {
			if o.Illustrative || len(o.AccessGroups) != 0 || len(o.Domains) == 0 {
				t.Errorf("%s: %s: a partner is a real organisation with its domains and nothing else", n, o.Name)
			}
		}
	}
	if partners != 2 {
		t.Fatalf("want the two partner files, found %d", partners)
	}
	// The partner file is the demo file's real organisations, by name, kind and domain.
	demo := parse(t, "connect-to-learn.yaml")
	real := map[string]string{}
	for _, o := range demo.Organisations {
		if !o.Illustrative {
			real[o.Name] = o.Kind + " " + o.Domains[0].Domain
		}
	}
	ctl := parse(t, "partners-connect-to-learn.yaml")
	if len(ctl.Organisations) != 16 || len(real) != 16 {
		t.Fatalf("Kent Connects has 16 named partners (CTL-2): partners file %d, demo %d", len(ctl.Organisations), len(real))
	}
	for _, o := range ctl.Organisations {
		if real[o.Name] != o.Kind+" "+o.Domains[0].Domain {
			t.Errorf("%s: %s %s does not match the demo file's %q", o.Name, o.Kind, o.Domains[0].Domain, real[o.Name])
		}
	}
}

// CTL-6: the demo programme seeded on any day is kept two years from that day
// (the preset's contract end), so loading it can never put a learner within
// weeks of erasure; the partner file gets the same. Seeding the partner file
// twice changes nothing. Both databases.
func TestExamples_CTL6_SeededContractEndIsTwoYearsFromTheDayOfSeeding(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		today := time.Now().UTC().Truncate(time.Second)
		svc := lifecycle.New(st, lifecycle.Options{Clock: func() time.Time { return today }})
		ctx := lifecycle.WithSystem(context.Background(), "test")
		for _, name := range []string{"connect-to-learn.yaml", "partners-onclick.yaml"} {
			if _, err := seed.Apply(ctx, svc, parse(t, name)); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		p, err := svc.ProgrammeByName(ctx, "Connect to Learn")
		if err != nil {
			t.Fatal(err)
		}
		end := p.Settings.ContractEndsAt
		if end == nil || !end.Equal(today.AddDate(2, 0, 0)) {
			t.Fatalf("demo contract end %v, want two years from the day of seeding (%v)", end, today.AddDate(2, 0, 0))
		}
		rem, err := svc.RetentionPreview(ctx, p.ID, today.AddDate(1, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rem {
			if r.Reason == "CONTRACT_ENDED" {
				t.Fatalf("a year after seeding the demo, the contract end already acts: %+v", r)
			}
		}
		onc, err := svc.ProgrammeByName(ctx, "Learn Public Health (West Sussex)")
		if err != nil || onc.Settings.ContractEndsAt != nil {
			t.Fatalf("ONC-6: the Onclick partners programme has no contract end: %+v %v", onc.Settings, err)
		}
	})
}

func TestExamples_PartnersSeedTwiceChangesNothing(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		svc := lifecycle.New(st, lifecycle.Options{})
		ctx := lifecycle.WithSystem(context.Background(), "test")
		f := parse(t, "partners-connect-to-learn.yaml")
		first, err := seed.Apply(ctx, svc, f)
		if err != nil {
			t.Fatal(err)
		}
		if first.Created["organisations"] != 16 {
			t.Fatalf("first seed: %+v", first.Created)
		}
		again, err := seed.Apply(ctx, svc, f)
		if err != nil {
			t.Fatal(err)
		}
		for k, n := range again.Created {
			if n != 0 {
				t.Errorf("seeding twice created %d %s", n, k)
			}
		}
	})
}
