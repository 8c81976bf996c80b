//! The write-behind's queue: the newest write per vehicle, and which of them are deletes.
//!
//! Batches sweep the queue in vehicle id order, from where the last batch stopped, wrapping at
//! the end. A vehicle's id is a UUIDv7 (`state::new_internal_id`), ordered by creation, and its
//! row was inserted in that order: so ids near each other are rows near each other, in SQLite's
//! table and in both stores' primary-key indexes. After a webhook load at 100 000 vehicles about
//! 80 000 writes wait; taken in a hash map's order every row was a different page of a 200 MB
//! table (a page read, a WAL frame and a checkpoint copy per row), taken in order most pages
//! hold two waiting rows and are read, written and copied once, in file order. The sweep also
//! bounds a write's wait: every write queued is taken within one pass over the queue, however
//! many arrive behind it.
//!
//! Deletes go first in every batch (see `take`), so the queue keeps their ids apart. Before, each
//! batch found them by walking the whole queue, under the lock the actors submit through: at the
//! end of a webhook load at 100 000 vehicles, 200 batches each walked up to 100 000 entries.
//! Now a batch costs what it takes.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use uuid::Uuid;

use crate::ports::VehicleWrite;

#[derive(Default)]
pub(super) struct Pending {
    /// Keyed by the id as a number (`key`), in the same order: `Uuid`'s comparisons are byte-wise
    /// `memcmp` calls, `u128`'s two integer compares, a dozen or more for each write queued.
    writes: BTreeMap<u128, VehicleWrite>,
    /// The keys in `writes` whose write is a delete.
    deletes: HashSet<u128>,
    /// The last key the sweep took: the next batch starts after it.
    swept_to: Option<u128>,
}

/// The map key of a vehicle id: its 16 bytes read as a big-endian number, which orders ids
/// exactly as their bytes do (so the sweep goes in id order, as the module docs say).
fn key(id: Uuid) -> u128 {
    id.as_u128()
}

impl Pending {
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Queues `write`, replacing any queued write for the same vehicle.
    pub fn replace(&mut self, write: VehicleWrite) {
        let id = key(write.internal_id());
        self.note_kind(id, &write);
        self.writes.insert(id, write);
    }

    /// Queues `write` unless something is already queued for the vehicle (a retried write must
    /// not replace a newer one that arrived meanwhile).
    pub fn keep_newer(&mut self, write: VehicleWrite) {
        let id = key(write.internal_id());
        if !self.writes.contains_key(&id) {
            self.note_kind(id, &write);
            self.writes.insert(id, write);
        }
    }

    /// Removes and returns up to `most` writes, deletes first: a vehicle removed and linked again
    /// gets a new internal id with the same Enode id, and the old row must be gone before the new
    /// one is inserted (the Enode id is unique). The rest in id order from where the sweep stands.
    pub fn take(&mut self, most: usize) -> Vec<VehicleWrite> {
        let mut batch = Vec::with_capacity(most.min(self.writes.len()));
        let deletes: Vec<u128> = self.deletes.iter().take(most).copied().collect();
        for id in deletes {
            self.deletes.remove(&id);
            batch.extend(self.writes.remove(&id));
        }
        // Whatever deletes are left did not fit: the batch is full, and they lead the next one.
        if self.deletes.is_empty() {
            let after = self.swept_to.map_or(Bound::Unbounded, Bound::Excluded);
            self.sweep((after, Bound::Unbounded), most, &mut batch);
            // Past the last id: on from the first.
            self.sweep((Bound::Unbounded, Bound::Unbounded), most, &mut batch);
        }
        batch
    }

    /// Moves writes with ids in `range`, in id order, into `batch` until it holds `most`.
    fn sweep(&mut self, range: (Bound<u128>, Bound<u128>), most: usize, batch: &mut Vec<VehicleWrite>) {
        let room = most.saturating_sub(batch.len());
        if room == 0 {
            return;
        }
        let taken = self.writes.extract_if(range, |_, _| true).take(room);
        for (id, write) in taken {
            self.swept_to = Some(id);
            batch.push(write);
        }
    }

