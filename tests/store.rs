//! The store conformance suite: one set of tests, each run against both backends on a fresh
//! database (`sqlite::<test>` and `postgres::<test>`). A behaviour the trait documents is tested
//! here, so the two implementations cannot drift apart.
//!
//! Postgres: see `evconduit::store::testing` (EVCONDUIT_TEST_POSTGRES_URL; skipped loudly when
//! the server is unreachable, failed when `CI` is set).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use evconduit::store::testing::TestDatabase;
use evconduit::store::{
    self, ApiKey, DeliveryOutcome, KeyHash, NewApiKey, NewDelivery, NewUser, PostgresStore, Role, SqliteStore, Store,
    StoreError, User,
};
use evconduit_actors::model::Vehicle;
use evconduit_actors::ports::VehicleWrite;
use evconduit_actors::state::{DataSource, VehicleState};
use evconduit_actors::testing::{eventually, eventually_some};
use evconduit_actors::tier::Tier;
use serde_json::json;
use uuid::Uuid;

/// Generates `sqlite::$name` and `postgres::$name` for each conformance test `$name(&TestDatabase)`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = evconduit::store::testing::TestDatabase::sqlite();
                    super::$name(&db).await;
                    db.drop_db().await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = evconduit::store::testing::TestDatabase::postgres().await else {
                        return;
                    };
                    super::$name(&db).await;
                    db.drop_db().await;
                }
            )*
        }
    };
}

conformance!(
    migrate_twice_and_concurrently,
    ping_answers,
    create_user_round_trips,
    duplicate_user_id_is_a_conflict,
    duplicate_email_is_a_conflict_whatever_the_case,
    email_lookup_ignores_ascii_case_only,
    list_users_orders_by_created_at_then_id,
    times_keep_microseconds,
    api_key_round_trips,
    api_key_conflicts,
    api_key_for_unknown_user_is_invalid,
    list_api_keys_includes_revoked_in_order,
    active_api_keys_are_every_users_unrevoked_keys_in_order,
    users_and_keys_listed_keep_every_character_and_time,
    revoke_keeps_the_first_time,
    keys_revoked_since_is_inclusive_and_ordered,
    touch_never_goes_backwards,
    record_delivery_detects_duplicates,
    prune_deliveries_forgets_old_ones,
    vehicles_round_trip_with_unknown_fields,
    nul_characters_are_stored_as_replacement_characters,
    vehicle_json_is_stored_as_written,
    unreadable_vehicle_is_corrupt_and_named,
    upsert_replaces_the_row,
    delete_removes_the_row,
    upsert_for_missing_user_is_skipped,
    failing_batch_applies_nothing,
    last_write_in_a_batch_wins,
    large_batch_round_trips,
    load_after_deletes_and_reinserts_finds_every_vehicle_once,
);

// Conformance of the charging-session methods, in its own file (same macro, same helpers).
#[path = "store/sessions.rs"]
mod sessions;

// Conformance of the push registration methods.
#[path = "store/push.rs"]
mod push;

// ---- helpers ----------------------------------------------------------------------------------

async fn open(db: &TestDatabase) -> Arc<dyn Store> {
    db.store().await.expect("connect and migrate")
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("valid RFC 3339 time").with_timezone(&Utc)
}

fn base_time() -> DateTime<Utc> {
    at("2026-03-01T12:00:00Z")
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        id: Uuid::new_v4(),
        email: email.to_owned(),
        name: None,
        role: Role::User,
        tier: Tier::Free,
        trial_ends_at: None,
        created_at: base_time(),
    }
}

async fn create_user(store: &dyn Store, email: &str) -> User {
    store.create_user(&new_user(email)).await.expect("create user")
}

fn random_hash() -> KeyHash {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    KeyHash(bytes)
}

fn new_key(user_id: Uuid, created_at: DateTime<Utc>) -> NewApiKey {
    NewApiKey { id: Uuid::new_v4(), hash: random_hash(), user_id, label: Some("home assistant".to_owned()), created_at }
}

async fn create_key(store: &dyn Store, user_id: Uuid) -> ApiKey {
    store.create_api_key(&new_key(user_id, base_time())).await.expect("create api key")
}

fn fixture_vehicle() -> Vehicle {
    serde_json::from_str(include_str!("fixtures/vehicle.json")).expect("fixture vehicle parses")
}

fn vehicle_state(user_id: Uuid, enode_id: &str) -> VehicleState {
    let mut vehicle = fixture_vehicle();
    vehicle.id = enode_id.to_owned();
    VehicleState {
        internal_id: Uuid::new_v4(),
        user_id,
        vehicle: Box::new(vehicle),
        source: DataSource::Webhook,
        received_at: at("2026-03-01T12:34:56.789012Z"),
        relink_required: false,
        charge_action: None,
    }
}

fn upsert(state: &VehicleState) -> VehicleWrite {
    VehicleWrite::Upsert(Arc::new(state.clone()))
}

