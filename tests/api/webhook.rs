//! `POST /api/webhook/enode`: signatures, idempotency, ordering, limits, event semantics.

use evconduit::store::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;
use crate::on_both_backends;

async fn fixture_batch_reads_back_by_both_ids(db: TestDatabase) {
    let app = TestApp::start(config(&db)).await;
    let (_, key) = app.user_with_key(Some(FIXTURE_USER), "owner@example.com", None).await;

    let response = app.webhook(FIXTURE_BATCH, Some(FIXTURE_SIGNATURE), "fixture-delivery-1").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_json(&response);
    let ack: Value = response.json().await.unwrap();
    assert_eq!(ack, json!({"accepted": 3, "duplicate": false}));

    let body = app.eventually_status(&key, FIXTURE_VEHICLE, "updated state", |b| b["batteryLevel"] == 62).await;
    assert_eq!(body["id"], FIXTURE_VEHICLE);
    assert_eq!(body["vehicleName"], "XPENG G6");
    assert_eq!(body["chargingState"], "PLUGGED_IN:CHARGING");
    assert_eq!(body["vendor"], "XPENG");
    assert_eq!(body["isReachable"], true);
    assert_eq!(body["lastSeen"], "2026-11-25T09:12:26.465Z");
    assert_eq!(body["chargeState"]["batteryCapacity"], 87.5);
    assert_eq!(body["chargeState"]["chargeLimit"], 80);
    assert_eq!(body["chargeState"]["chargeRate"], 11.2);
    assert_eq!(body["chargeState"]["chargeTimeRemaining"], 95);
    assert_eq!(body["chargeState"]["isPluggedIn"], true);
    assert_eq!(body["information"]["vin"], "LRW3E7FA1PC000001");
    assert_eq!(body["information"]["year"], 2024);
    assert_eq!(body["location"]["latitude"], 59.3293);
    assert_eq!(body["location"]["longitude"], 18.0686);
    assert_eq!(body["odometer"]["distance"], 24312.5);
    assert_eq!(body["smartChargingPolicy"]["isEnabled"], false);
    assert_eq!(body["capabilities"]["setMaxCurrent"]["isCapable"], false);
    assert_eq!(body["range"], 301);
    assert_eq!(body["isCharging"], true);
    assert_eq!(body["isPluggedIn"], true);
    assert_eq!(body["latitude"], 59.3293);
    assert_eq!(body["locationAvailable"], true);

    let internal = body["internalId"].as_str().expect("internalId").to_owned();
    let (status, by_internal) = app.get_json(&key, &format!("/api/status/{internal}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_internal, body);
    for prefix in ["/api/ha/status", "/api/v1/ha/status"] {
        let (status, alias) = app.get_json(&key, &format!("{prefix}/{FIXTURE_VEHICLE}")).await;
        assert_eq!(status, StatusCode::OK, "{prefix}");
        assert_eq!(alias, body, "{prefix}");
    }
    app.stop().await;
    db.drop_db().await;
}
on_both_backends!(fixture_batch_reads_back_by_both_ids);

async fn signatures_are_required_and_checked(db: TestDatabase) {
    let app = TestApp::start(config(&db)).await;
    let (_, key) = app.user_with_key(Some(FIXTURE_USER), "owner@example.com", None).await;

    for signature in [None, Some("sha1=0000000000000000000000000000000000000000"), Some("garbage")] {
        let response = app.webhook(FIXTURE_BATCH, signature, "delivery-1").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{signature:?}");
        assert_json(&response);
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("signature"), "{body}");
        assert_eq!(body["code"], "unauthorized");
    }
    // A body re-serialised after signing no longer matches.
    let reserialised = serde_json::to_vec(&serde_json::from_slice::<Value>(FIXTURE_BATCH).unwrap()).unwrap();
    let response = app.webhook(&reserialised, Some(FIXTURE_SIGNATURE), "delivery-1").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Nothing was recorded: the vehicle is unknown and the same delivery id is still fresh.
    let (status, _) = app.get_json(&key, &format!("/api/status/{FIXTURE_VEHICLE}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let response = app.webhook(FIXTURE_BATCH, Some(FIXTURE_SIGNATURE), "delivery-1").await;
    assert_eq!(response.json::<Value>().await.unwrap()["duplicate"], false);
    app.stop().await;
    db.drop_db().await;
}
on_both_backends!(signatures_are_required_and_checked);

#[tokio::test]
async fn a_rotated_secret_is_accepted() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let signature = evconduit::enode::signature::sign(b"old-rotated-secret", FIXTURE_BATCH);
    let response = app.webhook(FIXTURE_BATCH, Some(&signature), "d-rotated").await;
    assert_eq!(response.status(), StatusCode::OK);
    app.stop().await;
}

async fn a_duplicate_delivery_is_not_applied_again(db: TestDatabase) {
    let app = TestApp::start(config(&db)).await;
    let (user, key) = app.user_with_key(None, "dup@example.com", None).await;
    let user = user.to_string();
    let first = batch(&[updated_event("car-1", &user, "2026-11-25T10:00:00Z", 70)]);
    let sig = evconduit::enode::signature::sign(FIXTURE_SECRET.as_bytes(), &first);
    let response = app.webhook(&first, Some(&sig), "delivery-dup").await;
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"accepted": 1, "duplicate": false}));
    app.eventually_status(&key, "car-1", "first delivery", |b| b["batteryLevel"] == 70).await;

    // Enode retries with the same id; even a (hypothetically) different body is not applied.
    let retry = batch(&[updated_event("car-1", &user, "2026-11-25T10:05:00Z", 80)]);
    let sig = evconduit::enode::signature::sign(FIXTURE_SECRET.as_bytes(), &retry);
    let response = app.webhook(&retry, Some(&sig), "delivery-dup").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"accepted": 0, "duplicate": true}));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (_, body) = app.get_json(&key, "/api/status/car-1").await;
    assert_eq!(body["batteryLevel"], 70);
    app.stop().await;
    db.drop_db().await;
}
on_both_backends!(a_duplicate_delivery_is_not_applied_again);

