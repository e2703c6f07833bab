//! End-to-end tests of the mig33 network: a real Synapse, the bridge binary, the mig33
//! simulator in this process and scripted mig33 users (`legacy_sim::mig33::client`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use e2e_tests::bridge::{environment, BridgeProcess, BridgeSlot, SlotOptions};
use e2e_tests::{wait_until, Synapse, TestUser};
use legacy_sim::mig33::{client::Client, ChatroomConfig, Config, ContactConfig, GroupConfig};
use legacy_sim::mig33::{FloodLimit, ParticipantSeparator, Server, UserConfig};
use mig33_proto::{ClientEvent, Presence};
use reqwest::Method;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const SIM_WAIT: Duration = Duration::from_secs(30);
const SLOTS: usize = 15;

/// Every slot has mig33 enabled (the registration's ghost namespace depends on it); the
/// server address is a placeholder replaced when each test starts its bridge.
fn env(slot: usize) -> (&'static Synapse, &'static BridgeSlot) {
    let (synapse, slots) = environment(SLOTS, |i| {
        SlotOptions {
        networks_yaml: format!(
            "  mig33:\n    enabled: true\n    server: \"127.0.0.1:1\"\n    ghost_template: \"s{i}mig33_{{id}}\"\n"
        ),
            ..SlotOptions::default()
    }
    });
    (synapse, &slots[slot])
}

fn user(username: &str, password: &str, display: Option<&str>) -> UserConfig {
    UserConfig {
        username: username.into(),
        password: password.into(),
        display_name: display.map(Into::into),
        groups: Vec::new(),
        contacts: Vec::new(),
    }
}

fn contact(username: &str, group: Option<i32>, display: Option<&str>) -> ContactConfig {
    ContactConfig {
        username: username.into(),
        group,
        display_name: display.map(Into::into),
    }
}

/// alice and dave are bridged; bob and carol are scripted. alice has bob (Friends) and
/// carol (Work); bob and carol have alice; everybody may use the `lobby` chatroom.
fn sim_config(listen: &str) -> Config {
    let mut alice = user("alice", "alicepw", Some("Alice A"));
    alice.groups = vec![
        GroupConfig {
            id: 1,
            name: "Friends".into(),
        },
        GroupConfig {
            id: 2,
            name: "Work".into(),
        },
    ];
    alice.contacts = vec![
        contact("bob", Some(1), Some("Bobby")),
        contact("carol", Some(2), None),
    ];
    let mut bob = user("bob", "bobpw", Some("Bob B"));
    bob.contacts = vec![contact("alice", None, None)];
    let mut carol = user("carol", "carolpw", Some("Carol C"));
    carol.contacts = vec![contact("alice", None, None), contact("dave", None, None)];
    let dave = user("dave", "davepw", Some("Dave D"));
    Config {
        listen: listen.into(),
        motd: None,
        users: vec![alice, bob, carol, dave],
        chatrooms: vec![ChatroomConfig {
            name: "lobby".into(),
            description: "Everyone welcome".into(),
        }],
        participant_separator: ParticipantSeparator::Semicolon,
        flood_limit: None,
    }
}

async fn start_sim() -> Server {
    Server::start(sim_config("127.0.0.1:0"))
        .await
        .expect("mig33 simulator starts")
}

fn start_bridge(synapse: &Synapse, slot: &BridgeSlot, server: &str) -> BridgeProcess {
    slot.start_with_networks(synapse, Some(&slot.network_yaml("mig33", server, &[])))
        .expect("bridge starts")
}

fn body(event: &Value) -> &str {
    event["content"]["body"].as_str().unwrap_or_default()
}

fn from_bot<'a>(slot: &'a BridgeSlot, needle: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e| e["sender"] == slot.bot.as_str() && body(e).contains(needle)
}

fn message_from<'a>(sender: &'a str, text: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e| e["type"] == "m.room.message" && e["sender"] == sender && body(e) == text
}

async fn count(user: &TestUser, room: &str, pred: impl Fn(&Value) -> bool) -> usize {
    user.messages(room)
        .await
        .expect("messages")
        .iter()
        .filter(|e| pred(e))
        .count()
}

async fn register(synapse: &Synapse, slot: &BridgeSlot, name: &str) -> TestUser {
    synapse
        .register_user(&slot.user_localpart(name), "pw", false)
        .await
        .expect("register user")
}

/// Sends a command and waits for the bot's message containing `expect` (the `nth`
/// such message, counting from 1, for texts that repeat such as "Connected").
async fn command(user: &TestUser, slot: &BridgeSlot, room: &str, text: &str, expect: &str) {
    user.send_text(room, text).await.expect("send");
    wait_bot(user, slot, room, expect, 1).await;
}

async fn wait_bot(user: &TestUser, slot: &BridgeSlot, room: &str, expect: &str, nth: usize) {
    let what = format!("bot message #{nth} containing {expect:?}");
    let result = wait_until(WAIT, &what, || async {
        let n = user
            .messages(room)
            .await?
            .iter()
            .filter(|e| from_bot(slot, expect)(e))
            .count();
        Ok((n >= nth).then_some(()))
    })
    .await;
    if let Err(e) = result {
        let seen: Vec<String> = user
            .messages(room)
            .await
            .unwrap_or_default()
            .iter()
            .filter(|e| e["type"] == "m.room.message")
            .map(|e| format!("{}: {}", e["sender"], body(e)))
            .collect();
        panic!("{e:#}\nseen:\n  {}", seen.join("\n  "));
    }
}

