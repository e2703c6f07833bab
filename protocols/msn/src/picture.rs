//! Fetching a contact's display picture: the receiver's side of the MSNSLP flow over a
//! switchboard (Messenger 6.x on MSNP9), sans-IO. The caller opens a switchboard with
//! the contact, sends [`PictureFetch::start`]'s INVITE, then feeds every P2P message the
//! contact sends to [`PictureFetch::handle`] and sends what it returns, until
//! [`PictureFetch::outcome`] says it is over. Identifiers come from the caller.
//!
//! The flow (PROTOCOL-NOTES, after libpurple `slp.c`/`slpcall.c` and MSNPiki "MSNC"):
//!
//! ```text
//! us: INVITE (session 0)             them: ack
//! them: 200 OK (session 0)           us: ack
//! them: data preparation, 4 zero bytes (session S, footer 1)   us: ack
//! them: the data in chunks (session S, flags 0x20, footer 1)   us: one ack at the end
//! us: BYE (session 0)                them: ack
//! ```
//!
//! Every message of theirs that is complete and not an ack is acked, as the official
//! clients require. The data must match the MSNObject's `SHA1D` and size.

use crate::msnobject::MsnObject;
use crate::p2p::{
    self, app_id, flags, P2pError, P2pHeader, P2pMessage, P2pMessageRef, Reassembler,
};
use crate::slp::{self, SlpMessage};

/// What the caller chooses for one fetch (no randomness inside the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchIds {
    /// The MSNSLP session id (non-zero).
    pub session_id: u32,
    /// Our first P2P message identifier; each message we send takes the next.
    pub base_id: u32,
    /// `{GUID}` of the INVITE's Via branch.
    pub branch: String,
    /// `{GUID}` of the call.
    pub call_id: String,
}

/// How a fetch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The picture, checked against the MSNObject.
    Picture(Vec<u8>),
    /// The contact declined or failed; the text says why.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// INVITE sent, waiting for 200 OK.
    Invited,
    /// 200 OK received, waiting for the data preparation or the data.
    Accepted,
    Done,
}

/// One display-picture fetch.
#[derive(Debug)]
pub struct PictureFetch {
    me: String,
    contact: String,
    object: MsnObject,
    ids: FetchIds,
    next_id: u32,
    phase: Phase,
    /// MSNSLP messages (session 0) in pieces.
    slp: Reassembler,
    /// The picture in pieces.
    data: Reassembler,
    outcome: Option<FetchOutcome>,
}

impl PictureFetch {
    /// Starts fetching `object` (as announced by `contact`, whose picture it must be)
    /// from `contact`; `me` is our address. Returns the fetch and the P2P messages of
    /// the INVITE to send (each an `MSG ... D` payload). A picture larger than
    /// `max_size` is refused before anything is stored.
    pub fn start(
        me: &str,
        contact: &str,
        object: &MsnObject,
        ids: FetchIds,
        max_size: u64,
    ) -> (PictureFetch, Vec<P2pMessage>) {
        let mut fetch = PictureFetch {
            me: me.to_owned(),
            contact: contact.to_owned(),
            object: object.clone(),
            next_id: ids.base_id,
            ids,
            phase: Phase::Invited,
            slp: Reassembler::new(slp::MAX_SLP_LEN as u64),
            data: Reassembler::new(max_size.min(object.size.max(1))),
            outcome: None,
        };
        if object.size > max_size {
            fetch.finish(FetchOutcome::Failed(format!(
                "the picture is {} bytes, more than the {max_size} allowed",
                object.size
            )));
            return (fetch, Vec::new());
        }
        let invite = SlpMessage::picture_invite(
            &fetch.contact,
            &fetch.me,
            &fetch.ids.branch,
            &fetch.ids.call_id,
            fetch.ids.session_id,
            &object.to_xml(),
        );
        let out = fetch.slp_messages(&invite);
        (fetch, out)
    }

    /// How it ended, once it has.
    pub fn outcome(&self) -> Option<&FetchOutcome> {
        self.outcome.as_ref()
    }

