//! The ceiling: the fastest this machine serves the status answer with the service's stack. A
//! bare axum handler on the same route, in its own process with the same runtime as
//! `evconduit serve`, answering the same bytes (body and headers captured from the real service)
//! with no authentication and no lookup. Whatever the service does below this is the cost of
//! auth, the snapshot lookup, the freshness headers and any middleware.
//!
//! The same server started with a number of copies serves each request a copy of the body picked
//! by a hash of its path: as many distinct bodies as the service has vehicles, each its own
//! allocation, so each answer's bytes are as likely to be out of the caches as the service's.
//! That is the memory-bound ceiling, reported beside the ratio (not instead of it): how much of
//! the service's distance from the ceiling is touching 100 000 bodies rather than one.

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, Uri};
use axum::routing::{MethodRouter, get};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The answer the ceiling gives, as captured from the service.
#[derive(Serialize, Deserialize)]
pub struct Canned {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Headers hyper writes itself; copying them would send them twice.
const HYPER_OWNS: [&str; 3] = ["content-length", "date", "connection"];

/// Runs the ceiling server until killed, answering with one body, or with one of `copies`
/// copies of it (picked by the request's path) when `copies` is more than one. Called in the
/// child process.
pub fn serve(addr: SocketAddr, canned: &Path, copies: usize) -> ! {
    let canned: Canned =
        serde_json::from_slice(&std::fs::read(canned).expect("read the canned answer")).expect("canned answer is JSON");
    let mut headers = HeaderMap::new();
    for (name, value) in &canned.headers {
        if HYPER_OWNS.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    let body = Bytes::from(canned.body);
    let status = if copies > 1 { distinct_bodies(headers, &body, copies) } else { one_body(headers, body) };
    // The same runtime `evconduit serve` builds (src/main.rs).
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let app = Router::new().route("/api/status/{vehicle_id}", status);
        let app = app.route("/healthz", get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the ceiling's port");
        axum::serve(listener, app).await.expect("ceiling serves");
    });
    std::process::exit(0)
}

/// Every request gets the same bytes: they stay in the caches.
fn one_body(headers: HeaderMap, body: Bytes) -> MethodRouter {
    get(move || {
        let (headers, body) = (headers.clone(), body.clone());
        async move { answer(headers, body) }
    })
}

/// Each request gets one of `copies` copies of the body, each allocated on its own, picked by a
/// hash of the path (no map: nothing but the bytes is looked up).
fn distinct_bodies(headers: HeaderMap, body: &Bytes, copies: usize) -> MethodRouter {
    let bodies: Arc<Vec<Bytes>> = Arc::new((0..copies).map(|_| Bytes::copy_from_slice(body)).collect());
    let hasher = foldhash::fast::FixedState::with_seed(0);
    get(move |uri: Uri| {
        let headers = headers.clone();
        let pick = hasher.hash_one(uri.path()) as usize % bodies.len();
        let body = bodies[pick].clone();
        async move { answer(headers, body) }
    })
}

fn answer(headers: HeaderMap, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = headers;
    response
}
