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
    pub const ALL: [NetworkId; 3] = [NetworkId::Icq, NetworkId::Msn, NetworkId::Mig33];
    pub const ALL_NAMES: &'static str = "icq, msn, mig33";

    pub fn parse(name: &str) -> Option<NetworkId> {
        match name {
            "icq" => Some(NetworkId::Icq),
            "msn" => Some(NetworkId::Msn),
            "mig33" => Some(NetworkId::Mig33),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NetworkId::Icq => "icq",
            NetworkId::Msn => "msn",
            NetworkId::Mig33 => "mig33",
        }
    }

    /// Human name for messages.
    pub fn display_name(self) -> &'static str {
        match self {
            NetworkId::Icq => "ICQ",
            NetworkId::Msn => "MSN Messenger",
            NetworkId::Mig33 => "mig33",
        }
    }

    pub fn default_template(self) -> &'static str {
        match self {
            NetworkId::Icq => "icq_{id}",
            NetworkId::Msn => "msn_{id}",
            NetworkId::Mig33 => "mig33_{id}",
        }
    }

    /// The canonical form of a legacy id: MSN addresses and mig33 usernames are
    /// case-insensitive, so they are lower-cased; ICQ UINs are numbers.
    pub fn canonical_id(self, id: &str) -> String {
        match self {
            NetworkId::Icq => id.trim().to_string(),
            NetworkId::Msn | NetworkId::Mig33 => id.trim().to_lowercase(),
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
