package queue

import "context"

// Claim runs one claim, as Run's loop does (for tests that step the queue
// themselves).
func (q *Queue[V]) Claim(ctx context.Context) (full, capped bool) { return q.claim(ctx) }

// Handoff is the queue as its driver's Handoff.
func (q *Queue[V]) Handoff() Handoff[V] { return handoff[V]{q} }

// StopWorkers waits for the jobs started without Run and lets their
// workers exit.
func (q *Queue[V]) StopWorkers() {
	q.wg.Wait()
	close(q.idle)
}
