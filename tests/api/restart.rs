//! A restart on the same database brings every vehicle back, before any new webhook.

use evconduit::store::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::on_both_backends;

async fn every_vehicle_answers_the_same_after_a_restart(db: TestDatabase) {
    let app = TestApp::start(config(&db)).await;
    let (user, key) = app.user_with_key(Some(FIXTURE_USER), "restart@example.com", None).await;
    app.webhook(FIXTURE_BATCH, Some(FIXTURE_SIGNATURE), "d1").await;
    let user = user.to_string();
    let events: Vec<Value> =
        (0..20).map(|i| updated_event(&format!("car-{i}"), &user, "2026-11-25T10:00:00Z", i)).collect();
    app.signed_webhook(&batch(&events)).await;
    app.eventually_status(&key, FIXTURE_VEHICLE, "fixture", |b| b["batteryLevel"] == 62).await;
    app.eventually_status(&key, "car-19", "batch", |b| b["batteryLevel"] == 19).await;

    let mut before = Vec::new();
    for id in std::iter::once(FIXTURE_VEHICLE.to_owned()).chain((0..20).map(|i| format!("car-{i}"))) {
        let response = app.get(&key, &format!("/api/status/{id}")).await;
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        before.push((id, etag, response.json::<Value>().await.unwrap()));
    }
    app.stop().await;

    let app = TestApp::start(config(&db)).await;
    for (id, etag, body) in &before {
        let response = app.get(&key, &format!("/api/status/{id}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{id} answers at once after restart");
        assert_eq!(response.headers()["x-data-source"], "restored");
        assert_eq!(response.headers()["etag"], etag.as_str(), "{id}: same bytes, same tag");
        assert_eq!(&response.json::<Value>().await.unwrap(), body, "{id}");
        let internal = body["internalId"].as_str().unwrap();
        let (status, _) = app.get_json(&key, &format!("/api/status/{internal}")).await;
        assert_eq!(status, StatusCode::OK, "internal ids survive too");
    }
    // Idempotency survives too: the old delivery is still a duplicate.
    let response = app.webhook(FIXTURE_BATCH, Some(FIXTURE_SIGNATURE), "d1").await;
    assert_eq!(response.json::<Value>().await.unwrap()["duplicate"], true);
    app.stop().await;
    db.drop_db().await;
}
on_both_backends!(every_vehicle_answers_the_same_after_a_restart);
