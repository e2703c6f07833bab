//! The durable legacy -> Matrix outbox: one ordered queue per conversation.
//!
//! A network event that becomes Matrix output is written here as soon as it arrives
//! (before the legacy side is acknowledged, where the protocol acknowledges), and leaves
//! only when the homeserver has it. Keys: conversation key (the portal key, valid UTF-8)
//! `0xFF` entry id (8 bytes BE): `0xFF` never occurs in UTF-8, so one conversation's
//! entries are one prefix scan, in arrival order.

use super::{decode, encode, Result, Store, StoreError};
use crate::model::{ChatId, NetworkId, OutboxEntry};
#[cfg(test)]
use crate::model::{MessageKind, OutboxItem};

/// An outbox entry's key.
pub type OutboxKey = Vec<u8>;

const SEPARATOR: u8 = 0xFF;

/// What is waiting in one conversation's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSummary {
    pub conversation: Vec<u8>,
    pub user: String,
    pub network: NetworkId,
    pub chat: ChatId,
    pub depth: usize,
    pub oldest_ms: u64,
}

fn conversation_prefix(conversation: &[u8]) -> Vec<u8> {
    let mut prefix = conversation.to_vec();
    prefix.push(SEPARATOR);
    prefix
}

impl Store {
    /// The key of a conversation's queue (shared chatrooms have one queue for everyone).
    pub fn conversation_key(user: &str, network: NetworkId, chat: &ChatId) -> Vec<u8> {
        Store::portal_key(user, network, chat)
    }

    /// Appends an entry to its conversation's queue and gives it its transaction id.
    /// Not flushed: call [`Store::flush`] before acknowledging the legacy side.
    pub fn outbox_push(&self, entry: &mut OutboxEntry) -> Result<OutboxKey> {
        let id = self.next_id()?;
        entry.txn_id = format!("rb{}.{id}", self.instance);
        let mut key = conversation_prefix(&Store::conversation_key(
            &entry.user,
            entry.network,
            &entry.chat,
        ));
        key.extend_from_slice(&id.to_be_bytes());
        self.outbox.insert(&key, encode(entry))?;
        Ok(key)
    }

    /// The oldest entry of a conversation's queue.
    pub fn outbox_first(&self, conversation: &[u8]) -> Result<Option<(OutboxKey, OutboxEntry)>> {
        match self
            .outbox
            .scan_prefix(conversation_prefix(conversation))
            .next()
        {
            Some(kv) => {
                let (k, v) = kv?;
                Ok(Some((k.to_vec(), decode("outbox", &v)?)))
            }
            None => Ok(None),
        }
    }

    /// Saves progress on an entry (parts of a split message delivered).
    pub fn outbox_update(&self, key: &[u8], entry: &OutboxEntry) -> Result<()> {
        self.outbox.insert(key, encode(entry))?;
        Ok(())
    }

    /// The entry is in Matrix (or could never be): it leaves the queue, and the event ids
    /// the homeserver gave are recorded under its transaction id.
    pub fn outbox_done(
        &self,
        key: &[u8],
        txn_id: &str,
        event_ids: &[String],
        now_ms: u64,
    ) -> Result<()> {
        if !event_ids.is_empty() {
            self.delivered
                .insert(txn_id.as_bytes(), event_ids.join("\n").as_bytes(), now_ms)?;
        }
        self.outbox.remove(key)?;
        Ok(())
    }

    /// The event ids recorded for a delivered entry.
    pub fn delivered_events(&self, txn_id: &str) -> Result<Option<Vec<String>>> {
        Ok(self.delivered.get(txn_id.as_bytes())?.map(|(_, v)| {
            String::from_utf8_lossy(&v)
                .split('\n')
                .map(str::to_owned)
                .collect()
        }))
    }

    /// Every non-empty queue (start-up).
    pub fn outbox_summary(&self) -> Result<Vec<QueueSummary>> {
        let mut out: Vec<QueueSummary> = Vec::new();
        for kv in self.outbox.iter() {
            let (k, v) = kv?;
            let conversation = k
                .len()
                .checked_sub(9)
                .filter(|&at| k[at] == SEPARATOR)
                .map(|at| k[..at].to_vec())
                .ok_or_else(|| StoreError::Corrupt {
                    tree: "outbox",
                    error: "malformed key".into(),
                })?;
            match out.last_mut() {
                Some(last) if last.conversation == conversation => last.depth += 1,
                _ => {
                    let entry: OutboxEntry = decode("outbox", &v)?;
                    out.push(QueueSummary {
                        conversation,
                        user: entry.user,
                        network: entry.network,
                        chat: entry.chat,
                        depth: 1,
                        oldest_ms: entry.received_ms,
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(user: &str, chat: &str, text: &str) -> OutboxEntry {
        OutboxEntry {
            user: user.into(),
            network: NetworkId::Icq,
            chat: ChatId::Direct(chat.into()),
            txn_id: String::new(),
            received_ms: 1,
            parts_done: 0,
            item: OutboxItem::Message {
                from: chat.into(),
                kind: MessageKind::Text,
                plain: text.into(),
                html: None,
                sent_at: None,
                offline: false,
            },
        }
    }

    #[tokio::test]
    async fn queues_are_ordered_per_conversation_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (txn_a, conv_a, conv_b) = {
            let store = Store::open_in(dir.path()).unwrap();
            let mut a1 = message("@a:x", "100", "one");
            let mut a2 = message("@a:x", "100", "two");
            let mut b1 = message("@a:x", "1000", "other");
            let k1 = store.outbox_push(&mut a1).unwrap();
            store.outbox_push(&mut b1).unwrap();
            store.outbox_push(&mut a2).unwrap();
            assert_ne!(a1.txn_id, a2.txn_id);
            let conv_a = Store::conversation_key("@a:x", NetworkId::Icq, &a1.chat);
            let conv_b = Store::conversation_key("@a:x", NetworkId::Icq, &b1.chat);
            let (first, entry) = store.outbox_first(&conv_a).unwrap().unwrap();
            assert_eq!((first.clone(), entry.clone()), (k1, a1.clone()));
            store
                .outbox_done(&first, &entry.txn_id, &["$e1".into()], 5)
                .unwrap();
            store.flush().await.unwrap();
            (entry.txn_id, conv_a, conv_b)
        };
        let store = Store::open_in(dir.path()).unwrap();
        let (_, next) = store.outbox_first(&conv_a).unwrap().unwrap();
        assert!(matches!(next.item, OutboxItem::Message { ref plain, .. } if plain == "two"));
        let (_, other) = store.outbox_first(&conv_b).unwrap().unwrap();
        assert!(matches!(other.item, OutboxItem::Message { ref plain, .. } if plain == "other"));
        assert_eq!(
            store.delivered_events(&txn_a).unwrap(),
            Some(vec!["$e1".to_string()])
        );
        let summary = store.outbox_summary().unwrap();
        assert_eq!(summary.len(), 2, "{summary:?}");
        assert!(summary.iter().all(|q| q.depth == 1));
    }

    #[test]
    fn transaction_ids_differ_between_databases() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let mut e1 = message("@a:x", "1", "x");
        let mut e2 = e1.clone();
        Store::open_in(a.path())
            .unwrap()
            .outbox_push(&mut e1)
            .unwrap();
        Store::open_in(b.path())
            .unwrap()
            .outbox_push(&mut e2)
            .unwrap();
        assert_ne!(e1.txn_id, e2.txn_id);
    }
}
