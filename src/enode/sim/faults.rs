//! Fault knobs and the rate limit: what the simulator does to a request before serving it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::rng::SimRng;

/// Faults in force. Everything off by default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Enode is down: every API and token call answers 503 problem+json (the server still accepts
    /// connections, as a load balancer in front of a dead backend would; see README in mod.rs).
    pub outage: bool,
    /// Fraction (0..=1) of API calls answered 500 problem+json.
    pub error_rate: f64,
    /// Added to every API and token call before it is served.
    pub latency_ms: u64,
    /// Fraction (0..=1) of webhook deliveries silently never sent (their events are lost).
    pub webhook_drop_rate: f64,
}

/// Every knob that can be turned at run time: the faults and the rate limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Knobs {
    #[serde(flatten)]
    pub faults: Faults,
    /// Requests per minute for the whole client; 0 = unlimited.
    pub rate_per_minute: u32,
    /// 429s still to be forced, and the `Retry-After` they carry; None when there are none.
    #[serde(default)]
    pub rate_limit_next: Option<ForcedRateLimit>,
}

/// The next `count` API calls are answered 429 with exactly `Retry-After: retry_after_secs`,
/// whatever the rate limit says. The sliding window names the time until its oldest request
/// leaves, which a test cannot choose (a full minute, less the time the calls took); this lets a
/// test ask for "429, Retry-After: 2" and check the client against exactly that.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForcedRateLimit {
    pub count: u32,
    pub retry_after_secs: u64,
}

/// `POST /_sim/faults`: only the fields given change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KnobsPatch {
    pub outage: Option<bool>,
    pub error_rate: Option<f64>,
    pub latency_ms: Option<u64>,
    pub webhook_drop_rate: Option<f64>,
    pub rate_per_minute: Option<u32>,
    /// Replaces any forced 429s still pending; a count of 0 clears them.
    pub rate_limit_next: Option<ForcedRateLimit>,
}

impl Knobs {
    pub fn apply(&mut self, patch: &KnobsPatch) {
        if let Some(v) = patch.outage {
            self.faults.outage = v;
        }
        if let Some(v) = patch.error_rate {
            self.faults.error_rate = v.clamp(0.0, 1.0);
        }
        if let Some(v) = patch.latency_ms {
            self.faults.latency_ms = v;
        }
        if let Some(v) = patch.webhook_drop_rate {
            self.faults.webhook_drop_rate = v.clamp(0.0, 1.0);
        }
        if let Some(v) = patch.rate_per_minute {
            self.rate_per_minute = v;
        }
        if let Some(v) = patch.rate_limit_next {
            self.rate_limit_next = (v.count > 0).then_some(v);
        }
    }
}

/// What the gate decided for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Serve,
    Outage,
    InjectedError,
    /// Over the limit; retry after this many seconds.
    RateLimited(u64),
}

/// Knobs plus the state they need (the fault dice, the sliding window of accepted requests).
#[derive(Debug)]
pub struct FaultState {
    pub knobs: Knobs,
    rng: SimRng,
    window: RateWindow,
}

impl FaultState {
    pub fn new(knobs: Knobs, seed: u64) -> Self {
        Self { knobs, rng: SimRng::derive(seed, 0xFA17), window: RateWindow::default() }
    }

    /// Decides an API call. The outage wins over the limit (a down Enode counts nothing); a
    /// limited request is not counted against the window, so a client that waits `Retry-After`
    /// is let through.
    pub fn judge_api(&mut self, now: Instant) -> Verdict {
        if self.knobs.faults.outage {
            return Verdict::Outage;
        }
        if let Some(seconds) = self.take_forced_rate_limit() {
            return Verdict::RateLimited(seconds);
        }
        if let Err(wait) = self.window.admit(now, self.knobs.rate_per_minute) {
            return Verdict::RateLimited(wait);
        }
        if self.roll(self.knobs.faults.error_rate) {
            return Verdict::InjectedError;
        }
        Verdict::Serve
    }

    /// Decides a token call: outage and injected errors apply, the API rate limit does not (the
    /// token host is a different service at Enode).
    pub fn judge_token(&mut self) -> Verdict {
        if self.knobs.faults.outage {
            Verdict::Outage
        } else if self.roll(self.knobs.faults.error_rate) {
            Verdict::InjectedError
        } else {
            Verdict::Serve
        }
    }

    /// Uses up one forced 429, if any are left: its `Retry-After`.
    fn take_forced_rate_limit(&mut self) -> Option<u64> {
        let forced = self.knobs.rate_limit_next.as_mut()?;
        forced.count = forced.count.saturating_sub(1);
        let seconds = forced.retry_after_secs;
        if forced.count == 0 {
            self.knobs.rate_limit_next = None;
        }
        Some(seconds)
    }

    pub fn drop_delivery(&mut self) -> bool {
        self.roll(self.knobs.faults.webhook_drop_rate)
    }

    fn roll(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.chance(p)
    }
}

const WINDOW: Duration = Duration::from_secs(60);

/// Accepted requests of the last 60 s, so the limit holds over ANY 60-second window, which is
/// what a test computing "requests in any minute" from the log will check.
#[derive(Debug, Default)]
struct RateWindow {
    accepted: VecDeque<Instant>,
}

impl RateWindow {
    /// Ok when admitted (and counted); Err(seconds to wait) when the window is full.
    fn admit(&mut self, now: Instant, limit: u32) -> Result<(), u64> {
        while let Some(&oldest) = self.accepted.front() {
            if now.duration_since(oldest) >= WINDOW {
                self.accepted.pop_front();
            } else {
                break;
            }
        }
        if limit == 0 {
            // Unlimited: keep nothing, so turning a limit on later starts from an empty window.
            self.accepted.clear();
            return Ok(());
        }
        if self.accepted.len() < limit as usize {
            self.accepted.push_back(now);
            return Ok(());
        }
        // The oldest request leaves the window at oldest + 60 s; round up so a client that
        // waits exactly Retry-After is admitted.
        let oldest = self.accepted.front().copied().unwrap_or(now);
        let wait = WINDOW.saturating_sub(now.duration_since(oldest));
        Err(wait.as_millis().div_ceil(1000).max(1) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_admits_up_to_the_limit_then_names_the_wait() {
        let mut window = RateWindow::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(window.admit(t0, 3), Ok(()));
        }
        let later = t0 + Duration::from_millis(20_500);
        assert_eq!(window.admit(later, 3), Err(40));
        assert_eq!(window.admit(t0 + WINDOW, 3), Ok(()));
    }

    #[test]
    fn forced_429s_name_the_chosen_wait_then_run_out() {
        let mut faults = FaultState::new(Knobs::default(), 1);
        let forced = ForcedRateLimit { count: 2, retry_after_secs: 2 };
        faults.knobs.apply(&KnobsPatch { rate_limit_next: Some(forced), ..KnobsPatch::default() });
        let now = Instant::now();
        assert_eq!(faults.judge_api(now), Verdict::RateLimited(2));
        assert_eq!(faults.knobs.rate_limit_next, Some(ForcedRateLimit { count: 1, retry_after_secs: 2 }));
        assert_eq!(faults.judge_api(now), Verdict::RateLimited(2));
        assert_eq!(faults.knobs.rate_limit_next, None);
        assert_eq!(faults.judge_api(now), Verdict::Serve);
    }

    #[test]
    fn zero_means_unlimited() {
        let mut window = RateWindow::default();
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert_eq!(window.admit(t0, 0), Ok(()));
        }
    }
}