/// Copies of one delivery arriving together (Enode retrying while the first is still being
/// answered) find it "recorded, not applied" while the first is applied: it must be applied once.
async fn copies_of_a_delivery_arriving_together_are_applied_once(db: TestDatabase) {
    let app = TestApp::start(config(&db)).await;
    let (user, _key) = app.user_with_key(None, "copies@example.com", None).await;
    let user = user.to_string();
    let events: Vec<_> =
        (0..50).map(|i| updated_event(&format!("car-{i}"), &user, "2026-11-25T10:00:00Z", 60)).collect();
    let body = batch(&events);
    let sig = evconduit::enode::signature::sign(FIXTURE_SECRET.as_bytes(), &body);
    for round in 0..5 {
        let id = format!("delivery-copies-{round}");
        let answers = futures::future::join_all((0..4).map(|_| app.webhook(&body, Some(&sig), &id))).await;
        let mut accepted = 0;
        for response in answers {
            assert_eq!(response.status(), StatusCode::OK);
            let ack = response.json::<Value>().await.unwrap();
            if ack["duplicate"] == false {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 1, "round {round}: one copy applied, the others duplicates");
    }
    app.stop().await;
    db.drop_db().await;
}
on_both_backends!(copies_of_a_delivery_arriving_together_are_applied_once);

#[tokio::test]
async fn an_older_update_arriving_later_changes_nothing() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let (user, key) = app.user_with_key(None, "order@example.com", None).await;
    let user = user.to_string();
    app.signed_webhook(&batch(&[updated_event("car-1", &user, "2026-11-25T10:05:00Z", 75)])).await;
    app.eventually_status(&key, "car-1", "newer state", |b| b["batteryLevel"] == 75).await;
    // Older in the vehicle's own clock, delivered afterwards; also within one batch, out of order.
    let older = batch(&[
        updated_event("car-1", &user, "2026-11-25T10:00:00Z", 60),
        updated_event("car-1", &user, "2026-11-25T10:01:00Z", 61),
    ]);
    assert_eq!(app.signed_webhook(&older).await.status(), StatusCode::OK);
    // A later marker event proves the actor processed the older ones before it.
    app.signed_webhook(&batch(&[updated_event("car-1", &user, "2026-11-25T10:05:00Z", 75)])).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (_, body) = app.get_json(&key, "/api/status/car-1").await;
    assert_eq!(body["batteryLevel"], 75);
    assert_eq!(body["lastSeen"], "2026-11-25T10:05:00Z");
    app.stop().await;
}

