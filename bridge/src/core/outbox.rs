//! Legacy -> front delivery: one sender per conversation drains that conversation's
//! durable queue (`store::outbox`) in order; senders of different conversations run in
//! parallel, at most [`PARALLEL`] requests at once, so one slow room does not hold the
//! others and the homeserver sets the pace.
//!
//! An entry leaves its queue only when the homeserver returned an event id (recorded)
//! or refused it for good (the user gets a notice with the reason). Transient failures
//! (unreachable, timeout, 5xx, 429) are retried without limit, with backoff; the queue's
//! depth and age show in `list` and in the log.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use super::front::{Failure, FailureKind};
use super::{Bridge, LoginKey, NetworkId};
use crate::model::{OutboxEntry, OutboxItem};

/// Homeserver requests for outbox entries at once.
const PARALLEL: usize = 8;
/// Backoff after a transient failure: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// A failing queue is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

pub struct Outbox {
    queues: Mutex<HashMap<Vec<u8>, Queue>>,
    /// Entries waiting per login that received them (the network's backpressure).
    per_login: Mutex<HashMap<LoginKey, usize>>,
    permits: Semaphore,
    /// Woken whenever entries leave: logins waiting for room to read more.
    pub(crate) drained: Notify,
}

struct Queue {
    depth: usize,
    /// When the oldest waiting entry arrived (ms since the epoch).
    oldest_ms: u64,
    /// The login of the latest entry (shown by `list`).
    login: LoginKey,
    running: bool,
    failing: Option<Failing>,
}

struct Failing {
    since: Instant,
    error: String,
    logged: Instant,
}

/// What `list` shows of a login's waiting messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Backlog {
    pub waiting: usize,
    pub oldest: Duration,
    /// The last error, while the homeserver keeps failing.
    pub error: Option<String>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            queues: Mutex::default(),
            per_login: Mutex::default(),
            permits: Semaphore::new(PARALLEL),
            drained: Notify::new(),
        }
    }
}

impl Outbox {
    /// Counts a new entry; true when its conversation needs a sender.
    fn enqueued(&self, conversation: &[u8], login: &LoginKey, received_ms: u64) -> bool {
        *self
            .per_login
            .lock()
            .expect("outbox")
            .entry(login.clone())
            .or_default() += 1;
        let mut queues = self.queues.lock().expect("outbox");
        let q = queues
            .entry(conversation.to_vec())
            .or_insert_with(|| Queue {
                depth: 0,
                oldest_ms: received_ms,
                login: login.clone(),
                running: false,
                failing: None,
            });
        if q.depth == 0 {
            q.oldest_ms = received_ms;
        }
        q.depth += 1;
        q.login = login.clone();
        !std::mem::replace(&mut q.running, true)
    }

    /// Whether the sender should go on (false: the queue is empty and forgotten).
    fn keep_going(&self, conversation: &[u8]) -> bool {
        let mut queues = self.queues.lock().expect("outbox");
        match queues.get(conversation) {
            Some(q) if q.depth > 0 => true,
            _ => {
                queues.remove(conversation);
                false
            }
        }
    }

    /// The sender read the queue's head: its arrival is the queue's age.
    fn head(&self, conversation: &[u8], received_ms: u64) {
        if let Some(q) = self.queues.lock().expect("outbox").get_mut(conversation) {
            q.oldest_ms = received_ms;
        }
    }

