// Package migrations holds the schema as plain-SQL goose migrations, one set per
// dialect, embedded in the binary so a single file is all a deployment needs.
package migrations

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Dialect is "postgres" or "sqlite".
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

func provider(db *sql.DB, d Dialect) (*goose.Provider, error) {
	sub, err := fs.Sub(files, string(d))
	if err != nil {
		return nil, err
	}
	if d == SQLite {
		return goose.NewProvider(goose.DialectSQLite3, db, sub)
	}
	// Several replicas may start at once with ROLLCALL_MIGRATE on: a session
	// advisory lock makes one migrate while the others wait.
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
}

// Up applies every pending migration.
func Up(ctx context.Context, db *sql.DB, d Dialect) error {
	p, err := provider(db, d)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// Down rolls back the latest migration; DownTo(0) rolls back all.
func Down(ctx context.Context, db *sql.DB, d Dialect) error {
	p, err := provider(db, d)
	if err != nil {
		return err
	}
	_, err = p.Down(ctx)
	return err
}

// DownTo rolls back to the given version (0: empty schema).
func DownTo(ctx context.Context, db *sql.DB, d Dialect, version int64) error {
	p, err := provider(db, d)
	if err != nil {
		return err
	}
	_, err = p.DownTo(ctx, version)
	return err
}

// State is one migration's status.
type State struct {
	Version int64
	Source  string
	Applied bool
}

// Status lists every known migration and whether it is applied.
func Status(ctx context.Context, db *sql.DB, d Dialect) ([]State, error) {
	p, err := provider(db, d)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]State, 0, len(st))
	for _, s := range st {
		out = append(out, State{Version: s.Source.Version, Source: s.Source.Path, Applied: s.State == goose.StateApplied})
	}
	return out, nil
}

// Current reports whether every migration is applied (for /readyz).
func Current(ctx context.Context, db *sql.DB, d Dialect) error {
	p, err := provider(db, d)
	if err != nil {
		return err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return err
	}
	if pending {
		return fmt.Errorf("migrations pending")
	}
	return nil
}

// Fingerprint identifies the schema a dialect's migrations build (tests name
// template databases after it).
func Fingerprint(d Dialect) string {
	h := sha256.New()
	_ = fs.WalkDir(files, string(d), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			b, _ := files.ReadFile(p)
			h.Write([]byte(p))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16]
}
