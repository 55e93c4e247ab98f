-- Projects, API keys, endpoints and signing keys.
CREATE TABLE projects (
    id         text PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    created_at datetime NOT NULL
);

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    project_id   text NOT NULL REFERENCES projects (id),
    label        text NOT NULL DEFAULT '',
    mode         text NOT NULL,
    prefix       text NOT NULL,
    key_hash     text NOT NULL UNIQUE,
    created_at   datetime NOT NULL,
    last_used_at datetime,
    deleted_at   datetime
);
CREATE INDEX api_keys_project_idx ON api_keys (project_id, id);

CREATE TABLE endpoints (
    id             text PRIMARY KEY,
    project_id     text NOT NULL REFERENCES projects (id),
    url            text NOT NULL,
    url_normalized text NOT NULL,
    description    text NOT NULL DEFAULT '',
    rate_limit_rps integer NOT NULL DEFAULT 0,
    burst          integer NOT NULL DEFAULT 0,
    headers        text NOT NULL DEFAULT '{}',
    hmac_enabled   boolean NOT NULL DEFAULT true,
    paused         boolean NOT NULL DEFAULT false,
    created_at     datetime NOT NULL,
    updated_at     datetime NOT NULL,
    deleted_at     datetime
);
CREATE INDEX endpoints_project_idx ON endpoints (project_id, id);
-- DUPLICATE_URL is this index: one live endpoint per normalised URL and project.
CREATE UNIQUE INDEX endpoints_live_url_uq ON endpoints (project_id, url_normalized) WHERE deleted_at IS NULL;

CREATE TABLE signing_keys (
    id            text PRIMARY KEY,
    project_id    text NOT NULL REFERENCES projects (id),
    endpoint_id   text NOT NULL REFERENCES endpoints (id),
    master_key_id text NOT NULL,
    secret_sealed blob NOT NULL,
    key_hint      text NOT NULL,
    created_at    datetime NOT NULL
);
CREATE INDEX signing_keys_endpoint_idx ON signing_keys (endpoint_id, id);
