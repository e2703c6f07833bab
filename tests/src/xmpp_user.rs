//! A test XMPP client for one account of a test [`XmppServer`] (Prosody or ejabberd):
//! tokio-xmpp over plain TCP on loopback (SASL without TLS: both servers offer SCRAM-SHA-1
//! and PLAIN there, and tokio-xmpp picks SCRAM-SHA-1) and xmpp-parsers for the stanzas.
//!
//! ```ignore
//! let mut alice = XmppUser::connect(&*server, "alice", "pw").await?; // online, presence sent
//! alice.send_chat(&bob.jid.clone().into(), "hello").await?;
//! let m = bob.wait_message(T, |m| body(m) == Some("hello")).await?;
//! let info = alice.disco_info(&"icq.localhost".parse()?, None).await?;
//! alice.register(&"icq.localhost".parse()?, "1001", "secret").await?;  // XEP-0077
//! server.restart()?;
//! alice.wait_reconnected(T).await?; // logged in again, presence re-sent
//! ```
//!
//! - Everything received is queued; the `wait_*` methods take the first stanza that
//!   matches (earlier ones included) and keep the others for later waits, as the legacy
//!   clients' [`EventQueue`] does. A failed wait lists what was seen.
//! - IQ requests are matched to their answers by id ([`XmppUser::iq`]); typed shortcuts
//!   cover disco, roster, in-band registration and ad-hoc commands.
//! - A background task drives the connection, so the client answers the server and the
//!   gateway while a test waits on something else: disco#info (with [`DEFAULT_FEATURES`],
//!   see [`XmppUser::set_features`]), pings and roster pushes are answered by itself
//!   (and still queued, so tests can see them); other IQ requests wait for
//!   [`XmppUser::reply_iq`].
//! - When the connection drops, tokio-xmpp reconnects by itself (after 1 s, then 2, 4 ...
//!   up to 30 s between attempts); the task then sends the user's latest presence again,
//!   as a client does. [`XmppUser::wait_reconnected`] waits for that.
//! - Each client asks for a resource of its own (`test<n>`), kept across reconnects, so
//!   [`XmppUser::full_jid`] does not change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::StreamExt;
use legacy_sim::events::EventQueue;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::connect::TcpServerConnector;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::chatstates::ChatState;
use tokio_xmpp::parsers::delay::Delay;
use tokio_xmpp::parsers::disco::{
    DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult, Identity,
};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::parsers::message::{Id, Message};
use tokio_xmpp::parsers::presence::{Presence, Show, Type as PresenceType};
use tokio_xmpp::parsers::roster::Roster;
use tokio_xmpp::parsers::stanza_error::StanzaError;
use tokio_xmpp::parsers::xhtml::XhtmlIm;
use tokio_xmpp::stanzastream::{
    Event as StreamEvent, StanzaStage, StanzaState, StanzaStream, StanzaToken,
    StreamEvent as StreamState,
};
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{IqRequest, PrintRawXml, Stanza};

use crate::xmpp_server::XmppServer;

/// How long [`XmppUser::connect`] waits to be logged in.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an IQ request waits for its answer.
pub const IQ_TIMEOUT: Duration = Duration::from_secs(30);

const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const NS_PING: &str = "urn:xmpp:ping";
const NS_ROSTER: &str = "jabber:iq:roster";
const NS_REGISTER: &str = "jabber:iq:register";
const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
const NS_XHTML_IM: &str = "http://jabber.org/protocol/xhtml-im";
const NS_XHTML: &str = "http://www.w3.org/1999/xhtml";

/// What the client says it supports when asked (disco#info), unless changed with
/// [`XmppUser::set_features`]. Roster item exchange (XEP-0144) is left out: a test that
/// wants it adds `http://jabber.org/protocol/rosterx`.
pub const DEFAULT_FEATURES: &[&str] = &[
    NS_DISCO_INFO,
    NS_PING,
    "http://jabber.org/protocol/chatstates",
    NS_XHTML_IM,
    "urn:xmpp:receipts",
];

/// A received stanza; printed as its XML (in failed waits).
pub struct Received(pub Stanza);

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", PrintRawXml(&self.0))
    }
}

/// An IQ answered with `type='error'` (find it with `anyhow::Error::downcast_ref`).
#[derive(Debug)]
pub struct IqError {
    pub from: String,
    pub error: StanzaError,
}

