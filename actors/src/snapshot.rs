//! Immutable snapshots and the board readers take them from.
//!
//! A vehicle actor swaps a new `Snapshot` onto the `SnapshotBoard` for every state change. HA
//! reads (thousands per second) look the vehicle up by either id and clone the bytes of its status
//! body: no actor mailbox, no lock held across an await, no database. The body is rendered by the
//! first reader that needs it, once per snapshot (see `Snapshot::rendered`).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use arc_swap::ArcSwap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use uuid::Uuid;

use ractor::ActorRef;

use crate::history::Ring;
use crate::state::{DataSource, VehicleState};
use crate::status::{StatusView, fingerprint};
use crate::vehicle::VehicleMsg;

/// One published version of a vehicle: its state and, once someone has asked, the bytes readers
/// send.
#[derive(Debug)]
pub struct Snapshot {
    pub state: Arc<VehicleState>,
    /// What a poll reads of `state`, copied beside the body (see `Facts`).
    pub facts: Facts,
    /// The status body and its ETag, rendered on first use. Under webhook load a vehicle changes
    /// more often than HA polls it (a poll every few minutes, an update every minute or less),
    /// and rendering every state was the largest single part of applying one (9% of the server's
    /// CPU per event); at start, rendering 100 000 restored vehicles took a sixth to a third of
    /// start-up. Now a state nobody reads or is pushed is never rendered, and one that is, is
    /// rendered once.
    rendered: OnceLock<Rendered>,
    /// `Last-Modified` as an HTTP date: when the vehicle last reported, but never after the moment
    /// the service received it and never before 1970 (vendor clocks are not to be trusted).
    pub last_modified: HeaderText,
    /// Counts changes of what readers see in this process; a new body, a new version.
    pub version: u64,
}

/// A snapshot's status body and its ETag.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub body: Bytes,
    /// A strong ETag, quotes included: the fingerprint of `body`. Kept inline, like
    /// `last_modified`: a poll copies them from the snapshot it has loaded anyway. As shared
    /// buffers of their own they cost each poll four more likely cache misses among 100 000
    /// vehicles (each buffer's reference count, then its bytes).
    pub etag: HeaderText,
}

impl Rendered {
    fn of(state: &VehicleState) -> Self {
        let body = Bytes::from(StatusView::new(state).to_bytes());
        Self { etag: etag_of(&body), body }
    }
}

/// The few fields of a vehicle's state that a poll reads besides the body: when its data arrived
/// and from where, whether it needs a relink (its ids, fixed for its life, are on its board
/// entry). `state` is an allocation of its own, and among 100 000 vehicles reaching into it cost
/// each poll two more cache misses (about 0.3 us in `cargo bench --bench read_path`,
/// status/100000); the snapshot is loaded anyway.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Facts {
    pub received_at: DateTime<Utc>,
    pub source: DataSource,
    pub relink_required: bool,
}

impl Facts {
    fn of(state: &VehicleState) -> Self {
        Self { received_at: state.received_at, source: state.source, relink_required: state.relink_required }
    }
}

impl Snapshot {
    /// A vehicle's first snapshot (created, or restored at start).
    pub fn new(state: Arc<VehicleState>) -> Self {
        Self::assemble(state, OnceLock::new(), 1)
    }

    /// The snapshot that follows `self` for `state`. When readers would see no difference (a
    /// repeated webhook), the version and any body already rendered are kept and only the state
    /// (its timestamps) moves.
    pub fn next(&self, state: Arc<VehicleState>) -> Self {
        if StatusView::same(&self.state, &state) {
            return Self::assemble(state, self.rendered.clone(), self.version);
        }
        Self::assemble(state, OnceLock::new(), self.version + 1)
    }

    /// A snapshot of `state`: what follows from the state alone is derived here.
    fn assemble(state: Arc<VehicleState>, rendered: OnceLock<Rendered>, version: u64) -> Self {
        Self { last_modified: last_modified(&state), facts: Facts::of(&state), state, rendered, version }
    }

    /// The status body and its ETag, rendered now if no one has asked before. Readers racing for
    /// a fresh snapshot render it once between them (the others wait for the first).
    pub fn rendered(&self) -> &Rendered {
        self.rendered.get_or_init(|| Rendered::of(&self.state))
    }

