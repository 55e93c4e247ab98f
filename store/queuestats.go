package store

import (
	"context"
	"fmt"
	"time"
)

// QueueStats is the state of the whole queue at one moment, across every
// project and process: what the metrics gauges show.
type QueueStats struct {
	// Due counts the messages due now (queued or pending_retry, next
	// attempt time passed, not deleted): work waiting for a worker.
	Due int64
	// OldestDue is the next attempt time of the longest-waiting due
	// message; zero when nothing is due.
	OldestDue time.Time
	// Endpoints are the endpoints with the most due messages, most first
	// (ties: longest waiting first, then by id), at most the limit asked for.
	Endpoints []EndpointDue
	// DLQ counts failed_permanent messages that are not deleted.
	DLQ int64
	// DisabledEndpoints counts endpoints hookd disabled (disabled_at set)
	// that are not deleted.
	DisabledEndpoints int64
}

// EndpointDue is one endpoint's share of the due messages.
type EndpointDue struct {
	EndpointID string
	Due        int64
	OldestDue  time.Time
}

// queueDueSQL reads the due messages once, through the partial index
// messages_due_idx (status IN ('queued','pending_retry'), ordered by
// next_attempt_at), grouped by endpoint, leaving out messages handed to a
// worker at send (queued but leased: in flight, not waiting); the window
// sums give the totals over every endpoint before LIMIT keeps the busiest.
// On SQLite, whose planner would rather walk the whole of
// the (endpoint_id, status, id) index to group without sorting, the index is
// named (INDEXED BY).
const queueDueSQL = `SELECT endpoint_id, n, oldest, CAST(sum(n) OVER () AS bigint) AS total, min(oldest) OVER () AS total_oldest
FROM (SELECT endpoint_id, count(*) AS n, min(next_attempt_at) AS oldest FROM messages%s
  WHERE status IN ('queued', 'pending_retry') AND next_attempt_at <= ? AND deleted_at IS NULL
    %s
  GROUP BY endpoint_id) due
ORDER BY n DESC, oldest, endpoint_id
LIMIT ?`

// countsSQL reads the two counts through their partial indexes
// (migration 0010: messages_dlq_idx, endpoints_disabled_idx).
const countsSQL = `SELECT
  (SELECT count(*) FROM messages WHERE status = 'failed_permanent' AND deleted_at IS NULL),
  (SELECT count(*) FROM endpoints WHERE disabled_at IS NOT NULL AND deleted_at IS NULL)`

// QueueStats reads the queue's state as of now, with at most topN
// endpoints in Endpoints (0: none, the totals are still read). Every query
// is served by a partial index, so its cost grows with the backlog, not
// with the table. It returns ErrUnavailable when the database does not
// answer.
func (s *Store) QueueStats(ctx context.Context, now time.Time, topN int) (QueueStats, error) {
	var qs QueueStats
	// Messages handed to a worker at send are in flight, not waiting
	// (leaseEnded; handoffs happen only on PostgreSQL).
	hint, notLeased := "", "AND "+leaseEnded
	if s.dialect == SQLite {
		hint, notLeased = " INDEXED BY messages_due_idx", ""
	}
	rows, err := s.db.WithContext(ctx).Raw(fmt.Sprintf(queueDueSQL, hint, notLeased), now.UTC(), max(topN, 1)).Rows()
	if err != nil {
		return QueueStats{}, translate(err, "read queue stats")
	}
	defer rows.Close()
	for rows.Next() {
		var e EndpointDue
		var oldest, totalOldest any
		if err := rows.Scan(&e.EndpointID, &e.Due, &oldest, &qs.Due, &totalOldest); err != nil {
			return QueueStats{}, translate(err, "read queue stats")
		}
		if e.OldestDue, err = scanTime(oldest); err != nil {
			return QueueStats{}, err
		}
		if qs.OldestDue, err = scanTime(totalOldest); err != nil {
			return QueueStats{}, err
		}
		if len(qs.Endpoints) < topN {
			qs.Endpoints = append(qs.Endpoints, e)
		}
	}
	if err := rows.Err(); err != nil {
		return QueueStats{}, translate(err, "read queue stats")
	}
	if err := s.db.WithContext(ctx).Raw(countsSQL).Row().Scan(&qs.DLQ, &qs.DisabledEndpoints); err != nil {
		return QueueStats{}, translate(err, "read queue stats")
	}
	return qs, nil
}

// sqliteTimeLayouts are the forms SQLite hands back for a timestamp that
// went through an aggregate (the column's declared type, and with it the
// driver's conversion, is lost): the form the driver writes
// (_time_format=sqlite) first.
var sqliteTimeLayouts = []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"}

// scanTime turns a scanned timestamp into a time.Time in UTC.
func scanTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case nil:
		return time.Time{}, nil
	case time.Time:
		return t.UTC(), nil
	case []byte:
		return scanTime(string(t))
	case string:
		for _, layout := range sqliteTimeLayouts {
			if p, err := time.Parse(layout, t); err == nil {
				return p.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("read queue stats: unreadable timestamp %q", t)
	}
	return time.Time{}, fmt.Errorf("read queue stats: unexpected timestamp type %T", v)
}