async fn load_sorted(store: &dyn Store) -> Vec<VehicleState> {
    let mut vehicles = store.load_vehicles().await.expect("load vehicles");
    vehicles.sort_by_key(|v| v.internal_id);
    vehicles
}

fn sorted(mut vehicles: Vec<VehicleState>) -> Vec<VehicleState> {
    vehicles.sort_by_key(|v| v.internal_id);
    vehicles
}

/// Runs SQL on the test database behind the store's back, to set up what the store would never
/// write itself. The statement must be valid on both backends.
async fn execute_directly(db: &TestDatabase, sql: &'static str) {
    if db.url().starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(db.url()).await.expect("connect directly");
        sqlx::query(sql).execute(&pool).await.expect("execute directly");
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(db.url()).await.expect("connect directly");
        sqlx::query(sql).execute(&pool).await.expect("execute directly");
        pool.close().await;
    }
}

/// Reads one text value from the test database behind the store's back, to see exactly what it
/// stored. The query must be valid on both backends.
async fn text_directly(db: &TestDatabase, sql: &'static str) -> String {
    if db.url().starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(db.url()).await.expect("connect directly");
        let text = sqlx::query_scalar(sql).fetch_one(&pool).await.expect("read directly");
        pool.close().await;
        text
    } else {
        let pool = sqlx::PgPool::connect(db.url()).await.expect("connect directly");
        let text = sqlx::query_scalar(sql).fetch_one(&pool).await.expect("read directly");
        pool.close().await;
        text
    }
}

fn assert_conflict(result: Result<impl std::fmt::Debug, StoreError>, naming: &str) {
    match result {
        Err(StoreError::Conflict(what)) => {
            assert!(what.contains(naming), "conflict names {what:?}, expected {naming:?}")
        }
        other => panic!("expected a conflict on {naming}, got {other:?}"),
    }
}

// ---- schema -----------------------------------------------------------------------------------

async fn migrate_twice_and_concurrently(db: &TestDatabase) {
    // Two processes starting at once on a new database: both migrate, neither fails.
    let (a, b) = tokio::join!(store::connect(db.url()), store::connect(db.url()));
    let (a, b) = (a.expect("connect a"), b.expect("connect b"));
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.expect("first concurrent migrate");
    rb.expect("second concurrent migrate");
    // And again at the next start.
    a.migrate().await.expect("migrate again");
    let user = create_user(a.as_ref(), "again@example.com").await;
    assert_eq!(b.user_by_id(user.id).await.expect("read"), Some(user));
}

async fn ping_answers(db: &TestDatabase) {
    open(db).await.ping().await.expect("ping");
}

// ---- users ------------------------------------------------------------------------------------

async fn create_user_round_trips(db: &TestDatabase) {
    let store = open(db).await;
    let new = NewUser {
        id: Uuid::new_v4(),
        email: "Ada@Example.com".to_owned(),
        name: Some("Ada".to_owned()),
        role: Role::Admin,
        tier: Tier::Pro,
        trial_ends_at: Some(at("2026-04-01T00:00:00.5Z")),
        created_at: at("2026-03-01T12:00:00.123456Z"),
    };
    let created = store.create_user(&new).await.expect("create");
    let expected = User {
        id: new.id,
        email: new.email.clone(),
        name: new.name.clone(),
        role: new.role,
        tier: new.tier,
        trial_ends_at: new.trial_ends_at,
        created_at: new.created_at,
    };
    assert_eq!(created, expected);
    assert_eq!(store.user_by_id(new.id).await.expect("by id"), Some(expected));
    assert_eq!(store.user_by_id(Uuid::new_v4()).await.expect("by id"), None);

    for tier in Tier::ALL {
        let mut user = new_user(&format!("{tier}@example.com"));
        user.tier = tier;
        let created = store.create_user(&user).await.expect("create");
        assert_eq!(created.tier, tier);
        assert_eq!(created.role, Role::User);
        assert_eq!(created.name, None);
        assert_eq!(created.trial_ends_at, None);
    }
}

async fn duplicate_user_id_is_a_conflict(db: &TestDatabase) {
    let store = open(db).await;
    let first = create_user(store.as_ref(), "first@example.com").await;
    let mut again = new_user("second@example.com");
    again.id = first.id;
    assert_conflict(store.create_user(&again).await, "user id");
}

async fn duplicate_email_is_a_conflict_whatever_the_case(db: &TestDatabase) {
    let store = open(db).await;
    create_user(store.as_ref(), "grace@example.com").await;
    assert_conflict(store.create_user(&new_user("grace@example.com")).await, "email");
    assert_conflict(store.create_user(&new_user("Grace@EXAMPLE.com")).await, "email");
    assert_eq!(store.list_users().await.expect("list").len(), 1);
}

