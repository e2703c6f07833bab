//! Session machines on a virtual clock: `Instant` fixed at start, advanced by hand.

use icq_proto::*;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const ME: u32 = 12345;
const BOB: u32 = 54321;

fn sent(s: &mut ClientSession) -> Vec<ClientFrame> {
    std::iter::from_fn(|| s.poll_transmit())
        .map(|b| ClientPacket::decode(&b).unwrap())
        .collect()
}

fn events(s: &mut ClientSession) -> Vec<ClientEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn feed(s: &mut ClientSession, seq: u16, packet: ServerPacket, now: Instant) {
    s.handle_datagram(&packet.encode(seq), now).unwrap();
}

/// A logged-in session with every login packet acknowledged.
fn logged_in(t0: Instant) -> ClientSession {
    let mut s = ClientSession::new();
    let options = LoginOptions {
        contacts: vec![BOB],
        ..Default::default()
    };
    s.login(ME, "secret", options, t0).unwrap();
    let login = sent(&mut s);
    feed(&mut s, login[0].seq, ServerPacket::Ack, t0);
    let reply = ServerPacket::LoginReply {
        uin: ME,
        ip: Ipv4Addr::LOCALHOST,
        login_seq: login[0].seq,
    };
    feed(&mut s, 0, reply, t0);
    for f in sent(&mut s) {
        if f.packet != ClientPacket::Ack {
            feed(&mut s, f.seq, ServerPacket::Ack, t0);
        }
    }
    events(&mut s);
    s
}

#[test]
fn login_sequence() {
    let t0 = Instant::now();
    let mut s = ClientSession::new();
    let options = LoginOptions {
        contacts: vec![BOB, 7],
        ..Default::default()
    };
    s.login(ME, "secret", options, t0).unwrap();
    let out = sent(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].seq, 1, "the client counts from 1");
    assert_eq!(out[0].uin, ME);
    assert!(
        matches!(&out[0].packet, ClientPacket::Login { password, login_seq: 1, .. } if password == "secret")
    );
    assert_eq!(s.state(), SessionState::LoggingIn);

    feed(&mut s, 1, ServerPacket::Ack, t0); // acknowledges the client's seq 1
    let reply = ServerPacket::LoginReply {
        uin: ME,
        ip: Ipv4Addr::new(1, 2, 3, 4),
        login_seq: 1,
    };
    feed(&mut s, 0, reply, t0);
    let out: Vec<_> = sent(&mut s)
        .into_iter()
        .map(|f| (f.seq, f.packet))
        .collect();
    assert_eq!(
        out,
        vec![
            (0, ClientPacket::Ack),
            (2, ClientPacket::Login1),
            (3, ClientPacket::ContactList { uins: vec![BOB, 7] }),
            (4, ClientPacket::Login2),
        ]
    );
    assert_eq!(
        events(&mut s),
        vec![ClientEvent::LoggedIn {
            uin: ME,
            ip: Ipv4Addr::new(1, 2, 3, 4)
        }]
    );
    assert_eq!(s.state(), SessionState::LoggedIn);
}

#[test]
fn wrong_password_and_long_password() {
    let t0 = Instant::now();
    let mut s = ClientSession::new();
    assert_eq!(
        s.login(ME, "123456789", LoginOptions::default(), t0),
        Err(CommandError::PasswordTooLong { len: 9 })
    );
    assert!(s.poll_transmit().is_none(), "nothing sent");
    assert!(matches!(
        s.login(ME, "pass€😀", LoginOptions::default(), t0),
        Err(CommandError::PasswordNotRepresentable(c)) if c == vec!['😀']
    ));
    s.login(ME, "12345678", LoginOptions::default(), t0)
        .unwrap();
    sent(&mut s);
    feed(&mut s, 0, ServerPacket::BadPassword, t0);
    assert_eq!(sent(&mut s)[0].packet, ClientPacket::Ack);
    assert_eq!(
        events(&mut s),
        vec![ClientEvent::LoginFailed {
            reason: LoginFailure::WrongPassword
        }]
    );
    assert_eq!(s.state(), SessionState::Closed);
    assert_eq!(s.poll_timeout(), None, "nothing left to retransmit");

    let mut busy = ClientSession::new();
    busy.login(ME, "x", LoginOptions::default(), t0).unwrap();
    feed(
        &mut busy,
        0,
        ServerPacket::Other {
            command: server_cmd::TRY_AGAIN,
            params: vec![],
        },
        t0,
    );
    assert_eq!(
        events(&mut busy),
        vec![ClientEvent::LoginFailed {
            reason: LoginFailure::ServerBusy
        }]
    );
}

