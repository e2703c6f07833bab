//! The task that owns one ICQ login: its UDP socket, its session machine, reconnection
//! with backoff, and the commands waiting for a connection.
//!
//! Outgoing messages sit in an outbox until the server ACKs them (one part in flight at
//! a time, so parts and messages arrive in order); after a loss the unacknowledged part
//! is sent again on the next connection. The core gets its `Delivery` only after the
//! ACK, so a message is never reported sent before the server has it.

use crate::networks::driver::{self, Session};
use crate::networks::pacing::SendBucket;
use crate::networks::read_buf;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use icq_proto::{
    ClientEvent, ClientSession, DisconnectReason, ExtInfo, LoginFailure, LoginOptions,
    MessageContent, Status, UserRecord,
};
use tokio::net::UdpSocket;

use super::convert;
use crate::core::{
    AuthorizationRequest, ChatId, Contact, Delivery, EventSink, LoginCommand, LoginCredentials,
    Lookup, NetworkEvent, Profile, Reply, SendError,
};

/// Reconnection delays: 1 s doubling to 60 s, plus up to half of that at random.
/// A search or info request unanswered after this long fails.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);
/// ICQ v2 sends stored ("offline") messages with RECEIVE_MESSAGE like live ones, right
/// after the login's CONTACT_LIST. Messages arriving this soon after LOGIN_REPLY are
/// taken as stored ones. A live message sent in that instant would be marked offline
/// too, which only adds its (correct) send time.
const OFFLINE_BURST: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Options {
    /// How often a logged-in connection sends a probe (an extra KEEP_ALIVE).
    pub probe_interval: Duration,
    /// Probes in a row left unacknowledged before the connection is taken for lost.
    pub missed_probes: u32,
    pub login_timeout: Duration,
}

/// A message on its way: the parts not yet acknowledged by the server (text, or an
/// authorization request or answer).
struct Outgoing {
    to: u32,
    parts: VecDeque<MessageContent>,
    warnings: Vec<String>,
    reply: Answer,
}

/// Who waits for an outgoing message's fate.
enum Answer {
    /// The core's `SendText`.
    Delivery(Reply<Delivery>),
    /// The core's `AnswerAuthorization`.
    Done(Reply<()>),
    /// Nobody (an authorization request the login sent by itself).
    Nobody,
}

impl Answer {
    fn ok(self, warnings: Vec<String>) {
        match self {
            Answer::Delivery(reply) => {
                let _ = reply.send(Ok(Delivery {
                    legacy_id: None,
                    warnings,
                }));
            }
            Answer::Done(reply) => {
                let _ = reply.send(Ok(()));
            }
            Answer::Nobody => {}
        }
    }

    fn fail(self, error: SendError) {
        match self {
            Answer::Delivery(reply) => {
                let _ = reply.send(Err(error));
            }
            Answer::Done(reply) => {
                let _ = reply.send(Err(error));
            }
            Answer::Nobody => {}
        }
    }
}

/// A search or info request waiting for the server's answers.
struct PendingLookup {
    /// The query sequence numbers whose answers belong to this lookup.
    seqs: Vec<u16>,
    deadline: Instant,
    reply: Reply<Vec<Profile>>,
    kind: LookupKind,
}

enum LookupKind {
    Search {
        found: Vec<Profile>,
    },
    Info {
        // Boxed: they are large and most lookups are searches.
        basic: Option<Box<UserRecord>>,
        ext: Option<Box<ExtInfo>>,
    },
}

/// How one connection ended.
enum Ended {
    /// Logout, every handle dropped, or a final login failure: the task stops.
    Stop,
    /// The connection was lost (or could not be made); try again.
    Lost { reason: String, was_connected: bool },
}

pub struct LoginTask {
    uin_text: String,
    password: String,
    server: String,
    options: Options,
    events: EventSink,
    commands: crate::core::CommandReceiver,
    /// The contact list (sent at every login: ICQ v2 keeps none on the server), with
    /// each contact's nick once known.
    contacts: BTreeMap<u32, Option<String>>,
    status: Status,
    outbox: VecDeque<Outgoing>,
    /// A message was emitted and not yet made durable (its ACK waits for that).
    unsaved: bool,
    /// The `ack_key`s of the messages whose ACKs wait in the transmit queue.
    acks_waiting: Vec<String>,
    /// Some connection of this task logged in: the password was right.
    ever_logged_in: bool,
    /// This login's pace of message packets (each part of a split message counts).
    sending: SendBucket,
}

/// One connection's state.
struct Connection {
    session: ClientSession,
    socket: UdpSocket,
    /// The status the LOGIN carried: one set while it was under way is sent after.
    login_status: Status,
    logged_in_at: Option<Instant>,
    login_deadline: Instant,
    next_probe: Option<Instant>,
    /// SEQ_NUM of the last probe, checked for its ACK when the next one is due.
    probe: Option<u16>,
    /// Probes in a row that went unacknowledged.
    missed_probes: u32,
    /// SEQ_NUM of the outbox part awaiting its ACK.
    in_flight: Option<u16>,
    /// When the send pacing lets the next outbox part go.
    paced_until: Option<Instant>,
    lookups: Vec<PendingLookup>,
    /// INFO requests asking for a contact's nick: query seq -> UIN.
    nick_requests: BTreeMap<u16, u32>,
    /// Contacts the user just added whose INFO tells whether they require
    /// authorization (then the login asks them for it).
    auth_checks: BTreeSet<u32>,
}

enum Wake {
    Readable(io::Result<()>),
    Command(Option<LoginCommand>),
    Timer,
}

impl Session for LoginTask {
    const NETWORK: &'static str = "ICQ";

    fn events(&self) -> &EventSink {
        &self.events
    }

    fn commands(&mut self) -> &mut crate::core::CommandReceiver {
        &mut self.commands
    }

    fn offline(&mut self, command: LoginCommand) {
        self.command_offline(command);
    }

