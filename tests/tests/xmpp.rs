//! End-to-end tests of the XMPP front: a real XMPP server per test (Debian's Prosody or
//! ejabberd, on loopback, with one component per network and the rooms' component), the real bridge
//! binary configured for XMPP only, the legacy simulators in this process over real
//! sockets, scripted legacy users, and XMPP users on a real client library (tokio-xmpp).
//!
//! Accounts: XMPP `alice@localhost` owns ICQ 1001, MSN `me@example.com` and mig33
//! `alice`; XMPP `bob@localhost` owns mig33 `dave`. On the legacy side ICQ 1002 (bobby)
//! is on 1001's list; MSN alice@example.com (Alice Liddell) and bob@example.com are on
//! me@example.com's; mig33 bob (Bobby) and carol are on alice's, and everybody may use
//! the `lobby` chatroom.
//!
//! Each scenario runs twice, once on each server (`prosody::<name>`, `ejabberd::<name>`,
//! written once by [`on_both_servers!`]); each run has its own server, simulators and
//! bridge, so the runs go in parallel.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e_tests::xmpp_bridge::{components, gateway, network_yaml, rooms_domain, XmppBridge};
use e2e_tests::xmpp_server::{ServerKind, XmppServer};
use e2e_tests::xmpp_user::{
    body, chat, chat_state, chat_state_of, delay, presence_from, status, with_xhtml, xhtml,
    XmppUser,
};
use legacy_sim::{icq, mig33, msn};
use serde_json::json;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::chatstates::ChatState;
use tokio_xmpp::parsers::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::parsers::message::{Message, MessageType};
use tokio_xmpp::parsers::presence::{Presence, Show, Type as PresenceType};
use tokio_xmpp::parsers::receipts::Request as ReceiptRequest;
use tokio_xmpp::parsers::roster::Subscription;
use tokio_xmpp::Stanza;

/// Most waits: one hop through the bridge, on two busy cores.
const T: Duration = Duration::from_secs(30);
/// A client or the bridge coming back after the server restarted (tokio-xmpp retries after
/// 1, 2, 4 ... s).
const RECONNECT: Duration = Duration::from_secs(60);

const NS_NICK: &str = "http://jabber.org/protocol/nick";
const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_RECEIPTS: &str = "urn:xmpp:receipts";
const NS_REGISTER: &str = "jabber:iq:register";
const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
const NS_ATTENTION: &str = "urn:xmpp:attention:0";

const ICQ_ME: u32 = 1001;
const ICQ_PW: &str = "s3cr3tz";
const ICQ_BOB: u32 = 1002;
const MSN_ME: &str = "me@example.com";
const MSN_PW: &str = "pw";

/// A legacy network of the bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    Icq,
    Msn,
    Mig33,
}

impl Net {
    fn name(self) -> &'static str {
        match self {
            Net::Icq => "icq",
            Net::Msn => "msn",
            Net::Mig33 => "mig33",
        }
    }

    /// As the bridge's notices name it.
    fn title(self) -> &'static str {
        match self {
            Net::Icq => "ICQ",
            Net::Msn => "MSN Messenger",
            Net::Mig33 => "mig33",
        }
    }

    /// `icq.localhost`
    fn gateway(self) -> BareJid {
        bare(&gateway(self.name()))
    }

    /// A legacy contact's JID, from the XEP-0106-escaped id.
    fn contact(self, escaped: &str) -> BareJid {
        bare(&format!("{escaped}@{}", gateway(self.name())))
    }
}

fn bare(s: &str) -> BareJid {
    BareJid::new(s).unwrap_or_else(|e| panic!("{s:?} is not a bare JID: {e}"))
}

/// `lobby%mig33@rooms.localhost`
fn mig33_room(name: &str) -> BareJid {
    bare(&format!("{name}%mig33@{}", rooms_domain()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

// ---------------------------------------------------------------- the simulators

fn icq_config() -> icq::Config {
    let yaml = format!(
        r#"
listen: "127.0.0.1:0"
users:
  - {{ uin: {ICQ_ME}, password: {ICQ_PW}, nick: alice, first: Alice, contacts: [{ICQ_BOB}] }}
  - {{ uin: {ICQ_BOB}, password: bob2, nick: bobby, first: Bob, last: Smith, email: bob@example.org, contacts: [{ICQ_ME}], city: Umea, age: 25, sex: 2 }}
  - {{ uin: 1003, password: carol3, nick: carol, first: Carol }}
"#
    );
    serde_yaml::from_str(&yaml).expect("ICQ simulator config")
}

fn msn_user(email: &str, name: &str, contacts: &[&str]) -> msn::UserConfig {
    msn::UserConfig {
        email: email.into(),
        password: MSN_PW.into(),
        friendly_name: Some(name.into()),
        groups: Vec::new(),
        contacts: contacts
            .iter()
            .map(|email| msn::ContactConfig {
                email: (*email).into(),
                nick: None,
                lists: vec!["FL".into(), "AL".into()],
                groups: Vec::new(),
            })
            .collect(),
        login_redirect: false,
    }
}

fn msn_config() -> msn::Config {
    msn::Config {
        dispatch_port: 0,
        notification_port: 0,
        switchboard_port: 0,
        http_port: 0,
        // The bridge must answer challenges, or the server ends its session.
        challenges: true,
        users: vec![
            msn_user(
                MSN_ME,
                "Me Myself",
                &["alice@example.com", "bob@example.com"],
            ),
            msn_user("alice@example.com", "Alice Liddell", &[MSN_ME]),
            msn_user("bob@example.com", "Bob", &[MSN_ME]),
        ],
        ..msn::Config::default()
    }
}

fn mig33_user(
    name: &str,
    password: &str,
    display: &str,
    contacts: &[(&str, Option<&str>)],
) -> mig33::UserConfig {
    mig33::UserConfig {
        username: name.into(),
        password: password.into(),
        display_name: Some(display.into()),
        groups: Vec::new(),
        contacts: contacts
            .iter()
            .map(|(username, display)| mig33::ContactConfig {
                username: (*username).into(),
                group: None,
                display_name: display.map(Into::into),
            })
            .collect(),
    }
}

fn mig33_config() -> mig33::Config {
    mig33::Config {
        listen: "127.0.0.1:0".into(),
        motd: None,
        users: vec![
            mig33_user(
                "alice",
                "alicepw",
                "Alice A",
                &[("bob", Some("Bobby")), ("carol", None)],
            ),
            mig33_user("bob", "bobpw", "Bob B", &[("alice", None)]),
            mig33_user(
                "carol",
                "carolpw",
                "Carol C",
                &[("alice", None), ("dave", None)],
            ),
            mig33_user("dave", "davepw", "Dave D", &[("carol", None)]),
        ],
        chatrooms: vec![
            mig33::ChatroomConfig {
                name: "lobby".into(),
                description: "Everyone welcome".into(),
            },
            mig33::ChatroomConfig {
                name: "games".into(),
                description: "Nobody here yet".into(),
            },
        ],
        participant_separator: mig33::ParticipantSeparator::Semicolon,
        flood_limit: None,
    }
}

// ---------------------------------------------------------------- the scenarios, on both servers

/// One test per scenario and server: `prosody::<scenario>` and `ejabberd::<scenario>`.
macro_rules! on_both_servers {
    ($($scenario:ident),* $(,)?) => {
        mod prosody {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::ServerKind::Prosody).await
                }
            )*
        }
        mod ejabberd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::ServerKind::Ejabberd).await
                }
            )*
        }
    };
}

on_both_servers!(
    registration_offers_the_contact_list_with_nicks,
    direct_messages_both_ways_on_every_network,
    presence_crosses_both_ways,
    typing_both_ways_on_msn,
    nudges_both_ways_on_msn,
    msn_contacts_picture_is_the_vcard_photo,
    msn_files_arrive_as_links_the_bridge_serves,
    icq_offline_message_carries_its_delay_stamp,
    icq_authorization_requests,
    mig33_chatroom_shared_by_two_xmpp_users_delivers_every_message_once,
    server_restart_mid_conversation_loses_nothing,
    bridge_restart_keeps_registrations_and_rooms,
);

// ---------------------------------------------------------------- the environment

/// One test's world: the XMPP server, the simulators of `nets`, the bridge.
struct Env {
    server: Box<dyn XmppServer>,
    bridge: XmppBridge,
    icq: Option<icq::Server>,
    msn: Option<msn::Server>,
    mig33: Option<mig33::Server>,
}

impl Env {
    /// Starts the simulators of `nets`, an XMPP server of `kind` with their components and accounts
    /// alice and bob, and the bridge; returns with alice logged in to XMPP and every
    /// component answering.
    async fn start(kind: ServerKind, name: &str, nets: &[Net]) -> (Env, XmppUser) {
        let icq = match nets.contains(&Net::Icq) {
            true => Some(
                icq::Server::start(icq_config())
                    .await
                    .expect("ICQ simulator"),
            ),
            false => None,
        };
        let msn = match nets.contains(&Net::Msn) {
            true => Some(
                msn::Server::start(msn_config())
                    .await
                    .expect("MSN simulator"),
            ),
            false => None,
        };
        let mig33 = match nets.contains(&Net::Mig33) {
            true => Some(
                mig33::Server::start(mig33_config())
                    .await
                    .expect("mig33 simulator"),
            ),
            false => None,
        };
        let mut yaml = String::new();
        if let Some(s) = &icq {
            yaml += &network_yaml("icq", &s.addr().to_string(), &[]);
        }
        if let Some(s) = &msn {
            yaml += &network_yaml(
                "msn",
                &s.dispatch_addr().to_string(),
                &[("nexus_url", json!(s.nexus_url()))],
            );
        }
        if let Some(s) = &mig33 {
            yaml += &network_yaml("mig33", &s.addr().to_string(), &[]);
        }
        let names: Vec<&str> = nets.iter().map(|n| n.name()).collect();
        let server = tokio::task::block_in_place(|| {
            let server = kind.start(&components(&names))?;
            server.register("alice", "pw-alice")?;
            server.register("bob", "pw-bob")?;
            anyhow::Ok(server)
        })
        .unwrap_or_else(|e| {
            panic!("{kind:?} starts with the bridge's components and two accounts: {e:#}")
        });
        let mut bridge =
            XmppBridge::configure(name, &*server, &yaml).expect("writing the bridge's config");
        let mut alice = XmppUser::connect(&*server, "alice", "pw-alice")
            .await
            .unwrap_or_else(|e| panic!("alice logs in to {}: {e:#}", server.name()));
        bridge.start(&mut alice).await.expect("the bridge starts");
        let env = Env {
            server,
            bridge,
            icq,
            msn,
            mig33,
        };
        (env, alice)
    }

