//! Notices from the bridge (connection changes, errors, delivery failures) that cannot
//! flood a room or chat: per place, identical notices are coalesced and the rest are
//! rate-limited, and they go out on their own task, so they never wait in front of
//! messages (which travel through the outbox).
//!
//! A new notice waits [`SETTLE`] for copies of itself, so a burst of identical ones
//! becomes one notice ("… (repeated 812 times in the last second)"). Copies of the notice
//! sent last, arriving within [`WINDOW`] of it, are counted and sent as one at the end of
//! the window; a different notice in between (connected, then disconnected) is news and
//! goes out at once.
//! At most [`BURST`] notices go out at once, then one every [`REFILL`]; a room holds
//! at most [`MAX_PENDING`] different pending notices and counts the others.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::front::Front;
use super::{Bridge, NetworkId};

const SETTLE: Duration = Duration::from_secs(1);
const WINDOW: Duration = Duration::from_secs(60);
const BURST: f64 = 5.0;
const REFILL: Duration = Duration::from_secs(3);
const MAX_PENDING: usize = 20;
/// A notice the homeserver cannot take is retried for this long, then dropped.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

#[derive(Default)]
pub(crate) struct Notifier {
    rooms: Mutex<HashMap<String, RoomNotices>>,
}

struct RoomNotices {
    pending: VecDeque<Pending>,
    /// The notice sent last, and when.
    last: Option<(String, Instant)>,
    /// Another notice was posted since the last one went out.
    interrupted: bool,
    tokens: f64,
    refilled: Instant,
    /// Notices refused because too many different ones were pending.
    dropped: usize,
    running: bool,
}

struct Pending {
    text: String,
    count: usize,
    first: Instant,
    due: Instant,
}

impl RoomNotices {
    fn new(now: Instant) -> Self {
        RoomNotices {
            pending: VecDeque::new(),
            last: None,
            interrupted: false,
            tokens: BURST,
            refilled: now,
            dropped: 0,
            running: false,
        }
    }

    fn refill(&mut self, now: Instant) {
        let gained = now.duration_since(self.refilled).as_secs_f64() / REFILL.as_secs_f64();
        self.tokens = (self.tokens + gained).min(BURST);
        self.refilled = now;
    }

    /// The next notice to send now, or how long to wait for one; `None` when idle.
    fn next(&mut self, now: Instant) -> Option<Result<String, Instant>> {
        self.refill(now);
        let (index, due) = self
            .pending
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.due))
            .min_by_key(|(_, due)| *due)?;
        if due > now {
            return Some(Err(due));
        }
        if self.tokens < 1.0 {
            let wait = REFILL.mul_f64(1.0 - self.tokens);
            return Some(Err(now + wait));
        }
        self.tokens -= 1.0;
        let p = self.pending.remove(index).expect("index from the queue");
        self.last = Some((p.text.clone(), now));
        self.interrupted = false;
        let mut text = p.text;
        if p.count > 1 {
            text.push_str(&format!(
                " (repeated {} times in the last {})",
                p.count,
                span(now.duration_since(p.first))
            ));
        }
        if self.dropped > 0 {
            text.push_str(&format!(
                "\n({} more notices were left out: too many at once)",
                self.dropped
            ));
            self.dropped = 0;
        }
        Some(Ok(text))
    }
}

fn span(d: Duration) -> String {
    match d.as_secs() {
        0..=1 => "second".into(),
        s @ 2..=50 => format!("{s} seconds"),
        51..=90 => "minute".into(),
        s => format!("{} minutes", s.div_ceil(60)),
    }
}

impl Notifier {
    /// Queues a notice for `room`; returns true when the room needs a worker.
    fn post(&self, room: &str, text: &str) -> bool {
        let now = Instant::now();
        let mut rooms = self.rooms.lock().expect("notices");
        let r = rooms
            .entry(room.to_owned())
            .or_insert_with(|| RoomNotices::new(now));
        if r.last.as_ref().is_some_and(|(last, _)| last != text) {
            r.interrupted = true;
        }
        if let Some(p) = r.pending.iter_mut().find(|p| p.text == text) {
            p.count += 1;
        } else if r.pending.len() >= MAX_PENDING {
            r.dropped += 1;
        } else {
            let due = match &r.last {
                Some((last, at))
                    if last == text && !r.interrupted && now.duration_since(*at) < WINDOW =>
                {
                    *at + WINDOW
                }
                _ => now + SETTLE,
            };
            r.pending.push_back(Pending {
                text: text.to_owned(),
                count: 1,
                first: now,
                due,
            });
        }
        !std::mem::replace(&mut r.running, true)
    }

