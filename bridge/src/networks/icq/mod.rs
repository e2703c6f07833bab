//! ICQ protocol version 2 over UDP: one task per login drives an `icq_proto`
//! [`ClientSession`](icq_proto::ClientSession) (see `login.rs`); `convert.rs` maps ICQ
//! values to the core's.
//!
//! Options: [`IcqOptions`] (`networks.icq.options`).

mod convert;
mod login;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{at_least_one_second, OptionError};
use crate::core::{EventSink, LoginCredentials, LoginHandle, Network, NetworkId, NetworkSettings};

/// `networks.icq.options`; every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IcqOptions {
    /// How often (seconds) a logged-in session asks the server for something (an INFO
    /// request about itself) to notice a lost server quickly. The session's own
    /// KEEP_ALIVE comes every 120 s and a silent server is only given up after two
    /// cycles of retransmissions (about two minutes).
    pub probe_interval_secs: u64,
    /// How long (seconds) to wait for LOGIN_REPLY before trying again.
    pub login_timeout_secs: u64,
}

impl Default for IcqOptions {
    fn default() -> Self {
        IcqOptions {
            probe_interval_secs: 30,
            login_timeout_secs: 20,
        }
    }
}

impl IcqOptions {
    /// What the types allow but ICQ cannot use.
    pub fn check(&self) -> Result<(), OptionError> {
        at_least_one_second("probe_interval_secs", self.probe_interval_secs)?;
        at_least_one_second("login_timeout_secs", self.login_timeout_secs)
    }
}

/// The ICQ implementation.
pub fn build(settings: NetworkSettings, options: IcqOptions) -> Option<Arc<dyn Network>> {
    let options = login::Options {
        probe_interval: Duration::from_secs(options.probe_interval_secs),
        login_timeout: Duration::from_secs(options.login_timeout_secs),
    };
    Some(Arc::new(Icq {
        server: settings.server,
        options,
    }))
}

struct Icq {
    /// `host:port` of the ICQ server (UDP).
    server: String,
    options: login::Options,
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
        let (handle, commands) = LoginHandle::channel();
        let task = login::LoginTask::new(
            login,
            self.server.clone(),
            self.options.clone(),
            events,
            commands,
        );
        tokio::spawn(task.run());
        handle
    }
}