    fn delivered(&self, conversation: &[u8], login: &LoginKey) {
        {
            let mut queues = self.queues.lock().expect("outbox");
            if let Some(q) = queues.get_mut(conversation) {
                q.depth = q.depth.saturating_sub(1);
                q.failing = None;
            }
        }
        let mut per_login = self.per_login.lock().expect("outbox");
        if let Some(n) = per_login.get_mut(login) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_login.remove(login);
            }
        }
        drop(per_login);
        self.drained.notify_waiters();
    }

    /// The bookkeeping and the store disagree (the store is right): forget the queue.
    fn reset(&self, conversation: &[u8]) {
        if let Some(q) = self.queues.lock().expect("outbox").get_mut(conversation) {
            q.depth = 0;
        }
    }

    /// Records a transient failure; returns the line to log, if it is time to log.
    fn failed(&self, conversation: &[u8], error: &str) -> Option<String> {
        let mut queues = self.queues.lock().expect("outbox");
        let q = queues.get_mut(conversation)?;
        let now = Instant::now();
        let age = Duration::from_millis(super::now_ms().saturating_sub(q.oldest_ms));
        let line = format!(
            "{error}; {} waiting, the oldest for {}s; retrying",
            q.depth,
            age.as_secs()
        );
        match &mut q.failing {
            Some(f) => {
                f.error = error.to_owned();
                if now.duration_since(f.logged) < LOG_EVERY {
                    return None;
                }
                f.logged = now;
                Some(format!(
                    "{line} (failing for {}s)",
                    now.duration_since(f.since).as_secs()
                ))
            }
            None => {
                q.failing = Some(Failing {
                    since: now,
                    error: error.to_owned(),
                    logged: now,
                });
                Some(line)
            }
        }
    }

    /// Entries received by `login` and not yet shown by its front.
    pub(crate) fn waiting_for(&self, login: &LoginKey) -> usize {
        self.per_login
            .lock()
            .expect("outbox")
            .get(login)
            .copied()
            .unwrap_or(0)
    }

    /// What a login's conversations have waiting (for `list`).
    pub fn backlog(&self, user: &str, network: NetworkId) -> Option<Backlog> {
        let queues = self.queues.lock().expect("outbox");
        let now = super::now_ms();
        let mut out: Option<Backlog> = None;
        for q in queues.values() {
            if q.depth == 0 || q.login.user != user || q.login.network != network {
                continue;
            }
            let b = out.get_or_insert(Backlog {
                waiting: 0,
                oldest: Duration::ZERO,
                error: None,
            });
            b.waiting += q.depth;
            b.oldest = b
                .oldest
                .max(Duration::from_millis(now.saturating_sub(q.oldest_ms)));
            if let Some(f) = &q.failing {
                b.error = Some(f.error.clone());
            }
        }
        out
    }

    /// Entries waiting and the age of the oldest, per network (for the metrics).
    pub(crate) fn by_network(&self) -> BTreeMap<NetworkId, (usize, Duration)> {
        let queues = self.queues.lock().expect("outbox");
        let now = super::now_ms();
        let mut out: BTreeMap<NetworkId, (usize, Duration)> = BTreeMap::new();
        for q in queues.values().filter(|q| q.depth > 0) {
            let (depth, oldest) = out.entry(q.login.network).or_default();
            *depth += q.depth;
            *oldest = (*oldest).max(Duration::from_millis(now.saturating_sub(q.oldest_ms)));
        }
        out
    }

    /// Entries waiting in all queues.
    pub(crate) fn len(&self) -> usize {
        let queues = self.queues.lock().expect("outbox");
        queues.values().map(|q| q.depth).sum()
    }
}

