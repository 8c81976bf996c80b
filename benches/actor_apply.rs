//! What a vehicle actor does with one update: the newer-wins merge, the change check listeners
//! rely on, and the snapshot render (the status body bytes and ETag), which since bodies are
//! rendered on first read happens once per state someone reads, not once per update.

use std::hint::black_box;
use std::sync::Arc;

use chrono::{Duration, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use evconduit_actors::snapshot::Snapshot;
use evconduit_actors::state::DataSource;
use evconduit_actors::testing::sample_state;
use evconduit_actors::vehicle::{ObservationKind, merge};

fn apply(c: &mut Criterion) {
    let current = Arc::new(Snapshot::new(Arc::new(sample_state("bench-vehicle"))));
    let mut group = c.benchmark_group("actor_apply");

    // A real change: newer time, new battery level, so a new body is rendered.
    let mut changed = current.state.vehicle.clone();
    changed.last_seen = changed.last_seen.map(|t| t + Duration::minutes(1));
    changed.charge_state.battery_level = Some(63.0);
    let apply_changed = |incoming| {
        let next = merge(&current.state, incoming, DataSource::Webhook, ObservationKind::Updated, Utc::now())
            .expect("newer state applies");
        let snapshot = current.next(Arc::new(next));
        assert!(snapshot.body_changed_from(&current));
        snapshot
    };
    // What the actor does per update.
    group.bench_function("merge_changed", |b| {
        b.iter_batched(|| changed.clone(), |incoming| black_box(apply_changed(incoming)), BatchSize::SmallInput)
    });
    // The same, with the render its first reader pays.
    group.bench_function("merge_render_changed", |b| {
        b.iter_batched(
            || changed.clone(),
            |incoming| {
                let snapshot = apply_changed(incoming);
                black_box(snapshot.rendered());
                snapshot
            },
            BatchSize::SmallInput,
        )
    });

    // A repeated delivery: same times, so the merge applies it but the body stays the same (and a
    // body already rendered is kept).
    let same = current.state.vehicle.clone();
    group.bench_function("merge_unchanged", |b| {
        b.iter_batched(
            || same.clone(),
            |incoming| {
                let next = merge(&current.state, incoming, DataSource::Webhook, ObservationKind::Updated, Utc::now())
                    .expect("an equal time applies");
                let snapshot = current.next(Arc::new(next));
                black_box(snapshot)
            },
            BatchSize::SmallInput,
        )
    });

    // An older state: rejected by the merge, nothing rendered.
    let mut older = current.state.vehicle.clone();
    older.last_seen = older.last_seen.map(|t| t - Duration::minutes(1));
    group.bench_function("merge_older_ignored", |b| {
        b.iter_batched(
            || older.clone(),
            |incoming| {
                black_box(merge(&current.state, incoming, DataSource::Webhook, ObservationKind::Updated, Utc::now()))
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
