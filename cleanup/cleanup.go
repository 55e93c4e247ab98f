// Package cleanup runs hookd's retention clean-up in the background: it
// purges expired payloads, deletes expired messages with their attempts,
// and trims statistics, in bounded batches. Every hookd process may run a
// Runner; a lease in the database lets only one of them work at a time.
package cleanup

import (
	"context"
	"log/slog"
	"time"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/store"
)

// Config tunes a Runner. Zero fields take the defaults in brackets.
type Config struct {
	// Interval is the time between clean-up passes [1m].
	Interval time.Duration
	// Retention says what is kept how long [14 days of payload, 90 days of
	// metadata, batches of 1,000 rows].
	Retention store.Retention
	// Now is the clock [store.Now].
	Now func() time.Time
}

// The defaults (also the serve flags' defaults).
const (
	DefaultInterval          = time.Minute
	DefaultPayloadRetention  = 14 * 24 * time.Hour
	DefaultMetadataRetention = 90 * 24 * time.Hour
)

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Retention.Payload <= 0 {
		c.Retention.Payload = DefaultPayloadRetention
	}
	if c.Retention.Metadata <= 0 {
		c.Retention.Metadata = DefaultMetadataRetention
	}
	if c.Retention.Batch <= 0 {
		c.Retention.Batch = 1000
	}
	if c.Now == nil {
		c.Now = store.Now
	}
}

// leaseName names the database lease of the clean-up.
const leaseName = "cleanup"

// Runner runs clean-up passes.
type Runner struct {
	st     *store.Store
	cfg    Config
	log    *slog.Logger
	holder string
}

// New returns a Runner; it does nothing until Run.
func New(st *store.Store, cfg Config, log *slog.Logger) *Runner {
	cfg.defaults()
	if log == nil {
		log = slog.Default()
	}
	return &Runner{st: st, cfg: cfg, log: log, holder: ids.RandomAlnum(16)}
}

// Run makes a pass every Interval, when this process holds the lease, until
// ctx ends. A pass stops between batches when ctx ends.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		r.Pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass makes one clean-up pass if this process gets the lease, and reports
// whether it did.
func (r *Runner) Pass(ctx context.Context) bool {
	// The lease outlives a pass bounded by the interval, plus slack, so a
	// dead holder's lease lapses after a few intervals.
	lead, err := r.st.TryLead(ctx, leaseName, r.holder, 3*r.cfg.Interval)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("clean-up: cannot take the lease", "error", err.Error())
		}
		return false
	}
	if !lead {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, 2*r.cfg.Interval)
	defer cancel()
	start := time.Now()
	res, err := r.st.Cleanup(pctx, r.cfg.Now(), r.cfg.Retention)
	attrs := []any{"payloads_purged", res.PayloadsPurged, "messages_deleted", res.MessagesDeleted,
		"stats_rows_deleted", res.StatsDeleted, "other_rows_deleted", res.OtherDeleted,
		"duration_ms", time.Since(start).Milliseconds()}
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("clean-up pass failed; the next one continues", append(attrs, "error", err.Error())...)
		}
		return true
	}
	level := slog.LevelDebug
	if res.PayloadsPurged+res.MessagesDeleted > 0 {
		level = slog.LevelInfo
	}
	r.log.Log(ctx, level, "clean-up pass", attrs...)
	return true
}
