//! The boundary between the core and the legacy networks (DESIGN, principle 2).
//!
//! A network never sees a Matrix event and the core never sees a packet. The contract:
//!
//! * The core calls [`Network::start`] once per login (a Matrix user's account on that
//!   network). The network spawns a task that **owns the legacy connection** for as long
//!   as the login exists: it connects, reconnects with backoff and jitter after a loss,
//!   and keeps the commands it could not send yet (they are delivered after the
//!   reconnect, not dropped). It stops only on [`LoginCommand::Logout`] or when every
//!   [`LoginHandle`] is dropped.
//! * The core drives the login by sending [`LoginCommand`]s through the [`LoginHandle`].
//!   Commands that produce a result carry a `oneshot` reply.
//! * The network reports everything through its [`EventSink`] as [`NetworkEvent`]s, in
//!   the order they happened. Connection state is reported with
//!   [`NetworkEvent::Connected`], [`NetworkEvent::Disconnected`] (`will_retry: true`
//!   while it keeps trying; `false` when the task ends without the login being refused,
//!   e.g. signed in from another location: the core keeps the login for `reconnect` and
//!   does not resume it at start-up) and [`NetworkEvent::LoginFailed`] (final: wrong
//!   password, unknown account, a failure that would come back on every try; the task
//!   ends after sending it and the core forgets the login).
//!
//! Chatrooms and group chats: after [`LoginCommand::JoinRoom`] succeeds the network
//! emits [`NetworkEvent::RoomMembers`] (and again whenever the member list changes);
//! after [`LoginCommand::LeaveRoom`] (or a kick) it emits [`NetworkEvent::RoomLeft`].
//! After a reconnect the network rejoins the rooms it was in by itself; after a bridge
//! restart the core sends `JoinRoom` again for every room it knows the user was in.
//! Messages the server echoes back to their sender are reported like any other: the
//! core recognises them.
//!
//! Ids: [`LegacyId`] is the network's own identifier for a person (UIN, e-mail address,
//! username), already in canonical form (see [`NetworkId::canonical_id`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

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

/// Text with optional HTML (Matrix `formatted_body` flavour).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FormattedText {
    pub plain: String,
    pub html: Option<String>,
}

impl FormattedText {
    pub fn plain(text: impl Into<String>) -> Self {
        FormattedText {
            plain: text.into(),
            html: None,
        }
    }
}

/// What kind of message arrived (networks map their types onto these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Text,
    /// Sent as a notice (system-ish messages such as "you were added").
    Notice,
    Emote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PresenceState {
    Online,
    Away,
    Busy,
    Invisible,
    Offline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub state: PresenceState,
    /// A status message to show (network's own status text, or a name such as "On the phone").
    pub status: Option<String>,
}

/// A contact as the network knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: LegacyId,
    pub display_name: Option<String>,
    /// Group ids (network's own) this contact is in.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
}

/// A person's public profile (search and info results, own profile).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    pub id: LegacyId,
    pub display_name: Option<String>,
    /// Further `label: value` lines (first name, e-mail, city...), in display order.
    pub details: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Search the directory for people by free text (id, nick, e-mail: the network decides).
    Search(String),
    /// Everything known about one person.
    Info(LegacyId),
}

/// Credentials for one login, and what the bridge remembers of it. `Debug` never shows
/// the password.
#[derive(Clone)]
pub struct LoginCredentials {
    pub id: LegacyId,
    pub password: String,
    /// The contact list stored from earlier sessions (for networks such as ICQ v2 whose
    /// client sends its contact list at login). Empty on a first login.
    pub contacts: Vec<Contact>,
    /// These credentials were accepted before (a stored login that connected once): a
    /// server that stays silent is then an outage to wait out, not a refused password.
    pub proven: bool,
}

