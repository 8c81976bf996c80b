use std::time::Duration;

use chrono::{TimeZone, Utc};
use evconduit::enode::model::{Page, Vehicle};
use evconduit::enode::sim::{AddVehicles, Command, SetValues, SimConfig, SimHandle};
use serde_json::json;

use crate::helpers::{Api, assert_problem, eventually_some, frozen, start};

fn seeded(seed: u64) -> SimConfig {
    SimConfig { seed, start_time: Some(Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()), ..frozen(40) }
}

async fn all_vehicles(sim: &SimHandle) -> String {
    let api = Api::new(sim).await;
    let page: Page<Vehicle> = api.get("/vehicles?pageSize=1000").await.json().await.unwrap();
    serde_json::to_string(&page.data).unwrap()
}

#[tokio::test]
async fn the_same_seed_replays_the_same_fleet_and_history() {
    let a = start(seeded(7)).await;
    let b = start(seeded(7)).await;
    let c = start(seeded(8)).await;
    assert_eq!(all_vehicles(&a).await, all_vehicles(&b).await);
    assert_ne!(all_vehicles(&a).await, all_vehicles(&c).await);
    assert_eq!(a.users(), b.users());
    // Six simulated hours later, reached in different steps, the fleets still agree.
    for _ in 0..6 {
        a.advance(Duration::from_secs(3600));
    }
    b.advance(Duration::from_secs(6 * 3600));
    let later = all_vehicles(&a).await;
    assert_eq!(later, all_vehicles(&b).await);
    assert_ne!(later, all_vehicles(&c).await);
}

#[tokio::test]
async fn on_a_fast_clock_a_charging_car_fills_up_and_reports() {
    let sim = start(SimConfig { time_factor: 600.0, ..frozen(4) }).await;
    let id = sim.users()[0].vehicle_ids[0].clone();
    sim.command(&id, Command::SmartChargingOff).unwrap();
    sim.command(
        &id,
        Command::Set(SetValues { battery_level: Some(30.0), charge_limit: Some(90), max_current: Some(16) }),
    )
    .unwrap();
    let before = sim.command(&id, Command::Charge).unwrap();
    assert_eq!(before.charge_state.is_charging, Some(true));
    let after = eventually_some("the battery charged", Duration::from_secs(30), || async {
        let now = sim.vehicle(&id)?;
        (now.charge_state.battery_level > before.charge_state.battery_level).then_some(now)
    })
    .await;
    assert!(after.last_seen > before.last_seen);
    assert!(after.charge_state.last_updated > before.charge_state.last_updated);
    assert!(after.charge_state.charge_time_remaining.is_some() || after.vendor.as_deref() == Some("KIA"));
}

fn at_limit_soon() -> Command {
    Command::Set(SetValues { battery_level: Some(79.0), charge_limit: Some(80), max_current: Some(16) })
}

#[tokio::test]
async fn xpeng_reports_unplugged_once_charging_completes() {
    let sim = start(frozen(0)).await;
    let api = Api::new(&sim).await;
    let add = |vendor: &str| AddVehicles { vendor: Some(vendor.to_owned()), count: Some(1) };
    let xpeng = sim.add_vehicles("quirky", &add("XPENG")).unwrap()[0].id.clone();
    let tesla = sim.add_vehicles("quirky", &add("TESLA")).unwrap()[0].id.clone();
    for id in [&xpeng, &tesla] {
        sim.command(id, Command::SmartChargingOff).unwrap();
        sim.command(id, at_limit_soon()).unwrap();
        sim.command(id, Command::Charge).unwrap();
    }
    sim.advance(Duration::from_secs(3600));

    let tesla = sim.vehicle(&tesla).unwrap();
    assert_eq!(tesla.charge_state.power_delivery_state.as_str(), "PLUGGED_IN:COMPLETE");
    assert_eq!(tesla.charge_state.is_plugged_in, Some(true));

    let quirk = sim.vehicle(&xpeng).unwrap();
    assert_eq!(quirk.charge_state.power_delivery_state.as_str(), "UNPLUGGED");
    assert_eq!(quirk.charge_state.is_plugged_in, Some(false));
    assert_eq!(quirk.charge_state.is_fully_charged, Some(true));
    assert_eq!(quirk.charge_state.is_charging, Some(false));
    // Enode believes what it sees: a START is refused as unplugged.
    let refused = api.post(&format!("/vehicles/{xpeng}/charging"), &json!({"action": "START"})).await;
    assert_problem(refused, 400).await;
}

