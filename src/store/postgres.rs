//! The Postgres store: the production backend.
//!
//! Column types: see migrations/postgres/0001_schema.sql (uuid, timestamptz, json, boolean; the
//! vehicle's JSON is `json` since 0006).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use evconduit_actors::ports::VehicleWrite;
use evconduit_actors::state::VehicleState;
use futures::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use uuid::Uuid;

use super::errors::{from_migrate, from_sqlx};
use super::load::{self};
use super::mapping::{key_from_row, raw_vehicle, user_from_row};
use super::rows;
use super::{batch, postgres_push, postgres_sessions, *};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The store's work is bursty but small (write-behind batches, account changes); a handful of
/// connections serves it without taking a large share of the server's `max_connections`.
const MAX_CONNECTIONS: u32 = 10;
/// A dead or unreachable database must surface as `Unavailable` quickly (for /readyz, for the
/// write-behind to back off) instead of parking callers for sqlx's default 30 s.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Give idle connections back to the server after a quiet spell.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Recycle connections now and then so server-side memory and failovers do not pin old ones.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

macro_rules! user_columns {
    () => {
        "id, email, name, role, tier, trial_ends_at, created_at"
    };
}

macro_rules! key_columns {
    () => {
        "id, key_hash, user_id, label, created_at, last_used_at, revoked_at"
    };
}

/// Connections for recording webhook deliveries; Enode sends a few at a time.
const DELIVERY_CONNECTIONS: u32 = 4;

pub struct PostgresStore {
    pool: PgPool,
    /// Webhook deliveries' records, committed without waiting for the WAL to reach the disk
    /// (`synchronous_commit = off`), on connections of their own. A delivery is acknowledged only
    /// once recorded, and under webhook load its one-row commit waited for the flush of the
    /// write-behind's megabytes of WAL ahead of it: a record took 8.6 ms on average (6 ms without
    /// that wait, the rest being the server's own run queue), so four deliveries in flight left
    /// the server process using 0.8 of its core. Without the wait it uses 0.86, and PostgreSQL's
    /// own processes, which run on either core, take the rest. The record only lets a repeated
    /// delivery be recognised: one lost to a database crash within the flush delay
    /// (`wal_writer_delay`, 200 ms by default) makes Enode's redelivery of it, if any, apply
    /// again, which is harmless (newer state wins). Everything else, the vehicles' states
    /// included, keeps the server's durable commit.
    deliveries: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        // The parse error may quote the URL, password included; say only that it is not usable.
        let options = PgConnectOptions::from_str(url).map_err(|_| StoreError::UnsupportedUrl)?;
        let pool = pool_options(MAX_CONNECTIONS)
            // Eager: a wrong URL or a database that is down is reported at start, not at the
            // first write.
            .connect_with(options.clone())
            .await
            .map_err(from_sqlx)?;
        let deliveries =
            pool_options(DELIVERY_CONNECTIONS).connect_lazy_with(options.options([("synchronous_commit", "off")]));
        Ok(Self { pool, deliveries })
    }
}

