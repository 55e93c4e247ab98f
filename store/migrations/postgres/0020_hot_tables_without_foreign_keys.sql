-- The queue's hot tables lose their foreign keys. Every message and
-- attempt row costs a referential check per key (a lookup and a row lock
-- in the referenced table): measured, 16 % of PostgreSQL's CPU per
-- delivered message in the fan-out benchmark. hookd keeps the references
-- itself: a message is inserted only by statements that read its live
-- endpoint (FOR SHARE) in the same project, an attempt only by the
-- statement that updates its message, and the retention clean-up deletes
-- a message's attempts with it in one transaction; endpoints and projects
-- are never deleted (an endpoint's delete sets deleted_at). Older releases
-- never relied on these constraints, so they run beside this one.
-- (SQLite keeps its foreign keys: dropping one there rebuilds the table.)
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_project_id_fkey;
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_endpoint_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_message_id_fkey;
