package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// apiBench measures the read API over a large table: it seeds n messages
// (spread over 30 days, ten endpoints, the statuses of a real history) and
// their delivery statistics straight into the database, then times
// GET /v1/metrics, /v1/metrics/timeseries and /v1/logs with their filters
// and cursor pages against the running hookd.
func apiBench(ctx context.Context, h *hookd, dbURL string, n, rounds int) error {
	var eps []string
	for i := range 10 {
		id, err := h.createEndpoint(fmt.Sprintf("http://127.0.0.1:9/bench-%d", i)) // never delivered to: nothing is due
		if err != nil {
			return err
		}
		eps = append(eps, id)
	}
	start := time.Now()
	if err := seed(ctx, dbURL, eps, n); err != nil {
		return err
	}
	fmt.Printf("read API with %d messages (seeded in %s):\n", n, time.Since(start).Round(time.Second))

	day := time.Now().UTC().Add(-15 * 24 * time.Hour).Truncate(time.Hour)
	q := url.QueryEscape
	cases := []struct{ name, path string }{
		{"metrics 24h", "/v1/metrics?window=24h"},
		{"metrics 30d", "/v1/metrics?window=30d"},
		{"metrics 30d, one endpoint", "/v1/metrics?window=30d&endpoint_id=" + eps[3]},
		{"timeseries 1h", "/v1/metrics/timeseries?window=1h"},
		{"timeseries 30d", "/v1/metrics/timeseries?window=30d"},
		{"overview (backlog, DLQ, health)", "/v1/overview"},
		{"logs, first page (50)", "/v1/logs"},
		{"logs, 500 per page", "/v1/logs?limit=500"},
		{"logs, status=failed_permanent", "/v1/logs?status=failed_permanent"},
		{"logs, status=pending_retry", "/v1/logs?status=pending_retry"},
		{"logs, one endpoint", "/v1/logs?endpoint_id=" + eps[5]},
		{"logs, one endpoint, status=paused", "/v1/logs?endpoint_id=" + eps[5] + "&status=paused"},
		{"logs, one day 15 days ago", "/v1/logs?start_time=" + q(day.Format(time.RFC3339)) + "&end_time=" + q(day.Add(24*time.Hour).Format(time.RFC3339))},
		{"logs, 20th page (cursor)", ""},
	}
	for _, c := range cases {
		path := c.path
		if path == "" { // follow the cursor 19 times, then time the 20th page
			p, err := deepCursor(h, "/v1/logs", 19)
			if err != nil {
				return err
			}
			path = p
		}
		var d dist
		for i := range rounds + 5 {
			t0 := time.Now()
			status, _, err := h.get(path)
			if err != nil || status != http.StatusOK {
				return fmt.Errorf("%s: %d %w", path, status, err)
			}
			if i >= 5 { // warm-up
				d = append(d, time.Since(t0))
			}
		}
		fmt.Printf("  %-36s %s\n", c.name, d)
	}
	return consoleBench(ctx, h, min(rounds, 50))
}

