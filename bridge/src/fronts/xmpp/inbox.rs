//! XMPP -> legacy: a message a user sends to a contact or a room is recorded in the
//! store's XMPP inbox (sealed) before anything else, then handled in order per
//! conversation; it leaves the inbox once the legacy network accepted it (or refused
//! it, which the user is told). What a crash interrupted is handled after the restart.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use xmpp_parsers::message::{Id, Message};
use xmpp_parsers::stanza_error::DefinedCondition;

use super::errors::{message_error, stanza_error};
use super::front::XmppFront;
use super::{convert, xml_text};
use crate::core::{ChatId, FormattedText, MessageKind, NetworkId, SendError};
use crate::fronts::queues::KeyedQueues;

/// One message from an XMPP user, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Request {
    pub user: String,
    /// The sending resource (errors and receipts go back to it).
    pub from: String,
    /// The address it was sent to (a contact's JID, a room's).
    pub to: String,
    pub network: NetworkId,
    pub chat: ChatId,
    pub id: Option<String>,
    pub kind: MessageKind,
    pub plain: String,
    pub html: Option<String>,
    pub receipt: bool,
}

impl Request {
    fn conversation(&self) -> String {
        format!("{}\0{}\0{:?}", self.user, self.network, self.chat)
    }
}

#[derive(Default)]
pub(crate) struct Inbox {
    queues: KeyedQueues,
}

impl Inbox {
    pub(crate) fn len(&self) -> usize {
        self.queues.len()
    }

    /// Records a request and queues it; it is handled once on disk. Returns without
    /// waiting for the disk, so that the next stanza is read at once and a burst shares
    /// its flushes (the worker waits instead).
    pub(crate) async fn accept(&self, front: &Arc<XmppFront>, request: Request) {
        let bytes = match serde_json::to_vec(&request) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("could not encode an XMPP message: {e}");
                return;
            }
        };
        let id = match front.store.xmpp_inbox_push(&bytes) {
            Ok(id) => id,
            Err(e) => {
                tracing::error!("could not record an XMPP message: {e}");
                bounce(
                    front,
                    &request,
                    "the bridge could not store it; send it again",
                )
                .await;
                return;
            }
        };
        let ticket = front.store.flush_later();
        front.store.flush_soon();
        let conversation = request.conversation();
        if self
            .queues
            .push_unsettled(&conversation, id, Instant::now(), ticket)
        {
            crate::fronts::queues::spawn_worker(front, &conversation);
        }
    }

    fn queue(&self, front: &Arc<XmppFront>, conversation: &str, id: u64) {
        if self.queues.push(conversation, id, Instant::now()) {
            crate::fronts::queues::spawn_worker(front, conversation);
        }
    }

    /// Queues what was recorded before the last stop (call before new stanzas).
    pub(crate) fn replay(&self, front: &Arc<XmppFront>) {
        let pending = match front.store.xmpp_inbox_pending() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("could not read the XMPP inbox: {e}");
                return;
            }
        };
        if !pending.is_empty() {
            tracing::info!(
                "handling {} XMPP message(s) accepted before the last stop",
                pending.len()
            );
        }
        for (id, bytes) in pending {
            match serde_json::from_slice::<Request>(&bytes) {
                Ok(request) => self.queue(front, &request.conversation(), id),
                Err(e) => {
                    tracing::error!("an unreadable XMPP inbox entry is dropped: {e}");
                    let _ = front.store.xmpp_inbox_done(id);
                }
            }
        }
    }
}

impl crate::fronts::queues::Inbox for XmppFront {
    const WHAT: &'static str = "XMPP message";

    fn queues(&self) -> &KeyedQueues {
        &self.inbox.queues
    }

    fn store(&self) -> &crate::store::Store {
        &self.store
    }

    fn get(&self, id: u64) -> crate::store::Result<Option<Vec<u8>>> {
        self.store.xmpp_inbox_get(id)
    }

    fn done(&self, id: u64) -> crate::store::Result<()> {
        self.store.xmpp_inbox_done(id)
    }

