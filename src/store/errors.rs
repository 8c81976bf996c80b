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
    ("push_registrations_user_webhook_key", "push_registrations.webhook_id", "push webhook id"),
];

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
            let class = if db.try_downcast_ref::<SqliteError>().is_some() {
                sqlite_class(&code)
            } else {
                postgres_class(&code)
            };
            match class {
                Class::Transient => StoreError::Unavailable(format!("database busy or unreachable (code {code})")),
                // A value the database will never take (Postgres refuses a NUL character in text,
                // SQLite a string over its size limit): the same write fails every time.
                Class::Refused => StoreError::Invalid(format!("the database refused a value (code {code})")),
                // The server's one-line message names what failed, not the statement or values.
                Class::Other => StoreError::Unavailable(format!("database error (code {code}): {}", db.message())),
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

enum Class {
    /// "Not now" rather than "never": lock contention, connection trouble, a server shutting
    /// down, serialization failures.
    Transient,
    /// "Never": the values in this write are not acceptable.
    Refused,
    /// Anything else (a missing table before migrations, say): reported as unavailable, since
    /// the fix is outside the caller and a retry after it works.
    Other,
}

/// SQLite result codes: the primary code is the low byte of the extended one.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_TOOBIG: i32 = 18;
const SQLITE_CONSTRAINT: i32 = 19;
const SQLITE_MISMATCH: i32 = 20;
const SQLITE_RANGE: i32 = 25;

/// SQLite's primary result code in `code`, its extended result code in decimal.
fn sqlite_primary(code: &str) -> Option<i32> {
    code.parse::<i32>().ok().map(|code| code & 0xff)
}

/// SQLite answered busy (any extended form: recovering, snapshot, timeout).
pub(crate) fn is_sqlite_busy(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else { return false };
    db.code().and_then(|code| sqlite_primary(&code)) == Some(SQLITE_BUSY)
}

/// `code` is SQLite's extended result code, in decimal.
fn sqlite_class(code: &str) -> Class {
    match sqlite_primary(code) {
        Some(SQLITE_BUSY | SQLITE_LOCKED) => Class::Transient,
        Some(SQLITE_TOOBIG | SQLITE_CONSTRAINT | SQLITE_MISMATCH | SQLITE_RANGE) => Class::Refused,
        _ => Class::Other,
    }
}

/// `code` is a Postgres SQLSTATE.
fn postgres_class(code: &str) -> Class {
    // Classes 08 connection, 28 authorization, 3D no such database, 40 transaction rollback
    // (serialization, deadlock), 53 insufficient resources, 57 operator intervention (shutdown,
    // statement timeout), and 55P03 lock not available; 22 data exception and 23 integrity
    // constraint violation.
    match code.get(..2) {
        Some("08" | "28" | "3D" | "40" | "53" | "57") => Class::Transient,
        _ if code == "55P03" => Class::Transient,
        Some("22" | "23") => Class::Refused,
        _ => Class::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let transient = |class| matches!(class, Class::Transient);
        let refused = |class| matches!(class, Class::Refused);
        assert!(transient(sqlite_class("5")));
        assert!(transient(sqlite_class("517"))); // SQLITE_BUSY_SNAPSHOT
        assert!(transient(sqlite_class("262"))); // SQLITE_LOCKED_SHAREDCACHE
        assert!(refused(sqlite_class("18")));
        assert!(matches!(sqlite_class("14"), Class::Other)); // SQLITE_CANTOPEN
        assert!(transient(postgres_class("08006")));
        assert!(transient(postgres_class("40001")));
        assert!(transient(postgres_class("57P01")));
        assert!(transient(postgres_class("55P03")));
        assert!(refused(postgres_class("22P05"))); // NUL in jsonb
        assert!(refused(postgres_class("22021"))); // NUL in text
        assert!(matches!(postgres_class("42P01"), Class::Other)); // no such table
    }
}
