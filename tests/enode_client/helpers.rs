use std::time::Duration;

use evconduit::config::{Config, Secret};
use evconduit::enode::client::{Client, ClientConfig};
use evconduit::enode::sim::{EnodeSim, SimConfig, SimHandle};
pub use evconduit_actors::testing::{eventually, eventually_some};
use tokio::net::TcpListener;

/// A simulator whose world clock stands still (nothing changes unless a test says so).
pub fn frozen(vehicles: usize) -> SimConfig {
    SimConfig { vehicles, time_factor: 0.0, tick_interval: Duration::from_millis(20), ..SimConfig::default() }
}

pub async fn start(config: SimConfig) -> SimHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    EnodeSim::start(config, listener).await.expect("start simulator")
}

/// The client as the service would configure it against `sim`, with a budget large enough that
/// only the tests about the budget meet it, and short pauses so failures are quick to test.
pub fn client_config(sim: &SimHandle) -> ClientConfig {
    let config = Config {
        enode_client_id: sim.client_id().to_owned(),
        enode_client_secret: Secret::new(sim.client_secret()),
        enode_api_url: sim.base_url().to_owned(),
        enode_token_url: sim.token_url(),
        ..Config::default()
    };
    let mut client = ClientConfig::from_config(&config).expect("client config");
    client.rate = 100_000;
    client.burst = 2_000;
    client.retry_base = Duration::from_millis(20);
    client.retry_max_backoff = Duration::from_millis(200);
    client
}

pub fn client(config: ClientConfig) -> Client {
    Client::new(config).expect("client")
}

/// Any vehicle id of the simulated fleet.
pub fn some_vehicle(sim: &SimHandle) -> String {
    sim.users().into_iter().flat_map(|u| u.vehicle_ids).next().expect("a vehicle")
}
