package delivery

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/store"
)

// TestBacklogNeedsLongDueMessages: a claim that comes back full marks a
// backlog (handoffs stop, so new messages queue behind the old ones) only
// when its messages have been due longer than backlogAge. A full claim of
// messages that just fell due, such as the rest of a publish to more
// endpoints than there were free workers, leaves the handoff on; a full
// claim of long-due messages turns it off until a claim finds none.
func TestBacklogNeedsLongDueMessages(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d string) {
		h := newHarness(t, d, Config{Workers: 4, ClaimBatch: 2, EndpointConcurrency: 4, AttemptTimeout: 5 * time.Second},
			func(http.ResponseWriter, *http.Request) {})
		e := h.e
		// The engine's clock stands still at the start, so the fresh
		// messages below have been due for no time at all however slow
		// the machine is, and the old ones for about a minute.
		start := store.Now()
		e.now = func() time.Time { return start }
		t.Cleanup(e.wg.Wait) // the attempts started finish before the store closes
		backlog := func() bool {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.backlog
		}
		claim := func() bool {
			full, _ := e.claimAndStart(context.Background())
			return full
		}

		h.insert(t, 0)
		h.insert(t, 0)
		require.True(t, claim(), "two fresh messages fill a claim of two")
		require.False(t, backlog(), "fresh messages are no backlog")

		h.insert(t, time.Minute)
		h.insert(t, time.Minute)
		require.True(t, claim())
		require.True(t, backlog(), "a full claim of messages due for a minute is a backlog")

		// (A claim with no free worker leaves the backlog as it was: wait
		// for the four attempts to end.)
		poll.Until(t, time.Minute, func() bool { return h.inFlight() == 0 }, "the attempts end")
		require.False(t, claim(), "nothing left")
		require.False(t, backlog(), "the backlog is over")
	})
}
