//! Matrix -> legacy in a portal: what each Matrix event becomes for the legacy contact.
//!
//! * Text, notices and emotes go as text (with HTML where the network has formatting).
//! * `/me nudges` goes as a nudge where the network has them (MSN).
//! * An edit goes as a correction, marked as such: "Correction: <new text>".
//! * A file, image, audio or video goes as a line with its name, size and a link the
//!   contact can open ([`crate::fronts::matrix::media`]); a location as its description and geo URI.
//! * What the legacy networks cannot show (reactions, removing a message, read receipts)
//!   earns a notice in the room, once per room and kind, so the user knows the contact
//!   did not see it.
//!
//! The message leaves the bridge's inbox only once the network accepted it.

use std::sync::Arc;

use serde_json::Value;

use super::media::MediaLinks;
use super::{MatrixEvent, MatrixFront};
use crate::core::{size_text, FileData, FormattedText, LoginCommand};
use crate::store::PortalRecord;

/// A Matrix event in a portal.
pub async fn handle_portal_event(
    front: &Arc<MatrixFront>,
    portal: &PortalRecord,
    sender: &str,
    event: &MatrixEvent,
) {
    if front.is_ours(sender) {
        return;
    }
    if !portal.chat.is_shared() && sender != portal.mxid {
        return; // only the portal's owner drives their login
    }
    let net = portal.network.display_name();
    match event.kind.as_str() {
        "m.room.message" => {}
        "m.reaction" => {
            return tell_once(
                front,
                portal,
                "reactions",
                &format!("{net} cannot show reactions: they are not sent to the other side."),
            )
        }
        "m.room.redaction" => {
            return tell_once(
                front,
                portal,
                "redactions",
                &format!(
                    "{net} cannot remove a message once it is sent: the other side still sees it."
                ),
            )
        }
        _ => return,
    }
    if is_nudge(&event.content) && portal.network.capabilities().nudges {
        let result = front.send_nudge(sender, portal.network, &portal.chat).await;
        if let Err(e) = result {
            front.notice(
                &portal.room_id,
                &format!("Your nudge was not delivered: {e}."),
            );
        }
        return;
    }
    let Some(text) = legacy_text(front.media.as_ref(), &event.content) else {
        tell_once(
            front,
            portal,
            "unsupported",
            &format!("This kind of message cannot be sent to {net}."),
        );
        return;
    };
    let result = match file_to_offer(front, portal, &event.content).await {
        Some(Ok(file)) => {
            front
                .send_file(sender, portal.network, &portal.chat, file, text)
                .await
        }
        Some(Err(why)) => {
            front.notice(
                &portal.room_id,
                &format!("Your file went as a link: {why}."),
            );
            front
                .send_text(sender, portal.network, &portal.chat, text)
                .await
        }
        None => {
            front
                .send_text(sender, portal.network, &portal.chat, text)
                .await
        }
    };
    tracing::debug!(room = %portal.room_id, event = ?event.event_id, ok = result.is_ok(), "sent to the network");
    match result {
        Ok(delivery) => {
            crate::metrics::sent_to_legacy(portal.network);
            for warning in delivery.warnings {
                front.notice(&portal.room_id, &warning);
            }
        }
        Err(e) => {
            crate::metrics::refused_by_legacy(portal.network);
            front.notice(
                &portal.room_id,
                &format!("Your message was not delivered: {e}."),
            )
        }
    }
}

/// A file the user sent, to offer as a transfer where the network carries files:
/// `None` for anything else (and encrypted files, which have no `url`); `Err` when it
/// cannot be fetched within the size limit (it then goes as a link).
async fn file_to_offer(
    front: &MatrixFront,
    portal: &PortalRecord,
    content: &Value,
) -> Option<Result<FileData, String>> {
    if !portal.network.capabilities().files
        || !matches!(portal.chat, crate::core::ChatId::Direct(_))
        || content["m.relates_to"]["rel_type"] == "m.replace"
        || !matches!(
            content["msgtype"].as_str(),
            Some("m.file" | "m.image" | "m.audio" | "m.video")
        )
    {
        return None;
    }
    let url = content["url"].as_str()?;
    let media = front.media.as_ref()?;
    let name = content["filename"]
        .as_str()
        .or(content["body"].as_str())
        .unwrap_or("file");
    let name = crate::core::sanitize::clean_file_name(name);
    let max = front.config.config.files.max_bytes;
    Some(
        media
            .download(url, max)
            .await
            .map(|data| FileData::new(&name, data)),
    )
}

