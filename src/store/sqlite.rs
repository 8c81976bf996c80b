//! The SQLite store: the embedded default, so one command runs the whole service on a laptop.
//!
//! Column types: see migrations/sqlite/0001_schema.sql (uuids as hyphenated TEXT, timestamps as
//! RFC 3339 TEXT, JSON as TEXT, booleans as INTEGER).

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use evconduit_actors::ports::VehicleWrite;
use evconduit_actors::state::VehicleState;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

use super::errors::{from_migrate, from_sqlx, is_sqlite_busy};
use super::mapping::{key_from_row, user_from_row};
use super::rows::db_time;
use super::sqlite_statements::{ChunkStatement, placeholder_rows};
use super::sqlite_turns::WriterTurns;
use super::{
    batch, sqlite_accounts, sqlite_checkpoint, sqlite_push, sqlite_restore, sqlite_sessions, sqlite_vehicles, *,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for another one's write lock before giving up with "busy".
/// SQLite has one writer at a time; write-behind batches are short, so a few seconds of waiting
/// covers any honest contention, and a longer wait would only hide a stuck writer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Page cache per connection, in KiB (see `connect`).
const PAGE_CACHE_KIB: u32 = 32 * 1024;
/// Readers run in parallel under WAL; more connections than cores buys nothing.
const MAX_CONNECTIONS: u32 = 4;
/// Longer than `BUSY_TIMEOUT`, so a pool wait fails only when the pool itself is stuck.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

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

pub struct SqliteStore {
    /// For reads.
    pool: SqlitePool,
    /// Writes go through a writer's turn, on the store's one writing connection.
    turns: WriterTurns,
    /// The WAL's length at the checkpointer's last look; 0 until it has looked (and in memory).
    wal_bytes: Arc<AtomicU64>,
}

impl SqliteStore {
    /// `sqlite://path` (the file is created if missing) or `sqlite::memory:` (a private database
    /// that lives as long as this store).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        // The parse error may quote the URL; say only that it is not one we understand.
        let options = SqliteConnectOptions::from_str(url).map_err(|_| StoreError::UnsupportedUrl)?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");

        // sqlx turns foreign keys on by default; said here because ON DELETE CASCADE and the
        // vehicles -> users reference depend on it.
        let options = options.foreign_keys(true).busy_timeout(BUSY_TIMEOUT);
        if in_memory {
            // An in-memory database exists only while a connection to it is open. One connection
            // that never expires keeps it alive and serves reads and writes alike; WAL and
            // `synchronous` mean nothing without a file.
            let pool = single_connection().connect_with(options).await.map_err(from_sqlx)?;
            return Ok(Self::new(pool.clone(), pool));
        }
        create_parent_dir(options.get_filename())?;
        let options = options
            .create_if_missing(true)
            // WAL: readers do not block the writer nor it them, and a commit is one append.
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode cannot corrupt the database, and a process crash loses
            // nothing; only a power cut or OS crash can lose the latest commits. FULL would
            // fsync on every commit, which the write-behind pays at every batch. For an
            // embedded, laptop-sized store that trade is right; production runs Postgres.
            .synchronous(SqliteSynchronous::Normal)
            // SQLite's own page cache, per connection (the default is 2 MiB). With less than
            // the B-tree's inner pages, every write-behind upsert walked the indexes through
            // read() calls into the OS cache: half the kernel time of a webhook load at
            // 100 000 vehicles. Filled as pages are used; at most PAGE_CACHE_KIB each.
            .pragma("cache_size", format!("-{PAGE_CACHE_KIB}"))
            // Statement journals in memory. A statement that writes many rows inside a
            // transaction keeps the old content of every page it changes until it ends, so that
            // a constraint failure can undo it alone; past 64 KiB SQLite moved that copy to an
            // unlinked temporary file. Each write-behind upsert (100 rows) went there: one extra
            // 4 KiB write per changed page, into fresh file blocks the kernel zeroed first (5%
            // of the server's CPU under webhook load at 100 000 vehicles). The copy lives only
            // as long as one statement: about 100 pages. Queries' temporary sorts and indexes
            // then live in memory too; none is large (the whole-table loads at start sort in Rust).
            .pragma("temp_store", "memory");
        let checkpointer = options.clone();
        // The store's connections leave checkpoints to the checkpointer (sqlite_checkpoint.rs).
        let options = options.pragma("wal_autocheckpoint", "0");
        let writes = open_retrying(|| single_connection().connect_with(options.clone())).await?;
        let reads = open_retrying(|| {
            SqlitePoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options.clone())
        })
        .await?;
        let store = Self::new(reads, writes);
        let (turn_queue, wrote) = store.turns.for_checkpointer();
        sqlite_checkpoint::spawn(checkpointer, turn_queue, wrote, Arc::downgrade(&store.wal_bytes));
        Ok(store)
    }

    fn new(pool: SqlitePool, writes: SqlitePool) -> Self {
        Self { pool, turns: WriterTurns::new(writes), wal_bytes: Arc::default() }
    }
}

