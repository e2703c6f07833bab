//! MSNFTP, the file transfer of Messenger 3.x to 5.x (and of clients that do
//! not announce MSNC), receiver side only, sans-IO.
//!
//! Two parts:
//!
//! * [`Invitation`]: the `text/x-msmsgsinvite` bodies negotiating the
//!   transfer on the switchboard (`Invitation-Command: INVITE` from the
//!   sender with `Application-File`/`Application-FileSize`, our `ACCEPT`
//!   asking for the sender's address, the sender's `ACCEPT` with
//!   `IP-Address`, `Port` and `AuthCookie`, or a `CANCEL` with a
//!   `Cancel-Code`), and [`accept_request`]/[`cancel`] building ours.
//! * [`MsnftpReceive`]: the TCP session the receiver opens to the sender's
//!   address:
//!
//! ```text
//! us:   VER MSNFTP\r\n                 them: VER MSNFTP\r\n
//! us:   USR <our email> <AuthCookie>\r\n  them: FIL <size>\r\n
//! us:   TFR\r\n                        them: blocks: [0, len lo, len hi] + len bytes (len <= 2045)
//! us:   BYE 16777989\r\n               (after <size> bytes; the sender closes)
//! ```
//!
//! Sources: hypothetic.org "MSN Messenger Protocol — File transfer" and
//! "Switchboard — Invitations" (v2.x), yellows111's msnp-wiki `msnftp`
//! page (the `BYE` codes: 16777989 = 0x01000305 "received successfully";
//! `CCL` from the receiver cancels), aMSN `ft.tcl` (`acceptFT`, `rejectFT`:
//! the exact ACCEPT and CANCEL bodies).

use std::collections::VecDeque;
use std::net::IpAddr;

use thiserror::Error;

/// `Application-GUID` of a file transfer invitation.
pub const FILE_TRANSFER_GUID: &str = "{5D3E02AB-6190-11D3-BBBB-00C04F795683}";
/// Content type of invitation messages.
pub const CONTENT_TYPE_INVITE: &str = "text/x-msmsgsinvite; charset=UTF-8";
/// Longest file name accepted (Windows `MAX_PATH` minus the NUL).
pub const MAX_FILE_NAME: usize = 259;
/// Largest invitation body read (real ones are a few hundred bytes).
pub const MAX_INVITATION_LEN: usize = 4096;
/// Most `Key: Value` lines kept from an invitation.
const MAX_FIELDS: usize = 32;
/// Largest block body a sender may announce (hypothetic.org: "2045").
pub const MAX_BLOCK: usize = 2045;
/// Longest MSNFTP text line before the data (`FIL <u64>` is 25 bytes).
const MAX_LINE: usize = 256;
/// `BYE` code "file received successfully" (0x01000305).
pub const BYE_RECEIVED: u32 = 16_777_989;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MsnftpError {
    #[error("invitation of {0} bytes is too long")]
    TooLong(usize),
    #[error("invitation is not UTF-8")]
    NotUtf8,
    #[error("invitation has more than {MAX_FIELDS} fields")]
    TooManyFields,
    #[error("file name longer than {MAX_FILE_NAME} characters")]
    NameTooLong,
}

/// `Invitation-Command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvitationCommand {
    Invite,
    Accept,
    Cancel,
    Other(String),
}

/// One `text/x-msmsgsinvite` body: its fields, in order, with typed
/// accessors for those a file transfer uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub fields: Vec<(String, String)>,
}