impl fmt::Debug for LoginCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginCredentials")
            .field("id", &self.id)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A successful send: the network's id for the message, if it has one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivery {
    pub legacy_id: Option<String>,
    /// Things the user should know although the message went out (e.g. characters the
    /// legacy charset could not hold were replaced, text was split in N parts).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("{0} does not support this")]
    Unsupported(&'static str),
    /// The network (or the login) refused it; the text says why.
    #[error("{0}")]
    Rejected(String),
    #[error("the login has ended")]
    LoginGone,
    /// The user has no login on the network (its display name).
    #[error("you are not logged in to {0}")]
    NotLoggedIn(&'static str),
}

pub type Reply<T> = oneshot::Sender<Result<T, SendError>>;

/// What the core asks a login to do.
#[derive(Debug)]
pub enum LoginCommand {
    SendText {
        chat: ChatId,
        text: FormattedText,
        reply: Reply<Delivery>,
    },
    SetPresence {
        presence: Presence,
        reply: Reply<()>,
    },
    Typing {
        chat: ChatId,
        typing: bool,
    },
    JoinRoom {
        room: String,
        reply: Reply<()>,
    },
    LeaveRoom {
        room: String,
        reply: Reply<()>,
    },
    AddContact {
        id: LegacyId,
        group: Option<String>,
        reply: Reply<()>,
    },
    Lookup {
        query: Lookup,
        reply: Reply<Vec<Profile>>,
    },
    Logout,
}

/// What a login reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkEvent {
    Connected {
        self_profile: Profile,
    },
    Disconnected {
        reason: String,
        will_retry: bool,
    },
    /// Final: the network refused the credentials or the account; the login task ended.
    LoginFailed {
        reason: String,
    },
    /// Full snapshot; the core diffs it against the store.
    ContactList {
        groups: Vec<Group>,
        contacts: Vec<Contact>,
    },
    ContactChanged(Contact),
    Presence {
        who: LegacyId,
        presence: Presence,
    },
    Message {
        chat: ChatId,
        from: LegacyId,
        /// The network's id, for dedupe of re-deliveries.
        id: Option<String>,
        kind: MessageKind,
        text: FormattedText,
        /// Milliseconds since the epoch when the network gives a send time.
        sent_at: Option<u64>,
        /// Stored by the server while the user was offline.
        offline: bool,
    },
    Typing {
        chat: ChatId,
        who: LegacyId,
        typing: bool,
    },
    /// The full member list of a chatroom this login is in (after a join, and when it
    /// changes), or of a group conversation (`ChatId::Group`). The login itself may be
    /// listed; the core leaves it out.
    RoomMembers {
        chat: ChatId,
        members: Vec<Contact>,
    },
    /// This login left a chatroom or group conversation (after `LeaveRoom`, or because
    /// the server removed it).
    RoomLeft {
        chat: ChatId,
    },
    /// Something worth telling the user (system messages, alerts, requests).
    Notice {
        text: String,
    },
    /// Someone added this login to their contact list, and is not on the user's: the
    /// user may want to add them back. Reported whenever the network says so (every
    /// login may repeat it); the core tells the user once per contact.
    AddedBy {
        who: LegacyId,
        name: Option<String>,
    },
}

/// What receives a login's events: the core (see `core::intake`), or a channel in a
/// network's unit tests.
pub trait EventIntake: Send + Sync + 'static {
    /// Takes one event, in order. Must not block: events that become Matrix output are
    /// written to the durable outbox at once, the rest is queued.
    fn accept(&self, login: &LoginKey, event: NetworkEvent);

    /// Resolves once every event accepted so far is on disk.
    fn durable(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;

    /// Whether this login has more waiting than the core wants to hold; the network
    /// should stop reading its socket until [`EventIntake::ready`] resolves.
    fn backlogged(&self, login: &LoginKey) -> bool;

    /// Resolves when the login is no longer backlogged.
    fn ready<'a>(&'a self, login: &'a LoginKey) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

    /// Whether nobody listens any more (the bridge is stopping).
    fn is_closed(&self) -> bool {
        false
    }
}

/// A plain channel as the intake: for unit tests of the networks.
impl EventIntake for mpsc::UnboundedSender<(LoginKey, NetworkEvent)> {
    fn accept(&self, login: &LoginKey, event: NetworkEvent) {
        let _ = self.send((login.clone(), event));
    }

    fn durable(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }

    fn backlogged(&self, _: &LoginKey) -> bool {
        false
    }

