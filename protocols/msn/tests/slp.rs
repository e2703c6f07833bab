//! MSNSLP text messages.
//!
//! Reference texts:
//! * PIDGIN_INVITE: an INVITE libpurple sent for a display picture, quoted
//!   from a Pidgin debug log posted to a forum thread (antony_css,
//!   2009-02-20; the log shows each CRLF as a blank line; the two
//!   anonymised addresses are made consistent here, which changes no
//!   length). Its `Content-Length: 288` is the body with the final NUL.
//! * KOPETE_INVITE: Kopete 0.8 `msnp2p.cpp` `requestDisplayPicture` (double
//!   space before `MSNSLP/1.0`, `Content-Length` = content + 5, base64
//!   padding stripped).
//! * BYE: the `BYE` of a file transfer captured by the author of
//!   `msnc1` (yyc, rmtsvc), quoted in its source comments, and
//!   libpurple's direct-connection BYE: `Content-Length: 3` for
//!   `\r\n` + NUL.

use msn_proto::slp::*;
use proptest::prelude::*;

const ME: &str = "xxxxxxxx@yahoo.com.hk";
const PEER: &str = "xxxxxxxx@hotmail.com";
const PIDGIN_CONTEXT: &str = "PG1zbm9iaiBDcmVhdG9yPSJlbmVyZ3lmYWlAaG90bWFpbC5jb20iIFNpemU9IjI0ODEiIFR5cGU9IjMiIExvY2F0aW9uPSIwIiBGcmllbmRseT0iY2dCMEFIRUFiZ0J6QUhrQUFBQT0iIFNIQTFEPSJqaDF3OEhKNTFucGFua2djOFU1RmxyK244eDg9Ii8+";

fn pidgin_invite() -> Vec<u8> {
    let mut t = format!(
        "INVITE MSNMSGR:{PEER} MSNSLP/1.0\r\n\
To: <msnmsgr:{PEER}>\r\n\
From: <msnmsgr:{ME}>\r\n\
Via: MSNSLP/1.0/TLP ;branch={{85BAAA5E-42A6-3D03-AB0E-40C35C8B9B2C}}\r\n\
CSeq: 0\r\n\
Call-ID: {{28CB7B41-7E7A-51D9-B137-32E6AA4D7497}}\r\n\
Max-Forwards: 0\r\n\
Content-Type: application/x-msnmsgr-sessionreqbody\r\n\
Content-Length: 288\r\n\
\r\n\
EUF-GUID: {{A4268EEC-FEC5-49E5-95C3-F126696BDBF6}}\r\n\
SessionID: 599023529\r\n\
AppID: 1\r\n\
Context: {PIDGIN_CONTEXT}\r\n\
\r\n"
    )
    .into_bytes();
    t.push(0);
    t
}

#[test]
fn parses_pidgin_invite() {
    let wire = pidgin_invite();
    let m = SlpMessage::parse(&wire).unwrap();
    assert_eq!(
        m.start,
        StartLine::Request {
            method: "INVITE".into(),
            to: PEER.into()
        }
    );
    assert_eq!((m.to.as_str(), m.from.as_str()), (PEER, ME));
    assert_eq!(m.branch, "{85BAAA5E-42A6-3D03-AB0E-40C35C8B9B2C}");
    assert_eq!(m.call_id, "{28CB7B41-7E7A-51D9-B137-32E6AA4D7497}");
    assert_eq!((m.cseq, m.max_forwards), (0, 0));
    assert_eq!(m.content_type, CONTENT_TYPE_SESSION_REQ);
    assert_eq!(m.euf_guid(), Some(EUF_GUID_MSNOBJ));
    assert_eq!(m.session_id(), Some(599023529));
    assert_eq!(m.app_id(), Some(1));
    let ctx = m.context().unwrap().unwrap();
    assert!(ctx.starts_with(b"<msnobj Creator=\"energyfai@hotmail.com\""));
}

