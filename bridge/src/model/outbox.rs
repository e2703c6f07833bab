//! What waits for a user's front, in order, per conversation: the durable outbox's
//! entries (the store keeps them, the core fills them, the fronts show them).

use serde::{Deserialize, Serialize};

use super::{ChatId, Contact, MessageKind, NetworkId};

/// One thing to show in a conversation's Matrix room, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The login that received it (for a shared chatroom: the relaying login).
    #[serde(rename = "mxid")]
    pub user: String,
    pub network: NetworkId,
    pub chat: ChatId,
    /// The Matrix transaction id of the send: fixed when the entry is written, so a send
    /// retried after a timeout or a crash is the same request to the homeserver.
    #[serde(default)]
    pub txn_id: String,
    /// When the bridge received it (milliseconds since the epoch).
    pub received_ms: u64,
    /// How many parts of a message split after `M_TOO_LARGE` were delivered.
    #[serde(default)]
    pub parts_done: u32,
    pub item: OutboxItem,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboxItem {
    /// A message from a legacy user (the ghost sends it).
    Message {
        from: String,
        kind: MessageKind,
        plain: String,
        html: Option<String>,
        /// The network's send time (milliseconds since the epoch), if it gives one.
        sent_at: Option<u64>,
        /// Stored by the server while the user was offline.
        offline: bool,
    },
    /// A file from a legacy user; its bytes wait in the store (`Store::file`, under
    /// `file`) until the front has shown it.
    File {
        from: String,
        file: u64,
        name: String,
        mime: String,
        size: u64,
        sent_at: Option<u64>,
    },
    /// The full legacy member list of a chatroom or group conversation.
    Members { members: Vec<Contact> },
    /// The login left the chatroom or group conversation.
    Left,
    /// A notice from the bridge in the conversation's room.
    Notice { text: String },
}
