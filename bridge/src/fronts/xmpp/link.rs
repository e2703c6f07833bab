//! One XEP-0114 component connection to the XMPP server (the gateway of one network, or
//! the rooms service), kept up with backoff, on `tokio-xmpp`'s XML stream.
//!
//! The login is done here rather than with `tokio_xmpp::Component`, whose stream ends at
//! the first stanza `xmpp-parsers` cannot read (any user could cut the gateway off) and
//! at the first quiet minute: here an unreadable stanza is handed on to be answered with
//! an error, and quiet is filled with pings.
//!
//! **Fences.** A stanza written to the socket is not yet handled by the server. A
//! delivery ([`Link::deliver`]) writes its stanzas, then a ping (XEP-0199) to the server
//! domain; the server handles a connection's stanzas in order, so its answer (a result,
//! or an error if it has no ping module) means the stanzas before it were routed: to
//! the user's sessions, or to their offline store. Deliveries that come while a ping is
//! out share the next one. Only then does the outbox let the entry go; a connection lost
//! before the answer leaves the entry for a retry (which may show it twice, never zero
//! times).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_xmpp::connect::{DnsConfig, ServerConnector, TcpServerConnector};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::component::Handshake;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, RawStanzaHeader, ReadError, StreamElementError, Timeouts, XmppStream,
    XmppStreamElement,
};
use tokio_xmpp::Stanza;

use crate::core::front::Failure;

/// Stanzas queued for writing at most (a full queue makes senders wait).
const OUTGOING_CAPACITY: usize = 256;
/// A keepalive ping when the stream was quiet this long.
const KEEPALIVE: Duration = Duration::from_secs(25);
/// A delivery whose fence the server has not answered in this long counts as failed
/// (uncertain: the server may have it).
const FENCE_TIMEOUT: Duration = Duration::from_secs(30);
/// A write the server does not take in this long ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(20);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where and how to connect.
#[derive(Clone)]
pub struct LinkConfig {
    /// The component's domain (`icq.example.org`).
    pub domain: String,
    /// The XMPP server's domain, whose pings fence deliveries.
    pub server_domain: String,
    /// `host:port` of the server's component port.
    pub address: String,
    pub secret: crate::config::Secret,
}

/// What arrived on a link.
#[derive(Debug)]
pub enum Incoming {
    Stanza(Box<Stanza>),
    /// A stanza `xmpp-parsers` could not read: answer it with an error if it asks for one.
    Invalid {
        kind: &'static str,
        header: RawStanzaHeader,
        error: String,
    },
    /// The link is up (again): the front re-sends what the server forgot.
    Up,
}

enum Out {
    Stanza(Box<Stanza>),
    /// Answered once the server handled everything queued before it.
    Fence(oneshot::Sender<()>),
}

/// A handle on one component connection; cheap to clone.
#[derive(Clone)]
pub struct Link {
    inner: Arc<LinkInner>,
}

struct LinkInner {
    domain: String,
    outgoing: mpsc::Sender<Out>,
    up: watch::Receiver<bool>,
}

impl Link {
    /// Starts the connection task; what arrives goes to `incoming` with `index`.
    pub fn start(
        config: LinkConfig,
        index: usize,
        incoming: mpsc::Sender<(usize, Incoming)>,
    ) -> Link {
        let (outgoing, rx) = mpsc::channel(OUTGOING_CAPACITY);
        let (up_tx, up) = watch::channel(false);
        let domain = config.domain.clone();
        tokio::spawn(connection_task(config, index, rx, incoming, up_tx));
        Link {
            inner: Arc::new(LinkInner {
                domain,
                outgoing,
                up,
            }),
        }
    }

    pub fn domain(&self) -> &str {
        &self.inner.domain
    }

    pub fn is_up(&self) -> bool {
        *self.inner.up.borrow()
    }

    /// Resolves once the link is up.
    pub async fn wait_up(&self) {
        let mut up = self.inner.up.clone();
        let _ = up.wait_for(|up| *up).await;
    }

