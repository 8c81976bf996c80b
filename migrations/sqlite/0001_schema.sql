-- evconduit schema, SQLite flavour. Keep in step with migrations/postgres/0001_schema.sql.
--
-- Types: uuids are TEXT (hyphenated, lowercase), booleans INTEGER 0/1, JSON TEXT. Timestamps are
-- TEXT in RFC 3339 exactly as sqlx writes chrono's DateTime<Utc>: always "+00:00", a fraction of
-- 0, 3 or 6 digits (the store cuts to microseconds, as Postgres does). Within that format text
-- order is time order ('+' sorts before '.' and before any digit), so timestamps compare with
-- plain < and >= and their indexes work.
--
-- STRICT tables: a hand edit that puts a number in a TEXT column fails instead of lingering.

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    -- NOCASE folds ASCII letters only; Postgres uses lower(email COLLATE "C"), which does the
    -- same, so both backends agree on which emails are "the same".
    email         TEXT NOT NULL COLLATE NOCASE,
    name          TEXT,
    role          TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    tier          TEXT NOT NULL CHECK (tier IN ('free', 'basic', 'pro')),
    trial_ends_at TEXT,
    created_at    TEXT NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email)
) STRICT;

CREATE INDEX users_created_at_idx ON users (created_at, id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    -- Lowercase hex of the key's SHA-256; the key itself is never stored.
    key_hash     TEXT NOT NULL CHECK (length(key_hash) = 64),
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label        TEXT,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
) STRICT;

CREATE INDEX api_keys_user_id_idx ON api_keys (user_id, created_at);
-- Running servers poll for revocations made elsewhere; few keys are ever revoked.
CREATE INDEX api_keys_revoked_at_idx ON api_keys (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE vehicles (
    -- The service's own id (what HA installs hold), not Enode's.
    id              TEXT PRIMARY KEY NOT NULL,
    enode_id        TEXT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Enode's vehicle object, unknown fields included.
    data            TEXT NOT NULL CHECK (json_valid(data)),
    -- Copied out of data for queries by hand; the store reads data.
    last_seen       TEXT,
    received_at     TEXT NOT NULL,
    source          TEXT NOT NULL CHECK (source IN ('webhook', 'refresh', 'restored')),
    relink_required INTEGER NOT NULL CHECK (relink_required IN (0, 1)),
    updated_at      TEXT NOT NULL,
    CONSTRAINT vehicles_enode_id_key UNIQUE (enode_id)
) STRICT;

CREATE INDEX vehicles_user_id_idx ON vehicles (user_id);

CREATE TABLE webhook_deliveries (
    -- Enode's x-enode-delivery header.
    id          TEXT PRIMARY KEY NOT NULL,
    received_at TEXT NOT NULL,
    event_count INTEGER NOT NULL CHECK (event_count >= 0)
) STRICT;

CREATE INDEX webhook_deliveries_received_at_idx ON webhook_deliveries (received_at);
