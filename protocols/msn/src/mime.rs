//! MIME message payloads of `MSG`: plain text with formatting, typing
//! notifications, datacasts (nudges, winks), and anything else kept as-is.

use std::borrow::Cow;

use crate::bytesplit;
use crate::error::Error;
use crate::format::TextFormat;

pub const CONTENT_TYPE_TEXT: &str = "text/plain; charset=UTF-8";
pub const CONTENT_TYPE_TYPING: &str = "text/x-msmsgscontrol";
/// Messenger 6.x's nudges and winks: a body of `ID: <n>` lines.
pub const CONTENT_TYPE_DATACAST: &str = "text/x-msnmsgr-datacast";

/// Datacast ids (MSNPiki "Datacast"): what a `text/x-msnmsgr-datacast` carries.
pub mod datacast {
    pub const NUDGE: u32 = 1;
    pub const WINK: u32 = 2;
    pub const VOICE_CLIP: u32 = 3;
    pub const ACTION: u32 = 4;
}

/// A message payload borrowed from the input: headers are scanned on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRef<'a> {
    head: &'a str,
    pub body: &'a [u8],
}

impl<'a> MessageRef<'a> {
    /// Splits headers from body at the first blank line. Liberal: LF-only line
    /// ends are accepted and a payload without a blank line is all headers.
    pub fn parse(payload: &'a [u8]) -> Result<MessageRef<'a>, Error> {
        let (head, body) = match blank_line(payload) {
            Some((i, n)) => (&payload[..i], &payload[i + n..]),
            None => (payload, &payload[payload.len()..]),
        };
        let head = std::str::from_utf8(head).map_err(|_| Error::BadMimeHeaders)?;
        Ok(MessageRef { head, body })
    }

    /// Headers in order, names and values trimmed.
    pub fn headers(&self) -> Headers<'a> {
        Headers { rest: self.head }
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The media type without parameters, e.g. `text/plain`.
    pub fn media_type(&self) -> Option<&'a str> {
        self.header("Content-Type")
            .map(|v| bytesplit::split(v, b';').next().unwrap_or("").trim_ascii())
    }

    pub fn is_text(&self) -> bool {
        self.media_type()
            .is_some_and(|t| t.eq_ignore_ascii_case("text/plain"))
    }

    pub fn is_typing(&self) -> bool {
        self.media_type()
            .is_some_and(|t| t.eq_ignore_ascii_case(CONTENT_TYPE_TYPING))
    }

    pub fn format(&self) -> Option<TextFormat> {
        self.header("X-MMS-IM-Format").map(TextFormat::parse)
    }

    /// The body as text (UTF-8; invalid bytes become U+FFFD).
    pub fn text(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.body)
    }

    pub fn typing_user(&self) -> Option<&'a str> {
        if self.is_typing() {
            self.header("TypingUser")
        } else {
            None
        }
    }

    pub fn to_owned(&self) -> Message {
        Message {
            headers: self
                .headers()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: self.body.to_vec(),
        }
    }
}

/// `(name, value)` pairs of a header block, trimmed; lines without a colon
/// are skipped.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        while !self.rest.is_empty() {
            let (line, rest) = bytesplit::split_once(self.rest, b'\n').unwrap_or((self.rest, ""));
            self.rest = rest;
            if let Some((name, value)) = bytesplit::split_once(line, b':') {
                // trim_ascii also drops the CR of a CRLF line end.
                return Some((name.trim_ascii(), value.trim_ascii()));
            }
        }
        None
    }
}

/// Start and length of the first blank line (`\r\n` or `\n` right after a
/// line end, or at the very start), in one pass.
fn blank_line(payload: &[u8]) -> Option<(usize, usize)> {
    let ending_at = |i: usize| match payload.get(i..) {
        Some([b'\r', b'\n', ..]) => Some(2),
        Some([b'\n', ..]) => Some(1),
        _ => None,
    };
    if let Some(n) = ending_at(0) {
        return Some((0, n));
    }
    let mut from = 0;
    while let Some(nl) = payload[from..].iter().position(|&b| b == b'\n') {
        let after = from + nl + 1;
        if let Some(n) = ending_at(after) {
            return Some((after, n));
        }
        from = after;
    }
    None
}

/// What a message is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKind {
    Text {
        text: String,
        format: Option<TextFormat>,
    },
    Typing {
        user: String,
    },
    /// `text/x-msnmsgr-datacast`: a nudge ([`datacast::NUDGE`]), a wink, ...;
    /// `id` 0 when the body names none.
    Datacast {
        id: u32,
    },
    /// Any other content type (ink, invitations, profile...), kept as is.
    Other {
        content_type: String,
    },
}

/// An owned MIME message: headers in order plus a raw body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    pub fn parse(payload: &[u8]) -> Result<Message, Error> {
        MessageRef::parse(payload).map(|m| m.to_owned())
    }

    /// A `text/plain` message, with `X-MMS-IM-Format` when a format is given.
    pub fn text(text: &str, format: Option<&TextFormat>) -> Message {
        let mut headers = vec![
            ("MIME-Version".to_string(), "1.0".to_string()),
            ("Content-Type".to_string(), CONTENT_TYPE_TEXT.to_string()),
        ];
        if let Some(f) = format {
            headers.push(("X-MMS-IM-Format".to_string(), f.to_header_value()));
        }
        Message {
            headers,
            body: text.as_bytes().to_vec(),
        }
    }

    /// A datacast: `ID: <id>` (a nudge is [`datacast::NUDGE`]). Messenger 6.x
    /// ends the body with a blank line; it sends it with ack mode `N`.
    pub fn datacast(id: u32) -> Message {
        Message {
            headers: vec![
                ("MIME-Version".to_string(), "1.0".to_string()),
                (
                    "Content-Type".to_string(),
                    CONTENT_TYPE_DATACAST.to_string(),
                ),
            ],
            body: format!("ID: {id}\r\n\r\n").into_bytes(),
        }
    }

    /// A typing notification from `email` (empty body).
    pub fn typing(email: &str) -> Message {
        Message {
            headers: vec![
                ("MIME-Version".to_string(), "1.0".to_string()),
                ("Content-Type".to_string(), CONTENT_TYPE_TYPING.to_string()),
                ("TypingUser".to_string(), email.to_string()),
            ],
            body: Vec::new(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn kind(&self) -> MessageKind {
        let content_type = self.header("Content-Type").unwrap_or("");
        let media = content_type.split(';').next().unwrap_or("").trim_ascii();
        if media.eq_ignore_ascii_case("text/plain") {
            MessageKind::Text {
                text: String::from_utf8_lossy(&self.body).into_owned(),
                format: self.header("X-MMS-IM-Format").map(TextFormat::parse),
            }
        } else if media.eq_ignore_ascii_case(CONTENT_TYPE_TYPING) {
            MessageKind::Typing {
                user: self.header("TypingUser").unwrap_or("").to_string(),
            }
        } else if media.eq_ignore_ascii_case(CONTENT_TYPE_DATACAST) {
            MessageKind::Datacast {
                id: datacast_id(&self.body),
            }
        } else {
            MessageKind::Other {
                content_type: content_type.to_string(),
            }
        }
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.body.len());
        self.encode_into(&mut out);
        out
    }
}

/// The `ID:` of a datacast body (`ID: 1\r\n\r\n`), 0 when there is none. The
/// body's other lines (a wink's `Data:`) are not read.
fn datacast_id(body: &[u8]) -> u32 {
    body.split(|&b| b == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim_ascii()
                .eq_ignore_ascii_case("ID")
                .then(|| value.trim_ascii().parse().ok())?
        })
        .unwrap_or(0)
}
