//! `World`: the Enode simulator and the service wired together the production way: the service's
//! Enode client talks to the simulator, and the service's own subscription keeper creates the
//! webhook at the simulator pointing back at the service.

use std::sync::Arc;
use std::time::Duration;

use evconduit::config::Config;
use evconduit::enode::sim::{SimConfig, SimHandle};
use evconduit::store::testing::TestDatabase;
use evconduit_actors::ports::{Clock, SystemClock};
use evconduit_actors::tier::Tier;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

pub struct World {
    pub sim: SimHandle,
    pub app: TestApp,
    /// Kept so the database lives as long as the world.
    _db: TestDatabase,
}

/// A simulator that changes nothing by itself (frozen clock) and rarely heartbeats, so tests
/// drive every change; tests that want rhythm override.
pub fn quiet_sim() -> SimConfig {
    SimConfig {
        vehicles: 0,
        time_factor: 0.0,
        heartbeat_interval: Duration::from_secs(3600),
        action_delay: Duration::ZERO,
        ..SimConfig::default()
    }
}

impl World {
    pub async fn start(sim: SimConfig, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with_clock(sim, tweak, Arc::new(SystemClock)).await
    }

    pub async fn start_with_clock(sim: SimConfig, tweak: impl FnOnce(&mut Config), clock: Arc<dyn Clock>) -> Self {
        let sim = start_sim(sim).await;
        let db = TestDatabase::sqlite();
        let listener = bind().await;
        let mut config = config(&db);
        use_sim(&mut config, &sim, listener.local_addr().expect("addr"));
        tweak(&mut config);
        let app = TestApp::start_on(listener, config, clock).await;
        let keeper = app.state.subscription.clone().expect("a webhook subscription is managed");
        eventually("the webhook subscription exists", Duration::from_secs(30), || {
            let keeper = Arc::clone(&keeper);
            async move { keeper.status().subscription_id.is_some() }
        })
        .await;
        Self { sim, app, _db: db }
    }

    /// A user with a key.
    pub async fn user(&self, email: &str, tier: Tier) -> (String, String) {
        let (id, key) = self.app.user_with_key(None, email, Some(tier)).await;
        (id.to_string(), key)
    }

    /// Links a car of `vendor` through the real flow: the service opens a link session at Enode,
    /// the user opens the link URL, Enode creates the car and sends discovered + updated webhooks.
    /// Returns the Enode ids of the linked cars once the service serves their full state.
    pub async fn link(&self, key: &str, vendor: &str) -> Vec<String> {
        let response = self
            .app
            .http
            .post(self.app.url("/api/user/link-vehicle"))
            .bearer_auth(key)
            .json(&json!({ "vendor": vendor }))
            .send()
            .await
            .expect("link request");
        assert_eq!(response.status(), StatusCode::OK);
        let session: Value = response.json().await.expect("link session");
        assert!(session["linkToken"].is_string());
        let url = session["url"].as_str().expect("link url");
        let separator = if url.contains('?') { '&' } else { '?' };
        let outcome: Value = self
            .app
            .http
            .get(format!("{url}{separator}redirect=false"))
            .send()
            .await
            .expect("open link url")
            .json()
            .await
            .expect("link outcome");
        let ids: Vec<String> = outcome["vehicleIds"]
            .as_array()
            .expect("vehicleIds")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        assert!(!ids.is_empty(), "{outcome}");
        for id in &ids {
            self.app.eventually_status(key, id, "linked car's full state", |b| !b["batteryLevel"].is_null()).await;
        }
        ids
    }

    /// Requests the simulator logged for this concrete path.
    pub fn requests_for(&self, path: &str) -> usize {
        self.sim.stats().log.iter().filter(|e| e.path == path).count()
    }
}
