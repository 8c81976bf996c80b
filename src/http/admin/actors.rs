//! `/admin/actors`: every vehicle's actor, why one is unhealthy, and what an operator can do
//! about it (refresh, restart).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::Admin;
use super::view::{ActorDetail, ActorRow};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::openapi::ErrorBody;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActorQuery {
    /// Only actors in this state: running, restarting, degraded or stopped.
    status: Option<String>,
    /// true: only vehicles whose data is stale (or that need a relink); false: only fresh ones.
    stale: Option<bool>,
    /// Only this user's vehicles (user id).
    user: Option<Uuid>,
    /// Rows per page (default 100, at most 1000).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of actors: the ones that need a look first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActorPage {
    pub actors: Vec<ActorRow>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Rows matching the filters, over all pages.
    pub total: usize,
}

/// List vehicle actors, unhealthy first.
///
/// Ordered degraded, restarting, stopped, stale or relink-required, then healthy; within each
/// group by internal id. Filters combine.
#[utoipa::path(
    get,
    path = "/admin/actors",
    operation_id = "admin_list_actors",
    tag = "admin",
    params(ActorQuery),
    security(("admin" = [])),
    responses(
        (status = 200, description = "One page of actors", body = ActorPage),
        (status = 400, description = "A filter is malformed", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an administrator's key", body = ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    _admin: Admin,
    Query(query): Query<ActorQuery>,
) -> Result<Json<ActorPage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s @ ("running" | "idle" | "restarting" | "degraded" | "stopped")) => Some(s),
        Some(other) => return Err(ApiError::BadRequest(format!("unknown status {other:?}"))),
    };
    let after = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let rows = rows(&app, |row| {
        status.is_none_or(|s| row.status.as_str() == s)
            && query.stale.is_none_or(|stale| stale == row.data_needs_a_look())
            && query.user.is_none_or(|u| row.user_id == u)
    });
    let total = rows.len();
    let start = after.map_or(0, |key| rows.partition_point(|row| (row.rank(), row.internal_id) <= key));
    let page: Vec<ActorRow> = rows.into_iter().skip(start).take(limit).collect();
    let next_cursor = (start + page.len() < total)
        .then(|| page.last().map(|row| format!("{}.{}", row.rank(), row.internal_id)))
        .flatten();
    Ok(Json(ActorPage { actors: page, next_cursor, total }))
}

/// Every row that `keep` accepts, in listing order.
pub fn rows(app: &AppState, keep: impl Fn(&ActorRow) -> bool) -> Vec<ActorRow> {
    let now = app.clock.now();
    let mut rows: Vec<ActorRow> =
        app.fleet.board().entries().iter().map(|entry| ActorRow::build(app, entry, now)).filter(keep).collect();
    rows.sort_by_key(|row| (row.rank(), row.internal_id));
    rows
}

fn parse_cursor(cursor: &str) -> Result<(u8, Uuid), ApiError> {
    let bad = || ApiError::BadRequest("invalid cursor".into());
    let (rank, id) = cursor.split_once('.').ok_or_else(bad)?;
    Ok((rank.parse().map_err(|_| bad())?, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// One vehicle's actor with its recent events.
#[utoipa::path(
    get,
    path = "/admin/actors/{id}",
    operation_id = "admin_actor",
    tag = "admin",
    params(("id" = String, Path, description = "Enode vehicle id or internal id")),
    security(("admin" = [])),
    responses(
        (status = 200, description = "The actor and its history, newest first", body = ActorDetail),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an administrator's key", body = ErrorBody),
        (status = 404, description = "No such vehicle", body = ErrorBody),
    )
)]
pub async fn detail(
    State(app): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<ActorDetail>, ApiError> {
    let entry = app.fleet.board().get(&id).ok_or(ApiError::NotFound("vehicle not found"))?;
    let row = ActorRow::build(&app, &entry, app.clock.now());
    let history = app.fleet.history().events(row.internal_id);
    Ok(Json(ActorDetail { row, history }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RestartAnswer {
    pub restarted: bool,
    pub internal_id: Uuid,
}

/// Restart a vehicle's actor from its last snapshot.
///
/// Also clears `degraded`: data that arrived meanwhile is applied.
#[utoipa::path(
    post,
    path = "/admin/actors/{id}/restart",
    operation_id = "admin_restart_actor",
    tag = "admin",
    params(("id" = String, Path, description = "Enode vehicle id or internal id")),
    security(("admin" = [])),
    responses(
        (status = 200, description = "Restarted", body = RestartAnswer),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an administrator's key", body = ErrorBody),
        (status = 404, description = "No such vehicle", body = ErrorBody),
        (status = 503, description = "The fleet supervisor is not running", body = ErrorBody),
    )
)]
pub async fn restart(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<RestartAnswer>, ApiError> {
    let entry = app.fleet.board().get(&id).ok_or(ApiError::NotFound("vehicle not found"))?;
    let internal_id = entry.internal_id();
    let restarted = app
        .fleet
        .restart(&entry)
        .await
        .map_err(|err| ApiError::Unavailable { detail: err.to_string(), retry_after_secs: Some(5) })?;
    if !restarted {
        return Err(ApiError::NotFound("vehicle not found"));
    }
    tracing::info!(vehicle = %internal_id, by = %admin.who, "actor restarted by an administrator");
    Ok(Json(RestartAnswer { restarted, internal_id }))
}

/// Refresh a vehicle from Enode now, within the global request budget.
///
/// Queued ahead of the scheduler's own choices; made as soon as a budget permit is free. 503
/// when this deployment has no Enode client.
#[utoipa::path(
    post,
    path = "/admin/actors/{id}/refresh",
    operation_id = "admin_refresh_actor",
    tag = "admin",
    params(("id" = String, Path, description = "Enode vehicle id or internal id")),
    security(("admin" = [])),
    responses(
        (status = 202, description = "Refresh queued", body = RefreshAnswer),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an administrator's key", body = ErrorBody),
        (status = 404, description = "No such vehicle", body = ErrorBody),
        (status = 503, description = "No refresh scheduler, or the budget is spent", body = ErrorBody),
    )
)]
pub async fn refresh(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RefreshAnswer>), ApiError> {
    let entry = app.fleet.board().get(&id).ok_or(ApiError::NotFound("vehicle not found"))?;
    if app.enode.is_none() {
        return Err(ApiError::Unavailable {
            detail: "refreshes are not available: no Enode client is configured".into(),
            retry_after_secs: None,
        });
    }
    let internal_id = entry.internal_id();
    app.refresh.request(&entry);
    tracing::info!(vehicle = %internal_id, by = %admin.who, "refresh requested by an administrator");
    Ok((StatusCode::ACCEPTED, Json(RefreshAnswer { queued: true, internal_id })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshAnswer {
    pub queued: bool,
    pub internal_id: Uuid,
}

impl ActorRow {
    /// Old data, or data that cannot be live until the user relinks (what `stale=true` selects).
    fn data_needs_a_look(&self) -> bool {
        self.stale || self.relink_required
    }
}
