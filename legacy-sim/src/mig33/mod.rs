//! Simulated mig33 server and scriptable mig33 client, built on `mig33-proto`.
//!
//! Example `mig33:` section of the simulator's YAML file:
//!
//! ```yaml
//! mig33:
//!   listen: 127.0.0.1:9119        # default; port 0 picks a free port (tests)
//!   motd: Welcome to the simulator # optional LOGIN_OK message of the day
//!   users:
//!     - username: alice
//!       password: secret
//!       display_name: Alice        # optional, defaults to the username
//!       groups:
//!         - { id: 1, name: Friends }
//!         - { id: 2, name: Work }
//!       contacts:
//!         - { username: bob, group: 1 }
//!         - { username: carol, group: 2, display_name: "Carol C" }
//!     - username: bob
//!       password: hunter2
//!       groups: [{ id: 1, name: mig33 Contacts }]
//!       contacts: [{ username: alice, group: 1 }]
//!     - username: carol
//!       password: пароль
//!   chatrooms:
//!     - name: lobby
//!       description: Everyone welcome
//!     - name: retro
//!   participant_separator: comma   # CHATROOM_PARTICIPANTS as `bob,carol` (default: semicolon)
//!   flood_limit: { messages: 5, seconds: 1 }  # optional: kick clients that send faster
//! ```
//!
//! Behaviour (see [`Server`]): logins are checked with the challenge hash (a wrong
//! password or unknown user gets ERROR "Incorrect username or password"); a second
//! login of the same user replaces the first connection. Presence changes are
//! pushed to every online user who has the changed user as a contact. Private
//! messages go to online users only: a message to an offline or unknown user is
//! answered with ERROR (not stored). Chatroom messages are relayed to every
//! participant, the sender included; joins and leaves push the room's new
//! participant list to everyone in it. PING is answered with PING_REPLY.
//!
//! Flood protection (`flood_limit`, off by default): a connection that sends more than
//! `messages` messages within any `seconds` gets an ERROR for the message that crossed
//! the line (it is not relayed) and an ALERT, and is disconnected, as chat servers of
//! the era kicked flooders. [`Server::flood_kicks`] lists who was kicked.

pub mod client;
mod server;
#[cfg(test)]
mod tests;

use serde::Deserialize;

pub use client::{client_cli, run_client, Client, ClientArgs};
pub use server::Server;

/// Default listening address: 9119 is not mig33's real port (which varied), just one
/// unlikely to clash with the other simulators.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9119";

/// The `mig33:` section of the simulator's YAML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port`; port 0 picks a free port.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Message of the day sent in LOGIN_OK.
    #[serde(default)]
    pub motd: Option<String>,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    #[serde(default)]
    pub chatrooms: Vec<ChatroomConfig>,
    /// What separates the usernames in CHATROOM_PARTICIPANTS.
    #[serde(default)]
    pub participant_separator: ParticipantSeparator,
    /// Disconnects clients that send messages faster than this (off when absent).
    #[serde(default)]
    pub flood_limit: Option<FloodLimit>,
}

/// At most `messages` messages within any `seconds` per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloodLimit {
    pub messages: usize,
    pub seconds: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: default_listen(),
            motd: None,
            users: Vec::new(),
            chatrooms: Vec::new(),
            participant_separator: ParticipantSeparator::default(),
            flood_limit: None,
        }
    }
}

/// The separator of CHATROOM_PARTICIPANTS' names: `;` as this project's codec writes,
/// or `,` as other servers do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantSeparator {
    #[default]
    Semicolon,
    Comma,
}

impl ParticipantSeparator {
    pub fn wire(self) -> mig33_proto::ListSeparator {
        match self {
            ParticipantSeparator::Semicolon => mig33_proto::ListSeparator::Semicolon,
            ParticipantSeparator::Comma => mig33_proto::ListSeparator::Comma,
        }
    }
}

fn default_listen() -> String {
    DEFAULT_LISTEN.into()
}

/// One account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    /// Contact ids are positions in this list, starting at 1.
    #[serde(default)]
    pub contacts: Vec<ContactConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub id: i32,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactConfig {
    pub username: String,
    /// Group id; the contact is ungrouped without it.
    #[serde(default)]
    pub group: Option<i32>,
    /// Defaults to the contact's own display name, then its username.
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatroomConfig {
    pub name: String,
    #[serde(default)]
    pub description: String,
}
