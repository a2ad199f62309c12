package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// WithPgx exposes withPgx to the store's external tests.
func (s *Store) WithPgx(ctx context.Context, fn func(ctx context.Context, c *pgx.Conn) error) error {
	return s.withPgx(ctx, fn)
}

// Later exposes later (pgtx.go) to the store's external tests.
func (s *Store) Later(ctx context.Context, query string, args ...any) bool {
	return s.later(ctx, query, args...)
}
