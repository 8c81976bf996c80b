//! `RefreshScheduler`: asks Enode for a vehicle's state only when it is stale AND someone is
//! watching, the stalest (relative to its owner's tier) first, one request in flight per vehicle,
//! a bounded number in flight overall, every request through the `Upstream` (and so through the
//! one global budget, at background priority). Results go through the vehicle actor's newer-wins
//! merge like any webhook. Failures back off per vehicle; a rate limit or outage pauses everything
//! until Enode's `Retry-After`. Reads never wait for any of this.
//!
//! One scheduler scanning the board, rather than a timer in each of 100 000 actors: ordering
//! "stalest first" needs the whole picture anyway, and idle timers would cost memory per vehicle.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::fleet::Fleet;
use crate::freshness::{FreshnessPolicy, WebhookStream, elapsed};
use crate::history::{EventKind, Outcome};
use crate::ports::{Audience, Clock, Upstream, UpstreamError};
use crate::snapshot::{BoardEntry, Facts};
use crate::state::{DataSource, VehicleState};
use crate::tier::Tier;
use crate::vehicle::ObservationKind;

/// How often bookkeeping for removed vehicles is dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// Longest wait between scans, whatever the last one predicted: what it could not foresee (a
/// tier upgrade, a new push registration, the webhook stream falling silent) is seen this late.
const MAX_QUIET: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct RefreshConfig {
    /// Refreshes in flight at once. Each waits for a budget permit, so this only bounds how far
    /// ahead the scheduler commits to an order; small keeps "stalest first" true.
    pub concurrency: usize,
    /// How often the board is scanned when nothing else wakes the scheduler.
    pub scan_interval: Duration,
    /// First per-vehicle wait after a failed refresh; doubles per failure up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Pause after a rate limit or outage that named no Retry-After.
    pub default_pause: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            scan_interval: Duration::from_secs(1),
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(30 * 60),
            default_pause: Duration::from_secs(30),
        }
    }
}

/// How fresh a vehicle is, as reads and admins are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Freshness {
    /// Seconds since the data was last known current (received, refreshed or vouched for).
    pub age_secs: u64,
    pub stale: bool,
    pub wanted: bool,
    /// Stale, wanted and eligible: a refresh will be made (budget permitting).
    pub refresh_scheduled: bool,
}