impl Invitation {
    /// Parses the body (after the MIME headers) of an invitation message:
    /// `Key: Value` lines ending in CRLF (LF accepted), up to a blank line
    /// or the end. Lines without a colon are skipped.
    pub fn parse(body: &[u8]) -> Result<Invitation, MsnftpError> {
        if body.len() > MAX_INVITATION_LEN {
            return Err(MsnftpError::TooLong(body.len()));
        }
        let text = std::str::from_utf8(body).map_err(|_| MsnftpError::NotUtf8)?;
        let mut fields = Vec::new();
        for line in text.lines() {
            if line.trim().is_empty() {
                break;
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if fields.len() >= MAX_FIELDS {
                return Err(MsnftpError::TooManyFields);
            }
            fields.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let invitation = Invitation { fields };
        if invitation
            .get("Application-File")
            .is_some_and(|n| n.chars().count() > MAX_FILE_NAME)
        {
            return Err(MsnftpError::NameTooLong);
        }
        Ok(invitation)
    }

    /// The first field with this name (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn command(&self) -> Option<InvitationCommand> {
        let c = self.get("Invitation-Command")?;
        Some(match c.to_ascii_uppercase().as_str() {
            "INVITE" => InvitationCommand::Invite,
            "ACCEPT" => InvitationCommand::Accept,
            "CANCEL" => InvitationCommand::Cancel,
            _ => InvitationCommand::Other(c.to_owned()),
        })
    }

    /// `Invitation-Cookie`: the number naming this invitation.
    pub fn cookie(&self) -> Option<u32> {
        self.get("Invitation-Cookie")?.parse().ok()
    }

    pub fn application_guid(&self) -> Option<&str> {
        self.get("Application-GUID")
    }

    /// True for a file transfer (`Application-GUID` of MSNFTP).
    pub fn is_file_transfer(&self) -> bool {
        self.application_guid()
            .is_some_and(|g| g.eq_ignore_ascii_case(FILE_TRANSFER_GUID))
    }

    /// `Application-File`, at most [`MAX_FILE_NAME`] characters (checked by
    /// [`Invitation::parse`]). The sender chose it: it may hold path
    /// separators, which the caller must not trust.
    pub fn file_name(&self) -> Option<&str> {
        self.get("Application-File")
    }

    pub fn file_size(&self) -> Option<u64> {
        self.get("Application-FileSize")?.parse().ok()
    }

    pub fn ip_address(&self) -> Option<IpAddr> {
        self.get("IP-Address")?.parse().ok()
    }

    pub fn port(&self) -> Option<u16> {
        self.get("Port")?.parse().ok()
    }

    /// `AuthCookie`, sent back in `USR`: a token without spaces or control
    /// characters (it goes on a command line), at most 64 bytes.
    pub fn auth_cookie(&self) -> Option<&str> {
        self.get("AuthCookie")
            .filter(|c| !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_graphic()))
    }

    /// `Cancel-Code` of a CANCEL (`REJECT`, `FTTIMEOUT`, `TIMEOUT`,
    /// `OUTBANDCANCEL`, `FAIL`...).
    pub fn cancel_code(&self) -> Option<&str> {
        self.get("Cancel-Code")
    }
}

