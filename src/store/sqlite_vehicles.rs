//! The SQLite side of the write-behind: a batch of vehicle writes in one transaction. Called from
//! the `Store` impl in sqlite.rs, which owns the pool.
//!
//! Upserts go many rows to a statement. Each statement is a round trip to sqlx's SQLite worker
//! thread, and at a fleet where every webhook names a different vehicle those round trips, not
//! SQLite, were most of the write-behind's cost (one per row before).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use evconduit_actors::state::VehicleState;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use super::StoreError;
use super::errors::from_sqlx;
use super::rows::{self, db_time};
use super::sqlite::placeholder_rows;

/// Rows per upsert statement: 9 parameters each stays far below SQLite's 32 766, and a batch of
/// 500 is five statements.
pub(super) const ROWS_PER_STATEMENT: usize = 100;

pub(super) async fn delete(tx: &mut Transaction<'static, Sqlite>, deletes: &[Uuid]) -> Result<(), StoreError> {
    for id in deletes {
        sqlx::query("DELETE FROM vehicles WHERE id = ?1")
            .bind(id.hyphenated())
            .execute(&mut **tx)
            .await
            .map_err(from_sqlx)?;
    }
    Ok(())
}

/// Upserts `chunk` (at most `ROWS_PER_STATEMENT` vehicles) in one statement.
pub(super) async fn upsert(
    tx: &mut Transaction<'static, Sqlite>,
    chunk: &[&VehicleState],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // Serialised first: a vehicle that cannot be written fails the batch with its id.
    let data: Vec<String> = chunk.iter().map(|state| rows::vehicle_json(&state.vehicle)).collect::<Result<_, _>>()?;
    // Built from constants only (placeholders, no data): nothing to inject.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(upsert_statement(chunk.len())));
    for (state, data) in chunk.iter().zip(&data) {
        query = bind_row(query, state, data, now);
    }
    let written = query.fetch_all(&mut **tx).await.map_err(from_sqlx)?;
    if written.len() == chunk.len() {
        return Ok(());
    }
    // Rows the upsert left alone: their Enode id or owner changed (or their user is gone).
    let written: HashSet<String> =
        written.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>().map_err(from_sqlx)?;
    for (state, data) in chunk.iter().zip(&data) {
        if !written.contains(&state.internal_id.hyphenated().to_string()) {
            replace(tx, state, data, now).await?;
        }
    }
    Ok(())
}

/// Rewrites every column of an existing row, identity included (see `upsert_statement`).
async fn replace(
    tx: &mut Transaction<'static, Sqlite>,
    state: &VehicleState,
    data: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let query = sqlx::query(
        "UPDATE vehicles SET enode_id = ?2, user_id = ?3, data = ?4, last_seen = ?5, received_at = ?6, \
           source = ?7, relink_required = ?8, updated_at = ?9 \
         WHERE id = ?1 AND EXISTS (SELECT 1 FROM users WHERE users.id = ?3)",
    );
    bind_row(query, state, data, now).execute(&mut **tx).await.map(drop).map_err(from_sqlx)
}

/// Binds one vehicle's nine columns, in the order both statements above name them.
fn bind_row<'q>(
    query: Query<'q, Sqlite, SqliteArguments>,
    state: &'q VehicleState,
    data: &'q str,
    now: DateTime<Utc>,
) -> Query<'q, Sqlite, SqliteArguments> {
    query
        .bind(state.internal_id.hyphenated())
        .bind(state.enode_id())
        .bind(state.user_id.hyphenated())
        .bind(data)
        .bind(state.vehicle.last_seen.map(db_time))
        .bind(db_time(state.received_at))
        .bind(state.source.as_str())
        .bind(state.relink_required)
        .bind(db_time(now))
}

/// `INSERT ... SELECT FROM (VALUES ...)` for `rows` vehicles. `WHERE EXISTS`: a vehicle whose user
/// was deleted meanwhile is skipped rather than failing the batch on the foreign key (the WHERE
/// also keeps SQLite's parser from reading ON CONFLICT as a join condition).
///
/// An existing row is updated here only while its Enode id and owner stay the same, which is
/// every write the service makes: SQLite rewrites the index entries of every column named in
/// SET, whether its value changed or not, and naming `enode_id` and `user_id` cost two index
/// page writes per row (14 200 against 19 900 webhook events/s in a pair of runs at 100 000
/// vehicles). The ids of the rows written come back; the rare row whose identity changed is
/// rewritten by `replace`.
fn upsert_statement(rows: usize) -> String {
    let values = placeholder_rows(9, rows);
    format!(
        "INSERT INTO vehicles \
           (id, enode_id, user_id, data, last_seen, received_at, source, relink_required, updated_at) \
         SELECT column1, column2, column3, column4, column5, column6, column7, column8, column9 \
         FROM (VALUES {values}) AS v \
         WHERE EXISTS (SELECT 1 FROM users WHERE users.id = v.column3) \
         ON CONFLICT (id) DO UPDATE SET \
           data = excluded.data, last_seen = excluded.last_seen, received_at = excluded.received_at, \
           source = excluded.source, relink_required = excluded.relink_required, \
           updated_at = excluded.updated_at \
         WHERE vehicles.enode_id = excluded.enode_id AND vehicles.user_id = excluded.user_id \
         RETURNING id"
    )
}
