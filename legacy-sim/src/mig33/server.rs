//! The simulated server: a TCP listener, one task per connection driving a
//! `ServerSession`, and the shared state (who is online, room members).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mig33_proto::{
    Alert, Chatroom, ChatroomParticipants, ClientRequest, Contact, ContactPresence,
    DestinationType, GetChatroomsComplete, Group, LoginOk, Message, Packet, Presence, ServerEvent,
    ServerSession, UsernameList,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Config, ContactConfig};

/// A running mig33 simulator; stops (closing every connection) when dropped.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    shutdown: watch::Sender<bool>,
    accept_task: Option<JoinHandle<()>>,
}

/// What a connection task is told by others.
enum Outbound {
    Push(Packet),
    /// Another login of the same user took over.
    Replaced,
}

struct Online {
    conn: u64,
    presence: Presence,
    tx: mpsc::UnboundedSender<Outbound>,
}

struct Shared {
    config: Config,
    /// Each user's contact list (config plus ADD_CONTACT; removed entries are `None`
    /// so that contact ids, which are positions, stay stable).
    contacts: HashMap<String, Vec<Option<ContactConfig>>>,
    online: HashMap<String, Online>,
    /// Room name -> participants in join order.
    rooms: BTreeMap<String, Vec<String>>,
    next_conn: u64,
    /// Users disconnected by the flood protection, in order.
    flood_kicks: Vec<String>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panicking connection task must not take the whole simulator down.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl Server {
    /// Binds `config.listen` and starts accepting connections. Binding retries for
    /// up to two seconds when the address is still in use (restart at the same port).
    pub async fn start(config: Config) -> std::io::Result<Server> {
        let addr: SocketAddr = tokio::net::lookup_host(&config.listen)
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("cannot resolve {}", config.listen)))?;
        let listener = bind(addr).await?;
        let addr = listener.local_addr()?;
        let contacts = config
            .users
            .iter()
            .map(|u| {
                (
                    u.username.clone(),
                    u.contacts.iter().cloned().map(Some).collect(),
                )
            })
            .collect();
        let rooms = config
            .chatrooms
            .iter()
            .map(|r| (r.name.clone(), Vec::new()))
            .collect();
        let shared = Arc::new(Mutex::new(Shared {
            config,
            contacts,
            online: HashMap::new(),
            rooms,
            next_conn: 1,
            flood_kicks: Vec::new(),
        }));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone(), shutdown_rx));
        tracing::info!(%addr, "mig33 simulator listening");
        Ok(Server {
            addr,
            shared,
            shutdown,
            accept_task: Some(accept_task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Usernames currently logged in, sorted.
    pub fn online_users(&self) -> Vec<String> {
        let mut users: Vec<String> = lock(&self.shared).online.keys().cloned().collect();
        users.sort();
        users
    }

    /// How many users are logged in.
    pub fn online_count(&self) -> usize {
        lock(&self.shared).online.len()
    }

    /// TCP connections accepted since the start (benchmarks count connects with it).
    pub fn connections_accepted(&self) -> u64 {
        lock(&self.shared).next_conn - 1
    }

    /// Users the flood protection disconnected, oldest first.
    pub fn flood_kicks(&self) -> Vec<String> {
        lock(&self.shared).flood_kicks.clone()
    }

    /// Pushes a system ALERT to one online user; false if the user is not online.
    pub fn send_alert(&self, username: &str, text: &str) -> bool {
        let shared = lock(&self.shared);
        match shared.online.get(username) {
            Some(online) => online.tx.send(Outbound::Push(alert(text))).is_ok(),
            None => false,
        }
    }

    /// Pushes `count` unsolicited ERROR packets to one online user, as a server in
    /// trouble does; false if the user is not online.
    pub fn send_errors(&self, username: &str, text: &str, count: usize) -> bool {
        let shared = lock(&self.shared);
        let Some(online) = shared.online.get(username) else {
            return false;
        };
        let error = Packet::from(mig33_proto::ErrorReply {
            text: Some(text.into()),
            code: Some(1),
        });
        (0..count).all(|_| online.tx.send(Outbound::Push(error.clone())).is_ok())
    }

    /// Pushes a system ALERT to every online user; returns how many got it.
    pub fn broadcast_alert(&self, text: &str) -> usize {
        let shared = lock(&self.shared);
        shared
            .online
            .values()
            .filter(|o| o.tx.send(Outbound::Push(alert(text))).is_ok())
            .count()
    }

    /// Stops accepting, closes every connection and waits until the port is free.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.accept_task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.accept_task.take() {
            task.abort();
        }
    }
}

