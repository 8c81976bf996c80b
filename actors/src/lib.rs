//! evconduit's actors: one `VehicleActor` per linked vehicle owns that vehicle's state; the
//! `Fleet` spawns, finds, supervises and restores them; readers take immutable snapshots from the
//! `SnapshotBoard` without messaging any actor.
//!
//! This crate knows no HTTP, SQL or Enode client: it reaches the world through `ports`.

mod background;
pub mod fleet;
mod flush;
pub mod freshness;
pub mod history;
pub mod interned;
mod maps;
pub mod model;
pub mod ports;
pub mod push;
pub mod refresh;
pub mod sessions;
pub mod snapshot;
pub mod state;
pub mod status;
pub mod tier;
pub mod vehicle;
pub mod write_behind;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
