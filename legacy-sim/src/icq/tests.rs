//! The ICQ simulator against the scriptable client and raw UDP sockets.

use super::*;
use icq_proto::{ClientEvent, MessageContent, MessageKind, SearchQuery, Status};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ALICE: u32 = 1001;
const BOB: u32 = 1002;
const CAROL: u32 = 1003;
const WAIT: Duration = Duration::from_secs(5);

fn config() -> Config {
    let yaml = r#"
listen: "127.0.0.1:0"
users:
  - { uin: 1001, password: alice1, nick: alice, first: Alice, last: Liddell, email: alice@example.org, contacts: [1002] }
  - { uin: 1002, password: bob2, nick: bob, first: Bob, email: bob@example.org, contacts: [1001], city: Umea, age: 25, sex: 2 }
  - { uin: 1003, password: carol3, nick: carol, first: Carol }
"#;
    serde_yaml::from_str(yaml).unwrap()
}

fn online(uin: u32) -> impl FnMut(&ClientEvent) -> bool {
    move |e| matches!(e, ClientEvent::ContactOnline { uin: u, .. } if *u == uin)
}

#[tokio::test]
async fn two_clients_see_each_other_and_chat() {
    let server = Server::start(config()).await.unwrap();
    let mut bob = Client::login(server.addr(), BOB, "bob2").await.unwrap();
    let mut alice = Client::login(server.addr(), ALICE, "alice1").await.unwrap();
    // Alice's contact list (from the config) includes Bob, who is online.
    assert!(alice.wait_for(WAIT, online(BOB)).await.is_some());
    // Bob lists Alice: he sees her log in.
    assert!(bob.wait_for(WAIT, online(ALICE)).await.is_some());

    alice
        .send_message_acked(BOB, "Hi Bob! café", WAIT)
        .await
        .unwrap();
    let Some(ClientEvent::Message { text, kind, .. }) = bob.wait_for_message(ALICE, WAIT).await
    else {
        panic!("no message");
    };
    assert_eq!((text.as_str(), kind), ("Hi Bob! café", MessageKind::Text));

    bob.set_status(Status::AWAY).await.unwrap();
    let status = alice
        .wait_for(WAIT, |e| matches!(e, ClientEvent::ContactStatus { .. }))
        .await;
    assert_eq!(
        status,
        Some(ClientEvent::ContactStatus {
            uin: BOB,
            status: Status::AWAY
        })
    );

    bob.logout().await;
    let gone = alice
        .wait_for(WAIT, |e| matches!(e, ClientEvent::ContactOffline { .. }))
        .await;
    assert_eq!(gone, Some(ClientEvent::ContactOffline { uin: BOB }));
}

#[tokio::test]
async fn offline_message_is_delivered_at_next_login_with_its_time() {
    let server = Server::start(config()).await.unwrap();
    let mut alice = Client::login(server.addr(), ALICE, "alice1").await.unwrap();
    let offline = alice
        .wait_for(WAIT, |e| matches!(e, ClientEvent::ContactOffline { .. }))
        .await;
    assert_eq!(offline, Some(ClientEvent::ContactOffline { uin: BOB }));
    let before = unix_now();
    alice
        .send_message_acked(BOB, "while you were out", WAIT)
        .await
        .unwrap();
    let after = unix_now();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let mut bob = Client::login(server.addr(), BOB, "bob2").await.unwrap();
    let Some(ClientEvent::Message {
        text, timestamp, ..
    }) = bob.wait_for_message(ALICE, WAIT).await
    else {
        panic!("no offline message");
    };
    assert_eq!(text, "while you were out");
    let sent_at = timestamp.to_unix_seconds().unwrap();
    assert!(
        sent_at >= before - before % 60 && sent_at <= after,
        "{timestamp:?}"
    );
    // Delivered once: a second login has nothing waiting.
    bob.logout().await;
    let mut bob = Client::login(server.addr(), BOB, "bob2").await.unwrap();
    assert!(bob
        .wait_for_message(ALICE, Duration::from_millis(500))
        .await
        .is_none());
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let server = Server::start(config()).await.unwrap();
    let err = Client::login(server.addr(), ALICE, "nope")
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("wrong password"), "{err}");
    let err = Client::login(server.addr(), 4242, "x").await.err().unwrap();
    assert!(err.to_string().contains("wrong password"), "{err}");
    let err = Client::login(server.addr(), ALICE, "123456789")
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("at most 8"), "{err}");
}