/// `/me nudges` (or `/me nudge`, `/me nudges you`): a nudge where the network has them.
pub fn is_nudge(content: &Value) -> bool {
    content["msgtype"] == "m.emote"
        && content["m.relates_to"]["rel_type"] != "m.replace"
        && content["body"].as_str().is_some_and(|body| {
            let body = body.trim().trim_end_matches(['!', '.']).to_lowercase();
            matches!(body.as_str(), "nudges" | "nudge" | "nudges you")
        })
}

/// The text a legacy contact gets for a Matrix message (its `content`, as the sender
/// wrote it), or `None` when it has no form the networks can carry. A file gets a link
/// from `media` when the bridge gives links.
pub fn legacy_text(media: Option<&MediaLinks>, content: &Value) -> Option<FormattedText> {
    if content["m.relates_to"]["rel_type"] == "m.replace" {
        let new = &content["m.new_content"];
        let body = new["body"].as_str().or(content["body"].as_str())?;
        let body = body.strip_prefix("* ").unwrap_or(body);
        return Some(FormattedText::plain(format!("Correction: {body}")));
    }
    let body = content["body"].as_str().unwrap_or_default();
    let html = (content["format"] == "org.matrix.custom.html")
        .then(|| content["formatted_body"].as_str().map(str::to_owned))
        .flatten();
    match content["msgtype"].as_str()? {
        "m.text" | "m.notice" => Some(FormattedText {
            plain: body.to_owned(),
            html,
        }),
        "m.emote" => Some(FormattedText::plain(format!("* {body}"))),
        kind @ ("m.file" | "m.image" | "m.audio" | "m.video") => {
            let what = match kind {
                "m.image" => "an image",
                "m.audio" => "an audio file",
                "m.video" => "a video",
                _ => "a file",
            };
            let name = content["filename"].as_str().unwrap_or(body);
            let size = content["info"]["size"].as_u64().map(size_text);
            // An encrypted file has no `url`; an address outside the spec's grammar
            // gets no link (the bridge would fetch it with its own token).
            let link = match (content["url"].as_str(), media) {
                (None, _) => Err("an encrypted file"),
                (Some(_), None) => Err("no links to files are made"),
                (Some(url), Some(media)) => media
                    .link(url, name)
                    .ok_or("its address is not a valid Matrix file address"),
            };
            let mut text = format!("sent {what}: {name}");
            if let Some(size) = size {
                text.push_str(&format!(" ({size})"));
            }
            match link {
                Ok(link) => text.push_str(&format!(" {link}")),
                Err(why) => text.push_str(&format!(" (it cannot be downloaded from here: {why})")),
            }
            Some(FormattedText::plain(text))
        }
        "m.location" => {
            let geo = content["geo_uri"].as_str().unwrap_or_default();
            Some(FormattedText::plain(format!(
                "shared a location: {body} {geo}"
            )))
        }
        _ => None,
    }
}

/// "512 bytes", "245 KB", "1.2 MB".
/// A notice the room gets once for this topic.
fn tell_once(front: &Arc<MatrixFront>, portal: &PortalRecord, topic: &str, text: &str) {
    match front.store.first_time(&portal.room_id, topic) {
        Ok(true) => front.notice(&portal.room_id, text),
        Ok(false) => {}
        Err(e) => tracing::warn!("could not record a one-time notice: {e}"),
    }
}

