//! What legacy peers send, made harmless before a front shows it. A legacy server or
//! contact chooses names and links freely; users must be able to trust what they see.
//!
//! * Names (contacts' display names, chatroom members, profiles, status texts): no
//!   control characters (NUL, line breaks) and no bidirectional formatting characters
//!   (`Bob\u{202E}gnp.exe` would show as `Bobexe.png`), and a bounded length, cut on a
//!   character boundary. HTML in a name stays text: every front escapes it where it
//!   writes HTML.
//! * Links: only schemes that open something inert (`http`, `https`, `mailto`, `xmpp`)
//!   become links; anything else (`javascript:`, `data:`) stays text.

use super::{Contact, NetworkEvent, Presence, Profile, RoomListing};

/// The longest name kept, in bytes. Homeservers refuse display names over 256 (Synapse
/// counts characters); a front adds its own suffix within that.
pub const MAX_NAME_BYTES: usize = 200;

/// The longest status text kept, in bytes.
pub const MAX_STATUS_BYTES: usize = 1_000;

/// The longest reason of an authorization request kept, in bytes.
pub const MAX_REASON_BYTES: usize = 500;

/// Whether `c` may not appear in a name: controls (C0, DEL, C1), line and paragraph
/// separators, bidi embeddings, overrides, isolates and marks, and the BOM.
fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// A name as a front may show it: hostile characters removed (line breaks and tabs
/// become spaces), whitespace trimmed, at most `max` bytes. `None` when nothing is left.
pub fn clean_text(text: &str, max: usize) -> Option<String> {
    let cleaned: String = text
        .chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}' => Some(' '),
            c if is_hostile(c) => None,
            c => Some(c),
        })
        .collect();
    let cut = truncate(cleaned.trim(), max).trim_end();
    (!cut.is_empty()).then(|| cut.to_owned())
}

