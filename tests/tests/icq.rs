//! End-to-end tests of the ICQ v2 network: a real Synapse, the ICQ simulator in this
//! process (UDP, port 0), the real bridge binary, and scripted ICQ users.
//!
//! The Matrix user `@s<N>alice` owns ICQ account 1001. Bob (1002) is on 1001's
//! server-side contact list (simulator config), Carol (1003) is not.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e_tests::bridge::{environment, BridgeProcess, BridgeSlot, SlotOptions};
use e2e_tests::wait_until;
use e2e_tests::{Synapse, TestUser};
use icq_proto::{ClientEvent, MessageContent, Status};
use legacy_sim::icq::{client::Client, Config, Server, WrongPassword};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
const ICQ_WAIT: Duration = Duration::from_secs(30);
const SLOTS: usize = 11;

const ME: u32 = 1001;
const ME_PW: &str = "s3cr3tz";
const BOB: u32 = 1002;
const CAROL: u32 = 1003;

/// Every slot has ICQ enabled (the registration's namespace needs it); each test starts
/// its bridge pointing at its own simulator.
fn options(i: usize) -> SlotOptions {
    SlotOptions {
        networks_yaml: format!(
            "  icq:\n    enabled: true\n    server: \"127.0.0.1:9\"\n    ghost_template: \"s{i}icq_{{id}}\"\n"
        ),
            ..SlotOptions::default()
    }
}

fn sim_config() -> Config {
    let yaml = format!(
        r#"
listen: "127.0.0.1:0"
users:
  - {{ uin: {ME}, password: {ME_PW}, nick: alice, first: Alice, contacts: [{BOB}] }}
  - {{ uin: {BOB}, password: bob2, nick: bobby, first: Bob, last: Smith, email: bob@example.org, contacts: [{ME}], city: Umea, age: 25, sex: 2 }}
  - {{ uin: {CAROL}, password: carol3, nick: carol, first: Carol, email: carol@example.org }}
"#
    );
    serde_yaml::from_str(&yaml).expect("simulator config")
}

struct Env {
    synapse: &'static Synapse,
    slot: &'static BridgeSlot,
    server: Server,
    bridge: BridgeProcess,
    alice: TestUser,
    mgmt: String,
}

impl Env {
    async fn new(index: usize) -> Env {
        Env::with(index, sim_config(), &fast_probes()).await
    }

    /// A simulator with `config` and a bridge with these ICQ options.
    async fn with(index: usize, config: Config, icq_options: &[(&str, Value)]) -> Env {
        let (synapse, slots) = environment(SLOTS, options);
        let slot = &slots[index];
        let server = Server::start(config).await.expect("ICQ simulator");
        let bridge = start_bridge_with(synapse, slot, &server, icq_options);
        let alice = synapse
            .register_user(&slot.user_localpart("alice"), "pw", false)
            .await
            .expect("register alice");
        let mgmt = slot.management_room(&alice).await;
        Env {
            synapse,
            slot,
            server,
            bridge,
            alice,
            mgmt,
        }
    }

    fn ghost(&self, uin: u32) -> String {
        self.slot.ghost("icq", &uin.to_string())
    }

    /// Sends a management command and waits for the bot's reply containing `expect`.
    async fn command(&self, text: &str, expect: &str) -> Value {
        self.alice.send_text(&self.mgmt, text).await.expect("send");
        self.bot_says(expect).await
    }

    async fn bot_says(&self, expect: &str) -> Value {
        self.alice
            .wait_for_message(&self.mgmt, from_bot(self.slot, expect), WAIT)
            .await
            .unwrap_or_else(|e| panic!("no bot message containing {expect:?}: {e:#}"))
    }

    async fn login(&self) {
        self.command(
            &format!("login icq {ME} {ME_PW}"),
            "Connected to ICQ as 1001",
        )
        .await;
    }

    /// Waits for the DM invite from a contact's ghost, joins, returns the room.
    async fn accept_dm(&self, uin: u32) -> String {
        let room = self.wait_invite_from(&self.ghost(uin)).await;
        self.alice.join(&room).await.expect("join DM");
        room
    }

    /// Waits for the space invite from the bot, joins, returns the space.
    async fn accept_space(&self) -> String {
        let space = self.wait_invite_from(&self.slot.bot).await;
        self.alice.join(&space).await.expect("join space");
        space
    }

