-- The event model: event types (optionally with a JSON Schema of their
-- payload), endpoints subscribed to types and owned by the user's own
-- customers, and events fanned out to one message per matching endpoint.
CREATE TABLE event_types (
    project_id  text NOT NULL REFERENCES projects (id),
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    schema      text,
    archived    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (project_id, name)
);
CREATE TABLE events (
    id              text PRIMARY KEY,
    project_id      text NOT NULL REFERENCES projects (id),
    event_type      text NOT NULL,
    owner_id        text,
    idempotency_key text,
    payload_sha256  text NOT NULL,
    endpoint_count  integer NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX events_project_idx ON events (project_id, id);
-- Idempotency is per event and project.
CREATE UNIQUE INDEX events_idempotency_idx ON events (project_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Subscriptions: the types an endpoint receives (a JSON array; empty means
-- every type) and the user's own customer it belongs to.
ALTER TABLE endpoints ADD COLUMN event_types text NOT NULL DEFAULT '[]';
ALTER TABLE endpoints ADD COLUMN owner_id text;
CREATE INDEX endpoints_owner_idx ON endpoints (project_id, owner_id) WHERE owner_id IS NOT NULL;
-- A message made by an event names it.
ALTER TABLE messages ADD COLUMN event_type text;
ALTER TABLE messages ADD COLUMN event_id text;
CREATE INDEX IF NOT EXISTS messages_event_idx ON messages (event_id) WHERE event_id IS NOT NULL;
-- Whether events of types the project has not created may be published.
ALTER TABLE projects ADD COLUMN allow_unknown_event_types boolean NOT NULL DEFAULT true;
