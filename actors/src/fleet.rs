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
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort, SupervisionEvent};
use uuid::Uuid;

use crate::history::{EventKind, History, Outcome};
use crate::model::{ChargeAction, ChargeKind, Vehicle};
use crate::ports::{PortError, StateStore, UpstreamError, VehicleWrite};
use crate::snapshot::{ActorStatus, BoardEntry, Snapshot, SnapshotBoard};
use crate::state::{DataSource, VehicleState};
use crate::vehicle::{ObservationKind, VehicleActor, VehicleArgs, VehicleContext, VehicleMsg};

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

/// Who runs each vehicle. Written by the supervisor (and by `restore`, before anything else runs).
#[derive(Default)]
struct Registry {
    slots: DashMap<Uuid, Slot>,
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
    /// None while asleep, restarting or degraded.
    actor: Option<ActorRef<VehicleMsg>>,
    recent_restarts: VecDeque<Instant>,
    total_restarts: u64,
    last_error: Option<String>,
    /// The newest data that arrived while the vehicle was degraded, applied on restart.
    parked: Option<VehicleMsg>,
}

impl Registry {
    fn actor(&self, id: Uuid) -> Option<ActorRef<VehicleMsg>> {
        self.slots.get(&id).and_then(|slot| slot.actor.clone())
    }

    fn set_actor(&self, id: Uuid, actor: ActorRef<VehicleMsg>) {
        self.by_actor.insert(actor.get_id(), id);
        self.slots.entry(id).or_default().actor = Some(actor);
    }
}

impl Fleet {
    /// Starts the supervisor. Vehicles come from `restore` and from observations.
    pub async fn start(context: Arc<VehicleContext>, config: FleetConfig) -> Result<Self, FleetError> {
        let registry = Arc::new(Registry::default());
        let history = Arc::new(History::new());
        let args = SupervisorState {
            context: Arc::clone(&context),
            registry: Arc::clone(&registry),
            config,
            history: Arc::clone(&history),
        };
        let (supervisor, _handle) =
            Actor::spawn(None, FleetSupervisor, args).await.map_err(|e| FleetError::Spawn(e.to_string()))?;
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
    /// it is new. Never waits for the actor.
    pub fn observe(&self, user_id: Uuid, vehicle: Vehicle, source: DataSource, kind: ObservationKind) -> Routed {
        let Some(entry) = self.inner.context.board.get(&vehicle.id) else {
            let msg = SupervisorMsg::Create { user_id, vehicle: Box::new(vehicle), source, kind };
            return self.to_supervisor(msg);
        };
        let state = entry.snapshot().state.clone();
        if state.user_id != user_id {
            tracing::warn!(vehicle = %vehicle.id, "event names a different owner than the vehicle has; ignored");
            return Routed::WrongOwner;
        }
        self.send(&entry, state.internal_id, VehicleMsg::Observe { vehicle: Box::new(vehicle), source, kind })
    }

    /// Marks a user's vehicles (of `vendor`, or all when None) as needing a relink. Returns how many.
    pub fn credentials_invalidated(&self, user_id: Uuid, vendor: Option<&str>) -> usize {
        let mut count = 0;
        for entry in self.inner.context.board.for_user(user_id) {
            let state = entry.snapshot().state.clone();
            let own = state.vehicle.vendor.as_deref();
            if vendor.is_none_or(|v| own.is_some_and(|own| own.eq_ignore_ascii_case(v))) {
                let now = self.inner.context.clock.now();
                self.inner.history.record(state.internal_id, now, EventKind::CredentialsInvalidated, Outcome::Ok);
                self.send(&entry, state.internal_id, VehicleMsg::CredentialsInvalidated);
                count += 1;
            }
        }
        count
    }

    /// Starts or stops charging through the vehicle's actor. Waits for Enode's answer (the action,
    /// usually PENDING), at most `timeout`.
    pub async fn charge(&self, id: &str, kind: ChargeKind, timeout: Duration) -> Result<ChargeAction, CommandError> {
        let entry = self.inner.context.board.get(id).ok_or(CommandError::NotFound)?;
        let internal_id = entry.snapshot().state.internal_id;
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let actor = match self.inner.registry.actor(internal_id) {
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
                self.inner.history.record_with_note(internal_id, now, EventKind::Command, Outcome::Ok, &note);
            }
            Err(err) => {
                let note = format!("{}: {err}", kind.as_str());
                self.inner.history.record_with_note(internal_id, now, EventKind::Command, Outcome::Failed, &note);
            }
        }
        result
    }

