//! The Enode vehicle, as the domain sees it.
//!
//! Typed, because the actor reads many of its fields (timestamps for newer-wins, charge state for
//! sessions) and because a typed value is several times smaller in memory than a `serde_json::Value`
//! tree. Every object keeps the keys it does not know in `extra`: vendors and API versions add
//! fields, and evconduit passes them through unchanged.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::interned::Interned;

/// Keys this model does not know, kept so they round-trip.
pub type Extra = Map<String, Value>;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vehicle {
    pub id: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub vendor: Option<Interned>,
    #[serde(default, deserialize_with = "instant::deserialize")]
    pub last_seen: Option<DateTime<Utc>>,
    #[serde(default)]
    pub is_reachable: Option<bool>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub information: Information,
    #[serde(default, deserialize_with = "null_as_default")]
    pub charge_state: ChargeState,
    #[serde(default, deserialize_with = "null_as_default")]
    pub smart_charging_policy: SmartChargingPolicy,
    #[serde(default, deserialize_with = "null_as_default")]
    pub odometer: Odometer,
    #[serde(default, deserialize_with = "null_as_default")]
    pub location: Location,
    #[serde(default, deserialize_with = "null_as_default")]
    pub capabilities: Capabilities,
    #[serde(default, deserialize_with = "null_as_default")]
    pub scopes: Vec<Interned>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Information {
    #[serde(default)]
    pub vin: Option<String>,
    #[serde(default)]
    pub brand: Option<Interned>,
    #[serde(default)]
    pub model: Option<Interned>,
    #[serde(default)]
    pub year: Option<i32>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeState {
    #[serde(default, with = "number")]
    pub battery_level: Option<f64>,
    #[serde(default, with = "number")]
    pub range: Option<f64>,
    #[serde(default)]
    pub is_plugged_in: Option<bool>,
    #[serde(default)]
    pub is_charging: Option<bool>,
    #[serde(default)]
    pub is_fully_charged: Option<bool>,
    #[serde(default, with = "number")]
    pub battery_capacity: Option<f64>,
    #[serde(default, with = "number")]
    pub charge_limit: Option<f64>,
    #[serde(default, with = "number")]
    pub charge_rate: Option<f64>,
    #[serde(default, with = "number")]
    pub charge_time_remaining: Option<f64>,
    #[serde(default, deserialize_with = "instant::deserialize")]
    pub last_updated: Option<DateTime<Utc>>,
    #[serde(default, with = "number")]
    pub max_current: Option<f64>,
    #[serde(default)]
    pub power_delivery_state: PowerDeliveryState,
    #[serde(default)]
    pub plugged_in_charger_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Default for ChargeState {
    fn default() -> Self {
        Self {
            battery_level: None,
            range: None,
            is_plugged_in: None,
            is_charging: None,
            is_fully_charged: None,
            battery_capacity: None,
            charge_limit: None,
            charge_rate: None,
            charge_time_remaining: None,
            last_updated: None,
            max_current: None,
            power_delivery_state: PowerDeliveryState::default(),
            plugged_in_charger_id: None,
            extra: Extra::new(),
        }
    }
}

/// Enode's `powerDeliveryState`. Kept as the string Enode sent (new states appear over time);
/// the helpers below name the ones the service reasons about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PowerDeliveryState(pub Interned);

impl Default for PowerDeliveryState {
    fn default() -> Self {
        Self::new(Self::UNKNOWN)
    }
}

impl PowerDeliveryState {
    pub const UNKNOWN: &'static str = "UNKNOWN";
    pub const UNPLUGGED: &'static str = "UNPLUGGED";
    pub const CHARGING: &'static str = "PLUGGED_IN:CHARGING";
    pub const STOPPED: &'static str = "PLUGGED_IN:STOPPED";
    pub const COMPLETE: &'static str = "PLUGGED_IN:COMPLETE";
    pub const INITIALIZING: &'static str = "PLUGGED_IN:INITIALIZING";

    pub fn new(state: &str) -> Self {
        Self(Interned::new(state))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_charging(&self) -> bool {
        self.as_str() == Self::CHARGING
    }

    pub fn is_plugged_in(&self) -> bool {
        self.0.starts_with("PLUGGED_IN:")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmartChargingPolicy {
    #[serde(default)]
    pub is_enabled: Option<bool>,
    #[serde(default)]
    pub deadline: Option<String>,
    #[serde(default, with = "number")]
    pub minimum_charge_limit: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Odometer {
    #[serde(default, with = "number")]
    pub distance: Option<f64>,
    #[serde(default, deserialize_with = "instant::deserialize")]
    pub last_updated: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub longitude: Option<f64>,
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default, deserialize_with = "instant::deserialize")]
    pub last_updated: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Location {
    /// A location is only a location when both coordinates are known.
    pub fn is_known(&self) -> bool {
        self.latitude.is_some() && self.longitude.is_some()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    #[serde(default)]
    pub information: Capability,
    #[serde(default)]
    pub charge_state: Capability,
    #[serde(default)]
    pub location: Capability,
    #[serde(default)]
    pub odometer: Capability,
    #[serde(default)]
    pub set_max_current: Capability,
    #[serde(default)]
    pub start_charging: Capability,
    #[serde(default)]
    pub stop_charging: Capability,
    #[serde(default)]
    pub smart_charging: Capability,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capability {
    #[serde(default)]
    pub is_capable: bool,
    #[serde(default)]
    pub intervention_ids: Vec<Interned>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Vehicle {
    /// The vehicle's own clock, used to decide which of two states is newer. Arrival order means
    /// nothing: Enode delivers out of order and more than once.
    pub fn observed_at(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        (self.last_seen, self.charge_state.last_updated)
    }

    /// `observed_at` with times later than `latest` counted as `latest`. A vendor clock that runs
    /// ahead (a `lastSeen` in 2099) must not make every later genuine update look older forever.
    pub fn observed_at_bounded(&self, latest: DateTime<Utc>) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let bound = |t: Option<DateTime<Utc>>| t.map(|t| t.min(latest));
        (bound(self.last_seen), bound(self.charge_state.last_updated))
    }

    /// `information.displayName`, else "<brand> <model>", else the vendor.
    pub fn display_name(&self) -> Option<String> {
        if let Some(name) = self.information.display_name.as_deref().filter(|n| !n.is_empty()) {
            return Some(name.to_owned());
        }
        let parts: Vec<&str> = [self.information.brand.as_deref(), self.information.model.as_deref()]
            .into_iter()
            .flatten()
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() { self.vendor.as_deref().map(str::to_owned) } else { Some(parts.join(" ")) }
    }
}

// Charging commands: the domain side of Enode's charge actions.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChargeKind {
    Start,
    Stop,
}

impl ChargeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeKind::Start => "START",
            ChargeKind::Stop => "STOP",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ActionState {
    Pending,
    Confirmed,
    Failed,
    Cancelled,
}

impl ActionState {
    /// Confirmed, failed and cancelled actions never change again.
    pub fn is_final(self) -> bool {
        !matches!(self, ActionState::Pending)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureReason {
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
}

/// `POST /vehicles/{id}/charging` answers one; `GET /vehicles/actions/{id}` reads one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeAction {
    pub id: String,
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub state: ActionState,
    pub target_id: String,
    pub target_type: String,
    pub kind: ChargeKind,
    pub failure_reason: Option<FailureReason>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A nested object Enode sends as `null` (a just-discovered vehicle has "the rest null") reads as
/// its empty default, instead of failing the whole event.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Numbers as Enode writes them: `62` stays `62`, `87.5` stays `87.5`. Plain `f64` would turn every
/// integer into `62.0`, which some HA templates compare as strings.
pub mod number {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Largest integer an f64 holds exactly.
    const EXACT_INT: f64 = 9_007_199_254_740_992.0;

    pub fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            None => s.serialize_none(),
            Some(v) if v.fract() == 0.0 && v.abs() < EXACT_INT => s.serialize_i64(*v as i64),
            Some(v) => s.serialize_f64(*v),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<f64>::deserialize(d)
    }
}

/// Times as Enode writes them (RFC 3339), read by chrono's RFC 3339 parser: `DateTime`'s own
/// `Deserialize` goes through its general `FromStr`, five times slower (326 against 64 ns each,
/// measured), and every vehicle parsed, from a webhook or the store, carries four. A text the RFC
/// 3339 parser refuses is still offered to `FromStr`, so what was accepted still is.
pub mod instant {
    use std::fmt;

    use chrono::{DateTime, Utc};
    use serde::Deserializer;
    use serde::de::{Error, Visitor};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        d.deserialize_option(OptionalTime)
    }

    fn parse(text: &str) -> Option<DateTime<Utc>> {
        match DateTime::parse_from_rfc3339(text) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => text.parse().ok(),
        }
    }

    struct OptionalTime;

    impl<'de> Visitor<'de> for OptionalTime {
        type Value = Option<DateTime<Utc>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an RFC 3339 time or null")
        }

        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }

        fn visit_str<E: Error>(self, text: &str) -> Result<Self::Value, E> {
            parse(text).map(Some).ok_or_else(|| E::custom("not an RFC 3339 time"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../tests/fixtures/vehicle.json");

    #[test]
    fn fixture_round_trips_without_losing_fields() {
        let original: Value = serde_json::from_str(FIXTURE).unwrap();
        let vehicle: Vehicle = serde_json::from_str(FIXTURE).unwrap();
        let back = serde_json::to_value(&vehicle).unwrap();
        // Timestamps may be re-rendered (".000Z" -> "Z"); compare them as instants.
        assert_eq!(normalise_times(original), normalise_times(back));
    }

    #[test]
    fn unknown_fields_survive_at_every_level() {
        let mut raw: Value = serde_json::from_str(FIXTURE).unwrap();
        raw["newTopLevel"] = serde_json::json!({"a": 1});
        raw["chargeState"]["vendorSpecific"] = serde_json::json!("x");
        raw["capabilities"]["preconditioning"] = serde_json::json!({"isCapable": true, "interventionIds": []});
        let vehicle: Vehicle = serde_json::from_value(raw.clone()).unwrap();
        let back = serde_json::to_value(&vehicle).unwrap();
        assert_eq!(back["newTopLevel"], raw["newTopLevel"]);
        assert_eq!(back["chargeState"]["vendorSpecific"], "x");
        assert_eq!(back["capabilities"]["preconditioning"]["isCapable"], true);
    }

    #[test]
    fn null_nested_objects_read_as_empty() {
        let raw = r#"{"id":"v","chargeState":null,"location":null,"odometer":null,"capabilities":null,
            "smartChargingPolicy":null,"information":null,"scopes":null}"#;
        let vehicle: Vehicle = serde_json::from_str(raw).unwrap();
        assert_eq!(vehicle.charge_state.power_delivery_state.as_str(), "UNKNOWN");
        assert!(!vehicle.location.is_known());
    }

    #[test]
    fn integers_stay_integers() {
        let vehicle: Vehicle = serde_json::from_str(FIXTURE).unwrap();
        let text = serde_json::to_string(&vehicle).unwrap();
        assert!(text.contains("\"batteryLevel\":62,"), "{text}");
        assert!(text.contains("\"batteryCapacity\":87.5,"), "{text}");
    }

    #[test]
    fn display_name_falls_back_to_brand_and_model() {
        let vehicle: Vehicle = serde_json::from_str(FIXTURE).unwrap();
        assert_eq!(vehicle.display_name().as_deref(), Some("XPENG G6"));
    }

    #[test]
    fn times_read_as_rfc_3339_null_or_absent_and_anything_else_is_an_error() {
        let read = |json: &str| serde_json::from_str::<Odometer>(json).map(|o| o.last_updated);
        let t = read(r#"{"lastUpdated":"2026-11-25T09:10:00.123+01:00"}"#).unwrap().unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T08:10:00.123+00:00");
        assert_eq!(read(r#"{"lastUpdated":null}"#).unwrap(), None);
        assert_eq!(read("{}").unwrap(), None);
        // What chrono's own parser accepts beyond RFC 3339 still reads.
        assert_eq!(
            read(r#"{"lastUpdated":"2026-11-25 09:10:00Z"}"#).unwrap().unwrap().to_rfc3339(),
            "2026-11-25T09:10:00+00:00"
        );
        assert!(read(r#"{"lastUpdated":"yesterday"}"#).is_err());
        assert!(read(r#"{"lastUpdated":5}"#).is_err());
        // From a tree too (the store's tests and the simulator build vehicles that way).
        let tree = serde_json::json!({"lastUpdated": "2026-11-25T09:10:00Z"});
        assert!(serde_json::from_value::<Odometer>(tree).unwrap().last_updated.is_some());
    }

    fn normalise_times(value: Value) -> Value {
        match value {
            Value::String(s) => match DateTime::parse_from_rfc3339(&s) {
                Ok(t) => Value::String(t.with_timezone(&Utc).to_rfc3339()),
                Err(_) => Value::String(s),
            },
            Value::Array(items) => Value::Array(items.into_iter().map(normalise_times).collect()),
            Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, normalise_times(v))).collect()),
            other => other,
        }
    }
}