/// The ALERT form this simulator sends: RECV_SYS_MSG with the text as description.
fn alert(text: &str) -> Packet {
    Alert {
        data: None,
        description: Some(text.into()),
        text: Some("mig33".into()),
        kind: Some(1),
    }
    .into()
}

async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(128)) {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Mutex<Shared>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "mig33 connection");
                    connections.spawn(run_connection(stream, shared.clone(), shutdown.clone()));
                }
                Err(e) => tracing::warn!("mig33 accept failed: {e}"),
            },
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Connections see the same shutdown signal; wait for them to close their sockets.
    while connections.join_next().await.is_some() {}
}

/// A fresh random-looking string (no rand crate: RandomState is randomly keyed).
fn random_token(n: u64) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    format!("{:016x}", h.finish())
}

async fn run_connection(
    stream: TcpStream,
    shared: Arc<Mutex<Shared>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let conn = {
        let mut s = lock(&shared);
        s.next_conn += 1;
        s.next_conn
    };
    let mut session = ServerSession::new(random_token(conn), random_token(conn + 1));
    session.handle_timeout(Instant::now());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (mut reader, mut writer) = stream.into_split();
    let mut conn_state = Connection {
        id: conn,
        shared: shared.clone(),
        tx,
        username: None,
        sent: VecDeque::new(),
        kicked: false,
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(event) = session.poll_event() {
            conn_state.handle(&mut session, event);
        }
        if let Some(bytes) = session.poll_transmit() {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
            continue;
        }
        if session.is_closed() || conn_state.kicked {
            break;
        }
        let deadline = session.poll_timeout();
        tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => session.handle_input(&buf[..n]),
            },
            out = rx.recv() => match out {
                Some(Outbound::Push(packet)) => { session.push(packet); }
                Some(Outbound::Replaced) | None => break,
            },
            _ = sleep_until(deadline) => session.handle_timeout(Instant::now()),
            _ = shutdown.changed() => break,
        }
    }
    let _ = writer.shutdown().await;
    conn_state.disconnected();
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// One connection's link to the shared state.
struct Connection {
    id: u64,
    shared: Arc<Mutex<Shared>>,
    tx: mpsc::UnboundedSender<Outbound>,
    username: Option<String>,
    /// When the latest messages were sent (flood protection), oldest first.
    sent: VecDeque<Instant>,
    /// Disconnected for flooding: the connection closes once its replies are written.
    kicked: bool,
}

