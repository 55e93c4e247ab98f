package delivery

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/poll"
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
	forEachDialect(t, func(t *testing.T, d string) {
		const workers, messages = 3, 12
		var mu sync.Mutex
		cur, peak := 0, 0
		release, stop := make(chan struct{}), make(chan struct{})
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
		stopEngine := h.run()
		t.Cleanup(func() {
			close(stop) // (before the drain, which waits for held requests)
			require.NoError(t, stopEngine())
		})

		var sent []string
		for range messages {
			sent = append(sent, h.insert(t, 0))
		}
		held := func() int {
			mu.Lock()
			defer mu.Unlock()
			return cur
		}
		for left := messages; left > 0; left-- {
			want := min(workers, left)
			poll.Until(t, time.Minute, func() bool { return held() == want }, "the receiver holds %d requests", want)
			require.LessOrEqual(t, h.inFlight(), workers)
			release <- struct{}{} // one attempt ends
		}
		for _, id := range sent {
			poll.Until(t, time.Minute, func() bool { return h.message(t, id).Status == store.StatusSucceeded }, "message %s delivered", id)
		}
		poll.Until(t, time.Minute, func() bool { return h.inFlight() == 0 }, "every slot comes back")
		mu.Lock()
		require.Equal(t, workers, peak, "never more than Workers attempts at once")
		mu.Unlock()
	})
}
