//! The service's own counters, read from its admin endpoints with the admin token the harness
//! gives it. Both endpoints answer from counters; `/metrics` has the same numbers but walks all
//! 100 000 vehicles' snapshots for its other gauges (~0.1 s of the server's core per scrape), so
//! polling it would slow what is being measured.
//!
//! - `GET /admin/store`: the write-behind, how many vehicle writes wait or are being written and
//!   how many it has stored. Its lag when the webhook load stops (with the catch-up time it says
//!   whether a slow catch-up was a large backlog or a slow store), and when to look in the
//!   database at all (`WebhookLoad::wait_caught_up`).
//! - `GET /admin/runtime`: how late the service's runtime ran a task due every 10 ms, read
//!   around a phase, so a latency tail can be told apart: the service's own stalls (its runtime
//!   was late) or the machine's (it was not, yet requests waited).

use std::net::SocketAddr;

use serde::Serialize;

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

/// The runtime canary's counts at one moment: wakes, and wakes at most `le_ms` late.
#[derive(Clone, Debug)]
pub struct RuntimeLag {
    samples: u64,
    within: Vec<(u64, u64)>,
}

/// How late the runtime was during a phase (the difference of two readings).
#[derive(Clone, Debug, Default, Serialize)]
pub struct LagDuring {
    /// Canary wakes in the phase (one per 10 ms).
    pub wakes: u64,
    /// Wakes later than 2, 5, 10 and 25 ms.
    pub later_than_2ms: u64,
    pub later_than_5ms: u64,
    pub later_than_10ms: u64,
    pub later_than_25ms: u64,
    /// The smallest bucket bound (ms) no wake of the phase was later than: its worst stall was
    /// shorter. None when some wake was later than every bound (over 1 s).
    pub worst_within_ms: Option<u64>,
}

impl RuntimeLag {
    /// What happened between `self` (read before) and `after`.
    pub fn until(&self, after: &RuntimeLag) -> LagDuring {
        let wakes = after.samples.saturating_sub(self.samples);
        let within = |ms: u64| {
            let count = |r: &RuntimeLag| r.within.iter().find(|(le, _)| *le == ms).map_or(0, |(_, n)| *n);
            count(after).saturating_sub(count(self))
        };
        let later = |ms| wakes.saturating_sub(within(ms));
        let worst_within_ms = after.within.iter().map(|(le, _)| *le).find(|&le| later(le) == 0 && wakes > 0);
        LagDuring {
            wakes,
            later_than_2ms: later(2),
            later_than_5ms: later(5),
            later_than_10ms: later(10),
            later_than_25ms: later(25),
            worst_within_ms,
        }
    }
}

/// Reads the service's admin counters, on a connection kept between reads.
pub struct AdminProbe {
    client: reqwest::Client,
    api: SocketAddr,
}

impl AdminProbe {
    pub fn new(api: SocketAddr) -> Self {
        Self { client: reqwest::Client::new(), api }
    }

    /// None (and a line on stderr) when the service does not answer.
    async fn get(&self, path: &str) -> Option<serde_json::Value> {
        let asked = async {
            let url = format!("http://{}{path}", self.api);
            let response = self.client.get(url).bearer_auth(ADMIN_TOKEN).send().await?;
            response.error_for_status()?.json::<serde_json::Value>().await
        };
        asked.await.map_err(|err| eprintln!("load: could not read the service's {path}: {err}")).ok()
    }

    /// None (and a line on stderr) when the service does not answer with both.
    pub async fn write_behind(&self) -> Option<WriteBehind> {
        let body = self.get("/admin/store").await?;
        let counter = |name: &str| body["write_behind"][name].as_u64();
        let found = (|| {
            Some(WriteBehind { backlog: counter("backlog")? + counter("in_flight")?, written: counter("written")? })
        })();
        if found.is_none() {
            eprintln!("load: /admin/store lacks the write-behind's counters: {body}");
        }
        found
    }

    /// None (and a line on stderr) when the service does not answer with its canary's counts.
    pub async fn runtime_lag(&self) -> Option<RuntimeLag> {
        let body = self.get("/admin/runtime").await?;
        let within = body["buckets"]
            .as_array()
            .map(|buckets| buckets.iter().filter_map(|b| Some((b["le_ms"].as_u64()?, b["count"].as_u64()?))).collect());
        let found = body["samples"].as_u64().zip(within).map(|(samples, within)| RuntimeLag { samples, within });
        if found.is_none() {
            eprintln!("load: /admin/runtime lacks the canary's counts: {body}");
        }
        found
    }
}
