//! What a vehicle actor owns, and what is persisted of it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{ChargeAction, Vehicle};

/// Where the current data came from. Told to readers so they can judge it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataSource {
    /// An Enode webhook event.
    Webhook,
    /// A refresh this service asked Enode for.
    Refresh,
    /// Loaded from the store at start; nothing newer has arrived since.
    Restored,
}

impl DataSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DataSource::Webhook => "webhook",
            DataSource::Refresh => "refresh",
            DataSource::Restored => "restored",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "webhook" => Some(DataSource::Webhook),
            "refresh" => Some(DataSource::Refresh),
            "restored" => Some(DataSource::Restored),
            _ => None,
        }
    }
}

/// One vehicle's live state: the Enode vehicle plus what the service knows about it.
/// This is also the persisted record (the store writes it behind, the fleet restores it).
#[derive(Clone, Debug, PartialEq)]
pub struct VehicleState {
    /// The service's own id: stable, never reused, what old HA installs hold.
    pub internal_id: Uuid,
    /// The owner. A user's id is also their Enode user id.
    pub user_id: Uuid,
    /// Boxed: a `Vehicle` is over a kilobyte, and a webhook's arrives boxed from the parse (see
    /// `enode::events`). Taken over as it is, each new state is a small allocation plus a pointer
    /// instead of two more copies of the whole vehicle, into the state and into its `Arc`, the
    /// latter too large for the allocator's per-thread cache.
    pub vehicle: Box<Vehicle>,
    pub source: DataSource,
    /// When the service last received this vehicle's data from Enode (webhook or refresh).
    pub received_at: DateTime<Utc>,
    /// Enode said the user's vendor credentials are invalid: the data is no longer live until the
    /// user relinks (a new discovered/updated event clears it).
    pub relink_required: bool,
    /// The most recent charging command's action at Enode (pending or final). Lives in memory
    /// only: after a restart the vehicle's own charge state tells what happened.
    pub charge_action: Option<ChargeAction>,
}

impl VehicleState {
    pub fn enode_id(&self) -> &str {
        &self.vehicle.id
    }
}

/// A new vehicle's internal id: a UUIDv7, ordered by creation time (and strictly increasing within
/// the process). Rows are inserted in creation order, so id order is storage order: the
/// write-behind sweeps its queue in id order (write_behind/pending.rs) and writes neighbouring rows
/// together. A random (v4) id put every write of a large backlog on a different page. Vehicles
/// stored before ids were v7 keep their v4 ids and are written in no particular order, as before.
/// The id tells when the vehicle was linked, to its owner, who knows that anyway; it grants nothing
/// (every request is checked against its key's user).
pub fn new_internal_id() -> Uuid {
    Uuid::now_v7()
}

/// Whether `incoming` should replace `current` as the vehicle's latest action. The same action
/// only moves forward in time and never leaves a final state; a different action replaces it
/// when it was created later.
pub fn newer_action(current: Option<&ChargeAction>, incoming: &ChargeAction) -> bool {
    match current {
        None => true,
        Some(current) if current.id == incoming.id => {
            (!current.state.is_final() || incoming.state.is_final()) && incoming.updated_at >= current.updated_at
        }
        Some(current) => incoming.created_at >= current.created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_internal_ids_sort_in_the_order_they_were_made() {
        let ids: Vec<Uuid> = (0..10_000).map(|_| new_internal_id()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "many within one millisecond, still increasing");
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
    }
}
