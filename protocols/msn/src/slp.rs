//! MSNSLP: the SIP-like text that negotiates a P2P session, carried as the
//! body of P2P messages with session id 0.
//!
//! ```text
//! INVITE MSNMSGR:bob@hotmail.com MSNSLP/1.0
//! To: <msnmsgr:bob@hotmail.com>
//! From: <msnmsgr:alice@hotmail.com>
//! Via: MSNSLP/1.0/TLP ;branch={GUID}
//! CSeq: 0
//! Call-ID: {GUID}
//! Max-Forwards: 0
//! Content-Type: application/x-msnmsgr-sessionreqbody
//! Content-Length: N
//!
//! EUF-GUID: {...}\r\nSessionID: 1980589\r\nAppID: 1\r\nContext: base64\r\n\r\n\0
//! ```
//!
//! The body ends with a NUL byte that `Content-Length` counts (libpurple
//! `msn_slpmsg_sip_new`, Kopete's "the body must have a null character").

use crate::b64;
use crate::bytesplit;
use crate::p2p::P2pError;

pub const EUF_GUID_MSNOBJ: &str = "{A4268EEC-FEC5-49E5-95C3-F126696BDBF6}";
pub const EUF_GUID_FILE: &str = "{5D3E02AB-6190-11D3-BBBB-00C04F795683}";
pub const CONTENT_TYPE_SESSION_REQ: &str = "application/x-msnmsgr-sessionreqbody";
pub const CONTENT_TYPE_TRANS_REQ: &str = "application/x-msnmsgr-transreqbody";
/// Answer to a `transreqbody` INVITE (libpurple `got_invite`).
pub const CONTENT_TYPE_TRANS_RESP: &str = "application/x-msnmsgr-transrespbody";
/// The nonce of an answer that does not listen: all zeros (libpurple
/// `got_invite` with direct connections disabled, Kopete, Miranda).
pub const NULL_NONCE: &str = "{00000000-0000-0000-0000-000000000000}";
pub const CONTENT_TYPE_SESSION_CLOSE: &str = "application/x-msnmsgr-sessionclosebody";
/// Content type of bodiless answers (`500 Internal Error`).
pub const CONTENT_TYPE_NULL: &str = "null";
/// Longest MSNSLP message accepted (a file invite with a preview is a few
/// KiB).
pub const MAX_SLP_LEN: usize = 64 * 1024;
/// Most header lines or body fields kept.
const MAX_FIELDS: usize = 64;
/// Largest decoded `Context`.
pub const MAX_CONTEXT: usize = 48 * 1024;

const VERSION: &str = "MSNSLP/1.0";

/// The first line: a request (`INVITE`, `BYE`) or a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, to: String },
    Response { code: u16, reason: String },
}

/// One MSNSLP message. Headers are typed; unknown headers are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlpMessage {
    pub start: StartLine,
    /// `To: <msnmsgr:...>`, the address only.
    pub to: String,
    pub from: String,
    /// The `branch` of `Via: MSNSLP/1.0/TLP ;branch={...}`, braces kept.
    pub branch: String,
    pub cseq: u32,
    pub call_id: String,
    pub max_forwards: u32,
    pub content_type: String,
    /// `Key: Value` lines of the body, in order.
    pub body: Vec<(String, String)>,
}

