//! What crosses between the networks and the users: text, message kinds, presence,
//! contacts and groups, profiles.

use serde::{Deserialize, Serialize};

use super::LegacyId;

/// Text with optional HTML (Matrix `formatted_body` flavour).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FormattedText {
    pub plain: String,
    pub html: Option<String>,
}

impl FormattedText {
    pub fn plain(text: impl Into<String>) -> Self {
        FormattedText {
            plain: text.into(),
            html: None,
        }
    }
}

/// A file's size as people read it: "11 bytes", "245 KB", "1.2 MB".
pub fn size_text(bytes: u64) -> String {
    match bytes {
        0..=1023 => format!("{bytes} bytes"),
        1024..=1_048_575 => format!("{} KB", bytes.div_ceil(1024)),
        _ => format!("{:.1} MB", bytes as f64 / 1_048_576.0),
    }
}

/// A contact's picture as the bridge keeps it: the network's id for it (on MSN the
/// MSNObject's SHA1D: a new id, a new picture), its media type, its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Avatar {
    pub hash: String,
    /// `image/png`, `image/jpeg`, `image/gif` or `image/bmp` (the bytes say which).
    pub mime: &'static str,
    pub data: std::sync::Arc<[u8]>,
}

/// Logs the size, never the bytes.
impl std::fmt::Debug for Avatar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Avatar")
            .field("hash", &self.hash)
            .field("mime", &self.mime)
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl Avatar {
    /// The largest picture the bridge takes (Messenger's are 96x96, a few KiB).
    pub const MAX_BYTES: usize = 256 * 1024;

    /// A picture from its bytes, when they are an image of a known kind within
    /// [`Avatar::MAX_BYTES`].
    pub fn new(hash: &str, data: Vec<u8>) -> Option<Avatar> {
        if data.len() > Self::MAX_BYTES || hash.is_empty() || hash.len() > 128 {
            return None;
        }
        let mime = image_type(&data)?;
        Some(Avatar {
            hash: hash.to_owned(),
            mime,
            data: data.into(),
        })
    }
}

/// The media type an image's first bytes announce.
pub fn image_type(data: &[u8]) -> Option<&'static str> {
    match data {
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [b'B', b'M', ..] => Some("image/bmp"),
        _ => None,
    }
}

/// A file as it crosses between a network and the core: its name (as the sender gave
/// it, cleaned at the intake), its media type (from the name; the fronts never trust it
/// to decide what runs) and its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct FileData {
    pub name: String,
    pub mime: String,
    pub data: std::sync::Arc<[u8]>,
}

/// Logs the size, never the bytes.
impl std::fmt::Debug for FileData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileData")
            .field("name", &self.name)
            .field("mime", &self.mime)
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl FileData {
    /// A file named `name`; its media type is guessed from the name's extension.
    pub fn new(name: &str, data: impl Into<std::sync::Arc<[u8]>>) -> FileData {
        FileData {
            name: name.to_owned(),
            mime: mime_of(name),
            data: data.into(),
        }
    }
}

/// The media type a file name's extension suggests (`application/octet-stream` when it
/// suggests none).
pub fn mime_of(name: &str) -> String {
    mime_guess::from_path(name)
        .first_or_octet_stream()
        .essence_str()
        .to_owned()
}

/// What kind of message arrived (networks map their types onto these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Text,
    /// Sent as a notice (system-ish messages such as "you were added").
    Notice,
    Emote,
    /// A nudge (MSN): the text says so ("nudged you"), for fronts that show it as an
    /// emote; XMPP adds XEP-0224 attention.
    Nudge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PresenceState {
    Online,
    Away,
    Busy,
    Invisible,
    Offline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub state: PresenceState,
    /// A status message to show (network's own status text, or a name such as "On the phone").
    pub status: Option<String>,
}

/// A contact as the network knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: LegacyId,
    pub display_name: Option<String>,
    /// Group ids (network's own) this contact is in.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
}

/// A person's public profile (search and info results, own profile).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    pub id: LegacyId,
    pub display_name: Option<String>,
    /// Further `label: value` lines (first name, e-mail, city...), in display order.
    pub details: Vec<(String, String)>,
}

/// A chatroom the legacy server lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomListing {
    pub name: String,
    pub description: Option<String>,
    /// How many are in it, when the server says.
    pub members: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Search the directory for people by free text (id, nick, e-mail: the network decides).
    Search(String),
    /// Everything known about one person.
    Info(LegacyId),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avatars_are_images_within_bounds() {
        let png = [&[0x89, b'P', b'N', b'G', 13, 10, 26, 10][..], &[0; 100]].concat();
        let avatar = Avatar::new("h1", png.clone()).expect("a PNG");
        assert_eq!(avatar.mime, "image/png");
        assert_eq!(
            format!("{avatar:?}"),
            "Avatar { hash: \"h1\", mime: \"image/png\", bytes: 108 }"
        );
        assert_eq!(Avatar::new("h1", b"<svg onload=alert(1)>".to_vec()), None);
        assert_eq!(Avatar::new("", png.clone()), None);
        let huge = [&png[..], &vec![0; Avatar::MAX_BYTES][..]].concat();
        assert_eq!(Avatar::new("h1", huge), None);
        assert_eq!(image_type(b"GIF89a"), Some("image/gif"));
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size_text(11), "11 bytes");
        assert_eq!(size_text(250_000), "245 KB");
        assert_eq!(size_text(1_300_000), "1.2 MB");
    }
}

/// Someone asks the user for authorization to add them to their contact list (ICQ's
/// "authorize" status): what they said about themselves. Legacy text: the core cleans it
/// before anyone shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub who: LegacyId,
    pub nick: Option<String>,
    pub reason: Option<String>,
}
