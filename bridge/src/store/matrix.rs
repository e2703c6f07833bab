//! The Matrix front's trees: appservice transactions and the inbox of their events,
//! management rooms, ghosts, portals, and the room memberships the bridge arranged.
//! (The XMPP front's are in [`super::xmpp`]; the core's in [`super::logins`],
//! [`super::contacts`] and [`super::outbox`].)

use serde::{Deserialize, Serialize};

use super::*;

/// What the bridge last set on a ghost, so it only changes what changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GhostRecord {
    pub registered: bool,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    /// The network and legacy id of a ghost whose user id could not hold the id (too
    /// long for a Matrix user id: see `fronts::matrix::ghost_id`).
    #[serde(default)]
    pub legacy: Option<(NetworkId, String)>,
}

/// A Matrix room standing for one legacy conversation of one login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortalRecord {
    pub mxid: String,
    pub network: NetworkId,
    pub chat: ChatId,
    pub room_id: String,
}

/// The management room of a Matrix user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagementRoom {
    pub mxid: String,
    pub room_id: String,
}

/// An event of an appservice transaction, as the endpoint hands it to the store.
pub struct IncomingEvent<'a> {
    /// Persistent events have one; ephemeral ones (typing) do not.
    pub event_id: Option<&'a str>,
    pub bytes: &'a [u8],
}

/// What became of an appservice transaction.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The same transaction (same id and content) was accepted before: do nothing.
    Repeat,
    /// Recorded; the inbox ids of the events that are new (events seen before, in an
    /// earlier transaction, are left out), with their index in the transaction.
    New(Vec<(u64, usize)>),
}

impl Store {
    // --- appservice transactions -------------------------------------------------------

