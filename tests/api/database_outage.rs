//! The database going down degrades the service without losing anything it accepted: reads keep
//! answering from memory, webhooks are refused (so Enode keeps them and retries), vehicle state
//! waits in the write-behind, and everything lands once the database is back.

use std::time::Duration;

use evconduit::config::{Config, Secret};
use evconduit::store::testing::TestDatabase;
use evconduit_actors::ports::VehicleWrite;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;

use crate::helpers::*;

const ADMIN_TOKEN: &str = "admin-token-for-outage-tests-0123";

/// Refuses new connections to the test database and cuts the open ones: for this service, the
/// database is down (other tests' databases on the same server are untouched).
async fn set_database_up(db: &TestDatabase, up: bool) {
    let admin_url = std::env::var("EVCONDUIT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = url::Url::parse(db.url()).unwrap().path().trim_start_matches('/').to_owned();
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("admin connection");
    let allow = if up { "true" } else { "false" };
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allow}")))
        .execute(&mut admin)
        .await
        .unwrap();
    if !up {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(&name)
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_degrades_service_and_loses_nothing() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let mut config = Config { admin_token: Some(Secret::new(ADMIN_TOKEN)), ..config(&db) };
    // Slow write-behind, so state accepted just before the outage is still queued when it starts.
    config.write_behind_interval_ms = 1_000;
    let app = TestApp::start(config).await;
    let (user, key) = app.user_with_key(None, "dbdown@example.com", None).await;
    let user = user.to_string();
    app.signed_webhook(&batch(&[updated_event("car", &user, "2026-11-25T10:00:00Z", 50)])).await;
    app.eventually_status(&key, "car", "first state", |b| b["batteryLevel"] == 50).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await; // written
    app.signed_webhook(&batch(&[updated_event("car", &user, "2026-11-25T10:01:00Z", 55)])).await;
    app.eventually_status(&key, "car", "accepted before the outage", |b| b["batteryLevel"] == 55).await;

    set_database_up(&db, false).await;

    // Reads: from memory, unaffected.
    let (status, body) = app.get_json(&key, "/api/status/car").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["batteryLevel"], 55);
    // Webhooks: not acknowledged, so Enode keeps the delivery and retries it.
    let update = batch(&[updated_event("car", &user, "2026-11-25T10:02:00Z", 60)]);
    let signature = evconduit::enode::signature::sign(FIXTURE_SECRET.as_bytes(), &update);
    let response = app.webhook(&update, Some(&signature), "during-outage").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_json(&response);
    let body: Value = response.json().await.unwrap();
    assert!(!body.to_string().contains("postgres://"), "no connection details in errors: {body}");
    let (_, still) = app.get_json(&key, "/api/status/car").await;
    assert_eq!(still["batteryLevel"], 55, "a refused delivery is not applied");
    // Readiness says what is wrong but stays ready: reads work, and a load balancer must not pull
    // every instance because the database blinked.
    let response = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["store"], "unreachable");
    // The write-behind keeps what it holds and retries, and the admin API says so. The car's
    // state is handed over again as its actor does on every change, so a write is surely queued
    // (the one accepted above may have been stored just before the outage).
    let car = app.state.fleet.board().get("car").expect("the car's entry");
    app.state.write_behind.submit(VehicleWrite::Upsert(car.snapshot().state.clone()));
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let (status, store) = app.get_json(ADMIN_TOKEN, "/admin/store").await;
    assert_eq!(status, StatusCode::OK, "answered without the database: {store}");
    let waiting = &store["write_behind"];
    assert_eq!(waiting["backlog"].as_u64().unwrap() + waiting["in_flight"].as_u64().unwrap(), 1, "{store}");
    assert!(waiting["failed_batches"].as_u64().unwrap() >= 1, "{store}");
    assert_eq!(waiting["dropped"], 0);

    set_database_up(&db, true).await;

    // Enode's retry of the same delivery is accepted and applied.
    eventually("the retried delivery is accepted", Duration::from_secs(30), || async {
        app.webhook(&update, Some(&signature), "during-outage").await.status() == StatusCode::OK
    })
    .await;
    app.eventually_status(&key, "car", "the retried delivery applied", |b| b["batteryLevel"] == 60).await;
    app.stop().await;
    let store = evconduit::store::connect(db.url()).await.unwrap();
    let saved = store.load_vehicles().await.unwrap();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].vehicle.charge_state.battery_level, Some(60.0));
    db.drop_db().await;
}
