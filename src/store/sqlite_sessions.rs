//! The SQLite side of charging sessions and electricity rates (see `Store`). Called from the
//! `Store` impl in sqlite.rs, which owns the pool.

use chrono::{DateTime, Utc};
use evconduit_actors::sessions::{ChargingSession, ElectricityRate, SessionWrite};
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

use super::StoreError;
use super::errors::from_sqlx;
use super::mapping::{rate_from_row, session_from_row};
use super::rows::db_time;
use super::sqlite_statements::{ChunkStatement, placeholder_rows};

macro_rules! session_columns {
    () => {
        "id, user_id, vehicle_id, enode_vehicle_id, start_time, end_time, battery_level_start, \
         battery_level_end, battery_capacity_kwh, energy_added_kwh, max_rate_kw, avg_rate_kw, rate_samples, \
         location_lat, location_lon, odometer_km, cost_per_kwh, currency, total_cost, created_at"
    };
}

pub(super) async fn load_open_sessions(pool: &SqlitePool) -> Result<Vec<ChargingSession>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        session_columns!(),
        " FROM charging_sessions WHERE end_time IS NULL ORDER BY start_time, id"
    ))
    .fetch_all(pool)
    .await
    .map_err(from_sqlx)?
    .iter()
    .map(session_from_row)
    .collect()
}

/// Rows per upsert statement: 21 parameters each, far below SQLite's 32 766.
const ROWS_PER_STATEMENT: usize = 100;

/// Writes a batch in one transaction. Upserts go many to a statement: every charging vehicle's
/// session moves on each update, and all of them open at once on the first start with a fleet
/// (a quarter of the load harness's 100 000 vehicles), so batches are not small; one statement,
/// one round trip to sqlx's worker thread, per row held the writers' turn for most of a second.
pub(super) async fn write_sessions(
    mut tx: Transaction<'static, Sqlite>,
    batch: &[SessionWrite],
) -> Result<(), StoreError> {
    let now = db_time(Utc::now());
    let mut upserts = Vec::with_capacity(batch.len());
    for write in batch {
        match write {
            SessionWrite::Delete(id) => {
                sqlx::query("DELETE FROM charging_sessions WHERE id = ?1")
                    .bind(id.hyphenated())
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
            }
            SessionWrite::Upsert(session) => upserts.push(session.as_ref()),
        }
    }
    for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
        static UPSERT: ChunkStatement = ChunkStatement::new(ROWS_PER_STATEMENT, upsert_statement);
        let mut query = sqlx::query(UPSERT.text(chunk.len()));
        for s in chunk {
            query = query
                .bind(s.id.hyphenated())
                .bind(s.user_id.hyphenated())
                .bind(s.vehicle_id.hyphenated())
                .bind(&s.enode_vehicle_id)
                .bind(db_time(s.start_time))
                .bind(s.end_time.map(db_time))
                .bind(s.battery_level_start)
                .bind(s.battery_level_end)
                .bind(s.battery_capacity_kwh)
                .bind(s.energy_added_kwh)
                .bind(s.max_rate_kw)
                .bind(s.avg_rate_kw)
                .bind(i64::from(s.rate_samples))
                .bind(s.location_lat)
                .bind(s.location_lon)
                .bind(s.odometer_km)
                .bind(s.cost_per_kwh)
                .bind(&s.currency)
                .bind(s.total_cost)
                .bind(db_time(s.created_at))
                .bind(now);
        }
        query.execute(&mut *tx).await.map_err(from_sqlx)?;
    }
    tx.commit().await.map_err(from_sqlx)
}

