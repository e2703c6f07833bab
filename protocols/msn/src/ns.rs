//! Notification-server client session: login, contact list, presence,
//! keepalive, challenges, and the doorway to switchboards.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::challenge::{challenge_response, PRODUCT_ID, PRODUCT_KEY};
use crate::command::{encode_command, Command, CommandRef};
use crate::decoder::Decoder;
use crate::error::{Error, ServerError};
use crate::mime::{Message, MessageRef};
use crate::status::{List, ListBits, Status};
use crate::urlenc::{url_decode, url_encode};

/// Settings for one notification-server connection.
#[derive(Debug, Clone)]
pub struct NsConfig {
    pub email: String,
    /// Contact-list version cached from a previous session (0: none).
    pub sync_version: u32,
    /// Status set with `CHG` once the contact list is in; `None` leaves it to the caller.
    pub initial_status: Option<Status>,
    /// Capability flags sent with `CHG`.
    pub client_id: u32,
    pub ping_interval: Duration,
}

impl NsConfig {
    pub fn new(email: &str) -> NsConfig {
        NsConfig {
            email: email.to_string(),
            sync_version: 0,
            initial_status: Some(Status::Online),
            client_id: 0,
            ping_interval: Duration::from_secs(50),
        }
    }
}

/// A contact group from `LSG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: u32,
    pub name: String,
}

/// A contact from `LST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub email: String,
    pub friendly_name: String,
    pub lists: ListBits,
    pub groups: Vec<u32>,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// We sent `OUT`.
    Logout,
    /// The server sent `OUT`, with its reason (`OTH`: signed in elsewhere,
    /// `SSD`: server shutting down), if any.
    ServerOut(Option<String>),
    /// Login was refused or redirected; see the preceding event.
    LoginEnded,
    /// The byte stream could not be decoded any more.
    Protocol(Error),
}

/// Everything the notification server tells the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsEvent {
    /// `XFR NS`: connect to `addr` and start again with a new session.
    Redirect {
        addr: String,
    },
    /// Passport is needed: log in with this policy string, then call
    /// [`NsSession::ticket`] promptly (tickets are short-lived).
    NeedTicket {
        policy: String,
    },
    LoginFailed {
        reason: String,
        error: Option<ServerError>,
    },
    LoggedIn {
        email: String,
        friendly_name: String,
        verified: bool,
    },
    /// A message from the server itself (`MSG Hotmail Hotmail`: profile, mail).
    ServerMessage {
        message: Message,
    },
    /// The contact list after `SYN`. `unchanged` means the server's version
    /// equals the cached one and sent nothing.
    ContactList {
        version: u32,
        unchanged: bool,
        groups: Vec<Group>,
        contacts: Vec<Contact>,
        /// `BLP`: `AL` (allow unlisted) or `BL`.
        privacy: Option<String>,
        /// `GTC`: `A` (ask when added) or `N`.
        add_prompt: Option<String>,
    },
    StatusChanged {
        trid: Option<u32>,
        status: Status,
    },
    /// `ILN` (initial), `NLN` or `FLN` (status `Offline`).
    Presence {
        email: String,
        status: Status,
        friendly_name: Option<String>,
        client_id: Option<u32>,
        /// The contact's display picture (an MSNObject, URL-decoded XML), when
        /// `ILN`/`NLN` carry one (Messenger 6.x); parse it with
        /// [`MsnObject::parse`](crate::MsnObject::parse).
        msn_object: Option<String>,
        initial: bool,
    },
    /// `ADD` reply, or `ADD 0 RL` when someone added us.
    ListAdded {
        trid: Option<u32>,
        list: List,
        version: u32,
        email: String,
        friendly_name: String,
        group: Option<u32>,
    },
    ListRemoved {
        trid: Option<u32>,
        list: List,
        version: u32,
        email: String,
        group: Option<u32>,
    },
    FriendlyNameChanged {
        trid: Option<u32>,
        version: u32,
        email: String,
        friendly_name: String,
    },
    GroupAdded {
        trid: Option<u32>,
        version: u32,
        id: u32,
        name: String,
    },
    GroupRemoved {
        trid: Option<u32>,
        version: u32,
        id: u32,
    },
    GroupRenamed {
        trid: Option<u32>,
        version: u32,
        id: u32,
        name: String,
    },
    /// `XFR SB` reply: connect to `addr` and send `USR` with `cookie`.
    Switchboard {
        trid: Option<u32>,
        addr: String,
        cookie: String,
    },
    /// `RNG`: someone invites us to a switchboard.
    Ring {
        session_id: String,
        addr: String,
        cookie: String,
        caller_email: String,
        caller_name: String,
    },
    /// An error reply to one of our requests (match on `error.trid`).
    Error {
        error: ServerError,
    },
    /// A line that could not be decoded (skipped).
    ProtocolError {
        error: Error,
    },
    /// No `QNG` arrived for a whole ping interval.
    PingTimeout,
    Closed {
        reason: CloseReason,
    },
    /// Anything else the server sent.
    Other(Command),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Version,
    ClientVersion,
    AuthInitial,
    WaitTicket,
    AuthTicket,
    Syncing,
    Online,
    Closed,
}

