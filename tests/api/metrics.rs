//! `/metrics` on its own listener, request ids, and what the numbers say after some traffic.

use std::net::SocketAddr;

use evconduit::config::Config;
use evconduit::store::testing::TestDatabase;
use reqwest::StatusCode;

use crate::helpers::*;

/// The value of the sample whose line starts with `series` (name and labels, exactly).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_their_own_listener() {
    let db = TestDatabase::sqlite();
    let config = Config { metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))), ..config(&db) };
    let app = TestApp::start(config).await;
    let (user, key) = app.user_with_key(None, "metrics@example.com", None).await;
    let user = user.to_string();
    let events: Vec<_> = (0..2).map(|i| updated_event(&format!("m-{i}"), &user, "2026-11-25T10:00:00Z", 50)).collect();
    app.signed_webhook(&batch(&events)).await;
    app.eventually_status(&key, "m-1", "created", |b| b["batteryLevel"] == 50).await;
    for _ in 0..3 {
        assert_eq!(app.get(&key, "/api/status/m-0").await.status(), StatusCode::OK);
    }
    app.get(&key, "/api/status/nope").await;
    app.webhook(b"[]", Some("sha1=00"), "bad-signature").await;

    // Not on the public port.
    let (status, _) = app.get_json(&key, "/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let addr = app.metrics_addr.expect("metrics listener bound");
    let response = app.http.get(format!("http://{addr}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    let status_route = r#"route="/api/status/{vehicle_id}",method="GET""#;
    // eventually_status polled too, so at least the three reads above.
    let ok = sample(&text, &format!("evconduit_http_request_duration_seconds_count{{{status_route},status=\"200\"}}"));
    assert!(ok.is_some_and(|n| n >= 3.0), "{text}");
    let not_found =
        sample(&text, &format!("evconduit_http_request_duration_seconds_count{{{status_route},status=\"404\"}}"));
    // eventually_status may have met a 404 too, before the vehicle existed.
    assert!(not_found.is_some_and(|n| n >= 1.0), "404s keep the route template, not the raw path");
    assert!(!text.contains("nope"), "no raw paths in labels");
    assert!(text.contains("evconduit_http_request_duration_seconds_bucket{"));
    assert_eq!(sample(&text, r#"evconduit_actors{status="running"}"#), Some(2.0), "{text}");
    assert_eq!(sample(&text, r#"evconduit_actors{status="degraded"}"#), Some(0.0));
    assert_eq!(sample(&text, r#"evconduit_actors{status="idle"}"#), Some(0.0), "none idle for 10 minutes yet");
    assert_eq!(sample(&text, "evconduit_actor_sleeps_total"), Some(0.0));
    assert_eq!(sample(&text, "evconduit_vehicles"), Some(2.0));
    assert_eq!(sample(&text, "evconduit_actor_restarts_total"), Some(0.0));
    assert_eq!(sample(&text, r#"evconduit_webhook_deliveries_total{outcome="accepted"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"evconduit_webhook_deliveries_total{outcome="rejected_signature"}"#), Some(1.0));
    assert_eq!(
        sample(&text, r#"evconduit_webhook_events_total{type="user:vehicle:updated",outcome="handled"}"#),
        Some(2.0)
    );
    assert!(sample(&text, "evconduit_store_write_behind_backlog").is_some());
    assert!(sample(&text, "evconduit_store_write_behind_in_flight").is_some());
    assert!(sample(&text, "evconduit_store_writes_total").is_some());
    // SQLite's WAL: present from the start, its length once the checkpointer has looked.
    assert!(sample(&text, "evconduit_store_wal_bytes").is_some(), "{text}");
    assert_eq!(sample(&text, "evconduit_vehicle_data_age_seconds_count"), Some(2.0));
    assert_eq!(sample(&text, r#"evconduit_vehicles_by_source{source="webhook"}"#), Some(2.0));
    // The runtime's lateness, counted since start.
    let lag_samples = sample(&text, "evconduit_runtime_lag_seconds_count");
    assert!(lag_samples.is_some_and(|n| n > 0.0), "{text}");
    assert_eq!(sample(&text, r#"evconduit_runtime_lag_seconds_bucket{le="+Inf"}"#), lag_samples);
    assert!(sample(&text, r#"evconduit_runtime_lag_seconds_bucket{le="0.005"}"#).is_some(), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let first = app.http.get(app.url("/healthz")).send().await.unwrap();
    let second = app.http.get(app.url("/no/such/route")).send().await.unwrap();
    let a = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    let b = second.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(a.len(), 16);
    assert_ne!(a, b);
    // A caller's sane id is kept (so a proxy's id follows the request); an odd one is replaced.
    let kept = app.http.get(app.url("/healthz")).header("x-request-id", "proxy-42.a_b").send().await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "proxy-42.a_b");
    let replaced =
        app.http.get(app.url("/healthz")).header("x-request-id", "has spaces\tand tabs").send().await.unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "has spaces\tand tabs");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_metrics_listener_unless_configured() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    assert!(app.metrics_addr.is_none());
    app.stop().await;
}