    /// Sends a stanza that needs no confirmation (an answer, a presence); dropped while
    /// the link is down (what matters is sent again when it comes back up).
    pub async fn send(&self, stanza: impl Into<Stanza>) {
        if !self.is_up() {
            tracing::debug!(domain = %self.inner.domain, "link down: a stanza is dropped");
            return;
        }
        let _ = self
            .inner
            .outgoing
            .send(Out::Stanza(Box::new(stanza.into())))
            .await;
    }

    /// Sends stanzas and resolves once the server handled them (see the module docs).
    pub async fn deliver(&self, stanzas: Vec<Stanza>) -> Result<(), Failure> {
        if !self.is_up() {
            return Err(Failure::transient("the XMPP server is not connected"));
        }
        let uncertain = |why: &str| {
            let mut f = Failure::transient(why);
            f.uncertain = true;
            f
        };
        for stanza in stanzas {
            if self
                .inner
                .outgoing
                .send(Out::Stanza(Box::new(stanza)))
                .await
                .is_err()
            {
                return Err(uncertain("the XMPP connection ended"));
            }
        }
        let (tx, rx) = oneshot::channel();
        if self.inner.outgoing.send(Out::Fence(tx)).await.is_err() {
            return Err(uncertain("the XMPP connection ended"));
        }
        match tokio::time::timeout(FENCE_TIMEOUT, rx).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(uncertain(
                "the XMPP connection ended before the server confirmed",
            )),
            Err(_) => Err(uncertain("the XMPP server did not confirm in time")),
        }
    }
}

async fn connection_task(
    config: LinkConfig,
    index: usize,
    mut outgoing: mpsc::Receiver<Out>,
    incoming: mpsc::Sender<(usize, Incoming)>,
    up: watch::Sender<bool>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut failures = 0u32;
    loop {
        match connect(&config).await {
            Ok(stream) => {
                tracing::info!(domain = %config.domain, "connected to the XMPP server");
                backoff = BACKOFF_MIN;
                failures = 0;
                let _ = up.send(true);
                if incoming.send((index, Incoming::Up)).await.is_err() {
                    return;
                }
                let why = run(stream, &config, index, &mut outgoing, &incoming).await;
                let _ = up.send(false);
                match why {
                    End::FrontGone => return,
                    End::Lost(why) => tracing::warn!(
                        domain = %config.domain,
                        "the XMPP server connection ended: {why}; reconnecting"
                    ),
                }
            }
            Err(e) => {
                failures += 1;
                // Every failure while it is new, then now and then: a server down for
                // an hour should not fill the log.
                if failures <= 3 || failures.is_multiple_of(20) {
                    tracing::warn!(
                        domain = %config.domain,
                        "cannot connect to the XMPP server at {} ({e}); retrying in {backoff:?}",
                        config.address
                    );
                }
            }
        }
        // What waited for the lost connection fails now (its senders retry).
        while let Ok(out) = outgoing.try_recv() {
            drop(out);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
        if incoming.is_closed() {
            return;
        }
    }
}

type Stream = XmppStream<<TcpServerConnector as ServerConnector>::Stream>;

/// Opens the stream and does the component handshake (XEP-0114).
async fn connect(config: &LinkConfig) -> Result<Stream, String> {
    let jid: Jid = BareJid::new(&config.domain)
        .map_err(|e| format!("{:?} is not a domain: {e}", config.domain))?
        .into();
    let connector = TcpServerConnector::from(DnsConfig::addr(&config.address));
    let timeouts = Timeouts {
        read_timeout: KEEPALIVE * 2,
        response_timeout: Duration::from_secs(20),
    };
    let handshake = async {
        let (mut pending, _) = connector
            .connect(&jid, ns::COMPONENT, timeouts)
            .await
            .map_err(|e| e.to_string())?;
        let header = pending.take_header();
        let id = header
            .id
            .ok_or("the server's stream header has no id")?
            .into_owned();
        let mut stream: Stream = pending.skip_features();
        stream
            .send(&XmppStreamElement::ComponentHandshake(
                Handshake::from_stream_id_and_password(id, config.secret.expose()),
            ))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match stream.next().await {
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::ComponentHandshake(_)))) => {
                    return Ok(stream)
                }
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::StreamError(e)))) => {
                    return Err(format!(
                        "the server refused the component ({}): check the secret and that it defines {}",
                        e.0, config.domain
                    ))
                }
                Some(Ok(_)) => {
                    return Err("the server answered the handshake with something else".into())
                }
                Some(Err(ReadError::SoftTimeout)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the server closed the connection".into()),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), handshake)
        .await
        .map_err(|_| "the server did not answer the handshake".to_owned())?
}

