//! Users: linking (the link session and the page that completes it) and deletion.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ProblemJson;
use crate::enode::model::{LinkRequest, LinkSession};
use crate::enode::sim::problem::SimError;
use crate::enode::sim::state::SimState;

type Shared = State<Arc<SimState>>;

pub async fn link(
    State(state): Shared,
    Path(user): Path<String>,
    ProblemJson(request): ProblemJson<LinkRequest>,
) -> Result<Json<LinkSession>, SimError> {
    let base = state.base_url.clone();
    state.change(|world, now, _| world.create_link(&user, &request, &base, now)).map(Json)
}

/// The link URL, opened by the user's browser: completes the link, then sends the browser to the
/// `redirectUri` as Enode Link does. `?redirect=false` answers the outcome as JSON instead, for
/// scripts and tests.
pub async fn open_link(
    State(state): Shared,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, SimError> {
    let outcome = state.change(|world, now, out| world.complete_link(&token, now, out))?;
    let no_redirect = query.as_deref().is_some_and(|q| q.split('&').any(|pair| pair == "redirect=false"));
    if no_redirect || outcome.redirect_uri.is_empty() {
        return Ok(Json(outcome).into_response());
    }
    Ok((
        StatusCode::FOUND,
        [(header::LOCATION, outcome.redirect_uri.clone())],
        format!("Linked {} for {}.", outcome.vendor, outcome.user_id),
    )
        .into_response())
}

pub async fn delete_user(State(state): Shared, Path(user): Path<String>) -> StatusCode {
    state.change(|world, now, out| world.delete_user(&user, now, out));
    StatusCode::NO_CONTENT
}

pub async fn delete_vendor(State(state): Shared, Path((user, vendor)): Path<(String, String)>) -> StatusCode {
    state.change(|world, now, out| world.delete_user_vendor(&user, &vendor, now, out));
    StatusCode::NO_CONTENT
}
