package handlers_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/metrics"
)

// scrape is one parsed answer of /metrics.
type scrape map[string]*dto.MetricFamily

// scrapeMetrics GETs url + /metrics and parses the text exposition.
func scrapeMetrics(t *testing.T, url string) scrape {
	t.Helper()
	resp, err := http.Get(url + metrics.Path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// series returns the family's samples whose labels include want, by their
// full label set rendered as "k=v,k=v".
func (s scrape) series(name string, want map[string]string) map[string]*dto.Metric {
	out := map[string]*dto.Metric{}
	fam := s[name]
	if fam == nil {
		return out
	}
next:
	for _, m := range fam.GetMetric() {
		var parts []string
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
			parts = append(parts, l.GetName()+"="+l.GetValue())
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		out[strings.Join(parts, ",")] = m
	}
	return out
}

// value is the value of the one sample of name with these labels among
// its labels; the test fails if there is none. Histograms give their
// count.
func (s scrape) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	got := s.series(name, want)
	require.Len(t, got, 1, "%s%v: want one series, have %v", name, want, keys(got))
	for _, m := range got {
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("%s: no value", name)
	return 0
}

// count is value for a sample that counts something: a whole number.
func (s scrape) count(t *testing.T, name string, labels ...string) int {
	t.Helper()
	v := s.value(t, name, labels...)
	require.Equal(t, math.Trunc(v), v, "%s is a whole number", name) //nolint:testifylint // exact on purpose
	return int(v)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestMetricsAfterDeliveries: after one delivery that succeeds, one that
// fails with 500 and then succeeds, and one refused with 400, a scrape of
// /metrics on the API listener shows each count, the histogram counts by
// outcome, the retry and the DLQ (counter and gauge), an empty queue, a
// disabled endpoint and the API requests by route template; an
// idempotent repeat is not counted as accepted.
func TestMetricsAfterDeliveries(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig(),
		metrics: &metrics.Options{Refresh: time.Nanosecond, EndpointLimit: 2}}, func(t *testing.T, e *env) {
		ok := newReceiver(t, nil)
		flaky := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 0 {
				w.WriteHeader(http.StatusInternalServerError)
			}
		})
		bad := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })

		before := scrapeMetrics(t, e.url)
		require.Equal(t, 0, before.count(t, "hookd_messages_accepted_total"))
		require.Equal(t, 0, before.count(t, "hookd_delivery_attempts_total", "outcome", "success", "status_class", "2xx"),
			"the common series exist before the first attempt")
		require.Contains(t, before, "go_goroutines")
		require.Contains(t, before, "process_resident_memory_bytes")

		final := map[uuid.UUID]gen.MessageStatus{}
		var badEndpoint string
		for _, c := range []struct {
			rc    *receiver
			final gen.MessageStatus
		}{{ok, gen.MessageStatusSucceeded}, {flaky, gen.MessageStatusSucceeded}, {bad, gen.MessageStatusFailedPermanent}} {
			ep := e.createEndpoint(e.a, c.rc.url("/hook"))
			if c.rc == bad {
				badEndpoint = ep.Id
			}
			status, res, env := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":%q,"payload":{"n":1},"idempotency_key":"k1"}`, ep.Id))
			require.Equal(t, http.StatusAccepted, status, env)
			final[res.MessageId] = c.final
			if c.rc == ok {
				status, again, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":%q,"payload":{"n":1},"idempotency_key":"k1"}`, ep.Id))
				require.Equal(t, http.StatusOK, status, "an idempotent repeat")
				require.Equal(t, res.MessageId, again.MessageId)
			}
		}
		for id, status := range final {
			e.waitStatus(id, status, patience)
		}
		// Disable the endpoint by hand, as the breaker would (its own
		// tests cover how it decides).
		_, err := e.store.DB().ExecContext(context.Background(),
			fmt.Sprintf("UPDATE endpoints SET disabled_at = updated_at WHERE id = '%s'", badEndpoint))
		require.NoError(t, err)

		// The observer runs right after the record the status polls see,
		// and the queue gauges are reread only after 20 times the last
		// read's duration (the "before" scrape read them): wait for both.
		var s scrape
		var n int
		var fresh bool
		poll.Until(t, patience, func() bool {
			s = scrapeMetrics(t, e.url)
			n = 0
			for _, m := range s.series("hookd_delivery_attempts_total", nil) {
				n += int(m.GetCounter().GetValue())
			}
			disabled := s.series("hookd_endpoints_disabled", nil)
			fresh = len(disabled) == 1 && disabled[""].GetGauge().GetValue() == 1
			return n >= 4 && fresh
		}, func() string { return fmt.Sprintf("%d attempts counted, gauges reread: %v", n, fresh) })
		require.Equal(t, 4, n, "four attempts in all")

		require.Equal(t, 3, s.count(t, "hookd_messages_accepted_total"))
		require.Equal(t, 2, s.count(t, "hookd_delivery_attempts_total", "outcome", "success", "status_class", "2xx"))
		require.Equal(t, 1, s.count(t, "hookd_delivery_attempts_total", "outcome", "retryable", "status_class", "5xx"))
		require.Equal(t, 1, s.count(t, "hookd_delivery_attempts_total", "outcome", "permanent", "status_class", "4xx"))
		require.Equal(t, 0, s.count(t, "hookd_delivery_attempts_total", "outcome", "retryable", "status_class", "none"))
		require.Equal(t, 2, s.count(t, "hookd_delivery_attempt_duration_seconds", "outcome", "success"))
		require.Equal(t, 1, s.count(t, "hookd_delivery_attempt_duration_seconds", "outcome", "retryable"))
		require.Equal(t, 1, s.count(t, "hookd_delivery_attempt_duration_seconds", "outcome", "permanent"))
		require.Equal(t, 1, s.count(t, "hookd_retries_scheduled_total", "track", "slow"))
		require.Equal(t, 0, s.count(t, "hookd_retries_scheduled_total", "track", "fast"))
		require.Equal(t, 1, s.count(t, "hookd_messages_dead_lettered_total"))

		require.Equal(t, 0, s.count(t, "hookd_queue_depth"))
		require.Equal(t, 0, s.count(t, "hookd_queue_oldest_due_age_seconds"))
		require.Empty(t, s.series("hookd_endpoint_queue_depth", nil), "no endpoint has due messages")
		require.Equal(t, 1, s.count(t, "hookd_dlq_messages"))
		require.Equal(t, 1, s.count(t, "hookd_endpoints_disabled"))
		require.Equal(t, 0, s.count(t, "hookd_metrics_collect_errors_total"))

		require.Equal(t, 3, s.count(t, "hookd_http_requests_total", "route", "/v1/webhooks/send", "method", "POST", "code", "202"))
		require.Equal(t, 1, s.count(t, "hookd_http_requests_total", "route", "/v1/webhooks/send", "method", "POST", "code", "200"))
		require.Equal(t, 3, s.count(t, "hookd_http_requests_total", "route", "/v1/endpoints", "method", "POST", "code", "201"))
		require.Equal(t, 4, s.count(t, "hookd_http_request_duration_seconds", "route", "/v1/webhooks/send", "method", "POST"))
		require.Positive(t, s.count(t, "hookd_http_requests_total", "route", "/v1/messages/:id", "method", "GET", "code", "200"))
		for label := range s.series("hookd_http_requests_total", nil) {
			require.NotContains(t, label, "/v1/messages/0", "raw paths never become labels")
		}
	})
}

