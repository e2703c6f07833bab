//! Session machines driven with byte-exact server scripts.

use std::time::{Duration, Instant};

use msn_proto::*;

fn drain(s: &mut NsSession) -> Vec<NsEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn tx(s: &mut NsSession) -> String {
    String::from_utf8(s.poll_transmit().unwrap_or_default()).unwrap()
}

#[test]
fn dispatch_redirect() {
    let now = Instant::now();
    let mut s = NsSession::new(NsConfig::new("a@b.com"), now);
    assert_eq!(tx(&mut s), "VER 1 MSNP9 MSNP8 CVR0\r\n");
    s.handle_input(b"VER 1 MSNP9\r\n");
    assert_eq!(
        tx(&mut s),
        "CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 6.2.0208 MSMSGS a@b.com\r\n"
    );
    s.handle_input(b"CVR 2 6.2.0208 6.2.0208 6.2.0208 http://x http://y\r\n");
    assert_eq!(tx(&mut s), "USR 3 TWN I a@b.com\r\n");
    s.handle_input(b"XFR 3 NS 127.0.0.1:1865 0 127.0.0.1:1863\r\n");
    assert_eq!(
        drain(&mut s),
        [
            NsEvent::Redirect {
                addr: "127.0.0.1:1865".into()
            },
            NsEvent::Closed {
                reason: CloseReason::LoginEnded
            }
        ]
    );
    assert!(s.is_closed());
}

fn logged_in(now: Instant) -> NsSession {
    let mut s = NsSession::new(NsConfig::new("a@b.com"), now);
    s.handle_input(b"VER 1 MSNP9\r\nCVR 2 6.2.0208 6.2.0208 6.2.0208 http://x http://y\r\n");
    s.handle_input(b"USR 3 TWN S lc=1033,id=507,tw=40\r\n");
    let _ = tx(&mut s);
    assert_eq!(
        drain(&mut s),
        [NsEvent::NeedTicket {
            policy: "lc=1033,id=507,tw=40".into()
        }]
    );
    s.ticket("t=T&p=P");
    assert_eq!(tx(&mut s), "USR 4 TWN S t=T&p=P\r\n");
    s.handle_input(b"USR 4 OK a@b.com Alice%20A 1 0\r\nMSG Hotmail Hotmail 38\r\nMIME-Version: 1.0\r\nContent-Type: x\r\n\r\n");
    assert_eq!(tx(&mut s), "SYN 5 0\r\n");
    let ev = drain(&mut s);
    assert_eq!(
        ev[0],
        NsEvent::LoggedIn {
            email: "a@b.com".into(),
            friendly_name: "Alice A".into(),
            verified: true
        }
    );
    assert!(
        matches!(&ev[1], NsEvent::ServerMessage { message } if message.header("content-type") == Some("x"))
    );
    s.handle_input(
        b"SYN 5 7 2 2\r\nGTC A\r\nBLP AL\r\nLSG 0 Other%20Contacts 0\r\nLSG 1 Friends 0\r\n",
    );
    assert!(drain(&mut s).is_empty());
    s.handle_input(b"LST b@c.com Bob%20B 11 1\r\nLST c@d.com Carol 8\r\n");
    assert_eq!(
        drain(&mut s),
        [NsEvent::ContactList {
            version: 7,
            unchanged: false,
            groups: vec![
                Group {
                    id: 0,
                    name: "Other Contacts".into()
                },
                Group {
                    id: 1,
                    name: "Friends".into()
                }
            ],
            contacts: vec![
                Contact {
                    email: "b@c.com".into(),
                    friendly_name: "Bob B".into(),
                    lists: ListBits(11),
                    groups: vec![1]
                },
                Contact {
                    email: "c@d.com".into(),
                    friendly_name: "Carol".into(),
                    lists: ListBits(8),
                    groups: vec![]
                },
            ],
            privacy: Some("AL".into()),
            add_prompt: Some("A".into()),
        }]
    );
    assert_eq!(tx(&mut s), "CHG 6 NLN 0\r\n");
    s.handle_input(b"CHG 6 NLN 0\r\nILN 6 AWY b@c.com Bob%20B 0\r\n");
    assert_eq!(
        drain(&mut s),
        [
            NsEvent::StatusChanged {
                trid: Some(6),
                status: Status::Online
            },
            NsEvent::Presence {
                email: "b@c.com".into(),
                status: Status::Away,
                friendly_name: Some("Bob B".into()),
                client_id: Some(0),
                msn_object: None,
                initial: true
            }
        ]
    );
    s
}

