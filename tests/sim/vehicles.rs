use std::collections::HashSet;

use evconduit::enode::model::{Page, Vehicle};

use crate::helpers::{Api, assert_problem, frozen, start};

async fn page(api: &Api, path: &str) -> Page<Vehicle> {
    let response = api.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_vehicle_has_every_contract_key() {
    let sim = start(frozen(5)).await;
    let api = Api::new(&sim).await;
    let first = page(&api, "/vehicles?pageSize=1").await;
    let id = &first.data[0].id;
    let response = api.get(&format!("/vehicles/{id}")).await;
    assert_eq!(response.status(), 200);
    let raw: serde_json::Value = response.json().await.unwrap();
    for key in [
        "id",
        "userId",
        "vendor",
        "lastSeen",
        "isReachable",
        "information",
        "chargeState",
        "smartChargingPolicy",
        "odometer",
        "location",
        "capabilities",
        "scopes",
    ] {
        assert!(raw.get(key).is_some(), "missing {key}: {raw}");
    }
    for key in [
        "batteryLevel",
        "range",
        "isPluggedIn",
        "isCharging",
        "isFullyCharged",
        "batteryCapacity",
        "chargeLimit",
        "chargeRate",
        "chargeTimeRemaining",
        "lastUpdated",
        "maxCurrent",
        "powerDeliveryState",
        "pluggedInChargerId",
    ] {
        assert!(raw["chargeState"].get(key).is_some(), "missing chargeState.{key}");
    }
    for key in [
        "information",
        "chargeState",
        "location",
        "odometer",
        "setMaxCurrent",
        "startCharging",
        "stopCharging",
        "smartCharging",
    ] {
        assert!(raw["capabilities"][key]["isCapable"].is_boolean(), "{key}");
    }
    // Integers stay integers, as Enode writes them.
    assert!(raw["chargeState"]["batteryLevel"].is_u64(), "{raw}");
}

#[tokio::test]
async fn unknown_vehicles_are_404_problems() {
    let sim = start(frozen(1)).await;
    let api = Api::new(&sim).await;
    assert_problem(api.get("/vehicles/not-a-uuid").await, 404).await;
    assert_problem(api.get("/vehicles/8d1b5a8e-2c6e-4d0c-9d0e-0b5e1f7c9a11").await, 404).await;
}

#[tokio::test]
async fn walking_every_page_returns_each_vehicle_once_newest_first() {
    let sim = start(frozen(237)).await;
    let api = Api::new(&sim).await;
    let mut seen = Vec::new();
    let mut path = "/vehicles?pageSize=50".to_owned();
    let mut pages = 0;
    loop {
        let p = page(&api, &path).await;
        pages += 1;
        assert!(p.data.len() <= 50);
        seen.extend(p.data.iter().map(|v| v.id.clone()));
        match p.pagination.after {
            Some(after) => path = format!("/vehicles?pageSize=50&after={after}"),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 237);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 237);

    // Back from the last page with `before` returns the previous pages exactly.
    let last = page(&api, "/vehicles?pageSize=100").await;
    let second = page(&api, &format!("/vehicles?pageSize=100&after={}", last.pagination.after.clone().unwrap())).await;
    assert_eq!(second.data[0].id, seen[100]);
    let back =
        page(&api, &format!("/vehicles?pageSize=100&before={}", second.pagination.before.clone().unwrap())).await;
    let back_ids: Vec<_> = back.data.iter().map(|v| v.id.clone()).collect();
    assert_eq!(back_ids, seen[..100]);
    assert_eq!(back.pagination.before, None);
}

#[tokio::test]
async fn user_listing_pages_only_that_users_vehicles() {
    let sim = start(frozen(60)).await;
    let api = Api::new(&sim).await;
    let user = sim.users().into_iter().max_by_key(|u| u.vehicle_ids.len()).unwrap();
    let mut seen = Vec::new();
    let mut path = format!("/users/{}/vehicles?pageSize=1", user.id);
    loop {
        let p = page(&api, &path).await;
        for v in &p.data {
            assert_eq!(v.user_id.as_deref(), Some(user.id.as_str()));
        }
        seen.extend(p.data.into_iter().map(|v| v.id));
        match p.pagination.after {
            Some(after) => path = format!("/users/{}/vehicles?pageSize=1&after={after}", user.id),
            None => break,
        }
    }
    let mut expected = user.vehicle_ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
    let unknown = page(&api, "/users/nobody/vehicles").await;
    assert!(unknown.data.is_empty());
}

#[tokio::test]
async fn default_page_size_is_50_and_bad_queries_are_400() {
    let sim = start(frozen(120)).await;
    let api = Api::new(&sim).await;
    assert_eq!(page(&api, "/vehicles").await.data.len(), 50);
    let first = page(&api, "/vehicles?pageSize=2").await;
    let after = first.pagination.after.unwrap();
    assert_problem(api.get(&format!("/vehicles?after={after}&before={after}")).await, 400).await;
    assert_problem(api.get("/vehicles?pageSize=0").await, 400).await;
    assert_problem(api.get("/vehicles?pageSize=abc").await, 400).await;
    assert_problem(api.get("/vehicles?after=garbage!").await, 400).await;
}
