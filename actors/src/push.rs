//! `PushOutbox`: pushes each vehicle's changes to the Home Assistant webhook registered for it.
//!
//! It is a `ChangeListener`: a vehicle actor hands over each new snapshot and moves on; the
//! outbox only records "this is the newest state for that target" and wakes the target's
//! worker, never waits for a database or the network. Per target:
//! - one worker task at most, so deliveries keep the vehicle's order (an older state never
//!   lands after a newer one), and only the newest waiting state is sent (a change that queued
//!   behind an outage is replaced by the next one: HA wants the current state, not the history);
//! - failures back off exponentially with jitter, and many in a row open a circuit breaker;
//! - a global cap on deliveries in flight, with at most one per target, so one slow HA
//!   instance holds one slot and cannot slow the others.
//!
//! Durable: the pending state is written to the store alongside the first attempt, and what was
//! delivered is recorded after it; at start every stored pending push is delivered (the newest
//! state, under the version it was stored with, so never twice for the same version). The one
//! window left is a crash between HA's answer and that record: the state is then pushed again
//! after the restart (at least once, never lost).

mod backoff;
mod payload;
mod records;
mod target;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use uuid::Uuid;

use crate::history::{EventKind, History, Outcome as HistoryOutcome};

pub use backoff::PushConfig;
pub use payload::{EVENT, PushIds, render};
pub use records::{Circuit, PendingPush, PushHealth, PushRegistration, PushTargetRecord, PushTargetView};

use crate::ports::{ChangeListener, Clock, PortError, PushOutcome, PushStore, PushTransport};
use crate::snapshot::Snapshot;
use target::{Delivery, Job, TargetState};

#[derive(Clone)]
pub struct PushOutbox {
    inner: Arc<Inner>,
}

struct Inner {
    /// By the vehicle's internal id: one target per vehicle.
    targets: DashMap<Uuid, Arc<Target>>,
    transport: Arc<dyn PushTransport>,
    store: Arc<dyn PushStore>,
    clock: Arc<dyn Clock>,
    config: PushConfig,
    permits: Semaphore,
    /// Registrations one at a time, so the store and memory agree on which came last.
    registering: tokio::sync::Mutex<()>,
    stop: watch::Sender<bool>,
    workers: AtomicUsize,
    idle: Notify,
    counters: Counters,
    /// Where delivery outcomes are recorded per vehicle (set once the fleet exists: the outbox is
    /// built first, because the vehicle actors' context lists it as a listener).
    history: std::sync::OnceLock<Arc<History>>,
}

struct Target {
    vehicle_id: Uuid,
    // A std Mutex: held for a few field updates, never across an await.
    state: Mutex<TargetState>,
    /// Wakes the worker out of a backoff wait when a newer state arrives (to store it at once).
    wake: Notify,
}

impl Target {
    fn lock(&self) -> MutexGuard<'_, TargetState> {
        // Every update is a few assignments that cannot panic half-way: a poisoned state is whole.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Default)]
struct Counters {
    offered: AtomicUsize,
    delivered: AtomicUsize,
    failed: AtomicUsize,
}

/// Totals for health pages and metrics.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct PushStats {
    pub targets: usize,
    pub pending: usize,
    /// States handed to targets (each replaces the one waiting, if any).
    pub offered: usize,
    pub delivered: usize,
    pub failed_attempts: usize,
    pub workers: usize,
}

