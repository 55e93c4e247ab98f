// Package queuetest is the conformance suite of queue drivers. Every
// driver runs the same suite against a database of its own (store runs it
// on PostgreSQL and on SQLite; the queue's own tests run it on an in-memory
// driver), as River runs one suite per driver, so the queue can rely on
// what queue.Driver promises whatever the database.
package queuetest

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/queue"
)

// Harness is a driver over an empty queue, and the ways to fill it.
type Harness[V any] struct {
	Driver queue.Driver[V]
	// NewGroup makes a group jobs can belong to and returns its name.
	NewGroup func(t *testing.T) string
	// Enqueue commits a job of group due at due and returns its id.
	Enqueue func(t *testing.T, group string, due time.Time) string
	// HandsOff says whether the driver hands jobs over at their commit
	// (Offer); a driver that does not must ignore Offer.
	HandsOff bool
	// Pause pauses group: its new jobs are neither due nor handed over.
	Pause func(t *testing.T, group string)
}

// patience bounds the waits for conditions: how long a failing test takes,
// not how fast anything must be.
const patience = time.Minute

// Run runs the suite; newHarness gives each test a fresh, empty queue.
func Run[V any](t *testing.T, newHarness func(t *testing.T) Harness[V]) {
	ctx := context.Background()
	claim := func(t *testing.T, h Harness[V], token string, lease time.Duration, limit int, skip ...string) []string {
		t.Helper()
		jobs, err := h.Driver.Claim(ctx, token, lease, limit, skip)
		require.NoError(t, err)
		out := make([]string, len(jobs))
		for i, j := range jobs {
			out[i] = j.ID
		}
		return out
	}
	test := func(name string, fn func(t *testing.T, h Harness[V])) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, newHarness(t))
		})
	}

	test("ClaimsDueJobsOldestFirst", func(t *testing.T, h Harness[V]) {
		g := h.NewGroup(t)
		now := time.Now()
		older := h.Enqueue(t, g, now.Add(-2*time.Minute))
		newer := h.Enqueue(t, g, now.Add(-time.Minute))
		h.Enqueue(t, g, now.Add(time.Hour)) // not due
		jobs, err := h.Driver.Claim(ctx, "t1", time.Hour, 1, nil)
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		require.Equal(t, older, jobs[0].ID, "the oldest due first")
		require.Equal(t, g, jobs[0].Group)
		require.Equal(t, []string{newer}, claim(t, h, "t2", time.Hour, 10), "then the next, not the later one")
		require.Empty(t, claim(t, h, "t3", time.Hour, 10), "a leased job is not claimed again")
	})

	test("ClaimsAtMostLimit", func(t *testing.T, h Harness[V]) {
		g := h.NewGroup(t)
		for range 3 {
			h.Enqueue(t, g, time.Now().Add(-time.Second))
		}
		require.Len(t, claim(t, h, "t1", time.Hour, 2), 2)
		require.Len(t, claim(t, h, "t2", time.Hour, 2), 1)
		require.Empty(t, claim(t, h, "t3", time.Hour, 2))
	})

	test("SkipsGroups", func(t *testing.T, h Harness[V]) {
		g1, g2 := h.NewGroup(t), h.NewGroup(t)
		a := h.Enqueue(t, g1, time.Now().Add(-time.Minute))
		b := h.Enqueue(t, g2, time.Now().Add(-time.Second))
		require.Equal(t, []string{b}, claim(t, h, "t1", time.Hour, 10, g1), "the skipped group's job stays")
		require.Equal(t, []string{a}, claim(t, h, "t2", time.Hour, 10))
	})

	test("ReleaseNeedsTheTokenAndHonoursTheDelay", func(t *testing.T, h Harness[V]) {
		g := h.NewGroup(t)
		a := h.Enqueue(t, g, time.Now().Add(-time.Second))
		require.Equal(t, []string{a}, claim(t, h, "t1", time.Hour, 10))
		require.NoError(t, h.Driver.Release(ctx, a, "not-the-token", 0))
		require.Empty(t, claim(t, h, "t2", time.Hour, 10), "another token releases nothing")
		require.NoError(t, h.Driver.Release(ctx, a, "t1", 0))
		require.Equal(t, []string{a}, claim(t, h, "t3", time.Hour, 10), "released without delay: due at once")
		require.NoError(t, h.Driver.Release(ctx, a, "t3", time.Hour))
		require.Empty(t, claim(t, h, "t4", time.Hour, 10), "released for an hour: not due")
	})

	test("LiveLeasesAreNotRescued", func(t *testing.T, h Harness[V]) {
		g := h.NewGroup(t)
		a := h.Enqueue(t, g, time.Now().Add(-time.Second))
		require.Equal(t, []string{a}, claim(t, h, "t1", time.Hour, 10))
		n, err := h.Driver.Rescue(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
		require.Empty(t, claim(t, h, "t2", time.Hour, 10))
	})

	test("EndedLeasesAreRescued", func(t *testing.T, h Harness[V]) {
		g := h.NewGroup(t)
		a := h.Enqueue(t, g, time.Now().Add(-time.Second))
		require.Equal(t, []string{a}, claim(t, h, "t1", 50*time.Millisecond, 10))
		rescued := int64(0)
		poll.Until(t, patience, func() bool {
			n, err := h.Driver.Rescue(ctx)
			require.NoError(t, err)
			rescued += n
			return rescued > 0
		}, "the ended lease is rescued")
		require.EqualValues(t, 1, rescued)
		require.Equal(t, []string{a}, claim(t, h, "t2", time.Hour, 10), "due again")
	})

	test("ExtendKeepsTheLease", func(t *testing.T, h Harness[V]) {
		g := h.NewGroup(t)
		kept := h.Enqueue(t, g, time.Now().Add(-time.Minute))
		lapsed := h.Enqueue(t, g, time.Now().Add(-time.Second))
		// Two seconds: long enough for the extension to come while the
		// first lease lasts even on a loaded machine.
		lease := 2 * time.Second
		require.Equal(t, []string{kept}, claim(t, h, "t1", lease, 1))
		require.NoError(t, h.Driver.Extend(ctx, map[string]string{kept: "t1"}, time.Hour))
		require.Equal(t, []string{lapsed}, claim(t, h, "t2", lease, 1))
		// Wait for the lease that was not extended to end and be rescued:
		// by then the first one would have ended too.
		require.Equal(t, []string{lapsed}, dueAgain(t, h), "the lease that was not extended ends, and only that one")
		require.Empty(t, claim(t, h, "t4", time.Hour, 10), "the extended lease holds")
		n, err := h.Driver.Rescue(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
	})

	test("ExtendNeedsTheToken", func(t *testing.T, h Harness[V]) {
		g := h.NewGroup(t)
		a := h.Enqueue(t, g, time.Now().Add(-time.Second))
		require.Equal(t, []string{a}, claim(t, h, "t1", 50*time.Millisecond, 10))
		require.NoError(t, h.Driver.Extend(ctx, map[string]string{a: "not-the-token"}, time.Hour))
		require.Equal(t, []string{a}, dueAgain(t, h), "the lease another token extended ends all the same")
	})

	test("OneClaimerPerJob", func(t *testing.T, h Harness[V]) {
		const jobs, claimers = 60, 6
		groups := []string{h.NewGroup(t), h.NewGroup(t), h.NewGroup(t)}
		for i := range jobs {
			h.Enqueue(t, groups[i%len(groups)], time.Now().Add(-time.Second))
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		errs := make(chan error, claimers)
		for c := range claimers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := h.Driver.Claim(ctx, "claimer"+strconv.Itoa(c), time.Hour, 4, nil)
					if err != nil {
						errs <- err
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, j := range got {
						seen[j.ID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Len(t, seen, jobs, "every job claimed")
		for id, n := range seen {
			require.Equal(t, 1, n, "job %s claimed once", id)
		}
	})

	test("DueSignalsNewJobs", func(t *testing.T, h Harness[V]) {
		g := h.NewGroup(t)
		for drained := false; !drained; {
			select {
			case <-h.Driver.Due():
			default:
				drained = true
			}
		}
		h.Enqueue(t, g, time.Now().Add(-time.Second))
		select {
		case <-h.Driver.Due():
		case <-time.After(patience):
			require.Fail(t, "a new due job signals Due")
		}
	})

	test("HandoffAtCommit", func(t *testing.T, h Harness[V]) {
		g := h.NewGroup(t)
		rec := &recorder[V]{free: 10}
		h.Driver.Offer(rec, time.Hour)
		first := h.Enqueue(t, g, time.Now().Add(-time.Second))
		if !h.HandsOff {
			require.Empty(t, rec.startedIDs(), "a driver that cannot hand over starts nothing")
			require.Equal(t, []string{first}, claim(t, h, "t1", time.Hour, 10), "the job waits for a claim")
			return
		}
		poll.Until(t, patience, func() bool { return slices.Equal(rec.startedIDs(), []string{first}) }, "the job is handed over")
		rec.mu.Lock()
		require.Equal(t, g, rec.started[0].Group)
		rec.mu.Unlock()
		require.Empty(t, claim(t, h, "t1", time.Hour, 10), "a handed-over job is leased")
		require.NoError(t, h.Driver.Release(ctx, first, rec.tokens[0], 0))
		require.Equal(t, []string{first}, claim(t, h, "t2", time.Hour, 10), "its lease is a lease like any other")

		h.Driver.Withdraw(rec)
		second := h.Enqueue(t, g, time.Now().Add(-time.Second))
		require.Equal(t, []string{second}, claim(t, h, "t3", time.Hour, 10), "after Withdraw the job waits for a claim")
		require.Len(t, rec.startedIDs(), 1)
		require.Zero(t, rec.reserved(), "every reservation started or given back")
	})

	test("HandedOverJobIsDueWhenItsLeaseEnds", func(t *testing.T, h Harness[V]) {
		g := h.NewGroup(t)
		rec := &recorder[V]{free: 10}
		h.Driver.Offer(rec, 50*time.Millisecond)
		a := h.Enqueue(t, g, time.Now().Add(-time.Second))
		h.Driver.Withdraw(rec)
		if !h.HandsOff {
			require.Empty(t, rec.startedIDs())
			return
		}
		poll.Until(t, patience, func() bool { return slices.Equal(rec.startedIDs(), []string{a}) }, "the job is handed over")
		// Its worker died: no release, no extension.
		require.Equal(t, []string{a}, dueAgain(t, h), "the job is due again once its lease ends")
	})

	test("PausedGroupsAreNotHandedOver", func(t *testing.T, h Harness[V]) {
		g := h.NewGroup(t)
		h.Pause(t, g)
		rec := &recorder[V]{free: 10}
		h.Driver.Offer(rec, time.Hour)
		h.Enqueue(t, g, time.Now().Add(-time.Second))
		h.Driver.Withdraw(rec)
		require.Empty(t, rec.startedIDs(), "nothing of a paused group starts")
		require.Zero(t, rec.reserved(), "a reservation taken for it was given back")
		require.Empty(t, claim(t, h, "t1", time.Hour, 10), "and nothing of it is due")
	})
}

// dueAgain rescues and claims (under a long lease) until a claim takes
// some job, and returns what it took: the jobs whose leases ended.
func dueAgain[V any](t *testing.T, h Harness[V]) []string {
	t.Helper()
	ctx := context.Background()
	var got []queue.Job[V]
	poll.Until(t, patience, func() bool {
		_, err := h.Driver.Rescue(ctx)
		require.NoError(t, err)
		got, err = h.Driver.Claim(ctx, "again", time.Hour, 10, nil)
		require.NoError(t, err)
		return len(got) > 0
	}, "a lease ends")
	ids := make([]string, len(got))
	for i, j := range got {
		ids[i] = j.ID
	}
	slices.Sort(ids)
	return ids
}

// recorder is a Handoff that grants free reservations and records what it
// is given.
type recorder[V any] struct {
	mu       sync.Mutex
	free     int
	granted  int
	returned int
	started  []queue.Job[V]
	tokens   []string
}

func (r *recorder[V]) Accepting() bool   { return true }
func (r *recorder[V]) Waits(string) bool { return true }

func (r *recorder[V]) Reserve(string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.free == 0 {
		return false
	}
	r.free--
	r.granted++
	return true
}

func (r *recorder[V]) Unreserve(string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.free++
	r.returned++
}

func (r *recorder[V]) Start(j queue.Job[V], token string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = append(r.started, j)
	r.tokens = append(r.tokens, token)
}

// reserved is how many reservations are neither started nor given back.
func (r *recorder[V]) reserved() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.granted - len(r.started) - r.returned
}

func (r *recorder[V]) startedIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, len(r.started))
	for i, j := range r.started {
		ids[i] = j.ID
	}
	return ids
}