    async fn connect(&mut self) -> driver::End {
        let Ok(uin) = self.uin_text.parse::<u32>() else {
            return driver::End::Refused(format!("{:?} is not an ICQ number (UIN)", self.uin_text));
        };
        match self.connect(uin).await {
            Ended::Stop => driver::End::Stop,
            Ended::Lost {
                reason,
                was_connected,
            } => driver::End::Lost {
                reason,
                was_online: was_connected,
            },
        }
    }
}

impl LoginTask {
    pub fn new(
        login: LoginCredentials,
        server: String,
        options: Options,
        events: EventSink,
        commands: crate::core::CommandReceiver,
        sending: SendBucket,
    ) -> LoginTask {
        let contacts = login
            .contacts
            .iter()
            .filter_map(|c| Some((c.id.parse::<u32>().ok()?, c.display_name.clone())))
            .collect();
        LoginTask {
            uin_text: login.id,
            password: login.password,
            server,
            options,
            events,
            commands,
            contacts,
            status: convert::status_of(login.presence),
            outbox: VecDeque::new(),
            unsaved: false,
            acks_waiting: Vec::new(),
            ever_logged_in: login.proven,
            sending,
        }
    }

    /// Runs the login until it ends (the networks' one driver), for the tests here.
    #[cfg(test)]
    async fn run(self, pacer: std::sync::Arc<crate::networks::pacing::ConnectPacer>) {
        driver::drive(self.uin_text.clone(), pacer, self).await
    }

