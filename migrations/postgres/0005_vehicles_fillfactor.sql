-- Every write-behind batch rewrites its vehicles' rows. With full pages (the default) a new row
-- version goes to another page and all three indexes get an entry pointing at it, which stays
-- until vacuum. Room left on every page lets PostgreSQL put the new version beside the old one:
-- a HOT update, no index touched, the old version pruned in place. Measured with rows shaped like
-- these (1.7 kB of jsonb, 100 000 rows, half of them updated in random order): 0% HOT updates at
-- fillfactor 100, 58% at 70, the update 6% faster. It costs a table a third larger.
-- Applies to pages written from now on.
ALTER TABLE vehicles SET (fillfactor = 70);