fn pool_options(connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(IDLE_TIMEOUT)
        .max_lifetime(MAX_LIFETIME)
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        // sqlx holds a Postgres advisory lock while migrating, so two processes starting at
        // once apply each migration once; the second finds them applied.
        MIGRATOR.run(&self.pool).await.map_err(from_migrate)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop).map_err(from_sqlx)
    }

    async fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let row = sqlx::query(concat!(
            "INSERT INTO users (id, email, name, role, tier, trial_ends_at, created_at) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
            user_columns!()
        ))
        .bind(user.id)
        .bind(&user.email)
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(user.tier.as_str())
        .bind(user.trial_ends_at)
        .bind(user.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)?;
        user_from_row(&row)
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        // The same expression as the unique index users_email_key, so the index serves it.
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            r#" FROM users WHERE lower(email COLLATE "C") = lower($1 COLLATE "C")"#
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query(concat!("SELECT ", user_columns!(), " FROM users ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError> {
        let row = sqlx::query(concat!(
            "INSERT INTO api_keys (id, key_hash, user_id, label, created_at) ",
            "VALUES ($1, $2, $3, $4, $5) RETURNING ",
            key_columns!()
        ))
        .bind(key.id)
        .bind(key.hash.to_hex())
        .bind(key.user_id)
        .bind(&key.label)
        .bind(key.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)?;
        key_from_row(&row)
    }

    async fn api_key_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
        sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE key_hash = $1"))
            .bind(hash.to_hex())
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(key_from_row)
            .transpose()
    }

    async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>, StoreError> {
        sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE user_id = $1 ORDER BY created_at, id"))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(key_from_row)
            .collect()
    }

    async fn active_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .iter()
        .map(key_from_row)
        .collect()
    }

    async fn revoke_api_key(&self, id: Uuid, at: DateTime<Utc>) -> Result<Option<ApiKey>, StoreError> {
        // One statement, so two revocations racing still keep the first time.
        sqlx::query(concat!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING ",
            key_columns!()
        ))
        .bind(at)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?
        .as_ref()
        .map(key_from_row)
        .transpose()
    }

    async fn keys_revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<ApiKey>, StoreError> {
        sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE revoked_at >= $1 ORDER BY revoked_at, id"))
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(key_from_row)
            .collect()
    }

    async fn touch_api_keys(&self, used: &[(Uuid, DateTime<Utc>)]) -> Result<(), StoreError> {
        if used.is_empty() {
            return Ok(());
        }
        let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) = used.iter().copied().unzip();
        // One statement for the batch. The same key may appear more than once: the GROUP BY
        // keeps its latest use (UPDATE ... FROM would otherwise pick one row at random), and the
        // WHERE keeps last_used_at from going backwards.
        sqlx::query(
            "UPDATE api_keys AS k SET last_used_at = u.at \
             FROM (SELECT id, max(at) AS at FROM UNNEST($1::uuid[], $2::timestamptz[]) AS t(id, at) \
                   GROUP BY id) AS u \
             WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)",
        )
        .bind(ids)
        .bind(times)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(from_sqlx)
    }

    async fn load_vehicles(&self) -> Result<Vec<VehicleState>, StoreError> {
        // As text: the JSON is parsed in parallel off this task (see load.rs); a json column is
        // its text already.
        let rows =
            sqlx::query("SELECT id, user_id, data::text AS data, source, received_at, relink_required FROM vehicles")
                .fetch(&self.pool)
                .map_err(from_sqlx)
                .and_then(|row| std::future::ready(raw_vehicle(&row)));
        load::decode_all(rows).await
    }

    async fn write_vehicles(&self, batch: &[VehicleWrite]) -> Result<(), StoreError> {
        let batch = batch::reduce(batch);
        if batch.deletes.is_empty() && batch.upserts.is_empty() {
            return Ok(());
        }
        let columns = UpsertColumns::new(&batch.upserts)?;
        // The whole batch is two statements in one transaction: all or nothing, and a fixed
        // number of round trips whatever the batch size (one per row would cap the write-behind
        // at the network's latency).
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        if !batch.deletes.is_empty() {
            sqlx::query("DELETE FROM vehicles WHERE id = ANY($1)")
                .bind(&batch.deletes)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        }
        if !batch.upserts.is_empty() {
            // The batch arrives as one array per column and UNNEST turns them back into rows.
            // `WHERE EXISTS`: a vehicle whose user was deleted meanwhile is skipped rather than
            // failing the batch on the foreign key.
            sqlx::query(
                "INSERT INTO vehicles \
                   (id, enode_id, user_id, data, last_seen, received_at, source, relink_required, updated_at) \
                 SELECT w.id, w.enode_id, w.user_id, w.data::json, w.last_seen, w.received_at, \
                        w.source, w.relink_required, now() \
                 FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], \
                             $6::timestamptz[], $7::text[], $8::bool[]) \
                   AS w(id, enode_id, user_id, data, last_seen, received_at, source, relink_required) \
                 WHERE EXISTS (SELECT 1 FROM users AS u WHERE u.id = w.user_id) \
                 ON CONFLICT (id) DO UPDATE SET \
                   enode_id = EXCLUDED.enode_id, user_id = EXCLUDED.user_id, data = EXCLUDED.data, \
                   last_seen = EXCLUDED.last_seen, received_at = EXCLUDED.received_at, \
                   source = EXCLUDED.source, relink_required = EXCLUDED.relink_required, \
                   updated_at = EXCLUDED.updated_at",
            )
            .bind(columns.ids)
            .bind(columns.enode_ids)
            .bind(columns.user_ids)
            .bind(columns.data)
            .bind(columns.last_seen)
            .bind(columns.received_at)
            .bind(columns.sources)
            .bind(columns.relink_required)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)
    }

    async fn record_delivery(&self, delivery: &NewDelivery) -> Result<DeliveryOutcome, StoreError> {
        // Insert-or-nothing in one statement: two concurrent deliveries with the same id cannot
        // both be told `Recorded`.
        let result = sqlx::query(
            "INSERT INTO webhook_deliveries (id, received_at, event_count) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&delivery.id)
        .bind(delivery.received_at)
        .bind(delivery.event_count)
        .execute(&self.deliveries)
        .await
        .map_err(from_sqlx)?;
        if result.rows_affected() == 1 {
            return Ok(DeliveryOutcome::Recorded);
        }
        let applied: Option<Option<DateTime<Utc>>> =
            sqlx::query_scalar("SELECT applied_at FROM webhook_deliveries WHERE id = $1")
                .bind(&delivery.id)
                .fetch_optional(&self.deliveries)
                .await
                .map_err(from_sqlx)?;
        // Pruned between the two statements: it was applied long ago.
        Ok(match applied {
            Some(None) => DeliveryOutcome::Unapplied,
            _ => DeliveryOutcome::Duplicate,
        })
    }

    async fn mark_delivery_applied(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE webhook_deliveries SET applied_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.deliveries)
            .await
            .map(|_| ())
            .map_err(from_sqlx)
    }

    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(from_sqlx)
    }

    async fn load_open_sessions(&self) -> Result<Vec<ChargingSession>, StoreError> {
        postgres_sessions::load_open_sessions(&self.pool).await
    }

    async fn write_sessions(&self, batch: &[SessionWrite]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        postgres_sessions::write_sessions(&self.pool, batch).await
    }

    async fn list_sessions(
        &self,
        user_id: Uuid,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<ChargingSession>, StoreError> {
        postgres_sessions::list_sessions(&self.pool, user_id, since, limit).await
    }

    async fn set_latest_session_odometer(
        &self,
        vehicle_id: Uuid,
        odometer_km: f64,
    ) -> Result<Option<ChargingSession>, StoreError> {
        postgres_sessions::set_latest_session_odometer(&self.pool, vehicle_id, odometer_km).await
    }

    async fn set_electricity_rate(&self, user_id: Uuid, rate: &ElectricityRate) -> Result<(), StoreError> {
        postgres_sessions::set_electricity_rate(&self.pool, user_id, rate).await
    }

    async fn electricity_rate(&self, user_id: Uuid) -> Result<Option<ElectricityRate>, StoreError> {
        postgres_sessions::electricity_rate(&self.pool, user_id).await
    }

    async fn load_electricity_rates(&self) -> Result<Vec<(Uuid, ElectricityRate)>, StoreError> {
        postgres_sessions::load_electricity_rates(&self.pool).await
    }

    async fn load_push_targets(&self) -> Result<Vec<PushTargetRecord>, StoreError> {
        postgres_push::load_push_targets(&self.pool).await
    }

    async fn save_push_registration(&self, registration: &PushRegistration) -> Result<(), StoreError> {
        postgres_push::save_push_registration(&self.pool, registration).await
    }

    async fn save_push_pending(&self, vehicle_id: Uuid, pending: &PendingPush) -> Result<(), StoreError> {
        postgres_push::save_push_pending(&self.pool, vehicle_id, pending).await
    }

    async fn record_push_attempt(
        &self,
        vehicle_id: Uuid,
        settled: Option<u64>,
        health: &PushHealth,
    ) -> Result<(), StoreError> {
        postgres_push::record_push_attempt(&self.pool, vehicle_id, settled, health).await
    }
}

