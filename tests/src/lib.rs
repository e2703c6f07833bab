//! End-to-end test harness.

pub mod bench;
pub mod bridge;
pub mod ejabberd;
pub mod logs;
pub mod matrix_user;
pub mod process;
pub mod prosody;
pub mod secrets;
pub mod synapse;
pub mod xmpp_bridge;
pub mod xmpp_server;
pub mod xmpp_user;

pub use matrix_user::{enc, wait_until, Invite, TestUser};
pub use prosody::Prosody;
pub use synapse::{shared_instance, Synapse};
pub use xmpp_server::{ServerKind, XmppServer};
pub use xmpp_user::XmppUser;
