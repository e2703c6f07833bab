//! The XMPP front's state: what its users sent and is not handled yet (the inbox, sealed
//! like the Matrix one), the presence subscriptions the gateway offered them, and the
//! occupants of its group chats (the full JIDs joined to each room, which outlive a
//! restart of the bridge: the clients still think they are in).

use serde::{Deserialize, Serialize};

use super::{get, key, prefix, put, Result, Store, XMPP_INBOX};
use crate::model::{ChatId, NetworkId};

/// Where the gateway and a user stand on one contact's presence subscription (the
/// gateway itself is the contact `""`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// The bridge asked the user to add it (a `subscribe` from the contact): not asked
    /// again at every connection.
    pub offered: bool,
    /// The user removed it from their roster: not offered again until the legacy
    /// contact list adds it anew.
    pub removed: bool,
}

/// One XMPP resource in one of the gateway's rooms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occupant {
    /// The front-qualified user (`xmpp:<bare JID>`).
    pub user: String,
    pub nick: String,
    pub network: NetworkId,
    pub chat: ChatId,
}

impl Store {
    // --- inbox ---------------------------------------------------------------------------

    /// Records what an XMPP user sent before it is handled; the id orders it.
    pub fn xmpp_inbox_push(&self, bytes: &[u8]) -> Result<u64> {
        self.queue_push(&self.xmpp_inbox, XMPP_INBOX, bytes)
    }

    /// What was recorded and not handled (after a stop), oldest first.
    pub fn xmpp_inbox_pending(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        self.queue_pending(&self.xmpp_inbox, XMPP_INBOX)
    }

    pub fn xmpp_inbox_get(&self, id: u64) -> Result<Option<Vec<u8>>> {
        self.queue_get(&self.xmpp_inbox, XMPP_INBOX, id)
    }

    /// Handled: it leaves the inbox. Call [`Store::flush_soon`] after.
    pub fn xmpp_inbox_done(&self, id: u64) -> Result<()> {
        self.xmpp_inbox.remove(id.to_be_bytes())?;
        Ok(())
    }

    // --- presence subscriptions ------------------------------------------------------------

    pub fn xmpp_subscription(
        &self,
        user: &str,
        network: NetworkId,
        contact: &str,
    ) -> Result<Subscription> {
        Ok(get(
            &self.xmpp_subscriptions,
            "xmpp_subscriptions",
            &key(&[user, network.as_str(), contact]),
        )?
        .unwrap_or_default())
    }

    pub fn set_xmpp_subscription(
        &self,
        user: &str,
        network: NetworkId,
        contact: &str,
        subscription: &Subscription,
    ) -> Result<()> {
        put(
            &self.xmpp_subscriptions,
            &key(&[user, network.as_str(), contact]),
            subscription,
        )
    }

    /// Forgets a user's subscriptions on a network (they unregistered).
    pub fn clear_xmpp_subscriptions(&self, user: &str, network: NetworkId) -> Result<()> {
        for kv in self
            .xmpp_subscriptions
            .scan_prefix(prefix(&[user, network.as_str()]))
        {
            self.xmpp_subscriptions.remove(kv?.0)?;
        }
        Ok(())
    }

    // --- room occupants ----------------------------------------------------------------

    pub fn put_xmpp_occupant(&self, room: &str, full_jid: &str, occupant: &Occupant) -> Result<()> {
        put(&self.xmpp_occupants, &key(&[room, full_jid]), occupant)
    }

    pub fn remove_xmpp_occupant(&self, room: &str, full_jid: &str) -> Result<()> {
        self.xmpp_occupants.remove(key(&[room, full_jid]))?;
        Ok(())
    }

    /// A room's occupants: (full JID, occupant), by JID.
    pub fn xmpp_occupants(&self, room: &str) -> Result<Vec<(String, Occupant)>> {
        let pre = prefix(&[room]);
        self.xmpp_occupants
            .scan_prefix(&pre)
            .map(|kv| {
                let (k, v) = kv?;
                let jid = String::from_utf8_lossy(&k[pre.len()..]).into_owned();
                Ok((jid, super::decode("xmpp_occupants", &v)?))
            })
            .collect()
    }

    /// Every room's occupants: (room, full JID, occupant).
    pub fn xmpp_all_occupants(&self) -> Result<Vec<(String, String, Occupant)>> {
        self.xmpp_occupants
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let k = String::from_utf8_lossy(&k).into_owned();
                let (room, jid) = k.split_once('\0').unwrap_or((&k, ""));
                Ok((
                    room.to_owned(),
                    jid.to_owned(),
                    super::decode("xmpp_occupants", &v)?,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xmpp_state_survives_a_reopen_and_the_inbox_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let user = "xmpp:alice@example.org";
        let occupant = Occupant {
            user: user.into(),
            nick: "alice".into(),
            network: NetworkId::Mig33,
            chat: ChatId::Room("lobby".into()),
        };
        let room = "lobby%mig33@rooms.example.org";
        let id;
        {
            let store = Store::open_in(dir.path()).unwrap();
            id = store.xmpp_inbox_push(b"login icq 1234 sesame").unwrap();
            store
                .set_xmpp_subscription(
                    user,
                    NetworkId::Icq,
                    "1234",
                    &Subscription {
                        offered: true,
                        removed: false,
                    },
                )
                .unwrap();
            store
                .put_xmpp_occupant(room, "alice@example.org/phone", &occupant)
                .unwrap();
            store.db.flush().unwrap();
        }
        let raw = std::fs::read_dir(dir.path().join("db"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .any(|e| {
                std::fs::read(e.path())
                    .unwrap()
                    .windows(6)
                    .any(|w| w == b"sesame")
            });
        assert!(!raw, "the inbox entry is sealed on disk");
        let store = Store::open_in(dir.path()).unwrap();
        assert_eq!(
            store.xmpp_inbox_pending().unwrap(),
            vec![(id, b"login icq 1234 sesame".to_vec())]
        );
        store.xmpp_inbox_done(id).unwrap();
        assert!(store.xmpp_inbox_pending().unwrap().is_empty());
        assert!(
            store
                .xmpp_subscription(user, NetworkId::Icq, "1234")
                .unwrap()
                .offered
        );
        assert_eq!(
            store.xmpp_subscription(user, NetworkId::Icq, "99").unwrap(),
            Subscription::default()
        );
        assert_eq!(
            store.xmpp_occupants(room).unwrap(),
            vec![("alice@example.org/phone".to_owned(), occupant.clone())]
        );
        assert_eq!(
            store.xmpp_all_occupants().unwrap(),
            vec![(
                room.to_owned(),
                "alice@example.org/phone".to_owned(),
                occupant
            )]
        );
        store
            .remove_xmpp_occupant(room, "alice@example.org/phone")
            .unwrap();
        assert!(store.xmpp_occupants(room).unwrap().is_empty());
        store
            .clear_xmpp_subscriptions(user, NetworkId::Icq)
            .unwrap();
        assert!(
            !store
                .xmpp_subscription(user, NetworkId::Icq, "1234")
                .unwrap()
                .offered
        );
    }
}
