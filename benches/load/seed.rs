//! The world a run starts from: the Enode simulator with N vehicles, and the service's store
//! holding every simulated user (with one API key each) and every vehicle, as a restarted
//! service would find them. Seeded straight into the store (the fast path): bringing them back to
//! life is what the start-up phase measures.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use evconduit::accounts::{self, UserSpec};
use evconduit::enode::sim::{EnodeSim, SimConfig, SimHandle};
use evconduit::store::{Role, Store};
use evconduit_actors::model::Vehicle;
use evconduit_actors::ports::VehicleWrite;
use evconduit_actors::state::{DataSource, VehicleState, new_internal_id};
use evconduit_actors::tier::Tier;
use futures::{StreamExt, TryStreamExt};
use std::time::Duration;
use uuid::Uuid;

/// One seeded vehicle, with what the load needs to address it.
pub struct SeededVehicle {
    pub enode_id: String,
    pub user_id: Uuid,
    /// The owner's API key.
    pub key: Arc<str>,
    pub vehicle: Vehicle,
}

pub struct Seeded {
    pub users: usize,
    pub vehicles: Vec<SeededVehicle>,
}

/// The simulator, quiet: a frozen clock (its cars change only when told) and rare heartbeats, so
/// every request and webhook in a phase is the harness's own.
pub async fn start_sim(vehicles: usize) -> SimHandle {
    let config = SimConfig {
        vehicles,
        seed: 7,
        time_factor: 0.0,
        heartbeat_interval: Duration::from_secs(3600),
        // The world is frozen (time factor 0), so a tick has nothing to do, and the runtime the
        // load generator shares is better left without one. Before the simulator's due-time
        // index, each tick walked all 100 000 vehicles to find that out, silencing the generator
        // for milliseconds every second (a gap the fixed-rate phase charged to the server).
        tick_interval: Duration::from_secs(3600),
        request_log_limit: 10_000,
        ..SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the simulator");
    EnodeSim::start(config, listener).await.expect("simulator starts")
}

/// Users, keys and vehicles into `store`. Every vehicle's data is fresh (received now), so no
/// refresh is due during the run: any Enode request the simulator sees was caused by the load.
pub async fn seed(store: &Arc<dyn Store>, sim: &SimHandle) -> Seeded {
    let now = Utc::now();
    let users = sim.users();
    // Users and keys concurrently: on Postgres each insert is its own commit, and a few in flight
    // share the fsyncs.
    let keyed: Vec<(Uuid, Arc<str>, Vec<String>)> = futures::stream::iter(users.into_iter().enumerate())
        .map(|(i, user)| {
            let store = Arc::clone(store);
            async move { seed_user(store.as_ref(), i, &user.id, now).await.map(|(id, key)| (id, key, user.vehicle_ids)) }
        })
        .buffer_unordered(8)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("seeding users: {e}"));

    let mut vehicles = Vec::new();
    for (user_id, key, ids) in &keyed {
        for id in ids {
            let vehicle = sim.vehicle(id).unwrap_or_else(|| panic!("simulated vehicle {id}"));
            vehicles.push(SeededVehicle { enode_id: id.clone(), user_id: *user_id, key: Arc::clone(key), vehicle });
        }
    }
    let writes: Vec<VehicleWrite> = vehicles.iter().map(|v| VehicleWrite::Upsert(Arc::new(state(v, now)))).collect();
    for chunk in writes.chunks(1_000) {
        store.write_vehicles(chunk).await.unwrap_or_else(|e| panic!("seeding vehicles: {e}"));
    }
    Seeded { users: keyed.len(), vehicles }
}

async fn seed_user(
    store: &dyn Store,
    i: usize,
    enode_user: &str,
    now: DateTime<Utc>,
) -> Result<(Uuid, Arc<str>), evconduit::store::StoreError> {
    // A user's id is their Enode user id: that is how webhook events find their owner.
    let id = Uuid::parse_str(enode_user).unwrap_or_else(|e| panic!("simulated user id {enode_user}: {e}"));
    let spec = UserSpec {
        id: Some(id),
        email: format!("load-{i}@example.com"),
        name: None,
        role: Role::User,
        tier: Some(Tier::Pro),
    };
    let user = accounts::create_user(store, spec, now).await?;
    let (_, key) = accounts::create_api_key(store, user.id, Some("load".into()), now).await?;
    Ok((user.id, Arc::from(key)))
}

fn state(v: &SeededVehicle, now: DateTime<Utc>) -> VehicleState {
    VehicleState {
        // As the service makes them: rows inserted in id order, as linking inserts them.
        internal_id: new_internal_id(),
        user_id: v.user_id,
        vehicle: Box::new(v.vehicle.clone()),
        source: DataSource::Webhook,
        received_at: now,
        relink_required: false,
        charge_action: None,
    }
}
