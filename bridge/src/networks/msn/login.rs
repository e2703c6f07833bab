//! The login task: one notification-server connection at a time (dispatch redirect,
//! Passport, SYN, presence, keepalive), reconnection with backoff, and the table of
//! switchboards that routes conversations to `ChatId`s.

use crate::networks::driver::{self, Session};
use crate::networks::pacing::SendBucket;
use crate::networks::read_buf;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use msn_proto::{
    CloseReason, List, MessageKind as MsnKind, MsnObject, NsConfig, NsEvent, NsSession,
    ServerError, Status,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::format;
use super::passport::{self, PassportError};
use super::switchboard::{Grant, Outgoing, SbCmd, SbReport, SbStart, SbTask};
use super::MsnConfig;
use crate::core::{
    ChatId, Contact, EventSink, FormattedText, Group, LoginCommand, LoginCredentials, MessageKind,
    NetworkEvent, Presence, PresenceState, Profile, SendError,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// From TCP connect to the contact list.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_NS_REDIRECTS: usize = 4;
/// A contact's typing indicator ends after this without a new `TypingUser`.
const TYPING_TIMEOUT: Duration = Duration::from_secs(6);
/// Our own typing notifications go out at most this often per chat.
const TYPING_INTERVAL: Duration = Duration::from_secs(4);
/// Passport failures that come back the same every time (TLS, certificate) end the
/// login after this many tries in a row.
pub const PERSISTENT_TRIES: u32 = 3;
/// What to do about refused credentials.
const CHECK_PASSWORD: &str =
    "check your password and log in again with `login msn <e-mail> <password>`";

/// How a connection ended.
enum End {
    /// `Logout`, or every handle dropped.
    Logout,
    /// Lost or refused for now: retry with backoff.
    Lost(String),
    /// Will fail the same way until someone changes something: retried
    /// [`PERSISTENT_TRIES`] times, then `Failed`.
    Persistent(String),
    /// Final refusal (credentials, account): `LoginFailed`.
    Failed(String),
    /// Final, without removing the login (signed in elsewhere).
    Stop(String),
}

enum Hop {
    Redirect(String),
    End(End),
}

/// A request to the notification server waiting for its reply (by TrID).
enum Pending {
    Status(crate::core::Reply<()>),
    Add {
        email: String,
        group: Option<u32>,
        reply: crate::core::Reply<()>,
    },
}

/// One switchboard as the login task sees it.
struct Sb {
    tx: mpsc::UnboundedSender<SbCmd>,
    /// The contact it was opened for (outgoing switchboards).
    target: Option<String>,
    /// Other people in it: (email, friendly name).
    participants: Vec<(String, String)>,
    session: Option<String>,
    /// Set once it has had two other participants: a group conversation from then on.
    group: Option<String>,
}

impl Sb {
    fn chat_for(&self, from: &str) -> ChatId {
        match &self.group {
            Some(g) => ChatId::Group(g.clone()),
            None => ChatId::Direct(from.to_string()),
        }
    }
}

pub struct Login {
    cfg: Arc<MsnConfig>,
    email: String,
    password: String,
    events: EventSink,
    commands: crate::core::CommandReceiver,
    /// Commands received while not connected; handled after the next login.
    queued: VecDeque<LoginCommand>,
    /// The status to set at every login (changed by `SetPresence`).
    status: Status,
    sbs: HashMap<u64, Sb>,
    next_sb: u64,
    sb_tx: mpsc::UnboundedSender<(u64, Box<SbReport>)>,
    sb_rx: mpsc::UnboundedReceiver<(u64, Box<SbReport>)>,
    grants: HashMap<u32, oneshot::Sender<Grant>>,
    requests: HashMap<u32, Pending>,
    /// Forward-list contacts by e-mail, as last reported to the core.
    contacts: HashMap<String, Contact>,
    /// The real friendly names known by e-mail (from any list, `ADD`, `NLN`/`ILN`, `REA`,
    /// and the stored contacts at start). Servers often give the address as the nick
    /// (clients send it in `ADD`); that never replaces a name known here.
    names: HashMap<String, String>,
    groups: Vec<Group>,
    /// Contacts currently seen online (reported offline when the connection drops).
    online: HashSet<String>,
    typing_in: HashMap<(ChatId, String), Instant>,
    typing_out: HashMap<ChatId, Instant>,
    /// Set by `LoggedIn`, taken when the connection ends.
    logged_in: bool,
    /// Connections in a row that ended in a [`End::Persistent`] failure.
    persistent_failures: u32,
    friendly_name: String,
    /// This login's pace of messages, all its conversations together.
    sending: SendBucket,
    /// Messages (and nudges) the pacing holds back, in order, and when the first may go.
    paced: VecDeque<LoginCommand>,
    paced_until: Option<Instant>,
    /// The user's own display picture: announced in every `CHG`, served by every
    /// switchboard.
    picture: Option<(MsnObject, Arc<[u8]>)>,
}

impl Session for Login {
    const NETWORK: &'static str = "MSN";

    fn events(&self) -> &EventSink {
        &self.events
    }

    fn commands(&mut self) -> &mut crate::core::CommandReceiver {
        &mut self.commands
    }

    fn offline(&mut self, command: LoginCommand) {
        // Typing is momentary: stale by the time a connection is back.
        if !matches!(command, LoginCommand::Typing { .. }) {
            self.queued.push_back(command);
        }
    }

    async fn connect(&mut self) -> driver::End {
        let end = self.connect().await;
        self.connection_ended();
        let was_online = std::mem::take(&mut self.logged_in);
        if !matches!(end, End::Persistent(_)) {
            self.persistent_failures = 0;
        }
        match end {
            End::Logout => driver::End::Stop,
            End::Failed(reason) => driver::End::Refused(reason),
            End::Stop(reason) => driver::End::Ended(reason),
            End::Lost(reason) => driver::End::Lost { reason, was_online },
            End::Persistent(reason) => {
                self.persistent_failures += 1;
                if self.persistent_failures >= PERSISTENT_TRIES {
                    driver::End::Refused(format!(
                        "{reason}. Gave up after {PERSISTENT_TRIES} tries"
                    ))
                } else {
                    driver::End::Lost { reason, was_online }
                }
            }
        }
    }

    fn finish(&mut self) {
        for sb in self.sbs.values() {
            let _ = sb.tx.send(SbCmd::Leave);
        }
        for cmd in std::mem::take(&mut self.queued) {
            cmd.fail(SendError::LoginGone);
        }
    }
}

impl Login {
    pub fn new(
        cfg: Arc<MsnConfig>,
        creds: LoginCredentials,
        events: EventSink,
        commands: crate::core::CommandReceiver,
        sending: SendBucket,
    ) -> Login {
        let (sb_tx, sb_rx) = mpsc::unbounded_channel();
        let names = creds
            .contacts
            .iter()
            .filter_map(|c| {
                let name = c.display_name.as_deref()?;
                is_real_name(&c.id, name).then(|| (c.id.to_lowercase(), name.to_owned()))
            })
            .collect();
        Login {
            cfg,
            email: creds.id.to_lowercase(),
            password: creds.password,
            events,
            commands,
            queued: VecDeque::new(),
            status: status_of(creds.presence),
            sbs: HashMap::new(),
            next_sb: 1,
            sb_tx,
            sb_rx,
            grants: HashMap::new(),
            requests: HashMap::new(),
            contacts: HashMap::new(),
            names,
            groups: Vec::new(),
            online: HashSet::new(),
            typing_in: HashMap::new(),
            typing_out: HashMap::new(),
            logged_in: false,
            persistent_failures: 0,
            friendly_name: String::new(),
            sending,
            paced: VecDeque::new(),
            paced_until: None,
            picture: None,
        }
    }

    fn emit(&self, event: NetworkEvent) {
        self.events.emit(event);
    }

    /// What a dropped connection invalidates.
    fn connection_ended(&mut self) {
        // Messages the pacing held back go first after the reconnect.
        self.paced_until = None;
        for command in std::mem::take(&mut self.paced).into_iter().rev() {
            self.queued.push_front(command);
        }
        for (_, pending) in self.requests.drain() {
            let reply = match pending {
                Pending::Status(r) | Pending::Add { reply: r, .. } => r,
            };
            let _ = reply.send(Err(SendError::Rejected(
                "the connection to MSN was lost".into(),
            )));
        }
        self.grants.clear(); // waiting switchboards fail their texts
        for who in std::mem::take(&mut self.online) {
            self.emit(NetworkEvent::Presence {
                who,
                presence: Presence {
                    state: PresenceState::Offline,
                    status: None,
                },
            });
        }
    }
}

impl Login {
    /// Dispatch server, then the notification server it redirects to.
    async fn connect(&mut self) -> End {
        let mut addr = self.cfg.server.clone();
        for _ in 0..=MAX_NS_REDIRECTS {
            match self.session(&addr).await {
                Hop::Redirect(next) => {
                    tracing::debug!(email = %self.email, %next, "msn: redirected to a notification server");
                    addr = next;
                }
                Hop::End(end) => return end,
            }
        }
        End::Lost("too many notification-server redirects".into())
    }

    async fn session(&mut self, addr: &str) -> Hop {
        let mut stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Hop::End(End::Lost(format!("cannot connect to {addr}: {e}"))),
            Err(_) => return Hop::End(End::Lost(format!("connecting to {addr} timed out"))),
        };
        let _ = stream.set_nodelay(true);
        let mut config = NsConfig::new(&self.email);
        config.initial_status = Some(self.status);
        config.ping_interval = self.cfg.ping_interval;
        let mut ns = NsSession::new(config, std::time::Instant::now());
        if let Some((object, _)) = &self.picture {
            ns.set_msn_object(Some(&object.to_xml()));
        }
        let mut online = false;
        let login_deadline = Instant::now() + LOGIN_TIMEOUT;
        loop {
            while let Some(event) = ns.poll_event() {
                if let Some(hop) = self.on_ns_event(event, &mut ns, &mut online).await {
                    flush(&mut stream, &mut ns).await;
                    return hop;
                }
            }
            if online {
                while let Some(cmd) = self.queued.pop_front() {
                    self.on_command(cmd, &mut ns);
                }
            }
            if let Err(e) = write(&mut stream, &mut ns).await {
                return Hop::End(End::Lost(format!("write failed: {e}")));
            }
            let ping_due = ns.poll_timeout().map(Instant::from_std);
            let typing_due = self.typing_in.values().min().copied();
            // A core that cannot keep up stops the reading (TCP slows the server down).
            tokio::select! {
                ready = driver::readable_when_ready(&self.events, stream.readable()) => match ready.map(|ready| ready.and_then(|()| {
                    read_buf::read_into(|buf| stream.try_read(buf), |bytes| ns.handle_input(bytes))
                })) {
                    None | Some(Ok(None)) => {}
                    Some(Ok(Some(0))) => return Hop::End(End::Lost("the server closed the connection".into())),
                    Some(Ok(Some(_))) => {}
                    Some(Err(e)) => return Hop::End(End::Lost(format!("connection error: {e}"))),
                },
                _ = sleep_opt(self.paced_until), if online => self.send_paced(&mut ns),
                _ = sleep_opt(ping_due) => ns.handle_timeout(std::time::Instant::now()),
                cmd = self.commands.recv() => match cmd {
                    None | Some(LoginCommand::Logout) => {
                        ns.logout();
                        flush(&mut stream, &mut ns).await;
                        return Hop::End(End::Logout);
                    }
                    Some(cmd) if online => self.on_command(cmd, &mut ns),
                    Some(cmd) => self.queued.push_back(cmd),
                },
                Some((id, report)) = self.sb_rx.recv() => self.on_sb_report(id, *report, &mut ns),
                _ = sleep_opt(typing_due) => self.expire_typing(),
                _ = tokio::time::sleep_until(login_deadline), if !online => {
                    return Hop::End(End::Lost("login timed out".into()));
                }
            }
        }
    }

    /// Handles one notification-server event; `Some` ends this connection.
    async fn on_ns_event(
        &mut self,
        event: NsEvent,
        ns: &mut NsSession,
        online: &mut bool,
    ) -> Option<Hop> {
        match event {
            NsEvent::Redirect { addr } => return Some(Hop::Redirect(addr)),
            NsEvent::NeedTicket { policy } => {
                let ticket = passport::login(
                    &self.cfg.nexus_url,
                    self.cfg.login_url.as_deref(),
                    &self.email,
                    &self.password,
                    &policy,
                )
                .await;
                let end = match ticket {
                    Ok(ticket) => {
                        ns.ticket(&ticket);
                        return None;
                    }
                    // Final at once: retrying a wrong password only risks a lock-out.
                    Err(PassportError::BadCredentials) => End::Failed(format!(
                        "wrong e-mail address or password (Passport refused them): {CHECK_PASSWORD}"
                    )),
                    Err(PassportError::Refused(why)) => End::Failed(why),
                    Err(PassportError::Persistent(why)) => End::Persistent(why),
                    Err(PassportError::Transient(why)) => End::Lost(why),
                };
                return Some(Hop::End(end));
            }
            NsEvent::LoginFailed { reason, error } => {
                return Some(Hop::End(login_error(reason, error)));
            }
            NsEvent::LoggedIn { friendly_name, .. } => {
                self.logged_in = true;
                self.friendly_name = friendly_name.clone();
                self.emit(NetworkEvent::Connected {
                    self_profile: Profile {
                        id: self.email.clone(),
                        display_name: Some(friendly_name),
                        details: Vec::new(),
                    },
                });
            }
            NsEvent::ContactList {
                groups,
                contacts,
                unchanged,
                ..
            } => {
                if !unchanged {
                    self.groups = groups
                        .into_iter()
                        .map(|g| Group {
                            id: g.id.to_string(),
                            name: g.name,
                        })
                        .collect();
                    self.contacts.clear();
                    let mut strangers = Vec::new();
                    let listed: HashSet<String> =
                        contacts.iter().map(|c| c.email.to_lowercase()).collect();
                    // Names of people no longer on any list are forgotten (bounded by the lists).
                    self.names.retain(|email, _| listed.contains(email));
                    for c in contacts {
                        let email = c.email.to_lowercase();
                        let name = self.best_name(&email, &c.friendly_name);
                        if c.lists.contains(List::Forward) {
                            self.contacts.insert(
                                email.clone(),
                                Contact {
                                    id: email,
                                    display_name: name,
                                    groups: c.groups.iter().map(u32::to_string).collect(),
                                },
                            );
                        } else if c.lists.contains(List::Reverse) && !c.lists.contains(List::Block)
                        {
                            strangers.push((email, name.unwrap_or_default()));
                        }
                    }
                    self.emit_contact_list();
                    for (email, name) in strangers {
                        self.suggest_add(&email, &name);
                    }
                }
                *online = true;
            }
            NsEvent::StatusChanged { trid, .. } => {
                if let Some(Pending::Status(reply)) = trid.and_then(|t| self.requests.remove(&t)) {
                    let _ = reply.send(Ok(()));
                }
            }
            NsEvent::Presence {
                email,
                status,
                friendly_name,
                msn_object,
                ..
            } => {
                let email = email.to_lowercase();
                if let Some(picture) = msn_object.as_deref().and_then(|o| picture_of(&email, o)) {
                    self.emit(picture);
                }
                if status.is_visible() {
                    self.online.insert(email.clone());
                } else {
                    self.online.remove(&email);
                }
                if let Some(name) = friendly_name {
                    self.rename_contact(&email, name);
                }
                self.emit(NetworkEvent::Presence {
                    who: email,
                    presence: presence_of(status),
                });
            }
            NsEvent::ListAdded {
                trid,
                list,
                email,
                friendly_name,
                ..
            } => {
                let email = email.to_lowercase();
                let name = self.best_name(&email, &friendly_name);
                let pending = trid.and_then(|t| self.requests.remove(&t));
                match (list, pending) {
                    (
                        List::Forward,
                        Some(Pending::Add {
                            email: e,
                            group,
                            reply,
                        }),
                    ) => {
                        let contact = Contact {
                            id: e.clone(),
                            display_name: name,
                            groups: group.iter().map(u32::to_string).collect(),
                        };
                        self.contacts.insert(e, contact.clone());
                        self.emit(NetworkEvent::ContactChanged(contact));
                        let _ = reply.send(Ok(()));
                    }
                    (List::Reverse, _) if !self.contacts.contains_key(&email) => {
                        self.suggest_add(&email, &name.unwrap_or_default());
                    }
                    (_, Some(other)) => {
                        // Not the reply we expected for that TrID: keep waiting.
                        if let Some(t) = trid {
                            self.requests.insert(t, other);
                        }
                    }
                    _ => {}
                }
            }
            NsEvent::ListRemoved {
                list: List::Forward,
                email,
                group: None,
                ..
            } => {
                self.contacts.remove(&email.to_lowercase());
                self.emit_contact_list();
            }
            NsEvent::FriendlyNameChanged {
                email,
                friendly_name,
                ..
            } => {
                let email = email.to_lowercase();
                if email == self.email {
                    self.friendly_name = friendly_name;
                } else {
                    self.rename_contact(&email, friendly_name);
                }
            }
            NsEvent::GroupAdded { id, name, .. } | NsEvent::GroupRenamed { id, name, .. } => {
                let id = id.to_string();
                self.groups.retain(|g| g.id != id);
                self.groups.push(Group { id, name });
                self.emit_contact_list();
            }
            NsEvent::GroupRemoved { id, .. } => {
                let id = id.to_string();
                self.groups.retain(|g| g.id != id);
                self.emit_contact_list();
            }
            NsEvent::Switchboard { trid, addr, cookie } => {
                if let Some(grant) = trid.and_then(|t| self.grants.remove(&t)) {
                    let _ = grant.send(Ok((addr, cookie)));
                }
            }
            NsEvent::Ring {
                session_id,
                addr,
                cookie,
                caller_email,
                ..
            } => {
                tracing::debug!(email = %self.email, caller = %caller_email, "msn: invited to a switchboard");
                self.spawn_sb(
                    None,
                    SbStart::Invited {
                        addr,
                        cookie,
                        session_id,
                    },
                );
            }
            NsEvent::Error { error } => self.on_ns_error(error),
            NsEvent::ProtocolError { error } => {
                tracing::warn!(email = %self.email, "msn: undecodable line dropped: {error}");
            }
            NsEvent::PingTimeout => {
                return Some(Hop::End(End::Lost("no answer to keepalive pings".into())));
            }
            NsEvent::Closed { reason } => {
                let end = match reason {
                    CloseReason::Logout => End::Logout,
                    CloseReason::ServerOut(Some(why)) if why == "OTH" => {
                        End::Stop("this account signed in from another location".into())
                    }
                    CloseReason::ServerOut(why) => End::Lost(format!(
                        "the server ended the session{}",
                        why.map(|w| format!(" ({w})")).unwrap_or_default()
                    )),
                    CloseReason::LoginEnded => End::Lost("login ended".into()),
                    CloseReason::Protocol(e) => End::Lost(format!("protocol error: {e}")),
                };
                return Some(Hop::End(end));
            }
            NsEvent::ServerMessage { .. } | NsEvent::ListRemoved { .. } => {}
            NsEvent::Other(cmd) => {
                tracing::debug!(email = %self.email, command = %cmd.name, "msn: unhandled command");
            }
        }
        None
    }

    fn on_ns_error(&mut self, error: ServerError) {
        let trid = error.trid;
        if let Some(grant) = trid.and_then(|t| self.grants.remove(&t)) {
            let _ = grant.send(Err(format!(
                "no switchboard from MSN: {}",
                error.description()
            )));
            return;
        }
        match trid.and_then(|t| self.requests.remove(&t)) {
            // 218: already in that mode, which is what was asked.
            Some(Pending::Status(reply)) if error.code == 218 => {
                let _ = reply.send(Ok(()));
            }
            Some(Pending::Status(reply)) | Some(Pending::Add { reply, .. }) => {
                let _ = reply.send(Err(SendError::Rejected(format!(
                    "{} (error {})",
                    error.description(),
                    error.code
                ))));
            }
            None => self.emit(NetworkEvent::Notice {
                text: format!("the server reported {error}"),
            }),
        }
    }

    fn emit_contact_list(&self) {
        let mut contacts: Vec<Contact> = self.contacts.values().cloned().collect();
        contacts.sort_by(|a, b| a.id.cmp(&b.id));
        self.emit(NetworkEvent::ContactList {
            groups: self.groups.clone(),
            contacts,
        });
    }

    /// The name to show for `email`: `offered` if it is a real name (remembered), else
    /// the one known from earlier, else none (the core then keeps the ghost's name).
    fn best_name(&mut self, email: &str, offered: &str) -> Option<String> {
        if is_real_name(email, offered) {
            self.names.insert(email.to_owned(), offered.to_owned());
            return Some(offered.to_owned());
        }
        self.names.get(email).cloned()
    }

    fn rename_contact(&mut self, email: &str, name: String) {
        let Some(name) = self.best_name(email, &name) else {
            return;
        };
        if let Some(c) = self.contacts.get_mut(email) {
            if c.display_name.as_deref() != Some(name.as_str()) {
                c.display_name = Some(name);
                let changed = c.clone();
                self.emit(NetworkEvent::ContactChanged(changed));
            }
        }
    }

    /// Someone has us on their list and is not on ours: the core suggests adding them
    /// back (once per contact, whatever the server repeats).
    fn suggest_add(&mut self, email: &str, name: &str) {
        self.emit(NetworkEvent::AddedBy {
            who: email.to_owned(),
            name: (!name.is_empty() && name != email).then(|| name.to_owned()),
        });
    }

    fn on_command(&mut self, cmd: LoginCommand, ns: &mut NsSession) {
        match cmd {
            command @ (LoginCommand::SendText { .. }
            | LoginCommand::Nudge { .. }
            | LoginCommand::SendFile { .. }) => {
                self.paced.push_back(command);
                self.send_paced(ns);
            }
            LoginCommand::SetPresence { presence, reply } => {
                self.status = status_of(presence.state);
                let trid = ns.set_status(self.status);
                self.requests.insert(trid, Pending::Status(reply));
            }
            LoginCommand::Typing { chat, typing } => self.typing(chat, typing),
            LoginCommand::SetAvatar { avatar } => {
                // Messenger's own objects name a temporary file as the location; nobody
                // reads it. Announced at once with the current status.
                self.picture = avatar.map(|a| {
                    let object = MsnObject::for_data(&self.email, 3, "TFR2C2.tmp", "", &a.data);
                    (object, a.data)
                });
                let xml = self.picture.as_ref().map(|(o, _)| o.to_xml());
                ns.set_msn_object(xml.as_deref());
                if self.logged_in {
                    ns.set_status(self.status);
                }
                for sb in self.sbs.values() {
                    let _ = sb
                        .tx
                        .send(SbCmd::SetPicture(Box::new(self.picture.clone())));
                }
            }
            LoginCommand::FetchAvatar {
                who,
                hash,
                descriptor,
            } => {
                let who = who.to_lowercase();
                let cmd = SbCmd::FetchPicture {
                    who: who.clone(),
                    hash,
                    descriptor,
                };
                self.send(ChatId::Direct(who), cmd, ns);
            }
            LoginCommand::AddContact { id, group, reply } => {
                let email = id.to_lowercase();
                let group = match group {
                    None => None,
                    Some(name) => match self
                        .groups
                        .iter()
                        .find(|g| g.name.eq_ignore_ascii_case(&name) || g.id == name)
                        .and_then(|g| g.id.parse::<u32>().ok())
                    {
                        Some(id) => Some(id),
                        None => {
                            let known: Vec<&str> =
                                self.groups.iter().map(|g| g.name.as_str()).collect();
                            let _ = reply.send(Err(SendError::Rejected(format!(
                                "there is no MSN group named {name:?} (groups: {})",
                                known.join(", ")
                            ))));
                            return;
                        }
                    },
                };
                let trid = ns.add_contact(List::Forward, &email, &email, group);
                ns.add_contact(List::Allow, &email, &email, None);
                self.requests.insert(
                    trid,
                    Pending::Add {
                        email,
                        group,
                        reply,
                    },
                );
            }
            LoginCommand::LeaveRoom { room, reply } => {
                match self
                    .sbs
                    .values()
                    .find(|s| s.group.as_deref() == Some(room.as_str()))
                {
                    Some(sb) => {
                        let _ = sb.tx.send(SbCmd::Leave);
                        let _ = reply.send(Ok(()));
                    }
                    None => {
                        let _ = reply.send(Err(SendError::Unsupported("MSN Messenger")));
                    }
                }
            }
            LoginCommand::JoinRoom { reply, .. } => {
                let _ = reply.send(Err(SendError::Unsupported("MSN Messenger")));
            }
            command @ (LoginCommand::Lookup { .. }
            | LoginCommand::ListRooms { .. }
            | LoginCommand::AnswerAuthorization { .. }) => {
                command.fail(SendError::Unsupported("MSN Messenger"));
            }
            LoginCommand::Logout => {} // handled by the session loop
        }
    }

    /// Sends the held-back messages the pacing lets go now, in order.
    fn send_paced(&mut self, ns: &mut NsSession) {
        self.paced_until = None;
        while !self.paced.is_empty() {
            if let Err(at) = self.sending.take(std::time::Instant::now()) {
                self.paced_until = Some(Instant::from_std(at));
                return;
            }
            match self.paced.pop_front() {
                Some(LoginCommand::SendText { chat, text, reply }) => {
                    let format = format::from_html(text.html.as_deref());
                    let what = Outgoing::Text {
                        text: text.plain,
                        format,
                    };
                    self.send(chat, SbCmd::Send { what, reply }, ns);
                }
                Some(LoginCommand::Nudge { chat, reply }) => {
                    let what = Outgoing::Nudge;
                    self.send(chat, SbCmd::Send { what, reply }, ns);
                }
                Some(LoginCommand::SendFile {
                    chat,
                    file,
                    fallback,
                    reply,
                }) => {
                    let what = Outgoing::File(Box::new((file, fallback)));
                    self.send(chat, SbCmd::Send { what, reply }, ns);
                }
                Some(other) => other.fail(SendError::LoginGone),
                None => {}
            }
        }
    }

    /// Sends `cmd` (a [`SbCmd::Send`]) to the conversation's switchboard, opening one
    /// for a contact without one.
    fn send(&mut self, chat: ChatId, cmd: SbCmd, ns: &mut NsSession) {
        match chat {
            ChatId::Direct(who) => {
                let who = who.to_lowercase();
                if let Some(id) = self.direct_sb(&who) {
                    match self.sbs.get(&id).map(|sb| sb.tx.send(cmd)) {
                        Some(Ok(())) => return,
                        Some(Err(mpsc::error::SendError(cmd))) => {
                            // The task has ended; its `Closed` report is still queued.
                            self.sbs.remove(&id);
                            return self.send_new(who, cmd, ns);
                        }
                        None => return,
                    }
                }
                self.send_new(who, cmd, ns);
            }
            ChatId::Group(group) => {
                let tx = self
                    .sbs
                    .values()
                    .find(|s| s.group.as_deref() == Some(group.as_str()))
                    .map(|sb| sb.tx.clone());
                let result = match tx {
                    Some(tx) => tx.send(cmd).map_err(|e| e.0),
                    None => Err(cmd),
                };
                if let Err(SbCmd::Send { reply, .. }) = result {
                    let _ = reply.send(Err(SendError::Rejected(
                        "this MSN group conversation has ended".into(),
                    )));
                }
            }
            ChatId::Room(_) => {
                if let SbCmd::Send { reply, .. } = cmd {
                    let _ = reply.send(Err(SendError::Unsupported("MSN Messenger")));
                }
            }
        }
    }

    /// The open one-to-one switchboard with `who`, or the one being opened for them.
    fn direct_sb(&self, who: &str) -> Option<u64> {
        self.sbs
            .iter()
            .filter(|(_, sb)| sb.group.is_none())
            .find(|(_, sb)| match sb.participants.as_slice() {
                [(email, _)] => email == who,
                [] => sb.target.as_deref() == Some(who),
                _ => false,
            })
            .map(|(id, _)| *id)
    }

    /// Asks for a new switchboard (`XFR SB`) that will call `who` and send `first`.
    fn send_new(&mut self, who: String, first: SbCmd, ns: &mut NsSession) {
        let trid = ns.request_switchboard();
        let (grant_tx, grant) = oneshot::channel();
        self.grants.insert(trid, grant_tx);
        let id = self.spawn_sb(Some(who.clone()), SbStart::Outgoing { grant, invite: who });
        if let Some(sb) = self.sbs.get(&id) {
            let _ = sb.tx.send(first);
        }
    }

    fn spawn_sb(&mut self, target: Option<String>, start: SbStart) -> u64 {
        let id = self.next_sb;
        self.next_sb += 1;
        let (tx, commands) = mpsc::unbounded_channel();
        let task = SbTask {
            id,
            me: self.email.clone(),
            idle: self.cfg.switchboard_idle,
            commands,
            reports: self.sb_tx.clone(),
            flow: self.events.clone(),
            max_file: self.cfg.max_file_bytes,
            picture: self.picture.clone(),
        };
        tokio::spawn(task.run(start));
        self.sbs.insert(
            id,
            Sb {
                tx,
                target,
                participants: Vec::new(),
                session: None,
                group: None,
            },
        );
        id
    }

    fn on_sb_report(&mut self, id: u64, report: SbReport, ns: &mut NsSession) {
        let Some(sb) = self.sbs.get_mut(&id) else {
            return;
        };
        match report {
            SbReport::Session { id: session } => sb.session = Some(session),
            SbReport::Joined { email, name } => {
                if email == self.email || sb.participants.iter().any(|(e, _)| *e == email) {
                    return;
                }
                sb.participants.push((email, name));
                if sb.group.is_none() && sb.participants.len() >= 2 {
                    // A third person: from now on this is a group conversation.
                    let suffix = getrandom::u32().unwrap_or(id as u32);
                    let session = sb.session.clone().unwrap_or_else(|| id.to_string());
                    sb.group = Some(format!("{session}-{suffix:08x}"));
                }
                self.emit_members(id);
            }
            SbReport::Left { email } => {
                sb.participants.retain(|(e, _)| *e != email);
                let chat = sb.chat_for(&email);
                let group = sb.group.is_some();
                let remaining = sb.participants.len();
                self.stop_typing(&chat, &email);
                if group && remaining > 0 {
                    self.emit_members(id);
                }
            }
            SbReport::Message { from, message } => {
                let chat = sb.chat_for(&from);
                match message.kind() {
                    MsnKind::Text { text, format } => {
                        self.stop_typing(&chat, &from);
                        let html = format.as_ref().and_then(|f| format::to_html(&text, f));
                        self.emit(NetworkEvent::Message {
                            chat,
                            from,
                            id: None,
                            kind: MessageKind::Text,
                            text: FormattedText { plain: text, html },
                            sent_at: None,
                            offline: false,
                            ack_key: None,
                        });
                    }
                    MsnKind::Typing { .. } => {
                        self.typing_in.insert(
                            (chat.clone(), from.clone()),
                            Instant::now() + TYPING_TIMEOUT,
                        );
                        self.emit(NetworkEvent::Typing {
                            chat,
                            who: from,
                            typing: true,
                        });
                    }
                    MsnKind::Datacast { .. } | MsnKind::Other { .. } => {
                        match super::content::shown(&message) {
                            Some((kind, text)) => self.emit(NetworkEvent::Message {
                                chat,
                                from,
                                id: None,
                                kind,
                                text: FormattedText::plain(text),
                                sent_at: None,
                                offline: false,
                                ack_key: None,
                            }),
                            None => tracing::debug!(
                                content_type = message.header("Content-Type").unwrap_or_default(),
                                "msn: switchboard message of another type ignored"
                            ),
                        }
                    }
                }
            }
            SbReport::Picture { who, hash, result } => {
                self.emit(NetworkEvent::AvatarFetched { who, hash, result });
            }
            SbReport::File { from, file } => {
                let chat = sb.chat_for(&from);
                self.emit(NetworkEvent::File { chat, from, file });
            }
            SbReport::Notice { from, text } => {
                let chat = sb.chat_for(&from);
                self.emit(NetworkEvent::Message {
                    chat,
                    from,
                    id: None,
                    kind: MessageKind::Notice,
                    text: FormattedText::plain(text),
                    sent_at: None,
                    offline: false,
                    ack_key: None,
                });
            }
            SbReport::Closed { unsent } => {
                let Some(sb) = self.sbs.remove(&id) else {
                    return;
                };
                if let Some(group) = &sb.group {
                    self.emit(NetworkEvent::RoomLeft {
                        chat: ChatId::Group(group.clone()),
                    });
                }
                let who = sb
                    .target
                    .clone()
                    .or_else(|| sb.participants.first().map(|p| p.0.clone()));
                for cmd in unsent {
                    match (cmd, &who, &sb.group) {
                        (cmd @ SbCmd::Send { .. }, Some(who), None) => {
                            self.send_new(who.clone(), cmd, ns);
                        }
                        (cmd @ SbCmd::FetchPicture { .. }, Some(who), None) => {
                            self.send_new(who.clone(), cmd, ns);
                        }
                        (SbCmd::FetchPicture { who, hash, .. }, _, _) => {
                            let result = Err("the MSN conversation has ended".to_owned());
                            self.emit(NetworkEvent::AvatarFetched { who, hash, result });
                        }
                        (SbCmd::Send { reply, .. }, _, _) => {
                            let _ = reply.send(Err(SendError::Rejected(
                                "the MSN conversation has ended".into(),
                            )));
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    fn emit_members(&self, id: u64) {
        let Some(sb) = self.sbs.get(&id) else { return };
        let Some(group) = &sb.group else { return };
        let members = sb
            .participants
            .iter()
            .map(|(email, name)| Contact {
                id: email.clone(),
                display_name: Some(name.clone()),
                groups: Vec::new(),
            })
            .collect();
        self.emit(NetworkEvent::RoomMembers {
            chat: ChatId::Group(group.clone()),
            members,
        });
    }

    fn stop_typing(&mut self, chat: &ChatId, who: &str) {
        if self
            .typing_in
            .remove(&(chat.clone(), who.to_string()))
            .is_some()
        {
            self.emit(NetworkEvent::Typing {
                chat: chat.clone(),
                who: who.to_string(),
                typing: false,
            });
        }
    }

    fn expire_typing(&mut self) {
        let now = Instant::now();
        let expired: Vec<(ChatId, String)> = self
            .typing_in
            .iter()
            .filter(|(_, due)| **due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for (chat, who) in expired {
            self.stop_typing(&chat, &who);
        }
    }

    /// Our typing goes out only on a switchboard that is already open with someone in it.
    fn typing(&mut self, chat: ChatId, typing: bool) {
        if !typing {
            return; // MSN has no "stopped typing"
        }
        let now = Instant::now();
        if self
            .typing_out
            .get(&chat)
            .is_some_and(|last| now < *last + TYPING_INTERVAL)
        {
            return;
        }
        let sb = match &chat {
            ChatId::Direct(who) => self
                .direct_sb(&who.to_lowercase())
                .and_then(|id| self.sbs.get(&id)),
            ChatId::Group(g) => self
                .sbs
                .values()
                .find(|s| s.group.as_deref() == Some(g.as_str())),
            ChatId::Room(_) => None,
        };
        if let Some(sb) = sb.filter(|sb| !sb.participants.is_empty()) {
            if sb.tx.send(SbCmd::Typing).is_ok() {
                self.typing_out.insert(chat, now);
            }
        }
    }
}

/// Whether a nick says more than the address: servers give the address when they know
/// no name.
fn is_real_name(email: &str, name: &str) -> bool {
    let name = name.trim();
    !name.is_empty() && !name.eq_ignore_ascii_case(email)
}

/// Maps a refused login to how the task goes on: busy or failing servers are retried,
/// refusals of the account are final. The text names the error code and its meaning.
fn login_error(reason: String, error: Option<ServerError>) -> End {
    match error {
        Some(e) if matches!(e.code, 500 | 600 | 601 | 711 | 712 | 714) => {
            End::Lost(format!("{reason} (error {})", e.code))
        }
        // 911: the notification server refused the ticket or the account.
        Some(e) if e.code == 911 => End::Failed(format!("{reason} (error 911): {CHECK_PASSWORD}")),
        Some(e) => End::Failed(format!("{reason} (error {})", e.code)),
        None => End::Failed(reason),
    }
}

/// The status the user chose, as MSN shows it (it has no offline-but-connected: hidden).
fn status_of(state: PresenceState) -> Status {
    match state {
        PresenceState::Online => Status::Online,
        PresenceState::Away => Status::Away,
        PresenceState::Busy => Status::Busy,
        PresenceState::Invisible | PresenceState::Offline => Status::Hidden,
    }
}

fn presence_of(status: Status) -> Presence {
    let (state, text) = match status {
        Status::Online => (PresenceState::Online, None),
        Status::Busy => (PresenceState::Busy, Some("Busy")),
        Status::Idle => (PresenceState::Away, Some("Idle")),
        Status::BeRightBack => (PresenceState::Away, Some("Be right back")),
        Status::Away => (PresenceState::Away, Some("Away")),
        Status::OnThePhone => (PresenceState::Busy, Some("On the phone")),
        Status::OutToLunch => (PresenceState::Away, Some("Out to lunch")),
        Status::Hidden | Status::Offline => (PresenceState::Offline, None),
    };
    Presence {
        state,
        status: text.map(str::to_owned),
    }
}

async fn write(stream: &mut TcpStream, ns: &mut NsSession) -> std::io::Result<()> {
    while let Some(bytes) = ns.poll_transmit() {
        stream.write_all(&bytes).await?;
    }
    Ok(())
}

/// Best-effort final write (`OUT`), then close.
async fn flush(stream: &mut TcpStream, ns: &mut NsSession) {
    let _ = write(stream, ns).await;
    let _ = stream.shutdown().await;
}

async fn sleep_opt(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// The announcement of `email`'s display picture from the MSNObject of their presence,
/// when it is one (type 3, theirs).
fn picture_of(email: &str, object: &str) -> Option<NetworkEvent> {
    let parsed = msn_proto::MsnObject::parse(object).ok()?;
    (parsed.kind == 3 && parsed.creator.eq_ignore_ascii_case(email) && !parsed.sha1d.is_empty())
        .then(|| NetworkEvent::AvatarAnnounced {
            who: email.to_owned(),
            hash: parsed.sha1d,
            descriptor: object.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A presence names the contact's own display picture only: an MSNObject whose
    /// creator is someone else (a contact claiming another's picture) or that is an
    /// emoticon, or that is no MSNObject, announces nothing.
    #[test]
    fn only_a_contacts_own_picture_is_announced() {
        let object = |creator: &str, kind: u32| {
            format!("<msnobj Creator=\"{creator}\" Size=\"3\" Type=\"{kind}\" Location=\"x.tmp\" Friendly=\"AAA=\" SHA1D=\"qZk+NkcGgWq6PiVxeFDCbJzQ2J0=\"/>")
        };
        assert_eq!(
            picture_of("bob@example.com", &object("Bob@Example.com", 3)),
            Some(NetworkEvent::AvatarAnnounced {
                who: "bob@example.com".into(),
                hash: "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=".into(),
                descriptor: object("Bob@Example.com", 3),
            })
        );
        assert_eq!(
            picture_of("bob@example.com", &object("carol@example.com", 3)),
            None
        );
        assert_eq!(
            picture_of("bob@example.com", &object("bob@example.com", 2)),
            None
        );
        assert_eq!(picture_of("bob@example.com", "<b>not an object</b>"), None);
    }

    #[test]
    fn statuses_have_texts() {
        assert_eq!(presence_of(Status::OnThePhone).state, PresenceState::Busy);
        assert_eq!(
            presence_of(Status::OutToLunch).status.as_deref(),
            Some("Out to lunch")
        );
        assert_eq!(presence_of(Status::Hidden).state, PresenceState::Offline);
    }

    #[test]
    fn the_address_is_not_a_name() {
        assert!(is_real_name("bob@example.com", "Bob"));
        assert!(!is_real_name("bob@example.com", "Bob@Example.com "));
        assert!(!is_real_name("bob@example.com", " "));
    }

    #[tokio::test]
    async fn best_name_keeps_a_real_nick() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let creds = LoginCredentials {
            id: "me@example.com".into(),
            password: "pw".into(),
            contacts: vec![Contact {
                id: "carol@example.com".into(),
                display_name: Some("Carol".into()),
                groups: Vec::new(),
            }],
            proven: false,
            presence: PresenceState::Online,
        };
        let (_handle, commands) = crate::core::LoginHandle::channel();
        let cfg = Arc::new(MsnConfig {
            server: String::new(),
            nexus_url: String::new(),
            login_url: None,
            switchboard_idle: Duration::from_secs(1),
            ping_interval: Duration::from_secs(1),
            max_file_bytes: 1 << 20,
        });
        let key = crate::core::LoginKey {
            user: "@u:x".into(),
            network: crate::core::NetworkId::Msn,
        };
        let mut login = Login::new(
            cfg,
            creds,
            EventSink::new(key, std::sync::Arc::new(tx)),
            commands,
            crate::networks::pacing::SendRate {
                per_second: 1.0,
                burst: 1,
            }
            .bucket(),
        );
        // Stored name beats the address the server echoes.
        assert_eq!(
            login.best_name("carol@example.com", "carol@example.com"),
            Some("Carol".into())
        );
        // Nothing known: no name rather than the address.
        assert_eq!(
            login.best_name("dave@example.com", "dave@example.com"),
            None
        );
        // A real nick from the server is used and remembered.
        assert_eq!(
            login.best_name("dave@example.com", "Dave"),
            Some("Dave".into())
        );
        assert_eq!(
            login.best_name("dave@example.com", "dave@example.com"),
            Some("Dave".into())
        );
    }

    #[test]
    fn login_errors() {
        let busy = ServerError {
            code: 600,
            trid: Some(3),
        };
        assert!(
            matches!(login_error("login refused: server busy".into(), Some(busy)), End::Lost(r) if r.contains("600"))
        );
        let auth = ServerError {
            code: 911,
            trid: Some(3),
        };
        assert!(
            matches!(login_error("login refused: authentication failed".into(), Some(auth)), End::Failed(r) if r.contains("authentication failed"))
        );
    }
}
