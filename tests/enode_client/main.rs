//! The Enode client against the Enode simulator, over real HTTP on real sockets (port 0). One
//! test binary, one module per concern.

mod budget;
mod calls;
mod faults;
mod helpers;
mod rate_limit;
mod token;