enum End {
    Lost(String),
    FrontGone,
}

/// The pings out: the one in flight (its id and the fences it answers) and the fences
/// that came after it was sent (they need a ping of their own).
#[derive(Default)]
struct Fences {
    in_flight: Option<(String, Vec<oneshot::Sender<()>>)>,
    next: Vec<oneshot::Sender<()>>,
    counter: u64,
    /// Keepalive pings out (answered or not, they only keep the stream busy).
    keepalives: VecDeque<String>,
}

impl Fences {
    fn ping(&mut self, config: &LinkConfig, what: &str) -> Stanza {
        self.counter += 1;
        let id = format!("rb-{what}-{}", self.counter);
        let mut iq = Iq::from_get(id, Ping);
        if let (Ok(from), Ok(to)) = (
            BareJid::new(&config.domain),
            BareJid::new(&config.server_domain),
        ) {
            iq = iq.with_from(from.into()).with_to(to.into());
        }
        iq.into()
    }

    /// Takes the fences waiting for a new ping, if none is in flight: the ping to send.
    fn start(&mut self, config: &LinkConfig) -> Option<Stanza> {
        if self.in_flight.is_some() || self.next.is_empty() {
            return None;
        }
        let ping = self.ping(config, "fence");
        let id = stanza_id(&ping).to_owned();
        self.in_flight = Some((id, std::mem::take(&mut self.next)));
        Some(ping)
    }

    /// Whether `id` answers one of our pings (then it is consumed).
    fn answered(&mut self, id: &str) -> bool {
        if self.in_flight.as_ref().is_some_and(|(f, _)| f == id) {
            if let Some((_, waiters)) = self.in_flight.take() {
                for w in waiters {
                    let _ = w.send(());
                }
            }
            return true;
        }
        if let Some(i) = self.keepalives.iter().position(|k| k == id) {
            self.keepalives.remove(i);
            return true;
        }
        false
    }
}

/// The domain a stanza is addressed to, when it is not this component's (nor one of its
/// users', `x@icq.example.org`): a server that mixes up its component connections.
fn addressed_elsewhere(stanza: &Stanza, domain: &str) -> Option<String> {
    let to = match stanza {
        Stanza::Iq(iq) => iq.to(),
        Stanza::Message(m) => m.to.as_ref(),
        Stanza::Presence(p) => p.to.as_ref(),
    }?;
    let to = to.domain().as_str();
    (!to.eq_ignore_ascii_case(domain)).then(|| to.to_owned())
}

fn stanza_id(stanza: &Stanza) -> &str {
    match stanza {
        Stanza::Iq(iq) => iq.id(),
        _ => "",
    }
}

