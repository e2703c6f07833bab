//! The bridge's trust boundaries, attacked as an outsider would: a second Matrix user in
//! someone else's rooms, a hostile legacy contact, a revival server whose certificate
//! went bad. Real Synapse, the bridge binary, the simulators; each test has its slot.
//!
//! Matrix users of every slot: `s<N>alice` and `s<N>bob` may use the bridge, `s<N>eve`
//! may not. In the mig33 tests alice is mig33 `alice` and bob (the second bridge user,
//! "mallory" in the comments) is mig33 `dave`.

use std::net::SocketAddr;
use std::time::Duration;

use e2e_tests::bridge::{environment, BridgeProcess, BridgeSlot, SlotOptions};
use e2e_tests::{enc, wait_until, Synapse, TestUser};
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
const SIM_WAIT: Duration = Duration::from_secs(30);
const SLOTS: usize = 9;
/// The slot whose bridge runs with `RUST_LOG=info`, as an operator debugging would.
const RUST_LOG_SLOT: usize = 7;

/// Every slot enables all three networks (the registration's namespaces come from
/// them); each test points the ones it uses at its own simulators.
fn env(slot: usize) -> (&'static Synapse, &'static BridgeSlot) {
    let (synapse, slots) = environment(SLOTS, |i| SlotOptions {
        networks_yaml: Networks::default().yaml_for(i),
        rust_log: (i == RUST_LOG_SLOT).then(|| "info".to_owned()),
        ..SlotOptions::default()
    });
    (synapse, &slots[slot])
}

