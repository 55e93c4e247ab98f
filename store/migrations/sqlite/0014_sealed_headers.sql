-- Endpoint custom headers are where users put their receivers' tokens: their
-- values are sealed at rest like signing secrets (AES-256-GCM under a master
-- key, with the endpoint id as associated data). headers keeps only what
-- earlier releases wrote; hookd masterkey rotate seals those too.
ALTER TABLE endpoints ADD COLUMN headers_sealed blob;
ALTER TABLE endpoints ADD COLUMN headers_key_id text;
