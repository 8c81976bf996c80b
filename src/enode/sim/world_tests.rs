//! The due-time index: a tick steps exactly the vehicles that are due, whatever changed their
//! report times in between.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

const START: SimMillis = 1_790_000_000_000;

fn world(vehicles: usize) -> World {
    World::new(&SimConfig { vehicles, seed: 11, ..SimConfig::default() }, START)
}

/// What the index must hold, worked out from the vehicles themselves.
fn expected_due(world: &World) -> BTreeSet<(SimMillis, u64)> {
    world.vehicles.iter().filter(|(_, v)| !v.credentials_invalid).map(|(seq, v)| (v.next_report, *seq)).collect()
}

fn report_times(world: &World) -> BTreeMap<u64, SimMillis> {
    world.vehicles.iter().map(|(seq, v)| (*seq, v.next_report)).collect()
}

#[test]
fn a_tick_steps_every_due_vehicle_and_leaves_the_rest_alone() {
    let mut world = world(300);
    let mut out = Outbox::default();
    let mut now = START;
    for _ in 0..30 {
        now += 20_000;
        let before = report_times(&world);
        world.tick(now, &mut out);
        for (seq, v) in &world.vehicles {
            let was = before[seq];
            if was <= now {
                assert!(v.next_report > now, "vehicle {seq} was due at {was} and not stepped past {now}");
            } else {
                assert_eq!(v.next_report, was, "vehicle {seq} was not due and was stepped");
            }
        }
        assert_eq!(world.due, expected_due(&world));
    }
}

#[test]
fn the_index_follows_hints_lost_credentials_relinks_and_deletions() {
    let mut world = world(200);
    let mut out = Outbox::default();
    let now = START + 60_000;
    world.tick(now, &mut out);

    let hinted = world.vehicles.values().find(|v| !v.asleep && v.next_report > now + 1_000).map(|v| v.id.to_string());
    let hinted = hinted.expect("an awake vehicle not due within a second");
    world.refresh_hint(&hinted, now).unwrap();
    assert_eq!(world.due, expected_due(&world));
    world.tick(now + 1_000, &mut out);
    let seq = world.seq_of(&hinted).unwrap();
    assert!(world.vehicles[&seq].next_report > now + 1_000, "the hinted vehicle reported within a second");

    let users = world.users();
    let (lost, gone) = (&users[0], &users[1]);
    world.invalidate_credentials(&lost.id, None, now, &mut out).unwrap();
    world.delete_user(&gone.id, now, &mut out);
    assert_eq!(world.due, expected_due(&world));
    let silent: Vec<u64> = lost.vehicle_ids.iter().map(|id| world.seq_of(id).unwrap()).collect();
    let frozen: Vec<SimMillis> = silent.iter().map(|seq| world.vehicles[seq].next_report).collect();
    world.tick(now + 3_600_000, &mut out);
    let after: Vec<SimMillis> = silent.iter().map(|seq| world.vehicles[seq].next_report).collect();
    assert_eq!(after, frozen, "a vehicle without valid credentials reported");

    // Relinking (a change that clears the flag) puts the vehicle back on the schedule.
    world
        .change_vehicle(silent[0], now + 3_600_000, &mut out, |v| {
            v.credentials_invalid = false;
            Ok(())
        })
        .unwrap();
    assert_eq!(world.due, expected_due(&world));
    assert!(world.due.iter().any(|(_, seq)| *seq == silent[0]));
}