    fn next(&self, room: &str) -> Option<Result<String, Instant>> {
        let mut rooms = self.rooms.lock().expect("notices");
        let r = rooms.get_mut(room)?;
        let next = r.next(Instant::now());
        if next.is_none() {
            r.running = false;
            let recent = r.last.as_ref().is_some_and(|(_, at)| at.elapsed() < WINDOW);
            if !recent {
                rooms.remove(room);
            }
        }
        next
    }

    /// Notices waiting in all rooms.
    pub(crate) fn pending(&self) -> usize {
        let rooms = self.rooms.lock().expect("notices");
        rooms.values().map(|r| r.pending.len()).sum()
    }
}

impl Bridge {
    /// A notice in a place of a front (a room, a chat; coalesced and rate-limited, see
    /// the module docs).
    pub fn notice_in(self: &Arc<Self>, front: &Arc<dyn Front>, place: &str, text: &str) {
        if self.notifier.post(place, text) {
            let bridge = self.clone();
            let front = front.clone();
            let place = place.to_owned();
            tokio::spawn(async move { bridge.notice_worker(front, place).await });
        }
    }

    /// A notice to a user about one of their logins (or the bridge), where their front
    /// puts the bridge's notices (their management room); logged when they have none.
    pub fn notify(self: &Arc<Self>, user: &str, network: Option<NetworkId>, text: &str) {
        let Some(front) = self.front_for(user).cloned() else {
            tracing::info!(%user, "no front for a notice");
            return;
        };
        match front.notice_place(user, network) {
            Some(place) => self.notice_in(&front, &place, text),
            None => tracing::info!(%user, "no management room for a notice"),
        }
    }

    async fn notice_worker(self: Arc<Self>, front: Arc<dyn Front>, place: String) {
        loop {
            match self.notifier.next(&place) {
                None => return,
                Some(Err(until)) => tokio::time::sleep_until(until).await,
                Some(Ok(text)) => send(&*front, &place, &text).await,
            }
        }
    }
}

/// Sends one notice, retrying what may pass later for up to [`GIVE_UP_AFTER`].
async fn send(front: &dyn Front, place: &str, text: &str) {
    let started = Instant::now();
    let mut delay = Duration::from_secs(1);
    loop {
        let Err(failure) = front.send_notice(place, text).await else {
            return;
        };
        if !failure.is_transient() || started.elapsed() > GIVE_UP_AFTER {
            tracing::warn!(%place, "could not send a notice: {failure}");
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn identical_notices_are_coalesced_and_the_rest_rate_limited() {
        let n = Notifier::default();
        assert!(n.post("!r", "boom"), "the first notice starts a worker");
        for _ in 0..19_999 {
            assert!(!n.post("!r", "boom"));
        }
        // Nothing before the settle delay; then one notice for the whole burst.
        assert!(matches!(n.next("!r"), Some(Err(_))));
        tokio::time::advance(SETTLE).await;
        let Some(Ok(text)) = n.next("!r") else {
            panic!("a notice is due")
        };
        assert_eq!(text, "boom (repeated 20000 times in the last second)");
        assert!(n.next("!r").is_none(), "idle");
        // Copies after it wait for the end of the window and come as one.
        n.post("!r", "boom");
        n.post("!r", "boom");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(matches!(n.next("!r"), Some(Err(_))));
        tokio::time::advance(Duration::from_secs(31)).await;
        let Some(Ok(text)) = n.next("!r") else {
            panic!("a notice is due")
        };
        assert!(
            text.starts_with("boom (repeated 2 times in the last"),
            "{text}"
        );
        // A different notice in between is news: the same text after it is not held back.
        n.post("!r", "disconnected");
        n.post("!r", "boom");
        tokio::time::advance(SETTLE).await;
        assert_eq!(n.next("!r"), Some(Ok("disconnected".to_string())));
        assert_eq!(n.next("!r"), Some(Ok("boom".to_string())));
        // Different notices: a burst of 5, then one per REFILL.
        for i in 0..8 {
            n.post("!r", &format!("n{i}"));
        }
        tokio::time::advance(SETTLE).await;
        let sent: Vec<_> = std::iter::from_fn(|| match n.next("!r") {
            Some(Ok(t)) => Some(t),
            _ => None,
        })
        .collect();
        assert_eq!(
            sent.len(),
            2,
            "three tokens went to earlier notices: {sent:?}"
        );
        tokio::time::advance(REFILL).await;
        assert!(matches!(n.next("!r"), Some(Ok(_))));
        assert!(matches!(n.next("!r"), Some(Err(_))), "then rate-limited");
    }

    #[test]
    fn too_many_different_notices_are_counted() {
        let n = Notifier::default();
        for i in 0..(MAX_PENDING + 7) {
            n.post("!r", &format!("n{i}"));
        }
        let rooms = n.rooms.lock().unwrap();
        assert_eq!(rooms["!r"].pending.len(), MAX_PENDING);
        assert_eq!(rooms["!r"].dropped, 7);
    }
}
