use std::time::Duration;

use evconduit::enode::events::{Event, Parsed, parse_batch};
use evconduit::enode::model::{LinkSession, Page, Vehicle};
use serde_json::json;

use crate::helpers::{Api, assert_problem, eventually_some, frozen, start};
use crate::receiver::{Receiver, SECRET};

fn link_request(vendor: Option<&str>) -> serde_json::Value {
    let mut body = json!({
        "vendorType": "vehicle",
        "scopes": ["vehicle:read:data", "vehicle:read:location", "vehicle:control:charging"],
        "language": "en-US",
        "redirectUri": "http://localhost:9/linked",
    });
    if let Some(vendor) = vendor {
        body["vendor"] = json!(vendor);
    }
    body
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test]
async fn opening_the_link_discovers_then_updates_the_users_vehicles() {
    let sim = start(frozen(3)).await;
    let api = Api::new(&sim).await;
    let receiver = Receiver::start().await;
    let sub = api.post("/webhooks", &json!({"url": receiver.url, "secret": SECRET, "events": ["*"]})).await;
    assert_eq!(sub.status(), 200);

    let response = api.post("/users/new-user-1/link", &link_request(Some("XPENG"))).await;
    assert_eq!(response.status(), 200);
    let session: LinkSession = response.json().await.unwrap();
    assert!(session.link_url.starts_with(sim.base_url()), "{}", session.link_url);
    assert!(!session.link_token.is_empty());
    // The user exists from the first link call, still without vehicles.
    assert!(sim.users().iter().any(|u| u.id == "new-user-1" && u.vehicle_ids.is_empty()));

    let opened = no_redirects().get(&session.link_url).send().await.unwrap();
    assert_eq!(opened.status(), 302);
    assert_eq!(opened.headers()["location"], "http://localhost:9/linked");

    // Single use.
    let again = no_redirects().get(&session.link_url).send().await.unwrap();
    assert_problem(again, 410).await;

    let page: Page<Vehicle> = api.get("/users/new-user-1/vehicles").await.json().await.unwrap();
    assert!((1..=2).contains(&page.data.len()));
    assert!(page.data.iter().all(|v| v.vendor.as_deref() == Some("XPENG")));

    for vehicle in &page.data {
        let events = eventually_some("both events of the linked vehicle", Duration::from_secs(30), || async {
            let mine: Vec<_> = receiver.events().into_iter().filter(|e| e["vehicle"]["id"] == vehicle.id).collect();
            (mine.len() >= 2).then_some(mine)
        })
        .await;
        assert_eq!(events[0]["event"], "user:vehicle:discovered");
        assert_eq!(events[1]["event"], "user:vehicle:updated");
        let discovered = &events[0]["vehicle"];
        assert_eq!(discovered["information"]["brand"], "XPENG");
        assert!(discovered["chargeState"]["batteryLevel"].is_null());
        assert!(discovered["location"]["latitude"].is_null());
        assert!(discovered["odometer"]["distance"].is_null());
        let updated = &events[1];
        assert!(updated["vehicle"]["chargeState"]["batteryLevel"].is_u64());
        assert!(!updated["updatedFields"].as_array().unwrap().is_empty());
        assert_eq!(updated["user"]["id"], "new-user-1");
        assert!(
            updated["vehicle"]["lastSeen"].as_str() > discovered["lastSeen"].as_str(),
            "the full report is newer than the discovery"
        );
    }
    assert_eq!(receiver.bad_signatures(), 0);
    for delivery in receiver.deliveries() {
        let body = serde_json::to_vec(&delivery.events).unwrap();
        let parsed = parse_batch(&body).unwrap();
        assert!(parsed.iter().all(|p| matches!(p, Parsed::Event(e)
            if matches!(e, Event::VehicleDiscovered(_) | Event::VehicleUpdated(_)))));
    }
}

#[tokio::test]
async fn redirect_false_answers_json_and_relinking_restores_invalidated_vehicles() {
    let sim = start(frozen(0)).await;
    let api = Api::new(&sim).await;
    let session: LinkSession = api.post("/users/u2/link", &link_request(Some("KIA"))).await.json().await.unwrap();
    let outcome: serde_json::Value =
        reqwest::get(format!("{}?redirect=false", session.link_url)).await.unwrap().json().await.unwrap();
    assert_eq!(outcome["userId"], "u2");
    assert_eq!(outcome["vendor"], "KIA");
    let ids = outcome["vehicleIds"].as_array().unwrap().clone();
    assert!(!ids.is_empty());

    sim.invalidate_credentials("u2", Some("KIA")).unwrap();
    let relink: LinkSession = api.post("/users/u2/link", &link_request(Some("KIA"))).await.json().await.unwrap();
    let outcome: serde_json::Value =
        reqwest::get(format!("{}?redirect=false", relink.link_url)).await.unwrap().json().await.unwrap();
    assert_eq!(outcome["vehicleIds"].as_array().unwrap(), &ids, "the same vehicles come back");
}

#[tokio::test]
async fn bad_link_requests_are_400() {
    let sim = start(frozen(0)).await;
    let api = Api::new(&sim).await;
    assert_problem(api.post("/users/u3/link", &link_request(Some("DELOREAN"))).await, 400).await;
    let mut charger = link_request(None);
    charger["vendorType"] = json!("charger");
    assert_problem(api.post("/users/u3/link", &charger).await, 400).await;
    assert_problem(api.post("/users/u3/link", &json!({"vendorType": "vehicle"})).await, 400).await;
    assert_problem(reqwest::get(format!("{}/link/unknown-token", sim.base_url())).await.unwrap(), 404).await;
}
