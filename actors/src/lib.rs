//! evconduit's actors: one `VehicleActor` per linked vehicle owns that vehicle's state; the
//! `Fleet` spawns, finds, supervises and restores them; readers take immutable snapshots from the
//! `SnapshotBoard` without messaging any actor.
//!
//! This crate knows no HTTP, SQL or Enode client: it reaches the world through `ports`.

pub mod model;
pub mod ports;
pub mod state;
pub mod tier;
