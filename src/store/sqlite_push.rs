//! The SQLite side of push registrations and their delivery state (see `Store`). Called from
//! the `Store` impl in sqlite.rs, which owns the pool.

use chrono::Utc;
use evconduit_actors::push::{PendingPush, PushHealth, PushRegistration, PushTargetRecord};
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

use super::StoreError;
use super::errors::from_sqlx;
use super::mapping::target_from_row;
use super::rows::{self, db_time};

pub(super) async fn load_push_targets(pool: &SqlitePool) -> Result<Vec<PushTargetRecord>, StoreError> {
    sqlx::query(
        "SELECT vehicle_id, enode_vehicle_id, user_id, webhook_id, url, vehicle_ref, registered_at, \
           last_success_at, last_failure_at, last_failure_reason, consecutive_failures, \
           pending_version, pending_status, pending_created_at, settled_version \
         FROM push_registrations ORDER BY registered_at, vehicle_id",
    )
    .fetch_all(pool)
    .await
    .map_err(from_sqlx)?
    .iter()
    .map(target_from_row)
    .collect()
}

pub(super) async fn save_push_registration(
    mut tx: Transaction<'static, Sqlite>,
    r: &PushRegistration,
) -> Result<(), StoreError> {
    // The same user's webhook id moved to another vehicle: that vehicle's entry goes.
    sqlx::query("DELETE FROM push_registrations WHERE user_id = ?1 AND webhook_id = ?2 AND vehicle_id <> ?3")
        .bind(r.user_id.hyphenated())
        .bind(&r.webhook_id)
        .bind(r.vehicle_id.hyphenated())
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
    // Re-registering keeps what is owed (pending, settled); a new URL starts a clean health record.
    sqlx::query(
        "INSERT INTO push_registrations (vehicle_id, enode_vehicle_id, user_id, webhook_id, url, vehicle_ref, \
           registered_at, consecutive_failures, settled_version, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 0, ?8) \
         ON CONFLICT (vehicle_id) DO UPDATE SET \
           enode_vehicle_id = excluded.enode_vehicle_id, user_id = excluded.user_id, \
           webhook_id = excluded.webhook_id, vehicle_ref = excluded.vehicle_ref, \
           registered_at = excluded.registered_at, updated_at = excluded.updated_at, \
           last_success_at = CASE WHEN push_registrations.url = excluded.url \
             THEN push_registrations.last_success_at END, \
           last_failure_at = CASE WHEN push_registrations.url = excluded.url \
             THEN push_registrations.last_failure_at END, \
           last_failure_reason = CASE WHEN push_registrations.url = excluded.url \
             THEN push_registrations.last_failure_reason END, \
           consecutive_failures = CASE WHEN push_registrations.url = excluded.url \
             THEN push_registrations.consecutive_failures ELSE 0 END, \
           url = excluded.url",
    )
    .bind(r.vehicle_id.hyphenated())
    .bind(&r.enode_vehicle_id)
    .bind(r.user_id.hyphenated())
    .bind(&r.webhook_id)
    .bind(&r.url)
    .bind(&r.vehicle_ref)
    .bind(db_time(r.registered_at))
    .bind(db_time(Utc::now()))
    .execute(&mut *tx)
    .await
    .map_err(from_sqlx)?;
    tx.commit().await.map_err(from_sqlx)
}

pub(super) async fn save_push_pending(
    pool: &SqlitePool,
    vehicle_id: Uuid,
    pending: &PendingPush,
) -> Result<(), StoreError> {
    let status = std::str::from_utf8(&pending.status)
        .map_err(|_| StoreError::Invalid("a pending push's status body is not UTF-8".into()))?;
    // Only forwards: an older version (a slow write) never replaces a newer one, and a settled
    // version is never owed again.
    sqlx::query(
        "UPDATE push_registrations SET pending_version = ?2, pending_status = ?3, pending_created_at = ?4, \
           updated_at = ?5 \
         WHERE vehicle_id = ?1 AND ?2 > settled_version AND (pending_version IS NULL OR pending_version < ?2)",
    )
    .bind(vehicle_id.hyphenated())
    .bind(rows::version_column(pending.version)?)
    .bind(status)
    .bind(db_time(pending.created_at))
    .bind(db_time(Utc::now()))
    .execute(pool)
    .await
    .map(drop)
    .map_err(from_sqlx)
}

pub(super) async fn record_push_attempt(
    pool: &SqlitePool,
    vehicle_id: Uuid,
    settled: Option<u64>,
    health: &PushHealth,
) -> Result<(), StoreError> {
    let settled = settled.map(rows::version_column).transpose()?.unwrap_or(0);
    // SET expressions read the row as it was, so the pending push is cleared against the new
    // settled version computed from the old one.
    sqlx::query(
        "UPDATE push_registrations SET \
           last_success_at = ?2, last_failure_at = ?3, last_failure_reason = ?4, consecutive_failures = ?5, \
           settled_version = max(settled_version, ?6), \
           pending_version = CASE WHEN pending_version <= max(settled_version, ?6) THEN NULL ELSE pending_version END, \
           pending_status = CASE WHEN pending_version <= max(settled_version, ?6) THEN NULL ELSE pending_status END, \
           pending_created_at = CASE WHEN pending_version <= max(settled_version, ?6) \
             THEN NULL ELSE pending_created_at END, \
           updated_at = ?7 \
         WHERE vehicle_id = ?1",
    )
    .bind(vehicle_id.hyphenated())
    .bind(health.last_success_at.map(db_time))
    .bind(health.last_failure_at.map(db_time))
    .bind(&health.last_failure_reason)
    .bind(i64::from(health.consecutive_failures))
    .bind(settled)
    .bind(db_time(Utc::now()))
    .execute(pool)
    .await
    .map(drop)
    .map_err(from_sqlx)
}
