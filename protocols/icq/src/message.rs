//! Message bodies: the TYPE field of SEND_MESSAGE / RECEIVE_MESSAGE / CHANNEL_MESSAGE
//! and the structure it gives the text (fields separated by byte 0xFE, which is
//! `þ` once decoded).
//!
//! Where the types come from: text (0x0001), URL (0x0004) and "you were added"
//! (0x000C) are in the v2 document (`seeds/icq-v2-protocol.txt`, RECEIVE_MESSAGE). It
//! names the authorization request only as a command ("REQ_ADD_TO_LIST /
//! MSG_TO_NEW_USER 56 04 ... used to request permission to add someone with
//! 'authorize' status") without a layout, and is silent on the other types. The
//! types below follow the later public descriptions of the same message types (the
//! `ICQ_CMDxSUB_*` constants and parsers of Licq, which speaks v2 to v5 and keeps the
//! TYPE values of v2): 0x0006 authorization request (six 0xFE-separated fields:
//! nick, first name, last name, e-mail, authorize flag, reason), 0x0007 authorization
//! refused (the body is the reason), 0x0008 authorization granted (the body is an
//! optional text, usually empty), 0x0013 contact list (`count FE uin FE nick FE ...`,
//! each pair followed by FE; Licq's comment quotes the trace
//! `13 00 1E 00 32 FE 37 33 39 37 38 35 33 FE 46 6C 75 6E 6B 69 FE ...`, used byte
//! for byte in `tests/packets.rs`).

use crate::text::unrepresentable;

/// Field separator inside URL and "you were added" bodies (byte 0xFE).
pub const FIELD_SEPARATOR: char = '\u{FE}';

/// The TYPE codes the spec describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// 0x0001
    Text,
    /// 0x0004
    Url,
    /// 0x0006
    AuthRequest,
    /// 0x0007
    AuthDenied,
    /// 0x0008
    AuthGranted,
    /// 0x000C
    Added,
    /// 0x0013
    Contacts,
    Other(u16),
}

impl MessageKind {
    pub const TEXT: u16 = 0x0001;
    pub const URL: u16 = 0x0004;
    pub const AUTH_REQUEST: u16 = 0x0006;
    pub const AUTH_DENIED: u16 = 0x0007;
    pub const AUTH_GRANTED: u16 = 0x0008;
    pub const ADDED: u16 = 0x000C;
    pub const CONTACTS: u16 = 0x0013;

    pub fn from_code(code: u16) -> MessageKind {
        match code {
            Self::TEXT => MessageKind::Text,
            Self::URL => MessageKind::Url,
            Self::AUTH_REQUEST => MessageKind::AuthRequest,
            Self::AUTH_DENIED => MessageKind::AuthDenied,
            Self::AUTH_GRANTED => MessageKind::AuthGranted,
            Self::ADDED => MessageKind::Added,
            Self::CONTACTS => MessageKind::Contacts,
            other => MessageKind::Other(other),
        }
    }

    pub fn code(self) -> u16 {
        match self {
            MessageKind::Text => Self::TEXT,
            MessageKind::Url => Self::URL,
            MessageKind::AuthRequest => Self::AUTH_REQUEST,
            MessageKind::AuthDenied => Self::AUTH_DENIED,
            MessageKind::AuthGranted => Self::AUTH_GRANTED,
            MessageKind::Added => Self::ADDED,
            MessageKind::Contacts => Self::CONTACTS,
            MessageKind::Other(code) => code,
        }
    }
}

/// A message body parsed by its TYPE. Text uses `\n` line ends here and CR/LF on
/// the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageContent {
    Text(String),
    Url {
        description: String,
        url: String,
    },
    /// "You were added": someone put the receiver on their contact list.
    Added {
        nick: String,
        first: String,
        last: String,
        email: String,
        /// ASCII `0`: the adder requires authorization; `1`: anyone may add them.
        auth_required: bool,
    },
    /// "Please let me add you to my contact list" (0x0006), from someone the receiver's
    /// AUTHORIZE flag requires to ask.
    AuthRequest {
        nick: String,
        first: String,
        last: String,
        email: String,
        /// The requester's own AUTHORIZE flag, as in `Added`.
        auth_required: bool,
        reason: String,
    },
    /// The receiver's request was refused (0x0007), with the reason given.
    AuthDenied {
        reason: String,
    },
    /// The receiver's request was granted (0x0008); `text` is usually empty.
    AuthGranted {
        text: String,
    },
    /// Contacts recommended by the sender (0x0013): UIN and nick of each.
    Contacts(Vec<(u32, String)>),
    Other {
        kind: u16,
        text: String,
    },
}