#[test]
fn full_login_and_presence() {
    let now = Instant::now();
    let mut s = logged_in(now);
    assert_eq!(s.list_version(), 7);
    s.handle_input(b"NLN BSY b@c.com Bob 0\r\nFLN b@c.com\r\n");
    let ev = drain(&mut s);
    assert!(matches!(
        &ev[0],
        NsEvent::Presence {
            status: Status::Busy,
            initial: false,
            ..
        }
    ));
    assert!(matches!(
        &ev[1],
        NsEvent::Presence {
            status: Status::Offline,
            ..
        }
    ));
}

/// A Messenger 6.x presence carries the display picture's MSNObject, URL-encoded, as
/// the fifth parameter of `ILN`/`NLN` (MSNPiki "MSNObject"; libpurple `msn_iln_cmd`);
/// our own goes out the same way in `CHG`.
#[test]
fn display_pictures_in_presence() {
    let now = Instant::now();
    let mut s = logged_in(now);
    s.handle_input(b"NLN NLN b@c.com Bob 268435492 %3Cmsnobj%20Creator%3D%22b%40c.com%22%20Size%3D%2225235%22%20Type%3D%223%22%20Location%3D%22TFR2C.tmp%22%20Friendly%3D%22AAA%3D%22%20SHA1D%3D%22trC8SlFx2sWQxZMIBAWSEnXc8oQ%3D%22%20SHA1C%3D%22U32o6bosZzluJq82eAtMpx5dIEI%3D%22%2F%3E\r\nNLN AWY b@c.com Bob 268435492 garbage\r\n");
    let ev = drain(&mut s);
    let NsEvent::Presence { msn_object, .. } = &ev[0] else {
        panic!("{ev:?}")
    };
    let object = MsnObject::parse(msn_object.as_deref().expect("an MSNObject")).unwrap();
    assert_eq!(object.sha1d, "trC8SlFx2sWQxZMIBAWSEnXc8oQ=");
    assert_eq!(object.creator, "b@c.com");
    // What is no MSNObject is left out.
    assert!(matches!(
        &ev[1],
        NsEvent::Presence {
            msn_object: None,
            ..
        }
    ));

    s.set_msn_object(Some("<msnobj Creator=\"a@b.com\" Type=\"3\"/>"));
    s.set_status(Status::Away);
    assert_eq!(
        tx(&mut s),
        "CHG 7 AWY 0 %3Cmsnobj%20Creator%3D%22a%40b.com%22%20Type%3D%223%22%2F%3E\r\n"
    );
}

#[test]
fn login_refused() {
    let mut s = NsSession::new(NsConfig::new("a@b.com"), Instant::now());
    s.handle_input(b"VER 1 MSNP9\r\nCVR 2 a b c d e\r\nUSR 3 TWN S policy\r\n");
    s.ticket("bad");
    s.handle_input(b"911 4\r\n");
    let ev = drain(&mut s);
    assert!(matches!(
        &ev[1],
        NsEvent::LoginFailed {
            error: Some(ServerError {
                code: 911,
                trid: Some(4)
            }),
            ..
        }
    ));
    assert_eq!(
        ev[2],
        NsEvent::Closed {
            reason: CloseReason::LoginEnded
        }
    );
}

#[test]
fn keepalive_and_challenge() {
    let t0 = Instant::now();
    let mut s = logged_in(t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(50)));
    s.handle_timeout(t0 + Duration::from_secs(10));
    assert_eq!(s.poll_transmit(), None);
    s.handle_timeout(t0 + Duration::from_secs(50));
    assert_eq!(tx(&mut s), "PNG\r\n");
    s.handle_input(b"QNG 50\r\n");
    s.handle_timeout(t0 + Duration::from_secs(100));
    assert_eq!(tx(&mut s), "PNG\r\n");
    s.handle_timeout(t0 + Duration::from_secs(150));
    assert_eq!(tx(&mut s), "PNG\r\n");
    assert_eq!(drain(&mut s), [NsEvent::PingTimeout]);

    s.handle_input(b"CHL 0 22210219642164014968\r\n");
    assert_eq!(
        tx(&mut s),
        "QRY 7 PROD0038W!61ZTF9 32\r\nc60f42bcef15148c614190c61e8eebf6"
    );
    // The reply is optional; the session goes on regardless.
    assert_eq!(s.request_switchboard(), 8);
    assert_eq!(tx(&mut s), "XFR 8 SB\r\n");
    s.handle_input(b"QRY 7\r\nXFR 8 SB 127.0.0.1:1864 CKI 17262740.1050826919.32308\r\n");
    assert_eq!(
        drain(&mut s),
        [NsEvent::Switchboard {
            trid: Some(8),
            addr: "127.0.0.1:1864".into(),
            cookie: "17262740.1050826919.32308".into()
        }]
    );
}

