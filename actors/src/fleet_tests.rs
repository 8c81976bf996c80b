use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::*;
use crate::ports::SystemClock;
use crate::testing::{MemoryStore, eventually_here, sample_state, sample_vehicle};
use crate::write_behind::{WriteBehind, WriteBehindConfig};

struct Harness {
    fleet: Fleet,
    store: Arc<MemoryStore>,
    write_behind: WriteBehind,
}

async fn harness_with(store: Arc<MemoryStore>, config: FleetConfig) -> Harness {
    let write_behind = WriteBehind::new(store.clone(), WriteBehindConfig::default());
    let context =
        Arc::new(VehicleContext::new(Arc::new(SnapshotBoard::new()), write_behind.clone(), Arc::new(SystemClock)));
    let fleet = Fleet::start(context, config).await.unwrap();
    Harness { fleet, store, write_behind }
}

async fn harness() -> Harness {
    harness_with(Arc::new(MemoryStore::default()), FleetConfig::default()).await
}

/// Creates a vehicle owned by `user` through the fleet and waits for it: its internal id.
async fn created(h: &Harness, user: Uuid, enode_id: &str) -> Uuid {
    h.fleet.observe(user, sample_vehicle(enode_id), DataSource::Webhook, ObservationKind::Updated);
    eventually_here("created", || h.fleet.board().get(enode_id).is_some()).await;
    h.fleet.board().get(enode_id).map(|e| e.internal_id()).expect("on the board")
}

fn battery(fleet: &Fleet, id: &str) -> Option<f64> {
    fleet.board().get(id).and_then(|e| e.snapshot().state.vehicle.charge_state.battery_level)
}

fn updated(id: &str, level: f64, minutes_later: i64) -> Vehicle {
    let mut v = sample_vehicle(id);
    v.last_seen = v.last_seen.map(|t| t + chrono::Duration::minutes(minutes_later));
    v.charge_state.battery_level = Some(level);
    v
}

#[tokio::test]
async fn an_observation_creates_the_vehicle_readable_by_both_ids() {
    let h = harness().await;
    let user = Uuid::new_v4();
    h.fleet.observe(user, sample_vehicle("enode-1"), DataSource::Webhook, ObservationKind::Updated);
    eventually_here("vehicle on the board", || h.fleet.board().get("enode-1").is_some()).await;
    let state = h.fleet.board().get("enode-1").unwrap().snapshot().state.clone();
    assert_eq!(state.user_id, user);
    assert!(h.fleet.board().get(&state.internal_id.to_string()).is_some());
    h.write_behind.flush(Duration::from_secs(1)).await.unwrap();
    assert!(h.store.vehicle(state.internal_id).is_some());
}

#[tokio::test]
async fn the_same_new_vehicle_twice_is_created_once() {
    let h = harness().await;
    let user = Uuid::new_v4();
    h.fleet.observe(user, sample_vehicle("enode-1"), DataSource::Webhook, ObservationKind::Discovered);
    h.fleet.observe(user, updated("enode-1", 70.0, 1), DataSource::Webhook, ObservationKind::Updated);
    eventually_here("update applied", || battery(&h.fleet, "enode-1") == Some(70.0)).await;
    assert_eq!(h.fleet.stats().created, 1);
    assert_eq!(h.fleet.board().len(), 1);
}

#[tokio::test]
async fn another_owner_is_refused() {
    let h = harness().await;
    let id = created(&h, Uuid::new_v4(), "enode-1").await;
    let routed =
        h.fleet.observe(Uuid::new_v4(), updated("enode-1", 1.0, 5), DataSource::Webhook, ObservationKind::Updated);
    assert_eq!(routed, Routed::WrongOwner);
    // The refusal is in the vehicle's history, for the admin page.
    let refused = h.fleet.history().last(id, EventKind::Webhook).expect("the webhook recorded");
    assert_eq!(refused.outcome, Outcome::Refused);
    assert_eq!(refused.note.as_deref(), Some("wrong owner"));
}