/// "42 s", "3 min", "2 h" for `list`.
pub fn age(d: Duration) -> String {
    match d.as_secs() {
        s @ 0..=119 => format!("{s} s"),
        s @ 120..=7199 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

impl Bridge {
    /// Writes an event for a conversation's room to the durable outbox and makes sure
    /// a sender will deliver it. Not flushed here: a flush is requested, and networks
    /// that acknowledge to their server wait for it (`EventSink::durable`).
    pub(crate) fn push_outbox(self: &Arc<Self>, login: &LoginKey, mut entry: OutboxEntry) {
        let conversation =
            crate::store::Store::conversation_key(&entry.user, entry.network, &entry.chat);
        if let Err(e) = self.store.outbox_push(&mut entry) {
            tracing::error!(user = %login.user, network = %login.network, "could not store an event for the user: {e}");
            return;
        }
        self.store.flush_soon();
        if self
            .outbox
            .enqueued(&conversation, login, entry.received_ms)
        {
            self.start_sender(conversation, false);
        }
    }

    /// Restarts delivery of everything left in the outbox at the last stop.
    pub fn start_outbox(self: &Arc<Self>) -> anyhow::Result<()> {
        let queues = self.store.outbox_summary()?;
        let total: usize = queues.iter().map(|q| q.depth).sum();
        if total > 0 {
            tracing::info!(
                "{total} event(s) for users left from the last run, in {} conversation(s)",
                queues.len()
            );
        }
        for q in queues {
            let login = LoginKey {
                user: q.user.clone(),
                network: q.network,
            };
            let mut start = false;
            for _ in 0..q.depth {
                start |= self.outbox.enqueued(&q.conversation, &login, q.oldest_ms);
            }
            if start {
                // The first entry may have reached the homeserver just before the stop.
                self.start_sender(q.conversation, true);
            }
        }
        Ok(())
    }

    fn start_sender(self: &Arc<Self>, conversation: Vec<u8>, uncertain: bool) {
        let bridge = self.clone();
        tokio::spawn(async move { bridge.sender(conversation, uncertain).await });
    }

    /// Delivers one conversation's queue in order until it is empty.
    async fn sender(self: Arc<Self>, conversation: Vec<u8>, mut uncertain: bool) {
        let mut delay = RETRY_FIRST;
        while self.outbox.keep_going(&conversation) {
            let (key, mut entry) = match self.store.outbox_first(&conversation) {
                Ok(Some(head)) => head,
                Ok(None) => {
                    self.outbox.reset(&conversation);
                    continue;
                }
                Err(e) => {
                    tracing::error!("could not read the outbox: {e}");
                    tokio::time::sleep(RETRY_MAX).await;
                    continue;
                }
            };
            self.outbox.head(&conversation, entry.received_ms);
            let login = LoginKey {
                user: entry.user.clone(),
                network: entry.network,
            };
            let result = {
                let _permit = self.outbox.permits.acquire().await.expect("never closed");
                match self.front_for(&entry.user) {
                    Some(front) => front.deliver(&key, &mut entry, uncertain).await,
                    None => Err(Failure::permanent(format!(
                        "no front serves {} (is it still enabled?)",
                        entry.user
                    ))),
                }
            };
            let event_ids = match result {
                Ok(ids) => {
                    crate::metrics::delivered_to_matrix(&entry);
                    ids
                }
                Err(f) if f.is_transient() => {
                    uncertain |= f.uncertain;
                    if let Some(line) = self.outbox.failed(&conversation, &f.message) {
                        tracing::warn!(user = %login.user, network = %login.network, "cannot deliver: {line}");
                    }
                    let wait = match f.kind {
                        FailureKind::Transient {
                            retry_after: Some(after),
                        } => after,
                        _ => delay,
                    };
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(RETRY_MAX);
                    continue;
                }
                Err(f) => {
                    self.permanent_failure(&entry, &f);
                    Vec::new()
                }
            };
            delay = RETRY_FIRST;
            uncertain = false;
            let now = super::now_ms();
            if let Err(e) = self.store.outbox_done(&key, &entry.txn_id, &event_ids, now) {
                tracing::error!("could not remove a delivered entry from the outbox: {e}");
            }
            if let OutboxItem::File { file, .. } = &entry.item {
                // Shown: the bytes go, unless the front serves them itself for a while.
                let keep = self.front_for(&entry.user).and_then(|f| f.keeps_files());
                let until = keep.map(|d| now.saturating_add(d.as_millis() as u64));
                if let Err(e) = self.store.file_shown(*file, until) {
                    tracing::error!("could not release a delivered file: {e}");
                }
            }
            // No flush of its own: a crash before the next one sends the entry again,
            // which the transaction id (and the marker check after a restart) makes
            // harmless, and a flush per message is the bridge's largest cost.
            self.outbox.delivered(&conversation, &login);
        }
    }

    /// The homeserver refused an entry for good: the user hears why.
    fn permanent_failure(self: &Arc<Self>, entry: &OutboxEntry, failure: &Failure) {
        let net = entry.network.display_name();
        let what = match &entry.item {
            OutboxItem::Message { from, plain, .. } => {
                let mut excerpt: String = plain.chars().take(200).collect();
                if excerpt.len() < plain.len() {
                    excerpt.push('…');
                }
                format!("A {net} message from {from} could not be shown here: {failure}. The message was: {excerpt}")
            }
            OutboxItem::File {
                from, name, size, ..
            } => {
                format!(
                    "The file {name} ({}) from {from} on {net} could not be shown here: {failure}",
                    super::size_text(*size)
                )
            }
            OutboxItem::Members { .. } => {
                format!("The member list of a {net} chat could not be shown here: {failure}")
            }
            OutboxItem::Left => {
                format!("Leaving a {net} chat could not be shown here: {failure}")
            }
            OutboxItem::Notice { text } => {
                format!("A {net} notice could not be shown in its room: {failure}. It said: {text}")
            }
        };
        tracing::warn!(user = %entry.user, network = %entry.network, "homeserver refused an event: {failure}");
        crate::metrics::refused_by_matrix(entry);
        self.notify(&entry.user, Some(entry.network), &what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(user: &str) -> LoginKey {
        LoginKey {
            user: user.into(),
            network: NetworkId::Icq,
        }
    }

    /// The bookkeeping behind `list`, the logs and the networks' backpressure.
    #[test]
    fn depth_age_and_errors_per_login() {
        let outbox = Outbox::default();
        let a = login("@a:x");
        let b_msn = LoginKey {
            user: "@b:x".into(),
            network: NetworkId::Msn,
        };
        let old = super::super::now_ms() - 90_000;
        assert!(
            outbox.enqueued(b"conv1", &a, old),
            "first entry starts a sender"
        );
        assert!(
            !outbox.enqueued(b"conv1", &a, old + 1),
            "one sender per conversation"
        );
        assert!(outbox.enqueued(b"conv2", &a, old + 2));
        assert_eq!(outbox.waiting_for(&a), 3);
        assert_eq!(outbox.len(), 3);
        assert!(outbox
            .failed(b"conv1", "the homeserver is unreachable")
            .is_some());
        assert!(
            outbox.failed(b"conv1", "still unreachable").is_none(),
            "logged at most once a minute"
        );
        let b = outbox.backlog("@a:x", NetworkId::Icq).expect("a backlog");
        assert_eq!(b.waiting, 3);
        assert!(b.oldest >= Duration::from_secs(89), "{:?}", b.oldest);
        assert_eq!(b.error.as_deref(), Some("still unreachable"));
        assert!(outbox.backlog("@b:x", NetworkId::Icq).is_none());
        outbox.enqueued(b"conv3", &b_msn, old + 30_000);
        let per_network = outbox.by_network();
        assert_eq!(per_network.len(), 2);
        let (depth, oldest) = per_network[&NetworkId::Icq];
        assert_eq!(depth, 3);
        assert!(oldest >= Duration::from_secs(89), "{oldest:?}");
        let (depth, oldest) = per_network[&NetworkId::Msn];
        assert_eq!(depth, 1);
        assert!(oldest < Duration::from_secs(89), "{oldest:?}");
        outbox.delivered(b"conv3", &b_msn);
        assert!(!outbox.keep_going(b"conv3"));
        assert!(!outbox.by_network().contains_key(&NetworkId::Msn));

        outbox.head(b"conv1", super::super::now_ms());
        outbox.delivered(b"conv1", &a);
        outbox.delivered(b"conv1", &a);
        assert!(
            !outbox.keep_going(b"conv1"),
            "an empty queue ends its sender"
        );
        assert!(outbox.keep_going(b"conv2"));
        let b = outbox.backlog("@a:x", NetworkId::Icq).expect("a backlog");
        assert_eq!((b.waiting, b.error), (1, None));
        assert_eq!(outbox.waiting_for(&a), 1);
    }
}
