package delivery

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/store"
)

// TestWorkerLimitHolds: handoffs and claims together never run more
// attempts than Workers, and every slot they take comes back. With 3
// workers and 12 messages to a receiver that holds each request until the
// test lets one go, the receiver never has more than 3 at once, the engine
// refills a slot as soon as one is free (until the queue is empty), and
// counts nothing in flight once every message is delivered.
func TestWorkerLimitHolds(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			const workers, messages = 3, 12
			var mu sync.Mutex
			cur, peak := 0, 0
			release := make(chan struct{})
			stop := make(chan struct{})
			h := newHarness(t, d, Config{Workers: workers, EndpointConcurrency: 8, AttemptTimeout: time.Minute, PollInterval: 20 * time.Millisecond},
				func(http.ResponseWriter, *http.Request) {
					mu.Lock()
					cur++
					peak = max(peak, cur)
					mu.Unlock()
					select {
					case <-release:
					case <-stop:
					}
					mu.Lock()
					cur--
					mu.Unlock()
				})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- h.e.Run(ctx) }()
			t.Cleanup(func() {
				close(stop) // (before the drain, which waits for held requests)
				cancel()
				require.NoError(t, <-done)
			})

			var sent []string
			for range messages {
				now := store.Now()
				m, _, err := h.st.InsertMessage(ctx, store.Message{ID: ids.NewUUID(), ProjectID: h.project.ID, EndpointID: h.endpoint.ID, Status: store.StatusQueued,
					Payload: []byte(`{}`), PayloadSHA256: "x", SizeBytes: 2, Headers: store.Headers{}, NextAttemptAt: &now, CreatedAt: now, UpdatedAt: now})
				require.NoError(t, err)
				sent = append(sent, m.ID)
			}
			held := func() int {
				mu.Lock()
				defer mu.Unlock()
				return cur
			}
			inFlight := func() int {
				h.e.mu.Lock()
				defer h.e.mu.Unlock()
				return h.e.inflight
			}
			for left := messages; left > 0; left-- {
				want := min(workers, left)
				poll.Until(t, time.Minute, func() bool { return held() == want }, "the receiver holds %d requests", want)
				require.LessOrEqual(t, inFlight(), workers)
				release <- struct{}{} // one attempt ends
			}
			for _, id := range sent {
				poll.Until(t, time.Minute, func() bool {
					m, err := h.st.GetMessage(ctx, h.project.ID, id)
					require.NoError(t, err)
					return m.Status == store.StatusSucceeded
				}, "message %s delivered", id)
			}
			poll.Until(t, time.Minute, func() bool { return inFlight() == 0 }, "every slot comes back")
			mu.Lock()
			require.Equal(t, workers, peak, "never more than Workers attempts at once")
			mu.Unlock()
		})
	}
}