    fn note_kind(&mut self, id: u128, write: &VehicleWrite) {
        match write {
            VehicleWrite::Delete { .. } => {
                self.deletes.insert(id);
            }
            // Deletes are rare: most of the time there is none to hash the id for.
            VehicleWrite::Upsert(_) if !self.deletes.is_empty() => {
                self.deletes.remove(&id);
            }
            VehicleWrite::Upsert(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::testing::sample_state;

    fn upsert(name: &str) -> VehicleWrite {
        VehicleWrite::Upsert(Arc::new(sample_state(name)))
    }

    fn is_delete(write: &VehicleWrite) -> bool {
        matches!(write, VehicleWrite::Delete { .. })
    }

    #[test]
    fn deletes_lead_and_every_write_is_taken_once() {
        let mut pending = Pending::default();
        let upserts: Vec<VehicleWrite> = (0..7).map(|i| upsert(&format!("v{i}"))).collect();
        let mut ids: HashSet<Uuid> = upserts.iter().map(VehicleWrite::internal_id).collect();
        for write in upserts {
            pending.replace(write);
        }
        let gone: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        for id in &gone {
            pending.replace(VehicleWrite::Delete { internal_id: *id });
            ids.insert(*id);
        }

        let first = pending.take(2);
        assert!(first.iter().all(is_delete), "a batch with deletes left over is all deletes");
        let second = pending.take(4);
        assert!(is_delete(&second[0]) && !second[1..].iter().any(is_delete));
        let rest = pending.take(100);
        assert_eq!(rest.len(), 4);
        assert!(pending.is_empty() && pending.take(5).is_empty());

        let taken: HashSet<Uuid> = first.iter().chain(&second).chain(&rest).map(VehicleWrite::internal_id).collect();
        assert_eq!(taken, ids);
    }

    fn upsert_with_id(id: u128) -> VehicleWrite {
        let mut state = sample_state(&format!("v{id}"));
        state.internal_id = Uuid::from_u128(id);
        VehicleWrite::Upsert(Arc::new(state))
    }

    fn ids(batch: &[VehicleWrite]) -> Vec<u128> {
        batch.iter().map(|write| write.internal_id().as_u128()).collect()
    }

    #[test]
    fn keys_order_ids_as_their_bytes_do() {
        let mut ids: Vec<Uuid> = (0..1_000).map(|_| Uuid::new_v4()).collect();
        ids.extend((0..1_000).map(|_| Uuid::now_v7()));
        let mut by_key = ids.clone();
        by_key.sort_by_key(|id| key(*id));
        ids.sort();
        assert_eq!(by_key, ids);
    }

    #[test]
    fn batches_sweep_in_id_order_from_where_the_last_one_stopped() {
        let mut pending = Pending::default();
        for id in [5, 1, 4, 2, 3, 7, 6] {
            pending.replace(upsert_with_id(id));
        }
        assert_eq!(ids(&pending.take(3)), [1, 2, 3]);
        // Queued behind the sweep (2) and ahead of it (9): the sweep goes on to the end first.
        pending.replace(upsert_with_id(2));
        pending.replace(upsert_with_id(9));
        assert_eq!(ids(&pending.take(3)), [4, 5, 6]);
        // Past the last id it starts again from the first, in the same batch.
        assert_eq!(ids(&pending.take(3)), [7, 9, 2]);
        assert!(pending.is_empty());
    }

    #[test]
    fn a_write_queued_behind_the_sweep_is_taken_within_one_pass() {
        let mut pending = Pending::default();
        for id in 0..100 {
            pending.replace(upsert_with_id(id));
        }
        pending.take(10);
        // Vehicle 0 is written again and queued behind the sweep, while the rest of the id space
        // keeps getting new writes ahead of it: it waits for the pass to end, not for a quiet queue.
        pending.replace(upsert_with_id(0));
        let mut batches = 0;
        loop {
            batches += 1;
            let batch = ids(&pending.take(10));
            if batch.contains(&0) {
                break;
            }
            for id in batch {
                pending.replace(upsert_with_id(id));
            }
            assert!(batches < 20, "vehicle 0 still waiting after {batches} batches");
        }
        assert_eq!(batches, 10, "taken as the sweep wraps: 90 ids ahead of it, ten to a batch");
    }

    #[test]
    fn an_upsert_after_a_delete_is_no_longer_a_delete() {
        let mut pending = Pending::default();
        let write = upsert("relinked");
        let id = write.internal_id();
        pending.replace(VehicleWrite::Delete { internal_id: id });
        pending.replace(write);
        assert!(pending.deletes.is_empty(), "a stale delete would take an upsert ahead of real deletes");
        pending.replace(upsert("other"));
        let batch = pending.take(1);
        assert_eq!(batch.len(), 1);
        assert!(!is_delete(&batch[0]));
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn a_retried_write_does_not_replace_a_newer_one() {
        let mut pending = Pending::default();
        let newer = upsert("v");
        let id = newer.internal_id();
        pending.replace(newer);
        pending.keep_newer(VehicleWrite::Delete { internal_id: id });
        assert!(pending.deletes.is_empty());
        let batch = pending.take(10);
        assert_eq!(batch.len(), 1);
        assert!(!is_delete(&batch[0]), "the queued upsert stays, and is not counted as a delete");
    }
}
