//! One P2P (MSNC v1) link with one contact on one switchboard, sans-IO: every
//! P2P message from the contact goes through [`P2pLink::handle`], every message
//! to send comes out of [`P2pLink::poll_transmit`], and what happened comes out
//! of [`P2pLink::poll_event`].
//!
//! Why one link and not one machine per transfer: all sessions with a contact
//! share session 0 (MSNSLP) and the acks, so two machines fed the same
//! messages would each reassemble and ack the other's MSNSLP (libpurple has
//! the same shape: one `MsnSlpLink` per contact holding its `MsnSlpCall`s).
//! The link owns session 0, acks every complete non-ack message once, and
//! dispatches by Call-ID (MSNSLP) or SessionID (data) to four kinds of call:
//!
//! * **picture fetch** — we INVITE for the contact's MSNObject and receive
//!   data preparation and data (what [`crate::PictureFetch`] does alone);
//! * **picture serve** — the contact INVITEs for our MSNObject: 200 OK, data
//!   preparation (4 zero bytes, footer 1), data (flags 0x20, footer 1)
//!   (libpurple `got_sessionreq`, MSNPiki "MSNC: Display Pictures");
//! * **file receive** — the contact INVITEs with the file EUF-GUID, AppID 2
//!   and a [`FileContext`]; we answer when the caller decides; data comes as
//!   flags 0x01000030, footer 2 (libpurple `got_sessionreq`, `P2P_FILE_DATA`);
//! * **file send** — the same from our side.
//!
//! Identifiers are deterministic from the caller's seed (xorshift64): the
//! P2P message identifiers count up from a seeded base, one per message as
//! libpurple's `slp_seq_id`; session ids, Call-IDs, branches and the
//! "ack identifier" field come from the same generator.
//!
//! Bounds: at most `max_transfers` calls at once (INVITEs beyond are declined
//! with 603 at once), MSNSLP messages at most [`slp::MAX_SLP_LEN`], a file at
//! most its offered size (itself at most `max_file`), a picture at most its
//! MSNObject size (itself at most `max_picture`). Outgoing data is cut into
//! chunks lazily from the caller's `Arc`, so nothing is copied up front.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::filecontext::FileContext;
use crate::msnobject::MsnObject;
use crate::p2p::{
    self, app_id, flags, P2pError, P2pHeader, P2pMessage, P2pMessageRef, Reassembler,
};
use crate::slp::{self, SlpMessage};

/// What the link accepts (all driven by the peer, so all bounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLimits {
    /// Largest file accepted from the contact (bytes).
    pub max_file: u64,
    /// Largest picture fetched (bytes).
    pub max_picture: u64,
    /// Most transfers in progress at once, both directions, offers included.
    pub max_transfers: usize,
}

impl Default for LinkLimits {
    fn default() -> LinkLimits {
        LinkLimits {
            max_file: 16 * 1024 * 1024,
            max_picture: 256 * 1024,
            max_transfers: 4,
        }
    }
}

/// The caller's handle on one transfer (never reused by a link).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransferId(pub u32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The contact offers a file; answer with accept_file or decline_file.
    FileOffered {
        transfer: TransferId,
        name: String,
        size: u64,
    },
    /// An accepted file arrived whole (size checked against the offer).
    FileReceived {
        transfer: TransferId,
        name: String,
        data: Vec<u8>,
    },
    /// Our file was received whole (the contact acked its last chunk).
    FileSent { transfer: TransferId },
    /// The contact declined our file (603) before any data.
    FileDeclined { transfer: TransferId },
    /// A picture fetch ended with the picture (checked against SHA1D and size).
    PictureFetched { transfer: TransferId, data: Vec<u8> },
    /// Our picture went to the contact whole.
    PictureServed { transfer: TransferId },
    /// Any transfer ended otherwise (error flags, BYE mid-transfer, bad data,
    /// cancelled, over a limit).
    Failed { transfer: TransferId, why: String },
}

