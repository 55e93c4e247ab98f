package delivery

import (
	"fmt"
	"time"

	"github.com/hookd/hookd/store"
)

// Breaker is the endpoint circuit breaker: it says when an endpoint's run
// of failed attempts disables it and how attempts are spaced out while it
// keeps failing. Its state is each endpoint's store.EndpointHealth, which
// the store changes under a row lock, so every process sharing the database
// applies one breaker to it.
type Breaker struct {
	// DisableAfterFailures disables the endpoint at this many failed
	// attempts in a row; 0 or less never disables on a count.
	DisableAfterFailures int
	// DisableAfter disables the endpoint once it has failed every attempt
	// for this long; 0 or less never disables on time.
	DisableAfter time.Duration
	// ProbeAfterFailures is the run length from which attempts are spaced:
	// one attempt (a probe) at a time, across all processes, then a wait;
	// 0 or less never spaces them.
	ProbeAfterFailures int
	// ProbeBackoff is the wait after the first spaced failure; it doubles
	// with each further one, up to ProbeBackoffMax.
	ProbeBackoff, ProbeBackoffMax time.Duration
}

// DefaultBreaker is the default circuit breaker: attempts to an endpoint
// are spaced from its 3rd failure in a row (one probe at a time, waits from
// 1 s doubling to 5 min), and the endpoint is disabled at 100 failures in a
// row or after failing every attempt for 5 days, whichever comes first.
func DefaultBreaker() Breaker {
	return Breaker{
		DisableAfterFailures: 100,
		DisableAfter:         5 * 24 * time.Hour,
		ProbeAfterFailures:   3,
		ProbeBackoff:         time.Second,
		ProbeBackoffMax:      5 * time.Minute,
	}
}

// withDefaults fills b's zero fields from DefaultBreaker.
func (b Breaker) withDefaults() Breaker {
	d := DefaultBreaker()
	if b.DisableAfterFailures == 0 {
		b.DisableAfterFailures = d.DisableAfterFailures
	}
	if b.DisableAfter == 0 {
		b.DisableAfter = d.DisableAfter
	}
	if b.ProbeAfterFailures == 0 {
		b.ProbeAfterFailures = d.ProbeAfterFailures
	}
	if b.ProbeBackoff <= 0 {
		b.ProbeBackoff = d.ProbeBackoff
	}
	if b.ProbeBackoffMax <= 0 {
		b.ProbeBackoffMax = d.ProbeBackoffMax
	}
	b.ProbeBackoffMax = max(b.ProbeBackoffMax, b.ProbeBackoff)
	return b
}

// spaces reports whether a run of n failures spaces attempts out.
func (b Breaker) spaces(n int) bool { return b.ProbeAfterFailures > 0 && n >= b.ProbeAfterFailures }

// backoff is the wait after the n-th failure in a row (n ≥ ProbeAfterFailures).
func (b Breaker) backoff(n int) time.Duration {
	d := b.ProbeBackoff
	for i := b.ProbeAfterFailures; i < n && d < b.ProbeBackoffMax; i++ {
		d *= 2
	}
	return min(d, b.ProbeBackoffMax)
}

// failure is what one more failed attempt (started at started, ending with
// errText) does to an endpoint in state h at now: it extends the run,
// spaces the next attempt once the run is long enough, ends any probe, and
// disables a live endpoint when a rule says so.
func (b Breaker) failure(h store.EndpointHealth, started time.Time, errText string, now time.Time) store.HealthChange {
	n := h.ConsecutiveFailures + 1
	since := started.UTC()
	if h.FailingSince != nil {
		since = *h.FailingSince
	}
	c := store.HealthChange{ConsecutiveFailures: n, FailingSince: &since}
	if b.spaces(n) {
		next := now.Add(b.backoff(n))
		c.ProbeAfter = &next
	}
	byCount := b.DisableAfterFailures > 0 && n >= b.DisableAfterFailures
	byTime := b.DisableAfter > 0 && now.Sub(since) >= b.DisableAfter
	if h.Live && (byCount || byTime) {
		c.Disable = fmt.Sprintf("disabled by hookd after %d failed attempts in a row since %s; last error: %s",
			n, since.Format(time.RFC3339), truncate(errText, 300))
	}
	return c
}

// acquire decides whether an attempt to an endpoint in state h may start
// at now. While the run of failures is too short to space attempts, every
// attempt may. Otherwise one at a time may, once the spacing wait is over:
// it holds the probe for at most hold (after which another may start,
// should its process die), which change records. When the attempt may not
// start, wait says how long until it should ask again: the rest of the
// spacing wait, or, while a probe is in flight, ProbeBackoff at most (its
// answer may come any moment).
func (b Breaker) acquire(h store.EndpointHealth, hold time.Duration, now time.Time) (ok bool, wait time.Duration, change *store.HealthChange) {
	switch {
	case !b.spaces(h.ConsecutiveFailures):
		return true, 0, nil
	case h.ProbeAfter != nil && h.ProbeAfter.After(now):
		return false, h.ProbeAfter.Sub(now), nil
	case h.ProbeLeaseUntil != nil && h.ProbeLeaseUntil.After(now):
		return false, min(h.ProbeLeaseUntil.Sub(now), b.ProbeBackoff), nil
	}
	until := now.Add(hold)
	return true, 0, &store.HealthChange{ConsecutiveFailures: h.ConsecutiveFailures, FailingSince: h.FailingSince,
		ProbeAfter: h.ProbeAfter, ProbeLeaseUntil: &until}
}

// truncate cuts s to at most n bytes (plus an ellipsis), not inside a
// UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
