//! Contacts' pictures: a login says which picture a contact has (a hash, with presence),
//! the core asks for the ones it does not have, once per change, and hands a fetched
//! picture to the user's front (Matrix: the ghost's avatar; XMPP: the contact's vCard
//! photo).
//! The store keeps the last picture of each contact ([`crate::store::Store::avatar`]), so
//! a restart fetches nothing again. What was asked and failed is not asked again until
//! the hash changes or the bridge restarts: a contact whose client never answers costs
//! one attempt per picture, not one per presence change.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Avatar, Bridge, LoginCommand, LoginKey, NetworkId};

/// Contacts whose asked-for hash is remembered at most; past it the memory is cleared
/// (the store still stops fetches of pictures it has).
const ASKED_LIMIT: usize = 10_000;

/// The hash last asked for per contact (in flight, or failed this run).
#[derive(Default)]
pub(crate) struct AskedAvatars(Mutex<HashMap<(NetworkId, String), String>>);

impl AskedAvatars {
    /// Records `hash` as asked for `who`; false when it already was.
    fn ask(&self, network: NetworkId, who: &str, hash: &str) -> bool {
        let mut asked = self.0.lock().expect("asked avatars");
        let key = (network, who.to_owned());
        if asked.get(&key).is_some_and(|h| h == hash) {
            return false;
        }
        if asked.len() >= ASKED_LIMIT {
            asked.clear();
        }
        asked.insert(key, hash.to_owned());
        true
    }
}

impl Bridge {
    /// A login says `who`'s picture is `hash`: fetched through it unless known. A known
    /// one is handed to the fronts again (each sets it only where it is not set yet: a
    /// front that failed to before gets another chance).
    pub(crate) async fn avatar_announced(
        &self,
        login: &LoginKey,
        who: &str,
        hash: &str,
        descriptor: &str,
    ) {
        let network = login.network;
        if !network.capabilities().avatars {
            return;
        }
        let who = network.canonical_id(who);
        match self.store.avatar_hash(network, &who) {
            Ok(Some(stored)) if stored == hash => {
                return self.show_avatar(login, &who, hash).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!("could not read a stored picture: {e}");
                return;
            }
        }
        if !self.asked_avatars.ask(network, &who, hash) {
            return;
        }
        tracing::debug!(%network, contact = %who, "fetching a contact's picture");
        if let Some(handle) = self.login_handle(&login.user, network) {
            let _ = handle.send(LoginCommand::FetchAvatar {
                who,
                hash: hash.to_owned(),
                descriptor: descriptor.to_owned(),
            });
        }
    }

    /// A login fetched `who`'s picture (or could not): stored and shown on every front.
    pub(crate) async fn avatar_fetched(
        &self,
        login: &LoginKey,
        who: &str,
        hash: &str,
        result: Result<Avatar, String>,
    ) {
        let network = login.network;
        let who = network.canonical_id(who);
        let avatar = match result {
            Ok(avatar) if avatar.hash == hash => avatar,
            Ok(_) => return,
            Err(why) => {
                tracing::info!(%network, contact = %who, "no picture of the contact: {why}");
                return;
            }
        };
        // On disk before anyone sees it: a crash after that must not fetch it again.
        let stored = self.store.put_avatar(network, &who, &avatar);
        if let Err(e) = match stored {
            Ok(()) => self.store.flush().await,
            Err(e) => Err(e),
        } {
            tracing::error!("could not store a contact's picture: {e}");
            return;
        }
        self.show_avatar(login, &who, &avatar.hash).await;
    }

    /// On the front of the login's user (another front's users get it when their own
    /// login announces the picture: the store answers then, no fetch).
    async fn show_avatar(&self, login: &LoginKey, who: &str, hash: &str) {
        if let Some(front) = self.front_for(&login.user) {
            front.contact_avatar(login, who, hash).await;
        }
    }
}
