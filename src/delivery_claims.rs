//! Which webhook deliveries this process is applying, or has applied and not yet marked so.
//!
//! The store remembers a delivery as "recorded, not applied" from its record until its applied
//! mark lands, which follows the acknowledgement. A redelivery found in that state was meant to
//! be one whose first attempt a crash cut short, and is applied again; but an Enode retry, or a
//! second copy arriving at once, finds the same state while the first attempt is alive in this
//! process (applying, or its mark on its way), and was applied a second time. A claim taken
//! before the record and held until the mark is written tells the two apart: a copy that finds
//! the delivery claimed is a duplicate, and one that claims it after the first attempt let go
//! finds the mark in the store.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Default)]
pub struct DeliveryClaims {
    held: Mutex<HashSet<String>>,
}

/// A delivery claimed by this process; released when dropped (after the applied mark, or when
/// recording or applying failed and a redelivery must apply it).
pub struct Claim {
    claims: Arc<DeliveryClaims>,
    id: String,
}

impl DeliveryClaims {
    /// Claims `id`, or None when this process already holds it (the delivery is a duplicate).
    pub fn claim(self: &Arc<Self>, id: &str) -> Option<Claim> {
        // A panic elsewhere while holding the lock leaves the set itself intact.
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.insert(id.to_owned()).then(|| Claim { claims: Arc::clone(self), id: id.to_owned() })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.claims.held.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_is_claimed_once_until_released() {
        let claims = Arc::new(DeliveryClaims::default());
        let first = claims.claim("d-1").expect("first claim");
        assert!(claims.claim("d-1").is_none(), "held by the first attempt");
        assert!(claims.claim("d-2").is_some(), "another delivery is its own");
        drop(first);
        assert!(claims.claim("d-1").is_some(), "released: a later redelivery may apply it");
    }
}
