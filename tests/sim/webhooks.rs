use std::time::Duration;

use evconduit::enode::events::{Event, Parsed, parse_batch};
use evconduit::enode::model::{ChargeAction, WebhookSubscription, WebhookTestResult, WebhookTestStatus};
use evconduit::enode::sim::{AddVehicles, Command, SetValues, SimConfig, SimHandle};
use serde_json::json;

use crate::helpers::{Api, assert_problem, control, eventually, eventually_some, frozen, start};
use crate::receiver::{Receiver, SECRET};

const PATIENCE: Duration = Duration::from_secs(30);

/// Quick retries and a short failure window, so the give-up path runs in about a second.
fn impatient() -> SimConfig {
    SimConfig {
        webhook_retry_initial: Duration::from_millis(50),
        webhook_retry_max: Duration::from_millis(200),
        webhook_failure_window: Duration::from_millis(800),
        ..frozen(4)
    }
}

async fn subscribe(api: &Api, receiver: &Receiver, events: serde_json::Value) -> WebhookSubscription {
    let response = api.post("/webhooks", &json!({"url": receiver.url, "secret": SECRET, "events": events})).await;
    assert_eq!(response.status(), 200);
    let raw: serde_json::Value = response.json().await.unwrap();
    assert!(raw.get("secret").is_none(), "the secret is never returned: {raw}");
    serde_json::from_value(raw).unwrap()
}

fn some_vehicle(sim: &SimHandle) -> String {
    sim.users()[0].vehicle_ids[0].clone()
}

/// A change that always reports something: a new battery level.
fn nudge(sim: &SimHandle, id: &str, level: f64) {
    sim.command(id, Command::Set(SetValues { battery_level: Some(level), ..SetValues::default() })).unwrap();
}

async fn subscription(api: &Api, id: &str) -> WebhookSubscription {
    api.get(&format!("/webhooks/{id}")).await.json().await.unwrap()
}