    async fn connect(&self, user: &str) -> XmppUser {
        XmppUser::connect(&*self.server, user, &format!("pw-{user}"))
            .await
            .unwrap_or_else(|e| panic!("{user} logs in to {}: {e:#}", self.server.name()))
    }

    fn icq(&self) -> &icq::Server {
        self.icq.as_ref().expect("ICQ is enabled in this test")
    }

    fn msn(&self) -> &msn::Server {
        self.msn.as_ref().expect("MSN is enabled in this test")
    }

    fn mig33(&self) -> &mig33::Server {
        self.mig33.as_ref().expect("mig33 is enabled in this test")
    }

    async fn icq_user(&self, uin: u32, password: &str) -> icq::client::Client {
        icq::client::Client::login(self.icq().addr(), uin, password)
            .await
            .unwrap_or_else(|e| panic!("ICQ {uin} logs in: {e:#}"))
    }

    async fn msn_user(&self, email: &str) -> msn::Client {
        msn::Client::login(
            self.msn().dispatch_addr(),
            &self.msn().nexus_url(),
            email,
            MSN_PW,
        )
        .await
        .unwrap_or_else(|e| panic!("MSN {email} logs in: {e:#}"))
    }

    async fn mig33_user(&self, name: &str, password: &str) -> mig33::client::Client {
        mig33::client::Client::login(self.mig33().addr(), name, password)
            .await
            .unwrap_or_else(|e| panic!("mig33 {name} logs in: {e:#}"))
    }

    /// Panics with `what`, the error and the bridge's and server's log tails (to tell a
    /// test bug from a bridge bug or a server's difference).
    fn fail(&self, what: &str, error: impl std::fmt::Display) -> ! {
        panic!(
            "{what} (on {}): {error:#}\n{}{}",
            self.server.name(),
            self.bridge.log_tail(60),
            self.server.log_tail(30)
        )
    }

    /// `result`'s value, or [`fail`](Self::fail).
    fn check<V>(&self, what: &str, result: anyhow::Result<V>) -> V {
        match result {
            Ok(v) => v,
            Err(e) => self.fail(what, format!("{e:#}")),
        }
    }

    /// Registers `user` with the network's gateway (XEP-0077) as `id`, and goes through
    /// what follows as a client would: approves the gateway's subscription request,
    /// subscribes back (auto-approved), and waits for the gateway's available presence and
    /// the "Connected" notice.
    async fn register(&self, user: &mut XmppUser, net: Net, id: &str, password: &str) {
        let gw = net.gateway();
        let what = format!("{} registering with {gw} as {id}", user.jid);
        self.check(&what, user.register(&gw.clone().into(), id, password).await);
        self.check(
            &format!("{what}: the gateway's subscription request"),
            user.wait_presence(T, |p| presence_from(p, &gw, PresenceType::Subscribe))
                .await,
        );
        self.check(&what, user.approve_subscription(&gw).await);
        self.check(&what, user.subscribe(&gw).await);
        self.wait_subscription(user, &gw, Subscription::Both).await;
        self.check(
            &format!("{what}: the gateway's available presence"),
            user.wait_presence(T, |p| {
                presence_from(p, &gw, PresenceType::None) && p.show.is_none()
            })
            .await,
        );
        self.notice(user, net, &format!("Connected to {} as {id}", net.title()))
            .await;
    }

