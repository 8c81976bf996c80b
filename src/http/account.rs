//! The caller's own account: API keys (create, list, revoke).

use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::json::JsonBody;

/// Longest key label accepted.
const MAX_LABEL: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/user/keys", get(list_keys).post(create_key))
        .route("/api/user/keys/{key_id}", delete(revoke_key))
}

async fn list_keys(State(app): State<AppState>, Caller(caller): Caller) -> Result<Json<Vec<Value>>, ApiError> {
    let keys = app.accounts.list_keys(caller.user.id).await?;
    Ok(Json(keys.iter().map(|k| json!(k)).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    #[serde(default)]
    label: Option<String>,
}

/// The new key is in the answer once; only its hash is kept.
async fn create_key(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<NewKey>,
) -> Result<Json<Value>, ApiError> {
    let label = body.label.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty());
    if label.as_ref().is_some_and(|l| l.chars().count() > MAX_LABEL) {
        return Err(ApiError::Unprocessable(format!("label is longer than {MAX_LABEL} characters")));
    }
    let (key, plaintext) = app.accounts.create_key(&caller.user, label, app.clock.now()).await?;
    Ok(Json(json!({ "key": plaintext, "id": key.id, "label": key.label, "created_at": key.created_at })))
}

/// Revokes one of the caller's keys; it stops working on the very next request. Another user's
/// key id is 404, like an unknown one.
async fn revoke_key(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(key_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key_id = Uuid::parse_str(&key_id).map_err(|_| ApiError::NotFound("key not found"))?;
    if app.accounts.revoke_key(caller.user.id, key_id, app.clock.now()).await? {
        Ok(Json(json!({ "revoked": key_id })))
    } else {
        Err(ApiError::NotFound("key not found"))
    }
}
