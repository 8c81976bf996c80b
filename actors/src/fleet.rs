//! The `Fleet`: spawns, finds, supervises and restores the vehicle actors.
//!
//! Creation and removal go through one supervisor actor, so two webhook deliveries naming the same
//! new vehicle cannot create it twice. Messages to a known vehicle go straight to its actor (the
//! fast path). A panicking actor is restarted from its last published snapshot; more than a
//! budget of restarts within a window marks the vehicle degraded instead of looping: its last
//! snapshot keeps being served (flagged), and new data waits, parked, until an operator restarts it.
//!
//! Actors are activated on demand: every vehicle has its board entry (its snapshot, served to
//! readers) from the start, but its actor task runs only while there is something to do. A
//! restored vehicle's actor starts with the first message for it, and an actor idle for
//! `idle_after` is drained and put to sleep (`ActorStatus::Idle`) until the next one. Most cars
//! are parked most of the time, and an idle ractor actor costs more memory (about 6.6 KiB: its
//! channels, task and supervision link) than everything else a vehicle needs; starting 100 000 of
//! them also dominated start-up. Sleeping changes nothing a client sees: reads come from the board.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use ractor::rpc::CallResult;
use ractor::{ActorId, ActorRef, MessagingErr};
use uuid::Uuid;

use crate::history::{EventKind, History, Outcome};
use crate::model::{ChargeAction, ChargeKind, Vehicle};
use crate::ports::{PortError, StateStore, UpstreamError};
use crate::snapshot::{ActorStatus, BoardEntry, Snapshot, SnapshotBoard};
use crate::state::DataSource;
use crate::vehicle::{ObservationKind, VehicleContext, VehicleMsg};

mod supervisor;

use supervisor::SupervisorMsg;

#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// Restarts allowed within `restart_window` before a vehicle is marked degraded.
    pub restart_budget: usize,
    pub restart_window: Duration,
    /// An actor that handled nothing for this long (by the context's clock) and holds no work of
    /// its own is put to sleep. None: actors never sleep.
    pub idle_after: Option<Duration>,
    /// How often the supervisor looks for idle actors.
    pub sweep_every: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            restart_budget: 5,
            restart_window: Duration::from_secs(60),
            idle_after: Some(Duration::from_secs(10 * 60)),
            sweep_every: Duration::from_secs(30),
        }
    }
}

/// Why a command to a vehicle did not get an answer from Enode.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("vehicle not found")]
    NotFound,
    /// The vehicle's actor is restarting or degraded; commands wait until it runs again.
    #[error("vehicle is {}", .0.as_str())]
    NotRunning(ActorStatus),
    #[error("no answer from Enode in time")]
    Timeout,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("the fleet supervisor is not running")]
    SupervisorDown,
    #[error("could not restore vehicles: {0}")]
    Restore(#[from] PortError),
    #[error("could not start an actor: {0}")]
    Spawn(String),
}

/// What happened to an observation handed to the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routed {
    /// Queued to the vehicle's actor (or to the supervisor, to create or resume it).
    Queued,
    /// The vehicle belongs to another user than the event names; nothing was done.
    WrongOwner,
}

/// Supervision facts about one vehicle, for admins.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VehicleHealth {
    pub status: ActorStatus,
    pub restarts_in_window: usize,
    pub total_restarts: u64,
    pub last_error: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct FleetStats {
    pub vehicles: usize,
    pub created: u64,
    pub removed: u64,
    pub restarts: u64,
    pub degraded: u64,
    /// Messages for a vehicle that no longer exists.
    pub dropped: u64,
    /// Actor tasks running now (the rest are asleep, degraded or stopped).
    pub live_actors: usize,
    /// Times an idle actor was put to sleep, and woken again by a message.
    pub slept: u64,
    pub woken: u64,
}

#[derive(Clone)]
pub struct Fleet {
    inner: Arc<FleetInner>,
}

struct FleetInner {
    context: Arc<VehicleContext>,
    registry: Arc<Registry>,
    supervisor: ActorRef<SupervisorMsg>,
    restored: AtomicBool,
    history: Arc<History>,
}