    /// Whether what readers see differs from `other`, the snapshot this one followed (`next`):
    /// pushes and sessions care; timestamps alone do not. `next` compared the states already and
    /// counted a change in `version`, so this reads it off instead of comparing them again on every
    /// change.
    pub fn body_changed_from(&self, other: &Snapshot) -> bool {
        let changed = self.version != other.version;
        debug_assert_eq!(changed, !StatusView::same(&self.state, &other.state), "not a successor of `other`");
        changed
    }
}

fn etag_of(body: &[u8]) -> HeaderText {
    HeaderText::new(&format!("\"{:016x}\"", fingerprint(body))).unwrap_or_default()
}

fn last_modified(state: &VehicleState) -> HeaderText {
    let received = state.received_at;
    let modified = state.vehicle.last_seen.unwrap_or(received).min(received).max(DateTime::UNIX_EPOCH);
    // IMF-fixdate (RFC 9110), the one form HTTP dates are sent in. httpdate writes it in a tenth of
    // the time chrono's `format` takes to interpret its pattern (this runs for every state
    // change), for the years 1970 to 9999 only: a later one is a broken clock's, and is sent as
    // the last second of 9999.
    let modified = modified.min(LAST_HTTP_DATE);
    HeaderText::new(&httpdate::fmt_http_date(modified.into())).unwrap_or_default()
}

/// The latest moment httpdate writes: 9999-12-31T23:59:59Z.
const LAST_HTTP_DATE: DateTime<Utc> =
    DateTime::from_timestamp(253_402_300_799, 0).expect("a representable time (checked when compiling)");

/// A short header value stored inline (an ETag is 18 bytes, an HTTP date 29).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderText {
    len: u8,
    bytes: [u8; HeaderText::CAPACITY],
}

impl HeaderText {
    const CAPACITY: usize = 31;

    /// `text`, or None when it is longer than fits.
    pub fn new(text: &str) -> Option<Self> {
        let mut bytes = [0; Self::CAPACITY];
        bytes.get_mut(..text.len())?.copy_from_slice(text.as_bytes());
        Some(Self { len: text.len() as u8, bytes })
    }

    pub fn as_str(&self) -> &str {
        // Only ever filled from a `&str` (see `new`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Debug for HeaderText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl PartialEq<&str> for HeaderText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// How the vehicle's actor is doing, as readers and admins see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum ActorStatus {
    Running = 0,
    Restarting = 1,
    /// Panicked more often than the restart budget allows: the last snapshot is served, flagged,
    /// and no new state is applied until an operator restarts it.
    Degraded = 2,
    Stopped = 3,
    /// Healthy and asleep: no task runs for it, its snapshot is served as usual, and the next
    /// message wakes it (see `FleetConfig::idle_after`).
    Idle = 4,
}

impl ActorStatus {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => ActorStatus::Running,
            1 => ActorStatus::Restarting,
            2 => ActorStatus::Degraded,
            4 => ActorStatus::Idle,
            _ => ActorStatus::Stopped,
        }
    }

    /// Running or asleep: the vehicle takes new data and its snapshot is current.
    pub fn is_healthy(self) -> bool {
        matches!(self, ActorStatus::Running | ActorStatus::Idle)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActorStatus::Running => "running",
            ActorStatus::Restarting => "restarting",
            ActorStatus::Degraded => "degraded",
            ActorStatus::Stopped => "stopped",
            ActorStatus::Idle => "idle",
        }
    }
}

