//! Sending a file the MSNP9-era way: a `text/x-msmsgsinvite` invitation on
//! the switchboard, then MSNFTP over a direct TCP connection where we (the
//! sender) are the server. Sans-IO pieces; the client binds the socket and
//! drives [`MsnftpSender`].
//!
//! Sources:
//! * The invitation and the accept: hypothetic.org "MSN Instant Messenger
//!   Protocol" (2002) "File Transfer" page, whose captured messages are
//!   reproduced here field for field and in order (`Application-Name: File
//!   Transfer`, `Application-GUID: {5D3E02AB-6190-11d3-BBBB-00C04F795683}`,
//!   `Invitation-Command: INVITE`, `Invitation-Cookie`, `Application-File`,
//!   `Application-FileSize`; the receiver's `ACCEPT` with `Request-Data:
//!   IP-Address:`; our `ACCEPT` with `IP-Address`, `Port`, `AuthCookie`,
//!   `Launch-Application: FALSE`, `Request-Data: IP-Address:`; `CANCEL`
//!   with `Cancel-Code: REJECT`). `Connectivity: N` is the field version 5
//!   clients add (hypothetic.org MSNP "Client - Invitations", the NINA wiki
//!   "Protocols/MSNP/MSNFTP/Invitation").
//! * The transfer: hypothetic.org MSNP "Client - File Transfer" and the
//!   msnp-wiki "msnftp" page: the receiver connects and sends `VER MSNFTP`,
//!   the sender answers `VER MSNFTP`; `USR <receiver> <AuthCookie>` is
//!   answered `FIL <size>`; after `TFR` the file goes in blocks of at most
//!   2045 bytes, each behind a 3-byte header (0, then the length as a
//!   little-endian u16); the receiver ends with `BYE 16777989` (received
//!   successfully) or cancels with `CCL`. Commands carry no TrIDs.

use std::collections::VecDeque;
use std::sync::Arc;

use msn_proto::Message;

pub const CONTENT_TYPE_INVITE: &str = "text/x-msmsgsinvite; charset=UTF-8";
/// As the captured invitation writes it (GUIDs compare case-insensitively).
pub const FILE_TRANSFER_GUID: &str = "{5D3E02AB-6190-11d3-BBBB-00C04F795683}";
/// Largest block body.
pub const MAX_BLOCK: usize = 2045;
/// `BYE` reason of a file received successfully (0x01000305).
pub const BYE_OK: &str = "16777989";
/// Longest MSNFTP command line accepted.
const MAX_LINE: usize = 1024;

fn invitation(fields: &[(&str, &str)]) -> Message {
    let mut body = String::new();
    for (k, v) in fields {
        body.push_str(k);
        body.push_str(": ");
        body.push_str(v);
        body.push_str("\r\n");
    }
    body.push_str("\r\n");
    Message {
        headers: vec![
            ("MIME-Version".to_string(), "1.0".to_string()),
            ("Content-Type".to_string(), CONTENT_TYPE_INVITE.to_string()),
        ],
        body: body.into_bytes(),
    }
}

/// The sender's `INVITE`.
pub fn invite(cookie: u32, name: &str, size: usize) -> Message {
    let (cookie, size) = (cookie.to_string(), size.to_string());
    invitation(&[
        ("Application-Name", "File Transfer"),
        ("Application-GUID", FILE_TRANSFER_GUID),
        ("Invitation-Command", "INVITE"),
        ("Invitation-Cookie", &cookie),
        ("Application-File", name),
        ("Application-FileSize", &size),
        ("Connectivity", "N"),
    ])
}

/// The sender's `ACCEPT`: where the receiver connects and the cookie it
/// must give.
pub fn accept(cookie: u32, ip: &str, port: u16, auth_cookie: u32) -> Message {
    let (cookie, port, auth) = (
        cookie.to_string(),
        port.to_string(),
        auth_cookie.to_string(),
    );
    invitation(&[
        ("Invitation-Command", "ACCEPT"),
        ("Invitation-Cookie", &cookie),
        ("IP-Address", ip),
        ("Port", &port),
        ("AuthCookie", &auth),
        ("Launch-Application", "FALSE"),
        ("Request-Data", "IP-Address:"),
    ])
}

