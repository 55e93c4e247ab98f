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

// avgLatency is the mean latency of a bucket's successful attempts, 0
// without any.
func avgLatency(b store.StatsCounts) int64 {
	if b.LatencyCount == 0 {
		return 0
	}
	return (b.LatencySumMs + b.LatencyCount/2) / b.LatencyCount
}

// buckets reads the window's counters and sums them into its buckets,
// oldest first; the last bucket is the current one.
func (s *Server) buckets(ctx context.Context, w window, ep string) ([]time.Time, []store.StatsCounts, error) {
	n := int(w.length / w.bucket)
	last := s.now().Truncate(w.bucket) // UTC-aligned: Truncate works on absolute time
	first := last.Add(-time.Duration(n-1) * w.bucket)
	rows, err := s.Store.StatsSince(ctx, projectID(ctx), ep, w.granularity, first)
	if err != nil {
		return nil, nil, err
	}
	starts := make([]time.Time, n)
	for i := range starts {
		starts[i] = first.Add(time.Duration(i) * w.bucket)
	}
	counts := make([]store.StatsCounts, n)
	for _, r := range rows {
		i := int(r.Bucket.Sub(first) / w.bucket)
		if i >= 0 && i < n {
			counts[i].Add(r.StatsCounts)
		}
	}
	for i := range counts {
		// Counters are adjusted by replays; after a crash lost a second
		// of changes a bucket could dip below zero: never show that.
		counts[i].Succeeded, counts[i].Failed = max(counts[i].Succeeded, 0), max(counts[i].Failed, 0)
	}
	return starts, counts, nil
}

// GetMetrics sums the window's counters.
func (s *Server) GetMetrics(ctx context.Context, req gen.GetMetricsRequestObject) (gen.GetMetricsResponseObject, error) {
	m, err := s.metricsOf(ctx, req.Params.Window, deref(req.Params.EndpointId, store.AllEndpoints))
	if err != nil {
		return nil, err
	}
	return gen.GetMetrics200JSONResponse{Data: m, Meta: meta(ctx)}, nil
}

// metricsOf sums the window's counters of the key (an endpoint id,
// store.AllEndpoints or store.AllInbound).
func (s *Server) metricsOf(ctx context.Context, p *gen.MetricsWindow, key string) (gen.Metrics, error) {
	w := metricsWindow(p)
	_, counts, err := s.buckets(ctx, w, key)
	if err != nil {
		return gen.Metrics{}, err
	}
	var sum store.StatsCounts
	for _, c := range counts {
		sum.Add(c)
	}
	rate := 0.0
	if done := sum.Succeeded + sum.Failed; done > 0 {
		rate = float64(sum.Succeeded) / float64(done)
	}
	return gen.Metrics{
		Window:        w.name,
		TotalMessages: sum.Total,
		Succeeded:     sum.Succeeded,
		Failed:        sum.Failed,
		Retries:       sum.Retries,
		SuccessRate:   rate,
		AvgLatencyMs:  avgLatency(sum),
	}, nil
}

// GetMetricsTimeseries returns the window's buckets, empty ones included.
func (s *Server) GetMetricsTimeseries(ctx context.Context, req gen.GetMetricsTimeseriesRequestObject) (gen.GetMetricsTimeseriesResponseObject, error) {
	t, err := s.timeseriesOf(ctx, req.Params.Window, deref(req.Params.EndpointId, store.AllEndpoints))
	if err != nil {
		return nil, err
	}
	return gen.GetMetricsTimeseries200JSONResponse{Data: t, Meta: meta(ctx)}, nil
}

// timeseriesOf returns the window's buckets of the key, empty ones
// included.
func (s *Server) timeseriesOf(ctx context.Context, p *gen.MetricsWindow, key string) (gen.Timeseries, error) {
	w := metricsWindow(p)
	starts, counts, err := s.buckets(ctx, w, key)
	if err != nil {
		return gen.Timeseries{}, err
	}
	out := make([]gen.MetricsBucket, len(starts))
	for i, c := range counts {
		out[i] = gen.MetricsBucket{
			Timestamp:    starts[i],
			Total:        c.Total,
			Succeeded:    c.Succeeded,
			Failed:       c.Failed,
			Retrying:     max(c.Total-c.Succeeded-c.Failed, 0),
			AvgLatencyMs: avgLatency(c),
		}
	}
	return gen.Timeseries{Window: w.name, Buckets: out}, nil
}
