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

use tokio::sync::mpsc;

use super::{LoginCredentials, LoginHandle, LoginKey, NetworkEvent, NetworkId};

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

/// Network-specific settings from the config's `networks.<name>` block.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    pub server: String,
    /// The largest file taken from a contact or sent to one (`files.max_bytes`).
    pub max_file_bytes: u64,
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