impl SlpMessage {
    /// A request (`INVITE`, `BYE`) with CSeq 0 and Max-Forwards 0, as every
    /// client sends them.
    pub fn request(
        method: &str,
        to: &str,
        from: &str,
        branch: &str,
        call_id: &str,
        content_type: &str,
        body: &[(&str, &str)],
    ) -> SlpMessage {
        SlpMessage {
            start: StartLine::Request {
                method: method.to_string(),
                to: to.to_string(),
            },
            to: to.to_string(),
            from: from.to_string(),
            branch: branch.to_string(),
            cseq: 0,
            call_id: call_id.to_string(),
            max_forwards: 0,
            content_type: content_type.to_string(),
            body: body
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// INVITE for an MSNObject (display picture): `Context` is the base64 of
    /// the `<msnobj .../>` text as received (libpurple
    /// `msn_slplink_request_object`).
    pub fn picture_invite(
        to: &str,
        from: &str,
        branch: &str,
        call_id: &str,
        session_id: u32,
        msnobj: &str,
    ) -> SlpMessage {
        let call = (to, from, branch, call_id, session_id);
        SlpMessage::session_invite(call, EUF_GUID_MSNOBJ, 1, msnobj.as_bytes())
    }

    /// INVITE for a file: `Context` is the base64 of a binary
    /// [`FileContext`](crate::FileContext) descriptor.
    pub fn file_invite(
        to: &str,
        from: &str,
        branch: &str,
        call_id: &str,
        session_id: u32,
        context: &[u8],
    ) -> SlpMessage {
        let call = (to, from, branch, call_id, session_id);
        SlpMessage::session_invite(call, EUF_GUID_FILE, 2, context)
    }

    /// A session INVITE (`to`, `from`, branch, Call-ID, session id) for an application:
    /// its EUF-GUID, AppID and the base64 of its context.
    fn session_invite(
        (to, from, branch, call_id, session_id): (&str, &str, &str, &str, u32),
        euf_guid: &str,
        app_id: u32,
        context: &[u8],
    ) -> SlpMessage {
        let (sid, app) = (session_id.to_string(), app_id.to_string());
        let context = b64::encode(context);
        SlpMessage::request(
            "INVITE",
            to,
            from,
            branch,
            call_id,
            CONTENT_TYPE_SESSION_REQ,
            &[
                ("EUF-GUID", euf_guid),
                ("SessionID", &sid),
                ("AppID", &app),
                ("Context", &context),
            ],
        )
    }

    /// `BYE` closing the call `call_id` (a new branch, CSeq 0, empty
    /// `sessionclosebody`: libpurple `msn_slpcall_close`).
    pub fn bye(to: &str, from: &str, branch: &str, call_id: &str) -> SlpMessage {
        SlpMessage::request(
            "BYE",
            to,
            from,
            branch,
            call_id,
            CONTENT_TYPE_SESSION_CLOSE,
            &[],
        )
    }

    /// An answer to this request: addresses swapped, same branch and
    /// Call-ID, CSeq + 1 (libpurple `msn_slp_send_ok`/`send_decline`).
    pub fn response(
        &self,
        code: u16,
        reason: &str,
        content_type: &str,
        body: &[(&str, &str)],
    ) -> SlpMessage {
        SlpMessage {
            start: StartLine::Response {
                code,
                reason: reason.to_string(),
            },
            to: self.from.clone(),
            from: self.to.clone(),
            branch: self.branch.clone(),
            cseq: self.cseq.wrapping_add(1),
            call_id: self.call_id.clone(),
            max_forwards: 0,
            content_type: content_type.to_string(),
            body: body
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// `200 OK` accepting an INVITE: `SessionID` echoed.
    pub fn ok(&self) -> SlpMessage {
        let sid = self.field("SessionID").unwrap_or("0").to_string();
        self.response(200, "OK", &self.content_type, &[("SessionID", &sid)])
    }

    /// `603 Decline` refusing an INVITE.
    pub fn decline(&self) -> SlpMessage {
        let sid = self.field("SessionID").unwrap_or("0").to_string();
        self.response(603, "Decline", &self.content_type, &[("SessionID", &sid)])
    }

    /// `200 OK` to a direct-connection INVITE (`transreqbody`) saying we do
    /// not listen, so the data goes over the switchboard: `Bridge: TCPv1`,
    /// `Listening: false`, a zero `Nonce`, as libpurple's `got_invite`
    /// sends when direct connections are off (and Kopete's `p2p.cpp`, whose
    /// `Content-Length: 83` this body has).
    pub fn not_listening(&self) -> SlpMessage {
        self.response(
            200,
            "OK",
            CONTENT_TYPE_TRANS_RESP,
            &[
                ("Bridge", "TCPv1"),
                ("Listening", "false"),
                ("Nonce", NULL_NONCE),
            ],
        )
    }

    /// `500 Internal Error` for a request that cannot be handled (papyon).
    pub fn internal_error(&self) -> SlpMessage {
        self.response(500, "Internal Error", CONTENT_TYPE_NULL, &[])
    }

    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The first body field with this name (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.body
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn session_id(&self) -> Option<u32> {
        self.field("SessionID")?.parse().ok()
    }

    pub fn app_id(&self) -> Option<u32> {
        self.field("AppID")?.parse().ok()
    }

    pub fn euf_guid(&self) -> Option<&str> {
        self.field("EUF-GUID")
    }

    /// The decoded `Context`, at most [`MAX_CONTEXT`] bytes.
    pub fn context(&self) -> Option<Result<Vec<u8>, P2pError>> {
        self.field("Context").map(|c| b64::decode(c, MAX_CONTEXT))
    }

    /// The body bytes: fields, a blank line, and the NUL.
    fn body_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.body {
            push_line(&mut out, &[k, ": ", v]);
        }
        out.extend_from_slice(b"\r\n\0");
        out
    }

    /// The wire text, NUL included: this is the P2P message body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = self.body_bytes();
        let mut out = Vec::with_capacity(320 + body.len());
        match &self.start {
            StartLine::Request { method, to } => {
                push_line(&mut out, &[method, " MSNMSGR:", to, " ", VERSION])
            }
            StartLine::Response { code, reason } => {
                push_line(&mut out, &[VERSION, " ", &code.to_string(), " ", reason])
            }
        }
        push_line(&mut out, &["To: <msnmsgr:", &self.to, ">"]);
        push_line(&mut out, &["From: <msnmsgr:", &self.from, ">"]);
        push_line(&mut out, &["Via: MSNSLP/1.0/TLP ;branch=", &self.branch]);
        push_line(&mut out, &["CSeq: ", &self.cseq.to_string()]);
        push_line(&mut out, &["Call-ID: ", &self.call_id]);
        push_line(
            &mut out,
            &["Max-Forwards: ", &self.max_forwards.to_string()],
        );
        push_line(&mut out, &["Content-Type: ", &self.content_type]);
        push_line(&mut out, &["Content-Length: ", &body.len().to_string()]);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        out
    }

    /// Parses a whole MSNSLP message (the reassembled P2P body). Liberal in
    /// what real clients vary (extra spaces, LF line ends, missing padding
    /// NULs after the body), strict on lengths.
    pub fn parse(bytes: &[u8]) -> Result<SlpMessage, P2pError> {
        if bytes.len() > MAX_SLP_LEN {
            return Err(P2pError::BadSlp("message too long"));
        }
        let (head, body) = split_head(bytes).ok_or(P2pError::BadSlp("no blank line"))?;
        let head = std::str::from_utf8(head).map_err(|_| P2pError::BadSlp("headers not UTF-8"))?;
        let mut lines = head.lines();
        let start = parse_start(lines.next().unwrap_or(""))?;
        let mut m = SlpMessage {
            start,
            to: String::new(),
            from: String::new(),
            branch: String::new(),
            cseq: 0,
            call_id: String::new(),
            max_forwards: 0,
            content_type: CONTENT_TYPE_NULL.to_string(),
            body: Vec::new(),
        };
        let mut length = None;
        for line in lines.take(MAX_FIELDS) {
            let Some((name, value)) = bytesplit::split_once(line, b':') else {
                continue;
            };
            let value = value.trim_ascii();
            match name.trim_ascii().to_ascii_lowercase().as_str() {
                "to" => m.to = address(value)?,
                "from" => m.from = address(value)?,
                "via" => m.branch = branch(value).to_string(),
                "cseq" => m.cseq = number(value)?,
                "call-id" => m.call_id = value.to_string(),
                "max-forwards" => m.max_forwards = number(value)?,
                "content-type" => m.content_type = value.to_string(),
                "content-length" => length = Some(number::<usize>(value)?),
                _ => {}
            }
        }
        if m.to.is_empty() || m.from.is_empty() || m.call_id.is_empty() {
            return Err(P2pError::BadSlp("To, From or Call-ID missing"));
        }
        let length = length.ok_or(P2pError::BadSlp("no Content-Length"))?;
        // Bytes past Content-Length (padding NULs) are ignored; fewer is a
        // truncated message.
        let body = body
            .get(..length)
            .ok_or(P2pError::BadSlp("body shorter than Content-Length"))?;
        let end = body.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let text =
            std::str::from_utf8(&body[..end]).map_err(|_| P2pError::BadSlp("body not UTF-8"))?;
        for line in text.lines().take(MAX_FIELDS) {
            if let Some((k, v)) = bytesplit::split_once(line, b':') {
                m.body
                    .push((k.trim_ascii().to_string(), v.trim_ascii().to_string()));
            }
        }
        Ok(m)
    }
}

fn push_line(out: &mut Vec<u8>, parts: &[&str]) {
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Header block and body, split at the first blank line (CRLF or LF).
fn split_head(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut from = 0;
    while let Some(i) = bytes[from..].iter().position(|&b| b == b'\n') {
        let nl = from + i;
        let next = &bytes[nl + 1..];
        if next.starts_with(b"\r\n") {
            return Some((&bytes[..nl + 1], &next[2..]));
        }
        if next.starts_with(b"\n") {
            return Some((&bytes[..nl + 1], &next[1..]));
        }
        from = nl + 1;
    }
    None
}

fn parse_start(line: &str) -> Result<StartLine, P2pError> {
    let mut words = line.split_ascii_whitespace();
    let first = words.next().ok_or(P2pError::BadSlp("empty start line"))?;
    if first.eq_ignore_ascii_case(VERSION) {
        let code = words
            .next()
            .and_then(|c| c.parse().ok())
            .ok_or(P2pError::BadSlp("bad status code"))?;
        let reason = words.collect::<Vec<_>>().join(" ");
        return Ok(StartLine::Response { code, reason });
    }
    let resource = words.next().ok_or(P2pError::BadSlp("no request URI"))?;
    let version = words.next().ok_or(P2pError::BadSlp("no version"))?;
    if !version.eq_ignore_ascii_case(VERSION) {
        return Err(P2pError::BadSlp("not MSNSLP/1.0"));
    }
    let to = strip_prefix_ci(resource, "MSNMSGR:").ok_or(P2pError::BadSlp("bad request URI"))?;
    Ok(StartLine::Request {
        method: first.to_string(),
        to: to.to_string(),
    })
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `<msnmsgr:user@host>` -> `user@host`.
fn address(value: &str) -> Result<String, P2pError> {
    value
        .strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .and_then(|v| strip_prefix_ci(v, "msnmsgr:"))
        .map(str::to_string)
        .ok_or(P2pError::BadSlp("bad To/From address"))
}

/// The `branch` parameter of a `Via` value, or "" when absent.
fn branch(via: &str) -> &str {
    bytesplit::split(via, b';')
        .skip(1)
        .filter_map(|p| bytesplit::split_once(p, b'='))
        .find(|(k, _)| k.trim_ascii().eq_ignore_ascii_case("branch"))
        .map_or("", |(_, v)| v.trim_ascii())
}

fn number<T: std::str::FromStr>(value: &str) -> Result<T, P2pError> {
    value.parse().map_err(|_| P2pError::BadSlp("bad number"))
}