#[tokio::test]
async fn only_a_vehicle_on_the_board_as_the_users_is_observed_owned() {
    let h = harness().await;
    let (owner, other) = (Uuid::new_v4(), Uuid::new_v4());
    let id = created(&h, owner, "enode-1").await;
    let source = DataSource::Webhook;
    let kind = ObservationKind::Updated;
    // New, or another user's: handed back as it came, nothing done or recorded.
    let back = h.fleet.observe_owned(owner, Box::new(updated("enode-2", 10.0, 1)), source, kind).unwrap_err();
    assert_eq!((back.id.as_str(), back.charge_state.battery_level), ("enode-2", Some(10.0)));
    let back = h.fleet.observe_owned(other, Box::new(updated("enode-1", 20.0, 1)), source, kind).unwrap_err();
    assert_eq!(back.charge_state.battery_level, Some(20.0));
    assert!(h.fleet.history().last(id, EventKind::Webhook).is_none());
    assert!(h.fleet.board().get("enode-2").is_none());
    // The owner's: applied, and in the vehicle's history like any webhook.
    h.fleet.observe_owned(owner, Box::new(updated("enode-1", 30.0, 2)), source, kind).expect("routed");
    eventually_here("update applied", || battery(&h.fleet, "enode-1") == Some(30.0)).await;
    assert_eq!(h.fleet.history().last(id, EventKind::Webhook).map(|e| e.outcome), Some(Outcome::Ok));
}

#[tokio::test]
async fn webhooks_about_known_vehicles_are_in_their_history_and_refreshes_are_not() {
    let h = harness().await;
    let user = Uuid::new_v4();
    let id = created(&h, user, "enode-1").await;
    // The first sight of a vehicle is `Created` (the supervisor's), not a webhook.
    assert!(h.fleet.history().last(id, EventKind::Webhook).is_none());
    // A refresh's result is recorded by the refresh scheduler, not here.
    h.fleet.observe(user, updated("enode-1", 40.0, 1), DataSource::Refresh, ObservationKind::Updated);
    assert!(h.fleet.history().last(id, EventKind::Webhook).is_none());
    let routed = h.fleet.observe(user, updated("enode-1", 50.0, 2), DataSource::Webhook, ObservationKind::Updated);
    assert_eq!(routed, Routed::Queued);
    let webhook = h.fleet.history().last(id, EventKind::Webhook).expect("the webhook recorded");
    assert_eq!(webhook.outcome, Outcome::Ok);
}

#[tokio::test]
async fn a_panicking_actor_restarts_with_its_state_and_others_keep_working() {
    let h = harness().await;
    let user = Uuid::new_v4();
    h.fleet.observe(user, updated("a", 55.0, 1), DataSource::Webhook, ObservationKind::Updated);
    h.fleet.observe(user, updated("b", 66.0, 1), DataSource::Webhook, ObservationKind::Updated);
    eventually_here("both created", || battery(&h.fleet, "a") == Some(55.0) && battery(&h.fleet, "b").is_some()).await;

    assert!(h.fleet.inject_panic("a", "test"));
    eventually_here("restart counted", || h.fleet.stats().restarts == 1).await;
    // Other vehicles were never touched.
    h.fleet.observe(user, updated("b", 67.0, 2), DataSource::Webhook, ObservationKind::Updated);
    eventually_here("b still applies updates", || battery(&h.fleet, "b") == Some(67.0)).await;
    // The restarted actor has the state it had, and applies new data.
    assert_eq!(battery(&h.fleet, "a"), Some(55.0));
    h.fleet.observe(user, updated("a", 56.0, 2), DataSource::Webhook, ObservationKind::Updated);
    eventually_here("a applies updates after restart", || battery(&h.fleet, "a") == Some(56.0)).await;
    let health = h.fleet.health("a").unwrap();
    assert_eq!(health.status, ActorStatus::Running);
    assert_eq!(health.total_restarts, 1);
    assert!(health.last_error.unwrap().contains("injected fault"));
}

