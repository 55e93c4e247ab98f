-- Delivery statistics (GET /v1/metrics): counters of the messages created
-- per project, endpoint ('' = all endpoints) and minute (granularity 60) or
-- hour (3600), added to by every process every second.
CREATE TABLE message_stats (
    project_id     text NOT NULL,
    endpoint_id    text NOT NULL,
    granularity    integer NOT NULL,
    bucket         datetime NOT NULL,
    total          integer NOT NULL DEFAULT 0,
    succeeded      integer NOT NULL DEFAULT 0,
    failed         integer NOT NULL DEFAULT 0,
    retries        integer NOT NULL DEFAULT 0,
    latency_sum_ms integer NOT NULL DEFAULT 0,
    latency_count  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, endpoint_id, granularity, bucket)
);

-- backfill: the counters of the messages already there (the last 31 days;
-- older ones are outside every window), by the same rules as the live
-- counters: created, now succeeded or failed, retry attempts, latency.
-- Buckets are written in the driver's time format, as hookd writes them.
INSERT INTO message_stats (project_id, endpoint_id, granularity, bucket, total, succeeded, failed, retries, latency_sum_ms, latency_count)
SELECT project_id, ep, g.g,
    CASE g.g WHEN 60 THEN strftime('%Y-%m-%d %H:%M:00+00:00', created_at) ELSE strftime('%Y-%m-%d %H:00:00+00:00', created_at) END,
    count(*), count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed_permanent'),
    sum(max(attempt_count - 1, 0)),
    coalesce(sum(response_latency_ms) FILTER (WHERE status = 'succeeded'), 0),
    count(response_latency_ms) FILTER (WHERE status = 'succeeded')
FROM (SELECT project_id, endpoint_id AS ep, status, attempt_count, response_latency_ms, created_at FROM messages
      UNION ALL
      SELECT project_id, '', status, attempt_count, response_latency_ms, created_at FROM messages) AS m
CROSS JOIN (SELECT 60 AS g UNION ALL SELECT 3600) AS g
WHERE created_at >= strftime('%Y-%m-%d %H:%M:%S+00:00', 'now', '-31 days')
GROUP BY 1, 2, 3, 4;
