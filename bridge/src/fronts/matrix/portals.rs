//! Ghosts (Matrix users standing for legacy contacts) and portals (Matrix rooms standing
//! for legacy conversations), and the Matrix -> legacy direction of a portal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};

use super::{room_id, MatrixFront};
use crate::core::{sanitize, ChatId, NetworkId};
use crate::fronts::matrix::client::NewRoom;
use crate::store::{GhostRecord, PortalRecord};

/// Serialises portal creation per (user, network, chat), so an incoming message and a
/// `pm` command racing each other create one room, not two.
#[derive(Default)]
pub struct PortalLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl PortalLocks {
    fn get(&self, key: String) -> Arc<tokio::sync::Mutex<()>> {
        self.0
            .lock()
            .expect("portal locks")
            .entry(key)
            .or_default()
            .clone()
    }
}

/// Registers a ghost once (remembered in the store).
pub async fn ensure_ghost_registered(
    front: &MatrixFront,
    user: &UserId,
) -> anyhow::Result<GhostRecord> {
    let mut record = front.store.ghost(user.as_str())?.unwrap_or_default();
    if !record.registered {
        front.matrix.ensure_registered(user).await?;
        record.registered = true;
        front.store.put_ghost(user.as_str(), &record)?;
    }
    Ok(record)
}

/// Makes sure a contact's ghost exists with the right display name.
pub async fn ensure_ghost(
    front: &MatrixFront,
    network: NetworkId,
    legacy_id: &str,
    display_name: Option<&str>,
) -> anyhow::Result<matrix_sdk::ruma::OwnedUserId> {
    let user = front.ghost_id(network, legacy_id);
    let mut record = ensure_ghost_registered(front, &user).await?;
    if display_name.is_none() && record.display_name.is_some() {
        // No name known here (e.g. a message's sender): keep the one the contact list gave.
        return Ok(user);
    }
    // Names were cleaned by the core; an id shown instead is cut like one.
    let wanted = display_name
        .filter(|n| !n.trim().is_empty())
        .map(str::to_owned)
        .or_else(|| sanitize::clean_name(legacy_id))
        .unwrap_or_default();
    let wanted = format!(
        "{} ({})",
        sanitize::truncate(&wanted, sanitize::MAX_NAME_BYTES),
        network.display_name()
    );
    if record.display_name.as_deref() != Some(wanted.as_str()) {
        front.matrix.set_display_name(&user, &wanted).await?;
        record.display_name = Some(wanted);
        front.store.put_ghost(user.as_str(), &record)?;
    }
    Ok(user)
}

/// Finds or creates the portal of a conversation. DMs are created by the contact's ghost
/// (so clients show them as a chat with that person); group conversations and chatrooms
/// by the bot. Chatrooms are shared: the caller invites each bridged user who joins.
pub async fn ensure_portal(
    front: &Arc<MatrixFront>,
    mxid: &UserId,
    network: NetworkId,
    chat: &ChatId,
    display_name: Option<&str>,
) -> anyhow::Result<OwnedRoomId> {
    Ok(
        find_or_create_portal(front, mxid, network, chat, display_name)
            .await?
            .0,
    )
}

