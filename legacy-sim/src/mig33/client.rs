//! A scriptable mig33 client over tokio, driving `mig33_proto::ClientSession`, and
//! the `legacy-sim mig33-client` command line.

use crate::events::EventQueue;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use mig33_proto::{
    ClientConfig, ClientEvent, ClientSession, CloseReason, CommandError, Contact, Group, Message,
    Presence, Request, RequestId,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

type Call = Box<dyn FnOnce(&mut ClientSession) -> Result<RequestId, CommandError> + Send>;

enum Command {
    Call(Call, oneshot::Sender<Result<RequestId, CommandError>>),
    Logout(oneshot::Sender<()>),
}

/// A logged-in mig33 user. Events that arrive while a helper waits for something
/// else are kept, in order, for [`Client::next_event`].
pub struct Client {
    username: String,
    commands: mpsc::UnboundedSender<Command>,
    events: EventQueue<ClientEvent>,
    task: JoinHandle<()>,
}

impl Client {
    /// Connects and logs in; fails with the server's reason if the login is refused.
    /// The contact list follows as a [`ClientEvent::ContactList`] (see
    /// [`Client::wait_contact_list`]).
    pub async fn login(addr: SocketAddr, username: &str, password: &str) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let session = ClientSession::new(ClientConfig::new(username, password));
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(drive(stream, session, command_rx, event_tx));
        let mut client = Client {
            username: username.into(),
            commands,
            events: EventQueue::new(events),
            task,
        };
        let event = client
            .wait_for(Duration::from_secs(10), |e| {
                matches!(e, ClientEvent::LoggedIn { .. } | ClientEvent::Closed(_))
            })
            .await
            .context("logging in")?;
        match event {
            ClientEvent::LoggedIn { .. } => Ok(client),
            ClientEvent::Closed(CloseReason::LoginFailed(e)) => bail!("login refused: {e}"),
            other => bail!("login failed: {other:?}"),
        }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    async fn call(
        &self,
        f: impl FnOnce(&mut ClientSession) -> Result<RequestId, CommandError> + Send + 'static,
    ) -> anyhow::Result<RequestId> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Call(Box::new(f), tx))
            .map_err(|_| anyhow!("connection closed"))?;
        Ok(rx.await.map_err(|_| anyhow!("connection closed"))??)
    }

    pub async fn set_presence(&self, presence: Presence) -> anyhow::Result<RequestId> {
        self.call(move |s| s.set_presence(presence)).await
    }

    /// Sends a private message; the server's OK or ERROR arrives as
    /// [`ClientEvent::RequestDone`] (see [`Client::wait_done`]).
    pub async fn send_private(&self, to: &str, text: &str) -> anyhow::Result<RequestId> {
        let (to, text) = (to.to_owned(), text.to_owned());
        self.call(move |s| s.send_private(&to, &text)).await
    }

    pub async fn send_room(&self, room: &str, text: &str) -> anyhow::Result<RequestId> {
        let (room, text) = (room.to_owned(), text.to_owned());
        self.call(move |s| s.send_chatroom(&room, &text)).await
    }

    /// Joins a room and waits for the server's answer.
    pub async fn join_room(&mut self, room: &str) -> anyhow::Result<()> {
        let name = room.to_owned();
        let id = self.call(move |s| s.join_chatroom(&name)).await?;
        self.wait_done(id, Duration::from_secs(10))
            .await
            .with_context(|| format!("joining {room}"))
    }

    /// Leaves a room and waits for the server's answer.
    pub async fn leave_room(&mut self, room: &str) -> anyhow::Result<()> {
        let name = room.to_owned();
        let id = self.call(move |s| s.leave_chatroom(&name)).await?;
        self.wait_done(id, Duration::from_secs(10))
            .await
            .with_context(|| format!("leaving {room}"))
    }

    /// Waits for the OK or ERROR answering request `id`.
    pub async fn wait_done(&mut self, id: RequestId, timeout: Duration) -> anyhow::Result<()> {
        let event = self
            .wait_for(
                timeout,
                |e| matches!(e, ClientEvent::RequestDone { id: done, .. } if *done == id),
            )
            .await?;
        match event {
            ClientEvent::RequestDone {
                result: Err(e),
                request,
                ..
            } => bail!("{request:?} failed: {e}"),
            _ => Ok(()),
        }
    }

    /// The next event, or `None` after `timeout` or once the connection is gone.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<ClientEvent> {
        self.events.next(timeout).await
    }

    /// The first event matching `pred` within `timeout`; other events stay queued.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl FnMut(&ClientEvent) -> bool,
    ) -> anyhow::Result<ClientEvent> {
        Ok(self.events.wait_for(timeout, pred).await?)
    }

    /// Waits for the next message (private or chatroom).
    pub async fn wait_message(&mut self, timeout: Duration) -> anyhow::Result<Message> {
        match self
            .wait_for(timeout, |e| matches!(e, ClientEvent::Message(_)))
            .await?
        {
            ClientEvent::Message(m) => Ok(m),
            _ => unreachable!("filtered by wait_for"),
        }
    }

    /// Waits for the contact list.
    pub async fn wait_contact_list(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<(Vec<Group>, Vec<Contact>)> {
        match self
            .wait_for(timeout, |e| matches!(e, ClientEvent::ContactList { .. }))
            .await?
        {
            ClientEvent::ContactList { groups, contacts } => Ok((groups, contacts)),
            _ => unreachable!("filtered by wait_for"),
        }
    }

    /// Sends LOGOUT and waits until the connection is closed.
    pub async fn logout(mut self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Logout(tx)).is_ok() {
            let _ = rx.await;
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Owns the socket: moves bytes, events, commands and time through the session.
async fn drive(
    stream: TcpStream,
    mut session: ClientSession,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<ClientEvent>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = vec![0u8; 16 * 1024];
    let mut logout_done = None;
    session.handle_timeout(Instant::now());
    loop {
        while let Some(event) = session.poll_event() {
            let _ = events.send(event);
        }
        if let Some(bytes) = session.poll_transmit() {
            if writer.write_all(&bytes).await.is_err() {
                session.handle_disconnect();
            }
            continue;
        }
        if session.is_closed() {
            break;
        }
        let deadline = session.poll_timeout();
        tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(n) if n > 0 => session.handle_input(&buf[..n]),
                _ => session.handle_disconnect(),
            },
            command = commands.recv() => match command {
                Some(Command::Call(f, reply)) => { let _ = reply.send(f(&mut session)); }
                Some(Command::Logout(done)) => { session.logout(); logout_done = Some(done); }
                None => break,
            },
            _ = sleep_until(deadline) => session.handle_timeout(Instant::now()),
        }
    }
    let _ = writer.shutdown().await;
    if let Some(done) = logout_done {
        let _ = done.send(());
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// The arguments of `legacy-sim mig33-client`.
#[derive(Debug, Parser)]
pub struct ClientArgs {
    /// Simulator address, host:port.
    #[arg(long)]
    server: String,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Send a private message to USER.
    Send { to: String, text: String },
    /// Join ROOM, send TEXT, wait for the echo, leave.
    Room { room: String, text: String },
    /// Print events for SECONDS seconds.
    Listen { seconds: u64 },
}

/// `legacy-sim mig33-client --server ADDR --user U --password P <send USER TEXT |
/// room ROOM TEXT | listen SECONDS>`.
pub async fn client_cli(args: Vec<String>) -> anyhow::Result<()> {
    run_client(ClientArgs::try_parse_from(
        std::iter::once("mig33-client".to_owned()).chain(args),
    )?)
    .await
}

/// Runs `legacy-sim mig33-client` with parsed arguments.
pub async fn run_client(cli: ClientArgs) -> anyhow::Result<()> {
    let addr = tokio::net::lookup_host(&cli.server)
        .await?
        .next()
        .ok_or_else(|| anyhow!("cannot resolve {}", cli.server))?;
    let mut client = Client::login(addr, &cli.user, &cli.password).await?;
    let wait = Duration::from_secs(10);
    match cli.action {
        Action::Send { to, text } => {
            let id = client.send_private(&to, &text).await?;
            client.wait_done(id, wait).await?;
            println!("sent to {to}");
        }
        Action::Room { room, text } => {
            client.join_room(&room).await?;
            client.send_room(&room, &text).await?;
            let echo = client
                .wait_for(wait, |e| {
                    matches!(e, ClientEvent::Message(m) if m.destination == room && m.content == text)
                })
                .await?;
            println!("{echo:?}");
            client.leave_room(&room).await?;
        }
        Action::Listen { seconds } => {
            let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
            loop {
                let left = end.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                match client.next_event(left).await {
                    Some(ClientEvent::Closed(reason)) => bail!("connection closed: {reason:?}"),
                    Some(event) => println!("{}", describe(&event)),
                    None => {}
                }
            }
        }
    }
    client.logout().await;
    Ok(())
}

/// One line per event for the `listen` command.
fn describe(event: &ClientEvent) -> String {
    match event {
        ClientEvent::Message(m) => format!(
            "message {:?} {} -> {}: {}",
            m.destination_type, m.source, m.destination, m.content
        ),
        ClientEvent::Presence {
            contact_id,
            username,
            presence,
        } => format!(
            "presence {} {presence:?}",
            username.clone().unwrap_or_else(|| format!("#{contact_id}"))
        ),
        ClientEvent::Alert { text, .. } => format!("alert {text}"),
        ClientEvent::ContactList { contacts, .. } => {
            let names: Vec<&str> = contacts.iter().map(|c| c.username.as_str()).collect();
            format!("contacts {}", names.join(", "))
        }
        ClientEvent::RequestDone {
            request: Request::Message { destination, .. },
            result: Err(e),
            ..
        } => format!("message to {destination} failed: {e}"),
        other => format!("{other:?}"),
    }
}