/// The supervisor's records of each vehicle. Written by the supervisor (and by `restore`, before
/// anything else runs). The running actor itself is on the vehicle's board entry
/// (`BoardEntry::actor`), where senders find it.
#[derive(Default)]
struct Registry {
    slots: DashMap<Uuid, Slot>,
    /// Which vehicle each running actor runs: a failed actor is known only by its id.
    by_actor: DashMap<ActorId, Uuid>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    created: AtomicU64,
    removed: AtomicU64,
    restarts: AtomicU64,
    degraded: AtomicU64,
    dropped: AtomicU64,
    slept: AtomicU64,
    woken: AtomicU64,
}

#[derive(Default)]
struct Slot {
    recent_restarts: VecDeque<Instant>,
    total_restarts: u64,
    last_error: Option<String>,
    /// The newest data that arrived while the vehicle was degraded, applied on restart.
    parked: Option<VehicleMsg>,
}

impl Fleet {
    /// Starts the supervisor. Vehicles come from `restore` and from observations.
    pub async fn start(context: Arc<VehicleContext>, config: FleetConfig) -> Result<Self, FleetError> {
        let registry = Arc::new(Registry::default());
        let history = Arc::new(History::new(Arc::clone(&context.board)));
        let supervisor = supervisor::start(Arc::clone(&context), Arc::clone(&registry), config).await?;
        let restored = AtomicBool::new(false);
        Ok(Self { inner: Arc::new(FleetInner { context, registry, supervisor, restored, history }) })
    }

    /// Every vehicle's recent events (see `history`): components record into it, admins read it.
    pub fn history(&self) -> &Arc<History> {
        &self.inner.history
    }

    pub fn board(&self) -> &Arc<SnapshotBoard> {
        &self.inner.context.board
    }

    /// Loads every vehicle from the store and publishes its snapshot; its actor starts with the
    /// first message for it. Call once, before the HTTP port opens, so the first read after a
    /// restart already has data.
    pub async fn restore(&self, store: &dyn StateStore) -> Result<usize, FleetError> {
        let states = store.load_vehicles().await?;
        let count = states.len();
        self.inner.context.board.reserve(count);
        crate::maps::reserve(&self.inner.registry.slots, count);
        // No body is rendered here: each is rendered when first read (see `Snapshot::rendered`).
        for mut state in states {
            state.source = DataSource::Restored;
            let snapshot = Arc::new(Snapshot::new(Arc::new(state)));
            self.inner.context.notify(None, &snapshot);
            let id = snapshot.state.internal_id;
            self.inner.context.board.publish(snapshot);
            self.inner.registry.slots.insert(id, Slot::default());
        }
        self.inner.restored.store(true, Ordering::Release);
        tracing::info!(vehicles = count, "fleet restored from the store");
        Ok(count)
    }

    /// True once `restore` has finished.
    pub fn is_restored(&self) -> bool {
        self.inner.restored.load(Ordering::Acquire)
    }

    /// Hands new data about a vehicle to its actor, creating the vehicle (owned by `user_id`) if
    /// it is new. Never waits for the actor. A webhook about a known vehicle goes into its
    /// history here, where the vehicle has been looked up anyway (a new one's history starts with
    /// `Created`, recorded by the supervisor; a refresh is recorded by the scheduler).
    /// Takes the vehicle boxed or not; a caller that has it boxed already saves a copy.
    pub fn observe(
        &self,
        user_id: Uuid,
        vehicle: impl Into<Box<Vehicle>>,
        source: DataSource,
        kind: ObservationKind,
    ) -> Routed {
        let vehicle = match self.observe_owned(user_id, vehicle.into(), source, kind) {
            Ok(()) => return Routed::Queued,
            Err(vehicle) => vehicle,
        };
        // New, or another user's: looked up again, as both are rare.
        let Some(entry) = self.inner.context.board.get(&vehicle.id) else {
            let msg = SupervisorMsg::Create { user_id, vehicle, source, kind };
            return self.to_supervisor(msg);
        };
        tracing::warn!(vehicle = %vehicle.id, "event names a different owner than the vehicle has; ignored");
        if source == DataSource::Webhook {
            let now = self.inner.context.clock.now();
            entry.history().record_with_note(now, EventKind::Webhook, Outcome::Refused, "wrong owner");
        }
        Routed::WrongOwner
    }

