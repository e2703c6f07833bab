//! The client side of a UDP session: login, ACKs and duplicates, retransmission,
//! keepalives, and turning server packets into [`ClientEvent`]s.

use super::reliability::{Expiry, Retransmitter, SeenWindow, KEEPALIVE_INTERVAL, RETRY_CYCLES};
use crate::error::{CommandError, DecodeError};
use crate::message::{MessageContent, MessageKind};
use crate::packet::client::{ClientPacket, SearchQuery, TEXT_CODE_X1};
use crate::packet::server::{system_message_text, ServerPacket};
use crate::packet::{client_cmd, server_cmd};
use crate::text::{encode_cp1252, unrepresentable};
use crate::types::{ExtInfo, MessageTime, Status, UserRecord};
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Instant;

/// Longest password ICQ v2 accepts, in characters.
pub const MAX_PASSWORD_CHARS: usize = 8;
/// Longest message body (encoded bytes) this session sends in one datagram.
pub const MAX_TEXT_BYTES: usize = 4096;
/// CONTACT_LIST packets carry at most this many UINs each; longer lists are split.
pub const CONTACTS_PER_PACKET: usize = 200;

/// What LOGIN announces besides UIN and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOptions {
    pub status: Status,
    /// Sent in CONTACT_LIST once logged in; the server reports only these users.
    pub contacts: Vec<u32>,
    /// TCP port for peer connections (0: none).
    pub tcp_port: u32,
    pub ip: Ipv4Addr,
}

impl Default for LoginOptions {
    fn default() -> Self {
        LoginOptions {
            status: Status::ONLINE,
            contacts: Vec::new(),
            tcp_port: 0,
            ip: Ipv4Addr::UNSPECIFIED,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// `login` not called yet.
    Idle,
    /// LOGIN sent, no LOGIN_REPLY yet.
    LoggingIn,
    LoggedIn,
    /// Logged out, refused or gone; a new session is needed.
    Closed,
}

/// Why a login did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginFailure {
    /// The server answered BAD_PASSWORD.
    WrongPassword,
    /// The server answered TRY_AGAIN.
    ServerBusy,
    /// LOGIN went unanswered through every retransmission.
    NoResponse,
    /// The server ended the session during login (command code given).
    Refused { command: u16 },
}

impl std::fmt::Display for LoginFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginFailure::WrongPassword => f.write_str("wrong password"),
            LoginFailure::ServerBusy => f.write_str("server busy, try again later"),
            LoginFailure::NoResponse => f.write_str("the server did not answer"),
            LoginFailure::Refused { command } => {
                write!(f, "the server refused the login (command {command:#06x})")
            }
        }
    }
}

/// Why a logged-in session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// `logout` was called.
    LoggedOut,
    /// Packets went unacknowledged through every retransmission and B_MESSAGE_ACK.
    ServerNotResponding,
    /// The server said the session is over (NOT_CONNECTED or GO_AWAY).
    ServerClosed { command: u16 },
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisconnectReason::LoggedOut => f.write_str("logged out"),
            DisconnectReason::ServerNotResponding => f.write_str("the server stopped answering"),
            DisconnectReason::ServerClosed { command } => {
                write!(f, "the server ended the session (command {command:#06x})")
            }
        }
    }
}