/// [`ensure_portal`], and whether it made the room now. Decided under the portal's
/// lock: a room being made for a message is not taken for one that did not exist
/// (the user may accept its invitation before the record is written).
pub async fn find_or_create_portal(
    front: &Arc<MatrixFront>,
    mxid: &UserId,
    network: NetworkId,
    chat: &ChatId,
    display_name: Option<&str>,
) -> anyhow::Result<(OwnedRoomId, bool)> {
    let owner = if chat.is_shared() { "" } else { mxid.as_str() };
    let lock = front
        .portal_locks
        .get(format!("{owner}\0{network}\0{chat:?}"));
    let _guard = lock.lock().await;
    if let Some(p) = front.store.portal(mxid.as_str(), network, chat)? {
        return Ok((room_id(&p.room_id), false));
    }
    let room = match chat {
        ChatId::Direct(contact) => {
            let name = display_name.map(str::to_owned).or_else(|| {
                front
                    .store
                    .buddies(mxid.as_str(), network)
                    .ok()?
                    .into_iter()
                    .find(|c| &c.id == contact)?
                    .display_name
            });
            let ghost = ensure_ghost(front, network, contact, name.as_deref()).await?;
            let options = NewRoom {
                invite: vec![mxid.to_owned(), front.bot().to_owned()],
                is_direct: true,
                power_users: vec![(mxid.to_owned(), 100), (front.bot().to_owned(), 100)],
                topic: Some(format!("{} chat with {contact}", network.display_name())),
                ..NewRoom::default()
            };
            let room = front.matrix.create_room(&ghost, options).await?;
            // The bot joins to post delivery notices in the room.
            front.matrix.join(front.bot(), &room).await?;
            front
                .store
                .set_member(room.as_str(), ghost.as_str(), true)?;
            front
                .store
                .set_member(room.as_str(), front.bot().as_str(), true)?;
            room
        }
        ChatId::Group(id) => {
            let options = NewRoom {
                name: Some(
                    display_name
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("{} group chat", network.display_name())),
                ),
                topic: Some(format!("{} conversation {id}", network.display_name())),
                invite: vec![mxid.to_owned()],
                // A moderator, not an admin: who is in the room is the conversation's
                // business, which the bridge keeps (see `admit`).
                power_users: vec![(mxid.to_owned(), 50)],
                invite_level: Some(SHARED_INVITE_LEVEL),
                ..NewRoom::default()
            };
            front.matrix.create_room(front.bot(), options).await?
        }
        ChatId::Room(name) => {
            let options = NewRoom {
                name: Some(format!("{name} ({})", network.display_name())),
                topic: Some(format!("{} chatroom {name}", network.display_name())),
                invite_level: Some(SHARED_INVITE_LEVEL),
                ..NewRoom::default()
            };
            front.matrix.create_room(front.bot(), options).await?
        }
    };
    let record = PortalRecord {
        mxid: mxid.to_string(),
        network,
        chat: chat.clone(),
        room_id: room.to_string(),
    };
    front.store.put_portal(&record)?;
    front.store.flush().await?;
    super::bridge_state::ensure(front, &record).await;
    if !chat.is_shared() {
        add_to_space(front, mxid.as_str(), network, &room).await;
    }
    Ok((room, true))
}

/// The power needed to invite into a group room or a chatroom's room: the bridge's own
/// (the bot creates them), so members cannot bring in readers the chat does not have.
const SHARED_INVITE_LEVEL: i64 = 100;

/// Someone was invited into or joined a portal. A group conversation's or chatroom's
/// room shows a legacy chat to the bridge's users in it: its members are ghosts, the
/// bridge's users whose login is in that chat, and the bot. Anyone else is removed, with
/// a reason, and the room's invite power is made the bridge's (rooms made before it was).
/// A direct chat's owner decides who shares their room.
pub async fn admit(front: &MatrixFront, room: &str, user: &str) {
    let Ok(Some(portal)) = front.store.portal_by_room(room) else {
        return;
    };
    let allowed = match &portal.chat {
        ChatId::Direct(_) => return,
        ChatId::Group(_) => user == portal.mxid,
        ChatId::Room(name) => front
            .store
            .chatroom_members(portal.network, name)
            .is_ok_and(|members| members.iter().any(|m| m == user)),
    };
    let Ok(intruder) = UserId::parse(user) else {
        return;
    };
    if allowed || front.is_ours(user) {
        return;
    }
    tracing::info!(%room, %user, "removing someone who is not in the legacy chat from its room");
    let rid = room_id(room);
    let reason = match &portal.chat {
        ChatId::Room(name) => format!(
            "This room shows the {} chatroom {name} to the bridge's users in it: join it with `join {} {name}` in your \
             management room.",
            portal.network.display_name(),
            portal.network
        ),
        _ => format!(
            "This room shows a {} conversation of {}: only they can be in it.",
            portal.network.display_name(),
            portal.mxid
        ),
    };
    if let Err(e) = front
        .matrix
        .kick(front.bot(), &rid, &intruder, &reason)
        .await
    {
        tracing::warn!(%room, %user, "could not remove someone from a shared room: {e}");
    }
    forget_member(front, &rid, &intruder);
    if front
        .store
        .first_time(room, "invite power")
        .unwrap_or(false)
    {
        if let Err(e) = keep_invites(front, &rid).await {
            tracing::warn!(%room, "could not keep invites to the bridge: {e:#}");
        }
    }
}

