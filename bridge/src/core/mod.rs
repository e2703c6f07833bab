//! The core: the only place that knows both Matrix and the legacy networks.
//!
//! Legacy -> Matrix: a login's events arrive through its [`EventSink`] at the
//! [`intake`]; what becomes a room's content is written to the durable [`outbox`] at once
//! and delivered in order per conversation ([`deliver`]); presence is coalesced
//! ([`presence`]); the login's own events (connection, contact list) are handled in
//! order on its task ([`legacy`]).
//!
//! Matrix -> legacy: the transaction endpoint hands wanted events to [`inbox`], which
//! records them durably and handles them in order per room; an event leaves the inbox
//! once handled (a message: once the network accepted it).
//!
//! Bot notices are coalesced and rate-limited ([`notices`]); management-room commands
//! live in [`commands`]; portal and ghost bookkeeping in [`portals`].

pub mod accounts;
mod admin;
pub mod bridge_state;
mod catch_up;
pub mod commands;
mod deliver;
mod inbox;
mod intake;
pub mod legacy;
pub mod network;
mod notices;
pub mod outbox;
pub mod portals;
mod presence;
mod stats;
#[cfg(test)]
pub(crate) mod testing;
mod to_legacy;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};

use matrix_sdk::ruma::{OwnedUserId, UserId};
use serde::Deserialize;

pub use network::*;

use crate::config::LoadedConfig;
use crate::matrix::client::MatrixClient;
use crate::store::Store;

/// The fields of a Matrix event the core looks at.
#[derive(Debug, Clone, Deserialize)]
pub struct MatrixEvent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub room_id: Option<String>,
    #[serde(default)]
    pub sender: Option<String>,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub state_key: Option<String>,
    #[serde(default)]
    pub origin_server_ts: Option<u64>,
    #[serde(default)]
    pub content: serde_json::Value,
}

/// (network, chatroom, sender's legacy id) of messages sent from Matrix into chatrooms.
type EchoKey = (NetworkId, String, String);

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
}

