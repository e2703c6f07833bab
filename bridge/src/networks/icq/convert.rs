//! Mapping between ICQ v2 values and the core's: statuses, message bodies, profiles,
//! search queries, and outgoing text (Windows-1252, splitting).

use icq_proto::{ExtInfo, MessageContent, SearchQuery, Status, UserRecord};

use crate::core::{FormattedText, MessageKind, Presence, PresenceState, Profile};

/// Longest message body (Windows-1252 bytes, CR/LF counted as two) the bridge puts in
/// one SEND_MESSAGE. The session accepts up to 4096 bytes, but ICQ clients of the v2
/// era cap messages at 450 characters and may cut or refuse longer ones, so longer
/// text is split into parts of this size.
pub const MAX_CHUNK_BYTES: usize = 450;

/// A contact's ICQ status as the core's presence, with a status message to show.
pub fn presence_of(status: Status) -> Presence {
    let (state, text) = match status {
        Status::ONLINE => (PresenceState::Online, "Online"),
        Status::AWAY => (PresenceState::Away, "Away"),
        Status::DND => (PresenceState::Busy, "Do not disturb"),
        Status::INVISIBLE => (PresenceState::Invisible, "Invisible"),
        // Later ICQ versions use more bits; map them by meaning rather than refuse them.
        Status(bits) if bits & 0x100 != 0 => (PresenceState::Invisible, "Invisible"),
        Status(bits) if bits & 0x10 != 0 => (PresenceState::Busy, "Occupied"),
        Status(bits) if bits & 0x04 != 0 => (PresenceState::Away, "Not available"),
        Status(bits) if bits & 0x01 != 0 => (PresenceState::Away, "Away"),
        Status(_) => (PresenceState::Online, "Online"),
    };
    Presence {
        state,
        status: Some(text.to_owned()),
    }
}

pub fn offline_presence() -> Presence {
    Presence {
        state: PresenceState::Offline,
        status: Some("Offline".to_owned()),
    }
}

/// The status to announce for the user's own presence. ICQ v2 has no "offline while
/// logged in": invisible is the nearest.
pub fn status_of(state: PresenceState) -> Status {
    match state {
        PresenceState::Online => Status::ONLINE,
        PresenceState::Away => Status::AWAY,
        PresenceState::Busy => Status::DND,
        PresenceState::Invisible | PresenceState::Offline => Status::INVISIBLE,
    }
}

