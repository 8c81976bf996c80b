//! The simulator's HTTP surface: Enode's API (behind the gate), the OAuth token endpoint, the
//! link page a browser opens, and the `/_sim` controls.

mod control;
mod gate;
mod oauth;
mod users;
mod vehicles;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::pagination::PageQuery;
use super::problem::SimError;
use super::state::SimState;

pub fn router(state: Arc<SimState>) -> Router {
    let api = Router::new()
        .route("/vehicles", get(vehicles::list_all))
        .route("/vehicles/{id}", get(vehicles::get))
        .route("/vehicles/{id}/charging", post(vehicles::charge))
        .route("/vehicles/{id}/refresh-hint", post(vehicles::refresh_hint))
        .route("/vehicles/actions/{id}", get(vehicles::action))
        .route("/vehicles/actions/{id}/cancel", post(vehicles::cancel_action))
        .route("/users/{userId}", delete(users::delete_user))
        .route("/users/{userId}/vehicles", get(vehicles::list_for_user))
        .route("/users/{userId}/link", post(users::link))
        .route("/users/{userId}/vendors/{vendor}", delete(users::delete_vendor))
        .route("/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/webhooks/{id}", get(webhooks::get).patch(webhooks::update).delete(webhooks::delete))
        .route("/webhooks/{id}/test", post(webhooks::test))
        .route_layer(from_fn_with_state(state.clone(), gate::api));
    let oauth = Router::new()
        .route("/oauth2/token", post(oauth::token))
        .route_layer(from_fn_with_state(state.clone(), gate::token));
    let open = Router::new().route("/link/{token}", get(users::open_link)).nest("/_sim", control::router());
    api.merge(oauth).merge(open).fallback(not_found).with_state(state)
}

async fn not_found(req: Request) -> SimError {
    SimError::not_found("route", req.uri().path())
}

/// A JSON body whose errors are answered as problem+json (axum's own `Json` answers plain text).
pub struct ProblemJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ProblemJson<T> {
    type Rejection = SimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, SimError> {
        let body = Bytes::from_request(req, state).await.map_err(|e| SimError::bad_request(e.body_text()))?;
        serde_json::from_slice(&body)
            .map(ProblemJson)
            .map_err(|e| SimError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// The pagination query, read by hand so a malformed one is a problem+json 400 too.
fn page_query(raw: Option<String>) -> PageQuery {
    let mut query = PageQuery::default();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let value = Some(value.into_owned());
        match &*key {
            "pageSize" => query.page_size = value,
            "after" => query.after = value,
            "before" => query.before = value,
            _ => {}
        }
    }
    query
}
