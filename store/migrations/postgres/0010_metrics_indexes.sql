-- Metrics read two counts at every refresh (package metrics, at most every
-- 5 s per process). Each gets a partial index holding only the rows it
-- counts, so the count reads the index alone and costs nothing while the
-- DLQ is empty; a message enters the DLQ index only when it fails for good.
-- The DLQ index is also the order of the DLQ listing (a project's
-- failed_permanent messages, newest id first).
CREATE INDEX IF NOT EXISTS messages_dlq_idx ON messages (project_id, id) WHERE status = 'failed_permanent' AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS endpoints_disabled_idx ON endpoints (id) WHERE disabled_at IS NOT NULL AND deleted_at IS NULL;
