//! MSNC P2P (v1) transport as carried by switchboard `MSG`s with
//! `Content-Type: application/x-msnmsgrp2p` (Messenger 6.x on MSNP9):
//! the 48-byte little-endian binary header, the body, and a 4-byte
//! big-endian footer holding the application id.
//!
//! Layout (MSNPiki "MSNC: P2Pv1 binary headers"; libpurple `p2p.h`):
//!
//! ```text
//! 0  u32 session id     (0 while negotiating with MSNSLP)
//! 4  u32 identifier     (one per message; all its chunks share it)
//! 8  u64 data offset    (of this chunk in the whole message)
//! 16 u64 total size     (of the whole message)
//! 24 u32 message length (bytes in this chunk)
//! 28 u32 flags
//! 32 u32 ack identifier     (random on data; acked id on an ack)
//! 36 u32 ack unique id      (acked message's ack identifier)
//! 40 u64 ack data size      (acked message's total size)
//! ```
//!
//! Errors of every P2P layer (transport, MSNSLP, MSNObject, file context)
//! share [`P2pError`].

use thiserror::Error;

use crate::error::Error;
use crate::mime::{Message, MessageRef};

pub const HEADER_LEN: usize = 48;
pub const FOOTER_LEN: usize = 4;
/// Most body bytes one switchboard `MSG` carries (libpurple, Kopete and the
/// official client cut messages at 1202 bytes).
pub const MAX_CHUNK: usize = 1202;
pub const CONTENT_TYPE_P2P: &str = "application/x-msnmsgrp2p";

/// Header flags (MSNPiki / imfreedom "P2Pv1 Headers", papyon `TLPFlag`).
pub mod flags {
    pub const NONE: u32 = 0;
    pub const NAK: u32 = 0x1;
    pub const ACK: u32 = 0x2;
    /// Waiting for a reply to a pending invite (papyon `RAK`).
    pub const WAITING: u32 = 0x4;
    /// Error at the binary level (papyon `RST`).
    pub const BINARY_ERROR: u32 = 0x8;
    pub const FILE: u32 = 0x10;
    /// MSNObject (display picture, emoticon) data.
    pub const MSNOBJ_DATA: u32 = 0x20;
    /// Session closed; also acknowledges a `BYE` (papyon `CAN`).
    pub const CLOSE: u32 = 0x40;
    /// Error at the transport layer.
    pub const TLP_ERROR: u32 = 0x80;
    pub const DIRECT_HANDSHAKE: u32 = 0x100;
    /// File transfer data (libpurple `P2P_FILE_DATA`).
    pub const FILE_DATA: u32 = 0x0100_0030;
    /// Flags meaning "this is an error report", not data.
    pub const ERRORS: u32 = BINARY_ERROR | TLP_ERROR;
}

/// Footer values (application ids).
pub mod app_id {
    /// MSNSLP negotiation, acks and data preparation.
    pub const NEGOTIATION: u32 = 0;
    pub const MSNOBJ: u32 = 1;
    pub const FILE_TRANSFER: u32 = 2;
}

