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
