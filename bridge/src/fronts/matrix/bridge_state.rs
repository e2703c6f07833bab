//! Bridge state in portals (MSC2346): the `m.bridge` state event and its unstable twin
//! `uk.half-shot.bridge`, which tell clients what a room is bridged to (protocol, the
//! legacy server as the network, the conversation as the channel, the bot, the user
//! who created the link).
//!
//! Set when a portal is created, and at start-up in every portal whose state is missing
//! or differs (portals from before this existed, a send that failed, a server address
//! changed in the config). What was set is remembered in the store, so nothing is sent
//! again while it is unchanged.

use std::sync::Arc;

use serde_json::json;

use super::{room_id, MatrixFront};
use crate::core::{ChatId, NetworkId};
use crate::store::{BridgeStateRecord, PortalRecord};

/// Both event types carry the same content and state key.
const EVENT_TYPES: [&str; 2] = ["m.bridge", "uk.half-shot.bridge"];

/// The state key's prefix: this bridge.
const PREFIX: &str = "net.retrobridge";

/// One check at a time: a portal created while the start-up check runs is not sent twice.
static SENDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The room has it already (as recorded).
    Unchanged,
    Set,
    /// Refused or failed (logged); tried again at the next start.
    Failed,
}

/// The legacy server a network connects to, which MSC2346 calls the network.
fn server(front: &MatrixFront, network: NetworkId) -> String {
    front
        .config
        .config
        .networks
        .get(network.as_str())
        .and_then(|n| n.server.clone())
        .unwrap_or_else(|| network.as_str().to_owned())
}

/// The state key and content a portal should have.
pub fn wanted(front: &MatrixFront, portal: &PortalRecord) -> BridgeStateRecord {
    let network = portal.network;
    let (channel, name) = match &portal.chat {
        ChatId::Direct(contact) => {
            let name = front
                .store
                .buddies(&portal.mxid, network)
                .ok()
                .and_then(|b| b.into_iter().find(|c| &c.id == contact)?.display_name)
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| contact.clone());
            (contact.clone(), name)
        }
        ChatId::Group(id) => (id.clone(), format!("{} group chat", network.display_name())),
        ChatId::Room(name) => (name.clone(), name.clone()),
    };
    let server = server(front, network);
    BridgeStateRecord {
        state_key: format!("{PREFIX}://{network}/{server}/{channel}"),
        content: json!({
            "bridgebot": front.bot().as_str(),
            "creator": portal.mxid,
            "protocol": { "id": network.as_str(), "displayname": network.display_name() },
            "network": { "id": server, "displayname": server },
            "channel": { "id": channel, "displayname": name },
        }),
    }
}

