//! What the legacy side told each login: contact lists and groups, the shared chatrooms
//! it is in, who was suggested ("added you"), the authorization requests not answered
//! yet, the legacy message ids seen (re-deliveries).

use super::*;

impl Store {
    // --- contact lists -----------------------------------------------------------------

    /// Replaces the stored contact list of a login; returns the contacts that were not
    /// there before.
    pub fn replace_buddies(
        &self,
        user: &str,
        network: NetworkId,
        contacts: &[Contact],
    ) -> Result<Vec<Contact>> {
        let pre = prefix(&[user, network.as_str()]);
        let old: Vec<Contact> = scan(&self.buddies, "buddies", &pre)?;
        let mut batch = sled::Batch::default();
        for c in &old {
            if !contacts.iter().any(|n| n.id == c.id) {
                batch.remove(key(&[user, network.as_str(), &c.id]));
            }
        }
        for c in contacts {
            batch.insert(key(&[user, network.as_str(), &c.id]), encode(c));
        }
        self.buddies.apply_batch(batch)?;
        Ok(contacts
            .iter()
            .filter(|c| !old.iter().any(|o| o.id == c.id))
            .cloned()
            .collect())
    }

    pub fn put_buddy(&self, user: &str, network: NetworkId, contact: &Contact) -> Result<()> {
        put(
            &self.buddies,
            &key(&[user, network.as_str(), &contact.id]),
            contact,
        )
    }

    pub fn buddies(&self, user: &str, network: NetworkId) -> Result<Vec<Contact>> {
        scan(&self.buddies, "buddies", &prefix(&[user, network.as_str()]))
    }

    pub fn replace_groups(&self, user: &str, network: NetworkId, groups: &[Group]) -> Result<()> {
        let pre = prefix(&[user, network.as_str()]);
        let mut batch = sled::Batch::default();
        for kv in self.groups.scan_prefix(&pre) {
            batch.remove(kv?.0);
        }
        for g in groups {
            batch.insert(key(&[user, network.as_str(), &g.id]), encode(g));
        }
        self.groups.apply_batch(batch)?;
        Ok(())
    }

    pub fn groups(&self, user: &str, network: NetworkId) -> Result<Vec<Group>> {
        scan(&self.groups, "groups", &prefix(&[user, network.as_str()]))
    }

    // --- shared chatrooms ----------------------------------------------------------------

    /// Records that a user's login is in a network chatroom (rejoined after restarts).
    pub fn add_chatroom_member(&self, user: &str, network: NetworkId, room: &str) -> Result<()> {
        self.chatrooms
            .insert(key(&["u", user, network.as_str(), room]), &[])?;
        self.chatrooms
            .insert(key(&["r", network.as_str(), room, user]), &[])?;
        Ok(())
    }

    pub fn remove_chatroom_member(&self, user: &str, network: NetworkId, room: &str) -> Result<()> {
        self.chatrooms
            .remove(key(&["u", user, network.as_str(), room]))?;
        self.chatrooms
            .remove(key(&["r", network.as_str(), room, user]))?;
        Ok(())
    }

    /// The chatrooms a user's login is in.
    pub fn chatrooms_of(&self, user: &str, network: NetworkId) -> Result<Vec<String>> {
        self.last_key_parts(&prefix(&["u", user, network.as_str()]))
    }

    /// The bridged users in a chatroom, sorted.
    pub fn chatroom_members(&self, network: NetworkId, room: &str) -> Result<Vec<String>> {
        self.last_key_parts(&prefix(&["r", network.as_str(), room]))
    }

    fn last_key_parts(&self, pre: &[u8]) -> Result<Vec<String>> {
        self.chatrooms
            .scan_prefix(pre)
            .map(|kv| Ok(String::from_utf8_lossy(&kv?.0[pre.len()..]).into_owned()))
            .collect()
    }

    /// Records that the user was told `who` added them on `network`; true the first time.
    pub fn first_suggestion(&self, user: &str, network: NetworkId, who: &str) -> Result<bool> {
        let k = key(&[user, network.as_str(), who]);
        Ok(self.suggested.insert(k, &[])?.is_none())
    }

