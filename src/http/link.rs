//! Linking cars: `POST /api/user/link-vehicle` opens an Enode link session for the caller (within
//! their tier's vehicle limit); `POST /api/user/unlink` unlinks a vendor at Enode and removes its
//! vehicles here. `GET /linked` is where Enode sends the user back to.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use evconduit_actors::ports::UpstreamError;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::json::{JsonBody, parse_optional};
use super::openapi::ErrorBody;
use crate::enode::client::EnodeError;
use crate::enode::model::LinkRequest;
use crate::upstream::to_port;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What evconduit asks the user to grant: reading the car and controlling its charging.
const SCOPES: [&str; 3] = ["vehicle:read:data", "vehicle:read:location", "vehicle:control:charging"];
const MAX_VENDOR: usize = 64;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(link)).routes(routes!(unlink)).routes(routes!(linked))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    #[serde(default)]
    vendor: Option<String>,
}

/// Open an Enode link session for the caller (within the tier's vehicle limit).
#[utoipa::path(
    post,
    path = "/api/user/link-vehicle",
    tag = "account",
    request_body(content = Object, description = r#"Optional: {"vendor": "TESLA"}"#),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "`url` to send the user to, and the `linkToken`", body = Object),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "The tier's vehicle limit is reached", body = ErrorBody),
        (status = 422, description = "Not a vendor name", body = ErrorBody),
        (status = 503, description = "Enode is not configured or not answering", body = ErrorBody),
    )
)]
async fn link(State(app): State<AppState>, Caller(caller): Caller, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: LinkBody = parse_optional(&body)?;
    app.commands.check(caller.user.id)?;
    let vendor = body.vendor.map(|v| checked_vendor(&v)).transpose()?;
    let tier = caller.user.effective_tier(app.clock.now());
    let limit = app.config.vehicle_limit(tier);
    let linked = app.fleet.board().for_user(caller.user.id).len();
    if linked >= limit {
        return Err(ApiError::Forbidden(format!(
            "the {tier} tier allows {limit} linked vehicle(s) and you have {linked}; unlink one or upgrade"
        )));
    }
    let client = app.enode.as_ref().ok_or_else(enode_not_configured)?;
    let request = LinkRequest {
        vendor_type: "vehicle".into(),
        vendor,
        scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        language: "en-US".into(),
        redirect_uri: app.config.link_redirect(),
        color_scheme: None,
    };
    let session = client.create_link_session(&caller.user.id.to_string(), &request).await.map_err(link_refused)?;
    Ok(Json(json!({ "url": session.link_url, "linkToken": session.link_token })))
}

/// Enode refuses to open a session it cannot serve (a vendor it does not know) with 400: that is
/// the caller's input, so 422 in Enode's words, like a vendor name that fails `checked_vendor`.
/// (Elsewhere a refusal is 409, "not now": a charging command for a car that is unplugged.)
fn link_refused(err: EnodeError) -> ApiError {
    match to_port(err) {
        UpstreamError::Rejected { detail } => ApiError::Unprocessable(format!("Enode cannot link that: {detail}")),
        other => other.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnlinkBody {
    vendor: String,
}

/// Unlink a vendor at Enode and remove its vehicles here.
#[utoipa::path(
    post,
    path = "/api/user/unlink",
    tag = "account",
    request_body(content = Object, description = r#"{"vendor": "TESLA"}"#),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The vendor and the vehicles removed", body = Object),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 422, description = "Not a vendor name", body = ErrorBody),
        (status = 503, description = "Enode is not configured or not answering", body = ErrorBody),
    )
)]
async fn unlink(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<UnlinkBody>,
) -> Result<Json<Value>, ApiError> {
    let vendor = checked_vendor(&body.vendor)?;
    app.commands.check(caller.user.id)?;
    let client = app.enode.as_ref().ok_or_else(enode_not_configured)?;
    client.unlink_vendor(&caller.user.id.to_string(), &vendor).await?;
    let mut removed = Vec::new();
    for entry in app.fleet.board().for_user(caller.user.id) {
        let state = entry.snapshot().state.clone();
        if state.vehicle.vendor.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(&vendor))
            && app.fleet.remove(&state.vehicle.id).await.map_err(ApiError::internal)?
        {
            removed.push(state.vehicle.id.clone());
        }
    }
    Ok(Json(json!({ "status": "ok", "vendor": vendor, "removed": removed })))
}

/// Where Enode sends the user back to after linking.
#[utoipa::path(get, path = "/linked", tag = "account", responses((status = 200, description = "Linked", body = Object)))]
async fn linked() -> Json<Value> {
    Json(json!({ "status": "linked", "message": "Your vehicle is linked. You can close this window." }))
}

/// Vendors are Enode's upper-case names (TESLA, XPENG, ...).
fn checked_vendor(vendor: &str) -> Result<String, ApiError> {
    let vendor = vendor.trim().to_ascii_uppercase();
    let plausible = !vendor.is_empty()
        && vendor.len() <= MAX_VENDOR
        && vendor.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    plausible
        .then_some(vendor)
        .ok_or_else(|| ApiError::Unprocessable("vendor must be an Enode vendor name such as TESLA".into()))
}

fn enode_not_configured() -> ApiError {
    ApiError::Unavailable { detail: "Enode is not configured on this server".into(), retry_after_secs: None }
}
