//! The XMPP front.

pub mod link;
