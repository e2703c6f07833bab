//! The Matrix side: the appservice endpoint the homeserver calls, and the client calls
//! the bridge makes as its bot and as ghosts.

pub mod client;
pub mod endpoint;
pub mod media;