async fn email_lookup_ignores_ascii_case_only(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "Linus@Example.COM").await;
    for spelling in ["linus@example.com", "LINUS@EXAMPLE.COM", "Linus@Example.COM"] {
        let found = store.user_by_email(spelling).await.expect("by email");
        assert_eq!(found.as_ref().map(|u| u.id), Some(user.id), "{spelling}");
    }
    assert_eq!(store.user_by_email("linus@example.org").await.expect("by email"), None);

    // Case folding is ASCII-only on both backends (SQLite's NOCASE cannot do more), so the two
    // agree: non-ASCII letters that differ in case are different addresses.
    let upper = create_user(store.as_ref(), "ÅSA@example.com").await;
    let lower = create_user(store.as_ref(), "åsa@example.com").await;
    assert_ne!(upper.id, lower.id);
    let found = store.user_by_email("ÅSA@EXAMPLE.COM").await.expect("by email");
    assert_eq!(found.map(|u| u.id), Some(upper.id));
}

async fn list_users_orders_by_created_at_then_id(db: &TestDatabase) {
    let store = open(db).await;
    let mut expected = Vec::new();
    // Same created_at for the first three (ordered by id), then a later and an earlier one.
    for (i, offset_ms) in [0, 0, 0, 1500, -250].into_iter().enumerate() {
        let mut user = new_user(&format!("user{i}@example.com"));
        user.created_at = base_time() + TimeDelta::milliseconds(offset_ms);
        expected.push(store.create_user(&user).await.expect("create"));
    }
    expected.sort_by_key(|u| (u.created_at, u.id));
    assert_eq!(store.list_users().await.expect("list"), expected);
}

async fn times_keep_microseconds(db: &TestDatabase) {
    // Postgres keeps microseconds; SQLite is made to keep the same, so both give back the same.
    let store = open(db).await;
    let mut user = new_user("precise@example.com");
    user.created_at = at("2026-03-01T12:00:00.123456789Z");
    let created = store.create_user(&user).await.expect("create");
    assert_eq!(created.created_at, at("2026-03-01T12:00:00.123456Z"));
    let read = store.user_by_id(user.id).await.expect("read").expect("exists");
    assert_eq!(read.created_at, at("2026-03-01T12:00:00.123456Z"));
}

// ---- API keys ---------------------------------------------------------------------------------

async fn api_key_round_trips(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "keys@example.com").await;
    let new = new_key(user.id, at("2026-03-01T12:00:00.000001Z"));
    let created = store.create_api_key(&new).await.expect("create key");
    let expected = ApiKey {
        id: new.id,
        hash: new.hash,
        user_id: user.id,
        label: new.label.clone(),
        created_at: new.created_at,
        last_used_at: None,
        revoked_at: None,
    };
    assert_eq!(created, expected);
    assert_eq!(store.api_key_by_hash(&new.hash).await.expect("by hash"), Some(expected));
    assert_eq!(store.api_key_by_hash(&random_hash()).await.expect("by hash"), None);

    let mut unlabelled = new_key(user.id, base_time());
    unlabelled.label = None;
    assert_eq!(store.create_api_key(&unlabelled).await.expect("create").label, None);
}

async fn api_key_conflicts(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "dup@example.com").await;
    let key = create_key(store.as_ref(), user.id).await;

    let mut same_hash = new_key(user.id, base_time());
    same_hash.hash = key.hash;
    assert_conflict(store.create_api_key(&same_hash).await, "api key hash");

    let mut same_id = new_key(user.id, base_time());
    same_id.id = key.id;
    assert_conflict(store.create_api_key(&same_id).await, "api key id");
}

async fn api_key_for_unknown_user_is_invalid(db: &TestDatabase) {
    let store = open(db).await;
    let result = store.create_api_key(&new_key(Uuid::new_v4(), base_time())).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
}

async fn active_api_keys_are_every_users_unrevoked_keys_in_order(db: &TestDatabase) {
    let store = open(db).await;
    assert_eq!(store.active_api_keys().await.expect("list"), vec![]);
    let user = create_user(store.as_ref(), "one@example.com").await;
    let other = create_user(store.as_ref(), "two@example.com").await;
    let mut expected = Vec::new();
    for (owner, offset_s) in [(user.id, 20), (other.id, 0), (user.id, 10), (other.id, 30)] {
        let key = new_key(owner, base_time() + TimeDelta::seconds(offset_s));
        expected.push(store.create_api_key(&key).await.expect("create"));
    }
    store.revoke_api_key(expected[3].id, base_time() + TimeDelta::hours(1)).await.expect("revoke");
    expected.remove(3);
    expected.sort_by_key(|k| (k.created_at, k.id));
    assert_eq!(store.active_api_keys().await.expect("list"), expected);
}

