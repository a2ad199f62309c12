package store

import (
	"context"
	"sync"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"gorm.io/gorm"
)

// refCacheTTL bounds how long a cached programme or identity provider is
// trusted. A change made through this process is seen at once (the cache's
// generation moves); a change made by another replica of the same database
// within this time, as for grants (lifecycle's actor cache).
const refCacheTTL = 10 * time.Second

// refCacheMax bounds each map; when full it starts again.
const refCacheMax = 10000

// refCache remembers the rows nearly every request reads and almost none
// changes: the programme a request names (its rules and contract end), the
// identity provider of the caller's issuer (the sign-in step), and the
// organisations, access groups and policy versions a page of learners points
// at, and an organisation's access groups (a first sign-in's default group).
// Any write to those tables through the store drops the whole cache
// (refChanged: CreateProgramme, UpdateProgrammeSettings, WarnContractEnd,
// the providers', CreateOrganisation, SetOrganisationStatus,
// CreateAccessGroup, CreatePolicyVersion, ActivatePolicyVersion). Reads
// inside a transaction never use it: what a transaction decides on, it
// reads itself (and locks where it must). Nor do the reads that admit a
// learner or cannot be undone: GetOrganisation is not cached, every path
// that writes a learner into an organisation re-reads it in its transaction
// under a shared lock (lifecycle's stillAdmitted, CTL-9), and the retention
// sweep lists its programme from the database.
type refCache struct {
	mu            sync.RWMutex
	gen           uint64
	programmes    map[string]refEntry[domain.Programme]
	providers     map[string]refEntry[providerLookup]
	organisations map[string]refEntry[domain.Organisation]
	groups        map[string]refEntry[domain.AccessGroup]
	orgGroups     map[string]refEntry[[]domain.AccessGroup]
	versions      map[string]refEntry[domain.PolicyVersion]
}

type refEntry[T any] struct {
	gen uint64
	at  time.Time
	v   T
}

// refChanged drops every cached row now and again once the write is
// visible, so no reader keeps a row it read before the commit: inside a
// transaction InTx drops it after the commit; outside one, the caller defers
// the function returned (`defer s.refChanged(ctx)()`), which drops it after
// the statement.
func (s *Store) refChanged(ctx context.Context) (after func()) {
	s.refs.bump()
	if st, ok := ctx.Value(txStateKey{}).(*txState); ok {
		st.refChanged = true
		return func() {}
	}
	return s.refs.bump
}

func (c *refCache) bump() {
	c.mu.Lock()
	c.gen++
	c.programmes, c.providers = nil, nil
	c.organisations, c.groups, c.orgGroups, c.versions = nil, nil, nil, nil
	c.mu.Unlock()
}

func (c *refCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

func refGet[T any](c *refCache, m func() map[string]refEntry[T], key string, now time.Time) (T, bool) {
	c.mu.RLock()
	e, ok := m()[key]
	gen := c.gen
	c.mu.RUnlock()
	if !ok || e.gen != gen || now.Sub(e.at) >= refCacheTTL || now.Before(e.at) {
		var zero T
		return zero, false
	}
	return e.v, true
}

// refPut stores v read at generation gen, unless the cache moved on since.
func refPut[T any](c *refCache, m func() *map[string]refEntry[T], key string, gen uint64, now time.Time, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	mp := m()
	if *mp == nil || len(*mp) >= refCacheMax {
		*mp = make(map[string]refEntry[T])
	}
	(*mp)[key] = refEntry[T]{gen: gen, at: now, v: v}
}

func (s *Store) inTx(ctx context.Context) bool {
	_, ok := ctx.Value(txKey{}).(*gorm.DB)
	return ok
}

// cachedProgramme reads a programme through the cache outside transactions.
func (s *Store) cachedProgramme(ctx context.Context, id string, read func() (domain.Programme, error)) (domain.Programme, error) {
	if s.inTx(ctx) {
		return read()
	}
	now := time.Now()
	if p, ok := refGet(&s.refs, func() map[string]refEntry[domain.Programme] { return s.refs.programmes }, id, now); ok {
		return p, nil
	}
	gen := s.refs.generation()
	p, err := read()
	if err == nil {
		refPut(&s.refs, func() *map[string]refEntry[domain.Programme] { return &s.refs.programmes }, id, gen, now, p)
	}
	return p, err
}

// cachedProvider reads a provider by issuer through the cache outside
// transactions. That an issuer has no provider is cached too (every request
// of an administrator, whose issuer is no learner provider, asks): a
// registration here moves the generation, and one made on another replica is
// seen within refCacheTTL, well inside the 30 s the token verifier trusts its
// own list of issuers (internal/auth).
func (s *Store) cachedProvider(ctx context.Context, issuer string, read func() (domain.IdentityProvider, error)) (domain.IdentityProvider, error) {
	if s.inTx(ctx) {
		return read()
	}
	now := time.Now()
	if p, ok := refGet(&s.refs, func() map[string]refEntry[providerLookup] { return s.refs.providers }, issuer, now); ok {
		if !p.found {
			return domain.IdentityProvider{}, translate(gorm.ErrRecordNotFound)
		}
		return p.p, nil
	}
	gen := s.refs.generation()
	p, err := read()
	if err == nil || apperr.CodeOf(err) == apperr.NotFound {
		refPut(&s.refs, func() *map[string]refEntry[providerLookup] { return &s.refs.providers }, issuer, gen, now, providerLookup{p: p, found: err == nil})
	}
	return p, err
}

type providerLookup struct {
	p     domain.IdentityProvider
	found bool
}

// cachedByIDs reads rows by ID through the cache outside transactions: the
// IDs it holds are answered from it, the others read with one statement
// (read) and remembered. The result's order is not the IDs' order.
func cachedByIDs[T any](s *Store, ctx context.Context, ids []string, m func() *map[string]refEntry[T], idOf func(T) string,
	read func(ids []string) ([]T, error)) ([]T, error) {
	if s.inTx(ctx) {
		return read(ids)
	}
	now := time.Now()
	out := make([]T, 0, len(ids))
	var missing []string
	s.refs.mu.RLock()
	gen := s.refs.gen
	for _, id := range ids {
		if e, ok := (*m())[id]; ok && e.gen == gen && now.Sub(e.at) < refCacheTTL && !now.Before(e.at) {
			out = append(out, e.v)
		} else {
			missing = append(missing, id)
		}
	}
	s.refs.mu.RUnlock()
	if len(missing) == 0 {
		return out, nil
	}
	got, err := read(missing)
	if err != nil {
		return nil, err
	}
	for _, v := range got {
		refPut(&s.refs, m, idOf(v), gen, now, v)
	}
	return append(out, got...), nil
}

// ForgetCachedRows drops the reference cache, so the next reads go to the
// database: for tests that count statements, and for whoever changed these
// tables by hand (SQL, another replica) and cannot wait refCacheTTL.
func (s *Store) ForgetCachedRows() { s.refs.bump() }