#[test]
fn builds_pidgin_invite_byte_exact() {
    let obj = r#"<msnobj Creator="energyfai@hotmail.com" Size="2481" Type="3" Location="0" Friendly="cgB0AHEAbgBzAHkAAAA=" SHA1D="jh1w8HJ51npankgc8U5Flr+n8x8="/>"#;
    let m = SlpMessage::picture_invite(
        PEER,
        ME,
        "{85BAAA5E-42A6-3D03-AB0E-40C35C8B9B2C}",
        "{28CB7B41-7E7A-51D9-B137-32E6AA4D7497}",
        599023529,
        obj,
    );
    assert_eq!(m.to_bytes(), pidgin_invite());
}

#[test]
fn parses_kopete_invite_quirks() {
    let content = "EUF-GUID: {A4268EEC-FEC5-49E5-95C3-F126696BDBF6}\r\nSessionID: 1980589\r\nAppID: 1\r\nContext: PG1zbm9iaiAvPg";
    let mut wire = format!(
        "INVITE MSNMSGR:bob@hotmail.com  MSNSLP/1.0\r\n\
To: <msnmsgr:bob@hotmail.com>\r\n\
From: <msnmsgr:alice@hotmail.com>\r\n\
Via: MSNSLP/1.0/TLP ;branch={{33517CE4-02FC-4428-B6F4-39927229B722}}\r\n\
CSeq: 0\r\n\
Call-ID: {{9D79AE57-1BD5-444B-B14E-3FC9BB2B5D58}}\r\n\
Max-Forwards: 0\r\n\
Content-Type: application/x-msnmsgr-sessionreqbody\r\n\
Content-Length: {}\r\n\
\r\n{content}\r\n\r\n",
        content.len() + 5
    )
    .into_bytes();
    wire.extend_from_slice(&[0; 5]); // the NUL, then the P2P footer Kopete's buffer carries on
    let m = SlpMessage::parse(&wire).unwrap();
    assert_eq!(m.method(), Some("INVITE"));
    assert_eq!(m.session_id(), Some(1980589));
    // "PG1zbm9iaiAvPg" is "<msnobj />" with its "==" stripped, as Kopete does.
    assert_eq!(m.context().unwrap().unwrap(), b"<msnobj />");
    assert_eq!(m.branch, "{33517CE4-02FC-4428-B6F4-39927229B722}");
}

#[test]
fn ok_decline_and_error_answer_the_invite() {
    let invite = SlpMessage::parse(&pidgin_invite()).unwrap();
    let ok = invite.ok();
    // libpurple msn_slp_send_ok: addresses swapped, same branch and Call-ID,
    // CSeq 1, body "SessionID: <id>\r\n\r\n" + NUL.
    let expected = format!(
        "MSNSLP/1.0 200 OK\r\n\
To: <msnmsgr:{ME}>\r\n\
From: <msnmsgr:{PEER}>\r\n\
Via: MSNSLP/1.0/TLP ;branch={{85BAAA5E-42A6-3D03-AB0E-40C35C8B9B2C}}\r\n\
CSeq: 1\r\n\
Call-ID: {{28CB7B41-7E7A-51D9-B137-32E6AA4D7497}}\r\n\
Max-Forwards: 0\r\n\
Content-Type: application/x-msnmsgr-sessionreqbody\r\n\
Content-Length: 25\r\n\
\r\n\
SessionID: 599023529\r\n\
\r\n\0"
    );
    assert_eq!(ok.to_bytes(), expected.as_bytes());
    assert_eq!(SlpMessage::parse(&ok.to_bytes()).unwrap(), ok);
    assert_eq!(ok.status(), Some(200));
    let no = invite.decline();
    assert_eq!(
        no.start,
        StartLine::Response {
            code: 603,
            reason: "Decline".into()
        }
    );
    assert_eq!(no.session_id(), Some(599023529));
    let err = invite.internal_error();
    assert_eq!(err.status(), Some(500));
    assert_eq!(err.content_type, CONTENT_TYPE_NULL);
    assert_eq!(SlpMessage::parse(&err.to_bytes()).unwrap(), err);
}

