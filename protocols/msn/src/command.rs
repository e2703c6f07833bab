//! Command lines (`CMD TrID params...\r\n`), payload commands and their framing.

use crate::error::{Error, ServerError, MAX_LINE, MAX_PAYLOAD};

/// Commands whose first parameter is never a TrID, even when it is numeric
/// (`LSG 0 Other%20Contacts 0`, `QNG 50`, `RNG <session id> ...`, `NOT <len>`).
fn never_trid(name: &str) -> bool {
    matches!(
        name.as_bytes(),
        b"NLN"
            | b"FLN"
            | b"RNG"
            | b"JOI"
            | b"BYE"
            | b"LSG"
            | b"LST"
            | b"QNG"
            | b"OUT"
            | b"BPR"
            | b"NOT"
            | b"UBX"
    )
}

/// True for commands whose last parameter is the byte length of a payload
/// that follows the line (with no CRLF after it): MSG, NOT, UBX, QRY, UUX.
pub fn is_payload_command(name: &str) -> bool {
    matches!(name.as_bytes(), b"MSG" | b"NOT" | b"UBX" | b"QRY" | b"UUX")
}

/// An owned command, either direction.
///
/// `params` exclude the TrID and, for payload commands, the length, which the
/// encoder writes from `payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub trid: Option<u32>,
    pub params: Vec<String>,
    pub payload: Option<Vec<u8>>,
}

impl Command {
    pub fn new(name: &str, trid: Option<u32>, params: &[&str]) -> Command {
        Command {
            name: name.to_string(),
            trid,
            params: params.iter().map(|p| p.to_string()).collect(),
            payload: None,
        }
    }

    pub fn with_payload(mut self, payload: Vec<u8>) -> Command {
        self.payload = Some(payload);
        self
    }

    pub fn param(&self, index: usize) -> Option<&str> {
        self.params.get(index).map(String::as_str)
    }

    /// The server error this command stands for, if its name is three digits.
    pub fn server_error(&self) -> Option<ServerError> {
        error_code(&self.name).map(|code| ServerError {
            code,
            trid: self.trid,
        })
    }

    /// Appends the wire form to `out`. Parameters must already be URL-encoded
    /// (no spaces or control characters).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.name.as_bytes());
        if let Some(trid) = self.trid {
            out.push(b' ');
            push_u64(out, trid as u64);
        }
        for p in &self.params {
            out.push(b' ');
            out.extend_from_slice(p.as_bytes());
        }
        if let Some(payload) = &self.payload {
            out.push(b' ');
            push_u64(out, payload.len() as u64);
        }
        out.extend_from_slice(b"\r\n");
        if let Some(payload) = &self.payload {
            out.extend_from_slice(payload);
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.payload.as_ref().map_or(0, Vec::len));
        self.encode_into(&mut out);
        out
    }
}

/// Writes a decimal number without going through `fmt`.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Writes one command without building a [`Command`] first (the fast path
/// used by the session machines).
pub fn encode_command(
    out: &mut Vec<u8>,
    name: &str,
    trid: Option<u32>,
    params: &[&str],
    payload: Option<&[u8]>,
) {
    out.extend_from_slice(name.as_bytes());
    if let Some(trid) = trid {
        out.push(b' ');
        push_u64(out, trid as u64);
    }
    for p in params {
        out.push(b' ');
        out.extend_from_slice(p.as_bytes());
    }
    if let Some(payload) = payload {
        out.push(b' ');
        push_u64(out, payload.len() as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(payload);
    } else {
        out.extend_from_slice(b"\r\n");
    }
}

fn error_code(name: &str) -> Option<u16> {
    if name.len() == 3 && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

/// A command borrowed from the input buffer: parsing it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandRef<'a> {
    pub name: &'a str,
    pub trid: Option<u32>,
    /// The parameters as they appear on the line, space separated, without
    /// TrID and payload length.
    pub raw_params: &'a str,
    pub payload: Option<&'a [u8]>,
}

impl<'a> CommandRef<'a> {
    pub fn params(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.raw_params.split_ascii_whitespace()
    }

    pub fn param(&self, index: usize) -> Option<&'a str> {
        self.params().nth(index)
    }

    pub fn server_error(&self) -> Option<ServerError> {
        error_code(self.name).map(|code| ServerError {
            code,
            trid: self.trid,
        })
    }

    pub fn to_owned(&self) -> Command {
        Command {
            name: self.name.to_string(),
            trid: self.trid,
            params: self.params().map(str::to_string).collect(),
            payload: self.payload.map(<[u8]>::to_vec),
        }
    }
}

