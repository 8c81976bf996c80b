//! The Enode simulator: Enode's API (shared/contract/enode.md) served over real HTTP, a simulated
//! fleet that charges, drives and sleeps on a (speedable) clock, and webhook deliveries signed
//! and retried as Enode makes them. The demo, every test and every benchmark run against it.
//!
//! Embedded: `EnodeSim::start(config, listener)` gives a [`SimHandle`]. Alone:
//! `evconduit enode-sim` ([`cli::run_cli`]).
//!
//! Choices where the contract leaves room:
//! - Outage: every API and token call answers `503` problem+json (the listener stays up, as a
//!   load balancer before a dead backend would). Injected errors are `500` problem+json.
//! - `Enode-Version`: absent or `2024-10-01` is served; any other value is refused with `400`
//!   (`unsupported-version`), since the simulator only speaks that version's shapes. Every value
//!   seen is counted in the stats.
//! - The rate limit is a sliding 60-second window over admitted API calls (not the token call);
//!   a refused call is not counted, so a client that honours `Retry-After` gets through.
//! - GET answers the state Enode last saw (its cache): a vehicle changes at its reports (about
//!   every 2 min charging, 7 min otherwise, simulated), at commands and at charge actions. A poll
//!   that finds nothing new moves `lastSeen` and sends no event. A sleeping car is unreachable
//!   (`isReachable: false`), keeps its old `lastSeen` and reports nothing until it wakes.
//! - The link URL (`GET /link/{token}`) completes the link and redirects (302) to `redirectUri`;
//!   `?redirect=false` answers the outcome as JSON instead.
//! - `/_sim/...` controls take no token, suffer no fault and are not counted.
//!
//! Controls (`/_sim`, each mirrored by a [`SimHandle`] method):
//! `GET /stats`, `POST /stats/reset`; `GET /faults`, `POST /faults` (a [`KnobsPatch`]: outage,
//! errorRate, latencyMs, webhookDropRate, ratePerMinute, rateLimitNext `{count, retryAfterSecs}`:
//! the next `count` API calls get 429 with exactly that `Retry-After`); `GET /users`;
//! `POST /users/{userId}/vehicles` (`{vendor?, count?}`, as if linked);
//! `POST /users/{userId}/invalidate` (`{vendor?}`, fires `user:credentials:invalidated`);
//! `POST /vehicles/{id}/{command}` (plug, unplug, charge, stop, drive, park, sleep, wake,
//! smart-charging-on, smart-charging-off, report, set with `{batteryLevel?, chargeLimit?,
//! maxCurrent?}`); `GET /clock`, `POST /clock/advance` (`{seconds}`); `POST /tokens/expire`.

mod actions;
mod bus;
pub mod cli;
mod clock;
pub mod config;
pub mod control;
mod dynamics;
pub mod faults;
mod http;
mod links;
mod outbox;
mod pagination;
pub mod problem;
mod rng;
mod state;
pub mod stats;
mod tokens;
mod vehicle;
pub mod vendors;
mod webhooks;
pub mod world;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

pub use cli::{SimArgs, run_cli};
pub use config::SimConfig;
pub use control::{AddVehicles, Command, SetValues};
pub use faults::{Faults, ForcedRateLimit, Knobs, KnobsPatch};
pub use links::LinkOutcome;
pub use problem::SimError;
pub use stats::{LogEntry, StatsSnapshot, WebhookCounts};
pub use world::UserView;

use crate::enode::model::Vehicle;
use state::SimState;

/// A lock that survives a panic elsewhere: the simulator's state stays usable (every change
/// is applied whole before a panic could happen), and a test should see the panic, not a poison.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct EnodeSim;

impl EnodeSim {
    /// Builds the fleet and serves on `listener` until [`SimHandle::shutdown`] (or the handle is
    /// dropped). Must run inside a tokio runtime.
    pub async fn start(config: SimConfig, listener: TcpListener) -> anyhow::Result<SimHandle> {
        let addr = listener.local_addr()?;
        let base_url =
            config.public_url.clone().unwrap_or_else(|| format!("http://{addr}")).trim_end_matches('/').to_owned();
        let state = Arc::new(SimState::new(config, base_url)?);
        let app = http::router(state.clone());
        let stop = state.shutdown.clone();
        state.tasks.spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
            if let Err(error) = served {
                tracing::error!(%error, "enode simulator stopped serving");
            }
        });
        state.tasks.spawn(clock_forever(state.clone()));
        state.tasks.spawn(webhooks::heartbeat_forever(state.clone()));
        tracing::info!(
            url = %state.base_url,
            vehicles = state.read(|w| w.len()),
            "enode simulator listening"
        );
        Ok(SimHandle { state, owner: true })
    }
}

