//! The binary file descriptor sent base64-encoded as the `Context` of a
//! file transfer INVITE (libpurple `MsnFileContext`, MSNPSharp `FTContext`).
//!
//! ```text
//! 0   u32 header length   574 (version 2, Messenger 6/7) or 638 (version 3)
//! 4   u32 version         2 or 3
//! 8   u64 file size
//! 16  u32 type            0: a preview follows, 1: no preview
//! 20  [u16; 260] name     UTF-16LE, NUL-padded
//! 540 [u8; 30]            unknown (background sharing), zero
//! 570 u32                 0xFFFFFFFF
//! 574 [u8; 64]            version 3 only, zero
//! len ..                  preview image, when present
//! ```
//!
//! libpurple ignores the length of version 2 ("broken for this version");
//! version 3 uses 638 in a captured WLM invite and in MSNPSharp.

use crate::b64;
use crate::p2p::P2pError;

pub const CONTEXT_LEN_V2: usize = 574;
pub const CONTEXT_LEN_V3: usize = 638;
/// UTF-16 units of the name field (Windows `MAX_PATH`).
pub const NAME_UNITS: usize = 260;
/// Largest preview accepted.
pub const MAX_PREVIEW: usize = 32 * 1024;
pub const FILE_TYPE_PREVIEW: u32 = 0;
pub const FILE_TYPE_NO_PREVIEW: u32 = 1;

const NAME_AT: usize = 20;
const UNKNOWN2_AT: usize = NAME_AT + NAME_UNITS * 2 + 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContext {
    pub version: u32,
    pub file_size: u64,
    pub kind: u32,
    /// The name without NULs or other control characters, at most 259
    /// UTF-16 units (one is kept for the terminating NUL).
    pub name: String,
    pub preview: Vec<u8>,
}

impl FileContext {
    /// A version 2 context (what Messenger 6.x sends), no preview.
    pub fn new(name: &str, file_size: u64) -> FileContext {
        FileContext {
            version: 2,
            file_size,
            kind: FILE_TYPE_NO_PREVIEW,
            name: clean_name(name.encode_utf16()),
            preview: Vec::new(),
        }
    }

    pub fn header_len(&self) -> usize {
        if self.version >= 3 {
            CONTEXT_LEN_V3
        } else {
            CONTEXT_LEN_V2
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let len = self.header_len();
        let mut out = vec![0u8; len];
        out[0..4].copy_from_slice(&(len as u32).to_le_bytes());
        out[4..8].copy_from_slice(&self.version.to_le_bytes());
        out[8..16].copy_from_slice(&self.file_size.to_le_bytes());
        out[16..20].copy_from_slice(&self.kind.to_le_bytes());
        let name = self.name.encode_utf16().take(NAME_UNITS - 1);
        for (i, u) in name.enumerate() {
            out[NAME_AT + 2 * i..NAME_AT + 2 * i + 2].copy_from_slice(&u.to_le_bytes());
        }
        out[UNKNOWN2_AT..UNKNOWN2_AT + 4].copy_from_slice(&[0xFF; 4]);
        out.extend_from_slice(&self.preview);
        out
    }

    pub fn to_base64(&self) -> String {
        b64::encode(&self.to_bytes())
    }

    pub fn parse(bytes: &[u8]) -> Result<FileContext, P2pError> {
        if bytes.len() < CONTEXT_LEN_V2 {
            return Err(P2pError::BadFileContext("shorter than 574 bytes"));
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let version = u32_at(4);
        let header_len = match version {
            2 => CONTEXT_LEN_V2,
            3 => {
                let len = u32_at(0) as usize;
                // libpurple checks 637, captures and MSNPSharp say 638.
                if !(CONTEXT_LEN_V2..=CONTEXT_LEN_V3).contains(&len) || len > bytes.len() {
                    return Err(P2pError::BadFileContext("bad header length"));
                }
                len
            }
            _ => return Err(P2pError::BadFileContext("unknown version")),
        };
        let mut size = [0u8; 8];
        size.copy_from_slice(&bytes[8..16]);
        let units = bytes[NAME_AT..NAME_AT + NAME_UNITS * 2]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]));
        let preview = &bytes[header_len..];
        if preview.len() > MAX_PREVIEW {
            return Err(P2pError::BadFileContext("preview too large"));
        }
        Ok(FileContext {
            version,
            file_size: u64::from_le_bytes(size),
            kind: u32_at(16),
            name: clean_name(units),
            preview: preview.to_vec(),
        })
    }

    /// Decodes the `Context` field of an INVITE.
    pub fn from_base64(text: &str) -> Result<FileContext, P2pError> {
        FileContext::parse(&b64::decode(text, CONTEXT_LEN_V3 + MAX_PREVIEW)?)
    }
}

/// Up to the first NUL, control characters dropped, unpaired surrogates
/// replaced, at most `NAME_UNITS - 1` units read.
fn clean_name(units: impl Iterator<Item = u16>) -> String {
    let units = units.take(NAME_UNITS - 1).take_while(|&u| u != 0);
    char::decode_utf16(units)
        .map(|c| c.unwrap_or('\u{FFFD}'))
        .filter(|c| !c.is_control())
        .collect()
}
