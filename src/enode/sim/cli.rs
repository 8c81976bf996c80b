//! `evconduit enode-sim`: the simulator on its own, until Ctrl-C or SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::EnodeSim;
use super::config::SimConfig;
use super::faults::Faults;

/// Every default here equals `SimConfig::default()` (a test keeps them in step).
#[derive(Args, Clone, Debug)]
pub struct SimArgs {
    /// Address to serve Enode's API (and the token endpoint, at /oauth2/token) on.
    #[arg(long, default_value = "127.0.0.1:8090", env = "ENODE_SIM_LISTEN")]
    pub listen: SocketAddr,
    /// Vehicles in the initial fleet (one to three per user, several vendors, some charging).
    #[arg(long, default_value_t = 10, env = "ENODE_SIM_VEHICLES")]
    pub vehicles: usize,
    /// Seed of the fleet and of its behaviour: the same seed replays the same history.
    #[arg(long, default_value_t = 1, env = "ENODE_SIM_SEED")]
    pub seed: u64,
    /// OAuth client id the token endpoint accepts.
    #[arg(long, default_value = "evconduit-sim", env = "ENODE_SIM_CLIENT_ID")]
    pub client_id: String,
    /// OAuth client secret the token endpoint accepts.
    #[arg(long, default_value = "evconduit-sim-secret", env = "ENODE_SIM_CLIENT_SECRET")]
    pub client_secret: String,
    /// API requests per minute for the whole client (sliding window; 429 + Retry-After beyond).
    /// 0 = unlimited.
    #[arg(long, default_value_t = 0, env = "ENODE_SIM_RATE_PER_MINUTE")]
    pub rate_per_minute: u32,
    /// Simulated seconds per real second (60 = an hour a minute). 0 freezes the clock.
    #[arg(long, default_value_t = 1.0)]
    pub time_factor: f64,
    /// How often the fleet is stepped, real milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub tick_ms: u64,
    /// Lifetime of an access token, seconds.
    #[arg(long, default_value_t = 3599)]
    pub token_ttl_secs: u64,
    /// Simulated seconds between Enode's refreshes of a charging vehicle.
    #[arg(long, default_value_t = 120)]
    pub charging_report_secs: u64,
    /// Simulated seconds between Enode's refreshes of any other vehicle.
    #[arg(long, default_value_t = 420)]
    pub idle_report_secs: u64,
    /// Simulated seconds a charge action stays PENDING before it is confirmed.
    #[arg(long, default_value_t = 15)]
    pub action_delay_secs: u64,
    /// Real seconds between `system:heartbeat` events.
    #[arg(long, default_value_t = 60)]
    pub heartbeat_secs: u64,
    /// Real seconds a webhook receiver has to answer.
    #[arg(long, default_value_t = 5)]
    pub webhook_timeout_secs: u64,
    /// Real seconds before the first retry of a failed delivery (doubling up to the max).
    #[arg(long, default_value_t = 5)]
    pub webhook_retry_secs: u64,
    /// Real seconds, the longest gap between retries.
    #[arg(long, default_value_t = 600)]
    pub webhook_retry_max_secs: u64,
    /// Real seconds a subscription may keep failing before it is marked inactive and its
    /// pending events are deleted (Enode: 86400; sandbox: 300).
    #[arg(long, default_value_t = 86_400)]
    pub webhook_failure_window_secs: u64,
    /// Base URL link URLs point at, when the simulator is reached through another address.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Start with Enode down: every API and token call answers 503.
    #[arg(long)]
    pub outage: bool,
    /// Fraction (0..=1) of API calls answered 500.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Milliseconds added to every API and token call.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Fraction (0..=1) of webhook deliveries silently dropped.
    #[arg(long, default_value_t = 0.0)]
    pub webhook_drop_rate: f64,
}

impl SimArgs {
    pub fn config(&self) -> SimConfig {
        SimConfig {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            token_ttl: Duration::from_secs(self.token_ttl_secs),
            vehicles: self.vehicles,
            seed: self.seed,
            time_factor: self.time_factor,
            tick_interval: Duration::from_millis(self.tick_ms),
            charging_report_interval: Duration::from_secs(self.charging_report_secs),
            idle_report_interval: Duration::from_secs(self.idle_report_secs),
            action_delay: Duration::from_secs(self.action_delay_secs),
            rate_per_minute: self.rate_per_minute,
            faults: Faults {
                outage: self.outage,
                error_rate: self.error_rate.clamp(0.0, 1.0),
                latency_ms: self.latency_ms,
                webhook_drop_rate: self.webhook_drop_rate.clamp(0.0, 1.0),
            },
            webhook_timeout: Duration::from_secs(self.webhook_timeout_secs),
            webhook_retry_initial: Duration::from_secs(self.webhook_retry_secs),
            webhook_retry_max: Duration::from_secs(self.webhook_retry_max_secs),
            webhook_failure_window: Duration::from_secs(self.webhook_failure_window_secs),
            heartbeat_interval: Duration::from_secs(self.heartbeat_secs),
            public_url: self.public_url.clone(),
            ..SimConfig::default()
        }
    }
}

/// Serves until `shutdown` resolves (the command line passes Ctrl-C or SIGTERM).
pub async fn run_cli(args: SimArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let sim = EnodeSim::start(args.config(), listener).await?;
    println!("Enode simulator on {}", sim.base_url());
    println!("  token URL:     {}", sim.token_url());
    println!("  client id:     {}", sim.client_id());
    println!("  vehicles:      {}", sim.vehicle_count());
    println!("  controls:      {}/_sim/stats, /_sim/faults, /_sim/users", sim.base_url());
    shutdown.await;
    sim.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn cli_defaults_are_the_config_defaults() {
        let args = Cli::parse_from(["sim"]).sim;
        let from_cli = args.config();
        let default = SimConfig::default();
        assert_eq!(format!("{from_cli:?}"), format!("{default:?}"));
    }
}
