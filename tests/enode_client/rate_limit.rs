//! Enode's 429 with `Retry-After`: until then no request of any caller may reach it, and then
//! calls resume by themselves. The simulator is told to answer exactly one call with a chosen
//! `Retry-After` (its sliding 60 s window would name a minute, less whatever the calls took), so
//! the tests check the client against exactly the wait Enode asked for, in seconds.

use std::time::{Duration, Instant};

use evconduit::enode::client::{EnodeError, Outcome, Priority};
use evconduit::enode::sim::stats::TOKEN_ROUTE;
use evconduit::enode::sim::{ForcedRateLimit, KnobsPatch, LogEntry, SimHandle, StatsSnapshot};
use tokio::task::JoinHandle;

use crate::helpers::{client, client_config, eventually_some, frozen, some_vehicle, start};

const VEHICLE_ROUTE: &str = "GET /vehicles/{id}";
/// How often a new caller arrives while the pause lasts.
const CALLER_EVERY: Duration = Duration::from_millis(100);

/// "429, `Retry-After: 2`": for 2 s the simulator sees no request at all, although callers of
/// both priorities keep coming (and the refused call itself is due again); then every one of
/// them goes out and succeeds.
#[tokio::test]
async fn a_429_with_retry_after_2_holds_every_request_for_2_s_then_calls_resume() {
    let sim = start(frozen(4)).await;
    let enode = client(client_config(&sim));
    let id = some_vehicle(&sim);
    // The token first: the pause is about API calls, not the token host.
    enode.get_vehicle(&id, Priority::User).await.expect("warm-up call");
    force_429s(&sim, 1, 2);

    let mut calls = vec![spawn_call(&enode, &id, Priority::User)];
    // The refused call waiting for its retry means the client has taken the 429 in: a caller
    // spawned earlier could still go out, as a request already on its way to Enode would.
    let limited_at = eventually_some("a rate-limit pause", Duration::from_secs(20), || async {
        (enode.stats().rate_limit_pauses.count > 0).then(Instant::now)
    })
    .await;
    let mut priorities = [Priority::Background, Priority::User].into_iter().cycle();
    while limited_at.elapsed() < Duration::from_millis(1_800) {
        calls.push(spawn_call(&enode, &id, priorities.next().unwrap_or(Priority::User)));
        tokio::time::sleep(CALLER_EVERY).await;
    }
    let callers = calls.len();
    for call in calls {
        let (result, _) = tokio::time::timeout(Duration::from_secs(30), call).await.expect("resumed").expect("task");
        result.expect("every call succeeds once the pause is over");
    }

    // The simulator's own log: the 429, then nothing for 2 s, then every call, all served.
    let stats = sim.stats();
    let (the_429, after) = around_the_429(&stats);
    assert_eq!(after.len(), callers, "each caller sent exactly one request after the pause");
    assert!(after.iter().all(|e| e.status == 200 && e.route == VEHICLE_ROUTE), "{after:?}");
    let gap = after[0].at_ms - the_429.at_ms;
    eprintln!(
        "429 (Retry-After: 2) at {} ms, next request at {} ms: {gap} ms of silence",
        the_429.at_ms, after[0].at_ms
    );
    // `at_ms` is rounded down to whole milliseconds.
    assert!(gap + 1 >= 2_000, "{gap} ms of silence after Retry-After: 2");
    assert!(gap < 2_000 + 3_000, "calls resumed {gap} ms after the 429: late, even for a loaded machine");

    let mine = enode.stats();
    assert_eq!(mine.count(VEHICLE_ROUTE, Outcome::RateLimited), 1);
    // 2 s is within the client's wait bound: nobody was turned away, everybody waited.
    assert_eq!(mine.count(VEHICLE_ROUTE, Outcome::RateLimitPaused), 0);
    assert_eq!(mine.count(VEHICLE_ROUTE, Outcome::Ok), callers as u64 + 1);
}

