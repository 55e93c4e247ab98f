-- Token buckets of endpoints with a rate limit, shared by every process.
CREATE TABLE endpoint_rate_buckets (
    endpoint_id text PRIMARY KEY REFERENCES endpoints (id),
    tokens      double precision NOT NULL,
    refilled_at timestamptz NOT NULL
);