// deepCursor follows next_cursor pages times and returns the next page's path.
func deepCursor(h *hookd, path string, pages int) (string, error) {
	for range pages {
		status, b, err := h.get(path)
		if err != nil || status != http.StatusOK {
			return "", fmt.Errorf("%s: %d %w", path, status, err)
		}
		var r struct {
			Meta struct {
				NextCursor *string `json:"next_cursor"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Meta.NextCursor == nil {
			return "", fmt.Errorf("no next cursor after %s", path)
		}
		path = "/v1/logs?cursor=" + url.QueryEscape(*r.Meta.NextCursor)
	}
	return path, nil
}

// seed inserts n messages of the endpoints' project, newest first every
// 2.6 s back over 30 days, with UUIDv7 ids of their creation time: 90%
// succeeded, 5% failed_permanent, 3% pending_retry (due in a week), 2%
// paused; then the per-minute and per-hour statistics hookd would have
// kept for them, and ANALYZE.
func seed(ctx context.Context, dbURL string, eps []string, n int) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var project string
	if err := conn.QueryRow(ctx, `SELECT project_id FROM endpoints WHERE id = $1`, eps[0]).Scan(&project); err != nil {
		return err
	}
	const insert = `
INSERT INTO messages (id, project_id, endpoint_id, status, payload, payload_sha256, size_bytes, headers,
    attempt_count, budget_used, next_attempt_at, last_error, response_status, response_latency_ms,
    first_attempt_at, delivered_at, terminal_at, created_at, updated_at)
SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || substr(r, 1, 3) || '-8' || substr(r, 4, 3) || '-' || substr(r, 7, 12),
    $1, ($2::text[])[1 + i % 10], st, convert_to('{"order":' || i || ',"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}', 'UTF8'),
    r || r, 64, '{}', CASE WHEN st = 'succeeded' THEN 1 WHEN st = 'paused' THEN 0 ELSE 3 END, 1,
    CASE WHEN st = 'pending_retry' THEN now() + interval '7 days' END,
    CASE WHEN st IN ('failed_permanent', 'pending_retry') THEN 'HTTP 500' END,
    CASE WHEN st = 'paused' THEN NULL WHEN st = 'succeeded' THEN 200 ELSE 500 END,
    CASE WHEN st = 'paused' THEN NULL ELSE 5 + i % 40 END,
    CASE WHEN st = 'paused' THEN NULL ELSE ts END,
    CASE WHEN st = 'succeeded' THEN ts END,
    CASE WHEN st IN ('succeeded', 'failed_permanent') THEN ts END, ts, ts
FROM (SELECT i, ts, lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') AS h, md5(i::text) AS r,
        CASE WHEN i % 100 < 90 THEN 'succeeded' WHEN i % 100 < 95 THEN 'failed_permanent'
             WHEN i % 100 < 98 THEN 'pending_retry' ELSE 'paused' END AS st
      FROM (SELECT i, now() - i * (interval '30 days' / $3) AS ts FROM generate_series(1, $3) AS i) a) b`
	if _, err := conn.Exec(ctx, insert, project, eps, n); err != nil {
		return fmt.Errorf("seed messages: %w", err)
	}
	const stats = `
INSERT INTO message_stats (project_id, endpoint_id, granularity, bucket, total, succeeded, failed, retries, latency_sum_ms, latency_count)
SELECT project_id, ep, g, b, count(*), count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed_permanent'),
    sum(greatest(attempt_count - 1, 0)), coalesce(sum(response_latency_ms) FILTER (WHERE status = 'succeeded'), 0),
    count(*) FILTER (WHERE status = 'succeeded')
FROM (SELECT m.*, e.ep, g.g, CASE g.g WHEN 60 THEN date_trunc('minute', created_at) ELSE date_trunc('hour', created_at) END AS b
      FROM messages m, LATERAL (VALUES (m.endpoint_id), ('')) AS e(ep), (VALUES (60), (3600)) AS g(g)) x
GROUP BY project_id, ep, g, b`
	t0 := time.Now()
	if _, err := conn.Exec(ctx, stats); err != nil {
		return fmt.Errorf("seed statistics: %w", err)
	}
	fmt.Printf("  statistics of %d messages computed in %s\n", n, time.Since(t0).Round(100*time.Millisecond))
	if _, err := conn.Exec(ctx, `ANALYZE`); err != nil {
		return err
	}
	var msgs, statsSize int64
	if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size('messages'), pg_total_relation_size('message_stats')`).Scan(&msgs, &statsSize); err != nil {
		return err
	}
	fmt.Printf("  messages table with its indexes: %d MB (%d bytes per message, 64-byte payloads); message_stats: %d MB\n",
		msgs>>20, msgs/int64(n), statsSize>>20)
	return nil
}
