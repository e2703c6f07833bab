//! The mig33 network: one tokio task per login drives a `mig33_proto::ClientSession`
//! over TCP (see [`login`]), and [`convert`] maps packets onto the core's types.
//!
//! Config (`networks.mig33`): `server` is `host:port` (default [`DEFAULT_SERVER`]);
//! options: the pacing toward the server ([`Mig33Options`], see `networks::pacing`).
//!
//! Behaviour worth knowing:
//! * Presence: available -> online; roaming -> online, status "Roaming"; busy -> busy,
//!   "Busy"; away -> away, "Away"; offline -> offline. Setting "invisible" sends offline
//!   (mig33 has no invisible state) while staying connected.
//! * A refused login (ERROR during the handshake) is final: `LoginFailed` with the
//!   server's text. Any other loss reconnects with backoff (1 s doubling to 60 s, plus
//!   jitter), rejoins the chatrooms, restores the chosen presence and then sends the
//!   commands that arrived meanwhile. Requests unanswered when the connection dropped
//!   are sent again (at least once: never lost, rarely twice).
//! * Chatroom messages are all reported, the server's echo of our own included; the
//!   core drops the echo and relays each message from one login.
//! * No directory search in the protocol: `Lookup` answers `Unsupported`.
//! * Pacing: every connection attempt waits for the network's turn
//!   (`connects_per_second`); messages leave at most `message_burst` at once, then
//!   `messages_per_second`, in order (commands queued behind a held message wait too).

mod convert;
pub(crate) mod login;

use std::sync::Arc;

use serde::Deserialize;

use super::driver;
use super::pacing::{self, ConnectPacer};
use super::OptionError;
use crate::core::{EventSink, LoginCredentials, LoginHandle, Network, NetworkId, NetworkSettings};

/// Used when the config names no server (the simulator's default address).
pub const DEFAULT_SERVER: &str = "127.0.0.1:9119";

/// `networks.mig33.options`; every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mig33Options {
    /// Connection attempts per second, all the bridge's mig33 logins together (a
    /// restart, reconnects after an outage).
    pub connects_per_second: u32,
    /// Messages per second one login sends at most, once its burst is spent.
    pub messages_per_second: f64,
    /// Messages one login may send at once after a quiet moment.
    pub message_burst: u32,
}

impl Default for Mig33Options {
    fn default() -> Self {
        Mig33Options {
            connects_per_second: pacing::DEFAULT_CONNECTS_PER_SECOND,
            messages_per_second: pacing::DEFAULT_MESSAGES_PER_SECOND,
            message_burst: pacing::DEFAULT_MESSAGE_BURST,
        }
    }
}

impl Mig33Options {
    /// What the types allow but mig33 cannot use.
    pub fn check(&self) -> Result<(), OptionError> {
        pacing::check(
            self.connects_per_second,
            self.messages_per_second,
            self.message_burst,
        )
    }
}

/// The mig33 implementation.
pub fn build(settings: NetworkSettings, options: Mig33Options) -> Option<Arc<dyn Network>> {
    let server = match settings.server.trim() {
        "" => DEFAULT_SERVER.to_owned(),
        s => s.to_owned(),
    };
    Some(Arc::new(Mig33 {
        server,
        pacer: Arc::new(ConnectPacer::new(options.connects_per_second)),
        sending: pacing::SendRate {
            per_second: options.messages_per_second,
            burst: options.message_burst,
        },
    }))
}

struct Mig33 {
    server: String,
    pacer: Arc<ConnectPacer>,
    sending: pacing::SendRate,
}

impl Network for Mig33 {
    fn id(&self) -> NetworkId {
        NetworkId::Mig33
    }

    fn check_credentials(&self, login: &LoginCredentials) -> Result<(), String> {
        if login.id.is_empty() || login.id.chars().any(char::is_whitespace) {
            return Err("a mig33 username has no spaces".into());
        }
        if login.password.is_empty() {
            return Err("the password is empty".into());
        }
        Ok(())
    }

    fn start(&self, login: LoginCredentials, events: EventSink) -> LoginHandle {
        driver::start(&login.id.clone(), self.pacer.clone(), |commands| {
            login::LoginTask::new(
                self.server.clone(),
                login,
                events,
                commands,
                self.sending.bucket(),
            )
        })
    }
}
