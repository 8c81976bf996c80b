//! Every error leaves as JSON. Handlers return `ApiError` (already JSON), but a few answers are
//! made by axum or hyper before a handler runs: a path that does not percent-decode, a query that
//! does not parse, a body over the limit. Those come as `text/plain`, and the HA client's JSON
//! decoder turns a text body into "network error". This layer rewrites such answers into the
//! API's `{"detail", "code"}` shape, keeping the status and the message.
//!
//! Hand-written rather than `middleware::map_response`, which boxes a future for every response:
//! that cost every HA poll about 0.6 us (`cargo bench --bench request_layer`) to pass on answers
//! that need nothing. Here a response that is fine goes straight through; only a rewrite is boxed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::{Body, to_bytes};
use axum::http::{HeaderValue, Request, header};
use axum::response::Response;
use futures::future::BoxFuture;
use serde_json::json;
use tower::Service;

/// Longest original message kept as `detail` (axum's rejection texts are short).
const MAX_DETAIL: usize = 300;

#[derive(Clone)]
pub struct JsonErrors<S> {
    inner: S,
}

impl<S> JsonErrors<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, B> Service<Request<B>> for JsonErrors<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = JsonErrorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        JsonErrorsFuture::Inner { inner: self.inner.call(request) }
    }
}

pin_project_lite::pin_project! {
    #[project = Step]
    pub enum JsonErrorsFuture<F> {
        Inner { #[pin] inner: F },
        Rewriting { rewrite: BoxFuture<'static, Response> },
    }
}

impl<F, E> Future for JsonErrorsFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                Step::Inner { inner } => match ready!(inner.poll(cx)) {
                    Ok(response) if needs_rewrite(&response) => {
                        self.set(JsonErrorsFuture::Rewriting { rewrite: Box::pin(as_json(response)) });
                    }
                    done => return Poll::Ready(done),
                },
                Step::Rewriting { rewrite } => return rewrite.as_mut().poll(cx).map(Ok),
            }
        }
    }
}

/// An error answer that is not JSON already.
fn needs_rewrite(response: &Response) -> bool {
    let status = response.status();
    (status.is_client_error() || status.is_server_error()) && !is_json(response)
}

/// The same answer as `{"detail", "code"}`: the original text (when short) and the status's name.
async fn as_json(response: Response) -> Response {
    let status = response.status();
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
