//! The server's state for one client: its SEQ_NUMs (from 0), ACKs in both
//! directions, duplicate detection and retransmission of the server's packets.
//! What a packet *means* (routing, directory) is the server application's job; so is
//! what becomes of packets the client never acknowledged
//! ([`ServerSession::take_unacknowledged`]: a server keeps undelivered messages).

use super::reliability::{Expiry, Retransmitter, SeenWindow};
use crate::error::DecodeError;
use crate::packet::client::{ClientFrame, ClientPacket};
use crate::packet::server::{ServerFrame, ServerPacket};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A client not heard from for this long is considered gone (keepalives come
/// every 120 s).
pub const DEFAULT_IDLE_LIMIT: Duration = Duration::from_secs(300);

pub struct ServerSession {
    uin: Option<u32>,
    next_seq: u16,
    retransmit: Retransmitter,
    seen: SeenWindow,
    transmit: VecDeque<Vec<u8>>,
    last_heard: Instant,
    idle_limit: Duration,
    gave_up: bool,
}

impl ServerSession {
    pub fn new(now: Instant) -> Self {
        ServerSession {
            uin: None,
            next_seq: 0, // the server counts from 0
            retransmit: Retransmitter::default(),
            seen: SeenWindow::new(),
            transmit: VecDeque::new(),
            last_heard: now,
            idle_limit: DEFAULT_IDLE_LIMIT,
            gave_up: false,
        }
    }

    pub fn with_idle_limit(mut self, limit: Duration) -> Self {
        self.idle_limit = limit;
        self
    }

    /// The UIN of the client's packets (set by the first one).
    pub fn uin(&self) -> Option<u32> {
        self.uin
    }

    /// Feeds one datagram from the client. Returns the frame when it is new and
    /// not an ACK; ACKs it (again, for a duplicate) either way.
    pub fn handle_datagram(
        &mut self,
        bytes: &[u8],
        now: Instant,
    ) -> Result<Option<ClientFrame>, DecodeError> {
        let frame = ClientPacket::decode(bytes)?;
        self.last_heard = now;
        self.uin.get_or_insert(frame.uin);
        if frame.packet == ClientPacket::Ack {
            self.retransmit.ack(frame.seq);
            return Ok(None);
        }
        self.transmit.push_back(ServerPacket::Ack.encode(frame.seq));
        Ok(self.seen.insert(frame.seq).then_some(frame))
    }

    /// Queues a packet (retransmitted until ACKed); returns its SEQ_NUM.
    pub fn send(&mut self, packet: &ServerPacket, now: Instant) -> u16 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let bytes = packet.encode(seq);
        if *packet != ServerPacket::Ack {
            self.retransmit
                .track(seq, packet.command(), bytes.clone(), now);
        }
        self.transmit.push_back(bytes);
        seq
    }

    /// Queues a packet that is not retransmitted (e.g. a reply to an unknown
    /// client that will not ACK).
    pub fn send_once(&mut self, packet: &ServerPacket) -> u16 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.transmit.push_back(packet.encode(seq));
        seq
    }

    /// Runs due retransmissions: one cycle of 6 transmissions, then the server
    /// gives up on the client (what it never acknowledged stays for
    /// [`take_unacknowledged`](Self::take_unacknowledged)).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.gave_up {
            return;
        }
        if self.retransmit.on_timeout(now, 1, &mut self.transmit) == Some(Expiry::GiveUp) {
            self.gave_up = true;
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let idle = self.last_heard + self.idle_limit;
        let due = self.retransmit.next_due().filter(|_| !self.gave_up);
        Some(due.map_or(idle, |due| due.min(idle)))
    }

    /// Removes the packets sent with [`send`](Self::send) that the client has not
    /// acknowledged and returns them, oldest first; they are not retransmitted any
    /// more. Also after the session gave up or went idle, so that the server can
    /// keep the messages this client never got.
    pub fn take_unacknowledged(&mut self) -> Vec<ServerFrame> {
        self.retransmit
            .take_all()
            .iter()
            // Our own encoding: always decodes.
            .filter_map(|bytes| ServerPacket::decode(bytes).ok())
            .collect()
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// False once the client stopped ACKing or has been silent past the idle limit.
    pub fn is_alive(&self, now: Instant) -> bool {
        !self.gave_up && now.saturating_duration_since(self.last_heard) < self.idle_limit
    }
}
