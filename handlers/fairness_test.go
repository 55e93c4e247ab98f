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
		got := rc.waitFor(t, 10, 15*time.Second)
		span := got[9].at.Sub(got[0].at)
		require.GreaterOrEqual(t, span, 1700*time.Millisecond, "9 intervals at 5/s take 1.8s")
		require.Less(t, span, 10*time.Second, "and not much longer")
		for _, id := range ids {
			m := e.waitStatus(uuid.MustParse(id), "succeeded", 5*time.Second)
			require.Equal(t, 1, m.AttemptCount, "waiting for the rate limit spends no attempt")
		}
	})
}

// TestSlowEndpointDoesNotStarveOthers: while one endpoint hangs until the
// attempt timeout on every request, a fast endpoint keeps at least 80% of
// the delivery rate it has alone. The rate is measured alone and then beside
// the hanging endpoint in adjacent windows, in up to five rounds; the best
// round's ratio must reach 0.8. Other tests load the same two cores, so one
// window can be unlucky; an engine that lets the slow endpoint take the
// workers fails every round (with the per-endpoint cap raised to the worker
// count, the ratio measured here was 0.13 to 0.78 and the test failed).
// It is not parallel: Go runs it before this package's parallel tests, so
// their load does not distort the rates (under that load a correct engine
// measured 0.31 to 0.78).
func TestSlowEndpointDoesNotStarveOthers(t *testing.T) {
	cfg := testEngineConfig()
	cfg.Workers = 16
	cfg.EndpointConcurrency = 4
	e := setupWith(t, "postgres", options{receivers: true, engine: cfg})
	ctx := context.Background()
	const n = 300
	fast := newReceiver(t, nil)
	fastEP := e.createEndpoint(e.a, fast.url("/fast"))
	delivered := 0
	// rate queues n messages behind a pause, then measures how fast they
	// are delivered once the endpoint resumes.
	rate := func() float64 {
		_, err := e.a.client.PauseEndpointWithResponse(ctx, fastEP.Id)
		require.NoError(t, err)
		for i := range n {
			status, _, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"i":%d}}`, fastEP.Id, i))
			require.Equal(t, http.StatusAccepted, status)
		}
		start := time.Now()
		_, err = e.a.client.ResumeEndpointWithResponse(ctx, fastEP.Id)
		require.NoError(t, err)
		got := fast.waitFor(t, delivered+n, 60*time.Second)
		delivered += n
		return float64(n) / got[delivered-1].at.Sub(start).Seconds()
	}

	var hanging atomic.Int64
	hang := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		hanging.Add(1)
		defer hanging.Add(-1)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	slowEP := e.createEndpoint(e.a, hang.url("/slow"))
	for i := range 50 {
		e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"i":%d}}`, slowEP.Id, i))
	}
	slow := func(on bool) {
		if on {
			_, err := e.a.client.ResumeEndpointWithResponse(ctx, slowEP.Id)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return hanging.Load() == int64(cfg.EndpointConcurrency) }, 10*time.Second, 5*time.Millisecond,
				"the hanging endpoint holds its share of workers")
			return
		}
		_, err := e.a.client.PauseEndpointWithResponse(ctx, slowEP.Id)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return hanging.Load() == 0 }, 10*time.Second, 5*time.Millisecond)
	}
	slow(false)
	best := 0.0
	for round := range 5 {
		alone := rate()
		slow(true)
		beside := rate()
		slow(false)
		t.Logf("round %d: fast endpoint %.0f msg/s alone, %.0f msg/s beside a hanging endpoint", round+1, alone, beside)
		best = max(best, beside/alone)
		if best >= 0.8 {
			break
		}
	}
	require.GreaterOrEqual(t, best, 0.8)
}
