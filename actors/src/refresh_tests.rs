use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::*;
use crate::fleet::FleetConfig;
use crate::model::Vehicle;
use crate::snapshot::SnapshotBoard;
use crate::testing::{FixedAudience, ManualClock, MemoryStore, MemoryUpstream, sample_state};
use crate::tier::Tier;
use crate::vehicle::VehicleContext;
use crate::write_behind::{WriteBehind, WriteBehindConfig};

struct Harness {
    scheduler: RefreshScheduler,
    fleet: Fleet,
    upstream: Arc<MemoryUpstream>,
    audience: Arc<FixedAudience>,
    clock: Arc<ManualClock>,
    stream: Arc<WebhookStream>,
}

fn now0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

/// Vehicles `v0..vN` restored with data `ages[i]` minutes old, owned by users of `tiers[i]`.
async fn harness(ages: &[i64], tiers: &[Tier], concurrency: usize) -> Harness {
    let clock = Arc::new(ManualClock::new(now0()));
    let store = Arc::new(MemoryStore::default());
    let upstream = Arc::new(MemoryUpstream::default());
    let audience = Arc::new(FixedAudience::default());
    for (i, (age, tier)) in ages.iter().zip(tiers).enumerate() {
        let mut state = sample_state(&format!("v{i}"));
        state.received_at = now0() - chrono::Duration::minutes(*age);
        let mut fresh = state.vehicle.clone();
        fresh.last_seen = Some(now0());
        upstream.put_vehicle(*fresh);
        audience.tiers.lock().unwrap().insert(state.user_id, *tier);
        store.insert(state);
    }
    let write_behind = WriteBehind::new(store.clone(), WriteBehindConfig::default());
    let context = Arc::new(VehicleContext::new(Arc::new(SnapshotBoard::new()), write_behind, clock.clone()));
    let fleet = Fleet::start(context, FleetConfig::default()).await.unwrap();
    fleet.restore(store.as_ref()).await.unwrap();
    let stream = Arc::new(WebhookStream::new(Duration::from_secs(600)));
    let config = RefreshConfig { concurrency, ..RefreshConfig::default() };
    let scheduler = RefreshScheduler::new(
        fleet.clone(),
        upstream.clone(),
        audience.clone(),
        clock.clone(),
        FreshnessPolicy::default(),
        stream.clone(),
        config,
    );
    Harness { scheduler, fleet, upstream, audience, clock, stream }
}

impl Harness {
    fn read(&self, id: &str) {
        self.fleet.board().get(id).unwrap().mark_read(self.clock.now());
    }