/// Everything that can be wrong with P2P input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum P2pError {
    #[error(transparent)]
    Mime(#[from] Error),
    #[error("not an application/x-msnmsgrp2p message")]
    NotP2p,
    #[error("P2P message without a P2P-Dest header")]
    NoDestination,
    #[error("P2P packet of {0} bytes is shorter than header and footer")]
    TooShort(usize),
    #[error("binary header announces {header} body bytes, the packet has {actual}")]
    LengthMismatch { header: u32, actual: usize },
    #[error("chunk of {length} bytes at offset {offset} lies outside a {total}-byte message")]
    OutOfRange {
        offset: u64,
        length: u64,
        total: u64,
    },
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("chunk at offset {0} overlaps data already received")]
    Overlap(u64),
    #[error("chunk of session {session_id} message {id} belongs to another message")]
    OtherMessage { session_id: u32, id: u32 },
    #[error("message arrives in too many pieces out of order")]
    TooFragmented,
    #[error("malformed MSNSLP message: {0}")]
    BadSlp(&'static str),
    #[error("malformed MSNObject: {0}")]
    BadMsnObject(&'static str),
    #[error("malformed file transfer context: {0}")]
    BadFileContext(&'static str),
    #[error("invalid base64")]
    BadBase64,
}

/// The 48-byte binary header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct P2pHeader {
    pub session_id: u32,
    pub id: u32,
    pub offset: u64,
    pub total_size: u64,
    pub length: u32,
    pub flags: u32,
    pub ack_id: u32,
    pub ack_unique_id: u32,
    pub ack_size: u64,
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl P2pHeader {
    pub fn parse(bytes: &[u8]) -> Result<P2pHeader, P2pError> {
        let b = bytes
            .get(..HEADER_LEN)
            .ok_or(P2pError::TooShort(bytes.len()))?;
        Ok(P2pHeader {
            session_id: le32(b, 0),
            id: le32(b, 4),
            offset: le64(b, 8),
            total_size: le64(b, 16),
            length: le32(b, 24),
            flags: le32(b, 28),
            ack_id: le32(b, 32),
            ack_unique_id: le32(b, 36),
            ack_size: le64(b, 40),
        })
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0; HEADER_LEN];
        b[0..4].copy_from_slice(&self.session_id.to_le_bytes());
        b[4..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..24].copy_from_slice(&self.total_size.to_le_bytes());
        b[24..28].copy_from_slice(&self.length.to_le_bytes());
        b[28..32].copy_from_slice(&self.flags.to_le_bytes());
        b[32..36].copy_from_slice(&self.ack_id.to_le_bytes());
        b[36..40].copy_from_slice(&self.ack_unique_id.to_le_bytes());
        b[40..48].copy_from_slice(&self.ack_size.to_le_bytes());
        b
    }

    pub fn is_ack(&self) -> bool {
        self.flags & flags::ACK != 0
    }

    pub fn is_error(&self) -> bool {
        self.flags & flags::ERRORS != 0
    }

    /// True for the chunk that completes its message (libpurple:
    /// `offset + length >= total_size`).
    pub fn is_last_chunk(&self) -> bool {
        self.offset.saturating_add(self.length.into()) >= self.total_size
    }

    /// Whether the receiver of this chunk owes an ack: complete messages
    /// that are not acks themselves (papyon `require_ack`, libpurple only
    /// acks flags 0, 0x20, 0x1000000, 0x1000020, 0x1000030).
    pub fn requires_ack(&self) -> bool {
        !self.is_ack() && self.flags & (flags::NAK | flags::ERRORS) == 0 && self.is_last_chunk()
    }

    /// The ack for this header, as libpurple builds it
    /// (`msn_slplink_create_ack`/`release_slpmsg`): same session, `id` is the
    /// acker's next identifier, total size and ack size copy the acked total,
    /// ack id = acked identifier, ack unique id = acked ack id; no body.
    pub fn ack(&self, id: u32) -> P2pHeader {
        P2pHeader {
            session_id: self.session_id,
            id,
            offset: 0,
            total_size: self.total_size,
            length: 0,
            flags: flags::ACK,
            ack_id: self.id,
            ack_unique_id: self.ack_id,
            ack_size: self.total_size,
        }
    }

    /// True if `self` is the ack of `acked` (the fields [`P2pHeader::ack`] copies).
    pub fn acknowledges(&self, acked: &P2pHeader) -> bool {
        self.is_ack()
            && self.session_id == acked.session_id
            && self.ack_id == acked.id
            && self.ack_unique_id == acked.ack_id
            && self.ack_size == acked.total_size
    }
}

/// A P2P `MSG` payload borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct P2pMessageRef<'a> {
    /// The `P2P-Dest` header: whom the packet is for.
    pub destination: &'a str,
    pub header: P2pHeader,
    pub body: &'a [u8],
    /// The big-endian footer ([`app_id`]).
    pub app_id: u32,
}

