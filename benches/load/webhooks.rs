//! The webhook load: signed deliveries of `user:vehicle:updated` events, as Enode sends them, and
//! the check that the store caught up afterwards.
//!
//! Every event moves its vehicle's `lastSeen` forward by a millisecond (a counter per vehicle), so
//! every event is news to its actor: it merges, renders a new snapshot and queues a store write.
//! The harness remembers the newest `lastSeen` acknowledged per vehicle; the store has caught up
//! when every vehicle's stored `last_seen` is that one.
//!
//! Per vehicle, not one counter for all: a global millisecond counter ran ahead of the clock by a
//! millisecond per event, 600 000 events (20 s) put the last ones ten minutes in the future, and
//! the service believes a vendor's clock only up to ten minutes ahead (`vehicle::merge`): beyond
//! that two updates of one vehicle on different connections were ordered by arrival, and the
//! check below found 7 vehicles "behind" whose newest acknowledged stamp had lost to an older one
//! (as the service means it to, for a vendor clock that broken).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use evconduit::enode::signature;
use futures::StreamExt;
use futures::stream::BoxStream;
use hdrhistogram::Histogram;
use uuid::Uuid;

use crate::admin_probe::AdminProbe;
use crate::http1::{Connection, post_request};
use crate::options::Backend;
use crate::seed::SeededVehicle;

pub const SECRET: &str = "load-harness-webhook-secret-0123456789";

/// A vehicle's event JSON with holes where the timestamps go.
struct Template {
    parts: Vec<String>,
}

pub struct WebhookLoad {
    templates: Vec<Template>,
    /// Enode ids by position.
    ids: Vec<String>,
    /// Newest acknowledged `lastSeen` (Unix ms) per vehicle; 0 = untouched.
    expected: Vec<AtomicI64>,
    /// Events sent so far per vehicle: its next event is stamped `base_ms` + this.
    sent: Vec<AtomicI64>,
    base_ms: i64,
}

#[derive(Clone, Debug)]
pub struct WebhookResult {
    pub deliveries: u64,
    pub events: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Microseconds from sending a delivery to its acknowledgement.
    pub ack: Histogram<u64>,
}

impl WebhookLoad {
    pub fn new(vehicles: &[SeededVehicle]) -> Self {
        // Far from any real timestamp, so it can be found and replaced in the serialised text.
        let sentinel: DateTime<Utc> = DateTime::from_timestamp(981_173_106, 0).expect("valid sentinel");
        let hole = serde_json::to_string(&sentinel).expect("timestamp serialises");
        let templates = vehicles
            .iter()
            .map(|v| {
                let mut vehicle = v.vehicle.clone();
                vehicle.last_seen = Some(sentinel);
                vehicle.charge_state.last_updated = Some(sentinel);
                let json = serde_json::to_string(&vehicle).expect("vehicle serialises");
                let event = format!(
                    r#"{{"event":"user:vehicle:updated","createdAt":{hole},"version":"2024-10-01","user":{{"id":"{}"}},"vehicle":{json},"updatedFields":["lastSeen","chargeState.lastUpdated"]}}"#,
                    v.user_id
                );
                Template { parts: event.split(&hole).map(str::to_owned).collect() }
            })
            .collect();
        let expected = vehicles.iter().map(|_| AtomicI64::new(0)).collect();
        let sent = vehicles.iter().map(|_| AtomicI64::new(0)).collect();
        // Newer than anything seeded: every event applies.
        let base_ms = Utc::now().timestamp_millis() + 60_000;
        let ids = vehicles.iter().map(|v| v.enode_id.clone()).collect();
        Self { templates, ids, expected, sent, base_ms }
    }

    /// One delivery's body: an event for each vehicle `picks` names, each with its next timestamp.
    fn body(&self, picks: impl ExactSizeIterator<Item = usize>) -> (Vec<u8>, Vec<(usize, i64)>) {
        let mut body = Vec::with_capacity(picks.len() * 2_200);
        let mut touched = Vec::with_capacity(picks.len());
        body.push(b'[');
        for (n, i) in picks.enumerate() {
            let ms = self.base_ms + self.sent[i].fetch_add(1, Ordering::Relaxed);
            let stamp = format!(
                "\"{}\"",
                DateTime::from_timestamp_millis(ms).expect("in range").to_rfc3339_opts(SecondsFormat::Millis, true)
            );
            if n > 0 {
                body.push(b',');
            }
            let template = &self.templates[i];
            for (k, part) in template.parts.iter().enumerate() {
                if k > 0 {
                    body.extend_from_slice(stamp.as_bytes());
                }
                body.extend_from_slice(part.as_bytes());
            }
            touched.push((i, ms));
        }
        body.push(b']');
        (body, touched)
    }