/// Parses one command from the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, otherwise the command and
/// the number of bytes it used. On a non-fatal error the caller should skip
/// the line (see [`line_len`]). Empty lines are reported as `Ok(None)` only if
/// nothing follows them; use [`crate::Decoder`] for streams.
pub fn parse_command(buf: &[u8]) -> Result<Option<(CommandRef<'_>, usize)>, Error> {
    let Some(nl) = find_newline(buf) else {
        return if buf.len() >= MAX_LINE {
            Err(Error::LineTooLong)
        } else {
            Ok(None)
        };
    };
    let line_end = nl + 1;
    if line_end > MAX_LINE {
        return Err(Error::LineTooLong);
    }
    let mut line = &buf[..nl];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    let line = std::str::from_utf8(line).map_err(|_| Error::NotUtf8)?;
    let line = trim_spaces(line);
    let (name, mut rest) = split_space(line);
    if name.len() != 3 || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::BadCommandName(truncate(name)));
    }
    rest = trim_spaces(rest);
    let mut trid = None;
    if !never_trid(name) {
        let (first, after) = split_space(rest);
        if let Some(n) = parse_digits(first).and_then(|n| u32::try_from(n).ok()) {
            trid = Some(n);
            rest = trim_spaces(after);
        }
    }
    if !is_payload_command(name) || rest.is_empty() {
        let cmd = CommandRef {
            name,
            trid,
            raw_params: rest,
            payload: None,
        };
        return Ok(Some((cmd, line_end)));
    }
    let (params, len_text) = match rest.as_bytes().iter().rposition(|&b| b == b' ') {
        Some(i) => (trim_spaces(&rest[..i]), &rest[i + 1..]),
        None => ("", rest),
    };
    let Some(len) = parse_digits(len_text) else {
        // A long digit string is a huge length: fatal like any oversize one.
        if len_text.len() > 10 && len_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::PayloadTooLarge(u64::MAX));
        }
        return Err(Error::BadLength(name.to_string()));
    };
    if len > MAX_PAYLOAD as u64 {
        return Err(Error::PayloadTooLarge(len));
    }
    let total = line_end + len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let cmd = CommandRef {
        name,
        trid,
        raw_params: params,
        payload: Some(&buf[line_end..total]),
    };
    Ok(Some((cmd, total)))
}

/// Length of the first line in `buf` including its LF, if complete.
pub fn line_len(buf: &[u8]) -> Option<usize> {
    find_newline(buf).map(|n| n + 1)
}

fn find_newline(buf: &[u8]) -> Option<usize> {
    let limit = buf.len().min(MAX_LINE);
    buf[..limit].iter().position(|&b| b == b'\n')
}

/// Splits at the first space: `(before, after)`; `after` is empty if none.
fn split_space(text: &str) -> (&str, &str) {
    match text.as_bytes().iter().position(|&b| b == b' ') {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    }
}

/// A decimal number of 1 to 10 digits (no sign, no spaces).
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 10 {
        return None;
    }
    text.bytes().try_fold(0u64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// Strips spaces at both ends (byte loop: much cheaper than a char pattern).
fn trim_spaces(text: &str) -> &str {
    let b = text.as_bytes();
    let start = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ').map_or(start, |i| i + 1);
    &text[start..end.max(start)]
}

fn truncate(text: &str) -> String {
    text.chars().take(16).collect()
}
