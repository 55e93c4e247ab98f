package queue

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// batchRig runs a collector whose batches block until released, recording
// each batch's contents.
type batchRig struct {
	ch      chan int
	stop    chan struct{}
	done    chan struct{}
	started chan []int // each batch, as it starts
	release chan struct{}
	mu      sync.Mutex
	closed  []int
}

func newBatchRig(t *testing.T, stall time.Duration) *batchRig {
	r := &batchRig{ch: make(chan int, 1024), stop: make(chan struct{}), done: make(chan struct{}),
		started: make(chan []int, 100), release: make(chan struct{}, 100)}
	go func() {
		defer close(r.done)
		collect(r.stop, r.ch, func(b []int) {
			r.started <- b
			<-r.release
		}, func(v int) {
			r.mu.Lock()
			r.closed = append(r.closed, v)
			r.mu.Unlock()
		}, stall)
	}()
	t.Cleanup(func() {
		select {
		case <-r.stop:
		default:
			close(r.stop)
		}
		close(r.release)
		<-r.done
	})
	return r
}

func (r *batchRig) next(t *testing.T) []int {
	t.Helper()
	select {
	case b := <-r.started:
		return b
	case <-time.After(time.Minute): // a bound for a failing test only
		t.Fatal("no batch started")
		return nil
	}
}

// none checks that no batch starts within the window. It proves a
// negative, so it can only miss a wrong start, never make one up: a loaded
// machine cannot fail it.
func (r *batchRig) none(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case b := <-r.started:
		t.Fatalf("unexpected batch %v", b)
	case <-time.After(within):
	}
}

// A lone request goes at once; requests arriving while its batch commits
// wait for it and then go together, as one batch.
func TestCollectorGathersWhileABatchIsInFlight(t *testing.T) {
	r := newBatchRig(t, time.Hour)
	r.ch <- 1
	require.Equal(t, []int{1}, r.next(t))
	for v := 2; v <= 6; v++ {
		r.ch <- v
	}
	r.none(t, 50*time.Millisecond)
	r.release <- struct{}{}
	require.Equal(t, []int{2, 3, 4, 5, 6}, r.next(t))
	r.ch <- 7
	r.ch <- 8
	r.none(t, 50*time.Millisecond)
	r.release <- struct{}{}
	require.Equal(t, []int{7, 8}, r.next(t))
	r.release <- struct{}{}
}

// Waiting requests start a second batch beside a slow one after the stall
// bound, or at once when they fill a whole batch; no more than Batchers
// run at once.
func TestCollectorLimitsBatchesInFlight(t *testing.T) {
	const stall = 500 * time.Millisecond
	r := newBatchRig(t, stall)
	start := time.Now() // before the first batch starts: the stall counts from then
	r.ch <- 0
	require.Len(t, r.next(t), 1)
	r.ch <- 1
	require.Equal(t, []int{1}, r.next(t))
	// A lower bound: a loaded machine can only make the wait longer.
	require.GreaterOrEqual(t, time.Since(start), stall, "the second batch waited for the stall bound")

	// (That a full batch starts without waiting for the stall bound is
	// TestCollectorStartsAFullBatchAtOnce's.)
	for v := range BatchMax {
		r.ch <- 1000 + v
	}
	full := r.next(t)
	require.Len(t, full, BatchMax)
	require.Equal(t, 1000, full[0])

	for v := range BatchMax * Batchers {
		r.ch <- 5000 + v
	}
	// Three batches are in flight: one more may start, then none until one ends.
	require.Len(t, r.next(t), BatchMax)
	r.none(t, 3*stall)
	r.release <- struct{}{}
	require.Len(t, r.next(t), BatchMax)
}

// A whole batch of waiting requests starts beside the batch in flight at
// once, not after the stall bound: here an hour, which the test would not
// outlast. (Timing it against a short bound failed on a loaded machine.)
func TestCollectorStartsAFullBatchAtOnce(t *testing.T) {
	r := newBatchRig(t, time.Hour)
	r.ch <- 0
	require.Equal(t, []int{0}, r.next(t))
	r.ch <- 1
	for v := range BatchMax - 1 {
		r.ch <- 1000 + v
	}
	full := r.next(t)
	require.Len(t, full, BatchMax)
	require.Equal(t, 1, full[0])
	r.release <- struct{}{}
	r.release <- struct{}{}
}

// On close, batches in flight finish and everything still waiting is
// answered "closed", not dropped.
func TestCollectorAnswersWaitingRequestsOnClose(t *testing.T) {
	r := newBatchRig(t, time.Hour)
	r.ch <- 1
	require.Equal(t, []int{1}, r.next(t))
	// Fill all batchers so the rest must wait.
	for v := range (Batchers - 1) * BatchMax {
		r.ch <- 100 + v
	}
	for range Batchers - 1 {
		r.next(t)
	}
	r.ch <- 99999
	r.ch <- 99998
	close(r.stop)
	for range Batchers {
		r.release <- struct{}{}
	}
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	require.ElementsMatch(t, []int{99999, 99998}, r.closed)
}
