//! End-to-end tests of what operators and integrations use: the bridge state in portals
//! (MSC2346), the health endpoints, the provisioning API and the admin commands. A real
//! Synapse, the mig33 simulator in this process, the bridge binary.
//!
//! Slots: 0 bridge state, 1 provisioning (enabled), 2 admin commands (provisioning off).
//! The readiness test has a Synapse of its own (it freezes it).

use std::time::Duration;

use e2e_tests::bridge::{environment, BridgeProcess, BridgeSlot, SlotOptions};
use e2e_tests::{enc, wait_until, Synapse, TestUser};
use legacy_sim::mig33::{client::Client, ChatroomConfig, Config, ContactConfig};
use legacy_sim::mig33::{ParticipantSeparator, Server, UserConfig};
use mig33_proto::{ClientEvent, Presence};
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
const SIM_WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "e2e-provisioning-secret-0123456789abcdef";

fn env(slot: usize) -> (&'static Synapse, &'static BridgeSlot) {
    let (synapse, slots) = environment(3, |i| {
        SlotOptions {
        networks_yaml: format!(
            "  mig33:\n    enabled: true\n    server: \"127.0.0.1:1\"\n    ghost_template: \"s{i}mig33_{{id}}\"\n"
        ),
        provisioning_secret: (i == 1).then(|| SECRET.to_owned()),
        ..SlotOptions::default()
    }
    });
    (synapse, &slots[slot])
}

fn user(name: &str, contacts: &[(&str, &str)]) -> UserConfig {
    UserConfig {
        username: name.into(),
        password: format!("{name}pw"),
        display_name: None,
        groups: Vec::new(),
        contacts: contacts
            .iter()
            .map(|(id, display)| ContactConfig {
                username: (*id).into(),
                group: None,
                display_name: Some((*display).into()),
            })
            .collect(),
    }
}

/// alice and bob are bridged (each has the other and carol); carol is scripted and has
/// both; dave is nobody's contact; everybody may use the `lobby` chatroom.
async fn start_sim() -> Server {
    let config = Config {
        listen: "127.0.0.1:0".into(),
        motd: None,
        users: vec![
            user("alice", &[("bob", "Bobby"), ("carol", "Carol C")]),
            user("bob", &[("alice", "Alice A"), ("carol", "Carol C")]),
            user("carol", &[("alice", "Alice A"), ("bob", "Bobby")]),
            user("dave", &[]),
        ],
        chatrooms: vec![ChatroomConfig {
            name: "lobby".into(),
            description: "Everyone welcome".into(),
        }],
        participant_separator: ParticipantSeparator::Semicolon,
        flood_limit: None,
    };
    Server::start(config).await.expect("mig33 simulator starts")
}

fn start_bridge(synapse: &Synapse, slot: &BridgeSlot, sim: &Server) -> BridgeProcess {
    let yaml = slot.network_yaml("mig33", &sim.addr().to_string(), &[]);
    slot.start_with_networks(synapse, Some(&yaml))
        .expect("bridge starts")
}

fn body(event: &Value) -> &str {
    event["content"]["body"].as_str().unwrap_or_default()
}

fn from_bot<'a>(slot: &'a BridgeSlot, needle: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e| e["sender"] == slot.bot.as_str() && body(e).contains(needle)
}

async fn register(synapse: &Synapse, slot: &BridgeSlot, name: &str) -> TestUser {
    synapse
        .register_user(&slot.user_localpart(name), "pw", false)
        .await
        .expect("register user")
}

/// Sends a command and returns the bot's answer containing `expect` (sent after it).
async fn command(
    user: &TestUser,
    slot: &BridgeSlot,
    room: &str,
    text: &str,
    expect: &str,
) -> String {
    let sent = user.send_text(room, text).await.expect("send");
    let answer = wait_until(WAIT, &format!("an answer to {text:?}"), || async {
        let events = user.messages(room).await?;
        let after = events
            .iter()
            .position(|e| e["event_id"] == sent.as_str())
            .map_or(0, |i| i + 1);
        Ok(events[after..]
            .iter()
            .find(|e| from_bot(slot, expect)(e))
            .map(|e| body(e).to_owned()))
    })
    .await;
    match answer {
        Ok(answer) => answer,
        Err(e) => {
            let seen: Vec<String> = user
                .messages(room)
                .await
                .unwrap_or_default()
                .iter()
                .filter(|e| e["type"] == "m.room.message")
                .map(|e| format!("{}: {}", e["sender"], body(e)))
                .collect();
            panic!("{e:#}\nexpected {expect:?}; seen:\n  {}", seen.join("\n  "))
        }
    }
}

