use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use serde_json::Value;

use super::*;
use crate::ports::SystemClock;
use crate::snapshot::SnapshotBoard;
use crate::state::VehicleState;
use crate::testing::{MemoryPushStore, eventually_here, sample_state};

/// How one fake HA instance answers.
#[derive(Clone, Debug)]
enum Answer {
    Ok,
    Fail(PushOutcome),
    /// Answers OK after this long (a slow HA).
    Slow(Duration),
}

/// A fake HA webhook endpoint: checks the id like HA's handler does, records what it accepted.
struct FakeHa {
    holds: Mutex<String>,
    answer: Mutex<Answer>,
    accepted: Mutex<Vec<Value>>,
    attempts: AtomicUsize,
}

impl FakeHa {
    fn new(holds: &str) -> Arc<Self> {
        Arc::new(Self {
            holds: Mutex::new(holds.to_owned()),
            answer: Mutex::new(Answer::Ok),
            accepted: Mutex::new(Vec::new()),
            attempts: AtomicUsize::new(0),
        })
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn accepted(&self) -> Vec<Value> {
        self.accepted.lock().unwrap().clone()
    }

    fn batteries(&self) -> Vec<Value> {
        self.accepted().iter().map(|p| p["vehicle"]["batteryLevel"].clone()).collect()
    }
}

/// The network: one fake HA per URL.
#[derive(Default)]
struct FakeNet {
    hosts: Mutex<HashMap<String, Arc<FakeHa>>>,
}

impl FakeNet {
    fn add(&self, url: &str, holds: &str) -> Arc<FakeHa> {
        let ha = FakeHa::new(holds);
        self.hosts.lock().unwrap().insert(url.to_owned(), Arc::clone(&ha));
        ha
    }
}

#[async_trait]
impl PushTransport for FakeNet {
    async fn deliver(&self, url: &str, body: Bytes) -> PushOutcome {
        let Some(ha) = self.hosts.lock().unwrap().get(url).cloned() else {
            return PushOutcome::ConnectRefused;
        };
        ha.attempts.fetch_add(1, Ordering::SeqCst);
        let answer = ha.answer.lock().unwrap().clone();
        match answer {
            Answer::Fail(outcome) => return outcome,
            Answer::Slow(delay) => tokio::time::sleep(delay).await,
            Answer::Ok => {}
        }
        let push: Value = serde_json::from_slice(&body).expect("a push is JSON");
        if push["vehicleId"] != *ha.holds.lock().unwrap() {
            return PushOutcome::IdMismatch;
        }
        ha.accepted.lock().unwrap().push(push);
        PushOutcome::Delivered
    }
}

fn fast() -> PushConfig {
    PushConfig {
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(40),
        breaker_failures: 100,
        breaker_open: Duration::from_millis(100),
        max_concurrent: 8,
    }
}

async fn outbox(store: &Arc<MemoryPushStore>, net: &Arc<FakeNet>, config: PushConfig) -> PushOutbox {
    PushOutbox::load(store.clone(), net.clone(), Arc::new(SystemClock), config).await.expect("load")
}

fn registration(state: &VehicleState, url: &str, vehicle_ref: &str) -> PushRegistration {
    PushRegistration {
        vehicle_id: state.internal_id,
        enode_vehicle_id: state.vehicle.id.clone(),
        user_id: state.user_id,
        webhook_id: url.rsplit('/').next().unwrap_or_default().to_owned(),
        url: url.to_owned(),
        vehicle_ref: vehicle_ref.to_owned(),
        registered_at: Utc::now(),
    }
}

/// The vehicle's next snapshot at `battery`, handed to the outbox as its actor would.
fn change(outbox: &PushOutbox, previous: &Arc<Snapshot>, battery: f64) -> Arc<Snapshot> {
    let mut state = (*previous.state).clone();
    state.vehicle.last_seen = state.vehicle.last_seen.map(|t| t + chrono::Duration::minutes(1));
    state.vehicle.charge_state.battery_level = Some(battery);
    let next = Arc::new(previous.next(Arc::new(state)));
    outbox.on_change(Some(previous), &next);
    next
}

/// Lets background work run, then checks nothing more happened.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(150)).await;
}