    /// Records a transaction and the events of it that need handling. A transaction is a
    /// repeat only when both its id and its content digest match one accepted before:
    /// homeservers restart their transaction ids (Synapse does after its own restart),
    /// so an id alone proves nothing. Events whose event id was recorded before are left
    /// out. Call [`Store::flush`] before acknowledging.
    ///
    /// Plain writes, not a sled transaction: each sled transaction writes two extra log
    /// buffers (and wakes sled's I/O pool twice), the largest cost of a Matrix -> legacy
    /// message. They are ordered so that any prefix of them, which is what a crash
    /// leaves, is safe: each event's inbox entry before its event-id record (a record
    /// never hides an event that is not in the inbox; an entry whose record was lost is
    /// recorded again at start-up by [`Store::claim_pending_events`]), the transaction
    /// last (until it is recorded, the homeserver's retry is handled as new).
    pub fn accept_transaction(
        &self,
        txn_id: &str,
        digest: &[u8],
        events: &[IncomingEvent<'_>],
        now_ms: u64,
    ) -> Result<Accepted> {
        let digest = &self.cipher.keyed_digest(digest)[..];
        if let Some((_, seen)) = self.txns.get(txn_id.as_bytes())? {
            if seen == digest {
                return Ok(Accepted::Repeat);
            }
        }
        let mut accepted = Vec::new();
        for (i, event) in events.iter().enumerate() {
            if let Some(id) = self.inbox_push_new(event.event_id, event.bytes, now_ms)? {
                accepted.push((id, i));
            }
        }
        self.txns.insert(txn_id.as_bytes(), digest, now_ms)?;
        Ok(Accepted::New(accepted))
    }

    /// Adds an event to the inbox unless its event id was recorded (by a transaction or
    /// by a look at the room); `None` when it was. The entry is written before the id's
    /// record (see [`Store::accept_transaction`]), and the record is a compare-and-swap:
    /// when the other path recorded the id in between, the entry is taken back.
    pub fn inbox_push_new(
        &self,
        event_id: Option<&str>,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<Option<u64>> {
        let Some(event_id) = event_id else {
            return self.inbox_push(bytes).map(Some);
        };
        if self.events.contains(event_id.as_bytes())? {
            return Ok(None);
        }
        let id = self.inbox_push(bytes)?;
        if !self.events.insert_new(event_id.as_bytes(), &[], now_ms)? {
            self.inbox_done(id)?;
            return Ok(None);
        }
        Ok(Some(id))
    }

    /// Records the event ids of the events waiting in the inbox (`event_id` reads one
    /// from an entry). Call at start-up, before any transaction is accepted: a crash
    /// between an entry and its record (see [`Store::accept_transaction`]) must not let
    /// the homeserver's retry put the event in the inbox twice. An event found twice
    /// (a crash inside [`Store::inbox_push_new`]'s take-back) keeps its first entry.
    /// Returns how many ids were recorded and how many entries were dropped.
    pub fn claim_pending_events(
        &self,
        event_id: impl Fn(&[u8]) -> Option<String>,
        now_ms: u64,
    ) -> Result<(usize, usize)> {
        let (mut claimed, mut dropped) = (0, 0);
        let mut pending = std::collections::HashSet::new();
        for (entry, bytes) in self.inbox_pending()? {
            let Some(id) = event_id(&bytes) else {
                continue;
            };
            if !pending.insert(id.clone()) {
                self.inbox_done(entry)?;
                dropped += 1;
            } else if self.events.insert_new(id.as_bytes(), &[], now_ms)? {
                claimed += 1;
            }
        }
        Ok((claimed, dropped))
    }

    /// Whether an event id was recorded by an accepted transaction.
    pub fn event_seen(&self, event_id: &str) -> Result<bool> {
        self.events.contains(event_id.as_bytes())
    }

    /// Events accepted but not yet processed (after a crash), oldest first. An entry
    /// that cannot be decrypted is left where it is (and logged), never dropped.
    pub fn inbox_pending(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        self.queue_pending(&self.inbox, INBOX)
    }

    /// Adds an entry to the inbox (sealed), whatever its event; see
    /// [`Store::inbox_push_new`] for events.
    pub fn inbox_push(&self, bytes: &[u8]) -> Result<u64> {
        self.queue_push(&self.inbox, INBOX, bytes)
    }

    pub fn inbox_get(&self, id: u64) -> Result<Option<Vec<u8>>> {
        self.queue_get(&self.inbox, INBOX, id)
    }

    /// An event was handled: it leaves the inbox. Call [`Store::flush_soon`] after.
    pub fn inbox_done(&self, id: u64) -> Result<()> {
        self.inbox.remove(id.to_be_bytes())?;
        Ok(())
    }

    // --- management rooms --------------------------------------------------------------

    pub fn management_room(&self, user: &str) -> Result<Option<ManagementRoom>> {
        get(&self.management, "management", user.as_bytes())
    }

    pub fn management_owner(&self, room_id: &str) -> Result<Option<String>> {
        Ok(self
            .management_by_room
            .get(room_id)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn set_management_room(&self, user: &str, room_id: &str) -> Result<()> {
        if let Some(old) = self.management_room(user)? {
            self.management_by_room.remove(old.room_id.as_bytes())?;
        }
        put(
            &self.management,
            user.as_bytes(),
            &ManagementRoom {
                mxid: user.into(),
                room_id: room_id.into(),
            },
        )?;
        self.management_by_room.insert(room_id, user.as_bytes())?;
        Ok(())
    }

    pub fn forget_management_room(&self, room_id: &str) -> Result<()> {
        if let Some(owner) = self.management_owner(room_id)? {
            self.management.remove(owner.as_bytes())?;
        }
        self.management_by_room.remove(room_id)?;
        Ok(())
    }

    // --- ghosts ------------------------------------------------------------------------

    pub fn ghost(&self, user_id: &str) -> Result<Option<GhostRecord>> {
        get(&self.ghosts, "ghosts", user_id.as_bytes())
    }

    pub fn put_ghost(&self, user_id: &str, ghost: &GhostRecord) -> Result<()> {
        put(&self.ghosts, user_id.as_bytes(), ghost)
    }

    // --- portals -----------------------------------------------------------------------

    pub fn portal(
        &self,
        user: &str,
        network: NetworkId,
        chat: &ChatId,
    ) -> Result<Option<PortalRecord>> {
        get(
            &self.portals,
            "portals",
            &Self::portal_key(user, network, chat),
        )
    }

    pub fn portal_by_room(&self, room_id: &str) -> Result<Option<PortalRecord>> {
        match self.portals_by_room.get(room_id)? {
            Some(k) => get(&self.portals, "portals", &k),
            None => Ok(None),
        }
    }

    pub fn put_portal(&self, portal: &PortalRecord) -> Result<()> {
        let k = Self::portal_key(&portal.mxid, portal.network, &portal.chat);
        put(&self.portals, &k, portal)?;
        self.portals_by_room.insert(portal.room_id.as_bytes(), k)?;
        Ok(())
    }

    pub fn remove_portal(&self, portal: &PortalRecord) -> Result<()> {
        self.portals
            .remove(Self::portal_key(&portal.mxid, portal.network, &portal.chat))?;
        self.portals_by_room.remove(portal.room_id.as_bytes())?;
        Ok(())
    }

    pub fn portals_of(&self, user: &str, network: NetworkId) -> Result<Vec<PortalRecord>> {
        scan(&self.portals, "portals", &prefix(&[user, network.as_str()]))
    }

    // --- spaces --------------------------------------------------------------------------

    /// The space made for the user's logins on `network` (by this or an earlier login).
    pub fn space(&self, user: &str, network: NetworkId) -> Result<Option<String>> {
        Ok(self
            .spaces
            .get(key(&[user, network.as_str()]))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn set_space(&self, user: &str, network: NetworkId, room_id: &str) -> Result<()> {
        self.spaces
            .insert(key(&[user, network.as_str()]), room_id.as_bytes())?;
        Ok(())
    }

    // --- room membership the bridge arranged -------------------------------------------

    /// Whether the bridge made `user` join (a ghost) or invited them (a Matrix user) to
    /// `room` before; then it does not ask the homeserver again.
    pub fn is_member(&self, room: &str, user: &str) -> Result<bool> {
        Ok(self.members.contains_key(key(&[room, user]))?)
    }

    pub fn set_member(&self, room: &str, user: &str, member: bool) -> Result<()> {
        if member {
            self.members.insert(key(&[room, user]), &[])?;
        } else {
            self.members.remove(key(&[room, user]))?;
        }
        Ok(())
    }

    /// Records that `room` was told about `topic`; true the first time (a one-time notice
    /// is due), false after.
    pub fn first_time(&self, room: &str, topic: &str) -> Result<bool> {
        Ok(self.told.insert(key(&[room, topic]), &[])?.is_none())
    }
}