async fn users_and_keys_listed_keep_every_character_and_time(db: &TestDatabase) {
    // The start-up loads (`list_users`, `active_api_keys`) read whole tables in one result on
    // SQLite: text that needs quoting, NULLs and every time column must come back as stored.
    let store = open(db).await;
    let awkward = "Zoë \"the\" \\ driver\n\ttab ✓ 🚗";
    let mut new = new_user("awkward@example.com");
    new.name = Some(awkward.to_owned());
    new.role = Role::Admin;
    new.tier = Tier::Basic;
    new.trial_ends_at = Some(at("2026-04-01T00:00:00.000001Z"));
    new.created_at = at("2026-03-01T12:00:00.123456Z");
    let user = store.create_user(&new).await.expect("create");
    let plain = create_user(store.as_ref(), "plain@example.com").await;
    assert_eq!(store.list_users().await.expect("list"), sorted_users(vec![user.clone(), plain]));

    let mut labelled = new_key(user.id, base_time());
    labelled.label = Some(awkward.to_owned());
    let labelled = store.create_api_key(&labelled).await.expect("create key");
    let mut unlabelled = new_key(user.id, base_time() + TimeDelta::seconds(1));
    unlabelled.label = None;
    store.create_api_key(&unlabelled).await.expect("create key");
    store.touch_api_keys(&[(unlabelled.id, at("2026-03-02T08:00:00.5Z"))]).await.expect("touch");
    let unlabelled = store.api_key_by_hash(&unlabelled.hash).await.expect("by hash").expect("exists");
    assert_eq!(unlabelled.last_used_at, Some(at("2026-03-02T08:00:00.5Z")));
    assert_eq!(store.active_api_keys().await.expect("list"), vec![labelled, unlabelled]);
}

fn sorted_users(mut users: Vec<User>) -> Vec<User> {
    users.sort_by_key(|u| (u.created_at, u.id));
    users
}

async fn list_api_keys_includes_revoked_in_order(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "many@example.com").await;
    let other = create_user(store.as_ref(), "other@example.com").await;
    create_key(store.as_ref(), other.id).await;

    let mut expected = Vec::new();
    for offset_s in [30, 0, 0, 10] {
        let key = new_key(user.id, base_time() + TimeDelta::seconds(offset_s));
        expected.push(store.create_api_key(&key).await.expect("create"));
    }
    let revoked_at = base_time() + TimeDelta::hours(1);
    let revoked = store.revoke_api_key(expected[0].id, revoked_at).await.expect("revoke").expect("key exists");
    expected[0] = revoked;
    expected.sort_by_key(|k| (k.created_at, k.id));

    assert_eq!(store.list_api_keys(user.id).await.expect("list"), expected);
    assert_eq!(store.list_api_keys(Uuid::new_v4()).await.expect("list"), vec![]);
}

async fn revoke_keeps_the_first_time(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "revoke@example.com").await;
    let key = create_key(store.as_ref(), user.id).await;
    let first = at("2026-03-02T08:00:00.25Z");

    let revoked = store.revoke_api_key(key.id, first).await.expect("revoke").expect("exists");
    assert_eq!(revoked.revoked_at, Some(first));
    assert_eq!(revoked, ApiKey { revoked_at: Some(first), ..key.clone() });

    for later_or_earlier in [first + TimeDelta::days(1), first - TimeDelta::days(1)] {
        let again = store.revoke_api_key(key.id, later_or_earlier).await.expect("revoke again").expect("exists");
        assert_eq!(again.revoked_at, Some(first));
    }
    let stored = store.api_key_by_hash(&key.hash).await.expect("by hash").expect("exists");
    assert_eq!(stored.revoked_at, Some(first));

    assert_eq!(store.revoke_api_key(Uuid::new_v4(), first).await.expect("revoke"), None);
}

async fn keys_revoked_since_is_inclusive_and_ordered(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "since@example.com").await;
    let (k1, k2, k3, live) = (
        create_key(store.as_ref(), user.id).await,
        create_key(store.as_ref(), user.id).await,
        create_key(store.as_ref(), user.id).await,
        create_key(store.as_ref(), user.id).await,
    );
    // Different sub-second precisions on purpose: SQLite compares these as text.
    let t1 = at("2026-03-02T08:00:00Z");
    let t2 = at("2026-03-02T08:00:00.5Z");
    let t3 = at("2026-03-02T08:00:00.500001Z");
    store.revoke_api_key(k3.id, t3).await.expect("revoke k3");
    store.revoke_api_key(k1.id, t1).await.expect("revoke k1");
    store.revoke_api_key(k2.id, t2).await.expect("revoke k2");

    let ids = |keys: Vec<ApiKey>| keys.into_iter().map(|k| k.id).collect::<Vec<_>>();
    let since = |t| {
        let store = store.clone();
        async move { ids(store.keys_revoked_since(t).await.expect("revoked since")) }
    };
    assert_eq!(since(t1 - TimeDelta::microseconds(1)).await, vec![k1.id, k2.id, k3.id]);
    assert_eq!(since(t1).await, vec![k1.id, k2.id, k3.id]);
    assert_eq!(since(t1 + TimeDelta::microseconds(1)).await, vec![k2.id, k3.id]);
    assert_eq!(since(t2).await, vec![k2.id, k3.id]);
    assert_eq!(since(t3).await, vec![k3.id]);
    assert_eq!(since(t3 + TimeDelta::microseconds(1)).await, Vec::<Uuid>::new());
    assert!(!since(t1).await.contains(&live.id));
}

