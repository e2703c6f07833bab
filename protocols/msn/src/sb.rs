//! Switchboard client session: one conversation, one or more participants.

use std::collections::VecDeque;

use crate::command::{encode_command, Command, CommandRef};
use crate::decoder::Decoder;
use crate::error::{Error, ServerError};
use crate::format::TextFormat;
use crate::mime::{Message, MessageRef};
use crate::split::split_text;
use crate::urlenc::url_decode;

/// How a sent `MSG` is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// `U`: never acknowledged (typing notifications).
    Unacknowledged,
    /// `N`: `NAK` on failure only.
    NakOnly,
    /// `A`: always `ACK` or `NAK`.
    Always,
    /// `D`: like `A`, used for data messages.
    Data,
}

impl AckMode {
    pub fn code(self) -> &'static str {
        match self {
            AckMode::Unacknowledged => "U",
            AckMode::NakOnly => "N",
            AckMode::Always => "A",
            AckMode::Data => "D",
        }
    }

    pub fn from_code(code: &str) -> Option<AckMode> {
        Some(match code {
            "U" => AckMode::Unacknowledged,
            "N" => AckMode::NakOnly,
            "A" => AckMode::Always,
            "D" => AckMode::Data,
            _ => return None,
        })
    }
}

/// Everything a switchboard tells the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SbEvent {
    /// `USR OK` / `ANS OK`: we are in.
    Ready,
    /// `IRO`: someone already in the conversation we joined.
    Participant {
        email: String,
        friendly_name: String,
    },
    /// `CAL ... RINGING`: the invitation went out.
    Ringing {
        trid: Option<u32>,
        session_id: String,
    },
    /// `JOI`: someone accepted.
    Joined {
        email: String,
        friendly_name: String,
    },
    /// `BYE`: someone left (`idle`: the server timed them out).
    Left {
        email: String,
        idle: bool,
    },
    Message {
        from: String,
        friendly_name: String,
        message: Message,
    },
    /// `ACK`: the message with this TrID was delivered.
    Delivered {
        trid: u32,
    },
    /// `NAK` or an error reply: the message with this TrID was not delivered.
    DeliveryFailed {
        trid: u32,
        error: Option<ServerError>,
    },
    /// An error reply to another request (`217` on `CAL`: user offline...).
    Error {
        error: ServerError,
    },
    ProtocolError {
        error: Error,
    },
    Closed,
    Other(Command),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Joining,
    Ready,
    Closed,
}

/// One switchboard connection, opened for a call (`USR`) or an invitation (`ANS`).
///
/// Messages sent before anyone else is present are held and go out when the
/// first participant joins; if every invitation fails (or nobody is present
/// or invited) they are reported as [`SbEvent::DeliveryFailed`].
pub struct SbSession {
    email: String,
    phase: Phase,
    decoder: Decoder,
    out: Vec<u8>,
    events: VecDeque<SbEvent>,
    next_trid: u32,
    participants: Vec<(String, String)>,
    /// `CAL`s without an answer yet: (TrID, email).
    pending_calls: Vec<(u32, String)>,
    /// (trid, mode, payload) waiting for a participant.
    held: Vec<(u32, AckMode, Vec<u8>)>,
    /// TrIDs of sent messages that may still be ACKed or NAKed.
    awaiting_ack: Vec<u32>,
}

