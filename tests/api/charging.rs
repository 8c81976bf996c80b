//! Charging commands through the vehicle's actor to Enode and back.

use std::time::Duration;

use evconduit::enode::sim::{Command, SimConfig};
use evconduit_actors::tier::Tier;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::world::*;

async fn command(world: &World, key: &str, id: &str, body: Value) -> reqwest::Response {
    world
        .app
        .http
        .post(world.app.url(&format!("/api/charging/{id}")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_goes_pending_then_confirmed_and_the_car_charges() {
    // The simulator's clock must run for the action to complete.
    let sim = SimConfig { time_factor: 1.0, action_delay: Duration::from_millis(300), ..quiet_sim() };
    let world = World::start(sim, |_| {}).await;
    let (_, key) = world.user("charge@example.com", Tier::Pro).await;
    let id = world.link(&key, "TESLA").await.remove(0);
    world.sim.command(&id, Command::Plug).unwrap();
    world.sim.command(&id, Command::Stop).unwrap();
    world
        .app
        .eventually_status(&key, &id, "plugged in, not charging", |b| {
            b["isPluggedIn"] == true && b["isCharging"] == false
        })
        .await;

    // Two identical commands at once: one action at Enode.
    let (a, b) = tokio::join!(
        command(&world, &key, &id, json!({"action": "START"})),
        command(&world, &key, &id, json!({"action": "START"}))
    );
    assert_eq!(a.status(), StatusCode::OK);
    assert_eq!(b.status(), StatusCode::OK);
    let a: Value = a.json().await.unwrap();
    let b: Value = b.json().await.unwrap();
    assert_eq!(a["enode_response"]["id"], b["enode_response"]["id"]);
    assert_eq!(a["action"], "START");
    assert_eq!(a["enode_vehicle_id"], id.as_str());
    assert_eq!(world.sim.stats().count_route("POST /vehicles/{id}/charging"), 1);

    let action_id = a["enode_response"]["id"].as_str().unwrap().to_owned();
    world
        .app
        .eventually_status(&key, &id, "confirmed and charging", |b| {
            b["lastAction"]["id"] == action_id.as_str()
                && b["lastAction"]["state"] == "CONFIRMED"
                && b["isCharging"] == true
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_keep_enodes_words_and_tiers_are_gated() {
    let world = World::start(quiet_sim(), |_| {}).await;
    let (_, key) = world.user("refuse@example.com", Tier::Basic).await;
    let id = world.link(&key, "TESLA").await.remove(0);
    world.sim.command(&id, Command::Unplug).unwrap();
    world.app.eventually_status(&key, &id, "unplugged", |b| b["isPluggedIn"] == false).await;

    let response = command(&world, &key, &id, json!({"action": "START"})).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_json(&response);
    let body: Value = response.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap().to_lowercase();
    assert!(detail.contains("plug"), "Enode's own detail: {body}");

    for bad in [json!({"action": "PAUSE"}), json!({}), json!("START")] {
        let response = command(&world, &key, &id, bad).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    let (_, free_key) = world.user("free-charger@example.com", Tier::Free).await;
    let response = command(&world, &free_key, &id, json!({"action": "START"})).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("free"), "{body}");
    // Another user's car (with a tier that may charge) is 404, as for reads.
    let (_, other) = world.user("other@example.com", Tier::Pro).await;
    assert_eq!(command(&world, &other, &id, json!({"action": "START"})).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_cannot_flood_enode_with_commands() {
    let world = World::start(quiet_sim(), |config| config.commands_per_minute_per_user = 2).await;
    let (_, key) = world.user("flood@example.com", Tier::Pro).await;
    let (_, neighbour) = world.user("neighbour@example.com", Tier::Pro).await;
    let id = world.link(&key, "TESLA").await.remove(0); // the link was command 1
    let second = command(&world, &key, &id, json!({"action": "STOP"})).await;
    assert_ne!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let third = command(&world, &key, &id, json!({"action": "STOP"})).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().contains_key("retry-after"));
    assert_json(&third);
    // Reads are never limited, and other users keep their own allowance.
    for _ in 0..10 {
        assert_eq!(world.app.get(&key, &format!("/api/status/{id}")).await.status(), StatusCode::OK);
    }
    let response = world.app.http.post(world.app.url("/api/ha/refresh")).bearer_auth(&neighbour).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
