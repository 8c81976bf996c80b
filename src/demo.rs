//! `evconduit demo` (and a bare `evconduit`): the whole service on one machine, against the Enode
//! simulator, over real HTTP.
//!
//! Everything is wired the production way, only pointed at loopback: the service's Enode client
//! is given the simulator's URLs and credentials, `public_url` is the service's own address and a
//! fresh random webhook secret is configured, so `serve`'s subscription keeper creates the
//! webhook at the simulator by itself; the simulator then signs and delivers events through the
//! same receiver, actors and snapshots as Enode's would. What only the demo does: service users
//! whose ids are the simulator's user ids, an API key for one of them, the scene for the printed
//! commands (`scene`), and an initial sync of the fleet the simulator starts with
//! (`initial_sync`: Enode sends webhooks only on change).

mod banner;
mod database;
mod scene;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use rand::Rng;
use rand::distr::Alphanumeric;
use tokio::net::TcpListener;

use crate::app::{App, shutdown_signal};
use crate::config::{Config, Secret};
use crate::enode::model::Vehicle;
use crate::enode::sim::{EnodeSim, SimConfig, SimHandle};
use crate::http::AppState;
use crate::initial_sync;
use database::DemoDatabase;

/// How long the demo waits for its setup steps (webhook subscription, initial sync) before it
/// goes on without them and says so. Generous: a loaded laptop still gets there.
const SETUP_WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// Every default here equals `DemoArgs::default()` (a test keeps them in step): a bare
/// `evconduit` runs the demo with the defaults.
#[derive(Args, Clone, Debug, PartialEq)]
pub struct DemoArgs {
    /// Cars in the simulated fleet, one to three per user, several vendors, some charging.
    #[arg(long, default_value_t = 10)]
    pub vehicles: usize,
    /// Seed of the simulated fleet: the same seed gives the same users, cars and history (and
    /// so, on a rerun, the same demo users).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated seconds per real second. At 60 a charging car reports about every 2 s and a
    /// charge takes minutes; the simulated clock runs ahead of the real one.
    #[arg(long, default_value_t = 60.0)]
    pub time_factor: f64,
    /// The demo's database, apart from `database_url` so a demo never writes into a real one.
    #[arg(long, default_value = "sqlite://evconduit-demo.db")]
    pub database_url: String,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self { vehicles: 10, seed: 1, time_factor: 60.0, database_url: "sqlite://evconduit-demo.db".to_owned() }
    }
}

/// Runs the demo until Ctrl-C or SIGTERM; the service then shuts down the usual way (state
/// flushed), then the simulator.
pub async fn run(args: DemoArgs, config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen} (set EVCONDUIT_LISTEN to use another address)"))?;
    // The address actually bound: with port 0 the system picked one.
    let service = listener.local_addr()?;

    let database = DemoDatabase::open(&args.database_url).await?;
    let resume_at = database.latest_observation().await?.map(|t| t + chrono::Duration::seconds(1));
    let sim_listener = TcpListener::bind("127.0.0.1:0").await.context("binding the simulator's port")?;
    let sim_config = SimConfig {
        vehicles: args.vehicles,
        seed: args.seed,
        time_factor: args.time_factor,
        start_time: resume_at.filter(|t| *t > Utc::now()),
        ..SimConfig::default()
    };
    let sim = EnodeSim::start(sim_config, sim_listener).await.context("starting the Enode simulator")?;
    let scene = scene::set(&sim)?;
    let login = database.prepare_users(&scene.all_users, scene.user).await?;
    // The service opens its own connections.
    drop(database);

    let config = Config {
        database_url: Secret::new(args.database_url.clone()),
        enode_client_id: sim.client_id().to_owned(),
        enode_client_secret: Secret::new(sim.client_secret()),
        enode_api_url: sim.base_url().to_owned(),
        enode_token_url: sim.token_url(),
        public_url: format!("http://{service}"),
        enode_webhook_secrets: vec![Secret::new(random_secret())],
        // The demo runs on a laptop, and the HA it pushes to is on the same machine or LAN.
        push_allow_private_targets: true,
        ..config
    };
    let app = App::build(config).await?;
    let state = app.state().clone();
    let mut served = tokio::spawn(app.serve(listener, shutdown_signal()));

    // A signal during setup ends the demo at once instead of after it.
    let ready = tokio::select! {
        ready = prepare_fleet(&state, &scene) => ready,
        result = &mut served => return finish(result, sim).await,
    };
    let banner = banner::Banner {
        key: &login.key,
        service,
        sim_url: sim.base_url(),
        email: &login.email,
        user: scene.user,
        cars: &ready.cars,
        startable: scene.startable.as_deref(),
        subscription: ready.subscription.as_deref(),
        users: scene.all_users.len(),
        vehicles: sim.vehicle_count(),
        time_factor: args.time_factor,
    };
    banner::write(&mut std::io::stdout().lock(), &banner)?;
    let result = served.await;
    finish(result, sim).await
}

async fn finish(served: Result<anyhow::Result<()>, tokio::task::JoinError>, sim: SimHandle) -> anyhow::Result<()> {
    // The simulator goes last: the service's shutdown may still be talking to it.
    sim.shutdown().await;
    served.context("the service task failed")?
}

struct Ready {
    /// The demo user's cars, as listed by the initial sync.
    cars: Vec<Vehicle>,
    subscription: Option<String>,
}

/// Waits for the webhook subscription the service creates by itself (the production path, so it
/// is checked rather than assumed), then brings the simulator's existing fleet in and waits until
/// the demo user's cars are served.
async fn prepare_fleet(state: &AppState, scene: &scene::Scene) -> Ready {
    let subscription = match &state.subscription {
        Some(keeper) => {
            let keeper = Arc::clone(keeper);
            wait_for(|| keeper.status().subscription_id).await
        }
        None => None,
    };
    if subscription.is_none() {
        tracing::warn!("the webhook subscription was not created in time; the service keeps trying");
    }
    let mut cars = Vec::new();
    if let Some(enode) = &state.enode {
        let report = initial_sync::sync_users(enode, &state.fleet, &scene.all_users).await;
        tracing::info!(
            users = report.users.len(),
            vehicles = report.vehicle_count(),
            failed = report.failed.len(),
            "initial sync from the simulator done"
        );
        cars = report.users.into_iter().find(|(user, _)| *user == scene.user).map(|(_, cars)| cars).unwrap_or_default();
        // The charging car first: its state is the one that visibly moves.
        cars.sort_by_key(|car| car.id != scene.charging);
    }
    let board = Arc::clone(state.fleet.board());
    let ids: Vec<String> = cars.iter().map(|c| c.id.clone()).collect();
    if wait_for(|| ids.iter().all(|id| board.get(id).is_some()).then_some(())).await.is_none() {
        tracing::warn!("not every demo car is served yet; they appear as their data arrives");
    }
    Ready { cars, subscription }
}

/// Polls `check` until it gives Some, for up to `SETUP_WAIT`.
async fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + SETUP_WAIT;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A webhook secret nobody else knows: the demo's service accepts only the simulator's
/// deliveries, as production accepts only Enode's.
fn random_secret() -> String {
    rand::rng().sample_iter(Alphanumeric).take(40).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        demo: DemoArgs,
    }

    #[test]
    fn cli_defaults_are_the_bare_command_defaults() {
        assert_eq!(Cli::parse_from(["demo"]).demo, DemoArgs::default());
    }
}
