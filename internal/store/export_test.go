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

// ReadBatch exposes readBatch to the store's external tests: each query
// reads one integer column, whose values come back in order.
func (s *Store) ReadBatch(ctx context.Context, queries ...string) ([]int64, error) {
	var out []int64
	var v int64
	reads := make([]batchRead, len(queries))
	for i, q := range queries {
		reads[i] = batchRead{query: q, dest: []any{&v}, row: func() { out = append(out, v) }}
	}
	err := s.readBatch(ctx, reads)
	return out, err
}

// ScanOnCallersContext reads through gorm's Row processor as Raw(…).Scan
// does, on ctx: what queryRows is there to avoid outside a transaction.
func (s *Store) ScanOnCallersContext(ctx context.Context) error {
	var n int
	return s.db(ctx).Raw(`SELECT 1`).Scan(&n).Error
}
