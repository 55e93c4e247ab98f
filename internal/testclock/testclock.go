// Package testclock is a clock for tests: it stands still until the test
// moves it, and is safe for concurrent use.
package testclock

import (
	"sync"
	"time"
)

// Clock is a settable clock. Its zero value reads the zero time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// At returns a Clock reading t.
func At(t time.Time) *Clock { return &Clock{t: t} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d (back, if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
