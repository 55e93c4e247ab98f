package store

import (
	"context"
	"time"
)

// Group commit machinery shared by sends (sendbatch.go) and attempt records
// (recordbatch.go).
//
// One collector per kind of request gathers what callers queue and hands it
// to the database in batches of up to sendBatchMax. While a batch is being
// committed, new requests wait for it and then all go together: at most one
// batch is in flight unless the waiting ones fill a whole batch or the batch
// in flight is slow (batchStall), and then up to sendBatchers run at once.
// So a quiet server sends each request at once, a busy one shares each
// statement and commit among many requests (measured: one batch in flight
// instead of four cut PostgreSQL's CPU per message by a quarter), and one
// batch stuck behind a lock does not hold the others back for long.

// batchStall is how long the batch in flight may run before the waiting
// requests start another one beside it.
const batchStall = 20 * time.Millisecond

// runBatchers starts the collector that takes requests from ch and passes
// batches of them to run. When the store closes it answers what is still
// queued with closed and returns after the batches in flight finish.
func runBatchers[T any](s *Store, ch chan T, run func([]T), closed func(T)) {
	s.batchersDone.Add(1)
	go func() {
		defer s.batchersDone.Done()
		collect(s.stopBatchers, ch, run, closed, batchStall)
	}()
}

func collect[T any](stop <-chan struct{}, ch chan T, run func([]T), closed func(T), stallAfter time.Duration) {
	finished := make(chan struct{}, sendBatchers)
	inFlight := 0
	var pending []T
	var lastStart time.Time
	stall := time.NewTimer(time.Hour)
	stall.Stop()
	defer stall.Stop()
	// Batches run on sendBatchers executors that wait for the next batch
	// rather than exit, so their (deep) stacks are grown once.
	work := make(chan []T)
	defer close(work)
	for range sendBatchers {
		go func() {
			for batch := range work {
				run(batch)
				finished <- struct{}{}
			}
		}()
	}
	start := func() {
		n := min(len(pending), sendBatchMax)
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
		for !stopped && len(pending) > 0 && inFlight < sendBatchers &&
			(inFlight == 0 || len(pending) >= sendBatchMax || time.Since(lastStart) >= stallAfter) {
			start()
		}
		if !stopped && len(pending) > 0 && inFlight < sendBatchers {
			stall.Reset(stallAfter - time.Since(lastStart))
		}
		in := ch
		if len(pending) >= sendBatchMax*sendBatchers {
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
			for len(pending) < sendBatchMax*sendBatchers {
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

// enqueue hands r to the batchers, unless ctx ends or the store is closed.
func enqueue[T any](ctx context.Context, s *Store, ch chan T, r T) error {
	select {
	case <-s.stopBatchers:
		return ErrClosed
	default:
	}
	select {
	case ch <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopBatchers:
		return ErrClosed
	}
}
