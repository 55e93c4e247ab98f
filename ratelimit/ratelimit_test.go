package ratelimit_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hookd/hookd/ratelimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestBurstThenOneRequestPerInterval(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(0)
	for i := range 3 {
		ok, _ := l.Allow("p", 3, t0)
		require.True(t, ok, "request %d of the burst", i+1)
	}
	ok, wait := l.Allow("p", 3, t0)
	require.False(t, ok)
	require.Equal(t, 20*time.Second, wait, "a limit of 3/min refills one every 20s")

	ok, wait = l.Allow("p", 3, t0.Add(19*time.Second))
	require.False(t, ok)
	require.Equal(t, time.Second, wait)
	require.Equal(t, 1, ratelimit.RetryAfterSeconds(wait))

	ok, _ = l.Allow("p", 3, t0.Add(20*time.Second))
	require.True(t, ok, "one request is back after 20s")
	ok, wait = l.Allow("p", 3, t0.Add(20*time.Second))
	require.False(t, ok)
	require.Equal(t, 20*time.Second, wait)

	// A whole idle window refills the whole burst, and no more.
	later := t0.Add(20*time.Second + ratelimit.Window)
	for range 3 {
		ok, _ := l.Allow("p", 3, later)
		require.True(t, ok)
	}
	ok, _ = l.Allow("p", 3, later)
	require.False(t, ok)
}

func TestDefaultSizedLimit(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(0)
	for i := range 1000 {
		ok, _ := l.Allow("p", 1000, t0)
		require.True(t, ok, "request %d", i+1)
	}
	ok, wait := l.Allow("p", 1000, t0)
	require.False(t, ok, "the 1,001st request in a minute")
	require.Equal(t, 60*time.Millisecond, wait)
	require.Equal(t, 1, ratelimit.RetryAfterSeconds(wait))
	ok, _ = l.Allow("p", 1000, t0.Add(60*time.Millisecond))
	require.True(t, ok)
}

func TestKeysAreIndependentAndCheckTakesNothing(t *testing.T) {
	t.Parallel()
	var l ratelimit.Limiter // the zero value works
	ok, _ := l.Allow("a", 1, t0)
	require.True(t, ok)
	ok, wait := l.Check("a", 1, t0)
	require.False(t, ok)
	require.Equal(t, time.Minute, wait)
	for range 5 {
		ok, _ = l.Check("b", 1, t0)
		require.True(t, ok, "Check never uses up b's single request")
	}
	ok, _ = l.Allow("b", 1, t0)
	require.True(t, ok)
	ok, _ = l.Allow("b", 1, t0)
	require.False(t, ok)
}

func TestUnlimitedAndChangedLimits(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(0)
	for range 10_000 {
		ok, _ := l.Allow("p", 0, t0)
		require.True(t, ok)
	}
	require.Zero(t, l.Len(), "unlimited keys hold no state")

	ok, _ := l.Allow("p", 2, t0)
	require.True(t, ok)
	ok, _ = l.Allow("p", 2, t0)
	require.True(t, ok)
	ok, _ = l.Allow("p", 2, t0)
	require.False(t, ok)
	// Raising the limit applies at once: the bucket is now 10 deep with 2
	// taken (the 2 cost 30s each at the old rate, 60s of the 60s window).
	ok, wait := l.Allow("p", 10, t0)
	require.False(t, ok)
	require.Equal(t, 6*time.Second, wait, "at 10/min one request frees up every 6s")
}

func TestIdleKeysAreDroppedAndMemoryIsBounded(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(1000)
	for i := range 500 {
		ok, _ := l.Allow(fmt.Sprint("idle-", i), 10, t0)
		require.True(t, ok)
	}
	require.Equal(t, 500, l.Len())
	// After a window every bucket is full again: the next call sweeps them.
	ok, _ := l.Allow("fresh", 10, t0.Add(ratelimit.Window))
	require.True(t, ok)
	require.Equal(t, 1, l.Len())

	// A flood of distinct keys within one window never holds more than
	// maxKeys.
	for i := range 5000 {
		ok, _ := l.Allow(fmt.Sprint("flood-", i), 10, t0.Add(ratelimit.Window+time.Second))
		require.True(t, ok)
		require.LessOrEqual(t, l.Len(), 1000)
	}
}

func TestConcurrentRequestsNeverExceedTheLimit(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(0)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if ok, _ := l.Allow("p", 250, t0); ok {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 250, allowed.Load())
}

func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	for wait, want := range map[time.Duration]int{
		0:                                     1,
		time.Nanosecond:                       1,
		60 * time.Millisecond:                 1,
		time.Second:                           1,
		time.Second + time.Nanosecond:         2,
		20 * time.Second:                      20,
		19*time.Second + 999*time.Millisecond: 20,
	} {
		require.Equal(t, want, ratelimit.RetryAfterSeconds(wait), wait.String())
	}
}

// BenchmarkAllow measures one rate-limit decision, with parallel callers
// spread over 1,000 keys (projects).
func BenchmarkAllow(b *testing.B) {
	l := ratelimit.New(0)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprint("project-", i)
	}
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(n.Add(1))
		for pb.Next() {
			i++
			l.Allow(keys[i%len(keys)], ratelimit.DefaultMaxKeys, t0)
		}
	})
}

// TestClockGoingBackDoesNotBlock: a clock stepped back (NTP, or a test)
// must not block a key for the size of the step, only for one interval.
func TestClockGoingBackDoesNotBlock(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(0)
	for range 3 {
		ok, _ := l.Allow("p", 3, t0)
		require.True(t, ok)
	}
	back := t0.Add(-24 * time.Hour)
	ok, wait := l.Allow("p", 3, back)
	require.False(t, ok)
	require.Equal(t, 20*time.Second, wait, "one interval, not a day")
	ok, _ = l.Allow("p", 3, back.Add(20*time.Second))
	require.True(t, ok)
}