impl std::fmt::Display for IqError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IQ error from {}: {:?} {:?} {:?}",
            self.from, self.error.type_, self.error.defined_condition, self.error.texts
        )
    }
}

impl std::error::Error for IqError {}

/// The connection's state, published by the background task.
#[derive(Clone, Debug, Default)]
struct Session {
    /// Logins so far (1 after the first, +1 per reconnection).
    count: u64,
    jid: Option<FullJid>,
}

/// Requests to the background task, which owns the tokio-xmpp client.
enum Command {
    Send(Box<Stanza>, oneshot::Sender<std::io::Result<()>>),
    /// An IQ request (get or set) and where its answer goes.
    Iq(Box<Iq>, oneshot::Sender<IqAnswer>),
}

/// What an IQ request got: the result's payload, or the error.
type IqAnswer = Result<Option<Element>, StanzaError>;

/// State shared with the background task.
struct Shared {
    /// The latest broadcast presence, sent again after each reconnection.
    presence: Mutex<Presence>,
    features: Mutex<Vec<String>>,
}

/// A logged-in XMPP account on a test server.
pub struct XmppUser {
    /// `user@localhost`
    pub jid: BareJid,
    commands: mpsc::UnboundedSender<Command>,
    incoming: EventQueue<Received>,
    session: watch::Receiver<Session>,
    /// The login count [`wait_reconnected`](Self::wait_reconnected) compares with.
    sessions_seen: u64,
    shared: Arc<Shared>,
}