/// Logs in to mig33 and waits for the connected notice.
async fn login(user: &TestUser, slot: &BridgeSlot, room: &str, name: &str, password: &str) {
    command(
        user,
        slot,
        room,
        &format!("login mig33 {name} {password}"),
        &format!("Connected to mig33 as {name}"),
    )
    .await;
}

/// Waits for an invite to a room with this name (from the invite's stripped state),
/// joins it and returns its id.
async fn join_invite_named(user: &TestUser, name: &str) -> String {
    join_invite(user, &format!("an invite to {name:?}"), |e| {
        e["type"] == "m.room.name" && e["content"]["name"] == name
    })
    .await
}

/// A `timeout` for an initial sync that no earlier call of this test binary used:
/// Synapse caches a sync response for a while per (user, timeout, filter, ...), and a
/// different `timeout` (irrelevant for an initial sync) gets a fresh one.
fn fresh_timeout() -> String {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    CALLS.fetch_add(1, Ordering::Relaxed).to_string()
}

/// Waits for an invite whose stripped state has an event matching `pred`, joins it and
/// returns its id. (Not `TestUser::wait_for_invite`: see the comment on `timeout`.)
async fn join_invite(user: &TestUser, what: &str, pred: impl Fn(&Value) -> bool) -> String {
    let filter = r#"{"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]},"room":{"timeline":{"limit":0},"ephemeral":{"not_types":["*"]},"account_data":{"not_types":["*"]}}}"#;
    let room = wait_until(WAIT, what, || async {
        let timeout = fresh_timeout();
        let resp = user
            .request(
                Method::GET,
                "/sync",
                &[("filter", filter), ("timeout", &timeout)],
                None,
            )
            .await?;
        let Some(rooms) = resp["rooms"]["invite"].as_object() else {
            return Ok(None);
        };
        Ok(rooms.iter().find_map(|(id, room)| {
            room["invite_state"]["events"]
                .as_array()?
                .iter()
                .any(&pred)
                .then(|| id.clone())
        }))
    })
    .await
    .expect("invite");
    user.join(&room).await.expect("join invited room");
    room
}

async fn wait_member(user: &TestUser, room: &str, member: &str, present: bool) {
    wait_until(
        WAIT,
        &format!("{member} to be joined={present} in {room}"),
        || async {
            let members = user.joined_members(room).await?;
            Ok((members.iter().any(|m| m == member) == present).then_some(()))
        },
    )
    .await
    .expect("membership");
}

async fn wait_presence(user: &TestUser, ghost: &str, presence: &str, status: Option<&str>) {
    let what = format!("{ghost} presence {presence} {status:?}");
    wait_until(WAIT, &what, || async {
        let p = user.get_presence(ghost).await?;
        let status_ok = status.is_none_or(|s| p["status_msg"] == s);
        Ok((p["presence"] == presence && status_ok).then_some(()))
    })
    .await
    .expect("ghost presence");
}

/// A message from `from` with this text, skipping everything else the client sees.
async fn wait_legacy_message(client: &mut Client, from: &str, text: &str) {
    client
        .wait_for(
            SIM_WAIT,
            |e| matches!(e, ClientEvent::Message(m) if m.source == from && m.content == text),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{} never got {text:?} from {from}: {e:#}",
                client.username()
            )
        });
}

