//! File transfers and display picture fetches over the switchboard (MSNC P2P
//! v1, MSNSLP negotiation) as a Messenger 6.x client runs them, one
//! switchboard at a time and without I/O, like [`super::picture`]: feed every
//! `application/x-msnmsgrp2p` payload to [`FileTransfers::handle`] (it gives
//! back the payloads that belong to the picture server), send what
//! [`FileTransfers::poll_transmit`] gives as `MSG ... D`, and call
//! [`FileTransfers::handle_timeout`] at [`FileTransfers::next_deadline`].
//!
//! Written from the public descriptions, not from the bridge's code:
//! * Receiving a file (MSNPiki "MSNC: File Transfer", the NINA wiki copy
//!   "Protocols/MSNP/MSNC/File Transfer"; libpurple `slp.c` `got_invite`):
//!   the INVITE carries EUF-GUID `{5D3E02AB-6190-11D3-BBBB-00C04F795683}`,
//!   AppID 2 and the base64 file context (name, size). It is acked, answered
//!   `200 OK` (or `603 Decline`, CSeq 1, as libpurple `msn_slp_send_ok` /
//!   `send_decline`). A direct-connection INVITE
//!   (`application/x-msnmsgr-transreqbody`) is answered `200 OK` with
//!   `Bridge: TCPv1`, `Listening: false` and a zero `Nonce` (libpurple
//!   `got_invite` when it cannot listen), so the sender falls back to the
//!   switchboard. Data comes in chunks with flags 0x01000030 and footer 2;
//!   the whole message is acked and the receiver closes the session with a
//!   `BYE` (MSNPiki's file transfer flow ends, as the display picture one,
//!   with the receiving client's BYE; aMSN and libpurple receivers do the
//!   same).
//! * Sending a file: the same flow from the other side. After the `200 OK`,
//!   Messenger 6.x first offers a direct connection (transreqbody INVITE,
//!   same Call-ID, new branch: `Bridges: TCPv1`, `NetID`, `Conn-Type`,
//!   `UPnPNat: false`, `ICF: false`, as in MSNPiki "MSNC: Direct
//!   connections"); whatever the answer (`Listening: false`, a decline),
//!   the data then goes over the switchboard: one message id, chunks of at
//!   most 1202 bytes, flags 0x01000030, footer 2. The transfer is complete
//!   when the receiver acks the whole message.
//! * Fetching a display picture: the receiver side of the flow in
//!   [`super::picture`] (INVITE with the MSNObject as `Context`, ack the
//!   `200 OK`, ack the data preparation, reassemble the 0x20 data, ack it,
//!   `BYE`); the bytes are checked against the object's size and SHA1D.
//! * Acks, identifiers and the ack id field: as in [`super::picture`]
//!   (libpurple `msn_slplink_send_ack`, `slp_seq_id`). Every complete
//!   message that is not an ack is acked.
//!
//! Every step waits at most the ack timeout; a transfer whose next message
//! does not come in time fails. Buffers are bounded: MSNSLP text by
//! [`MAX_SLP_LEN`], a file by its offered size and [`MAX_FILE`], a picture
//! by its MSNObject's size and [`MAX_PICTURE`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use msn_proto::p2p::{self, app_id, flags, MAX_CHUNK};
use msn_proto::slp::{SlpMessage, CONTENT_TYPE_TRANS_REQ, EUF_GUID_FILE, MAX_SLP_LEN};
use msn_proto::{
    sha1d, FileContext, MsnObject, P2pError, P2pHeader, P2pMessage, P2pMessageRef, Reassembler,
};

use super::picture::MAX_PICTURE;

/// Largest file sent or accepted.
pub const MAX_FILE: usize = 64 * 1024 * 1024;
/// Transfers (of every kind) running at once on one switchboard.
const MAX_TRANSFERS: usize = 8;
/// `Nonce` of a transreqbody answer that offers no direct connection
/// (libpurple).
const ZERO_NONCE: &str = "{00000000-0000-0000-0000-000000000000}";

