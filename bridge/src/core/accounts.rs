//! A user's legacy accounts: list, log in, log out, set status. The management room
//! ([`super::commands`]) and the provisioning API (`crate::fronts::matrix::provision`) share this code:
//! it returns structured results, which the one turns into sentences and the other
//! into JSON.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Bridge, LoginCommand, LoginCredentials, LoginHandle, LoginState, NetworkId, Presence,
    PresenceState, RoomListing, SendError,
};
use crate::store::LoginRecord;

/// Why an action on a login was not done. `Display` is the management room's sentence.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionError {
    /// No network was named.
    NoNetwork,
    /// A network name the bridge does not know (as given).
    UnknownNetwork(String),
    /// The network is not enabled or not built in; the sentence says which.
    Unavailable(String),
    AlreadyLoggedIn {
        network: NetworkId,
        id: String,
    },
    /// Credentials refused before asking the server (e.g. an ICQ password too long).
    BadCredentials {
        network: NetworkId,
        why: String,
    },
    NotLoggedIn(NetworkId),
    /// A status for every login, and there is none.
    NoLogins,
    /// The network did not do it; the text says why.
    Network {
        network: NetworkId,
        why: String,
    },
    /// The bridge's database failed (logged where it happened).
    Storage,
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionError::NoNetwork => write!(f, "Which network? ({})", NetworkId::all_names()),
            ActionError::UnknownNetwork(name) => write!(
                f,
                "Unknown network {name:?}. Known networks: {}.",
                NetworkId::all_names()
            ),
            ActionError::Unavailable(why) => f.write_str(why),
            ActionError::AlreadyLoggedIn { network, id } => write!(
                f,
                "You are already logged in to {} as {id}. Use `logout {network}` first \
                 (or `reconnect {network}` to connect that login again).",
                network.display_name()
            ),
            ActionError::BadCredentials { network, why } => {
                write!(f, "Cannot log in to {}: {why}", network.display_name())
            }
            ActionError::NotLoggedIn(network) => write!(
                f,
                "You are not logged in to {}. Use `login {network} <id> <password>`.",
                network.display_name()
            ),
            ActionError::NoLogins => f.write_str("You have no logins."),
            ActionError::Network { network, why } => {
                write!(f, "{}: {why}", network.display_name())
            }
            ActionError::Storage => {
                f.write_str("The bridge could not save your login; try again later.")
            }
        }
    }
}

/// A network named by a user (any case).
pub fn parse_network(name: Option<&str>) -> Result<NetworkId, ActionError> {
    let name = name.ok_or(ActionError::NoNetwork)?;
    NetworkId::parse(&name.to_lowercase()).ok_or_else(|| ActionError::UnknownNetwork(name.into()))
}

/// A status as users write it (`dnd` and `busy` are the same).
pub fn parse_presence(word: &str) -> Option<PresenceState> {
    match word.to_lowercase().as_str() {
        "online" => Some(PresenceState::Online),
        "away" => Some(PresenceState::Away),
        "dnd" | "busy" => Some(PresenceState::Busy),
        "invisible" => Some(PresenceState::Invisible),
        _ => None,
    }
}

/// Where a login stands, running or stored.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginStatus {
    Connecting,
    Connected,
    Disconnected(String),
    /// The network stopped it (signed in from another location); kept for `reconnect`.
    Stopped(String),
    /// Stored but not running (its network was unavailable at start-up).
    NotRunning,
}

impl LoginStatus {
    /// The name the API and the statistics use.
    pub fn name(&self) -> &'static str {
        match self {
            LoginStatus::Connecting => "connecting",
            LoginStatus::Connected => "connected",
            LoginStatus::Disconnected(_) => "disconnected",
            LoginStatus::Stopped(_) => "stopped",
            LoginStatus::NotRunning => "not_running",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            LoginStatus::Disconnected(r) | LoginStatus::Stopped(r) => Some(r),
            _ => None,
        }
    }
}

/// What waits for the homeserver from one login.
#[derive(Debug, Clone, PartialEq)]
pub struct Backlog {
    pub waiting: usize,
    pub oldest: Duration,
    pub error: Option<String>,
}

/// One login of a user, as `list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginInfo {
    pub network: NetworkId,
    pub id: String,
    pub status: LoginStatus,
    pub backlog: Option<Backlog>,
}

