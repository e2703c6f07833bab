//! Per-conversation queues of inbox ids, shared by the fronts' inboxes: what a user sent
//! is on disk; these say what waits, in order, and whether a worker runs.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::store::{self, Store};

/// Inbox ids waiting per conversation (a Matrix room, an XMPP chat), with when they
/// arrived (for the metrics), in order. The front one is being handled; each
/// conversation has at most one worker, which ends when its queue is empty.
#[derive(Default)]
pub(crate) struct KeyedQueues {
    rooms: Mutex<HashMap<String, VecDeque<Waiting>>>,
}

#[derive(Clone, Copy)]
struct Waiting {
    id: u64,
    arrived: Instant,
    /// When it was written (the homeserver's timestamp), if known.
    written_ms: Option<u64>,
    /// The entry may not be on disk yet: the worker settles this before handling it.
    unsettled: Option<store::FlushTicket>,
}

impl KeyedQueues {
    /// Adds an event at the back; true when the conversation has no worker yet (the
    /// caller starts one).
    pub(crate) fn push(&self, key: &str, id: u64, arrived: Instant) -> bool {
        self.push_written(key, id, arrived, None)
    }

    /// Adds an event at the back that was written but maybe not flushed yet: it is
    /// handled once the writes before `ticket` are on disk (so the caller need not wait
    /// for the disk, and a burst shares its flushes). True as for [`Self::push`].
    pub(crate) fn push_unsettled(
        &self,
        key: &str,
        id: u64,
        arrived: Instant,
        ticket: store::FlushTicket,
    ) -> bool {
        let mut rooms = self.rooms.lock().expect("room queues");
        let queue = rooms.entry(key.to_owned()).or_default();
        queue.push_back(Waiting {
            id,
            arrived,
            written_ms: None,
            unsettled: Some(ticket),
        });
        queue.len() == 1
    }

    /// Adds an event written at `written_ms`: ahead of the waiting ones written later
    /// (a homeserver delivering it late), never ahead of the one being handled.
    pub(crate) fn push_written(
        &self,
        key: &str,
        id: u64,
        arrived: Instant,
        written_ms: Option<u64>,
    ) -> bool {
        let mut rooms = self.rooms.lock().expect("room queues");
        let queue = rooms.entry(key.to_owned()).or_default();
        let mut at = queue.len();
        if let Some(ms) = written_ms {
            while at > 1 && queue[at - 1].written_ms.is_some_and(|w| w > ms) {
                at -= 1;
            }
        }
        queue.insert(
            at,
            Waiting {
                id,
                arrived,
                written_ms,
                unsettled: None,
            },
        );
        queue.len() == 1
    }

    /// The entry at the front (the one being handled), if any.
    fn front_waiting(&self, key: &str) -> Option<Waiting> {
        let rooms = self.rooms.lock().expect("room queues");
        rooms.get(key).and_then(|q| q.front()).copied()
    }

    /// The front event is done; false when the queue is empty (the worker ends).
    pub(crate) fn pop(&self, key: &str) -> bool {
        let mut rooms = self.rooms.lock().expect("room queues");
        let Some(queue) = rooms.get_mut(key) else {
            return false;
        };
        queue.pop_front();
        if queue.is_empty() {
            rooms.remove(key);
            return false;
        }
        true
    }

    /// Events waiting in all conversations.
    pub(crate) fn len(&self) -> usize {
        let rooms = self.rooms.lock().expect("room queues");
        rooms.values().map(VecDeque::len).sum()
    }
}

/// A front's inbox, as the one worker loop sees it: the queues, the store's tree, and
/// how to handle one recorded entry.
pub(crate) trait Inbox: Send + Sync + 'static {
    /// For logs: "Matrix event", "XMPP message".
    const WHAT: &'static str;

    fn queues(&self) -> &KeyedQueues;

    fn store(&self) -> &Store;

    fn get(&self, id: u64) -> store::Result<Option<Vec<u8>>>;

    fn done(&self, id: u64) -> store::Result<()>;

    /// Handles one recorded entry of conversation `key`, received at `arrived`.
    fn handle(
        self: &Arc<Self>,
        key: &str,
        bytes: Vec<u8>,
        arrived: Instant,
    ) -> impl Future<Output = ()> + Send;
}

/// Starts the worker of conversation `key` (when [`KeyedQueues::push`] says none runs).
pub(crate) fn spawn_worker<I: Inbox>(inbox: &Arc<I>, key: &str) {
    let (inbox, key) = (inbox.clone(), key.to_owned());
    tokio::spawn(async move { work(inbox, key).await });
}

/// Handles a conversation's queue in order until it is empty: for each entry, the
/// previous one's "handled" mark settled, the entry read back and handled, then marked
/// handled. The mark rides on the next flush (in a burst, that of the next entry's
/// recording) but is on disk before the next entry is handled: a crash repeats at most
/// one entry per conversation. An entry that cannot be read now (unsealing failed) is
/// left in the inbox, never thrown away.
pub(crate) async fn work<I: Inbox>(inbox: Arc<I>, key: String) {
    let mut unsettled = None;
    while let Some(Waiting {
        id,
        arrived,
        unsettled: written,
        ..
    }) = inbox.queues().front_waiting(&key)
    {
        if let Some(ticket) = unsettled.take() {
            if let Err(e) = inbox.store().settle(ticket).await {
                tracing::error!(%key, "could not write that a {} was handled: {e}", I::WHAT);
            }
        }
        // On disk before it acts: a flush since it was written (shared with whatever
        // else was written meanwhile), or one of its own.
        if let Some(ticket) = written {
            if let Err(e) = inbox.store().settle(ticket).await {
                tracing::error!(%key, "could not write a {} to disk: {e}", I::WHAT);
            }
        }
        let handled = match inbox.get(id) {
            Ok(Some(bytes)) => {
                inbox.handle(&key, bytes, arrived).await;
                true
            }
            Ok(None) => true,
            Err(e) => {
                tracing::error!(%key, "could not read a {}, left in the inbox: {e}", I::WHAT);
                false
            }
        };
        if handled {
            match inbox.done(id) {
                Ok(()) => unsettled = Some(inbox.store().flush_later()),
                Err(e) => tracing::error!("could not mark a {} handled: {e}", I::WHAT),
            }
        }
        if !inbox.queues().pop(&key) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(queues: &KeyedQueues, key: &str) -> Vec<u64> {
        let mut ids = Vec::new();
        while let Some(Waiting { id, .. }) = queues.front_waiting(key) {
            ids.push(id);
            queues.pop(key);
        }
        ids
    }

    /// An event the homeserver delivers late goes ahead of the waiting events written
    /// after it, but not ahead of the one being handled; events without a time and
    /// events written at the same time keep their arrival order.
    #[test]
    fn a_late_event_goes_ahead_of_later_ones_waiting() {
        let q = KeyedQueues::default();
        let now = Instant::now();
        assert!(
            q.push_written("r", 1, now, Some(300)),
            "the first starts a worker"
        );
        assert!(!q.push_written("r", 2, now, Some(400)));
        assert!(!q.push_written("r", 3, now, Some(500)));
        assert!(
            !q.push_written("r", 4, now, Some(200)),
            "older than the one handled"
        );
        assert!(!q.push_written("r", 5, now, Some(350)));
        assert!(!q.push("r", 6, now));
        assert!(!q.push_written("r", 7, now, Some(400)));
        assert_eq!(ids(&q, "r"), vec![1, 4, 5, 2, 3, 6, 7]);
    }
}
