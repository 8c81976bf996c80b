-- The vehicle's JSON as text (json), not jsonb. Nothing queries inside it: the service writes the
-- whole object and reads it back whole, at start. jsonb parsed every write into its binary form
-- (the largest part of PostgreSQL's work per write-behind row) and printed it back to text at
-- every start; json only checks the text and keeps it as written, byte for byte, as SQLite
-- does. `->` and `->>` still work for queries by hand.
-- Rewrites the table once (about a second per 100 000 vehicles); fillfactor is kept.
ALTER TABLE vehicles ALTER COLUMN data TYPE json USING data::json;