/// A server that stays silent after ACKing LOGIN (how some answer a wrong password):
/// the session tells an acknowledged login from one the server never heard.
#[test]
fn login_acknowledged_only_after_the_ack_of_login() {
    let t0 = Instant::now();
    let mut s = ClientSession::new();
    s.login(ME, "secret", LoginOptions::default(), t0).unwrap();
    let login = sent(&mut s);
    assert!(!s.login_acknowledged());
    // An ACK of some other SEQ_NUM does not count.
    feed(&mut s, login[0].seq + 7, ServerPacket::Ack, t0);
    assert!(!s.login_acknowledged());
    feed(&mut s, login[0].seq, ServerPacket::Ack, t0);
    assert!(s.login_acknowledged());
    assert_eq!(s.state(), SessionState::LoggingIn);
    assert!(events(&mut s).is_empty(), "an ACK is not an answer");
    assert_eq!(s.poll_timeout(), None, "nothing left to resend");
}

#[test]
fn probe_is_a_keepalive_whose_ack_can_be_checked() {
    let t0 = Instant::now();
    let mut s = ClientSession::new();
    assert_eq!(s.probe(t0), Err(CommandError::NotLoggedIn));
    let mut s = logged_in(t0);
    let seq = s.probe(t0).unwrap();
    let out = sent(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].seq, &out[0].packet),
        (seq, &ClientPacket::KeepAlive)
    );
    assert!(s.awaits_ack(seq));
    // Unanswered, it is resent like any reliable packet.
    s.handle_timeout(t0 + Duration::from_secs(10));
    assert_eq!(sent(&mut s)[0].seq, seq);
    assert!(s.awaits_ack(seq));
    feed(&mut s, seq, ServerPacket::Ack, t0 + Duration::from_secs(11));
    assert!(!s.awaits_ack(seq));
    assert!(events(&mut s).is_empty());
}

#[test]
fn duplicates_are_acked_again_but_processed_once() {
    let t0 = Instant::now();
    let mut s = logged_in(t0);
    let msg = ServerPacket::ReceiveMessage {
        from: BOB,
        time: MessageTime {
            year: 1998,
            month: 4,
            day: 12,
            hour: 10,
            minute: 5,
        },
        kind: 1,
        text: "hi\r\nthere".into(),
    };
    feed(&mut s, 1, msg.clone(), t0);
    feed(&mut s, 1, msg, t0);
    let acks: Vec<_> = sent(&mut s)
        .into_iter()
        .map(|f| (f.seq, f.packet))
        .collect();
    assert_eq!(acks, vec![(1, ClientPacket::Ack), (1, ClientPacket::Ack)]);
    assert_eq!(
        events(&mut s),
        vec![ClientEvent::Message {
            from: BOB,
            kind: MessageKind::Text,
            text: "hi\nthere".into(),
            content: MessageContent::Text("hi\nthere".into()),
            timestamp: MessageTime {
                year: 1998,
                month: 4,
                day: 12,
                hour: 10,
                minute: 5
            },
        }]
    );
    // An ACK from the server is never acknowledged.
    feed(&mut s, 99, ServerPacket::Ack, t0);
    assert!(sent(&mut s).is_empty());
}

