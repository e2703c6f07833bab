//! The Matrix management room: a room a permitted user shares with the bot, where they
//! control their logins by typing the commands of [`crate::core::commands`].
//!
//! Message bodies in this room are never logged: they may hold passwords.

use std::sync::Arc;

use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::OwnedEventId;

use super::client::NewRoom;
use super::{room_id, MatrixEvent, MatrixFront};
use crate::config::Permission;
use crate::core::commands::{self, help, REFUSAL};

/// The bot was invited somewhere: permitted users get a management room, others a refusal.
pub async fn handle_bot_invite(front: &Arc<MatrixFront>, room: &str, inviter: &str) {
    if front.is_ours(inviter) {
        // A ghost creating a DM portal invites the bot, which the portal code joins
        // itself: this is no management room, and refusing it would make the bot leave.
        return;
    }
    let bot = front.bot().to_owned();
    let rid = room_id(room);
    if let Err(e) = front.matrix.join(&bot, &rid).await {
        tracing::warn!(%room, "could not join after an invite: {e}");
        return;
    }
    if front.config.permission(inviter) == Permission::None {
        tracing::info!(%inviter, "refused a user without permission");
        let _ = front
            .matrix
            .send_message(
                &bot,
                &rid,
                RoomMessageEventContent::notice_plain(REFUSAL),
                None,
                None,
            )
            .await;
        let _ = front.matrix.leave(&bot, &rid).await;
        return;
    }
    // Passwords are typed in the management room, so it must be one where the bot can
    // remove them: a room the client made without giving the bot power is replaced by
    // one the bot makes (and this one only points there).
    let mut room = room.to_owned();
    let mut note = None;
    if !bot_can_redact(front, &room).await {
        match own_room(front, inviter).await {
            Ok(own) => {
                if let Err(e) = front.store.put_last_set(&room, MOVED_TO, own.as_str()) {
                    tracing::error!("could not record a management room's move: {e}");
                }
                reply(front, &room, &moved_here(own.as_str())).await;
                room = own.to_string();
            }
            Err(e) => {
                tracing::warn!(%room, "could not open a management room of the bot's own: {e:#}");
                note = Some(
                    "\n\nNote: I cannot remove messages in this room, so a password you send here stays readable. \
                     Give me moderator power (level 50) so I can remove the messages that hold passwords.",
                );
            }
        }
    }
    if let Err(e) = front.store.set_management_room(inviter, &room) {
        tracing::error!("could not record a management room: {e}");
        return;
    }
    let admin = front.config.permission(inviter) == Permission::Admin;
    let mut welcome = format!(
        "Hello! This is your management room for the legacy IM bridge.\n\n{}",
        help(None, admin)
    );
    welcome.extend(note);
    reply(front, &room, &welcome).await;
    let room = room.as_str();
    let encrypted = front
        .matrix
        .state(&rid, "m.room.encryption", "")
        .await
        .is_ok_and(|e| e.is_some());
    if encrypted {
        front.encrypted_room(room, inviter, true).await;
    }
}

/// `last_set` key, in a room the bot could not remove messages in: the management room
/// it opened instead.
const MOVED_TO: &str = "management moved to";

/// Whether `room` was replaced by a management room of the bot's own.
pub(crate) fn was_moved(store: &crate::store::Store, room: &str) -> bool {
    matches!(store.last_set(room, MOVED_TO), Ok(Some(_)))
}

fn moved_here(own: &str) -> String {
    format!(
        "I cannot remove messages in this room, so a password sent here would stay readable. I opened a \
         management room where I can, and invited you: https://matrix.to/#/{own} . Type your commands there; \
         I do not read them here."
    )
}

/// A management room where the bot can remove password messages: the user's present
/// one when it is such a room (another invitation to a room without that power makes
/// no new room), else a new one the bot owns.
async fn own_room(
    front: &MatrixFront,
    user: &str,
) -> anyhow::Result<matrix_sdk::ruma::OwnedRoomId> {
    if let Ok(Some(present)) = front.store.management_room(user) {
        if bot_can_redact(front, &present.room_id).await {
            return Ok(room_id(&present.room_id));
        }
    }
    open_own_room(front, user).await
}

/// A management room the bot owns (so it can remove password messages), with the user
/// invited.
async fn open_own_room(
    front: &MatrixFront,
    user: &str,
) -> anyhow::Result<matrix_sdk::ruma::OwnedRoomId> {
    let user = matrix_sdk::ruma::UserId::parse(user)?;
    let options = NewRoom {
        name: Some("Bridge management".into()),
        topic: Some("Your logins to the legacy IM networks: type `help`".into()),
        invite: vec![user.clone()],
        is_direct: true,
        power_users: vec![(user, 50)],
        ..NewRoom::default()
    };
    Ok(front.matrix.create_room(front.bot(), options).await?)
}

