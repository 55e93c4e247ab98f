package queue

import "time"

// Group commit: the machinery that gathers concurrent writes (hookd's
// sends and attempt records) into batches, each one statement and one
// commit. The store brings the statements; this file decides when a batch
// starts.
//
// One collector per kind of request gathers what callers queue and hands it
// to the database in batches of up to BatchMax. While a batch is being
// committed, new requests wait for it and then all go together: at most one
// batch is in flight unless the waiting ones fill a whole batch or the batch
// in flight is slow (BatchStall), and then up to Batchers run at once. So a
// quiet server sends each request at once, a busy one shares each statement
// and commit among many requests (measured: one batch in flight instead of
// four cut PostgreSQL's CPU per message by a quarter), and one batch stuck
// behind a lock does not hold the others back for long.

const (
	// BatchMax is the most requests one batch takes.
	BatchMax = 128
	// Batchers is the most batches of one collector in flight at once.
	Batchers = 4
	// BatchStall is how long the batch in flight may run before the
	// waiting requests start another one beside it.
	BatchStall = 20 * time.Millisecond
	// Backlog is a collector's channel size: callers wait when it is full.
	Backlog = BatchMax * Batchers
)

// Collect takes requests from ch and passes batches of them to run (on up
// to Batchers goroutines of its own) until stop is closed; it then waits
// for the batches in flight, answers what is still queued with closed, and
// returns.
func Collect[T any](stop <-chan struct{}, ch chan T, run func([]T), closed func(T)) {
	collect(stop, ch, run, closed, BatchStall)
}

func collect[T any](stop <-chan struct{}, ch chan T, run func([]T), closed func(T), stallAfter time.Duration) {
	finished := make(chan struct{}, Batchers)
	inFlight := 0
	var pending []T
	var lastStart time.Time
	stall := time.NewTimer(time.Hour)
	stall.Stop()
	defer stall.Stop()
	// Batches run on Batchers executors that wait for the next batch
	// rather than exit, so their (deep) stacks are grown once.
	work := make(chan []T)
	defer close(work)
	for range Batchers {
		go func() {
			for batch := range work {
				run(batch)
				finished <- struct{}{}
			}
		}()
	}
	start := func() {
		n := min(len(pending), BatchMax)
		batch := append([]T(nil), pending[:n]...)
		pending = append(pending[:0], pending[n:]...)
		inFlight++
		lastStart = time.Now()
		work <- batch // an executor is free, or about to be
	}
	stopped := false
	for {
		select {
		case <-stop:
			stopped = true // no batch starts after close
		default:
		}
		// Start what may start now; arm the stall timer for the rest.
		for !stopped && len(pending) > 0 && inFlight < Batchers &&
			(inFlight == 0 || len(pending) >= BatchMax || time.Since(lastStart) >= stallAfter) {
			start()
		}
		if !stopped && len(pending) > 0 && inFlight < Batchers {
			stall.Reset(stallAfter - time.Since(lastStart))
		}
		in := ch
		if len(pending) >= BatchMax*Batchers {
			in = nil // back-pressure: callers wait in enqueue
		}
		select {
		case <-stop:
			for ; inFlight > 0; inFlight-- {
				<-finished
			}
			for _, r := range pending {
				closed(r)
			}
			for {
				select {
				case r := <-ch:
					closed(r)
				default:
					return
				}
			}
		case r := <-in:
			pending = append(pending, r)
		drain:
			for len(pending) < BatchMax*Batchers {
				select {
				case r := <-ch:
					pending = append(pending, r)
				default:
					break drain
				}
			}
		case <-finished:
			inFlight--
		case <-stall.C:
		}
	}
}
