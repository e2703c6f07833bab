//! The Matrix front: an application service. Legacy contacts are ghosts (virtual Matrix
//! users), conversations are portals (rooms), each login has a space, and a direct chat
//! with the bot is the user's management room.
//!
//! * [`endpoint`]: the appservice HTTP API the homeserver calls (hs_token checked first);
//!   [`inbox`] records what it hands over and handles it in order per room;
//!   [`catch_up`] covers events the homeserver delivers late.
//! * [`client`]: requests to the homeserver as the bot or a ghost, and what their
//!   failures mean; [`media`]: signed links to Matrix files for legacy contacts.
//! * [`portals`]: ghosts, portals, spaces, membership; [`deliver`]: what an outbox entry
//!   becomes in a room; [`to_legacy`]: what a Matrix event becomes for a contact;
//!   [`management`]: the management room; [`bridge_state`]: MSC2346 state in portals.
//!
//! [`MatrixFront`] derefs to the core's [`Bridge`] (the store, the config, the logins)
//! and adds the homeserver client and the state only Matrix needs.

pub mod bridge_state;
mod catch_up;
pub mod client;
mod deliver;
pub mod endpoint;
mod inbox;
mod management;
pub mod media;
pub mod portals;
mod presence;
pub mod provision;
pub mod registration;
pub mod service;
#[cfg(test)]
pub(crate) mod testing;
mod to_legacy;

pub use to_legacy::legacy_text;

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, Weak};

use matrix_sdk::ruma::presence::PresenceState as MatrixPresence;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId, UserId};
use serde::Deserialize;

use crate::core::front::{BoxFuture, Failure, Front};
use crate::core::{Bridge, ChatId, LoginKey, NetworkEvent, NetworkId, Presence, PresenceState};
use crate::model::OutboxEntry;
use client::{classify, MatrixClient};

/// The fields of a Matrix event the bridge looks at.
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

pub struct MatrixFront {
    core: Arc<Bridge>,
    pub matrix: MatrixClient,
    /// This front, for the tasks its synchronous entry points start.
    me: Weak<MatrixFront>,
    /// Matrix events waiting per room ([`inbox`]).
    room_queues: inbox::RoomQueues,
    /// Set once the start-up replay of the inbox ran; serialises it with new transactions.
    inbox_started: tokio::sync::Mutex<bool>,
    /// When the homeserver may be delivering late ([`catch_up`]).
    catch_up: catch_up::CatchUp,
    /// Links to Matrix files for legacy contacts (none: files are described only).
    media: Option<media::MediaLinks>,
    portal_locks: portals::PortalLocks,
    /// Last known legacy members of chatrooms and group chats, to make ghosts leave.
    room_members: Mutex<HashMap<(String, NetworkId, ChatId), Vec<String>>>,
    /// The presence each ghost was last given ([`presence`]).
    presence_set: presence::PresenceMemory,
}

impl Deref for MatrixFront {
    type Target = Bridge;
    fn deref(&self) -> &Bridge {
        &self.core
    }
}

impl MatrixFront {
    pub fn new(
        core: Arc<Bridge>,
        matrix: MatrixClient,
        media: Option<media::MediaLinks>,
    ) -> Arc<MatrixFront> {
        Arc::new_cyclic(|me| MatrixFront {
            core,
            matrix,
            me: me.clone(),
            room_queues: Default::default(),
            inbox_started: tokio::sync::Mutex::new(false),
            catch_up: Default::default(),
            media,
            portal_locks: Default::default(),
            room_members: Mutex::default(),
            presence_set: Default::default(),
        })
    }

    /// The core this front serves.
    pub fn core(&self) -> &Arc<Bridge> {
        &self.core
    }

    fn arc(&self) -> Arc<MatrixFront> {
        self.me.upgrade().expect("the front outlives its tasks")
    }

    fn as_front(&self) -> Arc<dyn Front> {
        self.arc()
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
        let found = self
            .config
            .enabled_networks()
            .find_map(|(id, _)| Some((id, self.config.ghost_templates[&id].id_of(localpart)?)));
        if found.is_some() || !localpart.contains("==") {
            return found;
        }
        // A shortened id (see `ghost_id`): the store knows what it stands for.
        let (network, id) = self.store.ghost(user_id).ok()??.legacy?;
        self.config
            .enabled_networks()
            .any(|(enabled, _)| enabled == network)
            .then_some((network, id))
    }