async fn a_hundred_event_batch_is_applied_in_one_delivery(db: TestDatabase) {
    let app = TestApp::start(config(&db)).await;
    let (user, key) = app.user_with_key(None, "fleet@example.com", None).await;
    let user = user.to_string();
    let events: Vec<Value> =
        (0..100).map(|i| updated_event(&format!("car-{i}"), &user, "2026-11-25T10:00:00Z", i)).collect();
    let response = app.signed_webhook(&batch(&events)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"accepted": 100, "duplicate": false}));
    for i in [0u32, 42, 99] {
        app.eventually_status(&key, &format!("car-{i}"), "batch applied", |b| b["batteryLevel"] == i).await;
    }
    let mut listed = 0;
    for _ in 0..200 {
        let (_, list) = app.get_json(&key, "/api/user/vehicles").await;
        listed = list.as_array().map_or(0, Vec::len);
        if listed == 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(listed, 100);
    app.stop().await;
    // Everything reached the store on shutdown.
    let store = evconduit::store::connect(db.url()).await.unwrap();
    assert_eq!(store.load_vehicles().await.unwrap().len(), 100);
    db.drop_db().await;
}
on_both_backends!(a_hundred_event_batch_is_applied_in_one_delivery);

#[tokio::test]
async fn bodies_that_are_not_event_batches_are_400() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    for body in [&b"{not json"[..], b"{\"event\":\"system:heartbeat\"}", b"[1, 2, 3]", b""] {
        let response = app.signed_webhook(body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(body));
        assert_json(&response);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], "bad_request");
    }
    // A signed batch without a delivery id cannot be made idempotent.
    let sig = evconduit::enode::signature::sign(FIXTURE_SECRET.as_bytes(), b"[]");
    let response =
        app.http.post(app.url("/api/webhook/enode")).header("x-enode-signature", sig).body("[]").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn an_oversize_body_is_413() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let huge = vec![b' '; 5 * 1024 * 1024 + 1];
    let response = app.signed_webhook(&huge).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_json(&response);
    // Also when the length is not declared up front (chunked).
    let stream = futures::stream::iter((0..6).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024 * 1024])));
    let response = app
        .http
        .post(app.url("/api/webhook/enode"))
        .header("x-enode-signature", "sha1=00")
        .header("x-enode-delivery", "chunked")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    app.stop().await;
}

#[tokio::test]
async fn events_for_unknown_users_and_unknown_events_are_ignored() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let (_, key) = app.user_with_key(None, "someone@example.com", None).await;
    let stranger = Uuid::new_v4().to_string();
    let body = batch(&[
        updated_event("strangers-car", &stranger, "2026-11-25T10:00:00Z", 50),
        json!({"event": "user:charger:updated", "createdAt": "2026-11-25T10:00:00Z", "version": "2024-10-01"}),
        json!({"event": "system:heartbeat", "createdAt": "2026-11-25T10:00:00Z", "version": "2024-10-01", "pendingEvents": 0}),
    ]);
    let response = app.signed_webhook(&body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let stats = app.state.ingest.stats();
    assert_eq!(stats.unknown_user, 1);
    assert_eq!(stats.unknown_event, 1);
    assert_eq!(stats.heartbeats, 1);
    assert!(stats.last_heartbeat_at.is_some());
    let (status, _) = app.get_json(&key, "/api/status/strangers-car").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn deleted_vehicles_disappear_and_invalid_credentials_show() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let (user, key) = app.user_with_key(None, "life@example.com", None).await;
    let user = user.to_string();
    app.signed_webhook(&batch(&[
        updated_event("car-a", &user, "2026-11-25T10:00:00Z", 50),
        updated_event("car-b", &user, "2026-11-25T10:00:00Z", 50),
    ]))
    .await;
    app.eventually_status(&key, "car-b", "created", |_| true).await;

    let invalidated = json!({"event": "user:credentials:invalidated", "createdAt": "2026-11-25T10:01:00Z",
        "version": "2024-10-01", "user": {"id": user}, "vendor": "XPENG"});
    app.signed_webhook(&batch(&[invalidated])).await;
    let body = app.eventually_status(&key, "car-a", "relink flag", |b| b["relinkRequired"] == true).await;
    assert_eq!(body["isReachable"], false);
    // A new update proves the link works again.
    app.signed_webhook(&batch(&[updated_event("car-a", &user, "2026-11-25T10:02:00Z", 51)])).await;
    app.eventually_status(&key, "car-a", "relink cleared", |b| {
        b["relinkRequired"] == false && b["isReachable"] == true
    })
    .await;

    let deleted = json!({"event": "user:vehicle:deleted", "createdAt": "2026-11-25T10:03:00Z",
        "version": "2024-10-01", "user": {"id": user}, "vehicle": {"id": "car-b"}});
    app.signed_webhook(&batch(&[deleted])).await;
    let (status, body) = app.get_json(&key, "/api/status/car-b").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, list) = app.get_json(&key, "/api/user/vehicles").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    app.stop().await;
    let store = evconduit::store::connect(db.url()).await.unwrap();
    let ids: Vec<String> = store.load_vehicles().await.unwrap().into_iter().map(|v| v.vehicle.id).collect();
    assert_eq!(ids, ["car-a"]);
}

