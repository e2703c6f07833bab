//! Group chats as MUC rooms (XEP-0045) at run time: mig33 chatrooms and MSN group
//! conversations on the rooms component.
//!
//! * A user joins with presence to `<room>/<nick>`; the nick is always their legacy id
//!   (status 210 says so), since that is what the legacy room shows. Joining a chatroom
//!   joins it on the network through the user's own login. Each joined resource is an
//!   occupant, kept in the store: a bridge restart does not make clients rejoin.
//! * A chatroom's messages come from one relaying login per front (the core's
//!   `relay_for`), and are sent here to every occupant of every XMPP user: each message
//!   once per resource. What a user writes goes through their own login and is
//!   reflected to all occupants once the network accepted it (the server's echo is
//!   suppressed by the core).
//! * A group conversation (MSN) belongs to one user: its entries wait in the outbox until
//!   the user joins the room they were invited to (XEP-0249 direct invitation).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio_xmpp::Stanza;
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza_error::DefinedCondition;

use super::errors::stanza_error;
use super::front::{stamped, uuid_like, XmppFront};
use super::inbox::Request;
use super::muc::{self, Leaving};
use super::{convert, xml_text};
use crate::core::front::Failure;
use crate::core::{ChatId, Contact, FormattedText, LoginCommand, NetworkId};
use crate::model::{shared_owner, XMPP_USER_PREFIX};
use crate::model::{OutboxEntry, OutboxItem};
use crate::store::Occupant;

const CONFERENCE_NS: &str = "jabber:x:conference";

#[derive(Default)]
pub(crate) struct Rooms {
    /// The legacy members last known per room JID, as each login in it (by user) sees
    /// them: a login's list leaves out its own user, so the room's occupants are the
    /// union, and a member leaves when no login sees them any more.
    members: Mutex<HashMap<String, HashMap<String, Vec<Contact>>>>,
    /// (user, room) invitations sent since the bridge started.
    invited: Mutex<HashSet<String>>,
    /// Woken when a room's member list is recorded (a join waits for the first).
    members_known: tokio::sync::Notify,
    /// The last messages of each room (by room JID), for a newcomer's history.
    history: Mutex<HashMap<String, VecDeque<Line>>>,
}

/// A message of a room's history.
#[derive(Clone)]
pub(crate) struct Line {
    nick: String,
    kind: crate::core::MessageKind,
    text: FormattedText,
    at_ms: u64,
}

/// How many messages of a room a newcomer gets at most (and the bridge keeps, in
/// memory: a restart starts the history afresh).
const HISTORY_LINES: usize = 20;

/// Every login's members of a room, each once (the first login's details win).
fn union(lists: &HashMap<String, Vec<Contact>>) -> Vec<Contact> {
    let mut users: Vec<&String> = lists.keys().collect();
    users.sort();
    let mut all: Vec<Contact> = Vec::new();
    for user in users {
        for m in &lists[user] {
            if !all.iter().any(|a| a.id == m.id) {
                all.push(m.clone());
            }
        }
    }
    all
}

