//! Decoder errors and the table of three-digit server error codes.

use thiserror::Error;

/// Longest command line accepted, CRLF included.
pub const MAX_LINE: usize = 8 * 1024;
/// Largest payload (MSG, NOT, QRY...) accepted from the network.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// A framing or parsing error. Fatal errors ([`Error::is_fatal`]) leave the
/// stream unsynchronised: the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    #[error("command line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("payload of {0} bytes exceeds the {MAX_PAYLOAD}-byte limit")]
    PayloadTooLarge(u64),
    #[error("command line is not valid UTF-8")]
    NotUtf8,
    #[error("invalid command name {0:?}")]
    BadCommandName(String),
    #[error("{0} command without a valid payload length")]
    BadLength(String),
    #[error("malformed {0} command: {1}")]
    Malformed(String, &'static str),
    #[error("MIME message headers are not valid UTF-8")]
    BadMimeHeaders,
}

impl Error {
    /// True when the decoder cannot find the next command boundary any more.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::LineTooLong | Error::PayloadTooLarge(_))
    }
}

/// Human-readable text for a three-digit MSNP error code, if known.
pub fn error_description(code: u16) -> Option<&'static str> {
    Some(match code {
        200 => "invalid syntax",
        201 => "invalid parameter",
        205 => "invalid user",
        206 => "domain name missing",
        207 => "already logged in",
        208 => "invalid username",
        209 => "invalid friendly name",
        210 => "list full",
        215 => "already on list",
        216 => "not on list",
        217 => "user not online",
        218 => "already in that mode",
        219 => "already in opposite list",
        223 => "too many groups",
        224 => "invalid group",
        280 => "switchboard failed",
        281 => "transfer to switchboard failed",
        300 => "required field missing",
        302 => "not logged in",
        500 => "internal server error",
        540 => "challenge response failed",
        600 => "server busy",
        601 => "server unavailable",
        710 => "bad CVR parameters",
        711 => "write is blocking",
        712 => "session overload",
        713 => "calling too rapidly",
        714 => "too many sessions",
        800 => "changing too rapidly",
        911 => "authentication failed",
        913 => "not allowed while offline",
        920 => "not accepting new users",
        924 => "account not verified",
        _ => return None,
    })
}

/// An error reply from the server (`911 4`), with a message that is clear even
/// for codes missing from the table.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("server error {code}: {}", describe(*.code))]
pub struct ServerError {
    pub code: u16,
    /// The TrID of the request that failed, when the server gave one.
    pub trid: Option<u32>,
}

impl ServerError {
    pub fn description(&self) -> String {
        describe(self.code)
    }
}

fn describe(code: u16) -> String {
    match error_description(code) {
        Some(text) => text.to_string(),
        None => format!("unknown error code {code}"),
    }
}
