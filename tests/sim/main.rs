//! The Enode simulator over real HTTP on real sockets (port 0). One test binary, one module per
//! area (faster to link than one binary per file).

mod actions;
mod controls;
mod faults;
mod helpers;
mod link;
mod receiver;

mod stats;
mod token;
mod vehicles;
mod webhooks;
mod world;
