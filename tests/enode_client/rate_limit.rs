use std::time::{Duration, Instant};

use evconduit::enode::client::{EnodeError, Outcome, Priority};
use evconduit::enode::sim::SimConfig;

use crate::helpers::{client, client_config, frozen, some_vehicle, start};

const VEHICLE_ROUTE: &str = "GET /vehicles/{id}";

/// The simulator's limit is a 60 s window, so its `Retry-After` here is close to a minute: longer
/// than the client lets a caller wait, so every call is told when to come back, and none reaches
/// Enode in the meantime.
#[tokio::test]
async fn a_429_stops_every_request_until_retry_after() {
    let sim = start(SimConfig { rate_per_minute: 3, ..frozen(4) }).await;
    let mut config = client_config(&sim);
    config.max_rate_limit_wait = Duration::from_secs(5);
    let enode = client(config);
    let id = some_vehicle(&sim);
    for _ in 0..3 {
        enode.get_vehicle(&id, Priority::User).await.unwrap();
    }
    let retry_after = match enode.get_vehicle(&id, Priority::User).await {
        Err(EnodeError::RateLimited { retry_after }) => retry_after,
        other => panic!("expected RateLimited, got {other:?}"),
    };
    assert!(retry_after > Duration::from_secs(5) && retry_after <= Duration::from_secs(60), "{retry_after:?}");
    let seen = sim.stats().total_requests;
    assert_eq!(sim.stats().rate_limited, 1);

    let until = Instant::now() + Duration::from_secs(2);
    let mut refused = 0;
    while Instant::now() < until {
        for priority in [Priority::User, Priority::Background] {
            match enode.get_vehicle(&id, priority).await {
                Err(EnodeError::RateLimited { retry_after: left }) => assert!(left <= retry_after),
                other => panic!("expected RateLimited, got {other:?}"),
            }
            refused += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sim.stats().total_requests, seen, "nothing reached Enode during the pause");
    let mine = enode.stats();
    assert_eq!(mine.count(VEHICLE_ROUTE, Outcome::RateLimitPaused), refused);
    assert_eq!(mine.count(VEHICLE_ROUTE, Outcome::RateLimited), 1);
}
