//! Where a login's network events arrive ([`EventIntake`] for the bridge).
//!
//! * Events for a conversation's room (messages, member lists, leaving) are written to
//!   the durable outbox at once, in the network task's own call, and delivered by the
//!   conversation's sender ([`super::outbox`]).
//! * Presence goes to the coalescing presence queue ([`super::presence`]).
//! * The rest (connection state, contact lists, typing, notices) is handled in order on
//!   one task per login ([`super::legacy`]); the store part of a contact list is written
//!   at once, so that a message right behind it finds the contacts' names.
//!
//! Backpressure: a login is `backlogged` while its in-memory queue or its undelivered
//! outbox entries pass a limit; networks stop reading their socket until it clears.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use super::{Bridge, ChatId, EventIntake, LoginKey, NetworkEvent};
use crate::model::{OutboxEntry, OutboxItem};

/// Events waiting for a login's task before the login counts as backlogged.
const QUEUE_LIMIT: usize = 1_000;
/// Outbox entries of one login not yet in Matrix before it counts as backlogged (they
/// are on disk: this bounds the disk a flood can use while the homeserver is away).
const OUTBOX_LIMIT: usize = 10_000;

/// The in-memory part: per login, the events its task has not handled yet.
#[derive(Default)]
pub(crate) struct LoginQueues {
    queues: Mutex<HashMap<LoginKey, VecDeque<NetworkEvent>>>,
}

impl LoginQueues {
    /// Adds an event; true when the login needs a task (it had nothing queued).
    fn push(&self, login: &LoginKey, event: NetworkEvent) -> bool {
        let mut queues = self.queues.lock().expect("login queues");
        let queue = queues.entry(login.clone()).or_default();
        queue.push_back(event);
        queue.len() == 1
    }

    fn front(&self, login: &LoginKey) -> Option<NetworkEvent> {
        let queues = self.queues.lock().expect("login queues");
        queues.get(login).and_then(|q| q.front().cloned())
    }

    /// The front event is handled; false when nothing is left (the task ends).
    fn pop(&self, login: &LoginKey) -> bool {
        let mut queues = self.queues.lock().expect("login queues");
        let Some(queue) = queues.get_mut(login) else {
            return false;
        };
        queue.pop_front();
        if queue.is_empty() {
            queues.remove(login);
            return false;
        }
        true
    }

    fn len_of(&self, login: &LoginKey) -> usize {
        let queues = self.queues.lock().expect("login queues");
        queues.get(login).map_or(0, VecDeque::len)
    }

    /// Events waiting in all logins' queues.
    pub(crate) fn len(&self) -> usize {
        let queues = self.queues.lock().expect("login queues");
        queues.values().map(VecDeque::len).sum()
    }
}

impl Bridge {
    fn take_event(&self, login: &LoginKey, mut event: NetworkEvent) {
        // Names and texts a legacy peer chose are made harmless before anything keeps them.
        super::sanitize::clean_event(&mut event);
        let net = login.network;
        match event {
            NetworkEvent::Message {
                chat,
                from,
                id,
                kind,
                text,
                sent_at,
                offline,
                ack_key,
            } => {
                if let ChatId::Room(room) = &chat {
                    // Every bridged user in a chatroom receives each message: one relays it.
                    if self
                        .relay_for(net, room, crate::model::shared_owner(&login.user))
                        .is_some_and(|relay| relay != login.user)
                    {
                        return;
                    }
                    if self.take_echo(login, room, &from, &text.plain) {
                        return;
                    }
                }
                if let Some(id) = &id {
                    match self.store.record_legacy_message(&login.user, net, id) {
                        Ok(false) => {
                            tracing::debug!("legacy message delivered twice; bridged once");
                            return;
                        }
                        Ok(true) => {}
                        Err(e) => tracing::error!("could not record a legacy message id: {e}"),
                    }
                }
                if let Some(k) = &ack_key {
                    let store = &self.store;
                    match store.unacknowledged(&login.user, net, k) {
                        // Bridged before a crash cut off its acknowledgement: the server
                        // sends it again, as stored. Its acknowledgement now counts down.
                        Ok(n) if offline && n > 0 => {
                            tracing::debug!(
                                "legacy message sent again after a crash; bridged once"
                            );
                            return;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!("could not read unacknowledged messages: {e}"),
                    }
                    if let Err(e) = store.add_unacknowledged(&login.user, net, k) {
                        tracing::error!("could not record an unacknowledged message: {e}");
                    }
                }
                let item = OutboxItem::Message {
                    from,
                    kind,
                    plain: text.plain,
                    html: text.html,
                    sent_at,
                    offline,
                };
                self.to_outbox(login, chat, item);
            }
            NetworkEvent::File { chat, from, file } => {
                // The bytes first: an entry never names a file the store does not have.
                let id = match self.store.put_file(&file.data) {
                    Ok(id) => id,
                    Err(e) => {
                        tracing::error!("could not store a received file: {e}");
                        self.arc().notify(
                            &login.user,
                            Some(net),
                            &format!(
                                "{from} sent you the file {} ({}), which could not be kept: {e}",
                                file.name,
                                super::size_text(file.data.len() as u64)
                            ),
                        );
                        return;
                    }
                };
                let item = OutboxItem::File {
                    from,
                    file: id,
                    size: file.data.len() as u64,
                    name: file.name,
                    mime: file.mime,
                    sent_at: Some(super::now_ms()),
                };
                self.to_outbox(login, chat, item);
            }
            NetworkEvent::RoomMembers { chat, members } => {
                if let ChatId::Room(name) = &chat {
                    // At once: the relay for the room's next message depends on it.
                    if let Err(e) = self.store.add_chatroom_member(&login.user, net, name) {
                        tracing::error!("could not record a chatroom member: {e}");
                    }
                }
                self.to_outbox(login, chat, OutboxItem::Members { members });
            }
            NetworkEvent::RoomLeft { chat } => {
                if let ChatId::Room(name) = &chat {
                    if let Err(e) = self.store.remove_chatroom_member(&login.user, net, name) {
                        tracing::error!("could not forget a chatroom member: {e}");
                    }
                }
                self.to_outbox(login, chat, OutboxItem::Left);
            }
            NetworkEvent::Presence { who, presence } => {
                self.arc().update_presence(login, who, presence);
            }
            NetworkEvent::Acknowledged { keys } => {
                for k in &keys {
                    if let Err(e) = self.store.acknowledged(&login.user, net, k) {
                        tracing::error!("could not record an acknowledgement: {e}");
                    }
                }
            }
            other => {
                crate::metrics::login_event(net, &other);
                if let NetworkEvent::ContactList { groups, contacts } = &other {
                    let stored = self
                        .store
                        .replace_groups(&login.user, net, groups)
                        .and_then(|()| self.store.replace_buddies(&login.user, net, contacts));
                    if let Err(e) = stored {
                        tracing::error!("could not store a contact list: {e}");
                    }
                }
                if let NetworkEvent::ContactChanged(contact) = &other {
                    if let Err(e) = self.store.put_buddy(&login.user, net, contact) {
                        tracing::error!("could not store a contact: {e}");
                    }
                }
                if self.login_queues.push(login, other) {
                    let bridge = self.arc();
                    let login = login.clone();
                    tokio::spawn(async move { bridge.login_worker(login).await });
                }
            }
        }
    }

    fn to_outbox(&self, login: &LoginKey, chat: ChatId, item: OutboxItem) {
        let entry = OutboxEntry {
            user: login.user.clone(),
            network: login.network,
            chat,
            txn_id: String::new(),
            received_ms: super::now_ms(),
            parts_done: 0,
            item,
        };
        self.arc().push_outbox(login, entry);
    }

    async fn login_worker(self: Arc<Self>, login: LoginKey) {
        while let Some(event) = self.login_queues.front(&login) {
            super::legacy::handle_network_event(&self, &login, event).await;
            let more = self.login_queues.pop(&login);
            self.outbox.drained.notify_waiters();
            if !more {
                break;
            }
        }
    }

    fn is_backlogged(&self, login: &LoginKey) -> bool {
        self.login_queues.len_of(login) > QUEUE_LIMIT
            || self.outbox.waiting_for(login) > OUTBOX_LIMIT
    }
}

impl EventIntake for Bridge {
    fn accept(&self, login: &LoginKey, event: NetworkEvent) {
        self.take_event(login, event);
    }