/// Opens a pool, again after a moment while SQLite answers "busy". Processes opening a new file at
/// once each switch it to WAL, which takes the file's exclusive lock; when two already share its
/// read lock, waiting could deadlock, so SQLite answers one of them busy at once instead of
/// waiting its busy timeout. A moment later the file is in WAL mode and opening it takes no lock.
async fn open_retrying<F, Fut>(open: F) -> Result<SqlitePool, StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<SqlitePool, sqlx::Error>>,
{
    let give_up = tokio::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(10);
    loop {
        match open().await {
            Err(err) if is_sqlite_busy(&err) && tokio::time::Instant::now() + pause < give_up => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            opened => return opened.map_err(from_sqlx),
        }
    }
}

/// A pool of one connection that is never closed for age or idleness: the in-memory database
/// lives only as long as it, and the writing connection's page cache is worth keeping.
fn single_connection() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(ACQUIRE_TIMEOUT)
}

/// `sqlite://data/evconduit.db` should work on a fresh checkout or volume: SQLite creates the
/// file but not its directory.
fn create_parent_dir(file: &Path) -> Result<(), StoreError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("cannot create the database's directory: {e}"))),
        _ => Ok(()),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        // sqlx takes no lock for SQLite migrations, so two processes could both find a migration
        // missing and both apply it. Running them inside one IMMEDIATE transaction makes the
        // second process wait for the first to commit, after which it finds nothing to do
        // (sqlx nests each migration's own transaction as a savepoint).
        // (`run_direct` is `run` minus the `Acquire` bound, which async_trait's Send futures
        // cannot satisfy for a borrowed connection; sqlx keeps it public for this reason.)
        let (_turn, mut tx) = self.turns.begin_write().await?;
        MIGRATOR.run_direct(None, &mut *tx, false).await.map_err(from_migrate)?;
        tx.commit().await.map_err(from_sqlx)
    }

    fn wal_bytes(&self) -> Option<u64> {
        Some(self.wal_bytes.load(Ordering::Relaxed))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop).map_err(from_sqlx)
    }

    async fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let turn = self.turns.turn().await;
        let row = sqlx::query(concat!(
            "INSERT INTO users (id, email, name, role, tier, trial_ends_at, created_at) ",
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING ",
            user_columns!()
        ))
        .bind(user.id.hyphenated())
        .bind(&user.email)
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(user.tier.as_str())
        .bind(user.trial_ends_at.map(db_time))
        .bind(db_time(user.created_at))
        .fetch_one(turn.db())
        .await
        .map_err(from_sqlx)?;
        user_from_row(&row)
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE id = ?1"))
            .bind(id.hyphenated())
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        // The column is COLLATE NOCASE, so `=` compares case-insensitively and uses the index.
        sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE email = ?1"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        sqlite_accounts::list_users(&self.pool).await
    }

    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError> {
        let turn = self.turns.turn().await;
        let row = sqlx::query(concat!(
            "INSERT INTO api_keys (id, key_hash, user_id, label, created_at) ",
            "VALUES (?1, ?2, ?3, ?4, ?5) RETURNING ",
            key_columns!()
        ))
        .bind(key.id.hyphenated())
        .bind(key.hash.to_hex())
        .bind(key.user_id.hyphenated())
        .bind(&key.label)
        .bind(db_time(key.created_at))
        .fetch_one(turn.db())
        .await
        .map_err(from_sqlx)?;
        key_from_row(&row)
    }

    async fn api_key_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
        sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE key_hash = ?1"))
            .bind(hash.to_hex())
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?
            .as_ref()
            .map(key_from_row)
            .transpose()
    }

    async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>, StoreError> {
        sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE user_id = ?1 ORDER BY created_at, id"))
            .bind(user_id.hyphenated())
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?
            .iter()
            .map(key_from_row)
            .collect()
    }

    async fn active_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        sqlite_accounts::active_api_keys(&self.pool).await
    }

    async fn revoke_api_key(&self, id: Uuid, at: DateTime<Utc>) -> Result<Option<ApiKey>, StoreError> {
        let turn = self.turns.turn().await;
        // One statement, so two revocations racing still keep the first time.
        sqlx::query(concat!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2 RETURNING ",
            key_columns!()
        ))
        .bind(db_time(at))
        .bind(id.hyphenated())
        .fetch_optional(turn.db())
        .await
        .map_err(from_sqlx)?
        .as_ref()
        .map(key_from_row)
        .transpose()
    }

    async fn keys_revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<ApiKey>, StoreError> {
        sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE revoked_at >= ?1 ORDER BY revoked_at, id"))
            .bind(db_time(since))
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
        // Every key used in the last minute, so tens of thousands with a busy fleet: many to a
        // statement, as PostgreSQL does in one. One UPDATE per key was a round trip each to
        // sqlx's worker thread, all under the writers' turn (webhook deliveries wait for it).
        // A key may appear more than once: the GROUP BY keeps its latest use; the WHERE only
        // moves forwards, also across statements.
        const KEYS_PER_STATEMENT: usize = 1000;
        let (_turn, mut tx) = self.turns.begin_write().await?;
        static TOUCH: ChunkStatement = ChunkStatement::new(KEYS_PER_STATEMENT, |rows| {
            let values = placeholder_rows(2, rows);
            format!(
                "UPDATE api_keys SET last_used_at = u.at \
                 FROM (SELECT column1 AS id, max(column2) AS at FROM (VALUES {values}) GROUP BY column1) AS u \
                 WHERE api_keys.id = u.id AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < u.at)"
            )
        });
        for chunk in used.chunks(KEYS_PER_STATEMENT) {
            let mut query = sqlx::query(TOUCH.text(chunk.len()));
            for (id, at) in chunk {
                query = query.bind(id.hyphenated()).bind(db_time(*at));
            }
            query.execute(&mut *tx).await.map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)
    }

    async fn load_vehicles(&self) -> Result<Vec<VehicleState>, StoreError> {
        // One read transaction: every page comes from the same snapshot of the table.
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let vehicles = sqlite_restore::load_vehicles(&mut tx).await?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(vehicles)
    }

    async fn write_vehicles(&self, batch: &[VehicleWrite]) -> Result<(), StoreError> {
        let batch = batch::reduce(batch);
        if batch.deletes.is_empty() && batch.upserts.is_empty() {
            return Ok(());
        }
        // One transaction for the batch: all or nothing, and one commit (one WAL sync) instead
        // of one per row.
        let (mut turn, mut tx) = self.turns.begin_write().await?;
        sqlite_vehicles::delete(&mut tx, &batch.deletes).await?;
        let now = Utc::now();
        for (n, chunk) in batch.upserts.chunks(sqlite_vehicles::ROWS_PER_STATEMENT).enumerate() {
            // A large batch holds the write lock for tens of milliseconds; a webhook delivery
            // waiting to be recorded (its acknowledgement waits for that) goes in between two
            // statements once the batch has had its share (sqlite_turns.rs). Committing part of
            // a batch is safe: each row is a whole, newest state, and a failure later re-queues
            // the batch, which writes the same rows again.
            if n > 0 && self.turns.others_are_owed(&turn) {
                tx.commit().await.map_err(from_sqlx)?;
                drop(turn);
                (turn, tx) = self.turns.begin_write().await?;
            }
            sqlite_vehicles::upsert(&mut tx, chunk, now).await?;
        }
        let committed = tx.commit().await.map_err(from_sqlx);
        drop(turn);
        committed
    }

    async fn record_delivery(&self, delivery: &NewDelivery) -> Result<DeliveryOutcome, StoreError> {
        let turn = self.turns.delivery_turn().await;
        // Insert-or-nothing in one statement: two concurrent deliveries with the same id cannot
        // both be told `Recorded`.
        let result = sqlx::query(
            "INSERT INTO webhook_deliveries (id, received_at, event_count) VALUES (?1, ?2, ?3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&delivery.id)
        .bind(db_time(delivery.received_at))
        .bind(delivery.event_count)
        .execute(turn.db())
        .await
        .map_err(from_sqlx)?;
        if result.rows_affected() == 1 {
            return Ok(DeliveryOutcome::Recorded);
        }
        let applied: Option<Option<String>> =
            sqlx::query_scalar("SELECT applied_at FROM webhook_deliveries WHERE id = ?1")
                .bind(&delivery.id)
                .fetch_optional(turn.db())
                .await
                .map_err(from_sqlx)?;
        // Pruned between the two statements: it was applied long ago.
        Ok(match applied {
            Some(None) => DeliveryOutcome::Unapplied,
            _ => DeliveryOutcome::Duplicate,
        })
    }

    async fn mark_delivery_applied(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let turn = self.turns.turn().await;
        sqlx::query("UPDATE webhook_deliveries SET applied_at = ?1 WHERE id = ?2")
            .bind(db_time(at))
            .bind(id)
            .execute(turn.db())
            .await
            .map(|_| ())
            .map_err(from_sqlx)
    }

    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let turn = self.turns.turn().await;
        sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < ?1")
            .bind(db_time(before))
            .execute(turn.db())
            .await
            .map(|r| r.rows_affected())
            .map_err(from_sqlx)
    }

    async fn load_open_sessions(&self) -> Result<Vec<ChargingSession>, StoreError> {
        sqlite_sessions::load_open_sessions(&self.pool).await
    }

    async fn write_sessions(&self, batch: &[SessionWrite]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (_turn, tx) = self.turns.begin_write().await?;
        sqlite_sessions::write_sessions(tx, batch).await
    }

    async fn list_sessions(
        &self,
        user_id: Uuid,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<ChargingSession>, StoreError> {
        sqlite_sessions::list_sessions(&self.pool, user_id, since, limit).await
    }

    async fn set_latest_session_odometer(
        &self,
        vehicle_id: Uuid,
        odometer_km: f64,
    ) -> Result<Option<ChargingSession>, StoreError> {
        let turn = self.turns.turn().await;
        sqlite_sessions::set_latest_session_odometer(turn.db(), vehicle_id, odometer_km).await
    }

    async fn set_electricity_rate(&self, user_id: Uuid, rate: &ElectricityRate) -> Result<(), StoreError> {
        let turn = self.turns.turn().await;
        sqlite_sessions::set_electricity_rate(turn.db(), user_id, rate).await
    }

    async fn electricity_rate(&self, user_id: Uuid) -> Result<Option<ElectricityRate>, StoreError> {
        sqlite_sessions::electricity_rate(&self.pool, user_id).await
    }

    async fn load_electricity_rates(&self) -> Result<Vec<(Uuid, ElectricityRate)>, StoreError> {
        sqlite_sessions::load_electricity_rates(&self.pool).await
    }

    async fn load_push_targets(&self) -> Result<Vec<PushTargetRecord>, StoreError> {
        sqlite_push::load_push_targets(&self.pool).await
    }

    async fn save_push_registration(&self, registration: &PushRegistration) -> Result<(), StoreError> {
        let (_turn, tx) = self.turns.begin_write().await?;
        sqlite_push::save_push_registration(tx, registration).await
    }

    async fn save_push_pending(&self, vehicle_id: Uuid, pending: &PendingPush) -> Result<(), StoreError> {
        let turn = self.turns.turn().await;
        sqlite_push::save_push_pending(turn.db(), vehicle_id, pending).await
    }

    async fn record_push_attempt(
        &self,
        vehicle_id: Uuid,
        settled: Option<u64>,
        health: &PushHealth,
    ) -> Result<(), StoreError> {
        let turn = self.turns.turn().await;
        sqlite_push::record_push_attempt(turn.db(), vehicle_id, settled, health).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::TestDatabase;

    /// Processes starting at once on a new file all switch it to WAL; none may fail to open it.
    /// (Without `open_retrying`, three runs of this test in four had one of them answered busy.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_opening_a_new_file_at_once_all_open_it() {
        for _ in 0..100 {
            let db = TestDatabase::sqlite();
            let opened = futures::future::join_all((0..8).map(|_| SqliteStore::connect(db.url()))).await;
            for store in opened {
                store.expect("open a new file beside others");
            }
            db.drop_db().await;
        }
    }

    /// Statement journals (and sorts too big for the page cache) stay in memory on every
    /// connection: on a temporary file they cost a write per changed page (see `connect`).
    #[tokio::test]
    async fn temporary_storage_is_in_memory_on_every_connection() {
        let db = TestDatabase::sqlite();
        let store = SqliteStore::connect(db.url()).await.expect("connect");
        const MEMORY: i64 = 2;
        for pool in [store.turns.connection(), &store.pool] {
            let temp_store: i64 = sqlx::query_scalar("PRAGMA temp_store").fetch_one(pool).await.expect("pragma");
            assert_eq!(temp_store, MEMORY);
        }
        drop(store);
        db.drop_db().await;
    }
}
