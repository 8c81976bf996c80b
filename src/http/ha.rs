//! The read API the Home Assistant integration polls (contract/home-assistant.md). Answered from
//! memory: the caller from the in-memory key map, the vehicle from its published snapshot.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LAST_MODIFIED};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use evconduit_actors::refresh::Freshness;
use evconduit_actors::snapshot::{BoardEntry, Snapshot};
use evconduit_actors::status::list_item;
use serde_json::{Value, json};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::openapi::{self, alias};

/// Where the data came from: webhook, refresh or restored.
pub const DATA_SOURCE: HeaderName = HeaderName::from_static("x-data-source");
/// Present when the vehicle's actor is not running normally (restarting, degraded).
pub const ACTOR_STATUS: HeaderName = HeaderName::from_static("x-actor-status");
/// Whether the data is older than the owner's tier target.
pub const DATA_STALE: HeaderName = HeaderName::from_static("x-data-stale");
/// Whether a refresh from Enode will be made (stale, watched, eligible; budget permitting).
pub const REFRESH_SCHEDULED: HeaderName = HeaderName::from_static("x-refresh-scheduled");

pub fn router() -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(ha_me))
        .routes(routes!(vehicles))
        .routes(routes!(status));
    // Older clients use these prefixes for the same calls.
    router = alias(router, "/api/v1/ha/me", "/api/ha/me", get(ha_me));
    for prefix in ["/api/ha", "/api/v1/ha"] {
        router = alias(router, &format!("{prefix}/vehicles"), "/api/user/vehicles", get(vehicles));
        router = alias(router, &format!("{prefix}/status/{{vehicle_id}}"), "/api/status/{vehicle_id}", get(status));
    }
    router
}

/// The caller: user, role, tier and trial.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "home-assistant",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The caller's account", body = openapi::Me),
        (status = 401, description = "Missing, unknown or revoked key", body = openapi::ErrorBody),
    )
)]
async fn me(State(app): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    let user = &caller.user;
    let now = app.clock.now();
    let trial = user.trial_ends_at.filter(|ends| *ends > now);
    Json(json!({
        "id": user.id,
        "user_id": user.id,
        "email": user.email,
        "name": user.name.as_deref().unwrap_or(&user.email),
        "role": user.role,
        "tier": user.effective_tier(now),
        "is_trial": trial.is_some(),
        "trial_ends_at": trial,
        "sms_credits": 0,
    }))
}

/// The caller, in the older `/api/ha/me` shape.
#[utoipa::path(
    get,
    path = "/api/ha/me",
    tag = "home-assistant",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The caller's account", body = openapi::HaMe),
        (status = 401, description = "Missing, unknown or revoked key", body = openapi::ErrorBody),
    )
)]
async fn ha_me(State(app): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    let user = &caller.user;
    Json(json!({
        "user_id": user.id,
        "tier": user.effective_tier(app.clock.now()),
        "name": user.name.as_deref().unwrap_or(&user.email),
        "sms_credits": 0,
    }))
}

/// The caller's vehicles: a JSON array, never a call to Enode.
#[utoipa::path(
    get,
    path = "/api/user/vehicles",
    tag = "home-assistant",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The caller's vehicles, in link order", body = Vec<openapi::VehicleListItem>),
        (status = 401, description = "Missing, unknown or revoked key", body = openapi::ErrorBody),
    )
)]
async fn vehicles(State(app): State<AppState>, Caller(caller): Caller) -> Json<Vec<Value>> {
    let entries = app.fleet.board().for_user(caller.user.id);
    Json(entries.iter().map(|e| list_item(&e.snapshot().state)).collect())
}

