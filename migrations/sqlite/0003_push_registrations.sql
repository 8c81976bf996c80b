-- Push to Home Assistant: registrations, delivery health and the pending push, SQLite flavour.
-- Keep in step with migrations/postgres/0003_push_registrations.sql. Conventions: 0001_schema.sql.

CREATE TABLE push_registrations (
    -- The vehicle's internal id: one registration per vehicle. No reference to vehicles: their
    -- rows are written behind and may not exist yet when HA registers.
    vehicle_id           TEXT PRIMARY KEY NOT NULL,
    enode_vehicle_id     TEXT NOT NULL,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    webhook_id           TEXT NOT NULL,
    -- {external_url}/api/webhook/{webhook_id}: a secret (whoever has it can post to that HA).
    url                  TEXT NOT NULL,
    -- The vehicle id as the registration gave it (Enode or internal form): what HA's entry holds.
    vehicle_ref          TEXT NOT NULL,
    registered_at        TEXT NOT NULL,
    last_success_at      TEXT,
    last_failure_at      TEXT,
    last_failure_reason  TEXT,
    consecutive_failures INTEGER NOT NULL CHECK (consecutive_failures >= 0),
    -- The newest state waiting to be pushed: its version and status body (JSON text, kept byte
    -- for byte), and when it was received.
    pending_version      INTEGER,
    pending_status       TEXT,
    pending_created_at   TEXT,
    -- Every version up to this one was delivered or given up: never sent again.
    settled_version      INTEGER NOT NULL CHECK (settled_version >= 0),
    updated_at           TEXT NOT NULL,
    CONSTRAINT push_registrations_user_webhook_key UNIQUE (user_id, webhook_id),
    CHECK ((pending_version IS NULL) = (pending_status IS NULL))
) STRICT;

CREATE INDEX push_registrations_user_idx ON push_registrations (user_id);
