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

	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/internal/poll"
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
	cfg.Breaker = delivery.Breaker{DisableAfterFailures: 6, ProbeAfterFailures: 2,
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
		var got gen.Endpoint
		poll.Until(t, patience, func() bool {
			got = e.getEndpoint(ep.Id)
			return got.DisabledAt != nil
		}, "the endpoint was never disabled")
		require.True(t, got.Paused)
		require.GreaterOrEqual(t, got.ConsecutiveFailures, 6)
		require.NotNil(t, got.FailingSince)
		require.NotNil(t, got.DisabledReason)
		require.Contains(t, *got.DisabledReason, "failed attempts in a row")
		require.Contains(t, *got.DisabledReason, "HTTP 502")

		// Disabled means nothing more is sent: the messages wait, paused.
		// Once all are paused none is in flight (a leased message is neither
		// parked by the disable nor by a pause), so every request the
		// receiver got is a recorded attempt.
		for _, id := range msgs {
			e.waitStatus(id, gen.MessageStatusPaused, patience)
		}
		var attempts int
		require.NoError(t, e.store.DB().QueryRow("SELECT COALESCE(SUM(attempt_count), 0) FROM messages").Scan(&attempts))
		before := len(rc.requests())
		require.Equal(t, attempts, before, "every request was a counted attempt, and none is in flight")
		// The engine has claimed since: a paused message it took would
		// have been attempted.
		e.claimTurn(t)
		require.Len(t, rc.requests(), before, "attempts continued after the endpoint was disabled")

		// Resume re-enables it, and every waiting message is delivered.
		healthy.Store(true)
		r, err := e.a.client.ResumeEndpointWithResponse(context.Background(), ep.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.StatusCode(), string(r.Body))
		require.EqualValues(t, len(msgs), r.JSON200.Data.MessagesRequeued)
		for _, id := range msgs {
			e.waitStatus(id, gen.MessageStatusSucceeded, patience)
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
	cfg.Breaker = delivery.Breaker{DisableAfterFailures: -1, DisableAfter: -1, ProbeAfterFailures: 3,
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
		// Without spacing, 20 messages retrying every 5 ms make hundreds of
		// attempts a second, one right on another's heels. With it: the
		// first failures (at most one per worker slot of the endpoint, and
		// the few that start before the third failure is recorded), then
		// one probe at a time, each starting at least ProbeBackoff after the
		// one before failed. So, counted by when the receiver got them
		// rather than in a window of wall-clock time (which a loaded machine
		// stretches), at most 8+3 requests follow the previous one closely.
		// (Close means within half the backoff: a request that slipped in
		// just before the third failure counted, and the first probe, may
		// be a hair under a backoff apart.)
		const probes = 5
		got := rc.waitFor(t, 8+3+probes, patience)
		crowded := 0
		for i := 1; i < len(got); i++ {
			if got[i].at.Sub(got[i-1].at) < cfg.Breaker.ProbeBackoff/2 {
				crowded++
			}
		}
		t.Logf("%d of %d requests came right after the one before", crowded, len(got))
		require.LessOrEqual(t, crowded, 8+3, "attempts were not spaced out: %d of %d right after the one before", crowded, len(got))
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
		var n, attempts int
		poll.Until(t, patience, func() bool {
			n = len(rc.requests())
			require.NoError(t, e.store.DB().QueryRow("SELECT COALESCE(SUM(attempt_count), 0) FROM messages").Scan(&attempts))
			return attempts == n && len(rc.requests()) == n
		}, "requests and counted attempts never matched")
		require.Less(t, attempts, 2*len(msgs))
		ept := e.getEndpoint(ep.Id)
		require.Nil(t, ept.DisabledAt, "a breaker with disabling off disabled the endpoint")
		require.GreaterOrEqual(t, ept.ConsecutiveFailures, n-1)
	})
}
