//! `GET /healthz` (the process is alive) and `GET /readyz` (it can do its job: the store answers
//! and the fleet has been restored).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    let store_ok = app.store.ping().await.is_ok();
    let restored = app.fleet.is_restored();
    let ready = store_ok && restored;
    // A silent webhook degrades freshness, not reads: reported, but still ready.
    let webhook = app.subscription.as_ref().map_or("unmanaged", |s| s.status().state);
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
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
