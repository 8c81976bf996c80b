use std::time::{Duration, Instant};

use evconduit::enode::client::Priority;
use evconduit::enode::sim::{LogEntry, SimConfig};

use crate::helpers::{client, client_config, frozen, some_vehicle, start};

/// Per minute: one request every 500 ms, so a request delayed on a loaded machine cannot bunch
/// up with the next one and fake an overrun.
const RATE: u32 = 120;
const BURST: u32 = 3;
const BACKGROUND_ROUTE: &str = "GET /vehicles/{id}";
const USER_ROUTE: &str = "GET /users/{userId}/vehicles";

/// Drives the client far above its budget with background refreshes, makes user calls in the
/// middle, and checks on the simulator's own request log that Enode never saw more than the
/// budget allows in any window. The run lasts 12 s, so instead of one 60 s window it checks
/// every 1 s and 5 s window against the same rate: at `RATE` per minute plus `BURST`, no 5 s
/// window may hold more than `RATE / 12 + BURST`.
#[tokio::test]
async fn the_budget_holds_in_every_window_and_user_calls_go_first() {
    let sim = start(SimConfig { rate_per_minute: RATE + BURST, ..frozen(8) }).await;
    let mut config = client_config(&sim);
    config.rate = RATE;
    config.burst = BURST;
    // Half, so that the background's own limit is plainly below the global one.
    config.background_share = 0.5;
    let enode = client(config);
    let id = some_vehicle(&sim);
    let user = sim.users().into_iter().next().expect("a user").id;
    let started = Instant::now();

    let background: Vec<_> = (0..2000)
        .map(|_| {
            let (enode, id) = (enode.clone(), id.clone());
            tokio::spawn(async move { enode.get_vehicle(&id, Priority::Background).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 2000 refreshes are queued; each user call still gets the next permit.
    for _ in 0..5 {
        let asked = Instant::now();
        let call = enode.list_user_vehicles(&user, Priority::User);
        let vehicles = tokio::time::timeout(Duration::from_secs(10), call).await.expect("user call not starved");
        assert!(!vehicles.expect("user call").is_empty());
        let waited = asked.elapsed();
        assert!(waited < Duration::from_secs(5), "a user call waited {waited:?}");
    }
    let background_done = background.iter().filter(|task| task.is_finished()).count();
    assert!(background_done < 100, "background waits: {background_done} of 2000 done");

    tokio::time::sleep(Duration::from_secs(12).saturating_sub(started.elapsed())).await;
    for task in &background {
        task.abort();
    }

    let stats = sim.stats();
    let every = |_: &LogEntry| true;
    let background_only = |e: &LogEntry| e.route == BACKGROUND_ROUTE;
    assert_eq!(stats.rate_limited, 0);
    assert!(stats.max_api_requests_in_any_minute <= u64::from(RATE + BURST));
    let in_5s = stats.max_in_window(Duration::from_secs(5), every);
    assert!(in_5s <= u64::from(RATE / 12 + BURST), "{in_5s} requests in 5 s");
    let in_1s = stats.max_in_window(Duration::from_secs(1), every);
    assert!(in_1s <= u64::from(RATE / 60 + BURST), "{in_1s} requests in 1 s");
    // Background alone: half the rate (5 in 5 s), plus its own burst (1), plus one request sent
    // later than its permit was taken: a background permit taken while a user call then went
    // first is kept and sent after it (`background_credit` in budget.rs), and a request may be
    // seen late by the simulator when this loaded machine stalls the test between send and
    // arrival. Either shifts one request towards the next; neither adds one to the global budget,
    // checked above. (Allowing 6 in 5 s, one run in many failed with 7.)
    for (window, most) in [(5, 5 + 1 + 1), (10, 10 + 1 + 1)] {
        let seen = stats.max_in_window(Duration::from_secs(window), background_only);
        assert!(seen <= most, "{seen} background requests in {window} s");
    }
    // Paced, not stopped: about 12 background requests in 12 s.
    assert!(stats.count_route(BACKGROUND_ROUTE) >= 8, "{}", stats.count_route(BACKGROUND_ROUTE));
    assert_eq!(stats.count(USER_ROUTE, 200), 5);

    let mine = enode.stats();
    assert!(mine.background_budget.waited >= 1);
    assert_eq!(mine.sent(), stats.total_requests, "every request the client sent took a permit");
}
