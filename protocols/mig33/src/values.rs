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

/// A list of usernames in one field, separated by `;` (a guess: see the crate docs).
/// Usernames cannot contain `;`. An empty field is an empty list.
impl FieldValue for Vec<String> {
    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() {
            return Some(Vec::new());
        }
        let text = String::from_utf8_lossy(bytes);
        Some(text.split(';').map(str::to_owned).collect())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        for (i, name) in self.iter().enumerate() {
            if i > 0 {
                out.push(b';');
            }
            out.extend_from_slice(name.as_bytes());
        }
    }
}