#[tokio::test]
async fn vendor_timestamps_out_of_range_do_not_break_reads() {
    let db = TestDatabase::sqlite();
    let clock = std::sync::Arc::new(evconduit_actors::testing::ManualClock::new(chrono::Utc::now()));
    let app = TestApp::start_on(bind().await, config(&db), clock.clone()).await;
    let (user, key) = app.user_with_key(None, "clock@example.com", None).await;
    let user = user.to_string();
    // A vendor's "unknown date" sentinel: before 1970, which HTTP dates cannot express.
    app.signed_webhook(&batch(&[updated_event("car", &user, "0001-01-01T00:00:00Z", 40)])).await;
    app.eventually_status(&key, "car", "ancient state", |b| b["batteryLevel"] == 40).await;
    let response = app.get(&key, "/api/status/car").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["last-modified"], "Thu, 01 Jan 1970 00:00:00 GMT");
    // A clock far in the future wins for a few minutes at most, then genuine updates apply again.
    app.signed_webhook(&batch(&[updated_event("car", &user, "2099-01-01T00:00:00Z", 41)])).await;
    app.eventually_status(&key, "car", "future state", |b| b["batteryLevel"] == 41).await;
    clock.advance(chrono::Duration::minutes(11));
    let now = evconduit_actors::ports::Clock::now(clock.as_ref()).to_rfc3339();
    app.signed_webhook(&batch(&[updated_event("car", &user, &now, 42)])).await;
    app.eventually_status(&key, "car", "genuine update after the future one", |b| b["batteryLevel"] == 42).await;
    app.stop().await;
}

/// A first attempt recorded the delivery and was then cut off before applying it (Enode gave up
/// waiting, the process died): Enode's retry must be applied, not dismissed as a duplicate.
async fn a_recorded_but_unapplied_delivery_is_applied_on_retry(db: TestDatabase) {
    let app = TestApp::start(config(&db)).await;
    let (_, key) = app.user_with_key(Some(FIXTURE_USER), "retry@example.com", None).await;
    let first_attempt =
        evconduit::store::NewDelivery { id: "cut-off".into(), received_at: chrono::Utc::now(), event_count: 3 };
    app.store().record_delivery(&first_attempt).await.unwrap();

    let response = app.webhook(FIXTURE_BATCH, Some(FIXTURE_SIGNATURE), "cut-off").await;
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"accepted": 3, "duplicate": false}));
    app.eventually_status(&key, FIXTURE_VEHICLE, "applied on retry", |b| b["batteryLevel"] == 62).await;
    // Now it is applied: a further retry is a duplicate.
    let response = app.webhook(FIXTURE_BATCH, Some(FIXTURE_SIGNATURE), "cut-off").await;
    assert_eq!(response.json::<Value>().await.unwrap()["duplicate"], true);
    app.stop().await;
    db.drop_db().await;
}
on_both_backends!(a_recorded_but_unapplied_delivery_is_applied_on_retry);
