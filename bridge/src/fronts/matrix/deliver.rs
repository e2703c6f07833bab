//! What one outbox entry becomes in Matrix: a ghost's message, room membership changes,
//! or a bot notice in the conversation's room.

use std::sync::Arc;

use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, UserId};
use serde_json::json;

use super::portals::{ensure_ghost, ensure_member, ensure_portal, forget_member, join_bot};
use super::MatrixFront;
use crate::core::{ChatId, MessageKind};
use crate::fronts::matrix::client::{
    classify, Failure, FailureKind, MENTIONS, NUDGE_MARKER, TXN_MARKER,
};
use crate::model::{OutboxEntry, OutboxItem};
use crate::store::StoreError;

/// A message larger than the homeserver takes is split into parts of at most this many
/// bytes (Synapse refuses events over 64 KiB, envelope included).
const PART_BYTES: usize = 30_000;
/// How far back the room is searched for a send whose outcome is unknown.
const FIND_LIMIT: u32 = 100;

/// Turns an error from the portal/ghost helpers into a delivery failure.
pub(crate) fn failure(e: anyhow::Error) -> Failure {
    if let Some(http) = e.downcast_ref::<matrix_sdk::HttpError>() {
        return classify(http);
    }
    if e.downcast_ref::<StoreError>().is_some() {
        // The disk, not the homeserver: try again later rather than drop.
        return Failure::transient(format!("{e:#}"));
    }
    Failure::permanent(format!("{e:#}"))
}

/// Delivers an entry; returns the event ids the homeserver gave. `uncertain`: an earlier
/// attempt may have reached the homeserver (look for it before sending again).
pub(crate) async fn deliver(
    front: &Arc<MatrixFront>,
    key: &[u8],
    entry: &mut OutboxEntry,
    uncertain: bool,
) -> Result<Vec<String>, Failure> {
    let owner = UserId::parse(&entry.user).map_err(|e| Failure::permanent(e.to_string()))?;
    let net = entry.network;
    let room = ensure_portal(front, &owner, net, &entry.chat, None)
        .await
        .map_err(failure)?;
    match entry.item.clone() {
        OutboxItem::Message {
            from,
            kind,
            plain,
            html,
            sent_at,
            offline,
        } => {
            let ghost = speaker(front, entry, &room, &from).await?;
            let (plain, html) = offline_note(plain, html, offline, sent_at);
            let message = Message {
                ghost: &ghost,
                room: &room,
                kind,
                sent_at,
            };
            match send(
                front,
                &message,
                &entry.txn_id,
                &plain,
                html.as_deref(),
                uncertain,
            )
            .await
            {
                Ok(id) => Ok(vec![id.to_string()]),
                Err(f) if f.kind == FailureKind::TooLarge => {
                    send_parts(front, &message, key, entry, &plain, uncertain).await
                }
                Err(f)
                    if f.code.as_deref() == Some("M_FORBIDDEN")
                        && !matches!(entry.chat, ChatId::Direct(_)) =>
                {
                    // Our record of the ghost's membership was wrong: join and retry.
                    forget_member(front, &room, &ghost);
                    ensure_member(front, &room, &ghost).await.map_err(failure)?;
                    send(
                        front,
                        &message,
                        &entry.txn_id,
                        &plain,
                        html.as_deref(),
                        uncertain,
                    )
                    .await
                    .map(|id| vec![id.to_string()])
                }
                Err(f) => Err(f),
            }
        }
        OutboxItem::File {
            from,
            file,
            name,
            mime,
            size,
            sent_at,
        } => {
            let ghost = speaker(front, entry, &room, &from).await?;
            let message = Message {
                ghost: &ghost,
                room: &room,
                kind: MessageKind::Text,
                sent_at,
            };
            if uncertain {
                if let Some(id) = find_earlier(front, &message, &entry.txn_id).await? {
                    return Ok(vec![id.to_string()]);
                }
            }
            let data = front
                .store
                .file(file)
                .map_err(|e| Failure::transient(e.to_string()))?
                .ok_or_else(|| Failure::permanent("the file is no longer kept"))?;
            // Uploaded as the contact's ghost: the file is theirs. Sent again after a
            // failure, an upload only costs a copy in the media store.
            let url = front
                .matrix
                .upload(&ghost, data, &mime, &name)
                .await
                .map_err(|e| classify(&e))?;
            let content = file_content(&name, &mime, size, url.as_str(), &entry.txn_id);
            front
                .matrix
                .send_message_json(&ghost, &room, &content, &entry.txn_id, sent_at)
                .await
                .map(|id| vec![id.to_string()])
                .map_err(|e| classify(&e))
        }
        OutboxItem::Members { members } => {
            super::portals::show_members(front, &entry.user, net, &entry.chat, &room, &members)
                .await
                .map_err(failure)?;
            Ok(Vec::new())
        }
        OutboxItem::Left => {
            super::portals::show_left(front, &entry.user, net, &entry.chat, &room)
                .await
                .map_err(failure)?;
            Ok(Vec::new())
        }
        OutboxItem::Notice { text } => {
            let content = json!({ "msgtype": "m.notice", "body": text, TXN_MARKER: entry.txn_id, MENTIONS: {} });
            let bot = front.bot().to_owned();
            let sent = match front
                .matrix
                .send_message_json(&bot, &room, &content, &entry.txn_id, None)
                .await
            {
                Err(e) if classify(&e).kind == FailureKind::Permanent => {
                    join_bot(front, room.as_str()).await;
                    front
                        .matrix
                        .send_message_json(&bot, &room, &content, &entry.txn_id, None)
                        .await
                }
                other => other,
            };
            sent.map(|id| vec![id.to_string()])
                .map_err(|e| classify(&e))
        }
    }
}

