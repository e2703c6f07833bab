//! End-to-end test of a quiet restart: a real Synapse, the ICQ, MSN and mig33 simulators
//! in this process, the real bridge binary talking to Synapse through a recording proxy
//! (a transparent pass-through that notes each request's method and path, so the test
//! sees what the bridge asked the homeserver for, which Synapse's own state cannot show:
//! it drops an identical state event silently).
//!
//! alice logs in on the three networks, each with bob as a contact (in a group on MSN
//! and mig33, which the space topic shows), and bob writes on each, which opens three DM
//! portals. After a restart the stored logins come back and bob's next messages arrive
//! in the same rooms, while the bridge sends no profile, no room state and no membership
//! for the unchanged ghosts, portals and spaces, and no second "Connected" notice.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use e2e_tests::bridge::{environment, BridgeProcess, BridgeSlot, SlotOptions};
use e2e_tests::{enc, wait_until, Synapse, TestUser};
use reqwest::Method;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const SIM_WAIT: Duration = Duration::from_secs(30);

const ICQ_UIN: u32 = 1001;
const ICQ_BOB: u32 = 1002;
const MSN_ID: &str = "alice@example.com";
const MSN_BOB: &str = "bob@example.com";

fn options(i: usize) -> SlotOptions {
    let networks = ["icq", "msn", "mig33"]
        .iter()
        .map(|n| {
            format!(
                "  {n}:\n    enabled: true\n    server: \"127.0.0.1:1\"\n    ghost_template: \"s{i}{n}_{{id}}\"\n"
            )
        })
        .collect();
    SlotOptions {
        networks_yaml: networks,
        ..SlotOptions::default()
    }
}

fn env() -> (&'static Synapse, &'static BridgeSlot) {
    let (synapse, slots) = environment(1, options);
    (synapse, &slots[0])
}

// --- the recording proxy ---------------------------------------------------------------

