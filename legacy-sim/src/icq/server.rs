//! The simulated ICQ v2 server: one UDP socket, one task, a [`ServerSession`] per
//! client address, and a directory shared across restarts.

use super::{Config, User, WrongPassword};
use icq_proto::{
    client_cmd, server_cmd, ClientFrame, ClientPacket, ExtInfo, MessageContent, MessageTime,
    SearchQuery, ServerPacket, ServerSession, Status, UserRecord,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// At most this many USER_FOUND per search (the spec's limit), then MORE_FOUND.
const SEARCH_LIMIT: usize = 40;

/// A message kept for a user who was offline, with the time it was sent.
#[derive(Debug, Clone)]
struct StoredMessage {
    from: u32,
    time: MessageTime,
    kind: u16,
    text: String,
}

/// What survives a restart: accounts and undelivered messages.
struct Directory {
    users: BTreeMap<u32, User>,
    offline: HashMap<u32, Vec<StoredMessage>>,
}

/// How the server answers what it receives; kept across restarts.
#[derive(Debug, Clone, Copy)]
struct Behaviour {
    wrong_password: WrongPassword,
    idle_limit: Duration,
}

/// What the test (or the demo) asks of the running server task.
enum Control {
    /// Forget the session of this UIN; replies whether it was logged in.
    Forget {
        uin: u32,
        reply: oneshot::Sender<bool>,
    },
    /// The UINs logged in.
    Online { reply: oneshot::Sender<Vec<u32>> },
}

/// A running ICQ simulator; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    directory: Arc<Mutex<Directory>>,
    behaviour: Behaviour,
    control: Option<mpsc::UnboundedSender<Control>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `config.listen` (port 0 picks one) and serves until stopped or dropped.
    pub async fn start(config: Config) -> std::io::Result<Server> {
        let users = config.users.into_iter().map(|u| (u.uin, u)).collect();
        let directory = Arc::new(Mutex::new(Directory {
            users,
            offline: HashMap::new(),
        }));
        let mut server = Server {
            addr: config
                .listen
                .parse()
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
            directory,
            behaviour: Behaviour {
                wrong_password: config.wrong_password,
                idle_limit: Duration::from_secs(config.idle_limit_secs.max(1)),
            },
            control: None,
            task: None,
        };
        server.bind().await?;
        Ok(server)
    }

    /// The bound address (the real port when the config said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Forgets `uin`'s session the way a server that lost its state would, while the
    /// client's socket stays open: from then on nothing from that address is ACKed
    /// or answered (not even with NOT_CONNECTED), the user's watchers see it go
    /// offline, and the messages it never acknowledged are stored for its next login
    /// (which, from a new address, works as usual). False when `uin` was not logged in.
    pub async fn forget_session(&self, uin: u32) -> bool {
        let Some(control) = &self.control else {
            return false;
        };
        let (reply, answer) = oneshot::channel();
        if control.send(Control::Forget { uin, reply }).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    /// The UINs logged in now, sorted (empty when stopped).
    pub async fn online_users(&self) -> Vec<u32> {
        let Some(control) = &self.control else {
            return Vec::new();
        };
        let (reply, answer) = oneshot::channel();
        if control.send(Control::Online { reply }).is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Stops serving; the port is free when this returns. Accounts and stored
    /// offline messages are kept for [`Server::restart`]; sessions are not.
    pub async fn stop(&mut self) {
        self.control = None;
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Serves again on the same address (clients must log in again: the server
    /// answers their old session's packets with NOT_CONNECTED).
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop().await;
        self.bind().await
    }

    async fn bind(&mut self) -> std::io::Result<()> {
        let socket = UdpSocket::bind(self.addr).await?;
        self.addr = socket.local_addr()?;
        tracing::info!(addr = %self.addr, "ICQ simulator listening");
        let (control, control_rx) = mpsc::unbounded_channel();
        self.control = Some(control);
        let sim = Sim {
            socket,
            directory: self.directory.clone(),
            behaviour: self.behaviour,
            control: control_rx,
            conns: HashMap::new(),
            online: HashMap::new(),
            deaf: HashSet::new(),
        };
        self.task = Some(tokio::spawn(sim.run()));
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// One client address.
struct Conn {
    session: ServerSession,
    /// Set once LOGIN succeeded.
    uin: Option<u32>,
    status: Status,
    tcp_port: u32,
    /// Users this client wants presence for: the config's list, CONTACT_LIST, ADD_TO_LIST.
    contacts: HashSet<u32>,
    /// The config's contacts were announced (done at the first CONTACT_LIST).
    announced: bool,
}

struct Sim {
    socket: UdpSocket,
    directory: Arc<Mutex<Directory>>,
    behaviour: Behaviour,
    control: mpsc::UnboundedReceiver<Control>,
    conns: HashMap<SocketAddr, Conn>,
    /// Logged-in UIN -> its address.
    online: HashMap<u32, SocketAddr>,
    /// Addresses whose session was forgotten: ignored entirely. One entry per
    /// `forget_session` call, so bounded by the test, not by peers.
    deaf: HashSet<SocketAddr>,
}

impl Sim {
    async fn run(mut self) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let deadline = self
                .conns
                .values()
                .filter_map(|c| c.session.poll_timeout())
                .min();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = received {
                        self.handle(from, &buf[..n], Instant::now());
                    }
                }
                Some(control) = self.control.recv() => self.on_control(control, Instant::now()),
                () = sleep => {}
            }
            let now = Instant::now();
            self.run_timers(now);
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        for (addr, conn) in &mut self.conns {
            while let Some(datagram) = conn.session.poll_transmit() {
                let _ = self.socket.send_to(&datagram, *addr).await;
            }
        }
    }

    fn run_timers(&mut self, now: Instant) {
        let mut dead = Vec::new();
        for (addr, conn) in &mut self.conns {
            conn.session.handle_timeout(now);
            if !conn.session.is_alive(now) {
                dead.push(*addr);
            }
        }
        for addr in dead {
            tracing::debug!(%addr, "ICQ client timed out");
            self.drop_conn(addr, now);
        }
    }

    fn on_control(&mut self, control: Control, now: Instant) {
        match control {
            Control::Forget { uin, reply } => {
                let addr = self.online.get(&uin).copied();
                if let Some(addr) = addr {
                    tracing::info!(uin, %addr, "ICQ session forgotten");
                    self.drop_conn(addr, now);
                    self.deaf.insert(addr);
                }
                let _ = reply.send(addr.is_some());
            }
            Control::Online { reply } => {
                let mut uins: Vec<u32> = self.online.keys().copied().collect();
                uins.sort_unstable();
                let _ = reply.send(uins);
            }
        }
    }

    fn new_session(&self, now: Instant) -> ServerSession {
        ServerSession::new(now).with_idle_limit(self.behaviour.idle_limit)
    }

    fn handle(&mut self, from: SocketAddr, datagram: &[u8], now: Instant) {
        if self.deaf.contains(&from) {
            return;
        }
        let frame = match ClientPacket::decode(datagram) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::debug!(%from, "undecodable ICQ datagram: {e}");
                return;
            }
        };
        let known = self.conns.get(&from);
        let logged_in = known.is_some_and(|c| c.uin.is_some());
        if matches!(frame.packet, ClientPacket::Login { .. }) && !logged_in {
            // A LOGIN starts a new session (numbering restarts at the client).
            self.conns.insert(from, Conn::new(self.new_session(now)));
        } else if known.is_none() {
            if frame.packet == ClientPacket::Ack {
                return;
            }
            // A session this server does not know (e.g. from before a restart).
            let mut session = self.new_session(now);
            let _ = session.handle_datagram(datagram, now);
            session.send_once(&not_connected());
            self.conns.insert(from, Conn::new(session));
            return;
        }
        let Some(conn) = self.conns.get_mut(&from) else {
            return;
        };
        match conn.session.handle_datagram(datagram, now) {
            Ok(Some(frame)) => self.process(from, frame, now),
            Ok(None) => {}
            Err(e) => tracing::debug!(%from, "undecodable ICQ datagram: {e}"),
        }
    }

    fn process(&mut self, from: SocketAddr, frame: ClientFrame, now: Instant) {
        let logged_in = self.conns.get(&from).and_then(|c| c.uin);
        match (frame.packet, logged_in) {
            (
                ClientPacket::Login {
                    password,
                    status,
                    tcp_port,
                    login_seq,
                    ..
                },
                None,
            ) => self.login(from, frame.uin, &password, status, tcp_port, login_seq, now),
            (_, None) => {
                if let Some(conn) = self.conns.get_mut(&from) {
                    conn.session.send_once(&not_connected());
                }
            }
            (packet, Some(me)) => self.logged_in_packet(from, me, packet, now),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn login(
        &mut self,
        from: SocketAddr,
        uin: u32,
        password: &str,
        status: Status,
        tcp_port: u32,
        login_seq: u16,
        now: Instant,
    ) {
        let contacts = {
            let dir = lock(&self.directory);
            match dir.users.get(&uin) {
                Some(user) if user.password == password => Some(user.contacts.clone()),
                _ => None,
            }
        };
        let Some(contacts) = contacts else {
            match self.behaviour.wrong_password {
                WrongPassword::BadPassword => {
                    tracing::info!(uin, "ICQ login refused: wrong password or unknown UIN");
                    self.send(from, &ServerPacket::BadPassword, now);
                }
                WrongPassword::Silent => {
                    tracing::info!(uin, "ICQ login ignored: wrong password or unknown UIN");
                }
            }
            return;
        };
        // A second login of the same UIN replaces the first.
        if let Some(old) = self.online.insert(uin, from) {
            if old != from {
                if let Some(conn) = self.conns.get_mut(&old) {
                    conn.uin = None;
                    keep_undelivered(&self.directory, uin, &mut conn.session);
                    conn.session.send_once(&ServerPacket::Other {
                        command: server_cmd::GO_AWAY,
                        params: Vec::new(),
                    });
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(&from) {
            conn.uin = Some(uin);
            conn.status = status;
            conn.tcp_port = tcp_port;
            conn.contacts.extend(contacts);
        }
        tracing::info!(uin, %from, "ICQ login");
        let reply = ServerPacket::LoginReply {
            uin,
            ip: ipv4(from),
            login_seq,
        };
        self.send(from, &reply, now);
        if status != Status::INVISIBLE {
            self.tell_watchers(uin, &self.online_packet(uin), now);
        }
    }

    fn logged_in_packet(&mut self, from: SocketAddr, me: u32, packet: ClientPacket, now: Instant) {
        match packet {
            ClientPacket::ContactList { uins } => {
                let first = self.conns.get(&from).is_some_and(|c| !c.announced);
                let mut announce: Vec<u32> = uins.clone();
                if let Some(conn) = self.conns.get_mut(&from) {
                    if first {
                        announce.extend(conn.contacts.iter().copied());
                        conn.announced = true;
                    }
                    conn.contacts.extend(uins);
                }
                announce.sort_unstable();
                announce.dedup();
                for uin in announce {
                    self.announce_to(from, uin, first, now);
                }
                if first {
                    self.deliver_offline(from, me, now);
                }
            }
            ClientPacket::Other {
                command: client_cmd::ADD_TO_LIST,
                params,
            } if params.len() >= 4 => {
                let uin = u32::from_le_bytes([params[0], params[1], params[2], params[3]]);
                if let Some(conn) = self.conns.get_mut(&from) {
                    conn.contacts.insert(uin);
                }
                self.announce_to(from, uin, true, now);
                self.tell_added(me, uin, now);
            }
            ClientPacket::SendMessage { to, kind, text } => {
                self.route_message(me, to, kind, text, now)
            }
            ClientPacket::StatusChange { status } => {
                let old = self.conns.get(&from).map_or(Status::ONLINE, |c| c.status);
                if let Some(conn) = self.conns.get_mut(&from) {
                    conn.status = status;
                }
                let packet = if status == Status::INVISIBLE {
                    ServerPacket::UserOffline { uin: me }
                } else if old == Status::INVISIBLE {
                    self.online_packet(me)
                } else {
                    ServerPacket::StatusUpdate { uin: me, status }
                };
                self.tell_watchers(me, &packet, now);
            }
            ClientPacket::SearchUin { search_seq, uin } => {
                self.search(from, search_seq, &SearchQuery::Uin(uin), now)
            }
            ClientPacket::SearchUser {
                search_seq,
                nick,
                first,
                last,
                email,
            } => {
                let query = if email.is_empty() {
                    SearchQuery::Name { nick, first, last }
                } else {
                    SearchQuery::Email(email)
                };
                self.search(from, search_seq, &query, now)
            }
            ClientPacket::InfoReq { info_seq, uin } => {
                let user = lock(&self.directory).users.get(&uin).map_or_else(
                    || UserRecord {
                        uin,
                        ..Default::default()
                    },
                    User::record,
                );
                self.send(from, &ServerPacket::InfoReply { info_seq, user }, now);
            }
            ClientPacket::ExtInfoReq { info_seq, uin } => {
                let info = lock(&self.directory)
                    .users
                    .get(&uin)
                    .map_or_else(ExtInfo::default, User::ext_info);
                self.send(
                    from,
                    &ServerPacket::ExtInfoReply {
                        info_seq,
                        uin,
                        info,
                    },
                    now,
                );
            }
            ClientPacket::ChangePassword { password, .. } => {
                if let Some(user) = lock(&self.directory).users.get_mut(&me) {
                    user.password = password;
                }
            }
            ClientPacket::SendTextCode { text, .. } if text == "B_USER_DISCONNECTED" => {
                tracing::info!(uin = me, "ICQ logout");
                self.drop_conn(from, now);
            }
            // LOGIN_1, LOGIN_2, KEEP_ALIVE, B_MESSAGE_ACK: the ACK already answered.
            _ => {}
        }
    }

    /// Tells `to` whether `uin` is online; offline users only when `say_offline`.
    fn announce_to(&mut self, to: SocketAddr, uin: u32, say_offline: bool, now: Instant) {
        if self.visible(uin) {
            let packet = self.online_packet(uin);
            self.send(to, &packet, now);
        } else if say_offline {
            self.send(to, &ServerPacket::UserOffline { uin }, now);
        }
    }

    fn route_message(&mut self, from: u32, to: u32, kind: u16, text: String, now: Instant) {
        let time = MessageTime::from_unix_seconds(unix_now());
        // A session that has not had its stored messages yet gets this one after them.
        let ready = self
            .online
            .get(&to)
            .copied()
            .filter(|addr| self.conns.get(addr).is_some_and(|c| c.announced));
        match ready {
            Some(addr) => {
                let packet = ServerPacket::ReceiveMessage {
                    from,
                    time,
                    kind,
                    text,
                };
                self.send(addr, &packet, now);
            }
            None => {
                let mut dir = lock(&self.directory);
                if dir.users.contains_key(&to) {
                    let stored = StoredMessage {
                        from,
                        time,
                        kind,
                        text,
                    };
                    dir.offline.entry(to).or_default().push(stored);
                } else {
                    tracing::info!(from, to, "ICQ message to unknown UIN dropped");
                }
            }
        }
    }

    fn deliver_offline(&mut self, to: SocketAddr, me: u32, now: Instant) {
        let stored = lock(&self.directory)
            .offline
            .remove(&me)
            .unwrap_or_default();
        for m in stored {
            let packet = ServerPacket::ReceiveMessage {
                from: m.from,
                time: m.time,
                kind: m.kind,
                text: m.text,
            };
            self.send(to, &packet, now);
        }
    }

    /// "You were added" to `uin`, from `adder`.
    fn tell_added(&mut self, adder: u32, uin: u32, now: Instant) {
        let Some(record) = lock(&self.directory).users.get(&adder).map(User::record) else {
            return;
        };
        let content = MessageContent::Added {
            nick: record.nick,
            first: record.first,
            last: record.last,
            email: record.email,
            auth_required: record.auth_required,
        };
        let (kind, text) = content.to_wire();
        self.route_message(adder, uin, kind, text, now);
    }

    fn search(&mut self, to: SocketAddr, search_seq: u16, query: &SearchQuery, now: Instant) {
        let found: Vec<UserRecord> = lock(&self.directory)
            .users
            .values()
            .map(User::record)
            .filter(|r| query.matches(r))
            .collect();
        for user in found.iter().take(SEARCH_LIMIT) {
            let packet = ServerPacket::UserFound {
                search_seq,
                user: user.clone(),
            };
            self.send(to, &packet, now);
        }
        let more = found.len() > SEARCH_LIMIT;
        self.send(to, &ServerPacket::EndOfSearch { search_seq, more }, now);
    }

    /// Sends `packet` to every logged-in client that lists `uin`.
    fn tell_watchers(&mut self, uin: u32, packet: &ServerPacket, now: Instant) {
        for conn in self.conns.values_mut() {
            if conn.uin.is_some() && conn.uin != Some(uin) && conn.contacts.contains(&uin) {
                conn.session.send(packet, now);
            }
        }
    }

    fn visible(&self, uin: u32) -> bool {
        self.online
            .get(&uin)
            .and_then(|a| self.conns.get(a))
            .is_some_and(|c| c.status != Status::INVISIBLE)
    }

    fn online_packet(&self, uin: u32) -> ServerPacket {
        let addr = self.online.get(&uin).copied();
        let conn = addr.and_then(|a| self.conns.get(&a));
        let ip = addr.map_or(Ipv4Addr::UNSPECIFIED, ipv4);
        ServerPacket::UserOnline {
            uin,
            ip,
            tcp_port: conn.map_or(0, |c| c.tcp_port),
            real_ip: ip,
            status: conn.map_or(Status::ONLINE, |c| c.status),
        }
    }

    fn send(&mut self, to: SocketAddr, packet: &ServerPacket, now: Instant) {
        if let Some(conn) = self.conns.get_mut(&to) {
            conn.session.send(packet, now);
        }
    }

    /// Forgets a client; if it was logged in, what it never acknowledged is stored
    /// and its watchers see it go offline.
    fn drop_conn(&mut self, addr: SocketAddr, now: Instant) {
        let Some(mut conn) = self.conns.remove(&addr) else {
            return;
        };
        if let Some(uin) = conn.uin {
            keep_undelivered(&self.directory, uin, &mut conn.session);
            if self.online.get(&uin) == Some(&addr) {
                self.online.remove(&uin);
                if conn.status != Status::INVISIBLE {
                    self.tell_watchers(uin, &ServerPacket::UserOffline { uin }, now);
                }
            }
        }
    }
}

impl Conn {
    fn new(session: ServerSession) -> Conn {
        Conn {
            session,
            uin: None,
            status: Status::ONLINE,
            tcp_port: 0,
            contacts: HashSet::new(),
            announced: false,
        }
    }
}

/// Moves the RECEIVE_MESSAGEs `session` sent to `uin` and never got an ACK for to
/// the user's stored messages, in order, for its next login. Behind whatever is
/// stored already: a session that had not had its stored messages received no live
/// ones either (they were stored behind).
fn keep_undelivered(directory: &Mutex<Directory>, uin: u32, session: &mut ServerSession) {
    let kept: Vec<StoredMessage> = session
        .take_unacknowledged()
        .into_iter()
        .filter_map(|frame| match frame.packet {
            ServerPacket::ReceiveMessage {
                from,
                time,
                kind,
                text,
            } => Some(StoredMessage {
                from,
                time,
                kind,
                text,
            }),
            _ => None,
        })
        .collect();
    if !kept.is_empty() {
        tracing::info!(
            uin,
            count = kept.len(),
            "ICQ messages never acknowledged, kept for the next login"
        );
        lock(directory).offline.entry(uin).or_default().extend(kept);
    }
}

fn not_connected() -> ServerPacket {
    ServerPacket::Other {
        command: server_cmd::NOT_CONNECTED,
        params: Vec::new(),
    }
}

fn lock(dir: &Mutex<Directory>) -> std::sync::MutexGuard<'_, Directory> {
    // A panic elsewhere must not take the simulator down with it.
    dir.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn ipv4(addr: SocketAddr) -> Ipv4Addr {
    match addr.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => ip.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
