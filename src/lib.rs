//! evconduit: a shared cache between Home Assistant and the Enode EV API.
//!
//! Start at `app` (how the pieces are wired), then `http` (what clients call) and the
//! `evconduit-actors` crate (who owns each vehicle's state). See DESIGN.md for the data flow.

pub mod accounts;
pub mod allocator;
pub mod app;
pub mod audience;
pub mod cli;
pub mod config;
pub mod delivery_claims;
pub mod demo;
pub mod enode;
pub mod http;
pub mod ingest;
pub mod initial_sync;
pub mod metrics;
pub mod push;
pub mod runtime_lag;
pub mod store;
pub mod subscription;
pub mod telemetry;
pub mod upstream;
