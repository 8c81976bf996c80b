//! In-memory implementations of the ports, for tests of this crate and of the service. They are
//! real implementations (a map behind a lock), not scripted mocks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::Vehicle;
use crate::ports::{Clock, PortError, StateStore, VehicleWrite};
use crate::state::{DataSource, VehicleState};

/// A `StateStore` in a map, with a switch to simulate an outage.
#[derive(Default)]
pub struct MemoryStore {
    vehicles: Mutex<HashMap<Uuid, VehicleState>>,
    down: AtomicBool,
    write_calls: AtomicUsize,
}

impl MemoryStore {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
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
        vehicle: sample_vehicle(enode_id),
        source: DataSource::Webhook,
        received_at: Utc::now(),
        relink_required: false,
    }
}
