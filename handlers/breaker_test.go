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
	"github.com/hookd/hookd/store"
)

// getEndpoint reads an endpoint of tenant a.
func (e *env) getEndpoint(id string) gen.Endpoint {
	e.t.Helper()
	r, err := e.a.client.GetEndpointWithResponse(context.Background(), id)
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusOK, r.StatusCode(), string(r.Body))
	return r.JSON200.Data
}

func TestCircuitBreakerDisablesAndResumeRecovers(t *testing.T) {
	t.Parallel()
	cfg := testEngineConfig()
	cfg.Schedule.Slow = []time.Duration{10 * time.Millisecond}
	cfg.Schedule.MaxAttempts = 100
	cfg.Breaker = store.BreakerPolicy{DisableAfterFailures: 6, ProbeAfterFailures: 2,
		ProbeBackoff: 10 * time.Millisecond, ProbeBackoffMax: 40 * time.Millisecond}
	forEachDialectWith(t, options{receivers: true, engine: cfg}, func(t *testing.T, e *env) {
		var healthy atomic.Bool
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			if healthy.Load() {
				w.WriteHeader(http.StatusOK)
				return
			}
			w.WriteHeader(http.StatusBadGateway)
		})
		ep := e.createEndpoint(e.a, rc.url("/hook"))
		var msgs []uuid.UUID
		for i := range 5 {
			status, res, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":%q,"payload":{"n":%d}}`, ep.Id, i))
			require.Equal(t, http.StatusAccepted, status)
			msgs = append(msgs, res.MessageId)
		}

		// Disabled once six attempts in a row failed; visible on the endpoint.
		deadline := time.Now().Add(10 * time.Second)
		var got gen.Endpoint
		for {
			got = e.getEndpoint(ep.Id)
			if got.DisabledAt != nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		require.NotNil(t, got.DisabledAt, "the endpoint was never disabled")
		require.True(t, got.Paused)
		require.GreaterOrEqual(t, got.ConsecutiveFailures, 6)
		require.NotNil(t, got.FailingSince)
		require.NotNil(t, got.DisabledReason)
		require.Contains(t, *got.DisabledReason, "failed attempts in a row")
		require.Contains(t, *got.DisabledReason, "HTTP 502")

		// Disabled means nothing more is sent: the messages wait, paused.
		time.Sleep(200 * time.Millisecond)
		before := len(rc.requests())
		time.Sleep(300 * time.Millisecond)
		require.Len(t, rc.requests(), before, "attempts continued after the endpoint was disabled")
		for _, id := range msgs {
			e.waitStatus(id, gen.MessageStatusPaused, 5*time.Second)
		}

		// Resume re-enables it, and every waiting message is delivered.
		healthy.Store(true)
		r, err := e.a.client.ResumeEndpointWithResponse(context.Background(), ep.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.StatusCode(), string(r.Body))
		require.EqualValues(t, len(msgs), r.JSON200.Data.MessagesRequeued)
		for _, id := range msgs {
			e.waitStatus(id, gen.MessageStatusSucceeded, 10*time.Second)
		}
		got = e.getEndpoint(ep.Id)
		require.Nil(t, got.DisabledAt)
		require.Nil(t, got.DisabledReason)
		require.Nil(t, got.FailingSince)
		require.Zero(t, got.ConsecutiveFailures)
		require.False(t, got.Paused)

		logs := e.logs.String()
		require.Contains(t, logs, "endpoint disabled by the circuit breaker")
		require.Contains(t, logs, ep.Id)
	})
}

// TestCircuitBreakerSpacesAttempts: while an endpoint answers nothing but
// errors, hookd probes it one attempt at a time with growing waits instead
// of trying every due message, and the waiting messages spend no attempts.
func TestCircuitBreakerSpacesAttempts(t *testing.T) {
	t.Parallel()
	cfg := testEngineConfig()
	cfg.Schedule.Slow = []time.Duration{5 * time.Millisecond}
	cfg.Schedule.MaxAttempts = 100
	cfg.Breaker = store.BreakerPolicy{DisableAfterFailures: -1, DisableAfter: -1, ProbeAfterFailures: 3,
		ProbeBackoff: 100 * time.Millisecond, ProbeBackoffMax: 200 * time.Millisecond}
	forEachDialectWith(t, options{receivers: true, engine: cfg}, func(t *testing.T, e *env) {
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
		ep := e.createEndpoint(e.a, rc.url("/hook"))
		var msgs []uuid.UUID
		for i := range 20 {
			status, res, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":%q,"payload":{"n":%d}}`, ep.Id, i))
			require.Equal(t, http.StatusAccepted, status)
			msgs = append(msgs, res.MessageId)
		}
		rc.waitFor(t, 3, 5*time.Second)
		time.Sleep(time.Second)
		// Without spacing, 20 messages retrying every 5 ms make hundreds of
		// attempts in a second. With it: the first failures (at most one
		// per worker slot of the endpoint), then about one probe per
		// 100–200 ms.
		n := len(rc.requests())
		require.LessOrEqual(t, n, 8+3+12, "attempts were not spaced out: %d in about a second", n)
		// Every request the receiver got is one counted attempt; waiting
		// spent none. (Compared between probes: one in flight is not
		// recorded yet.)
		// One query sums them, so a probe rarely falls between the reads
		// (the API, message by message, was slow enough under load for a
		// probe to land in every snapshot).
		for _, id := range msgs {
			r, err := e.a.client.GetMessageWithResponse(context.Background(), id)
			require.NoError(t, err)
			require.Contains(t, []gen.MessageStatus{gen.MessageStatusQueued, gen.MessageStatusPendingRetry, gen.MessageStatusDelivering}, r.JSON200.Data.Status)
		}
		attempts := -1
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			n = len(rc.requests())
			require.NoError(t, e.store.DB().QueryRow("SELECT COALESCE(SUM(attempt_count), 0) FROM messages").Scan(&attempts))
			if attempts == n && len(rc.requests()) == n {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		require.Equal(t, n, attempts)
		require.Less(t, attempts, 2*len(msgs))
		got := e.getEndpoint(ep.Id)
		require.Nil(t, got.DisabledAt, "a breaker with disabling off disabled the endpoint")
		require.GreaterOrEqual(t, got.ConsecutiveFailures, n-1)
	})
}