#[test]
fn contact_management_byte_exact() {
    let mut s = logged_in(Instant::now());
    assert_eq!(
        s.add_contact(List::Forward, "d@e.com", "d@e.com", Some(1)),
        7
    );
    assert_eq!(s.remove_contact(List::Allow, "b@c.com", None), 8);
    assert_eq!(s.set_friendly_name("Al ice"), 9);
    assert_eq!(s.add_group("Work Mates"), 10);
    assert_eq!(s.remove_group(2), 11);
    assert_eq!(s.rename_group(1, "Pals"), 12);
    assert_eq!(s.set_status(Status::Away), 13);
    assert_eq!(s.set_privacy(false), 14);
    assert_eq!(
        tx(&mut s),
        "ADD 7 FL d@e.com d%40e.com 1\r\nREM 8 AL b@c.com\r\nREA 9 a@b.com Al%20ice\r\nADG 10 Work%20Mates 0\r\nRMG 11 2\r\nREG 12 1 Pals 0\r\nCHG 13 AWY 0\r\nBLP 14 BL\r\n"
    );
    s.handle_input(b"ADD 7 FL 8 d@e.com d%40e.com 1\r\nREM 8 AL 9 b@c.com\r\nREA 9 10 a@b.com Al%20ice\r\nADG 10 11 Work%20Mates 2 0\r\nRMG 11 12 2\r\nREG 12 13 1 Pals 0\r\nCHG 13 AWY 0\r\nADD 0 RL 14 f@g.com Fred\r\n215 7\r\n");
    let ev = drain(&mut s);
    assert_eq!(
        ev,
        [
            NsEvent::ListAdded {
                trid: Some(7),
                list: List::Forward,
                version: 8,
                email: "d@e.com".into(),
                friendly_name: "d@e.com".into(),
                group: Some(1)
            },
            NsEvent::ListRemoved {
                trid: Some(8),
                list: List::Allow,
                version: 9,
                email: "b@c.com".into(),
                group: None
            },
            NsEvent::FriendlyNameChanged {
                trid: Some(9),
                version: 10,
                email: "a@b.com".into(),
                friendly_name: "Al ice".into()
            },
            NsEvent::GroupAdded {
                trid: Some(10),
                version: 11,
                id: 2,
                name: "Work Mates".into()
            },
            NsEvent::GroupRemoved {
                trid: Some(11),
                version: 12,
                id: 2
            },
            NsEvent::GroupRenamed {
                trid: Some(12),
                version: 13,
                id: 1,
                name: "Pals".into()
            },
            NsEvent::StatusChanged {
                trid: Some(13),
                status: Status::Away
            },
            NsEvent::ListAdded {
                trid: Some(0),
                list: List::Reverse,
                version: 14,
                email: "f@g.com".into(),
                friendly_name: "Fred".into(),
                group: None
            },
            NsEvent::Error {
                error: ServerError {
                    code: 215,
                    trid: Some(7)
                }
            },
        ]
    );
    assert_eq!(s.list_version(), 14);
    s.handle_input(
        b"RNG 11752013 127.0.0.1:1864 CKI 849102291.520491113 b@c.com Bob%20B\r\nOUT OTH\r\n",
    );
    assert_eq!(
        drain(&mut s),
        [
            NsEvent::Ring {
                session_id: "11752013".into(),
                addr: "127.0.0.1:1864".into(),
                cookie: "849102291.520491113".into(),
                caller_email: "b@c.com".into(),
                caller_name: "Bob B".into()
            },
            NsEvent::Closed {
                reason: CloseReason::ServerOut(Some("OTH".into()))
            }
        ]
    );
}

fn sb_drain(s: &mut SbSession) -> Vec<SbEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn sb_tx(s: &mut SbSession) -> String {
    String::from_utf8(s.poll_transmit().unwrap_or_default()).unwrap()
}

