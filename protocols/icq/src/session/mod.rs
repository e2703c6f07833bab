//! Session state machines (sans-IO): the client side, driven by the bridge and the
//! scriptable client, and the per-client server side, driven by the simulator.

pub mod client;
mod reliability;
pub mod server;

pub use reliability::{KEEPALIVE_INTERVAL, MAX_TRANSMISSIONS, RETRANSMIT_AFTER, RETRY_CYCLES};
