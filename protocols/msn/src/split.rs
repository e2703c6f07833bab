//! Splitting long text so that every `MSG` payload fits the server's limit.

use crate::format::TextFormat;
use crate::mime::Message;

/// The largest `MSG` payload (MIME headers + body) a switchboard accepts.
pub const MAX_MSG_PAYLOAD: usize = 1664;

/// Splits `text` into chunks whose complete text message (headers with this
/// `format` plus body) is at most [`MAX_MSG_PAYLOAD`] bytes. Cuts fall on
/// UTF-8 character boundaries, preferably after a space or newline in the
/// second half of a chunk. Empty text gives one empty chunk.
pub fn split_text<'a>(text: &'a str, format: Option<&TextFormat>) -> Vec<&'a str> {
    let overhead = Message::text("", format).to_bytes().len();
    // A pathological font name could eat the whole budget; still make progress.
    let budget = MAX_MSG_PAYLOAD.saturating_sub(overhead).max(4);
    let mut chunks = Vec::new();
    let mut rest = text;
    while rest.len() > budget {
        let mut cut = budget;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(space) = rest[..cut].rfind([' ', '\n']) {
            if space + 1 > cut / 2 {
                cut = space + 1;
            }
        }
        chunks.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    chunks.push(rest);
    chunks
}
