//! The sending side of a Messenger 6.x display picture transfer (MSNC P2P
//! v1 over the switchboard, MSNSLP negotiation), written from the public
//! descriptions of the flow, one switchboard at a time and without I/O:
//! feed it every `application/x-msnmsgrp2p` payload with
//! [`PictureServer::handle`], send what [`PictureServer::poll_transmit`]
//! gives as `MSG ... D`, and call [`PictureServer::handle_timeout`] at
//! [`PictureServer::next_deadline`].
//!
//! The flow (MSNPiki "MSNC: Display Pictures", also the NINA wiki copy
//! "Protocols/MSNP/MSNC/Display pictures"; receiver RC, sender SC = us):
//!
//! ```text
//! RC INVITE  -> SC ack -> SC 200 OK -> RC ack -> SC data preparation
//!            -> RC ack -> SC data (chunks) -> RC one ack -> RC BYE -> SC ack
//! ```
//!
//! "All messages in this flow are mandatory: the official MSN client will
//! refuse your display picture if you don't send acknowledgements" (MSNPiki):
//! every step here waits for the ack of the previous one and abandons the
//! transfer when it does not come within the ack timeout.
//!
//! Where each detail comes from:
//! * Acks: flags 0x2, no body, session id copied, ack id = acked identifier,
//!   ack unique id = acked ack id, total and ack size = acked total size
//!   (libpurple `msn_slplink_send_ack`; [`P2pHeader::ack`]). Every complete
//!   message that is not itself an ack is acked, INVITE and BYE included.
//! * 200 OK: addresses swapped, same Call-ID and branch, `CSeq: 1`, the
//!   INVITE's content type and `SessionID` echoed (libpurple `msn_slp_send_ok`
//!   calls `msn_slpmsg_sip_new(slpcall, 1, "MSNSLP/1.0 200 OK", ...)`); sent
//!   with session id 0, flags 0, footer 0 like every MSNSLP message.
//! * 603 Decline: same form (libpurple `msn_slp_send_decline`, CSeq 1) when
//!   the INVITE is for something we do not serve.
//! * Data preparation: 4 zero bytes, the session id set, flags 0, footer 1
//!   (MSNPiki "Data preparation message"; libpurple `send_ok`/
//!   `msn_slpcall_session_init` queue a 4-byte body with the session id).
//! * Data: one message, cut in chunks of at most 1202 bytes (MSNPiki, libpurple
//!   `MSN_SBCONN_MAX_SIZE`), all chunks with the same identifier, flags 0x20,
//!   footer 1, offset and total size in each header.
//! * Identifiers: a random base identifier, incremented by one for every
//!   message we send, acks included (libpurple `slplink->slp_seq_id`); the
//!   "ack id" field of our messages is random (libpurple `rand()`).
//!   MSNPiki describes the official client's sender as starting at
//!   "BaseIdentifier - 3"; receivers do not depend on it (they match acks by
//!   the ack id fields), so the simpler libpurple rule is used.
//! * The requested object is the INVITE's `Context`, base64 of the
//!   `<msnobj .../>` text; it is compared with ours by SHA1D, as libpurple
//!   (`msn_object_find_local` by SHA1D) and papyon do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use msn_proto::p2p::{self, app_id, flags, MAX_CHUNK};
use msn_proto::slp::{SlpMessage, EUF_GUID_MSNOBJ, MAX_SLP_LEN};
use msn_proto::{MsnObject, P2pError, P2pHeader, P2pMessage, P2pMessageRef, Reassembler};

/// Largest picture a client serves (Messenger 6.x pictures are 96x96, a few
/// KiB; this leaves room for anything a test wants).
pub const MAX_PICTURE: usize = 1024 * 1024;
/// Default wait for each ack (the brief's 10 s; libpurple waits about as long
/// before giving a transfer up).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Transfers served at once on one switchboard; more INVITEs are declined.
const MAX_TRANSFERS: usize = 4;

/// A picture being served: its MSNObject and its bytes.
#[derive(Debug, Clone)]
pub struct Picture {
    pub object: MsnObject,
    pub data: Arc<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// 200 OK sent, waiting for its ack.
    Ok,
    /// Data preparation sent, waiting for its ack.
    Prep,
    /// Data sent, waiting for the one ack of the whole data.
    Data,
    /// Served; waiting for the receiver's BYE.
    Bye,
}

