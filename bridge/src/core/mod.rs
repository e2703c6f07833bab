//! The core: the part of the bridge that knows neither a packet nor a Matrix event. It
//! keeps the logins and the networks, routes events between them and the fronts (the
//! modern chat networks: `fronts::matrix`, `fronts::xmpp`, behind [`front::Front`]),
//! keeps the durable queues, the permissions and the store.
//!
//! Legacy -> front: a login's events arrive through its [`EventSink`] at the
//! [`intake`]; what becomes a conversation's content is written to the durable
//! [`outbox`] at once and delivered in order per conversation by the user's front;
//! presence is coalesced ([`presence`]); the login's own events (connection, contact
//! list) are handled in order on its task ([`legacy`]).
//!
//! Front -> legacy: a front hands what its users write to [`Bridge::send_text`] and
//! their commands to [`commands`]; it records them durably first (Matrix: its inbox).
//!
//! Bot notices are coalesced and rate-limited ([`notices`]).

pub mod accounts;
mod admin;
mod avatars;
pub mod commands;
pub mod front;
mod intake;
pub mod legacy;
mod notices;
pub mod outbox;
mod presence;
pub mod sanitize;
mod stats;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};

pub use crate::model::*;

use crate::config::LoadedConfig;
use crate::store::Store;
use front::Front;

/// (front's shared owner, network, chatroom, sender's legacy id) of messages a front's
/// user sent into a shared chatroom, whose echo from the server that front must not show
/// again (the other fronts show it: for them it is a message from a legacy user).
type EchoKey = (&'static str, NetworkId, String, String);

/// Where a login stands, as `list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginState {
    Connecting,
    Connected,
    Disconnected(String),
}

struct LiveLogin {
    handle: LoginHandle,
    state: LoginState,
    legacy_id: String,
    /// The outage the login is in (a bridge-wide number), while it is in one.
    outage: Option<u64>,
}

pub struct Bridge {
    pub config: LoadedConfig,
    pub store: Store,
    /// This bridge, for the tasks its synchronous entry points start.
    me: Weak<Bridge>,
    networks: BTreeMap<NetworkId, Arc<dyn Network>>,
    /// The fronts, set once at start-up (they hold the bridge, so they come after it).
    fronts: OnceLock<Vec<Arc<dyn Front>>>,
    logins: Mutex<HashMap<LoginKey, LiveLogin>>,
    /// Network events waiting per login ([`intake`]).
    login_queues: intake::LoginQueues,
    pub outbox: outbox::Outbox,
    notifier: notices::Notifier,
    presence: presence::PresenceQueue,
    /// Messages sent from a front into shared chatrooms, whose echo from the server must
    /// not be shown again: texts, oldest first.
    echoes: Mutex<HashMap<EchoKey, Vec<(String, std::time::Instant)>>>,
    /// Logins resumed at start-up that have not connected yet: their first "Connected"
    /// is news only if the user last heard something else ([`legacy`]).
    resumed: Mutex<std::collections::HashSet<LoginKey>>,
    /// Contacts' pictures asked for ([`avatars`]).
    asked_avatars: avatars::AskedAvatars,
    /// The users' own pictures ([`avatars`]).
    own_avatars: avatars::OwnAvatars,
}

impl Bridge {
    /// Builds the bridge; `networks` are the implementations compiled in (enabled or not).
    /// The fronts are added with [`Bridge::set_fronts`] before it starts.
    pub fn new(config: LoadedConfig, store: Store, networks: Vec<Arc<dyn Network>>) -> Arc<Bridge> {
        Arc::new_cyclic(|me| Bridge {
            config,
            store,
            me: me.clone(),
            networks: networks.into_iter().map(|n| (n.id(), n)).collect(),
            fronts: OnceLock::new(),
            logins: Mutex::default(),
            login_queues: Default::default(),
            outbox: Default::default(),
            notifier: Default::default(),
            presence: Default::default(),
            echoes: Mutex::default(),
            resumed: Mutex::default(),
            asked_avatars: Default::default(),
            own_avatars: Default::default(),
        })
    }

    /// The fronts this bridge serves (called once, at start-up).
    pub fn set_fronts(&self, fronts: Vec<Arc<dyn Front>>) {
        if self.fronts.set(fronts).is_err() {
            tracing::error!("the fronts were set twice");
        }
    }

    /// Whether `user` is one the bridge itself plays (a bot, a contact) on any front.
    pub fn is_ours(&self, user: &str) -> bool {
        self.fronts
            .get()
            .is_some_and(|fronts| fronts.iter().any(|f| f.is_ours(user)))
    }