#[tokio::test]
async fn search_info_and_added() {
    let server = Server::start(config()).await.unwrap();
    let mut alice = Client::login(server.addr(), ALICE, "alice1").await.unwrap();
    let (found, more) = alice.search(SearchQuery::Uin(BOB), WAIT).await.unwrap();
    assert_eq!(
        (found.len(), found[0].nick.as_str(), more),
        (1, "bob", false)
    );
    let name = SearchQuery::Name {
        nick: String::new(),
        first: "carol".into(),
        last: String::new(),
    };
    let (found, _) = alice.search(name, WAIT).await.unwrap();
    assert_eq!(found.iter().map(|u| u.uin).collect::<Vec<_>>(), vec![CAROL]);
    let (found, _) = alice
        .search(SearchQuery::Email("BOB@example.org".into()), WAIT)
        .await
        .unwrap();
    assert_eq!(found[0].uin, BOB);
    let (found, _) = alice
        .search(SearchQuery::Email("none@x".into()), WAIT)
        .await
        .unwrap();
    assert!(found.is_empty());

    let info = alice.info(BOB, WAIT).await.unwrap();
    assert_eq!(
        (info.first.as_str(), info.email.as_str()),
        ("Bob", "bob@example.org")
    );
    let ext = alice.ext_info(BOB, WAIT).await.unwrap();
    assert_eq!(
        (ext.city.as_str(), ext.age, ext.sex, ext.country_code),
        ("Umea", 25, 2, 0xFFFF)
    );

    let mut carol = Client::login(server.addr(), CAROL, "carol3").await.unwrap();
    alice.add_contact(CAROL).await.unwrap();
    assert!(alice.wait_for(WAIT, online(CAROL)).await.is_some());
    let Some(ClientEvent::Message { content, .. }) = carol.wait_for_message(ALICE, WAIT).await
    else {
        panic!("no 'you were added'");
    };
    assert!(matches!(content, MessageContent::Added { nick, .. } if nick == "alice"));
}

/// Authorization requests, answers and contact lists go through the server like text,
/// also to a user who is offline (stored, then delivered at login).
#[tokio::test]
async fn authorization_and_contact_lists_are_relayed() {
    let server = Server::start(config()).await.unwrap();
    let mut alice = Client::login(server.addr(), ALICE, "alice1").await.unwrap();
    // Carol is offline: the request waits for her.
    alice
        .request_authorization(CAROL, "alice", "we met at the café")
        .await
        .unwrap();
    let mut carol = Client::login(server.addr(), CAROL, "carol3").await.unwrap();
    let Some(ClientEvent::Message { content, kind, .. }) =
        carol.wait_for_message(ALICE, WAIT).await
    else {
        panic!("no authorization request");
    };
    assert_eq!(kind, MessageKind::AuthRequest);
    assert!(
        matches!(&content, MessageContent::AuthRequest { nick, reason, .. }
            if nick == "alice" && reason == "we met at the café"),
        "{content:?}"
    );
    carol.answer_authorization(ALICE, true, "").await.unwrap();
    assert_eq!(alice.wait_for_authorization(CAROL, WAIT).await, Some(true));
    carol
        .answer_authorization(ALICE, false, "not now")
        .await
        .unwrap();
    let Some(ClientEvent::Message { content, .. }) = alice.wait_for_message(CAROL, WAIT).await
    else {
        panic!("no denial");
    };
    assert_eq!(
        content,
        MessageContent::AuthDenied {
            reason: "not now".into()
        }
    );
    carol
        .send_contacts(ALICE, &[(BOB, "bob"), (4242, "dave")])
        .await
        .unwrap();
    let Some(ClientEvent::Message { content, .. }) = alice.wait_for_message(CAROL, WAIT).await
    else {
        panic!("no contact list");
    };
    assert_eq!(
        content,
        MessageContent::Contacts(vec![(BOB, "bob".into()), (4242, "dave".into())])
    );
}

