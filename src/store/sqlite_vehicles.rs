//! The SQLite side of the write-behind: a batch of vehicle writes in one transaction. Called from
//! the `Store` impl in sqlite.rs, which owns the pool.
//!
//! Upserts go many rows to a statement. Each statement is a round trip to sqlx's SQLite worker
//! thread, and at a fleet where every webhook names a different vehicle those round trips, not
//! SQLite, were most of the write-behind's cost (one per row before).

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, SecondsFormat, Utc};
use evconduit_actors::state::{DataSource, VehicleState};
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, Row, Sqlite, Transaction};
use uuid::Uuid;

use super::StoreError;
use super::errors::from_sqlx;
use super::rows::{self, db_time};
use super::sqlite_statements::{ChunkStatement, placeholder_rows};

/// Rows per upsert statement: `COLUMNS` parameters each stays far below SQLite's 32 766, and a
/// write-behind batch (1 000 by default) is ten statements, between which a waiting delivery
/// may take the writer's turn (sqlite_turns.rs).
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
    let updated_at = time_text(now);
    for state in chunk {
        // Serialised before anything runs: a vehicle that cannot be written fails the batch with
        // its id. The JSON is moved into the statement; binding a `&str` would copy it again.
        bind_row(&mut arguments, state, rows::vehicle_json(&state.vehicle)?, &updated_at)?;
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
    bind_row(&mut arguments, state, rows::vehicle_json(&state.vehicle)?, &time_text(now))?;
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
///
/// Text goes in as `Arc<str>`, which sqlx keeps as it is: given a `&str`, a uuid or a time, it
/// makes a `String` and then an `Arc` around it, two allocations per value, and SQLite's thread
/// frees them, so each came from the allocator's shared arena rather than this thread's cache.
/// With ~19 of them per row, malloc and free were a fifth of the CPU of a write-behind catch-up
/// on SQLite; now there are five, and the columns every row shares are shared (`updated_at`, one
/// per statement; the source, one per process).
fn bind_row(
    arguments: &mut SqliteArguments,
    state: &VehicleState,
    data: String,
    updated_at: &Arc<str>,
) -> Result<(), StoreError> {
    let unbindable = |e: sqlx::error::BoxDynError| StoreError::Invalid(format!("cannot bind a vehicle column: {e}"));
    arguments.add(uuid_text(state.internal_id)).map_err(unbindable)?;
    arguments.add(Arc::<str>::from(state.enode_id())).map_err(unbindable)?;
    arguments.add(uuid_text(state.user_id)).map_err(unbindable)?;
    arguments.add(data).map_err(unbindable)?;
    arguments.add(state.vehicle.last_seen.map(time_text)).map_err(unbindable)?;
    arguments.add(time_text(state.received_at)).map_err(unbindable)?;
    arguments.add(source_text(state.source)).map_err(unbindable)?;
    arguments.add(state.relink_required).map_err(unbindable)?;
    arguments.add(Arc::clone(updated_at)).map_err(unbindable)
}

/// A uuid as the store writes it (hyphenated, lowercase), in one allocation.
fn uuid_text(id: Uuid) -> Arc<str> {
    Arc::from(&*id.hyphenated().encode_lower(&mut Uuid::encode_buffer()))
}

/// A time as sqlx writes chrono's `DateTime<Utc>` (the schema's text form), cut to microseconds.
fn time_text(t: DateTime<Utc>) -> Arc<str> {
    Arc::from(db_time(t).to_rfc3339_opts(SecondsFormat::AutoSi, false))
}

/// The source's text, shared by every row that names it.
fn source_text(source: DataSource) -> Arc<str> {
    static WEBHOOK: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(DataSource::Webhook.as_str()));
    static REFRESH: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(DataSource::Refresh.as_str()));
    static RESTORED: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(DataSource::Restored.as_str()));
    let text = match source {
        DataSource::Webhook => &WEBHOOK,
        DataSource::Refresh => &REFRESH,
        DataSource::Restored => &RESTORED,
    };
    Arc::clone(text)
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use sqlx::SqlitePool;

    use super::*;

    /// The text bound here must be the text sqlx writes for the same value elsewhere in the store
    /// (the other tables, and every query that compares times as text).
    #[tokio::test]
    async fn texts_are_what_sqlx_writes_for_the_same_values() {
        let pool = SqlitePool::connect("sqlite::memory:").await.expect("in-memory SQLite");
        let second = Utc.with_ymd_and_hms(2026, 12, 2, 8, 46, 59).unwrap();
        for nanos in [0, 123_000_000, 123_456_000, 123_456_789] {
            let t = second + chrono::Duration::nanoseconds(nanos);
            let (ours, theirs): (String, String) = sqlx::query_as("SELECT ?1, ?2")
                .bind(time_text(t))
                .bind(db_time(t))
                .fetch_one(&pool)
                .await
                .expect("select");
            assert_eq!(ours, theirs, "{nanos} ns past the second");
        }
        let id = Uuid::new_v4();
        let (ours, theirs): (String, String) =
            sqlx::query_as("SELECT ?1, ?2").bind(uuid_text(id)).bind(id.hyphenated()).fetch_one(&pool).await.unwrap();
        assert_eq!(ours, theirs);
        for source in [DataSource::Webhook, DataSource::Refresh, DataSource::Restored] {
            assert_eq!(&*source_text(source), source.as_str());
        }
    }
}
