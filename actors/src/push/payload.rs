//! The body of one push, as the HA integration reads it (contract: "Push to Home Assistant"):
//! one JSON object, never an array, whose `vehicle` is the full status body with `id` set to the
//! id the registration used (HA merges it one level deep, so a full body, never a partial one).

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

/// The event HA's handler expects.
pub const EVENT: &str = "user:vehicle:updated";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    event: &'static str,
    created_at: DateTime<Utc>,
    vehicle_id: &'a str,
    enode_vehicle_id: &'a str,
    internal_vehicle_id: Uuid,
    vehicle: BTreeMap<String, Box<RawValue>>,
}

/// Which vehicle a push is about, and by which id HA knows it.
pub struct PushIds<'a> {
    /// The id HA's entry holds: `vehicleId` and `vehicle.id`.
    pub id: &'a str,
    pub enode_id: &'a str,
    pub internal_id: Uuid,
}

/// Wraps a status body (the snapshot's bytes) into a push. The body's values are copied as raw
/// JSON (numbers keep their exact text); only `id` is replaced.
pub fn render(status: &[u8], ids: &PushIds<'_>, created_at: DateTime<Utc>) -> Result<Bytes, serde_json::Error> {
    let mut vehicle: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(status)?;
    vehicle.insert("id".to_owned(), RawValue::from_string(serde_json::to_string(ids.id)?)?);
    let envelope = Envelope {
        event: EVENT,
        created_at,
        vehicle_id: ids.id,
        enode_vehicle_id: ids.enode_id,
        internal_vehicle_id: ids.internal_id,
        vehicle,
    };
    serde_json::to_vec(&envelope).map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StatusView;
    use crate::testing::sample_state;
    use serde_json::Value;

    #[test]
    fn a_push_is_the_status_body_under_the_registration_id() {
        let mut state = sample_state("enode-1");
        state.vehicle.location.latitude = None;
        let status = StatusView::new(&state).to_bytes();
        let internal = state.internal_id.to_string();
        let ids = PushIds { id: &internal, enode_id: "enode-1", internal_id: state.internal_id };
        let body = render(&status, &ids, state.received_at).expect("renders");
        let push: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(push["event"], "user:vehicle:updated");
        assert_eq!(push["vehicleId"], internal.as_str());
        assert_eq!(push["enodeVehicleId"], "enode-1");
        assert_eq!(push["internalVehicleId"], internal.as_str());
        assert!(push["createdAt"].is_string());
        // Exactly the body StatusView renders for a push.
        let expected: Value =
            serde_json::from_slice(&StatusView::for_push(&state, &internal).to_bytes()).expect("json");
        assert_eq!(push["vehicle"], expected);
        assert_eq!(push["vehicle"]["location"], Value::Null, "a full block: null wipes HA's location");
        assert_eq!(push["vehicle"]["batteryLevel"], 62);
    }

    #[test]
    fn a_broken_body_is_an_error() {
        let ids = PushIds { id: "x", enode_id: "x", internal_id: Uuid::nil() };
        assert!(render(b"[1,2]", &ids, Utc::now()).is_err());
    }
}
