//! Charging sessions, detected by the service itself from each vehicle's state stream (Enode
//! has no sessions to ask for). `SessionDetector` is a `ChangeListener`: every new snapshot of a
//! vehicle goes through that vehicle's `Tracker` (the state machine, in `tracker`), and what it
//! decides is written to the store behind (`SessionWriter`), never waited for.

mod record;
mod tracker;
mod writer;

use std::sync::Arc;

use dashmap::DashMap;
use uuid::Uuid;

pub use record::{ChargingSession, ElectricityRate, SessionWrite};
pub use tracker::{Observation, Owner, Plug, Step, Tracker};
pub use writer::SessionWriter;

use crate::ports::{ChangeListener, Clock, PortError, SessionStore};
use crate::snapshot::Snapshot;
use crate::state::DataSource;

pub struct SessionDetector {
    /// A tracker per vehicle with an open session (internal id), none for the others: a vehicle
    /// without one has nothing to remember, and an empty tracker (~350 bytes) for each of
    /// 100 000 vehicles was ~45 MB of table and a sixth of the restore loop. Calls for one
    /// vehicle never overlap (they come from its actor), so the map's shard lock is the only
    /// lock needed, and a tracker looked for and not found can be inserted after its first step.
    trackers: DashMap<Uuid, Tracker>,
    /// Every user's electricity rate, kept in memory so closing a session needs no query.
    rates: DashMap<Uuid, ElectricityRate>,
    writer: SessionWriter,
    clock: Arc<dyn Clock>,
}

impl SessionDetector {
    /// Restores the open sessions and the rates. Call before the fleet is restored, so a vehicle
    /// that was charging at the restart continues its session.
    pub async fn load(store: Arc<dyn SessionStore>, clock: Arc<dyn Clock>) -> Result<Self, PortError> {
        let trackers = DashMap::new();
        for session in store.load_open_sessions().await? {
            trackers.insert(session.vehicle_id, Tracker::resume(session));
        }
        let rates = store.load_electricity_rates().await?.into_iter().collect();
        tracing::info!(open_sessions = trackers.len(), "charging sessions restored");
        Ok(Self { trackers, rates, writer: SessionWriter::new(store), clock })
    }

    /// The writer, to run on its own task and to flush at shutdown.
    pub fn writer(&self) -> &SessionWriter {
        &self.writer
    }

    /// Sets a user's rate (already stored by the caller): sessions ending from now on carry it.
    pub fn set_rate(&self, user_id: Uuid, rate: ElectricityRate) {
        self.rates.insert(user_id, rate);
    }

    pub fn rate(&self, user_id: Uuid) -> Option<ElectricityRate> {
        self.rates.get(&user_id).map(|r| r.clone())
    }

    /// The vehicle's open session, if it is charging now.
    pub fn open_session(&self, vehicle_id: Uuid) -> Option<ChargingSession> {
        self.trackers.get(&vehicle_id).and_then(|t| t.open_session().cloned())
    }
}

impl ChangeListener for SessionDetector {
    fn on_change(&self, previous: Option<&Arc<Snapshot>>, current: &Arc<Snapshot>) {
        let state = &current.state;
        let obs = Observation::of(state);
        let owner = Owner::of(state);
        let now = self.clock.now();
        let restored = previous.is_none() && state.source == DataSource::Restored;
        let decide = |tracker: &mut Tracker| {
            if restored {
                tracker.restored(&obs, &owner, now)
            } else {
                tracker.observe(&obs, &owner, now, || self.rate(state.user_id))
            }
        };
        let id = state.internal_id;
        let step = match self.trackers.get_mut(&id) {
            Some(mut tracker) => {
                let step = decide(&mut tracker);
                let closed = tracker.open_session().is_none();
                drop(tracker);
                if closed {
                    self.trackers.remove(&id);
                }
                step
            }
            None => {
                let mut tracker = Tracker::default();
                let step = decide(&mut tracker);
                if tracker.open_session().is_some() {
                    self.trackers.insert(id, tracker);
                }
                step
            }
        };
        match step {
            Step::Nothing => {}
            Step::Progress(session) => self.writer.submit(SessionWrite::Upsert(Box::new(session))),
            Step::Closed(session) => {
                tracing::info!(
                    vehicle = %session.vehicle_id,
                    session = %session.id,
                    energy_kwh = ?session.energy_added_kwh,
                    "charging session ended"
                );
                self.writer.submit(SessionWrite::Upsert(Box::new(session)));
            }
            Step::Discard(id) => self.writer.submit(SessionWrite::Delete(id)),
        }
    }
}

#[cfg(test)]
#[path = "sessions/detector_tests.rs"]
mod tests;