#[tokio::test]
async fn a_change_is_pushed_once_and_an_unchanged_body_not_at_all() {
    let (store, net) = (Arc::new(MemoryPushStore::default()), Arc::new(FakeNet::default()));
    let outbox = outbox(&store, &net, fast()).await;
    let state = sample_state("enode-1");
    let ha = net.add("http://ha/api/webhook/a", "enode-1");
    let first = Arc::new(Snapshot::new(Arc::new(state.clone())));
    // Created and restored vehicles are not changes.
    outbox.on_change(None, &first);
    assert!(!outbox.has_target(state.internal_id));
    outbox.register(registration(&state, "http://ha/api/webhook/a", "enode-1")).await.expect("register");
    assert!(outbox.has_target(state.internal_id));

    let second = change(&outbox, &first, 70.0);
    eventually_here("pushed", || ha.accepted().len() == 1).await;
    let push = &ha.accepted()[0];
    assert_eq!(push["vehicleId"], "enode-1");
    assert_eq!(push["vehicle"]["id"], "enode-1");
    assert_eq!(push["vehicle"]["batteryLevel"], 70);
    assert_eq!(push["internalVehicleId"], state.internal_id.to_string());

    // Only lastSeen moved: the body HA sees is the same, so nothing is pushed.
    let mut same = (*second.state).clone();
    same.received_at += chrono::Duration::seconds(30);
    let third = Arc::new(second.next(Arc::new(same)));
    outbox.on_change(Some(&second), &third);
    settle().await;
    assert_eq!(ha.accepted().len(), 1);
    assert_eq!(store.target(state.internal_id).map(|t| (t.settled_version, t.pending)), Some((1, None)));
}

#[tokio::test]
async fn during_an_outage_only_the_newest_state_waits_and_is_sent_once() {
    let (store, net) = (Arc::new(MemoryPushStore::default()), Arc::new(FakeNet::default()));
    let outbox = outbox(&store, &net, fast()).await;
    let state = sample_state("enode-1");
    let ha = net.add("http://ha/api/webhook/a", "enode-1");
    ha.answer(Answer::Fail(PushOutcome::Http5xx(500)));
    outbox.register(registration(&state, "http://ha/api/webhook/a", "enode-1")).await.expect("register");
    let mut current = Arc::new(Snapshot::new(Arc::new(state.clone())));
    for battery in [63.0, 64.0, 65.0] {
        current = change(&outbox, &current, battery);
    }
    eventually_here("the newest is stored as pending", || {
        store.target(state.internal_id).and_then(|t| t.pending).is_some_and(|p| p.version == 3)
    })
    .await;
    eventually_here("retried", || ha.attempts.load(Ordering::SeqCst) >= 3).await;
    let view = outbox.targets_of(state.user_id);
    assert_eq!(view[0].health.last_failure_reason.as_deref(), Some("http_500"));
    assert!(view[0].pending);

    ha.answer(Answer::Ok);
    eventually_here("delivered", || !ha.accepted().is_empty()).await;
    settle().await;
    assert_eq!(ha.batteries(), vec![Value::from(65)], "exactly the newest, once");
    let view = outbox.targets_of(state.user_id);
    assert_eq!((view[0].pending, view[0].health.consecutive_failures), (false, 0));
}

