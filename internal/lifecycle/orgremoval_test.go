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
