package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

func newProgramme(t *testing.T, st *store.Store, id, name string) domain.Programme {
	t.Helper()
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	p := domain.Programme{ID: id, Name: name, Preset: domain.PresetConnectToLearn, CreatedAt: now, UpdatedAt: now,
		Settings: domain.PresetSettings(domain.PresetConnectToLearn, now)}
	if err := st.CreateProgramme(context.Background(), p, nil); err != nil {
		t.Fatal(err)
	}
	return p
}

// Storage errors are translated in one place: unique violations are CONFLICT,
// missing rows and malformed IDs are NOT_FOUND, on both dialects.
func TestStore_ErrorTranslation(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		p := newProgramme(t, st, "01900000-0000-7000-8000-000000000001", "A")
		got, err := st.GetProgramme(ctx, p.ID)
		if err != nil || got.Name != "A" || got.Settings.InactivityLimit == nil || *got.Settings.InactivityLimit != 365*24*time.Hour {
			t.Fatalf("round trip: %+v %v", got, err)
		}
		err = st.CreateProgramme(ctx, domain.Programme{ID: "01900000-0000-7000-8000-000000000002", Name: "A",
			Preset: domain.PresetConnectToLearn, Settings: p.Settings, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}, nil)
		if apperr.CodeOf(err) != apperr.Conflict {
			t.Fatalf("duplicate name: want CONFLICT, got %v", err)
		}
		_, err = st.GetProgramme(ctx, "01900000-0000-7000-8000-0000000000ff")
		if apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("missing: want NOT_FOUND, got %v", err)
		}
		_, err = st.GetProgramme(ctx, "not-a-uuid")
		if apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("malformed id: want NOT_FOUND, got %v", err)
		}
		// A reference to a missing row is NOT_FOUND, not an internal error.
		err = st.CreateOrganisation(ctx, domain.Organisation{ID: "01900000-0000-7000-8000-000000000010",
			ProgrammeID: "01900000-0000-7000-8000-0000000000ee", Name: "X", Kind: "OTHER", Status: domain.OrgAdmitted, CreatedAt: p.CreatedAt})
		if apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("dangling reference: want NOT_FOUND, got %v", err)
		}
	})
}

// A transaction that fails leaves nothing behind (invariant 5).
func TestStore_InTxRollsBackEverything(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		p := newProgramme(t, st, "01900000-0000-7000-8000-000000000001", "A")
		err := st.InTx(ctx, func(ctx context.Context) error {
			if err := st.AppendAudit(ctx, domain.AuditEntry{ProgrammeID: &p.ID, ActorID: "system:test", Action: "x",
				TargetType: "programme", TargetID: p.ID, OccurredAt: p.CreatedAt}); err != nil {
				return err
			}
			// Fails: same name.
			return st.CreateProgramme(ctx, domain.Programme{ID: "01900000-0000-7000-8000-000000000002", Name: "A",
				Preset: domain.PresetConnectToLearn, Settings: p.Settings, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}, nil)
		})
		if apperr.CodeOf(err) != apperr.Conflict {
			t.Fatalf("want CONFLICT, got %v", err)
		}
		es, err := st.AuditEntries(ctx, p.ID, nil, 0, 10)
		if err != nil || len(es) != 0 {
			t.Fatalf("audit entry survived a rolled-back transaction: %+v %v", es, err)
		}
	})
}

// CTL-12, GEN-2: the audit log is append-only at the database level.
func TestAudit_CTL12_AppendOnly(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		p := newProgramme(t, st, "01900000-0000-7000-8000-000000000001", "A")
		if err := st.AppendAudit(ctx, domain.AuditEntry{ProgrammeID: &p.ID, ActorID: "system:test", Action: "x",
			TargetType: "programme", TargetID: p.ID, OccurredAt: p.CreatedAt}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.SQL().Exec(`UPDATE audit_entries SET reason = 'rewritten'`); err == nil {
			t.Fatal("UPDATE of audit_entries succeeded")
		}
		if _, err := st.SQL().Exec(`DELETE FROM audit_entries`); err == nil {
			t.Fatal("DELETE of audit_entries succeeded")
		}
		es, _ := st.AuditEntries(ctx, p.ID, nil, 0, 10)
		if len(es) != 1 || es[0].Reason != "" {
			t.Fatalf("audit entry changed: %+v", es)
		}
	})
}

