//! The events inside an Enode webhook delivery (a JSON array of up to 100 of them).

use chrono::{DateTime, Utc};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::model::{Vehicle, instant};

mod one_pass;

/// One event, typed by its `event` name.
#[derive(Debug, Deserialize)]
#[serde(tag = "event")]
pub enum Event {
    #[serde(rename = "user:vehicle:discovered")]
    VehicleDiscovered(VehicleEvent),
    #[serde(rename = "user:vehicle:updated")]
    VehicleUpdated(VehicleEvent),
    #[serde(rename = "user:vehicle:deleted")]
    VehicleDeleted(VehicleRef),
    #[serde(rename = "user:credentials:invalidated")]
    CredentialsInvalidated(CredentialsInvalidated),
    #[serde(rename = "user:vendor-action:updated")]
    VendorActionUpdated(VendorActionUpdated),
    #[serde(rename = "system:heartbeat")]
    Heartbeat(Heartbeat),
    #[serde(rename = "enode:webhook:test")]
    WebhookTest(Envelope),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    #[serde(default, deserialize_with = "instant::deserialize")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UserRef {
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VehicleEvent {
    #[serde(default, deserialize_with = "instant::deserialize")]
    pub created_at: Option<DateTime<Utc>>,
    pub user: UserRef,
    /// Boxed as parsed, and handed on in that box to the vehicle's actor: a `Vehicle` is over a
    /// kilobyte, and each move of it by value was a copy of all of it.
    pub vehicle: Box<Vehicle>,
    // `updatedFields` is not read: the merge compares whole states by their own timestamps, and
    // skipped, the list costs no allocations (three or more per event, on the hottest path).
}

/// A deleted vehicle: only its id matters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VehicleRef {
    pub user: UserRef,
    pub vehicle: VehicleId,
}

#[derive(Debug, Deserialize)]
pub struct VehicleId {
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsInvalidated {
    pub user: UserRef,
    #[serde(default)]
    pub vendor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorActionUpdated {
    pub user: UserRef,
    /// The ChargeAction, kept untyped until the charging-command work types it. Not a
    /// `RawValue`: inside an internally tagged enum serde buffers the fields, and a `RawValue`
    /// cannot be read back from that buffer (every such event parsed as Malformed).
    pub vendor_action: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    #[serde(default, deserialize_with = "instant::deserialize")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub pending_events: Option<u64>,
}

/// What one element of a delivery turned out to be.
#[derive(Debug)]
pub enum Parsed {
    /// Not boxed: the one large part, the vehicle, is boxed inside.
    Event(Event),
    /// An event this service does not handle; the name is kept for counting.
    Unknown(String),
    /// A known event whose payload does not have the expected shape.
    Malformed { event: String, error: String },
}

/// Why a delivery body is not a batch of events at all (answered with 400).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("body is not a JSON array: {0}")]
    NotAnArray(String),
    #[error("element {index} is not an event object with an \"event\" name")]
    NotAnEvent { index: usize },
}

#[derive(Deserialize)]
struct Name {
    event: String,
}

/// Reads the payload of the event named `name` from `payload`; None for an event not handled here
/// (its payload is skipped). The one table of event names, for both ways a delivery is read.
///
/// Each payload is read straight into its own struct (which ignores the `event` key like any
/// other key it does not know). Deserialising `Event` itself would give the same value, but serde
/// reads an internally tagged enum by first buffering the whole object (a 2 KB vehicle) into an
/// intermediate tree and then reading the variant from that tree: about twice the work, on the
/// path every webhook event takes.
fn read_event<'de, D: Deserializer<'de>>(name: &str, payload: D) -> Result<Option<Event>, D::Error> {
    Ok(Some(match name {
        "user:vehicle:discovered" => Event::VehicleDiscovered(Deserialize::deserialize(payload)?),
        "user:vehicle:updated" => Event::VehicleUpdated(Deserialize::deserialize(payload)?),
        "user:vehicle:deleted" => Event::VehicleDeleted(Deserialize::deserialize(payload)?),
        "user:credentials:invalidated" => Event::CredentialsInvalidated(Deserialize::deserialize(payload)?),
        "user:vendor-action:updated" => Event::VendorActionUpdated(Deserialize::deserialize(payload)?),
        "system:heartbeat" => Event::Heartbeat(Deserialize::deserialize(payload)?),
        "enode:webhook:test" => Event::WebhookTest(Deserialize::deserialize(payload)?),
        _ => {
            IgnoredAny::deserialize(payload)?;
            return Ok(None);
        }
    }))
}

/// Parses a delivery body. The array and each element's `event` name must be valid or the whole
/// body is refused; a known event with a bad payload is reported per element, so one odd vehicle
/// does not make Enode retry (and so delay) the 99 good events beside it.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Parsed>, BatchError> {
    one_pass::parse(body).map_or_else(|| parse_each(body), Ok)
}

