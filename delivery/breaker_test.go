package delivery

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/store"
)

// The breaker's policy on a clock of the test's own: no database, no
// waiting. (TestEndpointHealth in store covers how its changes are kept;
// the engine tests cover them end to end.)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fail applies n failures at now to h as the store would keep them.
func fail(b Breaker, h store.EndpointHealth, n int, now time.Time) (store.EndpointHealth, store.HealthChange) {
	var c store.HealthChange
	for range n {
		c = b.failure(h, now, "HTTP 500", now)
		h = store.EndpointHealth{ConsecutiveFailures: c.ConsecutiveFailures, FailingSince: c.FailingSince,
			ProbeAfter: c.ProbeAfter, ProbeLeaseUntil: c.ProbeLeaseUntil, Live: h.Live && c.Disable == ""}
	}
	return h, c
}

func TestBreakerCountRule(t *testing.T) {
	t.Parallel()
	b := Breaker{DisableAfterFailures: 4, DisableAfter: 5 * 24 * time.Hour, ProbeAfterFailures: 2, ProbeBackoff: time.Hour, ProbeBackoffMax: 3 * time.Hour}
	h := store.EndpointHealth{Live: true}

	ok, _, pc := b.acquire(h, time.Minute, t0)
	require.True(t, ok, "below the probe threshold every attempt may start")
	require.Nil(t, pc, "and nothing is written")

	h, c := fail(b, h, 1, t0)
	require.Equal(t, 1, c.ConsecutiveFailures)
	require.Nil(t, c.ProbeAfter, "one failure does not space attempts")
	require.True(t, t0.Equal(*c.FailingSince))

	h, c = fail(b, h, 2, t0.Add(time.Minute))
	require.Equal(t, 3, c.ConsecutiveFailures)
	require.True(t, t0.Equal(*c.FailingSince), "the run started at the first failure")
	require.Equal(t, t0.Add(time.Minute+2*time.Hour), *c.ProbeAfter, "the wait after the 3rd failure is 1 h doubled once")
	require.Empty(t, c.Disable)

	ok, wait, pc := b.acquire(h, time.Minute, t0.Add(time.Hour))
	require.False(t, ok, "nobody starts before the wait ends")
	require.Equal(t, time.Hour+time.Minute, wait, "the rest of the wait")
	require.Nil(t, pc)

	_, c = fail(b, h, 1, t0.Add(2*time.Hour))
	require.Equal(t, 4, c.ConsecutiveFailures)
	require.Contains(t, c.Disable, "4 failed attempts in a row since "+t0.Format(time.RFC3339))
	require.Contains(t, c.Disable, "last error: HTTP 500")

	h.Live = false
	_, c = fail(b, h, 1, t0.Add(2*time.Hour))
	require.Empty(t, c.Disable, "a disabled or deleted endpoint is not disabled again")
}

func TestBreakerTimeRule(t *testing.T) {
	t.Parallel()
	b := Breaker{DisableAfterFailures: 100, DisableAfter: 5 * 24 * time.Hour, ProbeAfterFailures: 3, ProbeBackoff: time.Second, ProbeBackoffMax: time.Minute}
	c := b.failure(store.EndpointHealth{Live: true}, t0.Add(-6*24*time.Hour), "connection refused", t0)
	require.Equal(t, 1, c.ConsecutiveFailures)
	require.NotEmpty(t, c.Disable, "failing for six days disables at once")

	since := t0.Add(-4 * 24 * time.Hour)
	c = b.failure(store.EndpointHealth{Live: true, ConsecutiveFailures: 5, FailingSince: &since}, t0, "x", t0)
	require.Empty(t, c.Disable, "four days is not five")
	c = b.failure(store.EndpointHealth{Live: true, ConsecutiveFailures: 5, FailingSince: &since}, t0, "x", t0.Add(24*time.Hour))
	require.NotEmpty(t, c.Disable, "the run's start counts, not the attempt's")
}

func TestBreakerRulesOff(t *testing.T) {
	t.Parallel()
	b := Breaker{DisableAfterFailures: -1, DisableAfter: -1, ProbeAfterFailures: -1}.withDefaults()
	h, c := fail(b, store.EndpointHealth{Live: true, FailingSince: new(t0.Add(-100 * 24 * time.Hour))}, 1000, t0)
	require.Equal(t, 1000, c.ConsecutiveFailures)
	require.Empty(t, c.Disable, "negative rules never disable")
	require.Nil(t, c.ProbeAfter, "nor space attempts")
	ok, _, _ := b.acquire(h, time.Minute, t0)
	require.True(t, ok)
}

func TestBreakerBackoffDoublesToItsCap(t *testing.T) {
	t.Parallel()
	b := DefaultBreaker() // from the 3rd failure: 1 s, doubling, to 5 min
	var got []time.Duration
	for n := 3; n <= 13; n++ {
		got = append(got, b.backoff(n))
	}
	s := time.Second
	require.Equal(t, []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 64 * s, 128 * s, 256 * s, 5 * time.Minute, 5 * time.Minute}, got)
}

func TestBreakerOneProbeAtATime(t *testing.T) {
	t.Parallel()
	b := Breaker{DisableAfterFailures: -1, DisableAfter: -1, ProbeAfterFailures: 2, ProbeBackoff: time.Second, ProbeBackoffMax: time.Minute}
	h, _ := fail(b, store.EndpointHealth{Live: true}, 2, t0)
	ok, wait, _ := b.acquire(h, time.Minute, t0)
	require.False(t, ok)
	require.Equal(t, time.Second, wait)

	// The wait is over: one attempt takes the probe for at most the hold,
	// the run of failures unchanged.
	now := t0.Add(time.Second)
	ok, _, pc := b.acquire(h, time.Minute, now)
	require.True(t, ok)
	require.NotNil(t, pc)
	require.Equal(t, now.Add(time.Minute), *pc.ProbeLeaseUntil)
	require.Equal(t, 2, pc.ConsecutiveFailures)
	require.Equal(t, h.FailingSince, pc.FailingSince)
	h.ProbeLeaseUntil = pc.ProbeLeaseUntil

	ok, wait, pc = b.acquire(h, time.Minute, now.Add(10*time.Second))
	require.False(t, ok, "a second probe while the first is in flight")
	require.Equal(t, time.Second, wait, "waiters ask again soon: the probe may answer any moment")
	require.Nil(t, pc)

	ok, _, _ = b.acquire(h, time.Minute, now.Add(time.Minute))
	require.True(t, ok, "a probe whose process died is taken over once its hold ends")

	// Its failure ends the probe and spaces the next one out further.
	_, c := fail(b, h, 1, now.Add(2*time.Second))
	require.Nil(t, c.ProbeLeaseUntil)
	require.Equal(t, now.Add(4*time.Second), *c.ProbeAfter)
}

func TestTruncateKeepsUTF8Whole(t *testing.T) {
	t.Parallel()
	s := strings.Repeat("é", 200) // 2 bytes each
	got := truncate(s, 301)
	require.Equal(t, strings.Repeat("é", 150)+"…", got)
	require.Equal(t, "short", truncate("short", 300))
}
