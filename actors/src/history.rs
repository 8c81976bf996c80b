//! Each vehicle's recent history: a small ring of what happened to it (webhooks, refreshes,
//! commands, pushes, restarts), with times and outcomes, for the admin page ("why is this car
//! stale?").
//!
//! Memory matters more than depth: a fleet has tens of thousands of vehicles, most of them quiet.
//! So a vehicle's ring is allocated on its first event, holds at most `CAPACITY` compact entries
//! (two timestamps, a count, two one-byte enums and an optional short note), and details are
//! truncated.
//!
//! An event like the newest one (same kind, outcome and note) is counted into it instead of taking
//! an entry of its own. A car reports every minute or so: one entry per webhook filled the ring in
//! half an hour, and the restart or failed refresh an admin came to find had been pushed out by
//! routine traffic. Now the ring holds the last `CAPACITY` changes of what happened.
//!
//! A vehicle's ring lives on its board entry (`BoardEntry::history`): the webhook path records
//! into it where it has just looked the vehicle up, and it goes when the vehicle goes. `History`
//! finds a ring by the vehicle's internal id, for callers that hold only the id (pushes, refreshes,
//! the admin API). Recording waits on nothing but that one ring's lock: hot-ish paths (webhook
//! ingest, the supervisor) call it inline.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::snapshot::SnapshotBoard;

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

/// One entry of a vehicle's history: `count` events alike, the first at `first_at`, the newest at
/// `at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryEvent {
    pub at: DateTime<Utc>,
    pub first_at: DateTime<Utc>,
    pub count: u32,
    pub kind: EventKind,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<Box<str>>,
}

/// Compact storage form: 8 + 8 + 4 + 1 + 1 bytes plus the note pointer (40 bytes with padding).
#[derive(Debug)]
struct Entry {
    at_millis: i64,
    first_millis: i64,
    count: u32,
    kind: EventKind,
    outcome: Outcome,
    note: Option<Box<str>>,
}

impl Entry {
    fn new(at: DateTime<Utc>, kind: EventKind, outcome: Outcome, note: Option<Box<str>>) -> Self {
        let at_millis = at.timestamp_millis();
        Self { at_millis, first_millis: at_millis, count: 1, kind, outcome, note }
    }

    /// Whether an event of this kind, outcome and note is this one again (it is then counted in).
    fn is_like(&self, kind: EventKind, outcome: Outcome, note: Option<&str>) -> bool {
        self.kind == kind && self.outcome == outcome && self.note.as_deref() == note
    }

    fn to_event(&self) -> HistoryEvent {
        let time = |millis| DateTime::from_timestamp_millis(millis).unwrap_or_default();
        HistoryEvent {
            at: time(self.at_millis),
            first_at: time(self.first_millis),
            count: self.count,
            kind: self.kind,
            outcome: self.outcome,
            note: self.note.clone(),
        }
    }
}

/// One vehicle's ring (on its board entry). Empty, it holds no allocation.
#[derive(Debug, Default)]
pub struct Ring {
    entries: VecDeque<Entry>,
}

impl Ring {
    /// Records an event.
    pub fn record(&mut self, at: DateTime<Utc>, kind: EventKind, outcome: Outcome) {
        self.push(at, kind, outcome, None);
    }

    /// Records an event with a short note (an error, a status). Never put a secret, a key or a
    /// push URL here: the admin page shows it.
    pub fn record_with_note(&mut self, at: DateTime<Utc>, kind: EventKind, outcome: Outcome, note: &str) {
        self.push(at, kind, outcome, Some(truncate(note, MAX_NOTE)));
    }

    fn push(&mut self, at: DateTime<Utc>, kind: EventKind, outcome: Outcome, note: Option<&str>) {
        let ring = &mut self.entries;
        if let Some(newest) = ring.back_mut().filter(|newest| newest.is_like(kind, outcome, note)) {
            newest.at_millis = at.timestamp_millis();
            newest.count = newest.count.saturating_add(1);
            return;
        }
        if ring.len() == CAPACITY {
            ring.pop_front();
        } else if ring.capacity() == 0 {
            // Quiet vehicles never grow past a few entries; start small instead of at CAPACITY.
            ring.reserve_exact(4);
        }
        ring.push_back(Entry::new(at, kind, outcome, note.map(Box::from)));
    }

    /// The events, newest first.
    pub fn events(&self) -> Vec<HistoryEvent> {
        self.entries.iter().rev().map(Entry::to_event).collect()
    }

    /// The newest event of `kind`, if any is still in the ring.
    pub fn last(&self, kind: EventKind) -> Option<HistoryEvent> {
        self.entries.iter().rev().find(|e| e.kind == kind).map(Entry::to_event)
    }
}

/// Every vehicle's ring, found by internal vehicle id on the board. A vehicle not on the board
/// (never created, or removed) has no history: what is recorded for it is dropped.
pub struct History {
    board: Arc<SnapshotBoard>,
}

impl History {
    pub fn new(board: Arc<SnapshotBoard>) -> Self {
        Self { board }
    }