impl PushOutbox {
    /// Loads every registration and starts delivering what was pending when the service stopped.
    pub async fn load(
        store: Arc<dyn PushStore>,
        transport: Arc<dyn PushTransport>,
        clock: Arc<dyn Clock>,
        config: PushConfig,
    ) -> Result<Self, PortError> {
        let records = store.load_push_targets().await?;
        let (stop, _) = watch::channel(false);
        let outbox = Self {
            inner: Arc::new(Inner {
                targets: DashMap::new(),
                transport,
                store,
                clock,
                permits: Semaphore::new(config.max_concurrent.max(1)),
                config,
                registering: tokio::sync::Mutex::new(()),
                stop,
                workers: AtomicUsize::new(0),
                idle: Notify::new(),
                counters: Counters::default(),
                history: std::sync::OnceLock::new(),
            }),
        };
        let mut owed = 0;
        for record in records {
            let vehicle_id = record.registration.vehicle_id;
            let target =
                Arc::new(Target { vehicle_id, state: Mutex::new(TargetState::restore(record)), wake: Notify::new() });
            if target.lock().pending.is_some() {
                owed += 1;
                outbox.ensure_worker(&target);
            }
            outbox.inner.targets.insert(vehicle_id, target);
        }
        tracing::info!(targets = outbox.inner.targets.len(), owed, "push targets restored");
        Ok(outbox)
    }

    /// Whether the vehicle (internal id) has a push target. Cheap: one map lookup.
    pub fn has_target(&self, internal_id: Uuid) -> bool {
        self.inner.targets.contains_key(&internal_id)
    }

    /// Registers (or re-registers) a vehicle's target: stored first, then in force. The same
    /// user's registration of the same webhook id for another vehicle is replaced.
    pub async fn register(&self, registration: PushRegistration) -> Result<(), PortError> {
        let _one_at_a_time = self.inner.registering.lock().await;
        self.inner.store.save_push_registration(&registration).await?;
        let moved: Vec<Uuid> = self
            .inner
            .targets
            .iter()
            .filter(|t| t.key() != &registration.vehicle_id)
            .filter(|t| {
                let state = t.lock();
                state.registration.user_id == registration.user_id
                    && state.registration.webhook_id == registration.webhook_id
            })
            .map(|t| *t.key())
            .collect();
        for vehicle_id in moved {
            if let Some((_, old)) = self.inner.targets.remove(&vehicle_id) {
                old.lock().removed = true;
                old.wake.notify_one();
            }
        }
        let vehicle_id = registration.vehicle_id;
        let existing = self.inner.targets.get(&vehicle_id).map(|t| Arc::clone(t.value()));
        match existing {
            Some(target) => {
                target.lock().reregister(registration);
                // Owed work may go to the new URL right away.
                target.wake.notify_one();
                self.ensure_worker(&target);
            }
            None => {
                let target = Arc::new(Target {
                    vehicle_id,
                    state: Mutex::new(TargetState::new(registration)),
                    wake: Notify::new(),
                });
                self.inner.targets.insert(vehicle_id, target);
            }
        }
        Ok(())
    }

    /// Records every delivery's outcome in the vehicles' history from now on.
    pub fn record_history_in(&self, history: Arc<History>) {
        let _ = self.inner.history.set(history);
    }

    /// Every target with its delivery health (admins).
    pub fn all_targets(&self) -> Vec<PushTargetView> {
        let now = Instant::now();
        let mut views: Vec<PushTargetView> =
            self.inner.targets.iter().map(|t| t.lock().view(now, &self.inner.config)).collect();
        views.sort_by_key(|v| v.registration.registered_at);
        views
    }

    /// One vehicle's target, if it has one.
    pub fn target(&self, vehicle_id: Uuid) -> Option<PushTargetView> {
        let target = self.inner.targets.get(&vehicle_id)?;
        let view = target.lock().view(Instant::now(), &self.inner.config);
        Some(view)
    }

    /// A user's targets with their delivery health.
    pub fn targets_of(&self, user_id: Uuid) -> Vec<PushTargetView> {
        let now = Instant::now();
        let mut views: Vec<PushTargetView> = self
            .inner
            .targets
            .iter()
            .filter_map(|t| {
                let state = t.lock();
                (state.registration.user_id == user_id).then(|| state.view(now, &self.inner.config))
            })
            .collect();
        views.sort_by_key(|v| v.registration.registered_at);
        views
    }

