//! The read path HA polls: `GET /api/status/{id}` with a Bearer key, through the real router
//! (API-key lookup, snapshot lookup, freshness headers, response), for 1, 10 000 and 100 000
//! vehicles; and its parts apart, to see where the time goes.

mod support;

use std::hint::black_box;

use axum::body::Body;
use axum::http::{Request, header};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use evconduit::accounts::hash_key;
use evconduit_actors::tier::Tier;
use tower::ServiceExt;

fn read_path(c: &mut Criterion) {
    let rt = support::runtime();
    let sizes: &[usize] = if support::quick() { &[1, 100] } else { &[1, 10_000, 100_000] };
    let mut group = c.benchmark_group("read_path");
    group.throughput(Throughput::Elements(1));
    for &n in sizes {
        let world = rt.block_on(support::World::start(n));
        let router = evconduit::http::router(world.state().clone());
        let requests: Vec<(String, String)> = world
            .vehicles
            .iter()
            .map(|v| (format!("/api/status/{}", v.enode_id), format!("Bearer {}", v.key)))
            .collect();
        let mut i = 0usize;
        group.bench_function(format!("status/{n}"), |b| {
            b.iter(|| {
                // A different vehicle (and key) each time, like many homes polling.
                i = (i + 7919) % requests.len();
                let (path, auth) = &requests[i];
                let request = Request::get(path.as_str())
                    .header(header::AUTHORIZATION, auth.as_str())
                    .body(Body::empty())
                    .expect("valid request");
                let response = rt.block_on(router.clone().oneshot(request)).expect("infallible");
                assert!(response.status().is_success());
                black_box(response)
            })
        });

        if n == *sizes.last().unwrap_or(&1) {
            parts(&mut group, &rt, &world);
        }
        drop(router);
        rt.block_on(async { drop(world) });
    }
    group.finish();
}

/// The steps of one read, apart (at the largest size).
fn parts(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    world: &support::World,
) {
    let state = world.state();
    let v = &world.vehicles[world.vehicles.len() / 2];
    group.bench_function("part/sha256_of_key", |b| b.iter(|| black_box(hash_key(black_box(&v.key)))));
    group.bench_function("part/authenticate", |b| {
        b.iter(|| rt.block_on(state.accounts.authenticate(black_box(&v.key), chrono::Utc::now())).expect("known key"))
    });
    group.bench_function("part/board_get", |b| {
        b.iter(|| black_box(state.fleet.board().get(black_box(&v.enode_id))).expect("known vehicle"))
    });
    // The same steps over a different vehicle (and key) each time: what the cold memory of a
    // large fleet adds to each.
    let i = std::cell::Cell::new(0usize);
    let next = || {
        i.set((i.get() + 7919) % world.vehicles.len());
        &world.vehicles[i.get()]
    };
    group.bench_function("part/authenticate_any_key", |b| {
        b.iter(|| {
            let v = next();
            rt.block_on(state.accounts.authenticate(black_box(&v.key), chrono::Utc::now())).expect("known key")
        })
    });
    group.bench_function("part/board_get_any_vehicle", |b| {
        b.iter(|| {
            let v = next();
            black_box(state.fleet.board().get(black_box(&v.enode_id))).expect("known vehicle")
        })
    });
    // As a poll does it: the vehicle just read, the owner's tier known from the caller.
    group.bench_function("part/poll_freshness_any_vehicle", |b| {
        b.iter(|| {
            let v = next();
            let now = chrono::Utc::now();
            let entry = state.fleet.board().get(&v.enode_id).expect("known vehicle");
            let snapshot = entry.snapshot();
            entry.mark_read(now);
            black_box(state.refresh.freshness_of(&entry, &snapshot.facts, Tier::Pro, now))
        })
    });
    let entry = state.fleet.board().get(&v.enode_id).expect("known vehicle");
    group.bench_function("part/freshness", |b| {
        b.iter(|| black_box(state.refresh.freshness(&entry, chrono::Utc::now())))
    });
    group.bench_function("part/http_date", |b| {
        b.iter(|| black_box(httpdate::fmt_http_date(black_box(std::time::SystemTime::now()))))
    });
}

criterion_group!(benches, read_path);
criterion_main!(benches);