#[tokio::test]
async fn too_many_restarts_degrade_the_vehicle_until_restarted() {
    let config = FleetConfig { restart_budget: 2, restart_window: Duration::from_secs(60), ..FleetConfig::default() };
    let h = harness_with(Arc::new(MemoryStore::default()), config).await;
    let user = Uuid::new_v4();
    h.fleet.observe(user, updated("a", 50.0, 1), DataSource::Webhook, ObservationKind::Updated);
    eventually_here("created", || battery(&h.fleet, "a").is_some()).await;
    for n in 1..=3u64 {
        h.fleet.inject_panic("a", "again");
        eventually_here("failure handled", || h.fleet.health("a").unwrap().total_restarts == n).await;
        // Wait for the restart (if any) before crashing it again.
        eventually_here("settled", || h.fleet.health("a").unwrap().status != ActorStatus::Restarting).await;
    }
    assert_eq!(h.fleet.health("a").unwrap().status, ActorStatus::Degraded);
    // Still readable, with its last state.
    assert_eq!(battery(&h.fleet, "a"), Some(50.0));
    // New data waits, parked, and is applied when an operator restarts the vehicle.
    h.fleet.observe(user, updated("a", 51.0, 2), DataSource::Webhook, ObservationKind::Updated);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(battery(&h.fleet, "a"), Some(50.0));
    assert!(h.fleet.restart(&h.fleet.board().get("a").unwrap()).await.unwrap());
    eventually_here("parked data applied", || battery(&h.fleet, "a") == Some(51.0)).await;
    assert_eq!(h.fleet.health("a").unwrap().status, ActorStatus::Running);
}

#[tokio::test]
async fn removal_stops_the_actor_and_deletes_the_row() {
    let h = harness().await;
    h.fleet.observe(Uuid::new_v4(), sample_vehicle("a"), DataSource::Webhook, ObservationKind::Updated);
    eventually_here("created", || h.fleet.board().get("a").is_some()).await;
    let id = h.fleet.board().get("a").unwrap().internal_id();
    h.write_behind.flush(Duration::from_secs(1)).await.unwrap();
    assert!(h.fleet.remove("a").await.unwrap());
    assert!(h.fleet.board().get("a").is_none());
    h.write_behind.flush(Duration::from_secs(1)).await.unwrap();
    assert!(h.store.vehicle(id).is_none());
    assert!(!h.fleet.remove("a").await.unwrap());
}

#[tokio::test]
async fn restore_brings_back_every_vehicle_before_any_event() {
    let store = Arc::new(MemoryStore::default());
    let mut states = Vec::new();
    for i in 0..50 {
        let mut s = sample_state(&format!("v{i}"));
        s.vehicle.charge_state.battery_level = Some(f64::from(i));
        store.insert(s.clone());
        states.push(s);
    }
    let h = harness_with(store.clone(), FleetConfig::default()).await;
    assert_eq!(h.fleet.restore(store.as_ref()).await.unwrap(), 50);
    assert!(h.fleet.is_restored());
    for s in &states {
        let snap = h.fleet.board().get(&s.internal_id.to_string()).unwrap().snapshot();
        assert_eq!(snap.state.vehicle, s.vehicle);
        assert_eq!(snap.state.source, DataSource::Restored);
    }
    // Restored vehicles are served without an actor task each; the first message starts one.
    assert_eq!(h.fleet.stats().live_actors, 0);
    assert!(states.iter().all(|s| h.fleet.health(&s.vehicle.id).unwrap().status == ActorStatus::Idle));
    let user = states[0].user_id;
    h.fleet.observe(user, updated("v0", 99.0, 10), DataSource::Webhook, ObservationKind::Updated);
    eventually_here("restored actor applies", || battery(&h.fleet, "v0") == Some(99.0)).await;
    assert_eq!(h.fleet.health("v0").unwrap().status, ActorStatus::Running);
    assert_eq!(h.fleet.stats().woken, 1);
}

#[tokio::test]
async fn credentials_invalidated_flags_every_vehicle_of_the_user() {
    let h = harness().await;
    let user = Uuid::new_v4();
    for id in ["a", "b"] {
        h.fleet.observe(user, sample_vehicle(id), DataSource::Webhook, ObservationKind::Updated);
    }
    eventually_here("created", || h.fleet.board().len() == 2).await;
    assert_eq!(h.fleet.credentials_invalidated(user, Some("TESLA")), 0);
    assert_eq!(h.fleet.credentials_invalidated(user, Some("xpeng")), 2);
    eventually_here("flagged", || h.fleet.board().for_user(user).iter().all(|e| e.snapshot().state.relink_required))
        .await;
}

