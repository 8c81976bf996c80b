//! The HA read API: accounts, vehicle lists, status, isolation between users, caching headers.

use std::time::Duration;

use evconduit::store::testing::TestDatabase;
use evconduit_actors::tier::Tier;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::on_both_backends;

#[tokio::test]
async fn me_and_vehicle_lists_follow_the_contract() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let (user, key) = app.user_with_key(Some(FIXTURE_USER), "ha@example.com", None).await;

    let (status, me) = app.get_json(&key, "/api/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], "ha@example.com");
    assert_eq!(me["tier"], "pro", "a new user is on the Pro trial");
    assert_eq!(me["is_trial"], true);
    assert_eq!(me["role"], "user");
    assert_eq!(me["sms_credits"], 0);
    assert!(me["name"].is_string());
    for path in ["/api/ha/me", "/api/v1/ha/me"] {
        let (status, ha_me) = app.get_json(&key, path).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ha_me["user_id"], user.to_string());
        assert_eq!(ha_me["tier"], "pro");
        assert_eq!(ha_me["sms_credits"], 0);
    }

    let (status, empty) = app.get_json(&key, "/api/user/vehicles").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty, Value::Array(vec![]));

    app.webhook(FIXTURE_BATCH, Some(FIXTURE_SIGNATURE), "d1").await;
    app.eventually_status(&key, FIXTURE_VEHICLE, "fixture applied", |b| b["batteryLevel"] == 62).await;
    for path in ["/api/user/vehicles", "/api/ha/vehicles", "/api/v1/ha/vehicles"] {
        let (status, list) = app.get_json(&key, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let item = &list[0];
        assert_eq!(item["id"], FIXTURE_VEHICLE);
        assert!(item["internalId"].is_string());
        assert_eq!(item["information"]["brand"], "XPENG");
        assert_eq!(item["information"]["model"], "G6");
        assert!(item["information"].get("displayName").is_some());
    }
    app.stop().await;
}

#[tokio::test]
async fn tiers_given_explicitly_have_no_trial() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let (_, key) = app.user_with_key(None, "free@example.com", Some(Tier::Free)).await;
    let (_, me) = app.get_json(&key, "/api/me").await;
    assert_eq!(me["tier"], "free");
    assert_eq!(me["is_trial"], false);
    app.stop().await;
}

