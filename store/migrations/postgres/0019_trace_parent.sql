-- Tracing: the W3C traceparent of the request that sent a message (set only
-- while tracing is on; its flags say whether that request was recorded), so its delivery
-- attempts, in whichever process and however much later, are spans of the
-- same trace.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS trace_parent text;
