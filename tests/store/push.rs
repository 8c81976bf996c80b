//! Conformance: push registrations and their delivery state, on both backends.

use bytes::Bytes;
use evconduit_actors::push::{PendingPush, PushHealth, PushRegistration, PushTargetRecord};

use super::*;

conformance!(
    push_registration_round_trips,
    push_reregistration_keeps_what_is_owed,
    push_webhook_id_moves_between_a_users_vehicles,
    push_pending_only_moves_forward,
    push_attempts_record_health_and_settle,
);

fn registration(user_id: Uuid, webhook_id: &str) -> PushRegistration {
    let vehicle_id = Uuid::new_v4();
    PushRegistration {
        vehicle_id,
        enode_vehicle_id: format!("enode-{vehicle_id}"),
        user_id,
        webhook_id: webhook_id.to_owned(),
        url: format!("https://ha.example.com:8123/api/webhook/{webhook_id}"),
        vehicle_ref: format!("enode-{vehicle_id}"),
        registered_at: at("2026-03-01T12:00:00.123456Z"),
    }
}

/// A status body with what Postgres' jsonb would disturb (key order, number text, spacing).
fn pending(version: u64) -> PendingPush {
    PendingPush {
        version,
        status: Bytes::from(format!(r#"{{"id":"x","batteryLevel":{version},"range":301.50,"a":null}}"#)),
        created_at: at("2026-03-01T12:34:56.789012Z"),
    }
}

fn failing(reason: &str, failures: u32) -> PushHealth {
    PushHealth {
        last_success_at: Some(at("2026-03-01T12:00:00Z")),
        last_failure_at: Some(at("2026-03-01T13:00:00.5Z")),
        last_failure_reason: Some(reason.to_owned()),
        consecutive_failures: failures,
    }
}

async fn target(store: &dyn Store, vehicle_id: Uuid) -> Option<PushTargetRecord> {
    let targets = store.load_push_targets().await.expect("load");
    targets.into_iter().find(|t| t.registration.vehicle_id == vehicle_id)
}

async fn push_registration_round_trips(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "push@example.com").await;
    let first = registration(user.id, "aaaa");
    let mut second = registration(user.id, "bbbb");
    second.registered_at = at("2026-03-02T00:00:00Z");
    second.vehicle_ref = second.vehicle_id.to_string();
    store.save_push_registration(&second).await.expect("save");
    store.save_push_registration(&first).await.expect("save");
    let fresh = |registration: PushRegistration| PushTargetRecord {
        registration,
        health: PushHealth::default(),
        pending: None,
        settled_version: 0,
    };
    assert_eq!(store.load_push_targets().await.expect("load"), vec![fresh(first), fresh(second)]);
}

async fn push_reregistration_keeps_what_is_owed(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "owed@example.com").await;
    let first = registration(user.id, "aaaa");
    let vehicle = first.vehicle_id;
    store.save_push_registration(&first).await.expect("save");
    store.record_push_attempt(vehicle, Some(3), &failing("timeout", 2)).await.expect("attempt");
    store.save_push_pending(vehicle, &pending(4)).await.expect("pending");

    // HA restarts and registers again, same URL: everything stays.
    let again = PushRegistration { registered_at: at("2026-03-05T00:00:00Z"), ..first.clone() };
    store.save_push_registration(&again).await.expect("again");
    let kept = target(store.as_ref(), vehicle).await.expect("target");
    assert_eq!(kept.registration, again);
    assert_eq!((kept.health, kept.pending, kept.settled_version), (failing("timeout", 2), Some(pending(4)), 3));

    // A new webhook (new URL): what is owed stays, the health record starts clean.
    let mut moved = registration(user.id, "cccc");
    moved.vehicle_id = vehicle;
    store.save_push_registration(&moved).await.expect("new url");
    let kept = target(store.as_ref(), vehicle).await.expect("target");
    assert_eq!(kept.registration, moved);
    assert_eq!((kept.health, kept.pending, kept.settled_version), (PushHealth::default(), Some(pending(4)), 3));
    assert_eq!(store.load_push_targets().await.expect("load").len(), 1, "one entry per vehicle");
}

