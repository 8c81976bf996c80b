//! The one layer every request passes: a request id (taken from `x-request-id` when the caller
//! sends a sane one, else made here; returned as a header), a `request` span carrying it, and the
//! request metrics (route template, method, status, latency).
//!
//! HA polls are the hot path (benchmarked against a bare axum handler), so this is a hand-written
//! tower service rather than `middleware::from_fn` (which boxes every future): per request it
//! costs two clock reads, one span, one 16-byte id and one histogram update. Measured in-process
//! with `cargo bench --bench request_layer` (on a loaded 2-core machine): 0.6 to 1 µs per request
//! without a log subscriber, about 1.9 µs with one at INFO (the span is then registered and its
//! fields formatted), which is why a status poll's span is at DEBUG (`request_span`). It is
//! stacked with the other layers in one `Router::layer` call (see `http::router`): axum boxes
//! every route once more per call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::MatchedPath;
use axum::http::{HeaderName, HeaderValue, Request, Response};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::metrics::{HttpMetrics, RequestLabels, Route, method_label};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest caller-supplied request id kept; longer or odd ones are replaced.
const MAX_REQUEST_ID: usize = 64;

#[derive(Clone)]
pub struct ObserveLayer {
    metrics: HttpMetrics,
    ids: Arc<RequestIds>,
}

impl ObserveLayer {
    pub fn new(metrics: HttpMetrics) -> Self {
        Self { metrics, ids: Arc::new(RequestIds::new()) }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner, metrics: self.metrics.clone(), ids: Arc::clone(&self.ids) }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: HttpMetrics,
    ids: Arc<RequestIds>,
}

impl<S, B, ResBody> Service<Request<B>> for Observe<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ObservedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let start = Instant::now();
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .filter(|v| acceptable_id(v.as_bytes()))
            .cloned()
            .unwrap_or_else(|| self.ids.next());
        let route = match request.extensions().get::<MatchedPath>() {
            Some(path) => Route::Matched(path.clone()),
            None => Route::Unmatched,
        };
        let method = method_label(request.method());
        let span = request_span(method, route.as_str(), request_id.to_str().unwrap_or_default());
        let inner = self.inner.call(request).instrument(span);
        ObservedFuture { inner, start, request_id: Some(request_id), route, method, metrics: self.metrics.clone() }
    }
}

pin_project_lite::pin_project! {
    pub struct ObservedFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        start: Instant,
        request_id: Option<HeaderValue>,
        route: Route,
        method: &'static str,
        metrics: HttpMetrics,
    }
}

impl<F, ResBody, E> Future for ObservedFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.inner.poll(cx));
        if let Ok(response) = &mut result {
            let labels =
                RequestLabels { route: this.route.clone(), method: this.method, status: response.status().as_u16() };
            this.metrics.observe(&labels, this.start.elapsed());
            if let Some(id) = this.request_id.take() {
                response.headers_mut().insert(REQUEST_ID, id);
            }
        }
        Poll::Ready(result)
    }
}

/// Request ids made here: a random per-process start plus a counter, in hex. Unique within a
/// process by construction and across processes with overwhelming odds, and cheaper than a UUID.
struct RequestIds {
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        Self { next: AtomicU64::new(rand::random()) }
    }

    fn next(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut hex = [0u8; 16];
        for (i, byte) in hex.iter_mut().enumerate() {
            let nibble = ((n >> (60 - 4 * i)) & 0xf) as u8;
            *byte = if nibble < 10 { b'0' + nibble } else { b'a' + nibble - 10 };
        }
        // Always valid: 16 lowercase hex digits.
        HeaderValue::from_bytes(&hex).unwrap_or_else(|_| HeaderValue::from_static("0"))
    }
}

/// The span a request runs in, carrying its method, route template and id into every event
/// logged inside it.
///
/// A span at INFO, the default level, is registered and its fields formatted for every request:
/// for HA's status polls, nearly all the traffic, that cost 9-15% of the reads (four alternating
/// pairs of harness runs at INFO against WARN, 2026-12-06). A poll logs nothing of its own, so
/// its span is at DEBUG, where it costs a level check; every other request keeps it at INFO.
/// `RUST_LOG=info,evconduit::http::observe=debug` brings the polls' spans back.
fn request_span(method: &str, route: &str, request_id: &str) -> tracing::Span {
    if is_status_poll(route) {
        tracing::debug_span!("request", method, route, request_id)
    } else {
        tracing::info_span!("request", method, route, request_id)
    }
}

/// Whether a route is HA's status poll, under any of its paths (`/api/status/{vehicle_id}` and
/// the older prefixes' aliases).
fn is_status_poll(route: &str) -> bool {
    route.ends_with("/status/{vehicle_id}")
}

/// A caller's id is kept when it is short and plain (it goes into logs and back into a header).
fn acceptable_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_distinct() {
        let ids = RequestIds::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
    }

    #[test]
    fn at_info_only_status_polls_run_without_a_span() {
        use tracing_subscriber::filter::LevelFilter;
        use tracing_subscriber::layer::SubscriberExt;

        let at_info = tracing_subscriber::registry().with(LevelFilter::INFO);
        tracing::subscriber::with_default(at_info, || {
            for poll in ["/api/status/{vehicle_id}", "/api/ha/status/{vehicle_id}", "/api/v1/ha/status/{vehicle_id}"] {
                assert!(request_span("GET", poll, "id-1").is_disabled(), "{poll}");
            }
            for other in ["/api/webhook/enode", "/api/user/vehicles", "/api/ha/webhook/status", "unmatched"] {
                assert!(!request_span("GET", other, "id-2").is_disabled(), "{other}");
            }
        });
        let at_debug = tracing_subscriber::registry().with(LevelFilter::DEBUG);
        tracing::subscriber::with_default(at_debug, || {
            assert!(!request_span("GET", "/api/status/{vehicle_id}", "id-3").is_disabled());
        });
    }

    #[test]
    fn odd_caller_ids_are_replaced() {
        assert!(acceptable_id(b"abc-123_x.y"));
        assert!(!acceptable_id(b""));
        assert!(!acceptable_id(b"has space"));
        assert!(!acceptable_id(&[b'a'; 65]));
    }
}
