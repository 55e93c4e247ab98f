-- How deliveries to an endpoint are signed: 'hookbridge' (X-Webhook-*
-- headers, the default and what earlier releases did) or
-- 'standard_webhooks' (webhook-id, webhook-timestamp, webhook-signature).
ALTER TABLE endpoints ADD COLUMN signature_scheme text NOT NULL DEFAULT 'hookbridge'
  CHECK (signature_scheme IN ('hookbridge', 'standard_webhooks'));
