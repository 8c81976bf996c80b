//! `TestApp`: the service started in-process on port 0 against a fresh database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use evconduit::accounts::{self, UserSpec};
use evconduit::app::App;
use evconduit::config::{Config, Secret};
use evconduit::enode::signature;
use evconduit::enode::sim::{EnodeSim, SimConfig, SimHandle};
use evconduit::http::AppState;
use evconduit::store::testing::TestDatabase;
use evconduit::store::{Role, Store};
use evconduit_actors::ports::{Clock, SystemClock};
use evconduit_actors::snapshot::ActorStatus;
pub use evconduit_actors::testing::{eventually, eventually_here, eventually_some};
use evconduit_actors::tier::Tier;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The signed fixture delivery (tests/fixtures/webhook-batch.json) and its secret.
pub const FIXTURE_BATCH: &[u8] = include_bytes!("../fixtures/webhook-batch.json");
pub const FIXTURE_SECRET: &str = "fixture-webhook-secret-0123456789abcdef";
pub const FIXTURE_SIGNATURE: &str = "sha1=786438ca93115d059a7deb3b8c15fbc6ff1ee2c5";
pub const FIXTURE_USER: &str = "0b7f4c1e-2d3a-4f5b-9c8d-7e6f5a4b3c2d";
pub const FIXTURE_VEHICLE: &str = "c6198bd9-9a25-425d-afc3-a61ee974d1a8";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body once per backend: `backends!(name, body_fn)` makes `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(db) = $crate::helpers::database($crate::helpers::Backend::Sqlite).await {
                    super::$name(db).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::helpers::database($crate::helpers::Backend::Postgres).await {
                    super::$name(db).await;
                }
            }
        }
    };
}

/// A fresh database, or None when Postgres is unreachable outside CI (the helper says so loudly;
/// on CI it fails instead).
pub async fn database(backend: Backend) -> Option<TestDatabase> {
    match backend {
        Backend::Sqlite => Some(TestDatabase::sqlite()),
        Backend::Postgres => TestDatabase::postgres().await,
    }
}

pub fn config(db: &TestDatabase) -> Config {
    Config {
        database_url: Secret::new(db.url()),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        enode_webhook_secrets: vec![Secret::new("old-rotated-secret"), Secret::new(FIXTURE_SECRET)],
        write_behind_interval_ms: 20,
        key_revocation_poll_ms: 100,
        ..Config::default()
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub state: AppState,
    /// Where `/metrics` answers, when the config sets `metrics_listen`.
    pub metrics_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn start(config: Config) -> Self {
        Self::start_on(bind().await, config, Arc::new(SystemClock)).await
    }

    /// Starts on an already bound listener (so the config can name its address, e.g. as
    /// `public_url`) with the given clock.
    pub async fn start_on(listener: tokio::net::TcpListener, config: Config, clock: Arc<dyn Clock>) -> Self {
        let app = App::build_with_clock(config, clock).await.expect("app builds");
        let state = app.state().clone();
        let metrics_addr = app.metrics_addr();
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(listener, async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
        Self { addr, http, state, metrics_addr, stop: Some(stop), task: Some(task) }
    }

    /// Graceful shutdown, as on SIGTERM: waits until state is flushed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("clean shutdown");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.state.store)
    }

    /// Creates a user (through the store, as the CLI does) and a key for it.
    pub async fn user_with_key(&self, id: Option<&str>, email: &str, tier: Option<Tier>) -> (Uuid, String) {
        let store = self.store();
        let spec = UserSpec {
            id: id.map(|i| Uuid::parse_str(i).expect("uuid")),
            email: email.into(),
            name: None,
            role: Role::User,
            tier,
        };
        let user = accounts::create_user(store.as_ref(), spec, Utc::now()).await.expect("user");
        let (_, key) = accounts::create_api_key(store.as_ref(), user.id, None, Utc::now()).await.expect("key");
        (user.id, key)
    }

    pub async fn webhook(&self, body: &[u8], signature: Option<&str>, delivery: &str) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url("/api/webhook/enode"))
            .header("content-type", "application/json")
            .header("x-enode-delivery", delivery)
            .body(body.to_vec());
        if let Some(sig) = signature {
            request = request.header("x-enode-signature", sig);
        }
        request.send().await.expect("webhook request")
    }

    /// Posts `body` signed with the fixture secret under a fresh delivery id.
    pub async fn signed_webhook(&self, body: &[u8]) -> reqwest::Response {
        let sig = signature::sign(FIXTURE_SECRET.as_bytes(), body);
        self.webhook(body, Some(&sig), &Uuid::new_v4().to_string()).await
    }

    pub async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(key).send().await.expect("request")
    }

    pub async fn get_json(&self, key: &str, path: &str) -> (StatusCode, Value) {
        let response = self.get(key, path).await;
        let status = response.status();
        assert_json(&response);
        (status, response.json().await.expect("json body"))
    }

    /// Polls the status route until `check` holds on the body (the actors apply asynchronously).
    pub async fn eventually_status(&self, key: &str, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let check = &check;
        eventually_some(&format!("status of {id}: {what}"), Duration::from_secs(5), || async move {
            let (status, body) = self.get_json(key, &format!("/api/status/{id}")).await;
            (status == StatusCode::OK && check(&body)).then_some(body)
        })
        .await
    }
}

pub async fn bind() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

/// The simulator on a free port, with a fleet of `vehicles` and a quiet default rhythm.
pub async fn start_sim(config: SimConfig) -> SimHandle {
    EnodeSim::start(config, bind().await).await.expect("simulator starts")
}

/// Points the service's Enode client at the simulator and its webhook subscription at `public`.
pub fn use_sim(config: &mut Config, sim: &SimHandle, public: SocketAddr) {
    config.enode_client_id = sim.client_id().to_owned();
    config.enode_client_secret = Secret::new(sim.client_secret());
    config.enode_api_url = sim.base_url().to_owned();
    config.enode_token_url = sim.token_url();
    config.public_url = format!("http://{public}");
}

pub fn assert_json(response: &reqwest::Response) {
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(content_type.starts_with("application/json"), "content-type was {content_type:?}");
}

/// An Enode `user:vehicle:updated` event for the fixture vehicle with changes applied.
pub fn updated_event(vehicle_id: &str, user_id: &str, last_seen: &str, battery: u32) -> Value {
    let mut vehicle: Value = serde_json::from_str(include_str!("../fixtures/vehicle.json")).expect("fixture");
    vehicle["id"] = vehicle_id.into();
    vehicle["userId"] = user_id.into();
    vehicle["lastSeen"] = last_seen.into();
    vehicle["chargeState"]["lastUpdated"] = last_seen.into();
    vehicle["chargeState"]["batteryLevel"] = battery.into();
    serde_json::json!({
        "event": "user:vehicle:updated",
        "createdAt": last_seen,
        "version": "2024-10-01",
        "user": { "id": user_id },
        "vehicle": vehicle,
        "updatedFields": ["chargeState.batteryLevel"],
    })
}

pub fn batch(events: &[Value]) -> Vec<u8> {
    serde_json::to_vec(events).expect("serialise batch")
}

impl TestApp {
    /// Panics a vehicle's actor each time it runs again, until the fleet marks it degraded (its
    /// restart budget spent). Returns how many panics that took.
    pub async fn degrade(&self, vehicle: &str, reason: &str) -> usize {
        let panics = std::cell::Cell::new(0);
        eventually_here(&format!("{vehicle} degraded"), || match self.state.fleet.health(vehicle).map(|h| h.status) {
            Some(ActorStatus::Degraded) => true,
            Some(ActorStatus::Running) => {
                if self.state.fleet.inject_panic(vehicle, reason) {
                    panics.set(panics.get() + 1);
                }
                false
            }
            _ => false,
        })
        .await;
        panics.get()
    }

    pub async fn post_json(&self, key: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self.http.post(self.url(path)).bearer_auth(key).json(body).send().await.expect("request");
        let status = response.status();
        assert_json(&response);
        (status, response.json().await.expect("json body"))
    }
}

/// `updated_event` with the charge port in `power_delivery_state` (and the flags that go with it).
pub fn charge_event(
    vehicle_id: &str,
    user_id: &str,
    last_seen: &str,
    battery: u32,
    power_delivery_state: &str,
) -> Value {
    let mut event = updated_event(vehicle_id, user_id, last_seen, battery);
    let charge = &mut event["vehicle"]["chargeState"];
    let charging = power_delivery_state == "PLUGGED_IN:CHARGING";
    charge["powerDeliveryState"] = power_delivery_state.into();
    charge["isCharging"] = charging.into();
    charge["isPluggedIn"] = power_delivery_state.starts_with("PLUGGED_IN").into();
    charge["chargeRate"] = if charging { 11.0.into() } else { Value::Null };
    event
}
