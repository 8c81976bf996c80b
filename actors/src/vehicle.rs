//! `VehicleActor`: the only writer of one vehicle's state.
//!
//! Every change to a vehicle (webhook events, refresh results, credential loss) arrives here as a
//! message, is merged by the vehicle's own clock (newer wins, arrival order means nothing), and
//! leaves as a new snapshot on the board plus a write queued behind to the store.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::model::{ActionState, ChargeAction, ChargeKind, Vehicle};
use crate::ports::{ChangeListener, Clock, NoUpstream, Upstream, UpstreamError, VehicleWrite};
use crate::snapshot::{ActorStatus, BoardEntry, Snapshot, SnapshotBoard};
use crate::state::{DataSource, VehicleState, newer_action};
use crate::write_behind::WriteBehind;

/// How a charging command is followed when its webhook does not come.
#[derive(Clone, Debug)]
pub struct CommandConfig {
    /// First look at a pending action; each later look waits twice as long.
    pub poll_after: Duration,
    /// Looks at most, then the action is left to its webhook.
    pub poll_attempts: u32,
}

impl Default for CommandConfig {
    fn default() -> Self {
        Self { poll_after: Duration::from_secs(30), poll_attempts: 5 }
    }
}

/// What every vehicle actor shares: where to publish, where to persist, what time it is, how to
/// reach Enode, and who wants to hear about changes (push, charging sessions).
pub struct VehicleContext {
    pub board: Arc<SnapshotBoard>,
    pub write_behind: WriteBehind,
    pub clock: Arc<dyn Clock>,
    pub upstream: Arc<dyn Upstream>,
    pub commands: CommandConfig,
    pub listeners: Vec<Arc<dyn ChangeListener>>,
}

impl VehicleContext {
    /// A context with no Enode (commands answer "unavailable") and no listeners.
    pub fn new(board: Arc<SnapshotBoard>, write_behind: WriteBehind, clock: Arc<dyn Clock>) -> Self {
        Self {
            board,
            write_behind,
            clock,
            upstream: Arc::new(NoUpstream),
            commands: CommandConfig::default(),
            listeners: Vec::new(),
        }
    }

    pub(crate) fn notify(&self, previous: Option<&Arc<Snapshot>>, current: &Arc<Snapshot>) {
        for listener in &self.listeners {
            listener.on_change(previous, current);
        }
    }
}

/// Which kind of news a vehicle observation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObservationKind {
    /// `user:vehicle:discovered`: only `information` is filled; an update follows.
    Discovered,
    /// `user:vehicle:updated` or a refresh: the full vehicle.
    Updated,
}

/// The answer to a charging command.
pub type ChargeReply = Result<ChargeAction, UpstreamError>;

#[derive(Debug)]
pub enum VehicleMsg {
    /// New data about the vehicle from Enode.
    Observe { vehicle: Box<Vehicle>, source: DataSource, kind: ObservationKind },
    /// Enode says the user's vendor credentials are invalid: the data is no longer live.
    CredentialsInvalidated,
    /// A person asks to start or stop charging.
    Charge { kind: ChargeKind, reply: RpcReplyPort<ChargeReply> },
    /// Enode answered a charging call this actor made.
    ChargeSent { kind: ChargeKind, result: ChargeReply },
    /// An action changed state (its webhook, or a look this actor took).
    ActionUpdated(Box<ChargeAction>),
    /// Time to look at a pending action whose webhook has not come.
    PollAction { action_id: String, attempt: u32 },
    /// Fault injection for tests and chaos drills: the actor panics while handling it.
    Crash { reason: String },
}

pub struct VehicleActor;

pub struct VehicleArgs {
    pub context: Arc<VehicleContext>,
    /// The vehicle's board entry, already holding the state the actor starts from (its restored
    /// or last published snapshot, so a restarted actor resumes exactly where it was).
    pub entry: Arc<BoardEntry>,
}