/// A user's logins: running ones with their state, and stored ones that are not
/// running, in network order.
pub fn logins(bridge: &Bridge, user: &str) -> Vec<LoginInfo> {
    let running = bridge.logins_of(user);
    let stored = bridge.store.logins_of(user).unwrap_or_else(|e| {
        tracing::error!("could not read logins: {e}");
        Vec::new()
    });
    let mut out = Vec::new();
    for network in NetworkId::ALL {
        let record = stored.iter().find(|r| r.network == network);
        let live = running.iter().find(|(n, _, _)| *n == network);
        // A running task that is connecting or connected wins over a stale stopped mark.
        let active = live.filter(|(_, _, state)| !matches!(state, LoginState::Disconnected(_)));
        let (id, status) = match (live, record) {
            (_, Some(r)) if r.stopped.is_some() && active.is_none() => (
                r.legacy_id.clone(),
                LoginStatus::Stopped(r.stopped.clone().unwrap_or_default()),
            ),
            (Some((_, id, state)), _) => (
                id.clone(),
                match state {
                    LoginState::Connecting => LoginStatus::Connecting,
                    LoginState::Connected => LoginStatus::Connected,
                    LoginState::Disconnected(reason) => LoginStatus::Disconnected(reason.clone()),
                },
            ),
            (None, Some(r)) => (r.legacy_id.clone(), LoginStatus::NotRunning),
            (None, None) => continue,
        };
        let backlog = bridge.outbox.backlog(user, network).map(|b| Backlog {
            waiting: b.waiting,
            oldest: b.oldest,
            error: b.error,
        });
        out.push(LoginInfo {
            network,
            id,
            status,
            backlog,
        });
    }
    out
}

/// Every user's logins (running or stored), by user id.
pub fn all_logins(bridge: &Bridge) -> Vec<(String, Vec<LoginInfo>)> {
    let mut users: Vec<String> = bridge
        .store
        .logins()
        .unwrap_or_else(|e| {
            tracing::error!("could not read logins: {e}");
            Vec::new()
        })
        .into_iter()
        .map(|r| r.user)
        .collect();
    users.extend(
        bridge
            .logins
            .lock()
            .expect("logins lock")
            .keys()
            .map(|k| k.user.clone()),
    );
    users.sort();
    users.dedup();
    users
        .into_iter()
        .map(|user| {
            let logins = logins(bridge, &user);
            (user, logins)
        })
        .filter(|(_, logins)| !logins.is_empty())
        .collect()
}

/// Logs in: stores the login (durably) and starts it. Returns the canonical legacy id;
/// the connection's outcome arrives later, as the login's state.
pub async fn login(
    bridge: &Arc<Bridge>,
    user: &str,
    network: NetworkId,
    id: &str,
    password: &str,
) -> Result<String, ActionError> {
    let implementation = bridge
        .network_available(network)
        .map_err(ActionError::Unavailable)?
        .clone();
    if let Some((_, existing, _)) = bridge
        .logins_of(user)
        .into_iter()
        .find(|(n, _, _)| *n == network)
    {
        return Err(ActionError::AlreadyLoggedIn {
            network,
            id: existing,
        });
    }
    let credentials = LoginCredentials {
        id: network.canonical_id(id),
        password: password.to_owned(),
        contacts: bridge.store.buddies(user, network).unwrap_or_default(),
        proven: false,
        presence: PresenceState::Online,
    };
    if let Err(why) = implementation.check_credentials(&credentials) {
        return Err(ActionError::BadCredentials { network, why });
    }
    let record = LoginRecord {
        user: user.to_owned(),
        network,
        legacy_id: credentials.id.clone(),
        password: credentials.password.clone(),
        space_room: None,
        stopped: None,
        proven: false,
        presence: None,
    };
    let saved = match bridge.store.put_login(&record) {
        Ok(()) => bridge.store.flush().await,
        Err(e) => Err(e),
    };
    if let Err(e) = saved {
        tracing::error!("could not store a login: {e}");
        return Err(ActionError::Storage);
    }
    let id = credentials.id.clone();
    bridge.start_login(user, &implementation, credentials);
    Ok(id)
}

