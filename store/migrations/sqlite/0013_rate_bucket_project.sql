-- Every table carries project_id, the key the data would be sharded by;
-- the rate-limit buckets were the one that did not. SQLite cannot add a
-- NOT NULL column without a default, so the table is rebuilt (one process
-- owns a SQLite file, so nothing else writes meanwhile).
CREATE TABLE endpoint_rate_buckets_new (
    endpoint_id text PRIMARY KEY REFERENCES endpoints (id),
    project_id  text NOT NULL REFERENCES projects (id),
    tokens      real NOT NULL,
    refilled_at datetime NOT NULL
);
INSERT INTO endpoint_rate_buckets_new (endpoint_id, project_id, tokens, refilled_at)
    SELECT b.endpoint_id, e.project_id, b.tokens, b.refilled_at
    FROM endpoint_rate_buckets b JOIN endpoints e ON e.id = b.endpoint_id;
DROP TABLE endpoint_rate_buckets;
ALTER TABLE endpoint_rate_buckets_new RENAME TO endpoint_rate_buckets;