pub struct VehicleActorState {
    context: Arc<VehicleContext>,
    entry: Arc<BoardEntry>,
    current: Arc<Snapshot>,
    /// Charging calls on their way to Enode, by kind, with everyone waiting for each answer.
    sending: Vec<(ChargeKind, Vec<RpcReplyPort<ChargeReply>>)>,
    /// A look at a pending action is scheduled (a timer that would be lost if the actor slept).
    following: bool,
    /// Everything the actor logs carries the vehicle id; telemetry also uses this span to tell an
    /// actor panic (reported once per incident by the supervisor) from any other panic.
    span: tracing::Span,
}

/// The name of every vehicle actor's span (see telemetry's panic handling).
pub const ACTOR_SPAN: &str = "vehicle_actor";

impl Actor for VehicleActor {
    type Msg = VehicleMsg;
    type State = VehicleActorState;
    type Arguments = VehicleArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<VehicleMsg>,
        args: VehicleArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let current = args.entry.snapshot();
        args.entry.mark_active(args.context.clock.now(), false);
        args.entry.set_status(ActorStatus::Running);
        let span = tracing::info_span!(
            "vehicle_actor",
            vehicle = %current.state.internal_id,
            enode_vehicle = %current.state.vehicle.id
        );
        Ok(VehicleActorState {
            context: args.context,
            entry: args.entry,
            current,
            sending: Vec::new(),
            following: false,
            span,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<VehicleMsg>,
        msg: VehicleMsg,
        state: &mut VehicleActorState,
    ) -> Result<(), ActorProcessingErr> {
        // Entered, not `instrument`ed: the guard is !Send, so an `.await` added below fails to
        // compile instead of leaving the span entered on the wrong task.
        let _span = state.span.clone().entered();
        if matches!(
            msg,
            VehicleMsg::Observe { .. }
                | VehicleMsg::CredentialsInvalidated
                | VehicleMsg::ActionUpdated(_)
                | VehicleMsg::Crash { .. }
        ) {
            // The kinds the fleet routes (and counts); see `BoardEntry::queued`.
            state.entry.dequeued();
        }
        let current = &state.current.state;
        let next = match msg {
            VehicleMsg::Observe { vehicle, source, kind } => {
                merge(current, vehicle, source, kind, state.context.clock.now())
            }
            VehicleMsg::CredentialsInvalidated if !current.relink_required => {
                Some(VehicleState { relink_required: true, ..(**current).clone() })
            }
            VehicleMsg::CredentialsInvalidated => None,
            VehicleMsg::Charge { kind, reply } => {
                state.charge(&myself, kind, reply);
                None
            }
            VehicleMsg::ChargeSent { kind, result } => state.charge_sent(&myself, kind, result),
            VehicleMsg::ActionUpdated(action) => with_action(current, *action),
            VehicleMsg::PollAction { action_id, attempt } => {
                state.poll_action(&myself, action_id, attempt);
                None
            }
            VehicleMsg::Crash { reason } => panic!("injected fault: {reason}"),
        };
        if let Some(next) = next {
            state.publish(next);
        }
        state.entry.mark_active(state.context.clock.now(), state.holds_work());
        Ok(())
    }
}

impl VehicleActorState {
    /// Work only this actor can finish: a charging call on its way (someone awaits the answer), or
    /// a timed look at a pending action. An actor put to sleep would lose both.
    fn holds_work(&self) -> bool {
        !self.sending.is_empty() || self.following
    }

    fn publish(&mut self, next: VehicleState) {
        let next = Arc::new(self.current.next(Arc::new(next)));
        self.entry.swap(Arc::clone(&next));
        self.context.write_behind.submit(VehicleWrite::Upsert(Arc::clone(&next.state)));
        self.context.notify(Some(&self.current), &next);
        self.current = next;
    }

