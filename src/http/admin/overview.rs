//! `/admin/upstream`, `/admin/webhooks`, `/admin/push`, `/admin/users`: the service's health
//! beyond single vehicles. Each answers from the components' own stats snapshots.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Admin;
use super::rates::PerMinute;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::openapi::ErrorBody;
use crate::ingest::IngestStats;

/// The Enode client's request budget, calls and breaker.
#[derive(Debug, Serialize, ToSchema)]
pub struct Upstream {
    /// False when this deployment has no Enode credentials; the other fields are then null.
    pub configured: bool,
    pub detail: Option<String>,
    /// Requests per minute for the whole client, and the burst above it.
    pub budget_per_minute: Option<u32>,
    pub budget_burst: Option<u32>,
    /// Requests that reached Enode since start.
    pub requests_sent: Option<u64>,
    /// closed, open or half_open.
    pub breaker: Option<String>,
    /// The client's stats: requests by endpoint and outcome, budget waits (user and background),
    /// 429 pauses and their waits, retries, token renewals, breaker.
    #[schema(value_type = Option<Object>)]
    pub stats: Option<serde_json::Value>,
    /// The refresh scheduler: in flight, refreshed, failed, paused until.
    #[schema(value_type = Option<Object>)]
    pub refresh: Option<serde_json::Value>,
}

/// Enode's budget and breaker, as the Enode client sees them.
#[utoipa::path(
    get,
    path = "/admin/upstream",
    operation_id = "admin_upstream",
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "Budget, calls and breaker", body = Upstream),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an administrator's key", body = ErrorBody),
    )
)]
pub async fn upstream(State(app): State<AppState>, _admin: Admin) -> Json<Upstream> {
    Json(upstream_now(&app))
}

pub fn upstream_now(app: &AppState) -> Upstream {
    let Some(client) = &app.enode else {
        return Upstream {
            configured: false,
            detail: Some("Enode client not configured".into()),
            budget_per_minute: None,
            budget_burst: None,
            requests_sent: None,
            breaker: None,
            stats: None,
            refresh: None,
        };
    };
    let stats = client.stats();
    Upstream {
        configured: true,
        detail: None,
        budget_per_minute: Some(app.config.enode_rate_per_minute),
        budget_burst: Some(app.config.enode_burst),
        requests_sent: Some(stats.sent()),
        breaker: Some(super::view::breaker_name(stats.breaker.state).to_owned()),
        stats: serde_json::to_value(&stats).ok(),
        refresh: serde_json::to_value(app.refresh.stats()).ok(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Webhooks {
    pub per_minute: PerMinute,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// Enode's webhook subscription as the keeper sees it (null when not managed here).
    #[schema(value_type = Option<Object>)]
    pub subscription: Option<serde_json::Value>,
    /// Counters since start.
    #[schema(value_type = Object)]
    pub totals: IngestStats,
}

/// Webhook deliveries and events per minute, the last heartbeat, and the counters.
#[utoipa::path(
    get,
    path = "/admin/webhooks",
    operation_id = "admin_webhooks",
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "Webhook health", body = Webhooks),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an administrator's key", body = ErrorBody),
    )
)]
pub async fn webhooks(State(app): State<AppState>, _admin: Admin) -> Json<Webhooks> {
    Json(webhooks_now(&app))
}

pub fn webhooks_now(app: &AppState) -> Webhooks {
    let totals = app.ingest.stats();
    Webhooks {
        per_minute: app.webhook_rates.per_minute(),
        last_delivery_at: totals.last_delivery_at,
        last_heartbeat_at: totals.last_heartbeat_at,
        subscription: app.subscription.as_ref().and_then(|s| serde_json::to_value(s.status()).ok()),
        totals,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Push {
    /// Totals: targets, states waiting, deliveries and failures.
    #[schema(value_type = Object)]
    pub stats: serde_json::Value,
    /// Every target and its health (URLs masked except their host).
    #[schema(value_type = Vec<Object>)]
    pub targets: Vec<serde_json::Value>,
}

/// Push targets and their health.
#[utoipa::path(
    get,
    path = "/admin/push",
    operation_id = "admin_push",
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "Push targets", body = Push),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an administrator's key", body = ErrorBody),
    )
)]
pub async fn push(State(app): State<AppState>, _admin: Admin) -> Json<Push> {
    let targets = app.push.all_targets().iter().map(crate::http::push::view_json).collect();
    Json(Push { stats: serde_json::to_value(app.push.stats()).unwrap_or_default(), targets })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub tier: String,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub vehicles: usize,
}

/// Every user with their vehicle count.
#[utoipa::path(
    get,
    path = "/admin/users",
    operation_id = "admin_users",
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "Users", body = Vec<UserRow>),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an administrator's key", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    )
)]
pub async fn users(State(app): State<AppState>, _admin: Admin) -> Result<Json<Vec<UserRow>>, ApiError> {
    let users = app.store.list_users().await?;
    let board = app.fleet.board();
    Ok(Json(
        users
            .into_iter()
            .map(|u| UserRow {
                vehicles: board.for_user(u.id).len(),
                id: u.id,
                role: u.role.as_str().to_owned(),
                tier: u.tier.to_string(),
                trial_ends_at: u.trial_ends_at,
                created_at: u.created_at,
                email: u.email,
            })
            .collect(),
    ))
}