/// A vehicle's place on the board. Lives as long as the vehicle; the snapshot inside is swapped.
#[derive(Debug)]
pub struct BoardEntry {
    /// The vehicle's internal id and owner: fixed for the entry's life (a merge never changes
    /// them, and the board indexes the entry by both), so they are kept here, where a lookup has
    /// just been, instead of behind the snapshot and its state (two more likely cache misses, and
    /// a reference count taken and dropped, on every event routed and every ownership check).
    internal_id: Uuid,
    owner: Uuid,
    snapshot: ArcSwap<Snapshot>,
    /// Unix seconds of the last HA read (0: never). Written by readers, read by the refresh
    /// scheduler to know who is watching. Relaxed: an approximate time is all that is needed.
    last_read: AtomicI64,
    status: AtomicU8,
    /// Messages the fleet routed to the actor that it has not handled yet (admins see backlog).
    queued: AtomicU32,
    /// Unix milliseconds of the last message the actor handled (or of its start): how long it has
    /// been idle, for hibernation.
    last_active: AtomicI64,
    /// The actor is waiting on something only it can finish (a charging call, a pending action it
    /// follows up): it must not be put to sleep.
    holds_work: AtomicBool,
    /// The vehicle's running actor; None while it is asleep, restarting, degraded or removed.
    /// Only the fleet's supervisor sets or takes it, so it is the one record of who runs the
    /// vehicle. Kept here, where a message's sender has the entry already, routing needs no
    /// second lookup (a map of actors was 1.8% of the server's CPU under webhook load). A handle
    /// read a moment before the supervisor takes it is harmless: a stopped or draining actor
    /// refuses the message, and the sender hands it to the supervisor.
    actor: Mutex<Option<ActorRef<VehicleMsg>>>,
    /// Unix ms of the current snapshot's `received_at`, kept beside the snapshot so the refresh
    /// scan, which visits every vehicle every second, can pass over fresh ones without loading it.
    received_at_ms: AtomicI64,
    /// What happened to the vehicle lately (see `history`). Here, not in a map of its own: every
    /// webhook records into it right after finding this entry, and it goes with the vehicle.
    history: Mutex<Ring>,
}

