//! Everything that speaks Enode: the webhook events and signatures, the typed models, the client
//! (the only code that calls Enode) and the simulator that stands in for Enode in tests and demos.

pub mod client;
pub mod events;
pub mod model;
pub mod signature;
pub mod sim;
