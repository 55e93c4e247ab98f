-- Endpoint authentication: the credential itself is one more header in the
-- sealed custom-header map (headers_sealed); the row keeps what may be
-- shown: its type, the header that carries it and a hint.
ALTER TABLE endpoints ADD COLUMN auth_type text
  CHECK (auth_type IN ('bearer', 'basic', 'header'));
ALTER TABLE endpoints ADD COLUMN auth_header text;
ALTER TABLE endpoints ADD COLUMN auth_hint text;
