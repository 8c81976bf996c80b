//! The circuit breaker: after `threshold` consecutive failures (5xx, timeouts, unreachable) every
//! call fails fast for `open_for`, then one probe call is let through; its success closes the
//! breaker, its failure opens it again. Any answer that is not a failure (2xx, 4xx, 429) proves
//! Enode is up and counts as success.
//!
//! Time is passed in, so the state machine is tested without sleeping.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// How long callers are told to wait while a half-open probe is still out.
const PROBE_PENDING_RETRY: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_out: bool },
}

pub(crate) struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    open_for: Duration,
}

/// Permission to send one request. Dropping it unresolved (the caller was cancelled) frees the
/// probe slot, so a cancelled probe cannot leave the breaker half-open forever.
#[must_use]
pub(crate) struct Ticket<'a> {
    breaker: &'a Breaker,
    probe: bool,
    resolved: bool,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self { state: Mutex::new(State::Closed { failures: 0 }), threshold: threshold.max(1), open_for }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Would a call be let through now? Changes nothing: callers ask before they queue for the
    /// budget so that an open breaker fails them fast, and ask `admit` once they hold a permit.
    pub fn check(&self, now: Instant) -> Result<(), Duration> {
        match *self.lock() {
            State::Closed { .. } | State::HalfOpen { probe_out: false } => Ok(()),
            State::Open { until } if now >= until => Ok(()),
            State::Open { until } => Err(until - now),
            State::HalfOpen { probe_out: true } => Err(PROBE_PENDING_RETRY),
        }
    }

    /// Lets one request through or says how long to wait.
    pub fn admit(&self, now: Instant) -> Result<Ticket<'_>, Duration> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now < until => return Err(until - now),
            State::Open { .. } | State::HalfOpen { probe_out: false } => {
                *state = State::HalfOpen { probe_out: true };
                true
            }
            State::HalfOpen { probe_out: true } => return Err(PROBE_PENDING_RETRY),
        };
        Ok(Ticket { breaker: self, probe, resolved: false })
    }

    pub fn snapshot(&self, now: Instant) -> BreakerSnapshot {
        match *self.lock() {
            State::Closed { failures } => {
                BreakerSnapshot { state: BreakerState::Closed, consecutive_failures: failures, retry_after_ms: None }
            }
            State::Open { until } => BreakerSnapshot {
                state: BreakerState::Open,
                consecutive_failures: self.threshold,
                retry_after_ms: Some(millis(until.saturating_duration_since(now))),
            },
            State::HalfOpen { .. } => BreakerSnapshot {
                state: BreakerState::HalfOpen,
                consecutive_failures: self.threshold,
                retry_after_ms: None,
            },
        }
    }
}

impl Ticket<'_> {
    /// Enode answered: it is up.
    pub fn success(mut self) {
        self.resolved = true;
        let mut state = self.breaker.lock();
        if !matches!(*state, State::Closed { .. }) {
            tracing::info!("Enode answers again: circuit breaker closed");
        }
        *state = State::Closed { failures: 0 };
    }

    /// Enode failed this request (5xx, timeout, unreachable).
    pub fn failure(mut self, now: Instant) {
        self.resolved = true;
        let breaker = self.breaker;
        let mut state = breaker.lock();
        let open = State::Open { until: now + breaker.open_for };
        *state = match *state {
            State::Closed { failures } if failures + 1 >= breaker.threshold => open,
            State::Closed { failures } => State::Closed { failures: failures + 1 },
            State::HalfOpen { .. } if self.probe => open,
            // A request let through before the breaker opened, failing late: already counted.
            other => other,
        };
        if *state == open {
            tracing::warn!(open_for = ?breaker.open_for, "Enode keeps failing: circuit breaker open");
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe && !self.resolved {
            let mut state = self.breaker.lock();
            if *state == (State::HalfOpen { probe_out: true }) {
                *state = State::HalfOpen { probe_out: false };
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BreakerSnapshot {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    /// While open: how long until a probe is let through.
    pub retry_after_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN_FOR: Duration = Duration::from_secs(30);

    fn fail(breaker: &Breaker, now: Instant) {
        breaker.admit(now).expect("admitted").failure(now);
    }

    #[test]
    fn opens_after_threshold_consecutive_failures_only() {
        let breaker = Breaker::new(3, OPEN_FOR);
        let t0 = Instant::now();
        fail(&breaker, t0);
        fail(&breaker, t0);
        // A success in between resets the count: failures must be consecutive.
        breaker.admit(t0).expect("admitted").success();
        fail(&breaker, t0);
        fail(&breaker, t0);
        assert_eq!(breaker.snapshot(t0).state, BreakerState::Closed);
        assert_eq!(breaker.snapshot(t0).consecutive_failures, 2);
        fail(&breaker, t0);
        let snap = breaker.snapshot(t0);
        assert_eq!(snap.state, BreakerState::Open);
        assert_eq!(snap.retry_after_ms, Some(30_000));
    }

    #[test]
    fn open_fails_fast_with_the_time_left() {
        let breaker = Breaker::new(1, OPEN_FOR);
        let t0 = Instant::now();
        fail(&breaker, t0);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(breaker.check(later), Err(Duration::from_secs(20)));
        assert_eq!(breaker.admit(later).err(), Some(Duration::from_secs(20)));
    }

    #[test]
    fn half_open_lets_one_probe_through_and_success_closes() {
        let breaker = Breaker::new(1, OPEN_FOR);
        let t0 = Instant::now();
        fail(&breaker, t0);
        let after = t0 + OPEN_FOR;
        assert_eq!(breaker.check(after), Ok(()));
        let probe = breaker.admit(after).expect("the probe");
        assert_eq!(breaker.snapshot(after).state, BreakerState::HalfOpen);
        assert_eq!(breaker.admit(after).err(), Some(PROBE_PENDING_RETRY));
        assert!(breaker.check(after).is_err());
        probe.success();
        assert_eq!(breaker.snapshot(after).state, BreakerState::Closed);
        assert!(breaker.admit(after).is_ok());
    }

    #[test]
    fn failed_probe_opens_again_for_the_full_time() {
        let breaker = Breaker::new(1, OPEN_FOR);
        let t0 = Instant::now();
        fail(&breaker, t0);
        let after = t0 + OPEN_FOR + Duration::from_secs(5);
        breaker.admit(after).expect("the probe").failure(after);
        let snap = breaker.snapshot(after);
        assert_eq!(snap.state, BreakerState::Open);
        assert_eq!(snap.retry_after_ms, Some(30_000));
    }

    #[test]
    fn a_dropped_probe_frees_the_slot() {
        let breaker = Breaker::new(1, OPEN_FOR);
        let t0 = Instant::now();
        fail(&breaker, t0);
        let after = t0 + OPEN_FOR;
        drop(breaker.admit(after).expect("the probe"));
        assert_eq!(breaker.snapshot(after).state, BreakerState::HalfOpen);
        assert!(breaker.admit(after).is_ok(), "another probe may go");
    }

    #[test]
    fn late_failures_of_requests_admitted_before_opening_do_not_extend_it() {
        let breaker = Breaker::new(2, OPEN_FOR);
        let t0 = Instant::now();
        let early = breaker.admit(t0).expect("admitted");
        fail(&breaker, t0);
        fail(&breaker, t0);
        early.failure(t0 + Duration::from_secs(20));
        assert_eq!(breaker.snapshot(t0).retry_after_ms, Some(30_000));
    }
}
