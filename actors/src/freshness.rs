//! When is a vehicle's data stale, and who is watching it.
//!
//! A vehicle is *wanted* when an HA client read it within `wanted_window`, or it has a push
//! target. It is *stale* when its data is older than its owner's tier target.
//!
//! "Older" needs care. Enode pushes a webhook whenever it sees a change, and only then, so a
//! parked car's last event can be hours old while its data is perfectly current. Polling it to
//! find nothing new would spend the shared budget on nothing. So the webhook stream itself vouches
//! for the data: a `system:heartbeat` with no pending events says every change up to that moment
//! has been delivered. That vouching holds only while the stream has been continuously healthy
//! since the vehicle's data arrived (no silence longer than `silence`, no restart of this service
//! in between: Enode drops undelivered events after its retry window). When the stream falls
//! silent, nothing is vouched for, wanted vehicles turn stale at their tier's pace, and refreshes
//! take over within the budget until events flow again.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::tier::Tier;

#[derive(Clone, Debug)]
pub struct TierTargets {
    pub free: Duration,
    pub basic: Duration,
    pub pro: Duration,
}

impl Default for TierTargets {
    fn default() -> Self {
        Self {
            free: Duration::from_secs(30 * 60),
            basic: Duration::from_secs(10 * 60),
            pro: Duration::from_secs(5 * 60),
        }
    }
}

impl TierTargets {
    /// The strictest target: data younger than this is fresh whatever the owner's tier.
    pub fn shortest(&self) -> Duration {
        self.free.min(self.basic).min(self.pro)
    }

    pub fn for_tier(&self, tier: Tier) -> Duration {
        match tier {
            Tier::Free => self.free,
            Tier::Basic => self.basic,
            Tier::Pro => self.pro,
        }
    }
}

#[derive(Clone, Debug)]
pub struct FreshnessPolicy {
    pub targets: TierTargets,
    /// A read within this long makes a vehicle wanted.
    pub wanted_window: Duration,
}

impl Default for FreshnessPolicy {
    fn default() -> Self {
        Self { targets: TierTargets::default(), wanted_window: Duration::from_secs(30 * 60) }
    }
}

impl FreshnessPolicy {
    /// Read within the wanted window, or pushed to. `has_push_target` is asked only when the read
    /// does not settle it (a lookup; every HA poll asks this).
    pub fn is_wanted(
        &self,
        last_read: Option<DateTime<Utc>>,
        has_push_target: impl FnOnce() -> bool,
        now: DateTime<Utc>,
    ) -> bool {
        last_read.is_some_and(|read| elapsed(read, now) <= self.wanted_window) || has_push_target()
    }
}

/// What the Enode webhook stream can vouch for. Fed by the webhook receiver.
#[derive(Debug)]
pub struct WebhookStream {
    silence: Duration,
    /// Unix ms; 0 = never. Start of the current unbroken run of events.
    healthy_since: AtomicI64,
    last_event: AtomicI64,
    /// Every change up to this instant has been delivered (from heartbeats with nothing pending).
    confirmed_until: AtomicI64,
}

impl WebhookStream {
    /// `silence`: a gap between webhook deliveries longer than this breaks the stream's word.
    pub fn new(silence: Duration) -> Self {
        Self {
            silence,
            healthy_since: AtomicI64::new(0),
            last_event: AtomicI64::new(0),
            confirmed_until: AtomicI64::new(0),
        }
    }

    /// A delivery arrived (any events).
    pub fn delivery(&self, now: DateTime<Utc>) {
        if self.is_silent(now) {
            self.healthy_since.store(now.timestamp_millis(), Ordering::Relaxed);
        }
        self.last_event.store(now.timestamp_millis(), Ordering::Relaxed);
    }

    /// A `system:heartbeat` created at `created_at` with `pending` events still queued at Enode.
    /// Call after `delivery` for the delivery that carried it.
    pub fn heartbeat(&self, created_at: Option<DateTime<Utc>>, pending: Option<u64>, now: DateTime<Utc>) {
        if pending == Some(0) {
            // Enode's clock may run ahead of ours; never vouch for the future.
            let at = created_at.map_or(now, |t| t.min(now)).timestamp_millis();
            self.confirmed_until.fetch_max(at, Ordering::Relaxed);
        }
    }

    /// True when no delivery has arrived within the silence threshold (or ever).
    pub fn is_silent(&self, now: DateTime<Utc>) -> bool {
        match self.last_event.load(Ordering::Relaxed) {
            0 => true,
            ms => now.timestamp_millis() - ms > self.silence.as_millis() as i64,
        }
    }

    pub fn last_event(&self) -> Option<DateTime<Utc>> {
        from_ms(self.last_event.load(Ordering::Relaxed))
    }

    /// Until when the stream vouches for data that arrived at `received_at`, if it does.
    pub fn vouched_until(&self, received_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_silent(now) {
            return None;
        }
        let since = from_ms(self.healthy_since.load(Ordering::Relaxed))?;
        if received_at < since {
            return None;
        }
        from_ms(self.confirmed_until.load(Ordering::Relaxed))
    }
}

fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    if ms == 0 { None } else { DateTime::from_timestamp_millis(ms) }
}

/// Time from `earlier` to `later`, zero when `later` is before it.
pub fn elapsed(earlier: DateTime<Utc>, later: DateTime<Utc>) -> Duration {
    (later - earlier).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_heartbeat_with_nothing_pending_vouches_for_data_received_while_healthy() {
        let stream = WebhookStream::new(Duration::from_secs(600));
        assert_eq!(stream.vouched_until(t(0), t(0)), None, "no stream yet");
        stream.delivery(t(10));
        stream.heartbeat(Some(t(10)), Some(0), t(10));
        assert_eq!(stream.vouched_until(t(20), t(30)), Some(t(10)));
        // Data from before the stream became healthy (e.g. restored after a restart) is not vouched for.
        assert_eq!(stream.vouched_until(t(5), t(30)), None);
    }

    #[test]
    fn pending_events_or_silence_vouch_for_nothing_new() {
        let stream = WebhookStream::new(Duration::from_secs(600));
        stream.delivery(t(0));
        stream.heartbeat(Some(t(0)), Some(0), t(0));
        stream.delivery(t(100));
        stream.heartbeat(Some(t(100)), Some(5), t(100));
        assert_eq!(stream.vouched_until(t(0), t(100)), Some(t(0)), "a backlog does not confirm");
        assert!(stream.is_silent(t(800)));
        assert_eq!(stream.vouched_until(t(0), t(800)), None);
        // The stream resumes: a new healthy period starts; older data is not vouched for.
        stream.delivery(t(900));
        stream.heartbeat(Some(t(900)), Some(0), t(900));
        assert_eq!(stream.vouched_until(t(0), t(901)), None);
        assert_eq!(stream.vouched_until(t(900), t(901)), Some(t(900)));
    }

    #[test]
    fn wanted_by_recent_reads_or_a_push_target() {
        let policy = FreshnessPolicy::default();
        assert!(!policy.is_wanted(None, || false, t(0)));
        assert!(policy.is_wanted(None, || true, t(0)));
        assert!(policy.is_wanted(Some(t(0)), || false, t(60)));
        assert!(!policy.is_wanted(Some(t(0)), || false, t(31 * 60)));
    }
}
