package metrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/internal/testclock"
	"github.com/hookd/hookd/metrics"
	"github.com/hookd/hookd/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeStats is a StatsSource that counts its reads and answers what it is
// told.
type fakeStats struct {
	mu    sync.Mutex
	reads int
	limit int
	stats store.QueueStats
	err   error
	// clock, if set, is advanced by cost during each read.
	clock *testclock.Clock
	cost  time.Duration
}

func (f *fakeStats) QueueStats(_ context.Context, _ time.Time, topN int) (store.QueueStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	f.limit = topN
	if f.clock != nil {
		f.clock.Advance(f.cost)
	}
	return f.stats, f.err
}

func (f *fakeStats) set(qs store.QueueStats, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats, f.err = qs, err
}

func (f *fakeStats) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func gauges(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	var b strings.Builder
	for _, name := range []string{"hookd_queue_depth", "hookd_queue_oldest_due_age_seconds", "hookd_endpoint_queue_depth",
		"hookd_endpoint_queue_oldest_due_age_seconds", "hookd_dlq_messages", "hookd_endpoints_disabled", "hookd_metrics_collect_errors_total"} {
		n, err := testutil.GatherAndCount(m.Registry(), name)
		require.NoError(t, err)
		if n == 0 {
			continue
		}
		out, err := testutil.GatherAndFormat(m.Registry(), expfmt.TypeTextPlain, name)
		require.NoError(t, err)
		for _, line := range strings.Split(string(out), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

// TestQueueGaugesAreCachedAndKeptOnErrors: the database is read at most
// once per refresh interval; a failed read is counted and the last good
// values stay; before any good read there are no queue gauges at all.
func TestQueueGaugesAreCachedAndKeptOnErrors(t *testing.T) {
	t.Parallel()
	c := testclock.At(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	src := &fakeStats{}
	m, err := metrics.New(metrics.Options{Stats: src, EndpointLimit: 2, Refresh: 5 * time.Second, Now: c.Now, Elapsed: c.Now, Logger: quiet})
	require.NoError(t, err)

	src.set(store.QueueStats{}, errors.New("database down"))
	require.Equal(t, "hookd_metrics_collect_errors_total 1\n", gauges(t, m), "no values before a good read")
	require.Equal(t, 1, src.readCount())

	c.Advance(5 * time.Second)
	src.set(store.QueueStats{
		Due: 7, OldestDue: c.Now().Add(-90 * time.Second), DLQ: 4, DisabledEndpoints: 1,
		Endpoints: []store.EndpointDue{{EndpointID: "ep_a", Due: 5, OldestDue: c.Now().Add(-90 * time.Second)}, {EndpointID: "ep_b", Due: 2, OldestDue: c.Now()}},
	}, nil)
	want := `hookd_queue_depth 7
hookd_queue_oldest_due_age_seconds 90
hookd_endpoint_queue_depth{endpoint_id="ep_a"} 5
hookd_endpoint_queue_depth{endpoint_id="ep_b"} 2
hookd_endpoint_queue_oldest_due_age_seconds{endpoint_id="ep_a"} 90
hookd_endpoint_queue_oldest_due_age_seconds{endpoint_id="ep_b"} 0
hookd_dlq_messages 4
hookd_endpoints_disabled 1
hookd_metrics_collect_errors_total 1
`
	require.Equal(t, want, gauges(t, m))
	require.Equal(t, 2, src.readCount())
	require.Equal(t, 2, src.limit, "the endpoint limit is passed on")

	// Within the refresh interval: from memory, even though the queue changed.
	c.Advance(4 * time.Second)
	src.set(store.QueueStats{Due: 1}, nil)
	require.Equal(t, want, gauges(t, m))
	require.Equal(t, 2, src.readCount())

	// A failed read keeps the last values.
	c.Advance(time.Second)
	src.set(store.QueueStats{}, errors.New("timeout"))
	require.Equal(t, strings.Replace(want, "errors_total 1", "errors_total 2", 1), gauges(t, m))
	require.Equal(t, 3, src.readCount())

	c.Advance(5 * time.Second)
	src.set(store.QueueStats{Due: 1, OldestDue: c.Now().Add(-time.Second)}, nil)
	require.Equal(t, `hookd_queue_depth 1
hookd_queue_oldest_due_age_seconds 1
hookd_dlq_messages 0
hookd_endpoints_disabled 0
hookd_metrics_collect_errors_total 2
`, gauges(t, m), "endpoints that left the top N lose their series")
}

// TestSlowReadsAreSpacedOut: a read that takes 1 s is not repeated for
// 20 s, although the refresh interval is 5 s.
func TestSlowReadsAreSpacedOut(t *testing.T) {
	t.Parallel()
	c := testclock.At(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	src := &fakeStats{clock: c, cost: time.Second}
	m, err := metrics.New(metrics.Options{Stats: src, Refresh: 5 * time.Second, Now: c.Now, Elapsed: c.Now, Logger: quiet})
	require.NoError(t, err)
	gauges(t, m)
	require.Equal(t, 1, src.readCount())
	c.Advance(18 * time.Second) // 19 s after the read began
	gauges(t, m)
	require.Equal(t, 1, src.readCount())
	c.Advance(time.Second)
	gauges(t, m)
	require.Equal(t, 2, src.readCount())
}

// TestWallClockStepsDoNotFreezeGauges: the refresh interval runs on the
// elapsed clock, so setting the wall clock back an hour (NTP, a VM resume)
// neither freezes the gauges for that hour nor rushes reads.
func TestWallClockStepsDoNotFreezeGauges(t *testing.T) {
	t.Parallel()
	wall := testclock.At(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	elapsed := testclock.At(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	src := &fakeStats{}
	m, err := metrics.New(metrics.Options{Stats: src, Refresh: 5 * time.Second, Now: wall.Now, Elapsed: elapsed.Now, Logger: quiet})
	require.NoError(t, err)
	gauges(t, m)
	require.Equal(t, 1, src.readCount())
	wall.Advance(-time.Hour)
	elapsed.Advance(5 * time.Second)
	gauges(t, m)
	require.Equal(t, 2, src.readCount(), "read again after the refresh interval, whatever the wall clock did")
	wall.Advance(2 * time.Hour)
	gauges(t, m)
	require.Equal(t, 2, src.readCount(), "a wall clock jump forward does not force a read")
}

// TestAttemptsAreCountedByOutcomeAndClass: each observation lands in its
// outcome, status class, histogram, retry track and DLQ counter.
func TestAttemptsAreCountedByOutcomeAndClass(t *testing.T) {
	t.Parallel()
	m, err := metrics.New(metrics.Options{Logger: quiet})
	require.NoError(t, err)
	for _, a := range []delivery.AttemptObservation{
		{Class: delivery.Success, Status: 204, Duration: 3 * time.Millisecond},
		{Class: delivery.Retryable, Status: 429, Duration: 20 * time.Millisecond, RetryType: "fast"},
		{Class: delivery.Retryable, Status: 0, Duration: 30 * time.Second, RetryType: "slow"},
		{Class: delivery.Retryable, Status: 503, Duration: time.Second, DeadLettered: true},
		{Class: delivery.Permanent, Status: 302, Duration: 40 * time.Millisecond, DeadLettered: true},
		{Class: delivery.Permanent, Status: 0, Duration: time.Millisecond, DeadLettered: true},
	} {
		m.ObserveAttempt(a)
	}
	m.MessageAccepted()
	out, err := testutil.GatherAndFormat(m.Registry(), expfmt.TypeTextPlain, "hookd_delivery_attempts_total",
		"hookd_retries_scheduled_total", "hookd_messages_dead_lettered_total", "hookd_messages_accepted_total")
	require.NoError(t, err)
	var got []string
	for _, line := range strings.Split(string(out), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			got = append(got, line)
		}
	}
	require.Equal(t, []string{
		`hookd_delivery_attempts_total{outcome="permanent",status_class="3xx"} 1`,
		`hookd_delivery_attempts_total{outcome="permanent",status_class="4xx"} 0`,
		`hookd_delivery_attempts_total{outcome="permanent",status_class="none"} 1`,
		`hookd_delivery_attempts_total{outcome="retryable",status_class="4xx"} 1`,
		`hookd_delivery_attempts_total{outcome="retryable",status_class="5xx"} 1`,
		`hookd_delivery_attempts_total{outcome="retryable",status_class="none"} 1`,
		`hookd_delivery_attempts_total{outcome="success",status_class="2xx"} 1`,
		`hookd_messages_accepted_total 1`,
		`hookd_messages_dead_lettered_total 3`,
		`hookd_retries_scheduled_total{track="fast"} 1`,
		`hookd_retries_scheduled_total{track="slow"} 1`,
	}, got)
	hist, err := testutil.GatherAndFormat(m.Registry(), expfmt.TypeTextPlain, "hookd_delivery_attempt_duration_seconds")
	require.NoError(t, err)
	require.Contains(t, string(hist), `hookd_delivery_attempt_duration_seconds_bucket{outcome="retryable",le="0.025"} 1`)
	require.Contains(t, string(hist), `hookd_delivery_attempt_duration_seconds_bucket{outcome="retryable",le="30"} 3`)
	require.Contains(t, string(hist), `hookd_delivery_attempt_duration_seconds_count{outcome="success"} 1`)
}

// TestHTTPLabelsStayBounded: methods outside the standard set are "other".
func TestHTTPLabelsStayBounded(t *testing.T) {
	t.Parallel()
	m, err := metrics.New(metrics.Options{Logger: quiet})
	require.NoError(t, err)
	m.ObserveHTTP("/v1/endpoints", "GET", 200, time.Millisecond)
	m.ObserveHTTP("/v1/endpoints", "X-RANDOM-1", 405, time.Millisecond)
	m.ObserveHTTP("/v1/endpoints", "X-RANDOM-2", 405, time.Millisecond)
	n, err := testutil.GatherAndCount(m.Registry(), "hookd_http_requests_total")
	require.NoError(t, err)
	require.Equal(t, 2, n)
}

// TestNilMetricsIsOff: the recording methods of a nil *Metrics do nothing.
func TestNilMetricsIsOff(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	require.NotPanics(t, func() {
		m.MessageAccepted()
		m.ObserveAttempt(delivery.AttemptObservation{Class: delivery.Success, Status: 200})
		m.ObserveHTTP("/healthz", "GET", 200, time.Millisecond)
	})
}

// exercised returns Metrics with a sample in every family, and a scrape of
// its handler.
func exercised(t *testing.T) (*metrics.Metrics, string) {
	t.Helper()
	m, err := metrics.New(metrics.Options{Logger: quiet, Stats: &fakeStats{stats: store.QueueStats{
		Due: 1, Endpoints: []store.EndpointDue{{EndpointID: "ep_a", Due: 1}}}}})
	require.NoError(t, err)
	m.MessageAccepted()
	m.ObserveAttempt(delivery.AttemptObservation{Class: delivery.Retryable, Status: 429, RetryType: "fast", DeadLettered: true})
	m.ObserveHTTP("/v1/endpoints", "GET", 200, time.Millisecond)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, metrics.Path, nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return m, rec.Body.String()
}

// TestNamesFollowPrometheusConventions runs promlint over every family
// (the Go and process collectors included).
func TestNamesFollowPrometheusConventions(t *testing.T) {
	t.Parallel()
	m, body := exercised(t)
	require.Contains(t, body, "hookd_endpoint_queue_depth{endpoint_id=\"ep_a\"} 1")
	require.Contains(t, body, "go_goroutines ")
	require.Contains(t, body, "process_resident_memory_bytes ")
	problems, err := testutil.GatherAndLint(m.Registry())
	require.NoError(t, err)
	require.Empty(t, problems)
}
