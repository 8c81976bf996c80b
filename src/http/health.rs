//! `GET /healthz` (the process is alive) and `GET /readyz` (it can do its job: the store answers
//! and the fleet has been restored).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = Object)))]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

/// Readiness: the store answers, the fleet is restored, and the service is not shutting down.
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
    let store_ok = app.store.ping().await.is_ok();
    let restored = app.fleet.is_restored();
    // A silent webhook degrades freshness, not reads: reported, but still ready.
    let webhook = app.subscription.as_ref().map_or("unmanaged", |s| s.status().state);
    let ready = !draining && store_ok && restored;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if draining { "draining" } else if ready { "ready" } else { "not_ready" },
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
