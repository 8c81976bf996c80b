//! The actors reach the world only through these traits; `src/` implements them (SQL store,
//! Enode client, HTTP push), tests implement them in memory.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::snapshot::Snapshot;
use crate::state::VehicleState;

/// A failure at a port. The actors only need to know whether trying again later can help.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PortError {
    pub message: String,
    /// True when the same call may succeed later (database down, timeout).
    pub retryable: bool,
}

impl PortError {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: true }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: false }
    }
}

/// One change to persist. The write-behind keeps only the latest per vehicle.
#[derive(Clone, Debug)]
pub enum VehicleWrite {
    Upsert(Arc<VehicleState>),
    Delete { internal_id: Uuid },
}

impl VehicleWrite {
    pub fn internal_id(&self) -> Uuid {
        match self {
            VehicleWrite::Upsert(state) => state.internal_id,
            VehicleWrite::Delete { internal_id } => *internal_id,
        }
    }
}

/// Durable vehicle state: restored at start, written behind while running.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    async fn load_vehicles(&self) -> Result<Vec<VehicleState>, PortError>;
    /// Applies the batch atomically: all or nothing, so a retry never half-applies.
    async fn write_vehicles(&self, batch: &[VehicleWrite]) -> Result<(), PortError>;
}

/// Wall-clock time, injected so tests control it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Told about every new snapshot of every vehicle, from inside that vehicle's actor: calls for one
/// vehicle never overlap and arrive in order, so a listener may keep per-vehicle state without
/// locks of its own beyond a map. Must not block: queue work, do not perform it here.
pub trait ChangeListener: Send + Sync + 'static {
    /// `previous` is None when the vehicle was just created (or restored).
    fn on_change(&self, previous: Option<&Arc<Snapshot>>, current: &Arc<Snapshot>);
}
