-- Charging sessions and electricity rates, SQLite flavour. Keep in step with
-- migrations/postgres/0002_charging_sessions.sql. Conventions: see 0001_schema.sql.

CREATE TABLE charging_sessions (
    id                   TEXT PRIMARY KEY NOT NULL,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The vehicle's internal id. No reference to vehicles: their rows are written behind and may
    -- not exist yet, and a session outlives the vehicle being unlinked.
    vehicle_id           TEXT NOT NULL,
    enode_vehicle_id     TEXT NOT NULL,
    start_time           TEXT NOT NULL,
    -- NULL while the session is open.
    end_time             TEXT,
    battery_level_start  REAL NOT NULL,
    battery_level_end    REAL NOT NULL,
    battery_capacity_kwh REAL,
    energy_added_kwh     REAL,
    max_rate_kw          REAL,
    avg_rate_kw          REAL,
    rate_samples         INTEGER NOT NULL CHECK (rate_samples >= 0),
    location_lat         REAL,
    location_lon         REAL,
    odometer_km          REAL,
    cost_per_kwh         REAL,
    currency             TEXT,
    total_cost           REAL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
) STRICT;

-- The sessions list: one user's closed sessions by start time.
CREATE INDEX charging_sessions_user_start_idx ON charging_sessions (user_id, start_time, id);
-- The odometer route: a vehicle's latest session.
CREATE INDEX charging_sessions_vehicle_start_idx ON charging_sessions (vehicle_id, start_time);
-- Restored at start.
CREATE INDEX charging_sessions_open_idx ON charging_sessions (vehicle_id) WHERE end_time IS NULL;

CREATE TABLE electricity_rates (
    user_id      TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    cost_per_kwh REAL NOT NULL CHECK (cost_per_kwh >= 0),
    currency     TEXT NOT NULL CHECK (length(currency) = 3),
    updated_at   TEXT NOT NULL
) STRICT;
