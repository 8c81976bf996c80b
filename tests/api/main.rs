//! End-to-end tests of the HTTP API: the real app on a real socket (port 0), a real database
//! (SQLite, and Postgres on the local server), real HTTP, and the Enode simulator as Enode.
//! One binary, one module per feature.

mod admin;
mod budget;
mod charging;
mod database_outage;
mod freshness;
mod ha_receiver;
mod helpers;
mod lifecycle;
mod linking;
mod metrics;
mod openapi;
mod push;
mod reads;
mod restart;
mod sessions;
mod supervision;
mod webhook;
mod world;
