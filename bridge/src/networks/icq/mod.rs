//! ICQ protocol version 2 over UDP: one task per login drives an `icq_proto`
//! [`ClientSession`](icq_proto::ClientSession) (see `login.rs`); `convert.rs` maps ICQ
//! values to the core's.
//!
//! Options: [`IcqOptions`] (`networks.icq.options`), the pacing toward the server among
//! them (see `networks::pacing`): every LOGIN waits for the network's turn; message
//! packets (each part of a split message) leave at most `message_burst` at once, then
//! `messages_per_second`, in order.

mod convert;
mod login;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::driver;
use super::pacing::{self, ConnectPacer};
use super::{at_least_one_second, OptionError};
use crate::core::{EventSink, LoginCredentials, LoginHandle, Network, NetworkId, NetworkSettings};

/// `networks.icq.options`; every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IcqOptions {
    /// How often (seconds) a logged-in session sends an extra KEEP_ALIVE (a probe) and
    /// checks that the previous one was acknowledged. The protocol's own KEEP_ALIVE
    /// comes every 120 s and a silent server is only given up after two cycles of
    /// retransmissions (over two minutes); probes notice a server that forgot the
    /// session much sooner.
    pub probe_interval_secs: u64,
    /// After this many probes in a row went unacknowledged the connection is taken for
    /// lost and made again: a lost session is noticed within
    /// `probe_interval_secs × (missed_probes + 1)` (30 s by default).
    pub missed_probes: u32,
    /// How long (seconds) to wait for LOGIN_REPLY. A server that did not even
    /// acknowledge the LOGIN is tried again later; one that acknowledged it and stayed
    /// silent refused the password (servers written from the v2 document have no
    /// refusal packet), which ends a login that never succeeded (a login that worked
    /// before is tried again instead).
    pub login_timeout_secs: u64,
    /// LOGINs per second, all the bridge's ICQ logins together (a restart, reconnects
    /// after an outage).
    pub connects_per_second: u32,
    /// Message packets per second one login sends at most, once its burst is spent.
    pub messages_per_second: f64,
    /// Message packets one login may send at once after a quiet moment.
    pub message_burst: u32,
}

impl Default for IcqOptions {
    fn default() -> Self {
        IcqOptions {
            probe_interval_secs: 10,
            missed_probes: 2,
            login_timeout_secs: 20,
            connects_per_second: pacing::DEFAULT_CONNECTS_PER_SECOND,
            messages_per_second: pacing::DEFAULT_MESSAGES_PER_SECOND,
            message_burst: pacing::DEFAULT_MESSAGE_BURST,
        }
    }
}

impl IcqOptions {
    /// What the types allow but ICQ cannot use.
    pub fn check(&self) -> Result<(), OptionError> {
        at_least_one_second("probe_interval_secs", self.probe_interval_secs)?;
        if self.missed_probes == 0 {
            return Err(("missed_probes", "must be at least 1".into()));
        }
        at_least_one_second("login_timeout_secs", self.login_timeout_secs)?;
        pacing::check(
            self.connects_per_second,
            self.messages_per_second,
            self.message_burst,
        )
    }
}

/// The ICQ implementation.
pub fn build(settings: NetworkSettings, options_in: IcqOptions) -> Option<Arc<dyn Network>> {
    let options = login::Options {
        probe_interval: Duration::from_secs(options_in.probe_interval_secs),
        missed_probes: options_in.missed_probes,
        login_timeout: Duration::from_secs(options_in.login_timeout_secs),
    };
    Some(Arc::new(Icq {
        server: settings.server,
        pacer: Arc::new(ConnectPacer::new(options_in.connects_per_second)),
        sending: pacing::SendRate {
            per_second: options_in.messages_per_second,
            burst: options_in.message_burst,
        },
        options,
    }))
}

struct Icq {
    /// `host:port` of the ICQ server (UDP).
    server: String,
    options: login::Options,
    pacer: Arc<ConnectPacer>,
    sending: pacing::SendRate,
}

impl Network for Icq {
    fn id(&self) -> NetworkId {
        NetworkId::Icq
    }

    fn check_credentials(&self, login: &LoginCredentials) -> Result<(), String> {
        match login.id.parse::<u32>() {
            Ok(uin) if uin > 0 => {}
            _ => return Err(format!("{:?} is not an ICQ number (UIN).", login.id)),
        }
        let len = login.password.chars().count();
        if len > icq_proto::session::client::MAX_PASSWORD_CHARS {
            return Err(format!(
                "ICQ passwords are at most 8 characters long, and this one has {len}. \
                 Use the password of your ICQ account (8 characters or fewer)."
            ));
        }
        if len == 0 {
            return Err("the password is empty.".into());
        }
        if !icq_proto::unrepresentable(&login.password).is_empty() {
            return Err("the password contains characters ICQ cannot carry.".into());
        }
        Ok(())
    }

    fn start(&self, login: LoginCredentials, events: EventSink) -> LoginHandle {
        driver::start(&login.id.clone(), self.pacer.clone(), |commands| {
            login::LoginTask::new(
                login,
                self.server.clone(),
                self.options.clone(),
                events,
                commands,
                self.sending.bucket(),
            )
        })
    }
}
