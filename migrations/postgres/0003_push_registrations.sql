-- Push to Home Assistant: registrations, delivery health and the pending push, Postgres flavour.
-- Keep in step with migrations/sqlite/0003_push_registrations.sql.

CREATE TABLE push_registrations (
    -- The vehicle's internal id: one registration per vehicle. No reference to vehicles: their
    -- rows are written behind and may not exist yet when HA registers.
    vehicle_id           uuid PRIMARY KEY,
    enode_vehicle_id     text NOT NULL,
    user_id              uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    webhook_id           text NOT NULL,
    -- {external_url}/api/webhook/{webhook_id}: a secret (whoever has it can post to that HA).
    url                  text NOT NULL,
    -- The vehicle id as the registration gave it (Enode or internal form): what HA's entry holds.
    vehicle_ref          text NOT NULL,
    registered_at        timestamptz NOT NULL,
    last_success_at      timestamptz,
    last_failure_at      timestamptz,
    last_failure_reason  text,
    consecutive_failures integer NOT NULL CHECK (consecutive_failures >= 0),
    -- The newest state waiting to be pushed: its version and status body (JSON as text, kept
    -- byte for byte: jsonb would reorder it), and when it was received.
    pending_version      bigint,
    pending_status       text,
    pending_created_at   timestamptz,
    -- Every version up to this one was delivered or given up: never sent again.
    settled_version      bigint NOT NULL CHECK (settled_version >= 0),
    updated_at           timestamptz NOT NULL,
    CONSTRAINT push_registrations_user_webhook_key UNIQUE (user_id, webhook_id),
    CHECK ((pending_version IS NULL) = (pending_status IS NULL))
);

CREATE INDEX push_registrations_user_idx ON push_registrations (user_id);