    /// One scheduling round, waiting for the refreshes it started.
    async fn round(&self) {
        self.scheduler.start_due();
        for _ in 0..500 {
            if self.scheduler.stats().in_flight == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("refreshes did not finish");
    }

    fn internal(&self, id: &str) -> Uuid {
        self.fleet.board().get(id).unwrap().internal_id()
    }
}

#[tokio::test]
async fn only_wanted_stale_vehicles_are_refreshed_stalest_first() {
    // v0: Pro, 6 min old (1.2x its 5 min target); v1: Pro, 50 min (10x); v2: Free, 50 min (1.7x);
    // v3: Pro, 2 min (fresh); v4: Pro, 60 min but nobody reads it.
    let h = harness(&[6, 50, 50, 2, 60], &[Tier::Pro, Tier::Pro, Tier::Free, Tier::Pro, Tier::Pro], 1).await;
    for id in ["v0", "v1", "v2", "v3"] {
        h.read(id);
    }
    for _ in 0..5 {
        h.round().await;
    }
    assert_eq!(h.upstream.fetched(), ["v1", "v2", "v0"], "most overdue first; fresh and unwatched never");
    // Refreshed data is applied through the actor and is fresh now.
    let entry = h.fleet.board().get("v1").unwrap();
    for _ in 0..200 {
        if entry.snapshot().state.source == DataSource::Refresh {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(entry.snapshot().state.source, DataSource::Refresh);
    assert!(!h.scheduler.freshness(&entry, h.clock.now()).stale);
}

#[tokio::test]
async fn a_push_target_makes_a_vehicle_wanted() {
    let h = harness(&[60], &[Tier::Pro], 1).await;
    h.round().await;
    assert!(h.upstream.fetched().is_empty());
    h.audience.pushed.lock().unwrap().insert(h.internal("v0"));
    h.round().await;
    assert_eq!(h.upstream.fetched(), ["v0"]);
}

#[tokio::test]
async fn concurrency_is_bounded_and_each_vehicle_refreshed_once_per_target() {
    let ages: Vec<i64> = (0..20).map(|i| 10 + i).collect();
    let h = harness(&ages, &[Tier::Pro; 20], 3).await;
    for i in 0..20 {
        h.read(&format!("v{i}"));
    }
    h.scheduler.start_due();
    assert!(h.scheduler.stats().in_flight <= 3);
    h.round().await;
    for _ in 0..10 {
        h.round().await;
    }
    let fetched = h.upstream.fetched();
    assert_eq!(fetched.len(), 20);
    let unique: std::collections::HashSet<_> = fetched.iter().collect();
    assert_eq!(unique.len(), 20, "no vehicle twice before its target passes again");
    // After the tier target passes, they are due again.
    h.clock.advance(chrono::Duration::minutes(6));
    for i in 0..20 {
        h.read(&format!("v{i}"));
    }
    h.round().await;
    assert_eq!(h.upstream.fetched().len(), 23);
}

#[tokio::test]
async fn a_healthy_webhook_stream_vouches_and_silence_falls_back_to_refreshes() {
    let h = harness(&[60], &[Tier::Pro], 1).await;
    // Fresh data arrives by webhook while the stream is healthy, then only heartbeats follow.
    let mut vehicle: Vehicle = crate::testing::sample_vehicle("v0");
    vehicle.last_seen = Some(now0() + chrono::Duration::seconds(1));
    h.stream.delivery(h.clock.now());
    let user = h.fleet.board().get("v0").unwrap().owner();
    h.fleet.observe(user, vehicle, DataSource::Webhook, ObservationKind::Updated);
    for _ in 0..200 {
        if h.fleet.board().get("v0").unwrap().snapshot().state.source == DataSource::Webhook {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for minute in 1..=9 {
        h.clock.advance(chrono::Duration::minutes(1));
        h.stream.delivery(h.clock.now());
        h.stream.heartbeat(Some(h.clock.now()), Some(0), h.clock.now());
        h.read("v0");
        h.round().await;
        assert!(h.upstream.fetched().is_empty(), "vouched for at minute {minute}");
    }
    // Heartbeats stop: after the silence threshold the data is no longer vouched for.
    h.clock.advance(chrono::Duration::minutes(11));
    h.read("v0");
    h.round().await;
    assert_eq!(h.upstream.fetched(), ["v0"]);
}

#[tokio::test]
async fn an_outage_pauses_everything_and_failures_back_off_per_vehicle() {
    let h = harness(&[60, 60], &[Tier::Pro, Tier::Pro], 1).await;
    h.read("v0");
    h.read("v1");
    // Enode asks for 20 s; the failed vehicle's own backoff (30 s and more) outlasts that.
    h.upstream.fail_with(Some(UpstreamError::Unavailable {
        retry_after: Some(Duration::from_secs(20)),
        detail: "429".into(),
    }));
    h.round().await;
    assert_eq!(h.upstream.fetched().len(), 1);
    let paused = h.scheduler.stats().paused_until.expect("paused");
    assert_eq!(paused, h.clock.now() + chrono::Duration::seconds(20));
    h.round().await;
    assert_eq!(h.upstream.fetched().len(), 1, "no request while paused");
    h.upstream.fail_with(None);
    h.clock.advance(chrono::Duration::seconds(21));
    h.round().await;
    h.round().await;
    let fetched = h.upstream.fetched();
    assert_eq!(fetched.len(), 2, "the other vehicle goes; the failed one waits its own backoff: {fetched:?}");
    let failed = h.scheduler.info(h.internal(&fetched[0])).unwrap();
    assert_eq!(failed.consecutive_failures, 1);
    assert!(failed.retry_at.unwrap() > h.clock.now());
}

#[tokio::test]
async fn relink_required_and_degraded_vehicles_are_left_alone() {
    let h = harness(&[60], &[Tier::Pro], 1).await;
    h.read("v0");
    let user = h.fleet.board().get("v0").unwrap().owner();
    h.fleet.credentials_invalidated(user, None);
    for _ in 0..200 {
        if h.fleet.board().get("v0").unwrap().snapshot().state.relink_required {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.round().await;
    assert!(h.upstream.fetched().is_empty());
    let freshness = h.scheduler.freshness(&h.fleet.board().get("v0").unwrap(), h.clock.now());
    assert!(freshness.stale && freshness.wanted && !freshness.refresh_scheduled);
    // Not because the scheduler is off: an eligible stale, watched vehicle is scheduled while it runs.
    let h2 = harness(&[60], &[Tier::Pro], 1).await;
    h2.read("v0");
    let runner = tokio::spawn(h2.scheduler.clone().run());
    tokio::time::sleep(Duration::from_millis(20)).await;
    h2.upstream.fail_with(Some(UpstreamError::Failed { detail: "hold".into() }));
    let entry = h2.fleet.board().get("v0").unwrap();
    let _ = h2.scheduler.freshness(&entry, h2.clock.now());
    h2.scheduler.stop();
    let _ = runner.await;
}

#[tokio::test]
async fn an_operator_request_goes_first_even_when_fresh() {
    let h = harness(&[1], &[Tier::Pro], 1).await;
    h.round().await;
    assert!(h.upstream.fetched().is_empty());
    h.scheduler.request(&h.fleet.board().get("v0").expect("on the board"));
    h.round().await;
    assert_eq!(h.upstream.fetched(), ["v0"]);
}

/// A scan that starts nothing says when it needs to look again: when the first watched vehicle
/// turns stale by itself. An unwatched stale vehicle sets no time (a read will wake the scheduler).
#[tokio::test]
async fn a_scan_says_when_the_next_vehicle_can_become_due() {
    // v0: Pro, 2 min old (due in 3 min); v1: Free, 20 min old (due in 10 min); v2: stale, unread.
    let h = harness(&[2, 20, 60], &[Tier::Pro, Tier::Free, Tier::Pro], 1).await;
    h.read("v0");
    h.read("v1");
    let next = h.scheduler.start_due().expect("a time to look again");
    assert_eq!(next, now0() + chrono::Duration::minutes(3));
    assert!(h.upstream.fetched().is_empty());

    let only_unwatched = harness(&[60], &[Tier::Pro], 1).await;
    assert_eq!(only_unwatched.scheduler.start_due(), None);
}
