package handlers

import (
	"sync"
	"time"

	"github.com/hookd/hookd/store"
)

// AuthCacheTTL is how long a successful API-key lookup (the key and its
// project's rate limits) is reused. Deleting a key through this process
// takes effect at once; through another process, within this time. A
// changed project rate limit takes effect within this time too.
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

// principal is who authenticated: the API key and its project's rate
// limits, read together and cached together, so a changed limit applies
// within AuthCacheTTL.
type principal struct {
	key    store.APIKey
	limits store.ProjectLimits
}

type authEntry struct {
	principal
	until time.Time
}

// get returns a cached key, or false and the generation to pass to put.
func (c *authCache) get(hash string, now time.Time) (principal, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[hash]
	if !ok || now.After(e.until) {
		return principal{}, c.gen, false
	}
	return e.principal, c.gen, true
}

// put stores a key read from the database, unless a key was deleted since
// the lookup began (gen changed): that read may be of the deleted key.
func (c *authCache) put(hash string, k principal, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) >= authCacheMax {
		c.m = map[string]authEntry{}
	}
	c.m[hash] = authEntry{principal: k, until: now.Add(AuthCacheTTL)}
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
