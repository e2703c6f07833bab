//! The server session machine: one per client connection. It runs the login
//! handshake, answers PING, and hands every other request to the server application
//! as a [`ServerEvent`]; the application answers through the reply methods.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::packet::*;
use crate::{login_hash, DecodeError, FrameDecoder, Presence};

/// A logged-in client's request, with the transaction id to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRequest {
    GetContacts,
    SetPresence(Presence),
    /// `source` is already set to the session's username (clients cannot spoof it).
    Message(Message),
    JoinChatroom(String),
    LeaveChatroom(String),
    GetChatrooms,
    GetParticipants(String),
    AddContact(AddContact),
    RemoveContact(i32),
    Registration(Registration),
    /// The client said goodbye; the session is closed after this event.
    Logout,
}

/// Why a server session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCloseReason {
    LoggedOut,
    LoginRejected,
    /// Nothing received for the idle timeout.
    Timeout,
    Protocol(DecodeError),
    /// [`ServerSession::close`] was called.
    Closed,
}

/// What the server machine reports to the server application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// LOGIN_RESPONSE arrived: check `password_hash` against
    /// [`ServerSession::expected_hash`], then call `accept_login` or `reject_login`.
    LoginAttempt {
        username: String,
        login: Login,
        password_hash: i32,
    },
    Request {
        transaction_id: u16,
        request: ClientRequest,
    },
    /// A packet that could not be decoded; an ERROR has been sent back.
    Malformed(DecodeError),
    /// The session is over; the driver should close the socket after flushing.
    Closed(ServerCloseReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AwaitingLogin,
    AwaitingResponse { login: Login, txn: u16 },
    AwaitingDecision { username: String, txn: u16 },
    LoggedIn { username: String },
    Closed,
}

/// Error code used in ERROR replies (the seeds only ever show 1).
pub const ERROR_CODE: u16 = 1;

/// A mig33 server-side connection, sans-IO. Driven like
/// [`ClientSession`](crate::client::ClientSession). The challenge and session id come
/// from the caller, which owns the randomness.
#[derive(Debug)]
pub struct ServerSession {
    state: State,
    challenge: String,
    session_id: String,
    decoder: FrameDecoder,
    out: Vec<u8>,
    events: VecDeque<ServerEvent>,
    next_push_txn: u16,
    idle_timeout: Duration,
    next_tick: Option<Instant>,
    silent_since: Option<Instant>,
}

impl ServerSession {
    /// A session that will send `challenge` when the client's LOGIN arrives. The idle
    /// timeout defaults to 300 s (clients PING every 60 to 120 s).
    pub fn new(challenge: impl Into<String>, session_id: impl Into<String>) -> ServerSession {
        ServerSession {
            state: State::AwaitingLogin,
            challenge: challenge.into(),
            session_id: session_id.into(),
            decoder: FrameDecoder::new(),
            out: Vec::new(),
            events: VecDeque::new(),
            next_push_txn: 1,
            idle_timeout: Duration::from_secs(300),
            next_tick: None,
            silent_since: None,
        }
    }

    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> ServerSession {
        self.idle_timeout = idle_timeout;
        self
    }

    /// The authenticated username, once logged in.
    pub fn username(&self) -> Option<&str> {
        match &self.state {
            State::LoggedIn { username } => Some(username),
            _ => None,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The hash a client knowing `password` sends for this session's challenge.
    pub fn expected_hash(&self, password: &str) -> i32 {
        login_hash(&self.challenge, password)
    }

    pub fn handle_input(&mut self, bytes: &[u8]) {
        if self.state == State::Closed {
            return;
        }
        self.decoder.feed(bytes);
        loop {
            let (txn, envelope) = match self.decoder.next_raw() {
                Ok(Some(raw)) => (raw.transaction_id, Envelope::decode(&raw)),
                Ok(None) => break,
                Err(e) => {
                    self.close_with(ServerCloseReason::Protocol(e));
                    break;
                }
            };
            self.silent_since = None;
            match envelope {
                Ok(e) => self.handle_packet(txn, e.packet),
                Err(e) => {
                    self.reply_error(txn, &format!("malformed packet: {e}"));
                    self.events.push_back(ServerEvent::Malformed(e));
                }
            }
            if self.state == State::Closed {
                break;
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.out))
        }
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            None
        } else {
            self.next_tick
        }
    }