/// How long a join waits for the room's member list before answering without it.
const MEMBERS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Rooms {
    fn members(&self, room: &str) -> Vec<Contact> {
        self.members
            .lock()
            .expect("members lock")
            .get(room)
            .map(union)
            .unwrap_or_default()
    }

    /// Records the members `user`'s login sees in a room (`None`: the login left it);
    /// returns who joined and who left the room's union since.
    fn update(
        &self,
        room: &str,
        user: &str,
        members: Option<&[Contact]>,
    ) -> (Vec<Contact>, Vec<Contact>) {
        let mut all = self.members.lock().expect("members lock");
        let lists = all.entry(room.to_owned()).or_default();
        let old = union(lists);
        match members {
            Some(members) => {
                lists.insert(user.to_owned(), members.to_vec());
            }
            None => {
                lists.remove(user);
            }
        }
        let new = union(lists);
        if lists.is_empty() {
            // The last login left: the room is gone for the bridge, and so is its
            // history (group conversations come and go; their rooms must not pile up).
            all.remove(room);
            self.history.lock().expect("history lock").remove(room);
        }
        if members.is_some() {
            self.members_known.notify_waiters();
        }
        let joined = new
            .iter()
            .filter(|m| !old.iter().any(|o| o.id == m.id))
            .cloned()
            .collect();
        let left = old
            .into_iter()
            .filter(|o| !new.iter().any(|m| m.id == o.id))
            .collect();
        (joined, left)
    }

    /// Waits (at most [`MEMBERS_WAIT`]) until the room's member list is known. The
    /// legacy server's list comes as an outbox entry of its own, which may be delivered
    /// after the server accepted the join: the occupants must come before the
    /// self-presence (XEP-0045 §7.2.3), or clients take them for later arrivals.
    async fn wait_members(&self, room: &str) {
        let deadline = tokio::time::Instant::now() + MEMBERS_WAIT;
        loop {
            let changed = self.members_known.notified();
            tokio::pin!(changed);
            // Registered before the check, so an update in between is not missed.
            changed.as_mut().enable();
            if self
                .members
                .lock()
                .expect("members lock")
                .contains_key(room)
            {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                tracing::debug!(%room, "no member list yet; joining without it");
                return;
            }
        }
    }

    /// Keeps a message for the history of `room`.
    fn remember(&self, room: &str, line: Line) {
        let mut all = self.history.lock().expect("history lock");
        let lines = all.entry(room.to_owned()).or_default();
        if lines.len() == HISTORY_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The last `n` messages of `room`, oldest first.
    fn recent(&self, room: &str, n: usize) -> Vec<Line> {
        let all = self.history.lock().expect("history lock");
        let Some(lines) = all.get(room) else {
            return Vec::new();
        };
        lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    /// The rooms that have occupants (for disco#items on the service).
    pub(crate) fn list(&self, front: &XmppFront) -> Vec<(BareJid, String)> {
        let mut rooms: Vec<(BareJid, String)> = front
            .store
            .xmpp_all_occupants()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(room, _, occupant)| {
                let name = match &occupant.chat {
                    ChatId::Room(name) => name.clone(),
                    ChatId::Group(_) | ChatId::Direct(_) => return None,
                };
                Some((room.parse().ok()?, name))
            })
            .collect();
        rooms.sort_by(|a, b| a.0.cmp(&b.0));
        rooms.dedup_by(|a, b| a.0 == b.0);
        rooms
    }
}

/// Who sees a conversation's traffic: every occupant of a chatroom, only the owner's
/// resources in a group conversation (it is theirs alone).
fn audience(
    front: &XmppFront,
    room: &BareJid,
    chat: &ChatId,
    owner: &str,
) -> Vec<(FullJid, Occupant)> {
    let mut present = occupants(front, room);
    if matches!(chat, ChatId::Group(_)) {
        present.retain(|(_, o)| o.user == owner);
    }
    present
}

/// The occupants of a room: (full JID, occupant).
fn occupants(front: &XmppFront, room: &BareJid) -> Vec<(FullJid, Occupant)> {
    match front.store.xmpp_occupants(room.as_str()) {
        Ok(list) => list
            .into_iter()
            .filter_map(|(jid, o)| Some((jid.parse().ok()?, o)))
            .collect(),
        Err(e) => {
            tracing::error!("could not read a room's occupants: {e}");
            Vec::new()
        }
    }
}

/// A join request: presence to `<room>/<nick>` from a user's resource.
pub(crate) struct Join {
    pub request: Presence,
    pub user: String,
    pub from: FullJid,
    pub network: NetworkId,
    pub chat: ChatId,
    pub room: BareJid,
    /// The nick the client asked for (the bridge gives the legacy id instead).
    pub requested: String,
    /// The most history messages the client wants, if it said (`maxstanzas`).
    pub history: Option<u32>,
}

pub(crate) async fn join(front: &Arc<XmppFront>, join: Join) {
    let Join {
        request,
        user,
        from,
        network,
        chat,
        room,
        requested,
        history,
    } = join;
    let (request, user, requested) = (&request, user.as_str(), requested.as_str());
    let refuse = |condition, text: String| {
        let error = stanza_error(condition, Some(&text));
        muc::join_error(request, error)
    };
    let Some(nick) = front.legacy_id_of(user, network) else {
        if let Some(e) = refuse(
            DefinedCondition::RegistrationRequired,
            format!(
                "Register with the {} gateway first.",
                network.display_name()
            ),
        ) {
            front.send(e).await;
        }
        return;
    };
    if let ChatId::Room(name) = &chat {
        let joined = front
            .store
            .chatrooms_of(user, network)
            .unwrap_or_default()
            .contains(name);
        if !joined {
            let Some(handle) = front.login_handle(user, network) else {
                return;
            };
            let result = handle
                .request(|reply| LoginCommand::JoinRoom {
                    room: name.clone(),
                    reply,
                })
                .await;
            if let Err(e) = result {
                if let Some(e) = refuse(DefinedCondition::ItemNotFound, format!("{e}")) {
                    front.send(e).await;
                }
                return;
            }
            front.rooms.wait_members(room.as_str()).await;
        }
    }
    let occupant = Occupant {
        user: user.to_owned(),
        nick: nick.clone(),
        network,
        chat: chat.clone(),
    };
    if let Err(e) = front
        .store
        .put_xmpp_occupant(room.as_str(), &from.to_string(), &occupant)
    {
        tracing::error!("could not record a room occupant: {e}");
    }
    front.store.flush_soon();
    // Who is there: the legacy members and the other XMPP users, by nick, once each.
    let mut seen = HashSet::from([nick.clone()]);
    let mut present = Vec::new();
    for member in front.rooms.members(room.as_str()) {
        if seen.insert(member.id.clone()) {
            let contact = front.contact_jid(network, &member.id);
            present.push((member.id, contact, None));
        }
    }
    let others = occupants(front, &room);
    for (_, other) in &others {
        if seen.insert(other.nick.clone()) {
            present.push((other.nick.clone(), None, None));
        }
    }
    let mut stanzas: Vec<Stanza> = Vec::new();
    match muc::join_presences(&room, &from, Some(requested), &nick, &present) {
        Ok(presences) => stanzas.extend(presences.into_iter().map(Stanza::from)),
        Err(e) => tracing::warn!("cannot show a room's occupants: {e}"),
    }
    // The discussion history (XEP-0045 §7.2.15), then the subject.
    let wanted = history.map_or(HISTORY_LINES, |n| (n as usize).min(HISTORY_LINES));
    for line in front.rooms.recent(room.as_str(), wanted) {
        if let Ok(message) = muc::groupchat(
            &room,
            Some(&line.nick),
            from.clone(),
            &uuid_like(),
            line.kind,
            &line.text,
        ) {
            stanzas.push(convert::with_delay(message, room.clone(), line.at_ms, None).into());
        }
    }
    let title = match &chat {
        ChatId::Room(name) => name.clone(),
        _ => String::new(),
    };
    if let Ok(subject) = muc::subject(&room, None, from.clone(), &title) {
        stanzas.push(subject.into());
    }
    for stanza in stanzas {
        front.send(stanza).await;
    }
    // The others see the newcomer (once per nick: a second resource adds nobody).
    if others.iter().all(|(_, o)| o.user != user) {
        for (jid, _) in others.iter().filter(|(j, _)| *j != from) {
            if let Ok(p) = muc::occupant_presence(&room, &nick, jid.clone(), None, None) {
                front.send(p).await;
            }
        }
    }
}

/// A resource leaves (unavailable presence to the room, or a delivery error): when it
/// was the user's last one there, the user's login leaves the chatroom.
pub(crate) async fn leave(front: &Arc<XmppFront>, from: &FullJid, room: &BareJid, answer: bool) {
    let all = occupants(front, room);
    let Some((_, occupant)) = all.iter().find(|(j, _)| j == from) else {
        return;
    };
    if let Err(e) = front
        .store
        .remove_xmpp_occupant(room.as_str(), &from.to_string())
    {
        tracing::error!("could not forget a room occupant: {e}");
    }
    front.store.flush_soon();
    if answer {
        if let Ok(p) = muc::self_left(room, &occupant.nick, from, &Leaving::Requested) {
            front.send(p).await;
        }
    }
    let still_there = all
        .iter()
        .any(|(j, o)| j != from && o.user == occupant.user);
    if still_there {
        return;
    }
    for (jid, _) in all.iter().filter(|(j, _)| j != from) {
        if let Ok(p) = muc::occupant_left(room, &occupant.nick, jid.clone(), None) {
            front.send(p).await;
        }
    }
    if let ChatId::Room(name) = &occupant.chat {
        // No longer the room's relay from now on: a message the server sends after it
        // took the leave reaches only the other bridged members, and one of them must
        // relay it (the login's RoomLeft would come too late for that).
        if let Err(e) = front
            .store
            .remove_chatroom_member(&occupant.user, occupant.network, name)
        {
            tracing::error!("could not forget a chatroom member: {e}");
        }
        if let Some(handle) = front.login_handle(&occupant.user, occupant.network) {
            let result = handle
                .request(|reply| LoginCommand::LeaveRoom {
                    room: name.clone(),
                    reply,
                })
                .await;
            if let Err(e) = result {
                tracing::debug!("could not leave a chatroom: {e}");
            }
        }
    }
}

/// Shows the occupants who joined and left a room's union of member lists, to each
/// present occupant but themselves.
async fn show_changes(
    front: &XmppFront,
    net: NetworkId,
    room: &BareJid,
    present: &[(FullJid, Occupant)],
    joined: &[Contact],
    left: &[Contact],
) -> Result<(), Failure> {
    let mut stanzas: Vec<Stanza> = Vec::new();
    for (jid, occupant) in present {
        for m in joined.iter().filter(|m| m.id != occupant.nick) {
            let contact = front.contact_jid(net, &m.id);
            if let Ok(p) = muc::occupant_presence(room, &m.id, jid.clone(), contact.as_ref(), None)
            {
                stanzas.push(p.into());
            }
        }
        for m in left.iter().filter(|m| m.id != occupant.nick) {
            if let Ok(p) = muc::occupant_left(room, &m.id, jid.clone(), None) {
                stanzas.push(p.into());
            }
        }
    }
    if stanzas.is_empty() {
        return Ok(());
    }
    front.deliver_stanzas(stanzas).await
}

/// Shows an outbox entry of a chatroom or group conversation to its occupants.
pub(crate) async fn deliver(
    front: &XmppFront,
    entry: &OutboxEntry,
) -> Result<Vec<String>, Failure> {
    let net = entry.network;
    let room = front
        .domains
        .room(net, &entry.chat)
        .map_err(|e| Failure::permanent(e.to_string()))?;
    let present = audience(front, &room, &entry.chat, &entry.user);
    // A file in a room is a line with its link.
    let item = match &entry.item {
        OutboxItem::File {
            from,
            file,
            name,
            size,
            sent_at,
            ..
        } => {
            let (kind, plain) = front.file_text(*file, name, *size);
            std::borrow::Cow::Owned(OutboxItem::Message {
                from: from.clone(),
                kind,
                plain,
                html: None,
                sent_at: *sent_at,
                offline: false,
            })
        }
        other => std::borrow::Cow::Borrowed(other),
    };
    match item.as_ref() {
        OutboxItem::File { .. } => unreachable!("made a message above"),
        OutboxItem::Message {
            from,
            kind,
            plain,
            html,
            sent_at,
            offline,
        } => {
            let text = FormattedText {
                plain: plain.clone(),
                html: html.clone(),
            };
            if present.is_empty() {
                return nobody_there(front, entry, &room).await;
            }

            let mut stanzas = Vec::new();
            for (jid, _) in &present {
                let message =
                    muc::groupchat(&room, Some(from), jid.clone(), &entry.txn_id, *kind, &text)
                        .map_err(|e| Failure::permanent(e.to_string()))?;
                stanzas.push(stamped(front, message, net, entry, *sent_at, *offline).into());
            }
            front.deliver_stanzas(stanzas).await?;
            // Shown: kept for whoever joins later. Once per message: one login relays a
            // chatroom's messages (the core drops the others' copies), and a message
            // held for nobody there is shown live, not as history.
            front.rooms.remember(
                room.as_str(),
                Line {
                    nick: from.clone(),
                    kind: *kind,
                    text,
                    at_ms: sent_at.unwrap_or(entry.received_ms),
                },
            );
        }
        OutboxItem::Members { members } => {
            let (joined, left) = front
                .rooms
                .update(room.as_str(), &entry.user, Some(members));
            show_changes(front, net, &room, &present, &joined, &left).await?;
        }
        OutboxItem::Left => {
            let (joined, left) = front.rooms.update(room.as_str(), &entry.user, None);
            let staying: Vec<_> = present
                .iter()
                .filter(|(_, o)| o.user != entry.user)
                .cloned()
                .collect();
            show_changes(front, net, &room, &staying, &joined, &left).await?;
            // The network removed the login (or it left): its resources are out.
            for (jid, occupant) in present.iter().filter(|(_, o)| o.user == entry.user) {
                let _ = front
                    .store
                    .remove_xmpp_occupant(room.as_str(), &jid.to_string());
                let why = Leaving::Removed { reason: None };
                if let Ok(p) = muc::self_left(&room, &occupant.nick, jid, &why) {
                    front.send(p).await;
                }
            }
            front.store.flush_soon();
        }
        OutboxItem::Notice { text } => {
            let notice = FormattedText::plain(text.clone());
            let mut stanzas = Vec::new();
            for (jid, _) in &present {
                if let Ok(m) = muc::groupchat(
                    &room,
                    None,
                    jid.clone(),
                    &entry.txn_id,
                    crate::core::MessageKind::Notice,
                    &notice,
                ) {
                    stanzas.push(Stanza::from(m));
                }
            }
            if !stanzas.is_empty() {
                front.deliver_stanzas(stanzas).await?;
            }
        }
    }
    Ok(Vec::new())
}

/// A message for a room nobody has joined on XMPP. A chatroom the user left is over
/// (the message raced the leave). Otherwise the user joined on the network only (the
/// `join` command) or this is a group conversation: its owner is invited (XEP-0249, once
/// per run) and the entries wait in the outbox until they join.
async fn nobody_there(
    front: &XmppFront,
    entry: &OutboxEntry,
    room: &BareJid,
) -> Result<Vec<String>, Failure> {
    let waiting_for = match &entry.chat {
        ChatId::Direct(_) => return Ok(Vec::new()),
        ChatId::Room(name) => {
            let members: Vec<String> = front
                .store
                .chatroom_members(entry.network, name)
                .unwrap_or_default()
                .into_iter()
                .filter(|m| shared_owner(m) == XMPP_USER_PREFIX)
                .collect();
            if members.is_empty() {
                return Ok(Vec::new());
            }
            members
        }
        ChatId::Group(_) => vec![entry.user.clone()],
    };
    for user in waiting_for {
        let first = front
            .rooms
            .invited
            .lock()
            .expect("invited lock")
            .insert(format!("{user} {room}"));
        if first {
            invite(front, &user, entry.network, room).await;
        }
    }
    Err(Failure::transient(
        "waiting for the XMPP user to join the group chat",
    ))
}

/// A direct invitation (XEP-0249) to a room, from the network's gateway.
async fn invite(front: &XmppFront, user: &str, network: NetworkId, room: &BareJid) {
    let Some(to) = super::front::jid_of(user) else {
        return;
    };
    let mut message = xmpp_parsers::message::Message::normal(Some(to.into()));
    message.from = Some(front.gateway(network));
    message.id = Some(xmpp_parsers::message::Id(uuid_like()));
    let text = format!(
        "You are invited to a {} group chat: join {room}",
        network.display_name()
    );
    message.bodies.insert(
        xmpp_parsers::message::Lang::new(),
        xml_text(&text).into_owned(),
    );
    message.payloads.push(
        Element::builder("x", CONFERENCE_NS)
            .attr(
                xmpp_parsers::minidom::rxml::xml_ncname!("jid").into(),
                room.to_string(),
            )
            .build(),
    );
    front.send(message).await;
}

/// Shows every occupant what a user wrote in a room, once the network accepted it.
pub(crate) async fn reflect(front: &XmppFront, request: &Request) {
    let Ok(room) = request.to.parse::<BareJid>() else {
        return;
    };
    let Some(nick) = front.legacy_id_of(&request.user, request.network) else {
        return;
    };
    let text = FormattedText {
        plain: request.plain.clone(),
        html: request.html.clone(),
    };
    let id = request.id.clone().unwrap_or_else(uuid_like);
    for (jid, _) in audience(front, &room, &request.chat, &request.user) {
        if let Ok(m) = muc::groupchat(&room, Some(&nick), Jid::from(jid), &id, request.kind, &text)
        {
            front.send(m).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(ids: &[&str]) -> Vec<Contact> {
        ids.iter()
            .map(|id| Contact {
                id: (*id).to_owned(),
                display_name: None,
                groups: Vec::new(),
            })
            .collect()
    }

    fn ids(list: &[Contact]) -> Vec<&str> {
        list.iter().map(|c| c.id.as_str()).collect()
    }

    /// Two logins in a room each leave themselves out of their list: the union holds
    /// both, and someone leaves only when no login sees them.
    #[test]
    fn occupants_are_the_union_of_the_logins_lists() {
        let rooms = Rooms::default();
        let room = "lobby%mig33@rooms.example.org";
        let (joined, left) = rooms.update(room, "xmpp:a@x", Some(&people(&["carol", "dave"])));
        assert_eq!((ids(&joined), ids(&left)), (vec!["carol", "dave"], vec![]));
        let (joined, left) = rooms.update(room, "xmpp:d@x", Some(&people(&["alice", "carol"])));
        assert_eq!((ids(&joined), ids(&left)), (vec!["alice"], vec![]));
        // carol leaves as one login sees it; the other still lists her until told.
        let (_, left) = rooms.update(room, "xmpp:a@x", Some(&people(&["dave"])));
        assert!(left.is_empty());
        let (_, left) = rooms.update(room, "xmpp:d@x", Some(&people(&["alice"])));
        assert_eq!(ids(&left), vec!["carol"]);
        // A login leaving the room takes away what only it saw.
        let (_, left) = rooms.update(room, "xmpp:a@x", None);
        assert_eq!(ids(&left), vec!["dave"]);
        assert_eq!(ids(&rooms.members(room)), vec!["alice"]);
        // The last one leaving forgets the room, its history too.
        rooms.remember(
            room,
            Line {
                nick: "alice".into(),
                kind: crate::core::MessageKind::Text,
                text: FormattedText::plain("hi".to_owned()),
                at_ms: 1,
            },
        );
        let (_, left) = rooms.update(room, "xmpp:d@x", None);
        assert_eq!(ids(&left), vec!["alice"]);
        assert!(rooms.members.lock().unwrap().is_empty());
        assert!(rooms.recent(room, 5).is_empty());
    }

    #[test]
    fn history_keeps_the_last_lines_in_order() {
        let rooms = Rooms::default();
        let line = |n: usize| Line {
            nick: "carol".into(),
            kind: crate::core::MessageKind::Text,
            text: FormattedText::plain(format!("m{n}")),
            at_ms: n as u64,
        };
        for n in 0..HISTORY_LINES + 5 {
            rooms.remember("r", line(n));
        }
        let all = rooms.recent("r", usize::MAX);
        assert_eq!(all.len(), HISTORY_LINES);
        assert_eq!(all[0].text.plain, "m5");
        let last = rooms.recent("r", 2);
        let texts: Vec<&str> = last.iter().map(|l| l.text.plain.as_str()).collect();
        assert_eq!(texts, ["m23", "m24"]);
        assert!(rooms.recent("r", 0).is_empty());
        assert!(rooms.recent("other", 5).is_empty());
    }
}
