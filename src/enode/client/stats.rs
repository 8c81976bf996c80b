//! Counters for every request the client makes or refuses, for the admin API and metrics.
//!
//! Recording takes a std mutex for a map insert: at most a few requests per second reach Enode,
//! so there is nothing to contend on, and a snapshot is a copy of a small map.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use super::breaker::BreakerSnapshot;
use super::budget::Priority;

/// How one request ended, or why it was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    BadRequest,
    Unauthorized,
    NotFound,
    Conflict,
    Unprocessable,
    OtherClientError,
    RateLimited,
    ServerError,
    Timeout,
    Transport,
    Decode,
    /// Not sent: the circuit breaker was open.
    BreakerOpen,
    /// Not sent: a 429 pause longer than a caller may wait was in force.
    RateLimitPaused,
}

impl Outcome {
    /// True when the request reached Enode (so Enode counted it against our limit).
    pub fn was_sent(self) -> bool {
        !matches!(self, Outcome::BreakerOpen | Outcome::RateLimitPaused)
    }
}

#[derive(Default)]
pub(crate) struct Stats {
    requests: Mutex<HashMap<(&'static str, Outcome), u64>>,
    user: WaitCounter,
    background: WaitCounter,
    rate_limit_pauses: WaitCounter,
    retries: AtomicU64,
    token_renewals: AtomicU64,
}

impl Stats {
    pub fn record(&self, endpoint: &'static str, outcome: Outcome) {
        let mut map = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *map.entry((endpoint, outcome)).or_insert(0) += 1;
    }

    pub fn budget_wait(&self, priority: Priority, waited: Duration) {
        match priority {
            Priority::User => self.user.add(waited),
            Priority::Background => self.background.add(waited),
        }
    }

    /// A call found a 429 pause in force and waits for it (`remaining` of it was left).
    pub fn rate_limit_pause(&self, remaining: Duration) {
        self.rate_limit_pauses.add(remaining);
    }

    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn token_renewal(&self) {
        self.token_renewals.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self, breaker: BreakerSnapshot) -> ClientStats {
        let mut requests: Vec<RequestCount> = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(&(endpoint, outcome), &count)| RequestCount { endpoint, outcome, count })
            .collect();
        requests.sort_by_key(|r| (r.endpoint, r.outcome));
        ClientStats {
            requests,
            user_budget: self.user.snapshot(),
            background_budget: self.background.snapshot(),
            rate_limit_pauses: self.rate_limit_pauses.snapshot(),
            retries: self.retries.load(Ordering::Relaxed),
            token_renewals: self.token_renewals.load(Ordering::Relaxed),
            breaker,
        }
    }
}

/// Waits of one kind: how many, how many had to wait at all, for how long.
#[derive(Default)]
struct WaitCounter {
    count: AtomicU64,
    waited: AtomicU64,
    total_micros: AtomicU64,
    max_micros: AtomicU64,
}

/// Below this a wait is the dispatcher's hand-off, not the budget holding a call back.
const NOTICEABLE_WAIT: Duration = Duration::from_millis(1);

impl WaitCounter {
    fn add(&self, waited: Duration) {
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        if waited >= NOTICEABLE_WAIT {
            self.waited.fetch_add(1, Ordering::Relaxed);
        }
        self.total_micros.fetch_add(micros, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    fn snapshot(&self) -> WaitStats {
        WaitStats {
            count: self.count.load(Ordering::Relaxed),
            waited: self.waited.load(Ordering::Relaxed),
            total_wait_ms: self.total_micros.load(Ordering::Relaxed) / 1000,
            max_wait_ms: self.max_micros.load(Ordering::Relaxed) / 1000,
        }
    }
}

/// A copy of the client's counters at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct ClientStats {
    /// Every request by route template (`GET /vehicles/{id}`) and outcome, sorted.
    pub requests: Vec<RequestCount>,
    /// Budget permits given to calls a person waits for.
    pub user_budget: WaitStats,
    /// Budget permits given to background refreshes.
    pub background_budget: WaitStats,
    /// Calls that found a 429 pause in force and waited for it (times are the pause left).
    pub rate_limit_pauses: WaitStats,
    /// Requests repeated after a 429, 5xx, timeout or connection failure.
    pub retries: u64,
    /// Access tokens fetched.
    pub token_renewals: u64,
    pub breaker: BreakerSnapshot,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestCount {
    pub endpoint: &'static str,
    pub outcome: Outcome,
    pub count: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WaitStats {
    pub count: u64,
    pub waited: u64,
    pub total_wait_ms: u64,
    pub max_wait_ms: u64,
}

impl ClientStats {
    /// Requests to `endpoint` that ended with `outcome`.
    pub fn count(&self, endpoint: &str, outcome: Outcome) -> u64 {
        self.requests.iter().filter(|r| r.endpoint == endpoint && r.outcome == outcome).map(|r| r.count).sum()
    }

    /// Requests, to any endpoint, that ended with `outcome`.
    pub fn total(&self, outcome: Outcome) -> u64 {
        self.requests.iter().filter(|r| r.outcome == outcome).map(|r| r.count).sum()
    }

    /// Requests that reached Enode, whatever the answer.
    pub fn sent(&self) -> u64 {
        self.requests.iter().filter(|r| r.outcome.was_sent()).map(|r| r.count).sum()
    }
}
