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

/// Writes a batch in one transaction, in two statements whatever its size: every charging
/// vehicle's session moves on each update, and all of them open at once on the first start with
/// a fleet (a quarter of the load harness's 100 000 vehicles), so batches are not small, and one
/// statement per row cost a round trip each (seconds of work after such a start).
pub(super) async fn write_sessions(pool: &PgPool, batch: &[SessionWrite]) -> Result<(), StoreError> {
    let mut deletes = Vec::new();
    let mut upserts = SessionColumns::default();
    for write in batch {
        match write {
            SessionWrite::Delete(id) => deletes.push(*id),
            SessionWrite::Upsert(session) => upserts.push(session),
        }
    }
    let mut tx = pool.begin().await.map_err(from_sqlx)?;
    if !deletes.is_empty() {
        sqlx::query("DELETE FROM charging_sessions WHERE id = ANY($1)")
            .bind(&deletes)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
    }
    if !upserts.id.is_empty() {
        // The batch arrives as one array per column and UNNEST turns them back into rows.
        // `WHERE EXISTS`: the session of a user deleted meanwhile is skipped, not a failed batch.
        // The update leaves `odometer_km` (the user may have corrected it) and `created_at` alone.
        sqlx::query(
            "INSERT INTO charging_sessions (id, user_id, vehicle_id, enode_vehicle_id, start_time, end_time, \
               battery_level_start, battery_level_end, battery_capacity_kwh, energy_added_kwh, max_rate_kw, \
               avg_rate_kw, rate_samples, location_lat, location_lon, odometer_km, cost_per_kwh, currency, \
               total_cost, created_at, updated_at) \
             SELECT s.*, now() \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[], $6::timestamptz[], \
                         $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::float8[], \
                         $13::int4[], $14::float8[], $15::float8[], $16::float8[], $17::float8[], $18::text[], \
                         $19::float8[], $20::timestamptz[]) \
               AS s(id, user_id, vehicle_id, enode_vehicle_id, start_time, end_time, battery_level_start, \
                    battery_level_end, battery_capacity_kwh, energy_added_kwh, max_rate_kw, avg_rate_kw, \
                    rate_samples, location_lat, location_lon, odometer_km, cost_per_kwh, currency, total_cost, \
                    created_at) \
             WHERE EXISTS (SELECT 1 FROM users AS u WHERE u.id = s.user_id) \
             ON CONFLICT (id) DO UPDATE SET \
               end_time = EXCLUDED.end_time, battery_level_start = EXCLUDED.battery_level_start, \
               battery_level_end = EXCLUDED.battery_level_end, \
               battery_capacity_kwh = EXCLUDED.battery_capacity_kwh, \
               energy_added_kwh = EXCLUDED.energy_added_kwh, max_rate_kw = EXCLUDED.max_rate_kw, \
               avg_rate_kw = EXCLUDED.avg_rate_kw, rate_samples = EXCLUDED.rate_samples, \
               cost_per_kwh = EXCLUDED.cost_per_kwh, currency = EXCLUDED.currency, \
               total_cost = EXCLUDED.total_cost, updated_at = EXCLUDED.updated_at",
        )
        .bind(upserts.id)
        .bind(upserts.user_id)
        .bind(upserts.vehicle_id)
        .bind(upserts.enode_vehicle_id)
        .bind(upserts.start_time)
        .bind(upserts.end_time)
        .bind(upserts.battery_level_start)
        .bind(upserts.battery_level_end)
        .bind(upserts.battery_capacity_kwh)
        .bind(upserts.energy_added_kwh)
        .bind(upserts.max_rate_kw)
        .bind(upserts.avg_rate_kw)
        .bind(upserts.rate_samples)
        .bind(upserts.location_lat)
        .bind(upserts.location_lon)
        .bind(upserts.odometer_km)
        .bind(upserts.cost_per_kwh)
        .bind(upserts.currency)
        .bind(upserts.total_cost)
        .bind(upserts.created_at)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
    }
    tx.commit().await.map_err(from_sqlx)
}

/// Sessions as one array per column, for UNNEST.
#[derive(Default)]
struct SessionColumns<'a> {
    id: Vec<Uuid>,
    user_id: Vec<Uuid>,
    vehicle_id: Vec<Uuid>,
    enode_vehicle_id: Vec<&'a str>,
    start_time: Vec<DateTime<Utc>>,
    end_time: Vec<Option<DateTime<Utc>>>,
    battery_level_start: Vec<f64>,
    battery_level_end: Vec<f64>,
    battery_capacity_kwh: Vec<Option<f64>>,
    energy_added_kwh: Vec<Option<f64>>,
    max_rate_kw: Vec<Option<f64>>,
    avg_rate_kw: Vec<Option<f64>>,
    rate_samples: Vec<i32>,
    location_lat: Vec<Option<f64>>,
    location_lon: Vec<Option<f64>>,
    odometer_km: Vec<Option<f64>>,
    cost_per_kwh: Vec<Option<f64>>,
    currency: Vec<Option<&'a str>>,
    total_cost: Vec<Option<f64>>,
    created_at: Vec<DateTime<Utc>>,
}

impl<'a> SessionColumns<'a> {
    fn push(&mut self, s: &'a ChargingSession) {
        self.id.push(s.id);
        self.user_id.push(s.user_id);
        self.vehicle_id.push(s.vehicle_id);
        self.enode_vehicle_id.push(&s.enode_vehicle_id);
        self.start_time.push(s.start_time);
        self.end_time.push(s.end_time);
        self.battery_level_start.push(s.battery_level_start);
        self.battery_level_end.push(s.battery_level_end);
        self.battery_capacity_kwh.push(s.battery_capacity_kwh);
        self.energy_added_kwh.push(s.energy_added_kwh);
        self.max_rate_kw.push(s.max_rate_kw);
        self.avg_rate_kw.push(s.avg_rate_kw);
        self.rate_samples.push(i32::try_from(s.rate_samples).unwrap_or(i32::MAX));
        self.location_lat.push(s.location_lat);
        self.location_lon.push(s.location_lon);
        self.odometer_km.push(s.odometer_km);
        self.cost_per_kwh.push(s.cost_per_kwh);
        self.currency.push(s.currency.as_deref());
        self.total_cost.push(s.total_cost);
        self.created_at.push(s.created_at);
    }
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
