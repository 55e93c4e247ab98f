-- Per-project settings: the API rate limits (requests per minute; 0 means
-- the server default for management routes and unlimited for sends) and
-- the payload retention of the project's messages (hours; 0 means the
-- server default).
ALTER TABLE projects ADD COLUMN rate_limit_per_minute integer NOT NULL DEFAULT 0
    CHECK (rate_limit_per_minute BETWEEN 0 AND 1000000);
ALTER TABLE projects ADD COLUMN send_rate_limit_per_minute integer NOT NULL DEFAULT 0
    CHECK (send_rate_limit_per_minute BETWEEN 0 AND 1000000);
ALTER TABLE projects ADD COLUMN retention_hours integer NOT NULL DEFAULT 0
    CHECK (retention_hours BETWEEN 0 AND 2160);