/// Logs out: ends the login and forgets it (durably: a restart must not bring it back).
/// False when there was nothing to log out of.
pub async fn logout(bridge: &Bridge, user: &str, network: NetworkId) -> bool {
    let stopped = bridge.stop_login(user, network);
    bridge.forget_login_notices(&super::LoginKey {
        user: user.to_owned(),
        network,
    });
    let stored = bridge.store.login(user, network).ok().flatten().is_some();
    let removed = match bridge
        .store
        .remove_login(user, network)
        .and_then(|()| bridge.store.forget_suggestions(user, network))
        .and_then(|()| bridge.store.forget_auth_requests(user, network))
    {
        Ok(()) => bridge.store.flush().await,
        Err(e) => Err(e),
    };
    if let Err(e) = removed {
        tracing::error!("could not remove a login: {e}");
    }
    stopped || stored
}

/// The user's running login on `network`.
pub fn handle_for(
    bridge: &Bridge,
    user: &str,
    network: NetworkId,
) -> Result<LoginHandle, ActionError> {
    bridge
        .network_available(network)
        .map_err(ActionError::Unavailable)?;
    bridge
        .login_handle(user, network)
        .ok_or(ActionError::NotLoggedIn(network))
}

/// Sets the user's status on one network, or on every running login. The outer error is
/// for the request as a whole; each network has its own result.
pub async fn set_status(
    bridge: &Bridge,
    user: &str,
    state: PresenceState,
    network: Option<NetworkId>,
) -> Result<Vec<(NetworkId, Result<(), ActionError>)>, ActionError> {
    let networks: Vec<NetworkId> = match network {
        Some(n) => vec![n],
        None => bridge
            .logins_of(user)
            .into_iter()
            .map(|(n, _, _)| n)
            .collect(),
    };
    if networks.is_empty() {
        return Err(ActionError::NoLogins);
    }
    let mut out = Vec::new();
    for network in networks {
        let result = match handle_for(bridge, user, network) {
            Err(e) => Err(e),
            Ok(h) => h
                .request(|reply| LoginCommand::SetPresence {
                    presence: Presence {
                        state,
                        status: None,
                    },
                    reply,
                })
                .await
                .map_err(|e| ActionError::Network {
                    network,
                    why: e.to_string(),
                }),
        };
        if result.is_ok() {
            remember_status(bridge, user, network, state);
        }
        out.push((network, result));
    }
    if out.iter().any(|(_, result)| result.is_ok()) {
        if let Err(e) = bridge.store.flush().await {
            tracing::error!("could not store a status: {e}");
        }
    }
    Ok(out)
}

/// The chatrooms the legacy server lists to the user's login on `network`.
pub async fn list_rooms(
    bridge: &Bridge,
    user: &str,
    network: NetworkId,
) -> Result<Vec<RoomListing>, ActionError> {
    if !network.capabilities().chatrooms {
        return Err(ActionError::Network {
            network,
            why: SendError::Unsupported(network.display_name()).to_string(),
        });
    }
    handle_for(bridge, user, network)?
        .request(|reply| LoginCommand::ListRooms { reply })
        .await
        .map(super::sanitize::clean_listing)
        .map_err(|e| ActionError::Network {
            network,
            why: e.to_string(),
        })
}

/// Keeps the status for the login's next start (a restart, `reconnect`): contacts see
/// what the user chose from the first moment, not "online" until they set it again.
fn remember_status(bridge: &Bridge, user: &str, network: NetworkId, state: PresenceState) {
    let stored = bridge.store.update_login(user, network, |record| {
        record.presence = (state != PresenceState::Online).then_some(state);
    });
    if let Err(e) = stored {
        tracing::error!("could not store a status: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_statuses_parse_as_users_write_them() {
        assert_eq!(parse_network(Some("MIG33")), Ok(NetworkId::Mig33));
        assert_eq!(parse_network(None), Err(ActionError::NoNetwork));
        let unknown = parse_network(Some("Aim")).unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "Unknown network \"Aim\". Known networks: icq, msn, mig33."
        );
        assert_eq!(parse_presence("DND"), Some(PresenceState::Busy));
        assert_eq!(parse_presence("busy"), Some(PresenceState::Busy));
        assert_eq!(parse_presence("offline"), None);
    }
}
