//! Client and server machines talking to each other in memory.

use std::time::{Duration, Instant};

use mig33_proto::*;

/// A server application for one user, "alice" / "secret", with one contact.
struct Harness {
    client: ClientSession,
    server: ServerSession,
    server_events: Vec<ServerEvent>,
    /// Answer JOIN_CHATROOM for this room with ERROR.
    forbidden_room: &'static str,
}

impl Harness {
    fn new(password: &str) -> Harness {
        Harness {
            client: ClientSession::new(ClientConfig::new("alice", password)),
            server: ServerSession::new("Xy7kQ2", "sess-1"),
            server_events: Vec::new(),
            forbidden_room: "vip",
        }
    }

    /// Moves bytes both ways and lets the server application answer, until quiet.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            if let Some(bytes) = self.client.poll_transmit() {
                self.server.handle_input(&bytes);
                moved = true;
            }
            while let Some(event) = self.server.poll_event() {
                self.answer(&event);
                self.server_events.push(event);
                moved = true;
            }
            if let Some(bytes) = self.server.poll_transmit() {
                self.client.handle_input(&bytes);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    fn answer(&mut self, event: &ServerEvent) {
        match event {
            ServerEvent::LoginAttempt { password_hash, .. } => {
                if *password_hash == self.server.expected_hash("secret") {
                    let ok = LoginOk {
                        motd: Some("welcome".into()),
                        ..LoginOk::default()
                    };
                    self.server.accept_login(ok);
                } else {
                    self.server.reject_login("Incorrect password");
                }
            }
            ServerEvent::Request {
                transaction_id,
                request,
            } => {
                let txn = *transaction_id;
                match request {
                    ClientRequest::GetContacts => {
                        let groups = [Group {
                            name: "Friends".into(),
                            group_id: 1,
                        }];
                        let contacts = [Contact {
                            username: "bob".into(),
                            display_name: "Bob".into(),
                            group_id: Some(1),
                            contact_id: 7,
                            presence: Some(Presence::Offline),
                            ..Contact::default()
                        }];
                        self.server.send_contact_list(txn, &groups, &contacts);
                    }
                    // A list longer than the client keeps.
                    ClientRequest::GetChatrooms => {
                        for i in 0..MAX_LISTED_ROOMS + 5 {
                            let room = Chatroom {
                                name: format!("room{i}"),
                                description: None,
                                participant_count: Some(1),
                            };
                            self.server.reply(txn, room);
                        }
                        self.server.reply(txn, GetChatroomsComplete {});
                    }
                    ClientRequest::JoinChatroom(room) if room == self.forbidden_room => {
                        self.server.reply_error(txn, "room is full");
                    }
                    ClientRequest::Message(m)
                        if m.destination_type == DestinationType::Chatroom =>
                    {
                        self.server.reply_ok(txn);
                        self.server.push(m.clone());
                    }
                    _ => self.server.reply_ok(txn),
                }
            }
            _ => {}
        }
    }

    fn client_events(&mut self) -> Vec<ClientEvent> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }
}

fn logged_in() -> Harness {
    let mut h = Harness::new("secret");
    h.pump();
    assert!(h.client.is_logged_in());
    h.client_events();
    h
}

