//! The write-behind's lag when the webhook load stops, read from the service's own metrics (on the
//! `metrics_listen` listener the harness gives it): how many vehicle writes were waiting, and how
//! many it had stored during the load. With the catch-up time it says how fast the store wrote
//! once the load stopped, and whether a slow catch-up was a large backlog or a slow store.

use std::net::SocketAddr;

/// The write-behind's counters at one moment.
#[derive(Clone, Copy, Debug)]
pub struct WriteBehind {
    /// Vehicle writes waiting for the store.
    pub backlog: u64,
    /// Vehicle writes stored since the service started.
    pub written: u64,
}

/// Scrapes `/metrics`; None (and a line on stderr) when the service does not answer with both.
pub async fn write_behind(metrics: SocketAddr) -> Option<WriteBehind> {
    let scraped = async { reqwest::get(format!("http://{metrics}/metrics")).await?.error_for_status()?.text().await };
    let text = match scraped.await {
        Ok(text) => text,
        Err(err) => {
            eprintln!("load: could not read the service's metrics: {err}");
            return None;
        }
    };
    let found = WriteBehind {
        backlog: value(&text, "evconduit_store_write_behind_backlog")?,
        written: value(&text, "evconduit_store_writes_total")?,
    };
    Some(found)
}

/// The value of an unlabelled metric in Prometheus' text format.
fn value(text: &str, name: &str) -> Option<u64> {
    let found = text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok());
    if found.is_none() {
        eprintln!("load: the service's metrics have no {name}");
    }
    found.map(|v| v as u64)
}
