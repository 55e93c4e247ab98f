package store

import (
	"context"
	"time"

	"github.com/hookd/hookd/queue"
)

// Delivery is a message leased for delivery with what its attempt needs:
// the value of the delivery queue's jobs.
type Delivery struct {
	Message Message
	Target  DeliveryTarget
}

// QueueDriver returns the store as the delivery queue's driver: claims,
// leases, releases, rescue and wake-ups on the messages table, in the
// dialect's hot-path SQL, and the handoff of sends at their commit
// (PostgreSQL). A job's group is its message's endpoint.
func (s *Store) QueueDriver() queue.Driver[Delivery] { return queueDriver{s} }

type queueDriver struct{ s *Store }

// jobOf is m, leased for delivery to t, as a queue job. A message of a
// FIFO key waits for the one before it, so its due time says nothing about
// how far the claims are behind: it is left out of the backlog rule.
func jobOf(m Message, t DeliveryTarget) queue.Job[Delivery] {
	j := queue.Job[Delivery]{ID: m.ID, Group: m.EndpointID, Value: Delivery{Message: m, Target: t}}
	if m.FIFOKey == nil {
		j.DueAt = m.NextAttemptAt
	}
	return j
}

func (d queueDriver) Claim(ctx context.Context, token string, lease time.Duration, limit int, skip []string) ([]queue.Job[Delivery], error) {
	ms, targets, err := d.s.ClaimDue(ctx, token, lease, limit, skip)
	jobs := make([]queue.Job[Delivery], len(ms))
	for i, m := range ms {
		jobs[i] = jobOf(m, targets[m.EndpointID])
	}
	return jobs, err
}

func (d queueDriver) Extend(ctx context.Context, held map[string]string, lease time.Duration) error {
	return d.s.ExtendLeases(ctx, held, lease)
}

func (d queueDriver) Release(ctx context.Context, id, token string, delay time.Duration) error {
	return d.s.ReleaseLease(ctx, id, token, delay)
}

func (d queueDriver) Rescue(ctx context.Context) (int64, error) { return d.s.RescueExpired(ctx) }
func (d queueDriver) Due() <-chan struct{}                      { return d.s.Due() }
func (d queueDriver) Listen(ctx context.Context)                { d.s.ListenDue(ctx) }

func (d queueDriver) Offer(h queue.Handoff[Delivery], lease time.Duration) {
	d.s.SetHandoff(queueHandoff{h}, lease)
}

func (d queueDriver) Withdraw(h queue.Handoff[Delivery]) { d.s.ClearHandoff(queueHandoff{h}) }

// queueHandoff is a queue's Handoff as the send path's.
type queueHandoff struct{ h queue.Handoff[Delivery] }

func (q queueHandoff) Reserve(endpointID string) bool { return q.h.Reserve(endpointID) }
func (q queueHandoff) Unreserve(endpointID string)    { q.h.Unreserve(endpointID) }
func (q queueHandoff) Accepting() bool                { return q.h.Accepting() }
func (q queueHandoff) Waits(endpointID string) bool   { return q.h.Waits(endpointID) }
func (q queueHandoff) Start(m Message, t DeliveryTarget, token string) {
	q.h.Start(jobOf(m, t), token)
}