#[tokio::test]
async fn nio_shares_no_location() {
    let sim = start(frozen(0)).await;
    let nio =
        sim.add_vehicles("someone", &AddVehicles { vendor: Some("NIO".to_owned()), count: Some(1) }).unwrap().remove(0);
    assert_eq!(nio.location.latitude, None);
    assert_eq!(nio.location.longitude, None);
    assert!(!nio.capabilities.location.is_capable);
}

#[tokio::test]
async fn a_sleeping_car_is_unreachable_and_silent_until_woken() {
    let sim = start(frozen(0)).await;
    let id = sim.add_vehicles("sleeper", &AddVehicles::default()).unwrap().remove(0).id;
    let awake = sim.vehicle(&id).unwrap();
    let asleep = sim.command(&id, Command::Sleep).unwrap();
    assert_eq!(asleep.is_reachable, Some(false));
    sim.advance(Duration::from_secs(3 * 3600));
    let still = sim.vehicle(&id).unwrap();
    assert_eq!(still.is_reachable, Some(false));
    assert_eq!(still.last_seen, awake.last_seen);
    let woken = sim.command(&id, Command::Wake).unwrap();
    assert_eq!(woken.is_reachable, Some(true));
    assert!(woken.last_seen > awake.last_seen);
}

#[tokio::test]
async fn deleting_a_user_or_a_vendor_removes_their_vehicles() {
    let sim = start(frozen(0)).await;
    let api = Api::new(&sim).await;
    let add = |vendor: &str| AddVehicles { vendor: Some(vendor.to_owned()), count: Some(2) };
    let bmw = sim.add_vehicles("u1", &add("BMW")).unwrap();
    let kia = sim.add_vehicles("u1", &add("KIA")).unwrap();
    assert_eq!(api.delete("/users/u1/vendors/BMW").await.status(), 204);
    assert_eq!(api.get(&format!("/vehicles/{}", bmw[0].id)).await.status(), 404);
    assert_eq!(api.get(&format!("/vehicles/{}", kia[0].id)).await.status(), 200);
    assert_eq!(api.delete("/users/u1").await.status(), 204);
    assert_eq!(api.get(&format!("/vehicles/{}", kia[1].id)).await.status(), 404);
    assert!(sim.users().is_empty());
}

#[tokio::test]
async fn a_hundred_thousand_vehicles_start_serve_and_tick() {
    let started = std::time::Instant::now();
    let sim = start(SimConfig { vehicles: 100_000, ..frozen(0) }).await;
    let built = started.elapsed();
    assert_eq!(sim.vehicle_count(), 100_000);
    let api = Api::new(&sim).await;
    let page: Page<Vehicle> = api.get("/vehicles?pageSize=1000").await.json().await.unwrap();
    assert_eq!(page.data.len(), 1000);
    let after = page.pagination.after.unwrap();
    let next: Page<Vehicle> = api.get(&format!("/vehicles?pageSize=1000&after={after}")).await.json().await.unwrap();
    assert_eq!(next.data.len(), 1000);
    let ticked = std::time::Instant::now();
    sim.advance(Duration::from_secs(600));
    eprintln!("100k: built in {built:?}, ten simulated minutes stepped in {:?}", ticked.elapsed());
    let users = sim.users();
    assert_eq!(users.iter().map(|u| u.vehicle_ids.len()).sum::<usize>(), 100_000);
}
