//! Little-endian field readers and writers shared by every packet codec.

use crate::error::DecodeError;
use crate::text::{decode_cp1252, encode_cp1252_lossy};
use std::net::Ipv4Addr;

/// A cursor over a received packet. Every read checks the remaining length first,
/// so a short or lying packet becomes a [`DecodeError`], never a panic.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::ShortPacket {
                field,
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            });
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let bytes = &self.buf[self.pos..];
        self.pos = self.buf.len();
        bytes
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, field)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// IP addresses travel as four bytes in network order (a.b.c.d).
    pub(crate) fn ip(&mut self, field: &'static str) -> Result<Ipv4Addr, DecodeError> {
        let b = self.take(4, field)?;
        Ok(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }

    /// Skips a field whose value is unknown; decoders accept any value there.
    pub(crate) fn skip(&mut self, n: usize, field: &'static str) -> Result<(), DecodeError> {
        self.take(n, field).map(|_| ())
    }

    /// A string: u16 length including the NUL, the bytes, the NUL. Liberal: the
    /// text ends at the first NUL inside the counted bytes, and a missing NUL is fine.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let raw = self.string_bytes(field)?;
        Ok(decode_cp1252(raw))
    }

    pub(crate) fn string_bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16(field)?);
        if len > self.remaining() {
            return Err(DecodeError::BadLength {
                field,
                length: len,
                available: self.remaining(),
            });
        }
        let raw = self.take(len, field)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        Ok(&raw[..end])
    }
}

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_ip(out: &mut Vec<u8>, ip: Ipv4Addr) {
    out.extend_from_slice(&ip.octets());
}

/// Longest string body a u16 length (which counts the NUL) can describe.
pub(crate) const MAX_STRING_BYTES: usize = u16::MAX as usize - 1;

/// Writes a string as Windows-1252 with its length and NUL. Characters that cannot
/// be represented become `?`; sessions check text with
/// [`encode_cp1252`](crate::encode_cp1252) first and report them. Bodies longer
/// than a u16 length allows are cut (sessions refuse such text before this point).
pub(crate) fn put_str(out: &mut Vec<u8>, text: &str) {
    let len_at = out.len();
    put_u16(out, 0);
    encode_cp1252_lossy(out, text);
    let body = (out.len() - len_at - 2).min(MAX_STRING_BYTES);
    out.truncate(len_at + 2 + body);
    out.push(0);
    let len = (body + 1) as u16;
    out[len_at..len_at + 2].copy_from_slice(&len.to_le_bytes());
}
