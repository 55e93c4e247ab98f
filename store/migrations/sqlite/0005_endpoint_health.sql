-- Endpoint health (the circuit breaker): the current run of failed
-- attempts, when it began, the earliest time of the next probe while the
-- endpoint keeps failing, until when a probe in flight holds the others
-- back, and when and why hookd disabled it.
ALTER TABLE endpoints ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN failing_since datetime;
ALTER TABLE endpoints ADD COLUMN probe_after datetime;
ALTER TABLE endpoints ADD COLUMN probe_lease_until datetime;
ALTER TABLE endpoints ADD COLUMN disabled_at datetime;
ALTER TABLE endpoints ADD COLUMN disabled_reason text;
