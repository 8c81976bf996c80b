use std::time::{Duration, Instant};

use evconduit::enode::client::{EnodeError, Outcome, Priority};
use evconduit::enode::sim::{KnobsPatch, SimConfig};

use crate::helpers::{client, client_config, frozen, some_vehicle, start};

const VEHICLE_ROUTE: &str = "GET /vehicles/{id}";

/// Enode answers 429 with `Retry-After`; until then no request of any caller may reach it, and
/// then calls resume by themselves.
///
/// The simulator's limit is a sliding 60 s window, so its `Retry-After` is the time until the
/// oldest request leaves the window: a full minute here, and this test takes that long. The
/// client's own bound on waiting (`max_rate_limit_wait`, 30 s by default) splits the pause in two:
/// while more than 30 s are left, callers are told at once when to come back; after that they
/// wait, and go out when the pause ends.
#[tokio::test]
async fn a_429_stops_every_request_until_retry_after_then_calls_resume() {
    let sim = start(SimConfig { rate_per_minute: 2, ..frozen(4) }).await;
    let config = client_config(&sim);
    let max_wait = config.max_rate_limit_wait;
    let enode = client(config);
    let id = some_vehicle(&sim);
    for _ in 0..2 {
        enode.get_vehicle(&id, Priority::User).await.unwrap();
    }
    let retry_after = match enode.get_vehicle(&id, Priority::User).await {
        Err(EnodeError::RateLimited { retry_after }) => retry_after,
        other => panic!("expected RateLimited, got {other:?}"),
    };
    let paused_at = Instant::now();
    assert!(retry_after > max_wait && retry_after <= Duration::from_secs(60), "{retry_after:?}");
    // From here on the simulator would take anything: whatever holds requests back is the client.
    sim.set_faults(&KnobsPatch { rate_per_minute: Some(0), ..KnobsPatch::default() });

    // Callers keep coming, users and background alike, every 250 ms for the whole pause.
    let mut told_to_wait = 0;
    let mut waiting = Vec::new();
    let mut priorities = [Priority::User, Priority::Background].into_iter().cycle();
    while paused_at.elapsed() < retry_after {
        let left = retry_after.saturating_sub(paused_at.elapsed());
        let (enode, id, priority) = (enode.clone(), id.clone(), priorities.next().unwrap_or(Priority::User));
        let call = tokio::spawn(async move {
            let result = enode.get_vehicle(&id, priority).await;
            (result, Instant::now())
        });
        // Well above the 30 s bound: refused at once, with the pause left.
        if left > max_wait + Duration::from_secs(2) {
            let (result, _) = tokio::time::timeout(Duration::from_secs(2), call)
                .await
                .expect("refused at once, not queued")
                .expect("task");
            match result {
                Err(EnodeError::RateLimited { retry_after: told }) => assert!(told <= left + Duration::from_secs(1)),
                other => panic!("expected RateLimited, got {other:?}"),
            }
            told_to_wait += 1;
        } else if left < max_wait - Duration::from_secs(2) {
            waiting.push(call);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(told_to_wait >= 20 && waiting.len() >= 20, "{told_to_wait} refused, {} waiting", waiting.len());

    // The calls that waited all went out once the pause was over, and succeeded.
    for call in waiting {
        let (result, done) = tokio::time::timeout(Duration::from_secs(30), call).await.expect("resumed").expect("task");
        result.expect("call after the pause");
        assert!(done >= paused_at + retry_after);
    }

    // The simulator's own log: the 429, then silence for the whole `Retry-After`, then calls.
    let stats = sim.stats();
    let log: Vec<_> = stats.log.iter().filter(|e| e.route == VEHICLE_ROUTE).collect();
    let limited = log.iter().position(|e| e.status == 429).expect("the 429 in the log");
    let after = &log[limited + 1..];
    assert!(after.len() >= 20, "{}", after.len());
    let silence = after[0].at_ms - log[limited].at_ms;
    // `at_ms` is rounded down to whole milliseconds.
    assert!(silence + 1 >= retry_after.as_millis() as u64, "{silence} ms of silence, asked {retry_after:?}");
    assert!(after.iter().all(|e| e.status == 200));

    let mine = enode.stats();
    assert_eq!(mine.count(VEHICLE_ROUTE, Outcome::RateLimited), 1);
    // Calls within 2 s of the bound are not watched by the test, but were refused or waited too.
    assert!(mine.count(VEHICLE_ROUTE, Outcome::RateLimitPaused) >= told_to_wait);
    assert!(mine.rate_limit_pauses.count >= 20);
}
