//! One push target's state and the decisions about it: which state goes next, when, under which
//! id, and what an outcome changes. No I/O here; the outbox's worker does the waiting and sending.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::backoff::PushConfig;
use super::records::{PendingPush, PushHealth, PushRegistration, PushTargetRecord, PushTargetView};
use crate::ports::PushOutcome;

#[derive(Debug)]
pub(super) struct TargetState {
    pub registration: PushRegistration,
    pub health: PushHealth,
    /// The newest state not yet settled. A newer state replaces it: only the newest is sent.
    pub pending: Option<PendingPush>,
    /// Every version up to this one is delivered or given up.
    pub settled_version: u64,
    /// The newest pending version known to be in the store.
    pub persisted_version: u64,
    pub next_version: u64,
    /// Not before this instant (backoff or open circuit); None: now.
    pub next_attempt_at: Option<Instant>,
    /// HA's entry answered "different vehicle" to the registration's id and accepted the other
    /// form: use that one until the next registration.
    pub use_other_id: bool,
    /// A worker task is running for this target.
    pub worker: bool,
    /// The registration was replaced by one for another vehicle; the worker stops.
    pub removed: bool,
}

/// What a target's worker does next.
#[derive(Debug, PartialEq)]
pub(super) enum Job {
    /// Nothing pending: the worker ends.
    Idle,
    /// Wait until `until` (or a wake-up), storing `persist` first if given.
    Wait {
        until: Instant,
        persist: Option<PendingPush>,
    },
    Deliver(Delivery),
}

#[derive(Debug, PartialEq)]
pub(super) struct Delivery {
    pub pending: PendingPush,
    /// Store the pending state too (alongside the delivery, so a first push waits for no database).
    pub persist: bool,
    pub url: String,
    /// The id HA is expected to hold, then the other form to try on a mismatch.
    pub id: String,
    pub other_id: String,
}

impl TargetState {
    pub fn new(registration: PushRegistration) -> Self {
        Self {
            registration,
            health: PushHealth::default(),
            pending: None,
            settled_version: 0,
            persisted_version: 0,
            next_version: 1,
            next_attempt_at: None,
            use_other_id: false,
            worker: false,
            removed: false,
        }
    }

    /// A target as stored: its pending push (if newer than what was settled) is still owed.
    pub fn restore(record: PushTargetRecord) -> Self {
        let settled = record.settled_version;
        let stored = record.pending.as_ref().map_or(0, |p| p.version);
        Self {
            pending: record.pending.filter(|p| p.version > settled),
            settled_version: settled,
            persisted_version: stored,
            next_version: settled.max(stored) + 1,
            health: record.health,
            ..Self::new(record.registration)
        }
    }

    /// A new registration for the same vehicle. Pending work carries over (it is still owed to
    /// that vehicle's HA) and is tried at once: HA registers when it starts, so it is likely up
    /// again (with an open circuit, that try is the half-open trial). A new URL gets a clean record.
    pub fn reregister(&mut self, registration: PushRegistration) {
        if registration.url != self.registration.url {
            self.health = PushHealth::default();
        }
        self.next_attempt_at = None;
        self.use_other_id = false;
        self.registration = registration;
    }

    /// A new state to push; it replaces any older one waiting.
    pub fn offer(&mut self, status: Bytes, created_at: DateTime<Utc>) {
        let version = self.next_version;
        self.next_version += 1;
        self.pending = Some(PendingPush { version, status, created_at });
    }

    pub fn next_job(&mut self, now: Instant) -> Job {
        let pending = match &self.pending {
            Some(p) if p.version > self.settled_version && !self.removed => p.clone(),
            _ => {
                self.pending = None;
                return Job::Idle;
            }
        };
        let persist = pending.version > self.persisted_version;
        if let Some(until) = self.next_attempt_at.filter(|until| *until > now) {
            return Job::Wait { until, persist: persist.then_some(pending) };
        }
        let (enode, internal) = (&self.registration.enode_vehicle_id, self.registration.vehicle_id.to_string());
        let given = self.registration.vehicle_ref.clone();
        let other = if given == *enode { internal } else { enode.clone() };
        let (id, other_id) = if self.use_other_id { (other, given) } else { (given, other) };
        Job::Deliver(Delivery { pending, persist, url: self.registration.url.clone(), id, other_id })
    }

    pub fn persisted(&mut self, version: u64) {
        self.persisted_version = self.persisted_version.max(version);
    }

    /// Applies an attempt's outcome; returns the version now settled, if any (for the store).
    pub fn apply(
        &mut self,
        version: u64,
        outcome: &PushOutcome,
        switched_id: bool,
        now: Instant,
        wall: DateTime<Utc>,
        config: &PushConfig,
    ) -> Option<u64> {
        if *outcome == PushOutcome::Delivered {
            if switched_id {
                self.use_other_id = !self.use_other_id;
            }
            self.health.last_success_at = Some(wall);
            self.health.consecutive_failures = 0;
            self.next_attempt_at = None;
            return Some(self.settle(version));
        }
        self.health.last_failure_at = Some(wall);
        self.health.last_failure_reason = Some(outcome.reason());
        self.health.consecutive_failures = self.health.consecutive_failures.saturating_add(1);
        if outcome.retryable() {
            self.next_attempt_at = Some(now + config.jittered_delay(self.health.consecutive_failures));
            None
        } else {
            // HA answered, and will answer the same to this state: give it up. The next state
            // is tried at once.
            Some(self.settle(version))
        }
    }

    fn settle(&mut self, version: u64) -> u64 {
        self.settled_version = self.settled_version.max(version);
        if self.pending.as_ref().is_some_and(|p| p.version <= self.settled_version) {
            self.pending = None;
        }
        self.settled_version
    }

    pub fn view(&self, now: Instant, config: &PushConfig) -> PushTargetView {
        let waiting = self.next_attempt_at.is_some_and(|until| until > now);
        PushTargetView {
            registration: self.registration.clone(),
            health: self.health.clone(),
            pending: self.pending.is_some(),
            circuit: config.circuit(self.health.consecutive_failures, waiting),
        }
    }
}

#[cfg(test)]
#[path = "target_tests.rs"]
mod tests;
