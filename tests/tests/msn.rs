//! End-to-end tests of the MSN network: a real Synapse, the real bridge binary, the MSN
//! simulator (dispatch, notification, switchboard and Passport servers) in this process,
//! and scripted MSN users (`legacy_sim::msn::Client`). Each test has its own bridge slot
//! and simulator.

use std::time::Duration;

use e2e_tests::bridge::{environment, BridgeProcess, BridgeSlot, SlotOptions};
use e2e_tests::{wait_until, Synapse, TestUser};
use legacy_sim::msn::{
    Client, ClientEvent, Config, ContactConfig, GroupConfig, Server, Status, TextFormat, UserConfig,
};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const WAIT: Duration = Duration::from_secs(60);
const ME: &str = "me@example.com";
const PW: &str = "pw";

fn env(slot: usize) -> (&'static Synapse, &'static BridgeSlot) {
    // Every slot enables msn at preparation (the registration's namespaces come from it);
    // each test points its slot at its own simulator when it starts the bridge.
    let (synapse, slots) = environment(14, |i| {
        SlotOptions {
        networks_yaml: format!(
            "  msn:\n    enabled: true\n    server: \"127.0.0.1:1\"\n    ghost_template: \"s{i}msn_{{id}}\"\n"
        ),
            ..SlotOptions::default()
    }
    });
    (synapse, &slots[slot])
}

fn user(email: &str, name: &str, contacts: &[(&str, &[u32])]) -> UserConfig {
    UserConfig {
        email: email.into(),
        password: PW.into(),
        friendly_name: Some(name.into()),
        groups: Vec::new(),
        contacts: contacts
            .iter()
            .map(|(email, groups)| ContactConfig {
                email: (*email).into(),
                nick: None,
                lists: vec!["FL".into(), "AL".into()],
                groups: groups.to_vec(),
            })
            .collect(),
        login_redirect: false,
    }
}

/// me (contacts alice in group Friends, and bob), alice, bob, carol (who has me on her list).
fn standard_users() -> Vec<UserConfig> {
    let mut me = user(
        ME,
        "Me Myself",
        &[("alice@example.com", &[1]), ("bob@example.com", &[])],
    );
    me.groups = vec![GroupConfig {
        id: 1,
        name: "Friends".into(),
    }];
    vec![
        me,
        user("alice@example.com", "Alice Liddell", &[(ME, &[])]),
        user("bob@example.com", "Bob", &[(ME, &[])]),
        user("carol@example.com", "Carol", &[(ME, &[])]),
    ]
}

async fn simulator(users: Vec<UserConfig>) -> Server {
    Server::start(Config {
        dispatch_port: 0,
        notification_port: 0,
        switchboard_port: 0,
        http_port: 0,
        // CHL after login (and every fifth PNG); a wrong QRY ends the session with 540,
        // so every test also checks that the bridge answers challenges.
        challenges: true,
        users,
        ..Config::default()
    })
    .await
    .expect("simulator starts")
}

fn start_bridge(synapse: &Synapse, slot: &BridgeSlot, sim: &Server) -> BridgeProcess {
    let networks = slot.network_yaml(
        "msn",
        &sim.dispatch_addr().to_string(),
        &[("nexus_url", json!(sim.nexus_url()))],
    );
    slot.start_with_networks(synapse, Some(&networks))
        .expect("bridge starts")
}

fn body(event: &Value) -> &str {
    event["content"]["body"].as_str().unwrap_or_default()
}

fn from_bot<'a>(slot: &'a BridgeSlot, needle: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e| e["sender"] == slot.bot.as_str() && body(e).contains(needle)
}

fn from_sender<'a>(sender: &'a str, needle: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e| e["sender"] == sender && body(e).contains(needle)
}

async fn count(user: &TestUser, room: &str, pred: impl Fn(&Value) -> bool) -> usize {
    user.messages(room)
        .await
        .expect("messages")
        .iter()
        .filter(|e| pred(e))
        .count()
}

async fn command(user: &TestUser, slot: &BridgeSlot, room: &str, text: &str, expect: &str) {
    user.send_text(room, text).await.expect("send");
    user.wait_for_message(room, from_bot(slot, expect), WAIT)
        .await
        .unwrap_or_else(|e| panic!("no answer containing {expect:?} to {text:?}: {e:#}"));
}

/// A bridge with the user logged in as `me@example.com`.
struct Setup {
    synapse: &'static Synapse,
    slot: &'static BridgeSlot,
    sim: Server,
    bridge: BridgeProcess,
    user: TestUser,
    mgmt: String,
}

async fn logged_in(index: usize) -> Setup {
    let (synapse, slot) = env(index);
    let sim = simulator(standard_users()).await;
    let bridge = start_bridge(synapse, slot, &sim);
    let user = synapse
        .register_user(&slot.user_localpart("alice"), "pw", false)
        .await
        .unwrap();
    let mgmt = slot.management_room(&user).await;
    command(
        &user,
        slot,
        &mgmt,
        &format!("login msn {ME} {PW}"),
        "Connected to MSN Messenger as me@example.com",
    )
    .await;
    Setup {
        synapse,
        slot,
        sim,
        bridge,
        user,
        mgmt,
    }
}

