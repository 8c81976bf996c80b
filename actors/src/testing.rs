//! In-memory implementations of the ports, and a poll for work done on other tasks, for tests of
//! this crate and of the service. The ports are real implementations (a map behind a lock), not
//! scripted mocks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::Vehicle;
use crate::ports::{Clock, PortError, StateStore, VehicleWrite};
use crate::state::{DataSource, VehicleState};

mod eventually;
pub use eventually::{eventually, eventually_here, eventually_some};

/// A `StateStore` in a map, with a switch to simulate an outage.
#[derive(Default)]
pub struct MemoryStore {
    vehicles: Mutex<HashMap<Uuid, VehicleState>>,
    down: AtomicBool,
    write_calls: AtomicUsize,
    /// Vehicles whose writes are refused outright (as a database refuses a row it cannot take).
    refused: Mutex<std::collections::HashSet<Uuid>>,
}

impl MemoryStore {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Refuse every write of this vehicle with a permanent error.
    pub fn refuse(&self, id: Uuid) {
        self.refused.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
    }

    pub fn write_calls(&self) -> usize {
        self.write_calls.load(Ordering::SeqCst)
    }

    pub fn vehicle(&self, id: Uuid) -> Option<VehicleState> {
        self.lock().get(&id).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub fn insert(&self, state: VehicleState) {
        self.lock().insert(state.internal_id, state);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, VehicleState>> {
        self.vehicles.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn load_vehicles(&self) -> Result<Vec<VehicleState>, PortError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PortError::retryable("memory store is down"));
        }
        Ok(self.lock().values().cloned().collect())
    }

    async fn write_vehicles(&self, batch: &[VehicleWrite]) -> Result<(), PortError> {
        self.write_calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(PortError::retryable("memory store is down"));
        }
        let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if batch.iter().any(|w| refused.contains(&w.internal_id())) {
            return Err(PortError::permanent("memory store refuses this vehicle"));
        }
        let mut map = self.lock();
        for write in batch {
            match write {
                VehicleWrite::Upsert(state) => {
                    map.insert(state.internal_id, (**state).clone());
                }
                VehicleWrite::Delete { internal_id } => {
                    map.remove(internal_id);
                }
            }
        }
        Ok(())
    }
}

/// A clock tests move by hand.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The fixture vehicle (tests/fixtures/vehicle.json) with the given Enode id.
pub fn sample_vehicle(enode_id: &str) -> Vehicle {
    let mut vehicle: Vehicle = serde_json::from_str(include_str!("../tests/fixtures/vehicle.json"))
        .unwrap_or_else(|e| panic!("fixture vehicle must parse: {e}"));
    vehicle.id = enode_id.to_owned();
    vehicle
}

/// A state for the fixture vehicle under a fresh internal id and owner.
pub fn sample_state(enode_id: &str) -> VehicleState {
    VehicleState {
        internal_id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        vehicle: Box::new(sample_vehicle(enode_id)),
        source: DataSource::Webhook,
        received_at: Utc::now(),
        relink_required: false,
        charge_action: None,
    }
}

/// An in-memory Enode for the actors' own tests: holds vehicles and actions, counts calls, and
/// can be told to fail. (The service's tests use the real simulator over HTTP.)
#[derive(Default)]
pub struct MemoryUpstream {
    vehicles: Mutex<HashMap<String, Vehicle>>,
    actions: Mutex<HashMap<String, crate::model::ChargeAction>>,
    failure: Mutex<Option<crate::ports::UpstreamError>>,
    fetches: Mutex<Vec<String>>,
    charges: AtomicUsize,
    action_reads: AtomicUsize,
}

impl MemoryUpstream {
    pub fn put_vehicle(&self, vehicle: Vehicle) {
        self.vehicles.lock().unwrap_or_else(|p| p.into_inner()).insert(vehicle.id.clone(), vehicle);
    }

