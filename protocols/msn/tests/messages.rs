//! MIME messages, formats and text splitting.

use msn_proto::*;

#[test]
fn text_message_byte_exact() {
    let format = TextFormat {
        font: "Comic Sans MS".into(),
        bold: true,
        italic: false,
        underline: true,
        strikethrough: false,
        color: 0x0000ff,
        charset: 0,
        pitch_family: 0x22,
    };
    let m = Message::text("héllo", Some(&format));
    let expected = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Comic%20Sans%20MS; EF=BU; CO=ff; CS=0; PF=22\r\n\r\nhéllo";
    assert_eq!(m.to_bytes(), expected.as_bytes());
    let back = Message::parse(expected.as_bytes()).unwrap();
    assert_eq!(back, m);
    assert_eq!(
        back.kind(),
        MessageKind::Text {
            text: "héllo".into(),
            format: Some(format)
        }
    );
}

#[test]
fn plain_text_without_format() {
    let m = Message::text("hi", None);
    assert_eq!(
        m.to_bytes(),
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhi"
    );
    assert_eq!(
        m.kind(),
        MessageKind::Text {
            text: "hi".into(),
            format: None
        }
    );
}

#[test]
fn typing_byte_exact() {
    let m = Message::typing("a@b.com");
    let wire =
        b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: a@b.com\r\n\r\n";
    assert_eq!(m.to_bytes(), wire);
    // Real clients add a CRLF body; both read as typing.
    let mut real = wire.to_vec();
    real.extend_from_slice(b"\r\n");
    let r = MessageRef::parse(&real).unwrap();
    assert!(r.is_typing());
    assert_eq!(r.typing_user(), Some("a@b.com"));
    assert_eq!(
        Message::parse(&real).unwrap().kind(),
        MessageKind::Typing {
            user: "a@b.com".into()
        }
    );
}

#[test]
fn headers_are_case_insensitive_and_unknown_types_kept() {
    let wire = b"mime-version: 1.0\r\ncontent-TYPE: text/x-msmsgsinvite; charset=UTF-8\r\n\r\nInvitation-Command: INVITE\r\n";
    let r = MessageRef::parse(wire).unwrap();
    assert_eq!(
        r.header("Content-Type"),
        Some("text/x-msmsgsinvite; charset=UTF-8")
    );
    assert_eq!(r.media_type(), Some("text/x-msmsgsinvite"));
    let m = r.to_owned();
    assert_eq!(
        m.kind(),
        MessageKind::Other {
            content_type: "text/x-msmsgsinvite; charset=UTF-8".into()
        }
    );
    assert_eq!(m.body, b"Invitation-Command: INVITE\r\n");
}

#[test]
fn liberal_mime() {
    let r = MessageRef::parse(b"Content-Type: text/plain\n\nbody\r\n\r\nmore").unwrap();
    assert!(r.is_text());
    assert_eq!(r.text(), "body\r\n\r\nmore");
    let r = MessageRef::parse(b"Content-Type: text/plain").unwrap();
    assert_eq!(r.body, b"");
    assert!(MessageRef::parse(b"\xff: x\r\n\r\n").is_err());
}

#[test]
fn split_respects_the_payload_limit_and_char_boundaries() {
    let format = TextFormat::default();
    let text: String = "añ€😀 word ".repeat(400);
    let chunks = split_text(&text, Some(&format));
    assert!(chunks.len() > 1);
    assert_eq!(chunks.concat(), text);
    for c in &chunks {
        assert!(Message::text(c, Some(&format)).to_bytes().len() <= MAX_MSG_PAYLOAD);
    }
    assert_eq!(split_text("short", None), ["short"]);
    assert_eq!(split_text("", None), [""]);
    let exact = "x".repeat(MAX_MSG_PAYLOAD - Message::text("", None).to_bytes().len());
    assert_eq!(split_text(&exact, None).len(), 1);
    assert_eq!(split_text(&format!("{exact}y"), None).len(), 2);
}

/// A nudge as Messenger 6.x sends it: the documented `MSG <trid> N 69` with a body of
/// `ID: 1` and a blank line (MSNPiki "Nudges"; libpurple `msn_switchboard_send_nudge`,
/// aMSN `::MSN::SendNudge`: same headers, same 69-byte payload).
#[test]
fn nudge_byte_exact() {
    let m = Message::datacast(datacast::NUDGE);
    let expected: &[u8] =
        b"MIME-Version: 1.0\r\nContent-Type: text/x-msnmsgr-datacast\r\n\r\nID: 1\r\n\r\n";
    assert_eq!(m.to_bytes(), expected);
    assert_eq!(expected.len(), 69);
    assert_eq!(m.kind(), MessageKind::Datacast { id: 1 });
}

#[test]
fn datacasts_are_read_by_their_id() {
    let parse = |raw: &[u8]| Message::parse(raw).unwrap().kind();
    // A wink carries its MSNObject in `Data:`; the id is what tells it apart.
    assert_eq!(
        parse(b"MIME-Version: 1.0\r\nContent-Type: text/x-msnmsgr-datacast\r\n\r\nID: 2\r\nData: <msnobj Type=\"8\"/>\r\n\r\n"),
        MessageKind::Datacast { id: 2 }
    );
    // LF-only, odd spacing, other header case.
    assert_eq!(
        parse(b"Content-Type: Text/X-MSNMSGR-Datacast\n\nid:3\n"),
        MessageKind::Datacast { id: 3 }
    );
    // No id at all, or garbage: 0, never a panic.
    assert_eq!(
        parse(b"Content-Type: text/x-msnmsgr-datacast\r\n\r\n"),
        MessageKind::Datacast { id: 0 }
    );
    assert_eq!(
        parse(b"Content-Type: text/x-msnmsgr-datacast\r\n\r\nID: \xff\xfe\r\n"),
        MessageKind::Datacast { id: 0 }
    );
}
