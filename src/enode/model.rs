//! Enode's objects. The vehicle is a domain type owned by the actors crate and re-exported here;
//! the rest (actions, link sessions, webhook subscriptions, pages, problems) belong to the client.

pub use evconduit_actors::model::*;