/// Matrix typing notifications in portals go to the legacy network.
pub fn handle_typing(front: &MatrixFront, portal: &PortalRecord, event: &MatrixEvent) {
    let typing = event
        .content
        .get("user_ids")
        .and_then(|u| u.as_array())
        .is_some_and(|users| {
            users
                .iter()
                .any(|u| u.as_str() == Some(portal.mxid.as_str()))
        });
    if let Some(handle) = front.login_handle(&portal.mxid, portal.network) {
        let _ = handle.send(LoginCommand::Typing {
            chat: portal.chat.clone(),
            typing,
        });
    }
}

/// A read receipt of the portal's owner: the networks show none; the user hears it once.
pub fn handle_receipt(front: &Arc<MatrixFront>, portal: &PortalRecord, event: &MatrixEvent) {
    let read_by_owner = event.content.as_object().is_some_and(|events| {
        events.values().any(|receipts| {
            ["m.read", "m.read.private"]
                .iter()
                .any(|kind| receipts[kind].get(portal.mxid.as_str()).is_some())
        })
    });
    if read_by_owner {
        let net = portal.network.display_name();
        tell_once(
            front,
            portal,
            "receipts",
            &format!("{net} has no read receipts: the other side does not see when you read their messages."),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slash_me_nudges_is_a_nudge() {
        let emote = |body: &str| json!({"msgtype": "m.emote", "body": body});
        for yes in ["nudges", "Nudges!", " nudge ", "nudges you."] {
            assert!(is_nudge(&emote(yes)), "{yes:?}");
        }
        for no in ["nudges bob hard", "waves", ""] {
            assert!(!is_nudge(&emote(no)), "{no:?}");
        }
        assert!(!is_nudge(&json!({"msgtype": "m.text", "body": "nudges"})));
        // An edit into "nudges" is a correction, not a second nudge.
        assert!(!is_nudge(&json!({"msgtype": "m.emote", "body": "nudges",
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$e"}})));
    }

    #[test]
    fn what_legacy_contacts_get() {
        let text = |content: Value| legacy_text(None, &content);
        let plain = text(json!({"msgtype": "m.text", "body": "hi"})).unwrap();
        assert_eq!((plain.plain.as_str(), plain.html), ("hi", None));
        let html = text(json!({"msgtype": "m.notice", "body": "hi",
            "format": "org.matrix.custom.html", "formatted_body": "<b>hi</b>"}))
        .unwrap();
        assert_eq!(html.html.as_deref(), Some("<b>hi</b>"));
        assert_eq!(
            text(json!({"msgtype": "m.emote", "body": "waves"}))
                .unwrap()
                .plain,
            "* waves"
        );
        let edit = text(json!({"msgtype": "m.text", "body": "* hello",
            "m.new_content": {"msgtype": "m.text", "body": "hello"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$e"}}))
        .unwrap();
        assert_eq!(edit.plain, "Correction: hello");
        let file = text(json!({"msgtype": "m.file", "body": "report.pdf",
            "url": "mxc://hs/abc", "info": {"size": 2048}}))
        .unwrap();
        assert_eq!(
            file.plain,
            "sent a file: report.pdf (2 KB) (it cannot be downloaded from here: no links to files are made)"
        );
        let links = MediaLinks::new(
            vec![7; 32],
            "http://bridge.example",
            "http://hs",
            "t",
            std::time::Duration::from_secs(60),
        );
        let linked = legacy_text(
            Some(&links),
            &json!({"msgtype": "m.image", "body": "cat.png", "url": "mxc://hs/abc"}),
        )
        .unwrap();
        assert!(linked
            .plain
            .starts_with("sent an image: cat.png http://bridge.example/"));
        assert_eq!(
            text(json!({"msgtype": "m.location", "body": "here", "geo_uri": "geo:1,2"}))
                .unwrap()
                .plain,
            "shared a location: here geo:1,2"
        );
        // No form the networks carry: a poll, no msgtype, not an object.
        assert_eq!(text(json!({"msgtype": "m.poll", "body": "?"})), None);
        assert_eq!(text(json!({"body": "x"})), None);
        assert_eq!(text(json!([1, 2])), None);
        assert_eq!(text(json!("x")), None);
    }
}
