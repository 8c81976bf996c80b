//! End-to-end tests of the HTTP API: the real app on a real socket (port 0), a real database
//! (SQLite, and Postgres on the local server), real HTTP. One binary, one module per feature.

mod helpers;
mod reads;
mod restart;
mod supervision;
mod webhook;
