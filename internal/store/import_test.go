package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// An import writes each learner as given (its origin among them: linking a
// later sign-in by email depends on it, INV-1), with one LEARNER_PROVISIONED
// event carrying the learner's version and programme, and one audit entry;
// an email taken already is skipped. Both databases.
func TestImport_INV1_WritesOriginEventsAndAuditAsGiven(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		p, learners := importWorld(t, st, "01900000-0000-7000-8000-000000000301", "01900000-0000-7000-8000-000000000302", "Import")
		now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
		ls := learners("person", 7)
		var written map[string]bool
		if err := st.InTx(ctx, func(ctx context.Context) error {
			var err error
			written, err = st.ImportLearners(ctx, ls[:5], "actor", now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		// The same emails again (two new): only the new ones are written.
		if err := st.InTx(ctx, func(ctx context.Context) error {
			again := append([]domain.Learner{}, ls...)
			for i := range 5 {
				id, _ := uuid.NewV7()
				again[i].ID = id.String()
			}
			w, err := st.ImportLearners(ctx, again, "actor", now)
			for id := range w {
				written[id] = true
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(written) != 7 {
			t.Fatalf("written %d learners, want 7", len(written))
		}
		for _, l := range ls {
			got, err := st.GetLearner(ctx, l.ID, false)
			if err != nil {
				t.Fatal(err)
			}
			if got.Origin != domain.OriginImport || got.Version != l.Version || got.Status != l.Status {
				t.Fatalf("learner %s written as origin %q version %d status %s, want %q %d %s",
					l.ID, got.Origin, got.Version, got.Status, domain.OriginImport, l.Version, l.Status)
			}
			if n := testkit.Count(t, st, `SELECT count(*) FROM lifecycle_events WHERE learner_id = ? AND programme_id = ? AND type = ? AND learner_version = ?`,
				l.ID, p.ID, string(domain.EventProvisioned), l.Version); n != 1 {
				t.Fatalf("learner %s has %d matching LEARNER_PROVISIONED events, want 1", l.ID, n)
			}
			if n := testkit.Count(t, st, `SELECT count(*) FROM audit_entries WHERE target_id = ? AND action = 'learner.import' AND programme_id = ?`,
				l.ID, p.ID); n != 1 {
				t.Fatalf("learner %s has %d import audit entries, want 1", l.ID, n)
			}
		}
		// The rows skipped (their emails taken) have neither.
		if n := testkit.Count(t, st, `SELECT count(*) FROM lifecycle_events WHERE programme_id = ?`, p.ID); n != 7 {
			t.Fatalf("%d feed events, want 7: one per learner written", n)
		}
		if n := testkit.Count(t, st, `SELECT count(*) FROM audit_entries WHERE action = 'learner.import'`); n != 7 {
			t.Fatalf("%d import audit entries, want 7: one per learner written", n)
		}
	})
}

// A row given the ID of a learner already written (a caller's bug: the
// service gives every row a new ID) is never taken as written, so that
// learner gets no second feed event or audit entry (INV-5). PostgreSQL,
// which takes a row as written when its ID is in learners, refuses the
// whole import; SQLite skips the row.
func TestImport_INV5_ARowWithAnIDInUseIsNeverTakenAsWritten(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		p, learners := importWorld(t, st, "01900000-0000-7000-8000-000000000331", "01900000-0000-7000-8000-000000000332", "IDs in use")
		now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
		ls := learners("first", 2)
		if err := st.InTx(ctx, func(ctx context.Context) error {
			_, err := st.ImportLearners(ctx, ls, "actor", now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		again := append([]domain.Learner{ls[0]}, learners("second", 1)...) // ls[0]: its ID and email both taken
		var written map[string]bool
		err := st.InTx(ctx, func(ctx context.Context) error {
			var err error
			written, err = st.ImportLearners(ctx, again, "actor", now)
			return err
		})
		switch {
		case st.Dialect() == "postgres" && err == nil:
			t.Fatalf("PostgreSQL took an import with an ID in use (written %v)", written)
		case st.Dialect() != "postgres" && (err != nil || written[ls[0].ID] || !written[again[1].ID]):
			t.Fatalf("SQLite: err %v, written %v; want the new row alone written", err, written)
		}
		if n := testkit.Count(t, st, `SELECT count(*) FROM lifecycle_events WHERE learner_id = ?`, ls[0].ID); n != 1 {
			t.Fatalf("the learner already written has %d feed events, want 1", n)
		}
		if n := testkit.Count(t, st, `SELECT count(*) FROM audit_entries WHERE target_id = ?`, ls[0].ID); n != 1 {
			t.Fatalf("the learner already written has %d audit entries, want 1", n)
		}
		want := 3 // SQLite: the new row written
		if st.Dialect() == "postgres" {
			want = 2 // the import refused, nothing of it written
		}
		if n := testkit.Count(t, st, `SELECT count(*) FROM lifecycle_events WHERE programme_id = ?`, p.ID); n != want {
			t.Fatalf("%d feed events, want %d", n, want)
		}
	})
}

// An import wakes the programme's long-polls when it commits, as every other
// writer of feed events does: an LMS following the feed (INV-3) sees the
// imported learners at once, not when its poll times out. Both databases
// (PostgreSQL: the NOTIFY delivered at commit; SQLite: the process's hub).
func TestImport_INV3_WakesTheProgrammesLongPollsAtCommit(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		p, learners := importWorld(t, st, "01900000-0000-7000-8000-000000000311", "01900000-0000-7000-8000-000000000312", "Import wakes")
		now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
		woken, stop := st.WatchFeed(p.ID)
		defer stop()
		for i := 0; st.Dialect() == "postgres" && !st.Listening(); i++ {
			if i == 500 {
				t.Fatal("the store never started listening for feed notifications")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// A listener that (re)connects wakes every waiter once (notify.go):
		// let that pass before the import.
		time.Sleep(100 * time.Millisecond)
		select {
		case <-woken:
		default:
		}
		ls := learners("woken", 3)
		if err := st.InTx(ctx, func(ctx context.Context) error {
			_, err := st.ImportLearners(ctx, ls, "actor", now)
			if err == nil {
				select {
				case <-woken:
					t.Error("the long-poll was woken before the import committed")
				case <-time.After(200 * time.Millisecond):
				}
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-woken:
		case <-time.After(5 * time.Second):
			t.Fatal("the import committed 3 feed events and the programme's long-poll was not woken within 5 s")
		}
	})
}

// Two imports in one transaction both write, with their events and audit
// entries, on both databases (PostgreSQL: the first drops its temporary
// tables when done, so the second can create them again).
func TestImport_INV5_TwoImportsInOneTransaction(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		p, batch := importWorld(t, st, "01900000-0000-7000-8000-000000000321", "01900000-0000-7000-8000-000000000322", "Two imports")
		now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
		written := 0
		if err := st.InTx(ctx, func(ctx context.Context) error {
			for _, prefix := range []string{"first", "second"} {
				w, err := st.ImportLearners(ctx, batch(prefix, 3), "actor", now)
				if err != nil {
					return fmt.Errorf("%s import: %w", prefix, err)
				}
				written += len(w)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if written != 6 {
			t.Fatalf("written %d, want 6", written)
		}
		for table, want := range map[string]int{"learners": 6, "lifecycle_events": 6, "audit_entries": 6} {
			if n := testkit.Count(t, st, `SELECT count(*) FROM `+table+` WHERE programme_id = ?`, p.ID); n != want {
				t.Fatalf("%s: %d rows of the programme, want %d", table, n, want)
			}
		}
	})
}

// importWorld is a programme with one admitted organisation, and a maker
// of new learners of it to import (emails prefix.0@example.org, ...).
func importWorld(t *testing.T, st *store.Store, programmeID, orgID, name string) (domain.Programme, func(prefix string, n int) []domain.Learner) {
	t.Helper()
	p := newProgramme(t, st, programmeID, name)
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	o := domain.Organisation{ID: orgID, ProgrammeID: p.ID, Name: "Org", Kind: "OTHER",
		Status: domain.OrgAdmitted, CreatedAt: now, AdmittedAt: &now}
	if err := st.CreateOrganisation(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	return p, func(prefix string, n int) []domain.Learner {
		var ls []domain.Learner
		for i := range n {
			id, _ := uuid.NewV7()
			email := fmt.Sprintf("%s.%d@example.org", prefix, i)
			l, _, err := domain.NewLearner(domain.Learner{ID: id.String(), ProgrammeID: p.ID, OrganisationID: o.ID, Email: &email},
				domain.OriginImport, false, now)
			if err != nil {
				t.Fatal(err)
			}
			ls = append(ls, l)
		}
		return ls
	}
}