    pub fn stats(&self) -> PushStats {
        let c = &self.inner.counters;
        PushStats {
            targets: self.inner.targets.len(),
            pending: self.inner.targets.iter().filter(|t| t.lock().pending.is_some()).count(),
            offered: c.offered.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            failed_attempts: c.failed.load(Ordering::Relaxed),
            workers: self.inner.workers.load(Ordering::Relaxed),
        }
    }

    /// Stops delivering: deliveries in flight finish and are recorded (up to `timeout`), waiting
    /// ones are left for the next start, and every pending state not yet stored is stored. Call
    /// after the vehicle actors have stopped, so no new state arrives.
    pub async fn shutdown(&self, timeout: Duration) {
        self.inner.stop.send_replace(true);
        let deadline = Instant::now() + timeout;
        while self.inner.workers.load(Ordering::Acquire) > 0 {
            let idle = self.inner.idle.notified();
            if self.inner.workers.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                tracing::warn!("push deliveries still in flight at shutdown; their states stay pending");
                break;
            }
        }
        let unsaved: Vec<(Uuid, PendingPush)> = self
            .inner
            .targets
            .iter()
            .filter_map(|t| {
                let state = t.lock();
                state.pending.clone().filter(|p| p.version > state.persisted_version).map(|p| (t.vehicle_id, p))
            })
            .collect();
        for (vehicle_id, pending) in unsaved {
            if let Err(err) = self.inner.store.save_push_pending(vehicle_id, &pending).await {
                tracing::error!(vehicle = %vehicle_id, error = %err, "could not store a pending push at shutdown");
            }
        }
    }

    fn ensure_worker(&self, target: &Arc<Target>) {
        {
            let mut state = target.lock();
            if state.worker || *self.inner.stop.borrow() {
                return;
            }
            state.worker = true;
        }
        self.inner.workers.fetch_add(1, Ordering::AcqRel);
        let worker = Worker { inner: Arc::clone(&self.inner), target: Arc::clone(target) };
        tokio::spawn(worker.run());
    }
}

impl ChangeListener for PushOutbox {
    fn on_change(&self, previous: Option<&Arc<Snapshot>>, current: &Arc<Snapshot>) {
        // A created or restored vehicle is not a change; and a state HA would see no difference
        // in (a repeated webhook, a refresh that found nothing new) is not pushed: the
        // predecessor's re-pushes of unchanged data are what its users complained of.
        let Some(previous) = previous else { return };
        if !current.body_changed_from(previous) {
            return;
        }
        let Some(target) = self.inner.targets.get(&current.state.internal_id).map(|t| Arc::clone(t.value())) else {
            return;
        };
        target.lock().offer(current.rendered().body.clone(), current.state.received_at);
        self.inner.counters.offered.fetch_add(1, Ordering::Relaxed);
        target.wake.notify_one();
        self.ensure_worker(&target);
    }
}

/// Delivers one target's pending states, one at a time, until there are none.
struct Worker {
    inner: Arc<Inner>,
    target: Arc<Target>,
}

impl Worker {
    async fn run(self) {
        let mut stop = self.inner.stop.subscribe();
        loop {
            if *stop.borrow() {
                break;
            }
            let job = self.target.lock().next_job(Instant::now());
            match job {
                Job::Idle => break,
                Job::Wait { until, persist } => {
                    if let Some(pending) = persist {
                        self.persist(&pending).await;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => {}
                        _ = self.target.wake.notified() => {}
                        _ = stop.wait_for(|stopping| *stopping) => {}
                    }
                }
                Job::Deliver(delivery) => self.deliver(delivery).await,
            }
        }
        // Checked and cleared under the lock: a state offered after the last `next_job` started
        // no worker (this one was still running), so it is picked up here, not stranded.
        let again = {
            let mut state = self.target.lock();
            state.worker = false;
            state.pending.is_some() && !state.removed && !*stop.borrow()
        };
        if again {
            let outbox = PushOutbox { inner: Arc::clone(&self.inner) };
            outbox.ensure_worker(&self.target);
        }
        if self.inner.workers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }

    async fn deliver(&self, delivery: Delivery) {
        let version = delivery.pending.version;
        let persist = async {
            if delivery.persist {
                self.persist(&delivery.pending).await;
            }
        };
        let send = async {
            // One slot per target (this worker), and at most `max_concurrent` over all targets.
            let Ok(_permit) = self.inner.permits.acquire().await else {
                return (PushOutcome::Failed("outbox closed".into()), false);
            };
            self.send_with_fallback(&delivery).await
        };
        let ((), (outcome, switched)) = tokio::join!(persist, send);
        if let Some(history) = self.inner.history.get() {
            let now = self.inner.clock.now();
            match &outcome {
                PushOutcome::Delivered => {
                    history.record(self.target.vehicle_id, now, EventKind::Push, HistoryOutcome::Ok)
                }
                failure => history.record_with_note(
                    self.target.vehicle_id,
                    now,
                    EventKind::Push,
                    HistoryOutcome::Failed,
                    &failure.reason(),
                ),
            }
        }
        let host = host_of(&delivery.url);
        match &outcome {
            PushOutcome::Delivered => {
                self.inner.counters.delivered.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(vehicle = %self.target.vehicle_id, %host, version, "pushed to Home Assistant");
            }
            failure => {
                self.inner.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    vehicle = %self.target.vehicle_id,
                    %host,
                    version,
                    reason = %failure.reason(),
                    "push to Home Assistant failed"
                );
            }
        }
        let (settled, health) = {
            let mut state = self.target.lock();
            let now = Instant::now();
            let settled = state.apply(version, &outcome, switched, now, self.inner.clock.now(), &self.inner.config);
            (settled, state.health.clone())
        };
        if let Err(err) = self.inner.store.record_push_attempt(self.target.vehicle_id, settled, &health).await {
            tracing::warn!(vehicle = %self.target.vehicle_id, error = %err, "could not record a push attempt");
        }
    }

    /// Sends under the id HA is expected to hold; on "different vehicle", once more under the
    /// other form (old installs hold internal ids). Returns the outcome and whether the other
    /// form is what worked.
    async fn send_with_fallback(&self, delivery: &Delivery) -> (PushOutcome, bool) {
        let first = self.send(delivery, &delivery.id).await;
        if first != PushOutcome::IdMismatch {
            return (first, false);
        }
        match self.send(delivery, &delivery.other_id).await {
            PushOutcome::Delivered => (PushOutcome::Delivered, true),
            other => (other, false),
        }
    }

    async fn send(&self, delivery: &Delivery, id: &str) -> PushOutcome {
        let (enode_id, internal_id) = {
            let state = self.target.lock();
            (state.registration.enode_vehicle_id.clone(), state.registration.vehicle_id)
        };
        let ids = PushIds { id, enode_id: &enode_id, internal_id };
        match render(&delivery.pending.status, &ids, delivery.pending.created_at) {
            Ok(body) => self.inner.transport.deliver(&delivery.url, body).await,
            Err(err) => PushOutcome::Failed(format!("status body does not render: {err}")),
        }
    }

    async fn persist(&self, pending: &PendingPush) {
        match self.inner.store.save_push_pending(self.target.vehicle_id, pending).await {
            Ok(()) => self.target.lock().persisted(pending.version),
            Err(err) => {
                // Delivery goes on; the next attempt (or shutdown) stores it again.
                tracing::warn!(vehicle = %self.target.vehicle_id, error = %err, "could not store a pending push");
            }
        }
    }
}

/// The host of a push URL, the only part of it that may be logged.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.rsplit('@').next().unwrap_or(authority)
}

#[cfg(test)]
#[path = "push/outbox_tests.rs"]
mod tests;
