//! Conformance: charging sessions and electricity rates, on both backends.

use evconduit_actors::sessions::{ChargingSession, ElectricityRate, SessionWrite};

use super::*;

conformance!(
    sessions_round_trip_and_only_open_ones_restore,
    session_upsert_keeps_odometer_and_created_at,
    session_deletes_and_missing_users,
    session_batches_of_thousands,
    session_list_filters_orders_and_limits,
    latest_session_gets_the_odometer,
    electricity_rates_round_trip_and_replace,
);

fn session(user_id: Uuid, vehicle_id: Uuid, start: &str) -> ChargingSession {
    ChargingSession {
        id: Uuid::new_v4(),
        user_id,
        vehicle_id,
        enode_vehicle_id: format!("enode-{vehicle_id}"),
        start_time: at(start),
        end_time: None,
        battery_level_start: 40.0,
        battery_level_end: 52.5,
        battery_capacity_kwh: Some(87.5),
        energy_added_kwh: Some(10.938),
        max_rate_kw: Some(11.2),
        avg_rate_kw: Some(10.125),
        rate_samples: 7,
        location_lat: Some(59.3293),
        location_lon: Some(18.0686),
        odometer_km: Some(24312.5),
        cost_per_kwh: None,
        currency: None,
        total_cost: None,
        created_at: at("2026-03-01T12:00:00.123456Z"),
    }
}

fn closed(mut s: ChargingSession, end: &str) -> ChargingSession {
    s.end_time = Some(at(end));
    s.cost_per_kwh = Some(0.25);
    s.currency = Some("EUR".to_owned());
    s.total_cost = Some(2.7345);
    s
}

async fn write(store: &dyn Store, sessions: &[&ChargingSession]) {
    let batch: Vec<SessionWrite> = sessions.iter().map(|s| SessionWrite::Upsert(Box::new((*s).clone()))).collect();
    store.write_sessions(&batch).await.expect("write sessions");
}

async fn all(store: &dyn Store, user: Uuid) -> Vec<ChargingSession> {
    store.list_sessions(user, None, 200).await.expect("list")
}

async fn sessions_round_trip_and_only_open_ones_restore(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "charger@example.com").await;
    let open_one = session(user.id, Uuid::new_v4(), "2026-03-01T18:00:00.5Z");
    let done = closed(session(user.id, Uuid::new_v4(), "2026-03-01T10:00:00Z"), "2026-03-01T11:30:00.25Z");
    write(store.as_ref(), &[&open_one, &done]).await;

    assert_eq!(store.load_open_sessions().await.expect("open"), vec![open_one.clone()]);
    assert_eq!(all(store.as_ref(), user.id).await, vec![done.clone()], "only closed sessions are listed");

    // The open one closes: it is listed, no longer restored.
    let now_closed = closed(open_one.clone(), "2026-03-01T20:00:00Z");
    write(store.as_ref(), &[&now_closed]).await;
    assert!(store.load_open_sessions().await.expect("open").is_empty());
    assert_eq!(all(store.as_ref(), user.id).await, vec![done, now_closed]);
    store.write_sessions(&[]).await.expect("empty batch");
}

async fn session_upsert_keeps_odometer_and_created_at(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "odo@example.com").await;
    let first = session(user.id, Uuid::new_v4(), "2026-03-01T18:00:00Z");
    write(store.as_ref(), &[&first]).await;
    store.set_latest_session_odometer(first.vehicle_id, 30000.0).await.expect("odometer").expect("a session");

    // The detector writes the session again, knowing nothing of the user's correction.
    let mut later = closed(first.clone(), "2026-03-01T19:00:00Z");
    later.battery_level_end = 80.0;
    later.odometer_km = Some(1.0);
    later.created_at = at("2030-01-01T00:00:00Z");
    write(store.as_ref(), &[&later]).await;
    let stored = all(store.as_ref(), user.id).await;
    let expected = ChargingSession { odometer_km: Some(30000.0), created_at: first.created_at, ..later };
    assert_eq!(stored, vec![expected]);
}

async fn session_deletes_and_missing_users(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "flicker@example.com").await;
    let kept = session(user.id, Uuid::new_v4(), "2026-03-01T18:00:00Z");
    let flicker = session(user.id, Uuid::new_v4(), "2026-03-01T18:05:00Z");
    write(store.as_ref(), &[&kept, &flicker]).await;
    let orphan = session(Uuid::new_v4(), Uuid::new_v4(), "2026-03-01T18:10:00Z");
    store
        .write_sessions(&[
            SessionWrite::Delete(flicker.id),
            SessionWrite::Delete(Uuid::new_v4()),
            SessionWrite::Upsert(Box::new(orphan)),
        ])
        .await
        .expect("a delete of nothing and a missing user do not fail the batch");
    assert_eq!(store.load_open_sessions().await.expect("open"), vec![kept]);
}

