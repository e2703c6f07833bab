//! ICQ protocol version 2 over UDP: one task per login drives an `icq_proto`
//! [`ClientSession`](icq_proto::ClientSession) (see `login.rs`); `convert.rs` maps ICQ
//! values to the core's.
//!
//! Options (`networks.icq.options`), all optional:
//! * `probe_interval_secs` (default 10): how often a logged-in session sends an extra
//!   KEEP_ALIVE (a probe) and checks that the previous one was acknowledged. The
//!   protocol's own KEEP_ALIVE comes every 120 s and a silent server is only given up
//!   after two cycles of retransmissions (over two minutes); probes notice a server
//!   that forgot the session much sooner.
//! * `missed_probes` (default 2): after this many probes in a row went
//!   unacknowledged the connection is taken for lost and made again. A lost session
//!   is noticed within `probe_interval_secs × (missed_probes + 1)` (30 s by default).
//! * `login_timeout_secs` (default 20): how long to wait for LOGIN_REPLY. A server
//!   that did not even acknowledge the LOGIN is tried again later; one that
//!   acknowledged it and stayed silent refused the password (servers written from the
//!   v2 document have no refusal packet), which ends a login that never succeeded
//!   (a login that worked before is tried again instead).

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
    let count = |name: &str, default: u32| {
        let n = match settings.options.get(name) {
            Some(serde_yaml::Value::Number(n)) => n.as_u64(),
            Some(serde_yaml::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        n.and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n > 0)
            .unwrap_or(default)
    };
    let options = login::Options {
        probe_interval: option("probe_interval_secs", 10),
        missed_probes: count("missed_probes", 2),
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
