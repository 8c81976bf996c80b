use chrono::{DateTime, Utc};
use evconduit::enode::model::Vehicle;
use evconduit::enode::sim::UserView;
use serde_json::json;

use crate::helpers::{Api, assert_problem, control, frozen, start};

#[tokio::test]
async fn the_sim_controls_work_over_http() {
    let sim = start(frozen(5)).await;
    let base = sim.base_url().to_owned();
    let users: Vec<UserView> = reqwest::get(format!("{base}/_sim/users")).await.unwrap().json().await.unwrap();
    assert_eq!(users.iter().map(|u| u.vehicle_ids.len()).sum::<usize>(), 5);
    let id = users[0].vehicle_ids[0].clone();

    let set: Vehicle = control(&sim, &format!("/vehicles/{id}/set"), json!({"batteryLevel": 41, "chargeLimit": 90}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(set.charge_state.battery_level, Some(41.0));
    control(&sim, &format!("/vehicles/{id}/smart-charging-off"), json!({})).await;
    let charging: Vehicle = control(&sim, &format!("/vehicles/{id}/charge"), json!({})).await.json().await.unwrap();
    assert_eq!(charging.charge_state.is_charging, Some(true));
    let unplugged: Vehicle = control(&sim, &format!("/vehicles/{id}/unplug"), json!({})).await.json().await.unwrap();
    assert_eq!(unplugged.charge_state.power_delivery_state.as_str(), "UNPLUGGED");
    assert_problem(control(&sim, &format!("/vehicles/{id}/explode"), json!({})).await, 400).await;
    assert_problem(control(&sim, "/vehicles/nope/plug", json!({})).await, 404).await;

    let added: Vec<Vehicle> = control(&sim, "/users/harness-user/vehicles", json!({"vendor": "TESLA", "count": 2}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(added.len(), 2);
    assert!(added.iter().all(|v| v.user_id.as_deref() == Some("harness-user")));

    let clock: serde_json::Value = reqwest::get(format!("{base}/_sim/clock")).await.unwrap().json().await.unwrap();
    let before: DateTime<Utc> = clock["now"].as_str().unwrap().parse().unwrap();
    let advanced: serde_json::Value =
        control(&sim, "/clock/advance", json!({"seconds": 600})).await.json().await.unwrap();
    let after: DateTime<Utc> = advanced["now"].as_str().unwrap().parse().unwrap();
    assert_eq!((after - before).num_seconds(), 600);

    let api = Api::new(&sim).await;
    assert_eq!(api.get("/vehicles").await.status(), 200);
    assert_eq!(control(&sim, "/tokens/expire", json!({})).await.status(), 204);
    assert_eq!(api.get("/vehicles").await.status(), 401);
}