impl Setup {
    /// kill -9 of the bridge, seen by the server, then the bridge started again and its
    /// login back at the server.
    async fn kill9_and_restart(&mut self) {
        self.bridge.kill9();
        wait_until(WAIT, "the server to notice the kill", || async {
            Ok((!self.sim.is_online(ME)).then_some(()))
        })
        .await
        .unwrap();
        self.bridge = start_bridge(self.synapse, self.slot, &self.sim);
        wait_until(WAIT, "the login back at the server", || async {
            Ok(self.sim.is_online(ME).then_some(()))
        })
        .await
        .unwrap();
    }

    fn ghost(&self, email: &str) -> String {
        self.slot.ghost("msn", &email.replace('@', "=40"))
    }

    async fn client(&self, email: &str) -> Client {
        Client::login(self.sim.dispatch_addr(), &self.sim.nexus_url(), email, PW)
            .await
            .expect("MSN client logs in")
    }

    /// Accepts the invite from `inviter` and returns the room.
    async fn accept_invite_from(&self, inviter: &str) -> String {
        let me = self.user.user_id.clone();
        let room = wait_until(WAIT, &format!("an invite from {inviter}"), || async {
            let sync = fresh_sync(&self.user, json!({"room": {"timeline": {"limit": 0}}})).await?;
            let invites = sync["rooms"]["invite"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            Ok(invites.into_iter().find_map(|(room, v)| {
                let events = v["invite_state"]["events"].as_array()?.clone();
                events
                    .iter()
                    .any(|e| {
                        e["type"] == "m.room.member"
                            && e["state_key"] == me.as_str()
                            && e["sender"] == inviter
                    })
                    .then_some(room)
            }))
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
        self.user.join(&room).await.expect("join");
        room
    }

    /// An incoming message from `email` opens a DM; returns the room after joining.
    async fn dm_from(&self, client: &Client, text: &str) -> String {
        client.send_message(ME, text).await.expect("msn send");
        let ghost = self.ghost(client.email());
        let room = self.accept_invite_from(&ghost).await;
        self.user
            .wait_for_message(&room, from_sender(&ghost, text), WAIT)
            .await
            .expect("the message arrives in the DM");
        room
    }
}

async fn wait_msn_message(client: &mut Client, from: &str, text: &str) -> ClientEvent {
    client
        .wait_for(WAIT, |e| matches!(e, ClientEvent::Message { from: f, text: t, .. } if f == from && t == text))
        .await
        .unwrap_or_else(|| panic!("{} did not receive {text:?}", client.email()))
}

#[tokio::test]
async fn login_contacts_groups_and_reverse_list() {
    let s = logged_in(0).await;
    let alice = s.ghost("alice@example.com");
    let bob = s.ghost("bob@example.com");
    // Someone who has us on their list but is not on ours: a suggestion.
    s.user
        .wait_for_message(&s.mgmt, from_bot(s.slot, "add msn carol@example.com"), WAIT)
        .await
        .expect("suggestion to add carol");
    // Contacts are ghosts with their friendly names, members of the login's space.
    wait_until(WAIT, "alice's ghost display name", || async {
        Ok((s.user.get_displayname(&alice).await?.as_deref()
            == Some("Alice Liddell (MSN Messenger)"))
        .then_some(()))
    })
    .await
    .unwrap();
    let space = s.accept_invite_from(&s.slot.bot).await;
    let create = s
        .user
        .room_state(&space, "m.room.create", "")
        .await
        .unwrap()
        .expect("create event");
    assert_eq!(create["type"], "m.space");
    wait_until(WAIT, "contacts in the space", || async {
        let members = s.user.joined_members(&space).await?;
        Ok((members.contains(&alice) && members.contains(&bob)).then_some(()))
    })
    .await
    .unwrap();
    let carol = s.ghost("carol@example.com");
    assert!(!s
        .user
        .joined_members(&space)
        .await
        .unwrap()
        .contains(&carol));
    // Groups are shown in the space's topic.
    wait_until(WAIT, "groups in the space topic", || async {
        let topic = s.user.room_state(&space, "m.room.topic", "").await?;
        let topic = topic.and_then(|t| t["topic"].as_str().map(str::to_owned));
        Ok(topic
            .is_some_and(|t| t.contains("Friends (Alice Liddell)"))
            .then_some(()))
    })
    .await
    .unwrap();

    // Wrong password: a clear failure, and the password is not logged.
    let other = s
        .synapse
        .register_user(&s.slot.user_localpart("bob"), "pw", false)
        .await
        .unwrap();
    let mgmt2 = s.slot.management_room(&other).await;
    command(
        &other,
        s.slot,
        &mgmt2,
        "login msn bob@example.com sesame-wrong",
        "wrong e-mail address or password",
    )
    .await;
    assert!(!s.bridge.log().contains("sesame-wrong"));
}

/// A fake notification server that refuses `USR`: 911 for auth@, 600 for busy@.
async fn refusing_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let p: Vec<&str> = line.split(' ').collect();
                    let trid = p.get(1).copied().unwrap_or("0");
                    let answer = match p[0] {
                        "VER" => format!("VER {trid} MSNP9 CVR0\r\n"),
                        "CVR" => {
                            format!("CVR {trid} 6.2.0208 6.2.0208 6.2.0208 http://x http://x\r\n")
                        }
                        "USR" if p.get(4).is_some_and(|e| e.starts_with("busy")) => {
                            format!("600 {trid}\r\n")
                        }
                        _ => format!("911 {trid}\r\n"),
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn server_errors_are_explained() {
    let (synapse, slot) = env(1);
    let addr = refusing_server().await;
    let networks = slot.network_yaml(
        "msn",
        &addr.to_string(),
        &[("nexus_url", json!("http://127.0.0.1:1/"))],
    );
    let _bridge = slot
        .start_with_networks(synapse, Some(&networks))
        .expect("bridge starts");
    let user = synapse
        .register_user(&slot.user_localpart("alice"), "pw", false)
        .await
        .unwrap();
    let mgmt = slot.management_room(&user).await;
    command(
        &user,
        slot,
        &mgmt,
        "login msn auth@example.com pw",
        "Login to MSN Messenger failed: login refused: authentication failed (error 911)",
    )
    .await;
    let bob = synapse
        .register_user(&slot.user_localpart("bob"), "pw", false)
        .await
        .unwrap();
    let mgmt2 = slot.management_room(&bob).await;
    command(
        &bob,
        slot,
        &mgmt2,
        "login msn busy@example.com pw",
        "server busy (error 600). Reconnecting",
    )
    .await;
}

#[tokio::test]
async fn direct_messages_both_ways() {
    let s = logged_in(2).await;
    let mut alice = s.client("alice@example.com").await;
    let room = s.dm_from(&alice, "hello from msn").await;

    // Matrix -> MSN on a new switchboard.
    s.user.send_text(&room, "hi alice").await.unwrap();
    wait_msn_message(&mut alice, ME, "hi alice").await;

    // A second incoming message reuses the room.
    alice.send_message(ME, "again").await.unwrap();
    let ghost = s.ghost("alice@example.com");
    s.user
        .wait_for_message(&room, from_sender(&ghost, "again"), WAIT)
        .await
        .unwrap();

    // Long text is split under the payload limit and arrives whole.
    let long: String = (0..700).map(|i| format!("w{i:03} ")).collect::<String>();
    let long = long.trim_end().to_string();
    s.user.send_text(&room, &long).await.unwrap();
    let mut received = String::new();
    while received.len() < long.len() {
        match alice
            .wait_for(
                WAIT,
                |e| matches!(e, ClientEvent::Message { from, .. } if from == ME),
            )
            .await
        {
            Some(ClientEvent::Message { text, .. }) => received.push_str(&text),
            _ => panic!(
                "long text incomplete: {} of {} bytes",
                received.len(),
                long.len()
            ),
        }
    }
    assert_eq!(received, long);
    s.user
        .wait_for_message(&room, from_bot(s.slot, "sent in 3 parts"), WAIT)
        .await
        .unwrap();

    // An offline contact: the message is not delivered, and the room says so.
    command(
        &s.user,
        s.slot,
        &s.mgmt,
        "pm msn bob@example.com",
        "Opened a chat",
    )
    .await;
    let bob_room = s.accept_invite_from(&s.ghost("bob@example.com")).await;
    s.user.send_text(&bob_room, "are you there?").await.unwrap();
    s.user
        .wait_for_message(&bob_room, from_bot(s.slot, "not delivered"), WAIT)
        .await
        .unwrap();
    let notice = s
        .user
        .wait_for_message(&bob_room, from_bot(s.slot, "offline"), WAIT)
        .await
        .unwrap();
    assert!(
        body(&notice).contains("bob@example.com is offline"),
        "{notice}"
    );
}

#[tokio::test]
async fn formatting_both_ways() {
    let s = logged_in(3).await;
    let mut alice = s.client("alice@example.com").await;
    let room = s.dm_from(&alice, "plain first").await;
    let ghost = s.ghost("alice@example.com");

    let mut format = TextFormat {
        bold: true,
        ..TextFormat::default()
    };
    format.set_rgb(0xff, 0, 0);
    alice.send_formatted(ME, "styled", format).await.unwrap();
    let event = s
        .user
        .wait_for_message(&room, from_sender(&ghost, "styled"), WAIT)
        .await
        .unwrap();
    let html = event["content"]["formatted_body"]
        .as_str()
        .unwrap_or_default();
    assert!(html.contains("<b>styled</b>"), "{event}");
    assert!(html.contains("#ff0000"), "{event}");
    assert_eq!(body(&event), "styled");

    s.user
        .send_message(
            &room,
            json!({"msgtype": "m.text", "body": "bold move", "format": "org.matrix.custom.html",
                   "formatted_body": "<b>bold move</b>"}),
        )
        .await
        .unwrap();
    match wait_msn_message(&mut alice, ME, "bold move").await {
        ClientEvent::Message { format, .. } => {
            let f = format.expect("a format header");
            assert!(f.bold && !f.italic, "{f:?}");
        }
        _ => unreachable!(),
    }
}

/// An initial `/sync` that Synapse does not answer from its sync cache (which keeps
/// identical since-less responses for minutes): each call uses a different filter.
async fn fresh_sync(user: &TestUser, mut filter: Value) -> anyhow::Result<Value> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    filter["account_data"] = json!({"not_types": [format!("unused.{n}")]});
    let filter = filter.to_string();
    user.request(
        Method::GET,
        "/sync",
        &[("filter", &filter), ("timeout", "0")],
        None,
    )
    .await
}

/// Users typing in `room`, from an initial `/sync`.
async fn typing_users(user: &TestUser, room: &str) -> anyhow::Result<Vec<String>> {
    let filter = json!({"room": {"rooms": [room], "timeline": {"limit": 0}, "state": {"not_types": ["*"]},
        "ephemeral": {"types": ["m.typing"]}}, "presence": {"not_types": ["*"]}});
    let resp = fresh_sync(user, filter).await?;
    let events = resp["rooms"]["join"][room]["ephemeral"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(events
        .iter()
        .filter(|e| e["type"] == "m.typing")
        .flat_map(|e| {
            e["content"]["user_ids"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|u| u.as_str().map(str::to_owned))
        .collect())
}

#[tokio::test]
async fn typing_both_ways() {
    let s = logged_in(4).await;
    let mut alice = s.client("alice@example.com").await;
    let room = s.dm_from(&alice, "about to type").await;
    let ghost = s.ghost("alice@example.com");

    alice.send_typing(ME).await.unwrap();
    wait_until(WAIT, "alice's ghost typing", || async {
        Ok(typing_users(&s.user, &room)
            .await?
            .contains(&ghost)
            .then_some(()))
    })
    .await
    .unwrap();
    // It stops by itself after a few seconds without a new notification.
    wait_until(WAIT, "alice's ghost to stop typing", || async {
        Ok((!typing_users(&s.user, &room).await?.contains(&ghost)).then_some(()))
    })
    .await
    .unwrap();

    let path = format!(
        "/rooms/{}/typing/{}",
        e2e_tests::matrix_user::enc(&room),
        e2e_tests::matrix_user::enc(&s.user.user_id)
    );
    s.user
        .request(
            Method::PUT,
            &path,
            &[],
            Some(json!({"typing": true, "timeout": 20000})),
        )
        .await
        .unwrap();
    alice
        .wait_for(
            WAIT,
            |e| matches!(e, ClientEvent::Typing { from, .. } if from == ME),
        )
        .await
        .expect("alice sees us typing");
}

#[tokio::test]
async fn third_participant_makes_a_group_room() {
    let s = logged_in(5).await;
    let space = s.accept_invite_from(&s.slot.bot).await;
    let mut alice = s.client("alice@example.com").await;
    let mut bob = s.client("bob@example.com").await;
    let _dm = s.dm_from(&alice, "let me add bob").await;
    alice.invite(ME, "bob@example.com").unwrap();

    let group = s.accept_invite_from(&s.slot.bot).await;
    assert_ne!(group, space);
    let (ga, gb) = (s.ghost("alice@example.com"), s.ghost("bob@example.com"));
    wait_until(WAIT, "both ghosts in the group room", || async {
        let members = s.user.joined_members(&group).await?;
        Ok((members.contains(&ga) && members.contains(&gb)).then_some(()))
    })
    .await
    .unwrap();

    s.user.send_text(&group, "hello both").await.unwrap();
    wait_msn_message(&mut alice, ME, "hello both").await;
    wait_msn_message(&mut bob, ME, "hello both").await;

    // What they say there lands in the group room.
    let session = match alice
        .wait_for(
            WAIT,
            |e| matches!(e, ClientEvent::Joined { email, .. } if email == "bob@example.com"),
        )
        .await
    {
        Some(ClientEvent::Joined { session, .. }) => session,
        other => panic!("no join seen by alice: {other:?}"),
    };
    alice.send_to_session(session, "group reply").unwrap();
    s.user
        .wait_for_message(&group, from_sender(&ga, "group reply"), WAIT)
        .await
        .unwrap();
}

#[tokio::test]
async fn presence_status_and_names() {
    let s = logged_in(6).await;
    // Presence is visible to users who share a room with the ghost: the space.
    s.accept_invite_from(&s.slot.bot).await;
    let mut alice = s.client("alice@example.com").await;
    let ghost = s.ghost("alice@example.com");
    let expect = |presence: &'static str, msg: Option<&'static str>| {
        let (user, ghost) = (&s.user, ghost.clone());
        async move {
            wait_until(WAIT, &format!("presence {presence} {msg:?}"), || async {
                let p = user.get_presence(&ghost).await?;
                let ok = p["presence"] == presence
                    && msg.is_none_or(|m| p["status_msg"].as_str() == Some(m));
                Ok(ok.then_some(()))
            })
            .await
            .unwrap()
        }
    };
    expect("online", None).await;
    alice.set_status(Status::Busy).unwrap();
    expect("unavailable", Some("Busy")).await;
    alice.set_status(Status::Away).unwrap();
    expect("unavailable", Some("Away")).await;
    alice.set_status(Status::OnThePhone).unwrap();
    expect("unavailable", Some("On the phone")).await;
    alice.set_status(Status::Online).unwrap();
    expect("online", None).await;

    // Our status reaches the contact.
    command(
        &s.user,
        s.slot,
        &s.mgmt,
        "status away msn",
        "status set to away",
    )
    .await;
    assert!(alice.wait_for_presence(ME, Status::Away, WAIT).await);

    // A friendly-name change renames the ghost.
    alice.set_friendly_name("Alice in Wonderland").unwrap();
    wait_until(WAIT, "the ghost renamed", || async {
        Ok((s.user.get_displayname(&ghost).await?.as_deref()
            == Some("Alice in Wonderland (MSN Messenger)"))
        .then_some(()))
    })
    .await
    .unwrap();

    alice.logout().await;
    expect("offline", None).await;
}

#[tokio::test]
async fn reconnects_and_survives_a_bridge_restart() {
    let mut s = logged_in(7).await;
    s.accept_invite_from(&s.slot.bot).await; // the space
    let mut alice = s.client("alice@example.com").await;
    let room = s.dm_from(&alice, "before the outage").await;
    let ghost = s.ghost("alice@example.com");

    s.sim.stop().await;
    s.user
        .wait_for_message(
            &s.mgmt,
            from_bot(s.slot, "Disconnected from MSN Messenger"),
            WAIT,
        )
        .await
        .unwrap();
    s.user
        .send_text(&room, "sent during the outage")
        .await
        .unwrap();
    drop(alice);
    s.sim.restart().await.unwrap();
    alice = s.client("alice@example.com").await;
    wait_until(WAIT, "a second Connected notice", || async {
        Ok((count(
            &s.user,
            &s.mgmt,
            from_bot(s.slot, "Connected to MSN Messenger"),
        )
        .await
            >= 2)
            .then_some(()))
    })
    .await
    .unwrap();
    wait_msn_message(&mut alice, ME, "sent during the outage").await;

    // kill -9 and start again: same rooms, same ghosts.
    let rooms_before = s.user.joined_rooms().await.unwrap().len();
    // The resumed login comes back without a "Connected" notice: the server shows it.
    s.kill9_and_restart().await;
    alice.send_message(ME, "after the restart").await.unwrap();
    s.user
        .wait_for_message(&room, from_sender(&ghost, "after the restart"), WAIT)
        .await
        .unwrap();
    s.user.send_text(&room, "still here").await.unwrap();
    wait_msn_message(&mut alice, ME, "still here").await;
    assert_eq!(
        s.user.joined_rooms().await.unwrap().len(),
        rooms_before,
        "no new rooms"
    );
    assert_eq!(
        s.user.get_displayname(&ghost).await.unwrap().as_deref(),
        Some("Alice Liddell (MSN Messenger)")
    );
    // The groups survived too: the space topic still lists them.
    let mut topics = Vec::new();
    for room in s.user.joined_rooms().await.unwrap() {
        if let Ok(Some(t)) = s.user.room_state(&room, "m.room.topic", "").await {
            topics.push(t["topic"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert!(
        topics.iter().any(|t| t.contains("Friends (Alice Liddell)")),
        "{topics:?}"
    );
}

/// Escargot's default set-up: the nexus announces an https DALogin, the server speaks
/// plain HTTP only. The user is told why (TLS) and what to change, the login stops after
/// a few tries; with `login_url` set to the plain-HTTP address, it works.
#[tokio::test]
async fn https_dalogin_on_a_plain_http_server() {
    let (synapse, slot) = env(8);
    let sim = Server::start(Config {
        dispatch_port: 0,
        notification_port: 0,
        switchboard_port: 0,
        http_port: 0,
        dalogin_https: true,
        users: standard_users(),
        ..Config::default()
    })
    .await
    .expect("simulator starts");
    let mut bridge = start_bridge(synapse, slot, &sim);
    let user = synapse
        .register_user(&slot.user_localpart("alice"), "pw", false)
        .await
        .unwrap();
    let mgmt = slot.management_room(&user).await;
    user.send_text(&mgmt, &format!("login msn {ME} {PW}"))
        .await
        .unwrap();
    let first = user
        .wait_for_message(
            &mgmt,
            from_bot(slot, "Disconnected from MSN Messenger"),
            WAIT,
        )
        .await
        .unwrap();
    assert!(
        body(&first).contains("TLS handshake failed") && body(&first).contains("Reconnecting"),
        "{first}"
    );
    let failed = user
        .wait_for_message(&mgmt, from_bot(slot, "Login to MSN Messenger failed"), WAIT)
        .await
        .unwrap();
    for needle in [
        "TLS handshake failed",
        "set networks.msn.options.login_url",
        "Gave up after 3 tries",
    ] {
        assert!(body(&failed).contains(needle), "{needle:?} in {failed}");
    }
    // It stopped: three TLS attempts, no login left, nothing to reconnect.
    assert_eq!(sim.tls_hellos(), 3);
    command(&user, slot, &mgmt, "list", "You have no logins").await;
    command(
        &user,
        slot,
        &mgmt,
        "reconnect msn",
        "You have no MSN Messenger login to reconnect",
    )
    .await;

    // The operator sets login_url to the plain-HTTP login address.
    assert!(bridge.terminate(), "the bridge stops cleanly");
    let networks = slot.network_yaml(
        "msn",
        &sim.dispatch_addr().to_string(),
        &[
            ("nexus_url", json!(sim.nexus_url())),
            ("login_url", json!(sim.login_url())),
        ],
    );
    let _bridge = slot
        .start_with_networks(synapse, Some(&networks))
        .expect("bridge starts");
    command(
        &user,
        slot,
        &mgmt,
        &format!("login msn {ME} {PW}"),
        "Connected to MSN Messenger as me@example.com",
    )
    .await;
    assert_eq!(sim.tls_hellos(), 3, "no TLS attempt with login_url set");
}

/// `OUT OTH`: the bridge stops, says how to come back, does not fight the other location
/// after a restart, and `reconnect msn` signs in here again from the stored login.
#[tokio::test]
async fn signed_in_elsewhere_then_reconnect() {
    let mut s = logged_in(9).await;
    let mut alice = s.client("alice@example.com").await;
    let room = s.dm_from(&alice, "before the other location").await;
    let ghost = s.ghost("alice@example.com");
    command(
        &s.user,
        s.slot,
        &s.mgmt,
        "reconnect msn",
        "is connected already",
    )
    .await;

    let mut elsewhere = s.client(ME).await;
    let notice = s
        .user
        .wait_for_message(
            &s.mgmt,
            from_bot(s.slot, "Disconnected from MSN Messenger"),
            WAIT,
        )
        .await
        .unwrap();
    assert!(
        body(&notice).contains(
            "signed in from another location. Send `reconnect msn` to sign in here again."
        ),
        "{notice}"
    );

    // A bridge restart leaves the other location alone: the login is kept, stopped.
    s.bridge.kill9();
    s.bridge = start_bridge(s.synapse, s.slot, &s.sim);
    command(
        &s.user,
        s.slot,
        &s.mgmt,
        "list",
        "me@example.com: stopped (this account signed in from another location); send `reconnect msn`",
    )
    .await;

    command(
        &s.user,
        s.slot,
        &s.mgmt,
        "reconnect msn",
        "Reconnecting to MSN Messenger as me@example.com",
    )
    .await;
    wait_until(WAIT, "a second Connected notice", || async {
        Ok((count(
            &s.user,
            &s.mgmt,
            from_bot(s.slot, "Connected to MSN Messenger"),
        )
        .await
            >= 2)
            .then_some(()))
    })
    .await
    .unwrap();
    // The bridge took the session back from the other location.
    elsewhere
        .wait_for(WAIT, |e| matches!(e, ClientEvent::Disconnected { .. }))
        .await
        .expect("the other location is signed out");

    alice.send_message(ME, "after reconnect").await.unwrap();
    s.user
        .wait_for_message(&room, from_sender(&ghost, "after reconnect"), WAIT)
        .await
        .unwrap();
    s.user.send_text(&room, "back here").await.unwrap();
    wait_msn_message(&mut alice, ME, "back here").await;
}

/// A contact added from Matrix gets its friendly name, not its address, while offline.
#[tokio::test]
async fn added_contact_has_its_friendly_name() {
    let s = logged_in(10).await;
    // Carol has us on her list (so the server named her in our reverse list); she is
    // offline, and the server's ADD reply echoes the address as her nick.
    command(
        &s.user,
        s.slot,
        &s.mgmt,
        "add msn carol@example.com",
        "Added carol@example.com",
    )
    .await;
    let carol = s.ghost("carol@example.com");
    wait_until(WAIT, "carol's ghost named Carol", || async {
        Ok(
            (s.user.get_displayname(&carol).await?.as_deref() == Some("Carol (MSN Messenger)"))
                .then_some(()),
        )
    })
    .await
    .unwrap();
}

/// Nudges cross both ways: a contact's arrives as an emote from the ghost ("nudged you",
/// marked as a nudge), `/me nudges` in the portal reaches the contact as a datacast.
/// What the bridge cannot carry yet (a wink, ink, a file offer) arrives as a line from
/// the contact saying what was sent, never as silence.
#[tokio::test]
async fn nudges_both_ways_and_winks_ink_and_invitations_are_named() {
    let s = logged_in(11).await;
    let mut alice = s.client("alice@example.com").await;
    let room = s.dm_from(&alice, "look at this").await;
    let ghost = s.ghost("alice@example.com");

    alice.send_nudge(ME).await.expect("nudge");
    let nudge = s
        .user
        .wait_for_message(&room, from_sender(&ghost, "nudged you"), WAIT)
        .await
        .expect("the nudge arrives");
    assert_eq!(nudge["content"]["msgtype"], "m.emote", "{nudge}");
    assert_eq!(nudge["content"]["net.retrobridge.nudge"], true, "{nudge}");

    s.user
        .send_message(&room, json!({"msgtype": "m.emote", "body": "nudges"}))
        .await
        .unwrap();
    alice
        .wait_for(
            WAIT,
            |e| matches!(e, ClientEvent::Datacast { from, id: 1, .. } if from == ME),
        )
        .await
        .expect("alice is nudged");
    // Another emote is still text.
    s.user
        .send_message(&room, json!({"msgtype": "m.emote", "body": "waves"}))
        .await
        .unwrap();
    wait_msn_message(&mut alice, ME, "* waves").await;

    let raw = |content_type: &str, body: &[u8]| legacy_sim::msn::Message {
        headers: vec![
            ("MIME-Version".into(), "1.0".into()),
            ("Content-Type".into(), content_type.into()),
        ],
        body: body.to_vec(),
    };
    alice
        .send_raw(
            ME,
            raw(
                "text/x-msnmsgr-datacast",
                b"ID: 2\r\nData: <msnobj Creator=\"alice@example.com\" Type=\"8\"/>\r\n\r\n",
            ),
        )
        .await
        .unwrap();
    alice
        .send_raw(ME, raw("image/gif", b"base64:R0lGODlhAQABAAAAACw="))
        .await
        .unwrap();
    alice
        .send_raw(
            ME,
            raw(
                "text/x-msmsgsinvite; charset=UTF-8",
                b"Application-Name: Tic Tac Toe\r\nInvitation-Command: INVITE\r\nInvitation-Cookie: 1234\r\n\r\n",
            ),
        )
        .await
        .unwrap();
    for needle in [
        "sent a wink",
        "handwritten message (ink)",
        "invited you to Tic Tac Toe",
    ] {
        let event = s
            .user
            .wait_for_message(&room, from_sender(&ghost, needle), WAIT)
            .await
            .unwrap_or_else(|e| panic!("{needle:?} in the room: {e:#}"));
        assert_eq!(event["content"]["msgtype"], "m.notice", "{event}");
    }
}

/// A picture as a client would have one: PNG's signature, then bytes (the bridge and the
/// homeserver take it by its type; nothing decodes it).
fn picture(len: usize, seed: u8) -> Vec<u8> {
    let mut data = vec![0x89, b'P', b'N', b'G', 13, 10, 26, 10];
    data.extend((0..len - 8).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    data
}

/// Waits until `ghost`'s avatar has these bytes; its `mxc://` address.
async fn avatar_is(user: &TestUser, ghost: &str, wanted: &[u8]) -> String {
    wait_until(WAIT, "the ghost's avatar", || async {
        let Some(url) = user.get_avatar_url(ghost).await? else {
            return Ok(None);
        };
        Ok((user.download(&url).await? == wanted).then_some(url))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// A contact's display picture (MSNSLP over the switchboard, from the simulator's
/// client) becomes the ghost's avatar with the same bytes; after a kill -9 and restart
/// the bridge does not fetch it again (the announcement at sign-in carries the same
/// SHA1D), and a new picture replaces it.
#[tokio::test]
async fn a_contacts_display_picture_becomes_the_ghosts_avatar_once() {
    let mut s = logged_in(12).await;
    let alice = s.client("alice@example.com").await;
    let ghost = s.ghost("alice@example.com");
    let first = picture(20 * 1024, 1);
    alice.set_display_picture(first.clone()).expect("a picture");

    let url = avatar_is(&s.user, &ghost, &first).await;
    assert!(url.starts_with("mxc://"), "{url}");
    assert_eq!(alice.pictures_served(), 1);

    s.kill9_and_restart().await;
    // A new picture is fetched; had the old one been fetched again at sign-in, it would
    // have been served first (one transfer at a time per conversation).
    let second = picture(5 * 1024, 2);
    alice
        .set_display_picture(second.clone())
        .expect("a picture");
    avatar_is(&s.user, &ghost, &second).await;
    assert_eq!(
        alice.pictures_served(),
        2,
        "the first picture was fetched once"
    );
}

/// Bytes a test file holds: every one different from its neighbours, so a chunk out of
/// place or lost shows.
fn file_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// Waits for a file message from `ghost` in `room` and returns its content and bytes.
async fn file_from(user: &TestUser, room: &str, ghost: &str, name: &str) -> (Value, Vec<u8>) {
    let event = user
        .wait_for_message(
            room,
            |e| e["sender"] == ghost && e["content"]["body"] == name,
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("{name} in the room: {e:#}"));
    let url = event["content"]["url"].as_str().expect("a file's url");
    let data = user.download(url).await.expect("the file downloads");
    (event["content"].clone(), data)
}

/// Files both ways and the user's own picture: a contact's 200 KiB file over MSNSLP (the
/// data relayed through the switchboard after Messenger's direct-connection offer is
/// turned down) and another over MSNFTP (its own TCP connection) arrive as `m.file` /
/// `m.image` with their names, sizes and bytes; a Matrix file reaches the contact as an
/// MSN transfer with the same bytes, and as its link when the contact declines (the user
/// is told); the user's Matrix avatar becomes their MSN display picture.
#[tokio::test]
async fn files_cross_both_ways_and_the_users_avatar_is_their_picture() {
    let s = logged_in(13).await;
    let mut alice = s.client("alice@example.com").await;
    let room = s.dm_from(&alice, "files coming").await;
    let ghost = s.ghost("alice@example.com");

    let report = file_bytes(200 * 1024, 1);
    alice
        .send_file(ME, "report.pdf", report.clone())
        .await
        .expect("an MSNSLP transfer");
    let (content, data) = file_from(&s.user, &room, &ghost, "report.pdf").await;
    assert_eq!(content["msgtype"], "m.file", "{content}");
    assert_eq!(content["info"]["size"], 200 * 1024, "{content}");
    assert_eq!(content["info"]["mimetype"], "application/pdf", "{content}");
    assert!(data == report, "the bytes of report.pdf differ");

    let mut photo = picture(150 * 1024, 9);
    photo.truncate(150 * 1024);
    alice
        .send_file_msnftp(ME, "photo.png", photo.clone())
        .await
        .expect("an MSNFTP transfer");
    let (content, data) = file_from(&s.user, &room, &ghost, "photo.png").await;
    assert_eq!(content["msgtype"], "m.image", "{content}");
    assert!(data == photo, "the bytes of photo.png differ");

    // Matrix -> MSN: a real transfer.
    let notes = file_bytes(120 * 1024, 7);
    let url = s
        .user
        .upload(notes.clone(), "text/plain", "notes.txt")
        .await
        .unwrap();
    s.user
        .send_message(
            &room,
            json!({"msgtype": "m.file", "body": "notes.txt", "url": url,
                   "info": {"size": notes.len(), "mimetype": "text/plain"}}),
        )
        .await
        .unwrap();
    let got = alice
        .wait_for(
            WAIT,
            |e| matches!(e, ClientEvent::FileReceived { name, .. } if name == "notes.txt"),
        )
        .await
        .expect("alice receives notes.txt");
    let ClientEvent::FileReceived { from, data, .. } = got else {
        unreachable!()
    };
    assert_eq!(from, ME);
    assert!(data == notes, "the bytes alice received differ");

    // Declined: the link goes instead, and the user hears why.
    alice.set_file_policy(legacy_sim::msn::FilePolicy::Decline);
    let url = s
        .user
        .upload(b"not wanted".to_vec(), "text/plain", "spam.txt")
        .await
        .unwrap();
    s.user
        .send_message(
            &room,
            json!({"msgtype": "m.file", "body": "spam.txt", "url": url}),
        )
        .await
        .unwrap();
    let line = alice
        .wait_for_message(ME, WAIT)
        .await
        .expect("alice gets the link");
    assert!(
        line.starts_with("sent a file: spam.txt") && line.contains("/_retrobridge/media/"),
        "{line}"
    );
    s.user
        .wait_for_message(&room, from_bot(s.slot, "declined the file spam.txt"), WAIT)
        .await
        .expect("the user hears the file was declined");

    // The user's avatar is their display picture.
    let avatar = picture(8 * 1024, 3);
    let mxc = s
        .user
        .upload(avatar.clone(), "image/png", "me.png")
        .await
        .unwrap();
    s.user.set_avatar_url(&mxc).await.unwrap();
    let fetched = wait_until(WAIT, "my picture announced to alice", || async {
        if alice.display_picture_of(ME).is_none() {
            return Ok(None);
        }
        Ok(alice
            .fetch_display_picture(ME)
            .await
            .ok()
            .filter(|p| *p == avatar))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(fetched.len(), avatar.len());
}
