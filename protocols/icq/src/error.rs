//! Errors: decoding bytes from the network, and refusing a command before sending.

/// Why a datagram or peer frame could not be decoded. Decoders never panic; they
/// return one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The packet ended before a field was complete.
    #[error("packet too short: field {field} needs {needed} byte(s) at offset {offset}, {available} left")]
    ShortPacket {
        field: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// The VERSION field was not `02 00`.
    #[error("wrong protocol version {0:#06x}, expected 0x0002")]
    WrongVersion(u16),
    /// A length field claims more bytes than the packet holds.
    #[error("bad length for {field}: {length} byte(s) claimed, {available} left")]
    BadLength {
        field: &'static str,
        length: usize,
        available: usize,
    },
    /// A peer-to-peer frame that is neither CHANNEL_INIT nor CHANNEL_MESSAGE.
    #[error("unknown peer-to-peer packet (first byte {first:#04x}, command {command:#06x})")]
    UnknownPeerPacket { first: u8, command: u16 },
}

/// Why a session refused a command (nothing was sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// ICQ v2 passwords are at most 8 characters.
    #[error("password is {len} characters long; ICQ allows at most 8")]
    PasswordTooLong { len: usize },
    /// The password holds characters Windows-1252 cannot represent.
    #[error("password contains characters that cannot be sent: {0:?}")]
    PasswordNotRepresentable(Vec<char>),
    /// The command needs a logged-in session.
    #[error("not logged in")]
    NotLoggedIn,
    /// `login` was called while a login is in progress or done.
    #[error("already logged in or logging in")]
    AlreadyActive,
    /// The encoded text is longer than one datagram may carry.
    #[error("text is {len} bytes once encoded; at most {max} fit in one packet")]
    TextTooLong { len: usize, max: usize },
    /// A search needs at least one non-empty field.
    #[error("empty search")]
    EmptySearch,
}