#[test]
fn server_packets_become_events() {
    let t0 = Instant::now();
    let mut s = logged_in(t0);
    let user = UserRecord {
        uin: BOB,
        nick: "bob".into(),
        ..Default::default()
    };
    let packets = vec![
        ServerPacket::UserOnline {
            uin: BOB,
            ip: Ipv4Addr::LOCALHOST,
            tcp_port: 0,
            real_ip: Ipv4Addr::LOCALHOST,
            status: Status::ONLINE,
        },
        ServerPacket::StatusUpdate {
            uin: BOB,
            status: Status::AWAY,
        },
        ServerPacket::UserOffline { uin: BOB },
        ServerPacket::UserFound {
            search_seq: 1,
            user: user.clone(),
        },
        ServerPacket::EndOfSearch {
            search_seq: 1,
            more: false,
        },
        ServerPacket::InfoReply {
            info_seq: 2,
            user: user.clone(),
        },
        ServerPacket::ExtInfoReply {
            info_seq: 3,
            uin: BOB,
            info: ExtInfo::default(),
        },
        ServerPacket::system_message("maintenance"),
        ServerPacket::Other {
            command: 0x0999,
            params: vec![1],
        },
        ServerPacket::ReceiveMessage {
            from: BOB,
            time: MessageTime::default(),
            kind: 4,
            text: "site\u{FE}http://a/".into(),
        },
    ];
    for (i, p) in packets.into_iter().enumerate() {
        feed(&mut s, i as u16 + 1, p, t0);
    }
    let ev = events(&mut s);
    assert_eq!(
        ev[0],
        ClientEvent::ContactOnline {
            uin: BOB,
            status: Status::ONLINE,
            ip: Ipv4Addr::LOCALHOST,
            tcp_port: 0
        }
    );
    assert_eq!(
        ev[1],
        ClientEvent::ContactStatus {
            uin: BOB,
            status: Status::AWAY
        }
    );
    assert_eq!(ev[2], ClientEvent::ContactOffline { uin: BOB });
    assert_eq!(
        ev[3],
        ClientEvent::SearchResult {
            search_seq: 1,
            user: user.clone()
        }
    );
    assert_eq!(
        ev[4],
        ClientEvent::SearchEnd {
            search_seq: 1,
            more: false
        }
    );
    assert_eq!(ev[5], ClientEvent::Info { info_seq: 2, user });
    assert!(matches!(
        ev[6],
        ClientEvent::ExtInfo {
            info_seq: 3,
            uin: BOB,
            ..
        }
    ));
    assert_eq!(
        ev[7],
        ClientEvent::SystemMessage {
            text: "maintenance".into()
        }
    );
    assert_eq!(
        ev[8],
        ClientEvent::Unhandled {
            command: 0x0999,
            params: vec![1]
        }
    );
    assert!(
        matches!(&ev[9], ClientEvent::Message { kind: MessageKind::Url, text, .. } if text == "site http://a/")
    );

    // NOT_CONNECTED ends the session even with a SEQ_NUM already seen
    // (a restarted server counts from 0 again).
    feed(
        &mut s,
        1,
        ServerPacket::Other {
            command: server_cmd::NOT_CONNECTED,
            params: vec![],
        },
        t0,
    );
    assert_eq!(
        events(&mut s),
        vec![ClientEvent::Disconnected {
            reason: DisconnectReason::ServerClosed {
                command: server_cmd::NOT_CONNECTED
            }
        }]
    );
}

