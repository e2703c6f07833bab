//! The user's own picture, kept per login this run and given to every login the core
//! starts (a new login after a logout, a login resumed after a reconnect of its own
//! keeps it anyway); the fronts say what it is ([`Bridge::set_own_avatar`]).
//!
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

/// The user's own picture per login, as a front last said it (`None`: no picture).
#[derive(Default)]
pub(crate) struct OwnAvatars(Mutex<HashMap<LoginKey, Option<Avatar>>>);

impl Bridge {
    /// The user's own picture on `network` (networks whose capabilities say `avatars`):
    /// kept, and given to the running login and to every login started later.
    pub fn set_own_avatar(&self, user: &str, network: NetworkId, avatar: Option<Avatar>) {
        if !network.capabilities().avatars {
            return;
        }
        let key = LoginKey {
            user: user.to_owned(),
            network,
        };
        self.own_avatars
            .0
            .lock()
            .expect("own avatars")
            .insert(key, avatar.clone());
        if let Some(handle) = self.login_handle(user, network) {
            let _ = handle.send(LoginCommand::SetAvatar { avatar });
        }
    }

    /// Whether a front said this run what the user's picture on `network` is (the
    /// hash, empty for none).
    pub fn own_avatar_hash(&self, user: &str, network: NetworkId) -> Option<String> {
        let key = LoginKey {
            user: user.to_owned(),
            network,
        };
        let own = self.own_avatars.0.lock().expect("own avatars");
        own.get(&key)
            .map(|a| a.as_ref().map(|a| a.hash.clone()).unwrap_or_default())
    }

    /// The picture a login starting now is given, if a front said one.
    pub(crate) fn own_avatar_for(&self, key: &LoginKey) -> Option<Avatar> {
        let own = self.own_avatars.0.lock().expect("own avatars");
        own.get(key).cloned().flatten()
    }

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::{EventSink, LoginCredentials, LoginHandle, Network, PresenceState};

    /// A network whose logins hand their command channels to the test.
    struct Recording(Mutex<Vec<crate::core::CommandReceiver>>);

    impl Network for Recording {
        fn id(&self) -> NetworkId {
            NetworkId::Msn
        }

        fn start(&self, _: LoginCredentials, _: EventSink) -> LoginHandle {
            let (handle, commands) = LoginHandle::channel();
            self.0.lock().unwrap().push(commands);
            handle
        }
    }

    async fn given(commands: &mut crate::core::CommandReceiver) -> Option<Avatar> {
        match tokio::time::timeout(std::time::Duration::from_secs(5), commands.recv()).await {
            Ok(Some(LoginCommand::SetAvatar { avatar })) => avatar,
            other => panic!("no picture given: {other:?}"),
        }
    }

    /// The user's picture reaches the running login, and a login started later (after
    /// a logout and a new login) gets it too, without the front saying it again.
    #[tokio::test]
    async fn every_login_started_gets_the_users_picture() {
        let dir = tempfile::tempdir().unwrap();
        let bridge =
            crate::core::test_bridge(dir.path(), "{msn: {enabled: true, server: '127.0.0.1:9'}}");
        let network = Arc::new(Recording(Mutex::default()));
        let as_network: Arc<dyn Network> = network.clone();
        let credentials = || LoginCredentials {
            id: "me@example.com".into(),
            password: "pw".into(),
            contacts: Vec::new(),
            proven: true,
            presence: PresenceState::Online,
        };
        let user = "@alice:localhost";
        bridge.start_login(user, &as_network, credentials());
        assert_eq!(bridge.own_avatar_hash(user, NetworkId::Msn), None);
        let png = [&[0x89, b'P', b'N', b'G', 13, 10, 26, 10][..], &[1; 50]].concat();
        let avatar = Avatar::new("mxc://h/me", png).unwrap();
        bridge.set_own_avatar(user, NetworkId::Msn, Some(avatar.clone()));
        assert_eq!(
            bridge.own_avatar_hash(user, NetworkId::Msn).as_deref(),
            Some("mxc://h/me")
        );
        let mut first = network.0.lock().unwrap().remove(0);
        assert_eq!(given(&mut first).await, Some(avatar.clone()));
        bridge.stop_login(user, NetworkId::Msn);
        bridge.start_login(user, &as_network, credentials());
        let mut second = network.0.lock().unwrap().remove(0);
        assert_eq!(given(&mut second).await, Some(avatar));
        // A network without pictures keeps nothing.
        bridge.set_own_avatar(user, NetworkId::Icq, None);
        assert_eq!(bridge.own_avatar_hash(user, NetworkId::Icq), None);
    }
}