    /// Signs and posts one delivery on `conn` (opened again after a failure), and records what it
    /// acknowledged. The time to the acknowledgement, or None when it was not a 200.
    async fn deliver(
        &self,
        conn: &mut Option<Connection>,
        addr: SocketAddr,
        (body, touched): (Vec<u8>, Vec<(usize, i64)>),
    ) -> Option<Duration> {
        let signed = signature::sign(SECRET.as_bytes(), &body);
        let delivery = Uuid::new_v4().to_string();
        let request = post_request(
            "/api/webhook/enode",
            &[("x-enode-signature", &signed), ("x-enode-delivery", &delivery)],
            &body,
        );
        let sent = Instant::now();
        let status = match conn.as_mut() {
            Some(c) => c.status(&request).await.unwrap_or(0),
            None => 0,
        };
        if status != 200 {
            *conn = Connection::open(addr).await.ok();
            return None;
        }
        let acked = sent.elapsed();
        for (i, ms) in touched {
            self.expected[i].fetch_max(ms, Ordering::Relaxed);
        }
        Some(acked)
    }

    /// One event for every vehicle, in deliveries of `batch` on `connections` connections: every
    /// actor woken, as in a service that has been running a while (a car reports every minute or
    /// so and an actor sleeps after minutes without news). Returns the deliveries refused.
    pub async fn wake_all(self: &Arc<Self>, addr: SocketAddr, connections: usize, batch: usize) -> u64 {
        let chunks = self.templates.len().div_ceil(batch);
        let next_chunk = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let (this, next_chunk) = (Arc::clone(self), Arc::clone(&next_chunk));
                tokio::spawn(async move {
                    let mut conn = Connection::open(addr).await.ok();
                    let mut errors = 0;
                    loop {
                        let chunk = next_chunk.fetch_add(1, Ordering::Relaxed);
                        if chunk >= chunks {
                            return errors;
                        }
                        let picks = chunk * batch..((chunk + 1) * batch).min(this.templates.len());
                        if this.deliver(&mut conn, addr, this.body(picks)).await.is_none() {
                            errors += 1;
                        }
                    }
                })
            })
            .collect();
        let mut errors = 0;
        for task in tasks {
            errors += task.await.expect("webhook task panicked");
        }
        errors
    }

    /// Posts deliveries on `connections` connections for `duration`.
    pub async fn run(
        self: &Arc<Self>,
        addr: SocketAddr,
        connections: usize,
        batch: usize,
        duration: Duration,
    ) -> WebhookResult {
        let deliveries = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let end = started + duration;
        let tasks: Vec<_> = (0..connections)
            .map(|c| {
                let this = Arc::clone(self);
                let deliveries = Arc::clone(&deliveries);
                tokio::spawn(async move {
                    let mut rng = 0x5EED_u64 + c as u64 * 7919;
                    let mut ack = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
                    let (mut events, mut errors) = (0u64, 0u64);
                    let mut conn = Connection::open(addr).await.ok();
                    let n = this.templates.len();
                    while Instant::now() < end {
                        let picks = (0..batch).map(|_| next(&mut rng) as usize % n);
                        match this.deliver(&mut conn, addr, this.body(picks)).await {
                            Some(acked) => {
                                let _ = ack.record(acked.as_micros().max(1) as u64);
                                events += batch as u64;
                                deliveries.fetch_add(1, Ordering::Relaxed);
                            }
                            None => errors += 1,
                        }
                    }
                    (events, errors, ack)
                })
            })
            .collect();
        let mut result = WebhookResult {
            deliveries: 0,
            events: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            ack: Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds"),
        };
        for task in tasks {
            let (events, errors, ack) = task.await.expect("webhook task panicked");
            result.events += events;
            result.errors += errors;
            result.ack.add(&ack).expect("same bounds");
        }
        result.elapsed = started.elapsed();
        result.deliveries = deliveries.load(Ordering::Relaxed);
        result
    }

    /// Waits until the store holds every acknowledged state, or `deadline` passes.
    ///
    /// First the service's own count (`probe`): until its write-behind has nothing waiting or
    /// being written, the database is not read at all. Reading it meanwhile was not free: the
    /// passes below kept a read snapshot open most of the time, and SQLite cannot start its WAL
    /// over while a reader uses it, so the WAL grew into new file blocks the kernel zeroed first
    /// (8% of the server's CPU in a profile of the catch-up), and the catch-up looked slower than
    /// it was (in pairs of short runs, checking from the start: 5.9 and 6.8 s; from 3 s after the
    /// load: 5.0 and 4.6 s). The count is only the trigger; what is reported is proven in the
    /// database.
    ///
    /// Then passes over the database, every 50 ms until one finds nothing behind, each asking
    /// only about the vehicles still behind (a stored state only ever moves forward). The time
    /// reported is the bound `StoredTimes::behind` gives for the pass that found nothing behind.
    pub async fn wait_caught_up(&self, backend: Backend, url: &str, probe: &AdminProbe, deadline: Duration) -> CatchUp {
        let started = Instant::now();
        let mut drained = None;
        while started.elapsed() < deadline {
            match probe.write_behind().await {
                Some(lag) if lag.backlog > 0 => tokio::time::sleep(Duration::from_millis(20)).await,
                Some(_) => {
                    drained = Some(started.elapsed());
                    break;
                }
                // Not readable: the database alone decides.
                None => break,
            }
        }
        let db = StoredTimes::connect(backend, url).await;
        let mut behind: Vec<usize> =
            (0..self.expected.len()).filter(|&i| self.expected[i].load(Ordering::Relaxed) > 0).collect();
        let (mut passes, mut checking) = (0, Duration::ZERO);
        loop {
            let wanted: Vec<(&str, i64)> =
                behind.iter().map(|&i| (self.ids[i].as_str(), self.expected[i].load(Ordering::Relaxed))).collect();
            let pass = Instant::now();
            let (still, stored_by) = db.behind(&wanted).await;
            passes += 1;
            checking += pass.elapsed();
            behind.retain(|&i| still.contains(self.ids[i].as_str()));
            if behind.is_empty() {
                eprintln!("load: the store was checked in {passes} passes ({checking:.1?} of queries)");
                let stored = Some(stored_by.saturating_duration_since(started));
                return CatchUp { stored, behind: 0, drained };
            }
            if started.elapsed() > deadline {
                return CatchUp { stored: None, behind: behind.len(), drained };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// How the store caught up after the webhook load.
pub struct CatchUp {
    /// When the database was seen to hold every acknowledged state (None: not by the deadline).
    pub stored: Option<Duration>,
    /// Vehicles still behind at the deadline.
    pub behind: usize,
    /// When the service's write-behind had nothing left to write, by its own count.
    pub drained: Option<Duration>,
}

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Reads stored `last_seen` values straight from the database (the service has no endpoint for
/// it, and asking the service would measure the service).
enum StoredTimes {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Up to this many vehicles a pass names them; more, and it reads the whole table.
const NAMED: usize = 5000;

impl StoredTimes {
    async fn connect(backend: Backend, url: &str) -> Self {
        match backend {
            Backend::Sqlite => Self::Sqlite(sqlx::SqlitePool::connect(url).await.expect("open the SQLite store")),
            Backend::Postgres => Self::Postgres(sqlx::PgPool::connect(url).await.expect("open the Postgres store")),
        }
    }

    /// Of the vehicles named, with the `lastSeen` (Unix ms) each must have reached, the ones whose
    /// stored state is older; and a moment by which everything not returned was stored. One
    /// statement, so one read snapshot, taken before its first row arrives (or before it ends
    /// when it returns none). Rows stream, so the first comes early even from a whole-table
    /// read, and the comparison is made here. Passes start only once the service's write-behind
    /// is idle, so a long read no longer holds SQLite's WAL or takes PostgreSQL's CPU while the
    /// store catches up.
    async fn behind(&self, wanted: &[(&str, i64)]) -> (HashSet<String>, Instant) {
        type Rows<'a> = BoxStream<'a, sqlx::Result<(String, Option<DateTime<Utc>>)>>;
        const ALL: &str = "SELECT enode_id, last_seen FROM vehicles";
        let named = wanted.len() <= NAMED;
        let ids = || wanted.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        let mut rows: Rows<'_> = match self {
            Self::Sqlite(pool) if named => {
                let ids = serde_json::to_string(&ids()).expect("ids serialise");
                let query =
                    "SELECT enode_id, last_seen FROM vehicles WHERE enode_id IN (SELECT value FROM json_each(?1))";
                sqlx::query_as(query).bind(ids).fetch(pool)
            }
            Self::Postgres(pool) if named => {
                let query = "SELECT enode_id, last_seen FROM vehicles WHERE enode_id = ANY($1)";
                sqlx::query_as(query).bind(ids()).fetch(pool)
            }
            Self::Sqlite(pool) => sqlx::query_as(ALL).fetch(pool),
            Self::Postgres(pool) => sqlx::query_as(ALL).fetch(pool),
        };
        let mut first_row_at = None;
        let mut stored = HashMap::with_capacity(wanted.len());
        while let Some(row) = rows.next().await {
            let (id, at) = row.expect("read stored vehicles");
            first_row_at.get_or_insert_with(Instant::now);
            stored.insert(id, at.map_or(0, |t| t.timestamp_millis()));
        }
        let lagging = wanted.iter().filter(|(id, ms)| stored.get(*id).is_none_or(|stored| stored < ms));
        let behind = lagging.map(|(id, _)| (*id).to_owned()).collect();
        (behind, first_row_at.unwrap_or_else(Instant::now))
    }
}
