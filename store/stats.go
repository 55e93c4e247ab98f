package store

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Delivery statistics (GET /v1/metrics) are kept as counters per project,
// endpoint and minute (and hour) of the messages' creation, so that reading
// a 30-day window touches at most 720 rows however many messages there are.
// Each process adds up its changes in memory and writes them every
// StatsFlushInterval in one transaction (and when the store closes): the
// hot paths pay a map update, not a write. A process killed with SIGKILL
// loses at most that interval's changes to the counters; messages and
// attempts themselves are never affected.

// StatsFlushInterval is how often a process writes its counter changes.
const StatsFlushInterval = time.Second

// Stats granularities, in seconds.
const (
	StatsMinute = 60
	StatsHour   = 3600
)

// AllEndpoints is the endpoint id of a project's all-endpoint counters.
const AllEndpoints = ""

// StatsCounts are the counters of a set of messages.
type StatsCounts struct {
	Total        int64 // messages accepted
	Succeeded    int64 // of those, now succeeded
	Failed       int64 // of those, now failed_permanent
	Retries      int64 // retry attempts made (attempts after a message's first)
	LatencySumMs int64 // response latency of the successful attempts
	LatencyCount int64
}

// Add adds o to c.
func (c *StatsCounts) Add(o StatsCounts) {
	c.Total += o.Total
	c.Succeeded += o.Succeeded
	c.Failed += o.Failed
	c.Retries += o.Retries
	c.LatencySumMs += o.LatencySumMs
	c.LatencyCount += o.LatencyCount
}

// StatsRow is one counter row: the messages of a project (and endpoint, or
// AllEndpoints) created in [Bucket, Bucket+Granularity seconds).
type StatsRow struct {
	ProjectID   string    `gorm:"primaryKey"`
	EndpointID  string    `gorm:"primaryKey"`
	Granularity int       `gorm:"primaryKey"`
	Bucket      time.Time `gorm:"primaryKey"`
	StatsCounts
}

// TableName implements gorm's Tabler.
func (StatsRow) TableName() string { return "message_stats" }

// StatsDelta is a change to the counters of the messages of one project and
// endpoint created in one minute.
type StatsDelta struct {
	ProjectID, EndpointID string
	Minute                time.Time // truncated to the minute, UTC
	StatsCounts
}

type statsKey struct {
	project, endpoint string
	minute            int64 // unix seconds
}

// statsBuffer accumulates deltas until they are written.
type statsBuffer struct {
	mu      sync.Mutex
	pending map[statsKey]*StatsDelta
	flushMu sync.Mutex // one flush at a time
}

// messageMinute is the minute a message was created in, read from its id
// (a UUIDv7 holds its creation time in milliseconds).
func messageMinute(id string) time.Time {
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 {
		return Now().Truncate(time.Minute)
	}
	sec, nsec := u.Time().UnixTime()
	return time.Unix(sec, nsec).UTC().Truncate(time.Minute)
}

// countStats adds a change to the counters of message id.
func (s *Store) countStats(projectID, endpointID, messageID string, change func(d *StatsDelta)) {
	minute := messageMinute(messageID)
	k := statsKey{projectID, endpointID, minute.Unix()}
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	if s.stats.pending == nil {
		s.stats.pending = map[statsKey]*StatsDelta{}
	}
	d := s.stats.pending[k]
	if d == nil {
		d = &StatsDelta{ProjectID: projectID, EndpointID: endpointID, Minute: minute}
		s.stats.pending[k] = d
	}
	change(d)
}

// countOutcome counts a message's move to status (from a non-terminal one).
func (s *Store) countOutcome(projectID, endpointID, messageID, status string, latencyMs *int) {
	switch status {
	case StatusSucceeded:
		s.countStats(projectID, endpointID, messageID, func(d *StatsDelta) {
			d.Succeeded++
			if latencyMs != nil {
				d.LatencySumMs += int64(*latencyMs)
				d.LatencyCount++
			}
		})
	case StatusFailedPermanent:
		s.countStats(projectID, endpointID, messageID, func(d *StatsDelta) { d.Failed++ })
	}
}

// startStatsFlusher writes the counters every StatsFlushInterval until the
// store closes (Close writes the rest, after the batchers' last records).
func (s *Store) startStatsFlusher() {
	s.batchersDone.Add(1)
	go s.runStatsFlusher(s.stopBatchers)
}