/// libpurple `msn_slpcall_init`: `rand() % 0xFFFFFF00 + 4`, so session ids
/// never collide with the reserved low values (0 is MSNSLP, 64 is Ink).
const SESSION_ID_SPAN: u64 = 0xFFFF_FF00;

#[derive(Debug)]
enum Kind {
    /// We asked for the contact's picture.
    Fetch {
        object: MsnObject,
        accepted: bool,
        data: Reassembler,
    },
    /// The contact asked for ours; waiting for the ack of the data message.
    Serve { data_header: Option<P2pHeader> },
    /// The contact offers a file.
    Receive {
        name: String,
        size: u64,
        /// The INVITE, answered later by [`P2pLink::accept_file`].
        invite: Box<SlpMessage>,
        accepted: bool,
        data: Reassembler,
    },
    /// We offer a file.
    Send {
        accepted: bool,
        data: Option<Arc<[u8]>>,
        data_header: Option<P2pHeader>,
    },
}

#[derive(Debug)]
struct Transfer {
    id: TransferId,
    call_id: String,
    session_id: u32,
    kind: Kind,
}

/// A data message being cut into chunks as the caller polls.
#[derive(Debug)]
struct Stream {
    transfer: TransferId,
    base: P2pHeader,
    data: Arc<[u8]>,
    offset: usize,
    app_id: u32,
}

