//! Field value types: integers, text, presence and destination codes, and how each
//! is read from and written to a field's bytes.

/// A user's presence as carried in a one-byte field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Presence {
    Available,
    Roaming,
    Busy,
    Away,
    #[default]
    Offline,
    /// A value this crate does not know; kept so it round-trips.
    Other(u8),
}

impl Presence {
    pub fn code(self) -> u8 {
        match self {
            Presence::Available => 1,
            Presence::Roaming => 2,
            Presence::Busy => 3,
            Presence::Away => 4,
            Presence::Offline => 99,
            Presence::Other(c) => c,
        }
    }

    pub fn from_code(code: u8) -> Presence {
        match code {
            1 => Presence::Available,
            2 => Presence::Roaming,
            3 => Presence::Busy,
            4 => Presence::Away,
            99 => Presence::Offline,
            c => Presence::Other(c),
        }
    }
}

/// Where a MESSAGE goes (field 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DestinationType {
    /// To one user; the destination is a username.
    #[default]
    Private,
    /// To a group chat; the destination is the group chat id.
    GroupChat,
    /// To a chatroom; the destination is the room name.
    Chatroom,
    Other(u8),
}

impl DestinationType {
    pub fn code(self) -> u8 {
        match self {
            DestinationType::Private => 1,
            DestinationType::GroupChat => 2,
            DestinationType::Chatroom => 3,
            DestinationType::Other(c) => c,
        }
    }

    pub fn from_code(code: u8) -> DestinationType {
        match code {
            1 => DestinationType::Private,
            2 => DestinationType::GroupChat,
            3 => DestinationType::Chatroom,
            c => DestinationType::Other(c),
        }
    }
}

/// How a Rust type is stored in a field value.
///
/// Decoding is liberal: integers are accepted in any width from 1 to 4 bytes as long
/// as the value fits, and text that is not valid UTF-8 is decoded with U+FFFD
/// replacement characters (visible, never silently dropped). Encoding is strict:
/// u8 in 1 byte, u16 in 2, i32 in 4, text as UTF-8.
pub trait FieldValue: Sized {
    fn decode(bytes: &[u8]) -> Option<Self>;
    fn encode(&self, out: &mut Vec<u8>);
}

/// Big-endian unsigned value of 1 to 4 bytes.
fn uint(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || bytes.len() > 4 {
        return None;
    }
    Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

impl FieldValue for u8 {
    fn decode(bytes: &[u8]) -> Option<Self> {
        uint(bytes).and_then(|v| u8::try_from(v).ok())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
}

impl FieldValue for u16 {
    fn decode(bytes: &[u8]) -> Option<Self> {
        uint(bytes).and_then(|v| u16::try_from(v).ok())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}

impl FieldValue for i32 {
    fn decode(bytes: &[u8]) -> Option<Self> {
        // Four bytes are two's complement; shorter values are unsigned and always fit.
        uint(bytes).map(|v| v as i32)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}

impl FieldValue for String {
    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl FieldValue for Presence {
    fn decode(bytes: &[u8]) -> Option<Self> {
        u8::decode(bytes).map(Presence::from_code)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.code());
    }
}

impl FieldValue for DestinationType {
    fn decode(bytes: &[u8]) -> Option<Self> {
        u8::decode(bytes).map(DestinationType::from_code)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.code());
    }
}

/// How a [`UsernameList`] separates its names on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListSeparator {
    /// `;`, what this crate writes unless told otherwise.
    #[default]
    Semicolon,
    /// `,`, what some servers write.
    Comma,
}

impl ListSeparator {
    pub fn byte(self) -> u8 {
        match self {
            ListSeparator::Semicolon => b';',
            ListSeparator::Comma => b',',
        }
    }
}

/// Usernames in one field (CHATROOM_PARTICIPANTS). Neither source documents the
/// separator: servers are seen writing `;` or `,`, and usernames contain neither.
///
/// Decoding splits at both, trims spaces around each name and skips empty parts
/// (`" bob, ;carol,"` is `bob`, `carol`); `separator` is the first one found.
/// Encoding joins `names` with `separator`. Two lists are equal when they encode
/// alike: with fewer than two names the separator does not show.
#[derive(Debug, Clone, Default, Eq)]
pub struct UsernameList {
    pub names: Vec<String>,
    pub separator: ListSeparator,
}

impl UsernameList {
    pub fn new(names: Vec<String>, separator: ListSeparator) -> Self {
        UsernameList { names, separator }
    }
}

impl PartialEq for UsernameList {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names && (self.names.len() < 2 || self.separator == other.separator)
    }
}

impl From<Vec<String>> for UsernameList {
    fn from(names: Vec<String>) -> Self {
        UsernameList::new(names, ListSeparator::default())
    }
}

impl FieldValue for UsernameList {
    fn decode(bytes: &[u8]) -> Option<Self> {
        let text = String::from_utf8_lossy(bytes);
        let separator = match text.find([';', ',']).map(|i| text.as_bytes()[i]) {
            Some(b',') => ListSeparator::Comma,
            _ => ListSeparator::Semicolon,
        };
        let names = text
            .split([';', ','])
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect();
        Some(UsernameList { names, separator })
    }
    fn encode(&self, out: &mut Vec<u8>) {
        for (i, name) in self.names.iter().enumerate() {
            if i > 0 {
                out.push(self.separator.byte());
            }
            out.extend_from_slice(name.as_bytes());
        }
    }
}