    /// The front of a user, if one serves them.
    pub fn front_for(&self, user: &str) -> Option<&Arc<dyn Front>> {
        self.fronts.get()?.iter().find(|f| f.serves(user))
    }

    pub(crate) fn arc(&self) -> Arc<Bridge> {
        self.me.upgrade().expect("the bridge outlives its tasks")
    }

    /// What is waiting in memory and on disk (for logs and `stats`).
    pub fn queue_lengths(&self) -> QueueLengths {
        QueueLengths {
            front_to_legacy: self
                .fronts
                .get()
                .map_or(0, |fronts| fronts.iter().map(|f| f.inbound_pending()).sum()),
            legacy_to_front: self.outbox.len(),
            login_events: self.login_queues.len(),
            presence: self.presence.pending(),
            notices: self.notifier.pending(),
        }
    }

    /// Which networks are usable, and why the others are not.
    pub fn network_available(&self, network: NetworkId) -> Result<&Arc<dyn Network>, String> {
        let enabled = self
            .config
            .config
            .networks
            .get(network.as_str())
            .is_some_and(|n| n.enabled);
        match self.networks.get(&network) {
            _ if !enabled => Err(format!(
                "{} is not enabled on this bridge.",
                network.display_name()
            )),
            None => Err(format!(
                "{} is not available in this build of the bridge yet.",
                network.display_name()
            )),
            Some(n) => Ok(n),
        }
    }

    // --- logins ----------------------------------------------------------------------------

    /// Starts (or restarts after a bridge restart) a login's network task.
    pub fn start_login(
        self: &Arc<Self>,
        user: &str,
        network: &Arc<dyn Network>,
        credentials: LoginCredentials,
    ) {
        let key = LoginKey {
            user: user.to_owned(),
            network: network.id(),
        };
        let legacy_id = credentials.id.clone();
        let intake: Arc<dyn EventIntake> = self.clone();
        let handle = network.start(credentials, EventSink::new(key.clone(), intake));
        if let Some(avatar) = self.own_avatar_for(&key) {
            let _ = handle.send(LoginCommand::SetAvatar {
                avatar: Some(avatar),
            });
        }
        let live = LiveLogin {
            handle,
            state: LoginState::Connecting,
            outage: None,
            legacy_id,
        };
        if let Some(old) = self.logins.lock().expect("logins lock").insert(key, live) {
            let _ = old.handle.send(LoginCommand::Logout);
        }
    }

    /// Reads something of a running login.
    fn with_login<T>(
        &self,
        user: &str,
        network: NetworkId,
        f: impl FnOnce(&LiveLogin) -> T,
    ) -> Option<T> {
        let key = LoginKey {
            user: user.to_owned(),
            network,
        };
        self.logins.lock().expect("logins lock").get(&key).map(f)
    }

    /// The state of the user's running login on `network`, if one runs.
    pub fn login_state(&self, user: &str, network: NetworkId) -> Option<LoginState> {
        self.with_login(user, network, |l| l.state.clone())
    }

    pub fn login_handle(&self, user: &str, network: NetworkId) -> Option<LoginHandle> {
        self.with_login(user, network, |l| l.handle.clone())
    }

    /// Ends a login's task and forgets it (the store record is the caller's business).
    pub fn stop_login(&self, user: &str, network: NetworkId) -> bool {
        let key = LoginKey {
            user: user.to_owned(),
            network,
        };
        // A later login of the same account is the user's own: its "Connected" is news.
        self.take_resumed(&key);
        match self.logins.lock().expect("logins lock").remove(&key) {
            Some(live) => {
                let _ = live.handle.send(LoginCommand::Logout);
                true
            }
            None => false,
        }
    }

