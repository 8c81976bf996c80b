use std::time::Duration;

use evconduit::enode::model::TokenResponse;
use evconduit::enode::sim::SimConfig;

use crate::helpers::{Api, assert_problem, fetch_token, frozen, start};

#[tokio::test]
async fn client_credentials_grant_gives_a_bearer_token() {
    let sim = start(frozen(3)).await;
    let response = fetch_token(&sim).await;
    assert_eq!(response.status(), 200);
    let token: TokenResponse = response.json().await.unwrap();
    assert_eq!(token.expires_in, 3599);
    assert_eq!(token.token_type, "bearer");
    assert_eq!(token.scope, "");
    let api = Api::new(&sim).await;
    assert_eq!(api.get("/vehicles").await.status(), 200);
}

#[tokio::test]
async fn wrong_credentials_or_grant_are_refused() {
    let sim = start(frozen(1)).await;
    let http = reqwest::Client::new();
    let wrong_secret = http
        .post(sim.token_url())
        .basic_auth(sim.client_id(), Some("nope"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), 401);
    let body: serde_json::Value = wrong_secret.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    let no_auth = http.post(sim.token_url()).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(no_auth.status(), 401);

    let wrong_grant = http
        .post(sim.token_url())
        .basic_auth(sim.client_id(), Some(sim.client_secret()))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_grant.status(), 400);
}

#[tokio::test]
async fn missing_unknown_and_expired_bearers_get_401_problems() {
    let sim = start(SimConfig { token_ttl: Duration::from_secs(2), ..frozen(1) }).await;
    let http = reqwest::Client::new();
    let none = http.get(format!("{}/vehicles", sim.base_url())).send().await.unwrap();
    assert_problem(none, 401).await;
    let unknown = http.get(format!("{}/vehicles", sim.base_url())).bearer_auth("made-up").send().await.unwrap();
    assert_problem(unknown, 401).await;

    let api = Api::new(&sim).await;
    assert_eq!(api.get("/vehicles").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_problem(api.get("/vehicles").await, 401).await;
    // A fresh token works again.
    let api = Api::new(&sim).await;
    assert_eq!(api.get("/vehicles").await.status(), 200);
}

#[tokio::test]
async fn expiring_tokens_by_hand_forces_a_renewal() {
    let sim = start(frozen(1)).await;
    let api = Api::new(&sim).await;
    assert_eq!(api.get("/vehicles").await.status(), 200);
    sim.expire_tokens();
    assert_problem(api.get("/vehicles").await, 401).await;
    assert_eq!(Api::new(&sim).await.get("/vehicles").await.status(), 200);
    assert_eq!(sim.stats().token_requests, 2);
}

#[tokio::test]
async fn a_wrong_enode_version_is_refused_and_versions_are_counted() {
    let sim = start(frozen(1)).await;
    let api = Api::new(&sim).await;
    let wrong = api
        .http
        .get(format!("{}/vehicles", api.base))
        .bearer_auth(&api.token)
        .header("Enode-Version", "2023-01-01")
        .send()
        .await
        .unwrap();
    assert_problem(wrong, 400).await;
    assert_eq!(api.get("/vehicles").await.status(), 200);
    let stats = sim.stats();
    assert_eq!(stats.enode_versions.get("2024-10-01"), Some(&1));
    assert_eq!(stats.enode_versions.get("2023-01-01"), Some(&1));
}