    pub fn ghost_id(&self, network: NetworkId, legacy_id: &str) -> OwnedUserId {
        /// The longest user id (the spec's limit).
        const MAX_USER_ID: usize = 255;
        let template = &self.config.ghost_templates[&network];
        let id = network.canonical_id(legacy_id);
        let domain = self.config.domain();
        let mut localpart = template.localpart(&id);
        // `@` + localpart + `:` + domain
        let room = MAX_USER_ID.saturating_sub(domain.len() + 2);
        if localpart.len() > room {
            localpart = template.shortened_localpart(&id, room);
            self.remember_shortened(&format!("@{localpart}:{domain}"), network, id);
        }
        UserId::parse(format!("@{localpart}:{domain}")).expect("templates produce valid user ids")
    }

    /// Keeps the legacy id behind a shortened ghost id (rare: only hostile or broken
    /// servers send ids that long).
    fn remember_shortened(&self, user_id: &str, network: NetworkId, id: String) {
        let mut record = match self.store.ghost(user_id) {
            Ok(record) => record.unwrap_or_default(),
            Err(e) => return tracing::warn!("could not read a ghost: {e}"),
        };
        if record.legacy.is_none() {
            record.legacy = Some((network, id));
            if let Err(e) = self.store.put_ghost(user_id, &record) {
                tracing::warn!("could not record a shortened ghost id: {e}");
            }
        }
    }

    /// A notice from the bot in a room (coalesced and rate-limited by the core).
    pub fn notice(&self, room: &str, text: &str) {
        self.core.notice_in(&self.as_front(), room, text);
    }