/// Leaves out buffers, which hold the cookie.
impl std::fmt::Debug for SbSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SbSession")
            .field("email", &self.email)
            .field("phase", &self.phase)
            .field("participants", &self.participants)
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl SbSession {
    fn start(email: &str) -> SbSession {
        SbSession {
            email: email.to_string(),
            phase: Phase::Joining,
            decoder: Decoder::new(),
            out: Vec::new(),
            events: VecDeque::new(),
            next_trid: 1,
            participants: Vec::new(),
            pending_calls: Vec::new(),
            held: Vec::new(),
            awaiting_ack: Vec::new(),
        }
    }

    /// A switchboard we asked for with `XFR SB`: queues `USR`.
    pub fn outgoing(email: &str, cookie: &str) -> SbSession {
        let mut s = SbSession::start(email);
        let email = s.email.clone();
        s.send("USR", &[&email, cookie]);
        s
    }

    /// A switchboard we were invited to by `RNG`: queues `ANS`.
    pub fn invited(email: &str, cookie: &str, session_id: &str) -> SbSession {
        let mut s = SbSession::start(email);
        let email = s.email.clone();
        s.send("ANS", &[&email, cookie, session_id]);
        s
    }

    /// Other people currently in the conversation, `(email, friendly name)`.
    pub fn participants(&self) -> &[(String, String)] {
        &self.participants
    }

    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    fn trid(&mut self) -> u32 {
        let t = self.next_trid;
        self.next_trid = self.next_trid.wrapping_add(1).max(1);
        t
    }

    fn send(&mut self, name: &str, params: &[&str]) -> u32 {
        let trid = self.trid();
        encode_command(&mut self.out, name, Some(trid), params, None);
        trid
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.out))
        }
    }

    pub fn poll_event(&mut self) -> Option<SbEvent> {
        self.events.pop_front()
    }

    /// `CAL`: invite someone into this conversation.
    pub fn invite(&mut self, email: &str) -> u32 {
        let trid = self.send("CAL", &[email]);
        self.pending_calls.push((trid, email.to_string()));
        trid
    }

    /// Sends a MIME message; returns its TrID.
    pub fn send_message(&mut self, message: &Message, mode: AckMode) -> u32 {
        let trid = self.trid();
        let payload = message.to_bytes();
        if self.phase == Phase::Ready && !self.participants.is_empty() {
            self.write_msg(trid, mode, &payload);
        } else if self.phase == Phase::Ready && self.pending_calls.is_empty() {
            // Nobody here and nobody invited: it cannot be delivered.
            if mode != AckMode::Unacknowledged {
                self.events
                    .push_back(SbEvent::DeliveryFailed { trid, error: None });
            }
        } else if self.phase == Phase::Closed {
            if mode != AckMode::Unacknowledged {
                self.events
                    .push_back(SbEvent::DeliveryFailed { trid, error: None });
            }
        } else {
            self.held.push((trid, mode, payload));
        }
        trid
    }

    /// Sends text, split into as many `MSG`s as the payload limit needs, each
    /// acknowledged (`A`). Returns their TrIDs in order.
    pub fn send_text(&mut self, text: &str, format: Option<&TextFormat>) -> Vec<u32> {
        split_text(text, format)
            .into_iter()
            .map(|chunk| self.send_message(&Message::text(chunk, format), AckMode::Always))
            .collect()
    }

    /// A nudge (a datacast, `N` as Messenger 6.x sends it: only a failure is
    /// reported).
    pub fn send_nudge(&mut self) -> u32 {
        self.send_message(
            &Message::datacast(crate::mime::datacast::NUDGE),
            AckMode::NakOnly,
        )
    }

    /// A typing notification (`U`, never acknowledged).
    pub fn send_typing(&mut self) -> u32 {
        let message = Message::typing(&self.email.clone());
        self.send_message(&message, AckMode::Unacknowledged)
    }

    /// `OUT`: leave the conversation; the caller closes the socket afterwards.
    pub fn leave(&mut self) {
        if self.phase != Phase::Closed {
            self.out.extend_from_slice(b"OUT\r\n");
            self.close();
        }
    }

    fn close(&mut self) {
        self.phase = Phase::Closed;
        for (trid, mode, _) in std::mem::take(&mut self.held) {
            if mode != AckMode::Unacknowledged {
                self.events
                    .push_back(SbEvent::DeliveryFailed { trid, error: None });
            }
        }
        self.events.push_back(SbEvent::Closed);
    }

    fn write_msg(&mut self, trid: u32, mode: AckMode, payload: &[u8]) {
        encode_command(
            &mut self.out,
            "MSG",
            Some(trid),
            &[mode.code()],
            Some(payload),
        );
        if mode != AckMode::Unacknowledged {
            self.awaiting_ack.push(trid);
        }
    }

    fn flush_held(&mut self) {
        if self.phase != Phase::Ready || self.participants.is_empty() {
            return;
        }
        for (trid, mode, payload) in std::mem::take(&mut self.held) {
            self.write_msg(trid, mode, &payload);
        }
    }

    pub fn handle_input(&mut self, bytes: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        let mut decoder = std::mem::take(&mut self.decoder);
        decoder.feed(bytes);
        while let Some(next) = decoder.next_ref() {
            match next {
                Ok(cmd) => self.on_command(cmd),
                Err(e) if e.is_fatal() => {
                    self.events.push_back(SbEvent::ProtocolError { error: e });
                    self.close();
                }
                Err(e) => self.events.push_back(SbEvent::ProtocolError { error: e }),
            }
            if self.phase == Phase::Closed {
                break;
            }
        }
        decoder.release_consumed();
        self.decoder = decoder;
    }

    fn on_command(&mut self, cmd: CommandRef<'_>) {
        if let Some(error) = cmd.server_error() {
            return self.on_error(error);
        }
        let mut params = cmd.params();
        let a0 = params.next().unwrap_or("");
        let a1 = params.next().unwrap_or("");
        let a2 = params.next().unwrap_or("");
        let a3 = params.next().unwrap_or("");
        match cmd.name {
            "USR" | "ANS" if a0 == "OK" => {
                self.phase = Phase::Ready;
                self.events.push_back(SbEvent::Ready);
                self.flush_held();
            }
            "IRO" => {
                // IRO trid <n> <total> <email> <nick>
                self.add_participant(a2, a3);
                self.events.push_back(SbEvent::Participant {
                    email: a2.to_string(),
                    friendly_name: url_decode(a3).into_owned(),
                });
            }
            "CAL" => {
                self.events.push_back(SbEvent::Ringing {
                    trid: cmd.trid,
                    session_id: a1.to_string(),
                });
            }
            "JOI" => {
                self.pending_calls
                    .retain(|(_, e)| !e.eq_ignore_ascii_case(a0));
                self.add_participant(a0, a1);
                self.events.push_back(SbEvent::Joined {
                    email: a0.to_string(),
                    friendly_name: url_decode(a1).into_owned(),
                });
                self.flush_held();
            }
            "BYE" => {
                self.participants
                    .retain(|(e, _)| !e.eq_ignore_ascii_case(a0));
                self.events.push_back(SbEvent::Left {
                    email: a0.to_string(),
                    idle: a1 == "1",
                });
            }
            "MSG" => {
                let Some(payload) = cmd.payload else { return };
                match MessageRef::parse(payload) {
                    Ok(m) => self.events.push_back(SbEvent::Message {
                        from: a0.to_string(),
                        friendly_name: url_decode(a1).into_owned(),
                        message: m.to_owned(),
                    }),
                    Err(error) => self.events.push_back(SbEvent::ProtocolError { error }),
                }
            }
            "ACK" | "NAK" => {
                let Some(trid) = cmd.trid else { return };
                self.awaiting_ack.retain(|t| *t != trid);
                self.events.push_back(if cmd.name == "ACK" {
                    SbEvent::Delivered { trid }
                } else {
                    SbEvent::DeliveryFailed { trid, error: None }
                });
            }
            "OUT" => self.close(),
            _ => self.events.push_back(SbEvent::Other(cmd.to_owned())),
        }
    }

    fn add_participant(&mut self, email: &str, nick: &str) {
        if email.is_empty()
            || self
                .participants
                .iter()
                .any(|(e, _)| e.eq_ignore_ascii_case(email))
        {
            return;
        }
        self.participants
            .push((email.to_string(), url_decode(nick).into_owned()));
    }

    fn on_error(&mut self, error: ServerError) {
        let Some(trid) = error.trid else {
            return self.events.push_back(SbEvent::Error { error });
        };
        if self.phase == Phase::Joining && trid == 1 {
            // USR/ANS refused: this switchboard is unusable.
            self.events.push_back(SbEvent::Error { error });
            return self.close();
        }
        if self.awaiting_ack.contains(&trid) {
            self.awaiting_ack.retain(|t| *t != trid);
            return self.events.push_back(SbEvent::DeliveryFailed {
                trid,
                error: Some(error),
            });
        }
        let was_call = self.pending_calls.iter().any(|(t, _)| *t == trid);
        self.pending_calls.retain(|(t, _)| *t != trid);
        self.events.push_back(SbEvent::Error {
            error: error.clone(),
        });
        if was_call && self.pending_calls.is_empty() && self.participants.is_empty() {
            // Nobody will come: what we held cannot be delivered.
            for (trid, mode, _) in std::mem::take(&mut self.held) {
                if mode != AckMode::Unacknowledged {
                    self.events.push_back(SbEvent::DeliveryFailed {
                        trid,
                        error: Some(error.clone()),
                    });
                }
            }
        }
    }
}
