//! Framing: the 9-byte header, the id/length/value fields, and a streaming decoder
//! for TCP. Nothing here knows what a packet type means.

use crate::DecodeError;

/// First byte of every frame.
pub const MAGIC: u8 = 0x02;
/// Header size: magic (1), type (2), transaction id (2), content length (4).
pub const HEADER_LEN: usize = 9;
/// Field header size: id (2), length (4).
pub const FIELD_HEADER_LEN: usize = 6;
/// Largest content length (and field length) a peer may announce.
pub const MAX_CONTENT_LEN: u32 = 358_400;
/// Largest field value length.
pub const MAX_FIELD_LEN: u32 = MAX_CONTENT_LEN;
/// Largest whole frame.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_CONTENT_LEN as usize;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub packet_type: u16,
    pub transaction_id: u16,
    pub content_length: u32,
}

impl Header {
    /// Parses a header from the first 9 bytes; `Ok(None)` when fewer are available.
    /// The length limit is checked here, before anyone allocates for the content.
    pub fn parse(buf: &[u8]) -> Result<Option<Header>, DecodeError> {
        let Some(&magic) = buf.first() else {
            return Ok(None);
        };
        if magic != MAGIC {
            return Err(DecodeError::BadMagic(magic));
        }
        let Some(h) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let header = Header {
            packet_type: u16::from_be_bytes([h[1], h[2]]),
            transaction_id: u16::from_be_bytes([h[3], h[4]]),
            content_length: u32::from_be_bytes([h[5], h[6], h[7], h[8]]),
        };
        if header.content_length > MAX_CONTENT_LEN {
            return Err(DecodeError::ContentTooLong(header.content_length));
        }
        Ok(Some(header))
    }
}

/// One field with an owned value (used for unknown fields and the generic [`Frame`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    pub id: u16,
    pub value: Vec<u8>,
}

/// A frame borrowed from an input buffer; fields are parsed lazily by [`RawFrame::fields`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame<'a> {
    pub packet_type: u16,
    pub transaction_id: u16,
    pub content: &'a [u8],
}

impl<'a> RawFrame<'a> {
    /// Parses one whole frame at the start of `buf`. Returns the frame and the bytes
    /// it used, or `Ok(None)` if `buf` does not yet hold a whole frame.
    pub fn parse_prefix(buf: &'a [u8]) -> Result<Option<(RawFrame<'a>, usize)>, DecodeError> {
        let Some(header) = Header::parse(buf)? else {
            return Ok(None);
        };
        let end = HEADER_LEN + header.content_length as usize;
        let Some(content) = buf.get(HEADER_LEN..end) else {
            return Ok(None);
        };
        let frame = RawFrame {
            packet_type: header.packet_type,
            transaction_id: header.transaction_id,
            content,
        };
        Ok(Some((frame, end)))
    }

    /// Parses exactly one frame; trailing bytes after it are ignored.
    pub fn parse(buf: &'a [u8]) -> Result<RawFrame<'a>, DecodeError> {
        match Self::parse_prefix(buf)? {
            Some((frame, _)) => Ok(frame),
            None => {
                let needed = Header::parse(buf)?
                    .map_or(HEADER_LEN, |h| HEADER_LEN + h.content_length as usize);
                Err(DecodeError::Truncated {
                    needed,
                    had: buf.len(),
                })
            }
        }
    }

    /// Iterates over the fields in wire order.
    pub fn fields(&self) -> FieldIter<'a> {
        FieldIter { rest: self.content }
    }