/// A pause longer than the client's own bound on waiting (`max_rate_limit_wait`) splits in two:
/// while more than the bound is left, callers are told at once when to come back instead of
/// hanging; after that they wait, and go out when the pause ends. The refused call itself is
/// handed back at once too.
#[tokio::test]
async fn a_pause_longer_than_the_wait_bound_refuses_at_once_then_lets_callers_wait() {
    const PAUSE: Duration = Duration::from_secs(5);
    const MAX_WAIT: Duration = Duration::from_secs(2);
    // Callers this close to the bound are not judged: the test and the client read the clock
    // at slightly different moments, more so on a loaded machine.
    const MARGIN: Duration = Duration::from_millis(750);
    let sim = start(frozen(4)).await;
    let mut config = client_config(&sim);
    config.max_rate_limit_wait = MAX_WAIT;
    let enode = client(config);
    let id = some_vehicle(&sim);
    enode.get_vehicle(&id, Priority::User).await.expect("warm-up call");
    force_429s(&sim, 1, PAUSE.as_secs());

    match enode.get_vehicle(&id, Priority::User).await {
        Err(EnodeError::RateLimited { retry_after }) => assert_eq!(retry_after, PAUSE),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    let paused_at = Instant::now();
    let mut told_to_wait = 0;
    let mut waiting = Vec::new();
    let mut priorities = [Priority::User, Priority::Background].into_iter().cycle();
    while paused_at.elapsed() < PAUSE {
        let left = PAUSE.saturating_sub(paused_at.elapsed());
        let call = spawn_call(&enode, &id, priorities.next().unwrap_or(Priority::User));
        if left > MAX_WAIT + MARGIN {
            let (result, _) = tokio::time::timeout(Duration::from_secs(2), call)
                .await
                .expect("refused at once, not queued")
                .expect("task");
            match result {
                Err(EnodeError::RateLimited { retry_after: told }) => {
                    assert!(told <= left + MARGIN, "told {told:?}, {left:?} left");
                }
                other => panic!("expected RateLimited, got {other:?}"),
            }
            told_to_wait += 1;
        } else if left < MAX_WAIT - MARGIN {
            waiting.push(call);
        }
        tokio::time::sleep(CALLER_EVERY).await;
    }
    assert!(told_to_wait >= 10 && waiting.len() >= 5, "{told_to_wait} refused, {} waiting", waiting.len());
    for call in waiting {
        let (result, done) = tokio::time::timeout(Duration::from_secs(30), call).await.expect("resumed").expect("task");
        result.expect("call after the pause");
        assert!(done >= paused_at + PAUSE - MARGIN, "went out before the pause ended");
    }

    // Whatever the client did with the callers, the simulator saw silence for the whole pause.
    let stats = sim.stats();
    let (the_429, after) = around_the_429(&stats);
    assert!(after.iter().all(|e| e.status == 200));
    assert!(after[0].at_ms + 1 >= the_429.at_ms + PAUSE.as_millis() as u64, "{after:?}");
    let mine = enode.stats();
    assert_eq!(mine.count(VEHICLE_ROUTE, Outcome::RateLimited), 1);
    assert!(mine.count(VEHICLE_ROUTE, Outcome::RateLimitPaused) >= told_to_wait);
}

fn force_429s(sim: &SimHandle, count: u32, retry_after_secs: u64) {
    let forced = ForcedRateLimit { count, retry_after_secs };
    sim.set_faults(&KnobsPatch { rate_limit_next: Some(forced), ..KnobsPatch::default() });
}

type Call = JoinHandle<(Result<evconduit::enode::model::Vehicle, EnodeError>, Instant)>;

fn spawn_call(enode: &evconduit::enode::client::Client, id: &str, priority: Priority) -> Call {
    let (enode, id) = (enode.clone(), id.to_owned());
    tokio::spawn(async move {
        let result = enode.get_vehicle(&id, priority).await;
        (result, Instant::now())
    })
}

/// The one 429 in the log, and every API request after it.
fn around_the_429(stats: &StatsSnapshot) -> (&LogEntry, Vec<&LogEntry>) {
    let api: Vec<&LogEntry> = stats.log.iter().filter(|e| e.route != TOKEN_ROUTE).collect();
    let at = api.iter().position(|e| e.status == 429).expect("the 429 in the log");
    assert_eq!(api.iter().filter(|e| e.status == 429).count(), 1, "exactly one 429");
    (api[at], api[at + 1..].to_vec())
}
