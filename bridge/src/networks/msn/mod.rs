//! MSN Messenger (MSNP9, Passport 1.4 login): drives the `msn-proto` session machines
//! over tokio and speaks the core's [`Network`] contract.
//!
//! * `login` — the login task: dispatch -> notification server, Passport, `SYN`,
//!   presence, keepalive, reconnection with backoff, and the switchboard table.
//! * `switchboard` — one task per conversation (`XFR SB`/`CAL` or `RNG`/`ANS`).
//! * `passport` — the HTTP(S) part of login (reqwest).
//! * `format` — `X-MMS-IM-Format` <-> Matrix HTML.
//!
//! Conversations: a switchboard with one other person is that contact's DM
//! (`ChatId::Direct(email)`); once a second other person joins (`JOI`/`IRO`), it is a
//! group conversation `ChatId::Group("<session id>-<random>")` for the rest of its life,
//! announced with `RoomMembers`, and `RoomLeft` when it closes.
//!
//! Groups: MSN groups (`LSG`, ids as decimal strings, group 0 "Other Contacts") go to
//! the core in every `ContactList` snapshot (the core persists them with the contacts);
//! each contact carries the ids of its groups from `LST`. `add msn <email> <group>`
//! accepts a group's name or id.
//!
//! Options (`networks.msn.options`): `nexus_url` (default the real Passport nexus;
//! https required except on loopback), `login_url` (the Passport login address to use
//! instead of the `DALogin` the nexus announces, same https-or-loopback rule; for servers
//! such as escargot whose nexus announces an https address while they serve plain HTTP;
//! when set the nexus is not asked), `switchboard_idle_seconds` (default 300),
//! `ping_seconds` (default 50). `server` is the dispatch server (`host:port`).
//!
//! Login failures: refused credentials end the login at once; a Passport failure that
//! comes back the same on every try (TLS handshake, certificate) ends it after
//! [`login::PERSISTENT_TRIES`] tries with a notice that says which option to change; other
//! failures (refused connections, timeouts, DNS, 5xx) are retried with backoff for ever.
//! `OUT OTH` (signed in from another location) stops the login without removing it: the
//! user brings it back with `reconnect msn`.

mod format;
mod login;
mod passport;
mod switchboard;

use std::sync::Arc;
use std::time::Duration;

use crate::core::{EventSink, LoginCredentials, LoginHandle, Network, NetworkId, NetworkSettings};

pub const DEFAULT_NEXUS: &str = "https://nexus.passport.com/rdr/pprdr.asp";
pub const DEFAULT_SERVER: &str = "messenger.hotmail.com:1863";

/// Settings shared by every MSN login.
#[derive(Debug, Clone)]
pub struct MsnConfig {
    /// Dispatch server, `host:port`.
    pub server: String,
    pub nexus_url: String,
    /// Replaces the nexus' `DALogin` when set.
    pub login_url: Option<String>,
    /// A switchboard nobody used for this long is left.
    pub switchboard_idle: Duration,
    pub ping_interval: Duration,
}

impl MsnConfig {
    fn from_settings(settings: &NetworkSettings) -> MsnConfig {
        let text = |key: &str| match settings.options.get(key) {
            Some(serde_yaml::Value::String(s)) => Some(s.clone()),
            Some(serde_yaml::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let secs = |key: &str, default: u64| {
            Duration::from_secs(
                text(key)
                    .and_then(|v| v.trim().parse().ok())
                    .filter(|v| *v > 0)
                    .unwrap_or(default),
            )
        };
        let server = settings.server.trim();
        MsnConfig {
            server: if server.is_empty() {
                DEFAULT_SERVER.into()
            } else {
                server.into()
            },
            nexus_url: text("nexus_url").unwrap_or_else(|| DEFAULT_NEXUS.into()),
            login_url: text("login_url")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
            switchboard_idle: secs("switchboard_idle_seconds", 300),
            ping_interval: secs("ping_seconds", 50),
        }
    }
}

impl MsnConfig {
    /// Both Passport addresses must be https, or plain http on loopback.
    fn check_urls(&self) -> Result<(), String> {
        passport::check_url(&self.nexus_url)?;
        match &self.login_url {
            Some(url) => passport::check_url(url),
            None => Ok(()),
        }
    }
}

struct Msn {
    config: Arc<MsnConfig>,
}

/// The MSN implementation.
pub fn build(settings: NetworkSettings) -> Option<Arc<dyn Network>> {
    let config = MsnConfig::from_settings(&settings);
    if let Err(e) = config.check_urls() {
        // Logins will fail with this message; say it at start-up too.
        tracing::error!("msn: {e}");
    }
    Some(Arc::new(Msn {
        config: Arc::new(config),
    }))
}

impl Network for Msn {
    fn id(&self) -> NetworkId {
        NetworkId::Msn
    }

    fn check_credentials(&self, login: &LoginCredentials) -> Result<(), String> {
        let id = login.id.trim();
        match id.split_once('@') {
            Some((user, domain)) if !user.is_empty() && domain.contains('.') => {}
            _ => return Err("an MSN login is an e-mail address, e.g. you@hotmail.com".into()),
        }
        if login.password.is_empty() {
            return Err("the password is empty".into());
        }
        self.config.check_urls()
    }

    fn start(&self, login: LoginCredentials, events: EventSink) -> LoginHandle {
        let (handle, commands) = LoginHandle::channel();
        let task = login::Login::new(self.config.clone(), login, events, commands);
        tokio::spawn(task.run());
        handle
    }
}