/// One vehicle's status, by Enode id or internal id.
///
/// Answered from memory with `ETag`, `Last-Modified`, `Age` and `X-Data-Source`;
/// `If-None-Match` gives 304. Another user's vehicle is 404, exactly like an unknown one, so ids
/// cannot be probed.
#[utoipa::path(
    get,
    path = "/api/status/{vehicle_id}",
    tag = "home-assistant",
    params(("vehicle_id" = String, Path, description = "Enode vehicle id or internal id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The vehicle's current status", body = openapi::VehicleStatus),
        (status = 304, description = "Unchanged since the `If-None-Match` tag"),
        (status = 401, description = "Missing, unknown or revoked key", body = openapi::ErrorBody),
        (status = 404, description = "No such vehicle for this caller", body = openapi::ErrorBody),
    )
)]
async fn status(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(vehicle_id): Path<String>,
    IfNoneMatch(if_none_match): IfNoneMatch,
) -> Result<Response, ApiError> {
    // Ownership is checked on the entry; one load of the snapshot serves the body and every header.
    let (entry, snapshot) = owned_snapshot(&app, &caller.user.id, &vehicle_id)?;
    let now = app.clock.now();
    entry.mark_read(now);
    let rendered = snapshot.rendered();
    let not_modified = if_none_match
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| etag_matches(tags, rendered.etag.as_str()));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        prefetch(&rendered.body);
        Response::new(Body::from(rendered.body.clone()))
    };
    // Room for every header the answer gets, here and on its way out (content length, request
    // id): grown one insert at a time, the map was reallocated three times per poll.
    *response.headers_mut() = HeaderMap::with_capacity(RESPONSE_HEADERS);
    // The caller owns the vehicle (checked above), so their tier is the owner's.
    let freshness = app.refresh.freshness_of(&entry, &snapshot.facts, caller.user.effective_tier(now), now);
    freshness_headers(response.headers_mut(), &entry, &snapshot, &freshness);
    Ok(response)
}

/// Asks the CPU to start loading `bytes` into its caches now. Among 100 000 vehicles a body
/// (1.7 KiB, 27 cache lines) is rarely cached, and the kernel copies it into the socket only
/// after the headers are built and encoded; loaded meanwhile, the copy does not wait on the
/// lines one by one.
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: SSE is part of x86_64's baseline; a prefetch is a hint that never faults and
        // changes nothing the program can observe, and the address is inside a live slice.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Headers on a status answer: the nine of `freshness_headers` at most, `Content-Length` and
/// `X-Request-Id`.
const RESPONSE_HEADERS: usize = 11;

/// The request's `If-None-Match`, alone: the `HeaderMap` extractor would copy every header of
/// every poll to read this one.
struct IfNoneMatch(Option<HeaderValue>);

impl<S: Sync> axum::extract::FromRequestParts<S> for IfNoneMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get(IF_NONE_MATCH).cloned()))
    }
}

/// The board entry of `vehicle_id` if it belongs to `user_id`; another user's vehicle is not
/// found, exactly like an unknown one.
pub fn owned_entry(
    app: &AppState,
    user_id: &uuid::Uuid,
    vehicle_id: &str,
) -> Result<std::sync::Arc<BoardEntry>, ApiError> {
    app.fleet
        .board()
        .get(vehicle_id)
        .filter(|entry| entry.owner() == *user_id)
        .ok_or(ApiError::NotFound("vehicle not found"))
}

/// The board entry of `vehicle_id` and its current snapshot, if it belongs to `user_id`.
fn owned_snapshot(
    app: &AppState,
    user_id: &uuid::Uuid,
    vehicle_id: &str,
) -> Result<(std::sync::Arc<BoardEntry>, std::sync::Arc<Snapshot>), ApiError> {
    let entry = owned_entry(app, user_id, vehicle_id)?;
    let snapshot = entry.snapshot();
    Ok((entry, snapshot))
}

/// Headers that tell the truth about the data: what version it is, when the car was last seen,
/// how long since it was known current (`Age`), its source, whether it is stale and whether a
/// refresh is coming.
fn freshness_headers(headers: &mut HeaderMap, entry: &BoardEntry, snapshot: &Snapshot, freshness: &Freshness) {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    // Both kept inline in the snapshot (see there) and copied from it; the body is rendered by now.
    if let Ok(etag) = HeaderValue::from_str(snapshot.rendered().etag.as_str()) {
        headers.insert(ETAG, etag);
    }
    if let Ok(modified) = HeaderValue::from_str(snapshot.last_modified.as_str()) {
        headers.insert(LAST_MODIFIED, modified);
    }
    headers.insert(axum::http::header::AGE, HeaderValue::from(freshness.age_secs));
    headers.insert(DATA_SOURCE, HeaderValue::from_static(snapshot.facts.source.as_str()));
    headers.insert(DATA_STALE, HeaderValue::from_static(if freshness.stale { "true" } else { "false" }));
    headers.insert(
        REFRESH_SCHEDULED,
        HeaderValue::from_static(if freshness.refresh_scheduled { "true" } else { "false" }),
    );
    let status = entry.status();
    if !status.is_healthy() {
        headers.insert(ACTOR_STATUS, HeaderValue::from_static(status.as_str()));
    }
}

/// `If-None-Match` semantics: `*`, or any listed tag equal to ours (weak comparison, as RFC 9110
/// asks for this header).
fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

#[cfg(test)]
mod tests {
    use super::etag_matches;

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("\"x\", W/\"abc\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }
}
