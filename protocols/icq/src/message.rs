//! Message bodies: the TYPE field of SEND_MESSAGE / RECEIVE_MESSAGE / CHANNEL_MESSAGE
//! and the structure it gives the text (fields separated by byte 0xFE, which is
//! `þ` once decoded).

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
    /// 0x000C
    Added,
    Other(u16),
}

impl MessageKind {
    pub const TEXT: u16 = 0x0001;
    pub const URL: u16 = 0x0004;
    pub const ADDED: u16 = 0x000C;

    pub fn from_code(code: u16) -> MessageKind {
        match code {
            Self::TEXT => MessageKind::Text,
            Self::URL => MessageKind::Url,
            Self::ADDED => MessageKind::Added,
            other => MessageKind::Other(other),
        }
    }

    pub fn code(self) -> u16 {
        match self {
            MessageKind::Text => Self::TEXT,
            MessageKind::Url => Self::URL,
            MessageKind::Added => Self::ADDED,
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
            MessageKind::Other(kind) => MessageContent::Other { kind, text: body },
        }
    }

    pub fn kind(&self) -> MessageKind {
        match self {
            MessageContent::Text(_) => MessageKind::Text,
            MessageContent::Url { .. } => MessageKind::Url,
            MessageContent::Added { .. } => MessageKind::Added,
            MessageContent::Other { kind, .. } => MessageKind::from_code(*kind),
        }
    }

    /// TYPE and body as they go on the wire (before Windows-1252 encoding).
    pub fn to_wire(&self) -> (u16, String) {
        let sep = FIELD_SEPARATOR.to_string();
        let body = match self {
            MessageContent::Text(t) | MessageContent::Other { text: t, .. } => to_crlf(t),
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
        };
        (self.kind().code(), body)
    }

    /// Characters that cannot be sent: those outside Windows-1252, and `þ` inside a
    /// field of a structured body (it would split the field).
    pub fn unrepresentable(&self) -> Vec<char> {
        match self {
            MessageContent::Text(t) | MessageContent::Other { text: t, .. } => unrepresentable(t),
            MessageContent::Url { description, url } => structured(&[description, url]),
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
