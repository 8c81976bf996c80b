//! The status body Home Assistant reads (`GET /api/status/{id}`; also the `vehicle` of a push).
//!
//! It is the Enode vehicle object with the contract's additions: `vehicleName`, `chargingState`,
//! `location` as `null` when a coordinate is missing, the ids in both forms, and the legacy flat
//! keys the old backend sent and some users' templates still read. Written with a hand-made
//! `Serialize` so one pass over the typed vehicle produces the bytes (this runs for every state
//! that is read or pushed, once each).

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::model::{ActionState, Location, Vehicle};
use crate::state::VehicleState;

/// Extra keys a push adds to the body: the id the HA registration used, in the `id` field.
pub struct PushIds<'a> {
    pub id: &'a str,
}

/// A view of a vehicle's state as the status body.
pub struct StatusView<'a> {
    state: &'a VehicleState,
    push: Option<PushIds<'a>>,
}

impl<'a> StatusView<'a> {
    pub fn new(state: &'a VehicleState) -> Self {
        Self { state, push: None }
    }

    /// The body of a push: the same shape, with `id` set to the id the registration used.
    pub fn for_push(state: &'a VehicleState, id: &'a str) -> Self {
        Self { state, push: Some(PushIds { id }) }
    }

    /// Whether `a` and `b` give the same body: every part of the state the body is rendered
    /// from (see `serialize` below) is equal. Checked instead of rendering both and comparing the
    /// bytes, so a state nobody reads is never rendered; a field added to the body must be added
    /// here (the `same_means_same_bytes` test and the debug assertion below catch a
    /// state judged the same whose body differs).
    pub fn same(a: &VehicleState, b: &VehicleState) -> bool {
        // The vehicle's clocks first: they differ in nearly every new state, and the merge has
        // just read both, where the derived comparison starts with two strings of the older
        // state's, likely out of the caches. Equal clocks say nothing; the whole comparison follows.
        let same = a.internal_id == b.internal_id
            && a.relink_required == b.relink_required
            && a.vehicle.observed_at() == b.vehicle.observed_at()
            && a.charge_action == b.charge_action
            && a.vehicle == b.vehicle;
        debug_assert!(
            !same || StatusView::new(a).to_bytes() == StatusView::new(b).to_bytes(),
            "same state, other body"
        );
        same
    }

    /// Renders the body as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising typed values into a Vec cannot fail: every map key is a string.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }
}

impl Serialize for StatusView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let state = self.state;
        let v: &Vehicle = &state.vehicle;
        let cs = &v.charge_state;
        // Enode's data is no longer live once the user's credentials are invalid: say so where
        // HA looks (isReachable) and why (relinkRequired).
        let is_reachable = if state.relink_required { Some(false) } else { v.is_reachable };
        let location: Option<&Location> = v.location.is_known().then_some(&v.location);

        let mut m = s.serialize_map(None)?;
        match &self.push {
            Some(push) => m.serialize_entry("id", push.id)?,
            None => m.serialize_entry("id", &v.id)?,
        }
        m.serialize_entry("userId", &v.user_id)?;
        m.serialize_entry("vendor", &v.vendor)?;
        m.serialize_entry("lastSeen", &v.last_seen)?;
        m.serialize_entry("isReachable", &is_reachable)?;
        m.serialize_entry("information", &v.information)?;
        m.serialize_entry("chargeState", cs)?;
        m.serialize_entry("smartChargingPolicy", &v.smart_charging_policy)?;
        m.serialize_entry("odometer", &v.odometer)?;
        m.serialize_entry("location", &location)?;
        m.serialize_entry("capabilities", &v.capabilities)?;
        m.serialize_entry("scopes", &v.scopes)?;
        for (key, value) in &v.extra {
            m.serialize_entry(key, value)?;
        }

        // The contract's additions.
        m.serialize_entry("vehicleName", &v.display_name())?;
        m.serialize_entry("chargingState", cs.power_delivery_state.as_str())?;
        m.serialize_entry("enodeId", &v.id)?;
        m.serialize_entry("internalId", &state.internal_id)?;
        m.serialize_entry("relinkRequired", &state.relink_required)?;
        // The latest charging command: `pendingAction` while Enode works on it, `lastAction` always.
        let action = state.charge_action.as_ref();
        m.serialize_entry("pendingAction", &action.filter(|a| a.state == ActionState::Pending))?;
        m.serialize_entry("lastAction", &action)?;

        // Legacy flat keys.
        m.serialize_entry("batteryLevel", &Num(cs.battery_level))?;
        m.serialize_entry("range", &Num(cs.range))?;
        m.serialize_entry("isCharging", &cs.is_charging)?;
        m.serialize_entry("isPluggedIn", &cs.is_plugged_in)?;
        m.serialize_entry("latitude", &location.and_then(|l| l.latitude))?;
        m.serialize_entry("longitude", &location.and_then(|l| l.longitude))?;
        m.serialize_entry("locationAvailable", &location.is_some())?;
        m.end()
    }
}

/// An optional number written the way the model writes it (integers without ".0").
struct Num(Option<f64>);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::model::number::serialize(&self.0, s)
    }
}

/// A short, stable fingerprint of a body, for ETags: same bytes, same tag, across restarts.
///
/// foldhash with a fixed seed (std's hasher is randomly keyed per process). It takes 16 bytes a
/// step; FNV-1a, used before, takes one byte per dependent multiply, and over a 1.7 kB body that
/// was 6.5% of start-up's CPU (100 000 bodies) and a few percent of every webhook. Deterministic
/// for a given foldhash version; a foldhash upgrade that changed it would change every ETag once
/// (each client gets one full answer instead of a 304), and `fingerprint_is_pinned` says so.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    const SEED: u64 = 0x6576_636f_6e64_7569; // "evcondui"
    let mut hasher = foldhash::quality::FixedState::with_seed(SEED).build_hasher();
    hasher.write(bytes);
    hasher.finish()
}

