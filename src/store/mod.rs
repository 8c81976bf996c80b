//! Persistence: one `Store` trait, a Postgres and a SQLite implementation with the same schema
//! (`migrations/postgres`, `migrations/sqlite`), and one conformance suite (tests/store.rs) that
//! runs against both.
//!
//! Nothing on the read path touches the store: accounts are cached in memory and vehicle state
//! lives in the actors. The store is for durability and for start-up.

mod batch;
mod columns;
mod errors;
mod load;
mod mapping;
mod postgres;
mod postgres_push;
mod postgres_sessions;
mod push_port;
mod records;
mod rows;
mod sessions_port;
mod sqlite;
mod sqlite_accounts;
mod sqlite_checkpoint;
mod sqlite_push;
mod sqlite_restore;
mod sqlite_sessions;
mod sqlite_statements;
mod sqlite_turns;
mod sqlite_vehicles;
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use evconduit_actors::ports::{PortError, StateStore, VehicleWrite};
use evconduit_actors::push::{PendingPush, PushHealth, PushRegistration, PushTargetRecord};
use evconduit_actors::sessions::{ChargingSession, ElectricityRate, SessionWrite};
use evconduit_actors::state::VehicleState;
use uuid::Uuid;

pub use postgres::PostgresStore;
pub use push_port::ActorPushStore;
pub use records::*;
pub use sessions_port::ActorSessionStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint: the email, id or key already exists. The message names which.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database could not be reached or failed; trying again later may work.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A row the code cannot read (bad enum value, bad JSON): a bug or a hand-edited database.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The write breaks a rule of the schema other than uniqueness (an API key for a user that
    /// does not exist): a bug in the caller; trying again will not help.
    #[error("rejected by the database: {0}")]
    Invalid(String),
    /// The URL names no backend this build knows.
    #[error("unsupported database url (expected sqlite://... or postgres://...)")]
    UnsupportedUrl,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations. Safe to run at every start and from several processes.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// A cheap round trip, for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
    /// How long the write-ahead log was at its last checkpoint, in bytes, for a store that keeps
    /// one of its own (SQLite); None for a database server, which watches its own.
    fn wal_bytes(&self) -> Option<u64> {
        None
    }

    // Users.
    /// Fails with `Conflict` when the id or the email is taken (emails compare case-insensitively).
    async fn create_user(&self, user: &NewUser) -> Result<User, StoreError>;
    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError>;
    /// Case-insensitive.
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    /// Ordered by created_at, then id.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;

    // API keys.
    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError>;
    /// Revoked keys are returned too (with `revoked_at` set): the caller decides.
    async fn api_key_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError>;
    /// Ordered by created_at, then id; revoked keys included.
    async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>, StoreError>;
    /// Every key not revoked, of every user, ordered by created_at, then id: what a starting
    /// server loads into memory, in one query (one per user took seconds at 50 000 users).
    async fn active_api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Sets `revoked_at` if not yet set. Returns the key as it now is, or None if no such key.
    async fn revoke_api_key(&self, id: Uuid, at: DateTime<Utc>) -> Result<Option<ApiKey>, StoreError>;
    /// Keys revoked at or after `since`: how a running server learns of revocations made by
    /// another process (the CLI).
    async fn keys_revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<ApiKey>, StoreError>;
    /// Records key use, batched; a later time never goes backwards.
    async fn touch_api_keys(&self, used: &[(Uuid, DateTime<Utc>)]) -> Result<(), StoreError>;

    // Vehicles (the actors' state, written behind).
    async fn load_vehicles(&self) -> Result<Vec<VehicleState>, StoreError>;
    /// All or nothing. Upserts key on the internal id; the Enode id stays unique (a clash fails
    /// the whole batch with `Conflict`). Only the last write per vehicle in a batch counts. An
    /// upsert for a user that no longer exists is skipped: the user is gone, so is the vehicle.
    /// A NUL character in the vehicle's JSON is stored as U+FFFD (Postgres cannot store NUL).
    async fn write_vehicles(&self, batch: &[VehicleWrite]) -> Result<(), StoreError>;

    // Enode webhook deliveries.
    /// Records the delivery id: `Recorded` the first time, `Duplicate` when it was recorded and
    /// applied before, `Unapplied` when it was recorded before but never marked applied.
    async fn record_delivery(&self, delivery: &NewDelivery) -> Result<DeliveryOutcome, StoreError>;
    /// Marks a recorded delivery's events as applied.
    async fn mark_delivery_applied(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Forgets deliveries received before `before` (Enode stops retrying a delivery after a while,
    /// so old ids only take space). Returns how many were removed.
    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    // Charging sessions (detected by the actors, written behind) and electricity rates.
    /// Sessions without an end time, ordered by start time then id.
    async fn load_open_sessions(&self) -> Result<Vec<ChargingSession>, StoreError>;
    /// All or nothing. An upsert keys on the session id and, for an existing session, changes
    /// neither `odometer_km` (the user's to correct) nor `created_at`. An upsert for a user that
    /// no longer exists is skipped. A delete of an unknown session does nothing.
    async fn write_sessions(&self, batch: &[SessionWrite]) -> Result<(), StoreError>;
    /// A user's closed sessions with `start_time > since` (all when None), ordered by start time
    /// then id, at most `limit`.
    async fn list_sessions(
        &self,
        user_id: Uuid,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<ChargingSession>, StoreError>;
    /// Sets the odometer of the vehicle's latest session (by start time, open or closed) and
    /// returns that session, or None when the vehicle has none.
    async fn set_latest_session_odometer(
        &self,
        vehicle_id: Uuid,
        odometer_km: f64,
    ) -> Result<Option<ChargingSession>, StoreError>;
    /// Inserts or replaces the user's rate.
    async fn set_electricity_rate(&self, user_id: Uuid, rate: &ElectricityRate) -> Result<(), StoreError>;
    async fn electricity_rate(&self, user_id: Uuid) -> Result<Option<ElectricityRate>, StoreError>;
    /// Every user's rate.
    async fn load_electricity_rates(&self) -> Result<Vec<(Uuid, ElectricityRate)>, StoreError>;

    // Push to Home Assistant: registrations and their delivery state (see the actors' `push`).
    /// Every registration, ordered by registration time then vehicle id.
    async fn load_push_targets(&self) -> Result<Vec<PushTargetRecord>, StoreError>;
    /// Inserts or replaces the vehicle's registration (one per vehicle) and removes the same
    /// user's registration of the same webhook id for another vehicle, in one transaction. A
    /// replaced registration keeps its pending push and settled version; its health record is
    /// kept if the URL is the same and cleared if it changed.
    async fn save_push_registration(&self, registration: &PushRegistration) -> Result<(), StoreError>;
    /// Stores the pending push of a registered vehicle, unless the stored one is as new or newer
    /// or the version is already settled. Does nothing for an unregistered vehicle.
    async fn save_push_pending(&self, vehicle_id: Uuid, pending: &PendingPush) -> Result<(), StoreError>;
    /// Stores the health; with `settled`, raises the settled version to it (never lowers it) and
    /// clears a pending push that is not newer.
    async fn record_push_attempt(
        &self,
        vehicle_id: Uuid,
        settled: Option<u64>,
        health: &PushHealth,
    ) -> Result<(), StoreError>;
}

/// Opens the store the URL names: `sqlite://path` (file created if missing, `sqlite::memory:` for
/// a throwaway) or `postgres://...`.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// The actors see the store through their `StateStore` port.
pub struct ActorStateStore(pub Arc<dyn Store>);

/// Longest a write-behind or restore call may take. A database that stops answering mid-query
/// (a dropped network) would otherwise hold the write-behind forever; timing out makes it
/// retry, with nothing lost (the batch stays queued).
const STATE_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[async_trait]
impl StateStore for ActorStateStore {
    async fn load_vehicles(&self) -> Result<Vec<VehicleState>, PortError> {
        timed(self.0.load_vehicles()).await
    }

    async fn write_vehicles(&self, batch: &[VehicleWrite]) -> Result<(), PortError> {
        timed(self.0.write_vehicles(batch)).await
    }
}

async fn timed<T>(call: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, PortError> {
    match tokio::time::timeout(STATE_STORE_TIMEOUT, call).await {
        Ok(result) => result.map_err(into_port_error),
        Err(_) => Err(PortError::retryable("the database did not answer in time")),
    }
}

pub(crate) fn into_port_error(err: StoreError) -> PortError {
    match err {
        StoreError::Unavailable(_) => PortError::retryable(err.to_string()),
        _ => PortError::permanent(err.to_string()),
    }
}