#[test]
fn bye_has_content_length_3() {
    // yyc's capture (Content-Length: 3, sessionclosebody).
    let captured = b"BYE MSNMSGR:yycnet@163.com MSNSLP/1.0\r\n\
To: <msnmsgr:yycnet@163.com>\r\n\
From: <msnmsgr:yycnet@hotmail.com>\r\n\
Via: MSNSLP/1.0/TLP ;branch={25DDE471-B1BF-46BB-A9C9-E8E823413F20}\r\n\
CSeq: 0\r\n\
Call-ID: {22AEA6FA-0D9F-4C63-89E0-E4B38E584352}\r\n\
Max-Forwards: 0\r\n\
Content-Type: application/x-msnmsgr-sessionclosebody\r\n\
Content-Length: 3\r\n\
\r\n\
\r\n\0";
    let m = SlpMessage::parse(captured).unwrap();
    assert_eq!(m.method(), Some("BYE"));
    assert!(m.body.is_empty());
    let built = SlpMessage::bye(
        "yycnet@163.com",
        "yycnet@hotmail.com",
        "{25DDE471-B1BF-46BB-A9C9-E8E823413F20}",
        "{22AEA6FA-0D9F-4C63-89E0-E4B38E584352}",
    );
    assert_eq!(built.to_bytes(), captured);
}

#[test]
fn file_invite_fields() {
    let m = SlpMessage::file_invite("b@x.com", "a@x.com", "{B}", "{C}", 65394293, b"ctx");
    let back = SlpMessage::parse(&m.to_bytes()).unwrap();
    assert_eq!(back.euf_guid(), Some(EUF_GUID_FILE));
    assert_eq!(back.app_id(), Some(2));
    assert_eq!(back.context().unwrap().unwrap(), b"ctx");
    assert_eq!(EUF_GUID_FILE, "{5D3E02AB-6190-11D3-BBBB-00C04F795683}");
    assert_eq!(CONTENT_TYPE_TRANS_REQ, "application/x-msnmsgr-transreqbody");
}

#[test]
fn rejects_malformed() {
    let wire = pidgin_invite();
    // Truncated body.
    assert!(SlpMessage::parse(&wire[..wire.len() - 2]).is_err());
    // No blank line.
    assert!(SlpMessage::parse(b"INVITE MSNMSGR:a@b MSNSLP/1.0\r\nTo: <msnmsgr:a@b>").is_err());
    // Wrong version, bad address.
    let v2 = String::from_utf8(wire.clone())
        .unwrap()
        .replacen("MSNSLP/1.0\r\n", "SIP/2.0\r\n", 1);
    assert!(SlpMessage::parse(v2.as_bytes()).is_err());
    let bad_to = String::from_utf8(wire)
        .unwrap()
        .replacen("To: <msnmsgr:", "To: <sip:", 1);
    assert!(SlpMessage::parse(bad_to.as_bytes()).is_err());
    // Oversized input.
    assert!(SlpMessage::parse(&vec![b'a'; MAX_SLP_LEN + 1]).is_err());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SlpMessage::parse(&bytes);
    }

    #[test]
    fn mutated_invites_never_panic(i in 0usize..700, b in any::<u8>()) {
        let mut wire = pidgin_invite();
        let n = wire.len();
        wire[i % n] = b;
        if let Ok(m) = SlpMessage::parse(&wire) {
            let _ = m.context();
            let _ = m.to_bytes();
        }
    }

    #[test]
    fn round_trip(sid in any::<u32>(), to in "[a-z]{1,8}@[a-z]{1,8}\\.com", ctx in proptest::collection::vec(any::<u8>(), 0..300)) {
        let m = SlpMessage::file_invite(&to, "me@x.com", "{B}", "{C}", sid, &ctx);
        let back = SlpMessage::parse(&m.to_bytes()).unwrap();
        prop_assert_eq!(back.context().unwrap().unwrap(), ctx);
        prop_assert_eq!(back, m);
    }
}
