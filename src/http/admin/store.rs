//! `/admin/store`: whether vehicle state is reaching the database. Answered from the
//! write-behind's counters and the SQLite checkpointer's last reading, never by a query, so it
//! answers at once while the database is down or busy, and polling it costs the store nothing
//! (the load harness polls it to see the write-behind catch up without reading the database).

use axum::Json;
use axum::extract::State;
use evconduit_actors::write_behind::WriteBehindStats;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Admin;
use crate::http::AppState;
use crate::http::openapi::ErrorBody;

#[derive(Debug, Serialize, ToSchema)]
pub struct StoreHealth {
    /// The vehicle-state write-behind: `backlog` (writes waiting), `in_flight` (in the batch being
    /// written; caught up means both are 0), `written`, `failed_batches` (retried), `dropped`
    /// (refused by the store, each logged), `last_flush_micros`.
    #[schema(value_type = Object)]
    pub write_behind: WriteBehindStats,
    /// SQLite only: the write-ahead log's length at its last checkpoint. One that keeps growing
    /// means long readers pin it or writes outrun the checkpoints.
    pub wal_bytes: Option<u64>,
}

/// The write-behind's queue and the store's write-ahead log.
#[utoipa::path(
    get,
    path = "/admin/store",
    operation_id = "admin_store",
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "Write-behind and WAL", body = StoreHealth),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an administrator's key", body = ErrorBody),
    )
)]
pub async fn store(State(app): State<AppState>, _admin: Admin) -> Json<StoreHealth> {
    Json(StoreHealth { write_behind: app.write_behind.stats(), wal_bytes: app.store.wal_bytes() })
}