#[tokio::test]
async fn crud_keeps_the_secret_and_lists_patches_and_deletes() {
    let sim = start(frozen(1)).await;
    let api = Api::new(&sim).await;
    let receiver = Receiver::start().await;
    let sub = subscribe(&api, &receiver, json!(["*"])).await;
    assert!(sub.is_active);
    assert_eq!(sub.events, vec!["*"]);
    let list: serde_json::Value = api.get("/webhooks").await.json().await.unwrap();
    assert_eq!(list["data"][0]["id"], sub.id);
    let patched: WebhookSubscription = api
        .request(reqwest::Method::PATCH, &format!("/webhooks/{}", sub.id))
        .json(&json!({"events": ["user:vehicle:updated"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched.events, vec!["user:vehicle:updated"]);
    assert_eq!(api.delete(&format!("/webhooks/{}", sub.id)).await.status(), 204);
    assert_problem(api.get(&format!("/webhooks/{}", sub.id)).await, 404).await;
    assert_problem(api.post("/webhooks", &json!({"url": "not a url", "secret": "s"})).await, 400).await;
    assert_problem(api.post("/webhooks", &json!({"url": receiver.url})).await, 400).await;
}

#[tokio::test]
async fn deliveries_are_signed_json_arrays_that_parse_and_respect_the_filter() {
    let sim = start(frozen(4)).await;
    let api = Api::new(&sim).await;
    let everything = Receiver::start().await;
    let only_deleted = Receiver::start().await;
    subscribe(&api, &everything, json!(["*"])).await;
    subscribe(&api, &only_deleted, json!(["user:vehicle:deleted"])).await;
    let id = some_vehicle(&sim);
    nudge(&sim, &id, 12.0);
    let updated = eventually_some("an update delivered", PATIENCE, || async {
        everything.events_named("user:vehicle:updated").pop()
    })
    .await;
    assert_eq!(updated["vehicle"]["id"], id);
    assert_eq!(updated["vehicle"]["chargeState"]["batteryLevel"], 12);
    let fields: Vec<&str> = updated["updatedFields"].as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert!(fields.contains(&"chargeState.batteryLevel"), "{fields:?}");
    assert!(fields.contains(&"chargeState.lastUpdated"), "{fields:?}");
    assert_eq!(updated["version"], "2024-10-01");
    let delivery = &everything.deliveries()[0];
    assert_eq!(delivery.content_type, "application/json");
    assert!(!delivery.id.is_empty());
    assert_eq!(everything.bad_signatures(), 0);

    assert!(only_deleted.events().is_empty());
    api.delete(&format!("/users/{}", sim.users()[0].id)).await;
    let deleted = eventually_some("a deletion delivered", PATIENCE, || async {
        only_deleted.events_named("user:vehicle:deleted").pop()
    })
    .await;
    assert!(deleted["vehicle"]["id"].is_string());
    assert!(only_deleted.events().iter().all(|e| e["event"] == "user:vehicle:deleted"));
}

#[tokio::test]
async fn big_bursts_are_batched_at_most_100_per_delivery() {
    let sim = start(frozen(0)).await;
    let api = Api::new(&sim).await;
    let receiver = Receiver::start().await;
    subscribe(&api, &receiver, json!(["*"])).await;
    sim.add_vehicles("fleet-owner", &AddVehicles { vendor: Some("TESLA".to_owned()), count: Some(250) }).unwrap();
    // Every new vehicle is discovered, then updated: 500 events.
    eventually("500 events received", PATIENCE, || async { receiver.events().len() >= 500 }).await;
    let deliveries = receiver.deliveries();
    assert!(deliveries.iter().all(|d| d.events.len() <= 100));
    assert!(deliveries.len() < 500, "events were batched: {} deliveries", deliveries.len());
    let ids: std::collections::HashSet<_> = deliveries.iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids.len(), deliveries.len(), "each delivery has its own id");
    // The receiver records before the simulator reads its answer: the count follows shortly.
    eventually("500 events counted delivered", PATIENCE, || async { sim.stats().webhooks.events_delivered == 500 })
        .await;
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_same_id() {
    // Quick retries, but a window no slow machine can outlast: this test is about retrying.
    let sim = start(SimConfig { webhook_failure_window: Duration::from_secs(600), ..impatient() }).await;
    let api = Api::new(&sim).await;
    let receiver = Receiver::start().await;
    subscribe(&api, &receiver, json!(["*"])).await;
    receiver.fail_next(2);
    nudge(&sim, &some_vehicle(&sim), 33.0);
    let delivered = eventually_some("a delivery accepted", PATIENCE, || async { receiver.deliveries().pop() }).await;
    let attempts = receiver.attempts();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert!(attempts.iter().all(|id| *id == delivered.id));
    // The receiver records before the simulator reads its answer: the counts follow shortly.
    eventually("two failed attempts and one success counted", PATIENCE, || async {
        let stats = sim.stats().webhooks;
        (stats.attempted, stats.failed, stats.succeeded) == (3, 2, 1)
    })
    .await;
}

#[tokio::test]
async fn a_receiver_failing_past_the_window_is_marked_inactive_until_a_good_test() {
    let sim = start(impatient()).await;
    let api = Api::new(&sim).await;
    let receiver = Receiver::start().await;
    let sub = subscribe(&api, &receiver, json!(["*"])).await;
    receiver.answer(503);
    let id = some_vehicle(&sim);
    nudge(&sim, &id, 21.0);
    eventually("the subscription deactivated", PATIENCE, || async { !subscription(&api, &sub.id).await.is_active })
        .await;
    let stats = sim.stats().webhooks;
    assert!(stats.failed >= 2, "{stats:?}");
    assert!(stats.events_discarded >= 1, "{stats:?}");

    // Inactive: new events are not even queued.
    nudge(&sim, &id, 22.0);
    let failing_test: WebhookTestResult =
        api.post(&format!("/webhooks/{}/test", sub.id), &json!({})).await.json().await.unwrap();
    assert_eq!(failing_test.status, WebhookTestStatus::Failure);
    assert!(!subscription(&api, &sub.id).await.is_active);

    receiver.answer(200);
    let test: WebhookTestResult =
        api.post(&format!("/webhooks/{}/test", sub.id), &json!({})).await.json().await.unwrap();
    assert_eq!(test.status, WebhookTestStatus::Success, "{test:?}");
    let now = subscription(&api, &sub.id).await;
    assert!(now.is_active);
    assert!(now.last_success.is_some());
    assert_eq!(receiver.events_named("enode:webhook:test").len(), 1);
    assert!(receiver.events_named("user:vehicle:updated").is_empty());

    nudge(&sim, &id, 23.0);
    let updated = eventually_some("an update delivered", PATIENCE, || async {
        receiver.events_named("user:vehicle:updated").pop()
    })
    .await;
    assert_eq!(updated["vehicle"]["chargeState"]["batteryLevel"], 23);
}

#[tokio::test]
async fn heartbeats_name_the_pending_events() {
    let sim = start(SimConfig { heartbeat_interval: Duration::from_millis(150), ..frozen(1) }).await;
    let api = Api::new(&sim).await;
    let receiver = Receiver::start().await;
    subscribe(&api, &receiver, json!(["user:vehicle:deleted"])).await;
    let beat = eventually_some("a heartbeat delivered", PATIENCE, || async {
        receiver.events_named("system:heartbeat").pop()
    })
    .await;
    assert!(beat["pendingEvents"].is_u64(), "{beat}");
    assert!(beat["createdAt"].is_string());
}

#[tokio::test]
async fn dropped_deliveries_never_arrive_and_are_counted() {
    let sim = start(frozen(2)).await;
    let api = Api::new(&sim).await;
    let receiver = Receiver::start().await;
    subscribe(&api, &receiver, json!(["*"])).await;
    control(&sim, "/faults", json!({"webhookDropRate": 1.0})).await;
    nudge(&sim, &some_vehicle(&sim), 44.0);
    eventually("a delivery dropped", PATIENCE, || async { sim.stats().webhooks.dropped >= 1 }).await;
    assert!(receiver.attempts().is_empty());
    control(&sim, "/faults", json!({"webhookDropRate": 0.0})).await;
    nudge(&sim, &some_vehicle(&sim), 45.0);
    eventually_some("an update delivered", PATIENCE, || async { receiver.events_named("user:vehicle:updated").pop() })
        .await;
}

#[tokio::test]
async fn credentials_invalidation_and_action_updates_are_delivered_and_parse() {
    let sim = start(SimConfig { action_delay: Duration::from_secs(10), ..frozen(0) }).await;
    let api = Api::new(&sim).await;
    let receiver = Receiver::start().await;
    subscribe(&api, &receiver, json!(["*"])).await;
    let car = sim.add_vehicles("driver", &AddVehicles { vendor: Some("BMW".to_owned()), count: Some(1) }).unwrap();
    let id = car[0].id.clone();
    sim.make_startable(&id).unwrap();
    let action: ChargeAction =
        api.post(&format!("/vehicles/{id}/charging"), &json!({"action": "START"})).await.json().await.unwrap();
    sim.advance(Duration::from_secs(11));
    let update = eventually_some("the action's update delivered", PATIENCE, || async {
        receiver.events_named("user:vendor-action:updated").pop()
    })
    .await;
    assert_eq!(update["vendorAction"]["id"], action.id);
    assert_eq!(update["vendorAction"]["state"], "CONFIRMED");
    assert_eq!(update["user"]["id"], "driver");

    let invalidated = control(&sim, "/users/driver/invalidate", json!({})).await;
    assert_eq!(invalidated.status(), 200);
    let event = eventually_some("the invalidation delivered", PATIENCE, || async {
        receiver.events_named("user:credentials:invalidated").pop()
    })
    .await;
    assert_eq!(event["vendor"], "BMW");
    assert_eq!(event["user"]["id"], "driver");

    // Every delivery parses with the service's parser into known events.
    eventually("5 events received", PATIENCE, || async { receiver.events().len() >= 5 }).await;
    for delivery in receiver.deliveries() {
        let body = serde_json::to_vec(&delivery.events).unwrap();
        for parsed in parse_batch(&body).unwrap() {
            assert!(matches!(parsed, Parsed::Event(_)), "{parsed:?}");
            if let Parsed::Event(event) = parsed
                && let Event::CredentialsInvalidated(inv) = event
            {
                assert_eq!(inv.vendor.as_deref(), Some("BMW"));
            }
        }
    }
}
