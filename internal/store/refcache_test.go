package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// Programmes and providers are read through a cache outside transactions
// (refcache.go). A change made through the store is seen by the next read at
// once, a rolled-back change never, and a transaction always reads the row
// itself: the contract end a request decides on (CTL-6) is the current one.
func TestRefCache_CTL6_ProgrammeChangesAreSeenAtOnce(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		p := newProgramme(t, st, "01900000-0000-7000-8000-000000000101", "Cached")
		before := *p.Settings.ContractEndsAt
		if got, err := st.GetProgramme(ctx, p.ID); err != nil || !got.Settings.ContractEndsAt.Equal(before) {
			t.Fatalf("first read: %+v %v", got.Settings.ContractEndsAt, err)
		}
		end := before.AddDate(0, -6, 0)
		set := p.Settings
		set.ContractEndsAt = &end
		// A change rolled back leaves the cached row as it was.
		boom := errors.New("boom")
		if err := st.InTx(ctx, func(ctx context.Context) error {
			if err := st.UpdateProgrammeSettings(ctx, p.ID, set, end); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Fatalf("rolled-back update: %v", err)
		}
		if got, _ := st.GetProgramme(ctx, p.ID); !got.Settings.ContractEndsAt.Equal(before) {
			t.Fatalf("a rolled-back contract end is read: %v", got.Settings.ContractEndsAt)
		}
		// A committed change is read at once, outside and inside transactions.
		if err := st.InTx(ctx, func(ctx context.Context) error {
			return st.UpdateProgrammeSettings(ctx, p.ID, set, end)
		}); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.GetProgramme(ctx, p.ID); got.Settings.ContractEndsAt == nil || !got.Settings.ContractEndsAt.Equal(end) {
			t.Fatalf("committed contract end not read: %v", got.Settings.ContractEndsAt)
		}
		// A transaction reads the row itself, even one changed behind the
		// store's back (another replica).
		q := `UPDATE programmes SET minimum_age = 21 WHERE id = ?`
		if st.Dialect() == migrations.Postgres {
			q = `UPDATE programmes SET minimum_age = 21 WHERE id = $1`
		}
		if _, err := st.SQL().ExecContext(ctx, q, p.ID); err != nil {
			t.Fatal(err)
		}
		if err := st.InTx(ctx, func(ctx context.Context) error {
			got, err := st.GetProgramme(ctx, p.ID)
			if err != nil {
				return err
			}
			if got.Settings.MinimumAge != 21 {
				t.Errorf("a transaction read a cached programme: minimum age %v", got.Settings.MinimumAge)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// The provider of an issuer, and the fact that an issuer has none, are
// cached; registering, changing or removing a provider through the store is
// seen by the next sign-in at once (invariant 1: the provider decides which
// organisation a sign-in may reach).
func TestRefCache_INV1_ProviderRegistrationsAreSeenAtOnce(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		p := newProgramme(t, st, "01900000-0000-7000-8000-000000000102", "Providers")
		const iss = "https://idp.cache.example"
		if _, err := st.ProviderByIssuer(ctx, iss); apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("unknown issuer: want NOT_FOUND, got %v", err)
		}
		now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
		prov := domain.IdentityProvider{ID: "01900000-0000-7000-8000-000000000103", ProgrammeID: p.ID, Issuer: iss,
			ClientID: "one", EmailTrust: domain.EmailVerifiedClaim, CreatedAt: now, UpdatedAt: now}
		if err := st.CreateProvider(ctx, prov); err != nil {
			t.Fatal(err)
		}
		got, err := st.ProviderByIssuer(ctx, iss)
		if err != nil || got.ClientID != "one" {
			t.Fatalf("registered provider not read: %+v %v", got, err)
		}
		prov.ClientID = "two"
		if err := st.UpdateProvider(ctx, prov); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.ProviderByIssuer(ctx, iss); got.ClientID != "two" {
			t.Fatalf("changed provider not read: client %q", got.ClientID)
		}
		if err := st.DeleteProvider(ctx, prov.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ProviderByIssuer(ctx, iss); apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("removed provider still read: %v", err)
		}
	})
}

// The organisations, groups and policy versions a page of learners points at
// are cached by ID; an organisation's removal (CTL-10: its learners leave with
// it) and a new policy version's activation (ONC-1) are read at once.
func TestRefCache_CTL10_OrganisationAndPolicyChangesAreSeenAtOnce(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		p := newProgramme(t, st, "01900000-0000-7000-8000-000000000201", "Refs")
		now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
		o := domain.Organisation{ID: "01900000-0000-7000-8000-000000000202", ProgrammeID: p.ID, Name: "Org", Kind: "OTHER",
			Status: domain.OrgAdmitted, CreatedAt: now, AdmittedAt: &now}
		if err := st.CreateOrganisation(ctx, o); err != nil {
			t.Fatal(err)
		}
		if os, err := st.OrganisationsByIDs(ctx, []string{o.ID, "not-an-id"}); err != nil || len(os) != 1 || os[0].Status != domain.OrgAdmitted {
			t.Fatalf("first read: %+v %v", os, err)
		}
		if err := st.InTx(ctx, func(ctx context.Context) error {
			return st.SetOrganisationStatus(ctx, o.ID, domain.OrgRemoved, now.Add(time.Hour))
		}); err != nil {
			t.Fatal(err)
		}
		if os, _ := st.OrganisationsByIDs(ctx, []string{o.ID}); len(os) != 1 || os[0].Status != domain.OrgRemoved {
			t.Fatalf("removal not read by OrganisationsByIDs: %+v", os)
		}
		if got, err := st.GetOrganisation(ctx, o.ID); err != nil || got.Status != domain.OrgRemoved {
			t.Fatalf("removal not read by GetOrganisation: %+v %v", got, err)
		}
		if _, err := st.GetOrganisation(ctx, "01900000-0000-7000-8000-0000000002ff"); apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("missing organisation: want NOT_FOUND, got %v", err)
		}

		pol := domain.Policy{ID: "01900000-0000-7000-8000-000000000203", ProgrammeID: p.ID, Name: "Privacy", Type: domain.PolicyPrivacy,
			Audience: domain.AudienceAll, Compulsory: true, CreatedAt: now}
		if err := st.CreatePolicy(ctx, pol); err != nil {
			t.Fatal(err)
		}
		v1 := domain.PolicyVersion{ID: "01900000-0000-7000-8000-000000000204", PolicyID: pol.ID, Label: "v1", Status: domain.VersionActive, PublishedAt: now, ActivatedAt: &now}
		v2 := domain.PolicyVersion{ID: "01900000-0000-7000-8000-000000000205", PolicyID: pol.ID, Label: "v2", Status: domain.VersionDraft, PublishedAt: now}
		for _, v := range []domain.PolicyVersion{v1, v2} {
			if err := st.CreatePolicyVersion(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
		status := func() map[string]domain.PolicyVersionStatus {
			vs, err := st.PolicyVersionsByIDs(ctx, []string{v1.ID, v2.ID})
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]domain.PolicyVersionStatus{}
			for _, v := range vs {
				out[v.Label] = v.Status
			}
			return out
		}
		if got := status(); got["v1"] != domain.VersionActive || got["v2"] != domain.VersionDraft {
			t.Fatalf("before activation: %v", got)
		}
		if err := st.ActivatePolicyVersion(ctx, pol.ID, v2.ID, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got := status(); got["v1"] != domain.VersionArchived || got["v2"] != domain.VersionActive {
			t.Fatalf("activation not read at once: %v", got)
		}
	})
}
