//! The simulator and the scriptable client over real loopback sockets.

use std::time::Duration;

use mig33_proto::{ClientEvent, DestinationType, Presence};

use super::{Client, Config, Server};

const WAIT: Duration = Duration::from_secs(5);

const YAML: &str = r#"
listen: 127.0.0.1:0
motd: hello from the simulator
users:
  - username: alice
    password: secret
    display_name: Alice
    groups: [{ id: 1, name: Friends }, { id: 2, name: Work }]
    contacts:
      - { username: bob, group: 1 }
      - { username: carol, group: 2, display_name: "Carol C" }
  - username: bob
    password: hunter2
    groups: [{ id: 1, name: mig33 Contacts }]
    contacts: [{ username: alice, group: 1 }]
  - username: carol
    password: пароль😀
chatrooms:
  - { name: lobby, description: Everyone welcome }
"#;

async fn server() -> Server {
    let config: Config = serde_yaml::from_str(YAML).unwrap();
    Server::start(config).await.unwrap()
}

#[test]
fn the_doc_example_parses() {
    let text = include_str!("mod.rs")
        .lines()
        .skip_while(|l| !l.contains("```yaml"))
        .skip(1)
        .take_while(|l| !l.contains("```"))
        .map(|l| {
            l.strip_prefix("//! ")
                .unwrap_or(l.trim_start_matches("//!"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let sim = crate::SimConfig::from_yaml(&text).unwrap();
    let config = sim.mig33.unwrap();
    assert_eq!(config.listen, "127.0.0.1:9119");
    assert_eq!(config.users.len(), 3);
    assert_eq!(config.chatrooms[1].description, "");
    assert_eq!(
        config.participant_separator,
        super::ParticipantSeparator::Comma
    );
}

#[tokio::test]
async fn login_ok_and_contacts_arrive() {
    let server = server().await;
    let mut alice = Client::login(server.addr(), "alice", "secret")
        .await
        .unwrap();
    let (groups, contacts) = alice.wait_contact_list(WAIT).await.unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[1].name, "Work");
    let names: Vec<_> = contacts
        .iter()
        .map(|c| {
            (
                c.contact_id,
                c.username.as_str(),
                c.display_name.as_str(),
                c.group_id,
            )
        })
        .collect();
    assert_eq!(
        names,
        [(1, "bob", "bob", Some(1)), (2, "carol", "Carol C", Some(2))]
    );
    assert!(contacts
        .iter()
        .all(|c| c.presence == Some(Presence::Offline)));
    assert_eq!(server.online_users(), ["alice"]);
}

#[tokio::test]
async fn non_ascii_password() {
    let server = server().await;
    Client::login(server.addr(), "carol", "пароль😀")
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_refused() {
    let server = server().await;
    let err = Client::login(server.addr(), "alice", "nope")
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("Incorrect username or password"),
        "{err:#}"
    );
    let err = Client::login(server.addr(), "mallory", "x")
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("Incorrect username or password"),
        "{err:#}"
    );
    assert!(server.online_users().is_empty());
}

#[tokio::test]
async fn presence_is_pushed_to_those_who_have_you_as_contact() {
    let server = server().await;
    let mut alice = Client::login(server.addr(), "alice", "secret")
        .await
        .unwrap();
    alice.wait_contact_list(WAIT).await.unwrap();

    let bob = Client::login(server.addr(), "bob", "hunter2")
        .await
        .unwrap();
    let online = alice
        .wait_for(WAIT, |e| matches!(e, ClientEvent::Presence { .. }))
        .await
        .unwrap();
    assert_eq!(
        online,
        ClientEvent::Presence {
            contact_id: 1,
            username: Some("bob".into()),
            presence: Presence::Available
        }
    );

    bob.set_presence(Presence::Away).await.unwrap();
    let away = alice
        .wait_for(WAIT, |e| matches!(e, ClientEvent::Presence { .. }))
        .await
        .unwrap();
    assert!(matches!(
        away,
        ClientEvent::Presence {
            presence: Presence::Away,
            ..
        }
    ));

    bob.logout().await;
    let gone = alice
        .wait_for(WAIT, |e| matches!(e, ClientEvent::Presence { .. }))
        .await
        .unwrap();
    assert!(matches!(
        gone,
        ClientEvent::Presence {
            presence: Presence::Offline,
            ..
        }
    ));
}

#[tokio::test]
async fn private_message_to_online_user_and_error_when_offline() {
    let server = server().await;
    let mut alice = Client::login(server.addr(), "alice", "secret")
        .await
        .unwrap();
    let mut bob = Client::login(server.addr(), "bob", "hunter2")
        .await
        .unwrap();

    let id = alice
        .send_private("bob", "hi bob, привет 👋")
        .await
        .unwrap();
    alice.wait_done(id, WAIT).await.unwrap();
    let m = bob.wait_message(WAIT).await.unwrap();
    assert_eq!(
        (
            m.source.as_str(),
            m.destination_type,
            m.destination.as_str(),
            m.content.as_str()
        ),
        (
            "alice",
            DestinationType::Private,
            "bob",
            "hi bob, привет 👋"
        )
    );

    let id = alice.send_private("carol", "are you there?").await.unwrap();
    let err = alice.wait_done(id, WAIT).await.unwrap_err();
    assert!(err.to_string().contains("carol is offline"), "{err:#}");
}

#[tokio::test]
async fn chatroom_relays_to_everyone_including_the_sender() {
    let server = server().await;
    let mut alice = Client::login(server.addr(), "alice", "secret")
        .await
        .unwrap();
    let mut bob = Client::login(server.addr(), "bob", "hunter2")
        .await
        .unwrap();
    alice.join_room("lobby").await.unwrap();
    bob.join_room("lobby").await.unwrap();

    // Alice hears that bob joined.
    let joined = alice
        .wait_for(WAIT, |e| {
            matches!(e, ClientEvent::Participants { participants, .. } if participants.len() == 2)
        })
        .await
        .unwrap();
    assert_eq!(
        joined,
        ClientEvent::Participants {
            room: "lobby".into(),
            participants: vec!["alice".into(), "bob".into()]
        }
    );

    alice.send_room("lobby", "hello room").await.unwrap();
    for client in [&mut alice, &mut bob] {
        let m = client.wait_message(WAIT).await.unwrap();
        assert_eq!(
            (
                m.source.as_str(),
                m.destination_type,
                m.destination.as_str(),
                m.content.as_str()
            ),
            ("alice", DestinationType::Chatroom, "lobby", "hello room")
        );
    }

    bob.leave_room("lobby").await.unwrap();
    let left = alice
        .wait_for(WAIT, |e| {
            matches!(e, ClientEvent::Participants { participants, .. } if participants.len() == 1)
        })
        .await
        .unwrap();
    assert!(
        matches!(left, ClientEvent::Participants { participants, .. } if participants == ["alice"])
    );

    let err = alice.join_room("nowhere").await.unwrap_err();
    assert!(format!("{err:#}").contains("No such chatroom"), "{err:#}");
}

#[tokio::test]
async fn alerts_arrive_as_system_messages() {
    let server = server().await;
    let mut alice = Client::login(server.addr(), "alice", "secret")
        .await
        .unwrap();
    assert!(server.send_alert("alice", "Maintenance at noon"));
    assert!(!server.send_alert("bob", "not online"));
    let alert = alice
        .wait_for(WAIT, |e| matches!(e, ClientEvent::Alert { .. }))
        .await
        .unwrap();
    assert!(matches!(alert, ClientEvent::Alert { text, .. } if text == "Maintenance at noon"));
    assert_eq!(server.broadcast_alert("all"), 1);
}

#[tokio::test]
async fn restart_at_the_same_port_and_reconnect() {
    let server = server().await;
    let addr = server.addr();
    let mut alice = Client::login(addr, "alice", "secret").await.unwrap();
    server.stop().await;
    let closed = alice
        .wait_for(WAIT, |e| matches!(e, ClientEvent::Closed(_)))
        .await
        .unwrap();
    assert!(matches!(closed, ClientEvent::Closed(_)));

    let mut config: Config = serde_yaml::from_str(YAML).unwrap();
    config.listen = addr.to_string();
    let server = Server::start(config).await.unwrap();
    assert_eq!(server.addr(), addr);
    Client::login(addr, "alice", "secret").await.unwrap();
}

#[tokio::test]
async fn second_login_replaces_the_first() {
    let server = server().await;
    let mut first = Client::login(server.addr(), "alice", "secret")
        .await
        .unwrap();
    let _second = Client::login(server.addr(), "alice", "secret")
        .await
        .unwrap();
    first
        .wait_for(WAIT, |e| matches!(e, ClientEvent::Closed(_)))
        .await
        .unwrap();
    assert_eq!(server.online_users(), ["alice"]);
}

#[tokio::test]
async fn cli_sends_a_private_message() {
    let server = server().await;
    let mut bob = Client::login(server.addr(), "bob", "hunter2")
        .await
        .unwrap();
    let args = [
        "--server",
        &server.addr().to_string(),
        "--user",
        "alice",
        "--password",
        "secret",
        "send",
        "bob",
        "from the cli",
    ]
    .map(String::from)
    .to_vec();
    super::client_cli(args).await.unwrap();
    assert_eq!(
        bob.wait_message(WAIT).await.unwrap().content,
        "from the cli"
    );

    let bad = super::client_cli(vec!["--server".into()]).await;
    assert!(bad.is_err());
}

/// With `participant_separator: comma` the simulator writes the participant list as
/// the servers that separate names with `,` do; the bytes are read off the socket.
#[tokio::test]
async fn participants_can_be_sent_comma_separated() {
    use mig33_proto::{ClientConfig, ClientSession, FrameDecoder};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut config: Config = serde_yaml::from_str(YAML).unwrap();
    config.participant_separator = super::ParticipantSeparator::Comma;
    let server = Server::start(config).await.unwrap();
    let mut bob = Client::login(server.addr(), "bob", "hunter2")
        .await
        .unwrap();
    bob.join_room("lobby").await.unwrap();

    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let mut alice = ClientSession::new(ClientConfig::new("alice", "secret"));
    let mut frames = FrameDecoder::new();
    let mut joined = false;
    let mut buf = [0u8; 4096];
    let names = tokio::time::timeout(WAIT, async {
        loop {
            if alice.is_logged_in() && !joined {
                alice.join_chatroom("lobby").unwrap();
                joined = true;
            }
            while let Some(out) = alice.poll_transmit() {
                stream.write_all(&out).await.unwrap();
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the simulator closed the connection");
            alice.handle_input(&buf[..n]);
            frames.feed(&buf[..n]);
            while let Some(frame) = frames.next_frame().unwrap() {
                if frame.packet_type == mig33_proto::ChatroomParticipants::TYPE {
                    return frame.field(2).unwrap_or_default().to_vec();
                }
            }
        }
    })
    .await
    .expect("CHATROOM_PARTICIPANTS in time");
    assert_eq!(String::from_utf8(names).unwrap(), "bob,alice");
    // The scriptable client (this crate's decoder) reads both names.
    let seen = bob
        .wait_for(WAIT, |e| {
            matches!(e, ClientEvent::Participants { participants, .. } if participants.len() == 2)
        })
        .await
        .unwrap();
    assert!(
        matches!(seen, ClientEvent::Participants { participants, .. } if participants == ["bob", "alice"])
    );
}

async fn flood_protected_server() -> Server {
    let mut config: Config = serde_yaml::from_str(YAML).unwrap();
    config.flood_limit = Some(super::FloodLimit {
        messages: 5,
        seconds: 1,
    });
    Server::start(config).await.unwrap()
}

/// Counts bob's messages from alice until `n` arrived or nothing more comes.
async fn messages_for(bob: &mut Client, n: usize) -> Vec<String> {
    let mut texts = Vec::new();
    while texts.len() < n {
        match bob.wait_message(WAIT).await {
            Ok(m) => texts.push(m.content),
            Err(_) => break,
        }
    }
    texts
}

/// An unpaced burst crosses the flood limit: the message that crossed it is refused,
/// the client is told why and disconnected, and nothing after it is relayed.
#[tokio::test]
async fn a_client_sending_too_fast_is_kicked_for_flooding() {
    let server = flood_protected_server().await;
    let mut alice = Client::login(server.addr(), "alice", "secret")
        .await
        .unwrap();
    let mut bob = Client::login(server.addr(), "bob", "hunter2")
        .await
        .unwrap();
    for n in 0..10 {
        // The connection may already be gone for the last ones.
        let _ = alice.send_private("bob", &format!("m{n}")).await;
    }
    let alert = alice
        .wait_for(WAIT, |e| matches!(e, ClientEvent::Alert { .. }))
        .await
        .unwrap();
    assert!(
        matches!(&alert, ClientEvent::Alert { text, .. } if text.contains("flooding")),
        "{alert:?}"
    );
    alice
        .wait_for(WAIT, |e| matches!(e, ClientEvent::Closed(_)))
        .await
        .unwrap();
    assert_eq!(server.flood_kicks(), ["alice"]);
    assert_eq!(server.online_users(), ["bob"]);
    let received = messages_for(&mut bob, 5).await;
    assert_eq!(received, ["m0", "m1", "m2", "m3", "m4"]);
    assert!(
        bob.wait_message(Duration::from_millis(300)).await.is_err(),
        "nothing after the limit is relayed"
    );
}

/// The same ten messages, paced at the limit (five, a pause of a window, five), all
/// arrive and nobody is kicked.
#[tokio::test]
async fn a_client_within_the_flood_limit_is_not_kicked() {
    let server = flood_protected_server().await;
    let mut alice = Client::login(server.addr(), "alice", "secret")
        .await
        .unwrap();
    let mut bob = Client::login(server.addr(), "bob", "hunter2")
        .await
        .unwrap();
    for n in 0..10 {
        if n == 5 {
            // The pacing under test, not a wait for something to happen.
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        let id = alice.send_private("bob", &format!("m{n}")).await.unwrap();
        alice.wait_done(id, WAIT).await.unwrap();
    }
    let received = messages_for(&mut bob, 10).await;
    let expected: Vec<String> = (0..10).map(|n| format!("m{n}")).collect();
    assert_eq!(received, expected);
    assert!(server.flood_kicks().is_empty());
    assert_eq!(server.online_users(), ["alice", "bob"]);
}
