package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/internal/poll"
)

// TestEndpointRateLimitHoldsWithoutSpendingAttempts: 10 messages to an
// endpoint limited to 5 per second (burst 1) arrive no faster than that, and
// each is delivered on its first attempt.
func TestEndpointRateLimitHoldsWithoutSpendingAttempts(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		rc := newReceiver(t, nil)
		r, err := e.a.client.CreateEndpointWithResponse(context.Background(), gen.CreateEndpointRequest{Url: rc.url("/rl"), RateLimitRps: ptr(5), Burst: ptr(1)})
		require.NoError(t, err)
		ep := r.JSON201.Data
		var ids []string
		for i := range 10 {
			_, res, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"i":%d}}`, ep.Id, i))
			ids = append(ids, res.MessageId.String())
		}
		got := rc.waitFor(t, 10, patience)
		span := got[9].at.Sub(got[0].at)
		// A lower bound only: a loaded machine can stretch the span, never
		// shrink it (the bucket holds one token at most). How long the
		// engine waits for a token is TakeToken's answer (store tests bound
		// it); a wall-clock bound on the span failed under load.
		require.GreaterOrEqual(t, span, 1700*time.Millisecond, "9 intervals at 5/s take 1.8s")
		for _, id := range ids {
			m := e.waitStatus(uuid.MustParse(id), "succeeded", patience)
			require.Equal(t, 1, m.AttemptCount, "waiting for the rate limit spends no attempt")
		}
	})
}

// TestSlowEndpointDoesNotStarveOthers: while one endpoint hangs on every
// request, a fast endpoint still gets the workers it would have alone. With
// 8 workers and a per-endpoint cap of 4, the hanging endpoint holds its 4
// and never more, and the fast endpoint — its messages queued behind the
// hanging one's older ones, so claims must skip those — runs 4 attempts at
// once beside it (its own cap, all it can ever run), then delivers every
// message. An engine that lets the slow endpoint take the workers never
// gets the fast one to 4 in flight (checked: with the cap not enforced, the
// test fails).
//
// Both receivers hold their requests until the test lets them go, so the
// test counts attempts in flight instead of timing delivery rates (which it
// did before: a loaded machine distorted them).
func TestSlowEndpointDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	cfg := testEngineConfig()
	cfg.Workers = 8
	cfg.EndpointConcurrency = 4
	// The held attempts must not time out (and fail, and trip the breaker)
	// while the test looks at them.
	cfg.AttemptTimeout, cfg.Lease = time.Minute, 2*time.Minute
	e := setupWith(t, "postgres", options{receivers: true, engine: cfg})
	ctx := context.Background()

	// inFlight counts a receiver's requests in progress, and the most at once.
	type inFlight struct{ now, most atomic.Int64 }
	hold := func(c *inFlight, release <-chan struct{}) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, _ http.ResponseWriter, r *http.Request) {
			n := c.now.Add(1)
			defer c.now.Add(-1)
			for m := c.most.Load(); n > m && !c.most.CompareAndSwap(m, n); m = c.most.Load() {
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}
	var slow, fast inFlight
	releaseSlow, releaseFast := make(chan struct{}), make(chan struct{})
	hang := newReceiver(t, hold(&slow, releaseSlow))
	quick := newReceiver(t, hold(&fast, releaseFast))
	released := false
	t.Cleanup(func() { // let the engine drain if the test failed half-way
		if !released {
			close(releaseSlow)
			close(releaseFast)
		}
	})

	slowEP := e.createEndpoint(e.a, hang.url("/slow"))
	fastEP := e.createEndpoint(e.a, quick.url("/fast"))
	_, err := e.a.client.PauseEndpointWithResponse(ctx, fastEP.Id)
	require.NoError(t, err)
	const nSlow, nFast = 50, 20
	for i := range nSlow {
		status, _, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"i":%d}}`, slowEP.Id, i))
		require.Equal(t, http.StatusAccepted, status)
	}
	poll.Until(t, patience, func() bool { return slow.now.Load() == int64(cfg.EndpointConcurrency) },
		"the hanging endpoint holds its share of workers")
	for i := range nFast {
		status, _, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"i":%d}}`, fastEP.Id, i))
		require.Equal(t, http.StatusAccepted, status)
	}
	r, err := e.a.client.ResumeEndpointWithResponse(ctx, fastEP.Id)
	require.NoError(t, err)
	require.Equal(t, int64(nFast), r.JSON200.Data.MessagesRequeued)
	poll.Until(t, patience, func() bool { return fast.now.Load() == int64(cfg.EndpointConcurrency) },
		"the fast endpoint never got its 4 workers beside the hanging one (%d in flight)", fast.now.Load())
	require.Equal(t, int64(cfg.EndpointConcurrency), slow.now.Load(), "the hanging endpoint still holds its 4")

	close(releaseFast)
	quick.waitFor(t, nFast, patience)
	require.Equal(t, int64(cfg.EndpointConcurrency), slow.now.Load(), "every fast message went by the hanging endpoint")
	require.Len(t, hang.requests(), cfg.EndpointConcurrency, "and its other messages waited")
	close(releaseSlow)
	released = true
	hang.waitFor(t, nSlow, patience)
	require.Equal(t, int64(cfg.EndpointConcurrency), slow.most.Load(), "no endpoint ever ran more than its cap")
	require.Equal(t, int64(cfg.EndpointConcurrency), fast.most.Load())
}
