//! Charging sessions over HTTP: detected from a simulated charge (the Enode simulator's own
//! webhooks, XPENG quirks and a one-update flicker included), kept across a restart mid-charge,
//! paged exactly, with the odometer and the electricity rate the contract describes.

use std::time::Duration;

use evconduit::enode::sim::{AddVehicles, Command, EnodeSim, SetValues, SimConfig, SimHandle};
use evconduit::store::testing::TestDatabase;
use evconduit_actors::sessions::{ChargingSession, SessionWrite};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;
use crate::on_both_backends;

/// Generous: webhooks cross two servers on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// A simulator with a frozen clock and no fleet of its own, whose webhooks go to `app`.
async fn simulator_for(app: &TestApp) -> SimHandle {
    let config = SimConfig {
        vehicles: 0,
        time_factor: 0.0,
        tick_interval: Duration::from_millis(20),
        webhook_retry_initial: Duration::from_millis(50),
        webhook_retry_max: Duration::from_millis(500),
        ..SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim = EnodeSim::start(config, listener).await.expect("simulator");
    let http = reqwest::Client::new();
    let token: Value = http
        .post(sim.token_url())
        .basic_auth(sim.client_id(), Some(sim.client_secret()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let response = http
        .post(format!("{}/webhooks", sim.base_url()))
        .bearer_auth(token["access_token"].as_str().expect("access token"))
        .json(&json!({"url": app.url("/api/webhook/enode"), "secret": FIXTURE_SECRET}))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(response.status(), StatusCode::OK);
    sim
}

async fn sessions(app: &TestApp, key: &str, query: &str) -> Value {
    let (status, body) = app.get_json(key, &format!("/api/ha/charging/sessions{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn a_simulated_charge_with_a_flicker_is_one_session(db: TestDatabase) {
    let app = TestApp::start(config(&db)).await;
    let (user, key) = app.user_with_key(None, "sim@example.com", None).await;
    let (status, _) =
        app.post_json(&key, "/api/ha/electricity-rate", &json!({"cost_per_kwh": 0.25, "currency": "eur"})).await;
    assert_eq!(status, StatusCode::OK);
    let sim = simulator_for(&app).await;
    let request = AddVehicles { vendor: Some("XPENG".into()), count: Some(1) };
    let id = sim.add_vehicles(&user.to_string(), &request).expect("add vehicle")[0].id.clone();

    // A known start: unplugged at 40 %, limit 80 %.
    for command in [
        Command::Unplug,
        Command::SmartChargingOff,
        Command::Set(SetValues { battery_level: Some(40.0), charge_limit: Some(80), max_current: None }),
    ] {
        sim.command(&id, command).expect("command");
    }
    app.eventually_status(&key, &id, "unplugged at 40", |b| b["batteryLevel"] == 40 && b["isPluggedIn"] == false).await;

    let charging = |b: &Value| b["chargingState"] == "PLUGGED_IN:CHARGING";
    sim.command(&id, Command::Charge).expect("charge");
    app.eventually_status(&key, &id, "charging", charging).await;
    sim.advance(Duration::from_secs(40 * 60));
    // The flicker: one update says stopped (seen by the service), the next charging again.
    sim.command(&id, Command::Stop).expect("stop");
    app.eventually_status(&key, &id, "stopped", |b| b["chargingState"] == "PLUGGED_IN:STOPPED").await;
    sim.advance(Duration::from_secs(60));
    sim.command(&id, Command::Charge).expect("charge again");
    app.eventually_status(&key, &id, "charging again", charging).await;
    // Charge to the limit in simulated steps; stop as soon as it completes (a complete XPENG
    // reports UNPLUGGED), before the car decides to drive off.
    let mut complete = false;
    for _ in 0..60 {
        sim.advance(Duration::from_secs(10 * 60));
        let vehicle = sim.vehicle(&id).expect("vehicle");
        if vehicle.charge_state.battery_level == Some(80.0) && vehicle.charge_state.is_charging == Some(false) {
            assert_eq!(vehicle.charge_state.power_delivery_state.as_str(), "UNPLUGGED", "XPENG's quirk");
            complete = true;
            break;
        }
    }
    assert!(complete, "the simulated charge completes");
    let capacity = sim.vehicle(&id).and_then(|v| v.charge_state.battery_capacity).expect("capacity");

    let body = eventually_some("the session is listed", PATIENCE, || async {
        let body = sessions(&app, &key, "").await;
        (body["sessions"].as_array().is_some_and(|s| !s.is_empty())).then_some(body)
    })
    .await;
    let list = body["sessions"].as_array().expect("sessions");
    assert_eq!(list.len(), 1, "exactly one session: {body}");
    assert_eq!(body["has_more"], false);
    let session = &list[0];
    assert_eq!(session["vehicle_id"], id.as_str());
    assert_eq!(session["battery_level_start"], 40);
    assert_eq!(session["battery_level_end"], 80);
    let energy = session["energy_added_kwh"].as_f64().expect("energy");
    assert!((energy - capacity * 0.4).abs() < 1e-6, "energy {energy} for a {capacity} kWh battery");
    let cost = session["total_cost"].as_f64().expect("cost");
    assert!((cost - capacity * 0.4 * 0.25).abs() < 1e-3, "cost {cost}");
    assert_eq!(session["cost_per_kwh"], 0.25);
    assert_eq!(session["currency"], "EUR");
    assert!(session["session_id"].is_string() && session["created_at"].is_string());
    assert!(session["end_time"].as_str() > session["start_time"].as_str());
    assert!(session["location_lat"].is_number() && session["max_rate_kw"].is_number());

    // Older clients' prefix, same answer.
    let (_, v1) = app.get_json(&key, "/api/v1/ha/charging/sessions").await;
    assert_eq!(v1, body);
    sim.shutdown().await;
    app.stop().await;
    db.drop_db().await;
}
on_both_backends!(a_simulated_charge_with_a_flicker_is_one_session);

async fn a_restart_mid_charge_continues_the_session(db: TestDatabase) {
    let app = TestApp::start(config(&db)).await;
    let (user, key) = app.user_with_key(None, "restart@example.com", None).await;
    let user = user.to_string();
    let event = |minute: u32, battery: u32, pds: &str| {
        charge_event("car-1", &user, &format!("2026-11-25T18:{minute:02}:00Z"), battery, pds)
    };
    app.signed_webhook(&batch(&[event(0, 40, "UNPLUGGED")])).await;
    app.signed_webhook(&batch(&[event(1, 40, "PLUGGED_IN:CHARGING")])).await;
    app.signed_webhook(&batch(&[event(20, 44, "PLUGGED_IN:CHARGING")])).await;
    app.eventually_status(&key, "car-1", "charging at 44", |b| b["batteryLevel"] == 44).await;
    let store = app.store();
    eventually_some("the open session is stored", PATIENCE, || async {
        store.load_open_sessions().await.ok().filter(|open| !open.is_empty())
    })
    .await;
    app.stop().await;

    let app = TestApp::start(config(&db)).await;
    app.signed_webhook(&batch(&[event(40, 48, "PLUGGED_IN:CHARGING")])).await;
    app.signed_webhook(&batch(&[event(59, 52, "PLUGGED_IN:COMPLETE")])).await;
    let body = eventually_some("the session is listed", PATIENCE, || async {
        let body = sessions(&app, &key, "").await;
        (body["sessions"].as_array().is_some_and(|s| !s.is_empty())).then_some(body)
    })
    .await;
    let list = body["sessions"].as_array().expect("sessions");
    assert_eq!(list.len(), 1, "{body}");
    assert_eq!(list[0]["start_time"], "2026-11-25T18:01:00Z", "started before the restart");
    assert_eq!(list[0]["end_time"], "2026-11-25T18:59:00Z");
    assert_eq!(list[0]["energy_added_kwh"], 10.5);
    assert_eq!(list[0]["total_cost"], Value::Null, "no rate set, no cost");
    app.stop().await;
    db.drop_db().await;
}
on_both_backends!(a_restart_mid_charge_continues_the_session);

fn closed_session(user: Uuid, vehicle: Uuid, day: u32, hour: u32) -> ChargingSession {
    let start = chrono::DateTime::parse_from_rfc3339(&format!("2026-03-{day:02}T{hour:02}:00:00Z"))
        .expect("time")
        .with_timezone(&chrono::Utc);
    ChargingSession {
        id: Uuid::new_v4(),
        user_id: user,
        vehicle_id: vehicle,
        enode_vehicle_id: format!("enode-{vehicle}"),
        start_time: start,
        end_time: Some(start + chrono::Duration::minutes(90)),
        battery_level_start: 20.0,
        battery_level_end: 60.0,
        battery_capacity_kwh: Some(75.0),
        energy_added_kwh: Some(30.0),
        max_rate_kw: Some(11.0),
        avg_rate_kw: Some(10.5),
        rate_samples: 4,
        location_lat: None,
        location_lon: None,
        odometer_km: None,
        cost_per_kwh: None,
        currency: None,
        total_cost: None,
        created_at: start,
    }
}

async fn sessions_page_exactly_with_since_and_has_more(db: TestDatabase) {
    let app = TestApp::start(config(&db)).await;
    let (user, key) = app.user_with_key(None, "pages@example.com", None).await;
    let (other, other_key) = app.user_with_key(None, "someone-else@example.com", None).await;
    let (car_a, car_b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut mine: Vec<ChargingSession> =
        (1..=7).map(|day| closed_session(user, if day % 2 == 0 { car_a } else { car_b }, day, 8)).collect();
    let theirs = closed_session(other, Uuid::new_v4(), 3, 9);
    let writes: Vec<SessionWrite> =
        mine.iter().chain(std::iter::once(&theirs)).map(|s| SessionWrite::Upsert(Box::new(s.clone()))).rev().collect();
    app.store().write_sessions(&writes).await.expect("seed sessions");
    mine.sort_by_key(|s| s.start_time);
    let ids = |body: &Value| -> Vec<String> {
        body["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(|s| s["session_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let expected: Vec<String> = mine.iter().map(|s| s.id.to_string()).collect();

    // Walk the pages as the client does: `since` = the last start_time seen.
    let mut seen = Vec::new();
    let mut query = "?limit=3".to_owned();
    let mut pages = Vec::new();
    loop {
        let body = sessions(&app, &key, &query).await;
        seen.extend(ids(&body));
        pages.push((ids(&body).len(), body["has_more"].as_bool().expect("has_more")));
        let Some(last) = body["sessions"].as_array().and_then(|s| s.last()) else { break };
        if body["has_more"] == false {
            break;
        }
        query = format!("?limit=3&since={}", last["start_time"].as_str().expect("start_time"));
    }
    assert_eq!(pages, vec![(3, true), (3, true), (1, false)]);
    assert_eq!(seen, expected, "every session once, in order");

    // `since` is exclusive; "+00:00" arrives as " 00:00" when a client does not encode it.
    let body = sessions(&app, &key, "?since=2026-03-05T08:00:00+00:00").await;
    assert_eq!(ids(&body), expected[5..].to_vec());
    assert_eq!(body["has_more"], false);
    // Limits are clamped to 1..200.
    let body = sessions(&app, &key, "?limit=0").await;
    assert_eq!((ids(&body), body["has_more"].clone()), (expected[..1].to_vec(), json!(true)));
    assert_eq!(ids(&sessions(&app, &key, "?limit=100000").await), expected);
    // Bad input is a clear 400.
    let (status, body) = app.get_json(&key, "/api/ha/charging/sessions?since=last-week").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("since")), "{body}");
    // Each user sees only their own.
    assert_eq!(ids(&sessions(&app, &other_key, "").await), vec![theirs.id.to_string()]);
    app.stop().await;
    db.drop_db().await;
}
on_both_backends!(sessions_page_exactly_with_since_and_has_more);

async fn odometer_and_electricity_rate(db: TestDatabase) {
    let app = TestApp::start(config(&db)).await;
    let (user, key) = app.user_with_key(None, "odo@example.com", None).await;
    let (_, other_key) = app.user_with_key(None, "not-the-owner@example.com", None).await;
    let user = user.to_string();
    let odometer = |id: &str| format!("/api/ha/charging/{id}/odometer");

    // The vehicle exists but has never charged: no session.
    app.signed_webhook(&batch(&[charge_event("car-1", &user, "2026-11-25T18:00:00Z", 40, "UNPLUGGED")])).await;
    let body = app.eventually_status(&key, "car-1", "known", |b| b["batteryLevel"] == 40).await;
    let internal = body["internalId"].as_str().expect("internal id").to_owned();
    let (status, body) = app.post_json(&key, &odometer("car-1"), &json!({"odometer_km": 1000})).await;
    assert_eq!((status, body["detail"].as_str()), (StatusCode::NOT_FOUND, Some("no charging session")));

    app.signed_webhook(&batch(&[charge_event("car-1", &user, "2026-11-25T18:05:00Z", 41, "PLUGGED_IN:CHARGING")]))
        .await;
    // The open session is the latest: it takes the odometer, by either id, under either prefix.
    let body = eventually_some("the session is stored", PATIENCE, || async {
        let (status, body) = app.post_json(&key, &odometer("car-1"), &json!({"odometer_km": 24500.5})).await;
        (status == StatusCode::OK).then_some(body)
    })
    .await;
    assert_eq!(body["odometer_km"], 24500.5);
    let (status, body) =
        app.post_json(&key, &format!("/api/v1/ha/charging/{internal}/odometer"), &json!({"odometer_km": 24501})).await;
    assert_eq!((status, body["odometer_km"].clone()), (StatusCode::OK, json!(24501)));
    app.signed_webhook(&batch(&[charge_event("car-1", &user, "2026-11-25T19:05:00Z", 61, "PLUGGED_IN:COMPLETE")]))
        .await;
    let listed = eventually_some("the session is listed", PATIENCE, || async {
        let body = sessions(&app, &key, "").await;
        body["sessions"].as_array().and_then(|s| s.first().cloned())
    })
    .await;
    assert_eq!(listed["odometer_km"], 24501, "the detector's later writes keep the user's odometer");

    for bad in [json!({"odometer_km": 0}), json!({"odometer_km": -5}), json!({"odometer_km": "far"}), json!({})] {
        let (status, body) = app.post_json(&key, &odometer("car-1"), &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, _) = app.post_json(&other_key, &odometer("car-1"), &json!({"odometer_km": 1})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another user's vehicle does not exist for them");

    // The electricity rate.
    let (status, _) = app.get_json(&key, "/api/ha/electricity-rate").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for prefix in ["/api/ha", "/api/v1/ha"] {
        let (status, body) = app
            .post_json(&key, &format!("{prefix}/electricity-rate"), &json!({"cost_per_kwh": 1.5, "currency": "sek"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{prefix}: {body}");
        assert_eq!((body["cost_per_kwh"].clone(), body["currency"].clone()), (json!(1.5), json!("SEK")));
    }
    let (status, body) = app.get_json(&key, "/api/v1/ha/electricity-rate").await;
    assert_eq!((status, body["currency"].clone()), (StatusCode::OK, json!("SEK")));
    for bad in [
        json!({"cost_per_kwh": -0.1, "currency": "EUR"}),
        json!({"cost_per_kwh": 0.1, "currency": "EURO"}),
        json!({"cost_per_kwh": 0.1, "currency": "E1R"}),
        json!({"cost_per_kwh": "cheap", "currency": "EUR"}),
        json!({"currency": "EUR"}),
    ] {
        let (status, body) = app.post_json(&key, "/api/ha/electricity-rate", &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let response = app
        .http
        .post(app.url("/api/ha/electricity-rate"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (status, _) =
        app.post_json(&key, "/api/ha/electricity-rate", &json!({"cost_per_kwh": 0, "currency": "EUR"})).await;
    assert_eq!(status, StatusCode::OK, "free electricity is a rate too");
    app.stop().await;
    db.drop_db().await;
}
on_both_backends!(odometer_and_electricity_rate);