impl BoardEntry {
    fn new(snapshot: Arc<Snapshot>) -> Self {
        Self {
            internal_id: snapshot.state.internal_id,
            owner: snapshot.state.user_id,
            received_at_ms: AtomicI64::new(snapshot.state.received_at.timestamp_millis()),
            snapshot: ArcSwap::new(snapshot),
            last_read: AtomicI64::new(0),
            // No actor yet: the fleet starts one (new vehicles) or the first message does
            // (restored ones).
            status: AtomicU8::new(ActorStatus::Idle as u8),
            queued: AtomicU32::new(0),
            last_active: AtomicI64::new(0),
            holds_work: AtomicBool::new(false),
            actor: Mutex::new(None),
            history: Mutex::default(),
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The vehicle's internal id.
    pub fn internal_id(&self) -> Uuid {
        self.internal_id
    }

    /// The user the vehicle belongs to.
    pub fn owner(&self) -> Uuid {
        self.owner
    }

    /// Records that a client read this vehicle at `now`.
    pub fn mark_read(&self, now: DateTime<Utc>) {
        self.last_read.store(now.timestamp(), Ordering::Relaxed);
    }

    pub fn last_read(&self) -> Option<DateTime<Utc>> {
        match self.last_read.load(Ordering::Relaxed) {
            0 => None,
            secs => DateTime::from_timestamp(secs, 0),
        }
    }

    /// Messages waiting for the vehicle's actor.
    pub fn queued(&self) -> u32 {
        self.queued.load(Ordering::Relaxed)
    }

    pub(crate) fn enqueued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// One message handled. Saturating: the actor also gets messages the fleet did not count
    /// (its own timers, answers from Enode), and a restart starts the count afresh.
    pub(crate) fn dequeued(&self) {
        let _ = self.queued.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Records that the actor handled a message at `now`, and whether it still holds work.
    pub(crate) fn mark_active(&self, now: DateTime<Utc>, holds_work: bool) {
        self.last_active.store(now.timestamp_millis(), Ordering::Relaxed);
        self.holds_work.store(holds_work, Ordering::Relaxed);
    }

    /// Whether the actor may be put to sleep at `now`: nothing handled since `cutoff` and no work
    /// of its own outstanding.
    pub(crate) fn idle_since(&self, cutoff: DateTime<Utc>) -> bool {
        !self.holds_work.load(Ordering::Relaxed)
            && self.last_active.load(Ordering::Relaxed) <= cutoff.timestamp_millis()
    }

    /// The vehicle's running actor, if it has one (see the field).
    pub(crate) fn actor(&self) -> Option<ActorRef<VehicleMsg>> {
        self.actor_slot().clone()
    }

    pub(crate) fn set_actor(&self, actor: ActorRef<VehicleMsg>) {
        *self.actor_slot() = Some(actor);
    }

    /// Takes the running actor away (to put it to sleep, restart or stop it): from here on,
    /// messages for the vehicle go to the supervisor.
    pub(crate) fn take_actor(&self) -> Option<ActorRef<VehicleMsg>> {
        self.actor_slot().take()
    }

    fn actor_slot(&self) -> MutexGuard<'_, Option<ActorRef<VehicleMsg>>> {
        // Poisoning cannot leave the handle half-written: take the guard either way.
        self.actor.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The vehicle's recent events, to record into or read.
    pub fn history(&self) -> MutexGuard<'_, Ring> {
        // A ring is whole between any two of its calls: take the guard either way.
        self.history.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn status(&self) -> ActorStatus {
        ActorStatus::from_u8(self.status.load(Ordering::Acquire))
    }

    pub fn set_status(&self, status: ActorStatus) {
        self.status.store(status as u8, Ordering::Release);
    }

    pub(crate) fn swap(&self, snapshot: Arc<Snapshot>) {
        debug_assert_eq!(
            (snapshot.state.internal_id, snapshot.state.user_id),
            (self.internal_id, self.owner),
            "a vehicle's ids never change"
        );
        self.received_at_ms.store(snapshot.state.received_at.timestamp_millis(), Ordering::Relaxed);
        self.snapshot.store(snapshot);
    }

    /// The current snapshot's `received_at` (to the millisecond), without loading the snapshot.
    pub fn received_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.received_at_ms.load(Ordering::Relaxed)).unwrap_or_default()
    }
}

/// Every vehicle's current snapshot, by Enode id and by internal id.
#[derive(Debug, Default)]
pub struct SnapshotBoard {
    /// Both ids of a vehicle point at the same entry, so a read is one lookup whatever id form the
    /// client holds. Enode ids and internal ids are both random UUIDs in practice; they do not
    /// collide. Kept as 16 bytes inside the map: as boxed strings, comparing one meant following
    /// a pointer, a likely cache miss per poll among 100 000 vehicles. An id that is not a UUID
    /// in canonical form (lowercase, hyphenated) goes to `by_other_id` as written, so ids match
    /// exactly as before. foldhash rather than SipHash: the keys come from Enode's signed events
    /// and our own UUIDs, never from a caller (lookups alone cannot flood it).
    by_uuid: DashMap<Uuid, Arc<BoardEntry>, foldhash::fast::RandomState>,
    by_other_id: DashMap<Box<str>, Arc<BoardEntry>, foldhash::fast::RandomState>,
    by_user: DashMap<Uuid, Vec<Arc<BoardEntry>>>,
}

impl SnapshotBoard {
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry for a vehicle, by Enode id or internal id.
    pub fn get(&self, id: &str) -> Option<Arc<BoardEntry>> {
        match canonical_uuid(id) {
            Some(uuid) => self.by_uuid.get(&uuid).map(|e| Arc::clone(e.value())),
            None => self.by_other_id.get(id).map(|e| Arc::clone(e.value())),
        }
    }

    /// The entry for a vehicle by its internal id (no parsing: the fleet's own lookups).
    pub fn by_internal_id(&self, internal_id: Uuid) -> Option<Arc<BoardEntry>> {
        self.by_uuid.get(&internal_id).map(|e| Arc::clone(e.value()))
    }

    /// Makes room for `vehicles` more (two ids each) before they are published at once.
    pub fn reserve(&self, vehicles: usize) {
        crate::maps::reserve(&self.by_uuid, vehicles.saturating_mul(2));
    }