/// Steps the world every tick. A frozen clock (time factor 0) still ticks: `advance` moves it.
async fn clock_forever(state: Arc<SimState>) {
    let every = state.config.tick_interval.max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => state.tick(),
            _ = state.shutdown.cancelled() => return,
        }
    }
}

/// `GET /_sim/clock`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockView {
    pub now: DateTime<Utc>,
    pub time_factor: f64,
}

/// A running simulator. Its methods mirror the `/_sim` endpoints. Dropping the handle that
/// `start` returned stops the simulator.
pub struct SimHandle {
    state: Arc<SimState>,
    /// Only the handle from `start` stops the simulator when dropped.
    owner: bool,
}

impl SimHandle {
    fn from_state(state: Arc<SimState>) -> Self {
        Self { state, owner: false }
    }

    /// The API base, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.state.base_url
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.state.base_url)
    }

    pub fn client_id(&self) -> &str {
        &self.state.config.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.state.config.client_secret
    }

    pub fn config(&self) -> &SimConfig {
        &self.state.config
    }

    pub fn stats(&self) -> StatsSnapshot {
        lock(&self.state.stats).snapshot()
    }

    pub fn reset_stats(&self) {
        lock(&self.state.stats).reset();
    }

    pub fn knobs(&self) -> Knobs {
        lock(&self.state.faults).knobs.clone()
    }

    /// Changes the fields given; returns the knobs now in force.
    pub fn set_faults(&self, patch: &KnobsPatch) -> Knobs {
        let mut faults = lock(&self.state.faults);
        faults.knobs.apply(patch);
        faults.knobs.clone()
    }

    pub fn users(&self) -> Vec<UserView> {
        self.state.read(|w| w.users())
    }

    /// The vehicle as `GET /vehicles/{id}` shows it.
    pub fn vehicle(&self, id: &str) -> Option<Vehicle> {
        self.state.read(|w| w.vehicle(id).map(|v| v.render()))
    }

    pub fn vehicle_count(&self) -> usize {
        self.state.read(|w| w.len())
    }

    /// Forces a vehicle change now (and reports it).
    pub fn command(&self, id: &str, command: Command) -> Result<Vehicle, SimError> {
        self.state.change(|w, now, out| w.command(id, command, now, out))
    }

    /// Puts a vehicle where a charging START is accepted: smart charging off, plugged in at 40%
    /// of an 80% limit, not charging (the state a person presses START in).
    pub fn make_startable(&self, id: &str) -> Result<Vehicle, SimError> {
        let room = SetValues { battery_level: Some(40.0), charge_limit: Some(80), max_current: None };
        for step in [Command::SmartChargingOff, Command::Unplug, Command::Set(room), Command::Plug] {
            self.command(id, step)?;
        }
        self.command(id, Command::Stop)
    }

    /// The first vehicle of the fleet that can be made startable (`make_startable`), made so.
    /// Never an XPENG: its quirk reports the plug out once charging completes.
    pub fn startable_vehicle(&self) -> Option<String> {
        let id = self
            .users()
            .into_iter()
            .flat_map(|u| u.vehicle_ids)
            .find(|id| self.vehicle(id).and_then(|v| v.vendor).as_deref() != Some("XPENG"))?;
        self.make_startable(&id).ok().map(|_| id)
    }

    /// Adds vehicles to a user (created if new) as a completed link would.
    pub fn add_vehicles(&self, user: &str, request: &AddVehicles) -> Result<Vec<Vehicle>, SimError> {
        self.state.change(|w, now, out| w.add_vehicles(user, request, now, out))
    }

    /// Fires `user:credentials:invalidated`; the vehicles stop updating until relinked.
    pub fn invalidate_credentials(&self, user: &str, vendor: Option<&str>) -> Result<Vec<String>, SimError> {
        self.state.change(|w, now, out| w.invalidate_credentials(user, vendor, now, out))
    }

    /// Opens a link URL's token as a browser would.
    pub fn complete_link(&self, token: &str) -> Result<LinkOutcome, SimError> {
        self.state.change(|w, now, out| w.complete_link(token, now, out))
    }

    pub fn clock(&self) -> ClockView {
        ClockView { now: clock::to_datetime(self.state.clock.now()), time_factor: self.state.clock.factor() }
    }

    /// Moves simulated time forward by `by` and steps the world at once.
    pub fn advance(&self, by: Duration) {
        self.state.clock.advance(by.as_millis() as i64);
        self.state.tick();
    }

    /// Steps the world now (due actions resolve, due vehicles report).
    pub fn tick(&self) {
        self.state.tick();
    }

    /// Every access token expires now.
    pub fn expire_tokens(&self) {
        lock(&self.state.tokens).expire_all(Instant::now());
    }

    /// Stops serving and every background task; waits up to 5 s for them.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        self.state.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.state.tasks.wait()).await;
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if self.owner {
            self.state.shutdown.cancel();
        }
    }
}