impl MessageContent {
    /// Parses a decoded body. Never fails: missing fields are empty.
    pub fn parse(kind: u16, body: &str) -> MessageContent {
        let body = from_crlf(body);
        match MessageKind::from_code(kind) {
            MessageKind::Text => MessageContent::Text(body),
            MessageKind::Url => {
                let (description, url) = match body.split_once(FIELD_SEPARATOR) {
                    Some((d, u)) => (d.to_string(), u.to_string()),
                    None => (String::new(), body),
                };
                MessageContent::Url { description, url }
            }
            MessageKind::Added => {
                let mut parts = body.split(FIELD_SEPARATOR).map(str::to_string);
                let mut next = || parts.next().unwrap_or_default();
                let (nick, first, last, email) = (next(), next(), next(), next());
                let auth_required = next().trim() == "0";
                MessageContent::Added {
                    nick,
                    first,
                    last,
                    email,
                    auth_required,
                }
            }
            MessageKind::AuthRequest => {
                let mut parts = body.split(FIELD_SEPARATOR).map(str::to_string);
                let mut next = || parts.next().unwrap_or_default();
                let (nick, first, last, email) = (next(), next(), next(), next());
                let auth_required = next().trim() == "0";
                // The reason is the rest: a separator inside it is kept as text.
                let reason = body
                    .splitn(6, FIELD_SEPARATOR)
                    .nth(5)
                    .unwrap_or_default()
                    .to_string();
                MessageContent::AuthRequest {
                    nick,
                    first,
                    last,
                    email,
                    auth_required,
                    reason,
                }
            }
            MessageKind::AuthDenied => MessageContent::AuthDenied { reason: body },
            MessageKind::AuthGranted => MessageContent::AuthGranted { text: body },
            MessageKind::Contacts => MessageContent::Contacts(parse_contacts(&body)),
            MessageKind::Other(kind) => MessageContent::Other { kind, text: body },
        }
    }

    pub fn kind(&self) -> MessageKind {
        match self {
            MessageContent::Text(_) => MessageKind::Text,
            MessageContent::Url { .. } => MessageKind::Url,
            MessageContent::Added { .. } => MessageKind::Added,
            MessageContent::AuthRequest { .. } => MessageKind::AuthRequest,
            MessageContent::AuthDenied { .. } => MessageKind::AuthDenied,
            MessageContent::AuthGranted { .. } => MessageKind::AuthGranted,
            MessageContent::Contacts(_) => MessageKind::Contacts,
            MessageContent::Other { kind, .. } => MessageKind::from_code(*kind),
        }
    }

    /// TYPE and body as they go on the wire (before Windows-1252 encoding).
    pub fn to_wire(&self) -> (u16, String) {
        let sep = FIELD_SEPARATOR.to_string();
        let body = match self {
            MessageContent::Text(t)
            | MessageContent::Other { text: t, .. }
            | MessageContent::AuthDenied { reason: t }
            | MessageContent::AuthGranted { text: t } => to_crlf(t),
            MessageContent::Url { description, url } => {
                [to_crlf(description), url.clone()].join(&sep)
            }
            MessageContent::Added {
                nick,
                first,
                last,
                email,
                auth_required,
            } => {
                let auth = if *auth_required { "0" } else { "1" };
                [nick.as_str(), first, last, email, auth].join(&sep)
            }
            MessageContent::AuthRequest {
                nick,
                first,
                last,
                email,
                auth_required,
                reason,
            } => {
                let auth = if *auth_required { "0" } else { "1" };
                let reason = to_crlf(reason);
                [nick.as_str(), first, last, email, auth, &reason].join(&sep)
            }
            MessageContent::Contacts(list) => {
                // `count FE` then `uin FE nick FE` per contact.
                let mut out = format!("{}{sep}", list.len());
                for (uin, nick) in list {
                    out.push_str(&format!("{uin}{sep}{nick}{sep}"));
                }
                out
            }
        };
        (self.kind().code(), body)
    }