/// Sets a portal's bridge state unless the store says it is there already. Sent by the
/// bot; in a direct chat someone else created (a chat started from Matrix) the bot may
/// lack the power, and the contact's ghost, invited by the user, may have it.
pub async fn ensure(front: &MatrixFront, portal: &PortalRecord) -> Outcome {
    let _one_at_a_time = SENDING.lock().await;
    let wanted = wanted(front, portal);
    let stored = match front.store.bridge_state(&portal.room_id) {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!(room = %portal.room_id, "could not read the bridge state record: {e}");
            return Outcome::Failed;
        }
    };
    if stored.as_ref() == Some(&wanted) {
        return Outcome::Unchanged;
    }
    let room = room_id(&portal.room_id);
    let mut senders = vec![front.bot().to_owned()];
    if let ChatId::Direct(contact) = &portal.chat {
        senders.push(front.ghost_id(portal.network, contact));
    }
    let mut last_error = None;
    let mut sent_by = None;
    for sender in &senders {
        match front
            .matrix
            .send_state(
                sender,
                &room,
                EVENT_TYPES[0],
                &wanted.state_key,
                wanted.content.clone(),
            )
            .await
        {
            Ok(()) => {
                sent_by = Some(sender);
                break;
            }
            Err(e) => last_error = Some(e.to_string()),
        }
    }
    let Some(sender) = sent_by else {
        tracing::info!(
            room = %portal.room_id,
            "could not set the bridge state (the bot may lack the power): {}",
            last_error.unwrap_or_default()
        );
        return Outcome::Failed;
    };
    let mut others: Vec<(&str, &str, serde_json::Value)> =
        vec![(EVENT_TYPES[1], &wanted.state_key, wanted.content.clone())];
    // A changed key (the server moved): the old one is emptied, which clients read as
    // "no longer bridged there".
    if let Some(old) = stored.as_ref().filter(|o| o.state_key != wanted.state_key) {
        for kind in EVENT_TYPES {
            others.push((kind, &old.state_key, json!({})));
        }
    }
    for (kind, key, content) in others {
        if let Err(e) = front
            .matrix
            .send_state(sender, &room, kind, key, content)
            .await
        {
            tracing::info!(room = %portal.room_id, "could not set {kind}: {e}");
            return Outcome::Failed;
        }
    }
    if let Err(e) = front.store.put_bridge_state(&portal.room_id, &wanted) {
        tracing::error!(room = %portal.room_id, "could not record the bridge state: {e}");
        return Outcome::Failed;
    }
    front.store.flush_soon();
    tracing::debug!(room = %portal.room_id, state_key = %wanted.state_key, "bridge state set");
    Outcome::Set
}

/// Checks every portal of an enabled network once (start-up), one room at a time so
/// the homeserver is not flooded.
pub async fn check_all(front: Arc<MatrixFront>) {
    let portals = match front.store.all_portals() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("could not read the portals: {e}");
            return;
        }
    };
    let (mut set, mut failed, mut checked) = (0, 0, 0);
    for portal in portals {
        if front.network_available(portal.network).is_err() {
            continue;
        }
        checked += 1;
        match ensure(&front, &portal).await {
            Outcome::Unchanged => {}
            Outcome::Set => set += 1,
            Outcome::Failed => failed += 1,
        }
    }
    tracing::info!(
        checked,
        set,
        failed,
        "bridge state of the existing portals checked"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Contact;

    #[tokio::test]
    async fn content_names_protocol_server_conversation_bot_and_creator() {
        let dir = tempfile::tempdir().unwrap();
        let front = crate::fronts::matrix::testing::offline_matrix_front(dir.path(), "").await;
        let contact = Contact {
            id: "bob".into(),
            display_name: Some("Bobby".into()),
            groups: vec![],
        };
        front
            .store
            .replace_buddies("@alice:localhost", NetworkId::Mig33, &[contact])
            .unwrap();
        let portal = |chat| PortalRecord {
            mxid: "@alice:localhost".into(),
            network: NetworkId::Mig33,
            chat,
            room_id: "!r:localhost".into(),
        };
        let dm = wanted(&front, &portal(ChatId::Direct("bob".into())));
        assert_eq!(dm.state_key, "net.retrobridge://mig33/127.0.0.1:9119/bob");
        assert_eq!(
            dm.content,
            json!({
                "bridgebot": "@retrobridgebot:localhost",
                "creator": "@alice:localhost",
                "protocol": { "id": "mig33", "displayname": "mig33" },
                "network": { "id": "127.0.0.1:9119", "displayname": "127.0.0.1:9119" },
                "channel": { "id": "bob", "displayname": "Bobby" },
            })
        );
        let unknown = wanted(&front, &portal(ChatId::Direct("carol".into())));
        assert_eq!(unknown.content["channel"]["displayname"], "carol");
        let room = wanted(&front, &portal(ChatId::Room("lobby".into())));
        assert_eq!(
            room.state_key,
            "net.retrobridge://mig33/127.0.0.1:9119/lobby"
        );
        assert_eq!(
            room.content["channel"],
            json!({ "id": "lobby", "displayname": "lobby" })
        );
        // The same portal gives the same record: nothing to send again.
        assert_eq!(dm, wanted(&front, &portal(ChatId::Direct("bob".into()))));
    }
}
