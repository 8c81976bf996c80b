//! A write-behind batch reduced to what has to reach the database.
//!
//! Both backends apply a batch as set operations (delete these ids, upsert these rows), not one
//! write at a time. That is only the same thing as applying the writes in order when each vehicle
//! appears once, so the batch is first reduced to its last write per vehicle: a delete after an
//! upsert wins, and an upsert after a delete wins (an upsert replaces every column). Postgres also
//! refuses to upsert the same key twice in one statement, which this avoids.

use std::collections::HashSet;

use evconduit_actors::ports::VehicleWrite;
use evconduit_actors::state::VehicleState;
use uuid::Uuid;

pub(crate) struct ReducedBatch<'a> {
    pub deletes: Vec<Uuid>,
    pub upserts: Vec<&'a VehicleState>,
}

/// Keeps the last write per vehicle, in batch order.
pub(crate) fn reduce(batch: &[VehicleWrite]) -> ReducedBatch<'_> {
    let mut seen = HashSet::with_capacity(batch.len());
    let mut deletes = Vec::new();
    let mut upserts = Vec::with_capacity(batch.len());
    for write in batch.iter().rev() {
        if !seen.insert(write.internal_id()) {
            continue;
        }
        match write {
            VehicleWrite::Upsert(state) => upserts.push(state.as_ref()),
            VehicleWrite::Delete { internal_id } => deletes.push(*internal_id),
        }
    }
    deletes.reverse();
    upserts.reverse();
    ReducedBatch { deletes, upserts }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use evconduit_actors::model::Vehicle;
    use evconduit_actors::state::DataSource;

    use super::*;

    fn upsert(id: Uuid, enode_id: &str) -> VehicleWrite {
        VehicleWrite::Upsert(Arc::new(VehicleState {
            internal_id: id,
            user_id: Uuid::nil(),
            vehicle: Box::new(Vehicle { id: enode_id.to_owned(), ..Vehicle::default() }),
            source: DataSource::Webhook,
            received_at: Utc::now(),
            relink_required: false,
            charge_action: None,
        }))
    }

    #[test]
    fn last_write_per_vehicle_wins() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let batch = [
            upsert(a, "a1"),
            upsert(b, "b1"),
            VehicleWrite::Delete { internal_id: a },
            VehicleWrite::Delete { internal_id: c },
            upsert(c, "c1"),
            upsert(b, "b2"),
        ];
        let reduced = reduce(&batch);
        assert_eq!(reduced.deletes, vec![a]);
        let upserts: Vec<_> = reduced.upserts.iter().map(|s| (s.internal_id, s.enode_id())).collect();
        assert_eq!(upserts, vec![(c, "c1"), (b, "b2")]);
    }
}