async fn touch_never_goes_backwards(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "touch@example.com").await;
    let (a, b) = (create_key(store.as_ref(), user.id).await, create_key(store.as_ref(), user.id).await);
    let last_used = |key: ApiKey| {
        let store = store.clone();
        async move { store.api_key_by_hash(&key.hash).await.expect("by hash").expect("exists").last_used_at }
    };
    let t1 = at("2026-03-02T08:00:00Z");
    let t2 = at("2026-03-02T08:00:00.5Z");
    let t3 = at("2026-03-02T08:00:01Z");

    store.touch_api_keys(&[]).await.expect("empty touch");
    store.touch_api_keys(&[(a.id, t2)]).await.expect("touch");
    assert_eq!(last_used(a.clone()).await, Some(t2));
    assert_eq!(last_used(b.clone()).await, None);

    // Older news changes nothing.
    store.touch_api_keys(&[(a.id, t1)]).await.expect("touch");
    assert_eq!(last_used(a.clone()).await, Some(t2));

    // The same key twice in one batch, the later time first; an unknown key is ignored.
    store.touch_api_keys(&[(a.id, t3), (b.id, t1), (Uuid::new_v4(), t3), (a.id, t2)]).await.expect("touch batch");
    assert_eq!(last_used(a.clone()).await, Some(t3));
    assert_eq!(last_used(b.clone()).await, Some(t1));

    // A minute of a busy fleet's keys: more than one statement's worth. A key's older use in a
    // later part of the batch still changes nothing; a newer one lands wherever it is.
    let t4 = at("2026-03-02T08:00:02Z");
    let mut busy: Vec<(Uuid, DateTime<Utc>)> = vec![(a.id, t4)];
    busy.extend((0..2500).map(|_| (Uuid::new_v4(), t4)));
    busy.extend([(a.id, t3), (b.id, t4)]);
    store.touch_api_keys(&busy).await.expect("touch a busy minute");
    assert_eq!(last_used(a).await, Some(t4));
    assert_eq!(last_used(b).await, Some(t4));
}

// ---- webhook deliveries -----------------------------------------------------------------------

async fn record_delivery_detects_duplicates(db: &TestDatabase) {
    let store = open(db).await;
    let delivery = NewDelivery { id: "delivery-1".to_owned(), received_at: base_time(), event_count: 3 };
    assert_eq!(store.record_delivery(&delivery).await.expect("record"), DeliveryOutcome::Recorded);
    // Recorded but never marked applied (the first attempt was cut off): apply it now.
    assert_eq!(store.record_delivery(&delivery).await.expect("record again"), DeliveryOutcome::Unapplied);
    store.mark_delivery_applied(&delivery.id, base_time()).await.expect("mark applied");
    assert_eq!(store.record_delivery(&delivery).await.expect("record again"), DeliveryOutcome::Duplicate);
    let retried_later = NewDelivery { received_at: base_time() + TimeDelta::minutes(5), ..delivery.clone() };
    assert_eq!(store.record_delivery(&retried_later).await.expect("record retry"), DeliveryOutcome::Duplicate);

    // Concurrent duplicates: exactly one is told it is the first.
    let other = NewDelivery { id: "delivery-2".to_owned(), ..delivery };
    let outcomes = futures::future::join_all((0..8).map(|_| store.record_delivery(&other))).await;
    let recorded = outcomes.into_iter().map(|o| o.expect("record")).filter(|o| *o == DeliveryOutcome::Recorded).count();
    assert_eq!(recorded, 1);
}

async fn prune_deliveries_forgets_old_ones(db: &TestDatabase) {
    let store = open(db).await;
    for (id, minutes) in [("old-1", 0), ("old-2", 10), ("new", 60)] {
        let delivery =
            NewDelivery { id: id.to_owned(), received_at: base_time() + TimeDelta::minutes(minutes), event_count: 1 };
        store.record_delivery(&delivery).await.expect("record");
        store.mark_delivery_applied(id, base_time()).await.expect("mark applied");
    }
    let pruned = store.prune_deliveries(base_time() + TimeDelta::minutes(60)).await.expect("prune");
    assert_eq!(pruned, 2);
    let outcome = |id: &str| NewDelivery { id: id.to_owned(), received_at: base_time(), event_count: 1 };
    assert_eq!(store.record_delivery(&outcome("new")).await.expect("record"), DeliveryOutcome::Duplicate);
    assert_eq!(store.record_delivery(&outcome("old-1")).await.expect("record"), DeliveryOutcome::Recorded);
}

// ---- vehicles ---------------------------------------------------------------------------------

