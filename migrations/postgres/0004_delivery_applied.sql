-- A delivery is recorded before its events are applied. Recording when they were applied lets a
-- retry of a delivery that was recorded but never applied (the request was cut off, a lookup
-- failed) be applied instead of dismissed as a duplicate. Rows from before this column were applied.
ALTER TABLE webhook_deliveries ADD COLUMN applied_at timestamptz;
UPDATE webhook_deliveries SET applied_at = received_at;
