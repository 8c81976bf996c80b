//! Whose turn it is to write to the SQLite store, within this process.
//!
//! SQLite has one writer at a time. Left to SQLite, a writer that finds the lock taken sleeps in
//! growing steps (up to 100 ms) and retries: under webhook load a delivery's one-row insert
//! waited behind write-behind batches for up to 1.7 s although each held the lock for a few ms.
//! So the store's writers take turns here first, on one async queue, and then write through the
//! store's one writing connection (SQLite empties a connection's page cache whenever another
//! connection has written since its last transaction: writes spread over a pool found a cold
//! cache each time). Webhook deliveries go first (`delivery_turn`); the others are first come
//! first served, after deliveries for a bounded time (`turn`). SQLite's busy timeout still covers
//! other processes (the CLI).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::sqlite::SqlitePool;
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};
use tokio::time::Instant;

use super::StoreError;
use super::errors::from_sqlx;

/// How long another writer lets webhook deliveries go first (see `WriterTurns::turn`). Without a
/// bound, deliveries arriving faster than the store records them kept the write-behind from ever
/// writing: 0-1 000 rows in 10 s of saturating webhook load at 100 000 vehicles, every vehicle's
/// state since held only in memory (a crash would lose it; Enode does not resend what was
/// acknowledged). With it and `BATCH_HOLDS_AT_LEAST` (alternating runs): 28 500-36 500 rows
/// written during the load, caught up 3.7-4.0 s against 5.8-6.1 s after it, at 21 844-26 484
/// against 36 500-40 723 events/s and ack p99 40.2-50.8 against 20.9-21.4 ms.
const DEFER_TO_DELIVERIES_AT_MOST: Duration = Duration::from_millis(50);
/// A long write that got its turn keeps it this long before letting waiting writers in (see
/// `WriterTurns::others_are_owed`); one 100-row vehicle upsert is about 8 ms. With the
/// bound above the write-behind gets about a sixth of the turn under a saturating webhook load.
const BATCH_HOLDS_AT_LEAST: Duration = Duration::from_millis(10);

pub(super) struct WriterTurns {
    /// The store's one writing connection, handed to whoever holds the turn.
    writes: SqlitePool,
    queue: Arc<Mutex<()>>,
    /// Writers waiting for their turn: a long write lets them in early.
    writers_waiting: AtomicUsize,
    /// Webhook deliveries waiting for their turn; every other writer lets them go first, and is
    /// told in `deliveries_gone` when none is left.
    deliveries_waiting: AtomicUsize,
    deliveries_gone: Notify,
    /// Told when a turn ends, i.e. after a write: wakes the WAL checkpointer.
    wrote: Arc<Notify>,
}

/// A writer's turn: held until the write is committed. Writes go through `db`, the store's one
/// writing connection.
pub(super) struct Turn {
    _guard: OwnedMutexGuard<()>,
    db: SqlitePool,
    wrote: Arc<Notify>,
    /// When the turn was given: a long write's share is counted from here.
    taken: Instant,
}

impl Turn {
    pub fn db(&self) -> &SqlitePool {
        &self.db
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.wrote.notify_one();
    }
}

impl WriterTurns {
    pub fn new(writes: SqlitePool) -> Self {
        Self {
            writes,
            queue: Arc::default(),
            writers_waiting: AtomicUsize::new(0),
            deliveries_waiting: AtomicUsize::new(0),
            deliveries_gone: Notify::new(),
            wrote: Arc::default(),
        }
    }

    /// The writing connection, outside any turn: for tests' settings checks, never for writes.
    #[cfg(test)]
    pub fn connection(&self) -> &SqlitePool {
        &self.writes
    }

    /// What the WAL checkpointer watches: the turn queue (it checkpoints under a turn when the WAL
    /// grows too long, and stops when the queue is gone) and the "wrote" signal.
    pub fn for_checkpointer(&self) -> (Weak<Mutex<()>>, Weak<Notify>) {
        (Arc::downgrade(&self.queue), Arc::downgrade(&self.wrote))
    }

