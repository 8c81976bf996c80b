//! Users and API keys, answered from memory.
//!
//! Every HA poll authenticates, so key lookup must not touch the database: active keys are loaded
//! at start and kept in a map keyed by their SHA-256. A key created by another process (the CLI)
//! is found on first use with one bounded database lookup; a key revoked through the API stops
//! working on the very next request, one revoked by another process within
//! `key_revocation_poll_ms`. Unknown keys are remembered briefly so a flood of bad keys cannot
//! turn into a flood of queries.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::store::{ApiKey, KeyHash, NewApiKey, NewUser, Role, Store, StoreError, User};
use evconduit_actors::tier::Tier;

/// Every key starts with this, so leaked keys are easy for secret scanners (and people) to spot.
pub const KEY_PREFIX: &str = "evc_";
/// Random characters after the prefix: 40 alphanumerics carry about 238 bits.
const KEY_RANDOM_CHARS: usize = 40;
/// Length of the Pro trial a new user gets unless a tier is chosen.
pub const TRIAL_DAYS: i64 = 30;
/// Database lookups for unknown keys allowed at once; beyond that an unknown key is refused
/// without asking (a key-guessing flood must not become a query flood).
const MISS_LOOKUPS: usize = 4;
/// How long an unknown key is remembered as unknown.
const NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// How long an unknown key waits for one of the lookup permits before it is refused. A flood of
/// bad keys then delays a genuine new key (made by the CLI) a little instead of refusing it: a 401
/// on HA's first poll would leave its integration dead until reloaded.
const MISS_LOOKUP_WAIT: Duration = Duration::from_millis(250);
/// Active keys a user may hold; enough for every device and script, not for filling memory.
pub const MAX_KEYS_PER_USER: usize = 20;
/// How often key use (`last_used_at`) is written to the store: a key's latest use, to the
/// minute, reaches the store within this (and at shutdown). With a busy fleet nearly every key is
/// used every few minutes (49 956 in the load harness), and written every minute at once that was
/// 474 ms of SQLite statements on the core that serves HA, every minute (a harness run's
/// fixed-rate p99 19 ms when it fell in the phase). Every ten minutes, each key's row is
/// rewritten a tenth as often, and the writes are spread thin (`KEY_USE_CHUNK`).
const KEY_USE_FLUSH: Duration = Duration::from_secs(600);
/// Key uses written per transaction (about a millisecond of SQLite's time each), the
/// transactions spread over half the interval (`flush_key_use_over`).
const KEY_USE_CHUNK: usize = 100;
/// The longest pause between two such transactions: a few keys are written promptly.
const KEY_USE_MAX_PAUSE: Duration = Duration::from_secs(1);

/// Who is calling: the key and its user.
#[derive(Clone, Debug)]
pub struct Principal {
    pub key_id: Uuid,
    pub user: Arc<User>,
}

/// An active key as kept in memory, inside the key map's entry: what a poll needs of it is in
/// the one place the lookup lands (a separately allocated counter here cost a cache miss per poll).
#[derive(Debug)]
struct KnownKey {
    key_id: Uuid,
    user: Arc<User>,
    /// The minute (Unix) this key's use was last noted for the store. Use is recorded to the
    /// minute (and written every `KEY_USE_FLUSH`), so a key polled many times a minute is noted
    /// once, not with a map insert on every poll (the hot path).
    noted_minute: AtomicI64,
}

impl KnownKey {
    fn new(key_id: Uuid, user: Arc<User>) -> Self {
        Self { key_id, user, noted_minute: AtomicI64::new(0) }
    }

    fn principal(&self) -> Principal {
        Principal { key_id: self.key_id, user: Arc::clone(&self.user) }
    }
}