impl XmppUser {
    /// Logs `user@localhost` in to `server` and sends initial presence (available), so
    /// that the user receives messages, stored offline messages included. Fails after
    /// 30 s with the server's log tail (a wrong password looks like this: tokio-xmpp keeps
    /// retrying).
    pub async fn connect(
        server: &dyn XmppServer,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Self> {
        // Built together with the bridge (`cargo test --workspace`), xmpp-parsers has the
        // bridge's component namespace, and the server refuses every stanza of this client.
        if tokio_xmpp::parsers::ns::DEFAULT_NS != "jabber:client" {
            bail!(
                "this test binary was built with xmpp-parsers' component feature (namespace {}), \
                 which the bridge enables: run the end-to-end tests on their own, \
                 `cargo test -p e2e-tests` (as scripts/test.sh does)",
                tokio_xmpp::parsers::ns::DEFAULT_NS
            );
        }
        warnings_to_stderr();
        static RESOURCES: AtomicU64 = AtomicU64::new(0);
        let jid = BareJid::new(&server.jid(user)).context("account JID")?;
        let n = RESOURCES.fetch_add(1, Ordering::Relaxed);
        let full = jid.with_resource_str(&format!("test{n}"))?;
        let stream = StanzaStream::new_c2s(
            TcpServerConnector::from(DnsConfig::Addr {
                addr: server.c2s_address(),
            }),
            full.into(),
            password.to_owned(),
            Timeouts::tight(),
            16,
        );
        let shared = Arc::new(Shared {
            presence: Mutex::new(Presence::available()),
            features: Mutex::new(DEFAULT_FEATURES.iter().map(|s| s.to_string()).collect()),
        });
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
        let (session_tx, session) = watch::channel(Session::default());
        tokio::spawn(drive(
            stream,
            command_rx,
            incoming_tx,
            session_tx,
            shared.clone(),
        ));
        let mut me = XmppUser {
            jid,
            commands,
            incoming: EventQueue::new(incoming_rx),
            session,
            sessions_seen: 0,
            shared,
        };
        if let Err(e) = me.wait_session(LOGIN_TIMEOUT).await {
            bail!(
                "{} did not log in: {e:#} (wrong password? {} down?)\n{}",
                me.jid,
                server.name(),
                server.log_tail(15)
            );
        }
        Ok(me)
    }

    /// The full JID of the current session (`user@localhost/test<n>`).
    pub fn full_jid(&self) -> FullJid {
        self.session
            .borrow()
            .jid
            .clone()
            .expect("a logged-in session has a JID")
    }

    /// How many times this client has logged in (1, then +1 per reconnection).
    pub fn logins(&self) -> u64 {
        self.session.borrow().count
    }

    /// Waits until the client has logged in again since it was created or since the
    /// last call (after the server restarted, say), its presence sent again.
    pub async fn wait_reconnected(&mut self, timeout: Duration) -> anyhow::Result<()> {
        self.wait_session(timeout)
            .await
            .with_context(|| format!("{} did not reconnect", self.jid))
    }

    async fn wait_session(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let seen = self.sessions_seen;
        let wait = self.session.wait_for(|s| s.count > seen);
        let count = match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(session)) => session.count,
            Ok(Err(_)) => bail!("the connection task ended"),
            Err(_) => bail!("no new login within {timeout:?} (logins so far: {seen})"),
        };
        self.sessions_seen = count;
        Ok(())
    }

    /// Changes what disco#info answers (the namespaces this client claims to support).
    pub fn set_features(&self, features: &[&str]) {
        *self.shared.features.lock().unwrap() = features.iter().map(|s| s.to_string()).collect();
    }

    /// Sends a stanza once it is written to the server (after a reconnection, while the
    /// server is down). A message or presence without an id gets one; returns it.
    pub async fn send(&self, stanza: impl Into<Stanza>) -> anyhow::Result<String> {
        let mut stanza = stanza.into();
        let id = match &mut stanza {
            Stanza::Message(m) => m.id.get_or_insert_with(|| Id(new_id())).0.clone(),
            Stanza::Presence(p) => p.id.get_or_insert_with(new_id).clone(),
            Stanza::Iq(iq) => iq_id(iq).to_owned(),
        };
        let (done, result) = oneshot::channel();
        self.commands
            .send(Command::Send(Box::new(stanza), done))
            .ok()
            .context("the connection task ended")?;
        result
            .await
            .context("the connection task ended")?
            .with_context(|| format!("{} sending {id}", self.jid))?;
        Ok(id)
    }

    /// Sends a message (see [`chat`], [`with_xhtml`], [`chat_state`]); returns its id.
    pub async fn send_message(&self, message: Message) -> anyhow::Result<String> {
        self.send(message).await
    }

    /// Sends a `chat` message with a plain body; returns its id.
    pub async fn send_chat(&self, to: &Jid, body: &str) -> anyhow::Result<String> {
        self.send(chat(to, body)).await
    }

    /// Broadcasts available presence with an optional `show` and status text; it is
    /// remembered and sent again after each reconnection.
    pub async fn send_presence(
        &self,
        show: Option<Show>,
        status: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut presence = Presence::available();
        presence.show = show;
        if let Some(status) = status {
            presence.set_status("", status);
        }
        *self.shared.presence.lock().unwrap() = presence.clone();
        self.send(presence).await.map(drop)
    }

    /// Asks `to` for a presence subscription (`type='subscribe'`).
    pub async fn subscribe(&self, to: &BareJid) -> anyhow::Result<()> {
        self.send(Presence::subscribe().with_to(to.clone()))
            .await
            .map(drop)
    }

    /// Accepts `from`'s subscription request (`type='subscribed'`).
    pub async fn approve_subscription(&self, from: &BareJid) -> anyhow::Result<()> {
        self.send(Presence::subscribed().with_to(from.clone()))
            .await
            .map(drop)
    }

    /// Sends an IQ request and waits up to [`IQ_TIMEOUT`] for its answer (matched by id):
    /// `Ok(Ok(payload))` for `type='result'`, `Ok(Err(error))` for `type='error'`.
    /// `to: None` addresses the user's own account (the server answers).
    pub async fn iq(
        &mut self,
        to: Option<Jid>,
        request: IqRequest,
    ) -> anyhow::Result<Result<Option<Element>, StanzaError>> {
        let what = format!("{} IQ to {:?}: {request:?}", self.jid, to);
        let id = new_id();
        let iq = match request {
            IqRequest::Get(payload) => Iq::Get {
                from: None,
                to,
                id,
                payload,
            },
            IqRequest::Set(payload) => Iq::Set {
                from: None,
                to,
                id,
                payload,
            },
        };
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Iq(Box::new(iq), reply))
            .ok()
            .context("the connection task ended")?;
        match tokio::time::timeout(IQ_TIMEOUT, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => bail!("{what}: not sent (the connection task ended or the stream broke)"),
            Err(_) => bail!("{what}: no answer within {IQ_TIMEOUT:?}"),
        }
    }

    /// [`iq`](Self::iq) with `type='get'`; an error answer is an [`IqError`].
    pub async fn iq_get(
        &mut self,
        to: Option<Jid>,
        payload: Element,
    ) -> anyhow::Result<Option<Element>> {
        let from = format!("{to:?}");
        self.iq(to, IqRequest::Get(payload))
            .await?
            .map_err(|error| IqError { from, error }.into())
    }

    /// [`iq`](Self::iq) with `type='set'`; an error answer is an [`IqError`].
    pub async fn iq_set(
        &mut self,
        to: Option<Jid>,
        payload: Element,
    ) -> anyhow::Result<Option<Element>> {
        let from = format!("{to:?}");
        self.iq(to, IqRequest::Set(payload))
            .await?
            .map_err(|error| IqError { from, error }.into())
    }

    /// Answers an IQ request received with a `wait_*` method.
    pub async fn reply_iq(
        &self,
        request: &Iq,
        answer: Result<Option<Element>, StanzaError>,
    ) -> anyhow::Result<()> {
        let (from, id) = match request {
            Iq::Get { from, id, .. } | Iq::Set { from, id, .. } => (from.clone(), id.clone()),
            _ => bail!("not an IQ request: {}", PrintRawXml(request)),
        };
        self.send(answer_iq(from, id, answer)).await.map(drop)
    }

    /// disco#info (XEP-0030) of `to`, optionally of one node.
    pub async fn disco_info(
        &mut self,
        to: &Jid,
        node: Option<&str>,
    ) -> anyhow::Result<DiscoInfoResult> {
        let query = DiscoInfoQuery {
            node: node.map(str::to_owned),
        };
        let payload = self.iq_get(Some(to.clone()), query.into()).await?;
        let payload = payload.context("disco#info answered without a payload")?;
        DiscoInfoResult::try_from(payload).context("parsing the disco#info result")
    }

    /// disco#items (XEP-0030) of `to`, optionally of one node (ad-hoc commands are the
    /// node `http://jabber.org/protocol/commands`).
    pub async fn disco_items(
        &mut self,
        to: &Jid,
        node: Option<&str>,
    ) -> anyhow::Result<DiscoItemsResult> {
        let query = DiscoItemsQuery {
            node: node.map(str::to_owned),
            rsm: None,
        };
        let payload = self.iq_get(Some(to.clone()), query.into()).await?;
        let payload = payload.context("disco#items answered without a payload")?;
        DiscoItemsResult::try_from(payload).context("parsing the disco#items result")
    }

    /// Pings the user's own server (XEP-0199) and waits for the answer. A server handles
    /// one client's stanzas in order, so once this returns, everything the client sent
    /// before it has been routed (a presence broadcast to contacts and gateways, say).
    pub async fn ping_server(&mut self) -> anyhow::Result<()> {
        let server: Jid = BareJid::new(self.jid.domain().as_str())?.into();
        self.iq_get(Some(server), Element::builder("ping", NS_PING).build())
            .await
            .context("pinging the server")
            .map(drop)
    }

    /// The user's roster, from the server.
    pub async fn roster(&mut self) -> anyhow::Result<Roster> {
        let query = Roster {
            ver: None,
            items: Vec::new(),
        };
        let payload = self.iq_get(None, query.into()).await?;
        let payload = payload.context("the roster answered without a payload")?;
        Roster::try_from(payload).context("parsing the roster")
    }

    /// The registration form of `to` (XEP-0077 `jabber:iq:register` get): the `<query/>`,
    /// with legacy fields and/or a data form, and `<registered/>` when already registered.
    pub async fn registration_form(&mut self, to: &Jid) -> anyhow::Result<Element> {
        let payload = self
            .iq_get(Some(to.clone()), Element::bare("query", NS_REGISTER))
            .await?;
        payload.context("the registration form came without a payload")
    }

    /// Registers with `to` (a gateway) with the legacy fields `username` and `password`.
    pub async fn register(
        &mut self,
        to: &Jid,
        username: &str,
        password: &str,
    ) -> anyhow::Result<()> {
        let query = parse_xml(&format!(
            "<query xmlns='{NS_REGISTER}'><username>{}</username><password>{}</password></query>",
            escape(username),
            escape(password)
        ))?;
        self.iq_set(Some(to.clone()), query).await.map(drop)
    }

    /// Cancels the registration with `to` (`<remove/>`).
    pub async fn unregister(&mut self, to: &Jid) -> anyhow::Result<()> {
        let query = parse_xml(&format!("<query xmlns='{NS_REGISTER}'><remove/></query>"))?;
        self.iq_set(Some(to.clone()), query).await.map(drop)
    }

    /// Starts the ad-hoc command `node` of `to` (XEP-0050 `execute`); returns the answer's
    /// `<command/>` (its `status` and `sessionid` attributes, its form or notes).
    pub async fn execute_command(&mut self, to: &Jid, node: &str) -> anyhow::Result<Element> {
        let command = parse_xml(&format!(
            "<command xmlns='{NS_COMMANDS}' node='{}' action='execute'/>",
            escape(node)
        ))?;
        let payload = self.iq_set(Some(to.clone()), command).await?;
        payload.context("the command answered without a payload")
    }

    /// Submits the form of a command step: `fields` as a `jabber:x:data` form of type
    /// `submit`, in the session `session_id` (the previous answer's `sessionid`).
    pub async fn submit_command(
        &mut self,
        to: &Jid,
        node: &str,
        session_id: &str,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<Element> {
        let fields: String = fields
            .iter()
            .map(|(var, value)| {
                format!(
                    "<field var='{}'><value>{}</value></field>",
                    escape(var),
                    escape(value)
                )
            })
            .collect();
        let command = parse_xml(&format!(
            "<command xmlns='{NS_COMMANDS}' node='{}' sessionid='{}' action='complete'>\
             <x xmlns='jabber:x:data' type='submit'>{fields}</x></command>",
            escape(node),
            escape(session_id)
        ))?;
        let payload = self.iq_set(Some(to.clone()), command).await?;
        payload.context("the command answered without a payload")
    }

    /// The first received stanza (earlier unmatched ones included) that satisfies `want`
    /// within `timeout`; the others stay queued. The error lists what was seen.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&Stanza) -> bool,
    ) -> anyhow::Result<Stanza> {
        match self.incoming.wait_for(timeout, |r| want(&r.0)).await {
            Ok(received) => Ok(received.0),
            Err(e) => Err(anyhow::anyhow!("{} waiting for a stanza: {e}", self.jid)),
        }
    }

    /// [`wait_for`](Self::wait_for) a message.
    pub async fn wait_message(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&Message) -> bool,
    ) -> anyhow::Result<Message> {
        let stanza = self
            .wait_for(timeout, |s| matches!(s, Stanza::Message(m) if want(m)))
            .await?;
        match stanza {
            Stanza::Message(m) => Ok(m),
            _ => unreachable!("matched a message"),
        }
    }

    /// [`wait_for`](Self::wait_for) a presence.
    pub async fn wait_presence(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&Presence) -> bool,
    ) -> anyhow::Result<Presence> {
        let stanza = self
            .wait_for(timeout, |s| matches!(s, Stanza::Presence(p) if want(p)))
            .await?;
        match stanza {
            Stanza::Presence(p) => Ok(p),
            _ => unreachable!("matched a presence"),
        }
    }

    /// [`wait_for`](Self::wait_for) an IQ request (get or set) addressed to this client.
    pub async fn wait_iq_request(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&Iq) -> bool,
    ) -> anyhow::Result<Iq> {
        let stanza = self
            .wait_for(
                timeout,
                |s| matches!(s, Stanza::Iq(iq @ (Iq::Get { .. } | Iq::Set { .. })) if want(iq)),
            )
            .await?;
        match stanza {
            Stanza::Iq(iq) => Ok(iq),
            _ => unreachable!("matched an IQ"),
        }
    }

    /// Logs out cleanly (the server tells contacts and gateways the user is unavailable).
    pub async fn disconnect(self) {
        drop(self.commands);
        // The task closes the stream once it sees the channel closed; wait for that.
        let mut session = self.session;
        let _ = tokio::time::timeout(Duration::from_secs(5), session.wait_for(|_| false)).await;
    }
}