#[tokio::test]
async fn restart_on_the_same_address_sends_clients_back_to_login() {
    let mut server = Server::start(config()).await.unwrap();
    let addr = server.addr();
    let mut alice = Client::login(addr, ALICE, "alice1").await.unwrap();
    server.restart().await.unwrap();
    assert_eq!(server.addr(), addr);
    // The old session's next packet is answered with NOT_CONNECTED.
    alice.send_message(BOB, "anyone?").await.unwrap();
    let ended = alice
        .wait_for(WAIT, |e| matches!(e, ClientEvent::Disconnected { .. }))
        .await;
    assert!(ended.is_some());
    let mut again = Client::login(addr, ALICE, "alice1").await.unwrap();
    assert!(again
        .wait_for(WAIT, |e| matches!(e, ClientEvent::ContactOffline { .. }))
        .await
        .is_some());
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A hand-driven client on its own UDP socket: it sends exactly what a test says and
/// ACKs only when told, to play a client that dies or dawdles.
struct RawClient {
    socket: tokio::net::UdpSocket,
    uin: u32,
    next_seq: u16,
}

impl RawClient {
    async fn new(server: std::net::SocketAddr, uin: u32) -> RawClient {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.connect(server).await.unwrap();
        RawClient {
            socket,
            uin,
            next_seq: 1,
        }
    }

    async fn send(&mut self, packet: icq_proto::ClientPacket) -> u16 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.socket
            .send(&packet.encode(seq, self.uin))
            .await
            .unwrap();
        seq
    }

    async fn ack(&self, seq: u16) {
        let ack = icq_proto::ClientPacket::Ack.encode(seq, self.uin);
        self.socket.send(&ack).await.unwrap();
    }

    /// The next datagram from the server.
    async fn recv(&self) -> icq_proto::ServerFrame {
        let mut buf = [0u8; 2048];
        let n = tokio::time::timeout(WAIT, self.socket.recv(&mut buf))
            .await
            .expect("a datagram from the server in time")
            .unwrap();
        icq_proto::ServerPacket::decode(&buf[..n]).unwrap()
    }

    /// Sends LOGIN; returns its SEQ_NUM.
    async fn send_login(&mut self, password: &str) -> u16 {
        let login_seq = self.next_seq;
        self.send(icq_proto::ClientPacket::Login {
            tcp_port: 0,
            password: password.into(),
            ip: std::net::Ipv4Addr::LOCALHOST,
            status: Status::ONLINE,
            login_seq,
        })
        .await
    }

    /// Logs in and ACKs the LOGIN_REPLY, without sending CONTACT_LIST yet.
    async fn login(&mut self, password: &str) {
        let seq = self.send_login(password).await;
        assert_eq!(self.recv().await, ack_of(seq));
        let reply = self.recv().await;
        assert!(
            matches!(reply.packet, icq_proto::ServerPacket::LoginReply { .. }),
            "{reply:?}"
        );
        self.ack(reply.seq).await;
    }

    /// Receives until `n` RECEIVE_MESSAGEs came (ACKing them when `ack`); their texts.
    async fn messages(&self, n: usize, ack: bool) -> Vec<String> {
        let mut texts = Vec::new();
        while texts.len() < n {
            let frame = self.recv().await;
            if frame.packet != icq_proto::ServerPacket::Ack && ack {
                self.ack(frame.seq).await;
            }
            if let icq_proto::ServerPacket::ReceiveMessage { text, .. } = frame.packet {
                texts.push(text);
            }
        }
        texts
    }
}

fn ack_of(seq: u16) -> icq_proto::ServerFrame {
    icq_proto::ServerFrame {
        seq,
        packet: icq_proto::ServerPacket::Ack,
    }
}

/// The texts of the next `n` messages from `from`.
async fn texts_from(client: &mut Client, from: u32, n: usize) -> Vec<String> {
    let mut texts = Vec::new();
    for _ in 0..n {
        match client.wait_for_message(from, WAIT).await {
            Some(ClientEvent::Message { text, .. }) => texts.push(text),
            other => panic!("no message from {from} (got {other:?}) after {texts:?}"),
        }
    }
    texts
}