/// A display name as a front may show it ([`clean_text`] with [`MAX_NAME_BYTES`]).
pub fn clean_name(name: &str) -> Option<String> {
    clean_text(name, MAX_NAME_BYTES)
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// Whether a link may be offered as one: a client opening it runs nothing.
pub fn is_safe_link(href: &str) -> bool {
    let lower = href.trim_start().to_ascii_lowercase();
    ["http://", "https://", "mailto:", "xmpp:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// Cleans every name and status text a network event carries (the intake's first step).
pub fn clean_event(event: &mut NetworkEvent) {
    match event {
        NetworkEvent::Connected { self_profile } => clean_profile(self_profile),
        NetworkEvent::ContactList { groups, contacts } => {
            for group in groups {
                group.name = clean_name(&group.name).unwrap_or_else(|| group.id.clone());
            }
            contacts.iter_mut().for_each(clean_contact);
        }
        NetworkEvent::ContactChanged(contact) => clean_contact(contact),
        NetworkEvent::RoomMembers { members, .. } => members.iter_mut().for_each(clean_contact),
        NetworkEvent::Presence { presence, .. } => clean_presence(presence),
        NetworkEvent::AddedBy { name, .. } => *name = name.as_deref().and_then(clean_name),
        NetworkEvent::AuthorizationRequest(request) => {
            // Shown inside a sentence of the bridge's: one line, no controls or bidi
            // overrides, bounded.
            request.nick = request.nick.as_deref().and_then(clean_name);
            request.reason = request
                .reason
                .as_deref()
                .and_then(|r| clean_text(r, MAX_REASON_BYTES));
        }
        NetworkEvent::File { file, .. } => {
            file.name = clean_file_name(&file.name);
            file.mime = crate::model::mime_of(&file.name);
        }
        NetworkEvent::Message { text, .. } => {
            // NUL and the like have no place in a message; line breaks and tabs do.
            if text.plain.contains(is_stray_control) {
                text.plain.retain(|c| !is_stray_control(c));
            }
        }
        // A picture is checked when it is made (`Avatar::new`: an image, bounded).
        NetworkEvent::AvatarAnnounced { .. }
        | NetworkEvent::Acknowledged { .. }
        | NetworkEvent::AvatarFetched { .. }
        | NetworkEvent::Disconnected { .. }
        | NetworkEvent::LoginFailed { .. }
        | NetworkEvent::Typing { .. }
        | NetworkEvent::RoomLeft { .. }
        | NetworkEvent::Notice { .. } => {}
    }
}

/// A file name a peer chose, made safe to show and to save: the last part of any path,
/// one line without controls or bidi overrides, no leading dots (no hidden or `..`
/// names), at most 255 bytes; "file" when nothing is left.
pub fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned = clean_name(last).unwrap_or_default();
    let cleaned = cleaned.trim_start_matches('.').trim();
    match truncate(cleaned, 255) {
        "" => "file".to_owned(),
        ok => ok.to_owned(),
    }
}

/// Controls a message text may not hold (it keeps line breaks and tabs).
fn is_stray_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

fn clean_contact(contact: &mut Contact) {
    contact.display_name = contact.display_name.as_deref().and_then(clean_name);
}

pub fn clean_profile(profile: &mut Profile) {
    profile.display_name = profile.display_name.as_deref().and_then(clean_name);
    for (label, value) in &mut profile.details {
        *label = clean_name(label).unwrap_or_default();
        *value = clean_text(value, MAX_STATUS_BYTES).unwrap_or_default();
    }
}

fn clean_presence(presence: &mut Presence) {
    presence.status = presence
        .status
        .as_deref()
        .and_then(|s| clean_text(s, MAX_STATUS_BYTES));
}

/// The most rooms of a server's list a front is shown.
pub const MAX_LISTED_ROOMS: usize = 500;

/// A server's chatroom list as a front may show it: a room whose name is not a clean
/// name is left out (joining sends the name back as it is, so it cannot be changed),
/// descriptions are cleaned like status texts, and at most [`MAX_LISTED_ROOMS`] remain.
pub fn clean_listing(rooms: Vec<RoomListing>) -> Vec<RoomListing> {
    rooms
        .into_iter()
        .filter(|r| clean_name(&r.name).as_deref() == Some(r.name.as_str()))
        .map(|r| RoomListing {
            description: r.description.and_then(|d| clean_text(&d, MAX_STATUS_BYTES)),
            ..r
        })
        .take(MAX_LISTED_ROOMS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file name a contact chose cannot climb out of a folder, hide, reorder what is
    /// shown around it, or be empty.
    #[test]
    fn file_names_are_made_safe() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\Users\\bob\\cat.jpg"), "cat.jpg");
        assert_eq!(clean_file_name(".."), "file");
        assert_eq!(clean_file_name(".bashrc"), "bashrc");
        assert_eq!(clean_file_name(""), "file");
        assert_eq!(clean_file_name("   "), "file");
        let sneaky = clean_file_name("invoice\u{202E}fdp.exe");
        assert!(!sneaky.contains('\u{202E}'), "{sneaky:?}");
        let lines = clean_file_name("a\r\nb\u{0}.txt");
        assert!(!lines.contains(['\r', '\n', '\u{0}']), "{lines:?}");
        assert!(clean_file_name(&"é".repeat(400)).len() <= 255);
        assert_eq!(clean_file_name("holiday photo.png"), "holiday photo.png");
    }

    /// A hostile list: names that would mislead or break a room address are left out,
    /// descriptions lose control and bidi characters and their length, the list its
    /// length.
    #[test]
    fn a_room_list_is_cleaned_and_bounded() {
        let room = |name: &str, description: &str| RoomListing {
            name: name.into(),
            description: Some(description.into()),
            members: Some(3),
        };
        let listed = clean_listing(vec![
            room("lobby", "Everyone\nwelcome\u{202E}"),
            room("evil\u{202E}gnp", "x"),
            room("line\nbreak", "x"),
            room("", "x"),
            room(&"n".repeat(MAX_NAME_BYTES + 1), "x"),
            room("games", &"d".repeat(MAX_STATUS_BYTES * 2)),
            room("quiet", " \u{0}\t "),
        ]);
        let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["lobby", "games", "quiet"]);
        assert_eq!(listed[0].description.as_deref(), Some("Everyone welcome"));
        assert_eq!(
            listed[1].description.as_ref().unwrap().len(),
            MAX_STATUS_BYTES
        );
        assert_eq!(listed[2].description, None);
        let many = (0..MAX_LISTED_ROOMS + 10)
            .map(|i| room(&format!("r{i}"), ""))
            .collect();
        assert_eq!(clean_listing(many).len(), MAX_LISTED_ROOMS);
    }

    #[test]
    fn names_lose_controls_and_bidi_overrides() {
        assert_eq!(
            clean_name("Bob\u{202E}gnp.exe").as_deref(),
            Some("Bobgnp.exe")
        );
        assert_eq!(clean_name("a\u{0}b\u{7}c").as_deref(), Some("abc"));
        assert_eq!(clean_name("two\nlines").as_deref(), Some("two lines"));
        assert_eq!(
            clean_name("\u{2067}x\u{2069}\u{200F}").as_deref(),
            Some("x")
        );
        assert_eq!(clean_name(" \u{202D} \u{0} "), None);
        // Text that merely looks like HTML stays text (fronts escape it).
        assert_eq!(clean_name("<b>Bob</b>").as_deref(), Some("<b>Bob</b>"));
        // Emoji sequences keep their joiners.
        assert_eq!(clean_name("👩\u{200D}💻").as_deref(), Some("👩\u{200D}💻"));
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let name = "é".repeat(300); // 600 bytes
        let cleaned = clean_name(&name).unwrap();
        assert_eq!(cleaned.len(), MAX_NAME_BYTES);
        assert!(cleaned.chars().all(|c| c == 'é'));
        assert_eq!(truncate("a☃", 2), "a");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn only_inert_schemes_are_links() {
        for good in ["http://x.org", "HTTPS://x.org", "mailto:a@b", " xmpp:a@b"] {
            assert!(is_safe_link(good), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>",
            "vbscript:x",
            "java\tscript:x",
            "//evil.example/x",
            "",
        ] {
            assert!(!is_safe_link(bad), "{bad}");
        }
    }

    #[test]
    fn authorization_requests_are_cleaned() {
        let mut event = NetworkEvent::AuthorizationRequest(super::super::AuthorizationRequest {
            who: "1234".into(),
            nick: Some("\u{202E}\u{0}".into()),
            reason: Some(format!(
                "line\none\u{202E} {}",
                "x".repeat(2 * MAX_REASON_BYTES)
            )),
        });
        clean_event(&mut event);
        let NetworkEvent::AuthorizationRequest(request) = event else {
            unreachable!()
        };
        assert_eq!(request.nick, None);
        let reason = request.reason.unwrap();
        assert!(reason.starts_with("line one x"), "{reason}");
        assert_eq!(reason.len(), MAX_REASON_BYTES);
    }

    #[test]
    fn events_are_cleaned_in_place() {
        let mut event = NetworkEvent::ContactList {
            groups: vec![super::super::Group {
                id: "1".into(),
                name: "\u{202E}".into(),
            }],
            contacts: vec![Contact {
                id: "bob".into(),
                display_name: Some("B\u{0}ob".into()),
                groups: vec![],
            }],
        };
        clean_event(&mut event);
        let NetworkEvent::ContactList { groups, contacts } = event else {
            unreachable!()
        };
        assert_eq!(
            groups[0].name, "1",
            "an empty group name falls back to its id"
        );
        assert_eq!(contacts[0].display_name.as_deref(), Some("Bob"));
    }
}