pub struct Bridge {
    pub config: LoadedConfig,
    pub store: Store,
    pub matrix: MatrixClient,
    /// This bridge, for the tasks its synchronous entry points start.
    me: Weak<Bridge>,
    networks: BTreeMap<NetworkId, Arc<dyn Network>>,
    logins: Mutex<HashMap<LoginKey, LiveLogin>>,
    /// Matrix events waiting per room ([`inbox`]).
    room_queues: inbox::RoomQueues,
    /// Set once the start-up replay of the inbox ran; serialises it with new transactions.
    inbox_started: tokio::sync::Mutex<bool>,
    /// When the homeserver may be delivering late ([`catch_up`]).
    catch_up: catch_up::CatchUp,
    /// Network events waiting per login ([`intake`]).
    login_queues: intake::LoginQueues,
    pub outbox: outbox::Outbox,
    notifier: notices::Notifier,
    presence: presence::PresenceQueue,
    /// Links to Matrix files for legacy contacts (none: files are described only).
    media: Option<crate::matrix::media::MediaLinks>,
    portal_locks: portals::PortalLocks,
    /// Messages sent from Matrix into shared chatrooms, whose echo from the server must
    /// not be bridged back: (network, room, sender's legacy id) -> texts, oldest first.
    echoes: Mutex<HashMap<EchoKey, Vec<(String, std::time::Instant)>>>,
    /// Last known legacy members of chatrooms and group chats, to make ghosts leave.
    room_members: Mutex<HashMap<(String, NetworkId, ChatId), Vec<String>>>,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Bridge {
    /// Builds the bridge; `networks` are the implementations compiled in (enabled or not).
    pub fn new(
        config: LoadedConfig,
        store: Store,
        matrix: MatrixClient,
        networks: Vec<Arc<dyn Network>>,
        media: Option<crate::matrix::media::MediaLinks>,
    ) -> Arc<Bridge> {
        Arc::new_cyclic(|me| Bridge {
            config,
            store,
            matrix,
            me: me.clone(),
            networks: networks.into_iter().map(|n| (n.id(), n)).collect(),
            logins: Mutex::default(),
            room_queues: Default::default(),
            inbox_started: tokio::sync::Mutex::new(false),
            catch_up: Default::default(),
            login_queues: Default::default(),
            outbox: Default::default(),
            notifier: Default::default(),
            presence: Default::default(),
            media,
            portal_locks: Default::default(),
            echoes: Mutex::default(),
            room_members: Mutex::default(),
        })
    }

    fn arc(&self) -> Arc<Bridge> {
        self.me.upgrade().expect("the bridge outlives its tasks")
    }

    /// What is waiting in memory and on disk (for logs and `stats`).
    pub fn queue_lengths(&self) -> QueueLengths {
        QueueLengths {
            matrix_to_legacy: self.room_queues.len(),
            legacy_to_matrix: self.outbox.len(),
            login_events: self.login_queues.len(),
            presence: self.presence.pending(),
            notices: self.notifier.pending(),
        }
    }

    pub fn bot(&self) -> &UserId {
        self.matrix.bot()
    }

    /// Whether `user_id` belongs to the bridge (bot or a ghost of an enabled network).
    pub fn is_ours(&self, user_id: &str) -> bool {
        user_id == self.bot().as_str() || self.ghost_network(user_id).is_some()
    }

    /// The enabled network and legacy id behind a ghost's user id.
    pub fn ghost_network(&self, user_id: &str) -> Option<(NetworkId, String)> {
        let (localpart, domain) = user_id.strip_prefix('@')?.split_once(':')?;
        if domain != self.config.domain() {
            return None;
        }
        self.config
            .enabled_networks()
            .find_map(|(id, _)| Some((id, self.config.ghost_templates[&id].id_of(localpart)?)))
    }

    pub fn ghost_id(&self, network: NetworkId, legacy_id: &str) -> OwnedUserId {
        let localpart =
            self.config.ghost_templates[&network].localpart(&network.canonical_id(legacy_id));
        UserId::parse(format!("@{localpart}:{}", self.config.domain()))
            .expect("templates produce valid user ids")
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

    // --- Matrix events -------------------------------------------------------------------

    /// Ephemeral events (not recorded): typing in portals goes to the network; read
    /// receipts, which no network shows, earn a one-time notice.
    fn handle_ephemeral(self: &Arc<Self>, event: MatrixEvent) {
        let Some(room) = &event.room_id else { return };
        let Ok(Some(portal)) = self.store.portal_by_room(room) else {
            return;
        };
        match event.kind.as_str() {
            "m.typing" => to_legacy::handle_typing(self, &portal, &event),
            "m.receipt" => to_legacy::handle_receipt(self, &portal, &event),
            _ => {}
        }
    }

    async fn handle_matrix_event(self: &Arc<Self>, event: MatrixEvent) {
        let Some(room) = event.room_id.clone() else {
            return;
        };
        let sender = event.sender.clone().unwrap_or_default();
        match event.kind.as_str() {
            "m.room.member" => self.handle_membership(&room, &sender, &event).await,
            "m.room.encrypted" | "m.room.encryption" => self.encrypted_room(&room, &sender).await,
            "m.room.message" | "m.reaction" | "m.room.redaction" => {
                if let Ok(Some(owner)) = self.store.management_owner(&room) {
                    if event.kind == "m.room.message" {
                        commands::handle_message(self, &room, &owner, &sender, &event).await;
                    }
                } else if let Ok(Some(portal)) = self.store.portal_by_room(&room) {
                    to_legacy::handle_portal_event(self, &portal, &sender, &event).await;
                }
            }
            _ => {}
        }
    }

    /// The bridge does not decrypt (yet): a user who turns on encryption, or writes in an
    /// encrypted room, hears so once, with what to do instead. An encrypted portal is
    /// given up, so the contact's next message opens a new, unencrypted one.
    pub(crate) async fn encrypted_room(self: &Arc<Self>, room: &str, sender: &str) {
        if self.is_ours(sender) {
            return;
        }
        tracing::info!(%room, %sender, "encrypted room: the bridge cannot read it");
        if let Ok(Some(_)) = self.store.management_owner(room) {
            if self.store.first_time(room, "encrypted").unwrap_or(true) {
                self.notice(
                    room,
                    "This room is encrypted and I cannot read encrypted messages, so I cannot see your commands here. \
                     Start a new direct chat with me with encryption turned off (in Element: the \
                     \"Enable end-to-end encryption\" switch when you create it).",
                );
            }
            return;
        }
        let Ok(Some(portal)) = self.store.portal_by_room(room) else {
            return;
        };
        if !self.store.first_time(room, "encrypted").unwrap_or(true) {
            return;
        }
        let who = match &portal.chat {
            ChatId::Direct(contact) => contact.clone(),
            ChatId::Group(_) | ChatId::Room(_) => "the chat".to_owned(),
        };
        let net = portal.network;
        let text = format!(
            "This room is encrypted and the bridge cannot read encrypted messages, so nothing you write here reaches {who} \
             on {}. This room is no longer linked to {who}: their next message opens a new, unencrypted room, or send \
             `pm {net} {who}` in your management room.",
            net.display_name()
        );
        self.notice(room, &text);
        if !portal.chat.is_shared() {
            if let Err(e) = self.store.remove_portal(&portal) {
                tracing::error!("could not unlink an encrypted portal: {e}");
            }
        }
    }

    async fn handle_membership(self: &Arc<Self>, room: &str, sender: &str, event: &MatrixEvent) {
        let target = event.state_key.as_deref().unwrap_or_default();
        let membership = event
            .content
            .get("membership")
            .and_then(|m| m.as_str())
            .unwrap_or_default();
        if target == self.bot().as_str() && membership == "invite" {
            commands::handle_bot_invite(self, room, sender).await;
        } else if membership == "invite" && self.is_ours(target) && !self.is_ours(sender) {
            // Only a Matrix user's invite makes a DM portal: the bot's own invites (ghosts
            // into spaces, chatrooms) must not be declined by the ghost.
            let is_direct = event.content.get("is_direct").and_then(|d| d.as_bool()) == Some(true);
            portals::handle_ghost_invite(self, room, sender, target, is_direct).await;
        } else if membership == "leave" && !self.is_ours(target) {
            // The owner left their management room: forget it so a new invite starts afresh.
            if self.store.management_owner(room).ok().flatten().as_deref() == Some(target) {
                let _ = self.store.forget_management_room(room);
                let _ = self.matrix.leave(self.bot(), &room_id(room)).await;
            }
        }
    }

    // --- logins ----------------------------------------------------------------------------

    /// Starts (or restarts after a bridge restart) a login's network task.
    pub fn start_login(
        self: &Arc<Self>,
        mxid: &str,
        network: &Arc<dyn Network>,
        credentials: LoginCredentials,
    ) {
        let key = LoginKey {
            mxid: mxid.to_owned(),
            network: network.id(),
        };
        let legacy_id = credentials.id.clone();
        let intake: Arc<dyn EventIntake> = self.clone();
        let handle = network.start(credentials, EventSink::new(key.clone(), intake));
        let live = LiveLogin {
            handle,
            state: LoginState::Connecting,
            legacy_id,
        };
        if let Some(old) = self.logins.lock().expect("logins lock").insert(key, live) {
            let _ = old.handle.send(LoginCommand::Logout);
        }
    }

    /// Reads something of a running login.
    fn with_login<T>(
        &self,
        mxid: &str,
        network: NetworkId,
        f: impl FnOnce(&LiveLogin) -> T,
    ) -> Option<T> {
        let key = LoginKey {
            mxid: mxid.to_owned(),
            network,
        };
        self.logins.lock().expect("logins lock").get(&key).map(f)
    }

    pub fn login_handle(&self, mxid: &str, network: NetworkId) -> Option<LoginHandle> {
        self.with_login(mxid, network, |l| l.handle.clone())
    }

    /// Ends a login's task and forgets it (the store record is the caller's business).
    pub fn stop_login(&self, mxid: &str, network: NetworkId) -> bool {
        let key = LoginKey {
            mxid: mxid.to_owned(),
            network,
        };
        match self.logins.lock().expect("logins lock").remove(&key) {
            Some(live) => {
                let _ = live.handle.send(LoginCommand::Logout);
                true
            }
            None => false,
        }
    }

    pub(crate) fn set_login_state(&self, key: &LoginKey, state: LoginState) {
        if let Some(live) = self.logins.lock().expect("logins lock").get_mut(key) {
            live.state = state;
        }
    }

    /// `(network, legacy id, state)` of a user's logins.
    pub fn logins_of(&self, mxid: &str) -> Vec<(NetworkId, String, LoginState)> {
        let logins = self.logins.lock().expect("logins lock");
        let mut out: Vec<_> = logins
            .iter()
            .filter(|(k, _)| k.mxid == mxid)
            .map(|(k, l)| (k.network, l.legacy_id.clone(), l.state.clone()))
            .collect();
        out.sort_by_key(|(n, _, _)| *n);
        out
    }

    /// The legacy id a Matrix user is logged in with on `network`.
    pub fn legacy_id_of(&self, mxid: &str, network: NetworkId) -> Option<String> {
        self.with_login(mxid, network, |l| l.legacy_id.clone())
    }

    fn is_connected(&self, mxid: &str, network: NetworkId) -> bool {
        self.with_login(mxid, network, |l| l.state == LoginState::Connected)
            .unwrap_or(false)
    }

    /// The login that relays a shared chatroom's messages into Matrix: the first (by user
    /// id) connected bridged user in the room, so each message is bridged exactly once.
    pub fn relay_for(&self, network: NetworkId, room: &str) -> Option<String> {
        let members = self.store.chatroom_members(network, room).ok()?;
        members
            .iter()
            .find(|m| self.is_connected(m, network))
            .or(members.first())
            .cloned()
    }

    const ECHO_WINDOW: std::time::Duration = std::time::Duration::from_secs(120);

    /// Remembers a message sent from Matrix into a shared chatroom.
    pub fn expect_echo(&self, network: NetworkId, room: &str, legacy_id: &str, text: &str) {
        let mut echoes = self.echoes.lock().expect("echoes lock");
        let queue = echoes
            .entry((network, room.to_owned(), legacy_id.to_owned()))
            .or_default();
        queue.retain(|(_, at)| at.elapsed() < Self::ECHO_WINDOW);
        queue.push((text.to_owned(), std::time::Instant::now()));
    }

    /// Whether a chatroom message is the server's echo of one sent from Matrix (consumed).
    pub fn take_echo(&self, network: NetworkId, room: &str, from: &str, text: &str) -> bool {
        let mut echoes = self.echoes.lock().expect("echoes lock");
        let Some(queue) = echoes.get_mut(&(network, room.to_owned(), from.to_owned())) else {
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

    /// Records a chat's legacy members; returns those who left since the last call.
    pub(crate) fn update_room_members(
        &self,
        owner: &str,
        network: NetworkId,
        chat: &ChatId,
        members: &[String],
    ) -> Vec<String> {
        let mut all = self.room_members.lock().expect("room members lock");
        let old = all
            .insert((owner.to_owned(), network, chat.clone()), members.to_vec())
            .unwrap_or_default();
        old.into_iter().filter(|m| !members.contains(m)).collect()
    }

    /// Restarts every stored login (bridge start-up), except those the network stopped
    /// (signed in from another location): resuming them would sign the user out there.
    /// `reconnect` brings those back.
    pub fn resume_logins(self: &Arc<Self>) -> anyhow::Result<()> {
        for record in self.store.logins()? {
            if let Some(why) = &record.stopped {
                tracing::info!(mxid = %record.mxid, network = %record.network, "not resuming a stopped login ({why})");
                continue;
            }
            match self.network_available(record.network) {
                Ok(network) => {
                    let network = network.clone();
                    tracing::info!(mxid = %record.mxid, network = %record.network, "resuming login");
                    self.resume_login(&network, &record)?;
                }
                Err(why) => {
                    tracing::warn!(mxid = %record.mxid, network = %record.network, "not resuming login: {why}")
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
            contacts: self.store.buddies(&record.mxid, record.network)?,
            proven: record.proven,
        };
        self.start_login(&record.mxid, network, credentials);
        // Back into the chatrooms the user was in (the login queues these until it is
        // connected).
        if let Some(handle) = self.login_handle(&record.mxid, record.network) {
            for room in self.store.chatrooms_of(&record.mxid, record.network)? {
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
    pub matrix_to_legacy: usize,
    pub legacy_to_matrix: usize,
    pub login_events: usize,
    pub presence: usize,
    pub notices: usize,
}

/// A room id from the store or a trusted event (they are valid by construction).
pub fn room_id(room: &str) -> matrix_sdk::ruma::OwnedRoomId {
    matrix_sdk::ruma::OwnedRoomId::try_from(room).unwrap_or_else(|_| {
        // Fallback keeps the call failing at the homeserver instead of panicking here.
        matrix_sdk::ruma::OwnedRoomId::try_from("!invalid:invalid").expect("literal room id")
    })
}
