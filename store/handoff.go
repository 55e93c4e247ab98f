package store

import "time"

// Handoff lets a send give its message straight to this process's delivery
// workers (PostgreSQL only). The message is stored queued but leased to
// the workers in the same statement and commit as the send, and handed over
// after that commit: no claim (a round trip, a row update and a commit)
// stands between a send and its first attempt. A lease that ends without a
// recorded attempt (the process died) makes the message due again for any
// process's claim, as an expired claim does.
type Handoff interface {
	// Reserve takes a worker for a message to the endpoint, if one is free
	// for it; it reports whether it did.
	Reserve(endpointID string) bool
	// Unreserve gives back a reservation that was not used (the endpoint
	// is paused, the message was not inserted, the statement failed).
	Unreserve(endpointID string)
	// Start delivers m, leased under token, on the reserved worker.
	Start(m Message, t DeliveryTarget, token string)
	// Accepting reports whether handed messages are taken at all now
	// (other processes are told, remote.go).
	Accepting() bool
	// Waits reports whether a message to the endpoint that Reserve
	// refused lacks only a free worker, so it may wait for one.
	Waits(endpointID string) bool
}

type handoff struct {
	Handoff
	lease time.Duration
}

// SetHandoff makes sends hand their messages to h (not nil), leased for
// lease, from now on. On SQLite it does nothing: sends queue and the
// workers claim.
func (s *Store) SetHandoff(h Handoff, lease time.Duration) {
	if s.hot.handsOff() && h != nil {
		s.handoff.Store(&handoff{Handoff: h, lease: lease})
	}
}

// ClearHandoff stops sends handing messages to h, if h is the one set (a
// batch that reserved a worker of h already still calls Start or
// Unreserve).
func (s *Store) ClearHandoff(h Handoff) {
	if cur := s.handoff.Load(); cur != nil && cur.Handoff == h {
		s.handoff.CompareAndSwap(cur, nil)
	}
}

func (s *Store) handoffLease(h *handoff) time.Duration {
	if h == nil {
		return 0
	}
	return h.lease
}
