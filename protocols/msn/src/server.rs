//! Server side of a connection: decode client commands, write replies.
//! The simulator keeps its own state; this only does the framing.

use crate::command::{encode_command, Command};
use crate::decoder::Decoder;
use crate::error::Error;

/// One client connection as seen by a server (dispatch, notification or
/// switchboard).
#[derive(Debug, Default)]
pub struct ServerConn {
    decoder: Decoder,
    out: Vec<u8>,
}

impl ServerConn {
    pub fn new() -> ServerConn {
        ServerConn::default()
    }

    pub fn handle_input(&mut self, bytes: &[u8]) {
        self.decoder.feed(bytes);
    }

    /// The next client command; after a fatal error, close the connection.
    pub fn next_command(&mut self) -> Option<Result<Command, Error>> {
        self.decoder.next()
    }

    pub fn send(&mut self, command: &Command) {
        command.encode_into(&mut self.out);
    }

    /// Writes `NAME [trid] params...`; parameters must be URL-encoded already.
    pub fn reply(&mut self, name: &str, trid: Option<u32>, params: &[&str]) {
        encode_command(&mut self.out, name, trid, params, None);
    }

    /// Writes a payload command (`MSG <from> <nick> <len>` + payload).
    pub fn reply_with_payload(
        &mut self,
        name: &str,
        trid: Option<u32>,
        params: &[&str],
        payload: &[u8],
    ) {
        encode_command(&mut self.out, name, trid, params, Some(payload));
    }

    /// Writes a three-digit error reply (`911 4`).
    pub fn error(&mut self, code: u16, trid: Option<u32>) {
        let name = format!("{:03}", code.min(999));
        encode_command(&mut self.out, &name, trid, &[], None);
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.out))
        }
    }
}