#[test]
fn commands_encode_the_right_packets() {
    let t0 = Instant::now();
    let mut s = logged_in(t0);
    let receipt = s.send_text(BOB, "naïve 😀\nok", t0).unwrap();
    assert_eq!(receipt.unrepresentable, vec!['😀']);
    s.set_status(Status::AWAY, t0).unwrap();
    s.add_contact(777, t0).unwrap();
    let q1 = s.search(&SearchQuery::Uin(BOB), t0).unwrap();
    let q2 = s.search(&SearchQuery::Email("b@x".into()), t0).unwrap();
    let q3 = s
        .search(
            &SearchQuery::Name {
                nick: "bob".into(),
                first: String::new(),
                last: String::new(),
            },
            t0,
        )
        .unwrap();
    let q4 = s.request_info(BOB, t0).unwrap();
    let q5 = s.request_ext_info(BOB, t0).unwrap();
    assert_eq!(
        s.search(&SearchQuery::Email(String::new()), t0),
        Err(CommandError::EmptySearch)
    );
    let out: Vec<_> = sent(&mut s).into_iter().map(|f| f.packet).collect();
    assert_eq!(
        out,
        vec![
            ClientPacket::SendMessage {
                to: BOB,
                kind: 1,
                text: "naïve ?\r\nok".into()
            },
            ClientPacket::StatusChange {
                status: Status::AWAY
            },
            ClientPacket::Other {
                command: client_cmd::ADD_TO_LIST,
                params: 777u32.to_le_bytes().to_vec()
            },
            ClientPacket::SearchUin {
                search_seq: q1,
                uin: BOB
            },
            ClientPacket::SearchUser {
                search_seq: q2,
                nick: "".into(),
                first: "".into(),
                last: "".into(),
                email: "b@x".into()
            },
            ClientPacket::SearchUser {
                search_seq: q3,
                nick: "bob".into(),
                first: "".into(),
                last: "".into(),
                email: "".into()
            },
            ClientPacket::InfoReq {
                info_seq: q4,
                uin: BOB
            },
            ClientPacket::ExtInfoReq {
                info_seq: q5,
                uin: BOB
            },
        ]
    );
    assert_eq!(s.contacts(), &[BOB, 777]);
    // The emoji went out as '?' (above) and the receipt says so.
    feed(&mut s, receipt.seq, ServerPacket::Ack, t0);
    assert_eq!(
        events(&mut s),
        vec![ClientEvent::MessageAcked { seq: receipt.seq }]
    );
    let long = "x".repeat(5000);
    assert!(matches!(
        s.send_text(BOB, &long, t0),
        Err(CommandError::TextTooLong { .. })
    ));

    s.logout(t0);
    let out = sent(&mut s);
    assert_eq!(
        out[0].packet,
        ClientPacket::SendTextCode {
            text: "B_USER_DISCONNECTED".into(),
            x1: 5
        }
    );
    assert_eq!(
        events(&mut s),
        vec![ClientEvent::Disconnected {
            reason: DisconnectReason::LoggedOut
        }]
    );
    assert_eq!(s.send_text(BOB, "x", t0), Err(CommandError::NotLoggedIn));
}

#[test]
fn lost_ack_means_one_retransmission() {
    let t0 = Instant::now();
    let mut s = logged_in(t0);
    let r = s.send_text(BOB, "hello", t0).unwrap();
    let first = s.poll_transmit().unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    s.handle_timeout(t0 + Duration::from_secs(9));
    assert!(s.poll_transmit().is_none(), "not yet");
    s.handle_timeout(t0 + Duration::from_secs(10));
    assert_eq!(
        s.poll_transmit().unwrap(),
        first,
        "the same bytes, same SEQ_NUM"
    );
    feed(
        &mut s,
        r.seq,
        ServerPacket::Ack,
        t0 + Duration::from_secs(11),
    );
    s.handle_timeout(t0 + Duration::from_secs(60));
    assert!(s.poll_transmit().is_none());
}

#[test]
fn give_up_after_two_cycles_of_six_and_b_message_ack() {
    let t0 = Instant::now();
    let mut s = logged_in(t0);
    let r = s.send_text(BOB, "hello", t0).unwrap();
    sent(&mut s);
    let mut log = Vec::new(); // (second, packet)
    for sec in (10..=150).step_by(10) {
        let now = t0 + Duration::from_secs(sec);
        s.handle_timeout(now);
        for f in sent(&mut s) {
            log.push((sec, f.seq == r.seq, f.packet));
        }
        if s.state() == SessionState::Closed {
            break;
        }
    }
    let resends: Vec<u64> = log
        .iter()
        .filter(|(_, mine, _)| *mine)
        .map(|(t, ..)| *t)
        .collect();
    assert_eq!(resends, vec![10, 20, 30, 40, 50, 70, 80, 90, 100, 110, 120]);
    let bma: Vec<u64> = log
        .iter()
        .filter(|(_, _, p)| matches!(p, ClientPacket::SendTextCode { text, x1: 5 } if text == "B_MESSAGE_ACK"))
        .map(|(t, ..)| *t)
        .collect();
    assert_eq!(bma, vec![60, 130]);
    assert_eq!(
        events(&mut s),
        vec![ClientEvent::Disconnected {
            reason: DisconnectReason::ServerNotResponding
        }]
    );
    assert_eq!(s.state(), SessionState::Closed);
}

