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
    /// The Matrix space gathering this login's contacts, once created.
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