/// A `chat` message to `to` with a plain body.
pub fn chat(to: &Jid, body: &str) -> Message {
    Message::chat(to.clone()).with_body("".into(), body.to_owned())
}

/// A chat state notification (XEP-0085) without a body, e.g. `ChatState::Composing`.
/// To add one to a message: `chat(to, "hi").with_payload(ChatState::Active)`.
pub fn chat_state(to: &Jid, state: ChatState) -> Message {
    Message::chat(to.clone()).with_payload(state)
}

/// `message` with an XHTML-IM body (XEP-0071); `markup` is what goes inside the XHTML
/// `<body>`, e.g. `<strong>hi</strong>`.
pub fn with_xhtml(mut message: Message, markup: &str) -> anyhow::Result<Message> {
    let html = parse_xml(&format!(
        "<html xmlns='{NS_XHTML_IM}'><body xmlns='{NS_XHTML}'>{markup}</body></html>"
    ))?;
    message.payloads.push(html);
    Ok(message)
}

/// The message's body (the one without a language, else any).
pub fn body(message: &Message) -> Option<&str> {
    message.get_best_body(vec![""]).map(|(_, b)| b.as_str())
}

/// The message's XHTML-IM body as HTML, if it has one.
pub fn xhtml(message: &Message) -> Option<String> {
    let html = message
        .payloads
        .iter()
        .find(|p| p.is("html", NS_XHTML_IM))?;
    XhtmlIm::try_from(html.clone()).ok().map(XhtmlIm::into_html)
}

