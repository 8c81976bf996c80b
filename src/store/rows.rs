//! Column values shared by both backends: the text forms of enums and hashes, and the vehicle
//! JSON. A value the code cannot read is `Corrupt`, named so the row can be found.

use chrono::{DateTime, SubsecRound, Utc};
use evconduit_actors::model::Vehicle;
use evconduit_actors::state::DataSource;
use evconduit_actors::tier::Tier;
use uuid::Uuid;

use super::{KeyHash, Role, StoreError};

pub(crate) fn role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown role {s:?}")))
}

pub(crate) fn tier(s: &str) -> Result<Tier, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt(format!("unknown tier {s:?}")))
}

pub(crate) fn source(s: &str) -> Result<DataSource, StoreError> {
    DataSource::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown data source {s:?}")))
}

pub(crate) fn key_hash(s: &str) -> Result<KeyHash, StoreError> {
    KeyHash::from_hex(s).ok_or_else(|| StoreError::Corrupt("api key hash is not 64 hex digits".into()))
}

/// The vehicle as stored in `vehicles.data`: Enode's JSON, unknown fields included.
pub(crate) fn vehicle_json(vehicle: &Vehicle) -> Result<String, StoreError> {
    serde_json::to_string(vehicle)
        .map_err(|e| StoreError::Invalid(format!("vehicle {} cannot be serialised: {e}", vehicle.id)))
}

/// For an error reading a vehicle row: which row.
pub(crate) fn in_vehicle(internal_id: Uuid) -> impl Fn(StoreError) -> StoreError {
    move |err| StoreError::Corrupt(format!("vehicle {internal_id}: {err}"))
}

/// Postgres keeps microseconds; SQLite would keep whatever text it is given. Both backends store
/// times cut to the microsecond so they give back the same value.
pub(crate) fn db_time(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_time_cuts_to_microseconds() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("valid time");
        assert_eq!(db_time(t).to_rfc3339(), "2026-01-02T03:04:05.123456+00:00");
    }

    #[test]
    fn unknown_enum_values_are_corrupt() {
        assert!(matches!(role("root"), Err(StoreError::Corrupt(_))));
        assert!(matches!(tier("gold"), Err(StoreError::Corrupt(_))));
        assert!(matches!(source("carrier pigeon"), Err(StoreError::Corrupt(_))));
        assert!(matches!(key_hash("abc"), Err(StoreError::Corrupt(_))));
    }
}
