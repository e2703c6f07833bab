//! The task that owns one login's mig33 connection: connects, logs in, turns session
//! events into `NetworkEvent`s and core commands into requests, and after a loss
//! reconnects with backoff, rejoins its chatrooms and sends what was queued meanwhile.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use mig33_proto::{self as proto, ClientConfig, ClientEvent, ClientSession, CloseReason};
use mig33_proto::{CommandError, DestinationType, Request, ServerError};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use super::convert;
use crate::core::{
    ChatId, Delivery, EventSink, LoginCommand, LoginCredentials, MessageKind, NetworkEvent,
    Profile, RoomListing, SendError,
};
use crate::networks::driver::{self, Session};
use crate::networks::pacing::SendBucket;
use crate::networks::read_buf;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a connection ended.
enum End {
    /// Logout, a refused login, or nobody listens any more: the task ends.
    Stop,
    /// The connection failed or dropped: reconnect.
    Lost(String),
}

/// A request sent on the current connection, waiting for OK or ERROR.
enum Pending {
    /// A core command; answered (or re-queued after a loss) when its result is known.
    Command(LoginCommand),
    /// Rejoining a room after a reconnect (nobody waits for it).
    Rejoin(String),
}

pub struct LoginTask {
    server: String,
    credentials: LoginCredentials,
    events: EventSink,
    commands: crate::core::CommandReceiver,
    /// Commands waiting for a logged-in connection, oldest first.
    queued: VecDeque<LoginCommand>,
    /// Chatrooms this login is in or joining: rejoined after a reconnect.
    rooms: BTreeSet<String>,
    /// The member list last reported per room, so that only changes are reported.
    members: HashMap<String, Vec<String>>,
    /// Group ids by lower-cased name, for ADD_CONTACT.
    groups: HashMap<String, i32>,
    /// What the user chose; sent at login so that a reconnect keeps it.
    presence: proto::Presence,
    /// The current connection logged in (the driver then resets its backoff).
    logged_in: bool,
    /// This login's pace of messages.
    sending: SendBucket,
}

impl Session for LoginTask {
    const NETWORK: &'static str = "mig33";

    fn events(&self) -> &EventSink {
        &self.events
    }

    fn commands(&mut self) -> &mut crate::core::CommandReceiver {
        &mut self.commands
    }

    fn offline(&mut self, command: LoginCommand) {
        self.queue(command);
    }

    async fn connect(&mut self) -> driver::End {
        let end = self.connection().await;
        let was_online = std::mem::take(&mut self.logged_in);
        match end {
            End::Stop => driver::End::Stop,
            End::Lost(reason) => driver::End::Lost { reason, was_online },
        }
    }
}

impl LoginTask {
    pub fn new(
        server: String,
        credentials: LoginCredentials,
        events: EventSink,
        commands: crate::core::CommandReceiver,
        sending: SendBucket,
    ) -> LoginTask {
        let presence = convert::presence_from_core(credentials.presence);
        LoginTask {
            server,
            credentials,
            events,
            commands,
            queued: VecDeque::new(),
            rooms: BTreeSet::new(),
            members: HashMap::new(),
            groups: HashMap::new(),
            presence,
            logged_in: false,
            sending,
        }
    }

    fn emit(&self, event: NetworkEvent) {
        let what = match &event {
            // Message texts stay out of the log.
            NetworkEvent::Message { chat, from, .. } => format!("message in {chat:?} from {from}"),
            other => format!("{other:?}"),
        };
        tracing::debug!(user = %self.credentials.id, "mig33 event: {what:.300}");
        self.events.emit(event);
    }

    /// The next queued command, unless it is a message the pacing holds back: then the
    /// instant it may go (the commands behind it wait too, keeping the order).
    fn next_command(&mut self) -> Result<Option<LoginCommand>, Instant> {
        if let Some(LoginCommand::SendText { .. }) = self.queued.front() {
            self.sending.take(Instant::now())?;
        }
        Ok(self.queued.pop_front())
    }

    fn queue(&mut self, command: LoginCommand) {
        match command {
            // Typing is momentary: stale by the time a connection is back.
            LoginCommand::Typing { .. } => {}
            LoginCommand::LeaveRoom { ref room, .. } => {
                // Do not rejoin a room the user is leaving.
                self.rooms.remove(room);
                self.queued.push_back(command);
            }
            command => self.queued.push_back(command),
        }
    }