/// A `CANCEL` (e.g. `TIMEOUT` when nobody connected).
pub fn cancel(cookie: u32, code: &str) -> Message {
    let cookie = cookie.to_string();
    invitation(&[
        ("Invitation-Command", "CANCEL"),
        ("Invitation-Cookie", &cookie),
        ("Cancel-Code", code),
    ])
}

/// The fields of a received invitation body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub command: String,
    pub cookie: u32,
    pub fields: Vec<(String, String)>,
}

impl Invitation {
    /// Parses `Key: Value` lines; `None` without a command or a numeric cookie.
    pub fn parse(body: &[u8]) -> Option<Invitation> {
        let text = std::str::from_utf8(body.get(..body.len().min(8192))?).ok()?;
        let fields: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .take(64)
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let get = |n: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        Some(Invitation {
            command: get("Invitation-Command")?,
            cookie: get("Invitation-Cookie")?.parse().ok()?,
            fields,
        })
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ver,
    Usr,
    Tfr,
    Sending,
    Bye,
    Done,
}

/// How an MSNFTP session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FtpResult {
    /// `BYE 16777989`: all bytes received.
    Sent,
    Failed(String),
}

/// The serving sender of one MSNFTP session.
pub struct MsnftpSender {
    receiver: String,
    auth_cookie: u32,
    data: Arc<Vec<u8>>,
    state: State,
    offset: usize,
    input: Vec<u8>,
    out: VecDeque<Vec<u8>>,
    result: Option<FtpResult>,
}

impl MsnftpSender {
    pub fn new(receiver: &str, auth_cookie: u32, data: Arc<Vec<u8>>) -> MsnftpSender {
        MsnftpSender {
            receiver: receiver.to_string(),
            auth_cookie,
            data,
            state: State::Ver,
            offset: 0,
            input: Vec::new(),
            out: VecDeque::new(),
            result: None,
        }
    }

    /// The session is over (the connection should be closed).
    pub fn result(&self) -> Option<&FtpResult> {
        self.result.as_ref()
    }

    /// Bytes to write next: replies, then the data blocks one at a time.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if let Some(b) = self.out.pop_front() {
            return Some(b);
        }
        if self.state != State::Sending {
            return None;
        }
        let end = self.data.len().min(self.offset + MAX_BLOCK);
        let piece = &self.data[self.offset..end];
        let mut block = Vec::with_capacity(3 + piece.len());
        block.push(0);
        block.extend_from_slice(&(piece.len() as u16).to_le_bytes());
        block.extend_from_slice(piece);
        self.offset = end;
        if self.offset >= self.data.len() {
            self.state = State::Bye;
        }
        Some(block)
    }

    fn finish(&mut self, result: FtpResult) {
        self.state = State::Done;
        self.result = Some(result);
    }

    /// Bytes read from the receiver.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if self.state == State::Done {
            return;
        }
        self.input.extend_from_slice(bytes);
        while let Some(at) = self.input.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.input.drain(..=at).collect();
            let line = String::from_utf8_lossy(&line).trim().to_string();
            self.on_line(&line);
            if self.state == State::Done {
                return;
            }
        }
        if self.input.len() > MAX_LINE {
            self.finish(FtpResult::Failed("line too long".into()));
        }
    }

    fn on_line(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        if cmd == "CCL" {
            return self.finish(FtpResult::Failed("cancelled by the receiver (CCL)".into()));
        }
        match (self.state, cmd) {
            (State::Ver, "VER") if args.contains(&"MSNFTP") => {
                self.out.push_back(b"VER MSNFTP\r\n".to_vec());
                self.state = State::Usr;
            }
            (State::Usr, "USR") => {
                let ok = args.len() == 2
                    && args[0].eq_ignore_ascii_case(&self.receiver)
                    && args[1] == self.auth_cookie.to_string();
                if ok {
                    self.out
                        .push_back(format!("FIL {}\r\n", self.data.len()).into_bytes());
                    self.state = State::Tfr;
                } else {
                    self.finish(FtpResult::Failed("wrong USR (email or AuthCookie)".into()));
                }
            }
            (State::Tfr, "TFR") => self.state = State::Sending,
            (State::Sending | State::Bye, "BYE") => {
                if args.first() == Some(&BYE_OK) && self.offset >= self.data.len() {
                    self.finish(FtpResult::Sent);
                } else {
                    self.finish(FtpResult::Failed(format!("receiver said {line}")));
                }
            }
            _ => self.finish(FtpResult::Failed(format!("unexpected {line:?}"))),
        }
    }
}
