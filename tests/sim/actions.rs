use std::time::Duration;

use evconduit::enode::model::{ActionState, ChargeAction, ChargeKind, Vehicle};
use evconduit::enode::sim::{Command, SimConfig};
use serde_json::json;

use crate::helpers::{Api, assert_problem, frozen, start};

fn config() -> SimConfig {
    SimConfig { action_delay: Duration::from_secs(30), ..frozen(6) }
}

async fn charge(api: &Api, id: &str, action: &str) -> reqwest::Response {
    api.post(&format!("/vehicles/{id}/charging"), &json!({ "action": action })).await
}

async fn action(api: &Api, id: &str) -> ChargeAction {
    let response = api.get(&format!("/vehicles/actions/{id}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn start_is_pending_then_confirmed_and_the_vehicle_charges() {
    let sim = start(config()).await;
    let api = Api::new(&sim).await;
    let id = sim.startable_vehicle().expect("a startable vehicle");
    let response = charge(&api, &id, "START").await;
    assert_eq!(response.status(), 200);
    let started: ChargeAction = response.json().await.unwrap();
    assert_eq!(started.state, ActionState::Pending);
    assert_eq!(started.kind, ChargeKind::Start);
    assert_eq!(started.target_id, id);
    assert_eq!(started.target_type, "vehicle");
    assert!(started.completed_at.is_none());

    // Not yet: the delay is simulated time and the clock stands still.
    sim.tick();
    assert_eq!(action(&api, &started.id).await.state, ActionState::Pending);

    sim.advance(Duration::from_secs(31));
    let done = action(&api, &started.id).await;
    assert_eq!(done.state, ActionState::Confirmed);
    assert!(done.completed_at.is_some());
    let vehicle: Vehicle = api.get(&format!("/vehicles/{id}")).await.json().await.unwrap();
    assert_eq!(vehicle.charge_state.is_charging, Some(true));
    assert_eq!(vehicle.charge_state.power_delivery_state.as_str(), "PLUGGED_IN:CHARGING");
    assert!(vehicle.charge_state.charge_rate.is_some());

    // Already charging now: a second START is a precondition failure.
    assert_problem(charge(&api, &id, "START").await, 400).await;
    // STOP works the same way round.
    let stop: ChargeAction = charge(&api, &id, "STOP").await.json().await.unwrap();
    sim.advance(Duration::from_secs(31));
    assert_eq!(action(&api, &stop.id).await.state, ActionState::Confirmed);
    let vehicle = sim.vehicle(&id).unwrap();
    assert_eq!(vehicle.charge_state.is_charging, Some(false));
    assert_eq!(vehicle.charge_state.power_delivery_state.as_str(), "PLUGGED_IN:STOPPED");
}

#[tokio::test]
async fn unplugged_or_wrong_state_is_400_and_smart_charging_is_422() {
    let sim = start(config()).await;
    let api = Api::new(&sim).await;
    let id = sim.startable_vehicle().expect("a startable vehicle");
    assert_problem(charge(&api, &id, "STOP").await, 400).await;
    sim.command(&id, Command::Unplug).unwrap();
    assert_problem(charge(&api, &id, "START").await, 400).await;
    sim.command(&id, Command::Plug).unwrap();
    sim.command(&id, Command::Stop).unwrap();
    sim.command(&id, Command::SmartChargingOn).unwrap();
    assert_problem(charge(&api, &id, "START").await, 422).await;
    assert_problem(charge(&api, &id, "SOMETIMES").await, 400).await;
    assert_problem(charge(&api, "8d1b5a8e-2c6e-4d0c-9d0e-0b5e1f7c9a11", "START").await, 404).await;
}

#[tokio::test]
async fn a_pending_action_of_the_same_kind_is_reused_another_kind_cancels_it() {
    let sim = start(config()).await;
    let api = Api::new(&sim).await;
    let id = sim.startable_vehicle().expect("a startable vehicle");
    let first: ChargeAction = charge(&api, &id, "START").await.json().await.unwrap();
    let again: ChargeAction = charge(&api, &id, "START").await.json().await.unwrap();
    assert_eq!(first.id, again.id);

    // Make STOP legal (the car charges now), then send it: the pending START is cancelled.
    sim.command(&id, Command::Charge).unwrap();
    let stop: ChargeAction = charge(&api, &id, "STOP").await.json().await.unwrap();
    assert_ne!(stop.id, first.id);
    assert_eq!(action(&api, &first.id).await.state, ActionState::Cancelled);
    assert_eq!(action(&api, &stop.id).await.state, ActionState::Pending);
}

#[tokio::test]
async fn cancel_works_once_then_409() {
    let sim = start(config()).await;
    let api = Api::new(&sim).await;
    let id = sim.startable_vehicle().expect("a startable vehicle");
    let started: ChargeAction = charge(&api, &id, "START").await.json().await.unwrap();
    let cancel = api.post(&format!("/vehicles/actions/{}/cancel", started.id), &json!({})).await;
    assert_eq!(cancel.status(), 200);
    let cancelled: ChargeAction = cancel.json().await.unwrap();
    assert_eq!(cancelled.state, ActionState::Cancelled);
    assert_problem(api.post(&format!("/vehicles/actions/{}/cancel", started.id), &json!({})).await, 409).await;
    // A cancelled START never starts charging.
    sim.advance(Duration::from_secs(60));
    assert_eq!(sim.vehicle(&id).unwrap().charge_state.is_charging, Some(false));
    assert_problem(api.get("/vehicles/actions/nope").await, 404).await;
}

#[tokio::test]
async fn an_action_fails_when_the_car_is_unplugged_before_it_confirms() {
    let sim = start(config()).await;
    let api = Api::new(&sim).await;
    let id = sim.startable_vehicle().expect("a startable vehicle");
    let started: ChargeAction = charge(&api, &id, "START").await.json().await.unwrap();
    sim.command(&id, Command::Unplug).unwrap();
    sim.advance(Duration::from_secs(31));
    let failed = action(&api, &started.id).await;
    assert_eq!(failed.state, ActionState::Failed);
    assert!(failed.failure_reason.is_some());
}

#[tokio::test]
async fn refresh_hint_is_204() {
    let sim = start(config()).await;
    let api = Api::new(&sim).await;
    let id = sim.startable_vehicle().expect("a startable vehicle");
    let response = api.post(&format!("/vehicles/{id}/refresh-hint"), &json!({})).await;
    assert_eq!(response.status(), 204);
    assert_problem(api.post("/vehicles/8d1b5a8e-2c6e-4d0c-9d0e-0b5e1f7c9a11/refresh-hint", &json!({})).await, 404)
        .await;
}