    /// Takes one P2P message from the contact; returns what to send back.
    pub fn handle(&mut self, packet: &P2pMessageRef) -> Vec<P2pMessage> {
        if self.phase == Phase::Done {
            return Vec::new();
        }
        let header = packet.header;
        if header.is_error() {
            self.finish(FetchOutcome::Failed(
                "the contact's client reported an error".into(),
            ));
            return Vec::new();
        }
        if header.is_ack() {
            return Vec::new(); // of something we sent: nothing waits on it
        }
        if header.session_id == 0 {
            self.slp_chunk(&header, packet.body)
        } else if header.session_id == self.ids.session_id {
            self.data_chunk(&header, packet.body)
        } else {
            Vec::new()
        }
    }

    fn slp_chunk(&mut self, header: &P2pHeader, body: &[u8]) -> Vec<P2pMessage> {
        let whole = match self.slp.push(header, body) {
            Ok(Some(whole)) => whole,
            Ok(None) => return Vec::new(),
            Err(e) => return self.fail_on(e),
        };
        let out = vec![self.ack(header)];
        let Ok(message) = SlpMessage::parse(&whole) else {
            return out; // acked, as clients do; nothing to act on
        };
        if message.call_id != self.ids.call_id {
            return out;
        }
        match (message.status(), message.method()) {
            (Some(200), _) if self.phase == Phase::Invited => self.phase = Phase::Accepted,
            (Some(code), _) if code >= 300 => {
                let why = match code {
                    603 => "the contact's client declined".to_owned(),
                    _ => format!("the contact's client answered {code}"),
                };
                self.finish(FetchOutcome::Failed(why));
            }
            (_, Some("BYE")) => {
                self.finish(FetchOutcome::Failed(
                    "the contact's client ended the transfer".into(),
                ));
            }
            _ => {}
        }
        out
    }

    fn data_chunk(&mut self, header: &P2pHeader, body: &[u8]) -> Vec<P2pMessage> {
        if self.phase != Phase::Accepted {
            return Vec::new();
        }
        // The data preparation: 4 zero bytes, no data flag.
        if header.flags & flags::MSNOBJ_DATA == 0 {
            return match header.total_size == 4 && header.offset == 0 && body == [0; 4] {
                true => vec![self.ack(header)],
                false => Vec::new(),
            };
        }
        let whole = match self.data.push(header, body) {
            Ok(Some(whole)) => whole,
            Ok(None) => return Vec::new(),
            Err(e) => return self.fail_on(e),
        };
        let mut out = vec![self.ack(header)];
        let bye = SlpMessage::bye(&self.contact, &self.me, &self.ids.branch, &self.ids.call_id);
        out.extend(self.slp_messages(&bye));
        let outcome = match self.object.matches_data(&whole) {
            true => FetchOutcome::Picture(whole),
            false => FetchOutcome::Failed("the picture does not match its SHA1D".into()),
        };
        self.finish(outcome);
        out
    }

    fn fail_on(&mut self, error: P2pError) -> Vec<P2pMessage> {
        self.finish(FetchOutcome::Failed(format!(
            "bad data from the contact: {error}"
        )));
        Vec::new()
    }

    fn finish(&mut self, outcome: FetchOutcome) {
        self.phase = Phase::Done;
        self.slp.reset();
        self.data.reset();
        self.outcome.get_or_insert(outcome);
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn ack(&mut self, acked: &P2pHeader) -> P2pMessage {
        let header = acked.ack(self.take_id());
        P2pMessage::new(&self.contact, header, &[], app_id::NEGOTIATION)
    }

    /// An MSNSLP message as P2P messages (session 0, footer 0), in chunks if long.
    fn slp_messages(&mut self, message: &SlpMessage) -> Vec<P2pMessage> {
        let bytes = message.to_bytes();
        let base = P2pHeader {
            id: self.take_id(),
            // Any value the contact echoes in its ack; the identifier's is customary.
            ack_id: self.next_id.wrapping_mul(0x9E37_79B9),
            ..P2pHeader::default()
        };
        p2p::chunks(base, &bytes, p2p::MAX_CHUNK)
            .map(|(header, body)| P2pMessage::new(&self.contact, header, body, app_id::NEGOTIATION))
            .collect()
    }
}
