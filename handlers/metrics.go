package handlers

import (
	"context"
	"time"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/store"
)

// window is one of the metrics windows: its length, its bucket size and
// the counter granularity its buckets are made of.
type window struct {
	name        gen.MetricsWindow
	length      time.Duration
	bucket      time.Duration
	granularity int
}

var windows = map[gen.MetricsWindow]window{
	gen.N1h:  {gen.N1h, time.Hour, time.Minute, store.StatsMinute},
	gen.N24h: {gen.N24h, 24 * time.Hour, time.Hour, store.StatsHour},
	gen.N7d:  {gen.N7d, 7 * 24 * time.Hour, 6 * time.Hour, store.StatsHour},
	gen.N30d: {gen.N30d, 30 * 24 * time.Hour, 24 * time.Hour, store.StatsHour},
}

// metricsWindow resolves the window parameter (default 24h).
func metricsWindow(p *gen.MetricsWindow) window {
	if p == nil {
		return windows[gen.N24h]
	}
	return windows[*p] // the validator admits only the enum
}

// bucketCounts is one bucket's sums.
type bucketCounts struct {
	total, succeeded, failed, retries, latencySum, latencyCount int64
}

func (b *bucketCounts) add(r store.StatsRow) {
	b.total += r.Total
	b.succeeded += r.Succeeded
	b.failed += r.Failed
	b.retries += r.Retries
	b.latencySum += r.LatencySumMs
	b.latencyCount += r.LatencyCount
}

func (b bucketCounts) avgLatency() int64 {
	if b.latencyCount == 0 {
		return 0
	}
	return (b.latencySum + b.latencyCount/2) / b.latencyCount
}

// buckets reads the window's counters and sums them into its buckets,
// oldest first; the last bucket is the current one.
func (s *Server) buckets(ctx context.Context, w window, endpointID *gen.MetricsEndpoint) ([]time.Time, []bucketCounts, error) {
	n := int(w.length / w.bucket)
	last := s.now().Truncate(w.bucket) // UTC-aligned: Truncate works on absolute time
	first := last.Add(-time.Duration(n-1) * w.bucket)
	ep := store.AllEndpoints
	if endpointID != nil {
		ep = *endpointID
	}
	rows, err := s.Store.StatsSince(ctx, projectID(ctx), ep, w.granularity, first)
	if err != nil {
		return nil, nil, err
	}
	starts := make([]time.Time, n)
	for i := range starts {
		starts[i] = first.Add(time.Duration(i) * w.bucket)
	}
	counts := make([]bucketCounts, n)
	for _, r := range rows {
		i := int(r.Bucket.Sub(first) / w.bucket)
		if i >= 0 && i < n {
			counts[i].add(r)
		}
	}
	return starts, counts, nil
}

// GetMetrics sums the window's counters.
func (s *Server) GetMetrics(ctx context.Context, req gen.GetMetricsRequestObject) (gen.GetMetricsResponseObject, error) {
	w := metricsWindow(req.Params.Window)
	_, counts, err := s.buckets(ctx, w, req.Params.EndpointId)
	if err != nil {
		return nil, err
	}
	var sum bucketCounts
	for _, c := range counts {
		// Counters are adjusted by replays; after a crash lost a second
		// of changes a bucket could dip below zero: never show that.
		c.succeeded, c.failed = max(c.succeeded, 0), max(c.failed, 0)
		sum.total += c.total
		sum.succeeded += c.succeeded
		sum.failed += c.failed
		sum.retries += c.retries
		sum.latencySum += c.latencySum
		sum.latencyCount += c.latencyCount
	}
	rate := 0.0
	if done := sum.succeeded + sum.failed; done > 0 {
		rate = float64(sum.succeeded) / float64(done)
	}
	return gen.GetMetrics200JSONResponse{Data: gen.Metrics{
		Window:        w.name,
		TotalMessages: sum.total,
		Succeeded:     sum.succeeded,
		Failed:        sum.failed,
		Retries:       sum.retries,
		SuccessRate:   rate,
		AvgLatencyMs:  sum.avgLatency(),
	}, Meta: meta(ctx)}, nil
}

// GetMetricsTimeseries returns the window's buckets, empty ones included.
func (s *Server) GetMetricsTimeseries(ctx context.Context, req gen.GetMetricsTimeseriesRequestObject) (gen.GetMetricsTimeseriesResponseObject, error) {
	w := metricsWindow(req.Params.Window)
	starts, counts, err := s.buckets(ctx, w, req.Params.EndpointId)
	if err != nil {
		return nil, err
	}
	out := make([]gen.MetricsBucket, len(starts))
	for i, c := range counts {
		c.succeeded, c.failed = max(c.succeeded, 0), max(c.failed, 0)
		out[i] = gen.MetricsBucket{
			Timestamp:    starts[i],
			Total:        c.total,
			Succeeded:    c.succeeded,
			Failed:       c.failed,
			Retrying:     max(c.total-c.succeeded-c.failed, 0),
			AvgLatencyMs: c.avgLatency(),
		}
	}
	return gen.GetMetricsTimeseries200JSONResponse{Data: gen.Timeseries{Window: w.name, Buckets: out}, Meta: meta(ctx)}, nil
}