/// Where each network's server is; a network without one points nowhere.
#[derive(Default)]
struct Networks {
    icq: Option<SocketAddr>,
    mig33: Option<SocketAddr>,
    /// Dispatch address and the options (nexus_url, login_url).
    msn: Option<(SocketAddr, Vec<(&'static str, Value)>)>,
}

impl Networks {
    fn yaml_for(&self, slot: usize) -> String {
        let server = |addr: Option<SocketAddr>| {
            addr.map_or_else(|| "127.0.0.1:9".to_owned(), |a| a.to_string())
        };
        let mut out = String::new();
        for (net, addr, options) in [
            ("icq", self.icq, Vec::new()),
            ("mig33", self.mig33, Vec::new()),
            (
                "msn",
                self.msn.as_ref().map(|m| m.0),
                self.msn.as_ref().map(|m| m.1.clone()).unwrap_or_default(),
            ),
        ] {
            out.push_str(&format!(
                "  {net}:\n    enabled: true\n    server: \"{}\"\n    ghost_template: \"s{slot}{net}_{{id}}\"\n",
                server(addr)
            ));
            if !options.is_empty() {
                out.push_str("    options:\n");
                for (k, v) in options {
                    out.push_str(&format!("      {k}: {v}\n"));
                }
            }
        }
        out
    }
}

fn start(synapse: &Synapse, slot: &BridgeSlot, networks: &Networks) -> BridgeProcess {
    slot.start_with_networks(synapse, Some(&networks.yaml_for(slot.index)))
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

async fn register(synapse: &Synapse, slot: &BridgeSlot, name: &str) -> TestUser {
    synapse
        .register_user(&slot.user_localpart(name), "pw", false)
        .await
        .expect("register user")
}

/// Sends `text` and waits for a new bot message containing `expect` (one more than
/// before: answers repeat).
async fn command(
    user: &TestUser,
    slot: &BridgeSlot,
    room: &str,
    text: &str,
    expect: &str,
) -> Value {
    let before = count(user, room, from_bot(slot, expect)).await;
    user.send_text(room, text).await.expect("send");
    wait_until(
        WAIT,
        &format!("an answer containing {expect:?} to {text:?}"),
        || async {
            let mut answers: Vec<Value> = user
                .messages(room)
                .await?
                .into_iter()
                .filter(from_bot(slot, expect))
                .collect();
            Ok((answers.len() > before).then(|| answers.pop().expect("one")))
        },
    )
    .await
    .unwrap_or_else(|e| {
        let log = std::fs::read_to_string(slot.log_path()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        panic!("{e:#}\nbridge log (newest first):\n{}", tail.join("\n"))
    })
}

async fn count(user: &TestUser, room: &str, pred: impl Fn(&Value) -> bool) -> usize {
    user.messages(room)
        .await
        .expect("messages")
        .iter()
        .filter(|e| pred(e))
        .count()
}

/// Waits for an invite from `inviter`, joins it and returns it.
async fn accept_invite(user: &TestUser, inviter: &str) -> String {
    let room = user
        .wait_for_invite(|i| i == inviter, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    user.join(&room).await.expect("join");
    room
}

/// Waits for an invite to the room named `name`, joins it and returns it.
async fn accept_named(user: &TestUser, name: &str) -> String {
    let filter = json!({"room": {"timeline": {"limit": 0}}}).to_string();
    // A different `timeout` each time gets a fresh sync (Synapse caches identical ones).
    let mut calls = 0u32;
    let room = wait_until(WAIT, &format!("an invite to {name:?}"), || {
        calls += 1;
        let timeout = calls.to_string();
        let filter = filter.clone();
        async move {
            let sync = user
                .request(
                    Method::GET,
                    "/sync",
                    &[("filter", &filter), ("timeout", &timeout)],
                    None,
                )
                .await?;
            let invites = sync["rooms"]["invite"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            Ok(invites.into_iter().find_map(|(room, invite)| {
                invite["invite_state"]["events"]
                    .as_array()?
                    .iter()
                    .any(|e| e["type"] == "m.room.name" && e["content"]["name"] == name)
                    .then_some(room)
            }))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    user.join(&room).await.expect("join");
    room
}

async fn wait_joined(user: &TestUser, room: &str, member: &str, joined: bool) {
    wait_until(
        WAIT,
        &format!("{member} joined={joined} in {room}"),
        || async {
            let members = user.joined_members(room).await?;
            Ok((members.iter().any(|m| m == member) == joined).then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
}

/// The membership of `user` in `room` as the room's state says (`None`: never there).
async fn membership(viewer: &TestUser, room: &str, user: &str) -> Option<Value> {
    viewer
        .room_state(room, "m.room.member", user)
        .await
        .expect("member state")
}

/// Invites `invitee` "to a direct chat": the invite event marked `is_direct`, as a
/// client writes it when it starts a DM (any member may send one through the state API).
async fn invite_direct(user: &TestUser, room: &str, invitee: &str) -> anyhow::Result<Value> {
    let path = format!("/rooms/{}/state/m.room.member/{}", enc(room), enc(invitee));
    user.request(
        Method::PUT,
        &path,
        &[],
        Some(json!({ "membership": "invite", "is_direct": true })),
    )
    .await
}

/// The bot, acting with the appservice's token (to put a room in a state the bridge
/// made before its current rules).
fn as_bot(synapse: &Synapse, slot: &BridgeSlot) -> TestUser {
    let reg: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(slot.registration()).unwrap()).unwrap();
    TestUser::new(
        &synapse.base_url,
        &slot.bot,
        reg["as_token"].as_str().expect("as_token"),
    )
}

mod mig33 {
    use super::*;
    use legacy_sim::mig33::client::Client;
    use legacy_sim::mig33::ParticipantSeparator;
    use legacy_sim::mig33::{ChatroomConfig, Config, ContactConfig, Server, UserConfig};
    use mig33_proto::ClientEvent;

    fn user(name: &str, contacts: &[&str]) -> UserConfig {
        UserConfig {
            username: name.into(),
            password: format!("{name}pw"),
            display_name: None,
            groups: Vec::new(),
            contacts: contacts
                .iter()
                .map(|c| ContactConfig {
                    username: (*c).into(),
                    group: None,
                    display_name: None,
                })
                .collect(),
        }
    }

    /// alice (bridged) has bob and carol; dave (bridged, the other Matrix user) has
    /// carol; bob and carol are scripted. Everybody may use the `lobby` chatroom.
    pub async fn server() -> Server {
        Server::start(Config {
            listen: "127.0.0.1:0".into(),
            motd: None,
            users: vec![
                user("alice", &["bob", "carol"]),
                user("bob", &["alice"]),
                user("carol", &["alice", "dave"]),
                user("dave", &["carol"]),
            ],
            chatrooms: vec![ChatroomConfig {
                name: "lobby".into(),
                description: String::new(),
            }],
            participant_separator: ParticipantSeparator::default(),
            flood_limit: None,
        })
        .await
        .expect("mig33 simulator starts")
    }

    /// A Matrix user with a management room and a mig33 login.
    pub async fn bridged(
        synapse: &Synapse,
        slot: &BridgeSlot,
        matrix_name: &str,
        mig33_name: &str,
    ) -> (TestUser, String) {
        let user = register(synapse, slot, matrix_name).await;
        let mgmt = slot.management_room(&user).await;
        command(
            &user,
            slot,
            &mgmt,
            &format!("login mig33 {mig33_name} {mig33_name}pw"),
            &format!("Connected to mig33 as {mig33_name}"),
        )
        .await;
        (user, mgmt)
    }

    pub async fn scripted(sim: &Server, name: &str) -> Client {
        Client::login(sim.addr(), name, &format!("{name}pw"))
            .await
            .expect("mig33 client logs in")
    }

    /// The next private or chatroom message `client` gets from `from` with this text.
    pub async fn receives(client: &mut Client, from: &str, text: &str) {
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

    /// Whether `client` got any message with this text within a short while (used after
    /// a later message in the same room was delivered: the bridge handles a room's
    /// events in order, so anything before it has gone out by then).
    pub async fn got_any(client: &mut Client, text: &str) -> bool {
        while let Some(event) = client.next_event(Duration::from_millis(500)).await {
            if matches!(&event, ClientEvent::Message(m) if m.content == text) {
                return true;
            }
        }
        false
    }
}

/// Issue 19, point 1: a member of someone else's portal (or of a shared chatroom room)
/// invites a ghost "to a direct chat" there. The room stays what it was; the ghost
/// declines; the owner's messages still reach the contact; the intruder's reach nobody.
#[tokio::test]
async fn a_ghost_invite_never_relinks_a_bridged_room() {
    let (synapse, slot) = env(0);
    let sim = mig33::server().await;
    let _bridge = start(
        synapse,
        slot,
        &Networks {
            mig33: Some(sim.addr()),
            ..Networks::default()
        },
    );
    let (alice, alice_mgmt) = mig33::bridged(synapse, slot, "alice", "alice").await;
    let (mallory, _) = mig33::bridged(synapse, slot, "bob", "dave").await;
    let mut bob = mig33::scripted(&sim, "bob").await;
    let mut carol = mig33::scripted(&sim, "carol").await;

    // alice's DM portal with bob; she lets mallory in to read along.
    let bob_ghost = slot.ghost("mig33", "bob");
    bob.send_private("alice", "hi alice").await.unwrap();
    let dm = accept_invite(&alice, &bob_ghost).await;
    alice
        .wait_for_message(&dm, message_from(&bob_ghost, "hi alice"), WAIT)
        .await
        .unwrap();
    alice.invite(&dm, &mallory.user_id).await.unwrap();
    mallory.join(&dm).await.unwrap();

    // mallory has a mig33 login with carol as a contact: her ghost invited "to a DM" in
    // alice's portal would make it mallory's chat with carol.
    let carol_ghost = slot.ghost("mig33", "carol");
    invite_direct(&mallory, &dm, &carol_ghost).await.unwrap();
    wait_until(WAIT, "carol's ghost to decline", || async {
        let m = membership(&alice, &dm, &carol_ghost).await;
        Ok(m.is_some_and(|m| m["membership"] == "leave").then_some(()))
    })
    .await
    .unwrap();
    mallory.send_text(&dm, "from mallory").await.unwrap();
    alice.send_text(&dm, "still mine").await.unwrap();
    mig33::receives(&mut bob, "alice", "still mine").await;
    assert!(
        !mig33::got_any(&mut carol, "from mallory").await,
        "mallory's text reached carol through alice's portal"
    );
    bob.send_private("alice", "same room").await.unwrap();
    alice
        .wait_for_message(&dm, message_from(&bob_ghost, "same room"), WAIT)
        .await
        .expect("bob's next message in the same portal");

    // The same in the shared chatroom room both are in.
    command(
        &alice,
        slot,
        &alice_mgmt,
        "join mig33 lobby",
        "Joined lobby",
    )
    .await;
    let lobby = accept_named(&alice, "lobby (mig33)").await;
    carol.join_room("lobby").await.unwrap();
    wait_joined(&alice, &lobby, &carol_ghost, true).await;
    let bob_ghost_invite = invite_direct(&alice, &lobby, &bob_ghost).await;
    // (Refused outright where inviting needs the bridge's power, point 3; else declined.)
    if bob_ghost_invite.is_ok() {
        wait_until(WAIT, "bob's ghost to decline", || async {
            let m = membership(&alice, &lobby, &bob_ghost).await;
            Ok(m.is_some_and(|m| m["membership"] == "leave").then_some(()))
        })
        .await
        .unwrap();
    }
    alice.send_text(&lobby, "to the lobby").await.unwrap();
    mig33::receives(&mut carol, "alice", "to the lobby").await;
    assert!(
        !mig33::got_any(&mut bob, "to the lobby").await,
        "the lobby became alice's DM with bob"
    );
    carol.send_room("lobby", "lobby still").await.unwrap();
    alice
        .wait_for_message(&lobby, message_from(&carol_ghost, "lobby still"), WAIT)
        .await
        .expect("the lobby still relays the chatroom");
}

/// Issue 19, point 2: an `m.room.encrypted` event from any member unlinks nothing (the
/// owner's messages keep flowing, the contact's land in the same room); encryption
/// actually turned on does, with a notice that says what happened and what to do.
#[tokio::test]
async fn a_member_cannot_unlink_a_portal_with_an_encrypted_event() {
    let (synapse, slot) = env(1);
    let sim = mig33::server().await;
    let _bridge = start(
        synapse,
        slot,
        &Networks {
            mig33: Some(sim.addr()),
            ..Networks::default()
        },
    );
    let (alice, _) = mig33::bridged(synapse, slot, "alice", "alice").await;
    let mallory = register(synapse, slot, "bob").await;
    let mut bob = mig33::scripted(&sim, "bob").await;
    let bob_ghost = slot.ghost("mig33", "bob");
    bob.send_private("alice", "hello").await.unwrap();
    let dm = accept_invite(&alice, &bob_ghost).await;
    alice.invite(&dm, &mallory.user_id).await.unwrap();
    mallory.join(&dm).await.unwrap();

    let encrypted = json!({
        "algorithm": "m.megolm.v1.aes-sha2",
        "ciphertext": "AwgAEnAC",
        "device_id": "MALLORY",
        "sender_key": "c2VuZGVyIGtleQ",
        "session_id": "c2Vzc2lvbg"
    });
    let path = format!("/rooms/{}/send/m.room.encrypted/mallory-1", enc(&dm));
    mallory
        .request(Method::PUT, &path, &[], Some(encrypted))
        .await
        .unwrap();
    let notice = alice
        .wait_for_message(&dm, from_bot(slot, "sent an encrypted message"), WAIT)
        .await
        .expect("a notice about the unreadable message");
    assert!(!body(&notice).contains("no longer linked"), "{notice}");

    alice
        .send_text(&dm, "after the encrypted event")
        .await
        .unwrap();
    mig33::receives(&mut bob, "alice", "after the encrypted event").await;
    bob.send_private("alice", "reply").await.unwrap();
    alice
        .wait_for_message(&dm, message_from(&bob_ghost, "reply"), WAIT)
        .await
        .expect("the contact's reply in the same room");

    // The owner turns encryption on: that changes the portal, and the notice says so.
    alice
        .request(
            Method::PUT,
            &format!("/rooms/{}/state/m.room.encryption/", enc(&dm)),
            &[],
            Some(json!({ "algorithm": "m.megolm.v1.aes-sha2" })),
        )
        .await
        .unwrap();
    let notice = alice
        .wait_for_message(&dm, from_bot(slot, "turned on encryption"), WAIT)
        .await
        .expect("the encryption notice");
    for needle in [
        alice.user_id.as_str(),
        "no longer linked to bob",
        "`pm mig33 bob`",
    ] {
        assert!(body(&notice).contains(needle), "{needle:?} in {notice}");
    }
    bob.send_private("alice", "new room").await.unwrap();
    let fresh = wait_until(WAIT, "a new DM invite from bob's ghost", || async {
        let invites = alice.invited_rooms().await?;
        Ok(invites
            .into_iter()
            .find(|i| i.inviter == bob_ghost && i.room_id != dm)
            .map(|i| i.room_id))
    })
    .await
    .unwrap();
    assert_ne!(fresh, dm);
}

/// Issue 19, point 3: a shared chatroom room holds the bridge users in that chatroom
/// and ghosts. Members cannot invite; whoever gets in anyway (here: into a room made
/// when members could invite) is removed with a reason, and the room's invite power is
/// made the bridge's.
#[tokio::test]
async fn only_the_chatrooms_bridge_users_are_in_its_room() {
    let (synapse, slot) = env(2);
    let sim = mig33::server().await;
    let _bridge = start(
        synapse,
        slot,
        &Networks {
            mig33: Some(sim.addr()),
            ..Networks::default()
        },
    );
    let (alice, alice_mgmt) = mig33::bridged(synapse, slot, "alice", "alice").await;
    // A bridge user who is not in the chatroom, and a user the bridge does not serve.
    let (bob, _) = mig33::bridged(synapse, slot, "bob", "dave").await;
    let eve = register(synapse, slot, "eve").await;
    command(
        &alice,
        slot,
        &alice_mgmt,
        "join mig33 lobby",
        "Joined lobby",
    )
    .await;
    let lobby = accept_named(&alice, "lobby (mig33)").await;

    let refused = alice.invite(&lobby, &eve.user_id).await;
    assert!(
        refused.is_err(),
        "a member could invite eve into the chatroom's room"
    );

    // A room from before the rule: members could invite. Whoever gets in is removed,
    // with a reason; the first such visit gives the room the rule.
    let bot = as_bot(synapse, slot);
    let open_invites = || async {
        let mut levels = bot
            .room_state(&lobby, "m.room.power_levels", "")
            .await
            .unwrap()
            .expect("power levels");
        levels["invite"] = json!(0);
        bot.request(
            Method::PUT,
            &format!("/rooms/{}/state/m.room.power_levels/", enc(&lobby)),
            &[],
            Some(levels),
        )
        .await
        .unwrap();
    };
    for (round, intruder) in [&eve, &bob].into_iter().enumerate() {
        open_invites().await;
        alice.invite(&lobby, &intruder.user_id).await.unwrap();
        // The bridge may withdraw the invite before the join: either way they end out.
        let _ = intruder.join(&lobby).await;
        let removed = wait_until(WAIT, "the intruder to be removed", || async {
            let m = membership(&alice, &lobby, &intruder.user_id).await;
            Ok(m.filter(|m| m["membership"] == "leave"))
        })
        .await
        .unwrap();
        let reason = removed["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("join mig33 lobby"), "reason: {removed}");
        assert!(!alice
            .joined_members(&lobby)
            .await
            .unwrap()
            .contains(&intruder.user_id));
        if round == 0 {
            wait_until(WAIT, "the invite power to be the bridge's", || async {
                let levels = alice.room_state(&lobby, "m.room.power_levels", "").await?;
                Ok(levels.filter(|l| l["invite"].as_i64() >= Some(100)))
            })
            .await
            .unwrap();
        }
    }
    // A bridge user who joins the chatroom is let in.
    let bob_mgmt = slot.management_room(&bob).await;
    command(&bob, slot, &bob_mgmt, "join mig33 lobby", "Joined lobby").await;
    let bobs = accept_named(&bob, "lobby (mig33)").await;
    assert_eq!(bobs, lobby);
    bob.send_text(&lobby, "bob is here").await.unwrap();
    alice
        .wait_for_message(&lobby, message_from(&bob.user_id, "bob is here"), WAIT)
        .await
        .unwrap();
    assert!(alice
        .joined_members(&lobby)
        .await
        .unwrap()
        .contains(&bob.user_id));
}

mod icq {
    use legacy_sim::icq::{client::Client, Config, Server};

    pub const ME: u32 = 1001;
    pub const BOB: u32 = 1002;

    pub async fn server() -> Server {
        let yaml = format!(
            r#"
listen: "127.0.0.1:0"
users:
  - {{ uin: {ME}, password: pw1, nick: alice, contacts: [{BOB}] }}
  - {{ uin: {BOB}, password: pw2, nick: bobby, contacts: [{ME}] }}
"#
        );
        Server::start(serde_yaml::from_str::<Config>(&yaml).unwrap())
            .await
            .expect("ICQ simulator starts")
    }

    pub async fn bob(server: &Server) -> Client {
        Client::login(server.addr(), BOB, "pw2")
            .await
            .expect("bob logs in")
    }
}

/// Issue 19, points 6 and 7: a hostile ICQ contact sends a `javascript:` URL and
/// `@room`. The URL stays text (never an `<a href>`), and the message says it mentions
/// nobody, so `@room` highlights nobody.
#[tokio::test]
async fn a_hostile_contact_gets_no_script_link_and_pings_nobody() {
    use icq_proto::MessageContent;
    let (synapse, slot) = env(3);
    let server = icq::server().await;
    let _bridge = start(
        synapse,
        slot,
        &Networks {
            icq: Some(server.addr()),
            ..Networks::default()
        },
    );
    let alice = register(synapse, slot, "alice").await;
    let mgmt = slot.management_room(&alice).await;
    command(
        &alice,
        slot,
        &mgmt,
        &format!("login icq {} pw1", icq::ME),
        "Connected to ICQ",
    )
    .await;
    let mut bob = icq::bob(&server).await;
    let ghost = slot.ghost("icq", &icq::BOB.to_string());

    bob.send_message(icq::ME, "@room look at this")
        .await
        .unwrap();
    let dm = accept_invite(&alice, &ghost).await;
    let ping = alice
        .wait_for_message(
            &dm,
            |e| e["sender"] == ghost.as_str() && body(e).starts_with("@room look at this"),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(ping["content"]["m.mentions"], json!({}), "{ping}");
    for (description, url) in [
        ("click", "javascript:alert(document.cookie)"),
        ("safe", "https://example.org/page"),
    ] {
        bob.send_content(
            icq::ME,
            MessageContent::Url {
                description: description.into(),
                url: url.into(),
            },
        )
        .await
        .unwrap();
        let event = alice
            .wait_for_message(
                &dm,
                |e| e["sender"] == ghost.as_str() && body(e).contains(url),
                WAIT,
            )
            .await
            .unwrap();
        let html = event["content"]["formatted_body"]
            .as_str()
            .unwrap_or_default();
        if url.starts_with("javascript:") {
            assert!(!html.contains("href"), "a script link: {event}");
        } else {
            assert!(html.contains(&format!("<a href=\"{url}\">")), "{event}");
        }
    }
    // Highlights are computed as events arrive: by now the ping has been pushed or not.
    let notifications = alice
        .request(
            Method::GET,
            "/notifications",
            &[("only", "highlight")],
            None,
        )
        .await
        .unwrap();
    let highlights = notifications["notifications"].as_array().unwrap();
    assert!(
        highlights
            .iter()
            .all(|n| n["event"]["sender"] != ghost.as_str()),
        "the contact's @room highlighted the user: {notifications}"
    );
}

mod msn {
    use super::*;
    pub use legacy_sim::msn::{Client, Config, ContactConfig, Server, UserConfig};

    pub const ME: &str = "me@example.com";
    pub const PW: &str = "pw";

    pub fn user(email: &str, name: &str, contacts: &[&str], lists: &[&str]) -> UserConfig {
        UserConfig {
            email: email.into(),
            password: PW.into(),
            friendly_name: Some(name.into()),
            groups: Vec::new(),
            contacts: contacts
                .iter()
                .map(|email| ContactConfig {
                    email: (*email).into(),
                    nick: None,
                    lists: lists.iter().map(|l| (*l).to_owned()).collect(),
                    groups: Vec::new(),
                })
                .collect(),
            login_redirect: false,
        }
    }

    pub async fn server(users: Vec<UserConfig>, dalogin_https: bool) -> Server {
        Server::start(Config {
            dispatch_port: 0,
            notification_port: 0,
            switchboard_port: 0,
            http_port: 0,
            dalogin_https,
            users,
            ..Config::default()
        })
        .await
        .expect("MSN simulator starts")
    }

    /// The bridge's MSN settings for `sim`; `login_url` set when the operator has fixed
    /// a DALogin that announces https on a plain-HTTP server.
    pub fn networks(sim: &Server, login_url: bool) -> Networks {
        let mut options = vec![("nexus_url", json!(sim.nexus_url()))];
        if login_url {
            options.push(("login_url", json!(sim.login_url())));
        }
        Networks {
            msn: Some((sim.dispatch_addr(), options)),
            ..Networks::default()
        }
    }

    pub fn ghost(slot: &BridgeSlot, email: &str) -> String {
        slot.ghost("msn", &email.replace('@', "=40"))
    }
}

/// Issue 19, point 3, for MSN group chats: the owner is a moderator there, not an
/// admin; nobody but the bridge invites, and whoever gets in anyway is removed.
#[tokio::test]
async fn an_msn_group_room_holds_its_owner_and_ghosts_only() {
    let (synapse, slot) = env(8);
    let users = vec![
        msn::user(
            msn::ME,
            "Me",
            &["alice@example.com", "bob@example.com"],
            &["FL", "AL"],
        ),
        msn::user("alice@example.com", "Alice", &[msn::ME], &["FL", "AL"]),
        msn::user("bob@example.com", "Bob", &[msn::ME], &["FL", "AL"]),
    ];
    let sim = msn::server(users, false).await;
    let _bridge = start(synapse, slot, &msn::networks(&sim, false));
    let owner = register(synapse, slot, "alice").await;
    let eve = register(synapse, slot, "eve").await;
    let mgmt = slot.management_room(&owner).await;
    command(
        &owner,
        slot,
        &mgmt,
        &format!("login msn {} {}", msn::ME, msn::PW),
        "Connected to MSN Messenger",
    )
    .await;
    let alice = msn::Client::login(
        sim.dispatch_addr(),
        &sim.nexus_url(),
        "alice@example.com",
        msn::PW,
    )
    .await
    .unwrap();
    let _bob = msn::Client::login(
        sim.dispatch_addr(),
        &sim.nexus_url(),
        "bob@example.com",
        msn::PW,
    )
    .await
    .unwrap();
    alice.send_message(msn::ME, "let me add bob").await.unwrap();
    alice.invite(msn::ME, "bob@example.com").unwrap();
    let group = accept_named(&owner, "MSN Messenger group chat").await;
    wait_joined(&owner, &group, &msn::ghost(slot, "bob@example.com"), true).await;

    assert!(
        owner.invite(&group, &eve.user_id).await.is_err(),
        "the owner could invite eve"
    );
    // A room from before the rule: the owner could invite.
    let bot = as_bot(synapse, slot);
    let mut levels = bot
        .room_state(&group, "m.room.power_levels", "")
        .await
        .unwrap()
        .expect("power levels");
    levels["invite"] = json!(0);
    bot.request(
        Method::PUT,
        &format!("/rooms/{}/state/m.room.power_levels/", enc(&group)),
        &[],
        Some(levels),
    )
    .await
    .unwrap();
    owner.invite(&group, &eve.user_id).await.unwrap();
    let _ = eve.join(&group).await;
    let removed = wait_until(WAIT, "eve to be removed", || async {
        Ok(membership(&owner, &group, &eve.user_id)
            .await
            .filter(|m| m["membership"] == "leave"))
    })
    .await
    .unwrap();
    assert!(
        removed["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("only they can be in it"),
        "{removed}"
    );
}

/// Issue 19, point 8: contacts whose names lie or break things (a bidi override, NUL,
/// HTML, a name over 256 bytes) and a contact whose address is 300 characters long.
/// Names are cleaned and cut; no bad contact costs the others their ghosts; the long
/// address's messages arrive.
#[tokio::test]
async fn hostile_names_and_ids_are_cleaned_and_stop_nothing() {
    let (synapse, slot) = env(4);
    let long_id = format!("{}@example.com", "x".repeat(288));
    assert_eq!(long_id.len(), 300);
    let long_name = "N".repeat(300);
    let contacts = [
        ("liar@example.com", "Bob\u{202E}gnp.exe"),
        ("nul@example.com", "Nu\u{0}ll"),
        ("html@example.com", "<b>Bold</b>"),
        ("long@example.com", long_name.as_str()),
        (long_id.as_str(), "Far Away"),
        ("zed@example.com", "Zed"),
    ];
    let mut users = vec![msn::user(
        msn::ME,
        "Me",
        &contacts.iter().map(|c| c.0).collect::<Vec<_>>(),
        &["FL", "AL"],
    )];
    for (email, name) in &contacts {
        users.push(msn::user(email, name, &[msn::ME], &["FL", "AL"]));
    }
    let sim = msn::server(users, false).await;
    let _bridge = start(synapse, slot, &msn::networks(&sim, false));
    let alice = register(synapse, slot, "alice").await;
    let mgmt = slot.management_room(&alice).await;
    command(
        &alice,
        slot,
        &mgmt,
        &format!("login msn {} {}", msn::ME, msn::PW),
        "Connected to MSN Messenger",
    )
    .await;

    // Every contact has a ghost with a clean name, the one after the bad ones included.
    let expected = [
        ("liar@example.com", "Bobgnp.exe (MSN Messenger)".to_owned()),
        ("nul@example.com", "Null (MSN Messenger)".to_owned()),
        ("html@example.com", "<b>Bold</b> (MSN Messenger)".to_owned()),
        (
            "long@example.com",
            format!("{} (MSN Messenger)", "N".repeat(200)),
        ),
        ("zed@example.com", "Zed (MSN Messenger)".to_owned()),
    ];
    for (email, name) in &expected {
        let ghost = msn::ghost(slot, email);
        wait_until(WAIT, &format!("{email}'s ghost named {name:?}"), || async {
            Ok(
                (alice.get_displayname(&ghost).await?.as_deref() == Some(name.as_str()))
                    .then_some(()),
            )
        })
        .await
        .unwrap();
    }

    // The contact with the 300-character address writes: the message arrives.
    let far = msn::Client::login(sim.dispatch_addr(), &sim.nexus_url(), &long_id, msn::PW)
        .await
        .expect("the long address logs in");
    far.send_message(msn::ME, "from far away").await.unwrap();
    let room = wait_until(
        WAIT,
        "a DM invite from the long address's ghost",
        || async {
            let invites = alice.invited_rooms().await?;
            Ok(invites
                .into_iter()
                .find(|i| i.inviter.starts_with(&format!("@s{}msn_xxxx", slot.index)))
                .map(|i| (i.room_id, i.inviter)))
        },
    )
    .await
    .unwrap();
    assert!(room.1.len() <= 255, "{}", room.1);
    alice.join(&room.0).await.unwrap();
    alice
        .wait_for_message(&room.0, message_from(&room.1, "from far away"), WAIT)
        .await
        .expect("the long address's message");
    // And the answer goes back to the right address.
    alice.send_text(&room.0, "back to you").await.unwrap();
    let mut far = far;
    let got = far.wait_for_message(msn::ME, WAIT).await;
    assert_eq!(got.as_deref(), Some("back to you"));
}

/// Issue 19, point 9: a login that worked is never forgotten for a failure. The server's
/// DALogin goes bad (https announced on a plain-HTTP server: every TLS handshake fails,
/// as with an expired certificate); the bridge gives up after 3 tries but keeps the
/// login, stopped, with the reason, across a restart; `reconnect` after the operator's
/// fix signs in again, and only `logout` removes it.
#[tokio::test]
async fn a_certificate_gone_bad_keeps_the_login() {
    let (synapse, slot) = env(5);
    let sim = msn::server(
        vec![
            msn::user(msn::ME, "Me", &["bob@example.com"], &["FL", "AL"]),
            msn::user("bob@example.com", "Bob", &[msn::ME], &["FL", "AL"]),
        ],
        true,
    )
    .await;
    // Months of working logins: the operator had set login_url.
    let mut bridge = start(synapse, slot, &msn::networks(&sim, true));
    let alice = register(synapse, slot, "alice").await;
    let mgmt = slot.management_room(&alice).await;
    command(
        &alice,
        slot,
        &mgmt,
        &format!("login msn {} {}", msn::ME, msn::PW),
        "Connected to MSN Messenger",
    )
    .await;

    // Then the server's TLS goes bad for the bridge (the fix is gone).
    assert!(bridge.terminate());
    let mut bridge = start(synapse, slot, &msn::networks(&sim, false));
    let failed = alice
        .wait_for_message(&mgmt, from_bot(slot, "Login to MSN Messenger failed"), WAIT)
        .await
        .unwrap();
    for needle in ["Gave up after 3 tries", "kept", "`reconnect msn`"] {
        assert!(body(&failed).contains(needle), "{needle:?} in {failed}");
    }
    command(&alice, slot, &mgmt, "list", "me@example.com: stopped").await;
    // Kept across a restart, and not resumed by it (nothing to hammer the server with).
    let hellos = sim.tls_hellos();
    assert!(bridge.terminate());
    let _bridge = start(synapse, slot, &msn::networks(&sim, true));
    command(&alice, slot, &mgmt, "list", "me@example.com: stopped").await;
    assert_eq!(sim.tls_hellos(), hellos, "a stopped login is not resumed");
    // The operator fixed it: reconnect, and the stored login works again.
    command(
        &alice,
        slot,
        &mgmt,
        "reconnect msn",
        "Reconnecting to MSN Messenger",
    )
    .await;
    wait_until(WAIT, "a second Connected notice", || async {
        Ok(
            (count(&alice, &mgmt, from_bot(slot, "Connected to MSN Messenger")).await >= 2)
                .then_some(()),
        )
    })
    .await
    .unwrap();
    command(&alice, slot, &mgmt, "logout msn", "Logged out").await;
    command(&alice, slot, &mgmt, "list", "You have no logins").await;
}

/// Issue 19, point 10: 25 people have the user on their list and are not on theirs.
/// They are suggested in one notice, none left out; not again after a restart; and
/// again to the next login after a logout (it may be another account).
#[tokio::test]
async fn added_you_suggestions_are_complete_and_said_once() {
    let (synapse, slot) = env(6);
    let fans: Vec<String> = (0..25).map(|i| format!("fan{i:02}@example.com")).collect();
    // The fans have us on their lists; we have none of them (the server's reverse list).
    let mut users = vec![msn::user(msn::ME, "Me", &[], &[])];
    for fan in &fans {
        users.push(msn::user(fan, "A Fan", &[msn::ME], &["FL", "AL"]));
    }
    let sim = msn::server(users, false).await;
    let mut bridge = start(synapse, slot, &msn::networks(&sim, false));
    let alice = register(synapse, slot, "alice").await;
    let mgmt = slot.management_room(&alice).await;
    let login = format!("login msn {} {}", msn::ME, msn::PW);
    command(&alice, slot, &mgmt, &login, "Connected to MSN Messenger").await;
    let suggestion =
        |e: &Value| e["sender"] == slot.bot.as_str() && body(e).contains("added you to their");
    let notice = alice
        .wait_for_message(&mgmt, suggestion, WAIT)
        .await
        .expect("the suggestions");
    for fan in &fans {
        assert!(
            body(&notice).contains(fan.as_str()),
            "{fan} left out of {notice}"
        );
    }
    assert!(body(&notice).contains("25 people"), "{notice}");
    assert!(body(&notice).contains("add msn"), "{notice}");
    assert!(!body(&notice).contains("left out"), "{notice}");

    // A restart: the login reconnects (its status is set once it is connected, after
    // the server's lists), and nobody is suggested again.
    assert!(bridge.terminate());
    let _bridge = start(synapse, slot, &msn::networks(&sim, false));
    command(&alice, slot, &mgmt, "status away msn", "status set to away").await;
    let again = wait_until(Duration::from_secs(5), "a second suggestion", || async {
        Ok((count(&alice, &mgmt, suggestion).await > 1).then_some(()))
    })
    .await;
    assert!(again.is_err(), "suggested again after a restart");

    // A logout forgets them: the next login (perhaps another account) hears of them.
    command(&alice, slot, &mgmt, "logout msn", "Logged out").await;
    command(&alice, slot, &mgmt, &login, "Connected to MSN Messenger").await;
    wait_until(WAIT, "the suggestions for the new login", || async {
        Ok((count(&alice, &mgmt, suggestion).await == 2).then_some(()))
    })
    .await
    .unwrap();
}

/// Issue 19, point 11: with `RUST_LOG=info` (an operator looking closer), a start, a
/// restart (the bot exists: `M_USER_IN_USE`), a management room, a login and a portal
/// (room creation and its state look-ups) log no ERROR: everything here is handled.
#[tokio::test]
async fn handled_conditions_are_not_logged_as_errors() {
    let (synapse, slot) = env(RUST_LOG_SLOT);
    let sim = mig33::server().await;
    let networks = Networks {
        mig33: Some(sim.addr()),
        ..Networks::default()
    };
    let mut bridge = start(synapse, slot, &networks);
    bridge.kill9();
    let _bridge = start(synapse, slot, &networks);
    let (alice, _) = mig33::bridged(synapse, slot, "alice", "alice").await;
    let bob = mig33::scripted(&sim, "bob").await;
    let ghost = slot.ghost("mig33", "bob");
    bob.send_private("alice", "hi").await.unwrap();
    let dm = accept_invite(&alice, &ghost).await;
    alice
        .wait_for_message(&dm, message_from(&ghost, "hi"), WAIT)
        .await
        .unwrap();
    let log = std::fs::read_to_string(slot.log_path()).unwrap();
    assert!(log.contains(" INFO "), "the bridge logs at info");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "ERROR lines:\n{}", errors.join("\n"));
}
