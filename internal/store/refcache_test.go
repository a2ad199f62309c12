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