#[derive(Debug)]
struct Transfer {
    peer: String,
    call_id: String,
    session_id: u32,
    step: Step,
    /// The message whose ack we wait for (offset 0, whole total size).
    awaiting: P2pHeader,
    deadline: Instant,
    data: Arc<Vec<u8>>,
}

/// What happened to a transfer, for the client's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver acked the whole data.
    Served { to: String, bytes: usize },
    /// An expected ack did not come in time (or the peer reported an error).
    Abandoned { to: String },
}

/// The sender side of display picture transfers on one switchboard.
pub struct PictureServer {
    me: String,
    next_id: u32,
    ack_ids: Box<dyn FnMut() -> u32 + Send>,
    timeout: Duration,
    incoming: Reassembler,
    transfers: Vec<Transfer>,
    out: std::collections::VecDeque<P2pMessage>,
    outcomes: std::collections::VecDeque<Outcome>,
}

impl PictureServer {
    /// `base_id`: the first identifier we use; `ack_ids`: source of the
    /// random "ack id" field of our non-ack messages.
    pub fn new(
        me: &str,
        base_id: u32,
        ack_ids: Box<dyn FnMut() -> u32 + Send>,
        timeout: Duration,
    ) -> PictureServer {
        PictureServer {
            me: me.to_string(),
            next_id: base_id,
            ack_ids,
            timeout,
            incoming: Reassembler::new(MAX_SLP_LEN as u64),
            transfers: Vec::new(),
            out: Default::default(),
            outcomes: Default::default(),
        }
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub fn poll_transmit(&mut self) -> Option<P2pMessage> {
        self.out.pop_front()
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || !self.outcomes.is_empty()
    }

    pub fn poll_outcome(&mut self) -> Option<Outcome> {
        self.outcomes.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.transfers.iter().map(|t| t.deadline).min()
    }

    /// Drops transfers whose ack is overdue. One that was served and waits
    /// for a BYE that never comes is dropped quietly.
    pub fn handle_timeout(&mut self, now: Instant) {
        let (late, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.transfers)
            .into_iter()
            .partition(|t| t.deadline <= now);
        self.transfers = keep;
        for t in late {
            tracing::debug!(peer = %t.peer, step = ?t.step, "msn picture: ack overdue, transfer abandoned");
            if t.step != Step::Bye {
                self.outcomes.push_back(Outcome::Abandoned { to: t.peer });
            }
        }
    }

    fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Queues a whole message, cut in chunks; returns its header with
    /// offset 0 and the total size (what its ack must match).
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
            ack_id: (self.ack_ids)(),
            ..Default::default()
        };
        self.send(to, base, &slp.to_bytes(), app_id::NEGOTIATION)
    }

    fn ack(&mut self, to: &str, acked: &P2pHeader) {
        let h = acked.ack(self.id());
        self.out
            .push_back(P2pMessage::new(to, h, &[], app_id::NEGOTIATION));
    }

    /// One `application/x-msnmsgrp2p` `MSG` payload from `from`. Anything
    /// malformed, not addressed to us or unexpected is ignored.
    pub fn handle(&mut self, from: &str, payload: &[u8], picture: Option<&Picture>, now: Instant) {
        let Ok(m) = P2pMessageRef::parse(payload) else {
            return;
        };
        // libpurple and papyon drop P2P packets for someone else.
        if !m.destination.trim().eq_ignore_ascii_case(&self.me) {
            return;
        }
        let h = m.header;
        if h.is_error() || h.flags & flags::NAK != 0 {
            self.peer_error(from, &h);
        } else if h.is_ack() {
            self.on_ack(from, &h, now);
        } else if h.session_id == 0 {
            // MSNSLP (session 0); data for other sessions is not ours to take.
            self.on_slp_chunk(from, &h, m.body, picture, now);
        }
    }

    fn peer_error(&mut self, from: &str, h: &P2pHeader) {
        let before = self.transfers.len();
        self.transfers.retain(|t| {
            !(t.peer.eq_ignore_ascii_case(from)
                && (h.session_id == 0 || h.session_id == t.session_id))
        });
        if self.transfers.len() != before {
            self.outcomes.push_back(Outcome::Abandoned {
                to: from.to_string(),
            });
        }
    }

    fn on_ack(&mut self, from: &str, h: &P2pHeader, now: Instant) {
        let Some(i) = self.transfers.iter().position(|t| {
            t.peer.eq_ignore_ascii_case(from) && t.step != Step::Bye && h.acknowledges(&t.awaiting)
        }) else {
            return;
        };
        let (peer, sid, step, data) = {
            let t = &self.transfers[i];
            (t.peer.clone(), t.session_id, t.step, t.data.clone())
        };
        let (next, awaiting) = match step {
            Step::Ok => {
                let base = P2pHeader {
                    session_id: sid,
                    id: self.id(),
                    flags: flags::NONE,
                    ack_id: (self.ack_ids)(),
                    ..Default::default()
                };
                (Step::Prep, self.send(&peer, base, &[0; 4], app_id::MSNOBJ))
            }
            Step::Prep => {
                let base = P2pHeader {
                    session_id: sid,
                    id: self.id(),
                    flags: flags::MSNOBJ_DATA,
                    ack_id: (self.ack_ids)(),
                    ..Default::default()
                };
                (Step::Data, self.send(&peer, base, &data, app_id::MSNOBJ))
            }
            Step::Data | Step::Bye => {
                self.outcomes.push_back(Outcome::Served {
                    to: peer,
                    bytes: data.len(),
                });
                (Step::Bye, self.transfers[i].awaiting)
            }
        };
        let t = &mut self.transfers[i];
        t.step = next;
        t.awaiting = awaiting;
        t.deadline = now + self.timeout;
    }

    fn on_slp_chunk(
        &mut self,
        from: &str,
        h: &P2pHeader,
        body: &[u8],
        picture: Option<&Picture>,
        now: Instant,
    ) {
        let whole = match self.incoming.push(h, body) {
            Ok(w) => w,
            // A new message while another is incomplete: the old one is lost.
            Err(P2pError::OtherMessage { .. }) => {
                self.incoming.reset();
                self.incoming.push(h, body).ok().flatten()
            }
            Err(_) => None,
        };
        let Some(text) = whole else { return };
        // The whole message is acked (as every complete non-ack message).
        self.ack(from, h);
        let Ok(slp) = SlpMessage::parse(&text) else {
            return;
        };
        match slp.method() {
            Some(m) if m.eq_ignore_ascii_case("INVITE") => self.on_invite(from, &slp, picture, now),
            Some(m) if m.eq_ignore_ascii_case("BYE") => {
                self.transfers
                    .retain(|t| !(t.peer.eq_ignore_ascii_case(from) && t.call_id == slp.call_id));
            }
            _ => {}
        }
    }

    fn on_invite(
        &mut self,
        from: &str,
        invite: &SlpMessage,
        picture: Option<&Picture>,
        now: Instant,
    ) {
        let wanted = invite
            .context()
            .and_then(Result::ok)
            .and_then(|c| String::from_utf8(c).ok())
            .and_then(|c| MsnObject::parse(c.trim_end_matches('\0')).ok());
        let for_us = invite.to.eq_ignore_ascii_case(&self.me);
        let ours = match (picture, &wanted) {
            (Some(p), Some(w)) => w.sha1d == p.object.sha1d && p.data.len() <= MAX_PICTURE,
            _ => false,
        };
        let accept = for_us
            && invite
                .euf_guid()
                .is_some_and(|g| g.eq_ignore_ascii_case(EUF_GUID_MSNOBJ))
            && invite.session_id().is_some_and(|s| s != 0)
            && ours
            && self.transfers.len() < MAX_TRANSFERS
            && !self
                .transfers
                .iter()
                .any(|t| t.call_id == invite.call_id && t.peer.eq_ignore_ascii_case(from));
        let (Some(picture), Some(session_id), true) = (picture, invite.session_id(), accept) else {
            let mut no = invite.decline();
            no.cseq = 1;
            self.send_slp(from, &no);
            return;
        };
        let mut ok = invite.ok();
        ok.cseq = 1;
        let awaiting = self.send_slp(from, &ok);
        self.transfers.push(Transfer {
            peer: from.to_string(),
            call_id: invite.call_id.clone(),
            session_id,
            step: Step::Ok,
            awaiting,
            deadline: now + self.timeout,
            data: picture.data.clone(),
        });
    }
}
