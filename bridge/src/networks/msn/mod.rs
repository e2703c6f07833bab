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
//! Options: [`MsnOptions`] (`networks.msn.options`). `server` is the dispatch server
//! (`host:port`). Pacing (see `networks::pacing`): every login attempt (dispatch
//! connection) waits for the network's turn; messages, all of a login's conversations
//! together, leave at most `message_burst` at once, then `messages_per_second`, in
//! order (a long message MSN splits into parts counts once).
//!
//! Login failures: refused credentials end the login at once; a Passport failure that
//! comes back the same on every try (TLS handshake, certificate) ends it after
//! [`login::PERSISTENT_TRIES`] tries with a notice that says which option to change; other
//! failures (refused connections, timeouts, DNS, 5xx) are retried with backoff for ever.
//! `OUT OTH` (signed in from another location) stops the login without removing it: the
//! user brings it back with `reconnect msn`.

mod content;
pub mod format;
mod login;
mod passport;
mod switchboard;
mod transfers;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::driver;
use super::pacing::{self, ConnectPacer};
use super::{at_least_one_second, OptionError};
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
    /// The largest file taken from a contact or sent to one.
    pub max_file_bytes: u64,
}

/// `networks.msn.options`; every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsnOptions {
    /// The Passport 1.4 nexus: https, or http on a loopback address (test servers).
    pub nexus_url: String,
    /// The Passport login address to use instead of the `DALogin` the nexus announces
    /// (the nexus is then not asked), same https-or-loopback rule. For servers such as
    /// escargot whose nexus announces an https address while they serve plain HTTP.
    pub login_url: Option<String>,
    /// A switchboard nobody used for this many seconds is left.
    pub switchboard_idle_seconds: u64,
    /// Seconds between two PNGs to the notification server.
    pub ping_seconds: u64,
    /// Login attempts per second, all the bridge's MSN logins together (a restart,
    /// reconnects after an outage).
    pub connects_per_second: u32,
    /// Messages per second one login sends at most, once its burst is spent.
    pub messages_per_second: f64,
    /// Messages one login may send at once after a quiet moment.
    pub message_burst: u32,
}

impl Default for MsnOptions {
    fn default() -> Self {
        MsnOptions {
            nexus_url: DEFAULT_NEXUS.into(),
            login_url: None,
            switchboard_idle_seconds: 300,
            ping_seconds: 50,
            connects_per_second: pacing::DEFAULT_CONNECTS_PER_SECOND,
            messages_per_second: pacing::DEFAULT_MESSAGES_PER_SECOND,
            message_burst: pacing::DEFAULT_MESSAGE_BURST,
        }
    }
}

impl MsnOptions {
    /// What the types allow but MSN cannot use (a password sent in clear text to
    /// another machine, for one).
    pub fn check(&self) -> Result<(), OptionError> {
        passport::check_url(&self.nexus_url).map_err(|e| ("nexus_url", e))?;
        if let Some(url) = &self.login_url {
            passport::check_url(url).map_err(|e| ("login_url", e))?;
        }
        at_least_one_second("switchboard_idle_seconds", self.switchboard_idle_seconds)?;
        at_least_one_second("ping_seconds", self.ping_seconds)?;
        pacing::check(
            self.connects_per_second,
            self.messages_per_second,
            self.message_burst,
        )
    }
}

impl MsnConfig {
    fn new(settings: &NetworkSettings, options: MsnOptions) -> MsnConfig {
        let server = settings.server.trim();
        MsnConfig {
            server: if server.is_empty() {
                DEFAULT_SERVER.into()
            } else {
                server.into()
            },
            nexus_url: options.nexus_url,
            login_url: options.login_url,
            switchboard_idle: Duration::from_secs(options.switchboard_idle_seconds),
            ping_interval: Duration::from_secs(options.ping_seconds),
            max_file_bytes: settings.max_file_bytes,
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
    pacer: Arc<ConnectPacer>,
    sending: pacing::SendRate,
}

/// The MSN implementation.
pub fn build(settings: NetworkSettings, options: MsnOptions) -> Option<Arc<dyn Network>> {
    let pacer = Arc::new(ConnectPacer::new(options.connects_per_second));
    let sending = pacing::SendRate {
        per_second: options.messages_per_second,
        burst: options.message_burst,
    };
    let config = MsnConfig::new(&settings, options);
    Some(Arc::new(Msn {
        config: Arc::new(config),
        pacer,
        sending,
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
        driver::start(&login.id.clone(), self.pacer.clone(), |commands| {
            login::Login::new(
                self.config.clone(),
                login,
                events,
                commands,
                self.sending.bucket(),
            )
        })
    }
}