async fn vehicles_round_trip_with_unknown_fields(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "cars@example.com").await;
    assert_eq!(store.load_vehicles().await.expect("load empty"), vec![]);

    let mut a = vehicle_state(user.id, "enode-a");
    // Fields this build does not know, at the top level and nested, of every JSON kind.
    a.vehicle.extra.insert("futureField".into(), json!({"nested": [1, 2.5, null, "x"], "flag": true}));
    a.vehicle.extra.insert("bigNumber".into(), json!(u64::MAX));
    a.vehicle.extra.insert("fraction".into(), json!(0.1));
    a.vehicle.charge_state.extra.insert("chargeCurve".into(), json!([[0, 11.0], [80, 7.4]]));
    a.vehicle.information.extra.insert("trim".into(), json!("Long Range ✓"));
    a.relink_required = true;
    a.source = DataSource::Refresh;

    let mut b = vehicle_state(user.id, "enode-b");
    b.source = DataSource::Restored;
    b.vehicle.last_seen = None;

    store.write_vehicles(&[upsert(&a), upsert(&b)]).await.expect("write");
    let loaded = load_sorted(store.as_ref()).await;
    assert_eq!(loaded, sorted(vec![a.clone(), b]));

    let loaded_a = loaded.iter().find(|v| v.internal_id == a.internal_id).expect("a loaded");
    assert_eq!(
        serde_json::to_value(&loaded_a.vehicle).expect("to json"),
        serde_json::to_value(&a.vehicle).expect("to json"),
    );
}

async fn nul_characters_are_stored_as_replacement_characters(db: &TestDatabase) {
    // Postgres cannot keep NUL in jsonb; both backends store U+FFFD instead of refusing the
    // vehicle (which would drop it for good).
    let store = open(db).await;
    let user = create_user(store.as_ref(), "nul@example.com").await;
    let mut state = vehicle_state(user.id, "enode-nul");
    state.vehicle.information.display_name = Some("my\0car".to_owned());
    state.vehicle.extra.insert("vendor\0note".into(), json!(["a\0b"]));
    store.write_vehicles(&[upsert(&state)]).await.expect("write");

    let loaded = load_sorted(store.as_ref()).await;
    assert_eq!(loaded.len(), 1);
    let vehicle = &loaded[0].vehicle;
    assert_eq!(vehicle.information.display_name.as_deref(), Some("my\u{FFFD}car"));
    assert_eq!(vehicle.extra.get("vendor\u{FFFD}note"), Some(&json!(["a\u{FFFD}b"])));
}

async fn vehicle_json_is_stored_as_written(db: &TestDatabase) {
    // Byte for byte on both backends: nothing reads inside it, and parsing it into a binary form
    // (PostgreSQL's jsonb, which also reorders keys and adds spaces) was most of PostgreSQL's
    // work per write-behind row.
    let store = open(db).await;
    let user = create_user(store.as_ref(), "as-written@example.com").await;
    let mut state = vehicle_state(user.id, "enode-as-written");
    state.vehicle.extra.insert("zNewEnodeField".into(), json!({"b": 1.50, "a": [true, null]}));
    store.write_vehicles(&[upsert(&state)]).await.expect("write");
    let stored = text_directly(db, "SELECT CAST(data AS TEXT) FROM vehicles").await;
    assert_eq!(stored, serde_json::to_string(&state.vehicle).expect("to json"));
}

async fn unreadable_vehicle_is_corrupt_and_named(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "hand-edited@example.com").await;
    let state = vehicle_state(user.id, "enode-edited");
    store.write_vehicles(&[upsert(&state)]).await.expect("write");
    // Valid JSON, but not a vehicle: what a careless hand edit leaves behind.
    execute_directly(db, r#"UPDATE vehicles SET data = '{"id": 5}'"#).await;
    match store.load_vehicles().await {
        Err(StoreError::Corrupt(what)) => assert!(what.contains(&state.internal_id.to_string()), "{what}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

async fn upsert_replaces_the_row(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "update@example.com").await;
    let new_owner = create_user(store.as_ref(), "buyer@example.com").await;
    let original = vehicle_state(user.id, "enode-a");
    store.write_vehicles(&[upsert(&original)]).await.expect("insert");

    let mut updated = original.clone();
    updated.user_id = new_owner.id;
    updated.vehicle.id = "enode-a-relinked".to_owned();
    updated.vehicle.charge_state.battery_level = Some(81.0);
    updated.vehicle.last_seen = Some(at("2026-03-01T13:00:00Z"));
    updated.received_at = at("2026-03-01T13:00:01Z");
    updated.source = DataSource::Refresh;
    updated.relink_required = true;
    store.write_vehicles(&[upsert(&updated)]).await.expect("update");
    assert_eq!(load_sorted(store.as_ref()).await, vec![updated.clone()]);

    // The old Enode id is free again.
    let reuse = vehicle_state(user.id, "enode-a");
    store.write_vehicles(&[upsert(&reuse)]).await.expect("reuse enode id");
    assert_eq!(load_sorted(store.as_ref()).await, sorted(vec![updated, reuse]));
}

async fn delete_removes_the_row(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "delete@example.com").await;
    let (a, b) = (vehicle_state(user.id, "enode-a"), vehicle_state(user.id, "enode-b"));
    store.write_vehicles(&[upsert(&a), upsert(&b)]).await.expect("insert");

    let unknown = Uuid::new_v4();
    store
        .write_vehicles(&[
            VehicleWrite::Delete { internal_id: a.internal_id },
            VehicleWrite::Delete { internal_id: unknown },
        ])
        .await
        .expect("delete");
    assert_eq!(load_sorted(store.as_ref()).await, vec![b]);
    store.write_vehicles(&[]).await.expect("empty batch");
}

async fn upsert_for_missing_user_is_skipped(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "present@example.com").await;
    let orphan = vehicle_state(Uuid::new_v4(), "enode-orphan");
    let kept = vehicle_state(user.id, "enode-kept");
    store.write_vehicles(&[upsert(&orphan), upsert(&kept)]).await.expect("a missing user does not fail the batch");
    assert_eq!(load_sorted(store.as_ref()).await, vec![kept]);
}