#[tokio::test]
async fn shutdown_stops_actors() {
    let h = harness().await;
    h.fleet.observe(Uuid::new_v4(), sample_vehicle("a"), DataSource::Webhook, ObservationKind::Updated);
    eventually_here("created", || h.fleet.board().get("a").is_some()).await;
    h.fleet.shutdown(Duration::from_secs(2)).await;
    assert_eq!(h.fleet.board().get("a").unwrap().status(), ActorStatus::Stopped);
}

mod sleeping {
    use super::*;
    use crate::testing::ManualClock;

    fn sleepy(idle_after: Duration) -> FleetConfig {
        FleetConfig { idle_after: Some(idle_after), sweep_every: Duration::from_millis(5), ..FleetConfig::default() }
    }

    async fn harness_on(clock: Arc<dyn crate::ports::Clock>, config: FleetConfig) -> Harness {
        let store = Arc::new(MemoryStore::default());
        let write_behind = WriteBehind::new(store.clone(), WriteBehindConfig::default());
        let context = Arc::new(VehicleContext::new(Arc::new(SnapshotBoard::new()), write_behind.clone(), clock));
        let fleet = Fleet::start(context, config).await.unwrap();
        Harness { fleet, store, write_behind }
    }

    fn status(fleet: &Fleet, id: &str) -> ActorStatus {
        fleet.health(id).unwrap().status
    }

    /// A fleet on a manual clock whose actors sleep after a minute idle, with vehicle "a" (battery
    /// 50) created and its actor running.
    async fn vehicle_a_that_sleeps_after_a_minute() -> (Arc<ManualClock>, Harness, Uuid) {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let h = harness_on(clock.clone(), sleepy(Duration::from_secs(60))).await;
        let user = Uuid::new_v4();
        h.fleet.observe(user, updated("a", 50.0, 1), DataSource::Webhook, ObservationKind::Updated);
        eventually_here("created", || battery(&h.fleet, "a") == Some(50.0)).await;
        (clock, h, user)
    }

    #[tokio::test]
    async fn an_idle_actor_sleeps_and_its_next_message_wakes_it_with_its_state() {
        let (clock, h, user) = vehicle_a_that_sleeps_after_a_minute().await;
        // Not idle long enough yet: several sweeps leave it running.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(status(&h.fleet, "a"), ActorStatus::Running);

        clock.advance(chrono::Duration::seconds(61));
        eventually_here("asleep", || status(&h.fleet, "a") == ActorStatus::Idle).await;
        eventually_here("its task gone", || h.fleet.stats().live_actors == 0).await;
        assert_eq!(h.fleet.stats().slept, 1);
        assert_eq!(battery(&h.fleet, "a"), Some(50.0), "still served while asleep");

        h.fleet.observe(user, updated("a", 51.0, 2), DataSource::Webhook, ObservationKind::Updated);
        eventually_here("woken and applied", || battery(&h.fleet, "a") == Some(51.0)).await;
        assert_eq!(status(&h.fleet, "a"), ActorStatus::Running);
        assert_eq!(h.fleet.stats().woken, 1);
        // Older data is still refused after waking: the merge starts from the last snapshot.
        h.fleet.observe(user, updated("a", 10.0, 1), DataSource::Webhook, ObservationKind::Updated);
        h.fleet.observe(user, updated("a", 52.0, 3), DataSource::Webhook, ObservationKind::Updated);
        eventually_here("newest applied", || battery(&h.fleet, "a") == Some(52.0)).await;
    }

    /// The running actor on the board entry, by id, if the supervisor also knows it runs this
    /// vehicle (it finds a failed actor's vehicle that way). None when the entry holds none.
    fn running_actor(fleet: &Fleet, entry: &BoardEntry) -> Option<ractor::ActorId> {
        let internal_id = entry.internal_id();
        let id = entry.actor()?.get_id();
        let supervised = fleet.inner.registry.by_actor.get(&id).map(|v| *v.value());
        assert_eq!(supervised, Some(internal_id), "the supervisor knows the entry's actor");
        assert_eq!(fleet.stats().live_actors, 1, "and no other");
        Some(id)
    }

