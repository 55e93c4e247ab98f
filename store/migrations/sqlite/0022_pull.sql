-- Pull endpoints (inbound endpoints with mode 'pull'): how long
-- acknowledged events are kept, and where an event's type is read from.
ALTER TABLE inbound_endpoints ADD COLUMN retention_days integer;
ALTER TABLE inbound_endpoints ADD COLUMN event_type_source text;
ALTER TABLE inbound_endpoints ADD COLUMN event_type_path text;
-- When a held (pull) event was first fetched; delivered_at is its
-- acknowledgement.
ALTER TABLE messages ADD COLUMN fetched_at datetime;
-- Listeners and pull read an inbound endpoint's messages in id order; the
-- partial index costs outbound inserts nothing.
CREATE INDEX messages_inbound_idx ON messages (endpoint_id, id) WHERE inbound;
