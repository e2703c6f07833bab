//! The logins users asked for: kept so they reconnect after a restart.

use serde::{Deserialize, Serialize};

use super::*;

/// A login the user asked for; kept so it reconnects after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginRecord {
    /// The user (front-qualified; kept under its first name in stored records).
    #[serde(rename = "mxid")]
    pub user: String,
    pub network: NetworkId,
    pub legacy_id: String,
    /// Needed to log in again after a restart (the legacy networks have no tokens).
    pub password: String,
    /// The Matrix space this login uses, once it has one (the user's space per network
    /// outlives the login: `Store::space`).
    #[serde(default)]
    pub space_room: Option<String>,
    /// Why the network stopped this login without refusing it (signed in from another
    /// location). Such a login is kept for `reconnect` but not resumed at start-up.
    #[serde(default)]
    pub stopped: Option<String>,
    /// The network accepted these credentials at least once. Records written before
    /// this field existed were resumed logins, so they count as proven.
    #[serde(default = "proven_by_default")]
    pub proven: bool,
    /// The status the user last set with `status` (none: online), shown again when the
    /// login resumes.
    #[serde(default)]
    pub presence: Option<crate::model::PresenceState>,
}

fn proven_by_default() -> bool {
    true
}

impl Store {
    // --- logins --------------------------------------------------------------------------

    // Login records are sealed whole (the password, and which legacy account it is).

    pub fn put_login(&self, login: &LoginRecord) -> Result<()> {
        let k = key(&[&login.user, login.network.as_str()]);
        self.logins
            .insert(&k, self.seal(LOGINS, &k, &encode(login))?)?;
        Ok(())
    }

    pub fn login(&self, user: &str, network: NetworkId) -> Result<Option<LoginRecord>> {
        let k = key(&[user, network.as_str()]);
        match self.logins.get(&k)? {
            Some(sealed) => Ok(Some(decode(LOGINS, &self.unseal(LOGINS, &k, &sealed)?)?)),
            None => Ok(None),
        }
    }

    /// Changes a stored login in place (nothing when there is none), safe against
    /// another change at the same time: each part of the bridge that writes one field
    /// (the space, the status, proven, stopped) keeps the others' writes.
    pub fn update_login(
        &self,
        user: &str,
        network: NetworkId,
        change: impl Fn(&mut LoginRecord),
    ) -> Result<Option<LoginRecord>> {
        let k = key(&[user, network.as_str()]);
        loop {
            let Some(old) = self.logins.get(&k)? else {
                return Ok(None);
            };
            let mut record: LoginRecord = decode(LOGINS, &self.unseal(LOGINS, &k, &old)?)?;
            change(&mut record);
            let new = self.seal(LOGINS, &k, &encode(&record))?;
            if self
                .logins
                .compare_and_swap(&k, Some(&old), Some(new))?
                .is_ok()
            {
                return Ok(Some(record));
            }
        }
    }

    pub fn remove_login(&self, user: &str, network: NetworkId) -> Result<()> {
        self.logins.remove(key(&[user, network.as_str()]))?;
        Ok(())
    }

    pub fn logins(&self) -> Result<Vec<LoginRecord>> {
        self.scan_logins(&[])
    }

    pub fn logins_of(&self, user: &str) -> Result<Vec<LoginRecord>> {
        self.scan_logins(&prefix(&[user]))
    }

    fn scan_logins(&self, pre: &[u8]) -> Result<Vec<LoginRecord>> {
        self.logins
            .scan_prefix(pre)
            .map(|kv| {
                let (k, sealed) = kv?;
                decode(LOGINS, &self.unseal(LOGINS, &k, &sealed)?)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::secrets_tests::login;
    use super::*;
    use crate::model::PresenceState;

    /// Each writer changes its field and keeps the others'; a removed login stays
    /// removed; the space outlives the login.
    #[test]
    fn updates_keep_the_other_fields_and_the_space_outlives_the_login() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        store
            .put_login(&login("@a:x", NetworkId::Mig33, "alice", "pw"))
            .unwrap();
        store
            .update_login("@a:x", NetworkId::Mig33, |r| {
                r.presence = Some(PresenceState::Away)
            })
            .unwrap();
        let r = store
            .update_login("@a:x", NetworkId::Mig33, |r| {
                r.space_room = Some("!s:x".into())
            })
            .unwrap()
            .unwrap();
        assert_eq!(r.presence, Some(PresenceState::Away));
        assert_eq!(store.login("@a:x", NetworkId::Mig33).unwrap(), Some(r));

        store.set_space("@a:x", NetworkId::Mig33, "!s:x").unwrap();
        store.remove_login("@a:x", NetworkId::Mig33).unwrap();
        let none = store
            .update_login("@a:x", NetworkId::Mig33, |r| r.proven = false)
            .unwrap();
        assert_eq!(none, None);
        assert_eq!(store.login("@a:x", NetworkId::Mig33).unwrap(), None);
        assert_eq!(
            store.space("@a:x", NetworkId::Mig33).unwrap().as_deref(),
            Some("!s:x")
        );
    }
}
