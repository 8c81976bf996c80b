//! `Extra`: the keys a model object does not know, kept so that they round-trip.
//!
//! A vehicle has fifteen objects that each keep their unknown keys, and in almost every vehicle
//! almost all of them are empty. As maps they took 24 bytes each, which made a parsed vehicle
//! 1 128 bytes: just over the largest block glibc keeps in each thread's cache (1 032), so every
//! vehicle parsed from a webhook and every one freed went through the allocator's shared bins
//! (the allocator was about a fifth of the server's CPU under webhook load). Held as an optional
//! pointer, each takes 8 bytes, and a vehicle fits the cache with room to spare.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The entries, in key order.
pub type Iter<'a> = std::iter::Flatten<std::option::IntoIter<&'a Map<String, Value>>>;

/// Unknown keys and their values, in key order. Empty costs no allocation.
#[derive(Clone, Default, PartialEq)]
pub struct Extra(
    /// Never `Some` of an empty map, so that the derived equality holds.
    Option<Box<Map<String, Value>>>,
);

impl Extra {
    pub fn new() -> Self {
        Self(None)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |map| map.len())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.as_ref()?.get(key)
    }

    /// Adds or replaces `key`, returning the value it had.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        self.0.get_or_insert_default().insert(key, value)
    }

    pub fn clear(&mut self) {
        self.0 = None;
    }

    pub fn iter(&self) -> Iter<'_> {
        self.0.as_deref().into_iter().flatten()
    }
}

impl From<Map<String, Value>> for Extra {
    fn from(map: Map<String, Value>) -> Self {
        Self((!map.is_empty()).then(|| Box::new(map)))
    }
}

impl<'a> IntoIterator for &'a Extra {
    type Item = (&'a String, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Extra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// As the map it holds: with `#[serde(flatten)]`, its entries beside the object's own keys.
impl Serialize for Extra {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Extra {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Object {
        known: u8,
        #[serde(flatten)]
        extra: Extra,
    }

    #[test]
    fn unknown_keys_round_trip_beside_the_known_ones() {
        let text = r#"{"known":1,"later":{"nested":[1,2.5,null]},"another":"x"}"#;
        let object: Object = serde_json::from_str(text).unwrap();
        assert_eq!(object.extra.len(), 2);
        assert_eq!(object.extra.get("later"), Some(&json!({"nested": [1, 2.5, null]})));
        let again: serde_json::Value = serde_json::to_value(&object).unwrap();
        assert_eq!(again, serde_json::from_str::<serde_json::Value>(text).unwrap());
    }

    #[test]
    fn none_is_the_same_as_empty_and_takes_one_pointer() {
        let object: Object = serde_json::from_str(r#"{"known":1}"#).unwrap();
        assert!(object.extra.is_empty());
        assert_eq!(object.extra, Extra::new());
        assert_eq!(Extra::from(Map::new()), Extra::new());
        assert_eq!(serde_json::to_string(&object).unwrap(), r#"{"known":1}"#);
        assert_eq!(std::mem::size_of::<Extra>(), std::mem::size_of::<usize>());
        let mut extra = Extra::new();
        extra.insert("k".into(), json!(1));
        extra.clear();
        assert_eq!(extra, Extra::new());
    }
}
