//! `POST /oauth2/token`: the client-credentials grant, with the client id and secret in HTTP
//! Basic, as Enode's OAuth server wants them. Errors use OAuth's own shape (RFC 6749 5.2), not
//! problem+json, because that is what an OAuth server answers.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

use crate::enode::model::TokenResponse;
use crate::enode::sim::lock;
use crate::enode::sim::state::SimState;

pub async fn token(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some((id, secret)) = basic_credentials(&headers) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication with HTTP Basic is required",
        );
    };
    if id != state.config.client_id || secret != state.config.client_secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client or wrong secret");
    }
    let grant =
        url::form_urlencoded::parse(&body).find(|(key, _)| key == "grant_type").map(|(_, value)| value.into_owned());
    if grant.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        );
    }
    let mut tokens = lock(&state.tokens);
    let access_token = tokens.mint(Instant::now());
    let expires_in = tokens.ttl().as_secs();
    drop(tokens);
    let mut response =
        Json(TokenResponse { access_token, expires_in, scope: String::new(), token_type: "bearer".to_owned() })
            .into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(serde_json::json!({ "error": error, "error_description": description }))).into_response()
}