impl<'a> P2pMessageRef<'a> {
    /// Parses a whole `MSG` payload. The MIME part goes through the crate's
    /// [`MessageRef`], whose body is raw bytes, so nothing binary is
    /// converted. The header's length must match the body exactly and the
    /// chunk must lie within the announced total.
    pub fn parse(payload: &'a [u8]) -> Result<P2pMessageRef<'a>, P2pError> {
        let mime = MessageRef::parse(payload)?;
        if !mime
            .media_type()
            .is_some_and(|t| t.eq_ignore_ascii_case(CONTENT_TYPE_P2P))
        {
            return Err(P2pError::NotP2p);
        }
        let destination = mime.header("P2P-Dest").ok_or(P2pError::NoDestination)?;
        let (header, body, app_id) = parse_binary(mime.body)?;
        Ok(P2pMessageRef {
            destination,
            header,
            body,
            app_id,
        })
    }

    pub fn to_owned(&self) -> P2pMessage {
        P2pMessage {
            destination: self.destination.to_string(),
            header: self.header,
            body: self.body.to_vec(),
            app_id: self.app_id,
        }
    }
}

/// Splits `header | body | footer` and checks the header against the body.
pub fn parse_binary(bin: &[u8]) -> Result<(P2pHeader, &[u8], u32), P2pError> {
    if bin.len() < HEADER_LEN + FOOTER_LEN {
        return Err(P2pError::TooShort(bin.len()));
    }
    let header = P2pHeader::parse(bin)?;
    let (rest, footer) = bin.split_at(bin.len() - FOOTER_LEN);
    let body = &rest[HEADER_LEN..];
    if header.length as usize != body.len() {
        return Err(P2pError::LengthMismatch {
            header: header.length,
            actual: body.len(),
        });
    }
    check_range(&header)?;
    let app_id = u32::from_be_bytes([footer[0], footer[1], footer[2], footer[3]]);
    Ok((header, body, app_id))
}

fn check_range(h: &P2pHeader) -> Result<(), P2pError> {
    let length = u64::from(h.length);
    match h.offset.checked_add(length) {
        Some(end) if end <= h.total_size => Ok(()),
        _ => Err(P2pError::OutOfRange {
            offset: h.offset,
            length,
            total: h.total_size,
        }),
    }
}

/// An owned P2P packet, for building.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct P2pMessage {
    pub destination: String,
    pub header: P2pHeader,
    pub body: Vec<u8>,
    pub app_id: u32,
}

impl P2pMessage {
    /// A packet whose header `length` is set from `body`.
    pub fn new(destination: &str, mut header: P2pHeader, body: &[u8], app_id: u32) -> P2pMessage {
        header.length = body.len() as u32;
        P2pMessage {
            destination: destination.to_string(),
            header,
            body: body.to_vec(),
            app_id,
        }
    }

    /// The MIME message: `MIME-Version`, `Content-Type`, `P2P-Dest`, then
    /// header, body and footer as the raw body.
    pub fn to_mime(&self) -> Message {
        let mut body = Vec::with_capacity(HEADER_LEN + self.body.len() + FOOTER_LEN);
        body.extend_from_slice(&self.header.to_bytes());
        body.extend_from_slice(&self.body);
        body.extend_from_slice(&self.app_id.to_be_bytes());
        Message {
            headers: vec![
                ("MIME-Version".to_string(), "1.0".to_string()),
                ("Content-Type".to_string(), CONTENT_TYPE_P2P.to_string()),
                ("P2P-Dest".to_string(), self.destination.clone()),
            ],
            body,
        }
    }

    /// The `MSG` payload (send it with ack mode `D`).
    pub fn to_payload(&self) -> Vec<u8> {
        self.to_mime().to_bytes()
    }
}

/// Cuts `data` into chunks of at most `max_chunk` bytes (at least 1), each
/// with `base`'s fields and its own offset, length and total size. Empty
/// data gives one empty chunk (a message is always sent).
pub fn chunks<'a>(base: P2pHeader, data: &'a [u8], max_chunk: usize) -> Chunks<'a> {
    Chunks {
        base,
        data,
        max: max_chunk.clamp(1, u32::MAX as usize),
        offset: 0,
        done: false,
    }
}

