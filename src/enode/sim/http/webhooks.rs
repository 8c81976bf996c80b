//! Webhook subscriptions: create, list, read, update, delete, test.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;

use super::ProblemJson;
use crate::enode::model::{Page, Pagination, WebhookRequest, WebhookSubscription, WebhookTestResult};
use crate::enode::sim::bus::SubMeta;
use crate::enode::sim::lock;
use crate::enode::sim::problem::SimError;
use crate::enode::sim::state::SimState;
use crate::enode::sim::webhooks as delivery;

type Shared = State<Arc<SimState>>;

pub async fn create(
    State(state): Shared,
    ProblemJson(request): ProblemJson<WebhookRequest>,
) -> Result<Json<WebhookSubscription>, SimError> {
    let url = request.url.ok_or_else(|| SimError::bad_request("url is required"))?;
    check_url(&url)?;
    let secret = request.secret.filter(|s| !s.is_empty()).ok_or_else(|| SimError::bad_request("secret is required"))?;
    let meta = SubMeta {
        url,
        secret,
        events: check_events(request.events.unwrap_or_else(|| vec!["*".to_owned()]))?,
        api_version: request.api_version,
        is_active: true,
        last_success: None,
        created_at: Utc::now(),
        deleted: false,
    };
    Ok(Json(delivery::subscribe(&state, meta).view()))
}

pub async fn list(State(state): Shared) -> Json<Page<WebhookSubscription>> {
    Json(Page { data: state.bus.all().iter().map(|s| s.view()).collect(), pagination: Pagination::default() })
}

pub async fn get(State(state): Shared, Path(id): Path<String>) -> Result<Json<WebhookSubscription>, SimError> {
    find(&state, &id).map(|s| Json(s.view()))
}

/// Changes the fields given. Enode treats an update as a fresh start: the subscription is active
/// again (a fixed URL should get deliveries).
pub async fn update(
    State(state): Shared,
    Path(id): Path<String>,
    ProblemJson(request): ProblemJson<WebhookRequest>,
) -> Result<Json<WebhookSubscription>, SimError> {
    let sub = find(&state, &id)?;
    if let Some(url) = &request.url {
        check_url(url)?;
    }
    let events = request.events.map(check_events).transpose()?;
    {
        let mut meta = lock(&sub.meta);
        if let Some(url) = request.url {
            meta.url = url;
        }
        if let Some(secret) = request.secret.filter(|s| !s.is_empty()) {
            meta.secret = secret;
        }
        if let Some(events) = events {
            meta.events = events;
        }
        if request.api_version.is_some() {
            meta.api_version = request.api_version;
        }
        meta.is_active = true;
    }
    sub.wake.notify_one();
    Ok(Json(sub.view()))
}

pub async fn delete(State(state): Shared, Path(id): Path<String>) -> Result<StatusCode, SimError> {
    let sub = state.bus.remove(&id).ok_or_else(|| SimError::not_found("webhook", &id))?;
    delivery::unsubscribe(&sub);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn test(State(state): Shared, Path(id): Path<String>) -> Result<Json<WebhookTestResult>, SimError> {
    let sub = find(&state, &id)?;
    Ok(Json(delivery::test(&state, &sub).await))
}

fn find(state: &SimState, id: &str) -> Result<Arc<crate::enode::sim::bus::Subscription>, SimError> {
    state.bus.get(id).ok_or_else(|| SimError::not_found("webhook", id))
}

fn check_url(url: &str) -> Result<(), SimError> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(()),
        _ => Err(SimError::bad_request(format!("url {url:?} is not an http(s) URL"))),
    }
}

fn check_events(events: Vec<String>) -> Result<Vec<String>, SimError> {
    if events.is_empty() {
        return Err(SimError::bad_request("events must name at least one event or \"*\""));
    }
    Ok(events)
}
