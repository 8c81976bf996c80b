//! Session records are written to the store behind the detector, which runs inside vehicle
//! actors and must never wait for a database. Sessions change rarely (a few writes per charge),
//! so the writer writes as soon as it is woken; only the newest write per session is kept, and a
//! failed batch goes back into the queue unless something newer replaced it meanwhile.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use super::record::SessionWrite;
use crate::ports::{PortError, SessionStore};

/// First wait after a failed write; doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct SessionWriter {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn SessionStore>,
    // A std Mutex: held only to move entries in or out, never across an await.
    pending: Mutex<HashMap<Uuid, SessionWrite>>,
    wake: Notify,
    stopping: AtomicBool,
    // The loop and `flush` must not write the same session concurrently, or an older write
    // could land after a newer one.
    writer: tokio::sync::Mutex<()>,
}

impl SessionWriter {
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                pending: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                stopping: AtomicBool::new(false),
                writer: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Queues a write (replacing a queued one for the same session). Never blocks on the store.
    pub fn submit(&self, write: SessionWrite) {
        self.pending().insert(write.session_id(), write);
        self.inner.wake.notify_one();
    }

    /// Writes queued sessions until `stop`. Run it on its own task; after stopping, await the
    /// task and then `flush`.
    pub async fn run(self) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            self.inner.wake.notified().await;
            loop {
                if self.inner.stopping.load(Ordering::Acquire) {
                    return;
                }
                match self.write_pending().await {
                    Ok(()) => {
                        backoff = FIRST_BACKOFF;
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, retry_in = ?backoff, "charging session write failed; will retry");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = self.inner.wake.notified() => {}
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
    }

    /// Makes `run` return at its next wake-up.
    pub fn stop(&self) {
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// Writes everything queued now, retrying while the store fails, up to `deadline`.
    pub async fn flush(&self, deadline: Duration) -> Result<(), PortError> {
        crate::flush::until_empty(deadline, MAX_BACKOFF, || self.write_pending(), || self.pending().is_empty()).await
    }

    /// Writes waiting to be stored.
    pub fn backlog(&self) -> usize {
        self.pending().len()
    }

    async fn write_pending(&self) -> Result<(), PortError> {
        let _writer = self.inner.writer.lock().await;
        let batch: Vec<SessionWrite> = self.pending().drain().map(|(_, write)| write).collect();
        if batch.is_empty() {
            return Ok(());
        }
        match self.inner.store.write_sessions(&batch).await {
            Ok(()) => Ok(()),
            Err(err) if err.retryable => {
                let mut pending = self.pending();
                for write in batch {
                    pending.entry(write.session_id()).or_insert(write);
                }
                Err(err)
            }
            Err(err) => {
                // Retrying a batch the store refuses would block every later session: drop it, loudly.
                tracing::error!(error = %err, sessions = batch.len(), "store refused charging sessions; dropped");
                Err(err)
            }
        }
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<Uuid, SessionWrite>> {
        // Inserts and drains are single operations: a poisoned map is still consistent.
        self.inner.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