impl Connection {
    fn shared(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    fn handle(&mut self, session: &mut ServerSession, event: ServerEvent) {
        match event {
            ServerEvent::LoginAttempt {
                username,
                login,
                password_hash,
            } => {
                let password = self
                    .shared()
                    .config
                    .users
                    .iter()
                    .find(|u| u.username == username)
                    .map(|u| u.password.clone());
                match password {
                    Some(p) if session.expected_hash(&p) == password_hash => {
                        let presence = login.initial_presence.unwrap_or(Presence::Available);
                        self.logged_in(session, username, presence);
                    }
                    _ => {
                        tracing::info!(%username, "mig33 login refused");
                        session.reject_login("Incorrect username or password");
                    }
                }
            }
            ServerEvent::Request {
                transaction_id,
                request,
            } => self.request(session, transaction_id, request),
            ServerEvent::Malformed(e) => tracing::debug!("mig33 malformed packet: {e}"),
            ServerEvent::Closed(reason) => tracing::debug!(?reason, "mig33 session closed"),
        }
    }

    fn logged_in(&mut self, session: &mut ServerSession, username: String, presence: Presence) {
        let motd = {
            let mut shared = self.shared();
            let old = shared.online.insert(
                username.clone(),
                Online {
                    conn: self.id,
                    presence,
                    tx: self.tx.clone(),
                },
            );
            if let Some(old) = old {
                let _ = old.tx.send(Outbound::Replaced);
            }
            shared.config.motd.clone()
        };
        self.username = Some(username.clone());
        session.accept_login(LoginOk {
            motd,
            currency: Some("USD".into()),
            ..LoginOk::default()
        });
        tracing::info!(%username, "mig33 login");
        self.shared().broadcast_presence(&username, presence);
    }

    fn request(&mut self, session: &mut ServerSession, txn: u16, request: ClientRequest) {
        let Some(me) = self.username.clone() else {
            return;
        };
        match request {
            ClientRequest::GetContacts => {
                let (groups, contacts) = self.shared().contact_list(&me);
                session.send_contact_list(txn, &groups, &contacts);
            }
            ClientRequest::SetPresence(presence) => {
                let mut shared = self.shared();
                if let Some(online) = shared.online.get_mut(&me) {
                    online.presence = presence;
                }
                shared.broadcast_presence(&me, presence);
                drop(shared);
                session.reply_ok(txn);
            }
            ClientRequest::Message(message) => self.message(session, txn, message),
            ClientRequest::JoinChatroom(room) => {
                let mut shared = self.shared();
                let Some(members) = shared.rooms.get_mut(&room) else {
                    drop(shared);
                    session.reply_error(txn, &format!("No such chatroom: {room}"));
                    return;
                };
                if !members.contains(&me) {
                    members.push(me);
                }
                session.reply_ok(txn);
                shared.push_participants(&room);
            }
            ClientRequest::LeaveChatroom(room) => {
                let mut shared = self.shared();
                let Some(members) = shared.rooms.get_mut(&room) else {
                    drop(shared);
                    session.reply_error(txn, &format!("No such chatroom: {room}"));
                    return;
                };
                members.retain(|m| *m != me);
                session.reply_ok(txn);
                shared.push_participants(&room);
            }
            ClientRequest::GetChatrooms => {
                let rooms: Vec<Chatroom> = {
                    let shared = self.shared();
                    shared
                        .config
                        .chatrooms
                        .iter()
                        .map(|r| Chatroom {
                            participant_count: shared
                                .rooms
                                .get(&r.name)
                                .map(|m| m.len().min(u16::MAX as usize) as u16),
                            description: Some(r.description.clone()),
                            name: r.name.clone(),
                        })
                        .collect()
                };
                for room in rooms {
                    session.reply(txn, room);
                }
                session.reply(txn, GetChatroomsComplete {});
            }
            ClientRequest::GetParticipants(room) => {
                let participants = self.shared().participants(&room);
                match participants {
                    Some(participants) => session.reply(
                        txn,
                        ChatroomParticipants {
                            participants,
                            name: room,
                        },
                    ),
                    None => session.reply_error(txn, &format!("No such chatroom: {room}")),
                }
            }
            ClientRequest::AddContact(add) => {
                let contact = {
                    let mut shared = self.shared();
                    let list = shared.contacts.entry(me.clone()).or_default();
                    list.push(Some(ContactConfig {
                        username: add.username.clone(),
                        group: add.group_id,
                        display_name: add.display_name.clone(),
                    }));
                    let id = list.len() as i32;
                    let entry = list[list.len() - 1].clone();
                    entry.map(|c| shared.contact(id, &c))
                };
                session.reply_ok(txn);
                if let Some(contact) = contact {
                    session.push(contact);
                }
            }
            ClientRequest::RemoveContact(id) => {
                let mut shared = self.shared();
                let slot = shared
                    .contacts
                    .get_mut(&me)
                    .and_then(|list| list.get_mut((id as usize).wrapping_sub(1)));
                match slot {
                    Some(entry @ Some(_)) => {
                        *entry = None;
                        drop(shared);
                        session.reply_ok(txn);
                    }
                    _ => {
                        drop(shared);
                        session.reply_error(txn, &format!("No such contact: {id}"));
                    }
                }
            }
            ClientRequest::Registration(_) => {
                session.reply_error(txn, "Registration is closed on this simulator")
            }
            ClientRequest::Logout => {}
        }
    }

    /// Whether this message crosses the flood limit (recorded either way).
    fn flooding(&mut self) -> bool {
        let Some(limit) = self.shared().config.flood_limit else {
            return false;
        };
        let now = Instant::now();
        let window = Duration::from_secs(limit.seconds);
        while self.sent.front().is_some_and(|t| now - *t >= window) {
            self.sent.pop_front();
        }
        self.sent.push_back(now);
        self.sent.len() > limit.messages
    }

    fn message(&mut self, session: &mut ServerSession, txn: u16, message: Message) {
        if self.kicked {
            return;
        }
        if self.flooding() {
            let me = self.username.clone().unwrap_or_default();
            tracing::info!(username = %me, "mig33 client kicked for flooding");
            session.reply_error(txn, "You are sending messages too fast");
            session.push(alert("You have been disconnected for flooding"));
            self.shared().flood_kicks.push(me);
            self.kicked = true;
            return;
        }
        let me = message.source.clone();
        let shared = self.shared();
        match message.destination_type {
            DestinationType::Private => match shared.online.get(&message.destination) {
                Some(target) => {
                    let _ = target.tx.send(Outbound::Push(message.into()));
                    drop(shared);
                    session.reply_ok(txn);
                }
                None => {
                    let known = shared
                        .config
                        .users
                        .iter()
                        .any(|u| u.username == message.destination);
                    drop(shared);
                    let text = if known {
                        format!("{} is offline", message.destination)
                    } else {
                        format!("No such user: {}", message.destination)
                    };
                    session.reply_error(txn, &text);
                }
            },
            DestinationType::Chatroom => match shared.rooms.get(&message.destination) {
                Some(members) if members.contains(&me) => {
                    // Relay to every participant, the sender included (its own echo
                    // goes through its queue too, after the OK).
                    for member in members {
                        if let Some(online) = shared.online.get(member) {
                            let _ = online.tx.send(Outbound::Push(message.clone().into()));
                        }
                    }
                    drop(shared);
                    session.reply_ok(txn);
                }
                Some(_) => {
                    drop(shared);
                    session.reply_error(txn, &format!("You are not in {}", message.destination));
                }
                None => {
                    drop(shared);
                    session.reply_error(txn, &format!("No such chatroom: {}", message.destination));
                }
            },
            _ => {
                drop(shared);
                session.reply_error(txn, "Group chat is not supported by this simulator");
            }
        }
    }

    /// The connection ended: go offline and leave every room, unless another login
    /// of the same user has already taken over.
    fn disconnected(&mut self) {
        let Some(me) = self.username.take() else {
            return;
        };
        let mut shared = self.shared();
        if shared.online.get(&me).is_none_or(|o| o.conn != self.id) {
            return;
        }
        shared.online.remove(&me);
        let rooms: Vec<String> = shared
            .rooms
            .iter_mut()
            .filter_map(|(name, members)| {
                let before = members.len();
                members.retain(|m| *m != me);
                (members.len() != before).then(|| name.clone())
            })
            .collect();
        for room in rooms {
            shared.push_participants(&room);
        }
        shared.broadcast_presence(&me, Presence::Offline);
        tracing::info!(username = %me, "mig33 logout");
    }
}

impl Shared {
    fn presence_of(&self, username: &str) -> Presence {
        self.online
            .get(username)
            .map_or(Presence::Offline, |o| o.presence)
    }

