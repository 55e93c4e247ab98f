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
	mu  sync.Mutex
	m   map[string]authEntry
	gen uint64 // bumped by forget: a lookup that raced a delete is not stored
}

type authEntry struct {
	key   store.APIKey
	until time.Time
}

// get returns a cached key, or false and the generation to pass to put.
func (c *authCache) get(hash string, now time.Time) (store.APIKey, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[hash]
	if !ok || now.After(e.until) {
		return store.APIKey{}, c.gen, false
	}
	return e.key, c.gen, true
}

// put stores a key read from the database, unless a key was deleted since
// the lookup began (gen changed): that read may be of the deleted key.
func (c *authCache) put(hash string, k store.APIKey, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) >= authCacheMax {
		c.m = map[string]authEntry{}
	}
	c.m[hash] = authEntry{key: k, until: now.Add(AuthCacheTTL)}
}

// forget drops a deleted key.
func (c *authCache) forget(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for h, e := range c.m {
		if e.key.ID == keyID {
			delete(c.m, h)
		}
	}
}
