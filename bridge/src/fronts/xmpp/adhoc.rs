//! stub
pub const COMMANDS_NS: &str = "http://jabber.org/protocol/commands";
