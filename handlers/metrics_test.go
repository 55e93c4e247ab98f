package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/store"
)

func (e *env) metrics(tn tenant, w gen.MetricsWindow, ep *string) gen.Metrics {
	e.t.Helper()
	r, err := tn.client.GetMetricsWithResponse(context.Background(), &gen.GetMetricsParams{Window: &w, EndpointId: ep})
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusOK, r.StatusCode(), string(r.Body))
	require.Equal(e.t, w, r.JSON200.Data.Window)
	return r.JSON200.Data
}

func (e *env) timeseries(tn tenant, w gen.MetricsWindow, ep *string) []gen.MetricsBucket {
	e.t.Helper()
	r, err := tn.client.GetMetricsTimeseriesWithResponse(context.Background(), &gen.GetMetricsTimeseriesParams{Window: &w, EndpointId: ep})
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusOK, r.StatusCode(), string(r.Body))
	require.Equal(e.t, w, r.JSON200.Data.Window)
	return r.JSON200.Data.Buckets
}

func TestMetricsWindowsAndBuckets(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		now := time.Date(2026, 3, 10, 12, 34, 56, 0, time.UTC)
		e.server.Now = func() time.Time { return now }
		at := func(s string) time.Time {
			tm, err := time.Parse(time.RFC3339, s)
			require.NoError(t, err)
			return tm
		}
		epX, epY := ids.NewEndpoint(), ids.NewEndpoint()
		pa, pb := e.a.project.ID, e.b.project.ID
		require.NoError(t, e.store.AddStats(context.Background(), []store.StatsDelta{
			// The current minute.
			{ProjectID: pa, EndpointID: epX, Minute: at("2026-03-10T12:34:00Z"), StatsCounts: store.StatsCounts{Total: 3, Succeeded: 2, Failed: 1, Retries: 4, LatencySumMs: 100 + 301, LatencyCount: 2}},
			// The oldest minute of the 1h window, and the one before it.
			{ProjectID: pa, EndpointID: epY, Minute: at("2026-03-10T11:35:00Z"), StatsCounts: store.StatsCounts{Total: 1}},
			{ProjectID: pa, EndpointID: epY, Minute: at("2026-03-10T11:34:00Z"), StatsCounts: store.StatsCounts{Total: 5, Succeeded: 5}},
			// The oldest hour of the 24h window, and the one before it.
			{ProjectID: pa, EndpointID: epX, Minute: at("2026-03-09T13:00:00Z"), StatsCounts: store.StatsCounts{Total: 2, Failed: 2}},
			{ProjectID: pa, EndpointID: epX, Minute: at("2026-03-09T12:59:00Z"), StatsCounts: store.StatsCounts{Total: 7, Succeeded: 7}},
			// Another project's messages never count.
			{ProjectID: pb, EndpointID: ids.NewEndpoint(), Minute: at("2026-03-10T12:34:00Z"), StatsCounts: store.StatsCounts{Total: 100, Succeeded: 100}},
		}))

		m := e.metrics(e.a, gen.N1h, nil)
		require.Equal(t, gen.Metrics{Window: gen.N1h, TotalMessages: 4, Succeeded: 2, Failed: 1, Retries: 4,
			SuccessRate: 2.0 / 3.0, AvgLatencyMs: 201}, m)
		m = e.metrics(e.a, gen.N24h, nil)
		require.Equal(t, int64(3+1+5+2), m.TotalMessages)
		require.Equal(t, int64(7), m.Succeeded)
		require.Equal(t, int64(3), m.Failed)
		require.InDelta(t, 0.7, m.SuccessRate, 1e-9)
		require.Equal(t, int64(3+1+5+2+7), e.metrics(e.a, gen.N7d, nil).TotalMessages)
		require.Equal(t, int64(3+1+5+2+7), e.metrics(e.a, gen.N30d, nil).TotalMessages)
		require.Equal(t, int64(3), e.metrics(e.a, gen.N1h, &epX).TotalMessages)
		require.Equal(t, int64(1), e.metrics(e.a, gen.N1h, &epY).TotalMessages)
		require.Equal(t, int64(100), e.metrics(e.b, gen.N1h, nil).TotalMessages)

		// The default window is 24h.
		r, err := e.a.client.GetMetricsWithResponse(context.Background(), &gen.GetMetricsParams{})
		require.NoError(t, err)
		require.Equal(t, gen.N24h, r.JSON200.Data.Window)
		require.Equal(t, int64(11), r.JSON200.Data.TotalMessages)

		b := e.timeseries(e.a, gen.N1h, nil)
		require.Len(t, b, 60)
		require.Equal(t, at("2026-03-10T11:35:00Z"), b[0].Timestamp.UTC())
		require.Equal(t, at("2026-03-10T12:34:00Z"), b[59].Timestamp.UTC())
		require.Equal(t, gen.MetricsBucket{Timestamp: b[0].Timestamp, Total: 1, Retrying: 1}, b[0])
		require.Equal(t, gen.MetricsBucket{Timestamp: b[59].Timestamp, Total: 3, Succeeded: 2, Failed: 1, AvgLatencyMs: 201}, b[59])
		for _, x := range b[1:59] {
			require.Equal(t, gen.MetricsBucket{Timestamp: x.Timestamp}, x, "an empty bucket")
		}

		b = e.timeseries(e.a, gen.N24h, nil)
		require.Len(t, b, 24)
		require.Equal(t, at("2026-03-09T13:00:00Z"), b[0].Timestamp.UTC())
		require.Equal(t, int64(2), b[0].Total)
		require.Equal(t, int64(2), b[0].Failed)
		require.Equal(t, at("2026-03-10T11:00:00Z"), b[22].Timestamp.UTC())
		require.Equal(t, int64(6), b[22].Total)
		require.Equal(t, int64(3), b[23].Total)

		b = e.timeseries(e.a, gen.N7d, nil)
		require.Len(t, b, 28)
		require.Equal(t, at("2026-03-03T18:00:00Z"), b[0].Timestamp.UTC())
		require.Equal(t, at("2026-03-10T12:00:00Z"), b[27].Timestamp.UTC())
		require.Equal(t, int64(7+2), b[23].Total, "09T12:00 to 18:00")
		require.Equal(t, int64(1+5), b[26].Total, "10T06:00 to 12:00")
		require.Equal(t, int64(3), b[27].Total)

		b = e.timeseries(e.a, gen.N30d, nil)
		require.Len(t, b, 30)
		require.Equal(t, at("2026-02-09T00:00:00Z"), b[0].Timestamp.UTC())
		require.Equal(t, int64(9), b[28].Total)
		require.Equal(t, int64(9), b[29].Total)

		// An empty window: zeros, no division by zero.
		empty := e.newTenant("empty")
		require.Equal(t, gen.Metrics{Window: gen.N30d}, e.metrics(empty, gen.N30d, nil))
		for _, x := range e.timeseries(empty, gen.N24h, nil) {
			require.Equal(t, gen.MetricsBucket{Timestamp: x.Timestamp}, x)
		}

		// Bad input: the envelope's 400.
		status, env, _ := e.do(http.MethodGet, "/v1/metrics?window=2h", e.a.key, "", nil)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "INVALID_REQUEST", env.Error.Code)
		status, env, _ = e.do(http.MethodGet, "/v1/metrics/timeseries?endpoint_id=nope", e.a.key, "", nil)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "INVALID_REQUEST", env.Error.Code)
	})
}

