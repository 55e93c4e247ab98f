package store

import "context"

// Group commit machinery shared by sends (sendbatch.go) and attempt records
// (recordbatch.go).

// runBatchers starts sendBatchers goroutines that take requests from ch in
// batches of up to sendBatchMax and pass each batch to run. Nothing waits to
// fill a batch: a batcher takes what is queued when it becomes free. When
// the store closes they answer what is still queued with closed and return.
func runBatchers[T any](s *Store, ch chan T, run func([]T), closed func(T)) {
	for range sendBatchers {
		s.batchersDone.Add(1)
		go func() {
			defer s.batchersDone.Done()
			for {
				select {
				case <-s.stopBatchers:
					for {
						select {
						case r := <-ch:
							closed(r)
						default:
							return
						}
					}
				case first := <-ch:
					batch := []T{first}
				gather:
					for len(batch) < sendBatchMax {
						select {
						case r := <-ch:
							batch = append(batch, r)
						default:
							break gather
						}
					}
					run(batch)
				}
			}
		}()
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