    /// One connection, from TCP connect to its end.
    async fn connection(&mut self) -> End {
        let stream =
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.server)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return End::Lost(format!("cannot reach {}: {e}", self.server)),
                Err(_) => return End::Lost(format!("no answer from {}", self.server)),
            };
        let _ = stream.set_nodelay(true);
        let (reader, mut writer) = stream.into_split();
        let mut config = ClientConfig::new(
            self.credentials.id.clone(),
            self.credentials.password.clone(),
        );
        config.initial_presence = self.presence;
        let mut session = ClientSession::new(config);
        session.handle_timeout(Instant::now());
        let mut pending: BTreeMap<u16, Pending> = BTreeMap::new();

        let end = loop {
            if let Some(bytes) = session.poll_transmit() {
                // Bounded: a peer that stops reading must not stall the login forever.
                match tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&bytes)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::debug!("mig33 write failed: {e}");
                        session.handle_disconnect();
                    }
                    Err(_) => {
                        tracing::debug!("mig33 write timed out");
                        session.handle_disconnect();
                    }
                }
                continue;
            }
            if let Some(event) = session.poll_event() {
                match self.on_event(&mut session, &mut pending, event) {
                    Some(end) => break end,
                    None => continue,
                }
            }
            let mut paced = None;
            if session.is_logged_in() {
                match self.next_command() {
                    Ok(Some(command)) => {
                        if let Some(end) = self.execute(&mut session, &mut pending, command) {
                            break end;
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(at) => paced = Some(at),
                }
            }
            let deadline = session
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            // A message held back by the pacing goes when its turn comes.
            let deadline = paced.map_or(deadline, |at| at.min(deadline));
            // A core that cannot keep up stops the reading (TCP slows the server down).
            tokio::select! {
                ready = driver::readable_when_ready(&self.events, reader.readable()) => match ready.map(|ready| ready.and_then(|()| {
                    read_buf::read_into(|buf| reader.try_read(buf), |bytes| session.handle_input(bytes))
                })) {
                    None | Some(Ok(None)) => {}
                    Some(Ok(Some(0))) => session.handle_disconnect(),
                    Some(Ok(Some(_))) => {}
                    Some(Err(e)) => {
                        tracing::debug!("mig33 read failed: {e}");
                        session.handle_disconnect();
                    }
                },
                _ = tokio::time::sleep_until(deadline.into()) => session.handle_timeout(Instant::now()),
                command = self.commands.recv() => match command {
                    None | Some(LoginCommand::Logout) => {
                        session.logout();
                        break End::Stop;
                    }
                    Some(command) => self.queue(command),
                },
            }
        };
        match end {
            End::Stop => flush(&mut session, &mut writer).await,
            End::Lost(_) => {
                // Requests the server never answered go out again on the next connection
                // (a Matrix message is never dropped; at worst it arrives twice).
                for (_, p) in pending.into_iter().rev() {
                    if let Pending::Command(command) = p {
                        self.queued.push_front(command);
                    }
                }
            }
        }
        end
    }

    fn on_event(
        &mut self,
        session: &mut ClientSession,
        pending: &mut BTreeMap<u16, Pending>,
        event: ClientEvent,
    ) -> Option<End> {
        match event {
            ClientEvent::LoggedIn { .. } => {
                tracing::info!(user = %self.credentials.id, server = %self.server, "mig33 login ok");
                self.logged_in = true;
                self.emit(NetworkEvent::Connected {
                    self_profile: Profile {
                        id: self.credentials.id.clone(),
                        ..Profile::default()
                    },
                });
                // The server forgot our rooms with the old connection.
                self.members.clear();
                for room in self.rooms.clone() {
                    if let Ok(id) = session.join_chatroom(&room) {
                        pending.insert(id.0, Pending::Rejoin(room));
                    }
                }
            }
            ClientEvent::ContactList { groups, contacts } => {
                self.groups = groups
                    .iter()
                    .map(|g| (g.name.to_lowercase(), g.group_id))
                    .collect();
                self.emit(NetworkEvent::ContactList {
                    groups: groups.iter().map(convert::group).collect(),
                    contacts: contacts.iter().map(convert::contact).collect(),
                });
                for c in &contacts {
                    self.contact_presence(c);
                }
            }
            ClientEvent::ContactChanged(c) => {
                self.emit(NetworkEvent::ContactChanged(convert::contact(&c)));
                self.contact_presence(&c);
            }
            ClientEvent::GroupChanged(g) => {
                self.groups.insert(g.name.to_lowercase(), g.group_id);
            }
            ClientEvent::Presence {
                contact_id,
                username,
                presence,
            } => match username {
                Some(username) => self.emit(NetworkEvent::Presence {
                    who: convert::canonical(&username),
                    presence: convert::presence_to_core(presence),
                }),
                None => tracing::debug!(contact_id, "mig33 presence of an unknown contact dropped"),
            },
            ClientEvent::Message(m) => match convert::message_chat(&m) {
                Some((chat, from)) => self.emit(NetworkEvent::Message {
                    chat,
                    from,
                    id: None,
                    kind: MessageKind::Text,
                    text: crate::core::FormattedText::plain(m.content),
                    sent_at: None,
                    offline: false,
                    ack_key: None,
                }),
                None => tracing::warn!(
                    source = %m.source,
                    destination = %m.destination,
                    destination_type = m.destination_type.code(),
                    "mig33 message that cannot be placed dropped"
                ),
            },
            ClientEvent::Participants { room, participants } => {
                self.participants(session, room, participants)
            }
            ClientEvent::RequestDone {
                id,
                request,
                result,
            } => match pending.remove(&id.0) {
                Some(p) => self.request_done(session, p, result),
                None => {
                    if let (Request::GetParticipants(room), Err(e)) = (&request, &result) {
                        tracing::debug!(%room, "mig33 participants refused: {e}");
                    }
                }
            },
            ClientEvent::Alert { text, .. } => self.emit(NetworkEvent::Notice { text }),
            ClientEvent::ServerError(e) => self.emit(NetworkEvent::Notice {
                text: format!("the server reported an error: {}", e.text),
            }),
            ClientEvent::Malformed(e) => {
                tracing::warn!(user = %self.credentials.id, "malformed mig33 packet dropped: {e}")
            }
            ClientEvent::Chatrooms(rooms) => {
                let listing: Vec<RoomListing> = rooms.into_iter().map(convert::listing).collect();
                let asked: Vec<u16> = pending
                    .iter()
                    .filter(|(_, p)| matches!(p, Pending::Command(LoginCommand::ListRooms { .. })))
                    .map(|(id, _)| *id)
                    .collect();
                for id in asked {
                    if let Some(Pending::Command(LoginCommand::ListRooms { reply })) =
                        pending.remove(&id)
                    {
                        let _ = reply.send(Ok(listing.clone()));
                    }
                }
            }
            ClientEvent::Closed(reason) => {
                return Some(match reason {
                    CloseReason::LoggedOut => End::Stop,
                    CloseReason::LoginFailed(e) => {
                        tracing::info!(user = %self.credentials.id, "mig33 login refused: {e}");
                        self.emit(NetworkEvent::LoginFailed {
                            reason: format!("the server refused the login: {}", e.text),
                        });
                        End::Stop
                    }
                    CloseReason::Timeout => End::Lost("the server stopped answering".into()),
                    CloseReason::Protocol(e) => {
                        End::Lost(format!("garbled data from the server ({e})"))
                    }
                    CloseReason::ConnectionLost => End::Lost("connection lost".into()),
                });
            }
        }
        None
    }

    fn contact_presence(&self, c: &proto::Contact) {
        if let Some(presence) = convert::contact_presence(c) {
            self.emit(NetworkEvent::Presence {
                who: convert::canonical(&c.username),
                presence,
            });
        }
    }

    fn participants(&mut self, session: &ClientSession, room: String, participants: Vec<String>) {
        if !self.rooms.contains(&room) {
            return;
        }
        // The protocol crate split the server's list (`;` or `,`) into names.
        let members = convert::room_members(
            &participants,
            session.username(),
            session.contacts().values(),
        );
        let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
        if self.members.get(&room) == Some(&ids) {
            return;
        }
        self.members.insert(room.clone(), ids);
        self.emit(NetworkEvent::RoomMembers {
            chat: ChatId::Room(room),
            members,
        });
    }

    /// Sends a command's request, or answers it at once when there is nothing to send.
    fn execute(
        &mut self,
        session: &mut ClientSession,
        pending: &mut BTreeMap<u16, Pending>,
        command: LoginCommand,
    ) -> Option<End> {
        let sent = match &command {
            LoginCommand::SendText { chat, text, .. } => match chat {
                ChatId::Direct(to) => session.send_private(to, &text.plain),
                ChatId::Room(room) => session.send_chatroom(room, &text.plain),
                ChatId::Group(id) => {
                    session.send_message(DestinationType::GroupChat, id, &text.plain)
                }
            },
            LoginCommand::SetPresence { presence, .. } => {
                self.presence = convert::presence_from_core(presence.state);
                session.set_presence(self.presence)
            }
            LoginCommand::JoinRoom { room, .. } => {
                self.rooms.insert(room.clone());
                session.join_chatroom(room)
            }
            LoginCommand::LeaveRoom { room, .. } => {
                self.rooms.remove(room);
                session.leave_chatroom(room)
            }
            LoginCommand::AddContact { id, group, .. } => {
                let group_id = match group {
                    None => None,
                    Some(name) => match self.group_id(name) {
                        Some(g) => Some(g),
                        None => {
                            let why = format!("you have no mig33 group named {name:?}");
                            answer(command, Err(SendError::Rejected(why)));
                            return None;
                        }
                    },
                };
                session.add_contact(id, None, group_id)
            }
            LoginCommand::Lookup { .. }
            | LoginCommand::Nudge { .. }
            | LoginCommand::SendFile { .. }
            | LoginCommand::AnswerAuthorization { .. } => {
                answer(command, Err(SendError::Unsupported("mig33")));
                return None;
            }
            // Answered by the list itself (`ClientEvent::Chatrooms`).
            LoginCommand::ListRooms { .. } => session.get_chatrooms(),
            LoginCommand::Typing { .. }
            | LoginCommand::FetchAvatar { .. }
            | LoginCommand::SetAvatar { .. } => return None,
            LoginCommand::Logout => {
                session.logout();
                return Some(End::Stop);
            }
        };
        match sent {
            Ok(id) => {
                pending.insert(id.0, Pending::Command(command));
            }
            Err(CommandError::NotLoggedIn) => self.queued.push_front(command),
            Err(CommandError::TooLong) => answer(
                command,
                Err(SendError::Rejected(
                    "the message is too long for mig33".into(),
                )),
            ),
        }
        None
    }

    fn group_id(&self, name: &str) -> Option<i32> {
        self.groups.get(&name.to_lowercase()).copied().or_else(|| {
            name.parse()
                .ok()
                .filter(|id| self.groups.values().any(|g| g == id))
        })
    }

    fn request_done(
        &mut self,
        session: &mut ClientSession,
        pending: Pending,
        result: Result<(), ServerError>,
    ) {
        let command = match pending {
            Pending::Rejoin(room) => {
                if let Err(e) = result {
                    self.rooms.remove(&room);
                    self.emit(NetworkEvent::Notice {
                        text: format!("could not rejoin {room}: {}", e.text),
                    });
                    self.emit(NetworkEvent::RoomLeft {
                        chat: ChatId::Room(room),
                    });
                }
                return;
            }
            Pending::Command(command) => command,
        };
        match (&command, &result) {
            (LoginCommand::JoinRoom { room, .. }, Ok(())) => {
                // The member list comes as a push on join; ask too, in case it does not.
                let _ = session.get_participants(room);
            }
            (LoginCommand::JoinRoom { room, .. }, Err(_)) => {
                self.rooms.remove(room);
            }
            (LoginCommand::LeaveRoom { room, .. }, Ok(())) => {
                self.members.remove(room);
                self.emit(NetworkEvent::RoomLeft {
                    chat: ChatId::Room(room.clone()),
                });
            }
            _ => {}
        }
        answer(command, result.map_err(|e| SendError::Rejected(e.text)));
    }
}

