//! `POST /api/charging/{id}` (and the `/api/ha`, `/api/v1/ha` aliases): start or stop charging.
//!
//! The command goes to the vehicle's actor, which calls Enode and follows the action to its end
//! (webhook, or a bounded number of looks); this answers as soon as Enode has the action.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use evconduit_actors::model::ChargeKind;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::ha::owned_entry;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/charging/{vehicle_id}", post(charge))
        .route("/api/ha/charging/{vehicle_id}", post(charge))
        .route("/api/v1/ha/charging/{vehicle_id}", post(charge))
}

async fn charge(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(vehicle_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let kind = parse_action(&body)?;
    let tier = caller.user.effective_tier(app.clock.now());
    if !app.config.may_charge(tier) {
        return Err(ApiError::Forbidden(format!(
            "starting and stopping charging is not included in the {tier} tier (allowed: {})",
            app.config.charging_tiers.join(", ")
        )));
    }
    let entry = owned_entry(&app, &caller.user.id, &vehicle_id)?;
    let enode_id = entry.snapshot().state.vehicle.id.clone();
    let timeout = Duration::from_millis(app.config.command_timeout_ms);
    let action = app.fleet.charge(&enode_id, kind, timeout).await?;
    Ok(Json(json!({
        "status": action.state,
        "vehicle_id": vehicle_id,
        "enode_vehicle_id": enode_id,
        "action": kind.as_str(),
        "enode_response": action,
    })))
}

/// `{"action": "START" | "STOP"}`; anything else is 422 with a message saying what is expected.
fn parse_action(body: &[u8]) -> Result<ChargeKind, ApiError> {
    let expected = r#"expected a JSON body {"action": "START"} or {"action": "STOP"}"#;
    let value: Value = serde_json::from_slice(body).map_err(|_| ApiError::Unprocessable(expected.into()))?;
    match value.get("action").and_then(Value::as_str).map(str::to_ascii_uppercase).as_deref() {
        Some("START") => Ok(ChargeKind::Start),
        Some("STOP") => Ok(ChargeKind::Stop),
        _ => Err(ApiError::Unprocessable(expected.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_start_and_stop() {
        assert!(matches!(parse_action(br#"{"action":"START"}"#), Ok(ChargeKind::Start)));
        assert!(matches!(parse_action(br#"{"action":"stop"}"#), Ok(ChargeKind::Stop)));
        for bad in [&br#"{"action":"PAUSE"}"#[..], b"{}", b"[]", b"nope", b""] {
            assert!(matches!(parse_action(bad), Err(ApiError::Unprocessable(_))));
        }
    }
}