    /// Characters that cannot be sent: those outside Windows-1252, and `þ` inside a
    /// field of a structured body (it would split the field).
    pub fn unrepresentable(&self) -> Vec<char> {
        match self {
            MessageContent::Text(t)
            | MessageContent::Other { text: t, .. }
            | MessageContent::AuthDenied { reason: t }
            | MessageContent::AuthGranted { text: t } => unrepresentable(t),
            MessageContent::Url { description, url } => structured(&[description, url]),
            MessageContent::AuthRequest {
                nick,
                first,
                last,
                email,
                reason,
                ..
            } => {
                // The reason is the last field: a separator in it is read back as text.
                let mut bad = structured(&[nick, first, last, email]);
                bad.extend(unrepresentable(reason));
                bad
            }
            MessageContent::Contacts(list) => {
                let nicks: Vec<&String> = list.iter().map(|(_, nick)| nick).collect();
                structured(&nicks)
            }
            MessageContent::Added {
                nick,
                first,
                last,
                email,
                ..
            } => structured(&[nick, first, last, email]),
        }
    }

    /// A one-line human-readable rendering, for a chat window.
    pub fn to_plain_text(&self) -> String {
        match self {
            MessageContent::Text(t) | MessageContent::Other { text: t, .. } => t.clone(),
            MessageContent::AuthRequest { nick, reason, .. } => {
                let mut s =
                    format!("{nick} asks you to authorize them to add you to their contact list");
                if !reason.trim().is_empty() {
                    s.push_str(&format!(": {reason}"));
                }
                s
            }
            MessageContent::AuthDenied { reason } if reason.trim().is_empty() => {
                "Authorization denied".to_string()
            }
            MessageContent::AuthDenied { reason } => format!("Authorization denied: {reason}"),
            MessageContent::AuthGranted { text } if text.trim().is_empty() => {
                "Authorization granted".to_string()
            }
            MessageContent::AuthGranted { text } => format!("Authorization granted: {text}"),
            MessageContent::Contacts(list) => {
                let shown: Vec<String> = list
                    .iter()
                    .map(|(uin, nick)| format!("{nick} ({uin})"))
                    .collect();
                format!("Contacts: {}", shown.join(", "))
            }
            MessageContent::Url { description, url } if description.is_empty() => url.clone(),
            MessageContent::Url { description, url } => format!("{description} {url}"),
            MessageContent::Added {
                nick,
                first,
                last,
                email,
                ..
            } => {
                let name = [first.as_str(), last.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ");
                let mut s = format!("{nick} added you to their contact list");
                if !name.is_empty() || !email.is_empty() {
                    s.push_str(&format!(
                        " ({name}{}{email})",
                        if name.is_empty() || email.is_empty() {
                            ""
                        } else {
                            ", "
                        }
                    ));
                }
                s
            }
        }
    }
}

fn structured(fields: &[&String]) -> Vec<char> {
    fields
        .iter()
        .flat_map(|f| {
            let mut bad = unrepresentable(f);
            bad.extend(f.chars().filter(|&c| c == FIELD_SEPARATOR));
            bad
        })
        .collect()
}

/// The most contacts kept from one contact-list message (the body is at most a few
/// KiB, so this only matters for a count that lies).
pub const MAX_LISTED_CONTACTS: usize = 200;

/// `count FE uin FE nick FE ...`: pairs whose UIN is not a number are skipped; the
/// count is a hint (a short or lying count neither drops nor invents entries).
fn parse_contacts(body: &str) -> Vec<(u32, String)> {
    let mut fields = body.split(FIELD_SEPARATOR);
    let _count = fields.next();
    let mut list = Vec::new();
    while let (Some(uin), Some(nick)) = (fields.next(), fields.next()) {
        if list.len() >= MAX_LISTED_CONTACTS {
            break;
        }
        if let Ok(uin) = uin.trim().parse::<u32>() {
            list.push((uin, nick.to_string()));
        }
    }
    list
}

fn to_crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn from_crlf(text: &str) -> String {
    text.replace("\r\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_body() {
        let m = MessageContent::parse(4, "Look\u{FE}http://x.org/");
        assert_eq!(
            m,
            MessageContent::Url {
                description: "Look".into(),
                url: "http://x.org/".into()
            }
        );
        assert_eq!(m.to_wire(), (4, "Look\u{FE}http://x.org/".into()));
        assert_eq!(m.to_plain_text(), "Look http://x.org/");
    }

    #[test]
    fn added_body() {
        let m = MessageContent::parse(0x0C, "bob\u{FE}Bob\u{FE}Smith\u{FE}b@x\u{FE}1");
        assert_eq!(
            m,
            MessageContent::Added {
                nick: "bob".into(),
                first: "Bob".into(),
                last: "Smith".into(),
                email: "b@x".into(),
                auth_required: false
            }
        );
        assert_eq!(m.to_wire().1, "bob\u{FE}Bob\u{FE}Smith\u{FE}b@x\u{FE}1");
        assert_eq!(
            m.to_plain_text(),
            "bob added you to their contact list (Bob Smith, b@x)"
        );
        // Missing fields are empty, never a panic.
        assert_eq!(
            MessageContent::parse(0x0C, "x"),
            MessageContent::Added {
                nick: "x".into(),
                first: String::new(),
                last: String::new(),
                email: String::new(),
                auth_required: false
            }
        );
    }

    #[test]
    fn line_ends_and_separator_checks() {
        assert_eq!(
            MessageContent::parse(1, "a\r\nb"),
            MessageContent::Text("a\nb".into())
        );
        assert_eq!(MessageContent::Text("a\nb".into()).to_wire().1, "a\r\nb");
        let url = MessageContent::Url {
            description: "þ😀".into(),
            url: "u".into(),
        };
        assert_eq!(url.unrepresentable(), vec!['😀', 'þ']);
        assert!(MessageContent::Text("þ".into())
            .unrepresentable()
            .is_empty());
    }
}

#[cfg(test)]
mod auth_tests {
    use super::*;