/// What identifies a received message without an id (ICQ v2 has none): its sender, the
/// minute the server dated it (a copy sent again keeps it; the same words sent later do
/// not) and its text, hashed (the core keeps it until the message's ACK went out; see
/// `NetworkEvent::Message::ack_key`).
pub fn ack_key(from: u32, sent_minute: Option<i64>, content: &MessageContent) -> String {
    use sha1::{Digest, Sha1};
    let (_, text) = incoming_text(content);
    let mut hasher = Sha1::new();
    hasher.update(from.to_be_bytes());
    hasher.update(sent_minute.unwrap_or(-1).to_be_bytes());
    hasher.update(text.plain.as_bytes());
    hasher.finalize()[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A received message body as Matrix text.
pub fn incoming_text(content: &MessageContent) -> (MessageKind, FormattedText) {
    match content {
        MessageContent::Text(text) | MessageContent::Other { text, .. } => {
            (MessageKind::Text, FormattedText::plain(text.clone()))
        }
        MessageContent::Url { url, .. } if !crate::core::sanitize::is_safe_link(url) => {
            // `javascript:` and the like stay text: a client must not run them.
            (
                MessageKind::Text,
                FormattedText::plain(content.to_plain_text()),
            )
        }
        MessageContent::Url { description, url } => {
            let link = format!("<a href=\"{}\">{}</a>", escape(url), escape(url));
            let html = if description.is_empty() {
                link
            } else {
                format!("{} {link}", escape(description).replace('\n', "<br>"))
            };
            let text = FormattedText {
                plain: content.to_plain_text(),
                html: Some(html),
            };
            (MessageKind::Text, text)
        }
        MessageContent::AuthGranted { .. } => (
            MessageKind::Notice,
            FormattedText::plain(
                "Authorization granted: you may add them to your contact list, and you will see their presence.",
            ),
        ),
        MessageContent::AuthDenied { reason } => {
            let mut plain = "Authorization denied: they refused to be added to your contact list".to_owned();
            match crate::core::sanitize::clean_text(reason, crate::core::sanitize::MAX_STATUS_BYTES) {
                Some(reason) => plain.push_str(&format!(" ({reason})")),
                None => plain.push('.'),
            }
            (MessageKind::Notice, FormattedText::plain(plain))
        }
        MessageContent::Contacts(list) => {
            let mut plain = format!("Sent you {} contact(s):", list.len());
            for (uin, nick) in list {
                let nick = crate::core::sanitize::clean_name(nick)
                    .map(|n| format!("{n} ({uin})"))
                    .unwrap_or_else(|| uin.to_string());
                plain.push_str(&format!("\n- {nick}: add icq {uin}"));
            }
            (MessageKind::Notice, FormattedText::plain(plain))
        }
        // Turned into an authorization request event before this (see login.rs); shown
        // as text if it ever comes here.
        MessageContent::AuthRequest { .. } => (
            MessageKind::Notice,
            FormattedText::plain(content.to_plain_text()),
        ),
        MessageContent::Added { auth_required, .. } => {
            let mut plain = content.to_plain_text();
            plain.push('.');
            if *auth_required {
                plain.push_str(" They ask you to authorize them.");
            }
            (MessageKind::Notice, FormattedText::plain(plain))
        }
    }
}

/// The answer to an authorization request: granted (0x0008) or denied (0x0007).
pub fn authorization_answer(grant: bool) -> MessageContent {
    if grant {
        MessageContent::AuthGranted {
            text: String::new(),
        }
    } else {
        MessageContent::AuthDenied {
            reason: String::new(),
        }
    }
}

/// The request the login sends to a contact the user added who requires authorization.
/// The bridge does not know the user's own directory entry: the fields about them are
/// empty (the receiver knows the UIN it came from).
pub fn authorization_request() -> MessageContent {
    MessageContent::AuthRequest {
        nick: String::new(),
        first: String::new(),
        last: String::new(),
        email: String::new(),
        auth_required: false,
        reason: "Please let me add you to my contact list.".to_owned(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What a `search` text asks for: a UIN if numeric, an e-mail address if it has an
/// `@`, a nick otherwise.
pub fn search_query(text: &str) -> SearchQuery {
    let text = text.trim();
    if let Ok(uin) = text.parse::<u32>() {
        return SearchQuery::Uin(uin);
    }
    if text.contains('@') {
        return SearchQuery::Email(text.to_owned());
    }
    SearchQuery::Name {
        nick: text.to_owned(),
        first: String::new(),
        last: String::new(),
    }
}

/// A directory record (search result or INFO) as a profile.
pub fn profile_of(user: &UserRecord, ext: Option<&ExtInfo>) -> Profile {
    let mut details = Vec::new();
    let mut add = |label: &str, value: &str| {
        if !value.trim().is_empty() {
            details.push((label.to_owned(), value.to_owned()));
        }
    };
    add("First name", &user.first);
    add("Last name", &user.last);
    add("E-mail", &user.email);
    if let Some(ext) = ext {
        add("City", &ext.city);
        add("State", &ext.state);
        // 0xFFFF / 0x9C are the spec's "not entered" markers.
        if ext.country_code != 0xFFFF && ext.country_status != 0x9C {
            add("Country code", &ext.country_code.to_string());
        }
        if ext.age != 0xFFFF && ext.age != 0 {
            add("Age", &ext.age.to_string());
        }
        add(
            "Sex",
            match ext.sex {
                1 => "female",
                2 => "male",
                _ => "",
            },
        );
        add("Phone", &ext.phone);
        add("Homepage", &ext.homepage);
        add("About", &ext.about);
    }
    if user.auth_required {
        add("Authorization", "required to add this user");
    }
    Profile {
        id: user.uin.to_string(),
        display_name: Some(user.nick.clone()).filter(|n| !n.trim().is_empty()),
        details,
    }
}

/// Outgoing text prepared for ICQ: the parts to send and what to tell the user.
#[derive(Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub parts: Vec<String>,
    pub warnings: Vec<String>,
}

pub fn outgoing_text(text: &str) -> Outgoing {
    let mut warnings = Vec::new();
    let mut bad: Vec<char> = Vec::new();
    for c in icq_proto::unrepresentable(text) {
        if !bad.contains(&c) {
            bad.push(c);
        }
    }
    if !bad.is_empty() {
        let list: Vec<String> = bad.iter().map(|c| describe_char(*c)).collect();
        warnings.push(format!(
            "Some characters could not be sent as ICQ text and were replaced by '?': {}",
            list.join(", ")
        ));
    }
    let parts = split_text(text, MAX_CHUNK_BYTES);
    if parts.len() > 1 {
        warnings.push(format!(
            "Your message was longer than ICQ's {MAX_CHUNK_BYTES} characters and was sent in {} parts.",
            parts.len()
        ));
    }
    Outgoing { parts, warnings }
}

fn describe_char(c: char) -> String {
    if c.is_control() || c == '\0' {
        format!("U+{:04X}", u32::from(c))
    } else {
        c.to_string()
    }
}

/// Bytes a character takes on the wire: one in Windows-1252 (`?` for the rest), two
/// for `\n`, which goes as CR/LF.
fn wire_cost(c: char) -> usize {
    if c == '\n' {
        2
    } else {
        1
    }
}

/// Splits text into parts of at most `max` wire bytes, after the last whitespace of a
/// part where there is one. The parts concatenated give the text back.
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let max = max.max(2);
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut cost = 0;
    for c in text.chars() {
        while cost + wire_cost(c) > max && !current.is_empty() {
            let cut = current
                .char_indices()
                .filter(|(_, ch)| ch.is_whitespace())
                .map(|(i, ch)| i + ch.len_utf8())
                .next_back();
            let rest = match cut {
                Some(i) => current.split_off(i),
                None => String::new(),
            };
            parts.push(std::mem::take(&mut current));
            current = rest;
            cost = current.chars().map(wire_cost).sum();
        }
        current.push(c);
        cost += wire_cost(c);
    }
    if !current.is_empty() || parts.is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_keys_tell_copies_from_new_messages() {
        let hi = MessageContent::Text("hi".into());
        let key = ack_key(1002, Some(1_000_000_020), &hi);
        assert_eq!(key, ack_key(1002, Some(1_000_000_020), &hi), "a copy");
        assert_eq!(key.len(), 20);
        assert_ne!(
            key,
            ack_key(1002, Some(1_000_000_080), &hi),
            "a later minute"
        );
        assert_ne!(
            key,
            ack_key(1003, Some(1_000_000_020), &hi),
            "another sender"
        );
        let other = MessageContent::Text("hi!".into());
        assert_ne!(
            key,
            ack_key(1002, Some(1_000_000_020), &other),
            "other words"
        );
    }

    #[test]
    fn statuses() {
        let dnd = presence_of(Status::DND);
        assert_eq!(dnd.state, PresenceState::Busy);
        assert_eq!(dnd.status.as_deref(), Some("Do not disturb"));
        assert_eq!(presence_of(Status::AWAY).state, PresenceState::Away);
        assert_eq!(presence_of(Status(0x05)).state, PresenceState::Away);
        assert_eq!(presence_of(Status::ONLINE).state, PresenceState::Online);
        assert_eq!(status_of(PresenceState::Busy), Status::DND);
    }

    #[test]
    fn url_gets_a_link() {
        let (kind, text) = incoming_text(&MessageContent::Url {
            description: "see <this>".into(),
            url: "http://x.org/?a=1&b=2".into(),
        });
        assert_eq!(kind, MessageKind::Text);
        assert_eq!(
            text.html.as_deref(),
            Some("see &lt;this&gt; <a href=\"http://x.org/?a=1&amp;b=2\">http://x.org/?a=1&amp;b=2</a>")
        );
        assert_eq!(text.plain, "see <this> http://x.org/?a=1&b=2");
    }

    #[test]
    fn only_inert_urls_get_a_link() {
        for url in ["javascript:alert(1)", "data:text/html,<script>x</script>"] {
            let (_, text) = incoming_text(&MessageContent::Url {
                description: "click".into(),
                url: url.into(),
            });
            assert_eq!(text.html, None, "{url}");
            assert_eq!(text.plain, format!("click {url}"));
        }
    }

    #[test]
    fn added_is_a_notice() {
        let (kind, text) = incoming_text(&MessageContent::Added {
            nick: "bob".into(),
            first: "Bob".into(),
            last: String::new(),
            email: String::new(),
            auth_required: false,
        });
        assert_eq!(kind, MessageKind::Notice);
        assert_eq!(text.plain, "bob added you to their contact list (Bob).");
    }

    /// Granted, denied and contact lists are notices in the contact's conversation;
    /// every listed contact gets its `add` hint, and their legacy text is cleaned.
    #[test]
    fn authorization_answers_and_contact_lists_are_notices() {
        let (kind, text) = incoming_text(&MessageContent::AuthGranted {
            text: String::new(),
        });
        assert_eq!(kind, MessageKind::Notice);
        assert!(text.plain.starts_with("Authorization granted"), "{text:?}");
        let (kind, text) = incoming_text(&MessageContent::AuthDenied {
            reason: "no\u{202E}\nway".into(),
        });
        assert_eq!(kind, MessageKind::Notice);
        assert_eq!(
            text.plain,
            "Authorization denied: they refused to be added to your contact list (no way)"
        );
        let (kind, text) = incoming_text(&MessageContent::Contacts(vec![
            (7397853, "Flunki".into()),
            (7357219, "\n".into()),
        ]));
        assert_eq!(kind, MessageKind::Notice);
        assert_eq!(
            text.plain,
            "Sent you 2 contact(s):\n- Flunki (7397853): add icq 7397853\n- 7357219: add icq 7357219"
        );
        assert_eq!(text.html, None);
        assert_eq!(
            authorization_answer(false).to_wire(),
            (0x0007, String::new())
        );
        assert_eq!(authorization_answer(true).to_wire().0, 0x0008);
    }

    #[test]
    fn search_kinds() {
        assert_eq!(search_query(" 1234 "), SearchQuery::Uin(1234));
        assert_eq!(search_query("a@b.c"), SearchQuery::Email("a@b.c".into()));
        assert!(matches!(search_query("bob"), SearchQuery::Name { nick, .. } if nick == "bob"));
        // Too large for a UIN: a nick.
        assert!(matches!(
            search_query("99999999999"),
            SearchQuery::Name { .. }
        ));
    }

    #[test]
    fn replaced_characters_are_reported_once() {
        let out = outgoing_text("snowman ☃ ☃ and 😀, café");
        assert_eq!(out.parts, vec!["snowman ☃ ☃ and 😀, café".to_owned()]);
        assert_eq!(
            out.warnings,
            vec!["Some characters could not be sent as ICQ text and were replaced by '?': ☃, 😀"]
        );
        assert!(outgoing_text("plain").warnings.is_empty());
    }

    #[test]
    fn splitting_keeps_all_text_and_the_limit() {
        let text = format!("{}{}\n\nend", "word ".repeat(300), "x".repeat(1000));
        let parts = split_text(&text, MAX_CHUNK_BYTES);
        assert_eq!(parts.concat(), text);
        for p in &parts {
            let cost: usize = p.chars().map(wire_cost).sum();
            assert!(cost <= MAX_CHUNK_BYTES, "{cost}");
        }
        // Word boundaries are preferred.
        assert!(parts[0].ends_with(' '));
        assert_eq!(split_text("", 10), vec![String::new()]);
        assert_eq!(split_text("\n\n\n", 2), vec!["\n", "\n", "\n"]);
        let parts = split_text("aaa bbb", 4);
        assert_eq!(parts, vec!["aaa ", "bbb"]);
        let w = outgoing_text(&"y".repeat(1000)).warnings;
        assert!(w[0].contains("3 parts"), "{w:?}");
    }
}
