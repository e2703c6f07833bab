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
//! at most [`MAX_PENDING`] different pending notices and counts the others in a notice
//! of their own ("3 more notices were left out").
//!
//! Grouped notices ([`Bridge::notify_grouped`]) gather items of one kind (the people who
//! added the user) into one pending notice that words them all, so a hundred of them are
//! one notice, never cut by the cap. A login's pending notices go when it logs out.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::front::Front;
use super::{Bridge, LoginKey, NetworkId};

const SETTLE: Duration = Duration::from_secs(1);
const WINDOW: Duration = Duration::from_secs(60);
const BURST: f64 = 5.0;
const REFILL: Duration = Duration::from_secs(3);
const MAX_PENDING: usize = 20;
/// The items a grouped notice names; it counts the others.
const MAX_ITEMS: usize = 100;
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
    running: bool,
}

struct Pending {
    /// The text, or a grouped notice's key.
    text: String,
    count: usize,
    first: Instant,
    due: Instant,
    /// The login the notice is about: it is dropped when that login logs out.
    login: Option<LoginKey>,
    group: Option<Group>,
}

/// How a grouped notice words its items (and how many more there were).
pub(crate) type Wording = Arc<dyn Fn(&[String], usize) -> String + Send + Sync>;

/// The items of a grouped notice.
struct Group {
    items: Vec<String>,
    more: usize,
    wording: Wording,
}

impl Group {
    fn add(&mut self, item: String) {
        if self.items.contains(&item) {
            return;
        }
        if self.items.len() < MAX_ITEMS {
            self.items.push(item);
        } else {
            self.more += 1;
        }
    }
}

/// The key of the notice that counts those left out.
const LEFT_OUT: &str = "\0left out";

fn left_out(_: &[String], more: usize) -> String {
    let notices = if more == 1 {
        "notice was"
    } else {
        "notices were"
    };
    format!("({more} more {notices} left out: too many at once.)")
}

impl RoomNotices {
    fn new(now: Instant) -> Self {
        RoomNotices {
            pending: VecDeque::new(),
            last: None,
            interrupted: false,
            tokens: BURST,
            refilled: now,
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
        if let Some(group) = p.group {
            return Some(Ok((group.wording)(&group.items, group.more)));
        }
        let mut text = p.text;
        if p.count > 1 {
            text.push_str(&format!(
                " (repeated {} times in the last {})",
                p.count,
                span(now.duration_since(p.first))
            ));
        }
        Some(Ok(text))
    }

    /// Adds an item to the pending grouped notice `key`, or starts one (grouped notices
    /// are never refused: there are few kinds, and each is one notice).
    fn group(
        &mut self,
        key: &str,
        item: Option<String>,
        wording: Wording,
        login: Option<&LoginKey>,
        now: Instant,
    ) {
        let pending = match self
            .pending
            .iter()
            .position(|p| p.group.is_some() && p.text == key)
        {
            Some(i) => &mut self.pending[i],
            None => {
                self.pending.push_back(Pending {
                    text: key.to_owned(),
                    count: 1,
                    first: now,
                    due: now + SETTLE,
                    login: login.cloned(),
                    group: Some(Group {
                        items: Vec::new(),
                        more: 0,
                        wording,
                    }),
                });
                self.pending.back_mut().expect("just pushed")
            }
        };
        let group = pending.group.as_mut().expect("a grouped notice");
        match item {
            Some(item) => group.add(item),
            None => group.more += 1,
        }
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
    fn post(&self, room: &str, text: &str, login: Option<&LoginKey>) -> bool {
        let now = Instant::now();
        let mut rooms = self.rooms.lock().expect("notices");
        let r = rooms
            .entry(room.to_owned())
            .or_insert_with(|| RoomNotices::new(now));
        if r.last.as_ref().is_some_and(|(last, _)| last != text) {
            r.interrupted = true;
        }
        if let Some(p) = r
            .pending
            .iter_mut()
            .find(|p| p.text == text && p.group.is_none())
        {
            p.count += 1;
        } else if r.pending.iter().filter(|p| p.group.is_none()).count() >= MAX_PENDING {
            r.group(LEFT_OUT, None, Arc::new(left_out), None, now);
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
                login: login.cloned(),
                group: None,
            });
        }
        !std::mem::replace(&mut r.running, true)
    }

    /// Adds `item` to the grouped notice `key` of `room`; true when the room needs a worker.
    fn post_item(
        &self,
        room: &str,
        key: &str,
        item: String,
        wording: Wording,
        login: Option<&LoginKey>,
    ) -> bool {
        let now = Instant::now();
        let mut rooms = self.rooms.lock().expect("notices");
        let r = rooms
            .entry(room.to_owned())
            .or_insert_with(|| RoomNotices::new(now));
        r.interrupted = true;
        r.group(key, Some(item), wording, login, now);
        !std::mem::replace(&mut r.running, true)
    }

    /// Drops the pending notices about a login (it logged out: they are stale).
    fn forget_login(&self, login: &LoginKey) {
        let mut rooms = self.rooms.lock().expect("notices");
        for r in rooms.values_mut() {
            r.pending.retain(|p| p.login.as_ref() != Some(login));
        }
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
        let start = self.notifier.post(place, text, None);
        self.start_notices(start, front, place);
    }

