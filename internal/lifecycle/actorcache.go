package lifecycle

import (
	"sync"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// actorCacheTTL bounds how long an identity's grants are trusted without
// reading them again. On this replica a grant or revocation takes effect at
// once (the store's AuthGeneration moves); on another replica of the same
// database, within this time.
const actorCacheTTL = 10 * time.Second

// actorCacheMax bounds the cache; when full it starts again.
const actorCacheMax = 20000

// actorCache remembers, per identity, the grants loadActor read, so a page
// does not pay a grants lookup before its own statements. Entries are valid while the store's AuthGeneration is
// the one they were read at and for actorCacheTTL.
type actorCache struct {
	mu sync.RWMutex
	m  map[string]actorEntry
}

type actorEntry struct {
	gen    uint64
	at     time.Time
	grants []domain.RoleGrant
}

func identityCacheKey(id domain.Identity) string { return id.Issuer + "\x00" + id.Subject }

func (c *actorCache) get(key string, gen uint64, now time.Time) (actorEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || e.gen != gen || now.Sub(e.at) >= actorCacheTTL || now.Before(e.at) {
		return actorEntry{}, false
	}
	return e, true
}

func (c *actorCache) put(key string, e actorEntry) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= actorCacheMax {
		c.m = make(map[string]actorEntry)
	}
	c.m[key] = e
	c.mu.Unlock()
}
