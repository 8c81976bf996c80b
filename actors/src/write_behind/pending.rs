//! The write-behind's queue: the newest write per vehicle, and which of them are deletes.
//!
//! Deletes go first in every batch (see `take`), so the queue keeps their ids apart. Before, each
//! batch found them by walking the whole queue, under the lock the actors submit through: at the
//! end of a webhook load at 100 000 vehicles, 200 batches each walked up to 100 000 entries.
//! Now a batch costs what it takes.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::ports::VehicleWrite;

#[derive(Default)]
pub(super) struct Pending {
    writes: HashMap<Uuid, VehicleWrite>,
    /// The ids in `writes` whose write is a delete.
    deletes: HashSet<Uuid>,
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
        let id = write.internal_id();
        self.note_kind(id, &write);
        self.writes.insert(id, write);
    }

    /// Queues `write` unless something is already queued for the vehicle (a retried write must
    /// not replace a newer one that arrived meanwhile).
    pub fn keep_newer(&mut self, write: VehicleWrite) {
        let id = write.internal_id();
        if !self.writes.contains_key(&id) {
            self.note_kind(id, &write);
            self.writes.insert(id, write);
        }
    }

    /// Removes and returns up to `most` writes, deletes first: a vehicle removed and linked again
    /// gets a new internal id with the same Enode id, and the old row must be gone before the new
    /// one is inserted (the Enode id is unique).
    pub fn take(&mut self, most: usize) -> Vec<VehicleWrite> {
        let mut batch = Vec::with_capacity(most.min(self.writes.len()));
        let deletes: Vec<Uuid> = self.deletes.iter().take(most).copied().collect();
        for id in deletes {
            self.deletes.remove(&id);
            batch.extend(self.writes.remove(&id));
        }
        // Whatever deletes are left did not fit: the batch is full, and they lead the next one.
        if self.deletes.is_empty() {
            let room = most - batch.len();
            batch.extend(self.writes.extract_if(|_, _| true).take(room).map(|(_, write)| write));
        }
        batch
    }

    fn note_kind(&mut self, id: Uuid, write: &VehicleWrite) {
        match write {
            VehicleWrite::Delete { .. } => self.deletes.insert(id),
            VehicleWrite::Upsert(_) => self.deletes.remove(&id),
        };
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