    /// Copies the frame into an owned [`Frame`], validating every field.
    pub fn to_frame(&self) -> Result<Frame, DecodeError> {
        let fields = self
            .fields()
            .map(|f| {
                f.map(|(id, value)| Field {
                    id,
                    value: value.to_vec(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Frame {
            packet_type: self.packet_type,
            transaction_id: self.transaction_id,
            fields,
        })
    }
}

/// Iterator over `(id, value)` pairs of a frame's content. Stops after the first error.
#[derive(Debug, Clone)]
pub struct FieldIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = Result<(u16, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some(h) = self.rest.get(..FIELD_HEADER_LEN) else {
            let stray = self.rest.len();
            self.rest = &[];
            return Some(Err(DecodeError::TrailingBytes(stray)));
        };
        let id = u16::from_be_bytes([h[0], h[1]]);
        let len = u32::from_be_bytes([h[2], h[3], h[4], h[5]]);
        let result = if len > MAX_FIELD_LEN {
            Err(DecodeError::FieldTooLong { id, len })
        } else {
            let end = FIELD_HEADER_LEN + len as usize;
            match self.rest.get(FIELD_HEADER_LEN..end) {
                Some(value) => {
                    self.rest = &self.rest[end..];
                    return Some(Ok((id, value)));
                }
                None => Err(DecodeError::FieldOverrun { id }),
            }
        };
        self.rest = &[];
        Some(result)
    }
}

/// A frame with owned fields in wire order. Lossless: encoding a decoded `Frame`
/// reproduces the original bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    pub packet_type: u16,
    pub transaction_id: u16,
    pub fields: Vec<Field>,
}

impl Frame {
    /// Decodes one frame from `buf` (trailing bytes ignored).
    pub fn decode(buf: &[u8]) -> Result<Frame, DecodeError> {
        RawFrame::parse(buf)?.to_frame()
    }

    /// Appends the frame's bytes to `out`, fields in their stored order.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = begin_frame(out, self.packet_type, self.transaction_id);
        for field in &self.fields {
            put_field(out, field.id, &field.value);
        }
        finish_frame(out, start);
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// The value of the first field with this id.
    pub fn field(&self, id: u16) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.id == id)
            .map(|f| f.value.as_slice())
    }
}

/// Writes a header with a placeholder length; returns where the header starts.
pub(crate) fn begin_frame(out: &mut Vec<u8>, packet_type: u16, transaction_id: u16) -> usize {
    let start = out.len();
    out.push(MAGIC);
    out.extend_from_slice(&packet_type.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    start
}

/// Fills in the content length of the frame that starts at `start`.
pub(crate) fn finish_frame(out: &mut [u8], start: usize) {
    let len = (out.len() - start - HEADER_LEN) as u32;
    out[start + 5..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
}

pub(crate) fn put_field(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
}

/// Reassembles frames from a TCP byte stream.
///
/// `feed` appends received bytes; `next_frame` / `next_raw` return complete frames
/// one at a time. The buffer only ever holds bytes that were fed (never a size taken
/// from a length field), and oversize or out-of-sync headers are reported as soon as
/// the header is complete. After an error the stream cannot be resynchronised: the
/// same error is returned again and the connection should be closed.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the first unconsumed byte in `buf`.
    pos: usize,
    failed: Option<DecodeError>,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the socket.
    pub fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos >= 64 * 1024) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Frees the buffer once every byte in it was returned as frames, so that an idle
    /// connection holds none (the next `feed` allocates again).
    pub fn release_consumed(&mut self) {
        if self.pos == self.buf.len() {
            self.buf = Vec::new();
            self.pos = 0;
        }
    }

    /// The next complete frame, borrowed from the decoder's buffer.
    pub fn next_raw(&mut self) -> Result<Option<RawFrame<'_>>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        // `buf` and `pos` are disjoint fields: the frame can borrow one while the
        // other advances.
        match RawFrame::parse_prefix(&self.buf[self.pos..]) {
            Ok(Some((frame, used))) => {
                self.pos += used;
                Ok(Some(frame))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The next complete frame with owned fields.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        // A bad field spoils only its own frame: the frame boundary is still known.
        match self.next_raw()? {
            Some(raw) => raw.to_frame().map(Some),
            None => Ok(None),
        }
    }
}