/// The message's chat state (XEP-0085), if it has one.
pub fn chat_state_of(message: &Message) -> Option<ChatState> {
    message
        .payloads
        .iter()
        .find_map(|p| ChatState::try_from(p.clone()).ok())
}

/// The message's delayed-delivery stamp (XEP-0203), if it has one.
pub fn delay(message: &Message) -> Option<Delay> {
    message
        .payloads
        .iter()
        .find_map(|p| Delay::try_from(p.clone()).ok())
}

/// The presence's status text (the one without a language, else any).
pub fn status(presence: &Presence) -> Option<&str> {
    presence
        .statuses
        .get("")
        .or_else(|| presence.statuses.values().next())
        .map(String::as_str)
}

/// Whether `presence` comes from `from` (bare JIDs compared) with type `type_`.
pub fn presence_from(presence: &Presence, from: &BareJid, type_: PresenceType) -> bool {
    presence.type_ == type_ && presence.from.as_ref().is_some_and(|f| f.to_bare() == *from)
}

/// The background task: owns the stream, runs the requests, queues what arrives, answers
/// what a client must answer, and sends the presence again after each login.
///
/// It drives tokio-xmpp's `StanzaStream` itself rather than a `Client`: a `Client` splits
/// its stream into halves behind one mutex, and its receiving half gives up without
/// asking to be woken when a send holds the mutex (`StanzaReceiver::poll_next`, tokio-xmpp
/// 6.0), after which that client receives nothing more: now and then an IQ answer never
/// came, or a whole session went deaf right after login.
async fn drive(
    mut stream: StanzaStream,
    mut commands: mpsc::UnboundedReceiver<Command>,
    incoming: mpsc::UnboundedSender<Received>,
    session: watch::Sender<Session>,
    shared: Arc<Shared>,
) {
    let mut pending: std::collections::HashMap<String, oneshot::Sender<IqAnswer>> =
        Default::default();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Send(stanza, done)) => {
                    let token = stream.send(stanza).await;
                    tokio::spawn(report_sent(token, done));
                }
                Some(Command::Iq(iq, reply)) => {
                    pending.retain(|_, waiting| !waiting.is_closed());
                    pending.insert(iq_id(&iq).to_owned(), reply);
                    stream.send(Box::new((*iq).into())).await;
                }
                None => {
                    // The user is gone: close the stream politely, then end (which
                    // closes `session`, what `disconnect` waits for).
                    let _ = tokio::time::timeout(Duration::from_secs(5), stream.close()).await;
                    return;
                }
            },
            event = stream.next() => match event {
                Some(StreamEvent::Stream(StreamState::Reset { bound_jid, .. })) => {
                    // The server forgot the presence with the old session.
                    let presence = shared.presence.lock().unwrap().clone();
                    stream.send(Box::new(presence.into())).await;
                    session.send_modify(|s| {
                        s.count += 1;
                        s.jid = bound_jid.try_into_full().ok();
                    });
                }
                Some(StreamEvent::Stream(_)) => {}
                Some(StreamEvent::Stanza(stanza)) => {
                    // Answers to this client's requests, matched by id (unique in this
                    // process).
                    if let Stanza::Iq(iq @ (Iq::Result { .. } | Iq::Error { .. })) = &stanza {
                        if let Some(waiting) = pending.remove(iq_id(iq)) {
                            let answer = match stanza {
                                Stanza::Iq(Iq::Result { payload, .. }) => Ok(payload),
                                Stanza::Iq(Iq::Error { error, .. }) => Err(error),
                                _ => unreachable!("matched an IQ answer"),
                            };
                            let _ = waiting.send(answer);
                            continue;
                        }
                    }
                    if let Stanza::Iq(iq) = &stanza {
                        if let Some(answer) = automatic_answer(iq, &shared) {
                            stream.send(Box::new(answer.into())).await;
                        }
                    }
                    let _ = incoming.send(Received(stanza));
                }
                None => return,
            },
        }
    }
}

