//! The bridge's vocabulary: the bottom layer, which imports nothing else of the bridge.
//!
//! Layers go one way (docs/ARCHITECTURE.md, "Layers"):
//! `model <- {config, store, metrics, health} <- core <- {networks, fronts} <- app`.
//! Everything that more than one layer speaks lives here: networks and legacy ids,
//! conversations, contacts, presence, formatted text ([`ids`], [`content`]); what each
//! network can do ([`capabilities`]); a login's
//! commands and events ([`login`]); the contract a network implements ([`network`]); the
//! outbox's entries ([`outbox`]); the user key ([`user`]).

pub mod capabilities;
pub mod content;
pub mod ids;
pub mod login;
pub mod network;
pub mod outbox;
pub mod user;

pub use capabilities::*;
pub use content::*;
pub use ids::*;
pub use login::*;
pub use network::*;
pub use outbox::*;
pub use user::*;

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