    /// Closes the session when nothing has arrived for the idle timeout. Call once at
    /// start and whenever `poll_timeout` passes.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.next_tick.is_some_and(|t| now < t) {
            return;
        }
        let since = *self.silent_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= self.idle_timeout {
            self.close_with(ServerCloseReason::Timeout);
            return;
        }
        self.next_tick = Some(now + self.idle_timeout / 4);
    }

    /// Completes the login with LOGIN_OK.
    pub fn accept_login(&mut self, info: LoginOk) {
        if let State::AwaitingDecision { username, txn } = &self.state {
            let txn = *txn;
            self.state = State::LoggedIn {
                username: username.clone(),
            };
            self.reply(txn, info);
        }
    }

    /// Refuses the login with an ERROR carrying `reason`, and closes the session.
    pub fn reject_login(&mut self, reason: &str) {
        if let State::AwaitingDecision { txn, .. } = &self.state {
            let txn = *txn;
            self.reply_error(txn, reason);
            self.close_with(ServerCloseReason::LoginRejected);
        }
    }

    /// Sends `packet` as the answer to the request with this transaction id.
    pub fn reply(&mut self, transaction_id: u16, packet: impl Into<Packet>) {
        packet.into().encode_into(transaction_id, &mut self.out);
    }

    pub fn reply_ok(&mut self, transaction_id: u16) {
        self.reply(transaction_id, OkReply::default());
    }

    pub fn reply_error(&mut self, transaction_id: u16, text: &str) {
        let error = ErrorReply {
            text: Some(text.into()),
            code: Some(ERROR_CODE),
        };
        self.reply(transaction_id, error);
    }

    /// Answers GET_CONTACTS: GROUP*, CONTACT*, GET_CONTACTS_COMPLETE.
    pub fn send_contact_list(
        &mut self,
        transaction_id: u16,
        groups: &[Group],
        contacts: &[Contact],
    ) {
        for g in groups {
            self.reply(transaction_id, g.clone());
        }
        for c in contacts {
            self.reply(transaction_id, c.clone());
        }
        self.reply(transaction_id, GetContactsComplete {});
    }

    /// Sends an unsolicited packet with the server's own transaction numbering.
    pub fn push(&mut self, packet: impl Into<Packet>) -> u16 {
        let txn = self.next_push_txn;
        self.next_push_txn = self.next_push_txn.wrapping_add(1);
        packet.into().encode_into(txn, &mut self.out);
        txn
    }

    /// Ends the session (queued bytes can still be polled).
    pub fn close(&mut self) {
        if self.state != State::Closed {
            self.close_with(ServerCloseReason::Closed);
        }
    }

    fn close_with(&mut self, reason: ServerCloseReason) {
        self.state = State::Closed;
        self.events.push_back(ServerEvent::Closed(reason));
    }

    fn handle_packet(&mut self, txn: u16, packet: Packet) {
        if let Packet::Ping(_) = packet {
            self.reply(txn, PingReply {});
            return;
        }
        match &self.state {
            State::AwaitingLogin => match packet {
                Packet::Login(login) => {
                    let challenge = LoginChallenge {
                        session_id: Some(self.session_id.clone()),
                        challenge: self.challenge.clone(),
                    };
                    self.reply(txn, challenge);
                    self.state = State::AwaitingResponse { login, txn };
                }
                _ => self.reply_error(txn, "not logged in"),
            },
            State::AwaitingResponse { login, .. } => match packet {
                Packet::LoginResponse(r) => {
                    let login = login.clone();
                    let username = login.username.clone();
                    self.state = State::AwaitingDecision {
                        username: username.clone(),
                        txn,
                    };
                    self.events.push_back(ServerEvent::LoginAttempt {
                        username,
                        login,
                        password_hash: r.password_hash,
                    });
                }
                _ => self.reply_error(txn, "expected LOGIN_RESPONSE"),
            },
            State::AwaitingDecision { .. } => self.reply_error(txn, "login in progress"),
            State::LoggedIn { username } => {
                let request = match packet {
                    Packet::GetContacts(_) => ClientRequest::GetContacts,
                    Packet::SetPresence(p) => ClientRequest::SetPresence(p.presence),
                    Packet::Message(mut m) => {
                        m.source = username.clone();
                        ClientRequest::Message(m)
                    }
                    Packet::JoinChatroom(j) => ClientRequest::JoinChatroom(j.name),
                    Packet::LeaveChatroom(l) => ClientRequest::LeaveChatroom(l.name),
                    Packet::GetChatrooms(_) => ClientRequest::GetChatrooms,
                    Packet::GetChatroomParticipants(p) => ClientRequest::GetParticipants(p.name),
                    Packet::AddContact(a) => ClientRequest::AddContact(a),
                    Packet::RemoveContact(r) => ClientRequest::RemoveContact(r.contact_id),
                    Packet::Registration(r) => ClientRequest::Registration(r),
                    Packet::Logout(_) => ClientRequest::Logout,
                    Packet::PingReply(_) => return,
                    other => {
                        let text = format!("unexpected packet type {}", other.packet_type());
                        self.reply_error(txn, &text);
                        return;
                    }
                };
                let logout = request == ClientRequest::Logout;
                self.events.push_back(ServerEvent::Request {
                    transaction_id: txn,
                    request,
                });
                if logout {
                    self.close_with(ServerCloseReason::LoggedOut);
                }
            }
            State::Closed => {}
        }
    }
}
