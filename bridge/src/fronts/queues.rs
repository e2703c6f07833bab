//! Per-conversation queues of inbox ids, shared by the fronts' inboxes: what a user sent
//! is on disk; these say what waits, in order, and whether a worker runs.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

/// Inbox ids waiting per conversation (a Matrix room, an XMPP chat), with when they
/// arrived (for the metrics), in order. The front one is being handled; each
/// conversation has at most one worker, which ends when its queue is empty.
#[derive(Default)]
pub(crate) struct KeyedQueues {
    rooms: Mutex<HashMap<String, VecDeque<(u64, Instant)>>>,
}

impl KeyedQueues {
    /// Adds an event; true when the conversation has no worker yet (the caller starts one).
    pub(crate) fn push(&self, key: &str, id: u64, arrived: Instant) -> bool {
        let mut rooms = self.rooms.lock().expect("room queues");
        let queue = rooms.entry(key.to_owned()).or_default();
        queue.push_back((id, arrived));
        queue.len() == 1
    }

    pub(crate) fn front(&self, key: &str) -> Option<(u64, Instant)> {
        let rooms = self.rooms.lock().expect("room queues");
        rooms.get(key).and_then(|q| q.front().copied())
    }

    /// Whether the front event is the only one waiting.
    pub(crate) fn is_last(&self, key: &str) -> bool {
        let rooms = self.rooms.lock().expect("room queues");
        rooms.get(key).is_some_and(|q| q.len() == 1)
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
