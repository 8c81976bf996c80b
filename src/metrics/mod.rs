//! Prometheus metrics, served as text at `/metrics` on a listener of its own
//! (`metrics_listen`, off by default) so scrapes never share a port with the public API.
//!
//! Only HTTP request metrics are recorded as they happen (`requests`, fed by the request layer in
//! http/observe.rs). Everything else is computed at scrape time from the `stats()` snapshots the
//! components already keep (`scrape`): no counters sprinkled through other modules, and one
//! place that says what is exported. A new component adds its numbers there, from its own
//! `stats()`.
//!
//! Why `prometheus-client`: it is the Prometheus project's own Rust client, has no global
//! registry (each app owns its numbers, so tests that start several apps in one process stay
//! apart) and its `Collector` trait is made for metrics computed on each scrape.

mod requests;
mod scrape;

use std::future::Future;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::http::AppState;
pub use requests::{HttpMetrics, RequestLabels, Route, method_label};

/// The Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric, in the Prometheus text format. Metric names start with `evconduit_`.
pub fn render(state: &AppState) -> Result<String, std::fmt::Error> {
    // A registry per scrape: registering is a few pushes, and the collector then borrows the
    // app's handles only for this scrape instead of holding them forever.
    let mut registry = Registry::with_prefix("evconduit");
    state.http_metrics.register(&mut registry);
    registry.register_collector(Box::new(scrape::Scrape::new(state.clone())));
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

/// Serves `/metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = Router::new().route("/metrics", get(metrics)).with_state(state);
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await.context("serving metrics")
}

async fn metrics(State(state): State<AppState>) -> Response {
    // A scrape walks the whole fleet (~0.1 s at 100 000 vehicles, see `scrape`): on a runtime
    // worker it would hold every HA read queued behind it for that long, on the blocking pool it
    // shares the core in scheduler slices. Not at idle priority like the fleet's own walks: an
    // operator needs the numbers most when the server is saturated.
    match tokio::task::spawn_blocking(move || render(&state)).await {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))], text).into_response(),
        Ok(Err(_)) | Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "could not encode metrics").into_response(),
    }
}
