//! 10 000 watched, stale vehicles and a budget of 60 requests a minute: the simulator counts at
//! most the budget in any minute, the stalest go first, unwatched vehicles get nothing, and the
//! 10 000 HA reads made meanwhile cause no Enode request at all.
//!
//! This test runs for a little over a minute on purpose: the claim is about a 60-second window at
//! Enode, measured by the simulator's own request log.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use evconduit::accounts::{self, UserSpec};
use evconduit::enode::sim::{LogEntry, SimConfig};
use evconduit::store::testing::TestDatabase;
use evconduit::store::{self, Role};
use evconduit_actors::ports::{SystemClock, VehicleWrite};
use evconduit_actors::state::{DataSource, VehicleState};
use evconduit_actors::tier::Tier;
use futures::StreamExt;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::*;
use crate::world::quiet_sim;

const WATCHED: usize = 10_000;
const UNWATCHED: usize = 1_000;
const RATE: u32 = 60;
const BURST: u32 = 5;
const CONCURRENCY: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_stale_watched_vehicles_stay_within_the_budget() {
    let sim = start_sim(SimConfig { vehicles: WATCHED + UNWATCHED, ..quiet_sim() }).await;
    let mut enode_ids: Vec<String> = sim.users().into_iter().flat_map(|u| u.vehicle_ids).collect();
    enode_ids.sort();
    assert_eq!(enode_ids.len(), WATCHED + UNWATCHED);

    // The service's database, as a restart would find it: every vehicle known, all data old.
    // Watched vehicle i is 10 + i minutes old (the last is the stalest); the unwatched are older
    // still, so a scheduler that ignored "watched" would pick them first.
    let db = TestDatabase::sqlite();
    let store = store::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    let now = Utc::now();
    let spec =
        UserSpec { id: None, email: "fleet@example.com".into(), name: None, role: Role::User, tier: Some(Tier::Pro) };
    let user = accounts::create_user(store.as_ref(), spec, now).await.unwrap();
    let (_, key) = accounts::create_api_key(store.as_ref(), user.id, None, now).await.unwrap();
    let mut age_minutes: HashMap<String, i64> = HashMap::new();
    let writes: Vec<VehicleWrite> = enode_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let minutes = if i < WATCHED { 10 + i as i64 } else { 100_000 };
            age_minutes.insert(id.clone(), minutes);
            VehicleWrite::Upsert(Arc::new(VehicleState {
                internal_id: Uuid::new_v4(),
                user_id: user.id,
                vehicle: Box::new(sim.vehicle(id).expect("simulated vehicle")),
                source: DataSource::Webhook,
                received_at: now - chrono::Duration::minutes(minutes),
                relink_required: false,
                charge_action: None,
            }))
        })
        .collect();
    for chunk in writes.chunks(1_000) {
        store.write_vehicles(chunk).await.unwrap();
    }
    drop(store);

    let listener = bind().await;
    let mut config = config(&db);
    use_sim(&mut config, &sim, listener.local_addr().unwrap());
    config.enode_rate_per_minute = RATE;
    config.enode_burst = BURST;
    config.refresh_concurrency = CONCURRENCY;
    sim.reset_stats();
    let started = Instant::now();
    let app = TestApp::start_on(listener, config, Arc::new(SystemClock)).await;

    // HA reads every watched vehicle (youngest first: the hardest order for "stalest first").
    let watched = &enode_ids[..WATCHED];
    let statuses: Vec<StatusCode> = futures::stream::iter(watched.iter())
        .map(|id| {
            let app = &app;
            let key = &key;
            async move { app.get(key, &format!("/api/status/{id}")).await.status() }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK));
    let reads_done_ms = sim_now_ms(&sim);

    let run_for = Duration::from_secs(70);
    tokio::time::sleep(run_for.saturating_sub(started.elapsed())).await;
    let stats = sim.stats();

    // The budget, as Enode saw it: any 60 s window, token requests included.
    let busiest = stats.max_in_window(Duration::from_secs(60), |_| true);
    assert!(busiest <= u64::from(RATE + BURST), "{busiest} requests in one minute");
    // Reads caused nothing: besides the token and setting up the webhook subscription at start,
    // every request Enode saw is a vehicle refresh.
    let refreshes: Vec<_> = stats.log.iter().filter(|e| e.route == "GET /vehicles/{id}").collect();
    let other: Vec<&str> = stats
        .log
        .iter()
        .filter(|e| e.route != "GET /vehicles/{id}" && !e.route.contains("/webhooks") && !e.route.contains("token"))
        .map(|e| e.route.as_str())
        .collect();
    assert!(other.is_empty(), "requests that are not refreshes: {other:?}");
    assert!(refreshes.len() >= 40, "the budget was used: {} refreshes", refreshes.len());
    // Unwatched vehicles were never requested.
    let unwatched: HashSet<String> = enode_ids[WATCHED..].iter().map(|id| format!("/vehicles/{id}")).collect();
    assert!(refreshes.iter().all(|e| !unwatched.contains(&e.path)));
    // Stalest first: once everything was watched, each refresh took one of the stalest vehicles
    // not yet refreshed. The first few requests after reading ended were chosen before it (they
    // were waiting for budget permits: at most CONCURRENCY, doubled for arrival order), so they
    // are left out of the check.
    let id_of = |path: &str| path.trim_start_matches("/vehicles/").to_owned();
    let (early, late): (Vec<&LogEntry>, Vec<&LogEntry>) = refreshes.iter().partition(|e| e.at_ms <= reads_done_ms);
    let in_flight = 2 * CONCURRENCY;
    let chosen_before: HashSet<String> =
        early.iter().chain(late.iter().take(in_flight)).map(|e| id_of(&e.path)).collect();
    let checked: Vec<String> = late.iter().skip(in_flight).map(|e| id_of(&e.path)).collect();
    assert!(checked.len() >= 20, "enough refreshes after reading to judge the order: {}", checked.len());
    let mut remaining: Vec<&String> = watched.iter().filter(|id| !chosen_before.contains(*id)).collect();
    remaining.sort_by_key(|id| std::cmp::Reverse(age_minutes[*id]));
    let allowed: HashSet<&String> = remaining.iter().take(checked.len() + CONCURRENCY).copied().collect();
    for id in &checked {
        assert!(allowed.contains(id), "{id} ({} min old) was refreshed before staler vehicles", age_minutes[id]);
    }
    app.stop().await;
}

/// Milliseconds on the simulator's stats clock (what `LogEntry::at_ms` counts).
fn sim_now_ms(sim: &evconduit::enode::sim::SimHandle) -> u64 {
    (Utc::now() - sim.stats().started_at).num_milliseconds().max(0) as u64
}
