-- Retention clean-up: a lease so that one process at a time runs it, and
-- indexes that find finished messages by when they finished (payloads to
-- purge under the project's retention or their own, rows to delete).
CREATE TABLE leader_leases (
    name   text PRIMARY KEY,
    holder text NOT NULL,
    until  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_terminal_idx ON messages (terminal_at) WHERE terminal_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_payload_expiry_idx ON messages (terminal_at)
    WHERE payload IS NOT NULL AND terminal_at IS NOT NULL AND retention_hours IS NULL;
CREATE INDEX IF NOT EXISTS messages_payload_override_idx ON messages (terminal_at)
    WHERE payload IS NOT NULL AND terminal_at IS NOT NULL AND retention_hours IS NOT NULL;
