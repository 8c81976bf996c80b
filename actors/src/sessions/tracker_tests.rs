use chrono::{Duration, TimeZone};

use super::*;
use crate::model::{ChargeState, PowerDeliveryState};

const CAPACITY: f64 = 87.5;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 18, 0, 0).single().expect("valid time") + Duration::minutes(minutes)
}

fn obs(minutes: i64, plug: Plug, battery: f64, rate: Option<f64>) -> Observation {
    Observation {
        at: t(minutes),
        plug,
        battery: Some(battery),
        capacity_kwh: Some(CAPACITY),
        rate_kw: rate,
        lat: Some(59.3293),
        lon: Some(18.0686),
        odometer_km: Some(24312.5),
    }
}

fn charging(minutes: i64, battery: f64) -> Observation {
    obs(minutes, Plug::Charging, battery, Some(11.0))
}

fn owner() -> Owner<'static> {
    Owner { user_id: Uuid::nil(), vehicle_id: Uuid::nil(), enode_vehicle_id: "car" }
}

fn rate() -> Option<ElectricityRate> {
    Some(ElectricityRate { cost_per_kwh: 0.25, currency: "EUR".into(), updated_at: t(-1000) })
}

/// Feeds a stream of observations; returns every session closed and every discard.
fn run(tracker: &mut Tracker, stream: &[Observation]) -> (Vec<ChargingSession>, Vec<Uuid>) {
    let (mut closed, mut discarded) = (Vec::new(), Vec::new());
    for o in stream {
        match tracker.observe(o, &owner(), t(0), rate) {
            Step::Closed(s) => closed.push(s),
            Step::Discard(id) => discarded.push(id),
            Step::Progress(_) | Step::Nothing => {}
        }
    }
    (closed, discarded)
}

fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("a value");
    assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
}

#[test]
fn plug_states_from_what_vendors_report() {
    let cs = |pds: &str, charging: Option<bool>, plugged: Option<bool>, full: Option<bool>| ChargeState {
        power_delivery_state: PowerDeliveryState::new(pds),
        is_charging: charging,
        is_plugged_in: plugged,
        is_fully_charged: full,
        ..ChargeState::default()
    };
    assert_eq!(Plug::of(&cs("PLUGGED_IN:CHARGING", Some(false), Some(true), None)), Plug::Charging);
    assert_eq!(Plug::of(&cs("PLUGGED_IN:STOPPED", Some(true), Some(true), None)), Plug::Charging);
    assert_eq!(Plug::of(&cs("PLUGGED_IN:STOPPED", Some(false), Some(true), None)), Plug::PluggedIdle);
    assert_eq!(Plug::of(&cs("PLUGGED_IN:INITIALIZING", None, None, None)), Plug::PluggedIdle);
    assert_eq!(Plug::of(&cs("PLUGGED_IN:STOPPED", Some(false), Some(true), Some(true))), Plug::Complete);
    assert_eq!(Plug::of(&cs("PLUGGED_IN:COMPLETE", Some(false), Some(true), None)), Plug::Complete);
    assert_eq!(Plug::of(&cs("UNPLUGGED", Some(false), Some(false), Some(true))), Plug::Unplugged);
    assert_eq!(Plug::of(&cs("UNKNOWN", None, Some(false), None)), Plug::Unplugged);
    assert_eq!(Plug::of(&cs("UNKNOWN", Some(false), Some(true), None)), Plug::PluggedIdle);
    assert_eq!(Plug::of(&cs("UNKNOWN", None, None, None)), Plug::Unknown);
}

#[test]
fn a_plain_charge_is_one_session_with_energy_rates_and_cost() {
    let mut tracker = Tracker::default();
    let stream = [
        obs(0, Plug::Unplugged, 40.0, None),
        obs(5, Plug::Charging, 40.0, Some(7.0)),
        obs(65, Plug::Charging, 52.0, Some(11.0)),
        obs(125, Plug::Charging, 64.0, Some(11.0)),
        obs(185, Plug::Complete, 80.0, None),
    ];
    let (closed, discarded) = run(&mut tracker, &stream);
    assert!(discarded.is_empty());
    let [s] = closed.as_slice() else { panic!("one session: {closed:?}") };
    assert_eq!((s.start_time, s.end_time), (t(5), Some(t(185))));
    assert_eq!((s.battery_level_start, s.battery_level_end), (40.0, 80.0));
    assert_close(s.energy_added_kwh, 35.0);
    assert_close(s.max_rate_kw, 11.0);
    assert_close(s.avg_rate_kw, 9.667);
    assert_close(s.total_cost, 8.75);
    assert_eq!((s.cost_per_kwh, s.currency.as_deref()), (Some(0.25), Some("EUR")));
    assert_eq!((s.location_lat, s.location_lon, s.odometer_km), (Some(59.3293), Some(18.0686), Some(24312.5)));
    assert!(tracker.open_session().is_none());
}

