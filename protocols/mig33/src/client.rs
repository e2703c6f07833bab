//! The client session machine: logs in, fetches the contact list, keeps the
//! connection alive, and turns server packets into [`ClientEvent`]s.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::packet::*;
use crate::{login_hash, DecodeError, DestinationType, FrameDecoder, Presence, MAX_FIELD_LEN};

/// The most rooms of one chatroom list kept; the server's further rooms are dropped.
pub const MAX_LISTED_ROOMS: usize = 1_000;

/// How the client introduces itself. [`ClientConfig::new`] fills in plausible values.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub username: String,
    pub password: String,
    pub initial_presence: Presence,
    pub protocol_version: u16,
    pub client_type: u8,
    pub client_version: u16,
    pub user_agent: String,
    pub device: String,
    pub language: String,
    /// PING interval; the connection is dead after two intervals without a reply.
    pub keepalive: Duration,
    /// Send GET_CONTACTS as soon as the login succeeds.
    pub fetch_contacts: bool,
}

impl ClientConfig {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> ClientConfig {
        ClientConfig {
            username: username.into(),
            password: password.into(),
            initial_presence: Presence::Available,
            protocol_version: 1,
            client_type: 1,
            client_version: 1,
            user_agent: "retrobridge".into(),
            device: "retrobridge".into(),
            language: "en".into(),
            keepalive: Duration::from_secs(60),
            fetch_contacts: true,
        }
    }
}

/// The transaction id of a request, used to match its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u16);

/// What a pending request asked for, reported back with its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    GetContacts,
    SetPresence(Presence),
    Message {
        destination_type: DestinationType,
        destination: String,
    },
    JoinChatroom(String),
    LeaveChatroom(String),
    GetChatrooms,
    GetParticipants(String),
    AddContact(String),
    RemoveContact(i32),
}

/// An ERROR packet's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub code: Option<u16>,
    pub text: String,
}

impl From<ErrorReply> for ServerError {
    fn from(e: ErrorReply) -> ServerError {
        ServerError {
            code: e.code,
            text: e.text.unwrap_or_else(|| "unspecified error".into()),
        }
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "{} (code {code})", self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// Why the session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// [`ClientSession::logout`] was called.
    LoggedOut,
    /// The server refused the login.
    LoginFailed(ServerError),
    /// No reply to PING (or to LOGIN) for two keepalive intervals.
    Timeout,
    /// The server sent bytes that cannot be framed; the stream is unusable.
    Protocol(DecodeError),
    /// The driver reported the connection lost ([`ClientSession::handle_disconnect`]).
    ConnectionLost,
}

/// What the client machine reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    LoggedIn {
        session_id: Option<String>,
        info: LoginOk,
    },
    /// The full contact list, after GET_CONTACTS_COMPLETE.
    ContactList {
        groups: Vec<Group>,
        contacts: Vec<Contact>,
    },
    /// A CONTACT pushed outside a list fetch (added or changed).
    ContactChanged(Contact),
    /// A GROUP pushed outside a list fetch.
    GroupChanged(Group),
    Presence {
        contact_id: i32,
        /// From the contact list, when the contact is known.
        username: Option<String>,
        presence: Presence,
    },
    /// A private, group chat or chatroom message (chatrooms echo one's own messages).
    Message(Message),
    /// The room list, after GET_CHATROOMS_COMPLETE.
    Chatrooms(Vec<Chatroom>),
    /// A room's full member list, as a reply or when someone joins or leaves.
    Participants {
        room: String,
        participants: Vec<String>,
    },
    /// The server answered a request with OK or ERROR.
    RequestDone {
        id: RequestId,
        request: Request,
        result: Result<(), ServerError>,
    },
    /// A system message (ALERT).
    Alert {
        text: String,
        invoker: Option<String>,
        data: Option<String>,
    },
    /// An ERROR that answers no known request.
    ServerError(ServerError),
    /// A packet that could not be decoded; the session goes on.
    Malformed(DecodeError),
    /// The session is over; the driver should close the socket.
    Closed(CloseReason),
}

/// Why a command was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("not logged in")]
    NotLoggedIn,
    #[error("text longer than {} bytes", MAX_FIELD_LEN)]
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingChallenge,
    AwaitingLoginResult,
    LoggedIn,
    Closed,
}

/// Unanswered requests kept at most; older ones are forgotten (a server may never
/// answer some requests, and the map must not grow without bound).
const MAX_PENDING: usize = 1024;

