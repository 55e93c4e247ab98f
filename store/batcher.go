package store

import (
	"context"

	"github.com/hookd/hookd/queue"
)

// Group commit of sends (sendbatch.go) and attempt records (recordbatch.go)
// through the queue's collector (queue.Collect), which decides when a
// batch starts; this file ties collectors to the store's life.

// runBatchers starts the collector that takes requests from ch and passes
// batches of them to run. When the store closes it answers what is still
// queued with closed and returns after the batches in flight finish.
func runBatchers[T any](s *Store, ch chan T, run func([]T), closed func(T)) {
	s.batchersDone.Add(1)
	go func() {
		defer s.batchersDone.Done()
		queue.Collect(s.stopBatchers, ch, run, closed)
	}()
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
