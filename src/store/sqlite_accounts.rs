//! Every user and every active key, read from SQLite at start as one result each.
//!
//! sqlx's SQLite driver hands each result row from its thread to the task as a message of its
//! own: at 50 000 users and as many keys that was 100 000 wake-ups and thread switches, two
//! thirds of a second of the start-up on one core (the same queries take 0.03 and 0.15 s inside
//! SQLite). So SQLite builds each table's rows into one JSON array of arrays, NULLs and quoting
//! included, and it is parsed here in one pass (~6 MB at 50 000 users). They are sorted here, not
//! by SQLite: an ordered aggregate builds a temporary index of its rows first.

use serde::Deserialize;
use sqlx::SqlitePool;

use super::errors::from_sqlx;
use super::rows::{self, time_text, uuid_text};
use super::{ApiKey, StoreError, User};

const USERS: &str =
    "SELECT json_group_array(json_array(id, email, name, role, tier, trial_ends_at, created_at)) FROM users";

const ACTIVE_KEYS: &str = "SELECT json_group_array(json_array(\
        id, key_hash, user_id, label, created_at, last_used_at, revoked_at)) FROM api_keys WHERE revoked_at IS NULL";

/// `users` columns in `USERS`'s order.
#[derive(Deserialize)]
struct UserRow(String, String, Option<String>, String, String, Option<String>, String);

/// `api_keys` columns in `ACTIVE_KEYS`'s order.
#[derive(Deserialize)]
struct KeyRow(String, String, String, Option<String>, String, Option<String>, Option<String>);

/// Ordered by created_at, then id.
pub(crate) async fn list_users(pool: &SqlitePool) -> Result<Vec<User>, StoreError> {
    let rows: Vec<UserRow> = whole(pool, USERS, "users").await?;
    let mut users = rows.into_iter().map(user).collect::<Result<Vec<_>, _>>()?;
    users.sort_unstable_by_key(|u| (u.created_at, u.id));
    Ok(users)
}

/// Keys not revoked, ordered by created_at, then id.
pub(crate) async fn active_api_keys(pool: &SqlitePool) -> Result<Vec<ApiKey>, StoreError> {
    let rows: Vec<KeyRow> = whole(pool, ACTIVE_KEYS, "api_keys").await?;
    let mut keys = rows.into_iter().map(key).collect::<Result<Vec<_>, _>>()?;
    keys.sort_unstable_by_key(|k| (k.created_at, k.id));
    Ok(keys)
}

async fn whole<T: for<'de> Deserialize<'de>>(
    pool: &SqlitePool,
    sql: &'static str,
    table: &str,
) -> Result<Vec<T>, StoreError> {
    let json: String = sqlx::query_scalar(sql).fetch_one(pool).await.map_err(from_sqlx)?;
    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("{table} rows as JSON: {e}")))
}

fn user(UserRow(id, email, name, role, tier, trial_ends_at, created_at): UserRow) -> Result<User, StoreError> {
    Ok(User {
        id: uuid_text(&id)?,
        email,
        name,
        role: rows::role(&role)?,
        tier: rows::tier(&tier)?,
        trial_ends_at: trial_ends_at.as_deref().map(time_text).transpose()?,
        created_at: time_text(&created_at)?,
    })
}

fn key(KeyRow(id, hash, user_id, label, created_at, last_used_at, revoked_at): KeyRow) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: uuid_text(&id)?,
        hash: rows::key_hash(&hash)?,
        user_id: uuid_text(&user_id)?,
        label,
        created_at: time_text(&created_at)?,
        last_used_at: last_used_at.as_deref().map(time_text).transpose()?,
        revoked_at: revoked_at.as_deref().map(time_text).transpose()?,
    })
}
