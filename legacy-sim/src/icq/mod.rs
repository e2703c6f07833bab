//! Simulated ICQ v2 server (UDP) and a scriptable ICQ client, built on `icq-proto`.
//!
//! The `icq:` section of the simulator's YAML file:
//!
//! ```yaml
//! icq:
//!   listen: "127.0.0.1:4000"   # UDP; port 0 picks a free one
//!   users:
//!     - uin: 1001
//!       password: "alice1"     # at most 8 characters
//!       nick: alice
//!       first: Alice
//!       last: Liddell
//!       email: alice@example.org
//!       auth: false            # true: "my authorization is required"
//!       contacts: [1002]       # announced at login (online or offline)
//!     - uin: 1002
//!       password: "bob2"
//!       nick: bob
//!       contacts: [1001]
//!       city: Stockholm        # optional extended info: city, country_code,
//!       age: 25                # age, sex (0/1 female/2 male), phone, homepage, about
//! ```
//!
//! Optional keys besides `listen` and `users`:
//!
//! ```yaml
//!   wrong_password: bad_password   # or `silent`: ACK the LOGIN, then say nothing
//!   idle_limit_secs: 300           # a client silent this long is dropped
//! ```
//!
//! Behaviour: LOGIN is checked against `users` (wrong password or unknown UIN:
//! BAD_PASSWORD, 0x0064, or silence with `wrong_password: silent`). After the
//! client's first CONTACT_LIST the server sends USER_ONLINE for each online contact
//! (the client's list plus the config's) and USER_OFFLINE for offline ones from the
//! config, then the messages stored while the user was offline, with their original
//! time. Logins, logouts and status changes reach every online user who lists that
//! user. SEND_MESSAGE goes to an online recipient as RECEIVE_MESSAGE, or is stored;
//! until a fresh login's stored messages have gone out, its live messages are stored
//! behind them (each sender's order is kept). Searches (UIN, nick/name, e-mail) and
//! INFO/EXT_INFO come from `users`. ADD_TO_LIST also sends the added user a "you
//! were added" message. Packets are ACKed and retransmitted by
//! [`icq_proto::ServerSession`]; a client that stops ACKing (one cycle of 6
//! transmissions) or is silent for `idle_limit_secs` is dropped. When a session ends
//! that way, is replaced by a login of the same UIN from another address, or logs
//! out, the RECEIVE_MESSAGEs it never ACKed become stored messages again, in order.
//! Packets from an unknown session (e.g. after a restart) are answered with
//! NOT_CONNECTED (0x00F0), which tells a client to log in again.
//! [`Server::forget_session`] makes the server forget one session while its client
//! keeps sending, like a server that lost its state.

pub mod client;
mod server;

pub use client::{client_cli, run_client, Client, ClientArgs};
pub use server::Server;

use icq_proto::{ExtInfo, UserRecord};
use serde::Deserialize;

/// The `icq:` section of the simulator's YAML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub users: Vec<User>,
    /// How a LOGIN with a wrong password or an unknown UIN is answered.
    #[serde(default)]
    pub wrong_password: WrongPassword,
    /// A client not heard from for this long is dropped (its unacknowledged messages
    /// are kept for its next login).
    #[serde(default = "default_idle_limit_secs")]
    pub idle_limit_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            users: Vec::new(),
            wrong_password: WrongPassword::default(),
            idle_limit_secs: default_idle_limit_secs(),
        }
    }
}

/// The answer to a LOGIN whose password is wrong (or whose UIN is unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WrongPassword {
    /// BAD_PASSWORD (0x0064), the reply of later protocol versions: clients learn at
    /// once. The default, so that a mistyped password is quick to see in the demo.
    #[default]
    BadPassword,
    /// ACK the LOGIN and say nothing more, as servers written from the v2 document
    /// (which has no refusal packet) do.
    Silent,
}

fn default_listen() -> String {
    "127.0.0.1:4000".into()
}

fn default_idle_limit_secs() -> u64 {
    icq_proto::session::server::DEFAULT_IDLE_LIMIT.as_secs()
}

/// One account in the simulator's directory.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub uin: u32,
    pub password: String,
    #[serde(default)]
    pub nick: String,
    #[serde(default)]
    pub first: String,
    #[serde(default)]
    pub last: String,
    #[serde(default)]
    pub email: String,
    /// The user must authorize being added to contact lists.
    #[serde(default)]
    pub auth: bool,
    /// UINs whose presence this user is told about, whatever its client sends.
    #[serde(default)]
    pub contacts: Vec<u32>,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub country_code: Option<u16>,
    #[serde(default)]
    pub age: Option<u16>,
    #[serde(default)]
    pub sex: u8,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub homepage: String,
    #[serde(default)]
    pub about: String,
}

impl User {
    fn record(&self) -> UserRecord {
        UserRecord {
            uin: self.uin,
            nick: self.nick.clone(),
            first: self.first.clone(),
            last: self.last.clone(),
            email: self.email.clone(),
            auth_required: self.auth,
        }
    }

    fn ext_info(&self) -> ExtInfo {
        ExtInfo {
            city: self.city.clone(),
            // The spec's "not entered" markers.
            country_code: self.country_code.unwrap_or(0xFFFF),
            country_status: if self.country_code.is_some() {
                0xFE
            } else {
                0x9C
            },
            state: String::new(),
            age: self.age.unwrap_or(0xFFFF),
            sex: self.sex,
            phone: self.phone.clone(),
            homepage: self.homepage.clone(),
            about: self.about.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
