//! The SQLite side of the write-behind: a batch of vehicle writes in one transaction. Called from
//! the `Store` impl in sqlite.rs, which owns the pool.
//!
//! Upserts go many rows to a statement. Each statement is a round trip to sqlx's SQLite worker
//! thread, and at a fleet where every webhook names a different vehicle those round trips, not
//! SQLite, were most of the write-behind's cost (one per row before).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use evconduit_actors::state::VehicleState;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, Row, Sqlite, Transaction};
use uuid::Uuid;

use super::StoreError;
use super::errors::from_sqlx;
use super::rows::{self, db_time};
use super::sqlite_statements::{ChunkStatement, placeholder_rows};

/// Rows per upsert statement: `COLUMNS` parameters each stays far below SQLite's 32 766, and a
/// batch of 500 is five statements.
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
    // Counted, not returned: sqlx hands each returned row from its SQLite thread to this task
    // as a message of its own, a hundred per statement for ids that are almost always all there.
    static UPSERT: ChunkStatement =
        ChunkStatement::new(ROWS_PER_STATEMENT, |rows| upsert_statement(rows, Returning::Nothing));
    let query = sqlx::query_with(UPSERT.text(chunk.len()), upsert_arguments(chunk, now)?);
    let written = query.execute(&mut **tx).await.map_err(from_sqlx)?.rows_affected();
    if usize::try_from(written).is_ok_and(|written| written == chunk.len()) {
        return Ok(());
    }
    // Some rows were left alone: their Enode id or owner changed (or their user is gone). The
    // same upsert again writes the same values and names the rows it wrote; the rest are
    // rewritten by `replace`.
    let statement = upsert_statement(chunk.len(), Returning::Ids);
    let written = sqlx::query_with(sqlx::AssertSqlSafe(statement), upsert_arguments(chunk, now)?)
        .fetch_all(&mut **tx)
        .await
        .map_err(from_sqlx)?;
    let written: HashSet<String> =
        written.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>().map_err(from_sqlx)?;
    for state in chunk {
        if !written.contains(&state.internal_id.hyphenated().to_string()) {
            replace(tx, state, now).await?;
        }
    }
    Ok(())
}

/// The values of an upsert of `chunk`, row after row.
fn upsert_arguments(chunk: &[&VehicleState], now: DateTime<Utc>) -> Result<SqliteArguments, StoreError> {
    let mut arguments = SqliteArguments::default();
    arguments.reserve(COLUMNS * chunk.len(), 0);
    for state in chunk {
        // Serialised before anything runs: a vehicle that cannot be written fails the batch with
        // its id. The JSON is moved into the statement; binding a `&str` would copy it again.
        bind_row(&mut arguments, state, rows::vehicle_json(&state.vehicle)?, now)?;
    }
    Ok(arguments)
}

/// Rewrites every column of an existing row, identity included (see `upsert_statement`).
async fn replace(
    tx: &mut Transaction<'static, Sqlite>,
    state: &VehicleState,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut arguments = SqliteArguments::default();
    bind_row(&mut arguments, state, rows::vehicle_json(&state.vehicle)?, now)?;
    let query = sqlx::query_with(
        "UPDATE vehicles SET enode_id = ?2, user_id = ?3, data = ?4, last_seen = ?5, received_at = ?6, \
           source = ?7, relink_required = ?8, updated_at = ?9 \
         WHERE id = ?1 AND EXISTS (SELECT 1 FROM users WHERE users.id = ?3)",
        arguments,
    );
    query.execute(&mut **tx).await.map(drop).map_err(from_sqlx)
}

/// Columns of a vehicle row, as both statements name them.
const COLUMNS: usize = 9;

/// Adds one vehicle's `COLUMNS` values, in the order both statements above name them.
fn bind_row(
    arguments: &mut SqliteArguments,
    state: &VehicleState,
    data: String,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let unbindable = |e: sqlx::error::BoxDynError| StoreError::Invalid(format!("cannot bind a vehicle column: {e}"));
    arguments.add(state.internal_id.hyphenated()).map_err(unbindable)?;
    arguments.add(state.enode_id()).map_err(unbindable)?;
    arguments.add(state.user_id.hyphenated()).map_err(unbindable)?;
    arguments.add(data).map_err(unbindable)?;
    arguments.add(state.vehicle.last_seen.map(db_time)).map_err(unbindable)?;
    arguments.add(db_time(state.received_at)).map_err(unbindable)?;
    arguments.add(state.source.as_str()).map_err(unbindable)?;
    arguments.add(state.relink_required).map_err(unbindable)?;
    arguments.add(db_time(now)).map_err(unbindable)
}

/// What an upsert statement returns: nothing (the number of rows it wrote is counted anyway),
/// or the ids of the rows it wrote.
#[derive(Clone, Copy)]
enum Returning {
    Nothing,
    Ids,
}

/// `INSERT ... SELECT FROM (VALUES ...)` for `rows` vehicles. `WHERE EXISTS`: a vehicle whose user
/// was deleted meanwhile is skipped rather than failing the batch on the foreign key (the WHERE
/// also keeps SQLite's parser from reading ON CONFLICT as a join condition).
///
/// An existing row is updated here only while its Enode id and owner stay the same, which is
/// every write the service makes: SQLite rewrites the index entries of every column named in
/// SET, whether its value changed or not, and naming `enode_id` and `user_id` cost two index
/// page writes per row (14 200 against 19 900 webhook events/s in a pair of runs at 100 000
/// vehicles). The rare row whose identity changed is rewritten by `replace`.
fn upsert_statement(rows: usize, returning: Returning) -> String {
    let values = placeholder_rows(COLUMNS, rows);
    let returning = match returning {
        Returning::Nothing => "",
        Returning::Ids => " RETURNING id",
    };
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
         WHERE vehicles.enode_id = excluded.enode_id AND vehicles.user_id = excluded.user_id{returning}"
    )
}