    /// Every following call fails with `error` (None: calls succeed again).
    pub fn fail_with(&self, error: Option<crate::ports::UpstreamError>) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    /// Enode ids fetched, in order.
    pub fn fetched(&self) -> Vec<String> {
        self.fetches.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn charges(&self) -> usize {
        self.charges.load(Ordering::SeqCst)
    }

    pub fn action_reads(&self) -> usize {
        self.action_reads.load(Ordering::SeqCst)
    }

    /// Moves an action to a final state, as Enode does when the car obeys.
    pub fn resolve(&self, action_id: &str, state: crate::model::ActionState) -> Option<crate::model::ChargeAction> {
        let mut actions = self.actions.lock().unwrap_or_else(|p| p.into_inner());
        let action = actions.get_mut(action_id)?;
        action.state = state;
        action.updated_at = Utc::now();
        action.completed_at = Some(action.updated_at);
        Some(action.clone())
    }

    fn check(&self) -> Result<(), crate::ports::UpstreamError> {
        match &*self.failure.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl crate::ports::Upstream for MemoryUpstream {
    async fn fetch_vehicle(&self, enode_id: &str) -> Result<Vehicle, crate::ports::UpstreamError> {
        self.fetches.lock().unwrap_or_else(|p| p.into_inner()).push(enode_id.to_owned());
        self.check()?;
        self.vehicles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(enode_id)
            .cloned()
            .ok_or(crate::ports::UpstreamError::NotFound)
    }

    async fn charge(
        &self,
        enode_id: &str,
        kind: crate::model::ChargeKind,
    ) -> Result<crate::model::ChargeAction, crate::ports::UpstreamError> {
        self.charges.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        let now = Utc::now();
        let action = crate::model::ChargeAction {
            id: Uuid::new_v4().to_string(),
            user_id: "user".into(),
            created_at: now,
            updated_at: now,
            completed_at: None,
            state: crate::model::ActionState::Pending,
            target_id: enode_id.to_owned(),
            target_type: "vehicle".into(),
            kind,
            failure_reason: None,
            extra: Default::default(),
        };
        self.actions.lock().unwrap_or_else(|p| p.into_inner()).insert(action.id.clone(), action.clone());
        Ok(action)
    }

    async fn charge_action(&self, action_id: &str) -> Result<crate::model::ChargeAction, crate::ports::UpstreamError> {
        self.action_reads.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.actions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(action_id)
            .cloned()
            .ok_or(crate::ports::UpstreamError::NotFound)
    }
}

/// An `Audience` with fixed tiers and push targets.
#[derive(Default)]
pub struct FixedAudience {
    pub tiers: Mutex<HashMap<Uuid, crate::tier::Tier>>,
    pub pushed: Mutex<std::collections::HashSet<Uuid>>,
}

impl crate::ports::Audience for FixedAudience {
    fn tier(&self, user_id: Uuid) -> crate::tier::Tier {
        self.tiers.lock().unwrap_or_else(|p| p.into_inner()).get(&user_id).copied().unwrap_or(crate::tier::Tier::Pro)
    }

    fn has_push_target(&self, internal_id: Uuid) -> bool {
        self.pushed.lock().unwrap_or_else(|p| p.into_inner()).contains(&internal_id)
    }
}

/// A `SessionStore` in a map.
#[derive(Default)]
pub struct MemorySessionStore {
    sessions: Mutex<HashMap<Uuid, crate::sessions::ChargingSession>>,
    rates: Mutex<HashMap<Uuid, crate::sessions::ElectricityRate>>,
}

impl MemorySessionStore {
    /// Every session, by start time.
    pub fn sessions(&self) -> Vec<crate::sessions::ChargingSession> {
        let mut all: Vec<_> = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        all.sort_by_key(|s| s.start_time);
        all
    }

    pub fn set_rate(&self, user_id: Uuid, rate: crate::sessions::ElectricityRate) {
        self.rates.lock().unwrap_or_else(|p| p.into_inner()).insert(user_id, rate);
    }
}

#[async_trait]
impl crate::ports::SessionStore for MemorySessionStore {
    async fn load_open_sessions(&self) -> Result<Vec<crate::sessions::ChargingSession>, PortError> {
        Ok(self.sessions().into_iter().filter(|s| s.is_open()).collect())
    }

    async fn load_electricity_rates(&self) -> Result<Vec<(Uuid, crate::sessions::ElectricityRate)>, PortError> {
        Ok(self.rates.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (*k, v.clone())).collect())
    }

    async fn write_sessions(&self, batch: &[crate::sessions::SessionWrite]) -> Result<(), PortError> {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        for write in batch {
            match write {
                crate::sessions::SessionWrite::Upsert(session) => {
                    let mut session = (**session).clone();
                    // As the SQL stores do: an upsert keeps the odometer of a stored session
                    // (the user may have corrected it).
                    if let Some(stored) = map.get(&session.id) {
                        session.odometer_km = stored.odometer_km;
                    }
                    map.insert(session.id, session);
                }
                crate::sessions::SessionWrite::Delete(id) => {
                    map.remove(id);
                }
            }
        }
        Ok(())
    }
}

/// A `PushStore` in a map, with a switch to simulate an outage.
#[derive(Default)]
pub struct MemoryPushStore {
    targets: Mutex<HashMap<Uuid, crate::push::PushTargetRecord>>,
    down: AtomicBool,
}

impl MemoryPushStore {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn target(&self, vehicle_id: Uuid) -> Option<crate::push::PushTargetRecord> {
        self.lock().get(&vehicle_id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, crate::push::PushTargetRecord>> {
        self.targets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(&self) -> Result<(), PortError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PortError::retryable("memory store is down"));
        }
        Ok(())
    }
}

#[async_trait]
impl crate::ports::PushStore for MemoryPushStore {
    async fn load_push_targets(&self) -> Result<Vec<crate::push::PushTargetRecord>, PortError> {
        self.check()?;
        Ok(self.lock().values().cloned().collect())
    }

    async fn save_push_registration(&self, registration: &crate::push::PushRegistration) -> Result<(), PortError> {
        self.check()?;
        let mut map = self.lock();
        map.retain(|vehicle, t| {
            *vehicle == registration.vehicle_id
                || t.registration.user_id != registration.user_id
                || t.registration.webhook_id != registration.webhook_id
        });
        let record = map.entry(registration.vehicle_id).or_insert_with(|| crate::push::PushTargetRecord {
            registration: registration.clone(),
            health: crate::push::PushHealth::default(),
            pending: None,
            settled_version: 0,
        });
        if record.registration.url != registration.url {
            record.health = crate::push::PushHealth::default();
        }
        record.registration = registration.clone();
        Ok(())
    }

    async fn save_push_pending(&self, vehicle_id: Uuid, pending: &crate::push::PendingPush) -> Result<(), PortError> {
        self.check()?;
        if let Some(record) = self.lock().get_mut(&vehicle_id)
            && record.pending.as_ref().is_none_or(|p| p.version < pending.version)
            && pending.version > record.settled_version
        {
            record.pending = Some(pending.clone());
        }
        Ok(())
    }

    async fn record_push_attempt(
        &self,
        vehicle_id: Uuid,
        settled: Option<u64>,
        health: &crate::push::PushHealth,
    ) -> Result<(), PortError> {
        self.check()?;
        if let Some(record) = self.lock().get_mut(&vehicle_id) {
            record.health = health.clone();
            if let Some(version) = settled {
                record.settled_version = record.settled_version.max(version);
                if record.pending.as_ref().is_some_and(|p| p.version <= record.settled_version) {
                    record.pending = None;
                }
            }
        }
        Ok(())
    }
}