/// Raises the room's invite power to the bridge's (a room made before that was the rule).
async fn keep_invites(front: &MatrixFront, room: &matrix_sdk::ruma::RoomId) -> anyhow::Result<()> {
    let Some(mut levels) = front.matrix.state(room, "m.room.power_levels", "").await? else {
        return Ok(());
    };
    if levels["invite"].as_i64().unwrap_or(0) >= SHARED_INVITE_LEVEL {
        return Ok(());
    }
    levels["invite"] = SHARED_INVITE_LEVEL.into();
    front
        .matrix
        .send_state(front.bot(), room, "m.room.power_levels", "", levels)
        .await?;
    Ok(())
}

/// Spaces being created at once, at most.
const SPACES_AT_ONCE: usize = 8;
static SPACE_CREATION: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(SPACES_AT_ONCE);

/// The Matrix space gathering a login's contacts and chats: created on the first use by
/// the user's first login on the network, and reused by the next ones (a logout and a
/// new login do not make a second space).
pub async fn ensure_space(
    front: &MatrixFront,
    mxid: &str,
    network: NetworkId,
) -> anyhow::Result<Option<OwnedRoomId>> {
    let Some(login) = front.store.login(mxid, network)? else {
        return Ok(None);
    };
    if let Some(space) = &login.space_room {
        // Records from before spaces had their own tree name it only here.
        if front.store.space(mxid, network)?.is_none() {
            front.store.set_space(mxid, network, space)?;
        }
        return Ok(Some(room_id(space)));
    }
    // A few at a time: a thousand new logins connecting together must not become a
    // thousand room creations at once (Synapse then times them all out).
    let _turn = SPACE_CREATION
        .acquire()
        .await
        .map_err(|_| anyhow::anyhow!("space creation closed"))?;
    // Read again: it may have been made while this waited.
    let Some(login) = front.store.login(mxid, network)? else {
        return Ok(None);
    };
    if let Some(space) = &login.space_room {
        return Ok(Some(room_id(space)));
    }
    let user = UserId::parse(mxid)?;
    let name = format!("{} ({})", network.display_name(), login.legacy_id);
    let space = match front.store.space(mxid, network)? {
        Some(space) => {
            let space = room_id(&space);
            reuse_space(front, &space, &user, &name).await;
            space
        }
        None => {
            let options = NewRoom {
                name: Some(name),
                topic: Some(format!(
                    "Your {} contacts and chats",
                    network.display_name()
                )),
                invite: vec![user.clone()],
                power_users: vec![(user, 100)],
                space: true,
                ..NewRoom::default()
            };
            let space = front.matrix.create_room(front.bot(), options).await?;
            front.store.set_space(mxid, network, space.as_str())?;
            space
        }
    };
    front.store.update_login(mxid, network, |login| {
        login.space_room = Some(space.to_string());
    })?;
    Ok(Some(space))
}