async fn run(
    mut stream: Stream,
    config: &LinkConfig,
    index: usize,
    outgoing: &mut mpsc::Receiver<Out>,
    incoming: &mpsc::Sender<(usize, Incoming)>,
) -> End {
    let mut fences = Fences::default();
    let mut misrouting_told = false;
    let mut quiet = tokio::time::interval(KEEPALIVE);
    quiet.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    quiet.reset();
    // A server that stops reading (hung) must not hold the task in a write forever.
    macro_rules! write {
        ($stanza:expr) => {
            match tokio::time::timeout(
                WRITE_TIMEOUT,
                stream.feed(&XmppStreamElement::Stanza($stanza)),
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return End::Lost(e.to_string()),
                Err(_) => return End::Lost("the server stopped reading".into()),
            }
        };
    }
    macro_rules! flush {
        () => {
            match tokio::time::timeout(
                WRITE_TIMEOUT,
                SinkExt::<&XmppStreamElement>::flush(&mut stream),
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return End::Lost(e.to_string()),
                Err(_) => return End::Lost("the server stopped reading".into()),
            }
        };
    }
    loop {
        tokio::select! {
            item = stream.next() => {
                quiet.reset();
                let item = match item {
                    None => return End::Lost("the server closed the stream".into()),
                    Some(Err(ReadError::SoftTimeout)) => {
                        let ping = fences.ping(config, "keepalive");
                        fences.keepalives.push_back(stanza_id(&ping).to_owned());
                        write!(ping);
                        flush!();
                        continue;
                    }
                    Some(Err(e)) => return End::Lost(e.to_string()),
                    Some(Ok(item)) => item,
                };
                let arrived = match item {
                    FallibleStreamElement::Ok(XmppStreamElement::Stanza(stanza)) => {
                        if let Some(other) = addressed_elsewhere(&stanza, &config.domain) {
                            if !std::mem::replace(&mut misrouting_told, true) {
                                tracing::warn!(
                                    domain = %config.domain,
                                    "the XMPP server sent a stanza for {other} on this component's \
                                     connection: it routes one component's traffic to another's \
                                     (with ejabberd: do not list the components under `hosts:` of \
                                     the listener, give it one `password`; see the README); \
                                     deliveries will wait for confirmations that go astray"
                                );
                            }
                        }
                        if let Stanza::Iq(Iq::Result { id, .. } | Iq::Error { id, .. }) = &stanza {
                            if fences.answered(id) {
                                if let Some(ping) = fences.start(config) {
                                    write!(ping);
                                    flush!();
                                }
                                continue;
                            }
                        }
                        Incoming::Stanza(Box::new(stanza))
                    }
                    FallibleStreamElement::Ok(XmppStreamElement::StreamError(e)) => {
                        return End::Lost(format!("stream error: {}", e.0))
                    }
                    FallibleStreamElement::Ok(_) => continue,
                    FallibleStreamElement::Err(StreamElementError::InvalidStanza { name, header, error, .. }) => {
                        Incoming::Invalid {
                            kind: match name.to_string().as_str() {
                                "iq" => "iq",
                                "message" => "message",
                                _ => "presence",
                            },
                            header,
                            error: error.to_string(),
                        }
                    }
                    FallibleStreamElement::Err(e) => {
                        tracing::debug!(domain = %config.domain, "ignored an unreadable element: {e}");
                        continue;
                    }
                };
                // Waiting here slows the reading of the stream when the front is busy.
                if incoming.send((index, arrived)).await.is_err() {
                    return End::FrontGone;
                }
            }
            out = outgoing.recv() => {
                let Some(out) = out else { return End::FrontGone };
                match out {
                    Out::Stanza(stanza) => write!(*stanza),
                    Out::Fence(waiter) => {
                        fences.next.push(waiter);
                        if let Some(ping) = fences.start(config) {
                            write!(ping);
                        }
                    }
                }
                if outgoing.is_empty() {
                    flush!();
                }
            }
            _ = quiet.tick() => {
                let ping = fences.ping(config, "keepalive");
                fences.keepalives.push_back(stanza_id(&ping).to_owned());
                // Unanswered keepalives are forgotten after a few (the stream's own
                // timeouts end a dead connection).
                while fences.keepalives.len() > 4 {
                    fences.keepalives.pop_front();
                }
                write!(ping);
                flush!();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_xmpp::parsers::message::Message;
    use tokio_xmpp::parsers::presence::Presence;

    #[test]
    fn stanzas_for_another_component_are_told_apart() {
        let message =
            |to: &str| -> Stanza { Message::chat(Some(Jid::new(to).expect("a JID"))).into() };
        assert_eq!(
            addressed_elsewhere(&message("1002@icq.example.org"), "icq.example.org"),
            None
        );
        assert_eq!(
            addressed_elsewhere(&message("ICQ.example.org"), "icq.example.org"),
            None
        );
        assert_eq!(
            addressed_elsewhere(&message("bob@msn.example.org"), "icq.example.org"),
            Some("msn.example.org".to_owned())
        );
        let answer: Stanza =
            Iq::empty_result(Jid::new("msn.example.org").expect("a JID"), "rb-fence-1").into();
        assert_eq!(
            addressed_elsewhere(&answer, "icq.example.org"),
            Some("msn.example.org".to_owned())
        );
        // No `to` (the server's own stream-level answers): nothing to say.
        assert_eq!(
            addressed_elsewhere(&Presence::available().into(), "icq.example.org"),
            None
        );
    }
}