pub struct Accounts {
    store: Arc<dyn Store>,
    /// foldhash rather than SipHash: every poll looks a key up here, and only keys the store
    /// knows are inserted (a caller cannot fill it with colliding ones).
    keys: DashMap<KeyHash, KnownKey, foldhash::fast::RandomState>,
    users: DashMap<Uuid, Arc<User>>,
    unknown_keys: moka::sync::Cache<KeyHash, ()>,
    unknown_users: moka::sync::Cache<Uuid, ()>,
    miss_lookups: Semaphore,
    /// Key id -> last use, written to the store periodically (not per request).
    key_use: DashMap<Uuid, DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no user with email {0}")]
    UnknownEmail(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Accounts {
    /// Loads every user and active key into memory.
    pub async fn load(store: Arc<dyn Store>) -> Result<Arc<Self>, StoreError> {
        let accounts = Arc::new(Self {
            store: Arc::clone(&store),
            keys: DashMap::default(),
            users: DashMap::new(),
            unknown_keys: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(NEGATIVE_TTL).build(),
            unknown_users: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(NEGATIVE_TTL).build(),
            miss_lookups: Semaphore::new(MISS_LOOKUPS),
            key_use: DashMap::new(),
        });
        for user in store.list_users().await? {
            accounts.users.insert(user.id, Arc::new(user));
        }
        // All keys in one query: this runs before the port opens, once per user it cost seconds.
        for key in store.active_api_keys().await? {
            // A key's user always exists (foreign key, cascading delete); if not, the key is
            // useless anyway and is left out, as the per-user listing would have.
            if let Some(user) = accounts.users.get(&key.user_id).map(|u| Arc::clone(&u)) {
                accounts.keys.insert(key.hash, KnownKey::new(key.id, user));
            }
        }
        Ok(accounts)
    }

    /// The principal a bearer key belongs to, or None for an unknown or revoked key.
    pub async fn authenticate(&self, key: &str, now: DateTime<Utc>) -> Option<Principal> {
        let hash = hash_key(key);
        if let Some(known) = self.keys.get(&hash) {
            let minute = now.timestamp().div_euclid(60);
            if known.noted_minute.swap(minute, Ordering::Relaxed) != minute {
                self.key_use.insert(known.key_id, now);
            }
            return Some(known.principal());
        }
        if !key.starts_with(KEY_PREFIX) || self.unknown_keys.contains_key(&hash) {
            return None;
        }
        let _permit = tokio::time::timeout(MISS_LOOKUP_WAIT, self.miss_lookups.acquire()).await.ok()?.ok()?;
        let principal = self.lookup_key(&hash).await;
        match &principal {
            Some(p) => {
                self.keys.insert(hash, KnownKey::new(p.key_id, Arc::clone(&p.user)));
                self.key_use.insert(p.key_id, now);
            }
            None => self.unknown_keys.insert(hash, ()),
        }
        principal
    }

    async fn lookup_key(&self, hash: &KeyHash) -> Option<Principal> {
        let key = match self.store.api_key_by_hash(hash).await {
            Ok(Some(key)) if key.revoked_at.is_none() => key,
            Ok(_) => return None,
            Err(err) => {
                tracing::warn!(error = %err, "key lookup failed; refusing the unknown key");
                return None;
            }
        };
        let user = self.user(key.user_id).await?;
        Some(Principal { key_id: key.id, user })
    }

    /// A user by id: from memory, else from the store (a user added by the CLI while running).
    pub async fn user(&self, id: Uuid) -> Option<Arc<User>> {
        self.lookup_user(id).await.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "user lookup failed");
            None
        })
    }

    /// Like `user`, but a store failure is an error, not "no such user": callers that must not
    /// mistake an outage for an unknown user (webhook ingest) use this.
    pub async fn lookup_user(&self, id: Uuid) -> Result<Option<Arc<User>>, StoreError> {
        if let Some(user) = self.users.get(&id) {
            return Ok(Some(Arc::clone(&user)));
        }
        if self.unknown_users.contains_key(&id) {
            return Ok(None);
        }
        match self.store.user_by_id(id).await? {
            Some(user) => {
                let user = Arc::new(user);
                self.users.insert(id, Arc::clone(&user));
                Ok(Some(user))
            }
            None => {
                self.unknown_users.insert(id, ());
                Ok(None)
            }
        }
    }

    /// Whether a user exists, like `lookup_user` (a store failure is an error), without taking
    /// a reference to a known one: every webhook event asks, for a user among 50 000 whose
    /// reference count is rarely in the cache.
    pub async fn user_exists(&self, id: Uuid) -> Result<bool, StoreError> {
        if self.users.contains_key(&id) {
            return Ok(true);
        }
        Ok(self.lookup_user(id).await?.is_some())
    }

    /// A user by id from memory only (no database): for hot paths that must not wait.
    pub fn cached_user(&self, id: Uuid) -> Option<Arc<User>> {
        self.users.get(&id).map(|u| Arc::clone(&u))
    }

    /// Revokes a key of `user_id`. Effective for the very next request.
    pub async fn revoke_key(&self, user_id: Uuid, key_id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let owned = self.store.list_api_keys(user_id).await?.iter().any(|k| k.id == key_id);
        if !owned {
            return Ok(false);
        }
        self.store.revoke_api_key(key_id, now).await?;
        self.forget_key(key_id);
        Ok(true)
    }

    /// Creates a key for a user; the plaintext is returned once and never stored. Refused with
    /// `Conflict` when the user already holds `MAX_KEYS_PER_USER` active keys.
    pub async fn create_key(
        &self,
        user: &Arc<User>,
        label: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(ApiKey, String), StoreError> {
        let active = self.store.list_api_keys(user.id).await?.iter().filter(|k| k.revoked_at.is_none()).count();
        if active >= MAX_KEYS_PER_USER {
            return Err(StoreError::Conflict(format!("{MAX_KEYS_PER_USER} active keys (revoke one first)")));
        }
        let (key, plaintext) = create_api_key(self.store.as_ref(), user.id, label, now).await?;
        self.keys.insert(key.hash, KnownKey::new(key.id, Arc::clone(user)));
        Ok((key, plaintext))
    }

    pub async fn list_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>, StoreError> {
        self.store.list_api_keys(user_id).await
    }

    fn forget_key(&self, key_id: Uuid) {
        self.keys.retain(|_, p| p.key_id != key_id);
    }

    /// Picks up revocations made by other processes since `since`. Returns how many keys were dropped.
    pub async fn sync_revocations(&self, since: DateTime<Utc>) -> Result<usize, StoreError> {
        let revoked = self.store.keys_revoked_since(since).await?;
        for key in &revoked {
            self.keys.remove(&key.hash);
        }
        Ok(revoked.len())
    }

    /// Writes the recorded key uses to the store at once (at shutdown).
    pub async fn flush_key_use(&self) -> Result<(), StoreError> {
        self.flush_key_use_over(Duration::ZERO).await
    }

    /// Writes the recorded key uses to the store, `KEY_USE_CHUNK` to a transaction, the
    /// transactions spread over about `spread` (see `KEY_USE_CHUNK`). In key order, so that
    /// neighbouring keys share the index's pages. A use that fails to be written stays recorded
    /// for the next flush.
    pub async fn flush_key_use_over(&self, spread: Duration) -> Result<(), StoreError> {
        let mut used: Vec<(Uuid, DateTime<Utc>)> = self.key_use.iter().map(|e| (*e.key(), *e.value())).collect();
        used.sort_unstable_by_key(|(id, _)| *id);
        let chunks = used.len().div_ceil(KEY_USE_CHUNK);
        let pause = spread.checked_div(chunks as u32).unwrap_or_default().min(KEY_USE_MAX_PAUSE);
        for (i, chunk) in used.chunks(KEY_USE_CHUNK).enumerate() {
            if i > 0 && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            self.store.touch_api_keys(chunk).await?;
            for (id, at) in chunk {
                self.key_use.remove_if(id, |_, latest| latest == at);
            }
        }
        Ok(())
    }

    /// Keeps the in-memory keys in step with the store: revocations by other processes and key
    /// use. Runs until the task is dropped. Two loops side by side: a flush, spread over minutes,
    /// must not hold up the next revocation check.
    pub async fn run_sync(self: Arc<Self>, poll: Duration) {
        let revocations = async {
            let mut every = tokio::time::interval(poll);
            let mut since = Utc::now();
            loop {
                every.tick().await;
                // Overlap the windows a little: two processes' clocks on one host can disagree slightly.
                let checked_at = Utc::now();
                match self.sync_revocations(since - chrono::Duration::seconds(2)).await {
                    Ok(_) => since = checked_at,
                    Err(err) => tracing::warn!(error = %err, "could not check for revoked keys"),
                }
            }
        };
        // Key use is bookkeeping, not security: every ten minutes is plenty.
        let key_use = async {
            let mut every = tokio::time::interval(KEY_USE_FLUSH);
            loop {
                every.tick().await;
                if let Err(err) = self.flush_key_use_over(KEY_USE_FLUSH / 2).await {
                    tracing::warn!(error = %err, "could not record key use");
                }
            }
        };
        tokio::join!(revocations, key_use);
    }
}

