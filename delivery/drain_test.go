package delivery

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/store"
)

// TestDrain: when Run's context ends, the engine takes no new work (a
// message sent meanwhile stays queued, untouched), waits for the attempt
// in flight and records it, then returns with nothing in flight. If the
// attempt outlasts DrainTimeout, it is abandoned: its message goes back to
// the queue without a lease and without counting the attempt.
func TestDrain(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d string) {
		for _, c := range []struct {
			name    string
			timeout time.Duration
		}{{"Finishes", time.Minute}, {"Abandons", 50 * time.Millisecond}} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				arrived, release, stop := make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
				h := newHarness(t, d, Config{Workers: 4, AttemptTimeout: time.Minute, PollInterval: 20 * time.Millisecond, DrainTimeout: c.timeout},
					func(_ http.ResponseWriter, r *http.Request) {
						select {
						case arrived <- struct{}{}:
						default:
						}
						select {
						case <-release:
						case <-stop:
						case <-r.Context().Done(): // the engine gave up on it
						}
					})
				t.Cleanup(func() { close(stop) }) // (before the receiver closes: cleanups run last first)
				stopEngine := h.run()

				first := h.insert(t, 0)
				<-arrived // the attempt is in flight
				done := make(chan error, 1)
				go func() { done <- stopEngine() }()
				poll.Until(t, time.Minute, func() bool { return h.e.q.Snapshot().Draining }, "the drain begins")
				second := h.insert(t, 0) // during the drain: not handed over, not claimed

				if c.name == "Finishes" {
					release <- struct{}{}
				}
				require.NoError(t, <-done)
				require.Zero(t, h.inFlight(), "every slot came back")

				m := h.message(t, first)
				if c.name == "Finishes" {
					require.Equal(t, store.StatusSucceeded, m.Status, "the attempt in flight was waited for and recorded")
					require.Equal(t, 1, m.AttemptCount)
				} else {
					require.Equal(t, store.StatusQueued, m.Status, "abandoned: back in the queue")
					require.Zero(t, m.AttemptCount, "an abandoned attempt is not counted")
					require.Nil(t, m.LeaseToken)
				}
				m = h.message(t, second)
				require.Equal(t, store.StatusQueued, m.Status)
				require.Zero(t, m.AttemptCount)
				require.Nil(t, m.LeaseToken, "no worker took it")
			})
		}
	})
}
