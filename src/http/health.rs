//! `GET /healthz` (the process is alive) and `GET /readyz` (it can serve: the fleet has been
//! restored and it is not shutting down).
//!
//! The store is reported, not required: HA's reads are answered from memory, and the contract asks
//! for them to keep working while the database is down. A readiness check that failed with the
//! database would make a load balancer pull every instance at once and turn a database blip into
//! a total outage for every HA install.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

/// A readiness probe must answer quickly even when the database hangs.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = Object)))]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

/// Readiness: the fleet is restored and the service is not shutting down. The store and the
/// Enode webhook are reported (`degraded` when either is unwell), not required.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Object),
        (status = 503, description = "Not ready, or draining for shutdown", body = Object),
    )
)]
async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    // Draining first: a shutting-down instance must leave the load balancer even if all is well.
    let draining = app.draining.load(std::sync::atomic::Ordering::Acquire);
    let store_ok = matches!(tokio::time::timeout(PING_TIMEOUT, app.store.ping()).await, Ok(Ok(())));
    let restored = app.fleet.is_restored();
    // A silent webhook degrades freshness, not reads: reported, but still ready.
    let webhook = app.subscription.as_ref().map_or("unmanaged", |s| s.status().state);
    let ready = !draining && restored;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let degraded = !store_ok || webhook == "degraded";
    let body = json!({
        "status": match (draining, ready, degraded) {
            (true, _, _) => "draining",
            (_, false, _) => "not_ready",
            (_, true, true) => "degraded",
            (_, true, false) => "ready",
        },
        "checks": {
            "store": if store_ok { "ok" } else { "unreachable" },
            "fleet": if restored { "restored" } else { "restoring" },
            "webhook": webhook,
            "enode": if app.enode.is_some() { "configured" } else { "not_configured" },
        },
        "vehicles": app.fleet.board().len(),
    });
    (status, Json(body))
}