/// A mig33 client connection, sans-IO.
///
/// Drive it with: bytes from the socket into [`handle_input`](Self::handle_input);
/// [`poll_transmit`](Self::poll_transmit) until `None`, writing to the socket;
/// [`poll_event`](Self::poll_event) until `None`; and
/// [`handle_timeout`](Self::handle_timeout) once at start and whenever
/// [`poll_timeout`](Self::poll_timeout)'s deadline passes. The LOGIN packet is queued
/// by [`new`](Self::new).
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: State,
    decoder: FrameDecoder,
    out: Vec<u8>,
    events: VecDeque<ClientEvent>,
    next_txn: u16,
    session_id: Option<String>,
    pending: VecDeque<(u16, Request)>,
    /// Groups and contacts collected while a GET_CONTACTS is answered.
    listing: Option<(Vec<Group>, Vec<Contact>)>,
    /// Rooms collected while a GET_CHATROOMS is answered (at most [`MAX_LISTED_ROOMS`]).
    rooms_listing: Option<Vec<Chatroom>>,
    contacts: HashMap<i32, Contact>,
    joined: BTreeSet<String>,
    next_tick: Option<Instant>,
    /// When the oldest unanswered PING (or the LOGIN) went out.
    unanswered_since: Option<Instant>,
    heard: bool,
}

impl ClientSession {
    /// A new session; LOGIN is queued for transmission at once.
    pub fn new(config: ClientConfig) -> ClientSession {
        let mut s = ClientSession {
            config,
            state: State::AwaitingChallenge,
            decoder: FrameDecoder::new(),
            out: Vec::new(),
            events: VecDeque::new(),
            next_txn: 1,
            session_id: None,
            pending: VecDeque::new(),
            listing: None,
            rooms_listing: None,
            contacts: HashMap::new(),
            joined: BTreeSet::new(),
            next_tick: None,
            unanswered_since: None,
            heard: false,
        };
        let c = &s.config;
        let login = Login {
            language: Some(c.language.clone()),
            initial_presence: Some(c.initial_presence),
            device: Some(c.device.clone()),
            user_agent: Some(c.user_agent.clone()),
            username: c.username.clone(),
            client_version: Some(c.client_version),
            client_type: Some(c.client_type),
            protocol_version: Some(c.protocol_version),
        };
        s.send(login);
        s
    }

    pub fn username(&self) -> &str {
        &self.config.username
    }