// TestMetricsPerEndpointSeriesStopAtN: with messages due for three
// endpoints and no engine to deliver them, the totals cover all three and
// only the two busiest (N=2) get their own series.
func TestMetricsPerEndpointSeriesStopAtN(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{metrics: &metrics.Options{Refresh: time.Nanosecond, EndpointLimit: 2}}, func(t *testing.T, e *env) {
		eps := []string{
			e.createEndpoint(e.a, "https://hooks.example.com/a").Id,
			e.createEndpoint(e.b, "https://other.example.com/b").Id,
			e.createEndpoint(e.a, "https://third.example.com/c").Id,
		}
		firstSend := time.Now()
		for i, n := range []int{3, 2, 1} {
			key := e.a.key
			if i == 1 {
				key = e.b.key
			}
			for range n {
				status, _, env := e.send(key, fmt.Sprintf(`{"endpoint_id":%q,"payload":{}}`, eps[i]))
				require.Equal(t, http.StatusAccepted, status, env)
			}
		}
		s := scrapeMetrics(t, e.url)
		require.Equal(t, 6, s.count(t, "hookd_queue_depth"))
		// The oldest message became due at the first send at the earliest.
		maxAge := time.Since(firstSend).Seconds()
		require.InDelta(t, maxAge/2, s.value(t, "hookd_queue_oldest_due_age_seconds"), maxAge/2+0.001, "0 ≤ age ≤ time since the first send")
		depth := s.series("hookd_endpoint_queue_depth", nil)
		require.Len(t, depth, 2, "per-endpoint series stop at N: %v", keys(depth))
		require.Equal(t, 3, s.count(t, "hookd_endpoint_queue_depth", "endpoint_id", eps[0]))
		require.Equal(t, 2, s.count(t, "hookd_endpoint_queue_depth", "endpoint_id", eps[1]))
		require.Len(t, s.series("hookd_endpoint_queue_oldest_due_age_seconds", nil), 2)
		require.InDelta(t, maxAge/2, s.value(t, "hookd_endpoint_queue_oldest_due_age_seconds", "endpoint_id", eps[0]), maxAge/2+0.001)
		require.Equal(t, 6, s.count(t, "hookd_messages_accepted_total"))
	})
}

