//! WAL checkpoints for the SQLite store, off the writers' path.
//!
//! By default the connection whose commit takes the WAL past 1000 pages copies the WAL back into
//! the database file and syncs both, inside that commit. Under webhook load at 100 000 vehicles
//! that made every write-behind batch's last commit take 20-25 ms, and a delivery waiting for its
//! turn to be recorded (its acknowledgement waits for that) waited for the checkpoint too: most of
//! an acknowledgement's latency. So the pool's connections never checkpoint
//! (`wal_autocheckpoint=0`) and this task does it on a connection of its own, in PASSIVE mode:
//! it takes no write lock, writers go on appending to the WAL meanwhile, and the syncs happen
//! on its thread.
//!
//! The WAL starts again from its beginning only when a write begins and finds every frame
//! copied. Under sustained load writers append while a checkpoint copies, so that moment never
//! comes and the file would grow without bound. Past `MAX_WAL_FRAMES` the task therefore
//! checkpoints once under the writers' turn: nobody appends meanwhile, the copy catches up (most
//! of it was done already, unlocked), and the next write restarts the WAL. Still PASSIVE: a
//! reader in the middle of a long query keeps its frames, and the turn is never held waiting
//! for it.

use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Mutex, Notify};

/// At most this often: each checkpoint that copies anything syncs the database file.
const INTERVAL: Duration = Duration::from_millis(100);
/// 64 MiB of 4 KiB pages: a few seconds of the heaviest write-behind load.
const MAX_WAL_FRAMES: i64 = 16 * 1024;
/// After a failure to connect or to checkpoint: the pool's own errors say what is wrong.
const RETRY: Duration = Duration::from_secs(5);

/// Starts the checkpointer. It runs while the store's writer turn exists (`turn`), woken after
/// each write (`wrote`); after each checkpoint it stores the WAL's length in bytes in `wal_bytes`
/// (the store's metric: a WAL that keeps growing means readers pin it or writes outrun the copy).
pub(super) fn spawn(
    options: SqliteConnectOptions,
    turn: Weak<Mutex<()>>,
    wrote: Weak<Notify>,
    wal_bytes: Weak<AtomicU64>,
) {
    tokio::spawn(async move {
        // The connection, and the size of one WAL frame in its database (fixed once it exists).
        let mut connection: Option<(SqliteConnection, u64)> = None;
        while let Some(notify) = wrote.upgrade() {
            notify.notified().await;
            drop(notify);
            let Some(turn) = turn.upgrade() else { break };
            let (conn, frame_bytes) = match connection.as_mut() {
                Some(open) => open,
                None => match connect(&options).await {
                    Ok(open) => connection.insert(open),
                    Err(err) => {
                        tracing::warn!(error = %err, "the WAL checkpointer could not connect; retrying");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                },
            };
            match checkpoint(conn, &turn).await {
                Ok(frames) => {
                    if let Some(gauge) = wal_bytes.upgrade() {
                        gauge.store(frames * *frame_bytes, Ordering::Relaxed);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "WAL checkpoint failed; retrying");
                    connection = None;
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            }
            drop(turn);
            tokio::time::sleep(INTERVAL).await;
        }
        if let Some((conn, _)) = connection {
            let _ = conn.close().await;
        }
    });
}

/// The checkpointer's own connection, and the bytes of one WAL frame: a page plus its 24-byte
/// header.
async fn connect(options: &SqliteConnectOptions) -> Result<(SqliteConnection, u64), sqlx::Error> {
    let mut conn = options.connect().await?;
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&mut conn).await?;
    Ok((conn, u64::try_from(page_size).unwrap_or(0) + 24))
}

/// One PASSIVE checkpoint, and another under the writers' turn if the WAL is too long. Returns
/// the WAL's length in frames (copied or not; the file itself is reused, not shrunk).
async fn checkpoint(conn: &mut SqliteConnection, turn: &Mutex<()>) -> Result<u64, sqlx::Error> {
    const PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";
    let (_busy, mut frames, _copied): (i64, i64, i64) = sqlx::query_as(PASSIVE).fetch_one(&mut *conn).await?;
    if frames > MAX_WAL_FRAMES {
        let _turn = turn.lock().await;
        let started = std::time::Instant::now();
        let copied: i64;
        (_, frames, copied) = sqlx::query_as::<_, (i64, i64, i64)>(PASSIVE).fetch_one(&mut *conn).await?;
        tracing::debug!(frames, copied, held = ?started.elapsed(), "WAL checkpointed under the writers' turn");
    }
    Ok(u64::try_from(frames).unwrap_or(0))
}