async fn failing_batch_applies_nothing(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "atomic@example.com").await;
    let a = vehicle_state(user.id, "enode-a");
    let d = vehicle_state(user.id, "enode-d");
    store.write_vehicles(&[upsert(&a), upsert(&d)]).await.expect("setup");

    // A new vehicle, a delete and a change that would each succeed alone, then a different
    // internal id claiming a's Enode id, which the unique constraint refuses.
    let c = vehicle_state(user.id, "enode-c");
    let mut a_changed = a.clone();
    a_changed.vehicle.charge_state.battery_level = Some(5.0);
    let clash = vehicle_state(user.id, "enode-a");
    let result = store
        .write_vehicles(&[
            upsert(&c),
            VehicleWrite::Delete { internal_id: d.internal_id },
            upsert(&a_changed),
            upsert(&clash),
        ])
        .await;
    assert_conflict(result, "vehicle enode id");
    assert_eq!(load_sorted(store.as_ref()).await, sorted(vec![a, d]));
}

async fn last_write_in_a_batch_wins(db: &TestDatabase) {
    let store = open(db).await;
    let user = create_user(store.as_ref(), "order@example.com").await;
    let gone = vehicle_state(user.id, "enode-gone");
    let back = vehicle_state(user.id, "enode-back");
    let mut changed_twice = vehicle_state(user.id, "enode-twice");
    store.write_vehicles(&[upsert(&back)]).await.expect("setup");

    let first_version = changed_twice.clone();
    changed_twice.vehicle.charge_state.battery_level = Some(99.0);
    store
        .write_vehicles(&[
            upsert(&gone),
            upsert(&first_version),
            VehicleWrite::Delete { internal_id: back.internal_id },
            VehicleWrite::Delete { internal_id: gone.internal_id },
            upsert(&changed_twice),
            upsert(&back),
        ])
        .await
        .expect("write");
    assert_eq!(load_sorted(store.as_ref()).await, sorted(vec![back, changed_twice]));
}

async fn large_batch_round_trips(db: &TestDatabase) {
    const VEHICLES: usize = 2_000;
    let store = open(db).await;
    let users: Vec<User> = futures::future::join_all((0..20).map(|i| {
        let store = store.clone();
        async move { create_user(store.as_ref(), &format!("fleet{i}@example.com")).await }
    }))
    .await;
    let states: Vec<VehicleState> =
        (0..VEHICLES).map(|i| vehicle_state(users[i % users.len()].id, &format!("enode-{i}"))).collect();
    let batch: Vec<VehicleWrite> = states.iter().map(upsert).collect();

    let started = Instant::now();
    store.write_vehicles(&batch).await.expect("write batch");
    let wrote = started.elapsed();
    let started = Instant::now();
    let loaded = load_sorted(store.as_ref()).await;
    let read = started.elapsed();
    eprintln!("{VEHICLES} vehicles: write {wrote:?}, load {read:?} (debug build)");
    assert_eq!(loaded, sorted(states));
}

async fn load_after_deletes_and_reinserts_finds_every_vehicle_once(db: &TestDatabase) {
    // SQLite restores in pages of rows by rowid: a table with holes (the first rows and every
    // seventh gone) and rows added after them must still come back whole, each vehicle once.
    let store = open(db).await;
    let user = create_user(store.as_ref(), "holes@example.com").await;
    let states: Vec<VehicleState> = (0..2_500).map(|i| vehicle_state(user.id, &format!("enode-{i}"))).collect();
    store.write_vehicles(&states.iter().map(upsert).collect::<Vec<_>>()).await.expect("write");
    let (gone, kept): (Vec<_>, Vec<_>) = states.into_iter().enumerate().partition(|(i, _)| *i < 300 || i % 7 == 0);
    let deletes: Vec<VehicleWrite> =
        gone.iter().map(|(_, s)| VehicleWrite::Delete { internal_id: s.internal_id }).collect();
    store.write_vehicles(&deletes).await.expect("delete");
    let added: Vec<VehicleState> = (0..150).map(|i| vehicle_state(user.id, &format!("enode-new-{i}"))).collect();
    store.write_vehicles(&added.iter().map(upsert).collect::<Vec<_>>()).await.expect("write more");

    let expected: Vec<VehicleState> = kept.into_iter().map(|(_, s)| s).chain(added).collect();
    assert_eq!(load_sorted(store.as_ref()).await, sorted(expected));
}

