// Package ratelimit counts requests against per-key limits in the memory of
// one process. hookd uses it for the API rate limits of each project and
// for failed authentication per client address; the counts are not shared
// between processes (N processes behind a load balancer allow up to N
// times a limit in all).
//
// A limit of N allows a burst of N requests and refills at N per Window —
// a token bucket, kept in the equivalent GCRA form: one "theoretical
// arrival time" per key, so a key costs a map entry and a time.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Window is the period limits are expressed over: a limit of N allows N
// requests per Window.
const Window = time.Minute

// DefaultMaxKeys bounds the keys a Limiter made with New(0) holds.
const DefaultMaxKeys = 100_000

// Limiter holds one bucket per key. It is safe for concurrent use; the zero
// value is ready to use and holds at most DefaultMaxKeys keys. The caller
// passes the time to every call, so tests control the clock.
//
// Memory stays bounded: a key whose bucket has refilled completely is the
// same as a key never seen and is dropped by a sweep that runs at most once
// per Window; and when MaxKeys keys are held at once even after a sweep
// (a flood of distinct keys within one Window), arbitrary keys are dropped
// — those start again with a full bucket.
type Limiter struct {
	mu        sync.Mutex
	tat       map[string]time.Time // when the key's bucket is full again, plus one interval
	maxKeys   int
	nextSweep time.Time
}

// New returns a Limiter holding at most maxKeys keys (0 means
// DefaultMaxKeys).
func New(maxKeys int) *Limiter {
	return &Limiter{maxKeys: maxKeys}
}

// Allow takes one request for key under a limit of perWindow requests per
// Window. It returns true if the request is within the limit, or false and
// how long until the next request for key would be (nothing is taken then).
// perWindow <= 0 means unlimited. A key's limit may change between calls;
// the new one applies from then on.
func (l *Limiter) Allow(key string, perWindow int, now time.Time) (bool, time.Duration) {
	return l.take(key, perWindow, 1, now, true)
}

// AllowN takes n requests at once (all or none), as Allow takes one; the
// wait is until all n would be allowed. More than perWindow are never
// allowed.
func (l *Limiter) AllowN(key string, perWindow, n int, now time.Time) (bool, time.Duration) {
	return l.take(key, perWindow, max(n, 1), now, true)
}

// Check reports what Allow would answer now, without taking a request.
func (l *Limiter) Check(key string, perWindow int, now time.Time) (bool, time.Duration) {
	return l.take(key, perWindow, 1, now, false)
}

// Len is how many keys the limiter holds (for tests and metrics).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tat)
}

func (l *Limiter) take(key string, perWindow, n int, now time.Time, commit bool) (bool, time.Duration) {
	if perWindow <= 0 {
		return true, 0
	}
	interval := Window / time.Duration(perWindow) // one request's share of the window
	if interval <= 0 {
		interval = 1
	}
	span := interval * time.Duration(perWindow) // the whole burst; Window up to rounding
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tat == nil {
		l.tat = map[string]time.Time{}
	}
	l.sweep(now)
	t, ok := l.tat[key]
	if !ok || t.Before(now) {
		t = now
	}
	// A TAT lies at most the whole burst ahead, unless the clock went back:
	// then it is pulled back (and kept so), and the key waits at most one
	// interval instead of for the clock to catch up.
	if limit := now.Add(span); t.After(limit) {
		t = limit
		if commit {
			l.tat[key] = t
		}
	}
	next := t.Add(interval * time.Duration(n))
	if over := next.Sub(now) - span; over > 0 {
		return false, over
	}
	if commit {
		if !ok && len(l.tat) >= l.capacity() {
			l.makeRoom(now)
		}
		l.tat[key] = next
	}
	return true, 0
}

// capacity is how many keys l may hold.
func (l *Limiter) capacity() int {
	if l.maxKeys <= 0 {
		return DefaultMaxKeys
	}
	return l.maxKeys
}

// sweep drops the keys whose buckets are full, at most once per Window.
func (l *Limiter) sweep(now time.Time) {
	if now.Before(l.nextSweep) {
		return
	}
	l.nextSweep = now.Add(Window)
	for k, t := range l.tat {
		if !t.After(now) {
			delete(l.tat, k)
		}
	}
}

// makeRoom runs when the map is full: it drops the idle keys and, if that
// leaves more than nine tenths of maxKeys, arbitrary active keys (Go's map
// order) down to that, so the next sweep is at least maxKeys/10 inserts
// away.
func (l *Limiter) makeRoom(now time.Time) {
	l.nextSweep = time.Time{}
	l.sweep(now)
	keep := l.capacity() - max(1, l.capacity()/10)
	for k := range l.tat {
		if len(l.tat) <= keep {
			break
		}
		delete(l.tat, k)
	}
}

// RetryAfterSeconds turns a wait into a Retry-After value: whole seconds,
// rounded up, at least 1.
func RetryAfterSeconds(wait time.Duration) int {
	if wait <= 0 {
		return 1
	}
	s := (wait + time.Second - 1) / time.Second
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(s)
}
