//! Bearer API keys. The key is looked up in memory (see `accounts`), so authenticating an HA poll
//! costs a hash and a map lookup.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::accounts::Principal;

/// The authenticated caller of a route.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer(parts).ok_or(ApiError::Unauthorized("missing bearer API key"))?;
        state
            .accounts
            .authenticate(key, state.clock.now())
            .await
            .map(Caller)
            .ok_or(ApiError::Unauthorized("invalid or revoked API key"))
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim()).filter(|k| !k.is_empty())
}
