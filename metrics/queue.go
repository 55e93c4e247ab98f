package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookd/hookd/store"
)

// StatsSource reads the queue's state (implemented by *store.Store).
type StatsSource interface {
	QueueStats(ctx context.Context, now time.Time, topN int) (store.QueueStats, error)
}

// queueCollector serves the queue gauges from the last read of the
// database, reading again when a scrape finds it older than the refresh
// interval (stretched to readCostFactor times a slow read's duration). A
// failed read is counted and logged, and the last good values are served
// meanwhile; before the first good read there are no queue
// gauges at all (rather than zeros that would look like an empty queue).
type queueCollector struct {
	src     StatsSource
	limit   int
	refresh time.Duration
	timeout time.Duration
	now     func() time.Time // what due times are compared with
	elapsed func() time.Time // what schedules reads (monotonic)
	log     *slog.Logger

	depth, oldestAge, epDepth, epOldestAge, dlq, disabled *prometheus.Desc
	errors                                                prometheus.Counter

	mu       sync.Mutex
	nextRead time.Time // no read before this
	last     store.QueueStats
	lastAt   time.Time // when last was read
	have     bool
}

func newQueueCollector(o Options) *queueCollector {
	return &queueCollector{
		src: o.Stats, limit: o.EndpointLimit, refresh: o.Refresh, timeout: o.QueryTimeout, now: o.Now, elapsed: o.Elapsed, log: o.Logger,
		depth: prometheus.NewDesc("hookd_queue_depth",
			"Messages due now (queued or pending_retry, next attempt time passed) across every project and process; the same from every process.", nil, nil),
		oldestAge: prometheus.NewDesc("hookd_queue_oldest_due_age_seconds",
			"How long the longest-waiting due message has been due; 0 when nothing is due. The same from every process.", nil, nil),
		epDepth: prometheus.NewDesc("hookd_endpoint_queue_depth",
			"Messages due now for one endpoint, for the busiest endpoints only (--metrics-endpoint-limit).", []string{"endpoint_id"}, nil),
		epOldestAge: prometheus.NewDesc("hookd_endpoint_queue_oldest_due_age_seconds",
			"How long one endpoint's longest-waiting due message has been due, for the busiest endpoints only (--metrics-endpoint-limit).", []string{"endpoint_id"}, nil),
		dlq: prometheus.NewDesc("hookd_dlq_messages",
			"Messages in the DLQ (failed_permanent, not deleted) across every project; the same from every process.", nil, nil),
		disabled: prometheus.NewDesc("hookd_endpoints_disabled",
			"Endpoints hookd disabled (disabled_at set, not deleted) across every project; the same from every process.", nil, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookd_metrics_collect_errors_total",
			Help: "Failed reads of the queue gauges from the database; the last good values are served meanwhile.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.depth, c.oldestAge, c.epDepth, c.epOldestAge, c.dlq, c.disabled} {
		ch <- d
	}
	c.errors.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	qs, at, ok := c.stats()
	c.errors.Collect(ch)
	if !ok {
		return
	}
	age := func(oldest time.Time) float64 {
		if oldest.IsZero() || !oldest.Before(at) {
			return 0
		}
		return at.Sub(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(qs.Due))
	ch <- prometheus.MustNewConstMetric(c.oldestAge, prometheus.GaugeValue, age(qs.OldestDue))
	for _, e := range qs.Endpoints {
		ch <- prometheus.MustNewConstMetric(c.epDepth, prometheus.GaugeValue, float64(e.Due), e.EndpointID)
		ch <- prometheus.MustNewConstMetric(c.epOldestAge, prometheus.GaugeValue, age(e.OldestDue), e.EndpointID)
	}
	ch <- prometheus.MustNewConstMetric(c.dlq, prometheus.GaugeValue, float64(qs.DLQ))
	ch <- prometheus.MustNewConstMetric(c.disabled, prometheus.GaugeValue, float64(qs.DisabledEndpoints))
}

// readCostFactor: the refresh interval is at least this many times the
// duration of the last read.
const readCostFactor = 20

// stats returns the queue's state and when it was read, reading it again
// if the last read is older than the refresh interval. ok is false until
// one read has succeeded.
func (c *queueCollector) stats() (qs store.QueueStats, at time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	started := c.elapsed()
	if !started.Before(c.nextRead) {
		now := c.now()
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		qs, err := c.src.QueueStats(ctx, now, c.limit)
		cancel()
		// A read that takes long (a backlog of hundreds of thousands of
		// due messages) stretches the interval, so the gauges never take
		// more than about 5% of one database connection.
		c.nextRead = started.Add(max(c.refresh, readCostFactor*c.elapsed().Sub(started)))
		if err != nil {
			c.errors.Inc()
			c.log.Warn("reading the queue metrics failed; serving the last values", "error", err.Error())
		} else {
			c.last, c.lastAt, c.have = qs, now, true
		}
	}
	return c.last, c.lastAt, c.have
}
