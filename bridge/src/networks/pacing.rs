//! Pacing toward the legacy servers, shared by every network:
//!
//! * [`ConnectPacer`]: one per network, shared by all its logins. Every connection
//!   attempt (the first, and each reconnect) takes a turn: at most
//!   `connects_per_second` turns per second, each at a random point of its slot, so a
//!   bridge restart or a server outage with thousands of logins never becomes a storm of
//!   connects at the server.
//! * [`SendBucket`]: one per login, a token bucket in front of the messages a login
//!   sends (`messages_per_second`, `message_burst`), so a burst from Matrix goes out in
//!   order at a pace the server tolerates instead of getting the account kicked for
//!   flooding. It holds no clock: callers pass `now`, and wait themselves until the
//!   instant it names.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Connects per second per network unless the config says otherwise: 10,000 logins
/// come back in 50 s, and a server sees no more than a busy evening's logins at once.
pub const DEFAULT_CONNECTS_PER_SECOND: u32 = 200;

/// Messages per second and burst per login unless the config says otherwise. No limits
/// of those servers were published; their own clients sent as fast as a person typed
/// or pasted, so five at once, then two a second, is what they had to take from anyone.
pub const DEFAULT_MESSAGES_PER_SECOND: f64 = 2.0;
pub const DEFAULT_MESSAGE_BURST: u32 = 5;

/// A network's send pacing options, from which each login gets its own bucket.
#[derive(Debug, Clone, Copy)]
pub struct SendRate {
    pub per_second: f64,
    pub burst: u32,
}

impl SendRate {
    /// A full bucket for a new login.
    pub fn bucket(&self) -> SendBucket {
        SendBucket::new(self.per_second, self.burst, Instant::now())
    }
}

/// Turns to connect, spread evenly over time.
#[derive(Debug)]
pub struct ConnectPacer {
    interval: Duration,
    /// The start of the next free slot.
    next: Mutex<Instant>,
}

impl ConnectPacer {
    pub fn new(per_second: u32) -> ConnectPacer {
        ConnectPacer {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Reserves the next slot and returns when this connection may start: within
    /// `[slot, slot + interval)`, so no second holds more than `per_second` (+1) starts.
    pub fn reserve(&self) -> Instant {
        let now = Instant::now();
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        slot + self.interval.mul_f64(super::backoff::random_fraction())
    }
}

/// A token bucket: `burst` messages at once, then `per_second`.
#[derive(Debug, Clone)]
pub struct SendBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl SendBucket {
    /// A full bucket (an idle login may send `burst` messages at once).
    pub fn new(per_second: f64, burst: u32, now: Instant) -> SendBucket {
        let burst = f64::from(burst.max(1));
        SendBucket {
            per_second,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.last = self.last.max(now);
    }

    /// Takes a token for one message if there is one; otherwise the instant when there
    /// will be (nothing is taken: ask again then).
    pub fn take(&mut self, now: Instant) -> Result<(), Instant> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let missing = 1.0 - self.tokens;
        Err(now + Duration::from_secs_f64(missing / self.per_second))
    }
}

/// The pacing options every network has (checked by each network's `check`).
pub fn check(
    connects_per_second: u32,
    messages_per_second: f64,
    message_burst: u32,
) -> Result<(), super::OptionError> {
    if connects_per_second == 0 {
        return Err(("connects_per_second", "must be at least 1".into()));
    }
    if !(messages_per_second.is_finite() && messages_per_second >= 0.01) {
        return Err((
            "messages_per_second",
            "must be a number of at least 0.01".into(),
        ));
    }
    if message_burst == 0 {
        return Err(("message_burst", "must be at least 1".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = SendBucket::new(2.0, 5, t0);
        for _ in 0..5 {
            assert_eq!(bucket.take(t0), Ok(()));
        }
        let next = bucket.take(t0).unwrap_err();
        assert_eq!(next, t0 + Duration::from_millis(500));
        // Asking again before then takes nothing and names the same instant.
        let at = t0 + Duration::from_millis(200);
        assert_eq!(bucket.take(at).unwrap_err(), next);
        assert_eq!(bucket.take(next), Ok(()));
        assert!(bucket.take(next).is_err());
    }

    #[test]
    fn an_idle_bucket_fills_up_to_the_burst_only() {
        let t0 = Instant::now();
        let mut bucket = SendBucket::new(2.0, 3, t0);
        for _ in 0..3 {
            bucket.take(t0).unwrap();
        }
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.take(later), Ok(()));
        }
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn over_any_second_the_bucket_allows_burst_plus_rate() {
        let t0 = Instant::now();
        let mut bucket = SendBucket::new(2.0, 5, t0);
        let mut sent = Vec::new();
        let mut now = t0;
        while sent.len() < 30 {
            match bucket.take(now) {
                Ok(()) => sent.push(now),
                Err(at) => now = at,
            }
        }
        for (i, at) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .take_while(|t| **t < *at + Duration::from_secs(1))
                .count();
            assert!(in_window <= 7, "{in_window} messages within a second");
        }
        // 30 messages: 5 at once, 25 more at 2 per second.
        assert_eq!(*sent.last().unwrap() - t0, Duration::from_millis(12_500));
    }

    #[test]
    fn connect_turns_are_spread_at_the_rate() {
        let pacer = ConnectPacer::new(100);
        let start = Instant::now();
        let turns: Vec<Instant> = (0..300).map(|_| pacer.reserve()).collect();
        assert!(turns[0] >= start && turns[0] < Instant::now() + Duration::from_millis(10));
        // 300 turns at 100 per second take three seconds (less the last slot's jitter).
        assert!(turns[299] - turns[0] >= Duration::from_millis(2_980));
        // Never more than rate + 1 in any second.
        for (i, at) in turns.iter().enumerate() {
            let in_window = turns[i..]
                .iter()
                .filter(|t| **t < *at + Duration::from_secs(1))
                .count();
            assert!(in_window <= 101, "{in_window} connects within a second");
        }
    }

    #[test]
    fn options_are_checked() {
        assert!(check(200, 2.0, 5).is_ok());
        assert_eq!(check(0, 2.0, 5).unwrap_err().0, "connects_per_second");
        assert_eq!(check(1, 0.0, 5).unwrap_err().0, "messages_per_second");
        assert_eq!(check(1, f64::NAN, 5).unwrap_err().0, "messages_per_second");
        assert_eq!(check(1, 1.0, 0).unwrap_err().0, "message_burst");
    }
}