    /// A charging command. A pending action of the same kind is reused, and so is a call of the
    /// same kind already on its way: pressing "start" twice starts charging once. The call runs
    /// on its own task so this vehicle keeps taking webhooks while Enode answers.
    fn charge(&mut self, myself: &ActorRef<VehicleMsg>, kind: ChargeKind, reply: RpcReplyPort<ChargeReply>) {
        if let Some(action) = &self.current.state.charge_action
            && action.kind == kind
            && action.state == ActionState::Pending
        {
            let _ = reply.send(Ok(action.clone()));
            return;
        }
        if let Some((_, waiting)) = self.sending.iter_mut().find(|(k, _)| *k == kind) {
            waiting.push(reply);
            return;
        }
        self.sending.push((kind, vec![reply]));
        let upstream = Arc::clone(&self.context.upstream);
        let enode_id = self.current.state.vehicle.id.clone();
        let myself = myself.clone();
        tokio::spawn(async move {
            let result = upstream.charge(&enode_id, kind).await;
            let _ = myself.cast(VehicleMsg::ChargeSent { kind, result });
        });
    }

    fn charge_sent(
        &mut self,
        myself: &ActorRef<VehicleMsg>,
        kind: ChargeKind,
        result: ChargeReply,
    ) -> Option<VehicleState> {
        if let Some(at) = self.sending.iter().position(|(k, _)| *k == kind) {
            let (_, waiting) = self.sending.swap_remove(at);
            for reply in waiting {
                let _ = reply.send(result.clone());
            }
        }
        let action = result.ok()?;
        if action.state == ActionState::Pending {
            self.schedule_poll(myself, action.id.clone(), 0);
        }
        with_action(&self.current.state, action)
    }

    fn poll_action(&mut self, myself: &ActorRef<VehicleMsg>, action_id: String, attempt: u32) {
        let still_pending = self
            .current
            .state
            .charge_action
            .as_ref()
            .is_some_and(|a| a.id == action_id && a.state == ActionState::Pending);
        if !still_pending {
            self.following = false;
            return;
        }
        let upstream = Arc::clone(&self.context.upstream);
        let me = myself.clone();
        let id = action_id.clone();
        tokio::spawn(async move {
            if let Ok(action) = upstream.charge_action(&id).await {
                let _ = me.cast(VehicleMsg::ActionUpdated(Box::new(action)));
            }
        });
        self.schedule_poll(myself, action_id, attempt + 1);
    }