/// What to answer a file INVITE with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilePolicy {
    /// `200 OK`, then receive the data.
    #[default]
    Accept,
    /// `603 Decline`.
    Decline,
}

/// What happened, for the client's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    Received {
        from: String,
        name: String,
        data: Vec<u8>,
    },
    Sent {
        to: String,
        name: String,
        bytes: usize,
    },
    Declined {
        to: String,
        name: String,
    },
    Failed {
        to: String,
        name: String,
        why: String,
    },
    /// A picture fetch ended: the verified bytes or why not.
    Fetched {
        fetch: u64,
        result: Result<Vec<u8>, String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendStep {
    /// Session INVITE sent; waiting for 200 OK / 603.
    Invited,
    /// Transreq INVITE sent; waiting for its answer.
    Transreq,
    /// Data sent; waiting for its ack.
    Data,
    /// Acked; waiting for the receiver's BYE.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchStep {
    /// INVITE sent; waiting for 200 OK.
    Invited,
    /// 200 OK acked; data preparation and data expected.
    Data,
}

#[derive(Debug)]
enum Kind {
    Send {
        step: SendStep,
        name: String,
        data: Arc<Vec<u8>>,
        /// The data message, for matching its ack.
        awaiting: Option<P2pHeader>,
    },
    /// 200 OK sent; data (or a transreq INVITE) expected.
    Recv { name: String, data: Reassembler },
    Fetch {
        step: FetchStep,
        fetch: u64,
        object: MsnObject,
        data: Reassembler,
    },
}

#[derive(Debug)]
struct Call {
    peer: String,
    call_id: String,
    session_id: u32,
    deadline: Instant,
    kind: Kind,
}

/// The receiver of files, sender of files and fetcher of pictures on one
/// switchboard.
pub struct FileTransfers {
    me: String,
    next_id: u32,
    random: Box<dyn FnMut() -> u32 + Send>,
    timeout: Duration,
    policy: FilePolicy,
    send_transreq: bool,
    /// The MSNSLP message in progress and its raw packets (replayed to the
    /// picture server when it is one of its messages).
    slp: Reassembler,
    slp_packets: Vec<Vec<u8>>,
    calls: Vec<Call>,
    out: VecDeque<P2pMessage>,
    outcomes: VecDeque<FileOutcome>,
}

impl FileTransfers {
    /// `base_id`: our first identifier; `random`: source of session ids,
    /// GUIDs and ack id fields.
    pub fn new(
        me: &str,
        base_id: u32,
        random: Box<dyn FnMut() -> u32 + Send>,
        timeout: Duration,
    ) -> FileTransfers {
        FileTransfers {
            me: me.to_string(),
            next_id: base_id,
            random,
            timeout,
            policy: FilePolicy::Accept,
            send_transreq: true,
            slp: Reassembler::new(MAX_SLP_LEN as u64),
            slp_packets: Vec::new(),
            calls: Vec::new(),
            out: VecDeque::new(),
            outcomes: VecDeque::new(),
        }
    }

    pub fn set_policy(&mut self, policy: FilePolicy) {
        self.policy = policy;
    }

    /// Whether a sent file is preceded by a direct-connection INVITE.
    pub fn set_send_transreq(&mut self, on: bool) {
        self.send_transreq = on;
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub fn poll_transmit(&mut self) -> Option<P2pMessage> {
        self.out.pop_front()
    }

    pub fn poll_outcome(&mut self) -> Option<FileOutcome> {
        self.outcomes.pop_front()
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || !self.outcomes.is_empty()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.calls.iter().map(|c| c.deadline).min()
    }

    /// Fails every call whose next message is overdue.
    pub fn handle_timeout(&mut self, now: Instant) {
        let (late, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.calls)
            .into_iter()
            .partition(|c| c.deadline <= now);
        self.calls = keep;
        for c in late {
            self.fail(c, "timed out waiting for the peer");
        }
    }

    fn fail(&mut self, c: Call, why: &str) {
        tracing::debug!(peer = %c.peer, why, "msn files: transfer failed");
        match c.kind {
            Kind::Send { step, name, .. } if step != SendStep::Done => {
                self.outcomes.push_back(FileOutcome::Failed {
                    to: c.peer,
                    name,
                    why: why.to_string(),
                })
            }
            Kind::Fetch { fetch, .. } => self.outcomes.push_back(FileOutcome::Fetched {
                fetch,
                result: Err(why.to_string()),
            }),
            // A receive that stops is dropped; a finished send waits for
            // nothing more.
            _ => {}
        }
    }

    fn random(&mut self) -> u32 {
        (self.random)()
    }

    fn guid(&mut self) -> String {
        let (a, b, c, d) = (self.random(), self.random(), self.random(), self.random());
        format!(
            "{{{:08X}-{:04X}-{:04X}-{:04X}-{:04X}{:08X}}}",
            a,
            b >> 16,
            b & 0xFFFF,
            c >> 16,
            c & 0xFFFF,
            d
        )
    }

    fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn send(&mut self, to: &str, base: P2pHeader, body: &[u8], app: u32) -> P2pHeader {
        for (h, piece) in p2p::chunks(base, body, MAX_CHUNK) {
            self.out.push_back(P2pMessage::new(to, h, piece, app));
        }
        P2pHeader {
            offset: 0,
            total_size: body.len() as u64,
            length: body.len().min(MAX_CHUNK) as u32,
            ..base
        }
    }

    fn send_slp(&mut self, to: &str, slp: &SlpMessage) -> P2pHeader {
        let base = P2pHeader {
            id: self.id(),
            ack_id: self.random(),
            ..Default::default()
        };
        self.send(to, base, &slp.to_bytes(), app_id::NEGOTIATION)
    }

    fn ack(&mut self, to: &str, acked: &P2pHeader) {
        let h = acked.ack(self.id());
        self.out
            .push_back(P2pMessage::new(to, h, &[], app_id::NEGOTIATION));
    }

    fn new_session_id(&mut self) -> u32 {
        loop {
            let s = self.random();
            if s != 0 && !self.calls.iter().any(|c| c.session_id == s) {
                return s;
            }
        }
    }

    /// Offers `data` to `to` as file `name`.
    pub fn send_file(&mut self, to: &str, name: &str, data: Arc<Vec<u8>>, now: Instant) {
        if data.len() > MAX_FILE || self.calls.len() >= MAX_TRANSFERS {
            let why = if data.len() > MAX_FILE {
                format!("{} bytes exceed the {MAX_FILE}-byte limit", data.len())
            } else {
                "too many transfers on this switchboard".to_string()
            };
            self.outcomes.push_back(FileOutcome::Failed {
                to: to.to_string(),
                name: name.to_string(),
                why,
            });
            return;
        }
        let session_id = self.new_session_id();
        let (branch, call_id) = (self.guid(), self.guid());
        let context = FileContext::new(name, data.len() as u64).to_bytes();
        let invite = SlpMessage::file_invite(to, &self.me, &branch, &call_id, session_id, &context);
        self.send_slp(to, &invite);
        self.calls.push(Call {
            peer: to.to_string(),
            call_id,
            session_id,
            deadline: now + self.timeout,
            kind: Kind::Send {
                step: SendStep::Invited,
                name: name.to_string(),
                data,
                awaiting: None,
            },
        });
    }

    /// Asks `contact` for the picture `object` (XML as announced); the result
    /// comes as [`FileOutcome::Fetched`] with this `fetch` number.
    pub fn fetch_picture(&mut self, contact: &str, object_xml: &str, fetch: u64, now: Instant) {
        let object = match MsnObject::parse(object_xml) {
            Ok(o) if (o.size as usize) <= MAX_PICTURE && self.calls.len() < MAX_TRANSFERS => o,
            Ok(_) => {
                self.outcomes.push_back(FileOutcome::Fetched {
                    fetch,
                    result: Err("picture too large or too many transfers".into()),
                });
                return;
            }
            Err(e) => {
                self.outcomes.push_back(FileOutcome::Fetched {
                    fetch,
                    result: Err(format!("bad MSNObject: {e}")),
                });
                return;
            }
        };
        let session_id = self.new_session_id();
        let (branch, call_id) = (self.guid(), self.guid());
        let invite = SlpMessage::picture_invite(
            contact, &self.me, &branch, &call_id, session_id, object_xml,
        );
        self.send_slp(contact, &invite);
        self.calls.push(Call {
            peer: contact.to_string(),
            call_id,
            session_id,
            deadline: now + self.timeout,
            kind: Kind::Fetch {
                step: FetchStep::Invited,
                fetch,
                data: Reassembler::new(object.size),
                object,
            },
        });
    }

    /// One `application/x-msnmsgrp2p` payload from `from`. Returns the
    /// payloads the picture server must see (acks, errors, and the packets
    /// of MSNSLP messages that are not ours), in order.
    pub fn handle(&mut self, from: &str, payload: &[u8], now: Instant) -> Vec<Vec<u8>> {
        let Ok(m) = P2pMessageRef::parse(payload) else {
            return Vec::new();
        };
        if !m.destination.trim().eq_ignore_ascii_case(&self.me) {
            return Vec::new();
        }
        let h = m.header;
        if h.is_error() || h.flags & flags::NAK != 0 {
            self.peer_error(from, &h);
            return vec![payload.to_vec()];
        }
        if h.is_ack() {
            self.on_ack(from, &h, now);
            return vec![payload.to_vec()];
        }
        if h.session_id == 0 {
            return self.on_slp_chunk(from, &h, m.body, payload, now);
        }
        self.on_data(from, &h, m.body, now);
        Vec::new()
    }

    fn find(&self, from: &str, pred: impl Fn(&Call) -> bool) -> Option<usize> {
        self.calls
            .iter()
            .position(|c| c.peer.eq_ignore_ascii_case(from) && pred(c))
    }

    fn peer_error(&mut self, from: &str, h: &P2pHeader) {
        if h.session_id == 0 {
            return;
        }
        if let Some(i) = self.find(from, |c| c.session_id == h.session_id) {
            let c = self.calls.remove(i);
            self.fail(c, "the peer reported an error");
        }
    }

    fn on_ack(&mut self, from: &str, h: &P2pHeader, now: Instant) {
        let Some(i) = self.find(from, |c| {
            matches!(&c.kind, Kind::Send { step: SendStep::Data, awaiting: Some(a), .. } if h.acknowledges(a))
        }) else {
            return;
        };
        let c = &mut self.calls[i];
        c.deadline = now + self.timeout;
        if let Kind::Send {
            step, name, data, ..
        } = &mut c.kind
        {
            *step = SendStep::Done;
            self.outcomes.push_back(FileOutcome::Sent {
                to: c.peer.clone(),
                name: name.clone(),
                bytes: data.len(),
            });
        }
    }

    fn on_slp_chunk(
        &mut self,
        from: &str,
        h: &P2pHeader,
        body: &[u8],
        payload: &[u8],
        now: Instant,
    ) -> Vec<Vec<u8>> {
        let whole = match self.slp.push(h, body) {
            Ok(w) => w,
            Err(P2pError::OtherMessage { .. }) => {
                // A new message while another is incomplete: the old one is lost.
                self.slp.reset();
                self.slp_packets.clear();
                self.slp.push(h, body).ok().flatten()
            }
            Err(_) => return Vec::new(),
        };
        self.slp_packets.push(payload.to_vec());
        let Some(text) = whole else {
            return Vec::new();
        };
        let packets = std::mem::take(&mut self.slp_packets);
        let Ok(slp) = SlpMessage::parse(&text) else {
            // Not ours to judge: the picture server acks it as it always did.
            return packets;
        };
        let known = self.find(from, |c| c.call_id == slp.call_id).is_some();
        let ours = match slp.method() {
            Some(m) if m.eq_ignore_ascii_case("INVITE") => {
                known
                    || slp
                        .euf_guid()
                        .is_some_and(|g| g.eq_ignore_ascii_case(EUF_GUID_FILE))
                    || slp
                        .content_type
                        .eq_ignore_ascii_case(CONTENT_TYPE_TRANS_REQ)
            }
            _ => known,
        };
        if !ours {
            return packets;
        }
        let full = P2pHeader {
            offset: 0,
            length: text.len() as u32,
            ..*h
        };
        self.ack(from, &full);
        match slp.method() {
            Some(m) if m.eq_ignore_ascii_case("INVITE") => self.on_invite(from, &slp, now),
            Some(m) if m.eq_ignore_ascii_case("BYE") => self.on_bye(from, &slp),
            Some(_) => {}
            None => self.on_response(from, &slp, now),
        }
        Vec::new()
    }

    fn on_bye(&mut self, from: &str, bye: &SlpMessage) {
        if let Some(i) = self.find(from, |c| c.call_id == bye.call_id) {
            let c = self.calls.remove(i);
            self.fail(c, "closed by the peer");
        }
    }

    fn on_invite(&mut self, from: &str, invite: &SlpMessage, now: Instant) {
        let answer = |code_ok: bool, invite: &SlpMessage| {
            let mut a = if code_ok {
                invite.ok()
            } else {
                invite.decline()
            };
            a.cseq = 1;
            a
        };
        if invite
            .content_type
            .eq_ignore_ascii_case(CONTENT_TYPE_TRANS_REQ)
        {
            // A direct connection offer: we never listen.
            let mut ok = invite.response(
                200,
                "OK",
                CONTENT_TYPE_TRANS_REQ,
                &[
                    ("Bridge", "TCPv1"),
                    ("Listening", "false"),
                    ("Nonce", ZERO_NONCE),
                ],
            );
            ok.cseq = 1;
            self.send_slp(from, &ok);
            if let Some(i) = self.find(from, |c| c.call_id == invite.call_id) {
                self.calls[i].deadline = now + self.timeout;
            }
            return;
        }
        let context = invite
            .field("Context")
            .and_then(|c| FileContext::from_base64(c).ok());
        let valid = invite.to.eq_ignore_ascii_case(&self.me)
            && invite.app_id() == Some(app_id::FILE_TRANSFER)
            && invite.session_id().is_some_and(|s| s != 0)
            && context
                .as_ref()
                .is_some_and(|c| c.file_size <= MAX_FILE as u64)
            && self.calls.len() < MAX_TRANSFERS
            && self.find(from, |c| c.call_id == invite.call_id).is_none()
            && !self
                .calls
                .iter()
                .any(|c| Some(c.session_id) == invite.session_id());
        let (Some(context), Some(session_id), true, FilePolicy::Accept) =
            (context, invite.session_id(), valid, self.policy)
        else {
            self.send_slp(from, &answer(false, invite));
            return;
        };
        self.send_slp(from, &answer(true, invite));
        self.calls.push(Call {
            peer: from.to_string(),
            call_id: invite.call_id.clone(),
            session_id,
            deadline: now + self.timeout,
            kind: Kind::Recv {
                name: context.name,
                data: Reassembler::new(context.file_size),
            },
        });
    }

    fn on_response(&mut self, from: &str, r: &SlpMessage, now: Instant) {
        let Some(i) = self.find(from, |c| c.call_id == r.call_id) else {
            return;
        };
        let code = r.status().unwrap_or(0);
        let transreq = self.send_transreq;
        let c = &self.calls[i];
        let (peer, call_id, sid) = (c.peer.clone(), c.call_id.clone(), c.session_id);
        match &c.kind {
            Kind::Send {
                step: SendStep::Invited,
                name,
                ..
            } => {
                let name = name.clone();
                if code == 603 {
                    self.calls.remove(i);
                    self.outcomes
                        .push_back(FileOutcome::Declined { to: peer, name });
                } else if code != 200 {
                    let c = self.calls.remove(i);
                    self.fail(c, &format!("answered {code}"));
                } else if transreq {
                    let branch = self.guid();
                    let net_id = self.random().to_string();
                    let offer = SlpMessage::request(
                        "INVITE",
                        &peer,
                        &self.me,
                        &branch,
                        &call_id,
                        CONTENT_TYPE_TRANS_REQ,
                        &[
                            ("Bridges", "TCPv1"),
                            ("NetID", &net_id),
                            ("Conn-Type", "Firewall"),
                            ("UPnPNat", "false"),
                            ("ICF", "false"),
                        ],
                    );
                    self.send_slp(&peer, &offer);
                    self.set_send_step(i, SendStep::Transreq, None, now);
                } else {
                    self.send_data(i, sid, now);
                }
            }
            // Whatever the answer to the direct-connection offer (we cannot
            // connect anyway), the data goes over the switchboard.
            Kind::Send {
                step: SendStep::Transreq,
                ..
            } => self.send_data(i, sid, now),
            Kind::Fetch {
                step: FetchStep::Invited,
                ..
            } => {
                if code == 200 {
                    let c = &mut self.calls[i];
                    c.deadline = now + self.timeout;
                    if let Kind::Fetch { step, .. } = &mut c.kind {
                        *step = FetchStep::Data;
                    }
                } else {
                    let c = self.calls.remove(i);
                    self.fail(c, &format!("answered {code}"));
                }
            }
            _ => {}
        }
    }

    fn set_send_step(
        &mut self,
        i: usize,
        next: SendStep,
        awaiting: Option<P2pHeader>,
        now: Instant,
    ) {
        let c = &mut self.calls[i];
        c.deadline = now + self.timeout;
        if let Kind::Send {
            step, awaiting: a, ..
        } = &mut c.kind
        {
            *step = next;
            *a = awaiting;
        }
    }

    fn send_data(&mut self, i: usize, sid: u32, now: Instant) {
        let Kind::Send { data, .. } = &self.calls[i].kind else {
            return;
        };
        let (data, peer) = (data.clone(), self.calls[i].peer.clone());
        let base = P2pHeader {
            session_id: sid,
            id: self.id(),
            flags: flags::FILE_DATA,
            ack_id: self.random(),
            ..Default::default()
        };
        let sent = self.send(&peer, base, &data, app_id::FILE_TRANSFER);
        self.set_send_step(i, SendStep::Data, Some(sent), now);
    }

    fn on_data(&mut self, from: &str, h: &P2pHeader, body: &[u8], now: Instant) {
        let Some(i) = self.find(from, |c| c.session_id == h.session_id) else {
            return;
        };
        let c = &mut self.calls[i];
        let pushed = match &mut c.kind {
            Kind::Recv { data, .. } if h.flags == flags::FILE_DATA => data.push(h, body),
            Kind::Fetch {
                step: FetchStep::Data,
                ..
            } if h.flags == flags::NONE => {
                // The data preparation message: acked, nothing kept.
                if h.is_last_chunk() {
                    c.deadline = now + self.timeout;
                    self.ack(from, h);
                }
                return;
            }
            Kind::Fetch {
                step: FetchStep::Data,
                data,
                ..
            } if h.flags == flags::MSNOBJ_DATA => data.push(h, body),
            _ => return,
        };
        c.deadline = now + self.timeout;
        let whole = match pushed {
            Ok(Some(whole)) => whole,
            Ok(None) => return,
            Err(e) => {
                let c = self.calls.remove(i);
                self.fail(c, &format!("bad data: {e}"));
                return;
            }
        };
        let full = P2pHeader {
            offset: 0,
            length: whole.len() as u32,
            ..*h
        };
        self.ack(from, &full);
        let c = self.calls.remove(i);
        let branch = self.guid();
        let bye = SlpMessage::bye(&c.peer, &self.me, &branch, &c.call_id);
        self.send_slp(&c.peer, &bye);
        match c.kind {
            Kind::Recv { name, .. } => self.outcomes.push_back(FileOutcome::Received {
                from: c.peer,
                name,
                data: whole,
            }),
            Kind::Fetch { fetch, object, .. } => {
                let result = if object.sha1d == sha1d(&whole) {
                    Ok(whole)
                } else {
                    Err("the data does not match the MSNObject's SHA1D".to_string())
                };
                self.outcomes
                    .push_back(FileOutcome::Fetched { fetch, result });
            }
            Kind::Send { .. } => {}
        }
    }
}