// GEN-2 with CTL-12: the one change the audit log takes is blanking a reason,
// and only inside the erasure of the learner the entry concerns; nothing else
// about an entry can be rewritten, and TRUNCATE is refused (PostgreSQL; SQLite
// has no TRUNCATE, and its DELETE trigger refuses the nearest thing).
func TestAudit_GEN2_ReasonBlankedOnlyInsideTheLearnersErasure(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		p := newProgramme(t, st, "01900000-0000-7000-8000-000000000001", "A")
		now := p.CreatedAt
		org := domain.Organisation{ID: "01900000-0000-7000-8000-0000000000b1", ProgrammeID: p.ID, Name: "Org", Kind: "COUNCIL",
			Status: domain.OrgAdmitted, CreatedAt: now}
		if err := st.CreateOrganisation(ctx, org); err != nil {
			t.Fatal(err)
		}
		mk := func(id, email string) {
			l := domain.Learner{ID: id, ProgrammeID: p.ID, OrganisationID: org.ID, Email: &email, Status: domain.StatusActive,
				Version: 1, CreatedAt: now, UpdatedAt: now}
			if err := st.CreateLearner(ctx, l); err != nil {
				t.Fatal(err)
			}
			if err := st.AppendAudit(ctx, domain.AuditEntry{ProgrammeID: &p.ID, ActorID: "usr_1", Action: "learner.leaver",
				TargetType: "learner", TargetID: id, Reason: "named person left", OccurredAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		jane, john := "01900000-0000-7000-8000-0000000000aa", "01900000-0000-7000-8000-0000000000ab"
		mk(jane, "jane@example.gov.uk")
		mk(john, "john@example.gov.uk")
		for _, q := range []string{
			`UPDATE audit_entries SET reason = '', action = 'x'`,
			`UPDATE audit_entries SET reason = '', actor_id = 'someone-else'`,
			`UPDATE audit_entries SET reason = 'rewritten'`,
			// Neither learner is erased: no reason may be blanked.
			`UPDATE audit_entries SET reason = ''`,
		} {
			if _, err := st.SQL().Exec(q); err == nil {
				t.Fatalf("%s succeeded", q)
			}
		}
		if st.Dialect() == migrations.Postgres {
			if _, err := st.SQL().Exec(`TRUNCATE audit_entries`); err == nil {
				t.Fatal("TRUNCATE of audit_entries succeeded")
			}
		}
		if _, err := st.SQL().Exec(`DELETE FROM audit_entries`); err == nil {
			t.Fatal("DELETE of audit_entries succeeded")
		}
		// Jane's erasure blanks the reasons about her, in its transaction.
		if err := st.InTx(ctx, func(ctx context.Context) error {
			_, err := st.EraseLearners(ctx, []string{jane}, domain.BulkErase, now.Add(time.Hour), nil)
			return err
		}); err != nil {
			t.Fatalf("erasure: %v", err)
		}
		es, _ := st.AuditEntries(ctx, p.ID, nil, 0, 10)
		reasons := map[string]string{}
		for _, e := range es {
			reasons[e.TargetID] = e.Reason
		}
		if len(es) != 2 || reasons[jane] != "" || reasons[john] != "named person left" {
			t.Fatalf("entries after Jane's erasure: %+v", es)
		}
		// John is not erased: his entry's reason still cannot be blanked.
		if _, err := st.SQL().Exec(testkit.Rebind(st.Dialect(), `UPDATE audit_entries SET reason = '' WHERE target_id = ?`), john); err == nil {
			t.Fatal("blanking the reason of a learner who is not erased succeeded")
		}
	})
}
