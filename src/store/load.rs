//! Loading every vehicle at start, for both backends.
//!
//! The fleet is restored before the HTTP port opens, so this is on the start-up path, and most of
//! its time is spent parsing each vehicle's JSON, not in the database. So the backends hand over
//! rows with the JSON still as text, and the parsing runs in chunks on the blocking pool: on
//! several cores at once, and while later rows are still arriving. PostgreSQL's rows are gathered
//! into chunks here; SQLite hands over whole pages of rows, a chunk each (sqlite_restore.rs).

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
pub(crate) const CHUNK: usize = 1_000;

type Job = JoinHandle<Result<Vec<VehicleState>, StoreError>>;

/// Parses every row of `rows`, in parallel, keeping the database's order.
pub(crate) async fn decode_all(
    rows: impl Stream<Item = Result<RawVehicle, StoreError>>,
) -> Result<Vec<VehicleState>, StoreError> {
    let chunks = rows.try_chunks(CHUNK).map_err(|e| e.1);
    decode_chunks(chunks, |chunk: Vec<RawVehicle>| chunk.into_iter().map(decode).collect()).await
}

/// Runs `decode` over each chunk of `chunks` on the blocking pool, keeping their order.
pub(crate) async fn decode_chunks<C: Send + 'static>(
    chunks: impl Stream<Item = Result<C, StoreError>>,
    decode: fn(C) -> Result<Vec<VehicleState>, StoreError>,
) -> Result<Vec<VehicleState>, StoreError> {
    // One job per core in flight: more would only queue for the same cores and hold more rows.
    let max_in_flight = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut chunks = std::pin::pin!(chunks);
    let mut in_flight: VecDeque<Job> = VecDeque::with_capacity(max_in_flight);
    let mut vehicles = Vec::new();
    while let Some(chunk) = chunks.try_next().await? {
        if in_flight.len() == max_in_flight
            && let Some(oldest) = in_flight.pop_front()
        {
            vehicles.extend(finish(oldest).await?);
        }
        in_flight.push_back(tokio::task::spawn_blocking(move || decode(chunk)));
    }
    for job in in_flight {
        vehicles.extend(finish(job).await?);
    }
    Ok(vehicles)
}

async fn finish(job: Job) -> Result<Vec<VehicleState>, StoreError> {
    job.await.map_err(|_| StoreError::Corrupt("parsing a vehicle panicked".into()))?
}

fn decode(row: RawVehicle) -> Result<VehicleState, StoreError> {
    let columns = VehicleColumns {
        internal_id: row.internal_id,
        user_id: row.user_id,
        data: &row.data,
        source: &row.source,
        received_at: row.received_at,
        relink_required: row.relink_required,
    };
    columns.decode()
}

/// One `vehicles` row's columns, the JSON not yet parsed, borrowed from wherever the row arrived.
pub(crate) struct VehicleColumns<'a> {
    pub internal_id: Uuid,
    pub user_id: Uuid,
    pub data: &'a str,
    pub source: &'a str,
    pub received_at: DateTime<Utc>,
    pub relink_required: bool,
}

impl VehicleColumns<'_> {
    pub(crate) fn decode(&self) -> Result<VehicleState, StoreError> {
        let named = rows::in_vehicle(self.internal_id);
        let vehicle: Box<Vehicle> = serde_json::from_str(self.data)
            .map_err(|e| named(StoreError::Corrupt(format!("data is not a vehicle: {e}"))))?;
        Ok(VehicleState {
            internal_id: self.internal_id,
            user_id: self.user_id,
            vehicle,
            source: rows::source(self.source).map_err(&named)?,
            received_at: self.received_at,
            relink_required: self.relink_required,
            // Not persisted: after a restart the vehicle's own charge state tells what happened.
            charge_action: None,
        })
    }
}
