//! How fast the write-behind path (`write_vehicles`) and the start-up load (`load_vehicles`) are,
//! on both backends. A measurement, not a conformance check, so it is ignored by default; run it
//! on an optimised build:
//!
//! ```sh
//! cargo nextest run --release -p evconduit --test store_throughput --run-ignored only --no-capture
//! ```
//!
//! It still asserts a floor well below what it measures, so a change that makes the store an
//! order of magnitude slower cannot go unnoticed by whoever runs it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use evconduit::store::testing::TestDatabase;
use evconduit::store::{NewUser, Role, Store};
use evconduit_actors::model::Vehicle;
use evconduit_actors::ports::VehicleWrite;
use evconduit_actors::state::{DataSource, VehicleState, new_internal_id};
use evconduit_actors::tier::Tier;
use uuid::Uuid;

const VEHICLES: usize = 100_000;
const USERS: usize = 1_000;
/// The write-behind's default batch size.
const BATCH: usize = evconduit_actors::write_behind::DEFAULT_BATCH;
/// Floors: a tenth of the targets (thousands of vehicles per second written, 100 000 loaded in
/// about a second).
const MIN_WRITES_PER_SEC: f64 = 1_000.0;
const MAX_LOAD: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement: run with --release --run-ignored only"]
async fn sqlite() {
    let db = TestDatabase::sqlite();
    measure("sqlite", &db).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement: run with --release --run-ignored only"]
async fn postgres() {
    let Some(db) = TestDatabase::postgres().await else { return };
    measure("postgres", &db).await;
    db.drop_db().await;
}

async fn measure(backend: &str, db: &TestDatabase) {
    let store = db.store().await.expect("connect and migrate");
    let users = create_users(store.as_ref()).await;
    let template: Vehicle =
        serde_json::from_str(include_str!("fixtures/vehicle.json")).expect("fixture vehicle parses");
    let received_at: DateTime<Utc> = Utc::now();
    let states: Vec<Arc<VehicleState>> = (0..VEHICLES)
        .map(|i| {
            let mut vehicle = template.clone();
            vehicle.id = format!("enode-{i:06}");
            Arc::new(VehicleState {
                internal_id: new_internal_id(),
                user_id: users[i % USERS],
                vehicle: Box::new(vehicle),
                source: DataSource::Webhook,
                received_at,
                relink_required: false,
                charge_action: None,
            })
        })
        .collect();

    let inserted = write_all(store.as_ref(), &states).await;
    report(backend, "insert", inserted);

    // The steady state: every vehicle already has a row and the upsert updates it. In id order,
    // which is the order rows were inserted in: what the write-behind's sweep sends when most
    // vehicles have a write waiting, as after a webhook load.
    let updated_states: Vec<Arc<VehicleState>> = states
        .iter()
        .map(|state| {
            let mut state = VehicleState::clone(state);
            state.vehicle.charge_state.battery_level = Some(42.0);
            state.source = DataSource::Refresh;
            Arc::new(state)
        })
        .collect();
    let updated = write_all(store.as_ref(), &updated_states).await;
    report(backend, "update", updated);

    // Rows in no particular order, every one on a different page of the table and its index:
    // what the write-behind sends when few vehicles wait (a batch's ids are far apart), and what
    // it sent for any backlog while its queue was a hash map.
    let mut shuffled = updated_states;
    shuffle(&mut shuffled);
    let shuffled: Vec<Arc<VehicleState>> = shuffled
        .into_iter()
        .map(|state| {
            let mut state = VehicleState::clone(&state);
            state.vehicle.charge_state.battery_level = Some(43.0);
            Arc::new(state)
        })
        .collect();
    let updated_randomly = write_all(store.as_ref(), &shuffled).await;
    report(backend, "update in random order", updated_randomly);

    let started = Instant::now();
    let loaded = store.load_vehicles().await.expect("load");
    let load = started.elapsed();
    eprintln!(
        "{backend}: load_vehicles {} vehicles in {load:.2?} ({:.0} vehicles/s)",
        loaded.len(),
        loaded.len() as f64 / load.as_secs_f64()
    );

    assert_eq!(loaded.len(), VEHICLES);
    assert!(loaded.iter().all(|v| v.source == DataSource::Refresh));
    assert!(load < MAX_LOAD, "{backend}: loading {VEHICLES} vehicles took {load:?}");
    for (what, elapsed) in [("insert", inserted), ("update", updated), ("random update", updated_randomly)] {
        let rate = VEHICLES as f64 / elapsed.as_secs_f64();
        assert!(rate > MIN_WRITES_PER_SEC, "{backend}: {what} at {rate:.0} vehicles/s");
    }
}

async fn create_users(store: &dyn Store) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let user = NewUser {
            id: Uuid::new_v4(),
            email: format!("driver{i}@example.com"),
            name: None,
            role: Role::User,
            tier: Tier::Basic,
            trial_ends_at: None,
            created_at: Utc::now(),
        };
        ids.push(store.create_user(&user).await.expect("create user").id);
    }
    ids
}

/// Writes every state in write-behind-sized batches, one after another as the write-behind
/// does; returns the total time.
async fn write_all(store: &dyn Store, states: &[Arc<VehicleState>]) -> Duration {
    let batches: Vec<Vec<VehicleWrite>> =
        states.chunks(BATCH).map(|chunk| chunk.iter().cloned().map(VehicleWrite::Upsert).collect()).collect();
    let started = Instant::now();
    for batch in &batches {
        store.write_vehicles(batch).await.expect("write batch");
    }
    started.elapsed()
}

/// Fisher-Yates with a fixed xorshift seed: the same order on every run.
fn shuffle<T>(items: &mut [T]) {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let j = (seed % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

fn report(backend: &str, what: &str, elapsed: Duration) {
    eprintln!(
        "{backend}: write_vehicles {what} {VEHICLES} vehicles in batches of {BATCH}: {elapsed:.2?} ({:.0} vehicles/s)",
        VEHICLES as f64 / elapsed.as_secs_f64()
    );
}
