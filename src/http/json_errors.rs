//! Every error leaves as JSON. Handlers return `ApiError` (already JSON), but a few answers are
//! made by axum or hyper before a handler runs: a path that does not percent-decode, a query that
//! does not parse, a body over the limit. Those come as `text/plain`, and the HA client's JSON
//! decoder turns a text body into "network error". This layer rewrites such answers into the
//! API's `{"detail", "code"}` shape, keeping the status and the message.

use axum::body::{Body, to_bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::json;

/// Longest original message kept as `detail` (axum's rejection texts are short).
const MAX_DETAIL: usize = 300;

pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text =
        to_bytes(body, MAX_DETAIL * 4).await.map(|b| String::from_utf8_lossy(&b).trim().to_owned()).unwrap_or_default();
    let detail = if text.is_empty() || text.len() > MAX_DETAIL {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let code = status.canonical_reason().unwrap_or("error").to_ascii_lowercase().replace([' ', '-'], "_");
    let body = json!({ "detail": detail, "code": code }).to_string();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("application/problem+json"))
}
