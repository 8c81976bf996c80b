//! Records from rows, written once for both backends (see `columns.rs`). A value the code cannot
//! read is `Corrupt`, named by the row it is in so it can be found.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use evconduit_actors::push::{PendingPush, PushHealth, PushRegistration, PushTargetRecord};
use evconduit_actors::sessions::{ChargingSession, ElectricityRate};
use uuid::Uuid;

use super::columns::Columns;
use super::load::RawVehicle;
use super::{ApiKey, StoreError, User, rows};

pub(crate) fn user_from_row(row: &impl Columns) -> Result<User, StoreError> {
    Ok(User {
        id: row.uuid("id")?,
        email: row.get("email")?,
        name: row.get("name")?,
        role: rows::role(&row.get::<String>("role")?)?,
        tier: rows::tier(&row.get::<String>("tier")?)?,
        trial_ends_at: row.get("trial_ends_at")?,
        created_at: row.get("created_at")?,
    })
}

pub(crate) fn key_from_row(row: &impl Columns) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.uuid("id")?,
        hash: rows::key_hash(&row.get::<String>("key_hash")?)?,
        user_id: row.uuid("user_id")?,
        label: row.get("label")?,
        created_at: row.get("created_at")?,
        last_used_at: row.get("last_used_at")?,
        revoked_at: row.get("revoked_at")?,
    })
}

pub(crate) fn raw_vehicle(row: &impl Columns) -> Result<RawVehicle, StoreError> {
    let internal_id = row.uuid("id")?;
    let named = rows::in_vehicle(internal_id);
    Ok(RawVehicle {
        internal_id,
        user_id: row.uuid("user_id").map_err(&named)?,
        data: row.get("data").map_err(&named)?,
        source: row.get("source").map_err(&named)?,
        received_at: row.get("received_at").map_err(&named)?,
        relink_required: row.get("relink_required").map_err(&named)?,
    })
}

pub(crate) fn session_from_row(row: &impl Columns) -> Result<ChargingSession, StoreError> {
    let id = row.uuid("id")?;
    let read = || -> Result<ChargingSession, StoreError> {
        Ok(ChargingSession {
            id,
            user_id: row.uuid("user_id")?,
            vehicle_id: row.uuid("vehicle_id")?,
            enode_vehicle_id: row.get("enode_vehicle_id")?,
            start_time: row.get("start_time")?,
            end_time: row.get("end_time")?,
            battery_level_start: row.get("battery_level_start")?,
            battery_level_end: row.get("battery_level_end")?,
            battery_capacity_kwh: row.get("battery_capacity_kwh")?,
            energy_added_kwh: row.get("energy_added_kwh")?,
            max_rate_kw: row.get("max_rate_kw")?,
            avg_rate_kw: row.get("avg_rate_kw")?,
            rate_samples: row.count("rate_samples")?,
            location_lat: row.get("location_lat")?,
            location_lon: row.get("location_lon")?,
            odometer_km: row.get("odometer_km")?,
            cost_per_kwh: row.get("cost_per_kwh")?,
            currency: row.get("currency")?,
            total_cost: row.get("total_cost")?,
            created_at: row.get("created_at")?,
        })
    };
    read().map_err(rows::in_session(id))
}

pub(crate) fn rate_from_row(row: &impl Columns) -> Result<(Uuid, ElectricityRate), StoreError> {
    Ok((
        row.uuid("user_id")?,
        ElectricityRate {
            cost_per_kwh: row.get("cost_per_kwh")?,
            currency: row.get("currency")?,
            updated_at: row.get("updated_at")?,
        },
    ))
}

pub(crate) fn target_from_row(row: &impl Columns) -> Result<PushTargetRecord, StoreError> {
    let vehicle_id = row.uuid("vehicle_id")?;
    let read = || -> Result<PushTargetRecord, StoreError> {
        let pending = match row.get::<Option<i64>>("pending_version")? {
            None => None,
            Some(version) => Some(PendingPush {
                version: rows::version(version)?,
                status: Bytes::from(row.get::<String>("pending_status")?),
                created_at: row.get::<Option<DateTime<Utc>>>("pending_created_at")?.unwrap_or_default(),
            }),
        };
        Ok(PushTargetRecord {
            registration: PushRegistration {
                vehicle_id,
                enode_vehicle_id: row.get("enode_vehicle_id")?,
                user_id: row.uuid("user_id")?,
                webhook_id: row.get("webhook_id")?,
                url: row.get("url")?,
                vehicle_ref: row.get("vehicle_ref")?,
                registered_at: row.get("registered_at")?,
            },
            health: PushHealth {
                last_success_at: row.get("last_success_at")?,
                last_failure_at: row.get("last_failure_at")?,
                last_failure_reason: row.get("last_failure_reason")?,
                consecutive_failures: row.count("consecutive_failures")?,
            },
            pending,
            settled_version: rows::version(row.get("settled_version")?)?,
        })
    };
    read().map_err(rows::in_push_target(vehicle_id))
}
