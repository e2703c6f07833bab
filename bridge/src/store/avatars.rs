//! The `avatars` tree: contacts' pictures, one per network and contact (`network \0
//! id`), kept so that a picture is fetched from the legacy network once per change (its
//! hash), survives restarts, and can be served (XMPP vCards) without asking again. The
//! value is `hash \0 mime \0` and the bytes, not JSON: a picture is binary.

use super::{key, Result, Store};
use crate::model::{image_type, Avatar, NetworkId};

impl Store {
    /// A contact's stored picture, if any (and readable).
    pub fn avatar(&self, network: NetworkId, id: &str) -> Result<Option<Avatar>> {
        let Some(value) = self.avatars.get(key(&[network.as_str(), id]))? else {
            return Ok(None);
        };
        let mut parts = value.splitn(3, |&b| b == 0);
        let (Some(hash), Some(_mime), Some(data)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let hash = String::from_utf8_lossy(hash);
        // The type is read from the bytes again: a stored value never names one itself.
        Ok(image_type(data).and_then(|_| Avatar::new(&hash, data.to_vec())))
    }

    /// The hash of a contact's stored picture, without reading its bytes out (asked at
    /// every presence that announces one).
    pub fn avatar_hash(&self, network: NetworkId, id: &str) -> Result<Option<String>> {
        let Some(value) = self.avatars.get(key(&[network.as_str(), id]))? else {
            return Ok(None);
        };
        let hash = value.split(|&b| b == 0).next().unwrap_or_default();
        Ok(Some(String::from_utf8_lossy(hash).into_owned()))
    }

    /// Stores a contact's picture, replacing the one before.
    pub fn put_avatar(&self, network: NetworkId, id: &str, avatar: &Avatar) -> Result<()> {
        let mut value =
            Vec::with_capacity(avatar.hash.len() + avatar.mime.len() + 2 + avatar.data.len());
        value.extend_from_slice(avatar.hash.as_bytes());
        value.push(0);
        value.extend_from_slice(avatar.mime.as_bytes());
        value.push(0);
        value.extend_from_slice(&avatar.data);
        self.avatars.insert(key(&[network.as_str(), id]), value)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let png = [&[0x89, b'P', b'N', b'G', 13, 10, 26, 10][..], &[7; 500]].concat();
        let avatar = Avatar::new("trC8SlFx2sWQxZMIBAWSEnXc8oQ=", png).unwrap();
        {
            let store = Store::open_in(dir.path()).unwrap();
            assert_eq!(
                store.avatar(NetworkId::Msn, "bob@example.com").unwrap(),
                None
            );
            store
                .put_avatar(NetworkId::Msn, "bob@example.com", &avatar)
                .unwrap();
            store.db.flush().unwrap();
        }
        let store = Store::open_in(dir.path()).unwrap();
        assert_eq!(
            store
                .avatar_hash(NetworkId::Msn, "bob@example.com")
                .unwrap()
                .as_deref(),
            Some(avatar.hash.as_str())
        );
        assert_eq!(
            store.avatar(NetworkId::Msn, "bob@example.com").unwrap(),
            Some(avatar)
        );
        assert_eq!(
            store
                .avatar_hash(NetworkId::Msn, "carol@example.com")
                .unwrap(),
            None
        );
        assert_eq!(
            store.avatar(NetworkId::Icq, "bob@example.com").unwrap(),
            None
        );
    }
}
