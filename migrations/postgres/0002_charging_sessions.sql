-- Charging sessions and electricity rates, Postgres flavour. Keep in step with
-- migrations/sqlite/0002_charging_sessions.sql.

CREATE TABLE charging_sessions (
    id                   uuid PRIMARY KEY,
    user_id              uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The vehicle's internal id. No reference to vehicles: their rows are written behind and may
    -- not exist yet, and a session outlives the vehicle being unlinked.
    vehicle_id           uuid NOT NULL,
    enode_vehicle_id     text NOT NULL,
    start_time           timestamptz NOT NULL,
    -- NULL while the session is open.
    end_time             timestamptz,
    battery_level_start  double precision NOT NULL,
    battery_level_end    double precision NOT NULL,
    battery_capacity_kwh double precision,
    energy_added_kwh     double precision,
    max_rate_kw          double precision,
    avg_rate_kw          double precision,
    rate_samples         integer NOT NULL CHECK (rate_samples >= 0),
    location_lat         double precision,
    location_lon         double precision,
    odometer_km          double precision,
    cost_per_kwh         double precision,
    currency             text,
    total_cost           double precision,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);

-- The sessions list: one user's closed sessions by start time.
CREATE INDEX charging_sessions_user_start_idx ON charging_sessions (user_id, start_time, id);
-- The odometer route: a vehicle's latest session.
CREATE INDEX charging_sessions_vehicle_start_idx ON charging_sessions (vehicle_id, start_time);
-- Restored at start.
CREATE INDEX charging_sessions_open_idx ON charging_sessions (vehicle_id) WHERE end_time IS NULL;

CREATE TABLE electricity_rates (
    user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    cost_per_kwh double precision NOT NULL CHECK (cost_per_kwh >= 0),
    currency     text NOT NULL CHECK (length(currency) = 3),
    updated_at   timestamptz NOT NULL
);
