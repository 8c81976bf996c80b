//! Webhook ingest of one 100-event delivery: the signature check, the parse, and the dispatch to
//! the vehicle actors, measured until every actor has applied its event (merged and
//! published the snapshot). Recording the delivery id in the store is not included: that is one
//! insert per delivery, measured by the load harness.

mod support;

use std::hint::black_box;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use evconduit::enode::{events, signature};
use evconduit_actors::testing::sample_vehicle;
use serde_json::value::RawValue;

const EVENTS: usize = 100;

/// Where each event's `event` key goes: first, as Enode writes it, or last (parsed by
/// `parse_batch`'s general path).
#[derive(Clone, Copy)]
enum NameAt {
    First,
    Last,
}

/// A delivery of `EVENTS` updates to vehicles `first..`, each newer than anything before it.
fn delivery(
    world: &support::World,
    first: usize,
    at: DateTime<Utc>,
    name_at: NameAt,
) -> (Vec<u8>, Vec<(String, DateTime<Utc>)>) {
    const NAME: &str = r#""event":"user:vehicle:updated""#;
    let mut events = Vec::with_capacity(EVENTS);
    let mut touched = Vec::with_capacity(EVENTS);
    for n in 0..EVENTS {
        let v = &world.vehicles[(first + n) % world.vehicles.len()];
        let mut vehicle = sample_vehicle(&v.enode_id);
        let seen = at + Duration::milliseconds(n as i64);
        vehicle.last_seen = Some(seen);
        vehicle.charge_state.last_updated = Some(seen);
        vehicle.charge_state.battery_level = Some((n % 100) as f64);
        let payload = serde_json::json!({
            "createdAt": seen.to_rfc3339_opts(SecondsFormat::Millis, true),
            "version": "2024-10-01",
            "user": { "id": v.user_id },
            "vehicle": vehicle,
            "updatedFields": ["chargeState.batteryLevel", "lastSeen"],
        })
        .to_string();
        let fields = &payload[1..payload.len() - 1];
        events.push(match name_at {
            NameAt::First => format!("{{{NAME},{fields}}}"),
            NameAt::Last => format!("{{{fields},{NAME}}}"),
        });
        touched.push((v.enode_id.clone(), seen));
    }
    (format!("[{}]", events.join(",")).into_bytes(), touched)
}

fn ingest(c: &mut Criterion) {
    let rt = support::runtime();
    let n = if support::quick() { 200 } else { 10_000 };
    let world = rt.block_on(support::World::start(n));
    let state = world.state();
    let (sample, _) = delivery(&world, 0, Utc::now(), NameAt::First);
    let (name_last, _) = delivery(&world, 0, Utc::now(), NameAt::Last);
    let signed = signature::sign(support::SECRET.as_bytes(), &sample);
    let secrets = [support::SECRET.as_bytes()];

    let mut group = c.benchmark_group("webhook_ingest");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("verify_signature", |b| {
        b.iter(|| assert!(signature::verify(secrets, black_box(&signed), black_box(&sample))))
    });
    group.bench_function("parse_batch", |b| {
        b.iter(|| black_box(events::parse_batch(black_box(&sample)).expect("parses")))
    });
    // Each event's name last: one_pass.rs gives up at once and the general path reads the body
    // in three passes, as every delivery was read before.
    group.bench_function("parse_batch_name_last", |b| {
        b.iter(|| black_box(events::parse_batch(black_box(&name_last)).expect("parses")))
    });
    // The same batch read the way parse_batch once did (each element as the internally tagged
    // `Event` enum), for comparison in the same run.
    group.bench_function("parse_batch_as_tagged_enum", |b| {
        b.iter(|| {
            let items: Vec<&RawValue> = serde_json::from_slice(black_box(&sample)).expect("array");
            let parsed: Vec<events::Event> =
                items.iter().map(|raw| serde_json::from_str(raw.get()).expect("event")).collect();
            black_box(parsed)
        })
    });

    let mut first = 0usize;
    let mut at = Utc::now() + Duration::hours(1);
    group.bench_function("verify_parse_dispatch_applied", |b| {
        b.iter_batched(
            || {
                first = (first + EVENTS) % world.vehicles.len();
                at += Duration::seconds(1);
                let (body, touched) = delivery(&world, first, at, NameAt::First);
                let signed = signature::sign(support::SECRET.as_bytes(), &body);
                (body, signed, touched)
            },
            |(body, signed, touched)| {
                assert!(signature::verify(secrets, &signed, &body));
                let parsed = events::parse_batch(&body).expect("parses");
                rt.block_on(async {
                    state.ingest.apply(parsed, Utc::now()).await.expect("events applied");
                    // Applied when every touched vehicle's published snapshot shows its new time.
                    for (id, seen) in &touched {
                        loop {
                            let entry = state.fleet.board().get(id).expect("known vehicle");
                            if entry.snapshot().state.vehicle.last_seen >= Some(*seen) {
                                break;
                            }
                            tokio::task::yield_now().await;
                        }
                    }
                });
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    rt.block_on(async { drop(world) });
}

criterion_group!(benches, ingest);
criterion_main!(benches);