/// What the session reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    LoggedIn {
        uin: u32,
        /// Our address as the server sees it.
        ip: Ipv4Addr,
    },
    /// Terminal: the session is closed afterwards (no `Disconnected` follows).
    LoginFailed {
        reason: LoginFailure,
    },
    /// A RECEIVE_MESSAGE (sent through the server, e.g. while we were offline).
    Message {
        from: u32,
        kind: MessageKind,
        /// Human-readable rendering of `content`.
        text: String,
        content: MessageContent,
        /// When it was sent, from the packet's date fields (UTC).
        timestamp: MessageTime,
    },
    ContactOnline {
        uin: u32,
        status: Status,
        ip: Ipv4Addr,
        tcp_port: u32,
    },
    ContactOffline {
        uin: u32,
    },
    ContactStatus {
        uin: u32,
        status: Status,
    },
    SearchResult {
        search_seq: u16,
        user: UserRecord,
    },
    SearchEnd {
        search_seq: u16,
        more: bool,
    },
    Info {
        info_seq: u16,
        user: UserRecord,
    },
    ExtInfo {
        info_seq: u16,
        uin: u32,
        info: ExtInfo,
    },
    SystemMessage {
        text: String,
    },
    /// The server acknowledged the SEND_MESSAGE with this SEQ_NUM.
    MessageAcked {
        seq: u16,
    },
    /// A server packet this session does not interpret.
    Unhandled {
        command: u16,
        params: Vec<u8>,
    },
    /// Terminal: the session is closed.
    Disconnected {
        reason: DisconnectReason,
    },
}

/// Returned by `send_message`: the packet's SEQ_NUM (matched later by
/// [`ClientEvent::MessageAcked`]) and the characters sent as `?` because
/// Windows-1252 lacks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    pub seq: u16,
    pub unrepresentable: Vec<char>,
}

/// A sans-IO ICQ v2 client session. See the crate docs for the driving loop.
pub struct ClientSession {
    uin: u32,
    state: SessionState,
    options: LoginOptions,
    next_seq: u16,
    next_query: u16,
    retransmit: Retransmitter,
    seen: SeenWindow,
    next_keepalive: Option<Instant>,
    /// The server ACKed our LOGIN (it heard us, whatever it decides).
    login_acked: bool,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
}