/// Ids a list item carries: `id` (Enode) and `internalId`.
pub fn list_item(state: &VehicleState) -> serde_json::Value {
    let v = &state.vehicle;
    serde_json::json!({
        "id": v.id,
        "internalId": state.internal_id,
        "vendor": v.vendor,
        "information": v.information,
        "vehicleName": v.display_name(),
        "isReachable": if state.relink_required { Some(false) } else { v.is_reachable },
        "lastSeen": v.last_seen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::DataSource;
    use chrono::Utc;
    use serde_json::Value;
    use uuid::Uuid;

    fn state(relink: bool) -> VehicleState {
        VehicleState {
            internal_id: Uuid::nil(),
            user_id: Uuid::nil(),
            vehicle: serde_json::from_str(include_str!("../tests/fixtures/vehicle.json")).unwrap(),
            source: DataSource::Webhook,
            received_at: Utc::now(),
            relink_required: relink,
            charge_action: None,
        }
    }

    #[test]
    fn body_has_the_contract_fields() {
        let body: Value = serde_json::from_slice(&StatusView::new(&state(false)).to_bytes()).unwrap();
        assert_eq!(body["id"], "c6198bd9-9a25-425d-afc3-a61ee974d1a8");
        assert_eq!(body["vehicleName"], "XPENG G6");
        assert_eq!(body["chargingState"], "PLUGGED_IN:CHARGING");
        assert_eq!(body["location"]["latitude"], 59.3293);
        assert_eq!(body["capabilities"]["setMaxCurrent"]["isCapable"], false);
        assert_eq!(body["chargeState"]["batteryLevel"], 62);
        assert_eq!(body["batteryLevel"], 62);
        assert_eq!(body["range"], 301);
        assert_eq!(body["isCharging"], true);
        assert_eq!(body["isPluggedIn"], true);
        assert_eq!(body["latitude"], 59.3293);
        assert_eq!(body["longitude"], 18.0686);
        assert_eq!(body["locationAvailable"], true);
        assert_eq!(body["internalId"], Uuid::nil().to_string());
        assert_eq!(body["odometer"]["distance"], 24312.5);
        assert_eq!(body["information"]["vin"], "LRW3E7FA1PC000001");
        assert_eq!(body["smartChargingPolicy"]["minimumChargeLimit"], 0);
    }

    #[test]
    fn location_is_null_when_a_coordinate_is_missing() {
        let mut s = state(false);
        s.vehicle.location.latitude = None;
        let body: Value = serde_json::from_slice(&StatusView::new(&s).to_bytes()).unwrap();
        assert_eq!(body["location"], Value::Null);
        assert_eq!(body["latitude"], Value::Null);
        assert_eq!(body["locationAvailable"], false);
    }

    #[test]
    fn relink_required_shows_as_unreachable() {
        let body: Value = serde_json::from_slice(&StatusView::new(&state(true)).to_bytes()).unwrap();
        assert_eq!(body["isReachable"], false);
        assert_eq!(body["relinkRequired"], true);
    }

    #[test]
    fn push_body_uses_the_registration_id() {
        let s = state(false);
        let body: Value = serde_json::from_slice(&StatusView::for_push(&s, "my-id").to_bytes()).unwrap();
        assert_eq!(body["id"], "my-id");
        assert_eq!(body["enodeId"], "c6198bd9-9a25-425d-afc3-a61ee974d1a8");
    }

    #[test]
    fn same_means_same_bytes() {
        let base = state(false);
        let render = |s: &VehicleState| StatusView::new(s).to_bytes();
        // What the body does not show: the same.
        let mut later = base.clone();
        later.received_at += chrono::Duration::seconds(5);
        later.source = DataSource::Refresh;
        later.user_id = Uuid::new_v4();
        assert!(StatusView::same(&base, &later));
        assert_eq!(render(&base), render(&later));
        // Each thing it shows: different, and so are the bytes. The first differs by the relink
        // flag alone, each other by one more field.
        let mut changes: Vec<VehicleState> = vec![state(true); 4];
        changes[1].relink_required = false;
        changes[1].internal_id = Uuid::new_v4();
        changes[2].relink_required = false;
        changes[2].vehicle.charge_state.battery_level = Some(63.0);
        changes[3].relink_required = false;
        changes[3].charge_action = Some(
            serde_json::from_value(serde_json::json!({
                "id": "a1", "userId": "u", "targetId": "c6198bd9-9a25-425d-afc3-a61ee974d1a8",
                "targetType": "vehicle", "kind": "START", "state": "PENDING",
                "createdAt": "2026-11-25T10:00:00Z", "updatedAt": "2026-11-25T10:00:00Z"
            }))
            .unwrap(),
        );
        for changed in &changes {
            assert!(!StatusView::same(&base, changed));
            assert_ne!(render(&base), render(changed));
        }
    }

    #[test]
    fn fingerprint_is_stable() {
        assert_eq!(fingerprint(b"abc"), fingerprint(b"abc"));
        assert_ne!(fingerprint(b"abc"), fingerprint(b"abd"));
        let long = vec![b'x'; 1700];
        let mut other = long.clone();
        other[1234] = b'y';
        assert_ne!(fingerprint(&long), fingerprint(&other));
    }

    /// ETags outlive the process (HA sends them back after a restart): the same bytes must give
    /// the same tag in every process of every build. A failure here means every ETag changes.
    #[test]
    fn fingerprint_is_pinned() {
        assert_eq!(fingerprint(b"{\"id\":\"car\"}"), 0xd844_0a5d_61b2_5c6c);
    }
}