    /// Forgets who was suggested to a login (it logged out: the next login on that
    /// network may be another account).
    pub fn forget_suggestions(&self, user: &str, network: NetworkId) -> Result<()> {
        for kv in self
            .suggested
            .scan_prefix(prefix(&[user, network.as_str()]))
        {
            self.suggested.remove(kv?.0)?;
        }
        Ok(())
    }

    // --- authorization requests ---------------------------------------------------------

    /// Keeps an authorization request until the user answers it; a repeated one
    /// replaces the earlier (and stays where it was in the order). At most
    /// [`MAX_AUTH_REQUESTS`] per login: beyond, the oldest is dropped, so strangers
    /// asking by the thousand cannot grow the store. True when it is new.
    pub fn add_auth_request(
        &self,
        user: &str,
        network: NetworkId,
        request: &AuthorizationRequest,
    ) -> Result<bool> {
        let k = key(&[user, network.as_str(), &request.who]);
        let before: Option<PendingAuth> = get(&self.auth_requests, "auth_requests", &k)?;
        let order = match &before {
            Some(old) => old.order,
            None => self.next_id()?,
        };
        let record = PendingAuth {
            order,
            request: request.clone(),
        };
        put(&self.auth_requests, &k, &record)?;
        if before.is_none() {
            let pre = prefix(&[user, network.as_str()]);
            let mut all: Vec<(sled::IVec, u64)> = Vec::new();
            for kv in self.auth_requests.scan_prefix(&pre) {
                let (k, v) = kv?;
                let p: PendingAuth = decode("auth_requests", &v)?;
                all.push((k, p.order));
            }
            if all.len() > MAX_AUTH_REQUESTS {
                all.sort_by_key(|(_, order)| *order);
                for (k, _) in &all[..all.len() - MAX_AUTH_REQUESTS] {
                    self.auth_requests.remove(k)?;
                }
            }
        }
        Ok(before.is_none())
    }

    /// The authorization requests a login's user has not answered, oldest first.
    pub fn auth_requests(
        &self,
        user: &str,
        network: NetworkId,
    ) -> Result<Vec<AuthorizationRequest>> {
        let mut all: Vec<PendingAuth> = scan(
            &self.auth_requests,
            "auth_requests",
            &prefix(&[user, network.as_str()]),
        )?;
        all.sort_by_key(|p| p.order);
        Ok(all.into_iter().map(|p| p.request).collect())
    }

    /// The pending request from `who`, if any.
    pub fn auth_request(
        &self,
        user: &str,
        network: NetworkId,
        who: &str,
    ) -> Result<Option<AuthorizationRequest>> {
        let k = key(&[user, network.as_str(), who]);
        let found: Option<PendingAuth> = get(&self.auth_requests, "auth_requests", &k)?;
        Ok(found.map(|p| p.request))
    }

    /// Forgets the request from `who` (answered); true if there was one.
    pub fn remove_auth_request(&self, user: &str, network: NetworkId, who: &str) -> Result<bool> {
        let k = key(&[user, network.as_str(), who]);
        Ok(self.auth_requests.remove(k)?.is_some())
    }

    /// Forgets every pending request of a login (it logged out).
    pub fn forget_auth_requests(&self, user: &str, network: NetworkId) -> Result<()> {
        for kv in self
            .auth_requests
            .scan_prefix(prefix(&[user, network.as_str()]))
        {
            self.auth_requests.remove(kv?.0)?;
        }
        Ok(())
    }

    // --- legacy message ids ------------------------------------------------------------

    /// Records a legacy message id; false if it was recorded before (a re-delivery).
    pub fn record_legacy_message(&self, user: &str, network: NetworkId, id: &str) -> Result<bool> {
        let k = key(&[user, network.as_str(), id]);
        Ok(self
            .message_ids
            .compare_and_swap(k, None as Option<&[u8]>, Some(&[] as &[u8]))?
            .is_ok())
    }

