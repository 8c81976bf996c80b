use std::sync::Arc;
use std::time::Duration;

use evconduit::config::Secret;
use evconduit::enode::client::{EnodeError, Priority};
use evconduit::enode::sim::SimConfig;
use futures::future::join_all;

use crate::helpers::{client, client_config, frozen, some_vehicle, start};

const VEHICLE_ROUTE: &str = "GET /vehicles/{id}";

#[tokio::test]
async fn a_thousand_concurrent_calls_cause_one_token_request() {
    let sim = start(frozen(10)).await;
    let enode = client(client_config(&sim));
    let id = Arc::new(some_vehicle(&sim));
    let calls = (0..1000).map(|_| {
        let (enode, id) = (enode.clone(), Arc::clone(&id));
        tokio::spawn(async move { enode.get_vehicle(&id, Priority::User).await })
    });
    for result in join_all(calls).await {
        result.expect("task").expect("call");
    }
    let stats = sim.stats();
    assert_eq!(stats.token_requests, 1);
    assert_eq!(stats.count(VEHICLE_ROUTE, 200), 1000);
    assert_eq!(enode.stats().token_renewals, 1);
}

#[tokio::test]
async fn an_expiring_token_is_renewed_without_a_401() {
    // Tokens live 2 s (wall clock); the client renews from 1.8 s on, without waiting for a 401.
    let sim = start(SimConfig { token_ttl: Duration::from_secs(2), ..frozen(4) }).await;
    let enode = client(client_config(&sim));
    let id = some_vehicle(&sim);
    enode.get_vehicle(&id, Priority::User).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let calls = (0..100).map(|_| enode.get_vehicle(&id, Priority::User));
    for result in join_all(calls).await {
        result.unwrap();
    }
    let stats = sim.stats();
    assert_eq!(stats.token_requests, 2);
    assert_eq!(stats.count(VEHICLE_ROUTE, 401), 0, "renewed before it expired, not after a 401");
}

#[tokio::test]
async fn a_revoked_token_is_renewed_once_for_everyone() {
    let sim = start(frozen(4)).await;
    let enode = client(client_config(&sim));
    let id = some_vehicle(&sim);
    enode.get_vehicle(&id, Priority::User).await.unwrap();
    // Enode can revoke a token before its time; every call holding it then gets a 401.
    sim.expire_tokens();
    let calls = (0..100).map(|_| enode.get_vehicle(&id, Priority::User));
    for result in join_all(calls).await {
        result.unwrap();
    }
    let stats = sim.stats();
    assert_eq!(stats.token_requests, 2, "one renewal however many calls met the 401");
    let refused = stats.count(VEHICLE_ROUTE, 401);
    assert!((1..=100).contains(&refused), "{refused}");
    assert_eq!(stats.count(VEHICLE_ROUTE, 200), 101);
}

#[tokio::test]
async fn a_second_401_after_renewal_is_a_typed_error() {
    // Every token the simulator mints is already expired: renewing cannot help.
    let sim = start(SimConfig { token_ttl: Duration::ZERO, ..frozen(2) }).await;
    let enode = client(client_config(&sim));
    let result = enode.get_vehicle(&some_vehicle(&sim), Priority::User).await;
    assert!(matches!(result, Err(EnodeError::Unauthorized)), "{result:?}");
    let stats = sim.stats();
    assert_eq!((stats.token_requests, stats.count(VEHICLE_ROUTE, 401)), (2, 2));
}

#[tokio::test]
async fn wrong_credentials_fail_typed_without_showing_the_secret() {
    let sim = start(frozen(2)).await;
    let mut config = client_config(&sim);
    config.client_secret = Secret::new("wrong-secret-value");
    let enode = client(config);
    let result = enode.get_vehicle(&some_vehicle(&sim), Priority::User).await;
    let error = result.expect_err("refused");
    assert!(matches!(error, EnodeError::Unauthorized), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("wrong-secret-value"));
    // Refused credentials are not retried, and no API call went out without a token.
    let stats = sim.stats();
    assert_eq!((stats.token_requests, stats.api_requests), (1, 0));
}