    async fn handle(self: &Arc<Self>, _: &str, bytes: Vec<u8>, _: Instant) {
        match serde_json::from_slice::<Request>(&bytes) {
            Ok(request) => handle(self, &request).await,
            Err(e) => tracing::error!("an unreadable XMPP inbox entry is dropped: {e}"),
        }
    }
}

async fn handle(front: &Arc<XmppFront>, request: &Request) {
    let text = FormattedText {
        plain: request.plain.clone(),
        html: request.html.clone(),
    };
    let text = match request.kind {
        // As from Matrix: the networks have no emotes.
        MessageKind::Emote => FormattedText::plain(format!("* {}", text.plain)),
        _ => text,
    };
    let sent = match request.kind {
        MessageKind::Nudge => {
            front
                .send_nudge(&request.user, request.network, &request.chat)
                .await
        }
        _ => match shared_file(front, request, &text.plain) {
            Some(url) => {
                let max = front.config.config.files.max_bytes;
                match super::uploads::fetch(url, max).await {
                    Ok(file) => {
                        front
                            .send_file(&request.user, request.network, &request.chat, file, text)
                            .await
                    }
                    Err(why) => {
                        front.core().notify(
                            &request.user,
                            Some(request.network),
                            &format!("Your file went as a link: it could not be fetched ({why})."),
                        );
                        front
                            .send_text(&request.user, request.network, &request.chat, text)
                            .await
                    }
                }
            }
            None => {
                front
                    .send_text(&request.user, request.network, &request.chat, text)
                    .await
            }
        },
    };
    match sent {
        Ok(delivery) => {
            for warning in &delivery.warnings {
                front
                    .core()
                    .notify(&request.user, Some(request.network), warning);
            }
            match &request.chat {
                ChatId::Direct(_) => receipt(front, request).await,
                ChatId::Room(_) | ChatId::Group(_) => {
                    super::rooms::reflect(front, request).await;
                }
            }
        }
        Err(e) => {
            let why = match &e {
                SendError::NotLoggedIn(_) => format!("{e}; register with the gateway first"),
                _ => e.to_string(),
            };
            bounce(front, request, &why).await;
            front.core().notify(
                &request.user,
                Some(request.network),
                &format!("Your message to {} was not delivered: {why}", request.to),
            );
        }
    }
}

/// The link of a file the user shares in a one-to-one chat, when the network carries
/// files and the link is on a listed upload host.
fn shared_file(front: &XmppFront, request: &Request, text: &str) -> Option<reqwest::Url> {
    let hosts = &front.config.config.xmpp.as_ref()?.file_hosts;
    if !request.network.capabilities().files || !matches!(request.chat, ChatId::Direct(_)) {
        return None;
    }
    super::uploads::shared_file(text, hosts)
}

/// The receipt (XEP-0184) for a message the network accepted, if the sender asked.
async fn receipt(front: &XmppFront, request: &Request) {
    let (true, Some(id)) = (request.receipt, &request.id) else {
        return;
    };
    let (Ok(from), Ok(to)) = (
        request.to.parse::<xmpp_parsers::jid::Jid>(),
        request.from.parse::<xmpp_parsers::jid::Jid>(),
    ) else {
        return;
    };
    front.send(convert::receipt(from, to, id)).await;
}

/// An error reply to the sender: the message was not delivered.
async fn bounce(front: &XmppFront, request: &Request, why: &str) {
    let (Ok(from), Ok(to)) = (
        request.from.parse::<xmpp_parsers::jid::Jid>(),
        request.to.parse::<xmpp_parsers::jid::Jid>(),
    ) else {
        return;
    };
    let mut original = Message::chat(Some(to));
    original.from = Some(from);
    original.id = request.id.clone().map(Id);
    let error = stanza_error(DefinedCondition::RecipientUnavailable, Some(&xml_text(why)));
    if let Some(reply) = message_error(&original, error) {
        front.send(reply).await;
    }
}