#[derive(Debug, Default)]
struct Sync {
    replied: bool,
    version: u32,
    users: usize,
    groups_expected: usize,
    groups: Vec<Group>,
    contacts: Vec<Contact>,
    privacy: Option<String>,
    add_prompt: Option<String>,
}

/// The client side of one notification-server (or dispatch) connection.
///
/// Drive it with [`handle_input`](Self::handle_input),
/// [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
/// [`handle_timeout`](Self::handle_timeout) and
/// [`poll_timeout`](Self::poll_timeout). Request methods return the TrID used,
/// which replies and [`NsEvent::Error`] carry.
pub struct NsSession {
    config: NsConfig,
    phase: Phase,
    decoder: Decoder,
    out: Vec<u8>,
    events: VecDeque<NsEvent>,
    next_trid: u32,
    now: Instant,
    next_ping: Option<Instant>,
    ping_sent_at: Option<Instant>,
    sync: Option<Sync>,
    list_version: u32,
    status: Status,
    /// Our display picture, URL-encoded, for `CHG`.
    msn_object: Option<String>,
}

/// The longest MSNObject read from `ILN`/`NLN` (Messenger's are about 300 bytes).
pub const MAX_MSN_OBJECT: usize = 2048;

/// Leaves out buffers, which may hold the Passport ticket.
impl std::fmt::Debug for NsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NsSession")
            .field("email", &self.config.email)
            .field("phase", &self.phase)
            .field("status", &self.status)
            .field("list_version", &self.list_version)
            .finish_non_exhaustive()
    }
}

impl NsSession {
    /// Starts a session on a freshly opened connection: `VER` is queued.
    pub fn new(config: NsConfig, now: Instant) -> NsSession {
        let mut s = NsSession {
            list_version: config.sync_version,
            config,
            phase: Phase::Version,
            decoder: Decoder::new(),
            out: Vec::new(),
            events: VecDeque::new(),
            next_trid: 1,
            now,
            next_ping: None,
            ping_sent_at: None,
            sync: None,
            status: Status::Offline,
            msn_object: None,
        };
        s.send("VER", &["MSNP9", "MSNP8", "CVR0"]);
        s
    }