// ---- connecting (not per backend) -------------------------------------------------------------

#[tokio::test]
async fn unknown_scheme_is_unsupported() {
    let result = store::connect("mysql://root@localhost/evconduit").await;
    assert!(matches!(result, Err(StoreError::UnsupportedUrl)));
}

#[tokio::test]
async fn sqlite_in_memory_is_a_private_working_store() {
    let first = store::connect("sqlite::memory:").await.expect("connect");
    first.migrate().await.expect("migrate");
    let user = create_user(first.as_ref(), "memory@example.com").await;
    // Queries on the pool see what the migrations and the insert did, even after a pause
    // longer than any idle timeout would need to notice.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(first.user_by_id(user.id).await.expect("read"), Some(user.clone()));

    let second = SqliteStore::connect("sqlite::memory:").await.expect("connect");
    second.migrate().await.expect("migrate");
    assert_eq!(second.user_by_id(user.id).await.expect("read"), None);
}

#[tokio::test]
async fn sqlite_creates_a_missing_file() {
    let db = TestDatabase::sqlite();
    let path = db.url().trim_start_matches("sqlite://").to_owned();
    assert!(!std::path::Path::new(&path).exists());
    let store = db.store().await.expect("connect and migrate");
    assert!(std::path::Path::new(&path).exists());
    drop(store);
    db.drop_db().await;
    assert!(!std::path::Path::new(&path).exists());
}

/// The store's connections never checkpoint the WAL themselves (a checkpoint inside a commit made
/// webhook acknowledgements wait for it); a background checkpointer copies committed writes into
/// the database file. Read with `immutable=1`, which ignores the WAL: only checkpointed rows show.
#[tokio::test]
async fn sqlite_checkpoints_writes_into_the_database_file() {
    let db = TestDatabase::sqlite();
    let store = db.store().await.expect("connect and migrate");
    let user = create_user(store.as_ref(), "checkpoint@example.com").await;
    let vehicles: Vec<VehicleState> = (0..50).map(|i| vehicle_state(user.id, &format!("enode-{i}"))).collect();
    store.write_vehicles(&vehicles.iter().map(upsert).collect::<Vec<_>>()).await.expect("write");

    let path = db.url().trim_start_matches("sqlite://").to_owned();
    let file_only = format!("sqlite://{path}?immutable=1");
    let file_only = &file_only;
    eventually("all 50 rows in the database file itself", Duration::from_secs(10), || async move {
        let reader = sqlx::SqlitePool::connect(file_only).await.expect("open the file alone");
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM vehicles").fetch_one(&reader).await.unwrap_or(0);
        reader.close().await;
        count == 50
    })
    .await;
    // The checkpointer also says how long the WAL was (`evconduit_store_wal_bytes`): the frames
    // these writes appended, never more than the file holds.
    let wal_bytes = eventually_some("the WAL's length reported", Duration::from_secs(10), || {
        let reported = store.wal_bytes().expect("a SQLite file store reports its WAL");
        std::future::ready((reported > 0).then_some(reported))
    })
    .await;
    let wal_file = std::fs::metadata(format!("{path}-wal")).expect("the WAL file").len();
    assert!(wal_bytes <= wal_file, "reported {wal_bytes} bytes of a {wal_file}-byte WAL");
    drop(store);
    db.drop_db().await;
}

#[tokio::test]
async fn sqlite_creates_missing_directories() {
    let dir = std::env::temp_dir().join(format!("evc_test_dir_{}", Uuid::new_v4().simple()));
    let url = format!("sqlite://{}/nested/evconduit.db", dir.display());
    let store = store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    assert!(dir.join("nested/evconduit.db").exists());
    drop(store);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_fast_and_keeps_the_password_secret() {
    let started = Instant::now();
    // Port 1 on loopback: nothing listens, so the connection is refused.
    let result = PostgresStore::connect("postgres://evc:hunter2@127.0.0.1:1/evconduit").await;
    let elapsed = started.elapsed();
    match result {
        Err(err @ StoreError::Unavailable(_)) => {
            let message = err.to_string();
            assert!(!message.contains("hunter2"), "{message}");
            assert!(!message.contains("127.0.0.1:1"), "{message}");
        }
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("connected to a port nothing listens on"),
    }
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}