async fn push_webhook_id_moves_between_a_users_vehicles(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "mover@example.com").await;
    let other = create_user(store.as_ref(), "bystander@example.com").await;
    let a = registration(user.id, "same-hook");
    let theirs = registration(other.id, "same-hook");
    store.save_push_registration(&a).await.expect("a");
    store.save_push_registration(&theirs).await.expect("another user's, same webhook id");
    let b = registration(user.id, "same-hook");
    store.save_push_registration(&b).await.expect("b");
    let mut vehicles: Vec<Uuid> =
        store.load_push_targets().await.expect("load").iter().map(|t| t.registration.vehicle_id).collect();
    vehicles.sort();
    let mut expected = vec![b.vehicle_id, theirs.vehicle_id];
    expected.sort();
    assert_eq!(vehicles, expected, "the first vehicle's entry went; the other user's stayed");
}

async fn push_pending_only_moves_forward(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "forward@example.com").await;
    let r = registration(user.id, "aaaa");
    store.save_push_registration(&r).await.expect("save");
    store.save_push_pending(r.vehicle_id, &pending(2)).await.expect("v2");
    store.save_push_pending(r.vehicle_id, &pending(1)).await.expect("an older one is ignored");
    store.save_push_pending(r.vehicle_id, &pending(2)).await.expect("the same one again");
    assert_eq!(target(store.as_ref(), r.vehicle_id).await.and_then(|t| t.pending), Some(pending(2)));
    store.save_push_pending(r.vehicle_id, &pending(5)).await.expect("v5");
    assert_eq!(target(store.as_ref(), r.vehicle_id).await.and_then(|t| t.pending), Some(pending(5)));
    store.record_push_attempt(r.vehicle_id, Some(5), &PushHealth::default()).await.expect("settle");
    store.save_push_pending(r.vehicle_id, &pending(4)).await.expect("settled versions are not owed again");
    assert_eq!(target(store.as_ref(), r.vehicle_id).await.and_then(|t| t.pending), None);
    store.save_push_pending(Uuid::new_v4(), &pending(9)).await.expect("no registration: nothing to do");
    assert_eq!(store.load_push_targets().await.expect("load").len(), 1);
}

async fn push_attempts_record_health_and_settle(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "settle@example.com").await;
    let r = registration(user.id, "aaaa");
    store.save_push_registration(&r).await.expect("save");
    store.save_push_pending(r.vehicle_id, &pending(3)).await.expect("v3");

    // A failure: health recorded, the pending push stays.
    store.record_push_attempt(r.vehicle_id, None, &failing("http_500", 1)).await.expect("failure");
    let t = target(store.as_ref(), r.vehicle_id).await.expect("target");
    assert_eq!((t.health, t.pending, t.settled_version), (failing("http_500", 1), Some(pending(3)), 0));

    // Version 2 settles (a delivery that raced a newer state): version 3 is still owed.
    let ok = PushHealth { last_success_at: Some(at("2026-03-01T14:00:00Z")), ..failing("http_500", 0) };
    store.record_push_attempt(r.vehicle_id, Some(2), &ok).await.expect("v2 settled");
    let t = target(store.as_ref(), r.vehicle_id).await.expect("target");
    assert_eq!((t.health, t.pending, t.settled_version), (ok.clone(), Some(pending(3)), 2));

    // Version 3 settles: nothing is owed; an older settle never lowers it.
    store.record_push_attempt(r.vehicle_id, Some(3), &ok).await.expect("v3 settled");
    store.record_push_attempt(r.vehicle_id, Some(1), &ok).await.expect("stale");
    let t = target(store.as_ref(), r.vehicle_id).await.expect("target");
    assert_eq!((t.pending, t.settled_version), (None, 3));
    store.record_push_attempt(Uuid::new_v4(), Some(1), &ok).await.expect("unknown vehicle: nothing to do");
}
