//! `/_sim/...`: the simulator's own controls (faults, stats, users, forcing vehicle changes, the
//! clock). Not part of Enode's API: no token, no faults, not counted in the stats.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::ProblemJson;
use crate::enode::model::Vehicle;
use crate::enode::sim::control::{AddVehicles, Command, SetValues};
use crate::enode::sim::faults::{Knobs, KnobsPatch};
use crate::enode::sim::problem::SimError;
use crate::enode::sim::state::SimState;
use crate::enode::sim::stats::StatsSnapshot;
use crate::enode::sim::world::UserView;
use crate::enode::sim::{ClockView, SimHandle};

type Shared = State<Arc<SimState>>;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset_stats))
        .route("/faults", get(faults).post(set_faults))
        .route("/users", get(users))
        .route("/users/{userId}/vehicles", post(add_vehicles))
        .route("/users/{userId}/invalidate", post(invalidate))
        .route("/vehicles/{id}/{command}", post(command))
        .route("/clock", get(clock))
        .route("/clock/advance", post(advance))
        .route("/tokens/expire", post(expire_tokens))
}

async fn stats(State(state): Shared) -> Json<StatsSnapshot> {
    Json(SimHandle::from_state(state).stats())
}

async fn reset_stats(State(state): Shared) -> StatusCode {
    SimHandle::from_state(state).reset_stats();
    StatusCode::NO_CONTENT
}

async fn faults(State(state): Shared) -> Json<Knobs> {
    Json(SimHandle::from_state(state).knobs())
}

async fn set_faults(State(state): Shared, ProblemJson(patch): ProblemJson<KnobsPatch>) -> Json<Knobs> {
    Json(SimHandle::from_state(state).set_faults(&patch))
}

async fn users(State(state): Shared) -> Json<Vec<UserView>> {
    Json(SimHandle::from_state(state).users())
}

async fn add_vehicles(
    State(state): Shared,
    Path(user): Path<String>,
    body: Bytes,
) -> Result<Json<Vec<Vehicle>>, SimError> {
    let request: AddVehicles = optional_body(&body)?;
    SimHandle::from_state(state).add_vehicles(&user, &request).map(Json)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Invalidate {
    vendor: Option<String>,
}

#[derive(Debug, Serialize)]
struct Invalidated {
    vendors: Vec<String>,
}

async fn invalidate(
    State(state): Shared,
    Path(user): Path<String>,
    body: Bytes,
) -> Result<Json<Invalidated>, SimError> {
    let request: Invalidate = optional_body(&body)?;
    SimHandle::from_state(state)
        .invalidate_credentials(&user, request.vendor.as_deref())
        .map(|vendors| Json(Invalidated { vendors }))
}

async fn command(
    State(state): Shared,
    Path((id, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Vehicle>, SimError> {
    let set: SetValues = optional_body(&body)?;
    let command = Command::parse(&name, set).ok_or_else(|| {
        SimError::bad_request(format!("unknown command {name:?}; one of {}", Command::NAMES.join(", ")))
    })?;
    SimHandle::from_state(state).command(&id, command).map(Json)
}

async fn clock(State(state): Shared) -> Json<ClockView> {
    Json(SimHandle::from_state(state).clock())
}

#[derive(Debug, Deserialize)]
struct Advance {
    seconds: f64,
}

async fn advance(
    State(state): Shared,
    ProblemJson(request): ProblemJson<Advance>,
) -> Result<Json<ClockView>, SimError> {
    if !(request.seconds.is_finite() && request.seconds >= 0.0) {
        return Err(SimError::bad_request("seconds must be a non-negative number"));
    }
    let handle = SimHandle::from_state(state);
    handle.advance(Duration::from_secs_f64(request.seconds));
    Ok(Json(handle.clock()))
}

async fn expire_tokens(State(state): Shared) -> StatusCode {
    SimHandle::from_state(state).expire_tokens();
    StatusCode::NO_CONTENT
}

/// An empty body means the defaults.
fn optional_body<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> Result<T, SimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| SimError::bad_request(format!("invalid JSON body: {e}")))
}