    fn durable(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            // A disk that cannot be written must not let the network acknowledge.
            let mut delay = std::time::Duration::from_millis(100);
            while let Err(e) = self.store.flush().await {
                tracing::error!("could not write the database to disk: {e}; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(10));
            }
        })
    }

    fn backlogged(&self, login: &LoginKey) -> bool {
        self.is_backlogged(login)
    }

    fn ready<'a>(&'a self, login: &'a LoginKey) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            loop {
                let drained = self.outbox.drained.notified();
                tokio::pin!(drained);
                drained.as_mut().enable();
                if !self.is_backlogged(login) {
                    return;
                }
                drained.await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FormattedText, MessageKind, NetworkId};

    fn bridge(dir: &std::path::Path) -> Arc<Bridge> {
        crate::core::test_bridge(dir, "{icq: {enabled: true, server: '127.0.0.1:9'}}")
    }

    fn message(text: &str, offline: bool) -> NetworkEvent {
        NetworkEvent::Message {
            chat: ChatId::Direct("1002".into()),
            from: "1002".into(),
            id: None,
            kind: MessageKind::Text,
            text: FormattedText::plain(text),
            sent_at: None,
            offline,
            ack_key: Some(format!("key-{text}")),
        }
    }

    fn queued(bridge: &Bridge) -> usize {
        bridge
            .store
            .outbox_summary()
            .unwrap()
            .iter()
            .map(|q| q.depth)
            .sum()
    }

    /// A message whose ACK never went out (a crash) comes again from the server as a
    /// stored message: bridged once. A live message is never taken for a copy, and once
    /// the ACK went out, the same words stored later are a new message.
    #[tokio::test]
    async fn a_copy_sent_again_after_a_crash_is_bridged_once() {
        let dir = tempfile::tempdir().unwrap();
        let bridge = bridge(dir.path());
        let login = LoginKey {
            user: "@alice:localhost".into(),
            network: NetworkId::Icq,
        };
        bridge.accept(&login, message("hi", false));
        bridge.accept(&login, message("hi", false)); // the same words, live: both
        assert_eq!(queued(&bridge), 2);
        // One ACK went out before the crash; the other comes again, stored.
        bridge.accept(
            &login,
            NetworkEvent::Acknowledged {
                keys: vec!["key-hi".into()],
            },
        );
        bridge.accept(&login, message("hi", true));
        assert_eq!(queued(&bridge), 2, "the copy is not bridged");
        // Its ACK goes out; the same words stored later are new.
        bridge.accept(
            &login,
            NetworkEvent::Acknowledged {
                keys: vec!["key-hi".into()],
            },
        );
        bridge.accept(&login, message("hi", true));
        assert_eq!(queued(&bridge), 3);
    }
}