async fn another_users_vehicle_is_404_like_an_unknown_one(db: TestDatabase) {
    let app = TestApp::start(config(&db)).await;
    let (_, owner_key) = app.user_with_key(Some(FIXTURE_USER), "owner@example.com", None).await;
    let (_, other_key) = app.user_with_key(None, "other@example.com", None).await;
    app.webhook(FIXTURE_BATCH, Some(FIXTURE_SIGNATURE), "d1").await;
    let body = app.eventually_status(&owner_key, FIXTURE_VEHICLE, "applied", |_| true).await;
    let internal = body["internalId"].as_str().unwrap().to_owned();

    let (_, unknown) = app.get_json(&other_key, "/api/status/no-such-vehicle").await;
    for id in [FIXTURE_VEHICLE, internal.as_str()] {
        for prefix in ["/api/status", "/api/ha/status", "/api/v1/ha/status"] {
            let (status, body) = app.get_json(&other_key, &format!("{prefix}/{id}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert_eq!(body, unknown, "indistinguishable from an unknown id");
        }
    }
    let (_, list) = app.get_json(&other_key, "/api/user/vehicles").await;
    assert_eq!(list, Value::Array(vec![]));
    app.stop().await;
    db.drop_db().await;
}
on_both_backends!(another_users_vehicle_is_404_like_an_unknown_one);

#[tokio::test]
async fn a_revoked_key_fails_on_the_very_next_request() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let (_, key) = app.user_with_key(None, "keys@example.com", None).await;
    // A second key made through the API.
    let response = app
        .http
        .post(app.url("/api/user/keys"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"label": "garage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let created: Value = response.json().await.unwrap();
    let second = created["key"].as_str().unwrap().to_owned();
    assert!(second.starts_with("evc_"));
    assert_eq!(app.get(&second, "/api/me").await.status(), StatusCode::OK);

    let revoke = app
        .http
        .delete(app.url(&format!("/api/user/keys/{}", created["id"].as_str().unwrap())))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::OK);
    let response = app.get(&second, "/api/me").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_json(&response);
    assert_eq!(app.get(&key, "/api/me").await.status(), StatusCode::OK, "the other key still works");

    // Listing shows metadata, never the key or its hash.
    let (_, keys) = app.get_json(&key, "/api/user/keys").await;
    let text = keys.to_string();
    assert!(!text.contains(&second) && !text.contains("hash"), "{text}");
    assert_eq!(keys.as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_key_revoked_by_another_process_stops_working() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let (user, key) = app.user_with_key(None, "cli@example.com", None).await;
    assert_eq!(app.get(&key, "/api/me").await.status(), StatusCode::OK);
    // What `evconduit keys revoke` does: straight to the database.
    let other_process = evconduit::store::connect(db.url()).await.unwrap();
    let id = other_process.list_api_keys(user).await.unwrap()[0].id;
    other_process.revoke_api_key(id, chrono::Utc::now()).await.unwrap();
    eventually("the key revoked by another process refused", Duration::from_secs(2), || async {
        app.get(&key, "/api/me").await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn errors_are_json_with_detail_and_code() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let (_, key) = app.user_with_key(None, "errors@example.com", None).await;

    let (status, body) = app.get_json(&key, "/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    assert!(body["detail"].is_string());

    let response = app.http.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_json(&response);
    let response = app.get("evc_not-a-real-key", "/api/status/x").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_json(&response);

    let response = app.http.delete(app.url("/api/me")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_json(&response);

    let response = app.http.post(app.url("/api/user/keys")).bearer_auth(&key).body("{oops").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_json(&response);

    // Answers axum makes before any handler runs are JSON too.
    let response = app.get(&key, "/api/status/%FF%FE").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_json(&response);
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].is_string() && body["code"] == "bad_request", "{body}");
    let huge = vec![b'x'; 200 * 1024];
    let response = app.http.post(app.url("/api/charging/any")).bearer_auth(&key).body(huge).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_json(&response);
    app.stop().await;
}

#[tokio::test]
async fn status_carries_etag_age_and_source() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let (_, key) = app.user_with_key(Some(FIXTURE_USER), "cache@example.com", None).await;
    app.webhook(FIXTURE_BATCH, Some(FIXTURE_SIGNATURE), "d1").await;
    app.eventually_status(&key, FIXTURE_VEHICLE, "applied", |b| b["batteryLevel"] == 62).await;

    let response = app.get(&key, &format!("/api/status/{FIXTURE_VEHICLE}")).await;
    let headers = response.headers().clone();
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    assert_eq!(headers["last-modified"], "Wed, 25 Nov 2026 09:12:26 GMT");
    assert!(headers["age"].to_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(headers["x-data-source"], "webhook");

    let cached = app
        .http
        .get(app.url(&format!("/api/status/{FIXTURE_VEHICLE}")))
        .bearer_auth(&key)
        .header("if-none-match", &etag);
    let response = cached.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()["etag"], etag.as_str());

    let stale = app
        .http
        .get(app.url(&format!("/api/status/{FIXTURE_VEHICLE}")))
        .bearer_auth(&key)
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["checks"]["fleet"], "restored");
    app.stop().await;
}

#[tokio::test]
async fn a_user_holds_a_bounded_number_of_keys() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let (_, key) = app.user_with_key(None, "many@example.com", None).await;
    let create = || app.http.post(app.url("/api/user/keys")).bearer_auth(&key).json(&serde_json::json!({})).send();
    // The user already has one key; 19 more reach the limit.
    for _ in 0..19 {
        assert_eq!(create().await.unwrap().status(), StatusCode::OK);
    }
    let refused = create().await.unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_json(&refused);
    let body: Value = refused.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("20 active keys"), "{body}");
    app.stop().await;
}
