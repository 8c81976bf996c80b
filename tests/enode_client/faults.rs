use std::time::{Duration, Instant};

use evconduit::enode::client::{BreakerState, EnodeError, Outcome, Priority};
use evconduit::enode::model::ChargeKind;
use evconduit::enode::sim::KnobsPatch;

use crate::helpers::{client, client_config, eventually, eventually_some, frozen, some_vehicle, start};

const VEHICLE_ROUTE: &str = "GET /vehicles/{id}";

fn outage(on: bool) -> KnobsPatch {
    KnobsPatch { outage: Some(on), ..KnobsPatch::default() }
}

#[tokio::test]
async fn an_outage_opens_the_breaker_and_its_end_closes_it() {
    let sim = start(frozen(4)).await;
    let mut config = client_config(&sim);
    config.breaker_failures = 3;
    config.breaker_open_for = Duration::from_secs(1);
    config.retry_max = 2;
    let enode = client(config);
    let id = some_vehicle(&sim);
    enode.get_vehicle(&id, Priority::User).await.unwrap();

    sim.set_faults(&outage(true));
    // Three attempts (the first and two retries), three failures: the breaker opens.
    let result = enode.get_vehicle(&id, Priority::User).await;
    assert!(matches!(result, Err(EnodeError::Upstream { status: 503 })), "{result:?}");
    assert_eq!(enode.breaker().state, BreakerState::Open);
    let seen = sim.stats().total_requests;

    // Open: calls fail at once with when to come back, and nothing reaches Enode.
    let started = Instant::now();
    for _ in 0..50 {
        match enode.get_vehicle(&id, Priority::Background).await {
            Err(EnodeError::Unavailable { retry_after }) => assert!(retry_after <= Duration::from_secs(1)),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(2), "fail fast: {:?}", started.elapsed());
    assert_eq!(sim.stats().total_requests, seen);
    assert_eq!(enode.stats().count(VEHICLE_ROUTE, Outcome::BreakerOpen), 50);

    // Still down when the breaker lets a probe through: one request, and it opens again (the
    // probe's own retry meets the open breaker and is not sent).
    eventually("a request reaching the simulator again", Duration::from_secs(10), || async {
        let result = enode.get_vehicle(&id, Priority::User).await;
        assert!(matches!(result, Err(EnodeError::Unavailable { .. })), "{result:?}");
        sim.stats().total_requests > seen
    })
    .await;
    assert_eq!(sim.stats().total_requests, seen + 1, "one probe");
    assert_eq!(sim.stats().count(VEHICLE_ROUTE, 503), 4);
    assert_eq!(enode.breaker().state, BreakerState::Open);

    // The outage ends: the next probe succeeds and the breaker closes.
    sim.set_faults(&outage(false));
    let vehicle = eventually_some("the vehicle read again", Duration::from_secs(10), || async {
        enode.get_vehicle(&id, Priority::User).await.ok()
    })
    .await;
    assert_eq!(vehicle.id, id);
    assert_eq!(enode.breaker().state, BreakerState::Closed);
    enode.get_vehicle(&id, Priority::Background).await.unwrap();
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_only() {
    let sim = start(frozen(4)).await;
    let mut config = client_config(&sim);
    config.retry_max = 3;
    // Not this test's subject: the breaker would open on the run of failures below.
    config.breaker_failures = 100;
    let enode = client(config);
    let id = some_vehicle(&sim);
    enode.get_vehicle(&id, Priority::User).await.unwrap();

    sim.set_faults(&KnobsPatch { error_rate: Some(1.0), ..KnobsPatch::default() });
    let read = enode.get_vehicle(&id, Priority::User).await;
    assert!(matches!(read, Err(EnodeError::Upstream { status: 500 })), "{read:?}");
    assert_eq!(sim.stats().count(VEHICLE_ROUTE, 500), 4, "the first try and three retries");

    // A charge command may have been carried out before the 500: it is sent once.
    let charge = enode.charge(&id, ChargeKind::Start).await;
    assert!(matches!(charge, Err(EnodeError::Upstream { status: 500 })), "{charge:?}");
    assert_eq!(sim.stats().count("POST /vehicles/{id}/charging", 500), 1);

    // Intermittent errors are ridden out.
    sim.set_faults(&KnobsPatch { error_rate: Some(0.2), ..KnobsPatch::default() });
    for _ in 0..20 {
        enode.get_vehicle(&id, Priority::User).await.unwrap();
    }
    assert!(enode.stats().retries >= 4);
}

#[tokio::test]
async fn timeouts_are_retried_for_reads_only() {
    let sim = start(frozen(4)).await;
    let mut config = client_config(&sim);
    config.retry_max = 1;
    config.request_timeout = Duration::from_millis(300);
    let enode = client(config);
    let id = some_vehicle(&sim);
    enode.get_vehicle(&id, Priority::User).await.unwrap();

    sim.set_faults(&KnobsPatch { latency_ms: Some(3_000), ..KnobsPatch::default() });
    assert!(matches!(enode.get_vehicle(&id, Priority::User).await, Err(EnodeError::Timeout)));
    assert!(matches!(enode.charge(&id, ChargeKind::Stop).await, Err(EnodeError::Timeout)));
    let stats = enode.stats();
    assert_eq!(stats.count(VEHICLE_ROUTE, Outcome::Timeout), 2);
    assert_eq!(stats.count("POST /vehicles/{id}/charging", Outcome::Timeout), 1);
}