    #[test]
    fn authorization_request_fields_in_order() {
        let m = MessageContent::parse(
            6,
            "bob\u{FE}Bob\u{FE}Smith\u{FE}b@x\u{FE}0\u{FE}let me\r\nin",
        );
        assert_eq!(
            m,
            MessageContent::AuthRequest {
                nick: "bob".into(),
                first: "Bob".into(),
                last: "Smith".into(),
                email: "b@x".into(),
                auth_required: true,
                reason: "let me\nin".into(),
            }
        );
        assert_eq!(
            m.to_plain_text(),
            "bob asks you to authorize them to add you to their contact list: let me\nin"
        );
        // A separator in the reason is the reason's; missing fields are empty.
        let MessageContent::AuthRequest { reason, .. } =
            MessageContent::parse(6, "a\u{FE}\u{FE}\u{FE}\u{FE}1\u{FE}x\u{FE}y")
        else {
            panic!()
        };
        assert_eq!(reason, "x\u{FE}y");
        assert!(matches!(
            MessageContent::parse(6, ""),
            MessageContent::AuthRequest { nick, reason, .. } if nick.is_empty() && reason.is_empty()
        ));
    }

    #[test]
    fn granted_denied_and_their_kinds() {
        assert_eq!(
            MessageContent::parse(7, "not you"),
            MessageContent::AuthDenied {
                reason: "not you".into()
            }
        );
        assert_eq!(
            MessageContent::parse(8, "").to_plain_text(),
            "Authorization granted"
        );
        assert_eq!(
            MessageContent::parse(7, "").to_plain_text(),
            "Authorization denied"
        );
        for code in [6, 7, 8, 0x13] {
            assert_eq!(MessageKind::from_code(code).code(), code);
            assert_eq!(MessageContent::parse(code, "").kind().code(), code);
        }
    }

    #[test]
    fn contact_lists_are_read_liberally_and_bounded() {
        // A lying count, a non-numeric UIN and a missing trailing separator.
        assert_eq!(
            MessageContent::parse(0x13, "9\u{FE}1\u{FE}a\u{FE}x\u{FE}b\u{FE}3\u{FE}c"),
            MessageContent::Contacts(vec![(1, "a".into()), (3, "c".into())])
        );
        assert_eq!(
            MessageContent::parse(0x13, ""),
            MessageContent::Contacts(vec![])
        );
        let long: String = (0..1000).map(|i| format!("{i}\u{FE}n\u{FE}")).collect();
        let MessageContent::Contacts(list) =
            MessageContent::parse(0x13, &format!("1000\u{FE}{long}"))
        else {
            panic!()
        };
        assert_eq!(list.len(), MAX_LISTED_CONTACTS);
        let m = MessageContent::Contacts(vec![(5, "þ".into())]);
        assert_eq!(m.unrepresentable(), vec!['þ']);
        assert_eq!(m.to_plain_text(), "Contacts: þ (5)");
    }
}