/// A tiny deterministic generator (xorshift64, Marsaglia 2003): ids only,
/// nothing secret depends on it.
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        // Zero is xorshift's fixed point; any other constant will do.
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`, upper case as Messenger writes them.
    fn guid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{{{:08X}-{:04X}-{:04X}-{:04X}-{:012X}}}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        )
    }
}

/// One contact's P2P link on one switchboard.
#[derive(Debug)]
pub struct P2pLink {
    me: String,
    contact: String,
    limits: LinkLimits,
    rng: XorShift,
    next_id: u32,
    next_transfer: u32,
    /// Session 0 in pieces.
    slp: Reassembler,
    transfers: Vec<Transfer>,
    our_picture: Option<(MsnObject, Arc<[u8]>)>,
    /// Acks and MSNSLP, sent before any data chunk.
    control: VecDeque<P2pMessage>,
    /// Data messages, one chunk each in turn so transfers interleave.
    streams: VecDeque<Stream>,
    events: VecDeque<LinkEvent>,
}

impl P2pLink {
    /// A link between `me` and `contact`; every id it makes comes from `seed`.
    pub fn new(me: &str, contact: &str, seed: u64, limits: LinkLimits) -> P2pLink {
        let mut rng = XorShift::new(seed);
        // libpurple `msn_slplink_new`: the first identifier is random, then
        // each message takes the next.
        let next_id = (rng.next() % SESSION_ID_SPAN) as u32 + 4;
        P2pLink {
            me: me.to_owned(),
            contact: contact.to_owned(),
            limits,
            rng,
            next_id,
            next_transfer: 1,
            slp: Reassembler::new(slp::MAX_SLP_LEN as u64),
            transfers: Vec::new(),
            our_picture: None,
            control: VecDeque::new(),
            streams: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Transfers in progress (offered-and-unanswered included).
    pub fn transfers(&self) -> usize {
        self.transfers.len()
    }

    /// The picture we serve to INVITEs whose Context object has the same
    /// SHA1D; INVITEs for other objects are declined (603) at once, as
    /// libpurple does ("Wrong object").
    pub fn set_picture(&mut self, picture: Option<(MsnObject, Arc<[u8]>)>) {
        self.our_picture = picture;
    }

    /// Next P2P message to send (as `MSG ... D` with [`P2pMessage::to_mime`]).
    /// Acks and MSNSLP first; then one data chunk of each running transfer in
    /// turn, cut from the `Arc` only now, so a caller can interleave other
    /// traffic and pace the switchboard.
    pub fn poll_transmit(&mut self) -> Option<P2pMessage> {
        if let Some(m) = self.control.pop_front() {
            return Some(m);
        }
        let mut stream = self.streams.pop_front()?;
        let end = stream.data.len().min(stream.offset + p2p::MAX_CHUNK);
        let piece = &stream.data[stream.offset..end];
        let header = P2pHeader {
            offset: stream.offset as u64,
            total_size: stream.data.len() as u64,
            ..stream.base
        };
        let message = P2pMessage::new(&self.contact, header, piece, stream.app_id);
        stream.offset = end;
        if end < stream.data.len() {
            self.streams.push_back(stream);
        } else if let Some(t) = self.find(stream.transfer) {
            // Sent whole: the contact's ack of `base` ends the transfer.
            match &mut t.kind {
                Kind::Serve { data_header } | Kind::Send { data_header, .. } => {
                    *data_header = Some(header)
                }
                _ => {}
            }
        }
        Some(message)
    }

    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// Asks the contact for the picture `object` describes. A picture larger
    /// than `max_picture`, or one transfer too many, ends at once with
    /// [`LinkEvent::Failed`].
    pub fn fetch_picture(&mut self, object: &MsnObject) -> TransferId {
        let id = self.new_transfer_id();
        if object.size > self.limits.max_picture {
            let why = format!(
                "the picture is {} bytes, more than the {} allowed",
                object.size, self.limits.max_picture
            );
            self.events
                .push_back(LinkEvent::Failed { transfer: id, why });
            return id;
        }
        if self.transfers.len() >= self.limits.max_transfers {
            self.events.push_back(too_many(id));
            return id;
        }
        let (session_id, call_id, branch) = self.new_call();
        let invite = SlpMessage::picture_invite(
            &self.contact,
            &self.me,
            &branch,
            &call_id,
            session_id,
            &object.to_xml(),
        );
        self.send_slp(&invite);
        self.transfers.push(Transfer {
            id,
            call_id,
            session_id,
            kind: Kind::Fetch {
                object: object.clone(),
                accepted: false,
                // The data can be no larger than the object says.
                data: Reassembler::new(object.size.max(1)),
            },
        });
        id
    }

    /// Offers `data` as a file called `name` (INVITE with a version 2
    /// [`FileContext`], as Messenger 6.x sends). One transfer too many ends at
    /// once with [`LinkEvent::Failed`].
    pub fn send_file(&mut self, name: &str, data: Arc<[u8]>) -> TransferId {
        let id = self.new_transfer_id();
        if self.transfers.len() >= self.limits.max_transfers {
            self.events.push_back(too_many(id));
            return id;
        }
        let (session_id, call_id, branch) = self.new_call();
        let context = FileContext::new(name, data.len() as u64).to_bytes();
        let invite = SlpMessage::file_invite(
            &self.contact,
            &self.me,
            &branch,
            &call_id,
            session_id,
            &context,
        );
        self.send_slp(&invite);
        self.transfers.push(Transfer {
            id,
            call_id,
            session_id,
            kind: Kind::Send {
                accepted: false,
                data: Some(data),
                data_header: None,
            },
        });
        id
    }

    /// Accepts an offered file: 200 OK with the SessionID echoed (libpurple
    /// `msn_xfer_init`). Anything else than an unanswered offer is ignored.
    pub fn accept_file(&mut self, transfer: TransferId) {
        let Some(t) = self.find(transfer) else { return };
        let Kind::Receive {
            invite, accepted, ..
        } = &mut t.kind
        else {
            return;
        };
        if *accepted {
            return;
        }
        *accepted = true;
        let ok = invite.ok();
        self.send_slp(&ok);
    }

    /// Declines an offered file: 603 Decline with the SessionID (libpurple
    /// `msn_xfer_cancel` before the transfer started). The transfer ends with
    /// no event: the caller chose it. Anything else than an unanswered offer
    /// is ignored (use [`P2pLink::cancel`]).
    pub fn decline_file(&mut self, transfer: TransferId) {
        let Some(at) = self.position(transfer) else {
            return;
        };
        let Kind::Receive {
            invite, accepted, ..
        } = &self.transfers[at].kind
        else {
            return;
        };
        if *accepted {
            return;
        }
        let decline = invite.decline();
        self.transfers.remove(at);
        self.send_slp(&decline);
    }

    /// Ends a transfer (the caller's deadline passed): an unanswered offer is
    /// declined (603), anything else is closed with a BYE (libpurple
    /// `msn_xfer_cancel`: decline before the start, `msn_slpcall_close`
    /// after); our data stops; then [`LinkEvent::Failed`] with `why`.
    pub fn cancel(&mut self, transfer: TransferId, why: &str) {
        let Some(at) = self.position(transfer) else {
            return;
        };
        let t = self.transfers.remove(at);
        match &t.kind {
            Kind::Receive {
                invite,
                accepted: false,
                ..
            } => {
                let decline = invite.decline();
                self.send_slp(&decline);
            }
            _ => self.send_bye(&t),
        }
        self.end(t, Err(why.to_owned()));
    }

    /// One P2P message from the contact (the caller parsed it with
    /// [`P2pMessageRef::parse`] and checked it came from this contact).
    /// A packet whose `P2P-Dest` is someone else is ignored: with several
    /// people on a switchboard every `MSG` reaches all of them, and
    /// `P2P-Dest` names the one it is for.
    pub fn handle(&mut self, packet: &P2pMessageRef) {
        if !packet.destination.trim().eq_ignore_ascii_case(&self.me) {
            return;
        }
        let header = packet.header;
        if header.is_error() {
            // Error flags (0x8 binary, 0x80 transport): the session they
            // name is over (papyon `RST`/`TLP_ERROR`, PictureFetch).
            if let Some(at) = self.by_session(header.session_id) {
                let t = self.transfers.remove(at);
                self.end(t, Err("the contact's client reported an error".into()));
            }
            return;
        }
        if header.is_ack() {
            self.acked(&header);
            return;
        }
        if header.flags & flags::NAK != 0 {
            return;
        }
        if header.session_id == 0 {
            self.slp_chunk(&header, packet.body);
        } else {
            self.data_chunk(&header, packet.body);
        }
    }

    // --- input -------------------------------------------------------------

    /// The ack of a whole data message of ours ends a serve or a send.
    fn acked(&mut self, ack: &P2pHeader) {
        let at = self.transfers.iter().position(|t| match &t.kind {
            Kind::Serve { data_header } | Kind::Send { data_header, .. } => {
                data_header.is_some_and(|h| ack.acknowledges(&h))
            }
            _ => false,
        });
        if let Some(at) = at {
            let t = self.transfers.remove(at);
            self.end(t, Ok(None));
        }
    }

    fn slp_chunk(&mut self, header: &P2pHeader, body: &[u8]) {
        let whole = match self.slp.push(header, body) {
            Ok(Some(whole)) => whole,
            Ok(None) => return,
            Err(P2pError::OtherMessage { .. }) => {
                // A new MSNSLP message while another was in pieces: clients
                // send them whole in order, so the old one is abandoned.
                self.slp.reset();
                match self.slp.push(header, body) {
                    Ok(Some(whole)) => whole,
                    _ => return,
                }
            }
            Err(_) => {
                self.slp.reset();
                return;
            }
        };
        // Acked whether or not we understand it, as libpurple's slplink does.
        self.ack(header);
        let Ok(message) = SlpMessage::parse(&whole) else {
            return;
        };
        match (message.method(), message.status()) {
            (Some(m), _) if m.eq_ignore_ascii_case("INVITE") => self.invite(message),
            (Some(m), _) if m.eq_ignore_ascii_case("BYE") => self.bye(&message),
            (_, Some(code)) => self.response(&message, code),
            _ => {}
        }
    }

    fn invite(&mut self, invite: SlpMessage) {
        let known = self.by_call(&invite.call_id);
        let content_type = invite.content_type.to_ascii_lowercase();
        if content_type == slp::CONTENT_TYPE_TRANS_REQ {
            // Messenger 6/7 tries a direct connection (`Bridges: TCPv1`,
            // `NetID`, `Conn-Type`) once a file session is agreed. We never
            // listen: answering so sends the data over the switchboard.
            let is_file = known.is_some_and(|at| {
                matches!(
                    self.transfers[at].kind,
                    Kind::Receive { .. } | Kind::Send { .. }
                )
            });
            if is_file {
                self.send_slp(&invite.not_listening());
            }
            return;
        }
        if content_type != slp::CONTENT_TYPE_SESSION_REQ || known.is_some() {
            return; // a repeated INVITE of a call we run: nothing new
        }
        let session_id = match invite.session_id() {
            Some(s) if s != 0 && self.by_session(s).is_none() => s,
            _ => return self.send_slp(&invite.decline()),
        };
        if self.transfers.len() >= self.limits.max_transfers {
            return self.send_slp(&invite.decline());
        }
        let guid = invite.euf_guid().unwrap_or("");
        if guid.eq_ignore_ascii_case(slp::EUF_GUID_FILE) {
            self.file_offer(invite, session_id);
        } else if guid.eq_ignore_ascii_case(slp::EUF_GUID_MSNOBJ) {
            self.picture_request(invite, session_id);
        } else {
            // Webcam, activities...: libpurple declines unknown EUF-GUIDs.
            self.send_slp(&invite.decline());
        }
    }

    /// A file INVITE: an offer for the caller, or a 603 at once when the
    /// context is unreadable or the file larger than `max_file` (no event:
    /// nothing was offered to the caller).
    fn file_offer(&mut self, invite: SlpMessage, session_id: u32) {
        let context = match invite.context() {
            Some(Ok(bytes)) => FileContext::parse(&bytes).ok(),
            _ => None,
        };
        let Some(context) = context else {
            return self.send_slp(&invite.decline());
        };
        if context.file_size > self.limits.max_file {
            return self.send_slp(&invite.decline());
        }
        let id = self.new_transfer_id();
        self.events.push_back(LinkEvent::FileOffered {
            transfer: id,
            name: context.name.clone(),
            size: context.file_size,
        });
        self.transfers.push(Transfer {
            id,
            call_id: invite.call_id.clone(),
            session_id,
            kind: Kind::Receive {
                name: context.name,
                size: context.file_size,
                invite: Box::new(invite),
                accepted: false,
                data: Reassembler::new(context.file_size.max(1)),
            },
        });
    }

    /// A picture INVITE: ours (same SHA1D) gets 200 OK, data preparation and
    /// the data; anything else 603 (libpurple `got_sessionreq`).
    fn picture_request(&mut self, invite: SlpMessage, session_id: u32) {
        let asked = match invite.context() {
            Some(Ok(bytes)) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|t| MsnObject::parse(t.trim_end_matches('\0')).ok()),
            _ => None,
        };
        let ours = match (&self.our_picture, asked) {
            (Some((object, data)), Some(asked)) if object.sha1d == asked.sha1d => data.clone(),
            _ => return self.send_slp(&invite.decline()),
        };
        self.send_slp(&invite.ok());
        // Data preparation: 4 zero bytes in the session, flags 0, footer 1.
        let prep = P2pHeader {
            session_id,
            id: self.take_id(),
            total_size: 4,
            ack_id: self.rng.next() as u32,
            ..P2pHeader::default()
        };
        let prep = P2pMessage::new(&self.contact, prep, &[0; 4], app_id::MSNOBJ);
        self.control.push_back(prep);
        let id = self.new_transfer_id();
        let base = P2pHeader {
            session_id,
            id: self.take_id(),
            flags: flags::MSNOBJ_DATA,
            ack_id: self.rng.next() as u32,
            ..P2pHeader::default()
        };
        self.streams.push_back(Stream {
            transfer: id,
            base,
            data: ours,
            offset: 0,
            app_id: app_id::MSNOBJ,
        });
        self.transfers.push(Transfer {
            id,
            call_id: invite.call_id.clone(),
            session_id,
            kind: Kind::Serve { data_header: None },
        });
    }

    /// The contact's BYE: a transfer not finished is over.
    fn bye(&mut self, bye: &SlpMessage) {
        if let Some(at) = self.by_call(&bye.call_id) {
            let t = self.transfers.remove(at);
            self.end(t, Err("the contact's client ended the transfer".into()));
        }
    }

    fn response(&mut self, message: &SlpMessage, code: u16) {
        let Some(at) = self.by_call(&message.call_id) else {
            return;
        };
        if code >= 300 {
            let t = self.transfers.remove(at);
            let declined = matches!(
                t.kind,
                Kind::Send {
                    accepted: false,
                    ..
                }
            ) && code == 603;
            if declined {
                self.events
                    .push_back(LinkEvent::FileDeclined { transfer: t.id });
                self.drop_streams(t.id);
            } else {
                let why = match code {
                    603 => "the contact's client declined".to_owned(),
                    _ => format!("the contact's client answered {code}"),
                };
                self.end(t, Err(why));
            }
            return;
        }
        // Only the 200 OK to our session INVITE moves anything; a 200 OK to a
        // transreq (we never send one) or repeated OKs change nothing.
        if code != 200
            || !message
                .content_type
                .eq_ignore_ascii_case(slp::CONTENT_TYPE_SESSION_REQ)
        {
            return;
        }
        let t = &mut self.transfers[at];
        let (transfer, session_id) = (t.id, t.session_id);
        let data = match &mut t.kind {
            Kind::Fetch { accepted, .. } => {
                *accepted = true;
                return;
            }
            Kind::Send { accepted, data, .. } if !*accepted => {
                *accepted = true;
                data.take()
            }
            _ => None,
        };
        let Some(data) = data else { return };
        // The data: one identifier for all chunks, FILE_DATA flags, footer 2
        // (libpurple `msn_slpcall_session_init` -> `send_file_cb`,
        // `P2P_FILE_DATA`), cut as the caller polls.
        let base = P2pHeader {
            session_id,
            id: self.take_id(),
            flags: flags::FILE_DATA,
            ack_id: self.rng.next() as u32,
            ..P2pHeader::default()
        };
        self.streams.push_back(Stream {
            transfer,
            base,
            data,
            offset: 0,
            app_id: app_id::FILE_TRANSFER,
        });
    }

    fn data_chunk(&mut self, header: &P2pHeader, body: &[u8]) {
        let Some(at) = self.by_session(header.session_id) else {
            return;
        };
        let t = &mut self.transfers[at];
        let (data, expected) = match &mut t.kind {
            Kind::Fetch {
                accepted: true,
                data,
                object,
            } => (data, object.size),
            Kind::Receive {
                accepted: true,
                data,
                size,
                ..
            } => (data, *size),
            _ => return, // data before the 200 OK, or for a call we send
        };
        // The data preparation: 4 zero bytes without the data flag, acked.
        if header.flags & flags::MSNOBJ_DATA == 0 {
            if header.total_size == 4 && header.offset == 0 && body == [0; 4] {
                self.ack(header);
            }
            return;
        }
        if header.total_size != expected {
            let t = self.transfers.remove(at);
            self.send_bye(&t);
            let why = format!(
                "the contact sends {} bytes, {} were announced",
                header.total_size, expected
            );
            return self.end(t, Err(why));
        }
        let whole = match data.push(header, body) {
            Ok(Some(whole)) => whole,
            Ok(None) => return,
            Err(e) => {
                let t = self.transfers.remove(at);
                self.send_bye(&t);
                return self.end(t, Err(format!("bad data from the contact: {e}")));
            }
        };
        // One ack of the whole message, then the receiver's BYE closes the
        // call (MSNPiki's display-picture flow; aMSN and Kopete do the same for
        // files; libpurple 2.x drops the call without one, which the official
        // client tolerates either way).
        self.ack(header);
        let t = self.transfers.remove(at);
        self.send_bye(&t);
        self.end(t, Ok(Some(whole)));
    }

    // --- output ------------------------------------------------------------

    /// Reports the end of `t` (already removed) and drops its data stream.
    /// `Ok(Some)` is received data, `Ok(None)` our data acked.
    fn end(&mut self, t: Transfer, result: Result<Option<Vec<u8>>, String>) {
        self.drop_streams(t.id);
        let transfer = t.id;
        let event = match (t.kind, result) {
            (_, Err(why)) => LinkEvent::Failed { transfer, why },
            (Kind::Fetch { object, .. }, Ok(Some(data))) => match object.matches_data(&data) {
                true => LinkEvent::PictureFetched { transfer, data },
                false => LinkEvent::Failed {
                    transfer,
                    why: "the picture does not match its SHA1D".into(),
                },
            },
            (Kind::Receive { name, .. }, Ok(Some(data))) => LinkEvent::FileReceived {
                transfer,
                name,
                data,
            },
            (Kind::Serve { .. }, Ok(_)) => LinkEvent::PictureServed { transfer },
            (Kind::Send { .. }, Ok(_)) => LinkEvent::FileSent { transfer },
            (_, Ok(_)) => LinkEvent::Failed {
                transfer,
                why: "the transfer ended without data".into(),
            },
        };
        self.events.push_back(event);
    }

    fn drop_streams(&mut self, transfer: TransferId) {
        self.streams.retain(|s| s.transfer != transfer);
    }

    fn ack(&mut self, acked: &P2pHeader) {
        let header = acked.ack(self.take_id());
        let ack = P2pMessage::new(&self.contact, header, &[], app_id::NEGOTIATION);
        self.control.push_back(ack);
    }

    /// `BYE` for `t`'s call (libpurple `msn_slpcall_close`: a new branch).
    fn send_bye(&mut self, t: &Transfer) {
        let branch = self.rng.guid();
        let bye = SlpMessage::bye(&self.contact, &self.me, &branch, &t.call_id);
        self.send_slp(&bye);
    }

    /// An MSNSLP message as P2P messages (session 0, footer 0), in chunks if
    /// long; one identifier for all its chunks.
    fn send_slp(&mut self, message: &SlpMessage) {
        let bytes = message.to_bytes();
        let base = P2pHeader {
            id: self.take_id(),
            ack_id: self.rng.next() as u32,
            ..P2pHeader::default()
        };
        for (header, body) in p2p::chunks(base, &bytes, p2p::MAX_CHUNK) {
            let m = P2pMessage::new(&self.contact, header, body, app_id::NEGOTIATION);
            self.control.push_back(m);
        }
    }

    // --- bookkeeping ---------------------------------------------------------

    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn new_transfer_id(&mut self) -> TransferId {
        let id = TransferId(self.next_transfer);
        self.next_transfer = self.next_transfer.wrapping_add(1);
        id
    }

    /// A fresh session id (not in use), Call-ID and branch.
    fn new_call(&mut self) -> (u32, String, String) {
        let session_id = loop {
            let s = (self.rng.next() % SESSION_ID_SPAN) as u32 + 4;
            if self.by_session(s).is_none() {
                break s;
            }
        };
        (session_id, self.rng.guid(), self.rng.guid())
    }

    fn find(&mut self, id: TransferId) -> Option<&mut Transfer> {
        self.transfers.iter_mut().find(|t| t.id == id)
    }

    fn position(&self, id: TransferId) -> Option<usize> {
        self.transfers.iter().position(|t| t.id == id)
    }

    fn by_session(&self, session_id: u32) -> Option<usize> {
        if session_id == 0 {
            return None;
        }
        self.transfers
            .iter()
            .position(|t| t.session_id == session_id)
    }

    fn by_call(&self, call_id: &str) -> Option<usize> {
        self.transfers
            .iter()
            .position(|t| t.call_id.eq_ignore_ascii_case(call_id))
    }
}

fn too_many(transfer: TransferId) -> LinkEvent {
    LinkEvent::Failed {
        transfer,
        why: "too many transfers with this contact at once".into(),
    }
}