#[tokio::test]
async fn a_restart_delivers_what_was_pending_once() {
    let (store, net) = (Arc::new(MemoryPushStore::default()), Arc::new(FakeNet::default()));
    let state = sample_state("enode-1");
    let ha = net.add("http://ha/api/webhook/a", "enode-1");
    ha.answer(Answer::Fail(PushOutcome::ConnectRefused));
    let before = outbox(&store, &net, fast()).await;
    before.register(registration(&state, "http://ha/api/webhook/a", "enode-1")).await.expect("register");
    let first = Arc::new(Snapshot::new(Arc::new(state.clone())));
    let second = change(&before, &first, 71.0);
    change(&before, &second, 72.0);
    before.shutdown(Duration::from_secs(5)).await;
    assert_eq!(store.target(state.internal_id).and_then(|t| t.pending).map(|p| p.version), Some(2));

    ha.answer(Answer::Ok);
    let after = outbox(&store, &net, fast()).await;
    assert!(after.has_target(state.internal_id));
    eventually_here("delivered after the restart", || !ha.accepted().is_empty()).await;
    settle().await;
    assert_eq!(ha.batteries(), vec![Value::from(72)]);
    after.shutdown(Duration::from_secs(5)).await;

    // And again: nothing is owed any more.
    let again = outbox(&store, &net, fast()).await;
    settle().await;
    assert_eq!(ha.accepted().len(), 1);
    again.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_mismatch_is_retried_once_with_the_other_id_which_then_sticks() {
    let (store, net) = (Arc::new(MemoryPushStore::default()), Arc::new(FakeNet::default()));
    let outbox = outbox(&store, &net, fast()).await;
    let state = sample_state("enode-1");
    let internal = state.internal_id.to_string();
    // An old install: HA's entry holds the internal id, the registration named the Enode id.
    let ha = net.add("http://ha/api/webhook/a", &internal);
    outbox.register(registration(&state, "http://ha/api/webhook/a", "enode-1")).await.expect("register");
    let first = Arc::new(Snapshot::new(Arc::new(state.clone())));
    let second = change(&outbox, &first, 66.0);
    eventually_here("delivered under the other id", || ha.accepted().len() == 1).await;
    assert_eq!(ha.accepted()[0]["vehicleId"], internal.as_str());
    assert_eq!(ha.accepted()[0]["vehicle"]["id"], internal.as_str());
    assert_eq!(ha.attempts.load(Ordering::SeqCst), 2);
    change(&outbox, &second, 67.0);
    eventually_here("the next one", || ha.accepted().len() == 2).await;
    assert_eq!(ha.attempts.load(Ordering::SeqCst), 3, "the working form is used first now");
}

#[tokio::test]
async fn a_real_mismatch_is_recorded_as_one_and_not_retried() {
    let (store, net) = (Arc::new(MemoryPushStore::default()), Arc::new(FakeNet::default()));
    let outbox = outbox(&store, &net, fast()).await;
    let state = sample_state("enode-1");
    let ha = net.add("http://ha/api/webhook/a", "some-other-car");
    outbox.register(registration(&state, "http://ha/api/webhook/a", "enode-1")).await.expect("register");
    let first = Arc::new(Snapshot::new(Arc::new(state.clone())));
    change(&outbox, &first, 66.0);
    eventually_here("recorded", || store.target(state.internal_id).is_some_and(|t| t.health.consecutive_failures == 1))
        .await;
    settle().await;
    assert_eq!(ha.attempts.load(Ordering::SeqCst), 2, "both id forms once, then given up");
    let record = store.target(state.internal_id).expect("target");
    assert_eq!(record.health.last_failure_reason.as_deref(), Some("id_mismatch"));
    assert_eq!((record.settled_version, record.pending), (1, None));
}

#[tokio::test]
async fn a_slow_ha_does_not_hold_up_another() {
    let (store, net) = (Arc::new(MemoryPushStore::default()), Arc::new(FakeNet::default()));
    let outbox = outbox(&store, &net, PushConfig { max_concurrent: 2, ..fast() }).await;
    let slow_car = sample_state("slow");
    let fast_car = sample_state("fast");
    let slow = net.add("http://slow/api/webhook/s", "slow");
    let quick = net.add("http://quick/api/webhook/q", "fast");
    slow.answer(Answer::Slow(Duration::from_secs(30)));
    outbox.register(registration(&slow_car, "http://slow/api/webhook/s", "slow")).await.expect("register");
    outbox.register(registration(&fast_car, "http://quick/api/webhook/q", "fast")).await.expect("register");
    let mut s = Arc::new(Snapshot::new(Arc::new(slow_car)));
    for battery in [1.0, 2.0, 3.0, 4.0] {
        s = change(&outbox, &s, battery);
    }
    eventually_here("the slow one is in flight", || slow.attempts.load(Ordering::SeqCst) == 1).await;
    let f = Arc::new(Snapshot::new(Arc::new(fast_car)));
    change(&outbox, &f, 50.0);
    eventually_here("the quick one is served meanwhile", || quick.accepted().len() == 1).await;
    assert_eq!(slow.attempts.load(Ordering::SeqCst), 1, "one delivery in flight per target");
}

#[tokio::test]
async fn a_webhook_id_moved_to_another_vehicle_leaves_the_first() {
    let (store, net) = (Arc::new(MemoryPushStore::default()), Arc::new(FakeNet::default()));
    let outbox = outbox(&store, &net, fast()).await;
    let a = sample_state("car-a");
    let mut b = sample_state("car-b");
    b.user_id = a.user_id;
    outbox.register(registration(&a, "http://ha/api/webhook/w", "car-a")).await.expect("register");
    outbox.register(registration(&b, "http://ha/api/webhook/w", "car-b")).await.expect("register");
    assert!(!outbox.has_target(a.internal_id));
    assert!(outbox.has_target(b.internal_id));
    assert!(store.target(a.internal_id).is_none());
    let views = outbox.targets_of(a.user_id);
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].registration.vehicle_ref, "car-b");
    // Another user may use the same webhook id without touching this one.
    let mut c = sample_state("car-c");
    c.user_id = Uuid::new_v4();
    outbox.register(registration(&c, "http://other-ha/api/webhook/w", "car-c")).await.expect("register");
    assert!(outbox.has_target(b.internal_id) && outbox.has_target(c.internal_id));
}

