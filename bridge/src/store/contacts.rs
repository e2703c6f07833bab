//! What the legacy side told each login: contact lists and groups, the shared chatrooms
//! it is in, who was suggested ("added you"), the legacy message ids seen (re-deliveries).

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