/// A first start with a fleet opens a session for every charging vehicle at once: one batch of
/// thousands, written many rows to a statement. Every row lands with its own values, NULLs
/// included, a missing user's row is skipped, and a second batch updates them all.
async fn session_batches_of_thousands(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "fleet@example.com").await;
    let mut sessions: Vec<ChargingSession> = (0..1234)
        .map(|i| {
            let mut s = session(user.id, Uuid::new_v4(), "2026-03-01T18:00:00Z");
            s.battery_level_start = f64::from(i % 100);
            s.rate_samples = i;
            if i % 3 == 0 {
                s.location_lat = None;
                s.max_rate_kw = None;
            }
            s
        })
        .collect();
    let orphan = session(Uuid::new_v4(), Uuid::new_v4(), "2026-03-01T18:00:00Z");
    let batch = |sessions: &[ChargingSession]| -> Vec<SessionWrite> {
        sessions.iter().chain([&orphan]).map(|s| SessionWrite::Upsert(Box::new(s.clone()))).collect()
    };
    store.write_sessions(&batch(&sessions)).await.expect("write thousands");
    let by_id = |mut list: Vec<ChargingSession>| {
        list.sort_by_key(|s| s.id);
        list
    };
    let expected = by_id(sessions.clone());
    assert_eq!(by_id(store.load_open_sessions().await.expect("open")), expected);

    for s in &mut sessions {
        s.battery_level_end = 90.0;
        s.end_time = Some(at("2026-03-01T20:00:00Z"));
    }
    store.write_sessions(&batch(&sessions)).await.expect("update thousands");
    assert!(store.load_open_sessions().await.expect("open").is_empty());
    let listed = store.list_sessions(user.id, None, 2000).await.expect("list");
    assert_eq!(by_id(listed), by_id(sessions));
}

async fn session_list_filters_orders_and_limits(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "history@example.com").await;
    let other = create_user(store.as_ref(), "other@example.com").await;
    let (car_a, car_b) = (Uuid::new_v4(), Uuid::new_v4());
    let s1 = closed(session(user.id, car_a, "2026-03-01T08:00:00Z"), "2026-03-01T09:00:00Z");
    let s2 = closed(session(user.id, car_b, "2026-03-02T08:00:00.000001Z"), "2026-03-02T09:00:00Z");
    let s3 = closed(session(user.id, car_a, "2026-03-03T08:00:00Z"), "2026-03-03T09:00:00Z");
    // Same start as s3 on another car: the id breaks the tie.
    let s4 = closed(session(user.id, car_b, "2026-03-03T08:00:00Z"), "2026-03-03T08:30:00Z");
    let theirs = closed(session(other.id, Uuid::new_v4(), "2026-03-02T00:00:00Z"), "2026-03-02T01:00:00Z");
    let still_open = session(user.id, car_a, "2026-03-04T08:00:00Z");
    write(store.as_ref(), &[&s3, &theirs, &s1, &still_open, &s4, &s2]).await;

    let mut same_start = [s3.clone(), s4.clone()];
    same_start.sort_by_key(|s| s.id);
    let everything = vec![s1.clone(), s2.clone(), same_start[0].clone(), same_start[1].clone()];
    assert_eq!(all(store.as_ref(), user.id).await, everything);
    assert_eq!(store.list_sessions(user.id, None, 2).await.expect("limit"), everything[..2].to_vec());
    // `since` is exclusive, to the microsecond.
    let after_s1 = store.list_sessions(user.id, Some(s1.start_time), 200).await.expect("since");
    assert_eq!(after_s1, everything[1..].to_vec());
    let just_before_s2 = at("2026-03-02T08:00:00Z");
    assert_eq!(store.list_sessions(user.id, Some(just_before_s2), 1).await.expect("since"), vec![s2.clone()]);
    assert!(store.list_sessions(user.id, Some(at("2026-03-03T08:00:00Z")), 200).await.expect("since").is_empty());
    assert_eq!(all(store.as_ref(), other.id).await, vec![theirs]);
}

async fn latest_session_gets_the_odometer(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "latest@example.com").await;
    let car = Uuid::new_v4();
    assert_eq!(store.set_latest_session_odometer(car, 100.0).await.expect("none"), None);
    let older = closed(session(user.id, car, "2026-03-01T08:00:00Z"), "2026-03-01T09:00:00Z");
    let newer = closed(session(user.id, car, "2026-03-02T08:00:00Z"), "2026-03-02T09:00:00Z");
    let other_car = closed(session(user.id, Uuid::new_v4(), "2026-03-05T08:00:00Z"), "2026-03-05T09:00:00Z");
    write(store.as_ref(), &[&newer, &older, &other_car]).await;

    let updated = store.set_latest_session_odometer(car, 25000.5).await.expect("set").expect("a session");
    assert_eq!(updated, ChargingSession { odometer_km: Some(25000.5), ..newer.clone() });
    let stored = all(store.as_ref(), user.id).await;
    assert_eq!(stored, vec![older, updated, other_car]);
}

async fn electricity_rates_round_trip_and_replace(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "rate@example.com").await;
    let other = create_user(store.as_ref(), "rate2@example.com").await;
    assert_eq!(store.electricity_rate(user.id).await.expect("none"), None);
    let first =
        ElectricityRate { cost_per_kwh: 0.25, currency: "EUR".into(), updated_at: at("2026-03-01T12:00:00.5Z") };
    let second =
        ElectricityRate { cost_per_kwh: 1.875, currency: "SEK".into(), updated_at: at("2026-03-02T12:00:00Z") };
    let free = ElectricityRate { cost_per_kwh: 0.0, currency: "NOK".into(), updated_at: at("2026-03-02T12:00:00Z") };
    store.set_electricity_rate(user.id, &first).await.expect("set");
    assert_eq!(store.electricity_rate(user.id).await.expect("get"), Some(first));
    store.set_electricity_rate(user.id, &second).await.expect("replace");
    store.set_electricity_rate(other.id, &free).await.expect("set other");
    assert_eq!(store.electricity_rate(user.id).await.expect("get"), Some(second.clone()));
    let mut rates = store.load_electricity_rates().await.expect("load");
    rates.sort_by_key(|(id, _)| *id);
    let mut expected = vec![(user.id, second), (other.id, free)];
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(rates, expected);
}
