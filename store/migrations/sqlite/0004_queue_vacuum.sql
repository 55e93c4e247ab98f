-- SQLite has no autovacuum settings to tune; kept so both dialects share version numbers.
SELECT 1;
