//! Everything the simulator can be told at start. Durations marked "sim" run on the simulated
//! clock (sped up by `time_factor`); the others are wall-clock, because the code that meets them
//! (the client's token cache, a webhook receiver's timeout) lives in real time.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::faults::Faults;

#[derive(Clone, Debug)]
pub struct SimConfig {
    /// OAuth client id the token endpoint accepts.
    pub client_id: String,
    /// OAuth client secret the token endpoint accepts.
    pub client_secret: String,
    /// Lifetime of a minted access token (wall clock). Enode's is 3599 s.
    pub token_ttl: Duration,
    /// Vehicles in the initial fleet, spread over users with a few vehicles each.
    pub vehicles: usize,
    /// Seeds ids, vendors, the initial fleet and every vehicle's behaviour.
    pub seed: u64,
    /// Simulated time at start; `None` means the wall clock's now. Fix it for byte-identical runs.
    pub start_time: Option<DateTime<Utc>>,
    /// Simulated seconds per real second. 0 freezes the clock (tests then `advance` it by hand).
    pub time_factor: f64,
    /// How often (wall clock) the fleet is stepped and due actions are resolved.
    pub tick_interval: Duration,
    /// Sim: how often Enode refreshes a charging vehicle (about 2 min at Enode).
    pub charging_report_interval: Duration,
    /// Sim: how often Enode refreshes any other vehicle (about 7 min at Enode).
    pub idle_report_interval: Duration,
    /// Sim: how long a charge action stays PENDING before the vehicle confirms it.
    pub action_delay: Duration,
    /// Requests per minute (wall clock, sliding window) for the whole client; 0 = unlimited.
    pub rate_per_minute: u32,
    /// Fault knobs in force at start; changeable at run time.
    pub faults: Faults,
    /// How long a webhook receiver has to answer (Enode: 5 s).
    pub webhook_timeout: Duration,
    /// First gap between retries of a failed delivery; doubles up to `webhook_retry_max`.
    pub webhook_retry_initial: Duration,
    pub webhook_retry_max: Duration,
    /// A subscription still failing this long after its first failed attempt loses its pending
    /// events and is marked inactive (Enode: 24 h; 5 min in sandbox).
    pub webhook_failure_window: Duration,
    /// How often every active subscription gets a `system:heartbeat`.
    pub heartbeat_interval: Duration,
    /// Events kept per subscription while its receiver is failing; the oldest go first.
    pub webhook_queue_limit: usize,
    /// Base URL that link URLs point at; `None` means the listener's own address.
    pub public_url: Option<String>,
    /// Entries kept in the request log of `/_sim/stats` (the oldest go first).
    pub request_log_limit: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            client_id: "evconduit-sim".to_owned(),
            client_secret: "evconduit-sim-secret".to_owned(),
            token_ttl: Duration::from_secs(3599),
            vehicles: 10,
            seed: 1,
            start_time: None,
            time_factor: 1.0,
            tick_interval: Duration::from_secs(1),
            charging_report_interval: Duration::from_secs(120),
            idle_report_interval: Duration::from_secs(420),
            action_delay: Duration::from_secs(15),
            rate_per_minute: 0,
            faults: Faults::default(),
            webhook_timeout: Duration::from_secs(5),
            webhook_retry_initial: Duration::from_secs(5),
            webhook_retry_max: Duration::from_secs(600),
            webhook_failure_window: Duration::from_secs(24 * 3600),
            heartbeat_interval: Duration::from_secs(60),
            webhook_queue_limit: 100_000,
            public_url: None,
            request_log_limit: 200_000,
        }
    }
}