/// Tells `done` once the stanza is written to the server (or could not be).
async fn report_sent(mut token: StanzaToken, done: oneshot::Sender<std::io::Result<()>>) {
    let result = match token.wait_for(StanzaStage::Sent).await {
        Some(StanzaState::Sent { .. } | StanzaState::Acked { .. }) => Ok(()),
        Some(StanzaState::Failed { error }) => Err(std::io::Error::other(format!(
            "the stanza could not be sent: {error:?}"
        ))),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "the stream ended before the stanza was sent",
        )),
    };
    let _ = done.send(result);
}

/// The answer to the IQ requests every client answers by itself.
fn automatic_answer(iq: &Iq, shared: &Shared) -> Option<Iq> {
    let (from, id, payload, get) = match iq {
        Iq::Get {
            from, id, payload, ..
        } => (from, id, payload, true),
        Iq::Set {
            from, id, payload, ..
        } => (from, id, payload, false),
        _ => return None,
    };
    let answer = if get && payload.is("query", NS_DISCO_INFO) {
        let features = shared.features.lock().unwrap().iter().cloned().collect();
        let info = DiscoInfoResult {
            node: payload.attr("node").map(str::to_owned),
            identities: vec![Identity::new(
                "client",
                "pc",
                "en",
                "retrobridge test client",
            )],
            features,
            extensions: Vec::new(),
        };
        Some(info.into())
    } else if (get && payload.is("ping", NS_PING)) || (!get && payload.is("query", NS_ROSTER)) {
        // A roster push (RFC 6121 2.1.6) is acknowledged with an empty result.
        None
    } else {
        return None;
    };
    Some(answer_iq(from.clone(), id.clone(), Ok(answer)))
}

