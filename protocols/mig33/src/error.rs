//! Errors returned by the decoders.

use thiserror::Error;

/// Why bytes could not be decoded into a frame or a typed packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The first byte of a header was not the 0x02 magic: the stream is out of sync.
    #[error("bad frame magic 0x{0:02x} (expected 0x02)")]
    BadMagic(u8),
    /// The header announced more content than the protocol allows.
    #[error("content length {0} exceeds the limit of {limit} bytes", limit = crate::MAX_CONTENT_LEN)]
    ContentTooLong(u32),
    /// A field announced more bytes than the protocol allows.
    #[error("field {id} length {len} exceeds the limit of {limit} bytes", limit = crate::MAX_FIELD_LEN)]
    FieldTooLong { id: u16, len: u32 },
    /// A complete frame was expected but the bytes ended early.
    #[error("frame truncated: needed {needed} bytes, had {had}")]
    Truncated { needed: usize, had: usize },
    /// A field header or value ran past the end of the frame content.
    #[error("field {id} runs past the end of the content")]
    FieldOverrun { id: u16 },
    /// A field header (6 bytes) was cut off at the end of the content.
    #[error("{0} stray bytes after the last field")]
    TrailingBytes(usize),
    /// The packet type code is not one this crate knows.
    #[error("unknown packet type {0}")]
    UnknownType(u16),
    /// A field the packet cannot do without is absent.
    #[error("packet type {packet_type} lacks required field {field}")]
    MissingField { packet_type: u16, field: u16 },
    /// An integer field had a length that cannot hold the expected integer.
    #[error(
        "packet type {packet_type} field {field}: {len}-byte value is not a valid integer here"
    )]
    BadInteger {
        packet_type: u16,
        field: u16,
        len: usize,
    },
}