    fn ready<'a>(&'a self, _: &'a LoginKey) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(std::future::ready(()))
    }

    fn is_closed(&self) -> bool {
        mpsc::UnboundedSender::is_closed(self)
    }
}

/// Where a login's events go. Cheap to clone.
///
/// Flow control, for networks: a network that acknowledges received messages to its
/// server (ICQ) awaits [`EventSink::durable`] before sending the acknowledgement, so
/// that a crash after it cannot lose the message; every network stops reading its
/// socket while [`EventSink::backlogged`] (until [`EventSink::ready`]), so that a flood
/// slows the socket down instead of growing the bridge's memory.
#[derive(Clone)]
pub struct EventSink {
    pub(crate) login: LoginKey,
    intake: Arc<dyn EventIntake>,
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSink")
            .field("login", &self.login)
            .finish()
    }
}

impl EventSink {
    pub fn new(login: LoginKey, intake: Arc<dyn EventIntake>) -> Self {
        EventSink { login, intake }
    }

    /// A sink feeding a channel (network unit tests).
    pub fn channel(login: LoginKey) -> (Self, mpsc::UnboundedReceiver<(LoginKey, NetworkEvent)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (EventSink::new(login, Arc::new(tx)), rx)
    }

    /// Reports an event; returns false once the core has stopped listening.
    pub fn emit(&self, event: NetworkEvent) -> bool {
        self.intake.accept(&self.login, event);
        !self.intake.is_closed()
    }

    /// Resolves once every event emitted so far is on disk.
    pub async fn durable(&self) {
        self.intake.durable().await
    }

    pub fn backlogged(&self) -> bool {
        self.intake.backlogged(&self.login)
    }

    /// Resolves when the core can take more events from this login.
    pub async fn ready(&self) {
        self.intake.ready(&self.login).await
    }

    pub fn is_closed(&self) -> bool {
        self.intake.is_closed()
    }
}

/// Identifies one login: the Matrix user and the network.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoginKey {
    pub mxid: String,
    pub network: NetworkId,
}

/// The core's handle on a running login.
///
/// Commands travel boxed: a tokio channel allocates room for 32 of its items when it is
/// made, and an idle login should not hold 32 commands' worth (about 3 KiB) for nothing.
#[derive(Debug, Clone)]
pub struct LoginHandle {
    tx: mpsc::UnboundedSender<Box<LoginCommand>>,
}

/// The receiving end of a login's commands, read by the network's task.
#[derive(Debug)]
pub struct CommandReceiver(mpsc::UnboundedReceiver<Box<LoginCommand>>);

impl CommandReceiver {
    /// The next command; `None` once every handle is gone. Cancel-safe.
    pub async fn recv(&mut self) -> Option<LoginCommand> {
        self.0.recv().await.map(|command| *command)
    }
}

impl LoginHandle {
    /// A handle and the receiving end the network's task reads.
    pub fn channel() -> (LoginHandle, CommandReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (LoginHandle { tx }, CommandReceiver(rx))
    }

    pub fn send(&self, command: LoginCommand) -> Result<(), SendError> {
        self.tx
            .send(Box::new(command))
            .map_err(|_| SendError::LoginGone)
    }

    /// Sends a command that carries a reply and waits for the answer.
    pub async fn request<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> LoginCommand,
    ) -> Result<T, SendError> {
        let (reply, rx) = oneshot::channel();
        self.send(make(reply))?;
        rx.await.map_err(|_| SendError::LoginGone)?
    }
}

/// Network-specific settings from the config's `networks.<name>` block.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    pub server: String,
}

/// One legacy network implementation. Lives in `bridge/src/networks/<net>/`.
pub trait Network: Send + Sync + 'static {
    fn id(&self) -> NetworkId;

    /// Checks credentials that can be refused without asking the server (e.g. an ICQ
    /// password longer than 8 characters), so the user gets a clear error at once.
    fn check_credentials(&self, _login: &LoginCredentials) -> Result<(), String> {
        Ok(())
    }

    /// Starts the task that owns this login's connection (see the module docs).
    /// Must not block; called inside a tokio runtime.
    fn start(&self, login: LoginCredentials, events: EventSink) -> LoginHandle;
}
