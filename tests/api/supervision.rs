//! An actor that panics is restarted with its state; other vehicles keep answering.

use evconduit::config::Config;
use evconduit::store::testing::TestDatabase;
use evconduit_actors::snapshot::ActorStatus;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_actor_is_restarted_with_its_state() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let (user, key) = app.user_with_key(None, "panic@example.com", None).await;
    let user = user.to_string();
    let events: Vec<Value> =
        (0..3).map(|i| updated_event(&format!("car-{i}"), &user, "2026-11-25T10:00:00Z", 40 + i)).collect();
    app.signed_webhook(&batch(&events)).await;
    app.eventually_status(&key, "car-2", "created", |b| b["batteryLevel"] == 42).await;

    assert!(app.state.fleet.inject_panic("car-0", "test"));
    // Other vehicles never stop answering, and keep taking updates.
    app.signed_webhook(&batch(&[updated_event("car-1", &user, "2026-11-25T10:01:00Z", 55)])).await;
    app.eventually_status(&key, "car-1", "other vehicle updated", |b| b["batteryLevel"] == 55).await;
    // The panicked one answers with the state it had, then takes new updates once restarted.
    let (_, body) = app.get_json(&key, "/api/status/car-0").await;
    assert_eq!(body["batteryLevel"], 40);
    eventually_here("car-0 restarted once and running", || {
        app.state.fleet.health("car-0").is_some_and(|h| h.total_restarts == 1 && h.status == ActorStatus::Running)
    })
    .await;
    app.signed_webhook(&batch(&[updated_event("car-0", &user, "2026-11-25T10:02:00Z", 41)])).await;
    app.eventually_status(&key, "car-0", "restarted actor applies", |b| b["batteryLevel"] == 41).await;
    let health = app.state.fleet.health("car-0").unwrap();
    assert_eq!(health.total_restarts, 1);
    assert_eq!(health.status, ActorStatus::Running);
    app.stop().await;
}

/// Actors sleep after `actor_idle_secs` without messages: the vehicle is still read as usual (no
/// degraded flag), and the next webhook wakes it and is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_vehicle_sleeps_is_still_served_and_wakes_for_its_next_webhook() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(Config { actor_idle_secs: 1, ..config(&db) }).await;
    let (user, key) = app.user_with_key(None, "sleepy@example.com", None).await;
    let user = user.to_string();
    app.signed_webhook(&batch(&[updated_event("car-0", &user, "2026-11-25T10:00:00Z", 40)])).await;
    app.eventually_status(&key, "car-0", "created", |b| b["batteryLevel"] == 40).await;

    // Asleep, and its task gone (the supervisor counts it gone when the stopped task reports).
    let asleep = || {
        app.state.fleet.health("car-0").is_some_and(|h| h.status == ActorStatus::Idle)
            && app.state.fleet.stats().live_actors == 0
    };
    eventually_here("the actor asleep after a second without messages", asleep).await;
    let response = app.get(&key, "/api/status/car-0").await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(response.headers().get("x-actor-status").is_none(), "sleeping is healthy, not flagged");

    app.signed_webhook(&batch(&[updated_event("car-0", &user, "2026-11-25T10:05:00Z", 47)])).await;
    app.eventually_status(&key, "car-0", "woken and applied", |b| b["batteryLevel"] == 47).await;
    assert!(app.state.fleet.stats().woken >= 1);
    app.stop().await;
    // What the woken actor applied reached the store.
    let stored = TestApp::start(config(&db)).await;
    let (_, body) = stored.get_json(&key, "/api/status/car-0").await;
    assert_eq!(body["batteryLevel"], 47);
    stored.stop().await;
}
