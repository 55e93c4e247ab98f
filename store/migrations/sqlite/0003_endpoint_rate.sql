-- Token buckets of endpoints with a rate limit, shared by every process.
CREATE TABLE endpoint_rate_buckets (
    endpoint_id text PRIMARY KEY REFERENCES endpoints (id),
    tokens      real NOT NULL,
    refilled_at datetime NOT NULL
);
