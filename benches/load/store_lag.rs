//! The write-behind as the service itself counts it, read from `GET /admin/store` with the admin
//! token the harness gives the service: how many vehicle writes wait or are being written, and
//! how many it has stored. Two uses: its lag when the webhook load stops (with the catch-up time
//! it says whether a slow catch-up was a large backlog or a slow store), and knowing when to look
//! in the database at all (`WebhookLoad::wait_caught_up`).
//!
//! The endpoint answers from counters. `/metrics` has the same numbers but walks all 100 000
//! vehicles' snapshots for its other gauges (~0.1 s of the server's core per scrape), so polling
//! it would slow what is being measured.

use std::net::SocketAddr;

/// The token the harness configures the service with (at least 32 characters).
pub const ADMIN_TOKEN: &str = "load-harness-admin-token-0123456789abcdef";

/// The write-behind's counters at one moment.
#[derive(Clone, Copy, Debug)]
pub struct WriteBehind {
    /// Vehicle writes waiting for the store, or in the batch being written.
    pub backlog: u64,
    /// Vehicle writes stored since the service started.
    pub written: u64,
}

/// Reads the service's write-behind counters, on a connection kept between reads.
pub struct StoreProbe {
    client: reqwest::Client,
    url: String,
}

impl StoreProbe {
    pub fn new(api: SocketAddr) -> Self {
        Self { client: reqwest::Client::new(), url: format!("http://{api}/admin/store") }
    }

    /// None (and a line on stderr) when the service does not answer with both.
    pub async fn write_behind(&self) -> Option<WriteBehind> {
        let asked = async {
            let response = self.client.get(&self.url).bearer_auth(ADMIN_TOKEN).send().await?;
            response.error_for_status()?.json::<serde_json::Value>().await
        };
        let body = match asked.await {
            Ok(body) => body,
            Err(err) => {
                eprintln!("load: could not read the service's /admin/store: {err}");
                return None;
            }
        };
        let counter = |name: &str| body["write_behind"][name].as_u64();
        let found = (|| {
            Some(WriteBehind { backlog: counter("backlog")? + counter("in_flight")?, written: counter("written")? })
        })();
        if found.is_none() {
            eprintln!("load: /admin/store lacks the write-behind's counters: {body}");
        }
        found
    }
}