/// The general path: the array into raw elements, then each element on its own (its name, then
/// its payload), so a bad element is reported alone and `event` may be anywhere in its object.
fn parse_each(body: &[u8]) -> Result<Vec<Parsed>, BatchError> {
    let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| BatchError::NotAnArray(e.to_string()))?;
    items
        .into_iter()
        .enumerate()
        .map(|(index, raw)| {
            let name: Name = serde_json::from_str(raw.get()).map_err(|_| BatchError::NotAnEvent { index })?;
            let mut payload = serde_json::Deserializer::from_str(raw.get());
            let read = read_event(&name.event, &mut payload).and_then(|event| payload.end().map(|()| event));
            Ok(match read {
                Ok(None) => Parsed::Unknown(name.event),
                Ok(Some(event)) => Parsed::Event(event),
                Err(e) => Parsed::Malformed { event: name.event, error: without_values(&e.to_string()) },
            })
        })
        .collect()
}

/// serde's message with every quoted value replaced by `…`: it goes to logs and error reports,
/// and the values are vehicle data (VINs, coordinates). Field names (in backticks) stay.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        match (c, quoted) {
            ('"', false) => {
                quoted = true;
                out.push('…');
            }
            ('"', true) => quoted = false,
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_batch_parses() {
        let parsed = parse_batch(include_bytes!("../../tests/fixtures/webhook-batch.json")).unwrap();
        assert_eq!(parsed.len(), 3);
        assert!(matches!(&parsed[0], Parsed::Event(e) if matches!(e, Event::VehicleDiscovered(_))));
        assert!(matches!(&parsed[1], Parsed::Event(e) if matches!(e, Event::VehicleUpdated(_))));
        assert!(matches!(&parsed[2], Parsed::Event(e) if matches!(e, Event::Heartbeat(_))));
    }

    #[test]
    fn malformed_events_are_reported_without_their_values() {
        let body = br#"[{"event":"user:vehicle:updated","user":{"id":"u"},"vehicle":{"id":"v","vendor":["LRW3E7FA1PC000001"]}}]"#;
        let parsed = parse_batch(body).unwrap();
        let Parsed::Malformed { error, .. } = &parsed[0] else { panic!("{parsed:?}") };
        assert!(!error.contains("LRW3E7FA1PC000001"), "{error}");
        assert_eq!(
            without_values(r#"invalid type: string "secret", expected f64"#),
            "invalid type: string …, expected f64"
        );
    }

    #[test]
    fn not_an_array_or_not_events_is_refused() {
        assert!(matches!(parse_batch(b"{\"event\":\"x\"}"), Err(BatchError::NotAnArray(_))));
        assert!(matches!(parse_batch(b"[1,2]"), Err(BatchError::NotAnEvent { index: 0 })));
        assert!(matches!(parse_batch(b"not json"), Err(BatchError::NotAnArray(_))));
    }

    #[test]
    fn vendor_action_updated_parses() {
        let body = br#"[{"event":"user:vendor-action:updated","createdAt":"2026-11-25T09:00:00Z","version":"2024-10-01","user":{"id":"u"},"vendorAction":{"id":"a1","state":"CONFIRMED"},"updatedFields":["state"]}]"#;
        let parsed = parse_batch(body).unwrap();
        assert!(
            matches!(&parsed[0], Parsed::Event(e) if matches!(e, Event::VendorActionUpdated(v) if v.vendor_action["id"] == "a1"))
        );
    }

    #[test]
    fn unknown_and_malformed_events_are_reported_not_fatal() {
        let body = br#"[{"event":"user:charger:updated"},{"event":"user:vehicle:updated","user":{"id":"u"}}]"#;
        let parsed = parse_batch(body).unwrap();
        assert!(matches!(&parsed[0], Parsed::Unknown(name) if name == "user:charger:updated"));
        assert!(matches!(&parsed[1], Parsed::Malformed { .. }));
    }
}
