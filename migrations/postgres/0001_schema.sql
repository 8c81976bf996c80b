-- evconduit schema, Postgres flavour. Keep in step with migrations/sqlite/0001_schema.sql.
-- Constraints are named so the store can say which unique value was taken.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    name          text,
    role          text NOT NULL CHECK (role IN ('user', 'admin')),
    tier          text NOT NULL CHECK (tier IN ('free', 'basic', 'pro')),
    trial_ends_at timestamptz,
    created_at    timestamptz NOT NULL
);

-- Case-insensitive uniqueness. COLLATE "C" makes lower() fold ASCII letters only, as SQLite's
-- NOCASE does, so both backends agree whatever the database's locale. Lookups must use the same
-- expression to use this index.
CREATE UNIQUE INDEX users_email_key ON users (lower(email COLLATE "C"));
CREATE INDEX users_created_at_idx ON users (created_at, id);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    -- Lowercase hex of the key's SHA-256; the key itself is never stored.
    key_hash     text NOT NULL CHECK (length(key_hash) = 64),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label        text,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
);

CREATE INDEX api_keys_user_id_idx ON api_keys (user_id, created_at);
-- Running servers poll for revocations made elsewhere; few keys are ever revoked.
CREATE INDEX api_keys_revoked_at_idx ON api_keys (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE vehicles (
    -- The service's own id (what HA installs hold), not Enode's.
    id              uuid PRIMARY KEY,
    enode_id        text NOT NULL,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Enode's vehicle object, unknown fields included.
    data            jsonb NOT NULL,
    -- Copied out of data for queries by hand; the store reads data.
    last_seen       timestamptz,
    received_at     timestamptz NOT NULL,
    source          text NOT NULL CHECK (source IN ('webhook', 'refresh', 'restored')),
    relink_required boolean NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT vehicles_enode_id_key UNIQUE (enode_id)
);

CREATE INDEX vehicles_user_id_idx ON vehicles (user_id);

CREATE TABLE webhook_deliveries (
    -- Enode's x-enode-delivery header.
    id          text PRIMARY KEY,
    received_at timestamptz NOT NULL,
    event_count integer NOT NULL CHECK (event_count >= 0)
);

CREATE INDEX webhook_deliveries_received_at_idx ON webhook_deliveries (received_at);