// flushedMetrics flushes the statistics and reads project a's metrics for the
// last hour (of the endpoint, if not nil) until settled says they have
// caught up with what the test saw happen; the test then checks them.
func (e *env) flushedMetrics(t *testing.T, endpointID *string, settled func(gen.Metrics) bool) gen.Metrics {
	t.Helper()
	var m gen.Metrics
	poll.Until(t, patience, func() bool {
		require.NoError(t, e.store.FlushStats(context.Background()))
		m = e.metrics(e.a, gen.N1h, endpointID)
		return settled(m)
	}, func() string { return fmt.Sprintf("the counters never caught up: %+v", m) })
	return m
}

// TestMetricsCountDeliveries: the counters follow real sends, attempts,
// retries, failures and replays.
func TestMetricsCountDeliveries(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		ok := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 0 {
				w.WriteHeader(http.StatusInternalServerError) // the first message is retried once
				return
			}
			// The receiver's work: the latencies have a floor, which a
			// loaded machine can only raise.
			time.Sleep(5 * time.Millisecond)
			w.WriteHeader(http.StatusOK)
		})
		bad := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })
		epOK, epBad := e.createEndpoint(e.a, ok.url("/ok")), e.createEndpoint(e.a, bad.url("/bad"))
		var sent []gen.SendResult
		for i, ep := range []string{epOK.Id, epOK.Id, epOK.Id, epBad.Id} {
			status, res, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":%q,"payload":{"i":%d}}`, ep, i))
			require.Equal(t, http.StatusAccepted, status)
			sent = append(sent, res)
		}
		for _, s := range sent[:3] {
			e.waitStatus(s.MessageId, gen.MessageStatusSucceeded, patience)
		}
		e.waitStatus(sent[3].MessageId, gen.MessageStatusFailedPermanent, patience)
		// The engine counts an attempt just after its record commits, so the
		// status the test saw may be a moment ahead of the counters (a
		// loaded machine showed it): flush and read until they are there.
		m := e.flushedMetrics(t, nil, func(m gen.Metrics) bool { return m.Succeeded == 3 && m.Failed == 1 })
		require.Equal(t, int64(4), m.TotalMessages)
		require.Equal(t, int64(3), m.Succeeded)
		require.Equal(t, int64(1), m.Failed)
		require.Equal(t, int64(1), m.Retries)
		require.InDelta(t, 0.75, m.SuccessRate, 1e-9)
		require.GreaterOrEqual(t, m.AvgLatencyMs, int64(5))
		bm := e.metrics(e.a, gen.N1h, &epBad.Id)
		require.Equal(t, gen.Metrics{Window: gen.N1h, TotalMessages: 1, Failed: 1}, bm)

		// A replay takes the message out of the failed count until it ends again.
		r, err := e.a.client.ReplayMessageWithResponse(context.Background(), sent[3].MessageId)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.StatusCode(), string(r.Body))
		e.waitStatus(sent[3].MessageId, gen.MessageStatusFailedPermanent, patience)
		bm = e.flushedMetrics(t, &epBad.Id, func(m gen.Metrics) bool { return m.Failed == 1 && m.Retries > 0 })
		require.Equal(t, int64(1), bm.Failed)
		require.Equal(t, int64(1), bm.Retries, "the replay's attempt is the message's second")
	})
}
