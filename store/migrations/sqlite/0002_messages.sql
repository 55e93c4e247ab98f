-- Messages (each row is also its own queue entry) and delivery attempts.
CREATE TABLE messages (
    id                  text PRIMARY KEY,
    project_id          text NOT NULL REFERENCES projects (id),
    endpoint_id         text NOT NULL REFERENCES endpoints (id),
    status              text NOT NULL,
    payload             blob,
    payload_sha256      text NOT NULL,
    size_bytes          integer NOT NULL,
    headers             text NOT NULL DEFAULT '{}',
    idempotency_key     text,
    retention_hours     integer,
    attempt_count       integer NOT NULL DEFAULT 0,
    budget_used         integer NOT NULL DEFAULT 0,
    fast_streak         integer NOT NULL DEFAULT 0,
    slow_retries        integer NOT NULL DEFAULT 0,
    replay_count        integer NOT NULL DEFAULT 0,
    next_attempt_at     datetime,
    lease_until         datetime,
    lease_token         text,
    last_error          text,
    response_status     integer,
    response_latency_ms integer,
    first_attempt_at    datetime,
    delivered_at        datetime,
    terminal_at         datetime,
    created_at          datetime NOT NULL,
    updated_at          datetime NOT NULL,
    deleted_at          datetime
);
-- Idempotency: one message per key and endpoint, for as long as the row exists.
CREATE UNIQUE INDEX messages_idempotency_uq ON messages (endpoint_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- The queue: due messages in due order, and leases to rescue.
CREATE INDEX messages_due_idx ON messages (next_attempt_at) WHERE status IN ('queued', 'pending_retry');
CREATE INDEX messages_lease_idx ON messages (lease_until) WHERE status = 'delivering';
-- Listings.
CREATE INDEX messages_project_idx ON messages (project_id, id);
CREATE INDEX messages_endpoint_status_idx ON messages (endpoint_id, status);

CREATE TABLE attempts (
    id                      text PRIMARY KEY,
    project_id              text NOT NULL,
    message_id              text NOT NULL REFERENCES messages (id),
    attempt_no              integer NOT NULL,
    started_at              datetime NOT NULL,
    outcome                 text NOT NULL,
    response_status         integer,
    duration_ms             real NOT NULL,
    dns_ms                  real,
    connect_ms              real,
    tls_ms                  real,
    ttfb_ms                 real,
    transfer_ms             real,
    resolved_ip             text,
    conn_reused             boolean NOT NULL DEFAULT false,
    request_headers         text NOT NULL DEFAULT '{}',
    response_headers        text NOT NULL DEFAULT '{}',
    response_body           text,
    response_body_truncated boolean NOT NULL DEFAULT false,
    error_text              text,
    retry_type              text,
    retry_after_seconds     integer
);
CREATE INDEX attempts_message_idx ON attempts (message_id, attempt_no);
