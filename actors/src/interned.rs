//! Text from a small vocabulary (a vendor, a brand, a model, a charge state, a scope), held once
//! and shared by every vehicle that names it.
//!
//! Every webhook event carries a whole vehicle, and every parsed vehicle used to own about 17
//! allocations, half of them for words like "XPENG" or "vehicle:read:data" that 100 000 vehicles
//! repeat. Under webhook load each was allocated when the event was parsed and freed, a state or
//! two later, when its vehicle's next state replaced it: by then out of the caches, so every free
//! was a cache miss or two (the allocator's work was about a fifth of the server's CPU). A word
//! looked up here is a reference count instead, on a line that stays in the cache because every
//! vehicle uses it.
//!
//! Each thread keeps its own set, so a lookup takes no lock; the same word may then be held once
//! per thread, a few copies at most. A set stops growing at `CAPACITY` words, and words longer
//! than `MAX_LEN` are never kept: text that turns out not to come from a small vocabulary is
//! allocated as before and costs nothing more than it did.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::de::{Deserializer, Error, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Words kept per thread.
const CAPACITY: usize = 4096;
/// Longest word kept, in bytes.
const MAX_LEN: usize = 64;

thread_local! {
    static WORDS: RefCell<HashSet<Arc<str>>> = RefCell::new(HashSet::new());
}

/// A shared, immutable string: reads, compares, prints and serializes as the text it holds.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interned(Arc<str>);

impl Interned {
    pub fn new(text: &str) -> Self {
        if text.len() > MAX_LEN {
            return Self(Arc::from(text));
        }
        WORDS.with_borrow_mut(|words| {
            if let Some(word) = words.get(text) {
                return Self(Arc::clone(word));
            }
            let word: Arc<str> = Arc::from(text);
            if words.len() < CAPACITY {
                words.insert(Arc::clone(&word));
            }
            Self(word)
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Interned {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Interned {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Interned {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for Interned {
    fn from(text: String) -> Self {
        Self::new(&text)
    }
}

impl PartialEq<str> for Interned {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Interned {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl fmt::Debug for Interned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Interned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl Serialize for Interned {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Interned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Word)
    }
}

struct Word;

impl Visitor<'_> for Word {
    type Value = Interned;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: Error>(self, text: &str) -> Result<Interned, E> {
        Ok(Interned::new(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_word_is_held_once_and_reads_as_its_text() {
        let a = Interned::new("vehicle:read:data");
        let b: Interned = serde_json::from_str("\"vehicle:read:data\"").unwrap();
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, "vehicle:read:data");
        assert_eq!(&*b, "vehicle:read:data");
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"vehicle:read:data\"");
        assert_eq!(format!("{a} {a:?}"), "vehicle:read:data \"vehicle:read:data\"");
        // Escapes are read as the text they stand for.
        let escaped: Interned = serde_json::from_str(r#""X\u0050ENG""#).unwrap();
        assert_eq!(escaped, "XPENG");
        assert!(serde_json::from_str::<Interned>("5").is_err());
    }

    #[test]
    fn long_text_and_a_full_set_are_allocated_as_before() {
        let long = "x".repeat(MAX_LEN + 1);
        assert!(!Arc::ptr_eq(&Interned::new(&long).0, &Interned::new(&long).0));
        // A thread of its own, so its set starts empty and fills here.
        std::thread::spawn(|| {
            for i in 0..CAPACITY {
                Interned::new(&format!("word {i}"));
            }
            let first = Interned::new("word 0");
            assert!(Arc::ptr_eq(&first.0, &Interned::new("word 0").0), "kept words are still shared");
            let late = "one word too many";
            assert!(!Arc::ptr_eq(&Interned::new(late).0, &Interned::new(late).0));
            assert_eq!(WORDS.with_borrow(HashSet::len), CAPACITY);
        })
        .join()
        .unwrap();
    }
}