/// A message in a room the bot left for a management room of its own: it runs nothing.
/// A user of the bridge is pointed to their own management room (told when the message
/// held a password it cannot remove); anyone else gets no answer, so a room member
/// cannot make the bot talk or learn someone's room.
pub async fn moved_room_message(front: &MatrixFront, room: &str, event: &MatrixEvent) {
    if !was_moved(&front.store, room) {
        return;
    }
    let sender = event.sender.as_deref().unwrap_or_default();
    let Ok(Some(own)) = front.store.management_room(sender) else {
        return;
    };
    let mut text = moved_here(&own.room_id);
    if commands::holds_password(body_of(event)) {
        text.push_str(
            "\nYour message holds a password I cannot remove: delete it yourself (and think about changing \
             the password). I did not use it.",
        );
    }
    reply(front, room, &text).await;
}

/// A message event's `body` ("" when it has none).
fn body_of(event: &MatrixEvent) -> &str {
    event
        .content
        .get("body")
        .and_then(|b| b.as_str())
        .unwrap_or_default()
}

/// Whether the bot's power level in `room` allows redacting other people's events.
async fn bot_can_redact(front: &MatrixFront, room: &str) -> bool {
    let rid = room_id(room);
    if let Ok(Some(create)) = front.matrix.state_event(&rid, "m.room.create", "").await {
        if is_creator(&create, front.bot().as_str()) {
            return true;
        }
    }
    let Ok(Some(pl)) = front.matrix.state(&rid, "m.room.power_levels", "").await else {
        return false;
    };
    let level =
        |v: Option<&serde_json::Value>, default: i64| v.and_then(|v| v.as_i64()).unwrap_or(default);
    let bot_level = level(
        pl.get("users").and_then(|u| u.get(front.bot().as_str())),
        level(pl.get("users_default"), 0),
    );
    bot_level >= level(pl.get("redact"), 50)
}

/// Whether `user` is a creator of a room whose version gives creators unlimited power
/// (room version 12, MSC4289): the create event's sender and its `additional_creators`.
/// A direct chat of room version 12 lists its invitees there; their power levels are not
/// in `m.room.power_levels` at all.
fn is_creator(create: &serde_json::Value, user: &str) -> bool {
    let version = create["content"]["room_version"].as_str().unwrap_or("1");
    let creators_have_power =
        version.parse::<u32>().is_ok_and(|v| v >= 12) || version.starts_with("org.matrix.hydra");
    creators_have_power
        && (create["sender"] == user
            || create["content"]["additional_creators"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c == user)))
}

async fn reply(front: &MatrixFront, room: &str, text: &str) {
    let content = RoomMessageEventContent::notice_plain(text);
    if let Err(e) = front
        .matrix
        .send_message(front.bot(), &room_id(room), content, None, None)
        .await
    {
        tracing::warn!(%room, "could not reply in a management room: {e}");
    }
}

/// A message in a management room: the owner's commands are run; anyone else is told
/// whose room this is (or that they may not use the bridge).
pub async fn handle_message(
    front: &Arc<MatrixFront>,
    room: &str,
    owner: &str,
    sender: &str,
    event: &MatrixEvent,
) {
    if front.is_ours(sender) {
        return;
    }
    if front.config.permission(sender) == Permission::None {
        reply(front, room, REFUSAL).await;
        return;
    }
    if sender != owner {
        reply(front, room, &format!("This is {owner}'s management room. Invite me to a room of your own to use the bridge.")).await;
        return;
    }
    if event.content.get("msgtype").and_then(|m| m.as_str()) != Some("m.text") {
        return;
    }
    let body = body_of(event);
    // Remove a password from the room before anything else.
    let removed = if commands::holds_password(body) {
        Some(
            match event.event_id.as_deref().map(OwnedEventId::try_from) {
                Some(Ok(id)) => front
                    .matrix
                    .redact(front.bot(), &room_id(room), id, "contained a password")
                    .await
                    .is_ok(),
                _ => false,
            },
        )
    } else {
        None
    };
    let Some(mut answer) = commands::execute(front.core(), sender, body).await else {
        return;
    };
    if removed == Some(false) {
        answer.push_str(
            "\nI could not remove your message with the password: please delete it yourself.",
        );
    }
    reply(front, room, &answer).await;
}

#[cfg(test)]
mod tests {
    use super::is_creator;
    use serde_json::json;

    #[test]
    fn creators_of_version_12_rooms_have_unlimited_power() {
        let dm = json!({
            "sender": "@alice:x",
            "content": { "room_version": "12", "additional_creators": ["@bot:x"] }
        });
        assert!(is_creator(&dm, "@bot:x"));
        assert!(is_creator(&dm, "@alice:x"));
        assert!(!is_creator(&dm, "@eve:x"));
        let old = json!({
            "sender": "@alice:x",
            "content": { "room_version": "10", "additional_creators": ["@bot:x"] }
        });
        assert!(
            !is_creator(&old, "@bot:x"),
            "before v12 power levels decide"
        );
        let hydra =
            json!({ "sender": "@bot:x", "content": { "room_version": "org.matrix.hydra.11" } });
        assert!(is_creator(&hydra, "@bot:x"));
    }
}
