package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/queue"
)

// finishing is work that ends every job's lease at once.
func finishing(d *memDriver) queue.Work[string] {
	return func(_ context.Context, j queue.Job[string], token string) { d.finish(j.ID, token) }
}

// TestBacklogNeedsLongDueJobs: a claim that comes back full marks a backlog
// (handoffs stop, so new jobs queue behind the old ones) only when its jobs
// have been due longer than a quarter second. A full claim of jobs that
// just fell due, such as the rest of a publish to more endpoints than
// there were free workers, leaves the handoff on; a full claim of long-due
// jobs turns it off until a claim finds none.
func TestBacklogNeedsLongDueJobs(t *testing.T) {
	t.Parallel()
	d := newMemDriver()
	// The queue's clock stands still at the start, so the fresh jobs below
	// have been due for no time at all however slow the machine is, and
	// the old ones for about a minute.
	start := time.Now()
	q := queue.New(d, queue.Config{Workers: 4, ClaimBatch: 2, GroupConcurrency: 4, Now: func() time.Time { return start }}, finishing(d))
	t.Cleanup(q.StopWorkers)
	claim := func() bool {
		full, _ := q.Claim(context.Background())
		return full
	}

	d.enqueue("g", start)
	d.enqueue("g", start)
	require.True(t, claim(), "two fresh jobs fill a claim of two")
	require.False(t, q.Snapshot().Backlog, "fresh jobs are no backlog")
	require.True(t, q.Handoff().Accepting(), "handoffs go on")
	require.True(t, q.Handoff().Reserve("g"), "handoffs go on")
	q.Handoff().Unreserve("g")

	d.enqueue("g", start.Add(-time.Minute))
	d.enqueue("g", start.Add(-time.Minute))
	require.True(t, claim())
	require.True(t, q.Snapshot().Backlog, "a full claim of jobs due for a minute is a backlog")
	require.False(t, q.Handoff().Reserve("g"), "no handoff during a backlog")
	require.False(t, q.Handoff().Accepting(), "other processes are told so")
	require.False(t, q.Handoff().Waits("g"), "a job handed over meanwhile goes back to the database")

	// (A claim with no free worker leaves the backlog as it was: wait for
	// the jobs to end.)
	poll.Until(t, time.Minute, func() bool { return q.Snapshot().InFlight == 0 }, "the jobs end")
	require.False(t, claim(), "nothing left")
	require.False(t, q.Snapshot().Backlog, "the backlog is over")
}

// TestReserveRules: a job is taken at its commit only with a free worker,
// below its group's cap, when the group is not held and is admitted; each
// reservation takes a slot and Unreserve gives it back.
func TestReserveRules(t *testing.T) {
	t.Parallel()
	refused := "refused"
	q := queue.New(newMemDriver(), queue.Config{Workers: 3, GroupConcurrency: 2, Admit: func(g string) bool { return g != refused }},
		func(context.Context, queue.Job[string], string) {})
	h := q.Handoff()

	require.False(t, h.Reserve(refused), "Admit refuses")
	require.False(t, h.Waits(refused), "not for want of a worker")
	q.Hold("held", time.Now().Add(time.Hour))
	require.False(t, h.Reserve("held"), "a held group")
	require.False(t, h.Waits("held"), "not for want of a worker")
	until, held := q.HeldUntil("held")
	require.True(t, held)
	require.True(t, until.After(time.Now()))

	require.True(t, h.Reserve("a"))
	require.True(t, h.Reserve("a"))
	require.False(t, h.Reserve("a"), "the group's cap")
	require.True(t, h.Waits("a"), "only a worker lacks")
	require.True(t, h.Reserve("b"))
	require.False(t, h.Reserve("c"), "every worker taken")
	require.True(t, h.Accepting(), "busy workers free up: handed jobs may wait for them")
	require.Equal(t, 3, q.Snapshot().InFlight)

	h.Unreserve("a")
	require.Equal(t, 2, q.Snapshot().InFlight)
	require.True(t, h.Reserve("c"), "the slot came back")
	for _, g := range []string{"a", "b", "c"} {
		h.Unreserve(g)
	}
	require.Zero(t, q.Snapshot().InFlight)
	require.True(t, h.Reserve("a"), "and the group's count with it")
	h.Unreserve("a")
}

// TestLimitsHoldWhileRunning: with claims and handoffs together, no more
// than Workers jobs run at once and no more than GroupConcurrency of one
// group; every job runs once; every slot comes back; and a drain waits for
// the jobs in flight.
func TestLimitsHoldWhileRunning(t *testing.T) {
	t.Parallel()
	const workers, perGroup, jobs = 3, 2, 24
	d := newMemDriver()
	var mu sync.Mutex
	running, peak := 0, 0
	byGroup, groupPeak := map[string]int{}, 0
	ran := map[string]int{}
	release := make(chan struct{})
	q := queue.New(d, queue.Config{Workers: workers, GroupConcurrency: perGroup, PollInterval: 10 * time.Millisecond},
		func(_ context.Context, j queue.Job[string], token string) {
			mu.Lock()
			running++
			byGroup[j.Group]++
			peak, groupPeak = max(peak, running), max(groupPeak, byGroup[j.Group])
			ran[j.ID]++
			mu.Unlock()
			<-release
			mu.Lock()
			running--
			byGroup[j.Group]--
			mu.Unlock()
			d.finish(j.ID, token)
		})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	poll.Until(t, time.Minute, d.offered, "the queue takes jobs at their commit")

	// The jobs are committed while the queue runs: the first are handed
	// over at their commit, the rest wait for claims. Three in four are
	// of group a, so its cap binds.
	for i := range jobs {
		g := "a"
		if i%4 == 3 {
			g = "b"
		}
		d.enqueue(g, time.Now())
	}
	poll.Until(t, time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return running == workers
	}, "every worker busy")
	for range jobs {
		poll.Until(t, time.Minute, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return running > 0
		}, "a job runs")
		release <- struct{}{} // one job ends
	}
	poll.Until(t, time.Minute, func() bool { return q.Snapshot().InFlight == 0 }, "every slot comes back")
	require.True(t, q.Handoff().Accepting())
	cancel()
	require.NoError(t, <-done)
	require.False(t, q.Handoff().Accepting(), "a drained queue takes nothing")
	require.False(t, q.Handoff().Waits("a"), "a drained queue takes nothing")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, workers, peak, "never more than Workers at once")
	require.Equal(t, perGroup, groupPeak, "never more than GroupConcurrency of a group")
	require.Len(t, ran, jobs)
	for id, n := range ran {
		require.Equal(t, 1, n, "job %s ran once", id)
	}
}
