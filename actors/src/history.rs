//! Each vehicle's recent history: a small ring of what happened to it (webhooks, refreshes,
//! commands, pushes, restarts), with times and outcomes, for the admin page ("why is this car
//! stale?").
//!
//! Memory matters more than depth: a fleet has tens of thousands of vehicles, most of them quiet.
//! So a vehicle's ring is allocated on its first event, holds at most `CAPACITY` compact entries
//! (a timestamp, two one-byte enums and an optional short note), and details are truncated.
//!
//! Recording never waits on anything but one vehicle's entry in a sharded map: callers on hot-ish
//! paths (webhook ingest, the supervisor) can call it inline.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use serde::Serialize;
use uuid::Uuid;

/// Entries kept per vehicle; older ones fall off.
pub const CAPACITY: usize = 32;
/// Longest note kept, in bytes (an error message, a status code); longer ones are cut.
const MAX_NOTE: usize = 120;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum EventKind {
    /// The vehicle was first seen (its actor created).
    Created,
    /// An Enode webhook event about the vehicle arrived.
    Webhook,
    /// A refresh from Enode was made for it.
    Refresh,
    /// A charge command was sent.
    Command,
    /// A push to one of its Home Assistant targets.
    Push,
    /// Its actor failed and was restarted, or was restarted by an operator.
    Restart,
    /// Its actor failed too often and was marked degraded.
    Degraded,
    /// Enode said the user's vendor credentials are invalid.
    CredentialsInvalidated,
}

/// How it went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Outcome {
    Ok,
    /// Accepted but changed nothing (older data, a duplicate, nothing to do).
    Ignored,
    /// Refused before anything was tried (budget exhausted, breaker open, wrong owner).
    Refused,
    Failed,
}

/// One entry of a vehicle's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryEvent {
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<Box<str>>,
}

/// Compact storage form: 8 + 1 + 1 bytes plus the note pointer (32 bytes with padding).
struct Entry {
    at_millis: i64,
    kind: EventKind,
    outcome: Outcome,
    note: Option<Box<str>>,
}

impl Entry {
    fn to_event(&self) -> HistoryEvent {
        HistoryEvent {
            at: DateTime::from_timestamp_millis(self.at_millis).unwrap_or_default(),
            kind: self.kind,
            outcome: self.outcome,
            note: self.note.clone(),
        }
    }
}

/// Every vehicle's ring, by internal vehicle id.
#[derive(Default)]
pub struct History {
    rings: DashMap<Uuid, VecDeque<Entry>>,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an event for a vehicle (its internal id).
    pub fn record(&self, vehicle: Uuid, at: DateTime<Utc>, kind: EventKind, outcome: Outcome) {
        self.push(vehicle, Entry { at_millis: at.timestamp_millis(), kind, outcome, note: None });
    }

    /// Records an event with a short note (an error, a status). Never put a secret, a key or a
    /// push URL here: the admin page shows it.
    pub fn record_with_note(&self, vehicle: Uuid, at: DateTime<Utc>, kind: EventKind, outcome: Outcome, note: &str) {
        let note = truncate(note, MAX_NOTE);
        self.push(vehicle, Entry { at_millis: at.timestamp_millis(), kind, outcome, note: Some(note.into()) });
    }

    fn push(&self, vehicle: Uuid, entry: Entry) {
        let mut ring = self.rings.entry(vehicle).or_default();
        if ring.len() == CAPACITY {
            ring.pop_front();
        } else if ring.capacity() == 0 {
            // Quiet vehicles never grow past a few entries; start small instead of at CAPACITY.
            ring.reserve_exact(4);
        }
        ring.push_back(entry);
    }

    /// The vehicle's events, newest first.
    pub fn events(&self, vehicle: Uuid) -> Vec<HistoryEvent> {
        let Some(ring) = self.rings.get(&vehicle) else {
            return Vec::new();
        };
        ring.iter().rev().map(Entry::to_event).collect()
    }

    /// The newest event of `kind`, if any is still in the ring.
    pub fn last(&self, vehicle: Uuid, kind: EventKind) -> Option<HistoryEvent> {
        let ring = self.rings.get(&vehicle)?;
        ring.iter().rev().find(|e| e.kind == kind).map(Entry::to_event)
    }

    /// Drops a removed vehicle's history.
    pub fn forget(&self, vehicle: Uuid) {
        self.rings.remove(&vehicle);
    }

    /// Vehicles with a ring (for tests and memory checks).
    pub fn len(&self) -> usize {
        self.rings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rings.is_empty()
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_capacity_events_newest_first() {
        let history = History::new();
        let vehicle = Uuid::new_v4();
        let start = Utc::now();
        for i in 0..(CAPACITY as i64 + 5) {
            history.record(vehicle, start + chrono::Duration::seconds(i), EventKind::Webhook, Outcome::Ok);
        }
        let events = history.events(vehicle);
        assert_eq!(events.len(), CAPACITY);
        assert!(events[0].at > events[1].at);
        assert_eq!(events[CAPACITY - 1].at.timestamp(), (start + chrono::Duration::seconds(5)).timestamp());
    }

    #[test]
    fn rings_are_lazy_and_notes_are_cut() {
        let history = History::new();
        assert!(history.events(Uuid::new_v4()).is_empty());
        assert!(history.is_empty());
        let vehicle = Uuid::new_v4();
        history.record_with_note(vehicle, Utc::now(), EventKind::Restart, Outcome::Failed, &"é".repeat(200));
        let note = history.last(vehicle, EventKind::Restart).and_then(|e| e.note).unwrap();
        assert!(note.len() <= MAX_NOTE && note.chars().all(|c| c == 'é'));
        assert!(history.last(vehicle, EventKind::Push).is_none());
        history.forget(vehicle);
        assert!(history.is_empty());
    }

    #[test]
    fn an_entry_stays_compact() {
        assert!(std::mem::size_of::<Entry>() <= 32);
    }
}