#[tokio::test]
async fn a_store_outage_delays_nothing_and_loses_nothing() {
    let (store, net) = (Arc::new(MemoryPushStore::default()), Arc::new(FakeNet::default()));
    let outbox = outbox(&store, &net, fast()).await;
    let state = sample_state("enode-1");
    let ha = net.add("http://ha/api/webhook/a", "enode-1");
    ha.answer(Answer::Fail(PushOutcome::Timeout));
    outbox.register(registration(&state, "http://ha/api/webhook/a", "enode-1")).await.expect("register");
    store.set_down(true);
    let first = Arc::new(Snapshot::new(Arc::new(state.clone())));
    change(&outbox, &first, 80.0);
    eventually_here("attempted without the store", || ha.attempts.load(Ordering::SeqCst) >= 2).await;
    store.set_down(false);
    eventually_here("stored once the store is back", || {
        store.target(state.internal_id).and_then(|t| t.pending).is_some_and(|p| p.version == 1)
    })
    .await;
    ha.answer(Answer::Ok);
    eventually_here("delivered", || ha.accepted().len() == 1).await;
}

#[tokio::test]
async fn every_delivery_outcome_lands_in_the_vehicles_history_and_the_admin_views() {
    let (store, net) = (Arc::new(MemoryPushStore::default()), Arc::new(FakeNet::default()));
    let outbox = outbox(&store, &net, fast()).await;
    let state = sample_state("enode-1");
    let board = Arc::new(SnapshotBoard::new());
    board.publish(Arc::new(Snapshot::new(Arc::new(state.clone()))));
    let history = Arc::new(History::new(board));
    outbox.record_history_in(Arc::clone(&history));
    let ha = net.add("http://ha/api/webhook/a", "enode-1");
    ha.answer(Answer::Fail(PushOutcome::Http5xx(500)));
    outbox.register(registration(&state, "http://ha/api/webhook/a", "enode-1")).await.expect("register");
    let first = Arc::new(Snapshot::new(Arc::new(state.clone())));
    let second = change(&outbox, &first, 70.0);
    eventually_here("a failure recorded", || history.last(state.internal_id, EventKind::Push).is_some()).await;
    let failed = history.last(state.internal_id, EventKind::Push).unwrap();
    assert_eq!(failed.outcome, HistoryOutcome::Failed);
    ha.answer(Answer::Ok);
    change(&outbox, &second, 71.0);
    eventually_here("a delivery recorded", || {
        history.last(state.internal_id, EventKind::Push).is_some_and(|e| e.outcome == HistoryOutcome::Ok)
    })
    .await;
    assert_eq!(outbox.all_targets().len(), 1);
    assert_eq!(outbox.target(state.internal_id).map(|t| t.registration.vehicle_ref), Some("enode-1".to_owned()));
}