func (s *Store) runStatsFlusher(stop <-chan struct{}) {
	defer s.batchersDone.Done()
	t := time.NewTicker(StatsFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = s.FlushStats(ctx)
			cancel()
		}
	}
}

// FlushStats writes the counter changes this process has made so far. On
// failure the changes are kept for the next flush.
func (s *Store) FlushStats(ctx context.Context) error {
	s.stats.flushMu.Lock()
	defer s.stats.flushMu.Unlock()
	s.stats.mu.Lock()
	pending := s.stats.pending
	s.stats.pending = nil
	s.stats.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	deltas := make([]StatsDelta, 0, len(pending))
	for _, d := range pending {
		deltas = append(deltas, *d)
	}
	if err := s.AddStats(ctx, deltas); err != nil {
		s.stats.mu.Lock()
		defer s.stats.mu.Unlock()
		if s.stats.pending == nil {
			s.stats.pending = map[statsKey]*StatsDelta{}
		}
		for _, d := range deltas { // keep them for the next try
			k := statsKey{d.ProjectID, d.EndpointID, d.Minute.Unix()}
			if p := s.stats.pending[k]; p != nil {
				p.Add(d.StatsCounts)
			} else {
				s.stats.pending[k] = &d
			}
		}
		return err
	}
	return nil
}

// AddStats adds deltas to the stored counters, at minute and hour
// granularity, per endpoint and for all endpoints, in one transaction.
// Rows are written in key order, so concurrent writers cannot deadlock.
func (s *Store) AddStats(ctx context.Context, deltas []StatsDelta) error {
	rows := map[StatsRow]*StatsRow{}
	add := func(d StatsDelta, endpoint string, gran int) {
		k := StatsRow{ProjectID: d.ProjectID, EndpointID: endpoint, Granularity: gran,
			Bucket: d.Minute.UTC().Truncate(time.Duration(gran) * time.Second)}
		r := rows[k]
		if r == nil {
			r = &StatsRow{ProjectID: k.ProjectID, EndpointID: k.EndpointID, Granularity: k.Granularity, Bucket: k.Bucket}
			rows[k] = r
		}
		r.Add(d.StatsCounts)
	}
	for _, d := range deltas {
		for _, gran := range []int{StatsMinute, StatsHour} {
			add(d, d.EndpointID, gran)
			if d.EndpointID != AllEndpoints && d.EndpointID != AllInbound {
				add(d, aggregateOf(d.EndpointID), gran)
			}
		}
	}
	list := make([]StatsRow, 0, len(rows))
	for _, r := range rows {
		list = append(list, *r)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.ProjectID != b.ProjectID {
			return a.ProjectID < b.ProjectID
		}
		if a.EndpointID != b.EndpointID {
			return a.EndpointID < b.EndpointID
		}
		if a.Granularity != b.Granularity {
			return a.Granularity < b.Granularity
		}
		return a.Bucket.Before(b.Bucket)
	})
	sum := func(col string) clause.Assignment {
		return clause.Assignment{Column: clause.Column{Name: col}, Value: gorm.Expr("message_stats." + col + " + excluded." + col)}
	}
	// One transaction for all the batches: the store skips GORM's default
	// transaction, and a flush that failed half-way is retried whole, so a
	// committed first half would be counted twice.
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "project_id"}, {Name: "endpoint_id"}, {Name: "granularity"}, {Name: "bucket"}},
			DoUpdates: clause.Set{sum("total"), sum("succeeded"), sum("failed"), sum("retries"), sum("latency_sum_ms"), sum("latency_count")},
		}).CreateInBatches(list, 200).Error
	})
	return translate(err, "write delivery statistics")
}

// StatsSince returns the counter rows of the project (and endpoint, or
// AllEndpoints) at granularity gran whose bucket starts at or after from,
// in bucket order.
func (s *Store) StatsSince(ctx context.Context, projectID, endpointID string, gran int, from time.Time) ([]StatsRow, error) {
	var rows []StatsRow
	err := s.db.WithContext(ctx).Where("project_id = ? AND endpoint_id = ? AND granularity = ? AND bucket >= ?",
		projectID, endpointID, gran, from.UTC()).Order("bucket").Find(&rows).Error
	return rows, translate(err, "read delivery statistics")
}
