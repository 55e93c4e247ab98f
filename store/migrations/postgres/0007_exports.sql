-- CSV exports: the filters of an export, recorded when it is created. The
-- CSV itself is produced from messages on every download, so no file is
-- kept and any process can serve it. Rows are purged 7 days after they
-- expire (PurgeExpiredExports).
CREATE TABLE exports (
    id                 text PRIMARY KEY,
    project_id         text NOT NULL REFERENCES projects (id),
    status             text NOT NULL,
    filter_start_time  timestamptz NOT NULL,
    filter_end_time    timestamptz NOT NULL,
    filter_status      text,
    filter_endpoint_id text,
    filter_direction   text NOT NULL DEFAULT 'outbound',
    row_count          bigint NOT NULL DEFAULT 0,
    file_size_bytes    bigint,
    error_message      text,
    created_at         timestamptz NOT NULL,
    started_at         timestamptz,
    completed_at       timestamptz,
    expires_at         timestamptz NOT NULL,
    deleted_at         timestamptz
);
-- Listing, newest first by id (UUIDv7).
CREATE INDEX exports_project_idx ON exports (project_id, id);
-- The purge.
CREATE INDEX exports_expires_idx ON exports (expires_at);
