-- Delivery statistics (GET /v1/metrics): counters of the messages created
-- per project, endpoint ('' = all endpoints) and minute (granularity 60) or
-- hour (3600), added to by every process every second.
CREATE TABLE message_stats (
    project_id     text NOT NULL,
    endpoint_id    text NOT NULL,
    granularity    integer NOT NULL,
    bucket         timestamptz NOT NULL,
    total          bigint NOT NULL DEFAULT 0,
    succeeded      bigint NOT NULL DEFAULT 0,
    failed         bigint NOT NULL DEFAULT 0,
    retries        bigint NOT NULL DEFAULT 0,
    latency_sum_ms bigint NOT NULL DEFAULT 0,
    latency_count  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, endpoint_id, granularity, bucket)
);

-- backfill: the counters of the messages already there (the last 31 days;
-- older ones are outside every window), by the same rules as the live
-- counters: created, now succeeded or failed, retry attempts, latency.
INSERT INTO message_stats (project_id, endpoint_id, granularity, bucket, total, succeeded, failed, retries, latency_sum_ms, latency_count)
SELECT m.project_id, e.ep, g.g,
    CASE g.g WHEN 60 THEN date_trunc('minute', m.created_at AT TIME ZONE 'UTC') ELSE date_trunc('hour', m.created_at AT TIME ZONE 'UTC') END AT TIME ZONE 'UTC',
    count(*), count(*) FILTER (WHERE m.status = 'succeeded'), count(*) FILTER (WHERE m.status = 'failed_permanent'),
    sum(greatest(m.attempt_count - 1, 0)),
    coalesce(sum(m.response_latency_ms) FILTER (WHERE m.status = 'succeeded'), 0),
    count(m.response_latency_ms) FILTER (WHERE m.status = 'succeeded')
FROM messages m
CROSS JOIN LATERAL (VALUES (m.endpoint_id), ('')) AS e (ep)
CROSS JOIN (VALUES (60), (3600)) AS g (g)
WHERE m.created_at >= now() - interval '31 days'
GROUP BY 1, 2, 3, 4;