    /// Sets a login's state; returns the one it replaces and, while it is disconnected,
    /// the number of its outage (see [`Self::in_outage`]).
    pub(crate) fn set_login_state(
        &self,
        key: &LoginKey,
        state: LoginState,
    ) -> (Option<LoginState>, Option<u64>) {
        static OUTAGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut logins = self.logins.lock().expect("logins lock");
        let Some(live) = logins.get_mut(key) else {
            return (None, None);
        };
        live.outage = match state {
            LoginState::Disconnected(_) => live
                .outage
                .or_else(|| Some(OUTAGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed))),
            _ => None,
        };
        let outage = live.outage;
        (Some(std::mem::replace(&mut live.state, state)), outage)
    }

    /// Whether the login is still in outage `outage` (not connected since).
    pub(crate) fn in_outage(&self, key: &LoginKey, outage: u64) -> bool {
        self.logins
            .lock()
            .expect("logins lock")
            .get(key)
            .is_some_and(|l| l.outage == Some(outage))
    }

    /// `(network, legacy id, state)` of a user's logins.
    pub fn logins_of(&self, user: &str) -> Vec<(NetworkId, String, LoginState)> {
        let logins = self.logins.lock().expect("logins lock");
        let mut out: Vec<_> = logins
            .iter()
            .filter(|(k, _)| k.user == user)
            .map(|(k, l)| (k.network, l.legacy_id.clone(), l.state.clone()))
            .collect();
        out.sort_by_key(|(n, _, _)| *n);
        out
    }

    /// The legacy id a Matrix user is logged in with on `network`.
    pub fn legacy_id_of(&self, user: &str, network: NetworkId) -> Option<String> {
        self.with_login(user, network, |l| l.legacy_id.clone())
    }

    fn is_connected(&self, user: &str, network: NetworkId) -> bool {
        self.with_login(user, network, |l| l.state == LoginState::Connected)
            .unwrap_or(false)
    }

    /// The login that relays a shared chatroom's messages to one front: among the room's
    /// bridged users on that front (`owner`: its [`shared_owner`]), the first (by user id)
    /// connected one, so each message is shown once per front.
    pub fn relay_for(&self, network: NetworkId, room: &str, owner: &str) -> Option<String> {
        let members: Vec<String> = self
            .store
            .chatroom_members(network, room)
            .ok()?
            .into_iter()
            .filter(|m| shared_owner(m) == owner)
            .collect();
        members
            .iter()
            .find(|m| self.is_connected(m, network))
            .or(members.first())
            .cloned()
    }

    /// The legacy ids of a shared chatroom's bridged users on one front (they appear as
    /// themselves there, not as contacts).
    pub fn bridged_members(&self, network: NetworkId, room: &str, owner: &str) -> Vec<String> {
        self.store
            .chatroom_members(network, room)
            .unwrap_or_default()
            .into_iter()
            .filter(|m| shared_owner(m) == owner)
            .filter_map(|m| self.legacy_id_of(&m, network))
            .collect()
    }

    const ECHO_WINDOW: std::time::Duration = std::time::Duration::from_secs(120);

    /// Remembers a message a front's user sent into a shared chatroom.
    fn expect_echo(&self, user: &str, network: NetworkId, room: &str, legacy_id: &str, text: &str) {
        let mut echoes = self.echoes.lock().expect("echoes lock");
        let queue = echoes
            .entry((
                shared_owner(user),
                network,
                room.to_owned(),
                legacy_id.to_owned(),
            ))
            .or_default();
        queue.retain(|(_, at)| at.elapsed() < Self::ECHO_WINDOW);
        queue.push((text.to_owned(), std::time::Instant::now()));
    }

    /// Whether a chatroom message reaching `login` is the server's echo of one its front
    /// sent (consumed).
    fn take_echo(&self, login: &LoginKey, room: &str, from: &str, text: &str) -> bool {
        let mut echoes = self.echoes.lock().expect("echoes lock");
        let key = (
            shared_owner(&login.user),
            login.network,
            room.to_owned(),
            from.to_owned(),
        );
        let Some(queue) = echoes.get_mut(&key) else {
            return false;
        };
        queue.retain(|(_, at)| at.elapsed() < Self::ECHO_WINDOW);
        match queue.iter().position(|(t, _)| t == text) {
            Some(i) => {
                queue.remove(i);
                true
            }
            None => false,
        }
    }

    /// Sends what a front's user wrote in a conversation to the legacy network, through
    /// their login (in a shared chatroom: their own login). Resolves once the network
    /// accepted it; the echo a chatroom server sends back is then not shown again.
    pub async fn send_text(
        &self,
        user: &str,
        network: NetworkId,
        chat: &ChatId,
        text: FormattedText,
    ) -> Result<Delivery, SendError> {
        let Some(handle) = self.login_handle(user, network) else {
            return Err(SendError::NotLoggedIn(network.display_name()));
        };
        if let ChatId::Room(name) = chat {
            if let Some(legacy_id) = self.legacy_id_of(user, network) {
                self.expect_echo(user, network, name, &legacy_id, &text.plain);
            }
        }
        let chat = chat.clone();
        handle
            .request(|reply| LoginCommand::SendText { chat, text, reply })
            .await
    }

    /// Offers a file to the conversation's contact through the user's login (networks
    /// whose capabilities say `files`); `fallback` (a line with a link) goes instead if
    /// the contact does not take it.
    pub async fn send_file(
        &self,
        user: &str,
        network: NetworkId,
        chat: &ChatId,
        file: FileData,
        fallback: FormattedText,
    ) -> Result<Delivery, SendError> {
        let Some(handle) = self.login_handle(user, network) else {
            return Err(SendError::NotLoggedIn(network.display_name()));
        };
        let chat = chat.clone();
        handle
            .request(|reply| LoginCommand::SendFile {
                chat,
                file,
                fallback,
                reply,
            })
            .await
    }

    /// Sends a nudge to the conversation, through the user's login; refused at once where
    /// the network has none.
    pub async fn send_nudge(
        &self,
        user: &str,
        network: NetworkId,
        chat: &ChatId,
    ) -> Result<Delivery, SendError> {
        if !network.capabilities().nudges {
            return Err(SendError::Rejected(format!(
                "{} has no nudges",
                network.display_name()
            )));
        }
        let Some(handle) = self.login_handle(user, network) else {
            return Err(SendError::NotLoggedIn(network.display_name()));
        };
        let chat = chat.clone();
        handle
            .request(|reply| LoginCommand::Nudge { chat, reply })
            .await
    }

    /// Whether `key` was resumed at start-up and has not connected since (once: the
    /// mark is taken).
    pub(crate) fn take_resumed(&self, key: &LoginKey) -> bool {
        self.resumed.lock().expect("resumed").remove(key)
    }

    /// Restarts every stored login (bridge start-up), except those the network stopped
    /// (signed in from another location): resuming them would sign the user out there.
    /// `reconnect` brings those back.
    pub fn resume_logins(self: &Arc<Self>) -> anyhow::Result<()> {
        let records = self.store.logins()?;
        let resumed = records.iter().filter(|r| r.stopped.is_none()).count();
        if let Some(limit) = crate::limits::open_files() {
            if let Some(warning) = crate::limits::too_few_files(resumed as u64, limit) {
                tracing::warn!("{warning}");
            }
        }
        for record in records {
            if let Some(why) = &record.stopped {
                tracing::info!(user = %record.user, network = %record.network, "not resuming a stopped login ({why})");
                continue;
            }
            match self.network_available(record.network) {
                Ok(network) => {
                    let network = network.clone();
                    tracing::info!(user = %record.user, network = %record.network, "resuming login");
                    self.resume_login(&network, &record)?;
                    // Marked after the start (which clears marks: `reconnect` is news);
                    // the connection takes round trips to the server, this takes none.
                    self.resumed.lock().expect("resumed").insert(LoginKey {
                        user: record.user.clone(),
                        network: record.network,
                    });
                }
                Err(why) => {
                    tracing::warn!(user = %record.user, network = %record.network, "not resuming login: {why}")
                }
            }
        }
        Ok(())
    }

    /// Starts a stored login again (start-up, `reconnect`), replacing its running task.
    pub fn resume_login(
        self: &Arc<Self>,
        network: &Arc<dyn Network>,
        record: &crate::store::LoginRecord,
    ) -> anyhow::Result<()> {
        let credentials = LoginCredentials {
            id: record.legacy_id.clone(),
            password: record.password.clone(),
            contacts: self.store.buddies(&record.user, record.network)?,
            proven: record.proven,
            presence: record.presence.unwrap_or(PresenceState::Online),
        };
        self.take_resumed(&LoginKey {
            user: record.user.clone(),
            network: record.network,
        });
        self.start_login(&record.user, network, credentials);
        // Back into the chatrooms the user was in (the login queues these until it is
        // connected).
        if let Some(handle) = self.login_handle(&record.user, record.network) {
            for room in self.store.chatrooms_of(&record.user, record.network)? {
                let (reply, _) = tokio::sync::oneshot::channel();
                let _ = handle.send(LoginCommand::JoinRoom { room, reply });
            }
        }
        Ok(())
    }
}

/// Lengths of the bridge's queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLengths {
    /// What the fronts recorded and have not handed to the networks yet.
    pub front_to_legacy: usize,
    pub legacy_to_front: usize,
    pub login_events: usize,
    pub presence: usize,
    pub notices: usize,
}

/// A bridge for the core's unit tests: `networks` is the config's `networks:` value (a
/// YAML flow mapping); the homeserver is never called.
#[cfg(test)]
pub(crate) fn test_bridge(dir: &std::path::Path, networks: &str) -> Arc<Bridge> {
    let text = format!(
        "homeserver: {{address: 'http://127.0.0.1:9', domain: localhost}}\n\
         appservice: {{port: 29330, url: 'http://127.0.0.1:29330'}}\n\
         database: {{path: db}}\n\
         permissions: {{'@alice:localhost': user}}\n\
         networks: {networks}\n"
    );
    let config = crate::config::LoadedConfig::parse(&text, std::path::Path::new("test.yaml"))
        .expect("a valid test config");
    Bridge::new(
        config,
        crate::store::Store::open_in(dir).expect("store"),
        Vec::new(),
    )
}
