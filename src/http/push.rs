//! Push registration for Home Assistant (contract: "Push to Home Assistant"). HA registers its
//! webhook for each configured vehicle on every start; the service then pushes that vehicle's
//! changes to it (see the actors' `PushOutbox`). Registrations are kept: the old client deleted
//! them at every reboot, the current one no longer does, and a delete is answered but ignored.

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use evconduit_actors::ports::PortError;
use evconduit_actors::push::{PushRegistration, PushTargetView};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::ha::owned_entry;
use super::json::JsonBody;
use super::openapi::{ErrorBody, alias};
use crate::push::{masked, webhook_url};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::new().routes(routes!(register, keep)).routes(routes!(status));
    // Older clients use the `/api/v1/ha` prefix for the same calls.
    let router = alias(router, "/api/v1/ha/webhook/register", "/api/ha/webhook/register", post(register).delete(keep));
    alias(router, "/api/v1/ha/webhook/status", "/api/ha/webhook/status", get(status))
}

#[derive(Deserialize)]
struct Registration {
    webhook_id: String,
    external_url: String,
    /// Either id form; pushes name the vehicle by the one given here.
    vehicle_id: String,
}

/// Registers Home Assistant's webhook for one vehicle: its changes are pushed there.
///
/// Idempotent: the same vehicle or the same webhook id replaces the earlier entry. The vehicle
/// may be named by either id; pushes name it the same way.
#[utoipa::path(
    post,
    path = "/api/ha/webhook/register",
    operation_id = "push_register",
    tag = "home-assistant",
    request_body(
        content = Object,
        description = r#"{"webhook_id": "...", "external_url": "https://ha.example.com:8123", "vehicle_id": "..."}"#
    ),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Registered (the URL shown masked)", body = Object),
        (status = 400, description = "A URL or webhook id the service does not push to, and why", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "The caller's tier does not include push", body = ErrorBody),
        (status = 404, description = "No such vehicle", body = ErrorBody),
        (status = 422, description = "A field is missing or not a string", body = ErrorBody),
    )
)]
async fn register(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<Registration>,
) -> Result<Json<Value>, ApiError> {
    let user = &caller.user;
    let tier = user.effective_tier(app.clock.now());
    if !app.config.may_push(tier) {
        // 403 is what the client reads as "tier does not allow push".
        return Err(ApiError::Forbidden(format!("the {tier} tier does not include push to Home Assistant")));
    }
    let url = webhook_url(&body.external_url, body.webhook_id.trim(), app.config.push_allow_private_targets)
        .map_err(ApiError::BadRequest)?;
    let entry = owned_entry(&app, &user.id, &body.vehicle_id)?;
    let state = entry.snapshot().state.clone();
    let registration = PushRegistration {
        vehicle_id: state.internal_id,
        enode_vehicle_id: state.vehicle.id.clone(),
        user_id: user.id,
        webhook_id: body.webhook_id.trim().to_owned(),
        url,
        vehicle_ref: body.vehicle_id,
        registered_at: app.clock.now(),
    };
    let shown = masked(&registration.url);
    tracing::info!(vehicle = %registration.vehicle_id, target = %shown, "push target registered");
    let answer = json!({
        "status": "registered",
        "vehicle_id": registration.vehicle_ref,
        "enode_vehicle_id": registration.enode_vehicle_id,
        "internal_vehicle_id": registration.vehicle_id,
        "url": shown,
    });
    app.push.register(registration).await.map_err(from_port)?;
    Ok(Json(answer))
}

/// Answered, not acted on: registrations are kept.
///
/// Old clients called it on every reboot, which left their vehicles without push until the next
/// registration.
#[utoipa::path(
    delete,
    path = "/api/ha/webhook/register",
    operation_id = "push_unregister",
    tag = "home-assistant",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Kept", body = Object),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
    )
)]
async fn keep(Caller(_caller): Caller) -> Json<Value> {
    Json(json!({
        "status": "kept",
        "detail": "push registrations are kept; Home Assistant registers again when it starts",
    }))
}

/// The caller's push registrations and how delivery to each is going.
///
/// Last success, last failure and why, failures in a row, the circuit breaker's state, whether
/// a state is waiting. URLs are masked except their host.
#[utoipa::path(
    get,
    path = "/api/ha/webhook/status",
    operation_id = "push_status",
    tag = "home-assistant",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "`registrations`, each with its delivery health", body = Object),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
    )
)]
async fn status(State(app): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    let registrations: Vec<Value> = app.push.targets_of(caller.user.id).iter().map(view_json).collect();
    Json(json!({ "registrations": registrations }))
}

/// A target as callers and admins see it: the URL masked except its host.
pub fn view_json(view: &PushTargetView) -> Value {
    let (r, h) = (&view.registration, &view.health);
    json!({
        "vehicle_id": r.vehicle_ref,
        "enode_vehicle_id": r.enode_vehicle_id,
        "internal_vehicle_id": r.vehicle_id,
        // The URL holds HA's webhook id, which is all HA checks: never shown whole.
        "url": masked(&r.url),
        "registered_at": r.registered_at,
        "pending": view.pending,
        "circuit": view.circuit,
        "last_success_at": h.last_success_at,
        "last_failure_at": h.last_failure_at,
        "last_failure_reason": h.last_failure_reason,
        "consecutive_failures": h.consecutive_failures,
    })
}

fn from_port(err: PortError) -> ApiError {
    if err.retryable {
        tracing::warn!(error = %err, "could not store a push registration");
        ApiError::Unavailable { detail: "storage is unavailable; try again shortly".into(), retry_after_secs: Some(5) }
    } else {
        ApiError::internal(err)
    }
}
