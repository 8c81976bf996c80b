//! The fleet's supervisor actor: it creates, wakes, puts to sleep, removes and restarts vehicle
//! actors, one message at a time, so two deliveries naming the same new vehicle cannot create it
//! twice, and it is told when a vehicle actor fails (see fleet.rs for the whole picture).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort, SupervisionEvent};
use uuid::Uuid;

use super::{FleetConfig, FleetError, Registry, Slot};
use crate::history::{EventKind, Outcome};
use crate::model::Vehicle;
use crate::ports::VehicleWrite;
use crate::snapshot::{ActorStatus, BoardEntry, Snapshot};
use crate::state::{DataSource, VehicleState, new_internal_id};
use crate::vehicle::{ObservationKind, VehicleActor, VehicleArgs, VehicleContext, VehicleMsg};

/// How many times a message to a dying actor is re-queued while its restart completes.
const DELIVERY_ATTEMPTS: u8 = 20;

pub(super) enum SupervisorMsg {
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

/// Starts the supervisor; it runs until the fleet shuts it down.
pub(super) async fn start(
    context: Arc<VehicleContext>,
    registry: Arc<Registry>,
    config: FleetConfig,
) -> Result<ActorRef<SupervisorMsg>, FleetError> {
    let args = SupervisorState { context, registry, config };
    let (supervisor, _handle) =
        Actor::spawn(None, FleetSupervisor, args).await.map_err(|e| FleetError::Spawn(e.to_string()))?;
    Ok(supervisor)
}

struct SupervisorState {
    context: Arc<VehicleContext>,
    registry: Arc<Registry>,
    config: FleetConfig,
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
                state.create(&myself, user_id, vehicle, source, kind).await;
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
                    state.recover(&myself, id, cell.get_id(), error.to_string()).await;
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
        vehicle: Box<Vehicle>,
        source: DataSource,
        kind: ObservationKind,
    ) {
        if let Some(entry) = self.context.board.get(&vehicle.id) {
            // Created by an earlier message in this mailbox: deliver instead.
            if entry.owner() == user_id {
                let msg = VehicleMsg::Observe { vehicle, source, kind };
                self.deliver(myself, entry.internal_id(), msg, 0).await;
            }
            return;
        }
        let state = VehicleState {
            internal_id: new_internal_id(),
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
        entry.history().record(self.context.clock.now(), EventKind::Created, Outcome::Ok);
        tracing::info!(vehicle = %id, enode_vehicle = %entry.snapshot().state.vehicle.id, "vehicle created");
        self.start_actor(myself, entry).await;
    }

    async fn deliver(&mut self, myself: &ActorRef<SupervisorMsg>, internal_id: Uuid, msg: VehicleMsg, attempts: u8) {
        // Off the board means removed: the board and the registry lose a vehicle in one step
        // of this supervisor's (`remove`).
        let Some(entry) = self.context.board.by_internal_id(internal_id) else {
            self.registry.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(actor) = self.wake(myself, entry).await else {
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
        let entry = self.context.board.by_internal_id(internal_id)?;
        self.wake(myself, entry).await
    }

    /// `awake` for a vehicle whose entry the caller has.
    async fn wake(&mut self, myself: &ActorRef<SupervisorMsg>, entry: Arc<BoardEntry>) -> Option<ActorRef<VehicleMsg>> {
        if let Some(actor) = entry.actor() {
            return Some(actor);
        }
        if entry.status() != ActorStatus::Idle {
            return None;
        }
        let actor = self.start_actor(myself, entry).await?;
        self.registry.counters.woken.fetch_add(1, Ordering::Relaxed);
        Some(actor)
    }

    /// Puts every actor idle for `idle_after` to sleep. Each is first unregistered, so messages
    /// for it come here (and wait behind this sweep), then drained: what it had already accepted
    /// is handled and published before it stops. The next message starts a fresh actor from that
    /// snapshot; nothing is lost and no two actors ever run for one vehicle.
    async fn sweep(&mut self) {
        let Some(idle_after) = self.config.idle_after else { return };
        let idle_after = chrono::Duration::from_std(idle_after).unwrap_or(chrono::Duration::MAX);
        let cutoff = self.context.clock.now() - idle_after;
        let idle = move |entry: &BoardEntry| entry.status() == ActorStatus::Running && entry.idle_since(cutoff);
        // Finding them visits every vehicle (15-35 ms at 100 000, here on the runtime it held
        // every HA read): a background walk (see `background`).
        let board = Arc::clone(&self.context.board);
        let found = crate::background::walk("idle-sweep", move || {
            board.entries().into_iter().filter(|entry| idle(entry)).collect::<Vec<_>>()
        });
        let mut sleeping = Vec::new();
        for entry in found.await.unwrap_or_default() {
            // Again: a message may have woken it while the walk ran.
            if !idle(&entry) {
                continue;
            }
            let Some(actor) = entry.take_actor() else { continue };
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
        if self.registry.slots.remove(&internal_id).is_none() {
            return false;
        }
        if let Some(entry) = self.context.board.remove(internal_id) {
            if let Some(actor) = entry.take_actor() {
                self.registry.by_actor.remove(&actor.get_id());
                // Wait for the actor to stop, so no state it is writing can land after the delete.
                let _ = actor.stop_and_wait(Some("vehicle removed".into()), Some(Duration::from_secs(5))).await;
            }
            entry.set_status(ActorStatus::Stopped);
        }
        self.context.write_behind.submit(VehicleWrite::Delete { internal_id });
        self.registry.counters.removed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(vehicle = %internal_id, "vehicle removed");
        true
    }

    async fn restart(&mut self, myself: &ActorRef<SupervisorMsg>, internal_id: Uuid) -> bool {
        let Some(entry) = self.context.board.by_internal_id(internal_id) else {
            return false;
        };
        if let Some(mut slot) = self.registry.slots.get_mut(&internal_id) {
            slot.recent_restarts.clear();
        }
        if let Some(actor) = entry.take_actor() {
            self.registry.by_actor.remove(&actor.get_id());
            let _ = actor.stop_and_wait(Some("restart requested".into()), Some(Duration::from_secs(5))).await;
        }
        let now = self.context.clock.now();
        entry.history().record_with_note(now, EventKind::Restart, Outcome::Ok, "requested by an operator");
        self.start_actor(myself, entry).await.is_some()
    }

    /// A vehicle's actor failed: restart it from its last snapshot, unless it has used its budget.
    async fn recover(&mut self, myself: &ActorRef<SupervisorMsg>, internal_id: Uuid, failed: ActorId, error: String) {
        let Some(entry) = self.context.board.by_internal_id(internal_id) else {
            return;
        };
        if entry.actor().is_some_and(|running| running.get_id() != failed) {
            // It failed while draining to sleep, and a message has since woken a new actor:
            // the vehicle runs, and starting another would make two.
            if let Some(mut slot) = self.registry.slots.get_mut(&internal_id) {
                slot.last_error = Some(error.clone());
            }
            let now = self.context.clock.now();
            let note = format!("{error} (while going to sleep; a new actor already runs)");
            entry.history().record_with_note(now, EventKind::Restart, Outcome::Failed, &note);
            tracing::warn!(vehicle = %internal_id, %error, "vehicle actor failed while going to sleep; already woken");
            return;
        }
        // Senders now go to this supervisor, which restarts the actor (or keeps their data parked).
        entry.take_actor();
        let now = Instant::now();
        let exhausted = {
            let Some(mut slot) = self.registry.slots.get_mut(&internal_id) else {
                return;
            };
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
        entry.history().record_with_note(at, kind, Outcome::Failed, &error);
        if exhausted {
            entry.set_status(ActorStatus::Degraded);
            self.registry.counters.degraded.fetch_add(1, Ordering::Relaxed);
            tracing::error!(vehicle = %internal_id, %error, "vehicle actor keeps failing; marked degraded");
            return;
        }
        self.registry.counters.restarts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(vehicle = %internal_id, %error, "vehicle actor failed; restarting from its last snapshot");
        entry.set_status(ActorStatus::Restarting);
        self.start_actor(myself, entry).await;
    }

    /// Starts the vehicle's actor and hands it to the board entry. None when it could not start
    /// (the vehicle is then degraded).
    async fn start_actor(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        entry: Arc<BoardEntry>,
    ) -> Option<ActorRef<VehicleMsg>> {
        let internal_id = entry.internal_id();
        match spawn_vehicle(&self.context, Arc::clone(&entry), myself.get_cell()).await {
            Ok(actor) => {
                self.registry.by_actor.insert(actor.get_id(), internal_id);
                entry.set_actor(actor.clone());
                let parked = self.registry.slots.get_mut(&internal_id).and_then(|mut s| s.parked.take());
                if let Some(msg) = parked
                    && let Err(MessagingErr::SendErr(msg)) = actor.cast(msg)
                {
                    // Died already: queue it behind the failure's handling, as `deliver` does.
                    let _ = myself.cast(SupervisorMsg::Deliver { internal_id, msg, attempts: 1 });
                }
                Some(actor)
            }
            Err(err) => {
                entry.set_status(ActorStatus::Degraded);
                tracing::error!(vehicle = %internal_id, error = %err, "could not start vehicle actor");
                None
            }
        }
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
