-- Ordered delivery: an endpoint set to 'fifo' gets its messages one at a
-- time in the order they were accepted, per ordering key. A message of
-- such an endpoint carries fifo_key (endpoint id, '/', its ordering key),
-- and is claimed only when no older message with that key is still
-- waiting or in flight.
ALTER TABLE endpoints ADD COLUMN ordering text NOT NULL DEFAULT 'none'
  CHECK (ordering IN ('none', 'fifo'));
ALTER TABLE messages ADD COLUMN IF NOT EXISTS fifo_key text; -- may exist: see the upgrade notes
-- The messages that hold the ones behind them, by key.
CREATE INDEX IF NOT EXISTS messages_fifo_wait_idx ON messages (fifo_key, id)
  WHERE fifo_key IS NOT NULL AND deleted_at IS NULL AND status IN ('queued', 'delivering', 'pending_retry', 'paused');