// TestMetricsCountRequestsByRoute: a 404 for an unknown path is counted
// as "unmatched", a 404 for a missing resource and a 400 from the
// validator under their route templates, a 401 too, and a made-up method
// as "other".
func TestMetricsCountRequestsByRoute(t *testing.T) {
	t.Parallel()
	e := setupWith(t, "sqlite", options{metrics: &metrics.Options{}})
	status, env, _ := e.do(http.MethodGet, "/v1/no-such-thing/42", e.a.key, "", nil)
	require.Equal(t, http.StatusNotFound, status, env)
	status, env, _ = e.do(http.MethodGet, "/v1/endpoints/ep_00000000000000000000000000000000", e.a.key, "", nil)
	require.Equal(t, http.StatusNotFound, status, env)
	status, env, _ = e.do(http.MethodPost, "/v1/webhooks/send", e.a.key, "application/json", []byte(`{"payload":{}}`))
	require.Equal(t, http.StatusBadRequest, status, env)
	status, env, _ = e.do(http.MethodGet, "/v1/endpoints", "", "", nil)
	require.Equal(t, http.StatusUnauthorized, status, env)
	req, err := http.NewRequest("BREW", e.url+"/v1/endpoints", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())

	s := scrapeMetrics(t, e.url)
	require.Equal(t, 1, s.count(t, "hookd_http_requests_total", "route", metrics.UnmatchedRoute, "method", "GET", "code", "404"))
	require.Equal(t, 1, s.count(t, "hookd_http_requests_total", "route", "/v1/endpoints/:id", "method", "GET", "code", "404"))
	require.Equal(t, 1, s.count(t, "hookd_http_requests_total", "route", "/v1/webhooks/send", "method", "POST", "code", "400"))
	require.Equal(t, 1, s.count(t, "hookd_http_requests_total", "route", "/v1/endpoints", "method", "GET", "code", "401"))
	require.Equal(t, 1, s.count(t, "hookd_http_requests_total", "route", "/v1/endpoints", "method", "other", "code", fmt.Sprint(resp.StatusCode)))
	require.Equal(t, 0, s.count(t, "hookd_messages_accepted_total"), "a refused send is not accepted")

	// /metrics itself is served outside the spec and is counted too.
	again := scrapeMetrics(t, e.url)
	require.Equal(t, 1, again.count(t, "hookd_http_requests_total", "route", metrics.Path, "method", "GET", "code", "200"))
}

// TestNoMetricsWithoutMetrics: a router without metrics has no /metrics
// (the validator's 404 envelope).
func TestNoMetricsWithoutMetrics(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	status, env, _ := e.do(http.MethodGet, metrics.Path, "", "", nil)
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, "NOT_FOUND", env.Error.Code)
}