#[test]
fn login_without_answer_fails() {
    let t0 = Instant::now();
    let mut s = ClientSession::new();
    s.login(ME, "pw", LoginOptions::default(), t0).unwrap();
    let mut now = t0;
    while s.state() != SessionState::Closed {
        now = s.poll_timeout().unwrap();
        s.handle_timeout(now);
    }
    assert_eq!(now, t0 + Duration::from_secs(140));
    assert_eq!(
        events(&mut s),
        vec![ClientEvent::LoginFailed {
            reason: LoginFailure::NoResponse
        }]
    );
}

#[test]
fn keepalive_every_two_minutes() {
    let t0 = Instant::now();
    let mut s = logged_in(t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(120)));
    s.handle_timeout(t0 + Duration::from_secs(119));
    assert!(s.poll_transmit().is_none());
    let t1 = t0 + Duration::from_secs(120);
    s.handle_timeout(t1);
    let ka = sent(&mut s);
    assert_eq!(ka.len(), 1);
    assert_eq!(ka[0].packet, ClientPacket::KeepAlive);
    feed(&mut s, ka[0].seq, ServerPacket::Ack, t1);
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(120)));
    s.handle_timeout(t1 + Duration::from_secs(120));
    assert_eq!(sent(&mut s)[0].packet, ClientPacket::KeepAlive);
}

/// Client and server sessions over a link that loses and duplicates datagrams.
#[test]
fn lossy_link_delivers_everything_once() {
    let t0 = Instant::now();
    let mut now = t0;
    let mut client = ClientSession::new();
    let mut server = ServerSession::new(now);
    client
        .login(ME, "pw", LoginOptions::default(), now)
        .unwrap();
    let mut counter = 0u32;
    let mut received = Vec::new();
    let mut client_events = Vec::new();
    let mut server_sent_message = false;
    for _round in 0..200 {
        // client -> server: every 3rd datagram lost, every 4th duplicated
        while let Some(d) = client.poll_transmit() {
            counter += 1;
            if counter.is_multiple_of(3) {
                continue;
            }
            let copies = if counter.is_multiple_of(4) { 2 } else { 1 };
            for _ in 0..copies {
                if let Some(frame) = server.handle_datagram(&d, now).unwrap() {
                    match frame.packet {
                        ClientPacket::Login { login_seq, .. } => {
                            server.send(
                                &ServerPacket::LoginReply {
                                    uin: ME,
                                    ip: Ipv4Addr::LOCALHOST,
                                    login_seq,
                                },
                                now,
                            );
                        }
                        ClientPacket::SendMessage { text, .. } => received.push(text),
                        _ => {}
                    }
                }
            }
        }
        // server -> client, same losses
        while let Some(d) = server.poll_transmit() {
            counter += 1;
            if counter.is_multiple_of(3) {
                continue;
            }
            let copies = if counter.is_multiple_of(4) { 2 } else { 1 };
            for _ in 0..copies {
                client.handle_datagram(&d, now).unwrap();
            }
        }
        while let Some(e) = client.poll_event() {
            if matches!(e, ClientEvent::LoggedIn { .. }) {
                client.send_text(BOB, "one", now).unwrap();
                client.send_text(BOB, "two", now).unwrap();
            }
            client_events.push(e);
        }
        if client.state() == SessionState::LoggedIn && !server_sent_message {
            server_sent_message = true;
            server.send(
                &ServerPacket::ReceiveMessage {
                    from: BOB,
                    time: MessageTime::default(),
                    kind: 1,
                    text: "back".into(),
                },
                now,
            );
        }
        now += Duration::from_secs(5);
        client.handle_timeout(now);
        server.handle_timeout(now);
    }
    received.sort();
    assert_eq!(received, vec!["one".to_string(), "two".to_string()]);
    let messages = client_events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Message { .. }))
        .count();
    assert_eq!(messages, 1);
    assert_eq!(client.state(), SessionState::LoggedIn);
    assert!(
        server.is_alive(now),
        "keepalives kept the server session alive"
    );
}

