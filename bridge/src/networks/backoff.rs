//! Reconnect delays shared by every network: 1 s doubling to 60 s, each with up to 25 % random jitter so that
//! many logins do not reconnect in lockstep after a server restart.

use std::time::Duration;

const FIRST: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff { next: FIRST }
    }

    /// After a successful login the next loss starts again at one second.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }

    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (base * 2).min(MAX);
        base + base.mul_f64(random_fraction() * 0.25)
    }
}

/// A number in [0, 1]; 0 if the system has no randomness to give (jitter is a nicety).
pub(crate) fn random_fraction() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_a_minute_with_jitter() {
        let mut b = Backoff::new();
        let bases = [1, 2, 4, 8, 16, 32, 60, 60];
        for base in bases {
            let d = b.next_delay();
            let base = Duration::from_secs(base);
            assert!(d >= base && d <= base + base / 4, "{d:?} for {base:?}");
        }
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(1251));
    }
}