#[test]
fn an_is_charging_flicker_does_not_split_the_session() {
    let mut tracker = Tracker::default();
    let stream = [
        charging(0, 40.0),
        charging(30, 46.0),
        // One update says stopped, the next says charging again.
        obs(32, Plug::PluggedIdle, 46.0, None),
        charging(60, 52.0),
        obs(61, Plug::PluggedIdle, 52.0, None),
        charging(90, 58.0),
        obs(200, Plug::Complete, 80.0, None),
    ];
    let (closed, discarded) = run(&mut tracker, &stream);
    assert!(discarded.is_empty());
    let [s] = closed.as_slice() else { panic!("one session: {closed:?}") };
    assert_eq!((s.start_time, s.end_time), (t(0), Some(t(200))));
    assert_close(s.energy_added_kwh, 35.0);
}

#[test]
fn a_one_update_charging_flicker_creates_no_session() {
    let mut tracker = Tracker::default();
    let stream = [
        obs(0, Plug::PluggedIdle, 50.0, None),
        // A vendor says "charging" for one update; nothing is added.
        charging(10, 50.0),
        obs(20, Plug::PluggedIdle, 50.0, None),
        obs(30, Plug::PluggedIdle, 50.0, None),
    ];
    let (closed, discarded) = run(&mut tracker, &stream);
    assert!(closed.is_empty(), "{closed:?}");
    assert_eq!(discarded.len(), 1, "the opened session is forgotten");
    assert!(tracker.open_session().is_none());
}

#[test]
fn xpeng_unplugged_after_complete_ends_the_session_once() {
    let mut tracker = Tracker::default();
    let stream = [
        charging(0, 40.0),
        charging(60, 52.0),
        charging(120, 64.0),
        charging(180, 76.0),
        // XPENG: at the limit it says UNPLUGGED though the cable is in...
        obs(200, Plug::Unplugged, 80.0, None),
        // ...and may say COMPLETE, or UNPLUGGED again, afterwards.
        obs(210, Plug::Complete, 80.0, None),
        obs(220, Plug::Unplugged, 80.0, None),
        obs(300, Plug::PluggedIdle, 80.0, None),
    ];
    let (closed, discarded) = run(&mut tracker, &stream);
    assert!(discarded.is_empty());
    let [s] = closed.as_slice() else { panic!("one session: {closed:?}") };
    assert_eq!(s.end_time, Some(t(200)));
    assert_close(s.energy_added_kwh, 35.0);
}

#[test]
fn unplugging_mid_charge_ends_it_there() {
    let mut tracker = Tracker::default();
    let (closed, _) = run(&mut tracker, &[charging(0, 40.0), charging(60, 52.0), obs(70, Plug::Unplugged, 54.0, None)]);
    let [s] = closed.as_slice() else { panic!("one session: {closed:?}") };
    assert_eq!(s.end_time, Some(t(70)));
    assert_eq!(s.battery_level_end, 54.0);
    assert_close(s.energy_added_kwh, 12.25);
}

#[test]
fn a_lasting_stop_ends_the_session_when_it_stopped() {
    let mut tracker = Tracker::default();
    let stream = [
        charging(0, 40.0),
        charging(60, 52.0),
        obs(70, Plug::PluggedIdle, 54.0, None),
        // The same observation again (a repeated webhook) proves nothing...
        obs(70, Plug::PluggedIdle, 54.0, None),
    ];
    let (closed, _) = run(&mut tracker, &stream);
    assert!(closed.is_empty(), "a repeat is not a second observation");
    // ...a later one does: the session ended at the first.
    let (closed, _) = run(&mut tracker, &[obs(80, Plug::PluggedIdle, 54.0, None)]);
    let [s] = closed.as_slice() else { panic!("one session: {closed:?}") };
    assert_eq!(s.end_time, Some(t(70)));
    assert_eq!(s.battery_level_end, 54.0);
}