/// An earlier login's space serves a new one: named for the new account, and the user
/// invited back in case they left it (an invitation to a member fails, harmlessly).
async fn reuse_space(front: &MatrixFront, space: &RoomId, user: &UserId, name: &str) {
    let named = front.matrix.state(space, "m.room.name", "").await;
    if !matches!(&named, Ok(Some(n)) if n["name"] == name) {
        let content = serde_json::json!({ "name": name });
        if let Err(e) = front
            .matrix
            .send_state(front.bot(), space, "m.room.name", "", content)
            .await
        {
            tracing::warn!(%space, "could not rename a reused space: {e}");
        }
    }
    if let Err(e) = front.matrix.invite(front.bot(), space, user).await {
        tracing::debug!(%space, "invite to a reused space: {e}");
    }
}

/// Lists a portal in its login's space.
async fn add_to_space(front: &MatrixFront, mxid: &str, network: NetworkId, room: &OwnedRoomId) {
    let Ok(Some(space)) = ensure_space(front, mxid, network).await else {
        return;
    };
    let content = serde_json::json!({ "via": [front.config.domain()] });
    if let Err(e) = front
        .matrix
        .send_state(front.bot(), &space, "m.space.child", room.as_str(), content)
        .await
    {
        tracing::warn!("could not add a portal to its space: {e}");
    }
}

/// Shows a login's contact groups in its space's topic, e.g. "Groups: Friends (Alice,
/// Bob); Work (Carol)", so the grouping the legacy client showed is visible in Matrix.
/// Called with every contact-list snapshot; groups without members are left out.
pub async fn show_groups_in_space(
    front: &MatrixFront,
    mxid: &str,
    network: NetworkId,
    groups: &[crate::core::Group],
    contacts: &[crate::core::Contact],
) -> anyhow::Result<()> {
    let parts: Vec<String> = groups
        .iter()
        .filter_map(|g| {
            let members: Vec<&str> = contacts
                .iter()
                .filter(|c| c.groups.contains(&g.id))
                .map(|c| c.display_name.as_deref().unwrap_or(&c.id))
                .collect();
            (!members.is_empty()).then(|| format!("{} ({})", g.name, members.join(", ")))
        })
        .collect();
    if parts.is_empty() {
        return Ok(());
    }
    let Some(space) = ensure_space(front, mxid, network).await? else {
        return Ok(());
    };
    let topic = format!(
        "Your {} contacts and chats. Groups: {}",
        network.display_name(),
        parts.join("; ")
    );
    // Every connection brings a snapshot: the topic is sent only when it changes.
    if front.store.last_set(space.as_str(), TOPIC)?.as_deref() == Some(topic.as_str()) {
        return Ok(());
    }
    front
        .matrix
        .send_state(
            front.bot(),
            &space,
            TOPIC,
            "",
            serde_json::json!({ "topic": topic }),
        )
        .await?;
    front.store.put_last_set(space.as_str(), TOPIC, &topic)?;
    Ok(())
}

const TOPIC: &str = "m.room.topic";

/// Sets the bot's display name and avatar unless the store says they are set already:
/// a restart sends neither again (a homeserver shows every profile change in every room
/// the bot is in).
pub async fn ensure_bot_profile(
    front: &MatrixFront,
    display_name: &str,
    avatar_url: Option<&str>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let bot = front.bot().as_str();
    if front.store.last_set(bot, "displayname")?.as_deref() != Some(display_name) {
        front
            .matrix
            .set_display_name(front.bot(), display_name)
            .await
            .context("setting the bot's display name")?;
        front.store.put_last_set(bot, "displayname", display_name)?;
    }
    if let Some(avatar) = avatar_url {
        if front.store.last_set(bot, "avatar_url")?.as_deref() != Some(avatar) {
            let url = matrix_sdk::ruma::OwnedMxcUri::from(avatar);
            front
                .matrix
                .set_avatar_url(front.bot(), url)
                .await
                .context("setting the bot's avatar")?;
            front.store.put_last_set(bot, "avatar_url", avatar)?;
        }
    }
    Ok(())
}

