use std::time::{Duration, Instant};

use evconduit::enode::sim::{Faults, KnobsPatch, SimConfig};
use serde_json::json;

use crate::helpers::{Api, assert_problem, control, fetch_token, frozen, start};

#[tokio::test]
async fn over_the_rate_limit_answers_429_with_retry_after() {
    let sim = start(SimConfig { rate_per_minute: 5, ..frozen(2) }).await;
    let api = Api::new(&sim).await;
    for _ in 0..5 {
        assert_eq!(api.get("/vehicles").await.status(), 200);
    }
    let limited = api.get("/vehicles").await;
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_problem(limited, 429).await;
    // The token endpoint is not under the API limit.
    assert_eq!(fetch_token(&sim).await.status(), 200);
    let stats = sim.stats();
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.count("GET /vehicles", 200), 5);
    assert_eq!(stats.count("GET /vehicles", 429), 1);
    assert_eq!(stats.max_api_requests_in_any_minute, 6);

    // Lifting the limit at run time lets calls through at once.
    let knobs = control(&sim, "/faults", json!({"ratePerMinute": 0})).await;
    assert_eq!(knobs.status(), 200);
    assert_eq!(api.get("/vehicles").await.status(), 200);
}

/// A chosen `Retry-After`, exactly, for the next calls: what lets a client test check "429 with
/// `Retry-After: 2`" rather than whatever the sliding window happens to name.
#[tokio::test]
async fn forced_429s_carry_the_chosen_retry_after_then_run_out() {
    let sim = start(frozen(1)).await;
    let api = Api::new(&sim).await;
    let knobs = control(&sim, "/faults", json!({"rateLimitNext": {"count": 2, "retryAfterSecs": 2}})).await;
    let knobs: serde_json::Value = knobs.json().await.unwrap();
    assert_eq!(knobs["rateLimitNext"], json!({"count": 2, "retryAfterSecs": 2}));
    for _ in 0..2 {
        let limited = api.get("/vehicles").await;
        assert_eq!(limited.headers()["retry-after"], "2");
        assert_problem(limited, 429).await;
    }
    assert_eq!(api.get("/vehicles").await.status(), 200);
    assert_eq!(sim.knobs().rate_limit_next, None);
    assert_eq!(sim.stats().rate_limited, 2);
}

#[tokio::test]
async fn outage_makes_every_call_503_until_lifted() {
    let sim = start(frozen(2)).await;
    let api = Api::new(&sim).await;
    sim.set_faults(&KnobsPatch { outage: Some(true), ..KnobsPatch::default() });
    assert_problem(api.get("/vehicles").await, 503).await;
    assert_eq!(fetch_token(&sim).await.status(), 503);
    let lifted = control(&sim, "/faults", json!({"outage": false})).await;
    let knobs: serde_json::Value = lifted.json().await.unwrap();
    assert_eq!(knobs["outage"], false);
    assert_eq!(api.get("/vehicles").await.status(), 200);
    assert_eq!(sim.stats().count("GET /vehicles", 503), 1);
}

#[tokio::test]
async fn outage_can_be_set_at_start() {
    let sim = start(SimConfig { faults: Faults { outage: true, ..Faults::default() }, ..frozen(1) }).await;
    assert_eq!(fetch_token(&sim).await.status(), 503);
}

#[tokio::test]
async fn error_rate_answers_that_share_with_500() {
    let sim = start(frozen(1)).await;
    let api = Api::new(&sim).await;
    control(&sim, "/faults", json!({"errorRate": 1.0})).await;
    assert_problem(api.get("/vehicles").await, 500).await;
    control(&sim, "/faults", json!({"errorRate": 0.5})).await;
    let mut errors = 0;
    for _ in 0..100 {
        if api.get("/vehicles").await.status() == 500 {
            errors += 1;
        }
    }
    assert!((20..=80).contains(&errors), "{errors} of 100");
    control(&sim, "/faults", json!({"errorRate": 0.0})).await;
    assert_eq!(api.get("/vehicles").await.status(), 200);
}

#[tokio::test]
async fn latency_delays_every_call() {
    let sim = start(frozen(1)).await;
    let api = Api::new(&sim).await;
    control(&sim, "/faults", json!({"latencyMs": 300})).await;
    let started = Instant::now();
    assert_eq!(api.get("/vehicles").await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let knobs: serde_json::Value =
        reqwest::get(format!("{}/_sim/faults", sim.base_url())).await.unwrap().json().await.unwrap();
    assert_eq!(knobs["latencyMs"], 300);
}