/// The whole `MSG` payload (MIME headers and body) of an invitation message.
fn invitation_payload(lines: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("MIME-Version: 1.0\r\nContent-Type: {CONTENT_TYPE_INVITE}\r\n\r\n");
    for (k, v) in lines {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// The receiver's ACCEPT asking the sender for its address (the sender then
/// answers ACCEPT with `IP-Address`, `Port`, `AuthCookie`). The `MSG`
/// payload, byte for byte as aMSN's `acceptFT` and Messenger send it:
///
/// ```text
/// MIME-Version: 1.0\r\n
/// Content-Type: text/x-msmsgsinvite; charset=UTF-8\r\n
/// \r\n
/// Invitation-Command: ACCEPT\r\n
/// Invitation-Cookie: <cookie>\r\n
/// Launch-Application: FALSE\r\n
/// Request-Data: IP-Address:\r\n
/// \r\n
/// ```
pub fn accept_request(cookie: u32) -> Vec<u8> {
    let cookie = cookie.to_string();
    invitation_payload(&[
        ("Invitation-Command", "ACCEPT"),
        ("Invitation-Cookie", &cookie),
        ("Launch-Application", "FALSE"),
        ("Request-Data", "IP-Address:"),
    ])
}

/// A CANCEL of invitation `cookie` with `code` (`REJECT` to decline,
/// `FTTIMEOUT` when the connection failed...), the `MSG` payload as aMSN's
/// `rejectFT` sends it: `Invitation-Command: CANCEL`, `Invitation-Cookie`,
/// `Cancel-Code`.
pub fn cancel(cookie: u32, code: &str) -> Vec<u8> {
    let cookie = cookie.to_string();
    // The code goes on a header line: no line breaks may get through.
    let code: String = code.chars().filter(|c| !c.is_control()).collect();
    invitation_payload(&[
        ("Invitation-Command", "CANCEL"),
        ("Invitation-Cookie", &cookie),
        ("Cancel-Code", &code),
    ])
}

/// How a receive ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsnftpOutcome {
    Received(Vec<u8>),
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `VER MSNFTP` sent, waiting for the sender's.
    Ver,
    /// `USR` sent, waiting for `FIL`.
    Fil,
    /// `TFR` sent: blocks. `header` holds the bytes of a block header seen so
    /// far, `left` what remains of the current block's body.
    Data {
        header: [u8; 3],
        have: u8,
        left: u16,
    },
    Done,
}

/// The receiver's MSNFTP session over the TCP connection it opened to the
/// sender (address and `AuthCookie` from the sender's ACCEPT). Feed what the
/// socket reads to [`MsnftpReceive::handle_input`], write what
/// [`MsnftpReceive::poll_transmit`] gives, until [`MsnftpReceive::outcome`]
/// says it is over (then close the socket once the last bytes are written).
#[derive(Debug)]
pub struct MsnftpReceive {
    me: String,
    auth_cookie: String,
    expected: u64,
    state: State,
    /// A text line in progress (at most [`MAX_LINE`] bytes).
    line: Vec<u8>,
    data: Vec<u8>,
    out: VecDeque<Vec<u8>>,
    outcome: Option<MsnftpOutcome>,
}

impl MsnftpReceive {
    /// Starts a receive of `expected_size` bytes (the invitation's
    /// `Application-FileSize`) for `me` with the sender's `auth_cookie`; a
    /// file over `max_size` fails at once, before anything is sent.
    pub fn new(me: &str, auth_cookie: &str, expected_size: u64, max_size: u64) -> MsnftpReceive {
        let mut r = MsnftpReceive {
            me: me.to_owned(),
            auth_cookie: auth_cookie.to_owned(),
            expected: expected_size,
            state: State::Ver,
            line: Vec::new(),
            data: Vec::new(),
            out: VecDeque::new(),
            outcome: None,
        };
        if expected_size > max_size {
            r.state = State::Done;
            r.outcome = Some(MsnftpOutcome::Failed(format!(
                "the file is {expected_size} bytes, more than the {max_size} allowed"
            )));
        } else {
            r.out.push_back(b"VER MSNFTP\r\n".to_vec());
        }
        r
    }

    /// Bytes to write to the socket, in order.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    pub fn outcome(&self) -> Option<&MsnftpOutcome> {
        self.outcome.as_ref()
    }

    /// Gives up (the caller's deadline): `CCL` to the sender, then failed.
    pub fn cancel(&mut self, why: &str) {
        if self.state != State::Done {
            self.fail(why.to_owned());
        }
    }

    /// Bytes read from the socket, split anywhere.
    pub fn handle_input(&mut self, mut input: &[u8]) {
        while !input.is_empty() && self.state != State::Done {
            let used = match self.state {
                State::Ver | State::Fil => self.line_bytes(input),
                State::Data { .. } => self.data_bytes(input),
                State::Done => input.len(),
            };
            input = &input[used..];
        }
    }

    /// Collects a text line; acts on it when complete. Returns bytes used.
    fn line_bytes(&mut self, input: &[u8]) -> usize {
        let (take, complete) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (input.len(), false),
        };
        if self.line.len() + take > MAX_LINE {
            self.fail("the sender's line is too long".into());
            return input.len();
        }
        self.line.extend_from_slice(&input[..take]);
        if complete {
            let line = std::mem::take(&mut self.line);
            self.on_line(&line);
        }
        take
    }

    fn on_line(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let mut words = text.split_ascii_whitespace();
        let command = words.next().unwrap_or("");
        match (self.state, command) {
            (_, "CCL") => self.finish(MsnftpOutcome::Failed(
                "the sender cancelled the transfer".into(),
            )),
            (State::Ver, "VER") if words.any(|w| w == "MSNFTP") => {
                let usr = format!("USR {} {}\r\n", self.me, self.auth_cookie);
                self.out.push_back(usr.into_bytes());
                self.state = State::Fil;
            }
            (State::Fil, "FIL") => match words.next().and_then(|s| s.parse::<u64>().ok()) {
                Some(size) if size == self.expected => {
                    self.out.push_back(b"TFR\r\n".to_vec());
                    self.state = State::Data {
                        header: [0; 3],
                        have: 0,
                        left: 0,
                    };
                    if size == 0 {
                        self.complete();
                    }
                }
                Some(size) => self.fail(format!(
                    "the sender announces {size} bytes, the invitation said {}",
                    self.expected
                )),
                None => self.fail("bad FIL line from the sender".into()),
            },
            _ => self.fail(format!(
                "unexpected line from the sender: {:?}",
                text.trim_end()
            )),
        }
    }

    /// Block headers and bodies. Returns bytes used.
    fn data_bytes(&mut self, input: &[u8]) -> usize {
        let State::Data {
            mut header,
            mut have,
            mut left,
        } = self.state
        else {
            return input.len();
        };
        let mut used = 0;
        if left == 0 {
            // A header, possibly in pieces.
            while have < 3 && used < input.len() {
                header[have as usize] = input[used];
                have += 1;
                used += 1;
            }
            if have < 3 {
                self.state = State::Data { header, have, left };
                return used;
            }
            if header[0] != 0 {
                self.finish(MsnftpOutcome::Failed(
                    "the sender cancelled the transfer".into(),
                ));
                return input.len();
            }
            let len = u16::from_le_bytes([header[1], header[2]]);
            if usize::from(len) > MAX_BLOCK {
                self.fail(format!("block of {len} bytes, more than {MAX_BLOCK}"));
                return input.len();
            }
            if self.data.len() as u64 + u64::from(len) > self.expected {
                self.fail("the sender sends more than the announced size".into());
                return input.len();
            }
            (have, left) = (0, len);
            if left == 0 {
                self.state = State::Data { header, have, left };
                return used;
            }
        }
        let take = (input.len() - used).min(usize::from(left));
        self.data.extend_from_slice(&input[used..used + take]);
        left -= take as u16;
        used += take;
        self.state = State::Data { header, have, left };
        if self.data.len() as u64 == self.expected {
            self.complete();
        }
        used
    }

    fn complete(&mut self) {
        self.out
            .push_back(format!("BYE {BYE_RECEIVED}\r\n").into_bytes());
        let data = std::mem::take(&mut self.data);
        self.finish(MsnftpOutcome::Received(data));
    }

    /// Our own failure: `CCL` tells the sender (msnp-wiki: "Cancel").
    fn fail(&mut self, why: String) {
        self.out.push_back(b"CCL\r\n".to_vec());
        self.finish(MsnftpOutcome::Failed(why));
    }

    fn finish(&mut self, outcome: MsnftpOutcome) {
        self.state = State::Done;
        self.line = Vec::new();
        self.data = Vec::new();
        self.outcome.get_or_insert(outcome);
    }
}