#[test]
fn server_session_numbering_acks_and_give_up() {
    let t0 = Instant::now();
    let mut s = ServerSession::new(t0);
    let login = ClientPacket::KeepAlive.encode(5, ME);
    assert!(s.handle_datagram(&login, t0).unwrap().is_some());
    assert!(
        s.handle_datagram(&login, t0).unwrap().is_none(),
        "duplicate"
    );
    let out: Vec<_> = std::iter::from_fn(|| s.poll_transmit()).collect();
    assert_eq!(
        out,
        vec![ServerPacket::Ack.encode(5), ServerPacket::Ack.encode(5)]
    );
    assert_eq!(s.uin(), Some(ME));
    assert_eq!(
        s.send(&ServerPacket::UserOffline { uin: 1 }, t0),
        0,
        "the server counts from 0"
    );
    assert_eq!(s.send(&ServerPacket::UserOffline { uin: 2 }, t0), 1);
    std::iter::from_fn(|| s.poll_transmit()).count();
    assert!(s
        .handle_datagram(&ClientPacket::Ack.encode(0, ME), t0)
        .unwrap()
        .is_none());
    // Seq 1 is never acked: 6 transmissions, then the client is given up.
    let mut resent = 0;
    let mut now = t0;
    while s.is_alive(now) {
        now = s.poll_timeout().unwrap();
        s.handle_timeout(now);
        resent += std::iter::from_fn(|| s.poll_transmit()).count();
    }
    assert_eq!(resent, 5);
    assert_eq!(now, t0 + Duration::from_secs(70));
    // Silence alone also ends a session.
    let quiet = ServerSession::new(t0);
    assert!(quiet.is_alive(t0 + Duration::from_secs(299)));
    assert!(!quiet.is_alive(t0 + Duration::from_secs(300)));
}

fn message(text: &str) -> ServerPacket {
    ServerPacket::ReceiveMessage {
        from: BOB,
        time: MessageTime::from_unix_seconds(1_000_000_000),
        kind: 1,
        text: text.into(),
    }
}

/// What a client never acknowledged stays available, in order, after the server gave
/// up on it, and is handed out once.
#[test]
fn server_session_hands_out_unacknowledged_packets_after_giving_up() {
    let t0 = Instant::now();
    let mut s = ServerSession::new(t0);
    s.handle_datagram(&ClientPacket::KeepAlive.encode(1, ME), t0)
        .unwrap();
    let first = s.send(&message("one"), t0);
    let second = s.send(&ServerPacket::UserOffline { uin: 7 }, t0);
    let third = s.send(&message("three"), t0);
    std::iter::from_fn(|| s.poll_transmit()).count();
    s.handle_datagram(&ClientPacket::Ack.encode(second, ME), t0)
        .unwrap();

    let mut now = t0;
    while s.is_alive(now) {
        now = s.poll_timeout().unwrap();
        s.handle_timeout(now);
        std::iter::from_fn(|| s.poll_transmit()).count();
    }
    assert_eq!(now, t0 + Duration::from_secs(70), "given up, not idle");
    // Given up: no more retransmissions, only the idle limit is left to wait for.
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(230)));
    s.handle_timeout(now + Duration::from_secs(100));
    assert!(s.poll_transmit().is_none());

    let kept = s.take_unacknowledged();
    let kept: Vec<_> = kept.into_iter().map(|f| (f.seq, f.packet)).collect();
    assert_eq!(
        kept,
        vec![(first, message("one")), (third, message("three"))]
    );
    assert!(s.take_unacknowledged().is_empty(), "handed out once");
}

/// Taken from a live session (e.g. replaced by a new login): no longer resent.
#[test]
fn server_session_stops_resending_what_was_taken() {
    let t0 = Instant::now();
    let mut s = ServerSession::new(t0);
    let seq = s.send(&message("hi"), t0);
    std::iter::from_fn(|| s.poll_transmit()).count();
    let kept = s.take_unacknowledged();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].seq, &kept[0].packet), (seq, &message("hi")));
    s.handle_timeout(t0 + Duration::from_secs(10));
    assert!(s.poll_transmit().is_none());
    assert!(s.is_alive(t0 + Duration::from_secs(10)));
}