    fn schedule_poll(&mut self, myself: &ActorRef<VehicleMsg>, action_id: String, attempt: u32) {
        let config = &self.context.commands;
        self.following = attempt < config.poll_attempts;
        if !self.following {
            return;
        }
        let delay = config.poll_after.saturating_mul(1 << attempt.min(10));
        myself.send_after(delay, move || VehicleMsg::PollAction { action_id, attempt });
    }
}

/// The state with `action` as the latest charging action, if it is newer than the one known.
fn with_action(current: &VehicleState, action: ChargeAction) -> Option<VehicleState> {
    newer_action(current.charge_action.as_ref(), &action)
        .then(|| VehicleState { charge_action: Some(action), ..current.clone() })
}

/// How far ahead of this service's clock a vendor's timestamp is believed when ordering states.
const FUTURE_SKEW: chrono::Duration = chrono::Duration::minutes(10);

/// Decides what an observation does to the current state: `None` when it changes nothing.
///
/// Newer wins by the vehicle's own timestamps (`lastSeen`, then `chargeState.lastUpdated`); an
/// equal time is applied (a repeat changes nothing visible, and confirms the data is current).
/// A `discovered` event for a vehicle already known carries no data (only `information`), so it
/// never overwrites state; it does show the user linked again.
pub fn merge(
    current: &VehicleState,
    incoming: Box<Vehicle>,
    source: DataSource,
    kind: ObservationKind,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<VehicleState> {
    match kind {
        ObservationKind::Discovered if current.relink_required => {
            Some(VehicleState { relink_required: false, ..current.clone() })
        }
        ObservationKind::Discovered => None,
        // Each side's clock is believed up to a little past the moment the service received it: a
        // vendor stamping 2099 wins for at most FUTURE_SKEW, then genuine updates apply again.
        ObservationKind::Updated
            if incoming.observed_at_bounded(now + FUTURE_SKEW)
                < current.vehicle.observed_at_bounded(current.received_at + FUTURE_SKEW) =>
        {
            tracing::debug!(vehicle = %incoming.id, "older vehicle state ignored");
            None
        }
        // Built field by field: `..current.clone()` would copy the old vehicle only to drop it,
        // on the path every webhook takes.
        ObservationKind::Updated => Some(VehicleState {
            internal_id: current.internal_id,
            user_id: current.user_id,
            vehicle: incoming,
            source,
            received_at: now,
            relink_required: false,
            charge_action: current.charge_action.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_state;
    use chrono::{Duration, Utc};

    #[test]
    fn older_state_changes_nothing() {
        let current = sample_state("v");
        let mut older = current.vehicle.clone();
        older.last_seen = older.last_seen.map(|t| t - Duration::minutes(5));
        older.charge_state.battery_level = Some(10.0);
        assert!(merge(&current, older, DataSource::Webhook, ObservationKind::Updated, Utc::now()).is_none());
    }

    #[test]
    fn newer_state_wins_and_clears_relink() {
        let mut current = sample_state("v");
        current.relink_required = true;
        let mut newer = current.vehicle.clone();
        newer.last_seen = newer.last_seen.map(|t| t + Duration::minutes(5));
        newer.charge_state.battery_level = Some(70.0);
        let now = Utc::now();
        let next = merge(&current, newer, DataSource::Refresh, ObservationKind::Updated, now).unwrap();
        assert_eq!(next.vehicle.charge_state.battery_level, Some(70.0));
        assert_eq!(next.source, DataSource::Refresh);
        assert_eq!(next.received_at, now);
        assert!(!next.relink_required);
        assert_eq!(next.internal_id, current.internal_id);
    }

    #[test]
    fn same_lastseen_newer_charge_state_wins() {
        let current = sample_state("v");
        let mut newer = current.vehicle.clone();
        newer.charge_state.last_updated = newer.charge_state.last_updated.map(|t| t + Duration::seconds(1));
        assert!(merge(&current, newer, DataSource::Webhook, ObservationKind::Updated, Utc::now()).is_some());
    }

    #[test]
    fn a_future_timestamp_does_not_freeze_the_vehicle() {
        let received = Utc::now();
        let mut current = sample_state("v");
        current.received_at = received;
        current.vehicle.last_seen = Some(received + Duration::days(365 * 70)); // a vendor clock bug
        current.vehicle.charge_state.last_updated = current.vehicle.last_seen;
        let genuine_at = |now: chrono::DateTime<Utc>| {
            let mut v = current.vehicle.clone();
            v.last_seen = Some(now);
            v.charge_state.last_updated = Some(now);
            v.charge_state.battery_level = Some(12.0);
            v
        };
        // Within the skew the future state still wins (it might be a clock a little ahead)...
        let soon = received + Duration::minutes(5);
        assert!(merge(&current, genuine_at(soon), DataSource::Webhook, ObservationKind::Updated, soon).is_none());
        // ...but not for longer: genuine updates apply again.
        let later = received + Duration::minutes(11);
        let next = merge(&current, genuine_at(later), DataSource::Webhook, ObservationKind::Updated, later).unwrap();
        assert_eq!(next.vehicle.charge_state.battery_level, Some(12.0));
    }

    #[test]
    fn discovered_never_blanks_known_data() {
        let current = sample_state("v");
        let mut discovered = Box::new(Vehicle { id: "v".into(), ..Vehicle::default() });
        discovered.last_seen = current.vehicle.last_seen.map(|t| t + Duration::hours(1));
        assert!(
            merge(&current, discovered.clone(), DataSource::Webhook, ObservationKind::Discovered, Utc::now()).is_none()
        );
        let relinking = VehicleState { relink_required: true, ..current };
        let next = merge(&relinking, discovered, DataSource::Webhook, ObservationKind::Discovered, Utc::now()).unwrap();
        assert!(!next.relink_required);
        assert_eq!(next.vehicle, relinking.vehicle);
    }
}