/// The ghost of `from`, in the room (a DM's ghost is in it from its creation).
async fn speaker(
    front: &Arc<MatrixFront>,
    entry: &OutboxEntry,
    room: &OwnedRoomId,
    from: &str,
) -> Result<OwnedUserId, Failure> {
    let ghost = ensure_ghost(front, entry.network, from, None)
        .await
        .map_err(failure)?;
    if !matches!(entry.chat, ChatId::Direct(_)) {
        ensure_member(front, room, &ghost).await.map_err(failure)?;
    }
    Ok(ghost)
}

struct Message<'a> {
    ghost: &'a UserId,
    room: &'a OwnedRoomId,
    kind: MessageKind,
    sent_at: Option<u64>,
}

/// Sends one message event with a fixed transaction id; when an earlier attempt may
/// have gone through, looks for it first (homeservers forget appservice transaction ids
/// when they restart, so the same id alone does not prevent a double).
async fn send(
    front: &MatrixFront,
    m: &Message<'_>,
    txn_id: &str,
    plain: &str,
    html: Option<&str>,
    uncertain: bool,
) -> Result<OwnedEventId, Failure> {
    if uncertain {
        if let Some(id) = find_earlier(front, m, txn_id).await? {
            return Ok(id);
        }
    }
    let msgtype = match m.kind {
        MessageKind::Text => "m.text",
        MessageKind::Notice => "m.notice",
        // Shown as "* Bob nudged you"; the marker lets a client or a bot tell it apart.
        MessageKind::Emote | MessageKind::Nudge => "m.emote",
    };
    let mut content =
        json!({ "msgtype": msgtype, "body": plain, TXN_MARKER: txn_id, MENTIONS: {} });
    if m.kind == MessageKind::Nudge {
        content[NUDGE_MARKER] = json!(true);
    }
    if let Some(html) = html {
        content["format"] = json!("org.matrix.custom.html");
        content["formatted_body"] = json!(html);
    }
    front
        .matrix
        .send_message_json(m.ghost, m.room, &content, txn_id, m.sent_at)
        .await
        .map_err(|e| classify(&e))
}

/// The event an earlier attempt with this transaction id sent, if the room has it.
async fn find_earlier(
    front: &MatrixFront,
    m: &Message<'_>,
    txn_id: &str,
) -> Result<Option<OwnedEventId>, Failure> {
    let found = front
        .matrix
        .find_sent(m.ghost, m.room, txn_id, FIND_LIMIT)
        .await
        .map_err(|e| classify(&e))?;
    if found.is_some() {
        tracing::debug!(%txn_id, "an earlier attempt had reached the homeserver");
    }
    Ok(found)
}

