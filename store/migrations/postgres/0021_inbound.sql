-- Inbound webhooks: endpoints that receive webhooks from providers at an
-- ingest URL, verify them and forward them through the delivery engine.
-- Each inbound endpoint owns a delivery target row in endpoints with the
-- same id (inbound = true; never listed with the outbound endpoints), so
-- forwarding uses the engine's retries, signing keys, circuit breaker and
-- attempt records unchanged. Its messages are rows of messages with
-- inbound = true.
ALTER TABLE endpoints ADD COLUMN inbound boolean NOT NULL DEFAULT false;
ALTER TABLE messages ADD COLUMN inbound boolean NOT NULL DEFAULT false;
CREATE TABLE inbound_endpoints (
    id                       text PRIMARY KEY,
    project_id               text NOT NULL,
    name                     text NOT NULL DEFAULT '',
    description              text NOT NULL DEFAULT '',
    mode                     text NOT NULL DEFAULT 'forward',
    -- SHA-256 (hex) of the ingest token; the token is shown once.
    token_hash               text NOT NULL,
    provider                 text,
    verify_static_token      boolean NOT NULL DEFAULT false,
    token_header_name        text,
    token_query_param        text,
    token_value_hash         text,
    verify_hmac              boolean NOT NULL DEFAULT false,
    hmac_header_name         text,
    -- The HMAC secret, sealed by master key hmac_key_id (package secrets).
    hmac_secret_sealed       bytea,
    hmac_key_id              text,
    hmac_algorithm           text NOT NULL DEFAULT 'sha256',
    hmac_encoding            text NOT NULL DEFAULT 'hex',
    hmac_prefix              text,
    timestamp_header_name    text,
    timestamp_ttl_seconds    integer,
    verify_ip_allowlist      boolean NOT NULL DEFAULT false,
    allowed_cidrs            text NOT NULL DEFAULT '[]',
    idempotency_header_names text NOT NULL DEFAULT '[]',
    ingest_response_code     integer NOT NULL DEFAULT 200,
    paused                   boolean NOT NULL DEFAULT false,
    expires_at               timestamptz,
    created_at               timestamptz NOT NULL,
    updated_at               timestamptz NOT NULL,
    deleted_at               timestamptz
);
CREATE INDEX inbound_endpoints_project_idx ON inbound_endpoints (project_id, id) WHERE deleted_at IS NULL;
-- Refused ingest requests, kept a week for users to see why.
CREATE TABLE inbound_rejections (
    id                  text PRIMARY KEY,
    project_id          text NOT NULL,
    inbound_endpoint_id text NOT NULL,
    reason_code         text NOT NULL,
    reason_detail       text,
    source_ip           text,
    headers_redacted    text,
    received_at         timestamptz NOT NULL
);
CREATE INDEX inbound_rejections_project_idx ON inbound_rejections (project_id, id);
CREATE INDEX inbound_rejections_time_idx ON inbound_rejections (received_at);