/// SHA-256 of a key, the only form stored.
pub fn hash_key(key: &str) -> KeyHash {
    KeyHash(Sha256::digest(key.as_bytes()).into())
}

/// A new random key: `evc_` and 40 alphanumerics.
pub fn generate_key() -> String {
    let random: String = rand::rng().sample_iter(Alphanumeric).take(KEY_RANDOM_CHARS).map(char::from).collect();
    format!("{KEY_PREFIX}{random}")
}

/// Stores a new key for `user_id` and returns it with its plaintext (shown once).
pub async fn create_api_key(
    store: &dyn Store,
    user_id: Uuid,
    label: Option<String>,
    now: DateTime<Utc>,
) -> Result<(ApiKey, String), StoreError> {
    let plaintext = generate_key();
    let key = store
        .create_api_key(&NewApiKey { id: Uuid::new_v4(), hash: hash_key(&plaintext), user_id, label, created_at: now })
        .await?;
    Ok((key, plaintext))
}

/// The fields of a new user; `tier: None` means a Pro trial.
pub struct UserSpec {
    pub id: Option<Uuid>,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub tier: Option<Tier>,
}

/// Creates a user. Without a tier the user gets Pro on a 30-day trial.
pub async fn create_user(store: &dyn Store, spec: UserSpec, now: DateTime<Utc>) -> Result<User, StoreError> {
    let (tier, trial_ends_at) = match spec.tier {
        Some(tier) => (tier, None),
        None => (Tier::Pro, Some(now + chrono::Duration::days(TRIAL_DAYS))),
    };
    store
        .create_user(&NewUser {
            id: spec.id.unwrap_or_else(Uuid::new_v4),
            email: spec.email.trim().to_owned(),
            name: spec.name,
            role: spec.role,
            tier,
            trial_ends_at,
            created_at: now,
        })
        .await
}

