//! The Enode webhook subscription: exactly one, kept alive, and what happens when it falls silent.

use std::time::Duration;

use evconduit::enode::client::{Client, ClientConfig};
use evconduit::enode::model::WebhookRequest;
use evconduit::enode::sim::{KnobsPatch, SimConfig};
use evconduit::store::testing::TestDatabase;
use evconduit_actors::tier::Tier;
use serde_json::Value;

use crate::helpers::*;
use crate::world::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_exactly_one_subscription_with_our_secret() {
    let sim = start_sim(quiet_sim()).await;
    let db = TestDatabase::sqlite();
    let listener = bind().await;
    let mut config = config(&db);
    use_sim(&mut config, &sim, listener.local_addr().unwrap());
    let url = config.enode_webhook_url().unwrap();
    // Left over from earlier deployments: two subscriptions for our URL with a stale secret.
    let client = Client::new(ClientConfig::from_config(&config).unwrap()).unwrap();
    for _ in 0..2 {
        let request = WebhookRequest {
            url: Some(url.clone()),
            secret: Some("an-old-secret".into()),
            events: Some(vec!["*".into()]),
            api_version: None,
        };
        client.create_webhook(&request).await.unwrap();
    }
    let app = TestApp::start_on(listener, config, std::sync::Arc::new(evconduit_actors::ports::SystemClock)).await;
    eventually("one subscription for our URL", Duration::from_secs(20), || async {
        let ours: Vec<_> = client.list_webhooks().await.unwrap().into_iter().filter(|w| w.url == url).collect();
        ours.len() == 1 && ours[0].is_active
    })
    .await;
    // It signs with our secret now: a test event arrives and verifies.
    let id = app.state.subscription.as_ref().unwrap().status().subscription_id.unwrap();
    client.test_webhook(&id).await.unwrap();
    eventually("the test event passed our signature check", Duration::from_secs(20), || async {
        app.state.ingest.stats().tests >= 1
    })
    .await;
    assert_eq!(app.state.ingest.stats().rejected_signature, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_silence_degrades_tests_the_subscription_and_falls_back_to_refreshes() {
    // A running simulator clock: heartbeats vouch up to their `createdAt`, which a frozen clock
    // would pin to the start.
    let sim = SimConfig { heartbeat_interval: Duration::from_millis(300), time_factor: 1.0, ..quiet_sim() };
    let world = World::start(sim, |config| {
        config.webhook_silence_secs = 2;
        // Heartbeats come every 300 ms but are delivered in batches; 5 s is far above that
        // latency and far below the time the silent phase below lasts.
        config.freshness_pro_secs = 5;
    })
    .await;
    let readyz = || async {
        let body: Value = world.app.http.get(world.app.url("/readyz")).send().await.unwrap().json().await.unwrap();
        body["checks"]["webhook"].as_str().unwrap_or_default().to_owned()
    };
    // The stream vouches only for data that arrived while it was healthy: link the car once the
    // heartbeats flow (on a loaded machine the subscription can take longer than the link).
    eventually("webhook healthy", Duration::from_secs(20), || async { readyz().await == "ok" }).await;
    let (_, key) = world.user("silence@example.com", Tier::Pro).await;
    let id = world.link(&key, "TESLA").await.remove(0);
    let path = format!("/vehicles/{id}");

    // While heartbeats vouch for the data, a watched car older than its target is not polled.
    for _ in 0..16 {
        world.app.get(&key, &format!("/api/status/{id}")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(world.requests_for(&path), 0, "heartbeats vouched for the data");

    // Deliveries stop arriving.
    world.sim.set_faults(&KnobsPatch { webhook_drop_rate: Some(1.0), ..KnobsPatch::default() });
    eventually("webhook degraded", Duration::from_secs(20), || async { readyz().await == "degraded" }).await;
    let test_route = "POST /webhooks/{id}/test";
    eventually("the subscription tested", Duration::from_secs(20), || async {
        world.sim.stats().count_route(test_route) >= 1
    })
    .await;
    // Watched cars fall back to refreshes.
    world.app.get(&key, &format!("/api/status/{id}")).await;
    eventually("a fallback refresh", Duration::from_secs(20), || async { world.requests_for(&path) >= 1 }).await;

    // Deliveries resume: healthy again.
    world.sim.set_faults(&KnobsPatch { webhook_drop_rate: Some(0.0), ..KnobsPatch::default() });
    eventually("webhook healthy again", Duration::from_secs(30), || async { readyz().await == "ok" }).await;
}