#[test]
fn switchboard_outgoing_call_and_messages() {
    let mut s = SbSession::outgoing("a@b.com", "C.1");
    assert_eq!(sb_tx(&mut s), "USR 1 a@b.com C.1\r\n");
    assert_eq!(s.invite("b@c.com"), 2);
    let ids = s.send_text("hi", None);
    assert_eq!(ids, [3]);
    assert_eq!(
        sb_tx(&mut s),
        "CAL 2 b@c.com\r\n",
        "text is held until someone joins"
    );
    s.handle_input(b"USR 1 OK a@b.com Alice\r\nCAL 2 RINGING 11752013\r\nJOI b@c.com Bob%20B\r\n");
    assert_eq!(
        sb_drain(&mut s),
        [
            SbEvent::Ready,
            SbEvent::Ringing {
                trid: Some(2),
                session_id: "11752013".into()
            },
            SbEvent::Joined {
                email: "b@c.com".into(),
                friendly_name: "Bob B".into()
            }
        ]
    );
    assert_eq!(
        sb_tx(&mut s),
        "MSG 3 A 64\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhi"
    );
    assert_eq!(s.send_typing(), 4);
    assert_eq!(
        sb_tx(&mut s),
        "MSG 4 U 78\r\nMIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: a@b.com\r\n\r\n"
    );
    assert_eq!(s.send_nudge(), 5);
    assert_eq!(
        sb_tx(&mut s),
        "MSG 5 N 69\r\nMIME-Version: 1.0\r\nContent-Type: text/x-msnmsgr-datacast\r\n\r\nID: 1\r\n\r\n"
    );
    s.handle_input(b"ACK 3\r\nMSG b@c.com Bob%20B 66\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhey!NAK 9\r\nBYE b@c.com\r\n");
    let ev = sb_drain(&mut s);
    assert_eq!(ev[0], SbEvent::Delivered { trid: 3 });
    match &ev[1] {
        SbEvent::Message {
            from,
            friendly_name,
            message,
        } => {
            assert_eq!(
                (from.as_str(), friendly_name.as_str()),
                ("b@c.com", "Bob B")
            );
            assert_eq!(
                message.kind(),
                MessageKind::Text {
                    text: "hey!".into(),
                    format: None
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ev[2],
        SbEvent::DeliveryFailed {
            trid: 9,
            error: None
        }
    );
    assert_eq!(
        ev[3],
        SbEvent::Left {
            email: "b@c.com".into(),
            idle: false
        }
    );
    assert!(s.participants().is_empty());
    s.leave();
    assert_eq!(sb_tx(&mut s), "OUT\r\n");
    assert_eq!(sb_drain(&mut s), [SbEvent::Closed]);
}

#[test]
fn switchboard_call_to_offline_user_fails_held_messages() {
    let mut s = SbSession::outgoing("a@b.com", "C.1");
    s.handle_input(b"USR 1 OK a@b.com Alice\r\n");
    s.invite("b@c.com");
    let ids = s.send_text("are you there?", None);
    s.handle_input(b"217 2\r\n");
    let ev = sb_drain(&mut s);
    assert_eq!(ev[0], SbEvent::Ready);
    assert_eq!(
        ev[1],
        SbEvent::Error {
            error: ServerError {
                code: 217,
                trid: Some(2)
            }
        }
    );
    assert_eq!(
        ev[2],
        SbEvent::DeliveryFailed {
            trid: ids[0],
            error: Some(ServerError {
                code: 217,
                trid: Some(2)
            })
        }
    );
}

#[test]
fn switchboard_invited() {
    let mut s = SbSession::invited("b@c.com", "849102291.520491113", "11752013");
    assert_eq!(
        sb_tx(&mut s),
        "ANS 1 b@c.com 849102291.520491113 11752013\r\n"
    );
    s.handle_input(b"IRO 1 1 2 a@b.com Alice\r\nIRO 1 2 2 c@d.com Carol\r\nANS 1 OK\r\n");
    let ev = sb_drain(&mut s);
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[2], SbEvent::Ready);
    assert_eq!(s.participants().len(), 2);
    let id = s.send_message(&Message::text("x", None), AckMode::NakOnly);
    assert!(sb_tx(&mut s).starts_with(&format!("MSG {id} N 63\r\n")));
    s.handle_input(b"282 2\r\n");
    assert_eq!(
        sb_drain(&mut s),
        [SbEvent::DeliveryFailed {
            trid: 2,
            error: Some(ServerError {
                code: 282,
                trid: Some(2)
            })
        }]
    );
}

#[test]
fn switchboard_with_nobody_fails_at_once() {
    let mut s = SbSession::outgoing("a@b.com", "C.1");
    assert_eq!(sb_tx(&mut s), "USR 1 a@b.com C.1\r\n");
    s.handle_input(b"USR 1 OK a@b.com Alice\r\n");
    let id = s.send_message(&Message::text("x", None), AckMode::Always);
    assert_eq!(s.send_typing(), id + 1);
    assert_eq!(
        sb_drain(&mut s),
        [
            SbEvent::Ready,
            SbEvent::DeliveryFailed {
                trid: id,
                error: None
            }
        ]
    );
    assert_eq!(s.poll_transmit(), None);
    assert!(format!("{s:?}").contains("SbSession"));
    assert!(
        !format!("{s:?}").contains("C.1"),
        "the cookie stays out of Debug"
    );
}

#[test]
fn ticket_stays_out_of_debug() {
    let mut s = NsSession::new(NsConfig::new("a@b.com"), Instant::now());
    s.handle_input(b"VER 1 MSNP9\r\nCVR 2 x\r\nUSR 3 TWN S p\r\n");
    s.ticket("t=SECRET");
    assert!(!format!("{s:?}").contains("SECRET"));
}