    #[tokio::test]
    async fn the_entry_holds_the_running_actor_through_sleep_wake_restart_and_removal() {
        let (clock, h, user) = vehicle_a_that_sleeps_after_a_minute().await;
        let entry = h.fleet.board().get("a").expect("on the board");
        let first = running_actor(&h.fleet, &entry);
        assert!(first.is_some());

        clock.advance(chrono::Duration::seconds(61));
        eventually_here("asleep", || status(&h.fleet, "a") == ActorStatus::Idle).await;
        assert!(entry.actor().is_none(), "a sleeping vehicle's entry holds no actor");

        h.fleet.observe(user, updated("a", 51.0, 2), DataSource::Webhook, ObservationKind::Updated);
        eventually_here("woken", || battery(&h.fleet, "a") == Some(51.0)).await;
        let woken = running_actor(&h.fleet, &entry);
        assert!(woken.is_some() && woken != first);

        h.fleet.inject_panic("a", "test");
        eventually_here("restarted", || h.fleet.stats().restarts == 1 && status(&h.fleet, "a") == ActorStatus::Running)
            .await;
        eventually_here("the failed actor gone", || h.fleet.stats().live_actors == 1).await;
        let restarted = running_actor(&h.fleet, &entry);
        assert!(restarted.is_some() && restarted != woken);
        h.fleet.observe(user, updated("a", 52.0, 3), DataSource::Webhook, ObservationKind::Updated);
        eventually_here("applied after the restart", || battery(&h.fleet, "a") == Some(52.0)).await;

        assert!(h.fleet.restart(&h.fleet.board().get("a").unwrap()).await.unwrap());
        eventually_here("the stopped actor gone", || h.fleet.stats().live_actors == 1).await;
        let again = running_actor(&h.fleet, &entry);
        assert!(again.is_some() && again != restarted);

        assert!(h.fleet.remove("a").await.unwrap());
        assert!(entry.actor().is_none(), "a removed vehicle's entry holds no actor");
        assert_eq!(h.fleet.stats().live_actors, 0);
    }

    /// An actor that fails on its first message, with nothing to do with any vehicle.
    struct FailsOnce;

    impl ractor::Actor for FailsOnce {
        type Msg = ();
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ractor::ActorRef<()>, _: ()) -> Result<(), ractor::ActorProcessingErr> {
            Ok(())
        }

