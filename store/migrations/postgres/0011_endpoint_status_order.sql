-- Listings filtered by endpoint and status (GET /v1/logs, the DLQ of one
-- endpoint) read newest first: with id in the index they read exactly the
-- page, instead of every matching row and a sort, or a walk of the
-- project's whole history when the status is rare (measured: 640 ms at
-- 1,000,000 messages before, see docs/benchmarks.md). Same columns
-- otherwise, so writes cost the same.
-- (A new name, so an index built beforehand with CREATE INDEX CONCURRENTLY
-- is found and kept: docs/operations.md, rolling upgrades.)
CREATE INDEX IF NOT EXISTS messages_endpoint_status_id_idx ON messages (endpoint_id, status, id);
DROP INDEX IF EXISTS messages_endpoint_status_idx;