    pub fn is_logged_in(&self) -> bool {
        self.state == State::LoggedIn
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The contact list as last received, by contact id.
    pub fn contacts(&self) -> &HashMap<i32, Contact> {
        &self.contacts
    }

    /// Rooms whose JOIN_CHATROOM was answered with OK (and not left since).
    pub fn joined_rooms(&self) -> &BTreeSet<String> {
        &self.joined
    }

    /// Bytes received from the socket.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if self.state == State::Closed {
            return;
        }
        self.decoder.feed(bytes);
        loop {
            let envelope = match self.decoder.next_raw() {
                Ok(Some(raw)) => Envelope::decode(&raw),
                Ok(None) => break,
                Err(e) => {
                    self.close(CloseReason::Protocol(e));
                    break;
                }
            };
            self.heard = true;
            self.unanswered_since = None;
            match envelope {
                Ok(e) => self.handle_packet(e.transaction_id, e.packet),
                Err(e) => self.events.push_back(ClientEvent::Malformed(e)),
            }
            if self.state == State::Closed {
                break;
            }
        }
        self.decoder.release_consumed();
    }

    /// Bytes to write to the socket, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.out))
        }
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called. `None`
    /// before the first call and after the session closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            None
        } else {
            self.next_tick
        }
    }

    /// Advances the keepalive clock: sends PING every interval once logged in, and
    /// closes the session when nothing has come back for two intervals.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        let interval = self.config.keepalive;
        match self.next_tick {
            None => {
                // First call: the LOGIN is in flight and must be answered in time.
                if self.state != State::LoggedIn && !self.heard {
                    self.unanswered_since = Some(now);
                }
            }
            Some(t) if now < t => return,
            Some(_) => {
                if let Some(since) = self.unanswered_since {
                    if now.saturating_duration_since(since) >= interval * 2 {
                        self.close(CloseReason::Timeout);
                        return;
                    }
                }
                if self.state == State::LoggedIn {
                    self.send(Ping {});
                    self.unanswered_since.get_or_insert(now);
                }
            }
        }
        self.next_tick = Some(now + interval);
    }

    /// The socket was closed or failed: the session ends with
    /// [`CloseReason::ConnectionLost`].
    pub fn handle_disconnect(&mut self) {
        if self.state != State::Closed {
            self.close(CloseReason::ConnectionLost);
        }
    }

    /// Asks for the contact list; answered by [`ClientEvent::ContactList`].
    pub fn get_contacts(&mut self) -> Result<RequestId, CommandError> {
        self.ensure_logged_in()?;
        self.listing = Some((Vec::new(), Vec::new()));
        Ok(self.request(GetContacts {}, Request::GetContacts))
    }

    pub fn set_presence(&mut self, presence: Presence) -> Result<RequestId, CommandError> {
        self.ensure_logged_in()?;
        Ok(self.request(SetPresence { presence }, Request::SetPresence(presence)))
    }

    /// Sends a plain-text MESSAGE. Chatroom messages come back as a
    /// [`ClientEvent::Message`] echo.
    pub fn send_message(
        &mut self,
        destination_type: DestinationType,
        destination: &str,
        text: &str,
    ) -> Result<RequestId, CommandError> {
        self.ensure_logged_in()?;
        if text.len() > MAX_FIELD_LEN as usize / 2 {
            return Err(CommandError::TooLong);
        }
        let msg = Message::text(
            self.config.username.clone(),
            destination_type,
            destination,
            text,
        );
        let request = Request::Message {
            destination_type,
            destination: destination.into(),
        };
        Ok(self.request(msg, request))
    }

    pub fn send_private(&mut self, to: &str, text: &str) -> Result<RequestId, CommandError> {
        self.send_message(DestinationType::Private, to, text)
    }

    pub fn send_chatroom(&mut self, room: &str, text: &str) -> Result<RequestId, CommandError> {
        self.send_message(DestinationType::Chatroom, room, text)
    }

    pub fn join_chatroom(&mut self, name: &str) -> Result<RequestId, CommandError> {
        self.ensure_logged_in()?;
        let packet = JoinChatroom { name: name.into() };
        Ok(self.request(packet, Request::JoinChatroom(name.into())))
    }

    pub fn leave_chatroom(&mut self, name: &str) -> Result<RequestId, CommandError> {
        self.ensure_logged_in()?;
        let packet = LeaveChatroom { name: name.into() };
        Ok(self.request(packet, Request::LeaveChatroom(name.into())))
    }

    /// Asks for the room list; answered by [`ClientEvent::Chatrooms`].
    pub fn get_chatrooms(&mut self) -> Result<RequestId, CommandError> {
        self.ensure_logged_in()?;
        self.rooms_listing = Some(Vec::new());
        Ok(self.request(GetChatrooms {}, Request::GetChatrooms))
    }

    /// Asks for a room's members; answered by [`ClientEvent::Participants`].
    pub fn get_participants(&mut self, room: &str) -> Result<RequestId, CommandError> {
        self.ensure_logged_in()?;
        let packet = GetChatroomParticipants { name: room.into() };
        Ok(self.request(packet, Request::GetParticipants(room.into())))
    }

    pub fn add_contact(
        &mut self,
        username: &str,
        display_name: Option<&str>,
        group_id: Option<i32>,
    ) -> Result<RequestId, CommandError> {
        self.ensure_logged_in()?;
        let packet = AddContact {
            username: username.into(),
            display_name: display_name.map(Into::into),
            group_id,
        };
        Ok(self.request(packet, Request::AddContact(username.into())))
    }

    pub fn remove_contact(&mut self, contact_id: i32) -> Result<RequestId, CommandError> {
        self.ensure_logged_in()?;
        let packet = RemoveContact { contact_id };
        Ok(self.request(packet, Request::RemoveContact(contact_id)))
    }

    /// Sends LOGOUT and closes the session (flush `poll_transmit` before closing the socket).
    pub fn logout(&mut self) {
        if self.state == State::Closed {
            return;
        }
        self.send(Logout {});
        self.close(CloseReason::LoggedOut);
    }

    fn ensure_logged_in(&self) -> Result<(), CommandError> {
        if self.state == State::LoggedIn {
            Ok(())
        } else {
            Err(CommandError::NotLoggedIn)
        }
    }

    fn send(&mut self, packet: impl Into<Packet>) -> u16 {
        let txn = self.next_txn;
        self.next_txn = self.next_txn.wrapping_add(1);
        packet.into().encode_into(txn, &mut self.out);
        txn
    }

    fn request(&mut self, packet: impl Into<Packet>, request: Request) -> RequestId {
        let txn = self.send(packet);
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back((txn, request));
        RequestId(txn)
    }

    fn take_pending(&mut self, txn: u16) -> Option<Request> {
        let i = self.pending.iter().position(|(t, _)| *t == txn)?;
        self.pending.remove(i).map(|(_, r)| r)
    }

    fn close(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        self.events.push_back(ClientEvent::Closed(reason));
    }

    fn handle_packet(&mut self, txn: u16, packet: Packet) {
        match packet {
            Packet::LoginChallenge(c) if self.state == State::AwaitingChallenge => {
                let hash = login_hash(&c.challenge, &self.config.password);
                self.state = State::AwaitingLoginResult;
                self.session_id = c.session_id;
                self.send(LoginResponse {
                    password_hash: hash,
                });
            }
            Packet::LoginOk(info) if self.state == State::AwaitingLoginResult => {
                self.state = State::LoggedIn;
                let session_id = self.session_id.clone();
                self.events
                    .push_back(ClientEvent::LoggedIn { session_id, info });
                if self.config.fetch_contacts {
                    let _ = self.get_contacts();
                }
            }
            Packet::Error(e) if self.state != State::LoggedIn => {
                self.close(CloseReason::LoginFailed(e.into()));
            }
            Packet::Error(e) => match self.take_pending(txn) {
                Some(request) => self.request_done(txn, request, Err(e.into())),
                None => self.events.push_back(ClientEvent::ServerError(e.into())),
            },
            Packet::Ok(_) => {
                if let Some(request) = self.take_pending(txn) {
                    self.request_done(txn, request, Ok(()));
                }
            }
            Packet::Ping(_) => {
                Packet::PingReply(PingReply {}).encode_into(txn, &mut self.out);
            }
            Packet::PingReply(_) => {}
            Packet::Group(g) => match &mut self.listing {
                Some((groups, _)) => groups.push(g),
                None => self.events.push_back(ClientEvent::GroupChanged(g)),
            },
            Packet::Contact(c) => match &mut self.listing {
                Some((_, contacts)) => contacts.push(c),
                None => {
                    self.contacts.insert(c.contact_id, c.clone());
                    self.events.push_back(ClientEvent::ContactChanged(c));
                }
            },
            Packet::GetContactsComplete(_) => {
                self.take_pending(txn);
                let (groups, contacts) = self.listing.take().unwrap_or_default();
                self.contacts = contacts.iter().map(|c| (c.contact_id, c.clone())).collect();
                self.events
                    .push_back(ClientEvent::ContactList { groups, contacts });
            }
            Packet::ContactPresence(p) => {
                let username = self.contacts.get_mut(&p.contact_id).map(|c| {
                    c.presence = Some(p.presence);
                    c.username.clone()
                });
                self.events.push_back(ClientEvent::Presence {
                    contact_id: p.contact_id,
                    username,
                    presence: p.presence,
                });
            }
            Packet::Message(m) => self.events.push_back(ClientEvent::Message(m)),
            Packet::Chatroom(room) => {
                // A server that never ends its list must not grow it without bound.
                if let Some(rooms) = &mut self.rooms_listing {
                    if rooms.len() < MAX_LISTED_ROOMS {
                        rooms.push(room);
                    }
                }
            }
            Packet::GetChatroomsComplete(_) => {
                self.take_pending(txn);
                let rooms = self.rooms_listing.take().unwrap_or_default();
                self.events.push_back(ClientEvent::Chatrooms(rooms));
            }
            Packet::ChatroomParticipants(p) => {
                if let Some(i) = self
                    .pending
                    .iter()
                    .position(|(t, r)| *t == txn && matches!(r, Request::GetParticipants(_)))
                {
                    self.pending.remove(i);
                }
                self.events.push_back(ClientEvent::Participants {
                    room: p.name,
                    participants: p.participants.names,
                });
            }
            Packet::Alert(a) => {
                let text = a.display_text().to_owned();
                let invoker = a.invoker().map(str::to_owned);
                self.events.push_back(ClientEvent::Alert {
                    text,
                    invoker,
                    data: if a.description.is_some() {
                        a.data
                    } else {
                        None
                    },
                });
            }
            // Client-to-server packets, or login packets out of turn: nothing to do.
            _ => {}
        }
    }

    fn request_done(&mut self, txn: u16, request: Request, result: Result<(), ServerError>) {
        if result.is_ok() {
            match &request {
                Request::JoinChatroom(room) => {
                    self.joined.insert(room.clone());
                }
                Request::LeaveChatroom(room) => {
                    self.joined.remove(room);
                }
                _ => {}
            }
        }
        self.events.push_back(ClientEvent::RequestDone {
            id: RequestId(txn),
            request,
            result,
        });
    }
}
