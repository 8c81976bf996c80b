//! The admin API and page: who gets in, what an unhealthy actor looks like, paging, history,
//! operator actions, and the HTML page as a real browser renders it.

use std::time::Duration;

use chrono::Utc;
use evconduit::accounts::{self, UserSpec};
use evconduit::config::{Config, Secret};
use evconduit::store::Role;
use evconduit::store::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";

fn admin_config(db: &TestDatabase) -> Config {
    Config { admin_token: Some(Secret::new(ADMIN_TOKEN)), ..config(db) }
}

impl TestApp {
    async fn admin_key(&self) -> String {
        let store = self.store();
        let spec = UserSpec { id: None, email: "ops@example.com".into(), name: None, role: Role::Admin, tier: None };
        let user = accounts::create_user(store.as_ref(), spec, Utc::now()).await.expect("admin user");
        accounts::create_api_key(store.as_ref(), user.id, None, Utc::now()).await.expect("key").1
    }

    async fn admin(&self, path: &str) -> (StatusCode, Value) {
        self.get_json(ADMIN_TOKEN, path).await
    }
}

async fn three_cars(app: &TestApp) -> (String, String) {
    let (user, key) = app.user_with_key(None, "driver@example.com", None).await;
    let user = user.to_string();
    let events: Vec<Value> =
        (0..3).map(|i| updated_event(&format!("car-{i}"), &user, "2026-11-25T10:00:00Z", 40 + i)).collect();
    assert_eq!(app.signed_webhook(&batch(&events)).await.status(), StatusCode::OK);
    app.eventually_status(&key, "car-2", "created", |b| b["batteryLevel"] == 42).await;
    (user, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_answer_only_to_admins() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(admin_config(&db)).await;
    let (_, user_key) = app.user_with_key(None, "someone@example.com", None).await;
    let admin_key = app.admin_key().await;

    for path in [
        "/admin/actors",
        "/admin/upstream",
        "/admin/webhooks",
        "/admin/push",
        "/admin/users",
        "/admin/store",
        "/admin/runtime",
    ] {
        let anonymous = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path} without credentials");
        let (status, body) = app.get_json("not-the-token-at-all", path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with a wrong token");
        assert_eq!(body["code"], "unauthorized");
        let (status, _) = app.get_json(&user_key, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} with an ordinary key");
        let (status, _) = app.admin(path).await;
        assert_eq!(status, StatusCode::OK, "{path} with the admin token");
        let (status, _) = app.get_json(&admin_key, path).await;
        assert_eq!(status, StatusCode::OK, "{path} with an admin's key");
    }
    let restart = app.http.post(app.url("/admin/actors/x/restart")).bearer_auth(&user_key).send().await.unwrap();
    assert_eq!(restart.status(), StatusCode::FORBIDDEN);
    // The page asks a browser to log in.
    let page = app.http.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert!(page.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_actor_shows_first_with_its_history_and_can_be_restarted() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(admin_config(&db)).await;
    let (user, key) = three_cars(&app).await;
    let car1_internal = app.state.fleet.board().get("car-1").unwrap().internal_id().to_string();
    app.degrade("car-1", "admin test").await;
    // Still serving its last snapshot, flagged.
    let response = app.get(&key, "/api/status/car-1").await;
    assert_eq!(response.headers()["x-actor-status"], "degraded");

    let (status, page) = app.admin("/admin/actors").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 3);
    let first = &page["actors"][0];
    assert_eq!(first["enode_id"], "car-1", "the unhealthy vehicle is listed first: {page}");
    assert_eq!(first["internal_id"], car1_internal.as_str());
    assert_eq!(first["user_id"], user.as_str());
    assert_eq!(first["status"], "degraded");
    assert!(first["restarts_in_window"].as_u64().unwrap() >= 5);
    assert!(first["last_error"].as_str().unwrap().contains("admin test"), "{first}");
    assert_eq!(first["data_source"], "webhook");
    assert!(first["data_age_secs"].is_number());
    assert!(first["last_webhook_at"].is_null(), "car-1 only had the webhook that created it");
    for field in ["mailbox_backlog", "next_refresh_at", "breaker", "push"] {
        assert!(first.get(field).is_some(), "{field} is part of the row");
    }

    // Filters and paging.
    let (_, degraded) = app.admin("/admin/actors?status=degraded").await;
    assert_eq!(degraded["total"], 1);
    let (_, running) = app.admin(&format!("/admin/actors?status=running&user={user}")).await;
    assert_eq!(running["total"], 2);
    let (_, nobody) = app.admin(&format!("/admin/actors?user={}", uuid::Uuid::new_v4())).await;
    assert_eq!(nobody["total"], 0);
    let (status, _) = app.admin("/admin/actors?status=sleepy").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut seen = Vec::new();
    let mut path = "/admin/actors?limit=1".to_owned();
    loop {
        let (status, page) = app.admin(&path).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["actors"].as_array().unwrap().len(), 1);
        seen.push(page["actors"][0]["enode_id"].as_str().unwrap().to_owned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/admin/actors?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "every vehicle once over the pages: {seen:?}");
    assert_eq!(seen[0], "car-1");

    // A webhook for a known vehicle, then the history shows it all, newest first.
    app.signed_webhook(&batch(&[updated_event("car-0", &user, "2026-11-25T10:05:00Z", 50)])).await;
    app.eventually_status(&key, "car-0", "updated", |b| b["batteryLevel"] == 50).await;
    let (_, car0) = app.admin("/admin/actors/car-0").await;
    let kinds: Vec<&str> = car0["history"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["webhook", "created"], "{car0}");
    assert!(car0["last_webhook_at"].is_string());
    let (status, car1) = app.admin(&format!("/admin/actors/{car1_internal}")).await;
    assert_eq!(status, StatusCode::OK);
    let history = car1["history"].as_array().unwrap();
    assert_eq!(history[0]["kind"], "degraded");
    assert_eq!(history[0]["outcome"], "failed");
    // Five failures alike: one entry that counts them.
    let restarts: Vec<&Value> = history.iter().filter(|e| e["kind"] == "restart").collect();
    assert_eq!(restarts.len(), 1, "{history:?}");
    assert!(restarts[0]["count"].as_u64().unwrap() >= 5, "{history:?}");
    assert!(restarts[0]["first_at"].as_str() <= restarts[0]["at"].as_str());
    assert_eq!(history.last().unwrap()["kind"], "created");
    let (status, _) = app.admin("/admin/actors/no-such-car").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Refresh waits for the scheduler; restart brings the actor back.
    let refresh = app.http.post(app.url("/admin/actors/car-1/refresh")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(refresh.status(), StatusCode::SERVICE_UNAVAILABLE);
    let restart = app.http.post(app.url("/admin/actors/car-1/restart")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(restart.status(), StatusCode::OK);
    assert_eq!(restart.json::<Value>().await.unwrap()["restarted"], true);
    let (_, page) = app.admin("/admin/actors?status=degraded").await;
    assert_eq!(page["total"], 0);
    let (_, car1) = app.admin("/admin/actors/car-1").await;
    assert_eq!(car1["status"], "running");
    assert_eq!(car1["history"][0]["kind"], "restart");
    assert_eq!(car1["history"][0]["outcome"], "ok");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_endpoints_describe_the_service() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(admin_config(&db)).await;
    three_cars(&app).await;
    let (_, upstream) = app.admin("/admin/upstream").await;
    assert_eq!(upstream["configured"], false);
    assert_eq!(upstream["detail"], "Enode client not configured");
    let (_, webhooks) = app.admin("/admin/webhooks").await;
    assert_eq!(webhooks["totals"]["deliveries"], 1);
    assert_eq!(webhooks["totals"]["updated"], 3);
    assert!(webhooks["last_delivery_at"].is_string());
    assert!(webhooks["per_minute"]["deliveries"].is_number());
    let (_, push) = app.admin("/admin/push").await;
    assert_eq!(push["stats"]["targets"], 0);
    assert_eq!(push["targets"], serde_json::json!([]));
    let (_, users) = app.admin("/admin/users").await;
    let driver = users.as_array().unwrap().iter().find(|u| u["email"] == "driver@example.com").unwrap();
    assert_eq!(driver["vehicles"], 3);
    assert_eq!(driver["role"], "user");
    // The three cars' states reach the store (the write-behind runs every 20 ms here).
    eventually("the write-behind stores the three cars", Duration::from_secs(10), || async {
        let (_, store) = app.admin("/admin/store").await;
        store["write_behind"]["written"] == 3
    })
    .await;
    let (_, store) = app.admin("/admin/store").await;
    assert_eq!(store["write_behind"]["backlog"], 0);
    assert_eq!(store["write_behind"]["in_flight"], 0);
    assert_eq!(store["write_behind"]["dropped"], 0);
    assert!(store["wal_bytes"].is_number(), "a file-backed SQLite store reports its WAL: {store}");
    // The runtime's canary has been running since start, every 10 ms.
    let (_, runtime) = app.admin("/admin/runtime").await;
    assert_eq!(runtime["every_ms"], 10);
    assert!(runtime["samples"].as_u64().is_some_and(|n| n > 0), "{runtime}");
    let buckets = runtime["buckets"].as_array().expect("lateness buckets");
    assert_eq!(buckets.last().map(|b| &b["count"]), Some(&runtime["samples"]), "the last bucket counts every sample");
    assert!(runtime["max_ms"].is_number());
    app.stop().await;
}

/// The page as a person sees it: headless Chromium loads it (logging in with Basic auth in the
/// URL) and the dumped DOM has the fleet table, unhealthy vehicle first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_renders_the_fleet_in_a_browser() {
    let Some(chromium) = chromium() else { return };
    let db = TestDatabase::sqlite();
    let app = TestApp::start(admin_config(&db)).await;
    three_cars(&app).await;
    app.degrade("car-2", "admin test").await;
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://admin:{ADMIN_TOKEN}@{}/admin", app.addr);
    let output = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", &url])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output).await.expect("chromium finishes").unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        dom.contains("<table id=\"actors\""),
        "no fleet table in {dom}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<&str> = dom.match_indices("class=\"actor-row").map(|(i, _)| &dom[i..]).collect();
    assert_eq!(rows.len(), 3, "{dom}");
    assert!(
        rows[0].starts_with("class=\"actor-row degraded\""),
        "unhealthy first: {}",
        &rows[0][..200.min(rows[0].len())]
    );
    assert!(dom.contains("car-2") && dom.contains("car-0"));
    assert!(dom.contains("degraded: <b>1</b>"), "counts by status");
    assert!(dom.contains("Enode client not configured"));
    assert!(dom.contains("id=\"webhooks\""));
    app.stop().await;
}

