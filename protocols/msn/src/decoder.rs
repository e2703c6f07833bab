//! Streaming decoder: bytes in, commands out.

use crate::command::{line_len, parse_command, Command, CommandRef};
use crate::error::Error;

/// Accumulates bytes from a connection and yields complete commands.
///
/// A non-fatal error skips the offending line and decoding continues; after a
/// fatal error ([`Error::is_fatal`]) the decoder yields nothing more and
/// ignores input: close the connection.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    failed: bool,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed {
            self.buf = Vec::new();
            self.start = 0;
            return;
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete command, owned.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Command, Error>> {
        self.next_ref().map(|r| r.map(|c| c.to_owned()))
    }

    /// The next complete command, borrowed from the decoder's buffer.
    pub fn next_ref(&mut self) -> Option<Result<CommandRef<'_>, Error>> {
        if self.failed {
            return None;
        }
        loop {
            let rest = &self.buf[self.start..];
            if rest.is_empty() {
                return None;
            }
            // Blank lines (some servers send a stray CRLF) are skipped.
            if rest[0] == b'\n' || rest.starts_with(b"\r\n") {
                self.start += if rest[0] == b'\n' { 1 } else { 2 };
                continue;
            }
            break;
        }
        let Decoder { buf, start, failed } = self;
        let buf: &Vec<u8> = buf;
        let at = *start;
        match parse_command(&buf[at..]) {
            Ok(None) => None,
            Ok(Some((cmd, used))) => {
                *start += used;
                Some(Ok(cmd))
            }
            Err(e) if e.is_fatal() => {
                *failed = true;
                Some(Err(e))
            }
            Err(e) => {
                *start += line_len(&buf[at..]).unwrap_or(buf.len() - at);
                Some(Err(e))
            }
        }
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Frees the buffer once every byte in it was decoded, so that an idle connection
    /// holds none (the next `feed` allocates again).
    pub fn release_consumed(&mut self) {
        if self.start == self.buf.len() {
            self.buf = Vec::new();
            self.start = 0;
        }
    }
}