    /// `observe` for a vehicle on the board as `user_id`'s; any other vehicle (new, or another
    /// user's) is handed back untouched, for the caller to check the user and then `observe` it.
    /// The webhook path's common case: a vehicle is only ever created for a user who exists, and
    /// users are never deleted, so finding it here answers whether the user exists, without a
    /// lookup among all users for every event.
    pub fn observe_owned(
        &self,
        user_id: Uuid,
        vehicle: Box<Vehicle>,
        source: DataSource,
        kind: ObservationKind,
    ) -> Result<(), Box<Vehicle>> {
        let Some(entry) = self.inner.context.board.get(&vehicle.id) else { return Err(vehicle) };
        if entry.owner() != user_id {
            return Err(vehicle);
        }
        if source == DataSource::Webhook {
            let now = self.inner.context.clock.now();
            entry.history().record(now, EventKind::Webhook, Outcome::Ok);
        }
        // Always queued (the supervisor takes over when the actor is not running).
        self.send(&entry, VehicleMsg::Observe { vehicle, source, kind });
        Ok(())
    }

    /// Marks a user's vehicles (of `vendor`, or all when None) as needing a relink. Returns how many.
    pub fn credentials_invalidated(&self, user_id: Uuid, vendor: Option<&str>) -> usize {
        let mut count = 0;
        for entry in self.inner.context.board.for_user(user_id) {
            let snapshot = entry.snapshot();
            let own = snapshot.state.vehicle.vendor.as_deref();
            if vendor.is_none_or(|v| own.is_some_and(|own| own.eq_ignore_ascii_case(v))) {
                let now = self.inner.context.clock.now();
                entry.history().record(now, EventKind::CredentialsInvalidated, Outcome::Ok);
                self.send(&entry, VehicleMsg::CredentialsInvalidated);
                count += 1;
            }
        }
        count
    }

