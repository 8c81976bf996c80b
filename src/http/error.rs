//! The one error type of the HTTP boundary. Every error leaves as JSON
//! `{"detail": "...", "code": "..."}` with `Content-Type: application/json` (the HA client rejects a
//! JSON body labelled otherwise). Internal details are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    Unprocessable(String),
    /// A per-user limit on commands; never used for polls.
    #[error("{detail}")]
    TooManyRequests { detail: String, retry_after_secs: u64 },
    #[error("{detail}")]
    Unavailable { detail: String, retry_after_secs: Option<u64> },
    /// Enode answered in a way this service cannot use (refused credentials, a broken answer).
    #[error("{0}")]
    BadGateway(String),
    /// Something broke inside; the message is logged, the client gets a generic one.
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    detail: &'a str,
    code: &'a str,
}

impl ApiError {
    pub fn internal(err: impl std::fmt::Display) -> Self {
        ApiError::Internal(err.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable name for the error.
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::BadGateway(_) => "bad_gateway",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "request failed");
        }
        let detail = match &self {
            ApiError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        let body = serde_json::to_vec(&ErrorBody { detail: &detail, code: self.code() })
            .unwrap_or_else(|_| br#"{"detail":"error","code":"internal"}"#.to_vec());
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let ApiError::Unauthorized(_) = self {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::Unavailable { retry_after_secs: Some(secs), .. }
        | ApiError::TooManyRequests { retry_after_secs: secs, .. } = self
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        match err {
            crate::store::StoreError::Unavailable(_) => {
                tracing::warn!(error = %err, "store unavailable");
                ApiError::Unavailable {
                    detail: "storage is unavailable; try again shortly".into(),
                    retry_after_secs: Some(5),
                }
            }
            crate::store::StoreError::Conflict(what) => ApiError::Conflict(format!("already exists: {what}")),
            other => ApiError::internal(other),
        }
    }
}

impl From<evconduit_actors::ports::UpstreamError> for ApiError {
    /// Enode's answers as this API's: its refusals keep Enode's own words (409 for "not now": the
    /// car is unplugged or already charging; 422 when smart charging is in control), and an
    /// unreachable or rate-limited Enode is 503 with when to try again.
    fn from(err: evconduit_actors::ports::UpstreamError) -> Self {
        use evconduit_actors::ports::UpstreamError as E;
        match err {
            E::NotFound => ApiError::NotFound("not found at Enode"),
            E::Rejected { detail } => ApiError::Conflict(detail),
            E::Unprocessable { detail } => ApiError::Unprocessable(detail),
            E::Unavailable { retry_after, detail } => {
                tracing::warn!(%detail, "Enode unavailable");
                ApiError::Unavailable {
                    detail: "Enode is unavailable right now; try again shortly".into(),
                    retry_after_secs: Some(retry_after.map_or(10, |d| d.as_secs().max(1))),
                }
            }
            E::Failed { detail } => {
                tracing::error!(%detail, "Enode call failed");
                ApiError::BadGateway("Enode gave an answer this service could not use".into())
            }
        }
    }
}

impl From<crate::enode::client::EnodeError> for ApiError {
    fn from(err: crate::enode::client::EnodeError) -> Self {
        ApiError::from(crate::upstream::to_port(err))
    }
}

impl From<evconduit_actors::fleet::CommandError> for ApiError {
    fn from(err: evconduit_actors::fleet::CommandError) -> Self {
        use evconduit_actors::fleet::CommandError as E;
        match err {
            E::NotFound => ApiError::NotFound("vehicle not found"),
            E::NotRunning(status) => ApiError::Unavailable {
                detail: format!("the vehicle is {} in this service; try again shortly", status.as_str()),
                retry_after_secs: Some(5),
            },
            E::Timeout => ApiError::Unavailable {
                detail: "Enode did not answer in time; try again shortly".into(),
                retry_after_secs: Some(10),
            },
            E::Upstream(err) => ApiError::from(err),
        }
    }
}
