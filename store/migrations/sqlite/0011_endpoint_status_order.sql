-- Listings filtered by endpoint and status (GET /v1/logs, the DLQ of one
-- endpoint) read newest first: with id in the index they read exactly the
-- page, instead of every matching row and a sort, or a walk of the
-- project's whole history when the status is rare (measured: 640 ms at
-- 1,000,000 messages before, see docs/benchmarks.md). Same columns
-- otherwise, so writes cost the same.
DROP INDEX messages_endpoint_status_idx;
CREATE INDEX messages_endpoint_status_idx ON messages (endpoint_id, status, id);
