//! Acknowledgement bookkeeping shared by both sides: which of our packets await an
//! ACK and when to resend them, and which of the peer's SEQ_NUMs were seen.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// An unacknowledged packet is sent again after this long.
pub const RETRANSMIT_AFTER: Duration = Duration::from_secs(10);
/// Transmissions of one packet (the first included) in one cycle.
pub const MAX_TRANSMISSIONS: u8 = 6;
/// Cycles of `MAX_TRANSMISSIONS` (each ended by a B_MESSAGE_ACK on the client)
/// before giving up.
pub const RETRY_CYCLES: u8 = 2;
/// The client sends KEEP_ALIVE this often.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(120);

struct Pending {
    seq: u16,
    command: u16,
    bytes: Vec<u8>,
    /// Transmissions in the current cycle.
    sends: u8,
    /// Completed cycles.
    cycles: u8,
    due: Instant,
}

/// What a timeout asks of the session beyond resending.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// A packet finished a cycle unacknowledged (client: send B_MESSAGE_ACK).
    CycleEnded,
    /// A packet finished every cycle unacknowledged: the peer is gone.
    GiveUp,
}

#[derive(Default)]
pub(crate) struct Retransmitter {
    pending: Vec<Pending>,
}

impl Retransmitter {
    /// Records a packet just sent for the first time.
    pub(crate) fn track(&mut self, seq: u16, command: u16, bytes: Vec<u8>, now: Instant) {
        self.pending.push(Pending {
            seq,
            command,
            bytes,
            sends: 1,
            cycles: 0,
            due: now + RETRANSMIT_AFTER,
        });
    }

    /// Removes an acknowledged packet, returning its COMMAND (None if not pending,
    /// e.g. a second ACK).
    pub(crate) fn ack(&mut self, seq: u16) -> Option<u16> {
        let i = self.pending.iter().position(|p| p.seq == seq)?;
        Some(self.pending.remove(i).command)
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.due).min()
    }

    /// Whether the packet with this SEQ_NUM still awaits its ACK.
    pub(crate) fn is_pending(&self, seq: u16) -> bool {
        self.pending.iter().any(|p| p.seq == seq)
    }

    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }

    /// Removes every unacknowledged packet and returns their bytes, oldest first.
    pub(crate) fn take_all(&mut self) -> Vec<Vec<u8>> {
        self.pending.drain(..).map(|p| p.bytes).collect()
    }

    /// Resends what is due into `transmit`. `cycles` is how many cycles to run
    /// before [`Expiry::GiveUp`].
    pub(crate) fn on_timeout(
        &mut self,
        now: Instant,
        cycles: u8,
        transmit: &mut VecDeque<Vec<u8>>,
    ) -> Option<Expiry> {
        let mut expiry = None;
        for p in self.pending.iter_mut().filter(|p| p.due <= now) {
            if p.cycles >= cycles {
                return Some(Expiry::GiveUp);
            }
            p.due = now + RETRANSMIT_AFTER;
            if p.sends < MAX_TRANSMISSIONS {
                p.sends += 1;
                transmit.push_back(p.bytes.clone());
            } else {
                p.sends = 0;
                p.cycles += 1;
                expiry = Some(Expiry::CycleEnded);
            }
        }
        expiry
    }
}

/// The peer's recent SEQ_NUMs, to recognise duplicates. Bounded: the oldest are
/// forgotten first.
pub(crate) struct SeenWindow {
    order: VecDeque<u16>,
    set: HashSet<u16>,
}

const SEEN_CAPACITY: usize = 1024;

impl SeenWindow {
    pub(crate) fn new() -> Self {
        SeenWindow {
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    /// True if `seq` is new (and records it).
    pub(crate) fn insert(&mut self, seq: u16) -> bool {
        if !self.set.insert(seq) {
            return false;
        }
        self.order.push_back(seq);
        if self.order.len() > SEEN_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_window_forgets_oldest() {
        let mut w = SeenWindow::new();
        assert!(w.insert(0));
        assert!(!w.insert(0));
        for s in 1..=SEEN_CAPACITY as u16 {
            assert!(w.insert(s));
        }
        assert!(w.insert(0), "0 was evicted");
    }

    #[test]
    fn resend_schedule() {
        let t0 = Instant::now();
        let mut r = Retransmitter::default();
        let mut out = VecDeque::new();
        r.track(1, 7, vec![1], t0);
        let mut t = t0;
        for _ in 1..MAX_TRANSMISSIONS {
            t += RETRANSMIT_AFTER;
            assert_eq!(r.on_timeout(t, 1, &mut out), None);
        }
        assert_eq!(out.len(), usize::from(MAX_TRANSMISSIONS - 1));
        t += RETRANSMIT_AFTER;
        assert_eq!(r.on_timeout(t, 1, &mut out), Some(Expiry::CycleEnded));
        t += RETRANSMIT_AFTER;
        assert_eq!(r.on_timeout(t, 1, &mut out), Some(Expiry::GiveUp));
        assert_eq!(r.ack(1), Some(7));
        assert_eq!(r.ack(1), None);
    }
}