/// `INSERT ... SELECT FROM (VALUES ...)` for `rows` sessions. `WHERE EXISTS`: the session of a
/// user deleted meanwhile is skipped, not a failed batch (the WHERE also keeps SQLite's parser
/// from reading ON CONFLICT as a join condition). The update leaves `odometer_km` (the user may
/// have corrected it) and `created_at` alone.
fn upsert_statement(rows: usize) -> String {
    let values = placeholder_rows(21, rows);
    format!(
        "INSERT INTO charging_sessions ({}, updated_at) \
         SELECT column1, column2, column3, column4, column5, column6, column7, column8, column9, column10, \
           column11, column12, column13, column14, column15, column16, column17, column18, column19, column20, \
           column21 \
         FROM (VALUES {values}) AS v \
         WHERE EXISTS (SELECT 1 FROM users WHERE users.id = v.column2) \
         ON CONFLICT (id) DO UPDATE SET \
           end_time = excluded.end_time, battery_level_start = excluded.battery_level_start, \
           battery_level_end = excluded.battery_level_end, battery_capacity_kwh = excluded.battery_capacity_kwh, \
           energy_added_kwh = excluded.energy_added_kwh, max_rate_kw = excluded.max_rate_kw, \
           avg_rate_kw = excluded.avg_rate_kw, rate_samples = excluded.rate_samples, \
           cost_per_kwh = excluded.cost_per_kwh, currency = excluded.currency, \
           total_cost = excluded.total_cost, updated_at = excluded.updated_at",
        session_columns!()
    )
}

pub(super) async fn list_sessions(
    pool: &SqlitePool,
    user_id: Uuid,
    since: Option<DateTime<Utc>>,
    limit: u32,
) -> Result<Vec<ChargingSession>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        session_columns!(),
        " FROM charging_sessions WHERE user_id = ?1 AND end_time IS NOT NULL \
          AND (?2 IS NULL OR start_time > ?2) ORDER BY start_time, id LIMIT ?3"
    ))
    .bind(user_id.hyphenated())
    .bind(since.map(db_time))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(from_sqlx)?
    .iter()
    .map(session_from_row)
    .collect()
}

pub(super) async fn set_latest_session_odometer(
    pool: &SqlitePool,
    vehicle_id: Uuid,
    odometer_km: f64,
) -> Result<Option<ChargingSession>, StoreError> {
    sqlx::query(concat!(
        "UPDATE charging_sessions SET odometer_km = ?1, updated_at = ?2 WHERE id = \
           (SELECT id FROM charging_sessions WHERE vehicle_id = ?3 ORDER BY start_time DESC, id DESC LIMIT 1) \
         RETURNING ",
        session_columns!()
    ))
    .bind(odometer_km)
    .bind(db_time(Utc::now()))
    .bind(vehicle_id.hyphenated())
    .fetch_optional(pool)
    .await
    .map_err(from_sqlx)?
    .as_ref()
    .map(session_from_row)
    .transpose()
}

pub(super) async fn set_electricity_rate(
    pool: &SqlitePool,
    user_id: Uuid,
    rate: &ElectricityRate,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO electricity_rates (user_id, cost_per_kwh, currency, updated_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (user_id) DO UPDATE SET cost_per_kwh = excluded.cost_per_kwh, \
           currency = excluded.currency, updated_at = excluded.updated_at",
    )
    .bind(user_id.hyphenated())
    .bind(rate.cost_per_kwh)
    .bind(&rate.currency)
    .bind(db_time(rate.updated_at))
    .execute(pool)
    .await
    .map(drop)
    .map_err(from_sqlx)
}

pub(super) async fn electricity_rate(pool: &SqlitePool, user_id: Uuid) -> Result<Option<ElectricityRate>, StoreError> {
    sqlx::query("SELECT user_id, cost_per_kwh, currency, updated_at FROM electricity_rates WHERE user_id = ?1")
        .bind(user_id.hyphenated())
        .fetch_optional(pool)
        .await
        .map_err(from_sqlx)?
        .as_ref()
        .map(|row| rate_from_row(row).map(|(_, rate)| rate))
        .transpose()
}

pub(super) async fn load_electricity_rates(pool: &SqlitePool) -> Result<Vec<(Uuid, ElectricityRate)>, StoreError> {
    sqlx::query("SELECT user_id, cost_per_kwh, currency, updated_at FROM electricity_rates")
        .fetch_all(pool)
        .await
        .map_err(from_sqlx)?
        .iter()
        .map(rate_from_row)
        .collect()
}
