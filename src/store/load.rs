//! Loading every vehicle at start, for both backends.
//!
//! The fleet is restored before the HTTP port opens, so this is on the start-up path, and most of
//! its time is spent parsing each vehicle's JSON, not in the database. So the backends hand over
//! rows with the JSON still as text, and the parsing runs in chunks on the blocking pool: on
//! several cores at once, and while later rows are still arriving.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use evconduit_actors::model::Vehicle;
use evconduit_actors::state::VehicleState;
use futures::{Stream, TryStreamExt};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::StoreError;
use super::rows;

/// A `vehicles` row as the database returns it: the JSON not yet parsed.
pub(crate) struct RawVehicle {
    pub internal_id: Uuid,
    pub user_id: Uuid,
    pub data: String,
    pub source: String,
    pub received_at: DateTime<Utc>,
    pub relink_required: bool,
}

/// Rows per parsing job: enough that a job's overhead does not matter, few enough that the
/// first jobs start while the database is still sending.
const CHUNK: usize = 1_000;

type Job = JoinHandle<Result<Vec<VehicleState>, StoreError>>;

/// Parses every row of `rows`, in parallel, keeping the database's order.
pub(crate) async fn decode_all(
    rows: impl Stream<Item = Result<RawVehicle, StoreError>>,
) -> Result<Vec<VehicleState>, StoreError> {
    // One job per core in flight: more would only queue for the same cores and hold more rows.
    let max_in_flight = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut rows = std::pin::pin!(rows);
    let mut in_flight: VecDeque<Job> = VecDeque::with_capacity(max_in_flight);
    let mut vehicles = Vec::new();
    let mut chunk = Vec::with_capacity(CHUNK);

    while let Some(row) = rows.try_next().await? {
        chunk.push(row);
        if chunk.len() == CHUNK {
            if in_flight.len() == max_in_flight
                && let Some(oldest) = in_flight.pop_front()
            {
                vehicles.extend(finish(oldest).await?);
            }
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            in_flight.push_back(tokio::task::spawn_blocking(move || decode_chunk(full)));
        }
    }
    if !chunk.is_empty() {
        in_flight.push_back(tokio::task::spawn_blocking(move || decode_chunk(chunk)));
    }
    for job in in_flight {
        vehicles.extend(finish(job).await?);
    }
    Ok(vehicles)
}

async fn finish(job: Job) -> Result<Vec<VehicleState>, StoreError> {
    job.await.map_err(|_| StoreError::Corrupt("parsing a vehicle panicked".into()))?
}

fn decode_chunk(chunk: Vec<RawVehicle>) -> Result<Vec<VehicleState>, StoreError> {
    chunk.into_iter().map(decode).collect()
}

fn decode(row: RawVehicle) -> Result<VehicleState, StoreError> {
    let named = rows::in_vehicle(row.internal_id);
    let vehicle: Vehicle = serde_json::from_str(&row.data)
        .map_err(|e| named(StoreError::Corrupt(format!("data is not a vehicle: {e}"))))?;
    Ok(VehicleState {
        internal_id: row.internal_id,
        user_id: row.user_id,
        vehicle,
        source: rows::source(&row.source).map_err(&named)?,
        received_at: row.received_at,
        relink_required: row.relink_required,
        // Not persisted: after a restart the vehicle's own charge state tells what happened.
        charge_action: None,
    })
}
