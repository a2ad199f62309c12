// Package testkit gives tests real parts: a fresh migrated database per test
// on each dialect (a template database on PostgreSQL, so it is fast), a real
// OIDC issuer running in-process, and an API harness over HTTP.
package testkit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the admin connection for creating databases

	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/migrations"
)

// Dialects are the databases every contract test runs on.
var Dialects = []migrations.Dialect{migrations.SQLite, migrations.Postgres}

// ForEachDialect runs fn as a subtest per dialect, each with a fresh database.
func ForEachDialect(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(string(d), func(t *testing.T) {
			fn(t, NewStore(t, d, store.Options{}))
		})
	}
}

// NewStore opens a fresh, migrated database of the dialect for this test.
func NewStore(t testing.TB, d migrations.Dialect, opt store.Options) *store.Store {
	t.Helper()
	return OpenStore(t, NewDatabaseURL(t, d), opt)
}

// OpenStore opens the database at dsn for this test and closes it when the
// test ends. The test then fails if the store ran a read of gorm's Row
// processor outside a transaction on the caller's context
// (store.ReadsOnRequestContext): its connection would keep the request.
func OpenStore(t testing.TB, dsn string, opt store.Options) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, opt)
	if err != nil {
		t.Fatalf("open the database: %v", err)
	}
	t.Cleanup(func() {
		if n := st.ReadsOnRequestContext(); n > 0 {
			t.Errorf("%d read(s) of gorm's Row processor ran outside a transaction on the caller's context, which the connection then keeps: read through the store's queryRows", n)
		}
		_ = st.Close()
	})
	return st
}

// NewDatabaseURL creates a fresh migrated database and returns its URL.
func NewDatabaseURL(t testing.TB, d migrations.Dialect) string {
	t.Helper()
	if d == migrations.SQLite {
		return newSQLite(t)
	}
	return newPostgres(t)
}

var (
	sqliteOnce sync.Once
	sqliteTmpl []byte
	sqliteErr  error
)

// newSQLite copies a migrated template file: faster than migrating each time.
func newSQLite(t testing.TB) string {
	sqliteOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rollcall-tmpl")
		if err != nil {
			sqliteErr = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "tmpl.db")
		st, err := store.Open(context.Background(), "sqlite:"+path, store.Options{})
		if err != nil {
			sqliteErr = err
			return
		}
		if err := st.Migrate(context.Background()); err != nil {
			sqliteErr = err
			return
		}
		// Fold the WAL into the main file so one file is the whole database.
		if _, err := st.SQL().Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			sqliteErr = err
			return
		}
		st.Close()
		sqliteTmpl, sqliteErr = os.ReadFile(path)
	})
	if sqliteErr != nil {
		t.Fatalf("sqlite template: %v", sqliteErr)
	}
	path := filepath.Join(t.TempDir(), "rollcall.db")
	if err := os.WriteFile(path, sqliteTmpl, 0o600); err != nil {
		t.Fatal(err)
	}
	return "sqlite:" + path
}

// PostgresURL is the server tests use: ROLLCALL_TEST_DATABASE_URL or the local default.
func PostgresURL() string {
	if u := os.Getenv("ROLLCALL_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

const howToGetPostgres = `PostgreSQL is required for the test suite and was not reachable.
Start the local cluster (pg_ctlcluster 15 main start), or install one
(apt-get install postgresql), or point ROLLCALL_TEST_DATABASE_URL at a server
where the user may create databases, e.g.
  ROLLCALL_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable`

var (
	pgOnce sync.Once
	pgTmpl string
	pgErr  error
	pgSeq  atomic.Int64
)

func newPostgres(t testing.TB) string {
	admin, err := sql.Open("pgx", PostgresURL())
	if err != nil {
		t.Fatalf("%v\n%s", err, howToGetPostgres)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		t.Fatalf("%v\n%s", err, howToGetPostgres)
	}
	pgOnce.Do(func() { pgTmpl, pgErr = ensureTemplate(ctx, admin) })
	if pgErr != nil {
		t.Fatalf("postgres template: %v", pgErr)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("rollcall_test_%d_%d_%s", os.Getpid(), pgSeq.Add(1), hex.EncodeToString(rnd[:]))
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name+` TEMPLATE `+pgTmpl); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", PostgresURL())
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
	})
	return withDatabase(PostgresURL(), name)
}

// ensureTemplate builds a migrated template named after the migrations' hash,
// once per schema version across all test processes (an advisory lock
// serialises them), built under a temporary name and renamed when complete.
func ensureTemplate(ctx context.Context, admin *sql.DB) (string, error) {
	name := "rollcall_tmpl_" + migrations.Fingerprint(migrations.Postgres)
	conn, err := admin.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(727272)`); err != nil {
		return "", err
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(727272)`)
	var exists bool
	if err := conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	// Templates of other schema versions are left alone: another checkout
	// (a branch, a worktree) may be running its tests from one right now.
	// `make test-clean` drops them all.
	building := name + "_building"
	if _, err := conn.ExecContext(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`); err != nil {
		return "", err
	}
	if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+building); err != nil {
		return "", err
	}
	st, err := store.Open(ctx, withDatabase(PostgresURL(), building), store.Options{})
	if err != nil {
		return "", err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return "", err
	}
	st.Close()
	if _, err := conn.ExecContext(ctx, `ALTER DATABASE `+building+` RENAME TO `+name); err != nil {
		return "", err
	}
	return name, nil
}

func withDatabase(raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + db
	return u.String()
}

// ConnectionSwitch returns allow, which lets the database db is connected to
// accept new connections or not; refusing also ends the connections it has,
// so the next statement meets a database that cannot be reached. The
// database accepts connections again when the test ends.
func ConnectionSwitch(t testing.TB, db *sql.DB) (allow func(ok bool)) {
	t.Helper()
	var name string
	if err := db.QueryRow(`SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(fmt.Sprintf(`ALTER DATABASE %q WITH ALLOW_CONNECTIONS true`, name))
		_ = admin.Close()
	})
	return func(ok bool) {
		t.Helper()
		if _, err := admin.Exec(fmt.Sprintf(`ALTER DATABASE %q WITH ALLOW_CONNECTIONS %t`, name, ok)); err != nil {
			t.Fatal(err)
		}
		if !ok {
			if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
				t.Fatal(err)
			}
		}
	}
}