/// Gives a contact's ghost their picture, unless the store says it has it already (one
/// upload and one profile change per picture, none after a restart).
pub async fn ensure_ghost_avatar(
    front: &MatrixFront,
    network: NetworkId,
    legacy_id: &str,
    hash: &str,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let ghost = front.ghost_id(network, legacy_id);
    if front.store.last_set(ghost.as_str(), "avatar")?.as_deref() == Some(hash) {
        return Ok(());
    }
    // The bytes only now: this runs at every presence that announces the picture.
    let Some(avatar) = front
        .store
        .avatar(network, legacy_id)?
        .filter(|a| a.hash == hash)
    else {
        return Ok(());
    };
    ensure_ghost_registered(front, &ghost).await?;
    let extension = avatar.mime.rsplit('/').next().unwrap_or("img");
    let url = front
        .matrix
        .upload(
            &ghost,
            avatar.data.to_vec(),
            avatar.mime,
            &format!("avatar.{extension}"),
        )
        .await
        .context("uploading a contact's picture")?;
    front
        .matrix
        .set_avatar_url(&ghost, url)
        .await
        .context("setting a ghost's avatar")?;
    front.store.put_last_set(ghost.as_str(), "avatar", hash)?;
    front.store.flush_soon();
    Ok(())
}

/// Makes ghosts members of their login's space (so the space lists the contacts).
pub async fn add_ghosts_to_space(
    front: &MatrixFront,
    mxid: &str,
    network: NetworkId,
    ghosts: &[OwnedUserId],
) -> anyhow::Result<()> {
    let Some(space) = ensure_space(front, mxid, network).await? else {
        return Ok(());
    };
    let mut failed = Skipped::default();
    for ghost in ghosts {
        if let Err(e) = ensure_member(front, &space, ghost).await {
            failed.note(ghost.as_str(), e)?;
        }
    }
    failed.log("could not add contacts to their space", ghosts.len());
    Ok(())
}

/// Contacts left out of a list the bridge shows (a name the homeserver refuses must not
/// cost the others their ghosts): the first reason and how many, logged once. A
/// homeserver that cannot be reached stops the list instead (nothing would pass).
#[derive(Default)]
pub(crate) struct Skipped {
    first: Option<String>,
    count: usize,
}

impl Skipped {
    /// Notes a failure for `who`; passes transient failures (the homeserver is away) on.
    pub(crate) fn note(&mut self, who: &str, e: anyhow::Error) -> anyhow::Result<()> {
        let reason = format!("{who}: {e:#}");
        if super::deliver::failure(e).is_transient() {
            anyhow::bail!("the homeserver is not reachable ({reason})");
        }
        self.count += 1;
        self.first.get_or_insert(reason);
        Ok(())
    }

    pub(crate) fn log(&self, what: &str, of: usize) {
        if let Some(first) = &self.first {
            tracing::warn!(skipped = self.count, of, %first, "{what}");
        }
    }
}

/// Makes a ghost a member of a room the bot is in (invite, then join as the ghost), or
/// invites a Matrix user; once: the membership is remembered, so a chatroom message or
/// a contact-list snapshot costs no membership requests after the first.
pub async fn ensure_member(
    front: &MatrixFront,
    room: &matrix_sdk::ruma::RoomId,
    user: &UserId,
) -> anyhow::Result<()> {
    if front.store.is_member(room.as_str(), user.as_str())? {
        return Ok(());
    }
    tracing::debug!(%room, %user, "asking the homeserver for a membership");
    // Already invited or joined is fine; a real refusal shows in the join below.
    if let Err(e) = front.matrix.invite(front.bot(), room, user).await {
        tracing::debug!(%room, %user, "invite: {e}");
    }
    if front.is_ours(user.as_str()) {
        front.matrix.join(user, room).await?;
    }
    front.store.set_member(room.as_str(), user.as_str(), true)?;
    Ok(())
}

