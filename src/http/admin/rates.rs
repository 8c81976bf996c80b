//! Webhook rates per minute for the admin page. Counters only say "how many since start"; a
//! background sampler keeps the last minute of samples so the page can say "how many lately"
//! without anyone keeping per-event timestamps.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ingest::{IngestStats, WebhookIngest};

const EVERY: Duration = Duration::from_secs(10);
/// Seven samples ten seconds apart span one minute.
const SAMPLES: usize = 7;

#[derive(Default)]
pub struct WebhookRates {
    // A std Mutex: held for a push or a read, never across an await.
    samples: Mutex<VecDeque<(Instant, u64, u64)>>,
}

/// Deliveries and events per minute over the last minute (or since the first sample).
#[derive(Clone, Copy, Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct PerMinute {
    pub deliveries: f64,
    pub events: f64,
}

impl WebhookRates {
    pub fn sample(&self, stats: &IngestStats, at: Instant) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back((at, stats.deliveries, events(stats)));
    }

    pub fn per_minute(&self) -> PerMinute {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let (Some(first), Some(last)) = (samples.front(), samples.back()) else {
            return PerMinute::default();
        };
        let minutes = last.0.duration_since(first.0).as_secs_f64() / 60.0;
        if minutes <= 0.0 {
            return PerMinute::default();
        }
        PerMinute {
            deliveries: (last.1.saturating_sub(first.1)) as f64 / minutes,
            events: (last.2.saturating_sub(first.2)) as f64 / minutes,
        }
    }

    /// Samples every ten seconds until the task is dropped.
    pub async fn run(self: Arc<Self>, ingest: Arc<WebhookIngest>) {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            self.sample(&ingest.stats(), Instant::now());
        }
    }
}

fn events(s: &IngestStats) -> u64 {
    s.discovered
        + s.updated
        + s.deleted
        + s.credentials_invalidated
        + s.vendor_action_updated
        + s.heartbeats
        + s.tests
        + s.unknown_event
        + s.malformed_event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_over_the_sampled_span() {
        let rates = WebhookRates::default();
        let start = Instant::now();
        rates.sample(&IngestStats::default(), start);
        let later = IngestStats { deliveries: 30, updated: 90, ..IngestStats::default() };
        rates.sample(&later, start + Duration::from_secs(30));
        let rate = rates.per_minute();
        assert!((rate.deliveries - 60.0).abs() < 1e-9);
        assert!((rate.events - 180.0).abs() < 1e-9);
    }
}