    /// Every vehicle of a user, in link order.
    pub fn for_user(&self, user_id: Uuid) -> Vec<Arc<BoardEntry>> {
        self.by_user.get(&user_id).map(|v| v.value().clone()).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.by_user.iter().map(|v| v.value().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }

    /// Every entry (admin listings, the refresh scheduler). A point-in-time copy of the handles.
    pub fn entries(&self) -> Vec<Arc<BoardEntry>> {
        // One allocation: copying each user's list first was 50 000 more at 100 000 vehicles.
        let mut all = Vec::with_capacity(self.by_uuid.len() / 2);
        for user in self.by_user.iter() {
            all.extend(user.value().iter().cloned());
        }
        all
    }

    /// Adds a vehicle, or swaps in its new snapshot. Returns its entry.
    pub fn publish(&self, snapshot: Arc<Snapshot>) -> Arc<BoardEntry> {
        let internal = snapshot.state.internal_id;
        if let Some(entry) = self.by_uuid.get(&internal).map(|e| Arc::clone(e.value())) {
            entry.swap(snapshot);
            return entry;
        }
        let state = Arc::clone(&snapshot.state);
        let entry = Arc::new(BoardEntry::new(snapshot));
        match canonical_uuid(&state.vehicle.id) {
            Some(uuid) => drop(self.by_uuid.insert(uuid, Arc::clone(&entry))),
            None => drop(self.by_other_id.insert(state.vehicle.id.clone().into_boxed_str(), Arc::clone(&entry))),
        }
        self.by_uuid.insert(internal, Arc::clone(&entry));
        self.by_user.entry(state.user_id).or_default().push(Arc::clone(&entry));
        entry
    }

    /// Takes a vehicle off the board: its reads become 404.
    pub fn remove(&self, internal_id: Uuid) -> Option<Arc<BoardEntry>> {
        let (_, entry) = self.by_uuid.remove(&internal_id)?;
        let enode_id = &entry.snapshot().state.vehicle.id;
        match canonical_uuid(enode_id) {
            Some(uuid) => drop(self.by_uuid.remove(&uuid)),
            None => drop(self.by_other_id.remove(enode_id.as_str())),
        }
        if let Some(mut list) = self.by_user.get_mut(&entry.owner()) {
            list.retain(|e| !Arc::ptr_eq(e, &entry));
        }
        self.by_user.remove_if(&entry.owner(), |_, list| list.is_empty());
        Some(entry)
    }
}

/// `id` as a UUID if it is one written the way `Uuid` writes it back (36 characters, lowercase):
/// other spellings of the same UUID stay different ids, as they were when ids were strings.
fn canonical_uuid(id: &str) -> Option<Uuid> {
    if id.len() != 36 || id.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Uuid::try_parse(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::DataSource;

    fn snapshot(enode: &str, user: Uuid) -> Arc<Snapshot> {
        let mut vehicle: crate::model::Vehicle =
            serde_json::from_str(include_str!("../tests/fixtures/vehicle.json")).unwrap();
        vehicle.id = enode.to_owned();
        Arc::new(Snapshot::new(Arc::new(VehicleState {
            internal_id: Uuid::new_v4(),
            user_id: user,
            vehicle: Box::new(vehicle),
            source: DataSource::Webhook,
            received_at: Utc::now(),
            relink_required: false,
            charge_action: None,
        })))
    }

    #[test]
    fn found_by_either_id_and_removed_from_both() {
        let board = SnapshotBoard::new();
        let user = Uuid::new_v4();
        let snap = snapshot("enode-1", user);
        let internal = snap.state.internal_id.to_string();
        board.publish(snap);
        assert!(board.get("enode-1").is_some());
        assert!(board.get(&internal).is_some());
        assert_eq!(board.for_user(user).len(), 1);
        board.remove(internal.parse().unwrap());
        assert!(board.get("enode-1").is_none());
        assert!(board.get(&internal).is_none());
        assert!(board.for_user(user).is_empty());
        assert!(board.is_empty());
    }

    #[test]
    fn ids_match_exactly_uuid_or_not() {
        let board = SnapshotBoard::new();
        let user = Uuid::new_v4();
        let enode = "a1b2c3d4-0000-4000-8000-00000000abcd";
        board.publish(snapshot(enode, user));
        board.publish(snapshot("not-a-uuid", user));
        board.publish(snapshot("A1B2C3D4-0000-4000-8000-00000000ABCD", user));
        assert!(board.get(enode).is_some());
        assert!(board.get("not-a-uuid").is_some());
        let upper = board.get("A1B2C3D4-0000-4000-8000-00000000ABCD").expect("stored as written");
        assert!(!Arc::ptr_eq(&upper, &board.get(enode).expect("lowercase")));
        // Other spellings of a UUID are other ids.
        assert!(board.get("a1b2c3d400004000800000000000abcd").is_none());
        assert!(board.get("{a1b2c3d4-0000-4000-8000-00000000abcd}").is_none());
        assert!(board.get("A1B2C3D4-0000-4000-8000-00000000abcd").is_none());
        assert_eq!(board.len(), 3);
    }

    #[test]
    fn last_modified_is_an_http_date_bounded_by_the_time_received() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let mut state = (*snapshot("enode-1", Uuid::new_v4()).state).clone();
        state.received_at = at("2026-11-25T10:00:05Z");
        state.vehicle.last_seen = Some(at("2026-11-25T09:58:07Z"));
        assert_eq!(Snapshot::new(Arc::new(state.clone())).last_modified, "Wed, 25 Nov 2026 09:58:07 GMT");
        // A vendor clock ahead of ours, or no report at all: the time we received it.
        state.vehicle.last_seen = Some(at("2099-01-01T00:00:00Z"));
        assert_eq!(Snapshot::new(Arc::new(state.clone())).last_modified, "Wed, 25 Nov 2026 10:00:05 GMT");
        state.vehicle.last_seen = None;
        assert_eq!(Snapshot::new(Arc::new(state.clone())).last_modified, "Wed, 25 Nov 2026 10:00:05 GMT");
        // One from before 1970 is 1970.
        state.vehicle.last_seen = Some(at("1900-01-01T00:00:00Z"));
        assert_eq!(Snapshot::new(Arc::new(state.clone())).last_modified, "Thu, 01 Jan 1970 00:00:00 GMT");
        // A clock past the year 9999 (a restored row, a broken clock): the last date HTTP can say.
        state.vehicle.last_seen = None;
        state.received_at = DateTime::from_timestamp(253_402_300_800 + 86_400 * 400, 0).unwrap();
        assert_eq!(Snapshot::new(Arc::new(state)).last_modified, "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn facts_follow_the_state_whether_the_body_changes_or_not() {
        let first = snapshot("enode-1", Uuid::new_v4());
        assert_eq!(first.facts, Facts::of(&first.state));
        let mut later = (*first.state).clone();
        later.received_at += chrono::Duration::seconds(5);
        later.source = DataSource::Refresh;
        let same_body = first.next(Arc::new(later.clone()));
        assert!(!same_body.body_changed_from(&first));
        assert_eq!((same_body.facts.received_at, same_body.facts.source), (later.received_at, DataSource::Refresh));
        later.relink_required = true;
        let changed = first.next(Arc::new(later.clone()));
        assert!(changed.facts.relink_required);
        assert_eq!(changed.facts, Facts::of(&later));
    }

    #[test]
    fn bodies_are_rendered_once_when_first_asked_for() {
        let first = snapshot("enode-1", Uuid::new_v4());
        assert!(first.rendered.get().is_none(), "not rendered until someone reads it");
        let body = first.rendered().body.clone();
        assert_eq!(body, Bytes::from(StatusView::new(&first.state).to_bytes()));
        assert_eq!(first.rendered().body.as_ptr(), body.as_ptr(), "rendered once");

        let mut later = (*first.state).clone();
        later.received_at += chrono::Duration::seconds(5);
        let same = first.next(Arc::new(later.clone()));
        assert_eq!(same.rendered.get().map(|r| r.body.as_ptr()), Some(body.as_ptr()), "kept, not rendered again");

        later.vehicle.charge_state.battery_level = Some(63.0);
        let changed = same.next(Arc::new(later));
        assert!(changed.rendered.get().is_none(), "a new body waits for its first reader");
        assert_ne!(changed.rendered().etag, first.rendered().etag);
    }

    #[test]
    fn unchanged_body_keeps_version_and_etag() {
        let first = snapshot("enode-1", Uuid::new_v4());
        let mut later = (*first.state).clone();
        later.received_at += chrono::Duration::seconds(5);
        let same = first.next(Arc::new(later.clone()));
        assert_eq!(same.version, first.version);
        assert_eq!(same.rendered().etag, first.rendered().etag);
        later.vehicle.charge_state.battery_level = Some(63.0);
        let changed = first.next(Arc::new(later));
        assert_eq!(changed.version, first.version + 1);
        assert!(changed.body_changed_from(&first));
    }
}
