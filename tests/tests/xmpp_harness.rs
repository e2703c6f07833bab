//! Checks the XMPP harness itself against a real Prosody and a real ejabberd, with no
//! bridge involved: two accounts chat and see each other's presence, across a server
//! restart; a component declared in the config completes a raw XEP-0114 handshake and
//! serves the client's IQs (disco, registration, ad-hoc commands) and messages. A server
//! missing or failing to start fails these tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use e2e_tests::prosody::{Component, Prosody};
use e2e_tests::xmpp_server::{ServerKind, XmppServer};
use e2e_tests::xmpp_user::{
    body, chat, chat_state, chat_state_of, presence_from, status, with_xhtml, xhtml, IqError,
    XmppUser,
};
use sha1::{Digest, Sha1};
use tokio_xmpp::parsers::chatstates::ChatState;
use tokio_xmpp::parsers::jid::{BareJid, Jid};
use tokio_xmpp::parsers::presence::{Show, Type as PresenceType};
use tokio_xmpp::parsers::roster::Subscription;
use tokio_xmpp::parsers::stanza_error::DefinedCondition;

const T: Duration = Duration::from_secs(15);
/// tokio-xmpp retries after 1 s, then 2, 4 ...: a restart of a second or two is seen
/// within a few seconds; the margin is for busy machines.
const RECONNECT: Duration = Duration::from_secs(45);
const SECRET: &str = "component-secret";

