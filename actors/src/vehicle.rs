//! `VehicleActor`: the only writer of one vehicle's state.
//!
//! Every change to a vehicle (webhook events, refresh results, credential loss) arrives here as a
//! message, is merged by the vehicle's own clock (newer wins, arrival order means nothing), and
//! leaves as a new snapshot on the board plus a write queued behind to the store.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::model::Vehicle;
use crate::ports::{ChangeListener, Clock, VehicleWrite};
use crate::snapshot::{ActorStatus, BoardEntry, Snapshot, SnapshotBoard};
use crate::state::{DataSource, VehicleState};
use crate::write_behind::WriteBehind;

/// What every vehicle actor shares: where to publish, where to persist, what time it is, and
/// who wants to hear about changes (push, charging sessions).
pub struct VehicleContext {
    pub board: Arc<SnapshotBoard>,
    pub write_behind: WriteBehind,
    pub clock: Arc<dyn Clock>,
    pub listeners: Vec<Arc<dyn ChangeListener>>,
}

impl VehicleContext {
    pub fn new(board: Arc<SnapshotBoard>, write_behind: WriteBehind, clock: Arc<dyn Clock>) -> Self {
        Self { board, write_behind, clock, listeners: Vec::new() }
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

#[derive(Debug)]
pub enum VehicleMsg {
    /// New data about the vehicle from Enode.
    Observe { vehicle: Box<Vehicle>, source: DataSource, kind: ObservationKind },
    /// Enode says the user's vendor credentials are invalid: the data is no longer live.
    CredentialsInvalidated,
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
}

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
        args.entry.set_status(ActorStatus::Running);
        Ok(VehicleActorState { context: args.context, entry: args.entry, current })
    }

    async fn handle(
        &self,
        _myself: ActorRef<VehicleMsg>,
        msg: VehicleMsg,
        state: &mut VehicleActorState,
    ) -> Result<(), ActorProcessingErr> {
        let current = &state.current.state;
        let next = match msg {
            VehicleMsg::Observe { vehicle, source, kind } => {
                merge(current, *vehicle, source, kind, state.context.clock.now())
            }
            VehicleMsg::CredentialsInvalidated if !current.relink_required => {
                Some(VehicleState { relink_required: true, ..(**current).clone() })
            }
            VehicleMsg::CredentialsInvalidated => None,
            VehicleMsg::Crash { reason } => panic!("injected fault: {reason}"),
        };
        if let Some(next) = next {
            state.publish(next);
        }
        Ok(())
    }
}

impl VehicleActorState {
    fn publish(&mut self, next: VehicleState) {
        let next = Arc::new(self.current.next(Arc::new(next)));
        self.entry.swap(Arc::clone(&next));
        self.context.write_behind.submit(VehicleWrite::Upsert(Arc::clone(&next.state)));
        self.context.notify(Some(&self.current), &next);
        self.current = next;
    }
}

/// Decides what an observation does to the current state: `None` when it changes nothing.
///
/// Newer wins by the vehicle's own timestamps (`lastSeen`, then `chargeState.lastUpdated`); an
/// equal time is applied (a repeat changes nothing visible, and confirms the data is current).
/// A `discovered` event for a vehicle already known carries no data (only `information`), so it
/// never overwrites state; it does show the user linked again.
pub fn merge(
    current: &VehicleState,
    incoming: Vehicle,
    source: DataSource,
    kind: ObservationKind,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<VehicleState> {
    match kind {
        ObservationKind::Discovered if current.relink_required => {
            Some(VehicleState { relink_required: false, ..current.clone() })
        }
        ObservationKind::Discovered => None,
        ObservationKind::Updated if incoming.observed_at() < current.vehicle.observed_at() => {
            tracing::debug!(vehicle = %incoming.id, "older vehicle state ignored");
            None
        }
        ObservationKind::Updated => Some(VehicleState {
            internal_id: current.internal_id,
            user_id: current.user_id,
            vehicle: incoming,
            source,
            received_at: now,
            relink_required: false,
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
    fn discovered_never_blanks_known_data() {
        let current = sample_state("v");
        let mut discovered = Vehicle { id: "v".into(), ..Vehicle::default() };
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
