//! What the criterion benches share: the real app (`App::build`) restored from a store seeded with
//! N vehicles owned by N/2 users with one API key each, run in-process.
//!
//! Under `cargo bench -- --test` (or `cargo test --benches`) criterion runs every benchmark once
//! to prove it works; `quick()` then shrinks the worlds so that takes seconds, not minutes.

#![allow(dead_code)] // each bench binary uses its own part of this

use std::sync::Arc;

use chrono::Utc;
use evconduit::accounts::{self, UserSpec};
use evconduit::app::App;
use evconduit::config::{Config, Secret};
use evconduit::http::AppState;
use evconduit::store::Role;
use evconduit::store::testing::TestDatabase;
use evconduit_actors::ports::VehicleWrite;
use evconduit_actors::state::{DataSource, VehicleState};
use evconduit_actors::testing::sample_vehicle;
use evconduit_actors::tier::Tier;
use futures::{StreamExt, TryStreamExt};
use uuid::Uuid;

pub const SECRET: &str = "bench-webhook-secret-0123456789abcdef";

/// True when criterion only checks that the benches run (`--test`, or not under `cargo bench`).
pub fn quick() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench")
}

/// A multi-threaded runtime like the service's, for the app's own tasks (actors, write-behind).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

pub struct BenchVehicle {
    pub enode_id: String,
    pub user_id: Uuid,
    pub key: String,
}

pub struct World {
    pub app: App,
    pub vehicles: Vec<BenchVehicle>,
    _db: TestDatabase,
}

impl World {
    pub fn state(&self) -> &AppState {
        self.app.state()
    }

    /// The app restored from a fresh SQLite store holding `n` vehicles.
    pub async fn start(n: usize) -> Self {
        let db = TestDatabase::sqlite();
        let store = db.store().await.expect("store connects and migrates");
        let now = Utc::now();
        let users = n.div_ceil(2);
        let keyed: Vec<(Uuid, String)> = futures::stream::iter(0..users)
            .map(|i| {
                let store = Arc::clone(&store);
                async move {
                    let spec = UserSpec {
                        id: None,
                        email: format!("bench-{i}@example.com"),
                        name: None,
                        role: Role::User,
                        tier: Some(Tier::Pro),
                    };
                    let user = accounts::create_user(store.as_ref(), spec, now).await?;
                    let (_, key) = accounts::create_api_key(store.as_ref(), user.id, None, now).await?;
                    Ok::<_, evconduit::store::StoreError>((user.id, key))
                }
            })
            .buffer_unordered(8)
            .try_collect()
            .await
            .expect("seed users and keys");
        let vehicles: Vec<BenchVehicle> = (0..n)
            .map(|i| {
                let (user_id, key) = &keyed[i / 2];
                BenchVehicle { enode_id: format!("bench-vehicle-{i:06}"), user_id: *user_id, key: key.clone() }
            })
            .collect();
        let writes: Vec<VehicleWrite> = vehicles
            .iter()
            .map(|v| {
                VehicleWrite::Upsert(Arc::new(VehicleState {
                    internal_id: Uuid::new_v4(),
                    user_id: v.user_id,
                    vehicle: Box::new(sample_vehicle(&v.enode_id)),
                    source: DataSource::Webhook,
                    received_at: now,
                    relink_required: false,
                    charge_action: None,
                }))
            })
            .collect();
        for chunk in writes.chunks(1_000) {
            store.write_vehicles(chunk).await.expect("seed vehicles");
        }
        drop(store);
        let config = Config {
            database_url: Secret::new(db.url()),
            enode_webhook_secrets: vec![Secret::new(SECRET)],
            ..Config::default()
        };
        let app = App::build(config).await.expect("app builds");
        Self { app, vehicles, _db: db }
    }
}