async fn login(user: &TestUser, slot: &BridgeSlot, room: &str, name: &str) {
    command(
        user,
        slot,
        room,
        &format!("login mig33 {name} {name}pw"),
        &format!("Connected to mig33 as {name}"),
    )
    .await;
}

/// Waits for an invite whose stripped state has an event matching `pred`, joins it and
/// returns its id. Each call asks `/sync` with another `timeout` (irrelevant for an
/// initial sync), as Synapse caches a response per request for a while.
async fn join_invite(user: &TestUser, what: &str, pred: impl Fn(&Value) -> bool) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let filter = r#"{"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]},"room":{"timeline":{"limit":0},"ephemeral":{"not_types":["*"]},"account_data":{"not_types":["*"]}}}"#;
    let room = wait_until(WAIT, what, || async {
        let timeout = CALLS.fetch_add(1, Ordering::Relaxed).to_string();
        let query = [("filter", filter), ("timeout", timeout.as_str())];
        let resp = user.request(Method::GET, "/sync", &query, None).await?;
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
    user.join(&room).await.expect("join the invited room");
    room
}

/// The room's current state events of the two bridge-state types.
async fn bridge_state_events(user: &TestUser, room: &str) -> Vec<Value> {
    let path = format!("/rooms/{}/state", enc(room));
    let state = user
        .request(Method::GET, &path, &[], None)
        .await
        .expect("room state");
    state
        .as_array()
        .expect("a list of state events")
        .iter()
        .filter(|e| e["type"] == "m.bridge" || e["type"] == "uk.half-shot.bridge")
        .cloned()
        .collect()
}

/// Waits until both bridge-state events are in the room with the key and content.
async fn wait_bridge_state(user: &TestUser, room: &str, key: &str, content: &Value) {
    let last = std::sync::Mutex::new(Vec::new());
    let found = wait_until(WAIT, &format!("the bridge state in {room}"), || async {
        let events = bridge_state_events(user, room).await;
        let ok = ["m.bridge", "uk.half-shot.bridge"].iter().all(|kind| {
            events
                .iter()
                .any(|e| e["type"] == *kind && e["state_key"] == key && e["content"] == *content)
        });
        *last.lock().unwrap() = events;
        Ok(ok.then_some(()))
    })
    .await;
    if let Err(e) = found {
        panic!(
            "{e:#}\nwanted {key:?} {content}\nfound {:#?}",
            last.lock().unwrap()
        );
    }
}

/// The bridge log written since `offset` bytes.
fn log_since(slot: &BridgeSlot, offset: usize) -> String {
    let log = std::fs::read(slot.log_path()).unwrap_or_default();
    String::from_utf8_lossy(&log[offset.min(log.len())..]).into_owned()
}

fn log_len(slot: &BridgeSlot) -> usize {
    std::fs::metadata(slot.log_path()).map_or(0, |m| m.len() as usize)
}

#[tokio::test]
async fn portals_carry_bridge_state_set_once_and_not_again_after_a_restart() {
    let (synapse, slot) = env(0);
    let sim = start_sim().await;
    let mut bridge = start_bridge(synapse, slot, &sim);
    let server = sim.addr().to_string();
    let alice = register(synapse, slot, "alice").await;
    let mgmt = slot.management_room(&alice).await;
    login(&alice, slot, &mgmt, "alice").await;
    // The contact list is in: the DM's channel is named after the contact's nick.
    let bob_ghost = slot.ghost("mig33", "bob");
    wait_until(WAIT, "bob's ghost named from the contact list", || async {
        Ok(
            (alice.get_displayname(&bob_ghost).await?.as_deref() == Some("Bobby (mig33)"))
                .then_some(()),
        )
    })
    .await
    .unwrap();
    let expected = |channel: &str, name: &str| {
        json!({
            "bridgebot": slot.bot,
            "creator": alice.user_id,
            "protocol": { "id": "mig33", "displayname": "mig33" },
            "network": { "id": server, "displayname": server },
            "channel": { "id": channel, "displayname": name },
        })
    };
    let key = |channel: &str| format!("net.retrobridge://mig33/{server}/{channel}");

    // A DM portal the bridge creates (bob writes first).
    let bob = Client::login(sim.addr(), "bob", "bobpw").await.unwrap();
    bob.send_private("alice", "hi alice").await.unwrap();
    let dm = join_invite(&alice, "the DM invite from bob's ghost", |e| {
        e["type"] == "m.room.member"
            && e["state_key"] == alice.user_id.as_str()
            && e["sender"] == bob_ghost.as_str()
    })
    .await;
    wait_bridge_state(&alice, &dm, &key("bob"), &expected("bob", "Bobby")).await;

    // A chatroom portal (created by the bot).
    command(&alice, slot, &mgmt, "join mig33 lobby", "Joined lobby").await;
    let lobby = join_invite(&alice, "the lobby invite", |e| {
        e["type"] == "m.room.name" && e["content"]["name"] == "lobby (mig33)"
    })
    .await;
    wait_bridge_state(&alice, &lobby, &key("lobby"), &expected("lobby", "lobby")).await;
    let by_bot = bridge_state_events(&alice, &lobby).await;
    assert!(
        by_bot.iter().all(|e| e["sender"] == slot.bot.as_str()),
        "{by_bot:#?}"
    );

    // A DM started from Matrix as Element starts one (trusted_private_chat: the invited
    // ghost has the power, the bot it invites has not): the ghost sets it. dave is not a
    // contact: the channel is named by his id.
    let dave_ghost = slot.ghost("mig33", "dave");
    let body =
        json!({ "preset": "trusted_private_chat", "is_direct": true, "invite": [dave_ghost] });
    let dave_dm = alice
        .request(Method::POST, "/createRoom", &[], Some(body))
        .await
        .unwrap()["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_bridge_state(&alice, &dave_dm, &key("dave"), &expected("dave", "dave")).await;
    let by_ghost = bridge_state_events(&alice, &dave_dm).await;
    assert!(
        by_ghost.iter().all(|e| e["sender"] == dave_ghost.as_str()),
        "{by_ghost:#?}"
    );

    // A DM started from Matrix in a room where neither the bot nor the ghost may set
    // state (private_chat gives invitees no power): the bridge tries, and says so.
    let carol_ghost = slot.ghost("mig33", "carol");
    let before = log_len(slot);
    let carol_dm = alice
        .create_room(&[&carol_ghost], true, None)
        .await
        .unwrap();
    wait_until(WAIT, "the refused bridge state logged", || async {
        Ok(log_since(slot, before)
            .contains("could not set the bridge state")
            .then_some(()))
    })
    .await
    .unwrap();
    assert!(bridge_state_events(&alice, &carol_dm).await.is_empty());
    // Alice gives the bot the power: the next start sets it.
    let path = format!(
        "/rooms/{}/state/m.room.power_levels/",
        e2e_tests::enc(&carol_dm)
    );
    let mut levels = alice.request(Method::GET, &path, &[], None).await.unwrap();
    levels["users"][slot.bot.as_str()] = json!(100);
    alice
        .request(Method::PUT, &path, &[], Some(levels))
        .await
        .unwrap();

    let ids = |events: &[Value]| -> Vec<String> {
        let mut ids: Vec<String> = events
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let dm_before = ids(&bridge_state_events(&alice, &dm).await);
    let lobby_before = ids(&bridge_state_events(&alice, &lobby).await);
    assert_eq!((dm_before.len(), lobby_before.len()), (2, 2));

    // Restart: the start-up check sets the missing state and nothing else.
    assert!(bridge.terminate(), "clean stop");
    let before = log_len(slot);
    let _bridge = start_bridge(synapse, slot, &sim);
    let line = wait_until(WAIT, "the start-up check of the portals", || async {
        Ok(log_since(slot, before)
            .lines()
            .find(|l| l.contains("bridge state of the existing portals checked"))
            .map(str::to_owned))
    })
    .await
    .unwrap();
    assert!(
        line.contains("checked=4") && line.contains("set=1") && line.contains("failed=0"),
        "{line}"
    );
    wait_bridge_state(
        &alice,
        &carol_dm,
        &key("carol"),
        &expected("carol", "Carol C"),
    )
    .await;
    assert_eq!(
        ids(&bridge_state_events(&alice, &dm).await),
        dm_before,
        "the DM's state was sent again"
    );
    assert_eq!(
        ids(&bridge_state_events(&alice, &lobby).await),
        lobby_before,
        "the lobby's state was sent again"
    );
    // Nor is anything sent twice in the timeline.
    for room in [&dm, &lobby, &carol_dm, &dave_dm] {
        let sent = alice
            .all_messages(room)
            .await
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "m.bridge")
            .count();
        assert_eq!(sent, 1, "m.bridge events in {room}");
    }
}

async fn get_health(slot: &BridgeSlot, what: &str) -> anyhow::Result<(u16, Value)> {
    let response = reqwest::get(format!("{}/_retrobridge/{what}", slot.endpoint())).await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

/// `/live` answers while the bridge waits for a frozen homeserver; `/ready` says 503
/// with the reason until the bridge has started, then 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_once_started_and_live_throughout() {
    let options = SlotOptions {
        request_timeout_seconds: Some(2),
        ..SlotOptions::default()
    };
    let (synapse, slot) =
        tokio::task::block_in_place(|| e2e_tests::bridge::private_environment("health", options))
            .expect("a Synapse of its own");
    synapse.pause().unwrap();
    let mut bridge = slot.spawn_with_env(&synapse, &[]).unwrap();
    let live = wait_until(WAIT, "/live to answer", || async {
        Ok(get_health(&slot, "live").await.ok())
    })
    .await
    .unwrap();
    assert_eq!(live.0, 200, "{live:?}");
    assert_eq!(live.1["live"], true);
    // The homeserver stays frozen: not ready, for that reason, however long we look.
    for _ in 0..3 {
        let ready = get_health(&slot, "ready").await.unwrap();
        assert_eq!(ready.0, 503, "{ready:?}");
        assert_eq!(ready.1["ready"], false);
        let reason = ready.1["reason"].as_str().unwrap();
        assert!(reason.contains("waiting for the homeserver"), "{reason}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        !bridge.log().contains("ready"),
        "the bot cannot be ready yet:\n{}",
        bridge.log()
    );

    synapse.resume().unwrap();
    wait_until(WAIT, "/ready to say 200", || async {
        let (status, body) = get_health(&slot, "ready").await?;
        Ok((status == 200 && body["ready"] == true).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", bridge.log()));
    // Once ready, the bot is set up: the homeserver knows its name.
    let observer = synapse
        .register_user("health_observer", "pw", false)
        .await
        .unwrap();
    assert_eq!(
        observer
            .get_displayname(&slot.bot)
            .await
            .unwrap()
            .as_deref(),
        Some("Bridge bot 0")
    );
    assert_eq!(get_health(&slot, "live").await.unwrap().0, 200);
    assert!(tokio::task::block_in_place(|| bridge.terminate()));
}

/// One request to the provisioning API of a slot.
async fn provision(
    slot: &BridgeSlot,
    method: Method,
    path: &str,
    secret: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}/_retrobridge/provision/v1{path}", slot.endpoint());
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(secret) = secret {
        request = request.bearer_auth(secret);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the bridge answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn errcode(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["errcode"].as_str().unwrap_or_default())
}

#[tokio::test]
async fn provisioning_api_logs_in_sets_status_and_logs_out_like_the_management_room() {
    let (synapse, slot) = env(1);
    let sim = start_sim().await;
    let _bridge = start_bridge(synapse, slot, &sim);
    let mut carol = Client::login(sim.addr(), "carol", "carolpw").await.unwrap();
    let bob = register(synapse, slot, "bob").await;
    let mgmt = slot.management_room(&bob).await;
    let me = format!("?user_id={}", bob.user_id);
    let logins = format!("/logins{me}");
    // The API may still say "starting" just after the bot is up.
    wait_until(WAIT, "the bridge to be ready", || async {
        let answer = provision(slot, Method::GET, &logins, Some(SECRET), None).await;
        Ok((answer.0 != 503).then_some(()))
    })
    .await
    .unwrap();

    // Without the secret, or with a wrong one: refused, nothing done.
    let login_body = json!({ "network": "mig33", "id": "bob", "password": "bobpw" });
    let refused = provision(
        slot,
        Method::POST,
        &format!("/login{me}"),
        None,
        Some(login_body.clone()),
    )
    .await;
    assert_eq!(errcode(&refused), (401, "M_MISSING_TOKEN"));
    let refused = provision(
        slot,
        Method::POST,
        &format!("/login{me}"),
        Some("e2e-provisioning-secret-0123456789abcdeX"),
        Some(login_body.clone()),
    )
    .await;
    assert_eq!(errcode(&refused), (401, "M_UNKNOWN_TOKEN"));
    // A user the config does not permit: refused.
    let stranger = format!("/login?user_id=@{}:localhost", slot.user_localpart("eve"));
    let refused = provision(
        slot,
        Method::POST,
        &stranger,
        Some(SECRET),
        Some(login_body.clone()),
    )
    .await;
    assert_eq!(errcode(&refused), (403, "M_FORBIDDEN"));
    // A bad request gets a clear error.
    let unknown = provision(
        slot,
        Method::POST,
        &format!("/login{me}"),
        Some(SECRET),
        Some(json!({ "network": "aim", "id": "bob", "password": "x" })),
    )
    .await;
    assert_eq!(errcode(&unknown), (400, "NET.RETROBRIDGE.UNKNOWN_NETWORK"));
    let listed = provision(slot, Method::GET, &logins, Some(SECRET), None).await;
    assert_eq!(
        listed,
        (200, json!({ "user_id": bob.user_id, "logins": [] }))
    );

    // Log in through the API: connecting at once, connected soon, and the management
    // room tells bob and lists the same login.
    let answer = provision(
        slot,
        Method::POST,
        &format!("/login{me}"),
        Some(SECRET),
        Some(login_body),
    )
    .await;
    assert_eq!(
        answer,
        (
            202,
            json!({ "user_id": bob.user_id, "network": "mig33", "id": "bob", "state": "connecting" })
        )
    );
    let connected =
        json!({ "network": "mig33", "network_name": "mig33", "id": "bob", "state": "connected" });
    wait_until(WAIT, "the API to list a connected login", || async {
        let (_, body) = provision(slot, Method::GET, &logins, Some(SECRET), None).await;
        Ok((body["logins"] == json!([connected])).then_some(()))
    })
    .await
    .unwrap();
    bob.wait_for_message(&mgmt, from_bot(slot, "Connected to mig33 as bob"), WAIT)
        .await
        .unwrap();
    let list = command(&bob, slot, &mgmt, "list", "Your logins").await;
    assert_eq!(list, "Your logins:\n- mig33 bob: connected");
    let again = provision(
        slot,
        Method::POST,
        &format!("/login{me}"),
        Some(SECRET),
        Some(json!({ "network": "mig33", "id": "bob", "password": "bobpw" })),
    )
    .await;
    assert_eq!(errcode(&again), (409, "NET.RETROBRIDGE.ALREADY_LOGGED_IN"));

    // Status: carol, who has bob as a contact, sees him away.
    let status = provision(
        slot,
        Method::POST,
        &format!("/status{me}"),
        Some(SECRET),
        Some(json!({ "state": "away", "network": "mig33" })),
    )
    .await;
    assert_eq!(
        status,
        (
            200,
            json!({ "user_id": bob.user_id, "state": "away", "results": [{ "network": "mig33", "ok": true }] })
        )
    );
    carol
        .wait_for(SIM_WAIT, |e| {
            matches!(e, ClientEvent::Presence { username: Some(u), presence: Presence::Away, .. } if u == "bob")
        })
        .await
        .expect("carol sees bob away");

    // Log out: gone from both the API and the management room.
    let out = provision(
        slot,
        Method::DELETE,
        &format!("/logins/mig33{me}"),
        Some(SECRET),
        None,
    )
    .await;
    assert_eq!(
        out,
        (
            200,
            json!({ "user_id": bob.user_id, "network": "mig33", "logged_out": true })
        )
    );
    let listed = provision(slot, Method::GET, &logins, Some(SECRET), None).await;
    assert_eq!(listed.1["logins"], json!([]));
    let list = command(&bob, slot, &mgmt, "list", "no logins").await;
    assert!(list.starts_with("You have no logins"), "{list}");
    let again = provision(
        slot,
        Method::POST,
        &format!("/logout{me}"),
        Some(SECRET),
        Some(json!({ "network": "mig33" })),
    )
    .await;
    assert_eq!(errcode(&again), (404, "NET.RETROBRIDGE.NOT_LOGGED_IN"));
    carol
        .wait_for(SIM_WAIT, |e| {
            matches!(e, ClientEvent::Presence { username: Some(u), presence: Presence::Offline, .. } if u == "bob")
        })
        .await
        .expect("carol sees bob go offline");

    let log = std::fs::read_to_string(slot.log_path()).unwrap();
    assert!(!log.contains(SECRET), "the secret is never logged");
    assert!(!log.contains("bobpw"), "the password is never logged");
}

/// The bot's welcome in a management room (it holds `help`).
async fn welcome(user: &TestUser, slot: &BridgeSlot, room: &str) -> String {
    let events = user.messages(room).await.unwrap();
    let welcome = events.iter().find(|e| from_bot(slot, "Commands")(e));
    body(welcome.expect("a welcome")).to_owned()
}

#[tokio::test]
async fn admin_commands_for_admins_only() {
    let (synapse, slot) = env(2);
    let sim = start_sim().await;
    let _bridge = start_bridge(synapse, slot, &sim);
    let alice = register(synapse, slot, "alice").await;
    let alice_room = slot.management_room(&alice).await;
    login(&alice, slot, &alice_room, "alice").await;
    let admin = register(synapse, slot, "admin").await;
    let admin_room = slot.management_room(&admin).await;

    // The welcome (help) lists admin commands for the admin only.
    assert!(welcome(&admin, slot, &admin_room)
        .await
        .contains("logout-user <mxid> <network>"));
    assert!(!welcome(&alice, slot, &alice_room)
        .await
        .contains("logout-user"));

    // A normal user is refused.
    for name in ["stats", "logins", "version"] {
        let answer = command(&alice, slot, &alice_room, name, "admin command").await;
        assert_eq!(
            answer,
            format!("`{name}` is an admin command: only the bridge's administrators can use it.")
        );
    }
    let refused = command(
        &alice,
        slot,
        &alice_room,
        &format!("logout-user {} mig33", admin.user_id),
        "admin command",
    )
    .await;
    assert!(
        refused.starts_with("`logout-user` is an admin command"),
        "{refused}"
    );

    let version = command(&admin, slot, &admin_room, "version", "retrobridge").await;
    assert!(
        version.starts_with("retrobridge 0.") && version.ends_with("(networks enabled: mig33)"),
        "{version}"
    );
    let stats = command(&admin, slot, &admin_room, "stats", "Logins:").await;
    assert!(stats.contains("\n  mig33: 1 (1 connected)\n"), "{stats}");
    assert!(stats.contains("\nQueues: "), "{stats}");
    let logins = command(&admin, slot, &admin_room, "logins", "All logins").await;
    assert_eq!(
        logins,
        format!(
            "All logins (1):\n- {}: mig33 alice: connected",
            alice.user_id
        )
    );

    // The admin logs alice out: she is told, and her login is gone.
    let done = command(
        &admin,
        slot,
        &admin_room,
        &format!("logout-user {} mig33", alice.user_id),
        "Logged",
    )
    .await;
    assert_eq!(done, format!("Logged {} out of mig33.", alice.user_id));
    alice
        .wait_for_message(
            &alice_room,
            from_bot(
                slot,
                "An administrator of the bridge logged you out of mig33.",
            ),
            WAIT,
        )
        .await
        .unwrap();
    let list = command(&alice, slot, &alice_room, "list", "no logins").await;
    assert!(list.starts_with("You have no logins"), "{list}");
    let stats = command(&admin, slot, &admin_room, "stats", "Logins:").await;
    assert!(stats.contains("\n  mig33: none\n"), "{stats}");
    let again = command(
        &admin,
        slot,
        &admin_room,
        &format!("logout-user {} mig33", alice.user_id),
        "not logged in",
    )
    .await;
    assert_eq!(
        again,
        format!("{} is not logged in to mig33.", alice.user_id)
    );

    // This slot leaves provisioning out of its config: the API is not there, whatever
    // the secret.
    let off = provision(
        slot,
        Method::GET,
        &format!("/logins?user_id={}", alice.user_id),
        Some(SECRET),
        None,
    )
    .await;
    assert!(off.0 == 403 || off.0 == 404, "{off:?}");
    assert_ne!(off.1["errcode"], "NET.RETROBRIDGE.NOT_LOGGED_IN");
}
