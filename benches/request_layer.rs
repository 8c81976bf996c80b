//! What the request layer (request id, span, metrics: http/observe.rs) costs on the hot path,
//! `GET /api/status/{id}`, measured in-process (no sockets, so only the router and handlers are
//! compared):
//!
//! - `bare`: a bare axum handler answering the same bytes (the ceiling),
//! - `routes`: the real routes, no layers,
//! - `routes + observe`: the same with only this layer,
//! - `served`: the router as served (every layer),
//! - all of it again with a tracing subscriber at INFO installed. Spans at INFO are real work;
//!   the status poll's is at DEBUG since 2026-12-06 (`request_span`), so this shows what the
//!   subscriber still costs a poll.
//!
//! Run with `cargo bench --bench request_layer`. Prints ns per request (best of several rounds).

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::Request;
use axum::routing::get;
use chrono::Utc;
use evconduit::accounts::{self, UserSpec};
use evconduit::app::App;
use evconduit::config::{Config, LogFormat, Secret};
use evconduit::http::observe::ObserveLayer;
use evconduit::store::Role;
use evconduit_actors::model::Vehicle;
use evconduit_actors::state::DataSource;
use evconduit_actors::vehicle::ObservationKind;
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const REQUESTS: u32 = 50_000;
/// Rounds alternate between the routers, so a noisy neighbour hits them all alike; the best
/// round of each counts.
const ROUNDS: usize = 15;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        database_url: Secret::new(format!("sqlite://{}", dir.path().join("bench.db").display())),
        log_format: LogFormat::Text,
        ..Config::default()
    };
    let app = App::build(config).await.expect("app");
    let state = app.state().clone();
    let spec = UserSpec { id: None, email: "bench@example.com".into(), name: None, role: Role::User, tier: None };
    let user = accounts::create_user(state.store.as_ref(), spec, Utc::now()).await.expect("user");
    let (_, key) = accounts::create_api_key(state.store.as_ref(), user.id, None, Utc::now()).await.expect("key");
    let mut vehicle: Vehicle = serde_json::from_str(include_str!("../tests/fixtures/vehicle.json")).expect("fixture");
    vehicle.id = "bench-car".into();
    state.fleet.observe(user.id, vehicle, DataSource::Webhook, ObservationKind::Updated);
    while state.fleet.board().get("bench-car").is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let body = state.fleet.board().get("bench-car").expect("car").snapshot().rendered().body.clone();

    let bare: Router = Router::new().route(
        "/api/status/{vehicle_id}",
        get(move || {
            let body = body.clone();
            async move { body }
        }),
    );
    let (plain, _) = evconduit::http::api().split_for_parts();
    let plain: Router = plain.with_state(state.clone());
    let observed: Router = plain.clone().layer(ObserveLayer::new(state.http_metrics.clone()));
    let served: Router = evconduit::http::router(state.clone());
    let auth = format!("Bearer {key}");

    let routers = [&bare, &plain, &observed, &served];
    let quiet = measure_all(routers, &auth).await;
    tracing_subscriber::registry()
        .with(evconduit::telemetry::log_layer(LogFormat::Text, "info", std::io::sink, false))
        .init();
    let logging = measure_all(routers, &auth).await;
    println!("ns/request (best of {ROUNDS} x {REQUESTS}):");
    for (name, [bare, plain, observed, served]) in [("no subscriber", quiet), ("subscriber at INFO", logging)] {
        println!(
            "  {name}: bare {bare:.0}, routes {plain:.0}, routes + observe {observed:.0}, served {served:.0} \
             => observe adds {:.0} ns; throughput vs bare: routes {:.2}x, + observe {:.2}x, served {:.2}x",
            observed - plain,
            bare / plain,
            bare / observed,
            bare / served,
        );
    }
    drop(app);
}

async fn measure_all(routers: [&Router; 4], auth: &str) -> [f64; 4] {
    let mut best = [f64::MAX; 4];
    for _ in 0..ROUNDS {
        for (best, router) in best.iter_mut().zip(routers) {
            *best = best.min(round(router, auth).await);
        }
    }
    best
}

/// Nanoseconds per request over one round.
async fn round(router: &Router, auth: &str) -> f64 {
    let start = Instant::now();
    for _ in 0..REQUESTS {
        let request =
            Request::get("/api/status/bench-car").header("authorization", auth).body(Body::empty()).expect("request");
        let response = router.clone().oneshot(request).await.expect("infallible");
        assert!(response.status().is_success());
        let _: Bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    }
    start.elapsed().as_nanos() as f64 / f64::from(REQUESTS)
}
