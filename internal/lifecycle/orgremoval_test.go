package lifecycle_test

import (
	"context"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// An organisation's removal schedules the removal of every learner it finds
// (CTL-9) once, in its own transaction. A learner being created in the
// organisation at the same moment must not slip past it: the creating
// transaction re-reads the organisation under a share lock, so it waits for
// the removal and then refuses. Here the removal is uncommitted while an
// admin creates a learner whose organisation checks, read before the
// transaction, all said ADMITTED. PostgreSQL only: SQLite
// runs one writing transaction at a time, so the interleaving cannot happen
// there.
func TestCreateLearner_CTL9_WaitsForAConcurrentOrganisationRemovalAndRefuses(t *testing.T) {
	st := testkit.NewStore(t, migrations.Postgres, store.Options{})
	w := testkit.NewConnectToLearn(t, st)
	ctx := context.Background()

	// The removal's transaction, through the store as membership.go runs
	// it, held open until the creation waits for it.
	removing, release, removed := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		removed <- st.InTx(ctx, func(ctx context.Context) error {
			if err := st.SetOrganisationStatus(ctx, w.Medway.ID, domain.OrgRemoved, time.Now()); err != nil {
				return err
			}
			close(removing)
			<-release
			return nil
		})
	}()
	<-removing

	done := make(chan error, 1)
	go func() {
		_, err := w.Service.CreateLearner(w.As("kc"), w.Medway.ID, lifecycle.LearnerInput{Email: "late@medway.gov.uk", GivenName: "Late", FamilyName: "Comer"})
		done <- err
	}()
	// Wait until the creation is blocked on the removal's lock.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := st.SQL().QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the creation did not wait for the organisation's removal: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the creation never waited on the organisation's row")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	err := <-done
	if ae, ok := apperr.As(err); !ok || ae.Code != apperr.Conflict || ae.Reason != "ORGANISATION_REMOVED" {
		t.Fatalf("creating a learner in an organisation removed meanwhile: want CONFLICT ORGANISATION_REMOVED, got %v", err)
	}
	if n := testkit.Count(t, st, `SELECT count(*) FROM learners WHERE email = ?`, "late@medway.gov.uk"); n != 0 {
		t.Fatalf("%d learners written into the removed organisation", n)
	}
}

// A sign-in reads the organisation an email belongs to through the store's
// reference cache, which may hold a row changed on another replica for up to
// 10 s. Nobody may be written into an organisation that has left on the
// strength of that row (CTL-9): a first sign-in and a sign-in whose new
// email moves the learner both re-read the organisation in their
// transaction. Here Medway's removal is written by hand (as another replica
// would), so the cache still says ADMITTED. Both databases.
func TestSignIn_CTL9_NoLearnerWrittenIntoAnOrganisationRemovedBehindTheCache(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st)
		const issuer = "https://idp.programme.example"
		if _, err := w.Service.RegisterIdentityProvider(w.Sys, w.Programme.ID, "", lifecycle.IdentityProviderInput{Issuer: issuer, ClientID: "x"}); err != nil {
			t.Fatal(err)
		}
		mover, _ := w.SignIn(issuer, "mover", "mover@kent.gov.uk", "Mo", "Ver")
		// The cache learns Medway's row: ADMITTED.
		w.SignIn(issuer, "early", "early@medway.gov.uk", "Ear", "Ly")
		if _, err := st.SQL().Exec(w.SQL(`UPDATE organisations SET status = 'REMOVED' WHERE id = ?`), w.Medway.ID); err != nil {
			t.Fatal(err)
		}
		refused := func(what string, err error) {
			t.Helper()
			if ae, ok := apperr.As(err); !ok || ae.Code != apperr.Forbidden || ae.Reason != "DOMAIN_NOT_ELIGIBLE" {
				t.Fatalf("%s into a removed organisation: want FORBIDDEN DOMAIN_NOT_ELIGIBLE, got %v", what, err)
			}
		}
		_, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: issuer, Subject: "late", Email: "late@medway.gov.uk",
			EmailVerified: true, GivenName: "La", FamilyName: "Te"})
		refused("a first sign-in", err)
		if n := w.Count(`SELECT count(*) FROM learners WHERE organisation_id = ?`, w.Medway.ID); n != 1 {
			t.Fatalf("Medway has %d learners, want only the one from before its removal", n)
		}
		_, err = w.Service.SignIn(context.Background(), domain.Identity{Issuer: issuer, Subject: "mover", Email: "mover@medway.gov.uk",
			EmailVerified: true, GivenName: "Mo", FamilyName: "Ver"})
		refused("a move by sign-in", err)
		if got := w.Learner(mover.ID); got.OrganisationID != w.KCC.ID || got.Email == nil || *got.Email != "mover@kent.gov.uk" {
			t.Fatalf("the learner moved anyway: organisation %s email %v", got.OrganisationID, got.Email)
		}
	})
}