    fn start_notices(self: &Arc<Self>, start: bool, front: &Arc<dyn Front>, place: &str) {
        if start {
            let bridge = self.clone();
            let front = front.clone();
            let place = place.to_owned();
            tokio::spawn(async move { bridge.notice_worker(front, place).await });
        }
    }

    /// A notice to a user about one of their logins (or the bridge), where their front
    /// puts the bridge's notices (their management room); logged when they have none.
    pub fn notify(self: &Arc<Self>, user: &str, network: Option<NetworkId>, text: &str) {
        let Some((front, place)) = self.notice_place(user, network) else {
            return;
        };
        let login = network.map(|network| LoginKey {
            user: user.to_owned(),
            network,
        });
        let start = self.notifier.post(&place, text, login.as_ref());
        self.start_notices(start, &front, &place);
    }

    /// Adds `item` to a grouped notice about a login: the items that arrive together
    /// are worded once, by `wording`, in one notice.
    pub(crate) fn notify_grouped(
        self: &Arc<Self>,
        login: &LoginKey,
        kind: &str,
        item: String,
        wording: Wording,
    ) {
        let Some((front, place)) = self.notice_place(&login.user, Some(login.network)) else {
            return;
        };
        let key = format!("\0{kind}\0{}", login.network);
        let start = self
            .notifier
            .post_item(&place, &key, item, wording, Some(login));
        self.start_notices(start, &front, &place);
    }

    /// Drops the notices about a login that have not gone out yet (it logged out).
    pub(crate) fn forget_login_notices(&self, login: &LoginKey) {
        self.notifier.forget_login(login);
    }

    fn notice_place(
        &self,
        user: &str,
        network: Option<NetworkId>,
    ) -> Option<(Arc<dyn Front>, String)> {
        let Some(front) = self.front_for(user).cloned() else {
            tracing::info!(%user, "no front for a notice");
            return None;
        };
        match front.notice_place(user, network) {
            Some(place) => Some((front, place)),
            None => {
                tracing::info!(%user, "no management room for a notice");
                None
            }
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
        assert!(
            n.post("!r", "boom", None),
            "the first notice starts a worker"
        );
        for _ in 0..19_999 {
            assert!(!n.post("!r", "boom", None));
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
        n.post("!r", "boom", None);
        n.post("!r", "boom", None);
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
        n.post("!r", "disconnected", None);
        n.post("!r", "boom", None);
        tokio::time::advance(SETTLE).await;
        assert_eq!(n.next("!r"), Some(Ok("disconnected".to_string())));
        assert_eq!(n.next("!r"), Some(Ok("boom".to_string())));
        // Different notices: a burst of 5, then one per REFILL.
        for i in 0..8 {
            n.post("!r", &format!("n{i}"), None);
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
    fn too_many_different_notices_are_counted_in_a_notice_of_their_own() {
        let n = Notifier::default();
        for i in 0..(MAX_PENDING + 7) {
            n.post("!r", &format!("n{i}"), None);
        }
        {
            let rooms = n.rooms.lock().unwrap();
            assert_eq!(rooms["!r"].pending.len(), MAX_PENDING + 1);
        }
        let mut texts = Vec::new();
        let mut rooms = n.rooms.lock().unwrap();
        let r = rooms.get_mut("!r").unwrap();
        for p in &mut r.pending {
            p.due = Instant::now();
        }
        r.tokens = 100.0;
        while let Some(Ok(text)) = r.next(Instant::now()) {
            r.tokens = 100.0;
            texts.push(text);
        }
        assert_eq!(texts.len(), MAX_PENDING + 1);
        assert!(
            texts[..MAX_PENDING].iter().all(|t| !t.contains("left out")),
            "{texts:?}"
        );
        assert_eq!(
            texts[MAX_PENDING],
            "(7 more notices were left out: too many at once.)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn grouped_items_make_one_notice_and_a_logout_drops_a_logins_notices() {
        let n = Notifier::default();
        let alice = LoginKey {
            user: "@alice:x".into(),
            network: NetworkId::Msn,
        };
        let wording: Wording =
            Arc::new(|items: &[String], more: usize| format!("{} +{more}", items.join(",")));
        for i in 0..(MAX_ITEMS + 3) {
            n.post_item(
                "!r",
                "added",
                format!("c{i}"),
                wording.clone(),
                Some(&alice),
            );
        }
        n.post_item("!r", "added", "c0".into(), wording.clone(), Some(&alice));
        for i in 0..MAX_PENDING - 1 {
            n.post("!r", &format!("other {i}"), None);
        }
        tokio::time::advance(SETTLE).await;
        let Some(Ok(text)) = n.next("!r") else {
            panic!("the grouped notice is due first")
        };
        assert!(text.starts_with("c0,c1,"), "{text}");
        assert!(text.ends_with(&format!("c{} +3", MAX_ITEMS - 1)), "{text}");
        // A login's notices go with it.
        n.post("!r", "about alice's login", Some(&alice));
        n.post_item("!r", "added", "late".into(), wording, Some(&alice));
        n.forget_login(&alice);
        let rooms = n.rooms.lock().unwrap();
        assert!(rooms["!r"].pending.iter().all(|p| p.login.is_none()));
        assert_eq!(rooms["!r"].pending.len(), MAX_PENDING - 1);
    }
}