    /// A notice in a user's management room.
    pub fn notify(&self, user: &str, text: &str) {
        self.core.notify(user, None, text);
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
            "m.room.encryption" if event.state_key.as_deref() == Some("") => {
                self.encrypted_room(&room, &sender, true).await
            }
            "m.room.encrypted" => self.encrypted_room(&room, &sender, false).await,
            "m.room.message" | "m.reaction" | "m.room.redaction" => {
                if let Ok(Some(owner)) = self.store.management_owner(&room) {
                    if event.kind == "m.room.message" {
                        management::handle_message(self, &room, &owner, &sender, &event).await;
                    }
                } else if let Ok(Some(portal)) = self.store.portal_by_room(&room) {
                    to_legacy::handle_portal_event(self, &portal, &sender, &event).await;
                } else if event.kind == "m.room.message" {
                    management::moved_room_message(self, &room, &event).await;
                }
            }
            _ => {}
        }
    }

    /// The bridge does not decrypt (yet). In a management room the user hears so once,
    /// with what to do instead. In a portal, only encryption actually turned on (the
    /// `m.room.encryption` state event, which needs power in the room: the owner's)
    /// unlinks it, so the contact's next message opens a new, unencrypted room; an
    /// encrypted message from any member changes nothing but earns a notice, once.
    pub(crate) async fn encrypted_room(
        self: &Arc<Self>,
        room: &str,
        sender: &str,
        turned_on: bool,
    ) {
        if self.is_ours(sender) {
            return;
        }
        tracing::info!(%room, %sender, turned_on, "encrypted room: the bridge cannot read it");
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
        let who = match &portal.chat {
            ChatId::Direct(contact) => contact.clone(),
            ChatId::Group(_) | ChatId::Room(_) => "the chat".to_owned(),
        };
        let net = portal.network;
        if !turned_on {
            if self
                .store
                .first_time(room, "encrypted message")
                .unwrap_or(true)
            {
                self.notice(
                    room,
                    &format!(
                        "{sender} sent an encrypted message: the bridge cannot read encrypted messages, so it did not reach \
                         {who} on {}. Messages in this room reach {who} only unencrypted.",
                        net.display_name()
                    ),
                );
            }
            return;
        }
        if !self.store.first_time(room, "encrypted").unwrap_or(true) {
            return;
        }
        let text = if portal.chat.is_shared() {
            format!(
                "{sender} turned on encryption in this room. The bridge cannot read encrypted messages, so nothing \
                 written here reaches {who} on {} any more.",
                net.display_name()
            )
        } else {
            format!(
                "{sender} turned on encryption in this room. The bridge cannot read encrypted messages, so this room \
                 is no longer linked to {who} on {}: their next message opens a new, unencrypted room, or send \
                 `pm {net} {who}` in your management room.",
                net.display_name()
            )
        };
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
            management::handle_bot_invite(self, room, sender).await;
        } else if membership == "invite" && self.is_ours(target) && !self.is_ours(sender) {
            // Only a Matrix user's invite makes a DM portal: the bot's own invites (ghosts
            // into spaces, chatrooms) must not be declined by the ghost.
            let is_direct = event.content.get("is_direct").and_then(|d| d.as_bool()) == Some(true);
            portals::handle_ghost_invite(self, room, sender, target, is_direct).await;
        } else if matches!(membership, "invite" | "join" | "knock") && !self.is_ours(target) {
            if membership == "join" && sender == target {
                // A profile change reaches every room the user is in: shared once.
                let mxc = event.content["avatar_url"].as_str().unwrap_or_default();
                let last = self.store.last_set(target, "own_avatar").ok().flatten();
                if last.as_deref().unwrap_or_default() != mxc {
                    let networks: Vec<NetworkId> = self
                        .logins_of(target)
                        .into_iter()
                        .map(|(n, _, _)| n)
                        .filter(|n| n.capabilities().avatars)
                        .collect();
                    if !networks.is_empty() {
                        let front = self.clone();
                        let (user, mxc) = (target.to_owned(), mxc.to_owned());
                        tokio::spawn(async move {
                            front.share_own_avatar(&user, Some(mxc), &networks).await
                        });
                    }
                }
            }
            portals::admit(self, room, target).await;
        } else if membership == "leave" && !self.is_ours(target) {
            // The owner left their management room: forget it so a new invite starts afresh.
            if self.store.management_owner(room).ok().flatten().as_deref() == Some(target) {
                let _ = self.store.forget_management_room(room);
                let _ = self.matrix.leave(self.bot(), &room_id(room)).await;
            }
        }
    }

    /// The user's Matrix avatar (`mxc`, or asked of the homeserver when `None`; empty:
    /// none) becomes their picture on `networks`: downloaded within the picture limit,
    /// an image or nothing.
    async fn share_own_avatar(
        self: &Arc<Self>,
        user: &str,
        mxc: Option<String>,
        networks: &[NetworkId],
    ) {
        let mxc = match mxc {
            Some(mxc) => mxc,
            None => match UserId::parse(user) {
                Ok(id) => match self.matrix.avatar_url_of(&id).await {
                    Ok(url) => url.map(|u| u.to_string()).unwrap_or_default(),
                    Err(e) => {
                        tracing::info!(%user, "could not read the user's avatar: {e}");
                        return;
                    }
                },
                Err(_) => return,
            },
        };
        let avatar = match (&self.media, mxc.as_str()) {
            (_, "") | (None, _) => None,
            (Some(media), mxc) => match media
                .download(mxc, crate::core::Avatar::MAX_BYTES as u64)
                .await
            {
                Ok(data) => {
                    let avatar = crate::core::Avatar::new(mxc, data);
                    if avatar.is_none() {
                        tracing::info!(%user, "the user's avatar is not a PNG, JPEG, GIF or BMP: not shared");
                    }
                    avatar
                }
                Err(e) => {
                    tracing::info!(%user, "could not fetch the user's avatar: {e}");
                    return;
                }
            },
        };
        for net in networks {
            self.set_own_avatar(user, *net, avatar.clone());
        }
        if let Err(e) = self.store.put_last_set(user, "own_avatar", &mxc) {
            tracing::warn!("could not record the user's avatar: {e}");
        }
    }

    // --- legacy -> Matrix ------------------------------------------------------------------

    async fn show_login_event(
        self: &Arc<Self>,
        key: &LoginKey,
        event: &NetworkEvent,
    ) -> anyhow::Result<()> {
        let net = key.network;
        match event {
            NetworkEvent::Connected { .. } => {
                if net.capabilities().avatars && self.own_avatar_hash(&key.user, net).is_none() {
                    // Once a run: the core gives it to the logins it starts after.
                    let front = self.clone();
                    let user = key.user.clone();
                    tokio::spawn(async move { front.share_own_avatar(&user, None, &[net]).await });
                }
                portals::ensure_space(self, &key.user, net).await?;
            }
            NetworkEvent::ContactList { groups, contacts } => {
                // The store already has the list (written on arrival); this is the Matrix
                // side. Space membership is tracked, so known contacts cost nothing here.
                let mut ghosts = Vec::new();
                let mut failed = portals::Skipped::default();
                for contact in contacts {
                    let name = contact.display_name.as_deref();
                    match portals::ensure_ghost(self, net, &contact.id, name).await {
                        Ok(ghost) => ghosts.push(ghost),
                        Err(e) => failed.note(&contact.id, e)?,
                    }
                }
                failed.log("could not make ghosts for contacts", contacts.len());
                portals::add_ghosts_to_space(self, &key.user, net, &ghosts).await?;
                portals::show_groups_in_space(self, &key.user, net, groups, contacts).await?;
            }
            NetworkEvent::ContactChanged(contact) => {
                let ghost =
                    portals::ensure_ghost(self, net, &contact.id, contact.display_name.as_deref())
                        .await?;
                portals::add_ghosts_to_space(self, &key.user, net, &[ghost]).await?;
            }
            NetworkEvent::Typing { chat, who, typing } => {
                if let Some(portal) = self.store.portal(&key.user, net, chat)? {
                    let ghost = self.ghost_id(net, who);
                    self.matrix
                        .set_typing(&ghost, &room_id(&portal.room_id), *typing)
                        .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn push_presence(&self, network: NetworkId, who: &str, presence: &Presence) {
        let ghost = self.ghost_id(network, who);
        let state = match presence.state {
            PresenceState::Online => MatrixPresence::Online,
            PresenceState::Away | PresenceState::Busy => MatrixPresence::Unavailable,
            PresenceState::Invisible | PresenceState::Offline => MatrixPresence::Offline,
        };
        // One ghost, however many logins report the contact: a repeat costs nothing.
        if !self.presence_set.claim(&ghost, &state, &presence.status) {
            return;
        }
        let result = async {
            portals::ensure_ghost_registered(self, &ghost).await?;
            self.matrix
                .set_presence(&ghost, state, presence.status.clone())
                .await?;
            anyhow::Ok(())
        }
        .await;
        // The next update repairs a lost one; nobody reads presence history.
        if let Err(e) = result {
            self.presence_set.forget(&ghost);
            tracing::debug!(%ghost, "could not set presence: {e:#}");
        }
    }

    async fn send_bot_notice(&self, room: &str, text: &str) -> Result<(), Failure> {
        use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
        let rid = room_id(room);
        let content = RoomMessageEventContent::notice_plain(text);
        let first = self
            .matrix
            .send_message(self.bot(), &rid, content.clone(), None, None)
            .await;
        let Err(e) = first else { return Ok(()) };
        let failure = classify(&e);
        if failure.is_transient() {
            return Err(failure);
        }
        // The bot may not be in a DM portal (yet): join and try once more.
        portals::join_bot(self, room).await;
        self.matrix
            .send_message(self.bot(), &rid, content, None, None)
            .await
            .map(drop)
            .map_err(|e| classify(&e))
    }
}

impl Front for MatrixFront {
    fn name(&self) -> &'static str {
        "matrix"
    }

    fn serves(&self, user: &str) -> bool {
        UserId::parse(user).is_ok()
    }

    fn is_ours(&self, user: &str) -> bool {
        MatrixFront::is_ours(self, user)
    }

    fn deliver<'a>(
        &'a self,
        key: &'a [u8],
        entry: &'a mut OutboxEntry,
        uncertain: bool,
    ) -> BoxFuture<'a, Result<Vec<String>, Failure>> {
        Box::pin(async move { deliver::deliver(&self.arc(), key, entry, uncertain).await })
    }

    fn login_event<'a>(
        &'a self,
        login: &'a LoginKey,
        event: &'a NetworkEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move { self.arc().show_login_event(login, event).await })
    }

    fn presence<'a>(
        &'a self,
        login: &'a LoginKey,
        who: &'a str,
        presence: &'a Presence,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.push_presence(login.network, who, presence))
    }

    fn notice_place(&self, user: &str, _network: Option<NetworkId>) -> Option<String> {
        self.store
            .management_room(user)
            .ok()
            .flatten()
            .map(|m| m.room_id)
    }

    fn send_notice<'a>(
        &'a self,
        place: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(self.send_bot_notice(place, text))
    }

    fn inbound_pending(&self) -> usize {
        self.room_queues.len()
    }

    fn contact_avatar<'a>(
        &'a self,
        login: &'a LoginKey,
        who: &'a str,
        hash: &'a str,
    ) -> BoxFuture<'a, ()> {
        let network = login.network;
        Box::pin(async move {
            if let Err(e) = portals::ensure_ghost_avatar(self, network, who, hash).await {
                tracing::warn!(%network, contact = %who, "could not set the ghost's picture: {e:#}");
            }
        })
    }

    fn open_chat<'a>(
        &'a self,
        user: &'a str,
        network: NetworkId,
        contact: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let user = UserId::parse(user).map_err(|e| e.to_string())?;
            let chat = ChatId::Direct(contact.to_owned());
            let (room, created) =
                portals::find_or_create_portal(&self.arc(), &user, network, &chat, None)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
            if created {
                return Ok(format!(
                    "Opened a chat with {contact}: accept the invitation to start talking."
                ));
            }
            portals::invite_back(self, network, contact, &room, &user).await
        })
    }
}

/// A room id from the store or a trusted event (they are valid by construction).
pub fn room_id(room: &str) -> OwnedRoomId {
    OwnedRoomId::try_from(room).unwrap_or_else(|_| {
        // Fallback keeps the call failing at the homeserver instead of panicking here.
        OwnedRoomId::try_from("!invalid:invalid").expect("literal room id")
    })
}
