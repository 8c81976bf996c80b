//! The Postgres side of charging sessions and electricity rates (see `Store`). Called from the
//! `Store` impl in postgres.rs, which owns the pool.

use chrono::{DateTime, Utc};
use evconduit_actors::sessions::{ChargingSession, ElectricityRate, SessionWrite};
use sqlx::postgres::PgPool;
use uuid::Uuid;

use super::StoreError;
use super::errors::from_sqlx;
use super::mapping::{rate_from_row, session_from_row};

macro_rules! session_columns {
    () => {
        "id, user_id, vehicle_id, enode_vehicle_id, start_time, end_time, battery_level_start, \
         battery_level_end, battery_capacity_kwh, energy_added_kwh, max_rate_kw, avg_rate_kw, rate_samples, \
         location_lat, location_lon, odometer_km, cost_per_kwh, currency, total_cost, created_at"
    };
}

pub(super) async fn load_open_sessions(pool: &PgPool) -> Result<Vec<ChargingSession>, StoreError> {
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

pub(super) async fn write_sessions(pool: &PgPool, batch: &[SessionWrite]) -> Result<(), StoreError> {
    // Sessions change a few times per charge, so batches are small: one statement per write in
    // one transaction (all or nothing) is plenty.
    let mut tx = pool.begin().await.map_err(from_sqlx)?;
    for write in batch {
        match write {
            SessionWrite::Delete(id) => {
                sqlx::query("DELETE FROM charging_sessions WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
            }
            SessionWrite::Upsert(s) => {
                // `WHERE EXISTS`: the session of a user deleted meanwhile is skipped, not a failed
                // batch. The update leaves `odometer_km` (the user may have corrected it) and
                // `created_at` alone.
                sqlx::query(
                    "INSERT INTO charging_sessions (id, user_id, vehicle_id, enode_vehicle_id, start_time, end_time, \
                       battery_level_start, battery_level_end, battery_capacity_kwh, energy_added_kwh, max_rate_kw, \
                       avg_rate_kw, rate_samples, location_lat, location_lon, odometer_km, cost_per_kwh, currency, \
                       total_cost, created_at, updated_at) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, now() \
                     WHERE EXISTS (SELECT 1 FROM users WHERE id = $2) \
                     ON CONFLICT (id) DO UPDATE SET \
                       end_time = EXCLUDED.end_time, battery_level_start = EXCLUDED.battery_level_start, \
                       battery_level_end = EXCLUDED.battery_level_end, \
                       battery_capacity_kwh = EXCLUDED.battery_capacity_kwh, \
                       energy_added_kwh = EXCLUDED.energy_added_kwh, max_rate_kw = EXCLUDED.max_rate_kw, \
                       avg_rate_kw = EXCLUDED.avg_rate_kw, rate_samples = EXCLUDED.rate_samples, \
                       cost_per_kwh = EXCLUDED.cost_per_kwh, currency = EXCLUDED.currency, \
                       total_cost = EXCLUDED.total_cost, updated_at = EXCLUDED.updated_at",
                )
                .bind(s.id)
                .bind(s.user_id)
                .bind(s.vehicle_id)
                .bind(&s.enode_vehicle_id)
                .bind(s.start_time)
                .bind(s.end_time)
                .bind(s.battery_level_start)
                .bind(s.battery_level_end)
                .bind(s.battery_capacity_kwh)
                .bind(s.energy_added_kwh)
                .bind(s.max_rate_kw)
                .bind(s.avg_rate_kw)
                .bind(i32::try_from(s.rate_samples).unwrap_or(i32::MAX))
                .bind(s.location_lat)
                .bind(s.location_lon)
                .bind(s.odometer_km)
                .bind(s.cost_per_kwh)
                .bind(&s.currency)
                .bind(s.total_cost)
                .bind(s.created_at)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
            }
        }
    }
    tx.commit().await.map_err(from_sqlx)
}

pub(super) async fn list_sessions(
    pool: &PgPool,
    user_id: Uuid,
    since: Option<DateTime<Utc>>,
    limit: u32,
) -> Result<Vec<ChargingSession>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        session_columns!(),
        " FROM charging_sessions WHERE user_id = $1 AND end_time IS NOT NULL \
          AND ($2::timestamptz IS NULL OR start_time > $2) ORDER BY start_time, id LIMIT $3"
    ))
    .bind(user_id)
    .bind(since)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(from_sqlx)?
    .iter()
    .map(session_from_row)
    .collect()
}

pub(super) async fn set_latest_session_odometer(
    pool: &PgPool,
    vehicle_id: Uuid,
    odometer_km: f64,
) -> Result<Option<ChargingSession>, StoreError> {
    sqlx::query(concat!(
        "UPDATE charging_sessions SET odometer_km = $1, updated_at = now() WHERE id = \
           (SELECT id FROM charging_sessions WHERE vehicle_id = $2 ORDER BY start_time DESC, id DESC LIMIT 1) \
         RETURNING ",
        session_columns!()
    ))
    .bind(odometer_km)
    .bind(vehicle_id)
    .fetch_optional(pool)
    .await
    .map_err(from_sqlx)?
    .as_ref()
    .map(session_from_row)
    .transpose()
}

pub(super) async fn set_electricity_rate(
    pool: &PgPool,
    user_id: Uuid,
    rate: &ElectricityRate,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO electricity_rates (user_id, cost_per_kwh, currency, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET cost_per_kwh = EXCLUDED.cost_per_kwh, \
           currency = EXCLUDED.currency, updated_at = EXCLUDED.updated_at",
    )
    .bind(user_id)
    .bind(rate.cost_per_kwh)
    .bind(&rate.currency)
    .bind(rate.updated_at)
    .execute(pool)
    .await
    .map(drop)
    .map_err(from_sqlx)
}

pub(super) async fn electricity_rate(pool: &PgPool, user_id: Uuid) -> Result<Option<ElectricityRate>, StoreError> {
    sqlx::query("SELECT user_id, cost_per_kwh, currency, updated_at FROM electricity_rates WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await
        .map_err(from_sqlx)?
        .as_ref()
        .map(|row| rate_from_row(row).map(|(_, rate)| rate))
        .transpose()
}

pub(super) async fn load_electricity_rates(pool: &PgPool) -> Result<Vec<(Uuid, ElectricityRate)>, StoreError> {
    sqlx::query("SELECT user_id, cost_per_kwh, currency, updated_at FROM electricity_rates")
        .fetch_all(pool)
        .await
        .map_err(from_sqlx)?
        .iter()
        .map(rate_from_row)
        .collect()
}