/// Forgets a remembered membership (the homeserver said otherwise, or they left).
pub fn forget_member(front: &MatrixFront, room: &matrix_sdk::ruma::RoomId, user: &UserId) {
    if let Err(e) = front.store.set_member(room.as_str(), user.as_str(), false) {
        tracing::warn!("could not forget a membership: {e}");
    }
}

/// `pm` for a chat that has its room already: the user is pointed to it, or invited
/// back (by the contact's ghost, as the first time) when they left it.
pub async fn invite_back(
    front: &MatrixFront,
    network: NetworkId,
    contact: &str,
    room: &matrix_sdk::ruma::RoomId,
    user: &UserId,
) -> Result<String, String> {
    let membership = front
        .matrix
        .state(room, "m.room.member", user.as_str())
        .await
        .ok()
        .flatten();
    if membership.as_ref().and_then(|m| m["membership"].as_str()) == Some("join") {
        return Ok(format!(
            "You have a chat with {contact} already: https://matrix.to/#/{room}"
        ));
    }
    forget_member(front, room, user);
    let ghost = front.ghost_id(network, contact);
    if let Err(e) = front.matrix.invite(&ghost, room, user).await {
        tracing::debug!(%room, "the ghost could not invite back, the bot tries: {e}");
        front
            .matrix
            .invite(front.bot(), room, user)
            .await
            .map_err(|e| format!("Could not invite you back to your chat with {contact}: {e}"))?;
    }
    Ok(format!(
        "Invited you back to your chat with {contact}: accept the invitation to go on talking."
    ))
}

/// Makes the bot join a room it was invited to (a DM portal created by a ghost may not
/// have it yet; the ghost invites it first).
pub async fn join_bot(front: &MatrixFront, room: &str) {
    let rid = room_id(room);
    if let Ok(Some(portal)) = front.store.portal_by_room(room) {
        if let ChatId::Direct(contact) = &portal.chat {
            let ghost = front.ghost_id(portal.network, contact);
            let _ = front.matrix.invite(&ghost, &rid, front.bot()).await;
        }
    }
    if front.matrix.join(front.bot(), &rid).await.is_ok() {
        let _ = front.store.set_member(room, front.bot().as_str(), true);
    }
}

/// A chatroom's or group conversation's legacy member list, shown as ghosts in its room.
pub async fn show_members(
    front: &Arc<MatrixFront>,
    mxid: &str,
    network: NetworkId,
    chat: &ChatId,
    room: &OwnedRoomId,
    members: &[crate::core::Contact],
) -> anyhow::Result<()> {
    if let ChatId::Room(_) = chat {
        // The bridged user whose login is in the chatroom is invited to its shared room.
        ensure_member(front, room, &UserId::parse(mxid)?).await?;
    }
    // Bridged users appear in Matrix as themselves, not as ghosts. In a shared chatroom
    // that means every bridged member's legacy id, not only this login's: otherwise each
    // login would add the others' ghosts and remove them again when the next login's
    // list (without its own id) arrives.
    // (Users of other fronts in the chatroom are legacy users here: they get ghosts.)
    let mut bridged: Vec<String> = front.legacy_id_of(mxid, network).into_iter().collect();
    if let ChatId::Room(name) = chat {
        bridged.extend(front.bridged_members(network, name, ""));
    }
    let others: Vec<_> = members
        .iter()
        .filter(|m| !bridged.contains(&m.id))
        .collect();
    let ids: Vec<String> = others.iter().map(|m| m.id.clone()).collect();
    let owner = if chat.is_shared() { "" } else { mxid };
    for gone in front.update_room_members(owner, network, chat, &ids) {
        let ghost = front.ghost_id(network, &gone);
        front.matrix.leave(&ghost, room).await.ok();
        forget_member(front, room, &ghost);
    }
    let mut failed = Skipped::default();
    for member in &others {
        let joined = async {
            let ghost =
                ensure_ghost(front, network, &member.id, member.display_name.as_deref()).await?;
            ensure_member(front, room, &ghost).await
        };
        if let Err(e) = joined.await {
            failed.note(&member.id, e)?;
        }
    }
    failed.log("could not show members of a chat", others.len());
    Ok(())
}