#[test]
fn unplugged_after_a_pause_ends_at_the_pause() {
    let mut tracker = Tracker::default();
    let stream = [
        charging(0, 40.0),
        charging(60, 52.0),
        obs(70, Plug::PluggedIdle, 53.0, None),
        obs(300, Plug::Unplugged, 52.0, None),
    ];
    let (closed, _) = run(&mut tracker, &stream);
    let [s] = closed.as_slice() else { panic!("one session: {closed:?}") };
    assert_eq!(s.end_time, Some(t(70)));
    assert_eq!(s.battery_level_end, 53.0);
}

#[test]
fn repeated_observations_are_one_rate_sample() {
    let mut tracker = Tracker::default();
    let stream = [
        obs(0, Plug::Charging, 40.0, Some(10.0)),
        obs(0, Plug::Charging, 40.0, Some(10.0)),
        obs(10, Plug::Charging, 42.0, Some(4.0)),
        obs(10, Plug::Charging, 42.0, Some(4.0)),
    ];
    run(&mut tracker, &stream);
    let open = tracker.open_session().expect("open");
    assert_eq!(open.rate_samples, 2);
    assert_close(open.avg_rate_kw, 7.0);
}

#[test]
fn without_rate_reports_the_average_is_energy_over_time() {
    let mut tracker = Tracker::default();
    let stream = [obs(0, Plug::Charging, 40.0, None), obs(120, Plug::Complete, 60.0, None)];
    let (closed, _) = run(&mut tracker, &stream);
    let [s] = closed.as_slice() else { panic!("one session: {closed:?}") };
    assert_eq!(s.max_rate_kw, None);
    assert_close(s.avg_rate_kw, 8.75);
}

#[test]
fn no_rate_set_means_no_cost() {
    let mut tracker = Tracker::default();
    tracker.observe(&charging(0, 40.0), &owner(), t(0), || None);
    let step = tracker.observe(&obs(60, Plug::Complete, 50.0, None), &owner(), t(0), || None);
    let Step::Closed(s) = step else { panic!("closed: {step:?}") };
    assert_eq!((s.total_cost, s.cost_per_kwh, s.currency), (None, None, None));
    assert_close(s.energy_added_kwh, 8.75);
}

#[test]
fn an_unknown_battery_level_waits_for_a_known_one() {
    let mut tracker = Tracker::default();
    let unknown = Observation { battery: None, ..charging(0, 0.0) };
    assert_eq!(tracker.observe(&unknown, &owner(), t(0), rate), Step::Nothing);
    let (closed, _) = run(&mut tracker, &[charging(10, 41.0), obs(70, Plug::Complete, 50.0, None)]);
    assert_eq!(closed[0].battery_level_start, 41.0);
    assert_eq!(closed[0].start_time, t(10));
}

#[test]
fn a_restart_mid_session_continues_the_same_session() {
    let mut before = Tracker::default();
    run(&mut before, &[charging(0, 40.0), obs(60, Plug::Charging, 52.0, Some(9.0))]);
    let stored = before.open_session().cloned().expect("open session");
    assert_eq!(stored.rate_samples, 2);

    // The service restarts: the open session comes back from the store.
    let mut after = Tracker::resume(stored.clone());
    // The restored vehicle state was already counted before the restart.
    assert_eq!(after.restored(&charging(60, 52.0), &owner(), t(0)), Step::Nothing);
    let (closed, _) = run(&mut after, &[charging(120, 64.0), obs(200, Plug::Complete, 80.0, None)]);
    let [s] = closed.as_slice() else { panic!("one session: {closed:?}") };
    assert_eq!(s.id, stored.id);
    assert_eq!(s.start_time, t(0));
    assert_close(s.energy_added_kwh, 35.0);
    assert_eq!(s.rate_samples, 3);
    assert_close(s.avg_rate_kw, 10.333);
}

#[test]
fn restored_while_charging_without_a_stored_session_opens_one() {
    let mut tracker = Tracker::default();
    assert!(matches!(tracker.restored(&charging(0, 40.0), &owner(), t(0)), Step::Progress(_)));
    assert_eq!(tracker.restored(&obs(0, Plug::Unplugged, 40.0, None), &owner(), t(0)), Step::Nothing);
    assert!(tracker.open_session().is_some());
}