#[test]
fn login_then_contact_list() {
    let mut h = Harness::new("secret");
    h.pump();
    let events = h.client_events();
    match &events[..] {
        [ClientEvent::LoggedIn { session_id, info }, ClientEvent::ContactList { groups, contacts }] =>
        {
            assert_eq!(session_id.as_deref(), Some("sess-1"));
            assert_eq!(info.motd.as_deref(), Some("welcome"));
            assert_eq!(groups[0].name, "Friends");
            assert_eq!(contacts[0].username, "bob");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.server.username(), Some("alice"));
    assert!(matches!(
        &h.server_events[0],
        ServerEvent::LoginAttempt { username, .. } if username == "alice"
    ));
}

#[test]
fn wrong_password_fails_with_the_reason() {
    let mut h = Harness::new("guess");
    h.pump();
    let events = h.client_events();
    match &events[..] {
        [ClientEvent::Closed(CloseReason::LoginFailed(e))] => {
            assert_eq!(e.text, "Incorrect password");
            assert_eq!(e.code, Some(1));
        }
        other => panic!("{other:?}"),
    }
    assert!(h.client.is_closed());
    assert!(h.server.is_closed());
}

#[test]
fn commands_before_login_are_refused() {
    let mut h = Harness::new("secret");
    assert_eq!(h.client.join_chatroom("x"), Err(CommandError::NotLoggedIn));
}

#[test]
fn join_result_is_reported_against_its_request() {
    let mut h = logged_in();
    let ok_id = h.client.join_chatroom("lobby").unwrap();
    let err_id = h.client.join_chatroom("vip").unwrap();
    h.pump();
    let events = h.client_events();
    assert_eq!(
        events,
        [
            ClientEvent::RequestDone {
                id: ok_id,
                request: Request::JoinChatroom("lobby".into()),
                result: Ok(()),
            },
            ClientEvent::RequestDone {
                id: err_id,
                request: Request::JoinChatroom("vip".into()),
                result: Err(ServerError {
                    code: Some(1),
                    text: "room is full".into()
                }),
            },
        ]
    );
    assert!(h.client.joined_rooms().contains("lobby"));
    assert!(!h.client.joined_rooms().contains("vip"));
}

#[test]
fn chatroom_message_echo_and_server_sets_the_source() {
    let mut h = logged_in();
    h.client.send_chatroom("lobby", "hello room").unwrap();
    h.pump();
    let events = h.client_events();
    assert!(matches!(
        &events[0],
        ClientEvent::RequestDone { result: Ok(()), .. }
    ));
    match &events[1] {
        ClientEvent::Message(m) => {
            assert_eq!(m.source, "alice");
            assert_eq!(m.destination_type, DestinationType::Chatroom);
            assert_eq!(m.content, "hello room");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn presence_push_names_the_contact() {
    let mut h = logged_in();
    h.server.push(ContactPresence {
        presence: Presence::Away,
        contact_id: 7,
    });
    h.pump();
    assert_eq!(
        h.client_events(),
        [ClientEvent::Presence {
            contact_id: 7,
            username: Some("bob".into()),
            presence: Presence::Away
        }]
    );
    assert_eq!(h.client.contacts()[&7].presence, Some(Presence::Away));
}

#[test]
fn alert_becomes_a_system_message() {
    let mut h = logged_in();
    h.server.push(Alert {
        description: Some("Maintenance at noon".into()),
        text: Some("mig33".into()),
        kind: Some(1),
        ..Alert::default()
    });
    h.pump();
    assert_eq!(
        h.client_events(),
        [ClientEvent::Alert {
            text: "Maintenance at noon".into(),
            invoker: Some("mig33".into()),
            data: None
        }]
    );
}

#[test]
fn a_chatroom_list_is_kept_to_its_bound() {
    let mut h = logged_in();
    h.client.get_chatrooms().unwrap();
    h.pump();
    let events = h.client_events();
    let [ClientEvent::Chatrooms(rooms)] = &events[..] else {
        panic!("{events:?}");
    };
    assert_eq!(rooms.len(), MAX_LISTED_ROOMS);
    assert_eq!(rooms[0].name, "room0");
    assert_eq!(
        rooms[MAX_LISTED_ROOMS - 1].name,
        format!("room{}", MAX_LISTED_ROOMS - 1)
    );
}

#[test]
fn participants_push() {
    let mut h = logged_in();
    // As a server that separates the names with commas writes it.
    h.server.push(ChatroomParticipants {
        participants: UsernameList::new(vec!["alice".into(), "bob".into()], ListSeparator::Comma),
        name: "lobby".into(),
    });
    h.pump();
    assert_eq!(
        h.client_events(),
        [ClientEvent::Participants {
            room: "lobby".into(),
            participants: vec!["alice".into(), "bob".into()]
        }]
    );
}

#[test]
fn keepalive_pings_and_replies() {
    let mut h = logged_in();
    let t0 = Instant::now();
    h.client.handle_timeout(t0);
    assert_eq!(h.client.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    for i in 1..=5 {
        let t = t0 + Duration::from_secs(60 * i);
        h.client.handle_timeout(t);
        let bytes = h.client.poll_transmit().expect("a PING");
        let env = Envelope::decode_bytes(&bytes).unwrap();
        assert_eq!(env.packet, Packet::Ping(Ping {}));
        h.server.handle_input(&bytes);
        let reply = h.server.poll_transmit().unwrap();
        assert_eq!(
            Envelope::decode_bytes(&reply).unwrap().transaction_id,
            env.transaction_id
        );
        h.client.handle_input(&reply);
    }
    assert!(!h.client.is_closed());
}

#[test]
fn keepalive_gives_up_after_two_silent_intervals() {
    let mut h = logged_in();
    let t0 = Instant::now();
    h.client.handle_timeout(t0);
    h.client.handle_timeout(t0 + Duration::from_secs(60)); // PING, unanswered
    h.client.handle_timeout(t0 + Duration::from_secs(120)); // PING again
    assert!(!h.client.is_closed());
    h.client.handle_timeout(t0 + Duration::from_secs(180)); // 2 intervals since the first
    assert!(h.client.is_closed());
    assert_eq!(
        h.client_events(),
        [ClientEvent::Closed(CloseReason::Timeout)]
    );
    assert_eq!(h.client.poll_timeout(), None);
}

#[test]
fn early_timeout_calls_do_nothing() {
    let mut h = logged_in();
    let t0 = Instant::now();
    h.client.handle_timeout(t0);
    h.client.handle_timeout(t0 + Duration::from_secs(59));
    assert_eq!(h.client.poll_transmit(), None);
}

#[test]
fn unanswered_login_times_out() {
    let mut client = ClientSession::new(ClientConfig::new("alice", "secret"));
    let t0 = Instant::now();
    client.handle_timeout(t0);
    client.handle_timeout(t0 + Duration::from_secs(60));
    client.handle_timeout(t0 + Duration::from_secs(120));
    assert!(client.is_closed());
}

#[test]
fn server_answers_ping_before_login_and_refuses_requests() {
    let mut server = ServerSession::new("c", "s");
    server.handle_input(&Packet::from(Ping {}).encode(9));
    server.handle_input(&Packet::from(GetContacts {}).encode(10));
    let bytes = server.poll_transmit().unwrap();
    let mut d = FrameDecoder::new();
    d.feed(&bytes);
    let pong = d.next_raw().unwrap().unwrap();
    assert_eq!((pong.packet_type, pong.transaction_id), (3, 9));
    let error = d.next_raw().unwrap().unwrap();
    assert_eq!((error.packet_type, error.transaction_id), (0, 10));
}

#[test]
fn server_idle_timeout() {
    let mut server = ServerSession::new("c", "s").with_idle_timeout(Duration::from_secs(100));
    let t0 = Instant::now();
    server.handle_timeout(t0);
    server.handle_timeout(t0 + Duration::from_secs(50));
    assert!(!server.is_closed());
    server.handle_timeout(t0 + Duration::from_secs(100));
    assert!(server.is_closed());
}

#[test]
fn logout_closes_both_sides() {
    let mut h = logged_in();
    h.client.logout();
    h.pump();
    assert!(h.client.is_closed());
    assert!(h.server.is_closed());
    assert!(h.server_events.iter().any(|e| matches!(
        e,
        ServerEvent::Request {
            request: ClientRequest::Logout,
            ..
        }
    )));
}

#[test]
fn garbage_closes_the_client_with_a_protocol_error() {
    let mut h = logged_in();
    h.client.handle_input(&[0x07, 0, 0]);
    assert!(matches!(
        h.client_events()[..],
        [ClientEvent::Closed(CloseReason::Protocol(
            DecodeError::BadMagic(7)
        ))]
    ));
}