/// Debian's chromium; CI installs it (.ci/run). Elsewhere the test says why it did nothing.
fn chromium() -> Option<&'static str> {
    const PATH: &str = "/usr/bin/chromium";
    if std::path::Path::new(PATH).exists() {
        return Some(PATH);
    }
    assert!(std::env::var_os("CI").is_none(), "{PATH} is missing on CI");
    eprintln!("SKIPPED: {PATH} is not installed (apt-get install chromium)");
    None
}

/// With Enode configured (the simulator), the upstream view, the breaker column, operator
/// refreshes and the upstream metrics come alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_enode_the_upstream_shows_and_an_operator_refresh_is_made() {
    use crate::world::{World, quiet_sim};
    let world = World::start(quiet_sim(), |config| {
        config.admin_token = Some(Secret::new(ADMIN_TOKEN));
        config.metrics_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let app = &world.app;
    let (_, key) = world.user("linked@example.com", evconduit_actors::tier::Tier::Pro).await;
    let id = world.link(&key, "VOLKSWAGEN").await.remove(0);
    // Linking makes the simulator send two events (discovered, updated), and `link` may return
    // before they arrive (the service also fetches the car). Delivered (acknowledged) means
    // handed to the car's actor, so the refresh below is applied after them and is the last
    // word on the car: otherwise a late event could make the source "webhook" again.
    eventually("the link's webhook events are delivered", Duration::from_secs(20), || async {
        world.sim.stats().webhooks.events_delivered >= 2
    })
    .await;
    let path = format!("/vehicles/{id}");
    let before = world.requests_for(&path);

    let response =
        app.http.post(app.url(&format!("/admin/actors/{id}/refresh"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.json::<Value>().await.unwrap()["queued"], true);
    eventually("the operator's refresh reaches Enode", Duration::from_secs(20), || async {
        world.requests_for(&path) > before
    })
    .await;
    eventually("the refresh shows on the row", Duration::from_secs(20), || async {
        app.admin(&format!("/admin/actors/{id}")).await.1["last_refresh_at"].is_string()
    })
    .await;
    let (_, row) = app.admin(&format!("/admin/actors/{id}")).await;
    assert_eq!(row["breaker"], "closed");
    assert_eq!(row["data_source"], "refresh");
    assert!(row["mailbox_backlog"].is_number(), "{row}");
    // A command is in the history too, with its outcome (here Enode's refusal or its action).
    let command = app
        .http
        .post(app.url(&format!("/api/charging/{id}")))
        .bearer_auth(&key)
        .json(&serde_json::json!({"action": "STOP"}))
        .send()
        .await
        .unwrap();
    assert!(command.status() == StatusCode::OK || command.status() == StatusCode::CONFLICT);
    let (_, row) = app.admin(&format!("/admin/actors/{id}")).await;
    let kinds: Vec<&str> = row["history"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"refresh") && kinds.contains(&"command"), "{kinds:?}");

    let (_, upstream) = app.admin("/admin/upstream").await;
    assert_eq!(upstream["configured"], true, "{upstream}");
    assert_eq!(upstream["breaker"], "closed");
    assert!(upstream["budget_per_minute"].as_u64().unwrap() > 0);
    assert!(upstream["requests_sent"].as_u64().unwrap() > 0);
    assert!(upstream["stats"]["requests"].as_array().is_some_and(|r| !r.is_empty()));
    assert!(upstream["refresh"]["refreshed"].as_u64().unwrap() >= 1);
    let (_, webhooks) = app.admin("/admin/webhooks").await;
    assert!(webhooks["subscription"]["state"].is_string(), "{webhooks}");

    let metrics = app.http.get(format!("http://{}/metrics", app.metrics_addr.unwrap())).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(text.contains("evconduit_upstream_requests_total{endpoint="), "{text}");
    assert!(text.contains(r#"evconduit_upstream_breaker{state="closed"} 1"#));
    assert!(text.contains(r#"evconduit_refreshes_total{outcome="ok"}"#));
}
