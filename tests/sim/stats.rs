use std::time::Duration;

use evconduit::enode::sim::StatsSnapshot;

use crate::helpers::{Api, control, frozen, start};

#[tokio::test]
async fn stats_count_routes_statuses_tokens_and_log_every_request() {
    let sim = start(frozen(3)).await;
    let api = Api::new(&sim).await;
    let id = sim.users()[0].vehicle_ids[0].clone();
    for _ in 0..3 {
        assert_eq!(api.get(&format!("/vehicles/{id}")).await.status(), 200);
    }
    api.get("/vehicles/8d1b5a8e-2c6e-4d0c-9d0e-0b5e1f7c9a11").await;
    api.get("/vehicles").await;

    let stats: StatsSnapshot =
        reqwest::get(format!("{}/_sim/stats", sim.base_url())).await.unwrap().json().await.unwrap();
    assert_eq!(stats.count("GET /vehicles/{id}", 200), 3);
    assert_eq!(stats.count("GET /vehicles/{id}", 404), 1);
    assert_eq!(stats.count_route("GET /vehicles"), 1);
    assert_eq!(stats.token_requests, 1);
    assert_eq!(stats.api_requests, 5);
    assert_eq!(stats.total_requests, 6);
    assert_eq!(stats.log.len(), 6);
    assert!(stats.log.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    assert_eq!(stats.max_api_requests_in_any_minute, 5);
    assert_eq!(stats.max_in_window(Duration::from_secs(60), |e| e.route == "GET /vehicles/{id}"), 4);

    let reset = control(&sim, "/stats/reset", serde_json::json!({})).await;
    assert_eq!(reset.status(), 204);
    let stats = sim.stats();
    assert_eq!(stats.total_requests, 0);
    assert!(stats.log.is_empty());
    // Controls are not counted.
    assert!(sim.stats().requests.is_empty());
}
