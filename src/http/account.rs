//! The caller's own account: API keys (create, list, revoke).

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::json::JsonBody;
use super::openapi::ErrorBody;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest key label accepted.
const MAX_LABEL: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_keys, create_key)).routes(routes!(revoke_key))
}

/// The caller's API keys (never the keys themselves).
#[utoipa::path(
    get,
    path = "/api/user/keys",
    tag = "account",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Keys: id, label, created, last used, revoked", body = Vec<Object>),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
    )
)]
async fn list_keys(State(app): State<AppState>, Caller(caller): Caller) -> Result<Json<Vec<Value>>, ApiError> {
    let keys = app.accounts.list_keys(caller.user.id).await?;
    Ok(Json(keys.iter().map(|k| json!(k)).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKey {
    #[serde(default)]
    label: Option<String>,
}

/// Create an API key. The new key is in the answer once; only its hash is kept.
#[utoipa::path(
    post,
    path = "/api/user/keys",
    tag = "account",
    request_body = NewKey,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The new key (`key`, shown once), its id, label and creation time", body = Object),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 422, description = "Label too long or unknown fields", body = ErrorBody),
    )
)]
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

/// Revoke one of the caller's keys.
///
/// It stops working on the very next request. Another user's key id is 404, like an unknown one.
#[utoipa::path(
    delete,
    path = "/api/user/keys/{key_id}",
    tag = "account",
    params(("key_id" = String, Path, description = "The key's id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Revoked: `{\"revoked\": id}`", body = Object),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "No such key for this caller", body = ErrorBody),
    )
)]
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
