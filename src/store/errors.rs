//! From sqlx errors to `StoreError`, the same way for both backends.
//!
//! Error messages leave the process (logs, Sentry, sometimes an HTTP body), so they never carry
//! SQL text, bound values or the database URL (it may hold a password): only what kind of thing
//! went wrong and, for a unique violation, which unique thing.

use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::migrate::MigrateError;
use sqlx::sqlite::SqliteError;

use super::StoreError;

/// The unique constraints of the schema, by the name each backend reports them under (Postgres:
/// the constraint or index name; SQLite: `table.column` in the message), and what a caller
/// should be told is taken.
const UNIQUE_SUBJECTS: &[(&str, &str, &str)] = &[
    ("users_pkey", "users.id", "user id"),
    ("users_email_key", "users.email", "email"),
    ("api_keys_pkey", "api_keys.id", "api key id"),
    ("api_keys_key_hash_key", "api_keys.key_hash", "api key hash"),
    ("vehicles_pkey", "vehicles.id", "vehicle id"),
    ("vehicles_enode_id_key", "vehicles.enode_id", "vehicle enode id"),
    ("webhook_deliveries_pkey", "webhook_deliveries.id", "delivery id"),
];

/// SQLite result codes (the primary code is the low byte of the extended one) for "another
/// connection holds the lock": worth retrying.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

pub(crate) fn from_sqlx(err: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match err {
        E::Database(db) => from_database(db.as_ref()),
        E::Io(io) => StoreError::Unavailable(format!("i/o error: {io}")),
        E::Tls(_) => StoreError::Unavailable("tls error".into()),
        E::Protocol(_) => StoreError::Unavailable("protocol error".into()),
        E::PoolTimedOut => StoreError::Unavailable("timed out waiting for a connection".into()),
        E::PoolClosed => StoreError::Unavailable("connection pool closed".into()),
        E::WorkerCrashed => StoreError::Unavailable("database worker crashed".into()),
        E::BeginFailed => StoreError::Unavailable("could not begin a transaction".into()),
        // The options were built from a URL the store parsed already; a failure here is about
        // the environment (a missing file, a bad path), and the message may quote the URL.
        E::Configuration(_) => StoreError::Unavailable("invalid database configuration".into()),
        E::RowNotFound => StoreError::Corrupt("expected row missing".into()),
        E::ColumnNotFound(column) => StoreError::Corrupt(format!("no column {column}")),
        E::ColumnIndexOutOfBounds { index, .. } => StoreError::Corrupt(format!("no column at index {index}")),
        E::TypeNotFound { type_name } => StoreError::Corrupt(format!("no type {type_name}")),
        E::ColumnDecode { index, source } => StoreError::Corrupt(format!("cannot decode column {index}: {source}")),
        E::Decode(source) => StoreError::Corrupt(format!("cannot decode: {source}")),
        E::Encode(source) => StoreError::Invalid(format!("cannot encode a value: {source}")),
        E::InvalidArgument(_) => StoreError::Invalid("invalid query argument".into()),
        E::Migrate(err) => from_migrate(*err),
        _ => StoreError::Unavailable("database error".into()),
    }
}

pub(crate) fn from_migrate(err: MigrateError) -> StoreError {
    match err {
        MigrateError::Execute(err) => from_sqlx(err),
        MigrateError::ExecuteMigration(err, version) => match from_sqlx(err) {
            StoreError::Unavailable(msg) => StoreError::Unavailable(format!("migration {version}: {msg}")),
            other => StoreError::Corrupt(format!("migration {version} failed: {other}")),
        },
        // An applied migration that this build does not have, or whose text changed, or one
        // that failed half-way: the schema is not what the code expects.
        MigrateError::VersionMissing(v) => {
            StoreError::Corrupt(format!("database has migration {v}, unknown to this build"))
        }
        MigrateError::VersionMismatch(v) => {
            StoreError::Corrupt(format!("migration {v} was changed after it was applied"))
        }
        MigrateError::Dirty(v) => StoreError::Corrupt(format!("migration {v} was left partially applied")),
        other => StoreError::Corrupt(format!("migrations: {other}")),
    }
}

fn from_database(db: &dyn DatabaseError) -> StoreError {
    match db.kind() {
        ErrorKind::UniqueViolation => StoreError::Conflict(unique_subject(db).to_owned()),
        ErrorKind::ForeignKeyViolation => StoreError::Invalid("a referenced row (user) does not exist".into()),
        ErrorKind::CheckViolation | ErrorKind::NotNullViolation => {
            StoreError::Invalid("a value the schema does not allow".into())
        }
        _ => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let transient = if db.try_downcast_ref::<SqliteError>().is_some() {
                sqlite_transient(&code)
            } else {
                postgres_transient(&code)
            };
            if transient {
                StoreError::Unavailable(format!("database busy or unreachable (code {code})"))
            } else {
                // The server's one-line message names what failed, not the statement or values.
                StoreError::Unavailable(format!("database error (code {code}): {}", db.message()))
            }
        }
    }
}

fn unique_subject(db: &dyn DatabaseError) -> &'static str {
    // Postgres names the constraint; SQLite only says "UNIQUE constraint failed: table.column".
    let haystack = db.constraint().unwrap_or_else(|| db.message());
    UNIQUE_SUBJECTS
        .iter()
        .find(|(pg, sqlite, _)| haystack == *pg || haystack.contains(sqlite))
        .map_or("a unique value", |(_, _, subject)| subject)
}

// Errors that say "not now" rather than "never": lock contention, connection trouble,
// a server shutting down, serialization failures.

/// `code` is SQLite's extended result code, in decimal.
fn sqlite_transient(code: &str) -> bool {
    code.parse::<i32>().is_ok_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
}

/// `code` is a Postgres SQLSTATE.
fn postgres_transient(code: &str) -> bool {
    // SQLSTATE classes: 08 connection, 28 authorization, 3D no such database,
    // 40 transaction rollback (serialization, deadlock), 53 insufficient resources,
    // 57 operator intervention (shutdown, statement timeout); 55P03 lock not available.
    matches!(code.get(..2), Some("08" | "28" | "3D" | "40" | "53" | "57")) || code == "55P03"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        assert!(sqlite_transient("5"));
        assert!(sqlite_transient("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(sqlite_transient("262")); // SQLITE_LOCKED_SHAREDCACHE
        assert!(!sqlite_transient("2067")); // SQLITE_CONSTRAINT_UNIQUE
        assert!(postgres_transient("08006"));
        assert!(postgres_transient("40001"));
        assert!(postgres_transient("57P01"));
        assert!(postgres_transient("55P03"));
        assert!(!postgres_transient("23505"));
        assert!(!postgres_transient("42P01"));
    }
}