/// The user with this email, or an error naming it.
pub async fn user_by_email(store: &dyn Store, email: &str) -> Result<User, AccountError> {
    store.user_by_email(email.trim()).await?.ok_or_else(|| AccountError::UnknownEmail(email.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flush of many key uses is spread over the time it is given, in transactions of
    /// `KEY_USE_CHUNK`, and writes every one of them.
    #[tokio::test]
    async fn a_large_flush_is_spread_out_and_loses_nothing() {
        let db = crate::store::testing::TestDatabase::sqlite();
        let store = db.store().await.expect("store");
        let now = Utc::now();
        let spec = UserSpec { id: None, email: "many@example.com".into(), name: None, role: Role::User, tier: None };
        let user = create_user(store.as_ref(), spec, now).await.expect("user");
        let mut keys = Vec::new();
        for _ in 0..3 * KEY_USE_CHUNK {
            keys.push(create_api_key(store.as_ref(), user.id, None, now).await.expect("key"));
        }
        let accounts = Accounts::load(Arc::clone(&store)).await.expect("load");
        for (_, plaintext) in &keys {
            assert!(accounts.authenticate(plaintext, now).await.is_some());
        }

        let started = std::time::Instant::now();
        accounts.flush_key_use_over(Duration::from_millis(240)).await.expect("flush");
        // Three transactions, two pauses of 80 ms between them.
        assert!(started.elapsed() >= Duration::from_millis(160), "took {:?}", started.elapsed());
        for (key, _) in &keys {
            let stored = store.api_key_by_hash(&key.hash).await.expect("read").expect("exists");
            assert!(stored.last_used_at.is_some(), "key {} not written", key.id);
        }
        assert!(accounts.key_use.is_empty(), "every use written is forgotten");
    }

    #[test]
    fn keys_are_long_prefixed_and_distinct() {
        let a = generate_key();
        let b = generate_key();
        assert!(a.starts_with("evc_") && a.len() == 44, "{a}");
        assert_ne!(a, b);
        assert_ne!(hash_key(&a), hash_key(&b));
        assert_eq!(hash_key(&a), hash_key(&a));
    }
}