/// A file's message: `m.image`, `m.video` or `m.audio` when its type says so (clients
/// show those in place), `m.file` otherwise.
fn file_content(name: &str, mime: &str, size: u64, url: &str, txn_id: &str) -> serde_json::Value {
    let msgtype = match mime.split('/').next() {
        Some("image") if mime != "image/svg+xml" => "m.image",
        Some("video") => "m.video",
        Some("audio") => "m.audio",
        _ => "m.file",
    };
    json!({
        "msgtype": msgtype,
        "body": name,
        "filename": name,
        "url": url,
        "info": { "mimetype": mime, "size": size },
        TXN_MARKER: txn_id,
        MENTIONS: {},
    })
}

/// `M_TOO_LARGE`: sends the text in parts (plain text), remembering progress in the
/// entry so a retry continues where it stopped.
async fn send_parts(
    front: &MatrixFront,
    m: &Message<'_>,
    key: &[u8],
    entry: &mut OutboxEntry,
    plain: &str,
    uncertain: bool,
) -> Result<Vec<String>, Failure> {
    let parts = split(plain, PART_BYTES);
    let total = parts.len();
    let mut ids = Vec::new();
    for (i, part) in parts.iter().enumerate().skip(entry.parts_done as usize) {
        let text = format!("{part}\n({}/{total})", i + 1);
        let txn = format!("{}.{i}", entry.txn_id);
        let id = send(front, m, &txn, &text, None, uncertain).await?;
        ids.push(id.to_string());
        entry.parts_done = i as u32 + 1;
        if let Err(e) = front.store.outbox_update(key, entry) {
            tracing::warn!("could not record the progress of a split message: {e}");
        }
    }
    Ok(ids)
}

/// Splits text into parts of at most `max` bytes, at a line break or space when one is
/// near the end of a part, never inside a character.
pub(crate) fn split(text: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let window = &rest[..cut];
        let nice = window
            .rfind('\n')
            .or_else(|| window.rfind(' '))
            .filter(|&at| at > cut / 2);
        let at = nice.map_or(cut, |at| at + 1);
        parts.push(&rest[..at]);
        rest = &rest[at..];
    }
    parts.push(rest);
    parts
}

/// Marks a message the server stored while the user was offline, with its time.
fn offline_note(
    plain: String,
    html: Option<String>,
    offline: bool,
    sent_at: Option<u64>,
) -> (String, Option<String>) {
    if !offline {
        return (plain, html);
    }
    let when = sent_at
        .map(crate::core::legacy::format_time)
        .unwrap_or_else(|| "earlier".into());
    (
        format!("{plain}\n(sent {when} while you were offline)"),
        html.map(|h| format!("{h}<br><em>(sent {when} while you were offline)</em>")),
    )
}

#[cfg(test)]
mod tests {
    use super::{file_content, split};

    #[test]
    fn files_are_shown_in_place_only_when_their_type_is_media() {
        let png = file_content("a.png", "image/png", 3, "mxc://h/x", "t1");
        assert_eq!(png["msgtype"], "m.image");
        assert_eq!(png["info"]["size"], 3);
        assert_eq!(png["body"], "a.png");
        let svg = file_content("a.svg", "image/svg+xml", 3, "mxc://h/x", "t1");
        assert_eq!(svg["msgtype"], "m.file");
        let zip = file_content("a.zip", "application/zip", 3, "mxc://h/x", "t1");
        assert_eq!(zip["msgtype"], "m.file");
        assert_eq!(zip["m.mentions"], serde_json::json!({}));
    }

    #[test]
    fn splits_at_spaces_and_never_inside_a_character() {
        let text = "aaaa bbbb cccc";
        assert_eq!(split(text, 6), vec!["aaaa ", "bbbb ", "cccc"]);
        let snowmen = "☃☃☃☃"; // 3 bytes each
        assert_eq!(split(snowmen, 7), vec!["☃☃", "☃☃"]);
        assert_eq!(split("short", 100), vec!["short"]);
        let long = "x".repeat(100);
        let parts = split(&long, 30);
        assert!(parts.iter().all(|p| p.len() <= 30));
        assert_eq!(parts.concat(), long);
    }
}
