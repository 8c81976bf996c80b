//! Vehicles and their charge actions.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;

use super::{ProblemJson, page_query};
use crate::enode::model::{ChargeAction, ChargeRequest, Page, Vehicle};
use crate::enode::sim::pagination::PageRequest;
use crate::enode::sim::problem::SimError;
use crate::enode::sim::state::SimState;

type Shared = State<Arc<SimState>>;

pub async fn get(State(state): Shared, Path(id): Path<String>) -> Result<Json<Vehicle>, SimError> {
    state
        .read(|world| world.vehicle(&id).map(|v| v.render()))
        .map(Json)
        .ok_or_else(|| SimError::not_found("vehicle", &id))
}

pub async fn list_all(State(state): Shared, RawQuery(query): RawQuery) -> Result<Json<Page<Vehicle>>, SimError> {
    let request = PageRequest::parse(&page_query(query))?;
    Ok(Json(state.read(|world| world.list(None, request))))
}

pub async fn list_for_user(
    State(state): Shared,
    Path(user): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<Vehicle>>, SimError> {
    let request = PageRequest::parse(&page_query(query))?;
    Ok(Json(state.read(|world| world.list(Some(&user), request))))
}

pub async fn charge(
    State(state): Shared,
    Path(id): Path<String>,
    ProblemJson(request): ProblemJson<ChargeRequest>,
) -> Result<Json<ChargeAction>, SimError> {
    state.change(|world, now, out| world.start_action(&id, request.action, now, out)).map(Json)
}

pub async fn action(State(state): Shared, Path(id): Path<String>) -> Result<Json<ChargeAction>, SimError> {
    state.read(|world| world.action(&id)).map(Json)
}

pub async fn cancel_action(State(state): Shared, Path(id): Path<String>) -> Result<Json<ChargeAction>, SimError> {
    state.change(|world, now, out| world.cancel_action(&id, now, out)).map(Json)
}

pub async fn refresh_hint(State(state): Shared, Path(id): Path<String>) -> Result<StatusCode, SimError> {
    let now = state.clock.now();
    state.change(|world, _, _| world.refresh_hint(&id, now)).map(|()| StatusCode::NO_CONTENT)
}
