//! `POST /api/charging/{id}` (and the `/api/ha`, `/api/v1/ha` aliases): start or stop charging.
//!
//! The command goes to the vehicle's actor, which calls Enode and follows the action to its end
//! (webhook, or a bounded number of looks); this answers as soon as Enode has the action.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use evconduit_actors::model::ChargeKind;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::ha::owned_entry;
use super::openapi::{ErrorBody, alias};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::new().routes(routes!(charge));
    let router = alias(router, "/api/ha/charging/{vehicle_id}", "/api/charging/{vehicle_id}", post(charge));
    alias(router, "/api/v1/ha/charging/{vehicle_id}", "/api/charging/{vehicle_id}", post(charge))
}

/// Start or stop charging a vehicle.
///
/// Answers once Enode has accepted the action; the vehicle's actor follows it to its end.
#[utoipa::path(
    post,
    path = "/api/charging/{vehicle_id}",
    tag = "home-assistant",
    params(("vehicle_id" = String, Path, description = "Enode vehicle id or internal id")),
    request_body(content = Object, description = r#"{"action": "START"} or {"action": "STOP"}"#),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Enode's action: status, vehicle ids, action, enode_response", body = Object),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "The caller's tier may not charge", body = ErrorBody),
        (status = 404, description = "No such vehicle for this caller", body = ErrorBody),
        (status = 422, description = "Not START or STOP", body = ErrorBody),
        (status = 503, description = "Enode is not configured or not answering", body = ErrorBody),
    )
)]
async fn charge(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(vehicle_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let kind = parse_action(&body)?;
    app.commands.check(caller.user.id)?;
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