/// A pass-through to Synapse that records `METHOD path` of every request.
struct Tap {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct TapState {
    upstream: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Tap {
    async fn start(upstream: &str) -> Tap {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the proxy");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = TapState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            seen: seen.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Tap { addr, seen, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests since the last `take`.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    /// Waits until no request that changes anything (not a GET) came for `quiet`.
    async fn wait_quiet(&self, quiet: Duration, what: &str) {
        wait_until(WAIT, what, || async {
            let last = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|(_, r)| !r.starts_with("GET "))
                .map(|(at, _)| *at);
            Ok(last.is_none_or(|at| at.elapsed() >= quiet).then_some(()))
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(tap): State<TapState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or(path.clone(), |p| p.as_str().to_owned());
    tap.seen
        .lock()
        .unwrap()
        .push((Instant::now(), format!("{} {path}", parts.method)));
    let fail = |status: StatusCode, why: String| {
        Response::builder()
            .status(status)
            .body(Body::from(why))
            .unwrap()
    };
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let mut upstream = tap.client.request(
        parts.method.clone(),
        format!("{}{path_and_query}", tap.upstream),
    );
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.body(body).send().await {
        Ok(a) => a,
        Err(e) => return fail(StatusCode::BAD_GATEWAY, e.to_string()),
    };
    let mut response = Response::builder().status(answer.status());
    if let Some(kind) = answer.headers().get(header::CONTENT_TYPE) {
        response = response.header(header::CONTENT_TYPE, kind);
    }
    match answer.bytes().await {
        Ok(bytes) => response.body(Body::from(bytes)).unwrap(),
        Err(e) => fail(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

/// Whether a request sets something at the homeserver that a restart should leave
/// alone: a profile, room state, a room, a membership.
fn changes_state(request: &str) -> bool {
    let Some((method, path)) = request.split_once(' ') else {
        return false;
    };
    let path = path.trim_end_matches('/');
    match method {
        "PUT" => path.contains("/profile/") || path.contains("/state/"),
        "POST" => {
            path.ends_with("/createRoom")
                || path.ends_with("/invite")
                || path.ends_with("/join")
                || path.contains("/join/")
                || path.ends_with("/leave")
                || path.ends_with("/kick")
        }
        _ => false,
    }
}

// --- the simulators --------------------------------------------------------------------

struct Simulators {
    icq: legacy_sim::icq::Server,
    msn: legacy_sim::msn::Server,
    mig33: legacy_sim::mig33::Server,
}

impl Simulators {
    async fn start() -> Simulators {
        let icq: legacy_sim::icq::Config = serde_yaml::from_str(&format!(
            "listen: \"127.0.0.1:0\"\nusers:\n  - {{ uin: {ICQ_UIN}, password: alicepw, nick: alice, contacts: [{ICQ_BOB}] }}\n  - {{ uin: {ICQ_BOB}, password: bobpw, nick: bob, contacts: [{ICQ_UIN}] }}\n"
        ))
        .expect("ICQ simulator config");
        let msn_user = |email: &str, contact: &str| legacy_sim::msn::UserConfig {
            email: email.into(),
            password: "pw".into(),
            friendly_name: None,
            groups: vec![legacy_sim::msn::GroupConfig {
                id: 1,
                name: "Friends".into(),
            }],
            contacts: vec![legacy_sim::msn::ContactConfig {
                email: contact.into(),
                nick: None,
                lists: vec!["FL".into(), "AL".into()],
                groups: vec![1],
            }],
            login_redirect: false,
        };
        let msn = legacy_sim::msn::Config {
            dispatch_port: 0,
            notification_port: 0,
            switchboard_port: 0,
            http_port: 0,
            users: vec![msn_user(MSN_ID, MSN_BOB), msn_user(MSN_BOB, MSN_ID)],
            ..legacy_sim::msn::Config::default()
        };
        let mig33_user = |name: &str, contact: &str| legacy_sim::mig33::UserConfig {
            username: name.into(),
            password: format!("{name}pw"),
            display_name: None,
            groups: vec![legacy_sim::mig33::GroupConfig {
                id: 1,
                name: "Friends".into(),
            }],
            contacts: vec![legacy_sim::mig33::ContactConfig {
                username: contact.into(),
                group: Some(1),
                display_name: None,
            }],
        };
        let mig33 = legacy_sim::mig33::Config {
            listen: "127.0.0.1:0".into(),
            motd: None,
            users: vec![mig33_user("alice", "bob"), mig33_user("bob", "alice")],
            chatrooms: Vec::new(),
            participant_separator: legacy_sim::mig33::ParticipantSeparator::Semicolon,
            flood_limit: None,
        };
        Simulators {
            icq: legacy_sim::icq::Server::start(icq)
                .await
                .expect("ICQ simulator"),
            msn: legacy_sim::msn::Server::start(msn)
                .await
                .expect("MSN simulator"),
            mig33: legacy_sim::mig33::Server::start(mig33)
                .await
                .expect("mig33 simulator"),
        }
    }

    fn networks_yaml(&self, slot: &BridgeSlot) -> String {
        let nexus = serde_json::json!(self.msn.nexus_url());
        [
            slot.network_yaml("icq", &self.icq.addr().to_string(), &[]),
            slot.network_yaml(
                "msn",
                &self.msn.dispatch_addr().to_string(),
                &[("nexus_url", nexus)],
            ),
            slot.network_yaml("mig33", &self.mig33.addr().to_string(), &[]),
        ]
        .concat()
    }

    /// Whether alice is logged in on ICQ, MSN and mig33.
    async fn alice_online(&self) -> [bool; 3] {
        [
            self.icq.online_users().await.contains(&ICQ_UIN),
            self.msn.is_online(MSN_ID),
            self.mig33.online_users().iter().any(|u| u == "alice"),
        ]
    }

    /// bob writes to alice on every network.
    async fn bob_writes(&self, text: &str) {
        let mut icq = legacy_sim::icq::client::Client::login(self.icq.addr(), ICQ_BOB, "bobpw")
            .await
            .expect("bob on ICQ");
        icq.send_message(ICQ_UIN, text).await.expect("ICQ message");
        let msn = legacy_sim::msn::Client::login(
            self.msn.dispatch_addr(),
            &self.msn.nexus_url(),
            MSN_BOB,
            "pw",
        )
        .await
        .expect("bob on MSN");
        msn.send_message(MSN_ID, text).await.expect("MSN message");
        let mig33 = legacy_sim::mig33::client::Client::login(self.mig33.addr(), "bob", "bobpw")
            .await
            .expect("bob on mig33");
        mig33
            .send_private("alice", text)
            .await
            .expect("mig33 message");
        // Each stays online until alice has the message (a logout could race it).
        tokio::spawn(async move {
            tokio::time::sleep(SIM_WAIT).await;
            drop((icq, msn, mig33));
        });
    }
}

/// Starts the bridge through the proxy (which runs on this test's runtime: the blocking
/// wait for the bridge leaves it a thread).
fn start_bridge(slot: &BridgeSlot, tap: &Tap, sims: &Simulators) -> BridgeProcess {
    let networks = sims.networks_yaml(slot);
    tokio::task::block_in_place(|| slot.start_via(&tap.url(), Some(&networks)))
        .expect("bridge starts")
}

fn body(event: &Value) -> &str {
    event["content"]["body"].as_str().unwrap_or_default()
}

async fn command(user: &TestUser, slot: &BridgeSlot, room: &str, text: &str, expect: &str) {
    user.send_text(room, text).await.expect("send");
    user.wait_for_message(
        room,
        |e| e["sender"] == slot.bot.as_str() && body(e).contains(expect),
        WAIT,
    )
    .await
    .unwrap_or_else(|e| panic!("no bot message containing {expect:?}: {e:#}"));
}

async fn bot_notices(user: &TestUser, slot: &BridgeSlot, room: &str, needle: &str) -> usize {
    user.all_messages(room)
        .await
        .expect("messages")
        .iter()
        .filter(|e| e["sender"] == slot.bot.as_str() && body(e).contains(needle))
        .count()
}

/// Every current state event (type, state key -> event id) of every room the bot is in.
async fn state_of_bot_rooms(bot: &TestUser) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut all = BTreeMap::new();
    for room in bot.joined_rooms().await.expect("the bot's rooms") {
        let path = format!("/rooms/{}/state", enc(&room));
        let state = bot
            .request(Method::GET, &path, &[], None)
            .await
            .expect("room state");
        let events = state
            .as_array()
            .expect("state events")
            .iter()
            .map(|e| {
                (
                    format!("{} {}", e["type"], e["state_key"]),
                    e["event_id"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        all.insert(room, events);
    }
    all
}

/// The DM portal whose invite bob's ghost sent alice, joined.
async fn join_dm(alice: &TestUser, ghost: &str) -> String {
    let room = alice
        .wait_for_invite(|inviter| inviter == ghost, WAIT)
        .await
        .unwrap_or_else(|e| panic!("a DM invite from {ghost}: {e:#}"));
    alice.join(&room).await.expect("join the DM");
    room
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_stored_logins_sends_no_unchanged_state() {
    let (synapse, slot) = env();
    let sims = Simulators::start().await;
    let tap = Tap::start(&synapse.base_url).await;
    let mut bridge = start_bridge(slot, &tap, &sims);
    let alice = synapse
        .register_user(&slot.user_localpart("alice"), "pw", false)
        .await
        .expect("register alice");
    let mgmt = slot.management_room(&alice).await;
    let logins = [
        (
            format!("login icq {ICQ_UIN} alicepw"),
            "Connected to ICQ as 1001",
        ),
        (
            format!("login msn {MSN_ID} pw"),
            "Connected to MSN Messenger as alice@example.com",
        ),
        (
            "login mig33 alice alicepw".to_owned(),
            "Connected to mig33 as alice",
        ),
    ];
    for (text, expect) in &logins {
        command(&alice, slot, &mgmt, text, expect).await;
    }

    sims.bob_writes("before the restart").await;
    let ghosts = [
        slot.ghost("icq", &ICQ_BOB.to_string()),
        slot.ghost("msn", &MSN_BOB.replace('@', "=40")),
        slot.ghost("mig33", "bob"),
    ];
    let mut dms = Vec::new();
    for ghost in &ghosts {
        let dm = join_dm(&alice, ghost).await;
        alice
            .wait_for_message(
                &dm,
                |e| e["sender"] == ghost.as_str() && body(e).starts_with("before the restart"),
                WAIT,
            )
            .await
            .unwrap_or_else(|e| panic!("bob's message from {ghost}: {e:#}"));
        dms.push(dm);
    }
    tap.wait_quiet(
        Duration::from_secs(3),
        "the bridge done with the first start",
    )
    .await;

    let registration: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(slot.registration()).unwrap()).unwrap();
    let bot = TestUser::new(
        &synapse.base_url,
        &slot.bot,
        registration["as_token"].as_str().unwrap(),
    );
    let state_before = state_of_bot_rooms(&bot).await;
    // Management room, three spaces, three DMs.
    assert!(state_before.len() >= 7, "{state_before:#?}");
    // The groups show in the MSN and mig33 spaces' topics.
    let topics: Vec<String> = {
        let mut topics = Vec::new();
        for room in state_before.keys() {
            if let Ok(Some(t)) = bot.room_state(room, "m.room.topic", "").await {
                topics.push(t["topic"].as_str().unwrap_or_default().to_owned());
            }
        }
        topics
    };
    assert_eq!(
        topics
            .iter()
            .filter(|t| t.contains("Groups: Friends ("))
            .count(),
        2,
        "{topics:?}"
    );
    let profiles_before: Vec<Option<String>> = {
        let mut names = Vec::new();
        for ghost in ghosts.iter().chain([&slot.bot]) {
            names.push(alice.get_displayname(ghost).await.unwrap());
        }
        names
    };
    let connected_before: Vec<usize> = {
        let mut counts = Vec::new();
        for (_, expect) in &logins {
            counts.push(bot_notices(&alice, slot, &mgmt, expect).await);
        }
        counts
    };
    assert_eq!(connected_before, [1, 1, 1]);

    // The restart: the stored logins come back by themselves.
    assert!(bridge.terminate(), "clean stop");
    wait_until(WAIT, "alice offline on MSN and mig33", || async {
        Ok((sims.alice_online().await[1..] == [false; 2]).then_some(()))
    })
    .await
    .unwrap();
    // ICQ runs over UDP: the server would time the silent session out; this one forgets
    // it at once, so "online" below means the new login.
    sims.icq.forget_session(ICQ_UIN).await;
    tap.take();
    let _bridge = start_bridge(slot, &tap, &sims);
    wait_until(WAIT, "alice back online everywhere", || async {
        Ok((sims.alice_online().await == [true; 3]).then_some(()))
    })
    .await
    .unwrap();

    // A new message still arrives, in the same rooms.
    sims.bob_writes("after the restart").await;
    for (ghost, dm) in ghosts.iter().zip(&dms) {
        alice
            .wait_for_message(
                dm,
                |e| e["sender"] == ghost.as_str() && body(e).starts_with("after the restart"),
                WAIT,
            )
            .await
            .unwrap_or_else(|e| panic!("bob's message after the restart from {ghost}: {e:#}"));
    }
    tap.wait_quiet(Duration::from_secs(3), "the bridge done with the restart")
        .await;

    let requests = tap.take();
    let changed: Vec<&String> = requests.iter().filter(|r| changes_state(r)).collect();
    assert!(
        changed.is_empty(),
        "state sent again after the restart: {changed:#?}\nall requests: {requests:#?}"
    );
    // What did go: the messages, and nothing that creates rooms.
    assert!(
        requests
            .iter()
            .filter(|r| r.starts_with("PUT ") && r.contains("/send/m.room.message/"))
            .count()
            >= 3,
        "{requests:#?}"
    );
    assert_eq!(state_of_bot_rooms(&bot).await, state_before);
    let mut profiles_after = Vec::new();
    for ghost in ghosts.iter().chain([&slot.bot]) {
        profiles_after.push(alice.get_displayname(ghost).await.unwrap());
    }
    assert_eq!(profiles_after, profiles_before);
    let mut connected_after = Vec::new();
    for (_, expect) in &logins {
        connected_after.push(bot_notices(&alice, slot, &mgmt, expect).await);
    }
    assert_eq!(
        connected_after, connected_before,
        "no second \"Connected\" notice for a login that came back as it was"
    );
}