    /// Records an event for a vehicle (its internal id).
    pub fn record(&self, vehicle: Uuid, at: DateTime<Utc>, kind: EventKind, outcome: Outcome) {
        if let Some(entry) = self.board.by_internal_id(vehicle) {
            entry.history().record(at, kind, outcome);
        }
    }

    /// Records an event with a short note (see `Ring::record_with_note`).
    pub fn record_with_note(&self, vehicle: Uuid, at: DateTime<Utc>, kind: EventKind, outcome: Outcome, note: &str) {
        if let Some(entry) = self.board.by_internal_id(vehicle) {
            entry.history().record_with_note(at, kind, outcome, note);
        }
    }

    /// The vehicle's events, newest first.
    pub fn events(&self, vehicle: Uuid) -> Vec<HistoryEvent> {
        self.board.by_internal_id(vehicle).map(|entry| entry.history().events()).unwrap_or_default()
    }

    /// The vehicle's newest event of `kind`, if any is still in its ring.
    pub fn last(&self, vehicle: Uuid, kind: EventKind) -> Option<HistoryEvent> {
        self.board.by_internal_id(vehicle)?.history().last(kind)
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
    use crate::snapshot::Snapshot;
    use crate::testing::sample_state;

    #[test]
    fn keeps_the_newest_capacity_events_newest_first() {
        let mut ring = Ring::default();
        let start = Utc::now();
        // Outcomes alternate, so no event is like the one before it.
        for i in 0..(CAPACITY as i64 + 5) {
            let outcome = if i % 2 == 0 { Outcome::Ok } else { Outcome::Ignored };
            ring.record(start + chrono::Duration::seconds(i), EventKind::Webhook, outcome);
        }
        let events = ring.events();
        assert_eq!(events.len(), CAPACITY);
        assert!(events[0].at > events[1].at);
        assert_eq!(events[CAPACITY - 1].at.timestamp(), (start + chrono::Duration::seconds(5)).timestamp());
        assert!(events.iter().all(|e| e.count == 1 && e.first_at == e.at));
    }

    #[test]
    fn routine_traffic_is_counted_and_never_pushes_out_what_happened_between() {
        let mut ring = Ring::default();
        // Kept to the millisecond: start on a whole second.
        let start = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
        let at = |minute: i64| start + chrono::Duration::minutes(minute);
        for minute in 0..100 {
            ring.record(at(minute), EventKind::Webhook, Outcome::Ok);
        }
        ring.record_with_note(at(100), EventKind::Restart, Outcome::Failed, "panicked");
        for minute in 101..1000 {
            ring.record(at(minute), EventKind::Webhook, Outcome::Ok);
        }
        let events = ring.events();
        assert_eq!(events.len(), 3, "{events:?}");
        let (newest, restart, oldest) = (&events[0], &events[1], &events[2]);
        assert_eq!((newest.count, newest.first_at, newest.at), (899, at(101), at(999)));
        assert_eq!((restart.kind, restart.count, restart.at), (EventKind::Restart, 1, at(100)));
        assert_eq!((oldest.count, oldest.first_at, oldest.at), (100, at(0), at(99)));
        assert_eq!(ring.last(EventKind::Webhook).map(|e| e.at), Some(at(999)));
        // Another outcome, or another note, is another entry.
        ring.record(at(1000), EventKind::Webhook, Outcome::Refused);
        ring.record_with_note(at(1001), EventKind::Webhook, Outcome::Refused, "wrong owner");
        ring.record_with_note(at(1002), EventKind::Webhook, Outcome::Refused, "wrong owner");
        let events = ring.events();
        assert_eq!(events.len(), 5);
        assert_eq!((events[0].count, events[0].note.as_deref()), (2, Some("wrong owner")));
        assert_eq!((events[1].count, events[1].note.as_deref()), (1, None));
    }

    #[test]
    fn a_vehicles_history_is_on_its_board_entry_and_goes_with_it() {
        let board = Arc::new(SnapshotBoard::new());
        let history = History::new(Arc::clone(&board));
        let state = sample_state("enode-1");
        let vehicle = state.internal_id;
        // Not on the board: nothing to record into, nothing kept.
        history.record(vehicle, Utc::now(), EventKind::Push, Outcome::Ok);
        assert!(history.events(vehicle).is_empty());
        let entry = board.publish(Arc::new(Snapshot::new(Arc::new(state))));
        assert_eq!(entry.history().events(), Vec::new(), "an empty ring");
        history.record_with_note(vehicle, Utc::now(), EventKind::Restart, Outcome::Failed, &"é".repeat(200));
        let note = history.last(vehicle, EventKind::Restart).and_then(|e| e.note).unwrap();
        assert!(note.len() <= MAX_NOTE && note.chars().all(|c| c == 'é'));
        assert!(history.last(vehicle, EventKind::Push).is_none());
        assert_eq!(entry.history().events().len(), 1, "the entry's own ring");
        board.remove(vehicle);
        assert!(history.events(vehicle).is_empty());
    }

    #[test]
    fn an_entry_stays_compact() {
        assert!(std::mem::size_of::<Entry>() <= 40);
    }
}