    /// An action changed state at Enode (`user:vendor-action:updated`). Routed to the vehicle it
    /// targets if that vehicle belongs to `user_id`.
    pub fn action_updated(&self, user_id: Uuid, action: ChargeAction) -> Routed {
        let Some(entry) = self.inner.context.board.get(&action.target_id) else { return Routed::Queued };
        let state = entry.snapshot().state.clone();
        if state.user_id != user_id {
            return Routed::WrongOwner;
        }
        self.send(&entry, state.internal_id, VehicleMsg::ActionUpdated(Box::new(action)))
    }

    /// Removes a vehicle (by either id): stops its actor, takes it off the board, deletes it from
    /// the store (behind). Returns whether it existed.
    pub async fn remove(&self, id: &str) -> Result<bool, FleetError> {
        let Some(entry) = self.inner.context.board.get(id) else {
            return Ok(false);
        };
        let internal_id = entry.snapshot().state.internal_id;
        ractor::call!(self.inner.supervisor, |reply| SupervisorMsg::Remove { internal_id, reply })
            .map_err(|_| FleetError::SupervisorDown)
    }

    /// Restarts a vehicle's actor from its last snapshot (also un-degrades it).
    pub async fn restart(&self, id: &str) -> Result<bool, FleetError> {
        let Some(entry) = self.inner.context.board.get(id) else {
            return Ok(false);
        };
        let internal_id = entry.snapshot().state.internal_id;
        ractor::call!(self.inner.supervisor, |reply| SupervisorMsg::Restart { internal_id, reply })
            .map_err(|_| FleetError::SupervisorDown)
    }

    /// Makes a vehicle's actor panic (tests, chaos drills).
    pub fn inject_panic(&self, id: &str, reason: &str) -> bool {
        let Some(entry) = self.inner.context.board.get(id) else {
            return false;
        };
        self.send(&entry, entry.snapshot().state.internal_id, VehicleMsg::Crash { reason: reason.to_owned() });
        true
    }

    pub fn health(&self, id: &str) -> Option<VehicleHealth> {
        let entry = self.inner.context.board.get(id)?;
        let internal_id = entry.snapshot().state.internal_id;
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
    fn send(&self, entry: &BoardEntry, internal_id: Uuid, msg: VehicleMsg) -> Routed {
        match self.inner.registry.actor(internal_id) {
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

async fn spawn_vehicle(
    context: &Arc<VehicleContext>,
    entry: Arc<BoardEntry>,
    supervisor: ractor::ActorCell,
) -> Result<ActorRef<VehicleMsg>, FleetError> {
    let args = VehicleArgs { context: Arc::clone(context), entry };
    let (actor, _handle) = Actor::spawn_linked(None, VehicleActor, args, supervisor)
        .await
        .map_err(|e| FleetError::Spawn(e.to_string()))?;
    Ok(actor)
}

/// How many times a message to a dying actor is re-queued while its restart completes.
const DELIVERY_ATTEMPTS: u8 = 20;

enum SupervisorMsg {
    Create {
        user_id: Uuid,
        vehicle: Box<Vehicle>,
        source: DataSource,
        kind: ObservationKind,
    },
    Deliver {
        internal_id: Uuid,
        msg: VehicleMsg,
        attempts: u8,
    },
    Remove {
        internal_id: Uuid,
        reply: RpcReplyPort<bool>,
    },
    Restart {
        internal_id: Uuid,
        reply: RpcReplyPort<bool>,
    },
    /// Answered once everything queued before it has been handled (shutdown).
    Sync {
        reply: RpcReplyPort<()>,
    },
    /// Start a sleeping vehicle's actor (a command needs it now); answers the running actor.
    Wake {
        internal_id: Uuid,
        reply: RpcReplyPort<Option<ActorRef<VehicleMsg>>>,
    },
    /// Put actors idle for `idle_after` to sleep.
    Sweep,
}

struct FleetSupervisor;

struct SupervisorState {
    context: Arc<VehicleContext>,
    registry: Arc<Registry>,
    config: FleetConfig,
    history: Arc<History>,
}

impl Actor for FleetSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorState;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorState,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        if args.config.idle_after.is_some() {
            // Ends by itself when the supervisor stops.
            myself.send_interval(args.config.sweep_every, || SupervisorMsg::Sweep);
        }
        Ok(args)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Create { user_id, vehicle, source, kind } => {
                state.create(&myself, user_id, *vehicle, source, kind).await;
            }
            SupervisorMsg::Deliver { internal_id, msg, attempts } => {
                state.deliver(&myself, internal_id, msg, attempts).await;
            }
            SupervisorMsg::Remove { internal_id, reply } => {
                let existed = state.remove(internal_id).await;
                let _ = reply.send(existed);
            }
            SupervisorMsg::Restart { internal_id, reply } => {
                let restarted = state.restart(&myself, internal_id).await;
                let _ = reply.send(restarted);
            }
            SupervisorMsg::Sync { reply } => {
                let _ = reply.send(());
            }
            SupervisorMsg::Wake { internal_id, reply } => {
                let _ = reply.send(state.awake(&myself, internal_id).await);
            }
            SupervisorMsg::Sweep => state.sweep().await,
        }
        // Never fail: an error here would stop the supervisor and orphan every vehicle.
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                if let Some((_, id)) = state.registry.by_actor.remove(&cell.get_id()) {
                    state.recover(&myself, id, error.to_string()).await;
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                state.registry.by_actor.remove(&cell.get_id());
            }
            _ => {}
        }
        Ok(())
    }
}