    /// A turn and a transaction that takes SQLite's write lock at once. A plain (deferred)
    /// transaction takes it at its first write, and if another connection committed in between
    /// SQLite fails at once with SQLITE_BUSY instead of waiting out the busy timeout.
    pub async fn begin_write(&self) -> Result<(Turn, sqlx::Transaction<'static, sqlx::Sqlite>), StoreError> {
        let turn = self.turn().await;
        let tx = turn.db().begin_with("BEGIN IMMEDIATE").await.map_err(from_sqlx)?;
        Ok((turn, tx))
    }

    /// A writer's turn (a single-statement write needs no transaction, only this), after every
    /// webhook delivery waiting for one, but for at most `DEFER_TO_DELIVERIES_AT_MOST`: then it
    /// takes its place in the queue like a delivery.
    pub async fn turn(&self) -> Turn {
        let _waiting = Waiting::counted(&self.writers_waiting);
        let stop_deferring = Instant::now() + DEFER_TO_DELIVERIES_AT_MOST;
        loop {
            // Past the bound: deliveries may still be waiting; this writer queues all the same.
            let _deferred_long_enough = tokio::time::timeout_at(stop_deferring, self.no_delivery_waiting()).await;
            let guard = Arc::clone(&self.queue).lock_owned().await;
            // A delivery that came while this writer stood in the queue goes first: the queue is
            // first come first served, so letting go hands the turn on towards it.
            if self.deliveries_waiting.load(Ordering::Acquire) == 0 || Instant::now() >= stop_deferring {
                return self.turn_holding(guard);
            }
        }
    }

    /// A webhook delivery's turn to be recorded, ahead of every other writer. Its acknowledgement
    /// waits for this write alone, and Enode's deliveries are what the service must never lose;
    /// the write-behind, sessions, key use and "applied" marks can wait, and the write-behind
    /// keeps only each vehicle's newest state meanwhile, so a longer wait means fewer rows to
    /// write. In first-come order, a delivery waited behind whatever had queued before it: 463
    /// of 1 548 deliveries in a webhook load waited over 15 ms, the longest 281 ms. First in
    /// line (alternating runs, 100 000 vehicles, 10 s of webhooks): 24 888-26 930 against
    /// 15 317-15 760 events/s, ack p99 28.9-33.1 against 44.5-72.4 ms; the store then has more
    /// to write once the load stops (caught up 6.9 s against 3.7 s). Deliveries hold the turn
    /// for one insert each, so the others wait only while deliveries keep coming, and then for
    /// `DEFER_TO_DELIVERIES_AT_MOST` at most (why, and what the bound costs: there).
    pub async fn delivery_turn(&self) -> Turn {
        let _waiting = Waiting::counted(&self.writers_waiting);
        let _delivery = Waiting::counted_telling(&self.deliveries_waiting, &self.deliveries_gone);
        self.turn_holding(Arc::clone(&self.queue).lock_owned().await)
    }

    /// Whether a long write holding `turn` should commit what it has and queue again: someone is
    /// waiting and it has had `BATCH_HOLDS_AT_LEAST`. Yielding after every statement, a batch
    /// waited up to `DEFER_TO_DELIVERIES_AT_MOST` again per statement.
    pub fn others_are_owed(&self, turn: &Turn) -> bool {
        turn.taken.elapsed() >= BATCH_HOLDS_AT_LEAST && self.writers_waiting.load(Ordering::Relaxed) > 0
    }

    async fn no_delivery_waiting(&self) {
        loop {
            // Registered before the count is read, so the last delivery's wake-up is not missed.
            let gone = self.deliveries_gone.notified();
            tokio::pin!(gone);
            gone.as_mut().enable();
            if self.deliveries_waiting.load(Ordering::Acquire) == 0 {
                return;
            }
            gone.await;
        }
    }

    fn turn_holding(&self, guard: OwnedMutexGuard<()>) -> Turn {
        Turn { _guard: guard, db: self.writes.clone(), wrote: Arc::clone(&self.wrote), taken: Instant::now() }
    }
}

impl Drop for WriterTurns {
    /// Wakes the checkpointer, which then finds the queue gone and closes its connection.
    fn drop(&mut self) {
        self.wrote.notify_one();
    }
}