        async fn handle(&self, _: ractor::ActorRef<()>, _: (), _: &mut ()) -> Result<(), ractor::ActorProcessingErr> {
            Err("failed while draining".into())
        }
    }

    /// The race this stands for: an actor fails while it drains to sleep, and a message wakes a
    /// new one before the supervisor hears of the failure. Staged directly: an actor registered
    /// as running vehicle "a" fails while "a" has another one running.
    #[tokio::test]
    async fn the_failure_of_an_actor_already_replaced_starts_no_second_one() {
        let (_clock, h, user) = vehicle_a_that_sleeps_after_a_minute().await;
        let entry = h.fleet.board().get("a").expect("on the board");
        let internal_id = entry.internal_id();
        let running = running_actor(&h.fleet, &entry);

        let supervisor = h.fleet.inner.supervisor.get_cell();
        let (stale, _) = ractor::Actor::spawn_linked(None, FailsOnce, (), supervisor).await.unwrap();
        h.fleet.inner.registry.by_actor.insert(stale.get_id(), internal_id);
        stale.cast(()).unwrap();
        eventually_here("the failure handled", || !h.fleet.inner.registry.by_actor.contains_key(&stale.get_id())).await;
        // Its handling done: the supervisor answers only after it.
        ractor::call!(h.fleet.inner.supervisor, |reply| SupervisorMsg::Sync { reply }).unwrap();

        assert_eq!(running_actor(&h.fleet, &entry), running, "the running actor is kept");
        assert_eq!(status(&h.fleet, "a"), ActorStatus::Running);
        let health = h.fleet.health("a").unwrap();
        assert_eq!((health.total_restarts, h.fleet.stats().restarts), (0, 0), "nothing restarted");
        assert_eq!(health.last_error.as_deref(), Some("failed while draining"));
        let noted = h.fleet.history().events(internal_id).into_iter().any(|e| {
            e.kind == EventKind::Restart && e.note.as_deref().is_some_and(|n| n.contains("a new actor already runs"))
        });
        assert!(noted, "the failure is in the vehicle's history, saying nothing was restarted");
        h.fleet.observe(user, updated("a", 51.0, 2), DataSource::Webhook, ObservationKind::Updated);
        eventually_here("still applied", || battery(&h.fleet, "a") == Some(51.0)).await;
    }

    /// Actors put to sleep at every sweep (idle_after 0), every 5 ms, while updates stream in:
    /// each vehicle ends on its last update, in memory and in the store.
    #[tokio::test]
    async fn no_update_is_lost_while_actors_sleep_and_wake_under_traffic() {
        let h = harness_on(Arc::new(SystemClock), sleepy(Duration::ZERO)).await;
        let user = Uuid::new_v4();
        let ids: Vec<String> = (0..5).map(|i| format!("v{i}")).collect();
        for round in 1..=200i64 {
            for id in &ids {
                h.fleet.observe(user, updated(id, round as f64, round), DataSource::Webhook, ObservationKind::Updated);
            }
            if round % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(7)).await;
            }
        }
        for id in &ids {
            eventually_here("last update applied", || battery(&h.fleet, id) == Some(200.0)).await;
        }
        assert!(h.fleet.stats().slept > 0 && h.fleet.stats().woken > 0, "{:?}", h.fleet.stats());
        h.write_behind.flush(Duration::from_secs(2)).await.unwrap();
        for id in &ids {
            let internal = h.fleet.board().get(id).unwrap().internal_id();
            assert_eq!(h.store.vehicle(internal).unwrap().vehicle.charge_state.battery_level, Some(200.0));
        }
        assert_eq!(h.fleet.stats().dropped, 0);
    }

    #[tokio::test]
    async fn a_degraded_vehicle_is_not_woken_by_messages() {
        let config = FleetConfig { restart_budget: 0, ..sleepy(Duration::from_secs(3600)) };
        let h = harness_on(Arc::new(SystemClock), config).await;
        let user = Uuid::new_v4();
        h.fleet.observe(user, updated("a", 50.0, 1), DataSource::Webhook, ObservationKind::Updated);
        eventually_here("created", || battery(&h.fleet, "a").is_some()).await;
        h.fleet.inject_panic("a", "boom");
        eventually_here("degraded", || status(&h.fleet, "a") == ActorStatus::Degraded).await;
        h.fleet.observe(user, updated("a", 51.0, 2), DataSource::Webhook, ObservationKind::Updated);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(status(&h.fleet, "a"), ActorStatus::Degraded);
        assert_eq!(battery(&h.fleet, "a"), Some(50.0));
        assert_eq!(h.fleet.stats().woken, 0);
    }
}

mod charging {
    use super::*;
    use crate::model::{ActionState, ChargeKind};
    use crate::ports::UpstreamError;
    use crate::testing::MemoryUpstream;
    use crate::vehicle::CommandConfig;

    async fn harness(upstream: Arc<MemoryUpstream>) -> Fleet {
        harness_with_config(upstream, FleetConfig::default()).await
    }

    async fn harness_with_config(upstream: Arc<MemoryUpstream>, config: FleetConfig) -> Fleet {
        let store = Arc::new(MemoryStore::default());
        let write_behind = WriteBehind::new(store, WriteBehindConfig::default());
        let mut context = VehicleContext::new(Arc::new(SnapshotBoard::new()), write_behind, Arc::new(SystemClock));
        context.upstream = upstream;
        context.commands = CommandConfig { poll_after: Duration::from_millis(20), poll_attempts: 5 };
        let fleet = Fleet::start(Arc::new(context), config).await.unwrap();
        fleet.observe(Uuid::new_v4(), sample_vehicle("car"), DataSource::Webhook, ObservationKind::Updated);
        eventually_here("created", || fleet.board().get("car").is_some()).await;
        fleet
    }

