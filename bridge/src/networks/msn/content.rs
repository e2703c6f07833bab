//! What a switchboard message beyond text and typing becomes for the user: a nudge
//! crosses as a nudge; what the bridge cannot carry (winks, voice clips, ink,
//! invitations to applications other than file transfer) becomes a line from the
//! contact saying what was sent, so nothing a contact sends vanishes without a word.
//! Control traffic (client capabilities, keepalives, emoticons) stays silent; pictures
//! and files are the transfers' (`transfers.rs`).

use msn_proto::{datacast, Message, MessageKind as MsnKind};

use crate::core::MessageKind;

/// A file name longer than this is cut in what the user reads.
const MAX_NAME_CHARS: usize = 120;

/// What `message` shows the user (kind and text, from the contact), or `None` when it is
/// control traffic or handled elsewhere (text, typing).
pub fn shown(message: &Message) -> Option<(MessageKind, String)> {
    let notice = |text: &str| Some((MessageKind::Notice, format!("({text})")));
    match message.kind() {
        MsnKind::Text { .. } | MsnKind::Typing { .. } => None,
        MsnKind::Datacast { id } => match id {
            datacast::NUDGE => Some((MessageKind::Nudge, "nudged you".to_owned())),
            datacast::WINK => notice("sent a wink, which cannot be shown here"),
            datacast::VOICE_CLIP => notice("sent a voice clip, which cannot be played here"),
            _ => None,
        },
        MsnKind::Other { content_type } => {
            let media = content_type.split(';').next().unwrap_or("").trim_ascii();
            match media.to_ascii_lowercase().as_str() {
                "image/gif" | "application/x-ms-ink" => {
                    notice("sent a handwritten message (ink), which cannot be shown here")
                }
                "text/x-msmsgsinvite" => {
                    invitation(&message.body).map(|t| (MessageKind::Notice, t))
                }
                _ => None,
            }
        }
    }
}

/// An MSNFTP or other application invitation (`Invitation-Command: INVITE`); its
/// answers and cancellations say nothing to the user.
fn invitation(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    if !field("Invitation-Command")?.eq_ignore_ascii_case("INVITE") {
        return None;
    }
    Some(format!(
        "(invited you to {}, which cannot be used here)",
        field("Application-Name")
            .map(|n| clean_name(&n))
            .unwrap_or_else(|| "an application".to_owned())
    ))
}

/// A file name as the user reads it: its last path part, without control characters,
/// cut to a length.
fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.is_empty() {
        return "(no name)".to_owned();
    }
    match clean.char_indices().nth(MAX_NAME_CHARS) {
        Some((i, _)) => format!("{}…", &clean[..i]),
        None => clean.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(content_type: &str, body: &[u8]) -> Message {
        Message {
            headers: vec![
                ("MIME-Version".into(), "1.0".into()),
                ("Content-Type".into(), content_type.into()),
            ],
            body: body.to_vec(),
        }
    }

    #[test]
    fn nudges_cross_and_what_cannot_is_named() {
        assert_eq!(
            shown(&Message::datacast(datacast::NUDGE)),
            Some((MessageKind::Nudge, "nudged you".into()))
        );
        let wink = shown(&raw(
            "text/x-msnmsgr-datacast",
            b"ID: 2\r\nData: <msnobj/>\r\n\r\n",
        ));
        assert_eq!(
            wink,
            Some((
                MessageKind::Notice,
                "(sent a wink, which cannot be shown here)".into()
            ))
        );
        let ink = shown(&raw("image/gif", b"base64:R0lGODlh"));
        assert!(ink.is_some_and(|(k, t)| k == MessageKind::Notice && t.contains("ink")));
        // Control traffic stays silent.
        for quiet in [
            "text/x-clientcaps",
            "text/x-keepalive",
            "text/x-mms-emoticon",
        ] {
            assert_eq!(shown(&raw(quiet, b"x")), None, "{quiet}");
        }
        assert_eq!(shown(&Message::text("hi", None)), None);
    }

    #[test]
    fn invitations_name_the_application() {
        let game = b"Application-Name: Tic Tac Toe\r\nInvitation-Command: INVITE\r\n\r\n";
        assert_eq!(
            shown(&raw("text/x-msmsgsinvite", game)).map(|(_, t)| t),
            Some("(invited you to Tic Tac Toe, which cannot be used here)".into())
        );
        let cancel = b"Invitation-Command: CANCEL\r\nCancel-Code: TIMEOUT\r\n\r\n";
        assert_eq!(shown(&raw("text/x-msmsgsinvite", cancel)), None);
    }
}
