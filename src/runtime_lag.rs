//! How late the async runtime runs work that is ready. A canary task asks to be woken every
//! `EVERY` and records how much later than that it ran. Anything that holds the runtime's
//! workers (a long synchronous walk, a lock held across a slow call, a core taken by another
//! thread or process) makes every HA read wait just as long, and shows here first: the load
//! harness found the fleet walks and the key-use flush this way (benches/HISTORY.md).
//!
//! Cheap by design: 100 wakes a second and a few atomic adds, read from counters by
//! `/admin/runtime` and `/metrics`. The timer's own resolution is a millisecond, so lateness up
//! to that is the runtime keeping time, not a stall.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

/// How often the canary asks to be woken.
pub const EVERY: Duration = Duration::from_millis(10);

/// A lateness worth a log line of its own: HA polls and webhook acknowledgements waited as long.
const WARN_AFTER: Duration = Duration::from_millis(250);

/// Upper bounds of the lateness buckets, in milliseconds; one more bucket holds the rest.
pub const BOUNDS_MS: [u64; 9] = [1, 2, 5, 10, 25, 50, 100, 250, 1000];

/// Lateness counts since start.
#[derive(Debug, Default)]
pub struct RuntimeLag {
    /// Samples per bucket (not cumulative): `BOUNDS_MS`, then everything longer.
    buckets: [AtomicU64; BOUNDS_MS.len() + 1],
    sum_micros: AtomicU64,
    max_micros: AtomicU64,
}

/// A point-in-time copy of the counts, for `/admin/runtime` and metrics.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RuntimeLagStats {
    /// Wakes measured since start (one every `every_ms`).
    pub samples: u64,
    pub every_ms: u64,
    /// Samples at most `le_ms` late, cumulative like a Prometheus histogram; the last bucket
    /// (`le_ms` null) counts every sample.
    pub buckets: Vec<LagBucket>,
    pub sum_ms: f64,
    /// The longest lateness seen since start.
    pub max_ms: f64,
}

#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct LagBucket {
    pub le_ms: Option<u64>,
    pub count: u64,
}

impl RuntimeLag {
    pub fn record(&self, late: Duration) {
        let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_MS.iter().position(|&ms| micros <= ms * 1000).unwrap_or(BOUNDS_MS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    /// Samples per bucket, not cumulative (as a histogram encoder takes them), each with its
    /// upper bound in ms (None: the bucket for everything longer).
    pub fn per_bucket(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        self.buckets.iter().enumerate().map(|(i, count)| (BOUNDS_MS.get(i).copied(), count.load(Ordering::Relaxed)))
    }

    /// All lateness recorded, summed.
    pub fn sum_ms(&self) -> f64 {
        self.sum_micros.load(Ordering::Relaxed) as f64 / 1000.0
    }

    pub fn stats(&self) -> RuntimeLagStats {
        let mut cumulative = 0;
        let buckets: Vec<LagBucket> = self
            .per_bucket()
            .map(|(le_ms, own)| {
                cumulative += own;
                LagBucket { le_ms, count: cumulative }
            })
            .collect();
        RuntimeLagStats {
            // The buckets' total rather than a counter of its own, so the two always agree.
            samples: cumulative,
            every_ms: EVERY.as_millis() as u64,
            buckets,
            sum_ms: self.sum_ms(),
            max_ms: self.max_micros.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }

    /// Measures until the task is dropped.
    pub async fn watch(self: Arc<Self>) {
        loop {
            let asked = Instant::now();
            tokio::time::sleep(EVERY).await;
            let late = asked.elapsed().saturating_sub(EVERY);
            if late > WARN_AFTER {
                tracing::warn!(
                    late_ms = late.as_millis() as u64,
                    "the async runtime was held up; every request waited as long"
                );
            }
            self.record(late);
        }
    }
}

impl RuntimeLagStats {
    /// Samples later than `ms` (one of `BOUNDS_MS`), or None for another bound.
    pub fn later_than(&self, ms: u64) -> Option<u64> {
        let within = self.buckets.iter().find(|b| b.le_ms == Some(ms))?.count;
        Some(self.samples.saturating_sub(within))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_lands_in_its_bucket_and_counts_cumulatively() {
        let lag = RuntimeLag::default();
        for late in [0, 800, 1_500, 30_000, 2_000_000] {
            lag.record(Duration::from_micros(late));
        }
        let stats = lag.stats();
        assert_eq!(stats.samples, 5);
        let count = |le: Option<u64>| stats.buckets.iter().find(|b| b.le_ms == le).map(|b| b.count);
        assert_eq!(count(Some(1)), Some(2));
        assert_eq!(count(Some(2)), Some(3));
        assert_eq!(count(Some(25)), Some(3));
        assert_eq!(count(Some(50)), Some(4));
        assert_eq!(count(Some(1000)), Some(4));
        assert_eq!(count(None), Some(5));
        assert_eq!(stats.later_than(5), Some(2));
        assert_eq!(stats.later_than(3), None);
        assert!((stats.max_ms - 2000.0).abs() < 1e-9);
        assert!((stats.sum_ms - 2032.3).abs() < 1e-9);
    }

    /// A task that holds the only worker (here 60 ms of synchronous work) delays everything else
    /// on it, and the canary says by how much.
    #[tokio::test(flavor = "current_thread")]
    async fn a_blocked_worker_shows_as_lateness() {
        let lag = Arc::new(RuntimeLag::default());
        let canary = tokio::spawn(Arc::clone(&lag).watch());
        tokio::time::sleep(EVERY * 5).await;
        let before = lag.stats();
        assert!(before.samples >= 2, "the canary runs: {before:?}");
        tokio::spawn(async { std::thread::sleep(Duration::from_millis(60)) }).await.expect("blocking task");
        tokio::time::sleep(EVERY * 3).await;
        let after = lag.stats();
        canary.abort();
        assert!(after.max_ms >= 40.0, "{after:?}");
        assert!(after.later_than(25) >= Some(1), "{after:?}");
    }
}
