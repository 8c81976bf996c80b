//! Simulated time: wall-clock time since start, multiplied by the time factor, plus whatever a
//! test has advanced by hand. Kept in milliseconds since the Unix epoch so a vehicle stores its
//! timestamps in 8 bytes each.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};

pub type SimMillis = i64;

#[derive(Debug)]
pub struct SimClock {
    started: Instant,
    origin: SimMillis,
    factor: f64,
    /// Manual advances, in simulated milliseconds.
    advanced: AtomicI64,
}

impl SimClock {
    pub fn new(origin: DateTime<Utc>, factor: f64) -> Self {
        Self {
            started: Instant::now(),
            origin: origin.timestamp_millis(),
            factor: factor.max(0.0),
            advanced: AtomicI64::new(0),
        }
    }

    pub fn now(&self) -> SimMillis {
        let real = self.started.elapsed().as_secs_f64() * 1000.0;
        self.origin + (real * self.factor) as i64 + self.advanced.load(Ordering::Relaxed)
    }

    pub fn advance(&self, millis: i64) {
        self.advanced.fetch_add(millis.max(0), Ordering::Relaxed);
    }

    pub fn factor(&self) -> f64 {
        self.factor
    }
}

/// A simulated instant as Enode renders it.
pub fn to_datetime(ms: SimMillis) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