    fn contact(&self, id: i32, c: &ContactConfig) -> Contact {
        let display_name = c.display_name.clone().or_else(|| {
            self.config
                .users
                .iter()
                .find(|u| u.username == c.username)
                .and_then(|u| u.display_name.clone())
        });
        Contact {
            status_message: None,
            flag: Some(0),
            presence: Some(self.presence_of(&c.username)),
            username: c.username.clone(),
            display_name: display_name.unwrap_or_else(|| c.username.clone()),
            group_id: c.group,
            contact_id: id,
        }
    }

    fn contact_list(&self, username: &str) -> (Vec<Group>, Vec<Contact>) {
        let groups = self
            .config
            .users
            .iter()
            .find(|u| u.username == username)
            .map(|u| {
                u.groups
                    .iter()
                    .map(|g| Group {
                        name: g.name.clone(),
                        group_id: g.id,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let contacts = self
            .contacts
            .get(username)
            .map(|list| {
                list.iter()
                    .enumerate()
                    .filter_map(|(i, c)| c.as_ref().map(|c| self.contact(i as i32 + 1, c)))
                    .collect()
            })
            .unwrap_or_default();
        (groups, contacts)
    }

    /// Tells every online user who has `username` as a contact about its presence.
    fn broadcast_presence(&self, username: &str, presence: Presence) {
        for (watcher, list) in &self.contacts {
            let Some(online) = self.online.get(watcher) else {
                continue;
            };
            for (i, c) in list.iter().enumerate() {
                if c.as_ref().is_some_and(|c| c.username == username) {
                    let packet = ContactPresence {
                        presence,
                        contact_id: i as i32 + 1,
                    };
                    let _ = online.tx.send(Outbound::Push(packet.into()));
                }
            }
        }
    }

    /// A room's members as CHATROOM_PARTICIPANTS lists them; None for no such room.
    fn participants(&self, room: &str) -> Option<UsernameList> {
        let members = self.rooms.get(room)?.clone();
        let separator = self.config.participant_separator.wire();
        Some(UsernameList::new(members, separator))
    }

    /// Pushes a room's participant list to everyone in it.
    fn push_participants(&self, room: &str) {
        let Some(participants) = self.participants(room) else {
            return;
        };
        let packet: Packet = ChatroomParticipants {
            participants: participants.clone(),
            name: room.into(),
        }
        .into();
        for member in &participants.names {
            if let Some(online) = self.online.get(member) {
                let _ = online.tx.send(Outbound::Push(packet.clone()));
            }
        }
    }
}