/// One vehicle's refresh bookkeeping, for admins.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RefreshInfo {
    pub in_flight: bool,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    pub retry_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct RefreshStats {
    pub in_flight: usize,
    pub refreshed: u64,
    pub failed: u64,
    pub paused_until: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct RefreshScheduler {
    inner: Arc<Inner>,
}

struct Inner {
    fleet: Fleet,
    upstream: Arc<dyn Upstream>,
    audience: Arc<dyn Audience>,
    clock: Arc<dyn Clock>,
    policy: FreshnessPolicy,
    stream: Arc<WebhookStream>,
    config: RefreshConfig,
    vehicles: DashMap<Uuid, RefreshInfo>,
    /// Vehicles an operator asked to refresh now (they go first).
    requested: DashMap<Uuid, ()>,
    in_flight: AtomicUsize,
    /// Unix ms until which no refresh starts (rate limit or outage); 0 = not paused.
    paused_until: AtomicI64,
    refreshed: AtomicU64,
    failed: AtomicU64,
    wake: Notify,
    stopping: AtomicBool,
    /// Whether `run` is running: without it nothing is scheduled, whatever is stale.
    running: AtomicBool,
}

/// What one scan found (see `best_candidates`).
struct Scan {
    best: Vec<Candidate>,
    next_due: Option<DateTime<Utc>>,
}

/// `at` plus `by`, saturating (a target of years must not panic).
fn later(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by).ok().and_then(|by| at.checked_add_signed(by)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

struct Candidate {
    internal_id: Uuid,
    user_id: Uuid,
    enode_id: String,
    score: f64,
}

impl RefreshScheduler {
    pub fn new(
        fleet: Fleet,
        upstream: Arc<dyn Upstream>,
        audience: Arc<dyn Audience>,
        clock: Arc<dyn Clock>,
        policy: FreshnessPolicy,
        stream: Arc<WebhookStream>,
        config: RefreshConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                fleet,
                upstream,
                audience,
                clock,
                policy,
                stream,
                config,
                vehicles: DashMap::new(),
                requested: DashMap::new(),
                in_flight: AtomicUsize::new(0),
                paused_until: AtomicI64::new(0),
                refreshed: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                wake: Notify::new(),
                stopping: AtomicBool::new(false),
                running: AtomicBool::new(false),
            }),
        }
    }

    pub fn policy(&self) -> &FreshnessPolicy {
        &self.inner.policy
    }

    pub fn stream(&self) -> &Arc<WebhookStream> {
        &self.inner.stream
    }

    /// Scans and starts refreshes until `stop`.
    pub async fn run(self) {
        self.inner.running.store(true, Ordering::Release);
        let mut last_sweep = tokio::time::Instant::now();
        while !self.inner.stopping.load(Ordering::Acquire) {
            // The scan visits every vehicle (tens of milliseconds at 100 000): off the runtime,
            // at idle priority, so HA reads never wait for it (see `background`).
            let scanned = tokio::time::Instant::now();
            let this = self.clone();
            let next_due =
                crate::background::walk("refresh-scan", move || this.start_due()).await.unwrap_or_else(|| {
                    tracing::error!("refresh scan panicked");
                    Some(self.inner.clock.now())
                });
            if last_sweep.elapsed() >= SWEEP_EVERY {
                self.forget_removed();
                last_sweep = tokio::time::Instant::now();
            }
            // Until `next_due` nothing can become due by itself, so the scan (a walk over every
            // vehicle: ~4% of a core at 100 000 when done every second) waits for it, or for a
            // wake: a refresh finishing, an operator's request, a read of a stale vehicle (see
            // `freshness_of`). Never more often than `scan_interval`, however many wakes.
            let interval = self.inner.config.scan_interval;
            let longest = MAX_QUIET.max(interval);
            let quiet = next_due.map_or(longest, |at| elapsed(self.inner.clock.now(), at).clamp(interval, longest));
            tokio::select! {
                _ = tokio::time::sleep(quiet) => {}
                _ = self.inner.wake.notified() => tokio::time::sleep_until(scanned + interval).await,
            }
        }
        self.inner.running.store(false, Ordering::Release);
    }

    pub fn stop(&self) {
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// Drops the bookkeeping of vehicles that are no longer on the board (deleted, unlinked).
    fn forget_removed(&self) {
        let board = self.inner.fleet.board();
        let on_board = |id: &Uuid| board.by_internal_id(*id).is_some();
        self.inner.vehicles.retain(|id, info| info.in_flight || on_board(id));
        self.inner.requested.retain(|id, _| on_board(id));
    }

    /// Asks for a refresh of the vehicle on `entry` as soon as the budget allows (admin).
    pub fn request(&self, entry: &BoardEntry) {
        self.inner.requested.insert(entry.internal_id(), ());
        self.inner.wake.notify_one();
    }

    /// How fresh the vehicle on `entry` is right now.
    pub fn freshness(&self, entry: &BoardEntry, now: DateTime<Utc>) -> Freshness {
        let snapshot = entry.snapshot();
        let owner_tier = self.inner.audience.tier(entry.owner());
        self.freshness_of(entry, &snapshot.facts, owner_tier, now)
    }

    /// `freshness` for the facts of a snapshot the caller already took from `entry`, owned by a
    /// user of `owner_tier`: an HA read knows both (the snapshot it serves, the caller who owns
    /// it), and looking them up again was a measurable part of every poll.
    pub fn freshness_of(&self, entry: &BoardEntry, facts: &Facts, owner_tier: Tier, now: DateTime<Utc>) -> Freshness {
        let info = self.inner.vehicles.get(&entry.internal_id()).map(|i| i.clone()).unwrap_or_default();
        let wanted = self.is_wanted(entry, now);
        let age = elapsed(self.fresh_as_of(facts, &info, now), now);
        let stale = age > self.inner.policy.targets.for_tier(owner_tier);
        let eligible = self.is_eligible(entry, facts, &info, now);
        let running = self.inner.running.load(Ordering::Acquire);
        let refresh_scheduled = running && stale && wanted && eligible;
        if refresh_scheduled {
            // Possibly the read that made it wanted: the scheduler may be waiting for a later
            // moment (see `run`), so tell it now.
            self.inner.wake.notify_one();
        }
        Freshness { age_secs: age.as_secs(), stale, wanted, refresh_scheduled }
    }

    pub fn info(&self, internal_id: Uuid) -> Option<RefreshInfo> {
        self.inner.vehicles.get(&internal_id).map(|i| i.clone())
    }

    pub fn stats(&self) -> RefreshStats {
        let paused = self.inner.paused_until.load(Ordering::Relaxed);
        RefreshStats {
            in_flight: self.inner.in_flight.load(Ordering::Relaxed),
            refreshed: self.inner.refreshed.load(Ordering::Relaxed),
            failed: self.inner.failed.load(Ordering::Relaxed),
            paused_until: (paused > self.inner.clock.now().timestamp_millis())
                .then(|| DateTime::from_timestamp_millis(paused))
                .flatten(),
        }
    }

    fn target(&self, state: &VehicleState) -> Duration {
        self.inner.policy.targets.for_tier(self.inner.audience.tier(state.user_id))
    }

    fn is_wanted(&self, entry: &BoardEntry, now: DateTime<Utc>) -> bool {
        self.inner.policy.is_wanted(entry.last_read(), || self.inner.audience.has_push_target(entry.internal_id()), now)
    }

    /// The last moment the data was known to be current.
    fn fresh_as_of(&self, facts: &Facts, info: &RefreshInfo, now: DateTime<Utc>) -> DateTime<Utc> {
        [Some(facts.received_at), info.last_success, self.inner.stream.vouched_until(facts.received_at, now)]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(facts.received_at)
    }

    /// Whether a refresh may be started for this vehicle at all (ignoring staleness).
    fn is_eligible(&self, entry: &BoardEntry, facts: &Facts, info: &RefreshInfo, now: DateTime<Utc>) -> bool {
        // A user whose credentials are invalid gets nothing from Enode until they relink.
        !facts.relink_required
            && entry.status().is_healthy()
            && !info.in_flight
            && info.retry_at.is_none_or(|at| at <= now)
    }

    fn paused(&self, now: DateTime<Utc>) -> bool {
        self.inner.paused_until.load(Ordering::Relaxed) > now.timestamp_millis()
    }

    /// Starts refreshes for the best candidates while there are free slots. Returns the earliest
    /// moment another vehicle can become due by itself; None when none can (every vehicle is
    /// fresh and unwatched, or stale and unwatched: only a read, which wakes the scheduler, or
    /// something `MAX_QUIET` covers can change that).
    fn start_due(&self) -> Option<DateTime<Utc>> {
        let now = self.inner.clock.now();
        if self.paused(now) {
            return DateTime::from_timestamp_millis(self.inner.paused_until.load(Ordering::Relaxed));
        }
        let free = self.inner.config.concurrency.saturating_sub(self.inner.in_flight.load(Ordering::Acquire));
        if free == 0 {
            // Every slot busy: each refresh that ends wakes the scheduler.
            return Some(now);
        }
        let scan = self.best_candidates(free, now);
        for candidate in scan.best {
            self.start(candidate, now);
        }
        scan.next_due
    }

    /// The `n` most overdue wanted vehicles, by age relative to their tier's target (a Free car
    /// 40 min old is less overdue than a Pro car 10 min old); operator requests first.
    fn best_candidates(&self, n: usize, now: DateTime<Utc>) -> Scan {
        let mut best: Vec<Candidate> = Vec::with_capacity(n + 1);
        // The earliest a vehicle passed over can become due without a new event. Unwatched
        // vehicles give none: a read makes them wanted, and that read wakes the scheduler.
        let mut next_due: Option<DateTime<Utc>> = None;
        let mut sooner = |at: DateTime<Utc>| next_due = Some(next_due.map_or(at, |t| t.min(at)));
        let shortest = self.inner.policy.targets.shortest();
        let any_requested = !self.inner.requested.is_empty();
        for entry in self.inner.fleet.board().entries() {
            // The cheap test first, because this loop visits every vehicle every scan (at 100 000
            // vehicles the full test below cost ~10% of a core): data received, or vouched for by
            // the webhook stream, within the strictest target is fresh whatever the owner's tier,
            // and that is most vehicles most of the time. It reads the entry alone; the snapshot,
            // the refresh bookkeeping and the owner's tier are looked up only for the rest.
            // Operator requests bypass it (rare: then every vehicle takes the full test).
            if !any_requested {
                let received_at = entry.received_at();
                let fresh_as_of = self.inner.stream.vouched_until(received_at, now).max(Some(received_at));
                if let Some(at) = fresh_as_of
                    && elapsed(at, now) <= shortest
                {
                    sooner(later(at, shortest));
                    continue;
                }
            }
            let snapshot = entry.snapshot();
            let (state, facts) = (&snapshot.state, &snapshot.facts);
            let info = self.inner.vehicles.get(&state.internal_id).map(|i| i.clone()).unwrap_or_default();
            if !self.is_eligible(&entry, facts, &info, now) {
                if let Some(retry_at) = info.retry_at.filter(|at| *at > now) {
                    sooner(retry_at);
                }
                continue;
            }
            let requested = self.inner.requested.contains_key(&state.internal_id);
            let score = if requested {
                f64::INFINITY
            } else {
                if !self.is_wanted(&entry, now) {
                    continue;
                }
                let target = self.target(state);
                let fresh_as_of = self.fresh_as_of(facts, &info, now);
                let age = elapsed(fresh_as_of, now).as_secs_f64();
                if age <= target.as_secs_f64() {
                    sooner(later(fresh_as_of, target));
                    continue;
                }
                age / target.as_secs_f64().max(1.0)
            };
            if best.len() == n && best.last().is_some_and(|worst| worst.score >= score) {
                // Due now but no slot free: the next scan should come at the next interval.
                sooner(now);
                continue;
            }
            let at = best.partition_point(|c| c.score >= score);
            best.insert(
                at,
                Candidate {
                    internal_id: state.internal_id,
                    user_id: state.user_id,
                    enode_id: state.vehicle.id.clone(),
                    score,
                },
            );
            if best.len() > n {
                best.truncate(n);
                sooner(now);
            }
        }
        Scan { best, next_due }
    }

    fn start(&self, candidate: Candidate, now: DateTime<Utc>) {
        self.inner.requested.remove(&candidate.internal_id);
        {
            let mut info = self.inner.vehicles.entry(candidate.internal_id).or_default();
            info.in_flight = true;
            info.last_attempt = Some(now);
        }
        self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
        let this = self.clone();
        tokio::spawn(async move {
            let result = this.inner.upstream.fetch_vehicle(&candidate.enode_id).await;
            this.finish(&candidate, result);
            this.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
            // A slot is free: pick the next candidate now rather than at the next scan.
            this.inner.wake.notify_one();
        });
    }

    fn finish(&self, candidate: &Candidate, result: Result<crate::model::Vehicle, UpstreamError>) {
        let now = self.inner.clock.now();
        let mut info = self.inner.vehicles.entry(candidate.internal_id).or_default();
        info.in_flight = false;
        match result {
            Ok(vehicle) => {
                self.inner.refreshed.fetch_add(1, Ordering::Relaxed);
                info.last_success = Some(now);
                info.consecutive_failures = 0;
                info.retry_at = None;
                info.last_error = None;
                drop(info);
                self.inner.fleet.history().record(candidate.internal_id, now, EventKind::Refresh, Outcome::Ok);
                self.inner.fleet.observe(candidate.user_id, vehicle, DataSource::Refresh, ObservationKind::Updated);
            }
            Err(err) => {
                self.inner.failed.fetch_add(1, Ordering::Relaxed);
                info.consecutive_failures = info.consecutive_failures.saturating_add(1);
                let wait = backoff(&self.inner.config, info.consecutive_failures, candidate.internal_id);
                info.retry_at = Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
                info.last_error = Some(err.to_string());
                drop(info);
                let history = self.inner.fleet.history();
                history.record_with_note(
                    candidate.internal_id,
                    now,
                    EventKind::Refresh,
                    Outcome::Failed,
                    &err.to_string(),
                );
                if let UpstreamError::Unavailable { retry_after, .. } = &err {
                    let pause = retry_after.unwrap_or(self.inner.config.default_pause);
                    let until = now.timestamp_millis() + pause.as_millis() as i64;
                    self.inner.paused_until.fetch_max(until, Ordering::Relaxed);
                }
                tracing::debug!(vehicle = %candidate.internal_id, error = %err, retry_in = ?wait, "refresh failed");
            }
        }
    }
}

/// Exponential backoff with jitter from the vehicle id (no RNG needed, and vehicles that failed
/// together do not retry together).
fn backoff(config: &RefreshConfig, failures: u32, id: Uuid) -> Duration {
    let exp = config.retry_base.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let capped = exp.min(config.retry_max);
    let jitter = f64::from(id.as_bytes()[0]) / 255.0 * 0.25; // up to +25%
    capped.mul_f64(1.0 + jitter)
}

#[cfg(test)]
#[path = "refresh_tests.rs"]
mod tests;
