// Package metrics exports hookd's Prometheus metrics: counters and
// histograms updated on the request and delivery paths (a few atomic
// additions each, never a database call), and queue gauges read from the
// database when scraped, at most once per refresh interval. It has its own
// registry, so nothing else in the process adds series by accident.
//
// Counters and histograms are per process: sum them across processes.
// The queue gauges describe the one shared database and are the same from
// every process: aggregate them with max(), never sum().
//
// docs/operations.md (prometheus metrics and alerts) describes every metric and what to alert on.
package metrics

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/store"
)

// Path is where the metrics are served, on the API listener or on their
// own (--metrics-addr).
const Path = "/metrics"

// UnmatchedRoute is the route label of requests that matched no route.
const UnmatchedRoute = "unmatched"

// DefaultEndpointLimit is how many endpoints get their own queue series by
// default (the --metrics-endpoint-limit flag's default).
const DefaultEndpointLimit = 20

// attemptBuckets suit webhook receivers: from a fast local answer (5 ms) to
// the default attempt timeout (30 s).
var attemptBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30}

// httpBuckets suit the API: from a cached read (1 ms) to the request
// timeout's neighbourhood.
var httpBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Options configure New. Zero fields take the defaults in brackets.
type Options struct {
	// Stats is where the queue gauges are read from (the store). Nil: no
	// queue gauges.
	Stats StatsSource
	// EndpointLimit is how many endpoints, the busiest by due messages,
	// get their own queue series; 0 means none (only the totals). It
	// bounds the label cardinality.
	EndpointLimit int
	// Refresh is how long queue gauges read from the database are reused:
	// scrapes within it are answered from memory [5s].
	Refresh time.Duration
	// QueryTimeout bounds one read of the queue gauges [2s].
	QueryTimeout time.Duration
	// Now is the clock the queue's due times are compared with [store.Now].
	Now func() time.Time
	// Elapsed measures the refresh interval and the reads' cost: a clock
	// with a monotonic reading, so a step of the wall clock neither freezes
	// nor rushes the gauges [time.Now].
	Elapsed func() time.Time
	// Logger gets a warning when reading the queue gauges fails
	// [slog.Default()].
	Logger *slog.Logger
}

// Metrics holds hookd's metrics. Its methods are safe for concurrent use;
// the recording ones (MessageAccepted, ObserveAttempt, ObserveHTTP) do
// nothing on a nil *Metrics, which is how metrics are turned off.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	accepted       prometheus.Counter
	attempts       *prometheus.CounterVec
	attemptSeconds [3]prometheus.Observer // by outcome, see outcomeIndex
	retries        [2]prometheus.Counter  // fast, slow
	deadLettered   prometheus.Counter
	httpRequests   *prometheus.CounterVec
	httpSeconds    *prometheus.HistogramVec
}

var _ delivery.Observer = (*Metrics)(nil)

