package migrations_test

import (
	"context"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// Up, down to zero and up again must work on both dialects, so every Down
// section is real and a rollback in production is possible.
func TestMigrations_UpDownUp(t *testing.T) {
	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			st := testkit.NewStore(t, d, store.Options{}) // already migrated up
			db := st.SQL()
			if err := migrations.Current(ctx, db, d); err != nil {
				t.Fatalf("fresh database not current: %v", err)
			}
			if err := migrations.DownTo(ctx, db, d, 0); err != nil {
				t.Fatalf("down to 0: %v", err)
			}
			states, err := migrations.Status(ctx, db, d)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range states {
				if s.Applied {
					t.Fatalf("migration %d still applied after down to 0", s.Version)
				}
			}
			if n := countTables(t, st, d); n != 0 {
				t.Fatalf("down to 0 left %d application tables", n)
			}
			if err := migrations.Current(ctx, db, d); err == nil {
				t.Fatal("Current reported an empty schema as current")
			}
			if err := migrations.Up(ctx, db, d); err != nil {
				t.Fatalf("up again: %v", err)
			}
			if err := migrations.Current(ctx, db, d); err != nil {
				t.Fatalf("not current after up: %v", err)
			}
			if n := countTables(t, st, d); n < 10 {
				t.Fatalf("up created only %d tables", n)
			}
		})
	}
}

func countTables(t *testing.T, st *store.Store, d migrations.Dialect) int {
	t.Helper()
	q := `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name NOT LIKE 'goose%'`
	if d == migrations.SQLite {
		q = `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'goose%' AND name NOT LIKE 'sqlite_%'`
	}
	var n int
	if err := st.SQL().QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