impl SupervisorState {
    async fn create(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        user_id: Uuid,
        vehicle: Vehicle,
        source: DataSource,
        kind: ObservationKind,
    ) {
        if let Some(entry) = self.context.board.get(&vehicle.id) {
            // Created by an earlier message in this mailbox: deliver instead.
            let state = entry.snapshot().state.clone();
            if state.user_id == user_id {
                let msg = VehicleMsg::Observe { vehicle: Box::new(vehicle), source, kind };
                self.deliver(myself, state.internal_id, msg, 0).await;
            }
            return;
        }
        let state = VehicleState {
            internal_id: Uuid::new_v4(),
            user_id,
            vehicle,
            source,
            received_at: self.context.clock.now(),
            relink_required: false,
            charge_action: None,
        };
        let snapshot = Arc::new(Snapshot::new(Arc::new(state)));
        self.context.write_behind.submit(VehicleWrite::Upsert(Arc::clone(&snapshot.state)));
        let id = snapshot.state.internal_id;
        self.context.notify(None, &snapshot);
        let entry = self.context.board.publish(snapshot);
        self.registry.slots.insert(id, Slot::default());
        self.registry.counters.created.fetch_add(1, Ordering::Relaxed);
        self.history.record(id, self.context.clock.now(), EventKind::Created, Outcome::Ok);
        tracing::info!(vehicle = %id, enode_vehicle = %entry.snapshot().state.vehicle.id, "vehicle created");
        self.start_actor(myself, id, entry).await;
    }

