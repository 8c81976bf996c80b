//! The ceiling: the fastest this machine serves the status answer with the service's stack. A
//! bare axum handler on the same route, in its own process with the same runtime as
//! `evconduit serve`, answering the same bytes (body and headers captured from the real service)
//! with no authentication and no lookup. Whatever the service does below this is the cost of
//! auth, the snapshot lookup, the freshness headers and any middleware.

use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response};
use axum::routing::get;
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

/// Runs the ceiling server until killed. Called in the child process.
pub fn serve(addr: SocketAddr, canned: &Path) -> ! {
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
    // The same runtime `evconduit serve` builds (src/main.rs).
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let app = Router::new().route(
            "/api/status/{vehicle_id}",
            get(move || {
                let (headers, body) = (headers.clone(), body.clone());
                async move {
                    let mut response = Response::new(Body::from(body));
                    *response.headers_mut() = headers;
                    response
                }
            }),
        );
        let app = app.route("/healthz", get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the ceiling's port");
        axum::serve(listener, app).await.expect("ceiling serves");
    });
    std::process::exit(0)
}