    /// A command while there is no connection: messages and contact or status changes
    /// wait for the next login; lookups need the server, so they fail at once.
    fn command_offline(&mut self, command: LoginCommand) {
        match command {
            LoginCommand::Lookup { reply, .. } => {
                let _ = reply.send(Err(SendError::Rejected(
                    "not connected to ICQ right now; try again once the bridge has reconnected"
                        .into(),
                )));
            }
            LoginCommand::SetPresence { presence, reply } => {
                // Announced in the next LOGIN.
                self.status = convert::status_of(presence.state);
                let _ = reply.send(Ok(()));
            }
            LoginCommand::AddContact { id, reply, .. } => match parse_uin(&id) {
                Ok(uin) => {
                    // Sent in the next login's CONTACT_LIST; the nick is asked for then.
                    self.contacts.entry(uin).or_insert(None);
                    self.events
                        .emit(NetworkEvent::ContactChanged(contact(uin, None)));
                    let _ = reply.send(Ok(()));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            other => self.command_common(other),
        }
    }

    /// Commands handled the same way online and offline.
    fn command_common(&mut self, command: LoginCommand) {
        match command {
            LoginCommand::SendText { chat, text, reply } => match chat_uin(&chat) {
                Ok(to) => {
                    let out = convert::outgoing_text(&text.plain);
                    self.outbox.push_back(Outgoing {
                        to,
                        parts: out.parts.into_iter().map(MessageContent::Text).collect(),
                        warnings: out.warnings,
                        reply: Answer::Delivery(reply),
                    });
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            // Sent through the server like text (message types 0x0008 / 0x0007).
            LoginCommand::AnswerAuthorization { id, grant, reply } => match parse_uin(&id) {
                Ok(to) => {
                    self.outbox.push_back(Outgoing {
                        to,
                        parts: [convert::authorization_answer(grant)].into(),
                        warnings: Vec::new(),
                        reply: Answer::Done(reply),
                    });
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            // ICQ v2 has no typing notifications, nor pictures.
            LoginCommand::Typing { .. }
            | LoginCommand::FetchAvatar { .. }
            | LoginCommand::SetAvatar { .. } => {}
            command @ (LoginCommand::JoinRoom { .. }
            | LoginCommand::LeaveRoom { .. }
            | LoginCommand::ListRooms { .. }
            | LoginCommand::Nudge { .. }
            | LoginCommand::SendFile { .. }) => command.fail(SendError::Unsupported("ICQ")),
            // Handled by the callers.
            LoginCommand::Lookup { .. }
            | LoginCommand::SetPresence { .. }
            | LoginCommand::AddContact { .. }
            | LoginCommand::Logout => {}
        }
    }

    /// One connection, from LOGIN to its loss or the end of the login.
    async fn connect(&mut self, uin: u32) -> Ended {
        let lost = |reason: String| Ended::Lost {
            reason,
            was_connected: false,
        };
        let addr = match resolve(&self.server).await {
            Ok(addr) => addr,
            Err(e) => return lost(format!("cannot find the ICQ server {}: {e}", self.server)),
        };
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        // A connected socket: ICMP "port unreachable" comes back as ECONNREFUSED, the
        // quickest sign that the server is gone.
        let socket = match UdpSocket::bind(local).await {
            Ok(s) => s,
            Err(e) => return lost(format!("cannot open a UDP socket: {e}")),
        };
        if let Err(e) = socket.connect(addr).await {
            return lost(format!("cannot reach the ICQ server {addr}: {e}"));
        }
        let now = Instant::now();
        let mut session = ClientSession::new();
        let login_options = LoginOptions {
            status: self.status,
            contacts: self.contacts.keys().copied().collect(),
            ..LoginOptions::default()
        };
        if let Err(e) = session.login(uin, &self.password, login_options, now) {
            // check_credentials refuses these first; the server would refuse them anyway.
            self.fail_final(format!("cannot log in: {e}"));
            return Ended::Stop;
        }
        tracing::debug!(uin, %addr, "ICQ login sent");
        let mut conn = Connection {
            session,
            socket,
            login_status: self.status,
            logged_in_at: None,
            login_deadline: now + self.options.login_timeout,
            next_probe: None,
            probe: None,
            missed_probes: 0,
            in_flight: None,
            paced_until: None,
            lookups: Vec::new(),
            nick_requests: BTreeMap::new(),
            auth_checks: BTreeSet::new(),
        };
        let ended = self.drive(uin, &mut conn).await;
        // Lookups cannot survive the connection; the outbox part is sent again later.
        for lookup in conn.lookups.drain(..) {
            let _ = lookup.reply.send(Err(SendError::Rejected(
                "the connection to ICQ was lost".into(),
            )));
        }
        ended
    }

    async fn drive(&mut self, uin: u32, conn: &mut Connection) -> Ended {
        // ACKs queued on a connection that ended never went out: the server sends
        // those messages again (offline), and they stay counted as unacknowledged.
        self.acks_waiting.clear();
        loop {
            // Until quiet: events may queue packets (INFO requests, the next outbox part).
            loop {
                let mut any = false;
                while let Some(event) = conn.session.poll_event() {
                    any = true;
                    if let Some(ended) = self.on_event(uin, conn, event) {
                        return ended;
                    }
                }
                // The ACKs of received messages wait in the transmit queue: send them
                // only once the messages are on disk, so a crash cannot lose one the
                // server believes delivered (it keeps unACKed ones).
                if std::mem::take(&mut self.unsaved) {
                    self.events.durable().await;
                }
                self.pump_outbox(conn);
                while let Some(datagram) = conn.session.poll_transmit() {
                    if let Err(e) = conn.socket.send(&datagram).await {
                        return self.socket_error(conn, e);
                    }
                }
                // Those ACKs are out: a copy the server sends later is a new message.
                if !self.acks_waiting.is_empty() {
                    let keys = std::mem::take(&mut self.acks_waiting);
                    self.events.emit(NetworkEvent::Acknowledged { keys });
                }
                if !any {
                    break;
                }
            }
            let deadline = self.next_deadline(conn);
            // A core that cannot keep up stops the reading (the server retransmits).
            let wake = tokio::select! {
                ready = driver::readable_when_ready(&self.events, conn.socket.readable()) => match ready {
                    Some(ready) => Wake::Readable(ready),
                    None => continue,
                },
                command = self.commands.recv() => Wake::Command(command),
                () = sleep_until(deadline) => Wake::Timer,
            };
            let now = Instant::now();
            match wake {
                Wake::Readable(Ok(())) => {
                    // Whatever has arrived, so one flush covers a burst.
                    for _ in 0..65 {
                        let session = &mut conn.session;
                        let read = read_buf::read_into(
                            |buf| conn.socket.try_recv(buf),
                            |datagram| {
                                if let Err(e) = session.handle_datagram(datagram, now) {
                                    let bytes = datagram.len();
                                    tracing::warn!(
                                        uin,
                                        bytes,
                                        "dropped an undecodable ICQ datagram: {e}"
                                    );
                                }
                            },
                        );
                        match read {
                            Ok(Some(_)) => {}
                            Ok(None) => break,
                            Err(e) => return self.socket_error(conn, e),
                        }
                    }
                }
                Wake::Readable(Err(e)) => return self.socket_error(conn, e),
                Wake::Command(None | Some(LoginCommand::Logout)) => {
                    conn.session.logout(now);
                    while let Some(datagram) = conn.session.poll_transmit() {
                        let _ = conn.socket.send(&datagram).await;
                    }
                    return Ended::Stop;
                }
                Wake::Command(Some(command)) => self.command_online(conn, command, now),
                Wake::Timer => {
                    if let Some(ended) = self.on_timer(uin, conn, now) {
                        return ended;
                    }
                }
            }
        }
    }

    fn socket_error(&self, conn: &Connection, e: io::Error) -> Ended {
        let reason = if e.kind() == io::ErrorKind::ConnectionRefused {
            "the ICQ server is not answering (connection refused)".to_owned()
        } else {
            format!("network error: {e}")
        };
        Ended::Lost {
            reason,
            was_connected: conn.logged_in_at.is_some(),
        }
    }

    fn next_deadline(&self, conn: &Connection) -> Option<Instant> {
        let login = (conn.logged_in_at.is_none()).then_some(conn.login_deadline);
        [
            conn.session.poll_timeout(),
            login,
            conn.next_probe,
            conn.paced_until,
            conn.lookups.iter().map(|l| l.deadline).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_timer(&mut self, uin: u32, conn: &mut Connection, now: Instant) -> Option<Ended> {
        conn.session.handle_timeout(now);
        if conn.logged_in_at.is_none() && now >= conn.login_deadline {
            if conn.session.login_acknowledged() && !self.ever_logged_in {
                // The server heard the LOGIN and did not accept it: v2 servers without
                // a refusal packet answer a wrong password that way. Trying again
                // would only repeat it.
                tracing::info!(uin, "ICQ login acknowledged but never accepted");
                self.fail_final(
                    "wrong UIN or password (the server acknowledged the login but never \
                     accepted it)"
                        .into(),
                );
                return Some(Ended::Stop);
            }
            return Some(Ended::Lost {
                reason: "the ICQ server did not answer the login".into(),
                was_connected: false,
            });
        }
        if conn.next_probe.is_some_and(|at| at <= now) {
            if let Some(seq) = conn.probe.take() {
                if conn.session.awaits_ack(seq) {
                    conn.missed_probes += 1;
                } else {
                    conn.missed_probes = 0;
                }
            }
            if conn.missed_probes >= self.options.missed_probes {
                // A server that forgot the session ACKs nothing; the retransmission
                // schedule alone would take over two minutes to say so.
                return Some(Ended::Lost {
                    reason: format!(
                        "the ICQ server stopped answering ({} probes in a row unacknowledged)",
                        conn.missed_probes
                    ),
                    was_connected: true,
                });
            }
            conn.next_probe = Some(now + self.options.probe_interval);
            conn.probe = conn.session.probe(now).ok();
        }
        let (expired, waiting): (Vec<_>, Vec<_>) =
            conn.lookups.drain(..).partition(|l| l.deadline <= now);
        conn.lookups = waiting;
        for lookup in expired {
            finish_lookup(lookup, true);
        }
        None
    }

    fn command_online(&mut self, conn: &mut Connection, command: LoginCommand, now: Instant) {
        if conn.logged_in_at.is_none() {
            return self.command_offline(command);
        }
        match command {
            LoginCommand::SetPresence { presence, reply } => {
                let status = convert::status_of(presence.state);
                let result = conn.session.set_status(status, now);
                if result.is_ok() {
                    self.status = status;
                }
                let _ = reply.send(result.map_err(|e| SendError::Rejected(e.to_string())));
            }
            LoginCommand::AddContact { id, reply, .. } => {
                let uin = match parse_uin(&id) {
                    Ok(uin) => uin,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                let result = conn.session.add_contact(uin, now);
                if result.is_ok() {
                    if let Entry::Vacant(entry) = self.contacts.entry(uin) {
                        entry.insert(None);
                        self.events
                            .emit(NetworkEvent::ContactChanged(contact(uin, None)));
                    }
                    request_nick(conn, uin, now);
                    conn.auth_checks.insert(uin);
                }
                let _ = reply.send(result.map_err(|e| SendError::Rejected(e.to_string())));
            }
            LoginCommand::Lookup { query, reply } => {
                let started = match &query {
                    Lookup::Search(text) => conn
                        .session
                        .search(&convert::search_query(text), now)
                        .map(|seq| (vec![seq], LookupKind::Search { found: Vec::new() })),
                    Lookup::Info(id) => match parse_uin(id) {
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            return;
                        }
                        Ok(uin) => conn.session.request_info(uin, now).and_then(|a| {
                            let b = conn.session.request_ext_info(uin, now)?;
                            Ok((
                                vec![a, b],
                                LookupKind::Info {
                                    basic: None,
                                    ext: None,
                                },
                            ))
                        }),
                    },
                };
                match started {
                    Ok((seqs, kind)) => conn.lookups.push(PendingLookup {
                        seqs,
                        deadline: now + LOOKUP_TIMEOUT,
                        reply,
                        kind,
                    }),
                    Err(e) => {
                        let _ = reply.send(Err(SendError::Rejected(e.to_string())));
                    }
                }
            }
            other => self.command_common(other),
        }
    }

    /// Sends the next outbox part when none is awaiting its ACK.
    fn pump_outbox(&mut self, conn: &mut Connection) {
        if conn.logged_in_at.is_none() || conn.in_flight.is_some() {
            return;
        }
        while let Some(out) = self.outbox.front_mut() {
            let Some(part) = out.parts.front() else {
                self.finish_front();
                continue;
            };
            let now = Instant::now();
            conn.paced_until = None;
            if let Err(at) = self.sending.take(now) {
                conn.paced_until = Some(at);
                return;
            }
            match conn.session.send_message(out.to, part, now) {
                Ok(receipt) => {
                    conn.in_flight = Some(receipt.seq);
                    return;
                }
                Err(e) => {
                    if let Some(out) = self.outbox.pop_front() {
                        out.reply.fail(SendError::Rejected(e.to_string()));
                    }
                }
            }
        }
    }

    fn finish_front(&mut self) {
        if let Some(out) = self.outbox.pop_front() {
            out.reply.ok(out.warnings);
        }
    }

    fn on_event(&mut self, uin: u32, conn: &mut Connection, event: ClientEvent) -> Option<Ended> {
        let now = Instant::now();
        match event {
            ClientEvent::LoggedIn { .. } => {
                tracing::info!(uin, "logged in to ICQ");
                conn.logged_in_at = Some(now);
                self.ever_logged_in = true;
                if self.status != conn.login_status {
                    // Set while the LOGIN was under way (a user's presence to the
                    // gateway right after a restart): the server has the one before.
                    if let Err(e) = conn.session.set_status(self.status, now) {
                        tracing::warn!(uin, "could not set the status after login: {e}");
                    }
                }
                conn.next_probe = Some(now + self.options.probe_interval);
                self.events.emit(NetworkEvent::Connected {
                    self_profile: Profile {
                        id: uin.to_string(),
                        display_name: None,
                        details: Vec::new(),
                    },
                });
                let contacts = self
                    .contacts
                    .iter()
                    .map(|(&uin, nick)| contact(uin, nick.clone()))
                    .collect();
                self.events.emit(NetworkEvent::ContactList {
                    groups: Vec::new(),
                    contacts,
                });
                // Nicks may have changed since they were stored.
                let known: Vec<u32> = self.contacts.keys().copied().collect();
                for contact in known {
                    request_nick(conn, contact, now);
                }
            }
            ClientEvent::LoginFailed { reason } => {
                return Some(match reason {
                    LoginFailure::WrongPassword => {
                        self.fail_final(
                            "the ICQ server refused the password (wrong password or unknown UIN)"
                                .into(),
                        );
                        Ended::Stop
                    }
                    other => Ended::Lost {
                        reason: format!("login refused: {other}"),
                        was_connected: false,
                    },
                });
            }
            ClientEvent::Disconnected { reason } => {
                let reason = match reason {
                    DisconnectReason::LoggedOut => return Some(Ended::Stop),
                    DisconnectReason::ServerNotResponding => {
                        "the ICQ server stopped answering".to_owned()
                    }
                    DisconnectReason::ServerClosed { command } => {
                        format!("the ICQ server ended the session (command {command:#06x})")
                    }
                };
                return Some(Ended::Lost {
                    reason,
                    was_connected: true,
                });
            }
            ClientEvent::Message {
                from,
                content:
                    MessageContent::AuthRequest {
                        nick,
                        first,
                        last,
                        reason,
                        ..
                    },
                ..
            } => {
                self.unsaved = true;
                let name = [first.trim(), last.trim()]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                let nick = [nick.trim().to_owned(), name]
                    .into_iter()
                    .find(|s| !s.is_empty());
                self.events
                    .emit(NetworkEvent::AuthorizationRequest(AuthorizationRequest {
                        who: from.to_string(),
                        nick,
                        reason: Some(reason).filter(|r| !r.trim().is_empty()),
                    }));
            }
            ClientEvent::Message {
                from,
                content,
                timestamp,
                ..
            } => {
                let offline = conn
                    .logged_in_at
                    .is_some_and(|at| now.duration_since(at) < OFFLINE_BURST);
                let (kind, text) = convert::incoming_text(&content);
                // The packet's time has minute precision: only worth giving for stored
                // messages (a live one would be dated up to a minute early).
                let sent_at = offline
                    .then(|| timestamp.to_unix_seconds())
                    .flatten()
                    .and_then(|s| u64::try_from(s).ok())
                    .map(|s| s * 1000);
                self.unsaved = true;
                let ack_key = convert::ack_key(from, timestamp.to_unix_seconds(), &content);
                self.acks_waiting.push(ack_key.clone());
                self.events.emit(NetworkEvent::Message {
                    chat: ChatId::Direct(from.to_string()),
                    from: from.to_string(),
                    id: None,
                    kind,
                    text,
                    sent_at,
                    offline,
                    ack_key: Some(ack_key),
                });
            }
            ClientEvent::ContactOnline {
                uin: who, status, ..
            } => self.presence(conn, who, convert::presence_of(status), now),
            ClientEvent::ContactStatus { uin: who, status } => {
                self.presence(conn, who, convert::presence_of(status), now)
            }
            ClientEvent::ContactOffline { uin: who } => {
                self.presence(conn, who, convert::offline_presence(), now)
            }
            ClientEvent::SearchResult { search_seq, user } => {
                if let Some(LookupKind::Search { found }) = lookup_for(conn, search_seq) {
                    found.push(convert::profile_of(&user, None));
                }
            }
            ClientEvent::SearchEnd { search_seq, more } => {
                if more {
                    tracing::debug!(uin, "ICQ search had more results than the server sent");
                }
                self.complete_lookup(conn, search_seq);
            }
            ClientEvent::Info { info_seq, user } => {
                if let Some(contact_uin) = conn.nick_requests.remove(&info_seq) {
                    if conn.auth_checks.remove(&contact_uin) && user.auth_required {
                        self.ask_authorization(contact_uin, &user);
                    }
                    self.learn_nick(contact_uin, &user);
                } else if let Some(LookupKind::Info { basic, .. }) = lookup_for(conn, info_seq) {
                    *basic = Some(Box::new(user));
                    self.complete_lookup(conn, info_seq);
                }
            }
            ClientEvent::ExtInfo { info_seq, info, .. } => {
                if let Some(LookupKind::Info { ext, .. }) = lookup_for(conn, info_seq) {
                    *ext = Some(Box::new(info));
                    self.complete_lookup(conn, info_seq);
                }
            }
            ClientEvent::SystemMessage { text } => {
                self.events.emit(NetworkEvent::Notice { text });
            }
            ClientEvent::MessageAcked { seq } => {
                if conn.in_flight == Some(seq) {
                    conn.in_flight = None;
                    if let Some(out) = self.outbox.front_mut() {
                        out.parts.pop_front();
                        if out.parts.is_empty() {
                            self.finish_front();
                        }
                    }
                }
            }
            ClientEvent::Unhandled { command, params } => {
                tracing::debug!(
                    uin,
                    command = format!("{command:#06x}"),
                    bytes = params.len(),
                    "ignored an ICQ packet"
                );
            }
        }
        None
    }

    /// A contact's presence; contacts the server tells about but we did not know yet
    /// (e.g. added by another client) join the contact list once their nick is known.
    fn presence(
        &mut self,
        conn: &mut Connection,
        who: u32,
        presence: crate::core::Presence,
        now: Instant,
    ) {
        if who != 0 && !self.contacts.contains_key(&who) {
            // Not inserted yet: `learn_nick` adds it with its nick.
            if !conn.nick_requests.values().any(|&u| u == who) {
                request_nick(conn, who, now);
            }
        }
        self.events.emit(NetworkEvent::Presence {
            who: who.to_string(),
            presence,
        });
    }

    /// A contact the user added requires authorization (its AUTHORIZE flag is 0): the
    /// login asks them for it, as the v2 document says clients do ("request permission
    /// to add someone with 'authorize' status"), through the server like a message.
    fn ask_authorization(&mut self, uin: u32, user: &UserRecord) {
        self.outbox.push_back(Outgoing {
            to: uin,
            parts: [convert::authorization_request()].into(),
            warnings: Vec::new(),
            reply: Answer::Nobody,
        });
        let nick = Some(user.nick.trim())
            .filter(|n| !n.is_empty())
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        self.events.emit(NetworkEvent::Notice {
            text: format!(
                "{uin}{nick} requires authorization to be added: the bridge asked them for it. \
                 You will see their presence once they grant it."
            ),
        });
    }

    fn learn_nick(&mut self, uin: u32, user: &UserRecord) {
        let nick = Some(user.nick.trim().to_owned()).filter(|n| !n.is_empty());
        let known = self.contacts.get(&uin);
        if known.is_some_and(|old| *old == nick) {
            return;
        }
        self.contacts.insert(uin, nick.clone());
        self.events
            .emit(NetworkEvent::ContactChanged(contact(uin, nick)));
    }

    /// Answers a lookup once everything it asked for has arrived.
    fn complete_lookup(&mut self, conn: &mut Connection, seq: u16) {
        let Some(i) = conn.lookups.iter().position(|l| l.seqs.contains(&seq)) else {
            return;
        };
        let done = match &conn.lookups[i].kind {
            LookupKind::Search { .. } => true,
            LookupKind::Info { basic, ext } => basic.is_some() && ext.is_some(),
        };
        if done {
            let lookup = conn.lookups.remove(i);
            finish_lookup(lookup, false);
        }
    }

    fn fail_final(&mut self, reason: String) {
        for out in self.outbox.drain(..) {
            out.reply.fail(SendError::LoginGone);
        }
        self.events.emit(NetworkEvent::LoginFailed { reason });
    }
}

fn lookup_for(conn: &mut Connection, seq: u16) -> Option<&mut LookupKind> {
    conn.lookups
        .iter_mut()
        .find(|l| l.seqs.contains(&seq))
        .map(|l| &mut l.kind)
}

/// Replies to a lookup with what it has; `timed_out` when the server stopped answering.
fn finish_lookup(lookup: PendingLookup, timed_out: bool) {
    let result = match lookup.kind {
        LookupKind::Search { found } if !timed_out => Ok(found),
        LookupKind::Info {
            basic: Some(user),
            ext,
            ..
        } => {
            // Servers answer INFO about an unknown UIN with an empty record.
            let empty = [&user.nick, &user.first, &user.last, &user.email]
                .iter()
                .all(|f| f.trim().is_empty());
            if empty {
                Ok(Vec::new())
            } else {
                Ok(vec![convert::profile_of(&user, ext.as_deref())])
            }
        }
        _ => Err(SendError::Rejected("the ICQ server did not answer".into())),
    };
    let _ = lookup.reply.send(result);
}

fn request_nick(conn: &mut Connection, uin: u32, now: Instant) {
    if let Ok(seq) = conn.session.request_info(uin, now) {
        conn.nick_requests.insert(seq, uin);
    }
}

fn contact(uin: u32, nick: Option<String>) -> Contact {
    Contact {
        id: uin.to_string(),
        display_name: nick,
        groups: Vec::new(),
    }
}

fn parse_uin(id: &str) -> Result<u32, SendError> {
    id.trim()
        .parse::<u32>()
        .ok()
        .filter(|&u| u > 0)
        .ok_or_else(|| SendError::Rejected(format!("{id:?} is not an ICQ number (UIN)")))
}

fn chat_uin(chat: &ChatId) -> Result<u32, SendError> {
    match chat {
        ChatId::Direct(id) => parse_uin(id),
        ChatId::Group(_) | ChatId::Room(_) => Err(SendError::Unsupported("ICQ")),
    }
}

async fn resolve(server: &str) -> io::Result<SocketAddr> {
    tokio::net::lookup_host(server)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{FormattedText, LoginHandle, LoginKey, NetworkId};
    use crate::networks::pacing::{ConnectPacer, SendRate};
    use icq_proto::{ClientPacket, MessageTime, ServerPacket};
    use std::net::Ipv4Addr;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    fn pacer() -> Arc<ConnectPacer> {
        Arc::new(ConnectPacer::new(1000))
    }

    fn sending() -> SendBucket {
        SendRate {
            per_second: 2.0,
            burst: 5,
        }
        .bucket()
    }

    const WAIT: Duration = Duration::from_secs(10);

    async fn next_event(
        rx: &mut mpsc::UnboundedReceiver<(LoginKey, NetworkEvent)>,
    ) -> NetworkEvent {
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("an event in time")
            .expect("events open")
            .1
    }

    /// A login of UIN 1001 against a server the test drives by hand: its socket, the
    /// login's handle and events.
    async fn hand_driven_login() -> (
        UdpSocket,
        LoginHandle,
        mpsc::UnboundedReceiver<(LoginKey, NetworkEvent)>,
    ) {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let key = LoginKey {
            user: "@a:x".into(),
            network: NetworkId::Icq,
        };
        let (handle, commands) = LoginHandle::channel();
        let login = LoginCredentials {
            id: "1001".into(),
            password: "pw".into(),
            contacts: Vec::new(),
            proven: false,
            presence: crate::model::PresenceState::Online,
        };
        let options = Options {
            probe_interval: Duration::from_secs(60),
            missed_probes: 2,
            login_timeout: Duration::from_secs(20),
        };
        let addr = server.local_addr().unwrap().to_string();
        let sink = EventSink::new(key, std::sync::Arc::new(tx));
        tokio::spawn(LoginTask::new(login, addr, options, sink, commands, sending()).run(pacer()));
        (server, handle, events)
    }

    /// The client's LOGIN: its sequence number and the client's address.
    async fn receive_login(server: &UdpSocket, buf: &mut [u8]) -> (u16, std::net::SocketAddr) {
        let (n, client) = server.recv_from(buf).await.unwrap();
        let login = ClientPacket::decode(&buf[..n]).unwrap();
        assert!(matches!(login.packet, ClientPacket::Login { .. }));
        (login.seq, client)
    }

    /// The server's ACK of the LOGIN and its LOGIN_REPLY.
    async fn answer_login(server: &UdpSocket, login_seq: u16, client: std::net::SocketAddr) {
        let reply = ServerPacket::LoginReply {
            uin: 1001,
            ip: Ipv4Addr::LOCALHOST,
            login_seq,
        };
        server
            .send_to(&ServerPacket::Ack.encode(login_seq), client)
            .await
            .unwrap();
        server.send_to(&reply.encode(0), client).await.unwrap();
    }

    /// A status set while the LOGIN is under way (it carried the one before) is sent
    /// once the login is through: the XMPP front sets the user's status from a probe
    /// answer that can arrive just then, after a restart.
    #[tokio::test]
    async fn a_status_set_during_the_login_is_sent_after_it() {
        let (server, handle, _events) = hand_driven_login().await;
        let mut buf = [0u8; 8192];
        let (login_seq, client) = receive_login(&server, &mut buf).await;
        // The LOGIN is out, not answered yet: the user goes away.
        let away = crate::model::Presence {
            state: crate::model::PresenceState::Away,
            status: None,
        };
        tokio::time::timeout(
            WAIT,
            handle.request(|reply| LoginCommand::SetPresence {
                presence: away,
                reply,
            }),
        )
        .await
        .unwrap()
        .unwrap();
        answer_login(&server, login_seq, client).await;
        let status = tokio::time::timeout(WAIT, async {
            loop {
                let (n, _) = server.recv_from(&mut buf).await.unwrap();
                if let Ok(frame) = ClientPacket::decode(&buf[..n]) {
                    if let ClientPacket::StatusChange { status } = frame.packet {
                        break status;
                    }
                }
            }
        })
        .await
        .expect("a STATUS_CHANGE after the login");
        assert_eq!(status, Status::AWAY);
    }

    /// A hand-driven server: bad datagrams do not end the session, a stored message
    /// is marked offline with its time, and a send is confirmed only after the ACK.
    #[tokio::test]
    async fn survives_garbage_and_confirms_sends_after_the_ack() {
        let (server, handle, mut events) = hand_driven_login().await;
        let mut buf = [0u8; 8192];
        let (login_seq, client) = receive_login(&server, &mut buf).await;
        answer_login(&server, login_seq, client).await;
        for garbage in [&[0xde, 0xad][..], &[2, 0, 0xdc, 0, 1][..], &[9; 40][..]] {
            server.send_to(garbage, client).await.unwrap();
        }
        let time = MessageTime::from_unix_seconds(1_000_000_020);
        let message = ServerPacket::ReceiveMessage {
            from: 1002,
            time,
            kind: 1,
            text: "stored".into(),
        };
        server.send_to(&message.encode(1), client).await.unwrap();

        assert!(matches!(
            next_event(&mut events).await,
            NetworkEvent::Connected { .. }
        ));
        assert!(matches!(
            next_event(&mut events).await,
            NetworkEvent::ContactList { .. }
        ));
        match next_event(&mut events).await {
            NetworkEvent::Message {
                text,
                offline,
                sent_at,
                ..
            } => {
                assert_eq!(text.plain, "stored");
                assert!(offline);
                assert_eq!(sent_at, Some(1_000_000_020 / 60 * 60 * 1000));
            }
            other => panic!("unexpected {other:?}"),
        }

        let send = tokio::spawn(async move {
            handle
                .request(|reply| LoginCommand::SendText {
                    chat: ChatId::Direct("1002".into()),
                    text: FormattedText::plain("snowman ☃"),
                    reply,
                })
                .await
        });
        let seq = loop {
            let (n, _) = server.recv_from(&mut buf).await.unwrap();
            if let Ok(frame) = ClientPacket::decode(&buf[..n]) {
                if let ClientPacket::SendMessage { to, text, .. } = frame.packet {
                    assert_eq!((to, text.as_str()), (1002, "snowman ?"));
                    break frame.seq;
                }
            }
        };
        assert!(!send.is_finished(), "confirmed before the server's ACK");
        server
            .send_to(&ServerPacket::Ack.encode(seq), client)
            .await
            .unwrap();
        let delivery = tokio::time::timeout(WAIT, send)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(delivery.warnings[0].contains("'?': ☃"), "{delivery:?}");
    }

    type Events = mpsc::UnboundedReceiver<(LoginKey, NetworkEvent)>;

    /// A login task for UIN 1001 against `server`, with short timers.
    fn spawn_login(server: &UdpSocket, options: Options) -> (LoginHandle, Events) {
        let (tx, events) = mpsc::unbounded_channel();
        let key = LoginKey {
            user: "@a:x".into(),
            network: NetworkId::Icq,
        };
        let (handle, commands) = LoginHandle::channel();
        let login = LoginCredentials {
            id: "1001".into(),
            password: "pw".into(),
            contacts: Vec::new(),
            proven: false,
            presence: crate::model::PresenceState::Online,
        };
        let addr = server.local_addr().unwrap().to_string();
        let sink = EventSink::new(key, std::sync::Arc::new(tx));
        tokio::spawn(LoginTask::new(login, addr, options, sink, commands, sending()).run(pacer()));
        (handle, events)
    }

    fn quick_options() -> Options {
        Options {
            probe_interval: Duration::from_millis(300),
            missed_probes: 2,
            login_timeout: Duration::from_secs(1),
        }
    }

    /// The next datagram that decodes as a client packet, and who sent it.
    async fn recv_packet(server: &UdpSocket) -> (ClientPacket, u16, SocketAddr) {
        let mut buf = [0u8; 8192];
        loop {
            let (n, from) = tokio::time::timeout(WAIT, server.recv_from(&mut buf))
                .await
                .expect("a datagram in time")
                .unwrap();
            if let Ok(frame) = ClientPacket::decode(&buf[..n]) {
                return (frame.packet, frame.seq, from);
            }
        }
    }

    /// The next LOGIN (other packets are skipped, unanswered); ACKs it and returns its
    /// SEQ_NUM and sender.
    async fn ack_next_login(server: &UdpSocket) -> (u16, SocketAddr) {
        loop {
            let (packet, seq, from) = recv_packet(server).await;
            if matches!(packet, ClientPacket::Login { .. }) {
                server
                    .send_to(&ServerPacket::Ack.encode(seq), from)
                    .await
                    .unwrap();
                return (seq, from);
            }
        }
    }

    /// An intake whose `durable` resolves only when the test says so.
    struct GatedIntake {
        events: mpsc::UnboundedSender<NetworkEvent>,
        open: tokio::sync::watch::Receiver<bool>,
    }

    impl crate::core::EventIntake for GatedIntake {
        fn accept(&self, _: &LoginKey, event: NetworkEvent) {
            let _ = self.events.send(event);
        }
        fn durable(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
            let mut open = self.open.clone();
            Box::pin(async move {
                let _ = open.wait_for(|o| *o).await;
            })
        }
        fn backlogged(&self, _: &LoginKey) -> bool {
            false
        }
        fn ready<'a>(
            &'a self,
            _: &'a LoginKey,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
            Box::pin(std::future::ready(()))
        }
    }

    /// A received message is acknowledged to the server only once the core has it on
    /// disk: the server keeps what is not acknowledged, so a crash cannot lose it.
    #[tokio::test]
    async fn received_messages_are_acknowledged_only_once_durable() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (tx, mut events) = mpsc::unbounded_channel();
        let (open_tx, open) = tokio::sync::watch::channel(false);
        let key = LoginKey {
            user: "@a:x".into(),
            network: NetworkId::Icq,
        };
        let (_handle, commands) = LoginHandle::channel();
        let login = LoginCredentials {
            id: "1001".into(),
            password: "pw".into(),
            contacts: Vec::new(),
            proven: false,
            presence: crate::model::PresenceState::Online,
        };
        let addr = server.local_addr().unwrap().to_string();
        let sink = EventSink::new(key, std::sync::Arc::new(GatedIntake { events: tx, open }));
        tokio::spawn(
            LoginTask::new(login, addr, quick_options(), sink, commands, sending()).run(pacer()),
        );
        let (login_seq, client) = ack_next_login(&server).await;
        let reply = ServerPacket::LoginReply {
            uin: 1001,
            ip: Ipv4Addr::LOCALHOST,
            login_seq,
        };
        server.send_to(&reply.encode(0), client).await.unwrap();
        let message = ServerPacket::ReceiveMessage {
            from: 1002,
            time: MessageTime::from_unix_seconds(1_000_000_020),
            kind: 1,
            text: "keep me".into(),
        };
        server.send_to(&message.encode(1), client).await.unwrap();
        // The message reached the core, but no ACK for it while it is not durable.
        let arrived = async {
            loop {
                if let Some(NetworkEvent::Message { .. }) = events.recv().await {
                    return;
                }
            }
        };
        tokio::time::timeout(WAIT, arrived)
            .await
            .expect("the message");
        let acked = |packet: &ClientPacket, seq: u16| *packet == ClientPacket::Ack && seq == 1;
        let early = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                let (packet, seq, _) = recv_packet(&server).await;
                if acked(&packet, seq) {
                    return;
                }
            }
        })
        .await;
        assert!(early.is_err(), "acknowledged before it was on disk");
        open_tx.send(true).unwrap();
        loop {
            let (packet, seq, _) = recv_packet(&server).await;
            if acked(&packet, seq) {
                break;
            }
        }
    }

    /// A server that ACKs the LOGIN and then stays silent refused the password: a
    /// first login ends there, with a notice, and is not tried again.
    #[tokio::test]
    async fn acknowledged_but_unanswered_first_login_fails_for_good() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (_handle, mut events) = spawn_login(&server, quick_options());
        ack_next_login(&server).await;
        match next_event(&mut events).await {
            NetworkEvent::LoginFailed { reason } => assert_eq!(
                reason,
                "wrong UIN or password (the server acknowledged the login but never accepted it)"
            ),
            other => panic!("unexpected {other:?}"),
        }
        // The task ended: it dropped its end of the event channel.
        let ended = tokio::time::timeout(WAIT, events.recv()).await;
        assert!(matches!(ended, Ok(None)), "{ended:?}");
    }

    /// A LOGIN nobody acknowledges (server down) is tried again.
    #[tokio::test]
    async fn unacknowledged_login_is_tried_again() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (_handle, mut events) = spawn_login(&server, quick_options());
        let (first, ..) = recv_packet(&server).await;
        assert!(matches!(first, ClientPacket::Login { .. }));
        match next_event(&mut events).await {
            NetworkEvent::Disconnected { reason, will_retry } => {
                assert!(will_retry);
                assert_eq!(reason, "the ICQ server did not answer the login");
            }
            other => panic!("unexpected {other:?}"),
        }
        loop {
            let (packet, ..) = recv_packet(&server).await;
            if matches!(packet, ClientPacket::Login { .. }) {
                break;
            }
        }
    }

    /// A server that stops acknowledging is noticed after `missed_probes` probes; a
    /// login that worked before then meets silence after its LOGIN's ACK and is
    /// tried again instead of failing.
    #[tokio::test]
    async fn unanswered_probes_end_the_connection_and_a_known_login_retries() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (_handle, mut events) = spawn_login(&server, quick_options());
        let (login_seq, client) = ack_next_login(&server).await;
        let reply = ServerPacket::LoginReply {
            uin: 1001,
            ip: Ipv4Addr::LOCALHOST,
            login_seq,
        };
        server.send_to(&reply.encode(0), client).await.unwrap();
        assert!(matches!(
            next_event(&mut events).await,
            NetworkEvent::Connected { .. }
        ));
        let connected = Instant::now();
        assert!(matches!(
            next_event(&mut events).await,
            NetworkEvent::ContactList { .. }
        ));
        // From now on the server ACKs nothing: the probes go unanswered.
        let mut probes = 0;
        let (reason, will_retry) = loop {
            tokio::select! {
                (packet, ..) = recv_packet(&server) => {
                    if packet == ClientPacket::KeepAlive {
                        probes += 1;
                    }
                }
                event = next_event(&mut events) => match event {
                    NetworkEvent::Disconnected { reason, will_retry } => break (reason, will_retry),
                    other => panic!("unexpected {other:?}"),
                },
            }
        };
        assert!(will_retry);
        assert_eq!(
            reason,
            "the ICQ server stopped answering (2 probes in a row unacknowledged)"
        );
        assert_eq!(probes, 2);
        let noticed = connected.elapsed();
        assert!(
            noticed >= Duration::from_millis(900) && noticed < Duration::from_secs(3),
            "noticed after {noticed:?}"
        );

        // The next LOGIN is acknowledged and left unanswered, twice: not a wrong
        // password for a login that worked, so it keeps trying.
        for _ in 0..2 {
            let (_, from) = ack_next_login(&server).await;
            assert_ne!(from, client, "a fresh socket for each connection");
        }
        assert!(
            events.try_recv().is_err(),
            "no LoginFailed, no second notice"
        );
    }
}