fn answer_iq(to: Option<Jid>, id: String, answer: Result<Option<Element>, StanzaError>) -> Iq {
    match answer {
        Ok(payload) => Iq::Result {
            from: None,
            to,
            id,
            payload,
        },
        Err(error) => Iq::Error {
            from: None,
            to,
            id,
            error,
            payload: None,
        },
    }
}

fn iq_id(iq: &Iq) -> &str {
    match iq {
        Iq::Get { id, .. } | Iq::Set { id, .. } | Iq::Result { id, .. } | Iq::Error { id, .. } => {
            id
        }
    }
}

/// tokio-xmpp's warnings and errors (a stanza it could not read and dropped, say) on
/// the test's stderr, shown when a test fails. Installed once, unless the test binary
/// has a logger of its own.
fn warnings_to_stderr() {
    struct Warnings;
    impl log::Log for Warnings {
        fn enabled(&self, m: &log::Metadata) -> bool {
            m.level() <= log::Level::Warn && m.target().starts_with("tokio_xmpp")
        }
        fn log(&self, r: &log::Record) {
            if self.enabled(r.metadata()) {
                eprintln!("{} {}: {}", r.level(), r.target(), r.args());
            }
        }
        fn flush(&self) {}
    }
    static WARNINGS: Warnings = Warnings;
    if log::set_logger(&WARNINGS).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// Unique stanza ids for this process.
fn new_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("rbt{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn parse_xml(text: &str) -> anyhow::Result<Element> {
    text.parse()
        .with_context(|| format!("building XML from {text}"))
}

/// Escapes text for XML character data and single- or double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
