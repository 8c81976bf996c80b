//! `POST /api/ha/refresh`: HA's "refresh now". Sends Enode a refresh hint for each of the caller's
//! vehicles, at most once per cooldown per vehicle (Enode asks for hints to be used sparingly),
//! and answers at once: the new data arrives later by webhook, like any other.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::openapi::{ErrorBody, alias};
use crate::enode::client::Priority;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    alias(OpenApiRouter::new().routes(routes!(refresh)), "/api/v1/ha/refresh", "/api/ha/refresh", post(refresh))
}

/// A hint still waiting for a budget permit after this long is dropped.
const HINT_DEADLINE: Duration = Duration::from_secs(60);

/// Remembered hints above which expired ones are dropped.
const FORGET_ABOVE: usize = 10_000;

/// When each vehicle last got a hint.
pub struct HintCooldowns {
    cooldown: Duration,
    last: DashMap<Uuid, DateTime<Utc>>,
}

impl HintCooldowns {
    pub fn new(cooldown: Duration) -> Self {
        Self { cooldown, last: DashMap::new() }
    }

    /// Claims a hint for `vehicle` at `now` if its cooldown has passed.
    fn claim(&self, vehicle: Uuid, now: DateTime<Utc>) -> bool {
        // Entries past their cooldown carry no information: drop them now and then, so vehicles
        // removed long ago do not stay here forever.
        if self.last.len() > FORGET_ABOVE {
            self.last.retain(|_, at| (now - *at).to_std().is_ok_and(|since| since < self.cooldown));
        }
        let mut last = self.last.entry(vehicle).or_insert(DateTime::<Utc>::MIN_UTC);
        let due = (now - *last).to_std().is_ok_and(|since| since >= self.cooldown);
        if due {
            *last = now;
        }
        due
    }
}

/// Ask Enode to refresh the caller's vehicles ("refresh now").
///
/// At most one hint per vehicle per cooldown; the new data arrives later by webhook.
#[utoipa::path(
    post,
    path = "/api/ha/refresh",
    tag = "home-assistant",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "How many vehicles were hinted", body = Object),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 503, description = "Enode is not configured", body = ErrorBody),
    )
)]
async fn refresh(State(app): State<AppState>, Caller(caller): Caller) -> Result<Json<Value>, ApiError> {
    let client = app.enode.clone().ok_or_else(|| ApiError::Unavailable {
        detail: "Enode is not configured on this server".into(),
        retry_after_secs: None,
    })?;
    app.commands.check(caller.user.id)?;
    let now = app.clock.now();
    let vehicles = app.fleet.board().for_user(caller.user.id);
    let mut hinted = 0;
    for entry in &vehicles {
        let state = entry.snapshot().state.clone();
        if state.relink_required || !app.hints.claim(state.internal_id, now) {
            continue;
        }
        hinted += 1;
        let client = client.clone();
        let enode_id = state.vehicle.id.clone();
        // Not awaited: the answer must not wait for Enode, and the data comes back by webhook.
        // Best effort, at background priority: a hint must never delay someone's charging command,
        // and one that cannot get a budget permit soon is not worth sending late.
        tokio::spawn(async move {
            match tokio::time::timeout(HINT_DEADLINE, client.refresh_hint(&enode_id, Priority::Background)).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "refresh hint failed"),
                Err(_) => tracing::info!("refresh hint dropped: no Enode budget within its deadline"),
            }
        });
    }
    let cooldown = app.config.refresh_hint_cooldown_secs;
    let (status, message) = match (vehicles.len(), hinted) {
        (0, _) => ("ok", "no linked vehicles".to_owned()),
        (_, 0) => ("cooldown", format!("already asked within the last {cooldown} s; new data arrives by itself")),
        (_, n) => ("ok", format!("asked Enode to refresh {n} vehicle(s); new data arrives within minutes")),
    };
    Ok(Json(json!({ "status": status, "vehicles_updated": hinted, "message": message })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hint_per_cooldown_per_vehicle() {
        let hints = HintCooldowns::new(Duration::from_secs(300));
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = Utc::now();
        assert!(hints.claim(a, t0));
        assert!(!hints.claim(a, t0 + chrono::Duration::seconds(299)));
        assert!(hints.claim(b, t0));
        assert!(hints.claim(a, t0 + chrono::Duration::seconds(300)));
    }
}