    /// Waits until the user's roster has `jid` with this subscription state.
    async fn wait_subscription(&self, user: &mut XmppUser, jid: &BareJid, want: Subscription) {
        let deadline = Instant::now() + T;
        loop {
            let roster = self.check("reading the roster", user.roster().await);
            let found = roster.items.iter().find(|i| i.jid == *jid);
            if found.is_some_and(|i| i.subscription == want) {
                return;
            }
            if Instant::now() > deadline {
                self.fail(
                    &format!("{} never had subscription {want:?} with {jid}", user.jid),
                    format!("roster item: {found:?}"),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a chat message from the gateway whose body contains `needle`.
    async fn notice(&self, user: &mut XmppUser, net: Net, needle: &str) -> Message {
        let gw = net.gateway();
        let result = user
            .wait_message(T, |m| {
                m.type_ == MessageType::Chat
                    && from_bare(m.from.as_ref(), &gw)
                    && body(m).is_some_and(|b| b.contains(needle))
            })
            .await;
        self.check(&format!("a notice from {gw} containing {needle:?}"), result)
    }

    /// Sends a text command to the gateway and waits for the answer containing `needle`.
    async fn command(&self, user: &mut XmppUser, net: Net, text: &str, needle: &str) -> String {
        self.check(
            "sending a command",
            user.send_chat(&net.gateway().into(), text).await,
        );
        let answer = self.notice(user, net, needle).await;
        body(&answer).unwrap_or_default().to_owned()
    }

    /// Waits for the contact's subscription request, approves it and returns the request
    /// (its nickname).
    async fn accept_contact(&self, user: &mut XmppUser, contact: &BareJid) -> Presence {
        let request = self.check(
            &format!("{contact} offered to {}", user.jid),
            user.wait_presence(T, |p| presence_from(p, contact, PresenceType::Subscribe))
                .await,
        );
        self.check("approving", user.approve_subscription(contact).await);
        request
    }

    /// Waits for a chat message from `from` with exactly this body.
    async fn chat_from(&self, user: &mut XmppUser, from: &BareJid, text: &str) -> Message {
        let result = user
            .wait_message(T, |m| {
                m.type_ == MessageType::Chat
                    && from_bare(m.from.as_ref(), from)
                    && body(m) == Some(text)
            })
            .await;
        self.check(&format!("{text:?} from {from} to {}", user.jid), result)
    }

    /// Waits for the receipt (XEP-0184) of message `id` from `from`.
    async fn receipt(&self, user: &mut XmppUser, from: &BareJid, id: &str) {
        let result = user
            .wait_message(T, |m| {
                from_bare(m.from.as_ref(), from) && receipt_of(m) == Some(id)
            })
            .await;
        self.check(&format!("a receipt for {id} from {from}"), result);
    }
}

/// Whether the gateway's registration form says the user is registered.
async fn registered(env: &Env, user: &mut XmppUser, gateway: &BareJid) -> bool {
    let form = env.check(
        "the registration form",
        user.registration_form(&gateway.clone().into()).await,
    );
    form.get_child("registered", NS_REGISTER).is_some()
}

/// Whether `from` is `who` (bare JIDs compared).
fn from_bare(from: Option<&Jid>, who: &BareJid) -> bool {
    from.is_some_and(|f| f.to_bare() == *who)
}

/// The nickname (XEP-0172) a presence carries.
fn nick(presence: &Presence) -> Option<String> {
    presence
        .payloads
        .iter()
        .find(|p| p.is("nick", NS_NICK))
        .map(Element::text)
}

/// The id a receipt (XEP-0184) acknowledges.
fn receipt_of(message: &Message) -> Option<&str> {
    message
        .payloads
        .iter()
        .find(|p| p.is("received", NS_RECEIPTS))
        .and_then(|p| p.attr("id"))
}

fn id_of(message: &Message) -> Option<&str> {
    message.id.as_ref().map(|i| i.0.as_str())
}

/// The nickname part of an occupant JID.
fn resource(from: Option<&Jid>) -> Option<String> {
    from.and_then(|j| j.resource())
        .map(|r| r.as_str().to_owned())
}

/// The status codes of a MUC presence (`<x xmlns='…muc#user'><status code=…/>`).
fn muc_statuses(presence: &Presence) -> Vec<u16> {
    presence
        .payloads
        .iter()
        .filter(|p| p.is("x", NS_MUC_USER))
        .flat_map(|x| x.children().filter(|c| c.is("status", NS_MUC_USER)))
        .filter_map(|s| s.attr("code")?.parse().ok())
        .collect()
}

/// A chat message asking for a receipt.
fn chat_with_receipt(to: &BareJid, text: &str) -> Message {
    chat(&to.clone().into(), text).with_payload(ReceiptRequest)
}

/// Everything queued now that matches `want`, in arrival order (nothing is waited for).
async fn take_queued(user: &mut XmppUser, mut want: impl FnMut(&Stanza) -> bool) -> Vec<Stanza> {
    let mut out = Vec::new();
    while let Ok(stanza) = user.wait_for(Duration::ZERO, &mut want).await {
        out.push(stanza);
    }
    out
}

/// The bodies of the messages matching `want`, in arrival order, up to and including
/// the one with body `last`, then whatever matching is already queued behind it: what a
/// user saw, for counting lost, doubled and reordered messages.
async fn bodies_until(
    env: &Env,
    user: &mut XmppUser,
    timeout: Duration,
    want: impl Fn(&Message) -> bool,
    last: &str,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match user
            .wait_message(left, |m| want(m) && body(m).is_some())
            .await
        {
            Ok(m) => {
                let text = body(&m).unwrap_or_default().to_owned();
                seen.push(text.clone());
                if text == last {
                    break;
                }
            }
            Err(e) => env.fail(
                &format!("{} waiting for {last:?}; seen so far: {seen:?}", user.jid),
                e,
            ),
        }
    }
    for stanza in take_queued(
        user,
        |s| matches!(s, Stanza::Message(m) if want(m) && body(m).is_some()),
    )
    .await
    {
        if let Stanza::Message(m) = stanza {
            seen.push(body(&m).unwrap_or_default().to_owned());
        }
    }
    seen
}

/// The text a mig33 user receives from `from` (private or chatroom), skipping the rest.
async fn mig33_text(env: &Env, client: &mut mig33::client::Client, from: &str, text: &str) {
    let result = client
        .wait_for(T, |e| {
            matches!(e, mig33_proto::ClientEvent::Message(m) if m.source == from && m.content == text)
        })
        .await;
    env.check(
        &format!("mig33 {} receives {text:?} from {from}", client.username()),
        result,
    );
}

async fn icq_text(env: &Env, client: &mut icq::client::Client, from: u32) -> String {
    match client.wait_for_message(from, T).await {
        Some(icq_proto::ClientEvent::Message { text, .. }) => text,
        other => env.fail(
            &format!("ICQ {} receives a message from {from}", client.uin()),
            format!("{other:?}"),
        ),
    }
}

// ---------------------------------------------------------------- the tests

/// Discovery, registration (a refused password first), the contact list offered with
/// nicknames and escaped JIDs, text and ad-hoc commands, and unregistering.
async fn registration_offers_the_contact_list_with_nicks(kind: ServerKind) {
    let (env, mut alice) = Env::start(kind, "register", &[Net::Icq, Net::Msn]).await;
    let _bob = env.icq_user(ICQ_BOB, "bob2").await;
    let icq_gw = Net::Icq.gateway();

    // The gateway says what it is (XEP-0100) and what it takes (XEP-0077).
    let info = env.check(
        "disco#info",
        alice.disco_info(&icq_gw.clone().into(), None).await,
    );
    assert!(
        info.identities
            .iter()
            .any(|i| i.category == "gateway" && i.type_ == "icq"),
        "{info:?}"
    );
    assert!(info.features.iter().any(|f| f == NS_REGISTER), "{info:?}");
    let form = env.check(
        "the registration form",
        alice.registration_form(&icq_gw.clone().into()).await,
    );
    assert!(
        form.get_child("username", NS_REGISTER).is_some(),
        "{form:?}"
    );
    assert!(
        form.get_child("password", NS_REGISTER).is_some(),
        "{form:?}"
    );
    assert!(
        form.get_child("registered", NS_REGISTER).is_none(),
        "{form:?}"
    );

    // A refused password: the registration is answered once the server refused it
    // (XEP-0100 §4.1.1, not-acceptable), and nothing is registered: no subscription
    // request from the gateway, and the form still asks for the account.
    let refused = alice
        .register(&icq_gw.clone().into(), &ICQ_ME.to_string(), "wrongpw")
        .await
        .expect_err("a refused password is not registered");
    assert!(
        format!("{refused:#}").contains("NotAcceptable"),
        "{refused:#}"
    );
    assert!(!registered(&env, &mut alice, &icq_gw).await);
    assert!(
        !env.icq().online_users().await.contains(&ICQ_ME),
        "1001 not logged in to ICQ"
    );
    let asked = take_queued(&mut alice, |s| {
        matches!(s, Stanza::Presence(p) if p.type_ == PresenceType::Subscribe
            && from_bare(p.from.as_ref(), &icq_gw))
    })
    .await;
    assert!(
        asked.is_empty(),
        "a refused registration asked to subscribe: {asked:?}"
    );

    // The right password: subscriptions both ways, the gateway online, the notice.
    env.register(&mut alice, Net::Icq, &ICQ_ME.to_string(), ICQ_PW)
        .await;
    assert_eq!(
        env.icq().online_users().await.len(),
        2,
        "1001 and 1002 online at ICQ"
    );
    assert!(registered(&env, &mut alice, &icq_gw).await);
    let log = env.bridge.log();
    assert!(
        !log.contains(ICQ_PW) && !log.contains("wrongpw"),
        "a password was logged"
    );

    // The contact list: 1002 offered once with its nickname; approving shows it online.
    let bob_jid = Net::Icq.contact("1002");
    let request = env.accept_contact(&mut alice, &bob_jid).await;
    assert_eq!(nick(&request).as_deref(), Some("bobby"), "{request:?}");
    env.check(
        "1002's presence once approved",
        alice
            .wait_presence(T, |p| presence_from(p, &bob_jid, PresenceType::None))
            .await,
    );
    env.wait_subscription(&mut alice, &bob_jid, Subscription::From)
        .await;
    // Subscribing back is approved by the gateway.
    env.check("subscribing", alice.subscribe(&bob_jid).await);
    env.wait_subscription(&mut alice, &bob_jid, Subscription::Both)
        .await;

    // MSN: addresses are escaped (XEP-0106), friendly names are the nicknames.
    env.register(&mut alice, Net::Msn, MSN_ME, MSN_PW).await;
    let liddell = Net::Msn.contact("alice\\40example.com");
    let request = env.accept_contact(&mut alice, &liddell).await;
    assert_eq!(
        nick(&request).as_deref(),
        Some("Alice Liddell"),
        "{request:?}"
    );
    let msn_bob = Net::Msn.contact("bob\\40example.com");
    let request = env.accept_contact(&mut alice, &msn_bob).await;
    assert_eq!(nick(&request).as_deref(), Some("Bob"), "{request:?}");

    // Each contact was offered once.
    let again = take_queued(&mut alice, |s| {
        matches!(s, Stanza::Presence(p) if p.type_ == PresenceType::Subscribe
            && [&bob_jid, &liddell, &msn_bob].iter().any(|c| from_bare(p.from.as_ref(), c)))
    })
    .await;
    assert!(again.is_empty(), "contacts offered twice: {again:?}");

    // Text commands, answered by the gateway.
    let list = env.command(&mut alice, Net::Icq, "list", "1001").await;
    assert!(list.contains("connected"), "{list}");
    env.command(&mut alice, Net::Icq, "help", "search").await;

    // Ad-hoc commands: the list, then `info` as a one-stage form.
    let items = env.check(
        "the command list",
        alice
            .disco_items(&icq_gw.clone().into(), Some(NS_COMMANDS))
            .await,
    );
    let nodes: Vec<String> = items.items.iter().filter_map(|i| i.node.clone()).collect();
    for node in [
        "login",
        "logout",
        "status",
        "search",
        "info",
        "add",
        "authorize",
    ] {
        assert!(nodes.iter().any(|n| n == node), "no {node} in {nodes:?}");
    }
    let started = env.check(
        "executing info",
        alice.execute_command(&icq_gw.clone().into(), "info").await,
    );
    assert_eq!(started.attr("status"), Some("executing"), "{started:?}");
    let session = started.attr("sessionid").unwrap_or_default().to_owned();
    let done = env.check(
        "submitting info",
        alice
            .submit_command(&icq_gw.clone().into(), "info", &session, &[("id", "1002")])
            .await,
    );
    assert_eq!(done.attr("status"), Some("completed"), "{done:?}");
    let notes: String = done
        .children()
        .filter(|c| c.is("note", NS_COMMANDS))
        .map(Element::text)
        .collect();
    assert!(
        notes.contains("bobby") && notes.contains("Umea"),
        "{done:?}"
    );
    let msn_nodes: Vec<String> = env
        .check(
            "MSN's command list",
            alice
                .disco_items(&Net::Msn.gateway().into(), Some(NS_COMMANDS))
                .await,
        )
        .items
        .iter()
        .filter_map(|i| i.node.clone())
        .collect();
    assert!(
        !msn_nodes.iter().any(|n| n == "search"),
        "MSN has no search: {msn_nodes:?}"
    );

    // Unregistering logs out and ends the subscriptions.
    env.check(
        "unregistering",
        alice.unregister(&icq_gw.clone().into()).await,
    );
    env.check(
        "the gateway cancelling the subscription",
        alice
            .wait_presence(T, |p| {
                from_bare(p.from.as_ref(), &icq_gw)
                    && matches!(
                        p.type_,
                        PresenceType::Unsubscribe | PresenceType::Unsubscribed
                    )
            })
            .await,
    );
    let deadline = Instant::now() + T;
    while env.icq().online_users().await.contains(&ICQ_ME) {
        assert!(
            Instant::now() < deadline,
            "1001 still logged in to ICQ after unregistering"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let form = env.check(
        "the registration form",
        alice.registration_form(&icq_gw.clone().into()).await,
    );
    assert!(
        form.get_child("registered", NS_REGISTER).is_none(),
        "{form:?}"
    );
}

/// Direct messages both ways on each network, in order and once, with receipts,
/// MSN formatting as XHTML-IM, and a refused message coming back as an error.
async fn direct_messages_both_ways_on_every_network(kind: ServerKind) {
    let (env, mut alice) = Env::start(kind, "dm", &[Net::Icq, Net::Msn, Net::Mig33]).await;
    let mut icq_bob = env.icq_user(ICQ_BOB, "bob2").await;
    let mut liddell = env.msn_user("alice@example.com").await;
    let mut carol = env.mig33_user("carol", "carolpw").await;
    env.register(&mut alice, Net::Icq, &ICQ_ME.to_string(), ICQ_PW)
        .await;
    env.register(&mut alice, Net::Msn, MSN_ME, MSN_PW).await;
    env.register(&mut alice, Net::Mig33, "alice", "alicepw")
        .await;

    // ICQ.
    let bob_jid = Net::Icq.contact("1002");
    for text in ["icq one", "icq two", "icq three"] {
        env.check(
            "ICQ send",
            icq_bob.send_message_acked(ICQ_ME, text, T).await.map(drop),
        );
    }
    let seen = bodies_until(
        &env,
        &mut alice,
        T,
        |m| from_bare(m.from.as_ref(), &bob_jid),
        "icq three",
    )
    .await;
    assert_eq!(seen, ["icq one", "icq two", "icq three"]);
    let id = env.check(
        "sending",
        alice
            .send_message(chat_with_receipt(&bob_jid, "hello bob, café"))
            .await,
    );
    assert_eq!(
        icq_text(&env, &mut icq_bob, ICQ_ME).await,
        "hello bob, café"
    );
    env.receipt(&mut alice, &bob_jid, &id).await;

    // MSN, with formatting.
    let liddell_jid = Net::Msn.contact("alice\\40example.com");
    env.check(
        "MSN send",
        liddell.send_message(MSN_ME, "msn one").await.map(drop),
    );
    let first = env.chat_from(&mut alice, &liddell_jid, "msn one").await;
    assert_eq!(
        first.to.as_ref().map(|j| j.to_bare()),
        Some(alice.jid.clone()),
        "{first:?}"
    );
    let format = msn::TextFormat {
        bold: true,
        ..msn::TextFormat::default()
    };
    env.check(
        "MSN send",
        liddell
            .send_formatted(MSN_ME, "styled", format)
            .await
            .map(drop),
    );
    let styled = env.chat_from(&mut alice, &liddell_jid, "styled").await;
    let html = xhtml(&styled).unwrap_or_default();
    assert!(
        html.contains("<strong>styled</strong>"),
        "XHTML-IM {html:?} in {styled:?}"
    );
    let id = env.check(
        "sending",
        alice
            .send_message(
                with_xhtml(
                    chat_with_receipt(&liddell_jid, "bold move"),
                    "<strong>bold move</strong>",
                )
                .expect("xhtml"),
            )
            .await,
    );
    match liddell
        .wait_for(T, |e| matches!(e, msn::ClientEvent::Message { from, text, .. } if from == MSN_ME && text == "bold move"))
        .await
    {
        Some(msn::ClientEvent::Message { format, .. }) => {
            assert!(format.is_some_and(|f| f.bold), "bold at MSN")
        }
        other => env.fail("MSN alice receives \"bold move\"", format!("{other:?}")),
    }
    env.receipt(&mut alice, &liddell_jid, &id).await;

    // mig33.
    let carol_jid = Net::Mig33.contact("carol");
    for text in ["mig one", "mig two", "mig three"] {
        env.check(
            "mig33 send",
            carol.send_private("alice", text).await.map(drop),
        );
    }
    let seen = bodies_until(
        &env,
        &mut alice,
        T,
        |m| from_bare(m.from.as_ref(), &carol_jid),
        "mig three",
    )
    .await;
    assert_eq!(seen, ["mig one", "mig two", "mig three"]);
    let id = env.check(
        "sending",
        alice
            .send_message(chat_with_receipt(&carol_jid, "hi carol"))
            .await,
    );
    mig33_text(&env, &mut carol, "alice", "hi carol").await;
    env.receipt(&mut alice, &carol_jid, &id).await;

    // bob is offline at mig33: the server refuses, the sender gets an error, no receipt.
    let offline = Net::Mig33.contact("bob");
    let id = env.check(
        "sending",
        alice
            .send_message(chat_with_receipt(&offline, "are you there?"))
            .await,
    );
    let bounced = env.check(
        "an error for the message to offline bob",
        alice
            .wait_message(T, |m| {
                m.type_ == MessageType::Error && from_bare(m.from.as_ref(), &offline)
            })
            .await,
    );
    assert_eq!(id_of(&bounced), Some(id.as_str()), "{bounced:?}");
    let receipts = take_queued(
        &mut alice,
        |s| matches!(s, Stanza::Message(m) if receipt_of(m) == Some(id.as_str())),
    )
    .await;
    assert!(
        receipts.is_empty(),
        "a receipt for a refused message: {receipts:?}"
    );

    // Nothing was doubled on the way out.
    env.check(
        "MSN send",
        liddell.send_message(MSN_ME, "msn marker").await.map(drop),
    );
    env.chat_from(&mut alice, &liddell_jid, "msn marker").await;
    let extra = take_queued(&mut alice, |s| matches!(s, Stanza::Message(m) if m.type_ == MessageType::Chat && body(m).is_some_and(|b| b.contains("one") || b.contains("styled")))).await;
    assert!(extra.is_empty(), "messages delivered twice: {extra:?}");
}

/// Contact presence (show and status) reaches the XMPP user, and the user's presence
/// sets the legacy status; going unavailable keeps the login connected (as away).
async fn presence_crosses_both_ways(kind: ServerKind) {
    let (env, mut alice) = Env::start(kind, "presence", &[Net::Icq, Net::Msn]).await;
    let mut icq_bob = env.icq_user(ICQ_BOB, "bob2").await;
    let liddell = env.msn_user("alice@example.com").await;
    env.register(&mut alice, Net::Icq, &ICQ_ME.to_string(), ICQ_PW)
        .await;
    let bob_jid = Net::Icq.contact("1002");
    env.accept_contact(&mut alice, &bob_jid).await;
    let available = |show: Option<Show>| {
        let bob_jid = bob_jid.clone();
        move |p: &Presence| presence_from(p, &bob_jid, PresenceType::None) && p.show == show
    };
    env.check("1002 online", alice.wait_presence(T, available(None)).await);

    // ICQ contact -> XMPP.
    env.check(
        "ICQ status",
        icq_bob.set_status(icq_proto::Status::AWAY).await,
    );
    let away = env.check(
        "1002 away",
        alice.wait_presence(T, available(Some(Show::Away))).await,
    );
    assert_eq!(status(&away), Some("Away"), "{away:?}");
    env.check(
        "ICQ status",
        icq_bob.set_status(icq_proto::Status::DND).await,
    );
    let dnd = env.check(
        "1002 dnd",
        alice.wait_presence(T, available(Some(Show::Dnd))).await,
    );
    assert_eq!(status(&dnd), Some("Do not disturb"), "{dnd:?}");
    env.check(
        "ICQ status",
        icq_bob.set_status(icq_proto::Status::ONLINE).await,
    );
    env.check(
        "1002 online again",
        alice.wait_presence(T, available(None)).await,
    );

    // XMPP -> ICQ (unavailable: away at ICQ, the login stays connected).
    let steps = [
        (Some(Show::Away), icq_proto::Status::AWAY),
        (Some(Show::Dnd), icq_proto::Status::DND),
        (None, icq_proto::Status::ONLINE),
        (Some(Show::Xa), icq_proto::Status::AWAY),
        (Some(Show::Chat), icq_proto::Status::ONLINE),
    ];
    for (show, expected) in steps {
        let mut presence = Presence::available();
        presence.show = show;
        presence.set_status("", "from xmpp");
        icq_status_step(&env, &mut alice, &mut icq_bob, presence, expected).await;
    }
    icq_status_step(
        &env,
        &mut alice,
        &mut icq_bob,
        Presence::unavailable(),
        icq_proto::Status::AWAY,
    )
    .await;
    assert!(
        env.icq().online_users().await.contains(&ICQ_ME),
        "the login stays connected"
    );
    icq_status_step(
        &env,
        &mut alice,
        &mut icq_bob,
        Presence::available(),
        icq_proto::Status::ONLINE,
    )
    .await;

    // The text command sets the status too.
    while icq_bob.next_event(Duration::ZERO).await.is_some() {}
    env.command(&mut alice, Net::Icq, "status dnd", "status set")
        .await;
    if icq_bob
        .wait_for(T, |e| {
            matches!(e, icq_proto::ClientEvent::ContactStatus { uin: ICQ_ME, status } if *status == icq_proto::Status::DND)
        })
        .await
        .is_none()
    {
        env.fail("1002 sees 1001 busy after `status dnd`", "nothing");
    }

    // A contact going offline.
    icq_bob.logout().await;
    env.check(
        "1002 unavailable",
        alice
            .wait_presence(T, |p| presence_from(p, &bob_jid, PresenceType::Unavailable))
            .await,
    );

    // MSN, both ways.
    env.register(&mut alice, Net::Msn, MSN_ME, MSN_PW).await;
    let liddell_jid = Net::Msn.contact("alice\\40example.com");
    env.accept_contact(&mut alice, &liddell_jid).await;
    env.check(
        "Alice Liddell online",
        alice
            .wait_presence(T, |p| {
                presence_from(p, &liddell_jid, PresenceType::None) && p.show.is_none()
            })
            .await,
    );
    env.check("MSN status", liddell.set_status(msn::Status::Busy));
    env.check(
        "Alice Liddell busy",
        alice
            .wait_presence(T, |p| {
                presence_from(p, &liddell_jid, PresenceType::None) && p.show == Some(Show::Dnd)
            })
            .await,
    );
    let mut liddell = liddell;
    env.check("presence", alice.send_presence(Some(Show::Dnd), None).await);
    assert!(
        liddell
            .wait_for_presence(MSN_ME, msn::Status::Busy, T)
            .await,
        "Alice Liddell sees me busy"
    );
    env.check(
        "presence",
        alice.send_presence(Some(Show::Away), None).await,
    );
    assert!(
        liddell
            .wait_for_presence(MSN_ME, msn::Status::Away, T)
            .await,
        "Alice Liddell sees me away"
    );
}

/// Broadcasts `presence` from `user` and waits until ICQ 1002 sees 1001 with `expected`.
/// What 1002 saw before is dropped first (consecutive steps expect different statuses,
/// so a late copy of the previous one cannot pass), and the step ends once the server has
/// handled the presence (a ping sent after it is answered; ejabberd, unlike Prosody, sends
/// no copy of a presence update back to the resource that sent it), so a contact's
/// presence sent afterwards finds the user in the state this step set.
async fn icq_status_step(
    env: &Env,
    user: &mut XmppUser,
    bob: &mut icq::client::Client,
    presence: Presence,
    expected: icq_proto::Status,
) {
    while bob.next_event(Duration::ZERO).await.is_some() {}
    let what = format!("{presence:?}");
    env.check("sending presence", user.send(presence).await);
    env.check("the server handling the presence", user.ping_server().await);
    let seen = bob
        .wait_for(T, |e| {
            matches!(e, icq_proto::ClientEvent::ContactStatus { uin: ICQ_ME, status } if *status == expected)
        })
        .await;
    if seen.is_none() {
        env.fail(
            &format!("1002 sees 1001 as {} after {what}", expected.name()),
            "nothing",
        );
    }
}

/// Nudges both ways with an MSN contact: a contact's nudge is an emote with XEP-0224
/// attention; attention from the client nudges the contact; the MSN gateway and contacts
/// say they take attention, and attention to an ICQ contact (no nudges there) is refused.
async fn nudges_both_ways_on_msn(kind: ServerKind) {
    let (env, mut alice) = Env::start(kind, "nudges", &[Net::Msn, Net::Icq]).await;
    let mut liddell = env.msn_user("alice@example.com").await;
    env.register(&mut alice, Net::Msn, MSN_ME, MSN_PW).await;
    env.register(&mut alice, Net::Icq, &ICQ_ME.to_string(), ICQ_PW)
        .await;
    let liddell_jid = Net::Msn.contact("alice\\40example.com");
    let features = env.check(
        "disco#info of an MSN contact",
        alice.disco_info(&liddell_jid.clone().into(), None).await,
    );
    assert!(
        features.features.iter().any(|f| f == NS_ATTENTION),
        "{features:?}"
    );

    env.check("MSN nudge", liddell.send_nudge(MSN_ME).await.map(drop));
    let nudge = env
        .chat_from(&mut alice, &liddell_jid, "/me nudged you")
        .await;
    assert!(
        nudge
            .payloads
            .iter()
            .any(|p| p.is("attention", NS_ATTENTION)),
        "{nudge:?}"
    );

    let mut attention = Message::chat(Some(liddell_jid.clone().into()));
    attention
        .payloads
        .push(Element::builder("attention", NS_ATTENTION).build());
    env.check("sending attention", alice.send_message(attention).await);
    if liddell
        .wait_for(
            T,
            |e| matches!(e, msn::ClientEvent::Datacast { from, id: 1, .. } if from == MSN_ME),
        )
        .await
        .is_none()
    {
        env.fail("Alice Liddell is nudged", "nothing");
    }

    // ICQ has no nudges: attention alone comes back as an error, and nothing is sent.
    let bob_jid = Net::Icq.contact("1002");
    let mut attention = Message::chat(Some(bob_jid.clone().into()));
    attention
        .payloads
        .push(Element::builder("attention", NS_ATTENTION).build());
    let id = env.check("sending attention", alice.send_message(attention).await);
    let bounced = env.check(
        "the attention to ICQ bounced",
        alice
            .wait_message(T, |m| {
                m.type_ == MessageType::Error && from_bare(m.from.as_ref(), &bob_jid)
            })
            .await,
    );
    assert_eq!(id_of(&bounced), Some(id.as_str()), "{bounced:?}");
}

/// An MSN contact's display picture (fetched with MSNSLP from the simulator's client)
/// is the contact's vCard photo (XEP-0054), announced by its hash in the contact's
/// presence (XEP-0153); the user's own vCard photo, announced the same way, becomes
/// their MSN display picture.
async fn msn_contacts_picture_is_the_vcard_photo(kind: ServerKind) {
    let (env, mut alice) = Env::start(kind, "vcard", &[Net::Msn]).await;
    let liddell = env.msn_user("alice@example.com").await;
    env.register(&mut alice, Net::Msn, MSN_ME, MSN_PW).await;
    let liddell_jid = Net::Msn.contact("alice\\40example.com");
    let mut picture = vec![0xFF, 0xD8, 0xFF, 0xE0];
    picture.extend((0..8000u32).map(|i| (i % 251) as u8));
    env.check(
        "setting a display picture",
        liddell.set_display_picture(picture.clone()).map(drop),
    );
    let hash: String = {
        use sha1::{Digest, Sha1};
        Sha1::digest(&picture)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    env.check(
        "the contact's presence with the photo's hash",
        alice
            .wait_presence(T, |p| {
                from_bare(p.from.as_ref(), &liddell_jid)
                    && p.payloads.iter().any(|x| {
                        x.is("x", "vcard-temp:x:update")
                            && x.get_child("photo", "vcard-temp:x:update")
                                .is_some_and(|photo| photo.text() == hash)
                    })
            })
            .await,
    );
    let vcard = env.check(
        "the contact's vCard",
        alice
            .iq_get(
                Some(liddell_jid.clone().into()),
                Element::builder("vCard", "vcard-temp").build(),
            )
            .await,
    );
    let vcard = vcard.expect("a vCard");
    let photo = vcard.get_child("PHOTO", "vcard-temp").expect("a PHOTO");
    let kind_of = photo.get_child("TYPE", "vcard-temp").map(|t| t.text());
    assert_eq!(kind_of.as_deref(), Some("image/jpeg"), "{vcard:?}");
    let binval = photo
        .get_child("BINVAL", "vcard-temp")
        .map(|b| b.text())
        .unwrap_or_default();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(binval.split_whitespace().collect::<String>())
        .expect("base64");
    assert_eq!(bytes, picture, "the vCard photo is the contact's picture");
    assert_eq!(liddell.pictures_served(), 1);

    // The other way: the user's own vCard photo, announced in their presence to the
    // gateway (XEP-0153), is their MSN display picture.
    let mut mine = vec![0x89, b'P', b'N', b'G', 13, 10, 26, 10];
    mine.extend((0..6000u32).map(|i| (i % 241) as u8));
    let encoded = base64::engine::general_purpose::STANDARD.encode(&mine);
    let vcard = format!(
        "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>{encoded}</BINVAL></PHOTO></vCard>"
    );
    env.check(
        "publishing my vCard",
        alice
            .iq_set(None, vcard.parse().expect("xml"))
            .await
            .map(drop),
    );
    let mine_hash: String = {
        use sha1::{Digest, Sha1};
        Sha1::digest(&mine)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let mut presence = tokio_xmpp::parsers::presence::Presence::available();
    presence.to = Some(Net::Msn.gateway().into());
    presence.payloads.push(
        format!("<x xmlns='vcard-temp:x:update'><photo>{mine_hash}</photo></x>")
            .parse()
            .expect("xml"),
    );
    env.check("announcing my photo", alice.send(presence).await.map(drop));
    let fetched = e2e_tests::wait_until(T, "my picture at the contact", || async {
        if liddell.display_picture_of(MSN_ME).is_none() {
            return Ok(None);
        }
        Ok(liddell
            .fetch_display_picture(MSN_ME)
            .await
            .ok()
            .filter(|p| *p == mine))
    })
    .await;
    env.check("my picture at the contact", fetched.map(drop));
}

/// A file from an MSN contact (MSNSLP, 200 KiB) arrives as a chat message whose body
/// is a link (XEP-0066 out-of-band data with the same URL) that serves the same bytes as
/// an inert download; a link changed by one character is refused. A file the user
/// shares (a link, as XMPP clients send files) reaches the contact as an MSN file when
/// it is on the listed upload host, as its link otherwise.
async fn msn_files_arrive_as_links_the_bridge_serves(kind: ServerKind) {
    let (env, mut alice) = Env::start(kind, "files", &[Net::Msn]).await;
    let liddell = env.msn_user("alice@example.com").await;
    env.register(&mut alice, Net::Msn, MSN_ME, MSN_PW).await;
    let liddell_jid = Net::Msn.contact("alice\\40example.com");
    let data: Vec<u8> = (0..200 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    env.check(
        "sending a file",
        liddell
            .send_file(MSN_ME, "holiday notes.pdf", data.clone())
            .await
            .map(drop),
    );
    let message = env.check(
        "the file's link",
        alice
            .wait_message(T, |m| {
                from_bare(m.from.as_ref(), &liddell_jid)
                    && body(m).is_some_and(|b| b.starts_with("http://127.0.0.1:"))
            })
            .await,
    );
    let url = body(&message).expect("a body").to_owned();
    let oob = message
        .payloads
        .iter()
        .find(|x| x.is("x", "jabber:x:oob"))
        .expect("out-of-band data");
    assert_eq!(
        oob.get_child("url", "jabber:x:oob").map(|u| u.text()),
        Some(url.clone())
    );
    assert!(url.contains("/holiday%20notes.pdf?exp="), "{url}");
    let http = reqwest::Client::new();
    let response = env.check(
        "downloading the file",
        http.get(&url).send().await.map_err(Into::into),
    );
    assert_eq!(response.status(), 200);
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"holiday notes.pdf\""),
        "{disposition}"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let got = env.check(
        "the file's bytes",
        response.bytes().await.map_err(Into::into),
    );
    assert!(got.as_ref() == data.as_slice(), "the served bytes differ");
    let forged = url.replacen("holiday", "holidaY", 1);
    let refused = env.check(
        "a changed link",
        http.get(&forged).send().await.map_err(Into::into),
    );
    assert_eq!(refused.status(), 403);

    // A link elsewhere than the listed upload host stays a link.
    let shared = "https://upload.example.org/abc/cat.png";
    env.check(
        "sharing a link",
        alice
            .send_chat(&liddell_jid.clone().into(), shared)
            .await
            .map(drop),
    );
    let mut liddell = liddell;
    let line = liddell
        .wait_for_message(MSN_ME, T)
        .await
        .expect("the contact gets the link");
    assert_eq!(line, shared);

    // A file shared from the server's upload service (here a stand-in on the one listed
    // host) reaches the contact as an MSN file with the same bytes.
    let upload: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 253) as u8).collect();
    let served = upload.clone();
    let app = axum::Router::new().route(
        "/share/{slot}/{name}",
        axum::routing::get(move || {
            let body = served.clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", env.bridge.upload_port))
        .await
        .expect("the upload stand-in listens");
    let upload_server = tokio::spawn(async move { axum::serve(listener, app).await });
    let link = format!(
        "http://127.0.0.1:{}/share/slot1/cat%20photo.png",
        env.bridge.upload_port
    );
    env.check(
        "sharing a file",
        alice
            .send_chat(&liddell_jid.clone().into(), &link)
            .await
            .map(drop),
    );
    let got = liddell
        .wait_for(T, |e| matches!(e, msn::ClientEvent::FileReceived { .. }))
        .await
        .expect("the contact receives the file");
    let msn::ClientEvent::FileReceived { name, data, .. } = got else {
        unreachable!()
    };
    assert_eq!(name, "cat photo.png");
    assert!(data == upload, "the bytes the contact received differ");
    upload_server.abort();
}

/// Chat states (XEP-0085) both ways with an MSN contact.
async fn typing_both_ways_on_msn(kind: ServerKind) {
    let (env, mut alice) = Env::start(kind, "typing", &[Net::Msn]).await;
    let mut liddell = env.msn_user("alice@example.com").await;
    env.register(&mut alice, Net::Msn, MSN_ME, MSN_PW).await;
    let liddell_jid = Net::Msn.contact("alice\\40example.com");
    env.check(
        "MSN send",
        liddell
            .send_message(MSN_ME, "about to type")
            .await
            .map(drop),
    );
    env.chat_from(&mut alice, &liddell_jid, "about to type")
        .await;

    env.check("MSN typing", liddell.send_typing(MSN_ME).await.map(drop));
    let typing = env.check(
        "composing from Alice Liddell",
        alice
            .wait_message(T, |m| {
                from_bare(m.from.as_ref(), &liddell_jid)
                    && chat_state_of(m) == Some(ChatState::Composing)
            })
            .await,
    );
    assert_eq!(body(&typing), None, "{typing:?}");

    env.check(
        "composing",
        alice
            .send_message(chat_state(
                &liddell_jid.clone().into(),
                ChatState::Composing,
            ))
            .await
            .map(drop),
    );
    if liddell
        .wait_for(
            T,
            |e| matches!(e, msn::ClientEvent::Typing { from, .. } if from == MSN_ME),
        )
        .await
        .is_none()
    {
        env.fail("Alice Liddell sees me typing", "nothing");
    }
    // The typing notification is not a message.
    env.check(
        "sending",
        alice
            .send_chat(&liddell_jid.clone().into(), "done typing")
            .await
            .map(drop),
    );
    match liddell.wait_for_message(MSN_ME, T).await {
        Some(text) => assert_eq!(text, "done typing"),
        None => env.fail("Alice Liddell receives \"done typing\"", "nothing"),
    }
}

/// A message sent to the ICQ account while it was not logged in arrives at login with
/// its delay stamp (XEP-0203); a live message afterwards has none.
async fn icq_offline_message_carries_its_delay_stamp(kind: ServerKind) {
    let (env, mut alice) = Env::start(kind, "offline", &[Net::Icq]).await;
    let mut icq_bob = env.icq_user(ICQ_BOB, "bob2").await;
    let before = unix_now();
    env.check(
        "ICQ send",
        icq_bob
            .send_message_acked(ICQ_ME, "left while you were away", T)
            .await
            .map(drop),
    );
    let after = unix_now();
    env.register(&mut alice, Net::Icq, &ICQ_ME.to_string(), ICQ_PW)
        .await;
    let connected = Instant::now();
    let bob_jid = Net::Icq.contact("1002");
    let offline = env
        .chat_from(&mut alice, &bob_jid, "left while you were away")
        .await;
    let stamp = delay(&offline).unwrap_or_else(|| panic!("no delay stamp: {offline:?}"));
    // ICQ dates have minute precision.
    let sent = stamp.stamp.0.timestamp() as u64;
    assert!(
        sent.is_multiple_of(60) && sent >= before - before % 60 && sent <= after,
        "stamp {} is not the ICQ time (sent between {before} and {after})",
        stamp.stamp.0
    );

    // Precondition, not an assertion: ICQ v2 has no end-of-stored-messages marker, so the
    // bridge takes messages in the first 2 s after login for stored ones.
    let burst_over = connected + Duration::from_millis(2500);
    tokio::time::sleep_until(burst_over.into()).await;
    env.check(
        "ICQ send",
        icq_bob
            .send_message_acked(ICQ_ME, "live now", T)
            .await
            .map(drop),
    );
    let live = env.chat_from(&mut alice, &bob_jid, "live now").await;
    assert!(
        delay(&live).is_none(),
        "a live message with a delay stamp: {live:?}"
    );
    let again = take_queued(
        &mut alice,
        |s| matches!(s, Stanza::Message(m) if body(m) == Some("left while you were away")),
    )
    .await;
    assert!(
        again.is_empty(),
        "the offline message came twice: {again:?}"
    );
}

/// An ICQ user's authorization request arrives as a subscription request from their JID
/// with their nick (XEP-0172); approving it grants it (the simulator's client sees
/// "granted") and the gateway says so. A second request is listed by the ad-hoc command
/// `authorize`, whose form denies it (the client sees "denied").
async fn icq_authorization_requests(kind: ServerKind) {
    let (env, mut alice) = Env::start(kind, "authorization", &[Net::Icq]).await;
    env.register(&mut alice, Net::Icq, &ICQ_ME.to_string(), ICQ_PW)
        .await;
    let mut carol = env.icq_user(1003, "carol3").await;
    env.check(
        "Carol's request",
        carol
            .request_authorization(ICQ_ME, "carol", "hello from carol")
            .await
            .map(drop),
    );
    let carol_jid = Net::Icq.contact("1003");
    let request = env.check(
        "the request as a subscription",
        alice
            .wait_presence(T, |p| presence_from(p, &carol_jid, PresenceType::Subscribe))
            .await,
    );
    assert_eq!(nick(&request).as_deref(), Some("carol"), "{request:?}");
    env.check("approving", alice.approve_subscription(&carol_jid).await);
    assert_eq!(
        carol.wait_for_authorization(ICQ_ME, T).await,
        Some(true),
        "Carol was not granted ({kind:?})"
    );
    env.notice(&mut alice, Net::Icq, "Authorized 1003").await;

    let mut bob = env.icq_user(ICQ_BOB, "bob2").await;
    env.check(
        "Bob's request",
        bob.request_authorization(ICQ_ME, "bobby", "please")
            .await
            .map(drop),
    );
    env.notice(
        &mut alice,
        Net::Icq,
        "bobby (1002) asks to add you to their contact list: please.",
    )
    .await;
    let gw: Jid = Net::Icq.gateway().into();
    let started = env.check(
        "executing authorize",
        alice.execute_command(&gw, "authorize").await,
    );
    let form = String::from(&started);
    assert!(
        form.contains("bobby (1002): please") && !form.contains("1003"),
        "the pending request (and only it) is listed: {form}"
    );
    let session = started.attr("sessionid").unwrap_or_default().to_owned();
    let done = env.check(
        "submitting authorize",
        alice
            .submit_command(
                &gw,
                "authorize",
                &session,
                &[("id", "1002"), ("answer", "deny")],
            )
            .await,
    );
    let notes: String = done
        .children()
        .filter(|c| c.is("note", NS_COMMANDS))
        .map(Element::text)
        .collect();
    assert!(notes.contains("Denied 1002"), "{done:?}");
    assert_eq!(
        bob.wait_for_authorization(ICQ_ME, T).await,
        Some(false),
        "Bob was not denied ({kind:?})"
    );
}

/// Joins `room` as `asked` and waits for the self-presence (status 110 and 210: the
/// nickname is forced to the mig33 username); returns the presences that came before it
/// (the occupants) and the self-presence.
async fn join_room(
    env: &Env,
    user: &mut XmppUser,
    room: &BareJid,
    asked: &str,
) -> (Vec<Presence>, Presence) {
    let to: FullJid = room.with_resource_str(asked).expect("occupant JID");
    let join = Presence::available()
        .with_to(to)
        .with_payloads(vec![Element::bare("x", NS_MUC)]);
    env.check("joining", user.send(join).await.map(drop));
    let own = env.check(
        &format!("{} joining {room}: the self-presence", user.jid),
        user.wait_presence(T, |p| {
            from_bare(p.from.as_ref(), room) && muc_statuses(p).contains(&110)
        })
        .await,
    );
    let before: Vec<Presence> = take_queued(
        user,
        |s| matches!(s, Stanza::Presence(p) if from_bare(p.from.as_ref(), room)),
    )
    .await
    .into_iter()
    .filter_map(|s| match s {
        Stanza::Presence(p) => Some(p),
        _ => None,
    })
    .collect();
    (before, own)
}

/// A mig33 chatroom joined by two XMPP users (two mig33 accounts): occupants, forced
/// nicknames, every message once for each, in order; leaving.
async fn mig33_chatroom_shared_by_two_xmpp_users_delivers_every_message_once(kind: ServerKind) {
    let (env, mut alice) = Env::start(kind, "muc", &[Net::Mig33]).await;
    let mut bob = env.connect("bob").await;
    let mut carol = env.mig33_user("carol", "carolpw").await;
    env.check("carol joins lobby", carol.join_room("lobby").await);
    env.register(&mut alice, Net::Mig33, "alice", "alicepw")
        .await;
    env.register(&mut bob, Net::Mig33, "dave", "davepw").await;
    let room = mig33_room("lobby");

    // The rooms can be found from a client's "browse rooms" (XEP-0045 §6.3): the rooms'
    // service and the gateway list what mig33 offers (games has nobody in it), and the
    // service is named for what it carries.
    let service = Jid::from(bare(&rooms_domain()));
    let listed = |items: &tokio_xmpp::parsers::disco::DiscoItemsResult, name: &str| {
        items
            .items
            .iter()
            .find(|i| i.jid == mig33_room(name))
            .and_then(|i| i.name.clone())
    };
    let items = env.check("the rooms' items", alice.disco_items(&service, None).await);
    assert!(
        listed(&items, "games").is_some_and(|n| n.contains("Nobody here yet")),
        "{items:?}"
    );
    assert!(listed(&items, "lobby").is_some(), "{items:?}");
    let items = env.check(
        "the gateway's items",
        alice.disco_items(&Net::Mig33.gateway().into(), None).await,
    );
    assert!(listed(&items, "games").is_some(), "{items:?}");
    let info = env.check("the rooms' info", alice.disco_info(&service, None).await);
    let name = info.identities[0].name.clone().unwrap_or_default();
    assert!(
        name.contains("mig33 chatrooms") && !name.contains("ICQ"),
        "{name}"
    );

    let (occupants, own) = join_room(&env, &mut alice, &room, "Alice in XMPP").await;
    assert_eq!(
        resource(own.from.as_ref()).as_deref(),
        Some("alice"),
        "{own:?}"
    );
    assert!(muc_statuses(&own).contains(&210), "nick forced: {own:?}");
    let nicks: Vec<String> = occupants
        .iter()
        .filter_map(|p| resource(p.from.as_ref()))
        .collect();
    assert!(
        nicks.iter().any(|n| n == "carol"),
        "carol among the occupants before the self-presence: {nicks:?}"
    );
    let (_, own) = join_room(&env, &mut bob, &room, "bobby").await;
    assert_eq!(
        resource(own.from.as_ref()).as_deref(),
        Some("dave"),
        "{own:?}"
    );
    assert!(muc_statuses(&own).contains(&210), "nick forced: {own:?}");
    let result = carol
        .wait_for(T, |e| {
            matches!(e, mig33_proto::ClientEvent::Participants { participants, .. }
                if participants.iter().any(|p| p == "alice") && participants.iter().any(|p| p == "dave"))
        })
        .await;
    env.check("carol sees alice and dave in lobby", result);

    // Legacy messages reach both.
    for text in ["c1", "c2", "c3"] {
        env.check("mig33 send", carol.send_room("lobby", text).await.map(drop));
    }
    let in_room = |nick: &'static str| {
        let room = room.clone();
        move |m: &Message| {
            m.type_ == MessageType::Groupchat
                && from_bare(m.from.as_ref(), &room)
                && resource(m.from.as_ref()).as_deref() == Some(nick)
        }
    };
    let groupchat = {
        let room = room.clone();
        move |m: &Message| m.type_ == MessageType::Groupchat && from_bare(m.from.as_ref(), &room)
    };
    for user in [&mut alice, &mut bob] {
        let seen = bodies_until(&env, user, T, in_room("carol"), "c3").await;
        assert_eq!(seen, ["c1", "c2", "c3"], "{}", user.jid);
    }

    // alice's message: once at mig33, reflected to her (with her id), once to bob.
    let message =
        Message::groupchat(Some(room.clone().into())).with_body("".into(), "from alice".into());
    let id = env.check("alice sends", alice.send_message(message).await);
    mig33_text(&env, &mut carol, "alice", "from alice").await;
    let reflected = env.check(
        "alice's message reflected",
        alice
            .wait_message(T, |m| in_room("alice")(m) && body(m) == Some("from alice"))
            .await,
    );
    assert_eq!(id_of(&reflected), Some(id.as_str()), "{reflected:?}");
    env.check(
        "alice's message to bob",
        bob.wait_message(T, |m| in_room("alice")(m) && body(m) == Some("from alice"))
            .await,
    );

    let message =
        Message::groupchat(Some(room.clone().into())).with_body("".into(), "from bob".into());
    env.check("bob sends", bob.send_message(message).await);
    mig33_text(&env, &mut carol, "dave", "from bob").await;
    env.check(
        "bob's message reflected",
        bob.wait_message(T, |m| in_room("dave")(m) && body(m) == Some("from bob"))
            .await,
    );
    env.check(
        "bob's message to alice",
        alice
            .wait_message(T, |m| in_room("dave")(m) && body(m) == Some("from bob"))
            .await,
    );

    // Count everything once the marker is through.
    env.check(
        "mig33 send",
        carol.send_room("lobby", "marker").await.map(drop),
    );
    for user in [&mut alice, &mut bob] {
        let seen = bodies_until(&env, user, T, groupchat.clone(), "marker").await;
        assert_eq!(
            seen,
            ["marker"],
            "{}: nothing doubled before the marker",
            user.jid
        );
    }
    let doubled = carol
        .wait_for(Duration::ZERO, |e| {
            matches!(e, mig33_proto::ClientEvent::Message(m) if m.content == "from alice" || m.content == "from bob")
        })
        .await;
    assert!(
        doubled.is_err(),
        "a message reached mig33 twice: {doubled:?}"
    );
    // Each login's member list leaves out its own user: neither saw the other leave.
    for (user, other) in [(&mut alice, "dave"), (&mut bob, "alice")] {
        let flapped = take_queued(user, |s| {
            matches!(s, Stanza::Presence(p) if p.type_ == PresenceType::Unavailable
                && from_bare(p.from.as_ref(), &room)
                && resource(p.from.as_ref()).as_deref() == Some(other))
        })
        .await;
        assert!(
            flapped.is_empty(),
            "{} saw {other} leave while in the room: {flapped:?}",
            user.jid
        );
    }

    // alice leaves: her own unavailable presence, gone at mig33; bob stays.
    let leave =
        Presence::unavailable().with_to(room.with_resource_str("alice").expect("occupant JID"));
    env.check("leaving", alice.send(leave).await.map(drop));
    let left = env.check(
        "alice's unavailable self-presence",
        alice
            .wait_presence(T, |p| {
                p.type_ == PresenceType::Unavailable
                    && from_bare(p.from.as_ref(), &room)
                    && muc_statuses(p).contains(&110)
            })
            .await,
    );
    assert_eq!(resource(left.from.as_ref()).as_deref(), Some("alice"));
    let result = carol
        .wait_for(T, |e| {
            matches!(e, mig33_proto::ClientEvent::Participants { participants, .. }
                if !participants.iter().any(|p| p == "alice") && participants.iter().any(|p| p == "dave"))
        })
        .await;
    env.check("alice gone from lobby at mig33, dave still there", result);
    env.check(
        "mig33 send",
        carol.send_room("lobby", "after alice left").await.map(drop),
    );
    env.check(
        "bob still in the room",
        bob.wait_message(T, |m| {
            in_room("carol")(m) && body(m) == Some("after alice left")
        })
        .await,
    );
    let leaked = take_queued(
        &mut alice,
        |s| matches!(s, Stanza::Message(m) if body(m) == Some("after alice left")),
    )
    .await;
    assert!(leaked.is_empty(), "alice left but got {leaked:?}");

    // alice comes back: the room's last messages come first, stamped (XEP-0045
    // §7.2.15), each once, the latest last; then the subject.
    join_room(&env, &mut alice, &room, "alice").await;
    env.check(
        "the subject after the history",
        alice
            .wait_message(T, |m| {
                from_bare(m.from.as_ref(), &room) && !m.subjects.is_empty()
            })
            .await,
    );
    let history: Vec<Message> = take_queued(
        &mut alice,
        |s| matches!(s, Stanza::Message(m) if groupchat(m) && body(m).is_some()),
    )
    .await
    .into_iter()
    .filter_map(|s| match s {
        Stanza::Message(m) => Some(m),
        _ => None,
    })
    .collect();
    let bodies: Vec<&str> = history.iter().filter_map(body).collect();
    assert_eq!(bodies.last(), Some(&"after alice left"), "{bodies:?}");
    assert!(bodies.contains(&"c3"), "{bodies:?}");
    let mut once = bodies.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), bodies.len(), "a line twice: {bodies:?}");
    assert!(
        history
            .iter()
            .all(|m| m.payloads.iter().any(|p| p.is("delay", "urn:xmpp:delay"))),
        "history carries delay stamps: {history:?}"
    );
}

/// The XMPP server stops mid-conversation: what legacy contacts send meanwhile arrives once it
/// is back, each message once and in order, and the user's messages flow again.
async fn server_restart_mid_conversation_loses_nothing(kind: ServerKind) {
    let (mut env, mut alice) = Env::start(kind, "server-restart", &[Net::Icq, Net::Mig33]).await;
    let mut icq_bob = env.icq_user(ICQ_BOB, "bob2").await;
    let mut carol = env.mig33_user("carol", "carolpw").await;
    env.register(&mut alice, Net::Icq, &ICQ_ME.to_string(), ICQ_PW)
        .await;
    env.register(&mut alice, Net::Mig33, "alice", "alicepw")
        .await;
    let bob_jid = Net::Icq.contact("1002");
    let carol_jid = Net::Mig33.contact("carol");

    let mut icq_sent = Vec::new();
    let mut mig33_sent = Vec::new();
    for i in 1..=3 {
        let (a, b) = (format!("icq before {i}"), format!("mig33 before {i}"));
        env.check(
            "ICQ send",
            icq_bob.send_message_acked(ICQ_ME, &a, T).await.map(drop),
        );
        let id = env.check("mig33 send", carol.send_private("alice", &b).await);
        env.check("mig33 delivered", carol.wait_done(id, T).await);
        icq_sent.push(a);
        mig33_sent.push(b);
    }
    let all = |from: BareJid| {
        move |m: &Message| m.type_ == MessageType::Chat && from_bare(m.from.as_ref(), &from)
    };
    let seen = bodies_until(&env, &mut alice, T, all(bob_jid.clone()), "icq before 3").await;
    assert_eq!(seen, icq_sent, "ICQ messages before the outage");
    let seen = bodies_until(
        &env,
        &mut alice,
        T,
        all(carol_jid.clone()),
        "mig33 before 3",
    )
    .await;
    assert_eq!(seen, mig33_sent, "mig33 messages before the outage");
    // XEP-0114 has no acknowledgements: the bridge counts a message delivered once the
    // server answers a ping it sent after it, and a stop between the two makes it come
    // again (at least once, never lost). So that the counts below are exact, the stop
    // waits until a message from another contact of each network, sent later on the
    // same link, is seen: the server had answered the earlier pings by then.
    let mut icq_carol = env.icq_user(1003, "carol3").await;
    let mig33_bob = env.mig33_user("bob", "bobpw").await;
    env.check(
        "ICQ marker",
        icq_carol
            .send_message_acked(ICQ_ME, "icq marker", T)
            .await
            .map(drop),
    );
    env.check(
        "mig33 marker",
        mig33_bob
            .send_private("alice", "mig33 marker")
            .await
            .map(drop),
    );
    for (from, text) in [
        (Net::Icq.contact("1003"), "icq marker"),
        (Net::Mig33.contact("bob"), "mig33 marker"),
    ] {
        bodies_until(&env, &mut alice, T, all(from), text).await;
    }

    tokio::task::block_in_place(|| env.server.stop()).expect("the XMPP server stops");
    // The legacy servers accept these (the mig33 server has written each to the bridge's
    // connection) while no XMPP server is there to take them.
    for i in 1..=10 {
        let (a, b) = (format!("icq during {i}"), format!("mig33 during {i}"));
        env.check(
            "ICQ send",
            icq_bob.send_message_acked(ICQ_ME, &a, T).await.map(drop),
        );
        let id = env.check("mig33 send", carol.send_private("alice", &b).await);
        env.check(
            "mig33 delivered to the bridge",
            carol.wait_done(id, T).await,
        );
        icq_sent.push(a);
        mig33_sent.push(b);
    }
    tokio::task::block_in_place(|| env.server.restart()).expect("the XMPP server starts again");
    env.check("alice reconnects", alice.wait_reconnected(RECONNECT).await);

    for i in 1..=2 {
        let (a, b) = (format!("icq after {i}"), format!("mig33 after {i}"));
        env.check(
            "ICQ send",
            icq_bob.send_message_acked(ICQ_ME, &a, T).await.map(drop),
        );
        env.check(
            "mig33 send",
            carol.send_private("alice", &b).await.map(drop),
        );
        icq_sent.push(a);
        mig33_sent.push(b);
    }
    // What came before the outage must not come again: everything from each contact
    // since then is counted.
    let icq_seen = bodies_until(
        &env,
        &mut alice,
        RECONNECT,
        all(bob_jid.clone()),
        "icq after 2",
    )
    .await;
    let mig33_seen =
        bodies_until(&env, &mut alice, T, all(carol_jid.clone()), "mig33 after 2").await;
    let expected_icq: Vec<String> = icq_sent.split_off(3);
    let expected_mig33: Vec<String> = mig33_sent.split_off(3);
    report_losses("ICQ", &expected_icq, &icq_seen);
    report_losses("mig33", &expected_mig33, &mig33_seen);
    assert_eq!(icq_seen, expected_icq, "ICQ messages across the restart");
    assert_eq!(
        mig33_seen, expected_mig33,
        "mig33 messages across the restart"
    );

    // The user's side works again.
    env.check(
        "sending",
        alice
            .send_chat(&bob_jid.clone().into(), "back online")
            .await
            .map(drop),
    );
    assert_eq!(icq_text(&env, &mut icq_bob, ICQ_ME).await, "back online");
    env.check(
        "sending",
        alice
            .send_chat(&carol_jid.clone().into(), "back online too")
            .await
            .map(drop),
    );
    mig33_text(&env, &mut carol, "alice", "back online too").await;
}

/// Prints what was lost, doubled and reordered (the assertion then shows both lists).
fn report_losses(what: &str, sent: &[String], seen: &[String]) {
    let lost: Vec<&String> = sent.iter().filter(|s| !seen.contains(s)).collect();
    let doubled: Vec<&String> = sent
        .iter()
        .filter(|s| seen.iter().filter(|x| x == s).count() > 1)
        .collect();
    let mut in_order: Vec<&String> = seen.iter().filter(|s| sent.contains(s)).collect();
    in_order.dedup();
    let reordered = in_order
        .windows(2)
        .filter(|w| sent.iter().position(|s| s == w[0]) > sent.iter().position(|s| s == w[1]))
        .count();
    eprintln!(
        "{what}: {} sent, {} seen, {} lost {lost:?}, {} doubled {doubled:?}, {reordered} out of order",
        sent.len(),
        seen.len(),
        lost.len(),
        doubled.len()
    );
}

/// The bridge restarts (SIGTERM, then the same config and database): the registrations
/// are kept (logins back quietly, the gateway available, messages both ways, no contact
/// offered again) and so is the room (a chatroom message still reaches the user).
async fn bridge_restart_keeps_registrations_and_rooms(kind: ServerKind) {
    let (mut env, mut alice) = Env::start(kind, "bridge-restart", &[Net::Icq, Net::Mig33]).await;
    let mut icq_bob = env.icq_user(ICQ_BOB, "bob2").await;
    let mut carol = env.mig33_user("carol", "carolpw").await;
    env.check("carol joins lobby", carol.join_room("lobby").await);
    env.register(&mut alice, Net::Icq, &ICQ_ME.to_string(), ICQ_PW)
        .await;
    env.register(&mut alice, Net::Mig33, "alice", "alicepw")
        .await;
    let bob_jid = Net::Icq.contact("1002");
    let contacts = [
        bob_jid.clone(),
        Net::Mig33.contact("bob"),
        Net::Mig33.contact("carol"),
    ];
    for contact in &contacts {
        env.accept_contact(&mut alice, contact).await;
    }
    let room = mig33_room("lobby");
    join_room(&env, &mut alice, &room, "alice").await;
    env.check(
        "mig33 send",
        carol.send_room("lobby", "before restart").await.map(drop),
    );
    env.check(
        "the room works",
        alice
            .wait_message(T, |m| {
                m.type_ == MessageType::Groupchat && body(m) == Some("before restart")
            })
            .await,
    );
    env.check(
        "ICQ send",
        icq_bob
            .send_message_acked(ICQ_ME, "before restart", T)
            .await
            .map(drop),
    );
    env.chat_from(&mut alice, &bob_jid, "before restart").await;

    // Alice is away on XMPP: ICQ shows it.
    icq_status_step(
        &env,
        &mut alice,
        &mut icq_bob,
        Presence::available().with_show(Show::Away),
        icq_proto::Status::AWAY,
    )
    .await;

    // Forget what came so far: what follows is from the new process.
    take_queued(&mut alice, |_| true).await;
    while icq_bob.next_event(Duration::ZERO).await.is_some() {}
    assert!(
        env.bridge.terminate(),
        "the bridge stops cleanly on SIGTERM"
    );
    // While it is down nothing looks online (XEP-0100 §6): the gateways and the
    // contacts that were shown available went offline as it stopped.
    for jid in [
        Net::Icq.gateway(),
        Net::Mig33.gateway(),
        bob_jid.clone(),
        Net::Mig33.contact("carol"),
    ] {
        env.check(
            &format!("{jid} shown offline as the bridge stopped"),
            alice
                .wait_presence(T, |p| presence_from(p, &jid, PresenceType::Unavailable))
                .await,
        );
    }
    env.bridge
        .start(&mut alice)
        .await
        .unwrap_or_else(|e| panic!("the bridge starts again: {e:#}"));

    // The logins come back quietly (no second "Connected" notice, checked at the end):
    // the gateways show them online again.
    for net in [Net::Icq, Net::Mig33] {
        let gw = net.gateway();
        env.check(
            &format!("{gw} available again"),
            alice
                .wait_presence(T, |p| {
                    presence_from(p, &gw, PresenceType::None) && p.show.is_none()
                })
                .await,
        );
        let form = env.check(
            "the registration form",
            alice.registration_form(&gw.clone().into()).await,
        );
        assert!(
            form.get_child("registered", NS_REGISTER).is_some(),
            "{gw}: {form:?}"
        );
    }

    // The bridge asked alice's presence as its links came up: ICQ shows her away
    // again (the login itself starts online).
    let away = icq_bob
        .wait_for(T, |e| {
            matches!(e, icq_proto::ClientEvent::ContactStatus { uin: ICQ_ME, status } if *status == icq_proto::Status::AWAY)
        })
        .await;
    if away.is_none() {
        env.fail("1002 sees 1001 away again after the restart", "nothing");
    }

    // Messages both ways.
    env.check(
        "ICQ send",
        icq_bob
            .send_message_acked(ICQ_ME, "after restart", T)
            .await
            .map(drop),
    );
    env.chat_from(&mut alice, &bob_jid, "after restart").await;
    env.check(
        "sending",
        alice
            .send_chat(&bob_jid.clone().into(), "welcome back")
            .await
            .map(drop),
    );
    assert_eq!(icq_text(&env, &mut icq_bob, ICQ_ME).await, "welcome back");

    // The room: rejoined at mig33, still delivered to alice, and her messages go out.
    let result = carol
        .wait_for(T, |e| {
            matches!(e, mig33_proto::ClientEvent::Participants { participants, .. } if participants.iter().any(|p| p == "alice"))
        })
        .await;
    env.check("alice back in lobby at mig33", result);
    env.check(
        "mig33 send",
        carol
            .send_room("lobby", "after bridge restart")
            .await
            .map(drop),
    );
    let got = env.check(
        "a room message after the restart",
        alice
            .wait_message(T, |m| {
                m.type_ == MessageType::Groupchat && body(m) == Some("after bridge restart")
            })
            .await,
    );
    assert_eq!(
        got.from.as_ref().map(|j| j.to_bare()),
        Some(room.clone()),
        "{got:?}"
    );
    assert_eq!(
        resource(got.from.as_ref()).as_deref(),
        Some("carol"),
        "{got:?}"
    );
    let message =
        Message::groupchat(Some(room.clone().into())).with_body("".into(), "alice is back".into());
    env.check("alice sends", alice.send_message(message).await);
    mig33_text(&env, &mut carol, "alice", "alice is back").await;

    // The contact list was not offered again.
    let offered = take_queued(&mut alice, |s| {
        matches!(s, Stanza::Presence(p) if p.type_ == PresenceType::Subscribe
            && contacts.iter().any(|c| from_bare(p.from.as_ref(), c)))
    })
    .await;
    assert!(
        offered.is_empty(),
        "contacts offered again after the restart: {offered:?}"
    );
    let notices = take_queued(
        &mut alice,
        |s| matches!(s, Stanza::Message(m) if body(m).is_some_and(|b| b.contains("Connected to"))),
    )
    .await;
    assert!(
        notices.is_empty(),
        "a resumed login is not announced again: {notices:?}"
    );
    let doubled = take_queued(&mut alice, |s| matches!(s, Stanza::Message(m) if body(m) == Some("after bridge restart") || body(m) == Some("after restart"))).await;
    assert!(doubled.is_empty(), "delivered twice: {doubled:?}");
}

/// An ejabberd set up the way many guides show, with the components listed under
/// `hosts:` of the listener, routes one component's traffic to another's connection
/// (answers to one gateway's confirmations come out on another's). The bridge names
/// the mistake in its log, pointing to the README, instead of only retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_listing_the_components_under_hosts_is_named_in_the_log() {
    let sim = icq::Server::start(icq_config())
        .await
        .expect("ICQ simulator");
    let server = tokio::task::block_in_place(|| {
        let server =
            e2e_tests::ejabberd::Ejabberd::start_listing_hosts(&components(&["icq", "mig33"]))?;
        server.register("alice", "pw-alice")?;
        anyhow::Ok(server)
    })
    .expect("ejabberd starts");
    let yaml = network_yaml("icq", &sim.addr().to_string(), &[])
        + &network_yaml("mig33", "127.0.0.1:9", &[]);
    let mut bridge =
        XmppBridge::configure("hosts-listed", &server, &yaml).expect("the bridge's config");
    let mut alice = XmppUser::connect(&server, "alice", "pw-alice")
        .await
        .expect("alice logs in");
    bridge.spawn().expect("the bridge starts");
    // alice's disco of each gateway and the gateways' own pings: some answers reach the
    // wrong connection.
    let deadline = Instant::now() + T;
    while !bridge
        .log()
        .contains("do not list the components under `hosts:`")
    {
        for domain in &bridge.domains {
            let _ = alice.disco_info(&bare(domain).into(), None).await;
        }
        if Instant::now() > deadline {
            panic!(
                "the bridge never named the misrouting\n{}{}",
                bridge.log_tail(40),
                server.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
