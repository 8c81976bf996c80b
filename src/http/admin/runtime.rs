//! `/admin/runtime`: how late the async runtime has run ready work since start (see
//! `runtime_lag`). Answered from counters, so polling it costs nothing: the load harness reads
//! it around each read phase to tell the service's own stalls from the machine's.

use axum::Json;
use axum::extract::State;

use super::auth::Admin;
use crate::http::AppState;
use crate::http::openapi::ErrorBody;
use crate::runtime_lag::RuntimeLagStats;

/// The runtime's lateness: every HA read waits at least this long when it is late.
#[utoipa::path(
    get,
    path = "/admin/runtime",
    operation_id = "admin_runtime",
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "Lateness of the runtime's canary, since start", body = RuntimeLagStats),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an administrator's key", body = ErrorBody),
    )
)]
pub async fn runtime(State(app): State<AppState>, _admin: Admin) -> Json<RuntimeLagStats> {
    Json(app.runtime_lag.stats())
}