/// A stand-in server that refuses every login with its own ERROR text.
async fn refusing_server(reason: &'static str) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut session = mig33_proto::ServerSession::new("challenge", "session");
                let mut buf = [0u8; 4096];
                loop {
                    while let Some(event) = session.poll_event() {
                        if let mig33_proto::ServerEvent::LoginAttempt { .. } = event {
                            session.reject_login(reason);
                        }
                    }
                    while let Some(out) = session.poll_transmit() {
                        if stream.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => session.handle_input(&buf[..n]),
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn login_success_and_clear_login_errors() {
    let (synapse, slot) = env(0);

    // A server that answers the login with its own ERROR: the user reads its reason.
    let refusing = refusing_server("Service suspended for maintenance").await;
    let mut bridge = start_bridge(synapse, slot, &refusing.to_string());
    let alice = register(synapse, slot, "alice").await;
    let room = slot.management_room(&alice).await;
    command(
        &alice,
        slot,
        &room,
        "login mig33 alice alicepw",
        "Login to mig33 failed: the server refused the login: Service suspended for maintenance",
    )
    .await;
    command(&alice, slot, &room, "list", "You have no logins").await;
    // A clean stop: after kill -9 the bridge replays Matrix events it had not marked
    // done, and the replayed `login` would succeed against the simulator below.
    assert!(bridge.terminate(), "the bridge stops cleanly");

    let sim = start_sim().await;
    let _bridge = start_bridge(synapse, slot, &sim.addr().to_string());
    command(
        &alice,
        slot,
        &room,
        "login mig33 alice wrongpassword",
        "Login to mig33 failed: the server refused the login: Incorrect username or password",
    )
    .await;
    command(&alice, slot, &room, "list", "You have no logins").await;
    login(&alice, slot, &room, "alice", "alicepw").await;
    assert_eq!(sim.online_users(), vec!["alice".to_owned()]);

    let log = std::fs::read_to_string(slot.log_path()).unwrap();
    assert!(
        !log.contains("alicepw") && !log.contains("wrongpassword"),
        "passwords must never be logged"
    );
}

#[tokio::test]
async fn contacts_become_ghosts_in_the_space_and_survive_a_restart() {
    let (synapse, slot) = env(1);
    let sim = start_sim().await;
    let server = sim.addr().to_string();
    let mut bridge = start_bridge(synapse, slot, &server);
    let alice = register(synapse, slot, "alice").await;
    let room = slot.management_room(&alice).await;
    login(&alice, slot, &room, "alice", "alicepw").await;

    let space = join_invite_named(&alice, "mig33 (alice)").await;
    let (bob, carol) = (slot.ghost("mig33", "bob"), slot.ghost("mig33", "carol"));
    wait_member(&alice, &space, &bob, true).await;
    wait_member(&alice, &space, &carol, true).await;
    assert_eq!(
        alice.get_displayname(&bob).await.unwrap().as_deref(),
        Some("Bobby (mig33)")
    );
    assert_eq!(
        alice.get_displayname(&carol).await.unwrap().as_deref(),
        Some("Carol C (mig33)")
    );
    // Adding a contact: the server pushes the new entry, which becomes a ghost too.
    command(&alice, slot, &room, "add mig33 dave Friends", "Added dave").await;
    let dave = slot.ghost("mig33", "dave");
    wait_member(&alice, &space, &dave, true).await;
    command(
        &alice,
        slot,
        &room,
        "add mig33 erin Nosuchgroup",
        "no mig33 group",
    )
    .await;
    let rooms_before = alice.joined_rooms().await.unwrap().len();

    // kill -9 and start again: the login resumes with the same space and ghosts.
    bridge.kill9();
    // The resumed login comes back without a "Connected" notice: the simulator shows it.
    wait_until(WAIT, "the simulator to notice the kill", || async {
        Ok((!sim.online_users().contains(&"alice".to_owned())).then_some(()))
    })
    .await
    .unwrap();
    let _bridge = start_bridge(synapse, slot, &server);
    wait_online(&sim, "alice").await;
    command(&alice, slot, &room, "ping", "Pong").await;
    assert_eq!(alice.joined_rooms().await.unwrap().len(), rooms_before);
    let members = alice.joined_members(&space).await.unwrap();
    assert!(members.contains(&bob) && members.contains(&carol) && members.contains(&dave));
    assert_eq!(
        alice.get_displayname(&bob).await.unwrap().as_deref(),
        Some("Bobby (mig33)")
    );
}

#[tokio::test]
async fn presence_both_ways() {
    let (synapse, slot) = env(2);
    let sim = start_sim().await;
    let _bridge = start_bridge(synapse, slot, &sim.addr().to_string());
    let mut bob = Client::login(sim.addr(), "bob", "bobpw").await.unwrap();
    let alice = register(synapse, slot, "alice").await;
    let room = slot.management_room(&alice).await;
    login(&alice, slot, &room, "alice", "alicepw").await;
    join_invite_named(&alice, "mig33 (alice)").await;
    let ghost = slot.ghost("mig33", "bob");
    wait_presence(&alice, &ghost, "online", None).await;

    bob.set_presence(Presence::Away).await.unwrap();
    wait_presence(&alice, &ghost, "unavailable", Some("Away")).await;
    bob.set_presence(Presence::Busy).await.unwrap();
    wait_presence(&alice, &ghost, "unavailable", Some("Busy")).await;
    bob.set_presence(Presence::Roaming).await.unwrap();
    wait_presence(&alice, &ghost, "online", Some("Roaming")).await;

    // Matrix -> mig33: bob has alice as a contact and sees her presence pushes.
    command(&alice, slot, &room, "status away", "status set to away").await;
    bob.wait_for(SIM_WAIT, |e| {
        matches!(e, ClientEvent::Presence { username: Some(u), presence: Presence::Away, .. } if u == "alice")
    })
    .await
    .expect("bob sees alice away");
    command(&alice, slot, &room, "status dnd", "status set to dnd").await;
    bob.wait_for(SIM_WAIT, |e| {
        matches!(e, ClientEvent::Presence { username: Some(u), presence: Presence::Busy, .. } if u == "alice")
    })
    .await
    .expect("bob sees alice busy");

    bob.logout().await;
    wait_presence(&alice, &ghost, "offline", None).await;
}

#[tokio::test]
async fn private_messages_both_ways() {
    let (synapse, slot) = env(3);
    let sim = start_sim().await;
    let _bridge = start_bridge(synapse, slot, &sim.addr().to_string());
    let mut bob = Client::login(sim.addr(), "bob", "bobpw").await.unwrap();
    let alice = register(synapse, slot, "alice").await;
    let room = slot.management_room(&alice).await;
    login(&alice, slot, &room, "alice", "alicepw").await;

    let ghost = slot.ghost("mig33", "bob");
    bob.send_private("alice", "hello from mig33").await.unwrap();
    let dm = join_invite(&alice, "a DM invite from bob's ghost", |e| {
        e["type"] == "m.room.member"
            && e["state_key"] == alice.user_id.as_str()
            && e["sender"] == ghost.as_str()
    })
    .await;
    alice
        .wait_for_message(&dm, message_from(&ghost, "hello from mig33"), WAIT)
        .await
        .expect("bob's message in the DM");

    alice.send_text(&dm, "hello from Matrix").await.unwrap();
    wait_legacy_message(&mut bob, "alice", "hello from Matrix").await;

    // A message to someone offline is refused by the server: the user is told.
    bob.logout().await;
    alice.send_text(&dm, "are you there?").await.unwrap();
    alice
        .wait_for_message(&dm, from_bot(slot, "not delivered: bob is offline"), WAIT)
        .await
        .expect("delivery failure notice");
}

#[tokio::test]
async fn chatroom_join_messages_and_leave() {
    let (synapse, slot) = env(4);
    let sim = start_sim().await;
    let _bridge = start_bridge(synapse, slot, &sim.addr().to_string());
    let mut carol = Client::login(sim.addr(), "carol", "carolpw").await.unwrap();
    carol.join_room("lobby").await.unwrap();
    let alice = register(synapse, slot, "alice").await;
    let room = slot.management_room(&alice).await;
    login(&alice, slot, &room, "alice", "alicepw").await;

    command(
        &alice,
        slot,
        &room,
        "join mig33 nowhere",
        "No such chatroom: nowhere",
    )
    .await;
    command(&alice, slot, &room, "join mig33 lobby", "Joined lobby").await;
    let lobby = join_invite_named(&alice, "lobby (mig33)").await;
    let ghost = slot.ghost("mig33", "carol");
    wait_member(&alice, &lobby, &ghost, true).await;

    for text in ["hi from carol", "second", "third"] {
        carol.send_room("lobby", text).await.unwrap();
        alice
            .wait_for_message(&lobby, message_from(&ghost, text), WAIT)
            .await
            .expect("carol's message in Matrix");
    }
    // The ghost joined once: no invite and join again for every message.
    let log = std::fs::read_to_string(slot.log_path()).unwrap();
    let joins = log
        .lines()
        .filter(|l| {
            l.contains("asking the homeserver for a membership")
                && l.contains(&lobby)
                && l.contains(&ghost)
        })
        .count();
    assert_eq!(
        joins, 1,
        "membership requests for carol's ghost in the lobby"
    );
    alice.send_text(&lobby, "hi from alice").await.unwrap();
    wait_legacy_message(&mut carol, "alice", "hi from alice").await;

    // Someone joins at mig33: a ghost appears.
    let mut bob = Client::login(sim.addr(), "bob", "bobpw").await.unwrap();
    bob.join_room("lobby").await.unwrap();
    wait_member(&alice, &lobby, &slot.ghost("mig33", "bob"), true).await;
    bob.leave_room("lobby").await.unwrap();
    wait_member(&alice, &lobby, &slot.ghost("mig33", "bob"), false).await;

    command(&alice, slot, &room, "leave mig33 lobby", "Left lobby").await;
    wait_until(WAIT, "alice removed from the lobby room", || async {
        Ok((!alice.joined_rooms().await?.contains(&lobby)).then_some(()))
    })
    .await
    .expect("alice left the Matrix room");
    carol
        .wait_for(SIM_WAIT, |e| {
            matches!(e, ClientEvent::Participants { participants, .. } if !participants.contains(&"alice".to_owned()))
        })
        .await
        .expect("alice left lobby at mig33");
}

#[tokio::test]
async fn two_bridged_users_share_one_chatroom_portal() {
    let (synapse, slot) = env(5);
    let sim = start_sim().await;
    let _bridge = start_bridge(synapse, slot, &sim.addr().to_string());
    let mut carol = Client::login(sim.addr(), "carol", "carolpw").await.unwrap();
    carol.join_room("lobby").await.unwrap();

    let alice = register(synapse, slot, "alice").await;
    let alice_mgmt = slot.management_room(&alice).await;
    login(&alice, slot, &alice_mgmt, "alice", "alicepw").await;
    let bob = register(synapse, slot, "bob").await;
    let bob_mgmt = slot.management_room(&bob).await;
    login(&bob, slot, &bob_mgmt, "dave", "davepw").await;

    command(
        &alice,
        slot,
        &alice_mgmt,
        "join mig33 lobby",
        "Joined lobby",
    )
    .await;
    let lobby = join_invite_named(&alice, "lobby (mig33)").await;
    command(&bob, slot, &bob_mgmt, "join mig33 lobby", "Joined lobby").await;
    let lobby_bob = join_invite_named(&bob, "lobby (mig33)").await;
    assert_eq!(lobby, lobby_bob, "one Matrix room for the chatroom");
    carol
        .wait_for(SIM_WAIT, |e| {
            matches!(e, ClientEvent::Participants { participants, .. }
                if participants.contains(&"alice".to_owned()) && participants.contains(&"dave".to_owned()))
        })
        .await
        .expect("carol sees alice and dave in lobby");

    let carol_ghost = slot.ghost("mig33", "carol");
    carol.send_room("lobby", "one from carol").await.unwrap();
    alice
        .wait_for_message(&lobby, message_from(&carol_ghost, "one from carol"), WAIT)
        .await
        .unwrap();

    alice.send_text(&lobby, "from alice").await.unwrap();
    wait_legacy_message(&mut carol, "alice", "from alice").await;
    bob.send_text(&lobby, "from bob").await.unwrap();
    wait_legacy_message(&mut carol, "dave", "from bob").await;

    // Everything before the marker has been bridged once it shows up: count now.
    carol.send_room("lobby", "marker").await.unwrap();
    alice
        .wait_for_message(&lobby, message_from(&carol_ghost, "marker"), WAIT)
        .await
        .unwrap();
    // Bridged users are themselves in the room, never as ghosts.
    let members = alice.joined_members(&lobby).await.unwrap();
    assert!(members.contains(&alice.user_id) && members.contains(&bob.user_id));
    assert!(members.contains(&carol_ghost));
    for own in ["alice", "dave"] {
        assert!(
            !members.contains(&slot.ghost("mig33", own)),
            "no ghost of bridged user {own} in {members:?}"
        );
    }
    let texts =
        |text: &'static str| move |e: &Value| e["type"] == "m.room.message" && body(e) == text;
    assert_eq!(count(&alice, &lobby, texts("one from carol")).await, 1);
    assert_eq!(count(&alice, &lobby, texts("from alice")).await, 1);
    assert_eq!(count(&alice, &lobby, texts("from bob")).await, 1);
    assert_eq!(count(&alice, &lobby, texts("marker")).await, 1);
    assert_eq!(
        count(&alice, &lobby, message_from(&alice.user_id, "from alice")).await,
        1,
        "alice's own event, not a ghost's copy"
    );
}

#[tokio::test]
async fn system_alert_becomes_a_notice() {
    let (synapse, slot) = env(6);
    let sim = start_sim().await;
    let _bridge = start_bridge(synapse, slot, &sim.addr().to_string());
    let alice = register(synapse, slot, "alice").await;
    let room = slot.management_room(&alice).await;
    login(&alice, slot, &room, "alice", "alicepw").await;
    assert!(sim.send_alert("alice", "Maintenance at midnight"));
    wait_bot(&alice, slot, &room, "mig33: Maintenance at midnight", 1).await;
}

#[tokio::test]
async fn reconnects_rejoins_and_delivers_after_server_and_bridge_restarts() {
    let (synapse, slot) = env(7);
    let sim = start_sim().await;
    let addr = sim.addr();
    let mut bridge = start_bridge(synapse, slot, &addr.to_string());
    let mut carol = Client::login(addr, "carol", "carolpw").await.unwrap();
    carol.join_room("lobby").await.unwrap();
    let alice = register(synapse, slot, "alice").await;
    let room = slot.management_room(&alice).await;
    login(&alice, slot, &room, "alice", "alicepw").await;
    command(&alice, slot, &room, "join mig33 lobby", "Joined lobby").await;
    let lobby = join_invite_named(&alice, "lobby (mig33)").await;
    let ghost = slot.ghost("mig33", "carol");
    wait_member(&alice, &lobby, &ghost, true).await;

    // The server goes away: the user is told, and a message sent meanwhile waits.
    sim.stop().await;
    wait_bot(&alice, slot, &room, "Disconnected from mig33", 1).await;
    alice.send_text(&lobby, "sent while down").await.unwrap();
    // Restart the server right after the bridge's second failed attempt: the message
    // has reached the bridge by then, and the next attempt is 4 s or more away, so carol
    // is back in lobby before the bridge rejoins and sends what it kept.
    wait_until(WAIT, "two failed reconnect attempts", || async {
        let log = std::fs::read_to_string(slot.log_path())?;
        Ok((log.matches("cannot reach").count() >= 2).then_some(()))
    })
    .await
    .unwrap();
    let sim = Server::start(sim_config(&addr.to_string())).await.unwrap();
    let mut carol = Client::login(addr, "carol", "carolpw").await.unwrap();
    carol.join_room("lobby").await.unwrap();
    wait_bot(&alice, slot, &room, "Connected to mig33 as alice", 2).await;
    wait_legacy_message(&mut carol, "alice", "sent while down").await;
    carol.send_room("lobby", "after reconnect").await.unwrap();
    alice
        .wait_for_message(&lobby, message_from(&ghost, "after reconnect"), WAIT)
        .await
        .expect("the chatroom was rejoined");

    // kill -9 the bridge: it resumes the login, rejoins lobby and reuses the room.
    let rooms_before = alice.joined_rooms().await.unwrap();
    // A resumed login gets no "Connected" notice: carol seeing alice rejoin lobby shows
    // it is back, so what carol heard before the kill must not count.
    while carol.next_event(Duration::from_millis(300)).await.is_some() {}
    bridge.kill9();
    let _bridge = start_bridge(synapse, slot, &addr.to_string());
    carol
        .wait_for(SIM_WAIT, |e| {
            matches!(e, ClientEvent::Participants { participants, .. } if participants.contains(&"alice".to_owned()))
        })
        .await
        .expect("alice back in lobby at mig33");
    carol
        .send_room("lobby", "after bridge restart")
        .await
        .unwrap();
    alice
        .wait_for_message(&lobby, message_from(&ghost, "after bridge restart"), WAIT)
        .await
        .expect("same room, same ghost after a bridge restart");
    alice.send_text(&lobby, "alice is back").await.unwrap();
    wait_legacy_message(&mut carol, "alice", "alice is back").await;
    let mut rooms_after = alice.joined_rooms().await.unwrap();
    let mut rooms_before = rooms_before;
    rooms_after.sort();
    rooms_before.sort();
    assert_eq!(rooms_after, rooms_before, "no new rooms after the restart");
    drop(sim);
}

/// A server that separates CHATROOM_PARTICIPANTS names with `,`: the room shows bob
/// and carol as two ghosts with their contact-list names, and no ghost for alice.
#[tokio::test]
async fn comma_separated_participants_become_separate_named_ghosts() {
    let (synapse, slot) = env(8);
    let mut config = sim_config("127.0.0.1:0");
    config.participant_separator = ParticipantSeparator::Comma;
    let sim = Server::start(config).await.expect("mig33 simulator starts");
    let _bridge = start_bridge(synapse, slot, &sim.addr().to_string());
    let mut bob = Client::login(sim.addr(), "bob", "bobpw").await.unwrap();
    bob.join_room("lobby").await.unwrap();
    let mut carol = Client::login(sim.addr(), "carol", "carolpw").await.unwrap();
    carol.join_room("lobby").await.unwrap();
    let alice = register(synapse, slot, "alice").await;
    let room = slot.management_room(&alice).await;
    login(&alice, slot, &room, "alice", "alicepw").await;

    command(&alice, slot, &room, "join mig33 lobby", "Joined lobby").await;
    let lobby = join_invite_named(&alice, "lobby (mig33)").await;
    let (bob_ghost, carol_ghost) = (slot.ghost("mig33", "bob"), slot.ghost("mig33", "carol"));
    wait_member(&alice, &lobby, &bob_ghost, true).await;
    wait_member(&alice, &lobby, &carol_ghost, true).await;
    // The list that included alice has been handled: everything it caused is there.
    bob.wait_for(SIM_WAIT, |e| {
        matches!(e, ClientEvent::Participants { participants, .. } if participants.contains(&"alice".to_owned()))
    })
    .await
    .expect("alice in lobby at mig33");
    carol.send_room("lobby", "marker").await.unwrap();
    alice
        .wait_for_message(&lobby, message_from(&carol_ghost, "marker"), WAIT)
        .await
        .expect("carol's message in the room");

    let ghosts: Vec<String> = alice
        .joined_members(&lobby)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.starts_with(&format!("@{}", slot.ghost_prefix("mig33"))))
        .collect();
    let mut expected = vec![bob_ghost.clone(), carol_ghost.clone()];
    expected.sort();
    let mut ghosts = ghosts;
    ghosts.sort();
    assert_eq!(
        ghosts, expected,
        "one ghost each for bob and carol, none for alice"
    );
    assert_eq!(
        alice.get_displayname(&bob_ghost).await.unwrap().as_deref(),
        Some("Bobby (mig33)")
    );
    assert_eq!(
        alice
            .get_displayname(&carol_ghost)
            .await
            .unwrap()
            .as_deref(),
        Some("Carol C (mig33)")
    );
}

/// What Matrix sends beyond plain text reaches a mig33 contact in a form they can see: an
/// edit as a marked correction, a file as its name, size and a link that works without a
/// Matrix account. What mig33 cannot show (reactions, removing a message) is said once per
/// room and kind.
#[tokio::test]
async fn edits_files_and_what_mig33_cannot_show() {
    let (synapse, slot) = env(9);
    let sim = start_sim().await;
    let _bridge = start_bridge(synapse, slot, &sim.addr().to_string());
    let mut bob = Client::login(sim.addr(), "bob", "bobpw").await.unwrap();
    let alice = register(synapse, slot, "alice").await;
    let room = slot.management_room(&alice).await;
    login(&alice, slot, &room, "alice", "alicepw").await;
    let ghost = slot.ghost("mig33", "bob");
    bob.send_private("alice", "hi").await.unwrap();
    let dm = join_invite(&alice, "a DM invite from bob's ghost", |e| {
        e["type"] == "m.room.member"
            && e["state_key"] == alice.user_id.as_str()
            && e["sender"] == ghost.as_str()
    })
    .await;

    // An edit: a correction, marked as such.
    let original = alice.send_text(&dm, "helo").await.unwrap();
    wait_legacy_message(&mut bob, "alice", "helo").await;
    let edit = serde_json::json!({
        "msgtype": "m.text",
        "body": "* hello",
        "m.new_content": { "msgtype": "m.text", "body": "hello" },
        "m.relates_to": { "rel_type": "m.replace", "event_id": original }
    });
    alice.send_message(&dm, edit).await.unwrap();
    wait_legacy_message(&mut bob, "alice", "Correction: hello").await;

    // A file: name, size and a link anybody can open.
    let bytes = b"hello, file".to_vec();
    let upload: Value = reqwest::Client::new()
        .post(format!("{}/_matrix/media/v3/upload", synapse.base_url))
        .query(&[("filename", "notes.txt")])
        .bearer_auth(&alice.access_token)
        .header("content-type", "text/plain")
        .body(bytes.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mxc = upload["content_uri"].as_str().expect("content uri");
    let file = serde_json::json!({
        "msgtype": "m.file",
        "body": "notes.txt",
        "filename": "notes.txt",
        "url": mxc,
        "info": { "size": bytes.len(), "mimetype": "text/plain" }
    });
    alice.send_message(&dm, file).await.unwrap();
    let text = match bob
        .wait_for(
            SIM_WAIT,
            |e| matches!(e, ClientEvent::Message(m) if m.content.starts_with("sent a file")),
        )
        .await
        .expect("the file's line")
    {
        ClientEvent::Message(m) => m.content,
        other => panic!("unexpected {other:?}"),
    };
    assert!(
        text.starts_with("sent a file: notes.txt (11 bytes) http://"),
        "{text}"
    );
    let link = text.rsplit(' ').next().unwrap();
    let fetched = reqwest::get(link).await.unwrap();
    assert!(fetched.status().is_success(), "{}", fetched.status());
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), bytes);
    let forged = format!(
        "{}0",
        link.trim_end_matches(|c: char| c.is_ascii_hexdigit())
    );
    assert_eq!(reqwest::get(&forged).await.unwrap().status(), 403);

    // Reactions and removals: mig33 shows neither; said once per room.
    for key in ["👍", "🎉"] {
        let reaction = serde_json::json!({
            "m.relates_to": { "rel_type": "m.annotation", "event_id": original, "key": key }
        });
        let path = format!(
            "/rooms/{}/send/m.reaction/{}",
            e2e_tests::enc(&dm),
            e2e_tests::enc(&format!("r-{key}"))
        );
        alice
            .request(Method::PUT, &path, &[], Some(reaction))
            .await
            .unwrap();
    }
    alice.redact(&dm, &original).await.unwrap();
    alice
        .wait_for_message(&dm, from_bot(slot, "cannot remove a message"), WAIT)
        .await
        .expect("the removal notice");
    // Handled in order: the reactions came first.
    assert_eq!(
        count(&alice, &dm, from_bot(slot, "cannot show reactions")).await,
        1
    );
    alice.send_text(&dm, "after").await.unwrap();
    wait_legacy_message(&mut bob, "alice", "after").await;
    assert_eq!(
        count(&alice, &dm, from_bot(slot, "cannot show reactions")).await,
        1
    );
}

/// A burst of 30 messages from Matrix reaches a server that kicks flooders (more than 8
/// messages within a second) complete and in order, with the default pacing (5 at once,
/// then 2 a second). Unpaced, the ninth would have been refused and alice kicked (the
/// simulator's own tests show the kick).
#[tokio::test]
async fn a_burst_from_matrix_is_paced_under_the_flood_limit() {
    let (synapse, slot) = env(10);
    let mut config = sim_config("127.0.0.1:0");
    config.flood_limit = Some(FloodLimit {
        messages: 8,
        seconds: 1,
    });
    let sim = Server::start(config).await.expect("mig33 simulator starts");
    let _bridge = start_bridge(synapse, slot, &sim.addr().to_string());
    let mut bob = Client::login(sim.addr(), "bob", "bobpw").await.unwrap();
    let alice = register(synapse, slot, "alice").await;
    let room = slot.management_room(&alice).await;
    login(&alice, slot, &room, "alice", "alicepw").await;
    let ghost = slot.ghost("mig33", "bob");
    bob.send_private("alice", "ready?").await.unwrap();
    let dm = join_invite(&alice, "a DM invite from bob's ghost", |e| {
        e["type"] == "m.room.member"
            && e["state_key"] == alice.user_id.as_str()
            && e["sender"] == ghost.as_str()
    })
    .await;
    alice
        .wait_for_message(&dm, message_from(&ghost, "ready?"), WAIT)
        .await
        .expect("bob's message in the DM");

    let sent: Vec<String> = (0..30).map(|n| format!("burst {n:02}")).collect();
    for text in &sent {
        alice.send_text(&dm, text).await.unwrap();
    }
    let mut received = Vec::new();
    while received.len() < sent.len() {
        match bob.wait_message(SIM_WAIT).await {
            Ok(m) if m.source == "alice" => received.push(m.content),
            Ok(_) => {}
            Err(e) => panic!("after {received:?}: {e:#}"),
        }
    }
    assert_eq!(received, sent, "every message, in order");
    assert!(sim.flood_kicks().is_empty(), "{:?}", sim.flood_kicks());
    assert_eq!(
        count(&alice, &dm, from_bot(slot, "not delivered")).await,
        0,
        "no delivery failure"
    );
}

/// Slot `n` with its simulator and bridge, and alice logged in to mig33 from her
/// management room.
struct AliceIn {
    synapse: &'static Synapse,
    slot: &'static BridgeSlot,
    sim: Server,
    bridge: BridgeProcess,
    alice: TestUser,
    room: String,
}

async fn alice_logged_in(n: usize) -> AliceIn {
    let (synapse, slot) = env(n);
    let sim = start_sim().await;
    let bridge = start_bridge(synapse, slot, &sim.addr().to_string());
    let alice = register(synapse, slot, "alice").await;
    let room = slot.management_room(&alice).await;
    login(&alice, slot, &room, "alice", "alicepw").await;
    AliceIn {
        synapse,
        slot,
        sim,
        bridge,
        alice,
        room,
    }
}

/// Waits until `user` is logged in at the simulator.
async fn wait_online(sim: &Server, user: &str) {
    wait_until(WAIT, &format!("{user} online at the simulator"), || async {
        Ok(sim.online_users().iter().any(|u| u == user).then_some(()))
    })
    .await
    .unwrap();
}

/// Invitations pending for `user` to rooms with this name.
async fn invites_named(user: &TestUser, name: &str) -> usize {
    let filter = r#"{"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]},"room":{"timeline":{"limit":0},"ephemeral":{"not_types":["*"]},"account_data":{"not_types":["*"]}}}"#;
    let timeout = fresh_timeout();
    let resp = user
        .request(
            Method::GET,
            "/sync",
            &[("filter", filter), ("timeout", &timeout)],
            None,
        )
        .await
        .expect("sync");
    resp["rooms"]["invite"]
        .as_object()
        .map(|rooms| {
            rooms
                .values()
                .filter(|room| {
                    room["invite_state"]["events"]
                        .as_array()
                        .is_some_and(|events| {
                            events
                                .iter()
                                .any(|e| e["type"] == "m.room.name" && e["content"]["name"] == name)
                        })
                })
                .count()
        })
        .unwrap_or(0)
}

/// Logging out and in again keeps the one space: the new login's contacts go to it.
#[tokio::test]
async fn a_new_login_reuses_the_space_of_the_last() {
    // (The simulator and the bridge are bound: dropped, they would stop.)
    let AliceIn {
        slot,
        sim: _sim,
        bridge: _bridge,
        alice,
        room,
        ..
    } = alice_logged_in(11).await;
    let space = join_invite_named(&alice, "mig33 (alice)").await;
    wait_member(&alice, &space, &slot.ghost("mig33", "bob"), true).await;

    command(&alice, slot, &room, "logout mig33", "Logged out of mig33").await;
    command(
        &alice,
        slot,
        &room,
        "login mig33 alice alicepw",
        "Connected to mig33 as alice",
    )
    .await;
    // Wait for "Connected" a second time: the first one is the earlier login's.
    wait_bot(&alice, slot, &room, "Connected to mig33 as alice", 2).await;
    command(&alice, slot, &room, "add mig33 dave Friends", "Added dave").await;
    wait_member(&alice, &space, &slot.ghost("mig33", "dave"), true).await;
    assert_eq!(
        invites_named(&alice, "mig33 (alice)").await,
        0,
        "no second space"
    );
}

/// `status away`, then a restart: contacts never see the user online in between.
#[tokio::test]
async fn the_status_set_survives_a_restart() {
    let AliceIn {
        synapse,
        slot,
        sim,
        mut bridge,
        alice,
        room,
    } = alice_logged_in(12).await;
    let server = sim.addr().to_string();
    let mut bob = Client::login(sim.addr(), "bob", "bobpw").await.unwrap();
    command(&alice, slot, &room, "status away", "status set to away").await;
    let of_alice = |e: &ClientEvent| -> Option<Presence> {
        match e {
            ClientEvent::Presence {
                username: Some(u),
                presence,
                ..
            } if u == "alice" => Some(*presence),
            _ => None,
        }
    };
    bob.wait_for(SIM_WAIT, |e| of_alice(e) == Some(Presence::Away))
        .await
        .expect("bob sees alice away");

    assert!(bridge.terminate(), "the bridge stops cleanly");
    bob.wait_for(SIM_WAIT, |e| of_alice(e) == Some(Presence::Offline))
        .await
        .expect("bob sees alice go offline");
    // What bob's client kept unread so far (alice's first login) is not news.
    while bob.wait_for(Duration::ZERO, |_| true).await.is_ok() {}
    let _bridge = start_bridge(synapse, slot, &server);
    let back = bob
        .wait_for(SIM_WAIT, |e| {
            of_alice(e).is_some_and(|p| p != Presence::Offline)
        })
        .await
        .expect("bob sees alice back");
    assert_eq!(of_alice(&back), Some(Presence::Away), "back as she left");
}

/// `pm` for a chat that has its room: the user who left it is invited back, one who is
/// in it is pointed to it; a mistyped command gets a suggestion.
#[tokio::test]
async fn pm_for_an_existing_chat_and_a_mistyped_command() {
    let AliceIn {
        slot,
        sim,
        bridge: _bridge,
        alice,
        room,
        ..
    } = alice_logged_in(13).await;
    let mut bob = Client::login(sim.addr(), "bob", "bobpw").await.unwrap();
    let ghost = slot.ghost("mig33", "bob");
    bob.send_private("alice", "hello").await.unwrap();
    let is_dm_invite = |e: &Value| {
        e["type"] == "m.room.member"
            && e["state_key"] == alice.user_id.as_str()
            && e["sender"] == ghost.as_str()
    };
    let dm = join_invite(&alice, "the DM invite", is_dm_invite).await;

    command(
        &alice,
        slot,
        &room,
        "pm mig33 bob",
        "You have a chat with bob already",
    )
    .await;
    alice.leave(&dm).await.unwrap();
    command(
        &alice,
        slot,
        &room,
        "pm mig33 bob",
        "Invited you back to your chat with bob",
    )
    .await;
    let again = join_invite(&alice, "the DM invite again", is_dm_invite).await;
    assert_eq!(again, dm, "the same room");
    alice.send_text(&dm, "back again").await.unwrap();
    wait_legacy_message(&mut bob, "alice", "back again").await;

    command(&alice, slot, &room, "logn mig33", "did you mean `login`?").await;
}

/// Everything stops at once, the legacy server first (the demo's Ctrl-C): the next
/// start is as quiet as after a clean stop: no "Disconnected", no second "Connected".
#[tokio::test]
async fn a_restart_of_everything_is_quiet_whatever_stopped_first() {
    let AliceIn {
        synapse,
        slot,
        sim,
        mut bridge,
        alice,
        room,
    } = alice_logged_in(14).await;
    let addr = sim.addr();

    sim.stop().await;
    wait_until(WAIT, "the bridge to see the server go", || async {
        let log = std::fs::read_to_string(slot.log_path())?;
        Ok(log.contains("mig33 connection lost").then_some(()))
    })
    .await
    .unwrap();
    assert!(bridge.terminate(), "the bridge stops cleanly");

    let sim = Server::start(sim_config(&addr.to_string())).await.unwrap();
    let _bridge = start_bridge(synapse, slot, &addr.to_string());
    wait_online(&sim, "alice").await;
    // The core decided: the login is back without a word.
    wait_until(WAIT, "the resumed login's connection handled", || async {
        let log = std::fs::read_to_string(slot.log_path())?;
        let restarted = log
            .rsplit("retrobridge 0.1.0 starting")
            .next()
            .unwrap_or_default();
        Ok(restarted
            .lines()
            .find(|l| l.contains("login connected"))
            .map(str::to_owned))
    })
    .await
    .map(|line| assert!(line.contains("announced=false"), "{line}"))
    .unwrap();
    assert_eq!(
        count(&alice, &room, from_bot(slot, "Connected to mig33")).await,
        1,
        "announced once, at the login"
    );
    assert_eq!(
        count(&alice, &room, from_bot(slot, "Disconnected from mig33")).await,
        0
    );
}