    fn action_state(fleet: &Fleet) -> Option<ActionState> {
        fleet.board().get("car")?.snapshot().state.charge_action.as_ref().map(|a| a.state)
    }

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_command_shows_pending_then_follows_the_webhook_to_confirmed() {
        let upstream = Arc::new(MemoryUpstream::default());
        let fleet = harness(upstream.clone()).await;
        let action = fleet.charge("car", ChargeKind::Start, WAIT).await.unwrap();
        assert_eq!(action.state, ActionState::Pending);
        eventually_here("pending in the snapshot", || action_state(&fleet) == Some(ActionState::Pending)).await;
        let body: serde_json::Value =
            serde_json::from_slice(&fleet.board().get("car").unwrap().snapshot().rendered().body).unwrap();
        assert_eq!(body["pendingAction"]["id"], action.id.as_str());

        let confirmed = upstream.resolve(&action.id, ActionState::Confirmed).unwrap();
        let user = fleet.board().get("car").unwrap().owner();
        fleet.action_updated(user, confirmed);
        eventually_here("confirmed", || action_state(&fleet) == Some(ActionState::Confirmed)).await;
        let body: serde_json::Value =
            serde_json::from_slice(&fleet.board().get("car").unwrap().snapshot().rendered().body).unwrap();
        assert_eq!(body["pendingAction"], serde_json::Value::Null);
        assert_eq!(body["lastAction"]["state"], "CONFIRMED");
    }

    #[tokio::test]
    async fn identical_commands_reuse_the_pending_action() {
        let upstream = Arc::new(MemoryUpstream::default());
        let fleet = harness(upstream.clone()).await;
        let (a, b) =
            tokio::join!(fleet.charge("car", ChargeKind::Start, WAIT), fleet.charge("car", ChargeKind::Start, WAIT));
        let c = fleet.charge("car", ChargeKind::Start, WAIT).await.unwrap();
        assert_eq!(a.unwrap().id, c.id);
        assert_eq!(b.unwrap().id, c.id);
        assert_eq!(upstream.charges(), 1);
    }

    #[tokio::test]
    async fn without_a_webhook_the_action_is_looked_up_a_bounded_number_of_times() {
        let upstream = Arc::new(MemoryUpstream::default());
        let fleet = harness(upstream.clone()).await;
        let action = fleet.charge("car", ChargeKind::Stop, WAIT).await.unwrap();
        upstream.resolve(&action.id, ActionState::Confirmed);
        eventually_here("confirmed by looking", || action_state(&fleet) == Some(ActionState::Confirmed)).await;
        let reads = upstream.action_reads();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(upstream.action_reads(), reads, "no more looks once final");

        // An action that never resolves is looked at `poll_attempts` times, then left alone.
        let second = fleet.charge("car", ChargeKind::Start, WAIT).await.unwrap();
        assert_ne!(second.id, action.id);
        tokio::time::sleep(Duration::from_millis(20 * (1 + 2 + 4 + 8 + 16) + 500)).await;
        assert_eq!(upstream.action_reads(), reads + 5);
    }

    /// Actors that may sleep at every sweep: a vehicle is woken by a command, and stays awake
    /// while it follows its action up (its timed looks would be lost asleep), then sleeps.
    #[tokio::test]
    async fn a_command_wakes_its_vehicle_and_keeps_it_awake_while_following_up() {
        let upstream = Arc::new(MemoryUpstream::default());
        let config = FleetConfig {
            idle_after: Some(Duration::ZERO),
            sweep_every: Duration::from_millis(5),
            ..Default::default()
        };
        let fleet = harness_with_config(upstream.clone(), config).await;
        eventually_here("asleep", || fleet.health("car").unwrap().status == ActorStatus::Idle).await;

        let action = fleet.charge("car", ChargeKind::Start, WAIT).await.unwrap();
        assert_eq!(action.state, ActionState::Pending);
        // Never resolved: looked at `poll_attempts` times although sweeps run every 5 ms.
        tokio::time::sleep(Duration::from_millis(20 * (1 + 2 + 4 + 8 + 16) + 500)).await;
        assert_eq!(upstream.action_reads(), 5);
        eventually_here("asleep again", || fleet.health("car").unwrap().status == ActorStatus::Idle).await;
        assert_eq!(action_state(&fleet), Some(ActionState::Pending));
    }

    #[tokio::test]
    async fn enode_refusals_come_back_typed() {
        let upstream = Arc::new(MemoryUpstream::default());
        let fleet = harness(upstream.clone()).await;
        upstream.fail_with(Some(UpstreamError::Rejected { detail: "Vehicle is not plugged in".into() }));
        match fleet.charge("car", ChargeKind::Start, WAIT).await {
            Err(CommandError::Upstream(UpstreamError::Rejected { detail })) => assert!(detail.contains("plugged")),
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert!(matches!(fleet.charge("nope", ChargeKind::Start, WAIT).await, Err(CommandError::NotFound)));
    }
}