/// Counts a writer as waiting while it exists (also when its wait is cancelled); the last one
/// to stop waiting tells `when_none`, if given.
struct Waiting<'a> {
    count: &'a AtomicUsize,
    when_none: Option<&'a Notify>,
}

impl<'a> Waiting<'a> {
    fn counted(count: &'a AtomicUsize) -> Self {
        Self::new(count, None)
    }

    fn counted_telling(count: &'a AtomicUsize, when_none: &'a Notify) -> Self {
        Self::new(count, Some(when_none))
    }

    fn new(count: &'a AtomicUsize, when_none: Option<&'a Notify>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self { count, when_none }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(notify) = self.when_none
        {
            notify.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// Turns over a connection never opened: these tests only take turns.
    fn turns() -> Arc<WriterTurns> {
        let pool = SqlitePool::connect_lazy("sqlite::memory:").expect("an in-memory database's URL");
        Arc::new(WriterTurns::new(pool))
    }

    /// Deliveries go first, but not for ever: the write-behind must write while they keep coming.
    #[tokio::test]
    async fn a_writer_gets_its_turn_while_deliveries_keep_coming() {
        let turns = turns();
        let streaming = Arc::new(AtomicBool::new(true));
        // Three deliveries taking turns: one holds the turn, the others wait, all the time.
        let deliveries: Vec<_> = (0..3)
            .map(|_| {
                let (turns, streaming) = (Arc::clone(&turns), Arc::clone(&streaming));
                tokio::spawn(async move {
                    while streaming.load(Ordering::Relaxed) {
                        let _turn = turns.delivery_turn().await;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                })
            })
            .collect();
        while turns.deliveries_waiting.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        // Deferring without a bound, this waits until the deliveries stop (here: the timeout).
        let got_turn = tokio::time::timeout(Duration::from_secs(10), turns.turn()).await;
        let deliveries_still_coming = turns.deliveries_waiting.load(Ordering::Relaxed) > 0;
        streaming.store(false, Ordering::Relaxed);
        drop(got_turn.expect("a writer's turn while deliveries keep coming"));
        assert!(deliveries_still_coming, "the turn came only once no delivery was waiting");
        for delivery in deliveries {
            delivery.await.expect("delivery");
        }
    }

    /// A delivery queued behind other writers is recorded before them.
    #[tokio::test]
    async fn a_delivery_goes_before_writers_queued_ahead_of_it() {
        let turns = turns();
        let (order_tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        let held = turns.turn().await;
        let mut waiting = Vec::new();
        for name in ["background 1", "background 2"] {
            let (turns_, order_tx) = (Arc::clone(&turns), order_tx.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = turns_.turn().await;
                order_tx.send(name).expect("send");
            }));
            while turns.writers_waiting.load(Ordering::Relaxed) < waiting.len() {
                tokio::task::yield_now().await;
            }
        }
        let (turns_, order_tx2) = (Arc::clone(&turns), order_tx.clone());
        waiting.push(tokio::spawn(async move {
            let _turn = turns_.delivery_turn().await;
            order_tx2.send("delivery").expect("send");
        }));
        while turns.deliveries_waiting.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        drop(held);
        for task in waiting {
            task.await.expect("writer");
        }
        drop(order_tx);
        let mut seen = Vec::new();
        while let Some(name) = order.recv().await {
            seen.push(name);
        }
        assert_eq!(seen, ["delivery", "background 1", "background 2"]);
    }

    /// A long write lets waiting writers in only after its share, and only if someone waits.
    #[tokio::test(start_paused = true)]
    async fn a_long_write_yields_after_its_share_when_someone_waits() {
        let turns = turns();
        let held = turns.turn().await;
        assert!(!turns.others_are_owed(&held), "nobody waits");
        let waiter = tokio::spawn({
            let turns = Arc::clone(&turns);
            async move { drop(turns.turn().await) }
        });
        while turns.writers_waiting.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(!turns.others_are_owed(&held), "the write has not had its share yet");
        tokio::time::advance(BATCH_HOLDS_AT_LEAST).await;
        assert!(turns.others_are_owed(&held));
        drop(held);
        waiter.await.expect("the waiting writer gets its turn");
    }
}
