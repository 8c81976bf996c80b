use std::time::Duration;

use chrono::Utc;

use super::*;
use crate::model::PowerDeliveryState;
use crate::ports::SystemClock;
use crate::state::VehicleState;
use crate::testing::{MemorySessionStore, sample_state};

/// The fixture vehicle at `minutes` past its own time, charging or not, at `battery`.
fn at(base: &VehicleState, minutes: i64, pds: &str, battery: f64) -> VehicleState {
    let mut state = base.clone();
    let v = &mut state.vehicle;
    let time = v.last_seen.map(|t| t + chrono::Duration::minutes(minutes));
    v.last_seen = time;
    v.charge_state.last_updated = time;
    v.charge_state.power_delivery_state = PowerDeliveryState::new(pds);
    v.charge_state.is_charging = Some(pds == PowerDeliveryState::CHARGING);
    v.charge_state.battery_level = Some(battery);
    state
}

/// Feeds states to the detector as the vehicle's actor would: each as the next snapshot.
fn feed(detector: &SessionDetector, first: Option<Arc<Snapshot>>, states: Vec<VehicleState>) -> Arc<Snapshot> {
    let mut current = first;
    for state in states {
        let next = Arc::new(match &current {
            Some(previous) => previous.next(Arc::new(state)),
            None => Snapshot::new(Arc::new(state)),
        });
        detector.on_change(current.as_ref(), &next);
        current = Some(next);
    }
    current.expect("at least one state")
}

async fn detector(store: &Arc<MemorySessionStore>) -> SessionDetector {
    SessionDetector::load(store.clone(), Arc::new(SystemClock)).await.expect("load")
}

#[tokio::test]
async fn sessions_reach_the_store_with_the_rate_in_force_when_they_end() {
    let store = Arc::new(MemorySessionStore::default());
    let base = sample_state("car");
    let detector = detector(&store).await;
    detector
        .set_rate(base.user_id, ElectricityRate { cost_per_kwh: 0.3, currency: "SEK".into(), updated_at: Utc::now() });
    feed(
        &detector,
        None,
        vec![
            at(&base, 0, PowerDeliveryState::UNPLUGGED, 40.0),
            at(&base, 1, PowerDeliveryState::CHARGING, 40.0),
            at(&base, 60, PowerDeliveryState::CHARGING, 52.0),
            at(&base, 200, PowerDeliveryState::COMPLETE, 80.0),
        ],
    );
    detector.writer().flush(Duration::from_secs(1)).await.expect("flush");
    let sessions = store.sessions();
    let [s] = sessions.as_slice() else { panic!("one session: {sessions:?}") };
    assert_eq!(s.energy_added_kwh, Some(35.0));
    assert_eq!(s.total_cost, Some(10.5));
    assert_eq!(s.currency.as_deref(), Some("SEK"));
    assert_eq!(s.vehicle_id, base.internal_id);
    assert_eq!(s.enode_vehicle_id, "car");
}

#[tokio::test]
async fn a_restart_mid_charge_continues_the_stored_session() {
    let store = Arc::new(MemorySessionStore::default());
    let base = sample_state("car");
    let first = detector(&store).await;
    let last = feed(
        &first,
        None,
        vec![at(&base, 0, PowerDeliveryState::CHARGING, 40.0), at(&base, 60, PowerDeliveryState::CHARGING, 52.0)],
    );
    first.writer().flush(Duration::from_secs(1)).await.expect("flush");
    let open = store.sessions();
    assert_eq!(open.len(), 1);
    assert!(open[0].is_open());

    // A new process: the open session is loaded, the vehicle restored (not a change), charging goes on.
    let second = detector(&store).await;
    let mut restored = (*last.state).clone();
    restored.source = DataSource::Restored;
    let restored = Arc::new(Snapshot::new(Arc::new(restored)));
    second.on_change(None, &restored);
    feed(
        &second,
        Some(restored),
        vec![at(&base, 120, PowerDeliveryState::CHARGING, 64.0), at(&base, 200, PowerDeliveryState::COMPLETE, 80.0)],
    );
    second.writer().flush(Duration::from_secs(1)).await.expect("flush");
    let sessions = store.sessions();
    let [s] = sessions.as_slice() else { panic!("one session: {sessions:?}") };
    assert_eq!(s.id, open[0].id);
    assert!(!s.is_open());
    assert_eq!(s.energy_added_kwh, Some(35.0));
}

#[tokio::test]
async fn a_flicker_leaves_nothing_in_the_store() {
    let store = Arc::new(MemorySessionStore::default());
    let base = sample_state("car");
    let detector = detector(&store).await;
    let last = feed(&detector, None, vec![at(&base, 0, PowerDeliveryState::CHARGING, 50.0)]);
    // The opened session is stored...
    detector.writer().flush(Duration::from_secs(1)).await.expect("flush");
    assert_eq!(store.sessions().len(), 1);
    // ...and removed once it proves empty.
    feed(
        &detector,
        Some(last),
        vec![at(&base, 5, PowerDeliveryState::STOPPED, 50.0), at(&base, 10, PowerDeliveryState::STOPPED, 50.0)],
    );
    detector.writer().flush(Duration::from_secs(1)).await.expect("flush");
    assert!(store.sessions().is_empty());
}

#[tokio::test]
async fn only_a_vehicle_with_an_open_session_holds_a_tracker() {
    let store = Arc::new(MemorySessionStore::default());
    let detector = detector(&store).await;
    let (idle, charging) = (sample_state("idle"), sample_state("charging"));
    let restored = |state: VehicleState| {
        let mut state = state;
        state.source = DataSource::Restored;
        Arc::new(Snapshot::new(Arc::new(state)))
    };
    // A start with a fleet: one vehicle unplugged, one charging with no stored session.
    detector.on_change(None, &restored(at(&idle, 0, PowerDeliveryState::UNPLUGGED, 40.0)));
    let last = restored(at(&charging, 0, PowerDeliveryState::CHARGING, 40.0));
    detector.on_change(None, &last);
    assert_eq!(detector.trackers.len(), 1, "the unplugged vehicle has nothing to track");
    assert!(detector.open_session(charging.internal_id).is_some());

    // Its session ends: nothing is left to remember about it.
    feed(&detector, Some(last), vec![at(&charging, 90, PowerDeliveryState::COMPLETE, 80.0)]);
    assert!(detector.trackers.is_empty());
    detector.writer().flush(Duration::from_secs(1)).await.expect("flush");
    let sessions = store.sessions();
    let [s] = sessions.as_slice() else { panic!("one session: {sessions:?}") };
    assert!(!s.is_open());
    assert_eq!(s.vehicle_id, charging.internal_id);
}