/// This login left a chatroom (its user leaves the shared room) or a group conversation
/// ended (a notice says so).
pub async fn show_left(
    front: &Arc<MatrixFront>,
    mxid: &str,
    network: NetworkId,
    chat: &ChatId,
    room: &OwnedRoomId,
) -> anyhow::Result<()> {
    if let ChatId::Room(_) = chat {
        let user = UserId::parse(mxid)?;
        front
            .matrix
            .kick(front.bot(), room, &user, "left the chatroom")
            .await
            .ok();
        forget_member(front, room, &user);
    } else {
        let text = format!("This {} conversation has ended.", network.display_name());
        front.notice(room.as_str(), &text);
    }
    Ok(())
}

/// A Matrix user invited a ghost to a direct chat: that room becomes the DM portal with
/// the contact (unless one exists, which the ghost points to), so chats can be started
/// from Matrix as with any other user.
pub async fn handle_ghost_invite(
    front: &Arc<MatrixFront>,
    room: &str,
    inviter: &str,
    ghost: &str,
    is_direct: bool,
) {
    let Some((network, contact)) = front.ghost_network(ghost) else {
        return;
    };
    let (Ok(ghost), Ok(mxid)) = (UserId::parse(ghost), UserId::parse(inviter)) else {
        return;
    };
    let rid = room_id(room);
    if ensure_ghost_registered(front, &ghost).await.is_err() {
        return;
    }
    let logged_in = front.config.permission(inviter) != crate::config::Permission::None
        && front.login_handle(inviter, network).is_some();
    // A room the bridge already serves (a portal, a management room) keeps its owner and
    // purpose: a member inviting a ghost must not make it theirs.
    let bridged = !matches!(front.store.portal_by_room(room), Ok(None))
        || !matches!(front.store.management_owner(room), Ok(None));
    if !logged_in || !is_direct || bridged {
        // Not someone this ghost can talk for, or not a room to become a chat: decline.
        if bridged {
            tracing::info!(%room, %inviter, "a ghost was invited into a bridged room: declined");
        }
        let _ = front.matrix.leave(&ghost, &rid).await;
        return;
    }
    if let Err(e) = front.matrix.join(&ghost, &rid).await {
        tracing::warn!(%room, "a ghost could not accept an invite: {e}");
        return;
    }
    let chat = ChatId::Direct(contact.clone());
    let lock = front
        .portal_locks
        .get(format!("{inviter}\0{network}\0{chat:?}"));
    let _guard = lock.lock().await;
    match front.store.portal(inviter, network, &chat) {
        Ok(Some(existing)) => {
            let text = format!(
                "You already have a chat with {contact}: https://matrix.to/#/{}",
                existing.room_id
            );
            let _ = front
                .matrix
                .send_message(
                    &ghost,
                    &rid,
                    RoomMessageEventContent::notice_plain(text),
                    None,
                    None,
                )
                .await;
            let _ = front.matrix.leave(&ghost, &rid).await;
        }
        Ok(None) => {
            let record = PortalRecord {
                mxid: inviter.to_owned(),
                network,
                chat,
                room_id: room.to_owned(),
            };
            if front.store.put_portal(&record).is_err() {
                return;
            }
            // The bot joins for delivery notices.
            if front.matrix.invite(&ghost, &rid, front.bot()).await.is_ok() {
                let _ = front.matrix.join(front.bot(), &rid).await;
            }
            super::bridge_state::ensure(front, &record).await;
            add_to_space(front, mxid.as_str(), network, &rid).await;
        }
        Err(e) => tracing::error!("could not look up a portal: {e}"),
    }
}
