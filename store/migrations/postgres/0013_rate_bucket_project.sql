-- Every table carries project_id, the key the data would be sharded by;
-- the rate-limit buckets were the one that did not.
ALTER TABLE endpoint_rate_buckets ADD COLUMN project_id text REFERENCES projects (id);
UPDATE endpoint_rate_buckets b SET project_id = e.project_id FROM endpoints e WHERE e.id = b.endpoint_id;
-- During a rolling upgrade, processes of the previous release insert
-- buckets without project_id: fill it in from the endpoint, so the column
-- can be NOT NULL at once (the migration stays additive for them).
CREATE FUNCTION hookd_rate_bucket_project() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.project_id IS NULL THEN
        SELECT e.project_id INTO NEW.project_id FROM endpoints e WHERE e.id = NEW.endpoint_id;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER endpoint_rate_buckets_project BEFORE INSERT ON endpoint_rate_buckets
    FOR EACH ROW EXECUTE FUNCTION hookd_rate_bucket_project();
ALTER TABLE endpoint_rate_buckets ALTER COLUMN project_id SET NOT NULL;
