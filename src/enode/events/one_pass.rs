//! A delivery read in one pass over its bytes, for the shape Enode sends: every element an object
//! whose first key is `event`.
//!
//! `parse_batch`'s general path reads the body three times: the array into raw elements, each
//! element for its `event` name, each again into its payload's struct. That keeps one bad element
//! from spoiling the rest, and accepts `event` anywhere in its object, but the first two passes
//! were half the parse's CPU under webhook load. Here the name is read first and the rest of the
//! same object goes straight into the payload's struct (after a check that the body is UTF-8, a
//! scan far cheaper than a parse). Anything unusual (`event` not first, a key or name with
//! escapes, a second `event` key, a payload that does not fit its struct, a malformed body, bytes
//! that are not UTF-8) makes this give up, and the general path reads the body again and says
//! exactly what is wrong: the answer is always the general path's.

use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{Parsed, read_event};

/// The parsed delivery, or None when the body is not of the common shape (see the module docs).
pub(super) fn parse(body: &[u8]) -> Option<Vec<Parsed>> {
    // The general path reads each element as text and so refuses bytes that are not UTF-8
    // anywhere; read from bytes, a value no struct keeps (skipped) would not be checked.
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = serde_json::Deserializer::from_str(text);
    let parsed = reader.deserialize_seq(Elements).ok()?;
    reader.end().ok()?;
    Some(parsed)
}

/// Why this path gave up; never shown to anyone (the general path explains).
const NOT_COMMON: &str = "not the common shape";

struct Elements;

impl<'de> Visitor<'de> for Elements {
    type Value = Vec<Parsed>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Parsed>, A::Error> {
        // Enode sends at most 100 events a delivery.
        let mut parsed = Vec::with_capacity(seq.size_hint().unwrap_or(100).min(100));
        while let Some(element) = seq.next_element_seed(Element)? {
            parsed.push(element);
        }
        Ok(parsed)
    }
}

struct Element;

impl<'de> DeserializeSeed<'de> for Element {
    type Value = Parsed;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Parsed, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Element {
    type Value = Parsed;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an event object led by its name")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        if map.next_key::<&str>()? != Some("event") {
            return Err(de::Error::custom(NOT_COMMON));
        }
        let name: &str = map.next_value()?;
        let rest = MapAccessDeserializer::new(WithoutName(map));
        Ok(match read_event(name, rest)? {
            Some(event) => Parsed::Event(event),
            None => Parsed::Unknown(name.to_owned()),
        })
    }
}

/// The rest of an event's object, after its name. A second `event` key gives up: the general path
/// refuses such an element, and this path must not accept what that one refuses.
struct WithoutName<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutName<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let Some(key) = self.0.next_key::<&'de str>()? else { return Ok(None) };
        if key == "event" {
            return Err(de::Error::custom(NOT_COMMON));
        }
        seed.deserialize(BorrowedStrDeserializer::new(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_each;
    use super::*;

    /// What the general path makes of `body`, as text (`Parsed` holds serde errors, not comparable).
    fn general(body: &str) -> String {
        format!("{:?}", parse_each(body.as_bytes()))
    }

    fn one_pass(body: &str) -> Option<String> {
        parse(body.as_bytes()).map(|parsed| format!("{:?}", Ok::<_, ()>(parsed)))
    }

    const VEHICLE: &str = r#""user":{"id":"u1"},"vehicle":{"id":"v1","vendor":"TESLA","lastSeen":"2026-11-25T09:00:00.000Z","chargeState":{"batteryLevel":55}}"#;

    #[test]
    fn enodes_shape_is_read_in_one_pass_to_what_the_general_path_reads() {
        let fixture = include_str!("../../../tests/fixtures/webhook-batch.json");
        let crafted = format!(
            r#"[{{"event":"user:vehicle:updated","createdAt":"2026-11-25T09:00:00.000Z","version":"2024-10-01",{VEHICLE},"updatedFields":["lastSeen"]}},
              {{"event":"user:vehicle:deleted","user":{{"id":"u1"}},"vehicle":{{"id":"v1"}}}},
              {{"event":"user:credentials:invalidated","user":{{"id":"u1"}},"vendor":"TESLA"}},
              {{"event":"user:vendor-action:updated","user":{{"id":"u1"}},"vendorAction":{{"id":"a1","state":"CONFIRMED"}}}},
              {{"event":"system:heartbeat","createdAt":"2026-11-25T09:00:00Z","pendingEvents":3}},
              {{"event":"enode:webhook:test","version":"2024-10-01"}},
              {{"event":"user:charger:updated","charger":{{"id":"c1","nested":[1,{{"event":"x"}}]}}}}]"#
        );
        for body in [fixture, crafted.as_str(), "[]", " [ ] "] {
            let read = one_pass(body).unwrap_or_else(|| panic!("not read in one pass: {body}"));
            assert_eq!(read, general(body), "{body}");
        }
    }

    #[test]
    fn anything_else_is_left_to_the_general_path_which_still_reads_it() {
        let updated = format!(r#"{{"event":"user:vehicle:updated",{VEHICLE}}}"#);
        let bodies = [
            // `event` after other keys: valid, read by the general path.
            format!(r#"[{{{VEHICLE},"event":"user:vehicle:updated"}}]"#),
            // A name with an escape in it.
            format!(r#"[{{"event":"user:vehicle:\u0075pdated",{VEHICLE}}}]"#),
            // A payload that does not fit: Malformed, beside a good event.
            format!(r#"[{{"event":"user:vehicle:updated","user":{{"id":"u1"}}}},{updated}]"#),
            // Refused as a whole by the general path: a second name, not an event, not an array,
            // trailing bytes, broken JSON.
            format!(r#"[{{"event":"user:vehicle:updated","event":"system:heartbeat",{VEHICLE}}}]"#),
            format!("[{updated},1]"),
            updated.clone(),
            format!("[{updated}] x"),
            format!("[{updated}"),
        ];
        for body in &bodies {
            assert_eq!(one_pass(body), None, "{body}");
        }
        // Bytes that are not UTF-8, in a value no struct reads: the general path refuses the body.
        let mut not_utf8 = br#"[{"event":"user:charger:updated","name":"#.to_vec();
        not_utf8.extend_from_slice(b"\"\xff\"}]");
        assert!(parse(&not_utf8).is_none());
        assert!(super::super::parse_batch(&not_utf8).is_err());
        let answers: Vec<String> =
            bodies.iter().map(|body| format!("{:?}", super::super::parse_batch(body.as_bytes()))).collect();
        assert!(answers[0].starts_with("Ok([Event(VehicleUpdated"), "{}", answers[0]);
        assert!(answers[1].starts_with("Ok([Event(VehicleUpdated"), "{}", answers[1]);
        assert!(
            answers[2].starts_with("Ok([Malformed") && answers[2].contains("Event(VehicleUpdated"),
            "{}",
            answers[2]
        );
        assert!(answers[3..].iter().all(|answer| answer.starts_with("Err(")), "{answers:?}");
    }
}
