//! When a target is tried again after failures: exponential backoff with jitter, and a circuit
//! breaker that, after too many failures in a row, waits longer and then lets one trial through.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use super::records::Circuit;

#[derive(Clone, Debug)]
pub struct PushConfig {
    /// The wait after the first failure; doubles with each further failure.
    pub retry_initial: Duration,
    /// The longest wait while the circuit is closed.
    pub retry_max: Duration,
    /// Failures in a row that open a target's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit waits before one trial delivery.
    pub breaker_open: Duration,
    /// Deliveries in flight at once over all targets (each target has at most one).
    pub max_concurrent: usize,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            breaker_failures: 8,
            breaker_open: Duration::from_secs(300),
            max_concurrent: 64,
        }
    }
}

impl PushConfig {
    /// How long to wait after the `failures`-th failure in a row, before jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        if failures >= self.breaker_failures {
            return self.breaker_open;
        }
        let doublings = (failures - 1).min(30);
        self.retry_initial.saturating_mul(1 << doublings).min(self.retry_max)
    }

    /// The delay with "equal jitter": between half and all of it, so targets that failed together
    /// (HA instances behind one provider's outage) do not all come back at the same instant.
    pub fn jittered_delay(&self, failures: u32) -> Duration {
        let delay = self.delay(failures);
        let half = delay / 2;
        half + half.mul_f64(random_unit())
    }

    pub fn circuit(&self, failures: u32, waiting: bool) -> Circuit {
        match (failures >= self.breaker_failures, waiting) {
            (false, _) => Circuit::Closed,
            (true, true) => Circuit::Open,
            (true, false) => Circuit::HalfOpen,
        }
    }
}

/// A random number in [0, 1). std's hasher is seeded randomly per `RandomState`, which is all
/// the randomness jitter needs (and keeps a random-number crate out of this one).
fn random_unit() -> f64 {
    let bits = std::collections::hash_map::RandomState::new().build_hasher().finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PushConfig {
        PushConfig {
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_millis(1000),
            breaker_failures: 6,
            breaker_open: Duration::from_secs(30),
            max_concurrent: 4,
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_then_the_breaker_opens() {
        let c = config();
        let delays: Vec<u128> = (0..=7).map(|n| c.delay(n).as_millis()).collect();
        assert_eq!(delays, vec![0, 100, 200, 400, 800, 1000, 30_000, 30_000]);
        assert_eq!(c.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_between_half_and_all() {
        let c = config();
        for _ in 0..200 {
            let d = c.jittered_delay(3);
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400), "{d:?}");
        }
        let distinct: std::collections::HashSet<Duration> = (0..50).map(|_| c.jittered_delay(5)).collect();
        assert!(distinct.len() > 10, "jitter varies");
    }

    #[test]
    fn circuit_states() {
        let c = config();
        assert_eq!(c.circuit(5, true), Circuit::Closed);
        assert_eq!(c.circuit(6, true), Circuit::Open);
        assert_eq!(c.circuit(6, false), Circuit::HalfOpen);
    }
}
