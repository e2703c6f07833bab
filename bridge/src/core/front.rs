//! The contract between the core and a front: the modern chat network a user of the
//! bridge is on (Matrix: `fronts::matrix`; XMPP: `fronts::xmpp`).
//!
//! Users are strings qualified by their front: a Matrix user id (`@alice:example.org`)
//! or `xmpp:` and a bare JID (`xmpp:alice@example.org`); the store keys everything of a
//! user by that string. The core keeps the logins, the networks, the routing, the
//! durable queues and the permissions; for each user it asks the user's front to show
//! what happened ([`Front::deliver`] for a conversation's events in order,
//! [`Front::login_event`] for a login's own events, [`Front::presence`],
//! [`Front::send_notice`]). What users do comes the other way through the core's
//! front-neutral entry points (`Bridge::send_text`, `core::commands`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::{LoginKey, NetworkEvent, NetworkId, Presence};
use crate::model::OutboxEntry;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One modern chat network the bridge serves.
pub trait Front: Send + Sync + 'static {
    /// For logs: "matrix", "xmpp".
    fn name(&self) -> &'static str;

    /// Whether `user` is one of this front's users.
    fn serves(&self, user: &str) -> bool;

    /// Whether `user` is one the bridge itself plays on this front (its bot, a contact's
    /// ghost): such users never drive logins.
    fn is_ours(&self, user: &str) -> bool;

    /// Shows one outbox entry in its conversation (a message, a member list, leaving,
    /// a notice); returns the ids the front gave it. `uncertain`: an earlier attempt may
    /// have gone through (look before doing it again).
    fn deliver<'a>(
        &'a self,
        key: &'a [u8],
        entry: &'a mut OutboxEntry,
        uncertain: bool,
    ) -> BoxFuture<'a, Result<Vec<String>, Failure>>;

    /// A login's own event: connected (with the account's profile), disconnected, the
    /// login refused (final), contact list, a contact changed, typing. Connection state and notices reach the user through
    /// [`Front::send_notice`] (the core words them).
    fn login_event<'a>(
        &'a self,
        login: &'a LoginKey,
        event: &'a NetworkEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// A contact's presence, as reported by `login`.
    fn presence<'a>(
        &'a self,
        login: &'a LoginKey,
        who: &'a str,
        presence: &'a Presence,
    ) -> BoxFuture<'a, ()>;

    /// Where the bridge's notices to `user` go (their management room; on XMPP, a chat
    /// with the gateway of the network the notice is about), if anywhere.
    fn notice_place(&self, user: &str, network: Option<NetworkId>) -> Option<String>;

    /// Sends a notice to a place (a management room, a conversation).
    fn send_notice<'a>(
        &'a self,
        place: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), Failure>>;

    /// Events from this front's users recorded and not yet handed to the networks.
    fn inbound_pending(&self) -> usize {
        0
    }

    /// A contact's picture, stored already (`Store::avatar`) under `hash`, as `login`
    /// saw it: shown to its user wherever the front shows the contact, if not shown yet
    /// (the front reads the bytes only then: this comes with every presence that
    /// announces the picture). Fronts without pictures ignore it.
    fn contact_avatar<'a>(
        &'a self,
        _login: &'a LoginKey,
        _who: &'a str,
        _hash: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }

    /// How long the front serves a file it was given (`OutboxItem::File`) from the
    /// store after showing it (XMPP: a link to the bridge); `None`: it copied the file
    /// elsewhere (Matrix: the homeserver's media) and the store may drop it at once.
    fn keeps_files(&self) -> Option<Duration> {
        None
    }

    /// `pm <network> <id>`: opens a conversation with a contact; the answer for the user.
    fn open_chat<'a>(
        &'a self,
        user: &'a str,
        network: NetworkId,
        contact: &'a str,
    ) -> BoxFuture<'a, Result<String, String>>;
}

/// What a failed homeserver request means for whoever wants to retry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// The homeserver may have acted on the request (it timed out or the connection
    /// broke after it was sent).
    pub uncertain: bool,
    /// The front's own code for the refusal, when it gave one (on Matrix, the `errcode`).
    pub code: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Try again later (unreachable, timeout, 5xx, rate limited).
    Transient { retry_after: Option<Duration> },
    /// `M_TOO_LARGE`: the same request will never pass; a smaller one may.
    TooLarge,
    /// The homeserver refused it (4xx): retrying changes nothing.
    Permanent,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Failure {
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, FailureKind::Transient { .. })
    }

    pub fn permanent(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureKind::Permanent,
            uncertain: false,
            code: None,
            message: message.into(),
        }
    }

    pub fn transient(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureKind::Transient { retry_after: None },
            uncertain: false,
            code: None,
            message: message.into(),
        }
    }
}
