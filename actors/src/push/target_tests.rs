use std::time::Duration;

use uuid::Uuid;

use super::*;
use crate::push::records::Circuit;

fn registration(vehicle_ref: &str) -> PushRegistration {
    PushRegistration {
        vehicle_id: Uuid::nil(),
        enode_vehicle_id: "enode-1".into(),
        user_id: Uuid::nil(),
        webhook_id: "hook".into(),
        url: "https://ha.example/api/webhook/hook".into(),
        vehicle_ref: vehicle_ref.into(),
        registered_at: Utc::now(),
    }
}

fn config() -> PushConfig {
    PushConfig {
        retry_initial: Duration::from_secs(1),
        retry_max: Duration::from_secs(8),
        breaker_failures: 3,
        breaker_open: Duration::from_secs(60),
        max_concurrent: 4,
    }
}

fn offer(t: &mut TargetState, body: &str) {
    t.offer(Bytes::from(body.to_owned()), Utc::now());
}

fn delivery(t: &mut TargetState, now: Instant) -> Delivery {
    match t.next_job(now) {
        Job::Deliver(d) => d,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

#[test]
fn only_the_newest_state_is_sent_and_never_twice() {
    let now = Instant::now();
    let mut t = TargetState::new(registration("enode-1"));
    assert_eq!(t.next_job(now), Job::Idle);
    offer(&mut t, "1");
    offer(&mut t, "2");
    offer(&mut t, "3");
    let d = delivery(&mut t, now);
    assert_eq!((d.pending.version, &d.pending.status[..], d.persist), (3, &b"3"[..], true));
    t.persisted(3);
    assert_eq!(t.apply(3, &PushOutcome::Delivered, false, now, Utc::now(), &config()), Some(3));
    assert_eq!(t.next_job(now), Job::Idle, "settled: nothing to send again");
}

#[test]
fn a_newer_state_arriving_mid_delivery_goes_next() {
    let now = Instant::now();
    let mut t = TargetState::new(registration("enode-1"));
    offer(&mut t, "1");
    let d = delivery(&mut t, now);
    offer(&mut t, "2");
    t.apply(d.pending.version, &PushOutcome::Delivered, false, now, Utc::now(), &config());
    let next = delivery(&mut t, now);
    assert_eq!(next.pending.version, 2);
}

#[test]
fn failures_back_off_then_open_the_circuit_and_a_success_closes_it() {
    let c = config();
    let now = Instant::now();
    let mut t = TargetState::new(registration("enode-1"));
    offer(&mut t, "1");
    for failures in 1..=3u32 {
        let d = delivery(&mut t, now + Duration::from_secs(3600) * failures);
        let at = now + Duration::from_secs(3600) * failures;
        assert_eq!(t.apply(d.pending.version, &PushOutcome::Timeout, false, at, Utc::now(), &c), None);
        let Job::Wait { until, persist } = t.next_job(at) else { panic!("waits after a failure") };
        let wait = until - at;
        let expected = c.delay(failures);
        assert!(wait >= expected / 2 && wait <= expected, "{failures}: {wait:?} within {expected:?}");
        let stored_already = failures > 1;
        assert_eq!(persist.map(|p| p.version), (!stored_already).then_some(1), "stored once");
        t.persisted(1);
        let expected_circuit = if failures >= 3 { Circuit::Open } else { Circuit::Closed };
        assert_eq!(t.view(at, &c).circuit, expected_circuit);
        assert_eq!(t.view(until, &c).circuit, if failures >= 3 { Circuit::HalfOpen } else { Circuit::Closed });
    }
    let view = t.view(now, &c);
    assert_eq!((view.health.consecutive_failures, view.health.last_failure_reason.as_deref()), (3, Some("timeout")));
    // A new state while the circuit is open waits too (newest wins, nothing is tried early).
    offer(&mut t, "2");
    let open_at = now + Duration::from_secs(3 * 3600);
    assert!(matches!(t.next_job(open_at), Job::Wait { persist: Some(PendingPush { version: 2, .. }), .. }));
    let trial_at = open_at + Duration::from_secs(61);
    let d = delivery(&mut t, trial_at);
    assert_eq!(d.pending.version, 2);
    t.apply(2, &PushOutcome::Delivered, false, trial_at, Utc::now(), &c);
    let view = t.view(trial_at, &c);
    assert_eq!((view.circuit, view.health.consecutive_failures, view.pending), (Circuit::Closed, 0, false));
    assert!(view.health.last_success_at.is_some());
    assert_eq!(view.health.last_failure_reason.as_deref(), Some("timeout"), "the last failure stays on record");
}

#[test]
fn refusals_settle_the_version_and_the_next_state_goes_at_once() {
    let now = Instant::now();
    let mut t = TargetState::new(registration("enode-1"));
    for outcome in [PushOutcome::Http4xx(400), PushOutcome::IdMismatch, PushOutcome::Refused("loopback".into())] {
        offer(&mut t, "x");
        let d = delivery(&mut t, now);
        assert_eq!(t.apply(d.pending.version, &outcome, false, now, Utc::now(), &config()), Some(d.pending.version));
        assert_eq!(t.next_job(now), Job::Idle, "{outcome:?} is not retried");
        assert_eq!(t.health.last_failure_reason, Some(outcome.reason()));
    }
}

#[test]
fn the_other_id_form_sticks_once_it_worked() {
    let now = Instant::now();
    let internal = Uuid::nil().to_string();
    let mut t = TargetState::new(registration("enode-1"));
    offer(&mut t, "1");
    let d = delivery(&mut t, now);
    assert_eq!((d.id.as_str(), d.other_id.as_str()), ("enode-1", internal.as_str()));
    t.apply(1, &PushOutcome::Delivered, true, now, Utc::now(), &config());
    offer(&mut t, "2");
    let d = delivery(&mut t, now);
    assert_eq!((d.id.as_str(), d.other_id.as_str()), (internal.as_str(), "enode-1"));
    // A new registration starts from what it says again.
    t.reregister(registration(&internal));
    let d = delivery(&mut t, now);
    assert_eq!((d.id.as_str(), d.other_id.as_str()), (internal.as_str(), "enode-1"));
}

#[test]
fn a_restored_target_owes_its_stored_pending_state_once() {
    let now = Instant::now();
    let pending = PendingPush { version: 7, status: Bytes::from_static(b"7"), created_at: Utc::now() };
    let record = PushTargetRecord {
        registration: registration("enode-1"),
        health: PushHealth::default(),
        pending: Some(pending.clone()),
        settled_version: 6,
    };
    let mut t = TargetState::restore(record.clone());
    let d = delivery(&mut t, now);
    assert_eq!((d.pending, d.persist), (pending, false));
    offer(&mut t, "8");
    assert_eq!(delivery(&mut t, now).pending.version, 8, "versions go on from the stored ones");

    let settled = PushTargetRecord { settled_version: 7, ..record };
    let mut t = TargetState::restore(settled);
    assert_eq!(t.next_job(now), Job::Idle, "already delivered before the restart");
}

#[test]
fn a_new_url_gets_a_clean_record() {
    let now = Instant::now();
    let mut t = TargetState::new(registration("enode-1"));
    offer(&mut t, "1");
    delivery(&mut t, now);
    t.apply(1, &PushOutcome::ConnectRefused, false, now, Utc::now(), &config());
    let mut same = registration("enode-1");
    same.webhook_id = "other".into();
    t.reregister(same.clone());
    assert_eq!(t.health.consecutive_failures, 1, "same URL: same record");
    assert!(matches!(t.next_job(now), Job::Deliver(_)), "HA registering again is a reason to try at once");
    same.url = "https://new.example/api/webhook/other".into();
    t.reregister(same);
    assert_eq!(t.health, PushHealth::default());
    assert_eq!(delivery(&mut t, now).url, "https://new.example/api/webhook/other", "owed work follows the new URL");
}
