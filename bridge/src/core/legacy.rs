//! The legacy -> Matrix direction: what each [`NetworkEvent`] becomes.

use std::sync::Arc;

use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::presence::PresenceState as MatrixPresence;
use matrix_sdk::ruma::UserId;

use super::portals::{add_ghosts_to_space, ensure_ghost, ensure_portal};
use super::{Bridge, ChatId, LoginKey, LoginState, MessageKind, NetworkEvent, PresenceState};

pub async fn handle_network_event(bridge: &Arc<Bridge>, key: &LoginKey, event: NetworkEvent) {
    if let Err(e) = handle(bridge, key, event).await {
        tracing::warn!(mxid = %key.mxid, network = %key.network, "could not bridge a network event: {e:#}");
    }
}

async fn handle(bridge: &Arc<Bridge>, key: &LoginKey, event: NetworkEvent) -> anyhow::Result<()> {
    let net = key.network;
    let mxid = UserId::parse(&key.mxid)?;
    match event {
        NetworkEvent::Connected { self_profile } => {
            bridge.set_login_state(key, LoginState::Connected);
            super::portals::ensure_space(bridge, &key.mxid, net).await?;
            let name = self_profile
                .display_name
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let text = format!(
                "Connected to {} as {}{name}.",
                net.display_name(),
                self_profile.id
            );
            bridge.notify(&key.mxid, &text).await;
        }
        NetworkEvent::Disconnected { reason, will_retry } => {
            bridge.set_login_state(key, LoginState::Disconnected(reason.clone()));
            let next = if will_retry {
                " Reconnecting…".to_owned()
            } else {
                super::commands::mark_stopped(bridge, key, &reason).await?;
                format!(" Send `reconnect {net}` to sign in here again.")
            };
            let text = format!("Disconnected from {}: {reason}.{next}", net.display_name());
            bridge.notify(&key.mxid, &text).await;
        }
        NetworkEvent::LoginFailed { reason } => {
            bridge.stop_login(&key.mxid, net);
            bridge.store.remove_login(&key.mxid, net)?;
            // Durable before the user hears of it: a refused login must not come back
            // after a crash (sled only writes on flush).
            bridge.store.flush().await?;
            bridge
                .notify(
                    &key.mxid,
                    &format!("Login to {} failed: {reason}", net.display_name()),
                )
                .await;
        }
        NetworkEvent::ContactList { groups, contacts } => {
            bridge.store.replace_groups(&key.mxid, net, &groups)?;
            let new = bridge.store.replace_buddies(&key.mxid, net, &contacts)?;
            let mut ghosts = Vec::new();
            for contact in &contacts {
                let ghost =
                    ensure_ghost(bridge, net, &contact.id, contact.display_name.as_deref()).await?;
                if new.iter().any(|n| n.id == contact.id) {
                    ghosts.push(ghost);
                }
            }
            bridge.store.flush().await?;
            add_ghosts_to_space(bridge, &key.mxid, net, &ghosts).await?;
            super::portals::show_groups_in_space(bridge, &key.mxid, net, &groups, &contacts)
                .await?;
        }
        NetworkEvent::ContactChanged(contact) => {
            let known = bridge
                .store
                .buddies(&key.mxid, net)?
                .iter()
                .any(|c| c.id == contact.id);
            bridge.store.put_buddy(&key.mxid, net, &contact)?;
            let ghost =
                ensure_ghost(bridge, net, &contact.id, contact.display_name.as_deref()).await?;
            if !known {
                add_ghosts_to_space(bridge, &key.mxid, net, &[ghost]).await?;
            }
        }
        NetworkEvent::Presence { who, presence } => {
            let ghost = bridge.ghost_id(net, &who);
            let state = match presence.state {
                PresenceState::Online => MatrixPresence::Online,
                PresenceState::Away | PresenceState::Busy => MatrixPresence::Unavailable,
                PresenceState::Invisible | PresenceState::Offline => MatrixPresence::Offline,
            };
            super::portals::ensure_ghost_registered(bridge, &ghost).await?;
            bridge
                .matrix
                .set_presence(&ghost, state, presence.status)
                .await?;
        }
        NetworkEvent::Message {
            chat,
            from,
            id,
            kind,
            text,
            sent_at,
            offline,
        } => {
            if let ChatId::Room(room) = &chat {
                // Every bridged user in a chatroom receives each message: one relays it.
                if bridge
                    .relay_for(net, room)
                    .is_some_and(|relay| relay != key.mxid)
                {
                    return Ok(());
                }
                if bridge.take_echo(net, room, &from, &text.plain) {
                    return Ok(());
                }
            }
            if let Some(id) = &id {
                if !bridge.store.record_legacy_message(&key.mxid, net, id)? {
                    tracing::debug!("legacy message delivered twice; bridged once");
                    return Ok(());
                }
            }
            let room = ensure_portal(bridge, &mxid, net, &chat, None).await?;
            let ghost = ensure_ghost(bridge, net, &from, None).await?;
            if !matches!(chat, ChatId::Direct(_)) {
                bridge.matrix.invite(bridge.bot(), &room, &ghost).await.ok();
                bridge.matrix.join(&ghost, &room).await?;
            }
            let mut plain = text.plain;
            let mut html = text.html;
            if offline {
                let when = sent_at.map(format_time).unwrap_or_else(|| "earlier".into());
                plain = format!("{plain}\n(sent {when} while you were offline)");
                html =
                    html.map(|h| format!("{h}<br><em>(sent {when} while you were offline)</em>"));
            }
            let content = match (kind, html) {
                (MessageKind::Notice, Some(h)) => RoomMessageEventContent::notice_html(plain, h),
                (MessageKind::Notice, None) => RoomMessageEventContent::notice_plain(plain),
                (MessageKind::Emote, Some(h)) => RoomMessageEventContent::emote_html(plain, h),
                (MessageKind::Emote, None) => RoomMessageEventContent::emote_plain(plain),
                (MessageKind::Text, Some(h)) => RoomMessageEventContent::text_html(plain, h),
                (MessageKind::Text, None) => RoomMessageEventContent::text_plain(plain),
            };
            bridge
                .matrix
                .send_message(&ghost, &room, content, None, sent_at)
                .await?;
            bridge.store.flush().await?;
        }
        NetworkEvent::Typing { chat, who, typing } => {
            if let Some(portal) = bridge.store.portal(&key.mxid, net, &chat)? {
                let ghost = bridge.ghost_id(net, &who);
                bridge
                    .matrix
                    .set_typing(&ghost, &super::room_id(&portal.room_id), typing)
                    .await?;
            }
        }
        NetworkEvent::RoomMembers { chat, members } => {
            let room = ensure_portal(bridge, &mxid, net, &chat, None).await?;
            if let ChatId::Room(name) = &chat {
                bridge.store.add_chatroom_member(&key.mxid, net, name)?;
                bridge.store.flush().await?;
                bridge.matrix.invite(bridge.bot(), &room, &mxid).await.ok();
            }
            // Bridged users appear in Matrix as themselves, not as ghosts. In a shared
            // chatroom that means every bridged member's legacy id, not only this login's:
            // otherwise each login would add the others' ghosts and remove them again
            // when the next login's list (without its own id) arrives.
            let mut bridged: Vec<String> =
                bridge.legacy_id_of(&key.mxid, net).into_iter().collect();
            if let ChatId::Room(name) = &chat {
                for user in bridge.store.chatroom_members(net, name)? {
                    bridged.extend(bridge.legacy_id_of(&user, net));
                }
            }
            let others: Vec<_> = members
                .iter()
                .filter(|m| !bridged.contains(&m.id))
                .collect();
            let ids: Vec<String> = others.iter().map(|m| m.id.clone()).collect();
            let owner = if chat.is_shared() {
                ""
            } else {
                key.mxid.as_str()
            };
            for gone in bridge.update_room_members(owner, net, &chat, &ids) {
                bridge
                    .matrix
                    .leave(&bridge.ghost_id(net, &gone), &room)
                    .await
                    .ok();
            }
            for member in others {
                let ghost =
                    ensure_ghost(bridge, net, &member.id, member.display_name.as_deref()).await?;
                bridge.matrix.invite(bridge.bot(), &room, &ghost).await.ok();
                bridge.matrix.join(&ghost, &room).await?;
            }
        }
        NetworkEvent::RoomLeft { chat } => {
            let Some(portal) = bridge.store.portal(&key.mxid, net, &chat)? else {
                return Ok(());
            };
            let room = super::room_id(&portal.room_id);
            if let ChatId::Room(name) = &chat {
                bridge.store.remove_chatroom_member(&key.mxid, net, name)?;
                bridge.store.flush().await?;
                bridge
                    .matrix
                    .kick(bridge.bot(), &room, &mxid, "left the chatroom")
                    .await
                    .ok();
            } else {
                let text = format!("This {} conversation has ended.", net.display_name());
                super::portals::notice(bridge, &portal.room_id, &text).await;
            }
        }
        NetworkEvent::Notice { text } => {
            bridge
                .notify(&key.mxid, &format!("{}: {text}", net.display_name()))
                .await;
        }
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM UTC` for a time in milliseconds since the epoch.
pub fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date library for one line.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_times() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(
            super::format_time(951_782_400_000 + 3_723_000),
            "2000-02-29 01:02 UTC"
        );
    }
}