// New registers every metric on a new registry, with the Go runtime and
// process collectors.
func New(o Options) (*Metrics, error) {
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = store.Now
	}
	if o.Elapsed == nil {
		o.Elapsed = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m := &Metrics{reg: prometheus.NewRegistry(), log: o.Logger}
	m.accepted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hookd_messages_accepted_total",
		Help: "Messages accepted by the send API (202; idempotent repeats are not counted).",
	})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_delivery_attempts_total",
		Help: "Delivery attempts made, by outcome (success, retryable, permanent) and the receiver's status class (2xx…5xx, none when there was no answer).",
	}, []string{"outcome", "status_class"})
	attemptSeconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hookd_delivery_attempt_duration_seconds",
		Help:    "Time of one delivery attempt, from the start of the request to the end of the answer, by outcome.",
		Buckets: attemptBuckets,
	}, []string{"outcome"})
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_retries_scheduled_total",
		Help: "Retries scheduled after a retryable failure, by track: fast (after a 429) or slow.",
	}, []string{"track"})
	m.deadLettered = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hookd_messages_dead_lettered_total",
		Help: "Messages a delivery attempt moved to the DLQ (failed_permanent): a permanent failure or the attempt budget spent.",
	})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_http_requests_total",
		Help: "API requests answered, by route template, method and status code.",
	}, []string{"route", "method", "code"})
	m.httpSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hookd_http_request_duration_seconds",
		Help:    "Time to answer an API request, by route template and method.",
		Buckets: httpBuckets,
	}, []string{"route", "method"})

	for i, outcome := range outcomes {
		m.attemptSeconds[i] = attemptSeconds.WithLabelValues(string(outcome))
	}
	m.retries = [2]prometheus.Counter{retries.WithLabelValues("fast"), retries.WithLabelValues("slow")}
	// Series that exist from the start, so rates and "no deliveries"
	// alerts work before the first attempt of each kind.
	for _, c := range [][2]string{{"success", "2xx"}, {"retryable", "5xx"}, {"retryable", "4xx"}, {"retryable", "none"},
		{"permanent", "4xx"}, {"permanent", "3xx"}, {"permanent", "none"}} {
		m.attempts.WithLabelValues(c[0], c[1])
	}

	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.accepted, m.attempts, attemptSeconds, retries, m.deadLettered, m.httpRequests, m.httpSeconds,
	}
	if o.Stats != nil {
		cs = append(cs, newQueueCollector(o))
	}
	var errs []error
	for _, c := range cs {
		errs = append(errs, m.reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Registry is the registry holding every hookd metric (for tests and for
// serving it another way).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// MessageAccepted counts one new message accepted by the send API.
func (m *Metrics) MessageAccepted() {
	if m == nil {
		return
	}
	m.accepted.Inc()
}

// outcomes are the attempt outcomes, in outcomeIndex order.
var outcomes = [3]delivery.Class{delivery.Success, delivery.Retryable, delivery.Permanent}

func outcomeIndex(c delivery.Class) int {
	switch c {
	case delivery.Success:
		return 0
	case delivery.Retryable:
		return 1
	}
	return 2
}

// ObserveAttempt implements delivery.Observer: it counts the attempt, its
// time, the retry it scheduled and whether it dead-lettered the message.
func (m *Metrics) ObserveAttempt(a delivery.AttemptObservation) {
	if m == nil {
		return
	}
	i := outcomeIndex(a.Class)
	m.attempts.WithLabelValues(string(outcomes[i]), statusClass(a.Status)).Inc()
	m.attemptSeconds[i].Observe(a.Duration.Seconds())
	switch a.RetryType {
	case "fast":
		m.retries[0].Inc()
	case "slow":
		m.retries[1].Inc()
	}
	if a.DeadLettered {
		m.deadLettered.Inc()
	}
}

// ObserveHTTP counts one answered API request. route must be a route
// template (or UnmatchedRoute), never a raw path, so the label stays
// bounded; unknown methods are counted as "other".
func (m *Metrics) ObserveHTTP(route, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	method = boundedMethod(method)
	m.httpRequests.WithLabelValues(route, method, codeLabel(code)).Inc()
	m.httpSeconds.WithLabelValues(route, method).Observe(d.Seconds())
}

// codeLabels are the status codes as label values, made once.
var codeLabels = func() (out [600]string) {
	for i := 100; i < len(out); i++ {
		out[i] = strconv.Itoa(i)
	}
	return out
}()

func codeLabel(code int) string {
	if code >= 100 && code < len(codeLabels) {
		return codeLabels[code]
	}
	return strconv.Itoa(code)
}

func boundedMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions:
		return method
	}
	return "other"
}

// statusClass is "2xx" for 200–299 and so on; "none" when there was no
// answer; "other" for a status outside 100–599.
func statusClass(status int) string {
	switch {
	case status == 0:
		return "none"
	case status >= 100 && status < 600:
		return [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}[status/100-1]
	}
	return "other"
}
