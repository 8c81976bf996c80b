//! Throwaway databases for tests and benchmarks: a fresh, empty database per test, on either
//! backend, removed when the test is done.
//!
//! ```no_run
//! # async fn example() -> Result<(), evconduit::store::StoreError> {
//! use evconduit::store::testing::TestDatabase;
//!
//! // SQLite: a new file in the temp directory. Always available.
//! let db = TestDatabase::sqlite();
//! let store = db.store().await?; // connected and migrated
//! # drop(store);
//!
//! // Postgres: a new database `evc_test_<random>` on the server that
//! // EVCONDUIT_TEST_POSTGRES_URL names (default postgres://postgres@127.0.0.1:5432/test).
//! // `None` means "not reachable, skip" (a loud SKIPPED line is printed); with `CI` set in the
//! // environment it panics instead, so a CI run cannot pass by skipping.
//! let Some(db) = TestDatabase::postgres().await else { return Ok(()) };
//! let store = db.store().await?;
//! // ... or hand `db.url()` to the service under test.
//! drop(store);
//! db.drop_db().await; // or let it drop: cleanup then runs on a helper thread
//! # Ok(())
//! # }
//! ```
//!
//! This is test support: where it cannot do its job (the server is reachable but will not create
//! a database) it panics, which is how a test helper fails the test.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use url::Url;
use uuid::Uuid;

use super::{Store, StoreError};

/// Names the Postgres server (and a database on it to connect to) that test databases are
/// created on.
pub const POSTGRES_URL_VAR: &str = "EVCONDUIT_TEST_POSTGRES_URL";
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Every test database's name starts with this, so leftovers are easy to find and drop.
pub const DATABASE_PREFIX: &str = "evc_test_";

/// How long to wait for the Postgres server before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A fresh database; see the module docs.
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteFile(PathBuf),
    Postgres { admin_url: String, name: String },
    Done,
}

impl TestDatabase {
    /// A new SQLite database file in the temp directory (created on first connect).
    pub fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("{DATABASE_PREFIX}{}.db", Uuid::new_v4().simple()));
        Self { url: format!("sqlite://{}", path.display()), cleanup: Cleanup::SqliteFile(path) }
    }

    /// A new, empty Postgres database, or `None` when the server cannot be reached (and `CI` is
    /// not set).
    pub async fn postgres() -> Option<Self> {
        let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let mut admin = match admin_connect(&admin_url).await {
            Ok(conn) => conn,
            Err(reason) => {
                let message = format!(
                    "postgres not reachable at {} ({reason}); set {POSTGRES_URL_VAR} to test against Postgres",
                    redacted(&admin_url)
                );
                if std::env::var_os("CI").is_some() {
                    panic!("{message} (CI is set, so this fails instead of skipping)");
                }
                eprintln!("\n=====  SKIPPED: {message}  =====\n");
                return None;
            }
        };

        let name = format!("{DATABASE_PREFIX}{}", Uuid::new_v4().simple());
        // The name is ours (a prefix and hex digits), so it is safe to put in the statement;
        // CREATE DATABASE takes no bind parameters.
        if let Err(err) =
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await
        {
            panic!("postgres is reachable but CREATE DATABASE failed: {err}");
        }
        let _ = admin.close().await;

        let mut url = match Url::parse(&admin_url) {
            Ok(url) => url,
            Err(err) => panic!("{POSTGRES_URL_VAR} is not a URL: {err}"),
        };
        url.set_path(&format!("/{name}"));
        Some(Self { url: url.into(), cleanup: Cleanup::Postgres { admin_url, name } })
    }

    /// The URL to hand to `store::connect` or to the service under test.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connects to the database and runs the migrations.
    pub async fn store(&self) -> Result<Arc<dyn Store>, StoreError> {
        let store = super::connect(&self.url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Removes the database now. Dropping does the same, but on a helper thread because `Drop`
    /// cannot await.
    pub async fn drop_db(mut self) {
        let cleanup = std::mem::replace(&mut self.cleanup, Cleanup::Done);
        cleanup.run().await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let cleanup = std::mem::replace(&mut self.cleanup, Cleanup::Done);
        match cleanup {
            Cleanup::Done => {}
            // No I/O to wait for: remove the files right here.
            Cleanup::SqliteFile(path) => remove_sqlite_files(&path),
            // A runtime of its own on a thread of its own works whether or not the caller is
            // inside a runtime (blocking on one from inside another would panic).
            postgres => {
                let worker = std::thread::spawn(move || {
                    if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        rt.block_on(postgres.run());
                    }
                });
                let _ = worker.join();
            }
        }
    }
}

impl Cleanup {
    /// Best effort: a leftover database is untidy, not wrong, and must not fail a test.
    async fn run(self) {
        match self {
            Cleanup::Done => {}
            Cleanup::SqliteFile(path) => remove_sqlite_files(&path),
            Cleanup::Postgres { admin_url, name } => {
                let Ok(mut admin) = admin_connect(&admin_url).await else {
                    eprintln!("could not drop test database {name}: server not reachable");
                    return;
                };
                // FORCE: the test's pool may still hold connections.
                let drop_sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(err) = sqlx::raw_sql(sqlx::AssertSqlSafe(drop_sql)).execute(&mut admin).await {
                    eprintln!("could not drop test database {name}: {err}");
                }
                let _ = admin.close().await;
            }
        }
    }
}

async fn admin_connect(url: &str) -> Result<PgConnection, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => Err(super::errors::from_sqlx(err).to_string()),
        Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
    }
}

fn remove_sqlite_files(path: &std::path::Path) {
    // WAL mode keeps two companions next to the database file.
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("redacted"));
            }
            parsed.into()
        }
        Err(_) => "(unparseable url)".to_owned(),
    }
}
