//! Who and where: legacy networks, legacy ids, conversations.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which legacy network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkId {
    Icq,
    Msn,
    Mig33,
}

impl NetworkId {
    /// The networks compiled in; each one's name, rules and features are its
    /// declaration in `capabilities.rs`.
    pub const ALL: [NetworkId; 3] = [NetworkId::Icq, NetworkId::Msn, NetworkId::Mig33];

    /// "icq, msn, mig33": the names, for an error that lists them.
    pub fn all_names() -> String {
        NetworkId::ALL.map(NetworkId::as_str).join(", ")
    }

    pub fn parse(name: &str) -> Option<NetworkId> {
        NetworkId::ALL.into_iter().find(|n| n.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        self.capabilities().name
    }

    /// Human name for messages.
    pub fn display_name(self) -> &'static str {
        self.capabilities().display_name
    }

    pub fn default_template(self) -> &'static str {
        self.capabilities().ghost_template
    }

    /// The canonical form of a legacy id: where ids are case-insensitive (MSN
    /// addresses, mig33 usernames) lower-cased; ICQ UINs are numbers.
    pub fn canonical_id(self, id: &str) -> String {
        if self.capabilities().ids_ignore_case {
            id.trim().to_lowercase()
        } else {
            id.trim().to_string()
        }
    }
}

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person on a legacy network, in canonical form.
pub type LegacyId = String;

/// Where a message belongs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChatId {
    /// A one-to-one chat of this login with a contact.
    Direct(LegacyId),
    /// A conversation of this login with several people that exists only for this login
    /// (a multi-party MSN switchboard), named by the network with an id stable for its life.
    Group(String),
    /// A named chatroom of the network (mig33). All bridged users in it share one Matrix
    /// room: the core relays its messages from one login only and drops the server's echo
    /// of messages sent from Matrix, so every message appears once.
    Room(String),
}

impl ChatId {
    /// Whether the chat is network-wide (shared by every bridged user in it).
    pub fn is_shared(&self) -> bool {
        matches!(self, ChatId::Room(_))
    }
}