fn jid(s: &str) -> Jid {
    Jid::new(s).expect("a JID")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_and_see_presence_across_a_restart_on_prosody() -> anyhow::Result<()> {
    two_users_chat_and_see_presence_across_a_restart(ServerKind::Prosody).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_and_see_presence_across_a_restart_on_ejabberd() -> anyhow::Result<()> {
    two_users_chat_and_see_presence_across_a_restart(ServerKind::Ejabberd).await
}

async fn two_users_chat_and_see_presence_across_a_restart(kind: ServerKind) -> anyhow::Result<()> {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Trace);
    let mut server = kind.start(&[])?;
    server.register("alice", "pw-alice")?;
    server.register("bob", "pw-bob")?;
    let mut alice = XmppUser::connect(&*server, "alice", "pw-alice").await?;
    let mut bob = XmppUser::connect(&*server, "bob", "pw-bob").await?;
    assert_eq!(alice.jid.to_string(), "alice@localhost");
    assert_eq!(alice.logins(), 1);
    let bob_jid: Jid = bob.jid.clone().into();

    // Subscription: alice asks, bob approves, alice sees bob online.
    alice.subscribe(&bob.jid).await?;
    let request = bob
        .wait_presence(T, |p| presence_from(p, &alice.jid, PresenceType::Subscribe))
        .await?;
    assert_eq!(request.to.map(|j| j.to_bare()), Some(bob.jid.clone()));
    bob.approve_subscription(&alice.jid).await?;
    alice
        .wait_presence(T, |p| presence_from(p, &bob.jid, PresenceType::None))
        .await?;
    let roster = alice.roster().await?;
    let item = roster
        .items
        .iter()
        .find(|i| i.jid == bob.jid)
        .expect("bob in alice's roster");
    assert_eq!(item.subscription, Subscription::To);

    // Presence with show and status.
    bob.send_presence(Some(Show::Away), Some("out to lunch"))
        .await?;
    let away = alice
        .wait_presence(T, |p| {
            presence_from(p, &bob.jid, PresenceType::None) && p.show == Some(Show::Away)
        })
        .await?;
    assert_eq!(status(&away), Some("out to lunch"));

    // A chat message with an XHTML-IM body and a chat state, then a typing notification.
    let message = with_xhtml(chat(&bob_jid, "hello *bob*"), "hello <strong>bob</strong>")?
        .with_payload(ChatState::Active);
    let id = alice.send_message(message).await?;
    let got = bob
        .wait_message(T, |m| body(m) == Some("hello *bob*"))
        .await?;
    assert_eq!(got.id.as_ref().map(|i| i.0.clone()), Some(id));
    assert_eq!(
        got.from.as_ref().map(|j| j.to_bare()),
        Some(alice.jid.clone())
    );
    let html = xhtml(&got).expect("an XHTML-IM body");
    assert!(html.contains("<strong>bob</strong>"), "{html}");
    assert_eq!(chat_state_of(&got), Some(ChatState::Active));
    alice
        .send_message(chat_state(&bob_jid, ChatState::Composing))
        .await?;
    let typing = bob
        .wait_message(T, |m| chat_state_of(m) == Some(ChatState::Composing))
        .await?;
    assert_eq!(body(&typing), None);

    // A failing wait names what it saw (the subscription presences, say).
    let err = bob
        .wait_message(Duration::ZERO, |m| body(m) == Some("nope"))
        .await
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("timed out") && err.contains("<presence"),
        "{err}"
    );

    // The server restarts: both clients log in again by themselves, their presence is
    // sent again, the roster is kept, and messages flow again.
    let alice_full = alice.full_jid();
    server.restart()?;
    alice.wait_reconnected(RECONNECT).await?;
    bob.wait_reconnected(RECONNECT).await?;
    assert_eq!(alice.logins(), 2);
    assert_eq!(alice.full_jid(), alice_full, "the resource is kept");
    let again = alice
        .wait_presence(T, |p| {
            presence_from(p, &bob.jid, PresenceType::None)
                && p.show == Some(Show::Away)
                && p.id != away.id
        })
        .await?;
    assert_eq!(status(&again), Some("out to lunch"));
    assert!(alice.roster().await?.items.iter().any(|i| i.jid == bob.jid));
    alice.send_chat(&bob_jid, "after the restart").await?;
    bob.wait_message(T, |m| body(m) == Some("after the restart"))
        .await?;
    let alice_jid: Jid = alice.jid.clone().into();
    bob.send_chat(&alice_jid, "and back").await?;
    alice
        .wait_message(T, |m| body(m) == Some("and back"))
        .await?;

    // Logging out tells the contacts.
    bob.disconnect().await;
    alice
        .wait_presence(T, |p| {
            presence_from(
                p,
                &BareJid::new("bob@localhost").unwrap(),
                PresenceType::Unavailable,
            )
        })
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_shakes_hands_and_serves_a_client_on_prosody() -> anyhow::Result<()> {
    a_component_shakes_hands_and_serves_a_client(ServerKind::Prosody).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_shakes_hands_and_serves_a_client_on_ejabberd() -> anyhow::Result<()> {
    a_component_shakes_hands_and_serves_a_client(ServerKind::Ejabberd).await
}

async fn a_component_shakes_hands_and_serves_a_client(kind: ServerKind) -> anyhow::Result<()> {
    let server = kind.start(&[
        Component::new("icq.localhost", SECRET),
        // ejabberd's harness takes one secret for all components, as the bridge has.
        Component::new("conference.localhost", SECRET),
    ])?;
    let server = &*server;

    // A wrong secret is refused.
    let mut intruder = RawComponent::connect(server, "icq.localhost")?;
    intruder.send(&format!("<handshake>{}</handshake>", "0".repeat(40)))?;
    let refused = intruder.wait_for(T, |b| b.contains("not-authorized"))?;
    assert!(!refused.contains("<handshake/>"), "{refused}");

    let mut icq = RawComponent::connect(server, "icq.localhost")?;
    icq.handshake(SECRET)?;

    server.register("alice", "pw-alice")?;
    let mut alice = XmppUser::connect(server, "alice", "pw-alice").await?;
    let full = alice.full_jid().to_string();
    let gateway = jid("icq.localhost");

    // The server lists its components, so clients find the gateway.
    let items = alice.disco_items(&jid("localhost"), None).await?;
    let listed: Vec<String> = items.items.iter().map(|i| i.jid.to_string()).collect();
    assert!(listed.contains(&"icq.localhost".to_owned()), "{listed:?}");

    // A message to a contact on the component reaches it, from the user's full JID.
    alice
        .send_chat(&jid("1002@icq.localhost"), "hi icq")
        .await?;
    let message = icq.take_stanza("message", "hi icq", T)?;
    assert_eq!(attr(&message, "to").as_deref(), Some("1002@icq.localhost"));
    assert_eq!(attr(&message, "from").as_deref(), Some(full.as_str()));

    // IQs to the component are answered by id: disco, registration, an ad-hoc command.
    let (asked, answered) = tokio::join!(
        alice.disco_info(&gateway, None),
        tokio::task::spawn_blocking(move || -> anyhow::Result<RawComponent> {
            let iq = icq.take_stanza("iq", "disco#info", T)?;
            icq.reply(
                &iq,
                "<query xmlns='http://jabber.org/protocol/disco#info'>\
                <identity category='gateway' type='icq' name='ICQ'/>\
                <feature var='jabber:iq:register'/></query>",
            )?;
            Ok(icq)
        })
    );
    let mut icq = answered??;
    let info = asked?;
    assert_eq!(info.identities[0].category, "gateway");
    assert!(info.features.contains("jabber:iq:register"));

    let (asked, answered) = tokio::join!(
        alice.register(&gateway, "1001", "p<&>w"),
        tokio::task::spawn_blocking(move || -> anyhow::Result<(RawComponent, String)> {
            let iq = icq.take_stanza("iq", "jabber:iq:register", T)?;
            icq.reply(&iq, "")?;
            Ok((icq, iq))
        })
    );
    asked?;
    let (mut icq, iq) = answered??;
    assert_eq!(attr(&iq, "type").as_deref(), Some("set"));
    assert!(iq.contains("<username>1001</username>"), "{iq}");
    assert!(iq.contains("<password>p&lt;&amp;&gt;w</password>"), "{iq}");

    let (asked, answered) = tokio::join!(
        async {
            let first = alice.execute_command(&gateway, "login").await?;
            let session = first.attr("sessionid").unwrap_or_default().to_owned();
            let done = alice
                .submit_command(&gateway, "login", &session, &[("uin", "1001")])
                .await?;
            anyhow::Ok((first, done))
        },
        tokio::task::spawn_blocking(move || -> anyhow::Result<(RawComponent, String)> {
            let iq = icq.take_stanza("iq", "action='execute'", T)?;
            icq.reply(
                &iq,
                "<command xmlns='http://jabber.org/protocol/commands' node='login' \
                sessionid='s1' status='executing'><x xmlns='jabber:x:data' type='form'>\
                <field var='uin' type='text-single'/></x></command>",
            )?;
            let submit = icq.take_stanza("iq", "sessionid='s1'", T)?;
            icq.reply(
                &submit,
                "<command xmlns='http://jabber.org/protocol/commands' \
                node='login' sessionid='s1' status='completed'/>",
            )?;
            Ok((icq, submit))
        })
    );
    let (first, done) = asked?;
    let (mut icq, submit) = answered??;
    assert_eq!(first.attr("status"), Some("executing"));
    assert_eq!(done.attr("status"), Some("completed"));
    assert!(submit.contains("<value>1001</value>"), "{submit}");

    // Without its component connected, the server answers for it with an error: Prosody
    // says the component timed out; ejabberd no longer knows the domain and refuses to
    // route to it (no federation).
    icq.close()?;
    let error = alice
        .disco_info(&jid("icq.localhost"), None)
        .await
        .expect_err("an answer from a disconnected component");
    let condition = &error
        .downcast_ref::<IqError>()
        .unwrap()
        .error
        .defined_condition;
    let expected = match kind {
        ServerKind::Prosody => DefinedCondition::RemoteServerTimeout,
        ServerKind::Ejabberd => DefinedCondition::Forbidden,
    };
    assert_eq!(*condition, expected, "{error:#}");
    Ok(())
}

#[test]
fn a_failed_start_reports_prosodys_complaint() {
    // A component named like the virtual host is a config error Prosody exits on.
    let err = match Prosody::start(&[Component::new("localhost", "x")]) {
        Ok(_) => panic!("Prosody started with a clashing component"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("exited during startup") && err.contains("clashes with"),
        "{err}"
    );
}

/// A component's side of XEP-0114 over a plain socket, to check the server's setup
/// without any component library.
struct RawComponent {
    stream: TcpStream,
    domain: String,
    buffer: String,
}

impl RawComponent {
    fn connect(server: &dyn XmppServer, domain: &str) -> anyhow::Result<RawComponent> {
        let stream = TcpStream::connect(server.component_address())?;
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut raw = RawComponent {
            stream,
            domain: domain.to_owned(),
            buffer: String::new(),
        };
        raw.send(&format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>"
        ))?;
        Ok(raw)
    }

    /// `<handshake>` with the hex SHA-1 of the stream id and the secret.
    fn handshake(&mut self, secret: &str) -> anyhow::Result<()> {
        let header = self.wait_for(T, |b| b.contains("<stream:stream") && b.contains("id="))?;
        let id = attr(&header[header.find("<stream:stream").unwrap()..], "id")
            .ok_or_else(|| anyhow::anyhow!("no stream id in {header}"))?;
        let digest = hex::encode(Sha1::digest(format!("{id}{secret}").as_bytes()));
        self.send(&format!("<handshake>{digest}</handshake>"))?;
        self.wait_for(T, |b| b.contains("<handshake/>"))?;
        self.buffer.clear();
        Ok(())
    }

    /// Ends the stream and waits for the server's end of it: the server has then
    /// forgotten the component.
    fn close(&mut self) -> anyhow::Result<()> {
        self.send("</stream:stream>")?;
        match self.wait_for(T, |b| b.contains("</stream:stream>")) {
            Ok(_) => Ok(()),
            Err(e) if format!("{e}").starts_with("closed") => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn send(&mut self, xml: &str) -> anyhow::Result<()> {
        self.stream.write_all(xml.as_bytes())?;
        Ok(())
    }

    /// Reads until `done(buffer)`; returns the buffer.
    fn wait_for(
        &mut self,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        while !done(&self.buffer) {
            if Instant::now() > deadline {
                anyhow::bail!("timed out; received: {}", self.buffer);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => anyhow::bail!("closed; received: {}", self.buffer),
                Ok(n) => self.buffer += &String::from_utf8_lossy(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.buffer.clone())
    }

    /// Removes and returns the first complete `<name ...>` stanza containing `needle`
    /// (Prosody writes each stanza whole, without nesting one in another of its kind).
    fn take_stanza(
        &mut self,
        name: &str,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let find = |buffer: &str| -> Option<(usize, usize)> {
            let open = format!("<{name} ");
            let close = format!("</{name}>");
            let mut from = 0;
            while let Some(start) = buffer[from..].find(&open).map(|i| i + from) {
                let head_end = buffer[start..].find('>')? + start;
                let end = if buffer[..head_end].ends_with('/') {
                    head_end + 1
                } else {
                    buffer[start..].find(&close)? + start + close.len()
                };
                if buffer[start..end].contains(needle) {
                    return Some((start, end));
                }
                from = end;
            }
            None
        };
        self.wait_for(timeout, |b| find(b).is_some())?;
        let (start, end) = find(&self.buffer).expect("found above");
        let stanza = self.buffer[start..end].to_owned();
        self.buffer.replace_range(start..end, "");
        Ok(stanza)
    }

    /// Answers the IQ request `iq` with a result carrying `payload`.
    fn reply(&mut self, iq: &str, payload: &str) -> anyhow::Result<()> {
        let id = attr(iq, "id").ok_or_else(|| anyhow::anyhow!("no id in {iq}"))?;
        let to = attr(iq, "from").ok_or_else(|| anyhow::anyhow!("no from in {iq}"))?;
        let from = attr(iq, "to").unwrap_or_else(|| self.domain.clone());
        self.send(&format!(
            "<iq type='result' id='{id}' from='{from}' to='{to}'>{payload}</iq>"
        ))
    }
}

/// The value of attribute `name` of the first tag in `xml` (quoted either way).
fn attr(xml: &str, name: &str) -> Option<String> {
    let head = &xml[..xml.find('>')?];
    for quote in ['\'', '"'] {
        let key = format!(" {name}={quote}");
        if let Some(i) = head.find(&key) {
            let rest = &head[i + key.len()..];
            return rest.find(quote).map(|end| rest[..end].to_owned());
        }
    }
    None
}

struct L;
impl log::Log for L {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        if r.target().starts_with("tokio_xmpp") || r.target().starts_with("xmpp") {
            eprintln!(
                "{:?} {} {} {}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    % 100000,
                r.level(),
                r.target(),
                r.args()
            );
        }
    }
    fn flush(&self) {}
}
static LOGGER: L = L;