    /// Messages bridged with `ack_key` whose acknowledgement may not have reached the
    /// server yet (see `NetworkEvent::Message::ack_key`): how many.
    pub fn unacknowledged(&self, user: &str, network: NetworkId, ack_key: &str) -> Result<u32> {
        let k = key(&[user, network.as_str(), UNACKED, ack_key]);
        Ok(self.message_ids.get(k)?.map_or(0, |v| count_of(&v)))
    }

    /// One more message with `ack_key` bridged, its acknowledgement not sent yet.
    pub fn add_unacknowledged(&self, user: &str, network: NetworkId, ack_key: &str) -> Result<()> {
        let k = key(&[user, network.as_str(), UNACKED, ack_key]);
        self.message_ids.update_and_fetch(k, |old| {
            Some(
                old.map_or(1, |v| count_of(v).saturating_add(1))
                    .to_be_bytes()
                    .to_vec(),
            )
        })?;
        Ok(())
    }

    /// The acknowledgement of one message with `ack_key` went out.
    pub fn acknowledged(&self, user: &str, network: NetworkId, ack_key: &str) -> Result<()> {
        let k = key(&[user, network.as_str(), UNACKED, ack_key]);
        self.message_ids.update_and_fetch(k, |old| {
            let n = old.map_or(0, count_of).saturating_sub(1);
            (n > 0).then(|| n.to_be_bytes().to_vec())
        })?;
        Ok(())
    }

    /// Everything of one Matrix user's login on one network (after logout).
    pub fn forget_login_data(&self, user: &str, network: NetworkId) -> Result<()> {
        let pre = prefix(&[user, network.as_str()]);
        for tree in [&self.buddies, &self.groups, &self.message_ids] {
            for kv in tree.scan_prefix(&pre) {
                tree.remove(kv?.0)?;
            }
        }
        Ok(())
    }
}

/// Where the unacknowledged counts sit among the legacy message ids (no network id
/// starts with a control character).
const UNACKED: &str = "\u{1}unacked";

fn count_of(bytes: &[u8]) -> u32 {
    bytes.try_into().map_or(0, u32::from_be_bytes)
}

/// The most authorization requests kept per login.
pub const MAX_AUTH_REQUESTS: usize = 100;

/// A stored authorization request and its place in the order of arrival.
#[derive(Debug, Serialize, Deserialize)]
struct PendingAuth {
    order: u64,
    request: AuthorizationRequest,
}

#[cfg(test)]
mod auth_tests {
    use super::*;

    fn request(who: &str, reason: &str) -> AuthorizationRequest {
        AuthorizationRequest {
            who: who.into(),
            nick: Some(format!("nick {who}")),
            reason: Some(reason.into()),
        }
    }

    /// Bounded per login (the oldest go), kept across a reopen, answered one by one,
    /// and a repeat replaces the earlier without a second place in the list.
    #[test]
    fn pending_requests_are_bounded_and_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let (user, net) = ("@a:x", NetworkId::Icq);
        for i in 0..MAX_AUTH_REQUESTS + 5 {
            assert!(store
                .add_auth_request(user, net, &request(&i.to_string(), "hi"))
                .unwrap());
        }
        assert!(!store
            .add_auth_request(user, net, &request("50", "again"))
            .unwrap());
        // Another login is apart.
        store
            .add_auth_request(user, NetworkId::Msn, &request("m", "hi"))
            .unwrap();
        store.db.flush().unwrap();
        drop(store);
        let store = Store::open_in(dir.path()).unwrap();
        let pending = store.auth_requests(user, net).unwrap();
        assert_eq!(pending.len(), MAX_AUTH_REQUESTS);
        assert_eq!(pending[0].who, "5", "the five oldest were dropped");
        assert_eq!(pending[45].who, "50");
        assert_eq!(pending[45].reason.as_deref(), Some("again"));
        assert_eq!(store.auth_request(user, net, "0").unwrap(), None);
        assert!(store.remove_auth_request(user, net, "7").unwrap());
        assert!(!store.remove_auth_request(user, net, "7").unwrap());
        store.forget_auth_requests(user, net).unwrap();
        assert!(store.auth_requests(user, net).unwrap().is_empty());
        assert_eq!(store.auth_requests(user, NetworkId::Msn).unwrap().len(), 1);
    }
}