    pub fn is_online(&self) -> bool {
        matches!(self.phase, Phase::Syncing | Phase::Online)
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The contact-list version last seen (cache it for the next `SYN`).
    pub fn list_version(&self) -> u32 {
        self.list_version
    }

    pub fn status(&self) -> Status {
        self.status
    }

    fn trid(&mut self) -> u32 {
        let t = self.next_trid;
        self.next_trid = self.next_trid.wrapping_add(1).max(1);
        t
    }

    fn send(&mut self, name: &str, params: &[&str]) -> u32 {
        let trid = self.trid();
        encode_command(&mut self.out, name, Some(trid), params, None);
        trid
    }

    /// Bytes to write to the socket, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.out))
        }
    }

    pub fn poll_event(&mut self) -> Option<NsEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_ping
    }

    /// Advances time: sends `PNG` when due and reports a missing `QNG`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        let Some(due) = self.next_ping else { return };
        if now < due || !self.is_online() {
            return;
        }
        if let Some(sent) = self.ping_sent_at {
            if now.saturating_duration_since(sent) >= self.config.ping_interval {
                self.events.push_back(NsEvent::PingTimeout);
            }
        } else {
            self.ping_sent_at = Some(now);
        }
        self.out.extend_from_slice(b"PNG\r\n");
        self.next_ping = Some(now + self.config.ping_interval);
    }

    /// Hands over the Passport ticket asked for by [`NsEvent::NeedTicket`].
    pub fn ticket(&mut self, ticket: &str) {
        if self.phase == Phase::WaitTicket {
            self.phase = Phase::AuthTicket;
            self.send("USR", &["TWN", "S", ticket]);
        }
    }

    pub fn set_status(&mut self, status: Status) -> u32 {
        let id = self.config.client_id.to_string();
        match self.msn_object.clone() {
            Some(object) => self.send("CHG", &[status.code(), &id, &object]),
            None => self.send("CHG", &[status.code(), &id]),
        }
    }

    /// The display picture announced with every `CHG` from now on (an MSNObject's XML,
    /// sent URL-encoded as Messenger 6.x does); `None` for none. Takes effect at the
    /// next [`set_status`](Self::set_status).
    pub fn set_msn_object(&mut self, object: Option<&str>) {
        self.msn_object = object.map(crate::url_encode);
    }

    /// `SYN` again (normally done automatically after login).
    pub fn sync(&mut self) -> u32 {
        self.sync = Some(Sync::default());
        let v = self.list_version.to_string();
        self.send("SYN", &[&v])
    }

    /// `ADD trid <list> <email> <nick> [group]`.
    pub fn add_contact(&mut self, list: List, email: &str, nick: &str, group: Option<u32>) -> u32 {
        let nick = url_encode(nick);
        match group {
            Some(g) => {
                let g = g.to_string();
                self.send("ADD", &[list.code(), email, &nick, &g])
            }
            None => self.send("ADD", &[list.code(), email, &nick]),
        }
    }

    /// `REM trid <list> <email> [group]` (with a group: only from that group).
    pub fn remove_contact(&mut self, list: List, email: &str, group: Option<u32>) -> u32 {
        match group {
            Some(g) => {
                let g = g.to_string();
                self.send("REM", &[list.code(), email, &g])
            }
            None => self.send("REM", &[list.code(), email]),
        }
    }

    /// `REA`: our own friendly name when `email` is ours, else a contact's.
    pub fn rename(&mut self, email: &str, friendly_name: &str) -> u32 {
        let nick = url_encode(friendly_name);
        self.send("REA", &[email, &nick])
    }

    pub fn set_friendly_name(&mut self, friendly_name: &str) -> u32 {
        let email = self.config.email.clone();
        self.rename(&email, friendly_name)
    }

    pub fn add_group(&mut self, name: &str) -> u32 {
        let name = url_encode(name);
        self.send("ADG", &[&name, "0"])
    }

    pub fn remove_group(&mut self, id: u32) -> u32 {
        let id = id.to_string();
        self.send("RMG", &[&id])
    }

    pub fn rename_group(&mut self, id: u32, name: &str) -> u32 {
        let (id, name) = (id.to_string(), url_encode(name));
        self.send("REG", &[&id, &name, "0"])
    }

    /// `BLP`: whether people on no list may see us (`true`: AL).
    pub fn set_privacy(&mut self, allow_unlisted: bool) -> u32 {
        self.send("BLP", &[if allow_unlisted { "AL" } else { "BL" }])
    }

    /// `XFR SB`: ask for a switchboard; answered by [`NsEvent::Switchboard`].
    pub fn request_switchboard(&mut self) -> u32 {
        self.send("XFR", &["SB"])
    }

    /// Sends `OUT`; the caller closes the socket once it is written.
    pub fn logout(&mut self) {
        if self.phase != Phase::Closed {
            self.out.extend_from_slice(b"OUT\r\n");
            self.close(CloseReason::Logout);
        }
    }

    fn close(&mut self, reason: CloseReason) {
        self.phase = Phase::Closed;
        self.next_ping = None;
        self.events.push_back(NsEvent::Closed { reason });
    }

    /// Feeds bytes read from the socket.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        let mut decoder = std::mem::take(&mut self.decoder);
        decoder.feed(bytes);
        while let Some(next) = decoder.next_ref() {
            match next {
                Ok(cmd) => self.on_command(cmd),
                Err(e) if e.is_fatal() => {
                    self.close(CloseReason::Protocol(e));
                    break;
                }
                Err(e) => self.events.push_back(NsEvent::ProtocolError { error: e }),
            }
            if self.phase == Phase::Closed {
                break;
            }
        }
        decoder.release_consumed();
        self.decoder = decoder;
    }

    fn on_command(&mut self, cmd: CommandRef<'_>) {
        if let Some(error) = cmd.server_error() {
            return self.on_error(error);
        }
        let p: Vec<&str> = cmd.params().collect();
        let arg = |i: usize| p.get(i).copied().unwrap_or("");
        let num = |i: usize| p.get(i).and_then(|v| v.parse::<u32>().ok());
        match (cmd.name, self.phase) {
            ("VER", Phase::Version) => {
                if p.iter().any(|v| *v == "MSNP9" || *v == "MSNP8") {
                    self.phase = Phase::ClientVersion;
                    let email = self.config.email.clone();
                    self.send(
                        "CVR",
                        &[
                            "0x0409", "winnt", "5.1", "i386", "MSNMSGR", "6.2.0208", "MSMSGS",
                            &email,
                        ],
                    );
                } else {
                    self.login_failed("server supports neither MSNP9 nor MSNP8", None);
                }
            }
            ("CVR", Phase::ClientVersion) => {
                self.phase = Phase::AuthInitial;
                let email = self.config.email.clone();
                self.send("USR", &["TWN", "I", &email]);
            }
            ("XFR", Phase::AuthInitial | Phase::ClientVersion | Phase::Version)
                if arg(0) == "NS" =>
            {
                self.events.push_back(NsEvent::Redirect {
                    addr: arg(1).to_string(),
                });
                self.phase = Phase::Closed;
                self.events.push_back(NsEvent::Closed {
                    reason: CloseReason::LoginEnded,
                });
            }
            ("USR", Phase::AuthInitial) if arg(0) == "TWN" && arg(1) == "S" => {
                self.phase = Phase::WaitTicket;
                // The policy string contains no spaces; keep everything anyway.
                let policy = p.get(2..).map(|r| r.join(" ")).unwrap_or_default();
                self.events.push_back(NsEvent::NeedTicket { policy });
            }
            ("USR", Phase::AuthTicket) if arg(0) == "OK" => {
                self.phase = Phase::Syncing;
                self.events.push_back(NsEvent::LoggedIn {
                    email: arg(1).to_string(),
                    friendly_name: url_decode(arg(2)).into_owned(),
                    verified: arg(3) == "1",
                });
                self.next_ping = Some(self.now + self.config.ping_interval);
                self.sync();
            }
            ("MSG", _) => {
                if let Some(payload) = cmd.payload {
                    match MessageRef::parse(payload) {
                        Ok(m) => self.events.push_back(NsEvent::ServerMessage {
                            message: m.to_owned(),
                        }),
                        Err(error) => self.events.push_back(NsEvent::ProtocolError { error }),
                    }
                }
            }
            ("SYN", _) if self.sync.is_some() => {
                let version = num(0).unwrap_or(0);
                self.list_version = version;
                match (num(1), num(2)) {
                    (Some(users), Some(groups)) => {
                        if let Some(s) = self.sync.as_mut() {
                            s.replied = true;
                            s.version = version;
                            s.users = users as usize;
                            s.groups_expected = groups as usize;
                        }
                        self.maybe_finish_sync();
                    }
                    _ => {
                        self.sync = None;
                        self.events.push_back(NsEvent::ContactList {
                            version,
                            unchanged: true,
                            groups: Vec::new(),
                            contacts: Vec::new(),
                            privacy: None,
                            add_prompt: None,
                        });
                        self.after_sync();
                    }
                }
            }
            ("GTC", _) if self.sync.is_some() && cmd.trid.is_none() => {
                if let Some(s) = self.sync.as_mut() {
                    s.add_prompt = Some(arg(0).to_string());
                }
            }
            ("BLP", _) if self.sync.is_some() && cmd.trid.is_none() => {
                if let Some(s) = self.sync.as_mut() {
                    s.privacy = Some(arg(0).to_string());
                }
            }
            ("LSG", _) if self.sync.is_some() => {
                if let (Some(s), Some(id)) = (self.sync.as_mut(), num(0)) {
                    s.groups.push(Group {
                        id,
                        name: url_decode(arg(1)).into_owned(),
                    });
                }
                self.maybe_finish_sync();
            }
            ("LST", _) if self.sync.is_some() => {
                if let Some(s) = self.sync.as_mut() {
                    s.contacts.push(Contact {
                        email: arg(0).to_string(),
                        friendly_name: url_decode(arg(1)).into_owned(),
                        lists: ListBits(num(2).unwrap_or(0) as u8),
                        groups: arg(3).split(',').filter_map(|g| g.parse().ok()).collect(),
                    });
                }
                self.maybe_finish_sync();
            }
            ("CHG", _) => {
                if let Some(status) = Status::from_code(arg(0)) {
                    self.status = status;
                    self.events.push_back(NsEvent::StatusChanged {
                        trid: cmd.trid,
                        status,
                    });
                }
            }
            ("ILN", _) | ("NLN", _) => {
                let Some(status) = Status::from_code(arg(0)) else {
                    return self.other(cmd);
                };
                self.events.push_back(NsEvent::Presence {
                    email: arg(1).to_string(),
                    status,
                    friendly_name: p.get(2).map(|n| url_decode(n).into_owned()),
                    client_id: num(3),
                    msn_object: p
                        .get(4)
                        .map(|o| url_decode(o).into_owned())
                        .filter(|o| o.len() <= MAX_MSN_OBJECT && o.starts_with("<msnobj")),
                    initial: cmd.name == "ILN",
                });
            }
            ("FLN", _) => self.events.push_back(NsEvent::Presence {
                email: arg(0).to_string(),
                status: Status::Offline,
                friendly_name: None,
                client_id: None,
                msn_object: None,
                initial: false,
            }),
            ("ADD", _) => match List::from_code(arg(0)) {
                Some(list) => {
                    let version = num(1).unwrap_or(self.list_version);
                    self.list_version = version;
                    self.events.push_back(NsEvent::ListAdded {
                        trid: cmd.trid,
                        list,
                        version,
                        email: arg(2).to_string(),
                        friendly_name: url_decode(arg(3)).into_owned(),
                        group: num(4),
                    });
                }
                None => self.other(cmd),
            },
            ("REM", _) => match List::from_code(arg(0)) {
                Some(list) => {
                    let version = num(1).unwrap_or(self.list_version);
                    self.list_version = version;
                    self.events.push_back(NsEvent::ListRemoved {
                        trid: cmd.trid,
                        list,
                        version,
                        email: arg(2).to_string(),
                        group: num(3),
                    });
                }
                None => self.other(cmd),
            },
            ("REA", _) => {
                let version = num(0).unwrap_or(self.list_version);
                self.list_version = version;
                self.events.push_back(NsEvent::FriendlyNameChanged {
                    trid: cmd.trid,
                    version,
                    email: arg(1).to_string(),
                    friendly_name: url_decode(arg(2)).into_owned(),
                });
            }
            ("ADG", _) => {
                let version = num(0).unwrap_or(self.list_version);
                self.list_version = version;
                self.events.push_back(NsEvent::GroupAdded {
                    trid: cmd.trid,
                    version,
                    name: url_decode(arg(1)).into_owned(),
                    id: num(2).unwrap_or(0),
                });
            }
            ("RMG", _) => {
                let version = num(0).unwrap_or(self.list_version);
                self.list_version = version;
                self.events.push_back(NsEvent::GroupRemoved {
                    trid: cmd.trid,
                    version,
                    id: num(1).unwrap_or(0),
                });
            }
            ("REG", _) => {
                let version = num(0).unwrap_or(self.list_version);
                self.list_version = version;
                self.events.push_back(NsEvent::GroupRenamed {
                    trid: cmd.trid,
                    version,
                    id: num(1).unwrap_or(0),
                    name: url_decode(arg(2)).into_owned(),
                });
            }
            ("XFR", _) if arg(0) == "SB" => self.events.push_back(NsEvent::Switchboard {
                trid: cmd.trid,
                addr: arg(1).to_string(),
                cookie: arg(3).to_string(),
            }),
            ("RNG", _) => self.events.push_back(NsEvent::Ring {
                session_id: arg(0).to_string(),
                addr: arg(1).to_string(),
                cookie: arg(3).to_string(),
                caller_email: arg(4).to_string(),
                caller_name: url_decode(arg(5)).into_owned(),
            }),
            ("CHL", _) => {
                // Answer at once and never wait for the QRY reply.
                let answer = challenge_response(arg(0), PRODUCT_KEY);
                let trid = self.trid();
                encode_command(
                    &mut self.out,
                    "QRY",
                    Some(trid),
                    &[PRODUCT_ID],
                    Some(answer.as_bytes()),
                );
            }
            ("QRY", _) => {}
            ("QNG", _) => {
                self.ping_sent_at = None;
                // Later servers suggest the next interval; honour it within reason.
                if let (Some(secs), Some(_)) = (num(0), self.next_ping) {
                    let secs = u64::from(secs.clamp(5, 300));
                    self.next_ping = Some(self.now + Duration::from_secs(secs));
                }
            }
            ("OUT", _) => {
                let why = p.first().map(|s| s.to_string());
                self.close(CloseReason::ServerOut(why));
            }
            _ => self.other(cmd),
        }
    }

    fn other(&mut self, cmd: CommandRef<'_>) {
        self.events.push_back(NsEvent::Other(cmd.to_owned()));
    }

    fn on_error(&mut self, error: ServerError) {
        match self.phase {
            Phase::Version | Phase::ClientVersion | Phase::AuthInitial | Phase::AuthTicket => {
                let reason = format!("login refused: {}", error.description());
                self.login_failed(&reason, Some(error));
            }
            _ => self.events.push_back(NsEvent::Error { error }),
        }
    }

    fn login_failed(&mut self, reason: &str, error: Option<ServerError>) {
        self.events.push_back(NsEvent::LoginFailed {
            reason: reason.to_string(),
            error,
        });
        self.close(CloseReason::LoginEnded);
    }

    fn maybe_finish_sync(&mut self) {
        let done = self.sync.as_ref().is_some_and(|s| {
            s.replied && s.contacts.len() >= s.users && s.groups.len() >= s.groups_expected
        });
        if !done {
            return;
        }
        if let Some(s) = self.sync.take() {
            self.events.push_back(NsEvent::ContactList {
                version: s.version,
                unchanged: false,
                groups: s.groups,
                contacts: s.contacts,
                privacy: s.privacy,
                add_prompt: s.add_prompt,
            });
            self.after_sync();
        }
    }

    fn after_sync(&mut self) {
        if self.phase == Phase::Syncing {
            self.phase = Phase::Online;
            if let Some(status) = self.config.initial_status {
                self.set_status(status);
            }
        }
    }
}