/// Iterator of `(header, body)` from [`chunks`].
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    base: P2pHeader,
    data: &'a [u8],
    max: usize,
    offset: usize,
    done: bool,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = (P2pHeader, &'a [u8]);

    fn next(&mut self) -> Option<(P2pHeader, &'a [u8])> {
        if self.done {
            return None;
        }
        let end = self.data.len().min(self.offset + self.max);
        let piece = &self.data[self.offset..end];
        let header = P2pHeader {
            offset: self.offset as u64,
            total_size: self.data.len() as u64,
            length: piece.len() as u32,
            ..self.base
        };
        self.offset = end;
        self.done = end >= self.data.len();
        Some((header, piece))
    }
}

/// Most separate pieces an out-of-order message may be in at once.
const MAX_GAPS: usize = 256;

/// Collects the chunks of one message (same session id and identifier).
/// Memory never exceeds the caller's limit: the total size is checked
/// before anything is stored, and the buffer grows only to the end of the
/// furthest chunk seen.
#[derive(Debug, Clone)]
pub struct Reassembler {
    max_total: u64,
    current: Option<Partial>,
}

#[derive(Debug, Clone)]
struct Partial {
    session_id: u32,
    id: u32,
    total: u64,
    data: Vec<u8>,
    /// Received ranges, sorted, merged when adjacent.
    ranges: Vec<(u64, u64)>,
}

impl Reassembler {
    pub fn new(max_total: u64) -> Reassembler {
        Reassembler {
            max_total,
            current: None,
        }
    }

    /// The message in progress, `(session id, identifier)`.
    pub fn pending(&self) -> Option<(u32, u32)> {
        self.current.as_ref().map(|p| (p.session_id, p.id))
    }

    /// Drops a message in progress (cancelled transfer).
    pub fn reset(&mut self) {
        self.current = None;
    }

    /// Adds one chunk; returns the whole message once every byte arrived.
    /// On an error the message in progress is kept, so the caller may
    /// ignore a bad chunk or [`Reassembler::reset`].
    pub fn push(&mut self, header: &P2pHeader, body: &[u8]) -> Result<Option<Vec<u8>>, P2pError> {
        if header.length as usize != body.len() {
            return Err(P2pError::LengthMismatch {
                header: header.length,
                actual: body.len(),
            });
        }
        check_range(header)?;
        if header.total_size > self.max_total {
            return Err(P2pError::TooLarge {
                size: header.total_size,
                limit: self.max_total,
            });
        }
        let p = match &mut self.current {
            Some(p) => {
                if (p.session_id, p.id, p.total)
                    != (header.session_id, header.id, header.total_size)
                {
                    return Err(P2pError::OtherMessage {
                        session_id: header.session_id,
                        id: header.id,
                    });
                }
                p
            }
            None => self.current.insert(Partial {
                session_id: header.session_id,
                id: header.id,
                total: header.total_size,
                data: Vec::new(),
                ranges: Vec::new(),
            }),
        };
        let (start, end) = (header.offset, header.offset + u64::from(header.length));
        if start < end {
            p.insert_range(start, end)?;
            // end <= total <= max_total, which the caller sized for memory.
            let (s, e) = (start as usize, end as usize);
            if p.data.len() < e {
                p.data.resize(e, 0);
            }
            p.data[s..e].copy_from_slice(body);
        }
        let complete = match p.ranges.as_slice() {
            [] => p.total == 0,
            [(0, e)] => *e == p.total,
            _ => false,
        };
        Ok(if complete {
            self.current.take().map(|p| p.data)
        } else {
            None
        })
    }
}

impl Partial {
    fn insert_range(&mut self, start: u64, end: u64) -> Result<(), P2pError> {
        let i = self.ranges.partition_point(|&(_, e)| e <= start);
        if self.ranges.get(i).is_some_and(|&(s, _)| s < end) {
            return Err(P2pError::Overlap(start));
        }
        let joins_prev = i > 0 && self.ranges[i - 1].1 == start;
        let joins_next = self.ranges.get(i).is_some_and(|&(s, _)| s == end);
        match (joins_prev, joins_next) {
            (true, true) => {
                self.ranges[i - 1].1 = self.ranges[i].1;
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i - 1].1 = end,
            (false, true) => self.ranges[i].0 = start,
            (false, false) => {
                if self.ranges.len() >= MAX_GAPS {
                    return Err(P2pError::TooFragmented);
                }
                self.ranges.insert(i, (start, end));
            }
        }
        Ok(())
    }
}
