//! What the simulator saw: requests per route and status, a timestamped request log (so a test
//! can prove a client never exceeded its budget in any 60-second window), webhook deliveries.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The route key of the token endpoint in `requests` and the log.
pub const TOKEN_ROUTE: &str = "POST /oauth2/token";

#[derive(Debug)]
pub struct Stats {
    started: Instant,
    started_at: DateTime<Utc>,
    /// Route strings are interned: the log holds one pointer per entry, not one String.
    routes: HashMap<String, Arc<str>>,
    requests: BTreeMap<Arc<str>, BTreeMap<u16, u64>>,
    versions: BTreeMap<String, u64>,
    log: VecDeque<(u64, Arc<str>, Box<str>, u16)>,
    log_limit: usize,
    log_dropped: u64,
    webhooks: WebhookCounts,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCounts {
    /// HTTP attempts made (a retry is another attempt of the same delivery).
    pub attempted: u64,
    /// Attempts answered 2xx.
    pub succeeded: u64,
    /// Attempts that failed (non-2xx, timeout, connection error).
    pub failed: u64,
    /// Deliveries the `webhookDropRate` fault swallowed.
    pub dropped: u64,
    /// Events inside successful attempts.
    pub events_delivered: u64,
    /// Events thrown away: queue overflow, or a subscription marked inactive.
    pub events_discarded: u64,
}

/// `GET /_sim/stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    /// Wall-clock time of start (or of the last reset); `atMs` in the log counts from here.
    pub started_at: DateTime<Utc>,
    /// Route template ("GET /vehicles/{id}") -> status -> count. `/_sim` calls are not counted.
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Every counted request, token calls included.
    pub total_requests: u64,
    /// Calls to the Enode API proper (everything but the token endpoint).
    pub api_requests: u64,
    pub token_requests: u64,
    /// API calls answered 429.
    pub rate_limited: u64,
    /// `Enode-Version` header values seen on API calls ("" when absent).
    pub enode_versions: BTreeMap<String, u64>,
    /// The most API calls that arrived within any 60-second window (429s included).
    pub max_api_requests_in_any_minute: u64,
    /// One entry per request, oldest first.
    pub log: Vec<LogEntry>,
    /// Entries that fell off the front of the log (its length is bounded).
    pub log_dropped: u64,
    pub webhooks: WebhookCounts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// Milliseconds since `startedAt`.
    pub at_ms: u64,
    pub route: String,
    /// The concrete path asked for (`/vehicles/abc`), so a test can tell WHICH vehicle was read.
    pub path: String,
    pub status: u16,
}

impl StatsSnapshot {
    /// Count for one route and status.
    pub fn count(&self, route: &str, status: u16) -> u64 {
        self.requests.get(route).and_then(|by_status| by_status.get(&status)).copied().unwrap_or(0)
    }

    /// Count for one route, any status.
    pub fn count_route(&self, route: &str) -> u64 {
        self.requests.get(route).map(|by_status| by_status.values().sum()).unwrap_or(0)
    }

    /// The most logged requests accepted by `keep` within any window of length `window`.
    pub fn max_in_window(&self, window: Duration, keep: impl Fn(&LogEntry) -> bool) -> u64 {
        let times: Vec<u64> = self.log.iter().filter(|e| keep(e)).map(|e| e.at_ms).collect();
        max_in_window(&times, window.as_millis() as u64)
    }
}

/// Two pointers over sorted times: the largest count with last - first < window.
fn max_in_window(times: &[u64], window_ms: u64) -> u64 {
    let mut best = 0;
    let mut first = 0;
    for (last, &t) in times.iter().enumerate() {
        while t - times[first] >= window_ms {
            first += 1;
        }
        best = best.max(last + 1 - first);
    }
    best as u64
}

impl Stats {
    pub fn new(log_limit: usize) -> Self {
        Self {
            started: Instant::now(),
            started_at: Utc::now(),
            routes: HashMap::new(),
            requests: BTreeMap::new(),
            versions: BTreeMap::new(),
            log: VecDeque::new(),
            log_limit,
            log_dropped: 0,
            webhooks: WebhookCounts::default(),
        }
    }

    pub fn reset(&mut self) {
        *self = Self::new(self.log_limit);
    }

    /// One answered request. `route` is "METHOD /template".
    pub fn record(&mut self, route: &str, path: &str, status: u16, version: Option<&str>, at: Instant) {
        let key = match self.routes.get(route) {
            Some(key) => key.clone(),
            None => {
                let key: Arc<str> = Arc::from(route);
                self.routes.insert(route.to_owned(), key.clone());
                key
            }
        };
        *self.requests.entry(key.clone()).or_default().entry(status).or_default() += 1;
        if route != TOKEN_ROUTE {
            *self.versions.entry(version.unwrap_or_default().to_owned()).or_default() += 1;
        }
        if self.log.len() >= self.log_limit {
            self.log.pop_front();
            self.log_dropped += 1;
        }
        let at_ms = at.saturating_duration_since(self.started).as_millis() as u64;
        self.log.push_back((at_ms, key, Box::from(path), status));
    }

    pub fn webhooks(&mut self) -> &mut WebhookCounts {
        &mut self.webhooks
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let mut snapshot = StatsSnapshot {
            started_at: self.started_at,
            requests: self.requests.iter().map(|(route, by_status)| (route.to_string(), by_status.clone())).collect(),
            enode_versions: self.versions.clone(),
            log: self
                .log
                .iter()
                .map(|(at_ms, route, path, status)| LogEntry {
                    at_ms: *at_ms,
                    route: route.to_string(),
                    path: path.to_string(),
                    status: *status,
                })
                .collect(),
            log_dropped: self.log_dropped,
            webhooks: self.webhooks,
            ..StatsSnapshot::default()
        };
        for (route, by_status) in &self.requests {
            let n: u64 = by_status.values().sum();
            snapshot.total_requests += n;
            if &**route == TOKEN_ROUTE {
                snapshot.token_requests += n;
            } else {
                snapshot.api_requests += n;
                snapshot.rate_limited += by_status.get(&429).copied().unwrap_or(0);
            }
        }
        snapshot.max_api_requests_in_any_minute =
            snapshot.max_in_window(Duration::from_secs(60), |e| e.route != TOKEN_ROUTE);
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_are_exact_at_the_edges() {
        assert_eq!(max_in_window(&[], 60_000), 0);
        assert_eq!(max_in_window(&[0, 59_999, 60_000], 60_000), 2);
        assert_eq!(max_in_window(&[0, 10, 20, 70_000, 70_001], 60_000), 3);
    }
}
