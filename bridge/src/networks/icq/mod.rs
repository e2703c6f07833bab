//! ICQ protocol version 2 over UDP: one task per login drives an `icq_proto`
//! [`ClientSession`](icq_proto::ClientSession) (see `login.rs`); `convert.rs` maps ICQ
//! values to the core's.
//!
//! Options (`networks.icq.options`), all optional:
//! * `probe_interval_secs` (default 30): how often a logged-in session asks the server
//!   for something (an INFO request about itself) to notice a lost server quickly.
//!   The session's own KEEP_ALIVE comes every 120 s and a silent server is only given
//!   up after two cycles of retransmissions (about two minutes).
//! * `login_timeout_secs` (default 20): how long to wait for LOGIN_REPLY before trying
//!   again.

mod convert;
mod login;

use std::sync::Arc;
use std::time::Duration;

use crate::core::{EventSink, LoginCredentials, LoginHandle, Network, NetworkId, NetworkSettings};

/// The ICQ implementation.
pub fn build(settings: NetworkSettings) -> Option<Arc<dyn Network>> {
    let option = |name: &str, default: u64| {
        let secs = match settings.options.get(name) {
            Some(serde_yaml::Value::Number(n)) => n.as_u64(),
            Some(serde_yaml::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        Duration::from_secs(secs.filter(|&s| s > 0).unwrap_or(default))
    };
    let options = login::Options {
        probe_interval: option("probe_interval_secs", 30),
        login_timeout: option("login_timeout_secs", 20),
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
