//! Linking cars through Enode link sessions, tier vehicle limits, unlinking.

use evconduit_actors::tier::Tier;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::world::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_link_flow_over_real_http() {
    let world = World::start(quiet_sim(), |_| {}).await;
    let (_, key) = world.user("linker@example.com", Tier::Pro).await;
    let ids = world.link(&key, "TESLA").await;
    let (status, body) = world.app.get_json(&key, &format!("/api/status/{}", ids[0])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["vendor"], "TESLA");
    assert!(body["vehicleName"].is_string());
    let (_, list) = world.app.get_json(&key, "/api/user/vehicles").await;
    assert_eq!(list.as_array().unwrap().len(), ids.len());
    // Listing never asks Enode.
    let before = world.sim.stats().api_requests;
    world.app.get_json(&key, "/api/user/vehicles").await;
    assert_eq!(world.sim.stats().api_requests, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tier_vehicle_limit_refuses_more_links() {
    let world = World::start(quiet_sim(), |_| {}).await;
    let (_, key) = world.user("free@example.com", Tier::Free).await;
    world.link(&key, "XPENG").await;
    let response = world
        .app
        .http
        .post(world.app.url("/api/user/link-vehicle"))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("free"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_enode_does_not_know_is_422_in_its_words_and_links_nothing() {
    let world = World::start(quiet_sim(), |_| {}).await;
    let (_, key) = world.user("nope@example.com", Tier::Pro).await;
    let (status, body) = world.app.post_json(&key, "/api/user/link-vehicle", &json!({"vendor": "NOPE"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("unknown vehicle vendor") && detail.contains("NOPE"), "{body}");
    let (_, list) = world.app.get_json(&key, "/api/user/vehicles").await;
    assert_eq!(list, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlinking_a_vendor_removes_its_cars() {
    let world = World::start(quiet_sim(), |_| {}).await;
    let (_, key) = world.user("unlink@example.com", Tier::Pro).await;
    let tesla = world.link(&key, "TESLA").await;
    let nio = world.link(&key, "NIO").await;
    let response = world
        .app
        .http
        .post(world.app.url("/api/user/unlink"))
        .bearer_auth(&key)
        .json(&json!({"vendor": "tesla"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for id in &tesla {
        let (status, _) = world.app.get_json(&key, &format!("/api/status/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = world.app.get_json(&key, &format!("/api/status/{}", nio[0])).await;
    assert_eq!(status, StatusCode::OK);
    let bad = world.app.http.post(world.app.url("/api/user/unlink")).bearer_auth(&key).json(&json!({})).send().await;
    assert_eq!(bad.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_now_hints_enode_once_per_cooldown_and_answers_at_once() {
    let world = World::start(quiet_sim(), |config| config.refresh_hint_cooldown_secs = 300).await;
    let (_, key) = world.user("hint@example.com", Tier::Pro).await;
    let ids = world.link(&key, "TESLA").await;
    let hint = || async {
        let response = world.app.http.post(world.app.url("/api/ha/refresh")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()
    };
    let first = hint().await;
    assert_eq!(first["status"], "ok");
    assert_eq!(first["vehicles_updated"], ids.len());
    assert!(first["message"].is_string());
    let route = "POST /vehicles/{id}/refresh-hint";
    crate::helpers::eventually("the hints reached Enode", std::time::Duration::from_secs(20), || async {
        world.sim.stats().count_route(route) == ids.len() as u64
    })
    .await;
    // Within the cooldown: nothing more is sent to Enode.
    let second = hint().await;
    assert_eq!(second["status"], "cooldown");
    assert_eq!(second["vehicles_updated"], 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(world.sim.stats().count_route(route), ids.len() as u64);
}
