//! Freshness under budget: refreshes only for stale AND watched vehicles, honest headers, and
//! reads that never wait for (or cause) an Enode call, even while Enode is down.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use evconduit::enode::sim::{Command, KnobsPatch};
use evconduit_actors::testing::ManualClock;
use evconduit_actors::tier::Tier;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::world::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleeping_car_nobody_reads_is_never_requested() {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let world = World::start_with_clock(quiet_sim(), |_| {}, clock.clone()).await;
    let (_, key) = world.user("sleepy@example.com", Tier::Pro).await;
    let id = world.link(&key, "VOLKSWAGEN").await.remove(0);
    world.sim.command(&id, Command::Sleep).unwrap();
    // Its last report (now unreachable) must be in before time moves, or it would look fresh.
    world.app.eventually_status(&key, &id, "asleep", |b| b["isReachable"] == false).await;
    let path = format!("/vehicles/{id}");

    // Hours pass; the data is far past the Pro target, but nobody reads it.
    clock.advance(chrono::Duration::hours(3));
    tokio::time::sleep(Duration::from_secs(3)).await; // several scheduler scans
    assert_eq!(world.requests_for(&path), 0, "an unwatched car costs Enode nothing");

    // Someone looks: the read answers at once (stale, honestly labelled) and a refresh follows.
    let response = world.app.get(&key, &format!("/api/status/{id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-data-stale"], "true");
    assert_eq!(response.headers()["x-refresh-scheduled"], "true");
    let age: u64 = response.headers()["age"].to_str().unwrap().parse().unwrap();
    assert!(age >= 3 * 3600, "age {age}");
    eventually("one refresh of the watched car", Duration::from_secs(20), || async { world.requests_for(&path) == 1 })
        .await;
    world.app.eventually_status(&key, &id, "refreshed data", |_| true).await;
    let response = world.app.get(&key, &format!("/api/status/{id}")).await;
    assert_eq!(response.headers()["x-data-source"], "refresh");
    assert_eq!(response.headers()["x-data-stale"], "false");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_keeps_reads_answering_refuses_commands_and_recovers() {
    let world = World::start(quiet_sim(), |config| {
        config.freshness_pro_secs = 1;
        config.refresh_retry_base_secs = 1;
        config.enode_breaker_open_ms = 300;
        config.enode_retry_max = 0;
    })
    .await;
    let (_, key) = world.user("outage@example.com", Tier::Pro).await;
    let id = world.link(&key, "TESLA").await.remove(0);
    let path = format!("/vehicles/{id}");
    world.sim.set_faults(&KnobsPatch { outage: Some(true), ..KnobsPatch::default() });

    // Reads: 200 with the last state, and headers that say how old it is.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..3 {
        let response = world.app.get(&key, &format!("/api/status/{id}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-data-stale"], "true");
        assert!(response.headers()["age"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The refresh attempts failed at Enode (and did not make reads wait).
    eventually("a refresh tried during the outage", Duration::from_secs(20), || async {
        world.sim.stats().log.iter().any(|e| e.path == path && e.status == 503)
    })
    .await;

    // Commands: 503 with when to try again.
    let response = world
        .app
        .http
        .post(world.app.url(&format!("/api/charging/{id}")))
        .bearer_auth(&key)
        .json(&json!({"action": "STOP"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_json(&response);

    // Enode comes back: refreshes resume on their own.
    world.sim.set_faults(&KnobsPatch { outage: Some(false), ..KnobsPatch::default() });
    eventually("a successful refresh after the outage", Duration::from_secs(30), || async {
        world.sim.stats().log.iter().any(|e| e.path == path && e.status == 200)
    })
    .await;
    eventually("data from the refresh", Duration::from_secs(10), || async {
        let response = world.app.get(&key, &format!("/api/status/{id}")).await;
        response.headers()["x-data-source"] == "refresh"
    })
    .await;
}
