//! What a switchboard message beyond text and typing becomes for the user: a nudge
//! crosses as a nudge; what the bridge cannot carry yet (winks, voice clips, ink, file
//! offers, application invitations) becomes a line from the contact saying what was
//! sent, so nothing a contact sends vanishes without a word. Control traffic (client
//! capabilities, keepalives, emoticon and picture transfers) stays silent.

use msn_proto::p2p::{self, P2pMessageRef};
use msn_proto::{datacast, slp, FileContext, Message, MessageKind as MsnKind, SlpMessage};

use crate::core::{size_text, MessageKind};

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
                p2p::CONTENT_TYPE_P2P => file_offer(message).map(|t| (MessageKind::Notice, t)),
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
    Some(match field("Application-File") {
        Some(name) => format!(
            "(offered the file {}{}; the bridge cannot receive MSN files yet)",
            clean_name(&name),
            field("Application-FileSize")
                .and_then(|s| s.parse::<u64>().ok())
                .map(|n| format!(" ({})", size_text(n)))
                .unwrap_or_default()
        ),
        None => format!(
            "(invited you to {}, which cannot be used here)",
            field("Application-Name")
                .map(|n| clean_name(&n))
                .unwrap_or_else(|| "an application".to_owned())
        ),
    })
}

/// A P2P (MSNSLP) file transfer INVITE; display-picture requests and the transfer's
/// other packets are not the user's business.
fn file_offer(message: &Message) -> Option<String> {
    let payload = message.to_bytes();
    let packet = P2pMessageRef::parse(&payload).ok()?;
    if packet.header.session_id != 0 {
        return None; // data of an open session, not an invitation
    }
    let slp = SlpMessage::parse(packet.body).ok()?;
    if slp.method() != Some("INVITE") || slp.euf_guid() != Some(slp::EUF_GUID_FILE) {
        return None;
    }
    let context = slp.context()?.ok()?;
    let file = FileContext::parse(&context).ok()?;
    Some(format!(
        "(offered the file {} ({}); the bridge cannot receive MSN files yet)",
        clean_name(&file.name),
        size_text(file.file_size)
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
    use msn_proto::{P2pHeader, P2pMessage};

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
    fn invitations_name_the_file_or_the_application() {
        let offer = b"Application-Name: File Transfer\r\nApplication-GUID: {5D3E02AB-6190-11d3-BBBB-00C04F795683}\r\nInvitation-Command: INVITE\r\nInvitation-Cookie: 12\r\nApplication-File: C:\\pics\\cat\x07.jpg\r\nApplication-FileSize: 204800\r\n\r\n";
        assert_eq!(
            shown(&raw("text/x-msmsgsinvite; charset=UTF-8", offer)),
            Some((
                MessageKind::Notice,
                "(offered the file cat.jpg (200 KB); the bridge cannot receive MSN files yet)"
                    .into()
            ))
        );
        let game = b"Application-Name: Tic Tac Toe\r\nInvitation-Command: INVITE\r\n\r\n";
        assert_eq!(
            shown(&raw("text/x-msmsgsinvite", game)).map(|(_, t)| t),
            Some("(invited you to Tic Tac Toe, which cannot be used here)".into())
        );
        let cancel = b"Invitation-Command: CANCEL\r\nCancel-Code: TIMEOUT\r\n\r\n";
        assert_eq!(shown(&raw("text/x-msmsgsinvite", cancel)), None);
    }

    #[test]
    fn a_p2p_file_offer_is_named_and_other_p2p_is_not() {
        let context = FileContext::new("holiday.png", 3_500_000);
        let invite = SlpMessage::file_invite(
            "me@example.com",
            "bob@example.com",
            "{A0D624A6-6C0C-4283-A9E0-BC97B4B46D32}",
            "{3C2A2FE8-E59F-4A2C-8D4F-1D2B8F9E0C11}",
            7,
            &context.to_bytes(),
        );
        let packet = P2pMessage::new(
            "me@example.com",
            P2pHeader {
                id: 1,
                total_size: invite.to_bytes().len() as u64,
                ack_id: 99,
                ..P2pHeader::default()
            },
            &invite.to_bytes(),
            0,
        );
        assert_eq!(
            shown(&packet.to_mime()).map(|(_, t)| t),
            Some(
                "(offered the file holiday.png (3.3 MB); the bridge cannot receive MSN files yet)"
                    .into()
            )
        );
        // An ack, or garbage under the P2P content type: nothing.
        let ack = P2pMessage::new("me@example.com", packet.header.ack(5), &[], 0);
        assert_eq!(shown(&ack.to_mime()), None);
        assert_eq!(shown(&raw(p2p::CONTENT_TYPE_P2P, b"\x00\x01")), None);
    }
}