    async fn wait_invite_from(&self, inviter: &str) -> String {
        wait_until(WAIT, &format!("an invite from {inviter}"), || async {
            Ok(invites(&self.alice)
                .await?
                .into_iter()
                .find(|(_, from)| from == inviter)
                .map(|(room, _)| room))
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
    }

    async fn message_from(&self, room: &str, sender: &str, needle: &str) -> Value {
        self.alice
            .wait_for_message(
                room,
                |e| e["sender"] == sender && body(e).contains(needle),
                WAIT,
            )
            .await
            .unwrap_or_else(|e| panic!("no message {needle:?} from {sender}: {e:#}"))
    }

    async fn count_bot(&self, needle: &str) -> usize {
        self.alice
            .messages(&self.mgmt)
            .await
            .expect("messages")
            .iter()
            .filter(|e| from_bot(self.slot, needle)(e))
            .count()
    }

    async fn wait_ghost_name(&self, uin: u32, name: &str) {
        let ghost = self.ghost(uin);
        wait_until(WAIT, &format!("{ghost} named {name}"), || async {
            let n = self.alice.get_displayname(&ghost).await?;
            Ok((n.as_deref() == Some(name)).then_some(()))
        })
        .await
        .expect("ghost display name");
    }

    async fn wait_member(&self, room: &str, user: &str) {
        wait_until(WAIT, &format!("{user} in {room}"), || async {
            let members = self.alice.joined_members(room).await?;
            Ok(members.iter().any(|m| m == user).then_some(()))
        })
        .await
        .expect("membership");
    }

    async fn wait_presence(&self, uin: u32, presence: &str, status: &str) {
        let ghost = self.ghost(uin);
        wait_until(WAIT, &format!("{ghost} {presence} ({status})"), || async {
            let p = self.alice.get_presence(&ghost).await?;
            Ok((p["presence"] == presence && p["status_msg"] == status).then_some(()))
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    }
}

/// A short probe interval: the bridge notices a stopped server within seconds.
fn fast_probes() -> Vec<(&'static str, Value)> {
    vec![("probe_interval_secs", json!(2))]
}

fn start_bridge(synapse: &Synapse, slot: &BridgeSlot, server: &Server) -> BridgeProcess {
    start_bridge_with(synapse, slot, server, &fast_probes())
}

fn start_bridge_with(
    synapse: &Synapse,
    slot: &BridgeSlot,
    server: &Server,
    icq_options: &[(&str, Value)],
) -> BridgeProcess {
    let yaml = slot.network_yaml("icq", &server.addr().to_string(), icq_options);
    slot.start_with_networks(synapse, Some(&yaml))
        .expect("bridge starts")
}

/// Pending invites as (room, inviter).
async fn invites(user: &TestUser) -> anyhow::Result<Vec<(String, String)>> {
    let invites = user.invited_rooms().await?;
    Ok(invites
        .into_iter()
        .map(|i| (i.room_id, i.inviter))
        .collect())
}

fn body(event: &Value) -> &str {
    event["content"]["body"].as_str().unwrap_or_default()
}

fn from_bot<'a>(slot: &'a BridgeSlot, needle: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e| e["sender"] == slot.bot.as_str() && body(e).contains(needle)
}

async fn icq_user(server: &Server, uin: u32, password: &str) -> Client {
    Client::login(server.addr(), uin, password)
        .await
        .expect("ICQ user logs in")
}

/// The next text message from `from`, as the ICQ user sees it.
async fn icq_text(client: &mut Client, from: u32) -> String {
    match client.wait_for_message(from, ICQ_WAIT).await {
        Some(ClientEvent::Message { text, .. }) => text,
        other => panic!("no ICQ message from {from}: {other:?}"),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn login_connects_and_bad_passwords_are_refused_clearly() {
    let env = Env::new(0).await;
    env.command(
        &format!("login icq {ME} wrongpw"),
        "Login to ICQ failed: the ICQ server refused the password",
    )
    .await;
    env.command("list", "You have no logins").await;
    env.command(
        &format!("login icq {ME} 123456789"),
        "ICQ passwords are at most 8 characters long, and this one has 9",
    )
    .await;
    env.login().await;
    env.command("list", "- ICQ 1001: connected").await;
    // ICQ v2 has no chatrooms.
    env.command(
        "join icq lobby",
        "Could not join lobby: ICQ does not support this",
    )
    .await;
    let log = std::fs::read_to_string(env.slot.log_path()).unwrap();
    for password in [ME_PW, "wrongpw", "123456789"] {
        assert!(!log.contains(password), "a password was logged");
    }
}

#[tokio::test]
async fn contacts_become_ghosts_with_their_nicks_in_the_space() {
    let env = Env::new(1).await;
    let _bob = icq_user(&env.server, BOB, "bob2").await;
    env.login().await;
    let space = env.accept_space().await;
    env.wait_ghost_name(BOB, "bobby (ICQ)").await;
    env.wait_member(&space, &env.ghost(BOB)).await;
}

#[tokio::test]
async fn incoming_messages_open_one_dm_with_links_notices_and_offline_times() {
    let env = Env::new(2).await;
    // Carol writes while 1001 is offline: the server keeps it with its time.
    let mut carol = icq_user(&env.server, CAROL, "carol3").await;
    let before = unix_now();
    carol
        .send_message_acked(ME, "left while you were away", ICQ_WAIT)
        .await
        .unwrap();
    let after = unix_now();
    env.login().await;
    let carol_room = env.accept_dm(CAROL).await;
    let offline = env
        .message_from(&carol_room, &env.ghost(CAROL), "left while you were away")
        .await;
    assert!(
        body(&offline).contains("while you were offline"),
        "{offline}"
    );
    // ICQ dates have minute precision.
    let ts = offline["origin_server_ts"].as_u64().unwrap();
    assert!(
        ts % 60_000 == 0 && ts >= (before - before % 60) * 1000 && ts <= after * 1000,
        "origin_server_ts {ts} is not the ICQ time (sent between {before} and {after})"
    );

    // Precondition, not an assertion: ICQ v2 has no end-of-stored-messages marker, so the
    // bridge takes messages in the first 2 s after login (OFFLINE_BURST) for stored ones.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut bob = icq_user(&env.server, BOB, "bob2").await;
    bob.send_message_acked(ME, "hello from bob", ICQ_WAIT)
        .await
        .unwrap();
    let room = env.accept_dm(BOB).await;
    let first = env
        .message_from(&room, &env.ghost(BOB), "hello from bob")
        .await;
    assert_eq!(first["content"]["msgtype"], "m.text");
    assert!(!body(&first).contains("offline"), "{first}");

    bob.send_message_acked(ME, "second one", ICQ_WAIT)
        .await
        .unwrap();
    env.message_from(&room, &env.ghost(BOB), "second one").await;

    let url = MessageContent::Url {
        description: "look at this".into(),
        url: "http://example.org/page".into(),
    };
    bob.send_content(ME, url).await.unwrap();
    let link = env
        .message_from(&room, &env.ghost(BOB), "look at this")
        .await;
    assert_eq!(link["content"]["format"], "org.matrix.custom.html");
    let html = link["content"]["formatted_body"]
        .as_str()
        .unwrap_or_default();
    assert!(
        html.contains("<a href=\"http://example.org/page\">"),
        "{link}"
    );

    bob.add_contact(ME).await.unwrap();
    let added = env
        .message_from(&room, &env.ghost(BOB), "added you to their contact list")
        .await;
    assert_eq!(added["content"]["msgtype"], "m.notice");

    // Everything from Bob went to one room: no second invite.
    let pending = invites(&env.alice).await.unwrap();
    assert!(
        pending.iter().all(|(_, from)| *from != env.ghost(BOB)),
        "a second DM invite from Bob: {pending:?}"
    );
}

#[tokio::test]
async fn matrix_messages_reach_icq_with_replacements_and_splitting_explained() {
    let env = Env::new(3).await;
    let mut bob = icq_user(&env.server, BOB, "bob2").await;
    env.login().await;
    bob.send_message_acked(ME, "hi alice", ICQ_WAIT)
        .await
        .unwrap();
    let room = env.accept_dm(BOB).await;
    env.message_from(&room, &env.ghost(BOB), "hi alice").await;

    env.alice.send_text(&room, "hello bob, café").await.unwrap();
    assert_eq!(icq_text(&mut bob, ME).await, "hello bob, café");

    env.alice.send_text(&room, "snowman ☃").await.unwrap();
    assert_eq!(icq_text(&mut bob, ME).await, "snowman ?");
    env.message_from(&room, &env.slot.bot, "replaced by '?': ☃")
        .await;

    let long: String = (0..200).map(|i| format!("word{i} ")).collect();
    env.alice.send_text(&room, long.trim_end()).await.unwrap();
    let mut received = String::new();
    let mut parts = 0;
    while received.len() < long.trim_end().len() {
        received.push_str(&icq_text(&mut bob, ME).await);
        parts += 1;
    }
    assert_eq!(received, long.trim_end());
    assert!(parts > 1, "long text must be split");
    env.message_from(&room, &env.slot.bot, &format!("sent in {parts} parts"))
        .await;
}

#[tokio::test]
async fn presence_crosses_both_ways() {
    let env = Env::new(4).await;
    let mut bob = icq_user(&env.server, BOB, "bob2").await;
    env.login().await;
    // The space is a room Alice shares with the ghost, so she can see its presence.
    let space = env.accept_space().await;
    env.wait_member(&space, &env.ghost(BOB)).await;
    env.wait_presence(BOB, "online", "Online").await;
    bob.set_status(Status::AWAY).await.unwrap();
    env.wait_presence(BOB, "unavailable", "Away").await;
    bob.set_status(Status::DND).await.unwrap();
    env.wait_presence(BOB, "unavailable", "Do not disturb")
        .await;
    bob.set_status(Status::ONLINE).await.unwrap();
    env.wait_presence(BOB, "online", "Online").await;

    env.command("status away", "ICQ: status set to away").await;
    let seen = bob
        .wait_for(ICQ_WAIT, |e| {
            matches!(e, ClientEvent::ContactStatus { uin: ME, status } if *status == Status::AWAY)
        })
        .await;
    assert!(seen.is_some(), "Bob did not see 1001 go away");

    bob.logout().await;
    env.wait_presence(BOB, "offline", "Offline").await;
}

#[tokio::test]
async fn search_info_add_and_pm() {
    let env = Env::new(5).await;
    let mut carol = icq_user(&env.server, CAROL, "carol3").await;
    env.login().await;
    for (query, needle) in [
        ("1002", "result(s) for \"1002\""),
        ("bobby", "result(s) for \"bobby\""),
        ("bob@example.org", "result(s) for \"bob@example.org\""),
    ] {
        let reply = env.command(&format!("search icq {query}"), needle).await;
        assert!(body(&reply).contains("- 1002 (bobby)"), "{reply}");
    }
    env.command("search icq nobody", "Nobody found for \"nobody\"")
        .await;
    env.command("info icq 4242", "Nobody found for \"4242\"")
        .await;
    let info = env.command("info icq 1002", "City: Umea").await;
    for detail in [
        "- 1002 (bobby)",
        "E-mail: bob@example.org",
        "City: Umea",
        "Age: 25",
    ] {
        assert!(body(&info).contains(detail), "{detail}: {info}");
    }

    env.command("add icq 1003", "Added 1003 to your ICQ contacts")
        .await;
    match carol.wait_for_message(ME, ICQ_WAIT).await {
        Some(ClientEvent::Message { content, .. }) => {
            assert!(matches!(content, MessageContent::Added { nick, .. } if nick == "alice"))
        }
        other => panic!("Carol was not told she was added: {other:?}"),
    }
    let space = env.accept_space().await;
    env.wait_ghost_name(CAROL, "carol (ICQ)").await;
    env.wait_member(&space, &env.ghost(CAROL)).await;

    env.command("pm icq 1003", "Opened a chat with 1003").await;
    let room = env.accept_dm(CAROL).await;
    env.wait_member(&room, &env.ghost(CAROL)).await;
    env.alice.send_text(&room, "hi carol").await.unwrap();
    assert_eq!(icq_text(&mut carol, ME).await, "hi carol");

    // A chat started from Matrix by inviting the ghost becomes the DM portal...
    let mut bob = icq_user(&env.server, BOB, "bob2").await;
    let ghost = env.ghost(BOB);
    let invited = env.alice.create_room(&[&ghost], true, None).await.unwrap();
    env.wait_member(&invited, &ghost).await;
    env.alice
        .send_text(&invited, "started from Matrix")
        .await
        .unwrap();
    assert_eq!(icq_text(&mut bob, ME).await, "started from Matrix");
    // ...and a second one is pointed at the first instead of becoming another.
    let second = env.alice.create_room(&[&ghost], true, None).await.unwrap();
    env.message_from(&second, &ghost, "You already have a chat with 1002")
        .await;
    e2e_tests::wait_until(ICQ_WAIT, "the ghost to leave the second room", || async {
        Ok((!env.alice.joined_members(&second).await?.contains(&ghost)).then_some(()))
    })
    .await
    .unwrap();
}

/// A stranger's authorization request reaches the management room, its text cleaned (no
/// line break or control character of theirs; the notice mentions nobody); `authorize`
/// and `deny` answer it and the simulator's client sees granted / denied; answering
/// again, or a UIN that never asked, is refused. A contact's "granted" and contact list
/// are notices in their chat, each listed contact with its `add` hint.
#[tokio::test]
async fn authorization_requests_are_answered_from_matrix() {
    let env = Env::new(10).await;
    let mut carol = icq_user(&env.server, CAROL, "carol3").await;
    let mut bob = icq_user(&env.server, BOB, "bob2").await;
    env.login().await;

    carol
        .request_authorization(ME, "carol", "we met at the\r\nparty \u{7}@room")
        .await
        .unwrap();
    let told = env
        .bot_says("carol (1003) asks to add you to their contact list")
        .await;
    assert_eq!(
        body(&told),
        "carol (1003) asks to add you to their contact list: we met at the party @room. \
         Answer with `authorize icq 1003` or `deny icq 1003`."
    );
    assert_eq!(told["content"]["m.mentions"], json!({}), "{told}");
    assert!(told["content"].get("formatted_body").is_none(), "{told}");
    env.command("authorize icq 1003", "Authorized 1003").await;
    assert_eq!(carol.wait_for_authorization(ME, ICQ_WAIT).await, Some(true));
    env.command(
        "authorize icq 1003",
        "Could not authorize 1003: 1003 has not asked you for authorization on ICQ",
    )
    .await;

    bob.request_authorization(ME, "bobby", "").await.unwrap();
    env.bot_says("bobby (1002) asks to add you to their contact list. Answer with")
        .await;
    env.command("deny icq 1002", "Denied 1002's request").await;
    assert_eq!(bob.wait_for_authorization(ME, ICQ_WAIT).await, Some(false));
    env.command(
        "authorize icq 4242",
        "Could not authorize 4242: 4242 has not asked you for authorization on ICQ",
    )
    .await;

    bob.answer_authorization(ME, true, "").await.unwrap();
    let room = env.accept_dm(BOB).await;
    let granted = env
        .message_from(&room, &env.ghost(BOB), "Authorization granted")
        .await;
    assert_eq!(granted["content"]["msgtype"], "m.notice", "{granted}");
    bob.send_contacts(ME, &[(CAROL, "carol"), (4242, "dave")])
        .await
        .unwrap();
    let list = env
        .message_from(&room, &env.ghost(BOB), "Sent you 2 contact(s)")
        .await;
    assert_eq!(
        body(&list),
        "Sent you 2 contact(s):\n- carol (1003): add icq 1003\n- dave (4242): add icq 4242"
    );
}

#[tokio::test]
async fn server_loss_is_reported_and_messages_wait_for_the_reconnect() {
    let mut env = Env::new(6).await;
    let mut bob = icq_user(&env.server, BOB, "bob2").await;
    env.login().await;
    bob.send_message_acked(ME, "before the outage", ICQ_WAIT)
        .await
        .unwrap();
    let room = env.accept_dm(BOB).await;
    env.message_from(&room, &env.ghost(BOB), "before the outage")
        .await;
    drop(bob);

    env.server.stop().await;
    env.bot_says("Disconnected from ICQ").await;
    env.command("list", "- ICQ 1001: disconnected (").await;
    env.alice
        .send_text(&room, "sent while the server was down")
        .await
        .unwrap();

    env.server.restart().await.expect("server restarts");
    let mut bob = icq_user(&env.server, BOB, "bob2").await;
    assert_eq!(
        icq_text(&mut bob, ME).await,
        "sent while the server was down"
    );
    wait_until(WAIT, "a second Connected notice", || async {
        Ok((env.count_bot("Connected to ICQ as 1001").await >= 2).then_some(()))
    })
    .await
    .unwrap();
    bob.send_message_acked(ME, "after the outage", ICQ_WAIT)
        .await
        .unwrap();
    env.message_from(&room, &env.ghost(BOB), "after the outage")
        .await;
}

#[tokio::test]
async fn bridge_restart_reconnects_and_reuses_rooms_and_ghosts() {
    let mut env = Env::new(7).await;
    let mut bob = icq_user(&env.server, BOB, "bob2").await;
    env.login().await;
    let space = env.accept_space().await;
    env.wait_member(&space, &env.ghost(BOB)).await;
    bob.send_message_acked(ME, "before restart", ICQ_WAIT)
        .await
        .unwrap();
    let room = env.accept_dm(BOB).await;
    env.message_from(&room, &env.ghost(BOB), "before restart")
        .await;
    let rooms_before = env.alice.joined_rooms().await.unwrap().len();

    env.bridge.kill9();
    // The server would time the silent UDP session out; this one forgets it at once,
    // so "online" below is the resumed login (which comes back without a notice).
    env.server.forget_session(ME).await;
    env.bridge = start_bridge(env.synapse, env.slot, &env.server);
    wait_until(WAIT, "the login to reconnect by itself", || async {
        Ok(env.server.online_users().await.contains(&ME).then_some(()))
    })
    .await
    .unwrap();

    bob.send_message_acked(ME, "after restart", ICQ_WAIT)
        .await
        .unwrap();
    env.message_from(&room, &env.ghost(BOB), "after restart")
        .await;
    env.alice.send_text(&room, "welcome back").await.unwrap();
    assert_eq!(icq_text(&mut bob, ME).await, "welcome back");

    assert_eq!(
        env.alice.joined_rooms().await.unwrap().len(),
        rooms_before,
        "no new room after the restart"
    );
    let pending = invites(&env.alice).await.unwrap();
    assert!(
        pending.is_empty(),
        "no new invite after the restart: {pending:?}"
    );
}

/// A server that ACKs a LOGIN with a wrong password and then stays silent (the v2
/// document has no refusal packet): the first login fails with a clear reason and is
/// not retried; the right password then works.
#[tokio::test]
async fn wrong_password_met_with_silence_fails_the_login_once() {
    let mut config = sim_config();
    config.wrong_password = WrongPassword::Silent;
    let env = Env::with(8, config, &[("login_timeout_secs", json!(5))]).await;
    env.command(
        &format!("login icq {ME} wrongpw"),
        "Login to ICQ failed: wrong UIN or password (the server acknowledged the login but never accepted it)",
    )
    .await;
    env.command("list", "You have no logins").await;
    assert_eq!(
        env.count_bot("Disconnected from ICQ").await,
        0,
        "no reconnect: the login ended"
    );
    assert!(env.server.online_users().await.is_empty());
    env.login().await;
    env.command("list", "- ICQ 1001: connected").await;
    assert_eq!(env.server.online_users().await, vec![ME]);
}

/// A server that forgets the session (no more ACKs, the socket still open) is noticed
/// with the default options within 40 s, and a message sent meanwhile arrives once.
#[tokio::test]
async fn forgotten_session_is_noticed_within_40_s_and_messages_arrive_once() {
    let env = Env::with(9, sim_config(), &[]).await;
    let mut bob = icq_user(&env.server, BOB, "bob2").await;
    env.login().await;
    bob.send_message_acked(ME, "before", ICQ_WAIT)
        .await
        .unwrap();
    let room = env.accept_dm(BOB).await;
    env.message_from(&room, &env.ghost(BOB), "before").await;

    let forgotten = Instant::now();
    assert!(env.server.forget_session(ME).await, "1001 was logged in");
    env.alice
        .send_text(&room, "sent while forgotten")
        .await
        .unwrap();
    // Noticed and logged in again: the server has a session for 1001 again. (A loss
    // mended within seconds is no news: the user hears of neither.)
    let limit = Duration::from_secs(40);
    wait_until(limit, "1001 logged in again", || async {
        Ok(env.server.online_users().await.contains(&ME).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("not back within 40 s of the server forgetting: {e:#}"));
    assert!(forgotten.elapsed() <= limit);

    assert_eq!(icq_text(&mut bob, ME).await, "sent while forgotten");
    env.alice
        .send_text(&room, "after the reconnect")
        .await
        .unwrap();
    // Parts go out in order: a second copy would come before this one.
    assert_eq!(icq_text(&mut bob, ME).await, "after the reconnect");
}
