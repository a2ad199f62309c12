package lifecycle

import (
	"sync"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// authCacheTTL bounds how long what an identity may do (its grants) and who
// an API key is are trusted without reading them again. On this replica a
// grant, a revocation or a revoked key takes effect at once (the store's
// AuthGeneration moves); on another replica of the same database, within
// this time.
const authCacheTTL = 10 * time.Second

// authCacheMax bounds a cache; when full it starts again.
const authCacheMax = 20000

// authCache remembers, per key, what authentication read, so a page does
// not pay lookups before its own statements: an identity's grants
// (loadActor), an API key's identity (APIKeyIdentity). Entries are valid
// while the store's AuthGeneration is the one they were read at, read
// before the rows, and for authCacheTTL.
type authCache[V any] struct {
	mu sync.RWMutex
	m  map[string]authEntry[V]
}

type authEntry[V any] struct {
	gen uint64
	at  time.Time
	v   V
}

// actorCache holds identities' grants.
type actorCache = authCache[[]domain.RoleGrant]

func identityCacheKey(id domain.Identity) string { return id.Issuer + "\x00" + id.Subject }

func (c *authCache[V]) get(key string, gen uint64, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || e.gen != gen || now.Sub(e.at) >= authCacheTTL || now.Before(e.at) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *authCache[V]) put(key string, gen uint64, now time.Time, v V) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= authCacheMax {
		c.m = make(map[string]authEntry[V])
	}
	c.m[key] = authEntry[V]{gen: gen, at: now, v: v}
	c.mu.Unlock()
}