async fn wait_offline(server: &Server, uin: u32) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.online_users().await.contains(&uin) {
        assert!(tokio::time::Instant::now() < deadline, "{uin} still online");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn silent_server_acks_a_wrong_login_and_says_nothing_more() {
    let mut config = config();
    config.wrong_password = WrongPassword::Silent;
    let server = Server::start(config).await.unwrap();
    let mut raw = RawClient::new(server.addr(), ALICE).await;
    let wrong = raw.send_login("nope").await;
    assert_eq!(raw.recv().await, ack_of(wrong));
    // The right password from the same socket: the next datagrams are its ACK and
    // LOGIN_REPLY, so nothing (no BAD_PASSWORD) followed the first ACK.
    let right = raw.send_login("alice1").await;
    assert_eq!(raw.recv().await, ack_of(right));
    let reply = raw.recv().await;
    assert!(
        matches!(reply.packet, icq_proto::ServerPacket::LoginReply { uin: ALICE, login_seq, .. } if login_seq == right),
        "{reply:?}"
    );
    assert_eq!(server.online_users().await, vec![ALICE]);
}

#[tokio::test]
async fn forgotten_session_is_ignored_while_a_new_login_works() {
    let server = Server::start(config()).await.unwrap();
    let mut bob = Client::login(server.addr(), BOB, "bob2").await.unwrap();
    let mut alice = Client::login(server.addr(), ALICE, "alice1").await.unwrap();
    assert!(bob.wait_for(WAIT, online(ALICE)).await.is_some());

    assert!(server.forget_session(ALICE).await);
    assert!(!server.forget_session(ALICE).await, "already forgotten");
    let gone = bob
        .wait_for(WAIT, |e| matches!(e, ClientEvent::ContactOffline { .. }))
        .await;
    assert_eq!(gone, Some(ClientEvent::ContactOffline { uin: ALICE }));
    let lost = alice.send_message(BOB, "into the void").await.unwrap();

    // A new login (another address) works, and its message is the first Bob gets.
    let mut again = Client::login(server.addr(), ALICE, "alice1").await.unwrap();
    again
        .send_message_acked(BOB, "back again", WAIT)
        .await
        .unwrap();
    assert_eq!(texts_from(&mut bob, ALICE, 1).await, ["back again"]);
    // The old socket got no ACK and no NOT_CONNECTED (the server had both sent, if at
    // all, before it handled the new login).
    let answered = alice
        .wait_for(Duration::from_millis(300), |e| {
            matches!(e, ClientEvent::MessageAcked { seq } if *seq == lost.seq)
                || matches!(e, ClientEvent::Disconnected { .. })
        })
        .await;
    assert_eq!(answered, None);
}

/// (a) A client that dies without ACKing: at its next login it gets the message once.
#[tokio::test]
async fn message_a_dead_client_never_acked_is_delivered_once_at_the_next_login() {
    let mut config = config();
    config.idle_limit_secs = 2;
    let server = Server::start(config).await.unwrap();
    let mut dying = RawClient::new(server.addr(), BOB).await;
    dying.login("bob2").await;
    dying
        .send(icq_proto::ClientPacket::ContactList { uins: vec![] })
        .await;
    let mut alice = Client::login(server.addr(), ALICE, "alice1").await.unwrap();
    alice
        .send_message_acked(BOB, "did you get this?", WAIT)
        .await
        .unwrap();
    // Sent live to the dying client, which never ACKs and falls silent.
    assert_eq!(dying.messages(1, false).await, ["did you get this?"]);
    alice.logout().await;
    wait_offline(&server, BOB).await;

    let mut bob = Client::login(server.addr(), BOB, "bob2").await.unwrap();
    assert_eq!(texts_from(&mut bob, ALICE, 1).await, ["did you get this?"]);
    let mut alice = Client::login(server.addr(), ALICE, "alice1").await.unwrap();
    alice.send_message_acked(BOB, "marker", WAIT).await.unwrap();
    assert_eq!(texts_from(&mut bob, ALICE, 1).await, ["marker"], "once");
}

/// A client replaced by a new login of the same UIN: what it never ACKed goes to the
/// new session, in order, once.
#[tokio::test]
async fn messages_a_replaced_session_never_acked_go_to_the_new_one_in_order() {
    let server = Server::start(config()).await.unwrap();
    let mut old = RawClient::new(server.addr(), BOB).await;
    old.login("bob2").await;
    old.send(icq_proto::ClientPacket::ContactList { uins: vec![] })
        .await;
    let mut alice = Client::login(server.addr(), ALICE, "alice1").await.unwrap();
    for text in ["one", "two"] {
        alice.send_message_acked(BOB, text, WAIT).await.unwrap();
    }
    assert_eq!(old.messages(2, false).await, ["one", "two"]);

    let mut bob = Client::login(server.addr(), BOB, "bob2").await.unwrap();
    assert_eq!(texts_from(&mut bob, ALICE, 2).await, ["one", "two"]);
    alice.send_message_acked(BOB, "three", WAIT).await.unwrap();
    assert_eq!(texts_from(&mut bob, ALICE, 1).await, ["three"], "once");
}

/// (b) Live messages that arrive between LOGIN and the first CONTACT_LIST wait behind
/// the stored ones.
#[tokio::test]
async fn live_messages_before_the_contact_list_queue_behind_stored_ones() {
    let server = Server::start(config()).await.unwrap();
    let mut alice = Client::login(server.addr(), ALICE, "alice1").await.unwrap();
    alice
        .send_message_acked(BOB, "stored first", WAIT)
        .await
        .unwrap();
    let mut bob = RawClient::new(server.addr(), BOB).await;
    bob.login("bob2").await;
    assert_eq!(server.online_users().await, vec![ALICE, BOB]);
    alice
        .send_message_acked(BOB, "live second", WAIT)
        .await
        .unwrap();
    bob.send(icq_proto::ClientPacket::ContactList { uins: vec![] })
        .await;
    // Everything Bob received since LOGIN_REPLY, in order.
    assert_eq!(bob.messages(2, true).await, ["stored first", "live second"]);
}