    /// Starts or stops charging through the vehicle's actor. Waits for Enode's answer (the action,
    /// usually PENDING), at most `timeout`.
    pub async fn charge(&self, id: &str, kind: ChargeKind, timeout: Duration) -> Result<ChargeAction, CommandError> {
        let entry = self.inner.context.board.get(id).ok_or(CommandError::NotFound)?;
        let internal_id = entry.internal_id();
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let actor = match entry.actor() {
                Some(actor) => Some(actor),
                None => ractor::call!(self.inner.supervisor, |reply| SupervisorMsg::Wake { internal_id, reply })
                    .ok()
                    .flatten(),
            };
            let actor = actor.ok_or(CommandError::NotRunning(entry.status()))?;
            match actor.call(|reply| VehicleMsg::Charge { kind, reply }, Some(timeout)).await {
                Ok(CallResult::Success(result)) => break result.map_err(CommandError::Upstream),
                Ok(CallResult::Timeout) => break Err(CommandError::Timeout),
                // Not admitted: the actor was put to sleep between finding it and calling it.
                // A sleeping actor handles what it admitted, so the command was not sent: wake it.
                Err(_) if entry.status() == ActorStatus::Idle && attempts < 3 => continue,
                Ok(CallResult::SenderError) | Err(_) => break Err(CommandError::NotRunning(entry.status())),
            }
        };
        let now = self.inner.context.clock.now();
        match &result {
            Ok(action) => {
                let note = format!("{} {:?}", kind.as_str(), action.state);
                entry.history().record_with_note(now, EventKind::Command, Outcome::Ok, &note);
            }
            Err(err) => {
                let note = format!("{}: {err}", kind.as_str());
                entry.history().record_with_note(now, EventKind::Command, Outcome::Failed, &note);
            }
        }
        result
    }

    /// An action changed state at Enode (`user:vendor-action:updated`). Routed to the vehicle it
    /// targets if that vehicle belongs to `user_id`.
    pub fn action_updated(&self, user_id: Uuid, action: ChargeAction) -> Routed {
        let Some(entry) = self.inner.context.board.get(&action.target_id) else { return Routed::Queued };
        if entry.owner() != user_id {
            return Routed::WrongOwner;
        }
        self.send(&entry, VehicleMsg::ActionUpdated(Box::new(action)))
    }

    /// Removes a vehicle (by either id): stops its actor, takes it off the board, deletes it from
    /// the store (behind). Returns whether it existed.
    pub async fn remove(&self, id: &str) -> Result<bool, FleetError> {
        let Some(entry) = self.inner.context.board.get(id) else {
            return Ok(false);
        };
        let internal_id = entry.internal_id();
        ractor::call!(self.inner.supervisor, |reply| SupervisorMsg::Remove { internal_id, reply })
            .map_err(|_| FleetError::SupervisorDown)
    }

    /// Restarts a vehicle's actor from its last snapshot (also un-degrades it); false when the
    /// vehicle was removed meanwhile.
    pub async fn restart(&self, entry: &BoardEntry) -> Result<bool, FleetError> {
        let internal_id = entry.internal_id();
        ractor::call!(self.inner.supervisor, |reply| SupervisorMsg::Restart { internal_id, reply })
            .map_err(|_| FleetError::SupervisorDown)
    }

    /// Makes a vehicle's actor panic (tests, chaos drills).
    pub fn inject_panic(&self, id: &str, reason: &str) -> bool {
        let Some(entry) = self.inner.context.board.get(id) else {
            return false;
        };
        self.send(&entry, VehicleMsg::Crash { reason: reason.to_owned() });
        true
    }

    pub fn health(&self, id: &str) -> Option<VehicleHealth> {
        let entry = self.inner.context.board.get(id)?;
        let internal_id = entry.internal_id();
        let slot = self.inner.registry.slots.get(&internal_id)?;
        Some(VehicleHealth {
            status: entry.status(),
            restarts_in_window: slot.recent_restarts.len(),
            total_restarts: slot.total_restarts,
            last_error: slot.last_error.clone(),
        })
    }

    pub fn stats(&self) -> FleetStats {
        let c = &self.inner.registry.counters;
        FleetStats {
            vehicles: self.inner.registry.slots.len(),
            created: c.created.load(Ordering::Relaxed),
            removed: c.removed.load(Ordering::Relaxed),
            restarts: c.restarts.load(Ordering::Relaxed),
            degraded: c.degraded.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            live_actors: self.inner.registry.by_actor.len(),
            slept: c.slept.load(Ordering::Relaxed),
            woken: c.woken.load(Ordering::Relaxed),
        }
    }

    /// Stops every actor and the supervisor without losing accepted work: first the supervisor
    /// works off its queue (vehicles being created, messages being re-delivered), then every actor
    /// drains its mailbox and stops. A plain stop would drop queued messages (ractor handles a stop
    /// before queued messages), i.e. webhooks already acknowledged to Enode. State written behind
    /// is flushed by the caller afterwards (`WriteBehind::flush`).
    pub async fn shutdown(&self, timeout: Duration) {
        let cell = self.inner.supervisor.get_cell();
        let synced = ractor::call!(self.inner.supervisor, |reply| SupervisorMsg::Sync { reply });
        if synced.is_err() {
            tracing::warn!("fleet supervisor did not answer at shutdown; stopping actors anyway");
        }
        cell.drain_children_and_wait(Some(timeout)).await;
        for entry in self.inner.context.board.entries() {
            entry.set_status(ActorStatus::Stopped);
        }
        let _ = cell.stop_and_wait(Some("shutdown".into()), Some(timeout)).await;
    }

    /// Routes a message to a vehicle's actor (its entry counts the backlog).
    fn send(&self, entry: &BoardEntry, msg: VehicleMsg) -> Routed {
        let internal_id = entry.internal_id();
        match entry.actor() {
            Some(actor) => match actor.cast(msg) {
                Ok(()) => {
                    entry.enqueued();
                    Routed::Queued
                }
                // The actor just died; the supervisor is restarting it and will deliver.
                Err(MessagingErr::SendErr(msg)) => {
                    self.to_supervisor(SupervisorMsg::Deliver { internal_id, msg, attempts: 0 })
                }
                Err(_) => Routed::Queued,
            },
            None => self.to_supervisor(SupervisorMsg::Deliver { internal_id, msg, attempts: 0 }),
        }
    }

    fn to_supervisor(&self, msg: SupervisorMsg) -> Routed {
        if self.inner.supervisor.cast(msg).is_err() {
            // Only during shutdown.
            self.inner.registry.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Routed::Queued
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