    async fn deliver(&mut self, myself: &ActorRef<SupervisorMsg>, internal_id: Uuid, msg: VehicleMsg, attempts: u8) {
        if !self.registry.slots.contains_key(&internal_id) {
            self.registry.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(actor) = self.awake(myself, internal_id).await else {
            // Degraded (or stopped): keep the newest data for when an operator restarts it.
            if matches!(msg, VehicleMsg::Observe { .. })
                && let Some(mut slot) = self.registry.slots.get_mut(&internal_id)
            {
                slot.parked = Some(msg);
            }
            return;
        };
        if let Err(MessagingErr::SendErr(msg)) = actor.cast(msg) {
            // The actor died and its failure has not been handled yet: queue the message behind it.
            if attempts < DELIVERY_ATTEMPTS {
                let _ = myself.cast(SupervisorMsg::Deliver { internal_id, msg, attempts: attempts + 1 });
            } else {
                self.registry.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The vehicle's running actor, starting it if it is asleep. None when it is degraded, stopped
    /// or gone: those wait for an operator (or are not there to wake).
    async fn awake(&mut self, myself: &ActorRef<SupervisorMsg>, internal_id: Uuid) -> Option<ActorRef<VehicleMsg>> {
        if let Some(actor) = self.registry.actor(internal_id) {
            return Some(actor);
        }
        let entry = self.context.board.get(&internal_id.hyphenated().to_string())?;
        if entry.status() != ActorStatus::Idle {
            return None;
        }
        if !self.start_actor(myself, internal_id, entry).await {
            return None;
        }
        self.registry.counters.woken.fetch_add(1, Ordering::Relaxed);
        self.registry.actor(internal_id)
    }

    /// Puts every actor idle for `idle_after` to sleep. Each is first unregistered, so messages
    /// for it come here (and wait behind this sweep), then drained: what it had already accepted
    /// is handled and published before it stops. The next message starts a fresh actor from that
    /// snapshot; nothing is lost and no two actors ever run for one vehicle.
    async fn sweep(&mut self) {
        let Some(idle_after) = self.config.idle_after else { return };
        let idle_after = chrono::Duration::from_std(idle_after).unwrap_or(chrono::Duration::MAX);
        let cutoff = self.context.clock.now() - idle_after;
        let mut sleeping = Vec::new();
        for entry in self.context.board.entries() {
            if entry.status() != ActorStatus::Running || !entry.idle_since(cutoff) {
                continue;
            }
            let id = entry.snapshot().state.internal_id;
            let Some(actor) = self.registry.slots.get_mut(&id).and_then(|mut slot| slot.actor.take()) else {
                continue;
            };
            // Idle from now: whoever finds no actor asks this supervisor, which answers only
            // after the drains below. Draining all before waiting for any: they finish side by side.
            entry.set_status(ActorStatus::Idle);
            if actor.drain().is_ok() {
                sleeping.push(actor);
            }
        }
        for actor in &sleeping {
            // No timeout: a vehicle actor never awaits while handling a message, so its drain
            // ends as soon as its (idle, usually empty) mailbox is worked off; giving up early
            // could let a second actor start while this one still writes.
            let _ = actor.get_cell().wait(None).await;
        }
        if !sleeping.is_empty() {
            self.registry.counters.slept.fetch_add(sleeping.len() as u64, Ordering::Relaxed);
            tracing::debug!(actors = sleeping.len(), "idle vehicle actors put to sleep");
        }
    }

    async fn remove(&mut self, internal_id: Uuid) -> bool {
        let Some((_, slot)) = self.registry.slots.remove(&internal_id) else {
            return false;
        };
        if let Some(actor) = slot.actor {
            self.registry.by_actor.remove(&actor.get_id());
            // Wait for the actor to stop, so no state it is writing can land after the delete.
            let _ = actor.stop_and_wait(Some("vehicle removed".into()), Some(Duration::from_secs(5))).await;
        }
        if let Some(entry) = self.context.board.remove(internal_id) {
            entry.set_status(ActorStatus::Stopped);
        }
        self.context.write_behind.submit(VehicleWrite::Delete { internal_id });
        self.registry.counters.removed.fetch_add(1, Ordering::Relaxed);
        self.history.forget(internal_id);
        tracing::info!(vehicle = %internal_id, "vehicle removed");
        true
    }

    async fn restart(&mut self, myself: &ActorRef<SupervisorMsg>, internal_id: Uuid) -> bool {
        let Some(entry) = self.context.board.get(&internal_id.hyphenated().to_string()) else {
            return false;
        };
        let old = self.registry.slots.get_mut(&internal_id).and_then(|mut slot| {
            slot.recent_restarts.clear();
            slot.actor.take()
        });
        if let Some(actor) = old {
            self.registry.by_actor.remove(&actor.get_id());
            let _ = actor.stop_and_wait(Some("restart requested".into()), Some(Duration::from_secs(5))).await;
        }
        let now = self.context.clock.now();
        self.history.record_with_note(internal_id, now, EventKind::Restart, Outcome::Ok, "requested by an operator");
        self.start_actor(myself, internal_id, entry).await
    }

    /// A vehicle's actor failed: restart it from its last snapshot, unless it has used its budget.
    async fn recover(&mut self, myself: &ActorRef<SupervisorMsg>, internal_id: Uuid, error: String) {
        let Some(entry) = self.context.board.get(&internal_id.hyphenated().to_string()) else {
            return;
        };
        let now = Instant::now();
        let exhausted = {
            let Some(mut slot) = self.registry.slots.get_mut(&internal_id) else {
                return;
            };
            slot.actor = None;
            slot.total_restarts += 1;
            slot.last_error = Some(error.clone());
            let window = self.config.restart_window;
            slot.recent_restarts.retain(|t| now.duration_since(*t) < window);
            let exhausted = slot.recent_restarts.len() >= self.config.restart_budget;
            if !exhausted {
                slot.recent_restarts.push_back(now);
            }
            exhausted
        };
        let at = self.context.clock.now();
        let kind = if exhausted { EventKind::Degraded } else { EventKind::Restart };
        self.history.record_with_note(internal_id, at, kind, Outcome::Failed, &error);
        if exhausted {
            entry.set_status(ActorStatus::Degraded);
            self.registry.counters.degraded.fetch_add(1, Ordering::Relaxed);
            tracing::error!(vehicle = %internal_id, %error, "vehicle actor keeps failing; marked degraded");
            return;
        }
        self.registry.counters.restarts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(vehicle = %internal_id, %error, "vehicle actor failed; restarting from its last snapshot");
        entry.set_status(ActorStatus::Restarting);
        self.start_actor(myself, internal_id, entry).await;
    }

    async fn start_actor(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        internal_id: Uuid,
        entry: Arc<BoardEntry>,
    ) -> bool {
        match spawn_vehicle(&self.context, Arc::clone(&entry), myself.get_cell()).await {
            Ok(actor) => {
                self.registry.set_actor(internal_id, actor.clone());
                let parked = self.registry.slots.get_mut(&internal_id).and_then(|mut s| s.parked.take());
                if let Some(msg) = parked
                    && let Err(MessagingErr::SendErr(msg)) = actor.cast(msg)
                {
                    // Died already: queue it behind the failure's handling, as `deliver` does.
                    let _ = myself.cast(SupervisorMsg::Deliver { internal_id, msg, attempts: 1 });
                }
                true
            }
            Err(err) => {
                entry.set_status(ActorStatus::Degraded);
                tracing::error!(vehicle = %internal_id, error = %err, "could not start vehicle actor");
                false
            }
        }
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