/// Replies to a command that carries a reply.
fn answer(command: LoginCommand, result: Result<(), SendError>) {
    match command {
        LoginCommand::SendText { reply, .. }
        | LoginCommand::Nudge { reply, .. }
        | LoginCommand::SendFile { reply, .. } => {
            let _ = reply.send(result.map(|()| Delivery::default()));
        }
        LoginCommand::SetPresence { reply, .. }
        | LoginCommand::JoinRoom { reply, .. }
        | LoginCommand::LeaveRoom { reply, .. }
        | LoginCommand::AddContact { reply, .. }
        | LoginCommand::AnswerAuthorization { reply, .. } => {
            let _ = reply.send(result);
        }
        LoginCommand::Lookup { reply, .. } => {
            let _ = reply.send(result.map(|()| Vec::new()));
        }
        LoginCommand::ListRooms { reply } => {
            let _ = reply.send(result.map(|()| Vec::new()));
        }
        LoginCommand::Typing { .. }
        | LoginCommand::FetchAvatar { .. }
        | LoginCommand::SetAvatar { .. }
        | LoginCommand::Logout => {}
    }
}

/// Writes what the session still has to say (LOGOUT) before the socket closes.
async fn flush(session: &mut ClientSession, writer: &mut OwnedWriteHalf) {
    while let Some(bytes) = session.poll_transmit() {
        if writer.write_all(&bytes).await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}
