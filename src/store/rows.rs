//! Column values shared by both backends: the text forms of enums and hashes, and the vehicle
//! JSON. A value the code cannot read is `Corrupt`, named so the row can be found.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use evconduit_actors::model::Vehicle;
use evconduit_actors::state::DataSource;
use evconduit_actors::tier::Tier;
use serde_json::Value;
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

/// Room for one vehicle's JSON (the fixture's is 1.4 KiB).
const VEHICLE_JSON_BYTES: usize = 2048;

/// The vehicle as stored in `vehicles.data`: Enode's JSON, unknown fields included.
///
/// Postgres cannot store a NUL character in jsonb, and refusing the write would lose the vehicle
/// for good (every later state would fail the same way). So on both backends a NUL in any string
/// or key is stored as U+FFFD, the replacement character.
pub(crate) fn vehicle_json(vehicle: &Vehicle) -> Result<String, StoreError> {
    let unserialisable =
        |e: &dyn std::fmt::Display| StoreError::Invalid(format!("vehicle {} cannot be serialised: {e}", vehicle.id));
    // Sized for a whole vehicle: grown from serde_json's 128 bytes, each of the four doublings to
    // an Enode vehicle's 1.4-2 KiB copied what was written so far, for every row written.
    let mut buffer = Vec::with_capacity(VEHICLE_JSON_BYTES);
    serde_json::to_writer(&mut buffer, vehicle).map_err(|e| unserialisable(&e))?;
    let json = String::from_utf8(buffer).map_err(|e| unserialisable(&e))?;
    // serde_json writes NUL as the escape \u0000. Its absence proves there is none (the common
    // case costs one scan); its presence may be an escaped backslash followed by "u0000", which
    // the slow path below leaves alone.
    if !json.contains("\\u0000") {
        return Ok(json);
    }
    let mut value = serde_json::to_value(vehicle).map_err(|e| unserialisable(&e))?;
    replace_nul(&mut value);
    serde_json::to_string(&value).map_err(|e| unserialisable(&e))
}

fn replace_nul(value: &mut Value) {
    const REPLACEMENT: &str = "\u{FFFD}";
    match value {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', REPLACEMENT),
        Value::Array(items) => items.iter_mut().for_each(replace_nul),
        Value::Object(map) => {
            *map = std::mem::take(map)
                .into_iter()
                .map(|(key, mut v)| {
                    replace_nul(&mut v);
                    (key.replace('\0', REPLACEMENT), v)
                })
                .collect();
        }
        _ => {}
    }
}

/// For an error reading a vehicle row: which row.
pub(crate) fn in_vehicle(internal_id: Uuid) -> impl Fn(StoreError) -> StoreError {
    move |err| match err {
        StoreError::Corrupt(what) => StoreError::Corrupt(format!("vehicle {internal_id}: {what}")),
        other => other,
    }
}

/// For an error reading a charging session row: which row.
pub(crate) fn in_session(id: Uuid) -> impl Fn(StoreError) -> StoreError {
    move |err| StoreError::Corrupt(format!("charging session {id}: {err}"))
}

/// For an error reading a push registration row: which vehicle's.
pub(crate) fn in_push_target(vehicle_id: Uuid) -> impl Fn(StoreError) -> StoreError {
    move |err| StoreError::Corrupt(format!("push registration of vehicle {vehicle_id}: {err}"))
}

/// A version column (never negative by the schema's CHECK) and back.
pub(crate) fn version(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative version {v}")))
}

pub(crate) fn version_column(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("version {v} out of range")))
}

/// A count column (never negative by the schema's CHECK).
pub(crate) fn count<T: TryInto<u32> + Copy + std::fmt::Display>(n: T) -> Result<u32, StoreError> {
    n.try_into().map_err(|_| StoreError::Corrupt(format!("count out of range: {n}")))
}

/// Postgres keeps microseconds; SQLite would keep whatever text it is given. Both backends store
/// times cut to the microsecond so they give back the same value.
pub(crate) fn db_time(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// A uuid stored as hyphenated text on SQLite, read by the store itself (see `time_text`).
pub(crate) fn uuid_text(text: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(text).map_err(|e| StoreError::Corrupt(format!("{text:?} is not a uuid: {e}")))
}

/// A time stored as text on SQLite, where the store reads it itself rather than through sqlx: the
/// RFC 3339 the service writes, or SQLite's own `datetime()` form (UTC) left by a hand edit.
pub(crate) fn time_text(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%F %T%.f").map(|t| t.and_utc()))
        .map_err(|e| StoreError::Corrupt(format!("{text:?} is not a time: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_text_reads_rfc_3339_and_sqlites_own_form_as_utc() {
        let written = time_text("2026-03-01T12:34:56.789012+00:00").expect("rfc 3339");
        assert_eq!(written.to_rfc3339(), "2026-03-01T12:34:56.789012+00:00");
        let by_hand = time_text("2026-03-01 12:34:56").expect("sqlite's form");
        assert_eq!(by_hand.to_rfc3339(), "2026-03-01T12:34:56+00:00");
        assert!(matches!(time_text("yesterday"), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn db_time_cuts_to_microseconds() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("valid time");
        assert_eq!(db_time(t).to_rfc3339(), "2026-01-02T03:04:05.123456+00:00");
    }

    #[test]
    fn nul_characters_become_replacement_characters() {
        let mut vehicle = Vehicle { id: "v".into(), ..Vehicle::default() };
        vehicle.extra.insert("a\0key".into(), serde_json::json!(["x\0y", {"deep": "\0"}]));
        let json = vehicle_json(&vehicle).expect("serialises");
        assert!(!json.contains("\\u0000"), "{json}");
        let back: Value = serde_json::from_str(&json).expect("valid json");
        assert_eq!(back["a\u{FFFD}key"], serde_json::json!(["x\u{FFFD}y", {"deep": "\u{FFFD}"}]));

        // A literal backslash before "u0000" is not a NUL and stays as it is.
        vehicle.extra.clear();
        vehicle.extra.insert("path".into(), serde_json::json!("C:\\u0000"));
        let json = vehicle_json(&vehicle).expect("serialises");
        assert_eq!(serde_json::from_str::<Value>(&json).expect("valid json")["path"], "C:\\u0000");
    }

    #[test]
    fn unknown_enum_values_are_corrupt() {
        assert!(matches!(role("root"), Err(StoreError::Corrupt(_))));
        assert!(matches!(tier("gold"), Err(StoreError::Corrupt(_))));
        assert!(matches!(source("carrier pigeon"), Err(StoreError::Corrupt(_))));
        assert!(matches!(key_hash("abc"), Err(StoreError::Corrupt(_))));
    }
}