impl Default for ClientSession {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientSession {
    pub fn new() -> Self {
        ClientSession {
            uin: 0,
            state: SessionState::Idle,
            options: LoginOptions::default(),
            next_seq: 1, // the client counts from 1
            next_query: 1,
            retransmit: Retransmitter::default(),
            seen: SeenWindow::new(),
            next_keepalive: None,
            login_acked: false,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    pub fn uin(&self) -> u32 {
        self.uin
    }

    /// Whether the server acknowledged LOGIN. A v2 server that receives a wrong
    /// password may ACK the LOGIN and then say nothing more: an acknowledged login
    /// without LOGIN_REPLY is how such a refusal looks from here.
    pub fn login_acknowledged(&self) -> bool {
        self.login_acked
    }

    /// Whether the packet with this SEQ_NUM (from a [`SendReceipt`] or
    /// [`probe`](Self::probe)) still awaits the server's ACK.
    pub fn awaits_ack(&self, seq: u16) -> bool {
        self.retransmit.is_pending(seq)
    }

    /// The contact list sent (or to be sent) to the server.
    pub fn contacts(&self) -> &[u32] {
        &self.options.contacts
    }

    /// Sends LOGIN. Passwords over 8 characters or outside Windows-1252 are refused
    /// here, before anything is sent.
    pub fn login(
        &mut self,
        uin: u32,
        password: &str,
        options: LoginOptions,
        now: Instant,
    ) -> Result<(), CommandError> {
        if self.state != SessionState::Idle {
            return Err(CommandError::AlreadyActive);
        }
        let len = password.chars().count();
        if len > MAX_PASSWORD_CHARS {
            return Err(CommandError::PasswordTooLong { len });
        }
        let bad = unrepresentable(password);
        if !bad.is_empty() {
            return Err(CommandError::PasswordNotRepresentable(bad));
        }
        self.uin = uin;
        self.state = SessionState::LoggingIn;
        let login = ClientPacket::Login {
            tcp_port: options.tcp_port,
            password: password.to_string(),
            ip: options.ip,
            status: options.status,
            // LOGIN_SEQ_NUM echoes back in LOGIN_REPLY; the packet's own SEQ_NUM
            // is as unique as anything.
            login_seq: self.next_seq,
        };
        self.options = options;
        self.send_reliable(login, now);
        Ok(())
    }

    /// Sends a message through the server. Characters outside Windows-1252 go as
    /// `?` and are listed in the receipt.
    pub fn send_message(
        &mut self,
        to: u32,
        content: &MessageContent,
        now: Instant,
    ) -> Result<SendReceipt, CommandError> {
        self.require_logged_in()?;
        let (kind, body) = content.to_wire();
        let encoded = encode_cp1252(&body);
        if encoded.bytes.len() > MAX_TEXT_BYTES {
            return Err(CommandError::TextTooLong {
                len: encoded.bytes.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        let seq = self.send_reliable(
            ClientPacket::SendMessage {
                to,
                kind,
                text: body,
            },
            now,
        );
        Ok(SendReceipt {
            seq,
            unrepresentable: content.unrepresentable(),
        })
    }

    /// `send_message` with plain text.
    pub fn send_text(
        &mut self,
        to: u32,
        text: &str,
        now: Instant,
    ) -> Result<SendReceipt, CommandError> {
        self.send_message(to, &MessageContent::Text(text.to_string()), now)
    }

    pub fn set_status(&mut self, status: Status, now: Instant) -> Result<(), CommandError> {
        self.require_logged_in()?;
        self.options.status = status;
        self.send_reliable(ClientPacket::StatusChange { status }, now);
        Ok(())
    }

    /// Adds a user to the contact list (ADD_TO_LIST, parameters: the UIN).
    pub fn add_contact(&mut self, uin: u32, now: Instant) -> Result<(), CommandError> {
        self.require_logged_in()?;
        if !self.options.contacts.contains(&uin) {
            self.options.contacts.push(uin);
        }
        let packet = ClientPacket::Other {
            command: client_cmd::ADD_TO_LIST,
            params: uin.to_le_bytes().to_vec(),
        };
        self.send_reliable(packet, now);
        Ok(())
    }

    /// Starts a search; results come as `SearchResult`s then `SearchEnd` carrying
    /// the returned search sequence number.
    pub fn search(&mut self, query: &SearchQuery, now: Instant) -> Result<u16, CommandError> {
        self.require_logged_in()?;
        let search_seq = self.next_query();
        let packet = match query {
            SearchQuery::Uin(uin) => ClientPacket::SearchUin {
                search_seq,
                uin: *uin,
            },
            SearchQuery::Name { nick, first, last } => {
                if nick.is_empty() && first.is_empty() && last.is_empty() {
                    return Err(CommandError::EmptySearch);
                }
                ClientPacket::SearchUser {
                    search_seq,
                    nick: nick.clone(),
                    first: first.clone(),
                    last: last.clone(),
                    email: String::new(),
                }
            }
            SearchQuery::Email(email) => {
                if email.is_empty() {
                    return Err(CommandError::EmptySearch);
                }
                ClientPacket::SearchUser {
                    search_seq,
                    nick: String::new(),
                    first: String::new(),
                    last: String::new(),
                    email: email.clone(),
                }
            }
        };
        self.send_reliable(packet, now);
        Ok(search_seq)
    }

    /// Requests basic info; answered by `Info` with the returned sequence number.
    pub fn request_info(&mut self, uin: u32, now: Instant) -> Result<u16, CommandError> {
        self.require_logged_in()?;
        let info_seq = self.next_query();
        self.send_reliable(ClientPacket::InfoReq { info_seq, uin }, now);
        Ok(info_seq)
    }

    /// Requests extended info; answered by `ExtInfo` with the returned sequence number.
    pub fn request_ext_info(&mut self, uin: u32, now: Instant) -> Result<u16, CommandError> {
        self.require_logged_in()?;
        let info_seq = self.next_query();
        self.send_reliable(ClientPacket::ExtInfoReq { info_seq, uin }, now);
        Ok(info_seq)
    }

    /// Sends a KEEP_ALIVE now, besides the regular ones, and returns its SEQ_NUM: an
    /// owner that wants to notice a lost server sooner than the retransmission
    /// schedule does checks [`awaits_ack`](Self::awaits_ack) later.
    pub fn probe(&mut self, now: Instant) -> Result<u16, CommandError> {
        self.require_logged_in()?;
        Ok(self.send_reliable(ClientPacket::KeepAlive, now))
    }

    /// Sends B_USER_DISCONNECTED (not retransmitted: we are leaving) and closes.
    pub fn logout(&mut self, _now: Instant) {
        if matches!(self.state, SessionState::LoggingIn | SessionState::LoggedIn) {
            self.send_unreliable(ClientPacket::SendTextCode {
                text: "B_USER_DISCONNECTED".into(),
                x1: TEXT_CODE_X1,
            });
            self.close(ClientEvent::Disconnected {
                reason: DisconnectReason::LoggedOut,
            });
        }
    }

    /// Feeds one received datagram. A datagram that does not decode changes
    /// nothing and is returned as an error (to log).
    pub fn handle_datagram(&mut self, bytes: &[u8], now: Instant) -> Result<(), DecodeError> {
        let frame = ServerPacket::decode(bytes)?;
        if !matches!(self.state, SessionState::LoggingIn | SessionState::LoggedIn) {
            return Ok(());
        }
        if frame.packet == ServerPacket::Ack {
            match self.retransmit.ack(frame.seq) {
                Some(client_cmd::SEND_MESSAGE) => self
                    .events
                    .push_back(ClientEvent::MessageAcked { seq: frame.seq }),
                Some(client_cmd::LOGIN) => self.login_acked = true,
                _ => {}
            }
            return Ok(());
        }
        // Every other packet is ACKed, duplicates again (our ACK may have been lost).
        let ack = ClientPacket::Ack.encode(frame.seq, self.uin);
        self.transmit.push_back(ack);
        // NOT_CONNECTED / GO_AWAY count even with a SEQ_NUM already seen: a
        // restarted server numbers from 0 again, and ending twice is harmless.
        let ends_session = matches!(
            frame.packet,
            ServerPacket::Other {
                command: server_cmd::NOT_CONNECTED | server_cmd::GO_AWAY,
                ..
            }
        );
        if self.seen.insert(frame.seq) || ends_session {
            self.process(frame.packet, now);
        }
        Ok(())
    }

    /// Runs retransmissions and keepalives that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !matches!(self.state, SessionState::LoggingIn | SessionState::LoggedIn) {
            return;
        }
        match self
            .retransmit
            .on_timeout(now, RETRY_CYCLES, &mut self.transmit)
        {
            Some(Expiry::CycleEnded) => self.send_unreliable(ClientPacket::SendTextCode {
                text: "B_MESSAGE_ACK".into(),
                x1: TEXT_CODE_X1,
            }),
            Some(Expiry::GiveUp) => {
                let event = if self.state == SessionState::LoggingIn {
                    ClientEvent::LoginFailed {
                        reason: LoginFailure::NoResponse,
                    }
                } else {
                    ClientEvent::Disconnected {
                        reason: DisconnectReason::ServerNotResponding,
                    }
                };
                self.close(event);
                return;
            }
            None => {}
        }
        if let Some(at) = self.next_keepalive {
            if at <= now {
                self.next_keepalive = Some(now + KEEPALIVE_INTERVAL);
                self.send_reliable(ClientPacket::KeepAlive, now);
            }
        }
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.retransmit.next_due(), self.next_keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next datagram to send to the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn process(&mut self, packet: ServerPacket, now: Instant) {
        let event = match packet {
            ServerPacket::LoginReply { uin, ip, .. } => {
                if self.state != SessionState::LoggingIn {
                    return;
                }
                self.state = SessionState::LoggedIn;
                self.next_keepalive = Some(now + KEEPALIVE_INTERVAL);
                self.send_reliable(ClientPacket::Login1, now);
                let contacts = self.options.contacts.clone();
                for chunk in contacts.chunks(CONTACTS_PER_PACKET) {
                    let uins = chunk.to_vec();
                    self.send_reliable(ClientPacket::ContactList { uins }, now);
                }
                if contacts.is_empty() {
                    let uins = Vec::new();
                    self.send_reliable(ClientPacket::ContactList { uins }, now);
                }
                self.send_reliable(ClientPacket::Login2, now);
                ClientEvent::LoggedIn { uin, ip }
            }
            ServerPacket::BadPassword => {
                return self.fail_or_close(LoginFailure::WrongPassword, server_cmd::BAD_PASSWORD)
            }
            ServerPacket::UserOnline {
                uin,
                ip,
                tcp_port,
                status,
                ..
            } => ClientEvent::ContactOnline {
                uin,
                status,
                ip,
                tcp_port,
            },
            ServerPacket::UserOffline { uin } => ClientEvent::ContactOffline { uin },
            ServerPacket::StatusUpdate { uin, status } => {
                ClientEvent::ContactStatus { uin, status }
            }
            ServerPacket::ReceiveMessage {
                from,
                time,
                kind,
                text,
            } => {
                let content = MessageContent::parse(kind, &text);
                ClientEvent::Message {
                    from,
                    kind: content.kind(),
                    text: content.to_plain_text(),
                    content,
                    timestamp: time,
                }
            }
            ServerPacket::UserFound { search_seq, user } => {
                ClientEvent::SearchResult { search_seq, user }
            }
            ServerPacket::EndOfSearch { search_seq, more } => {
                ClientEvent::SearchEnd { search_seq, more }
            }
            ServerPacket::InfoReply { info_seq, user } => ClientEvent::Info { info_seq, user },
            ServerPacket::ExtInfoReply {
                info_seq,
                uin,
                info,
            } => ClientEvent::ExtInfo {
                info_seq,
                uin,
                info,
            },
            ServerPacket::Other { command, params } => match command {
                server_cmd::SYSTEM_MESSAGE => ClientEvent::SystemMessage {
                    text: system_message_text(&params),
                },
                server_cmd::TRY_AGAIN if self.state == SessionState::LoggingIn => {
                    return self.fail_or_close(LoginFailure::ServerBusy, command)
                }
                server_cmd::NOT_CONNECTED | server_cmd::GO_AWAY => {
                    return self.fail_or_close(LoginFailure::Refused { command }, command)
                }
                _ => ClientEvent::Unhandled { command, params },
            },
            ServerPacket::Ack => return,
        };
        self.events.push_back(event);
    }

    /// During login: LoginFailed with `failure`; afterwards: Disconnected.
    fn fail_or_close(&mut self, failure: LoginFailure, command: u16) {
        let event = match self.state {
            SessionState::LoggingIn => ClientEvent::LoginFailed { reason: failure },
            _ => ClientEvent::Disconnected {
                reason: DisconnectReason::ServerClosed { command },
            },
        };
        self.close(event);
    }

    fn close(&mut self, event: ClientEvent) {
        self.state = SessionState::Closed;
        self.retransmit.clear();
        self.next_keepalive = None;
        self.events.push_back(event);
    }

    fn require_logged_in(&self) -> Result<(), CommandError> {
        match self.state {
            SessionState::LoggedIn => Ok(()),
            _ => Err(CommandError::NotLoggedIn),
        }
    }

    fn next_query(&mut self) -> u16 {
        let q = self.next_query;
        self.next_query = self.next_query.wrapping_add(1);
        q
    }

    fn take_seq(&mut self) -> u16 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    fn send_reliable(&mut self, packet: ClientPacket, now: Instant) -> u16 {
        let seq = self.take_seq();
        let bytes = packet.encode(seq, self.uin);
        self.retransmit
            .track(seq, packet.command(), bytes.clone(), now);
        self.transmit.push_back(bytes);
        seq
    }

    fn send_unreliable(&mut self, packet: ClientPacket) {
        let seq = self.take_seq();
        self.transmit.push_back(packet.encode(seq, self.uin));
    }
}
