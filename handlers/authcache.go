package handlers

import (
	"sync"
	"time"

	"github.com/hookd/hookd/store"
)

// AuthCacheTTL is how long a successful API-key lookup is reused. Deleting a
// key through this process takes effect at once; through another process,
// within this time.
const AuthCacheTTL = time.Second

// authCacheMax bounds the cache; past it the cache starts over.
const authCacheMax = 10000

// authCache remembers recently authenticated keys by hash so that a busy
// client does not cost a database round trip per request. Only successes
// are cached: a new key works at once.
type authCache struct {
	mu sync.Mutex
	m  map[string]authEntry
}

type authEntry struct {
	key   store.APIKey
	until time.Time
}

func (c *authCache) get(hash string, now time.Time) (store.APIKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[hash]
	if !ok || now.After(e.until) {
		return store.APIKey{}, false
	}
	return e.key, true
}

func (c *authCache) put(hash string, k store.APIKey, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= authCacheMax {
		c.m = map[string]authEntry{}
	}
	c.m[hash] = authEntry{key: k, until: now.Add(AuthCacheTTL)}
}

// forget drops a deleted key.
func (c *authCache) forget(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.m {
		if e.key.ID == keyID {
			delete(c.m, h)
		}
	}
}