/// The upserts of a batch, one array per column, as the UNNEST upsert binds them.
struct UpsertColumns {
    ids: Vec<Uuid>,
    enode_ids: Vec<String>,
    user_ids: Vec<Uuid>,
    data: Vec<String>,
    last_seen: Vec<Option<DateTime<Utc>>>,
    received_at: Vec<DateTime<Utc>>,
    sources: Vec<&'static str>,
    relink_required: Vec<bool>,
}

impl UpsertColumns {
    fn new(states: &[&VehicleState]) -> Result<Self, StoreError> {
        let n = states.len();
        let mut columns = Self {
            ids: Vec::with_capacity(n),
            enode_ids: Vec::with_capacity(n),
            user_ids: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            last_seen: Vec::with_capacity(n),
            received_at: Vec::with_capacity(n),
            sources: Vec::with_capacity(n),
            relink_required: Vec::with_capacity(n),
        };
        for state in states {
            columns.ids.push(state.internal_id);
            columns.enode_ids.push(state.enode_id().to_owned());
            columns.user_ids.push(state.user_id);
            columns.data.push(rows::vehicle_json(&state.vehicle)?);
            columns.last_seen.push(state.vehicle.last_seen);
            columns.received_at.push(state.received_at);
            columns.sources.push(state.source.as_str());
            columns.relink_required.push(state.relink_required);
        }
        Ok(columns)
    }
}

#[cfg(test)]
mod tests {
    use super::PostgresStore;
    use crate::store::testing::TestDatabase;

    async fn synchronous_commit(pool: &sqlx::PgPool) -> String {
        sqlx::query_scalar("SHOW synchronous_commit").fetch_one(pool).await.expect("show synchronous_commit")
    }

    /// Only the deliveries' records give up waiting for the WAL flush; the vehicles' states,
    /// accounts and sessions keep the server's durable default.
    #[tokio::test]
    async fn only_delivery_records_commit_without_waiting_for_the_disk() {
        let Some(db) = TestDatabase::postgres().await else { return };
        let store = PostgresStore::connect(db.url()).await.expect("connect");
        assert_eq!(synchronous_commit(&store.deliveries).await, "off");
        assert_eq!(synchronous_commit(&store.pool).await, "on");
        store.pool.close().await;
        store.deliveries.close().await;
        db.drop_db().await;
    }
}
