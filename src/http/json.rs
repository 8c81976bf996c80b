//! A JSON body extractor whose rejections are this API's JSON errors (axum's own are plain text,
//! which the HA client cannot read). Malformed JSON is 400; well-formed JSON of the wrong shape is 422.

use std::task::{Context, Poll};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::Method;
use serde::de::DeserializeOwned;
use tower::{Layer, Service};

use super::error::ApiError;

/// Largest JSON request body (set for every route by `DefaultBodyLimit` in `router`). The API's
/// bodies are a few hundred bytes; a larger limit would only help someone filling memory.
pub const BODY_LIMIT: usize = 64 * 1024;

pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Unprocessable(e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::BadRequest(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::BadRequest("expected Content-Type: application/json".into()))
            }
            Err(other) if other.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge { limit: BODY_LIMIT })
            }
            Err(other) => Err(ApiError::BadRequest(other.body_text())),
        }
    }
}

/// A JSON body that may also be absent (empty): then `T::default()`.
pub fn parse_optional<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::Unprocessable(e.to_string()),
        _ => ApiError::BadRequest(format!("malformed JSON: {e}")),
    })
}

/// `DefaultBodyLimit::max(BODY_LIMIT)` for the methods that carry a body. axum's layer marks
/// every request with an extension, an allocation that cost each HA poll (a GET, no body) about
/// 0.2 us (`cargo bench --bench request_layer`); no route reads the body of a GET or HEAD. Routes
/// that read their raw `Body` (the webhook, with its own larger limit) are unaffected, as with
/// axum's layer.
#[derive(Clone)]
pub struct BodyLimit<S> {
    inner: S,
}

impl<S> BodyLimit<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S: Service<Request> + Clone> Service<Request> for BodyLimit<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> S::Future {
        if matches!(*request.method(), Method::GET | Method::HEAD) {
            return self.inner.call(request);
        }
        // The limit's wrapper is made here, for this request only, around the service that
        // `poll_ready` readied (a clone takes its place): axum clones a route's whole stack for
        // every request, and a second service kept in `self` would be cloned on every poll too.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        DefaultBodyLimit::max(BODY_LIMIT).layer(ready).call(request)
    }
}
