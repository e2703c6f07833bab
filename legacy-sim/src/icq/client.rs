//! A scriptable ICQ client: a tokio task drives a [`ClientSession`] over UDP;
//! [`Client`] sends it commands and reads its events.

use crate::events::EventQueue;
use anyhow::{anyhow, bail, Context};
use icq_proto::{
    ClientEvent, ClientSession, ExtInfo, LoginOptions, MessageContent, SearchQuery, SendReceipt,
    SessionState, Status, UserRecord,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// How long `login` waits for LOGIN_REPLY or a refusal.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

type Command = Box<dyn FnOnce(&mut ClientSession, Instant) + Send>;

/// One logged-in legacy user. Dropping it logs out.
pub struct Client {
    uin: u32,
    commands: mpsc::UnboundedSender<Command>,
    events: EventQueue<ClientEvent>,
}

impl Client {
    /// Logs in with an empty contact list (the simulator adds the config's).
    pub async fn login(server: SocketAddr, uin: u32, password: &str) -> anyhow::Result<Client> {
        Self::login_with(server, uin, password, LoginOptions::default()).await
    }

    pub async fn login_with(
        server: SocketAddr,
        uin: u32,
        password: &str,
        options: LoginOptions,
    ) -> anyhow::Result<Client> {
        let local: SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(server).await?;
        let mut session = ClientSession::new();
        session.login(uin, password, options, Instant::now())?;
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        tokio::spawn(drive(socket, session, command_rx, event_tx));
        let mut client = Client {
            uin,
            commands,
            events: EventQueue::new(events),
        };
        let outcome = client
            .wait_for(LOGIN_TIMEOUT, |e| {
                matches!(
                    e,
                    ClientEvent::LoggedIn { .. } | ClientEvent::LoginFailed { .. }
                )
            })
            .await;
        match outcome {
            Some(ClientEvent::LoggedIn { .. }) => Ok(client),
            Some(ClientEvent::LoginFailed { reason }) => {
                bail!("ICQ login of {uin} failed: {reason}")
            }
            _ => bail!("ICQ login of {uin}: no answer from {server}"),
        }
    }

    pub fn uin(&self) -> u32 {
        self.uin
    }

    /// Sends plain text; the receipt lists characters sent as `?`.
    pub async fn send_message(&mut self, to: u32, text: &str) -> anyhow::Result<SendReceipt> {
        self.send_content(to, MessageContent::Text(text.to_string()))
            .await
    }

    pub async fn send_content(
        &mut self,
        to: u32,
        content: MessageContent,
    ) -> anyhow::Result<SendReceipt> {
        Ok(self
            .call(move |s, now| s.send_message(to, &content, now))
            .await??)
    }

    /// Sends a message and waits until the server acknowledged it.
    pub async fn send_message_acked(
        &mut self,
        to: u32,
        text: &str,
        timeout: Duration,
    ) -> anyhow::Result<SendReceipt> {
        let receipt = self.send_message(to, text).await?;
        let seq = receipt.seq;
        self.wait_for(
            timeout,
            |e| matches!(e, ClientEvent::MessageAcked { seq: s } if *s == seq),
        )
        .await
        .ok_or_else(|| anyhow!("message {seq} not acknowledged"))?;
        Ok(receipt)
    }

    /// Asks `to` for authorization to add them (message type 0x0006), with this
    /// client's nick and a reason.
    pub async fn request_authorization(
        &mut self,
        to: u32,
        nick: &str,
        reason: &str,
    ) -> anyhow::Result<SendReceipt> {
        let content = MessageContent::AuthRequest {
            nick: nick.to_string(),
            first: String::new(),
            last: String::new(),
            email: String::new(),
            auth_required: false,
            reason: reason.to_string(),
        };
        self.send_content(to, content).await
    }

    /// Answers an authorization request from `to`: granted (0x0008) or denied with a
    /// reason (0x0007).
    pub async fn answer_authorization(
        &mut self,
        to: u32,
        grant: bool,
        reason: &str,
    ) -> anyhow::Result<SendReceipt> {
        let content = if grant {
            MessageContent::AuthGranted {
                text: String::new(),
            }
        } else {
            MessageContent::AuthDenied {
                reason: reason.to_string(),
            }
        };
        self.send_content(to, content).await
    }

    /// Recommends contacts to `to` (message type 0x0013).
    pub async fn send_contacts(
        &mut self,
        to: u32,
        contacts: &[(u32, &str)],
    ) -> anyhow::Result<SendReceipt> {
        let list = contacts
            .iter()
            .map(|(uin, nick)| (*uin, (*nick).to_string()))
            .collect();
        self.send_content(to, MessageContent::Contacts(list)).await
    }

    /// The answer `from` gives to this client's authorization request: `Some(true)`
    /// granted, `Some(false)` denied, `None` if none came within `timeout`. Other
    /// events stay queued.
    pub async fn wait_for_authorization(&mut self, from: u32, timeout: Duration) -> Option<bool> {
        let answer = self
            .wait_for(timeout, |e| {
                matches!(e, ClientEvent::Message { from: f, content, .. } if *f == from
                    && matches!(content, MessageContent::AuthGranted { .. } | MessageContent::AuthDenied { .. }))
            })
            .await?;
        Some(matches!(
            answer,
            ClientEvent::Message {
                content: MessageContent::AuthGranted { .. },
                ..
            }
        ))
    }

    pub async fn set_status(&mut self, status: Status) -> anyhow::Result<()> {
        Ok(self.call(move |s, now| s.set_status(status, now)).await??)
    }

    pub async fn add_contact(&mut self, uin: u32) -> anyhow::Result<()> {
        Ok(self.call(move |s, now| s.add_contact(uin, now)).await??)
    }

    /// Runs a search; returns the users found and whether the server had more.
    pub async fn search(
        &mut self,
        query: SearchQuery,
        timeout: Duration,
    ) -> anyhow::Result<(Vec<UserRecord>, bool)> {
        let seq = self.call(move |s, now| s.search(&query, now)).await??;
        let mut found = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self
                .wait_for(left, |e| match e {
                    ClientEvent::SearchResult { search_seq, .. }
                    | ClientEvent::SearchEnd { search_seq, .. } => *search_seq == seq,
                    _ => false,
                })
                .await;
            match event {
                Some(ClientEvent::SearchResult { user, .. }) => found.push(user),
                Some(ClientEvent::SearchEnd { more, .. }) => return Ok((found, more)),
                _ => bail!("search timed out"),
            }
        }
    }

    pub async fn info(&mut self, uin: u32, timeout: Duration) -> anyhow::Result<UserRecord> {
        let seq = self.call(move |s, now| s.request_info(uin, now)).await??;
        match self
            .wait_for(
                timeout,
                |e| matches!(e, ClientEvent::Info { info_seq, .. } if *info_seq == seq),
            )
            .await
        {
            Some(ClientEvent::Info { user, .. }) => Ok(user),
            _ => bail!("no INFO_REPLY for {uin}"),
        }
    }

    pub async fn ext_info(&mut self, uin: u32, timeout: Duration) -> anyhow::Result<ExtInfo> {
        let seq = self
            .call(move |s, now| s.request_ext_info(uin, now))
            .await??;
        match self
            .wait_for(
                timeout,
                |e| matches!(e, ClientEvent::ExtInfo { info_seq, .. } if *info_seq == seq),
            )
            .await
        {
            Some(ClientEvent::ExtInfo { info, .. }) => Ok(info),
            _ => bail!("no EXT_INFO_REPLY for {uin}"),
        }
    }

    /// The next event, or None after `timeout` (or once the session task ended).
    pub async fn next_event(&mut self, timeout: Duration) -> Option<ClientEvent> {
        self.events.next(timeout).await
    }

    /// The first event matching `want` within `timeout`; other events stay queued
    /// for `next_event`.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        want: impl FnMut(&ClientEvent) -> bool,
    ) -> Option<ClientEvent> {
        self.events.wait_for(timeout, want).await.ok()
    }

    /// The next message from `from`.
    pub async fn wait_for_message(&mut self, from: u32, timeout: Duration) -> Option<ClientEvent> {
        self.wait_for(
            timeout,
            |e| matches!(e, ClientEvent::Message { from: f, .. } if *f == from),
        )
        .await
    }

    /// Sends B_USER_DISCONNECTED and ends the session.
    pub async fn logout(mut self) {
        let _ = self.call(|s, now| s.logout(now)).await;
        let _ = self
            .wait_for(Duration::from_secs(1), |e| {
                matches!(e, ClientEvent::Disconnected { .. })
            })
            .await;
    }

    /// Runs `f` on the session inside its task.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ClientSession, Instant) -> R + Send + 'static,
    ) -> anyhow::Result<R> {
        let (tx, rx) = oneshot::channel();
        let command: Command = Box::new(move |session, now| {
            let _ = tx.send(f(session, now));
        });
        self.commands
            .send(command)
            .map_err(|_| anyhow!("the ICQ session has ended"))?;
        rx.await.context("the ICQ session has ended")
    }
}

/// The session task: socket, commands and timers in, datagrams and events out.
async fn drive(
    socket: UdpSocket,
    mut session: ClientSession,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<ClientEvent>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        while let Some(datagram) = session.poll_transmit() {
            let _ = socket.send(&datagram).await;
        }
        while let Some(event) = session.poll_event() {
            let _ = events.send(event);
        }
        if session.state() == SessionState::Closed {
            return;
        }
        let deadline = session.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = socket.recv(&mut buf) => {
                // Errors (e.g. ICMP port unreachable) are left to retransmission.
                if let Ok(n) = received {
                    if let Err(e) = session.handle_datagram(&buf[..n], Instant::now()) {
                        tracing::debug!("undecodable ICQ datagram: {e}");
                    }
                }
            }
            command = commands.recv() => match command {
                Some(f) => f(&mut session, Instant::now()),
                None => session.logout(Instant::now()), // the Client was dropped
            },
            () = sleep => session.handle_timeout(Instant::now()),
        }
    }
}

/// The arguments of `legacy-sim icq-client`.
#[derive(clap::Parser, Debug)]
pub struct ClientArgs {
    /// Server address, e.g. 127.0.0.1:4000.
    #[arg(long)]
    server: String,
    #[arg(long)]
    uin: u32,
    #[arg(long)]
    password: String,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Send a message and wait for the server's ACK.
    Send { to: u32, text: Vec<String> },
    /// Print every event for SECONDS seconds.
    Listen { seconds: u64 },
    /// Set the status (online, away, dnd, invisible), then print events for 2 s.
    Status { status: String },
}

/// `legacy-sim icq-client --server ADDR --uin N --password P <send UIN TEXT | listen SECONDS | status away>`
pub async fn client_cli(args: Vec<String>) -> anyhow::Result<()> {
    use clap::Parser;
    run_client(ClientArgs::try_parse_from(
        std::iter::once("icq-client".to_owned()).chain(args),
    )?)
    .await
}

/// Runs `legacy-sim icq-client` with parsed arguments.
pub async fn run_client(cli: ClientArgs) -> anyhow::Result<()> {
    let server = tokio::net::lookup_host(&cli.server)
        .await?
        .next()
        .ok_or_else(|| anyhow!("cannot resolve {}", cli.server))?;
    let mut client = Client::login(server, cli.uin, &cli.password).await?;
    println!("logged in as {}", cli.uin);
    let listen = match cli.action {
        Action::Send { to, text } => {
            let receipt = client
                .send_message_acked(to, &text.join(" "), Duration::from_secs(30))
                .await?;
            if !receipt.unrepresentable.is_empty() {
                println!("sent as '?': {:?}", receipt.unrepresentable);
            }
            println!("sent to {to}");
            Duration::ZERO
        }
        Action::Listen { seconds } => Duration::from_secs(seconds),
        Action::Status { status } => {
            let status =
                Status::from_name(&status).ok_or_else(|| anyhow!("unknown status {status:?}"))?;
            client.set_status(status).await?;
            println!("status {}", status.name());
            Duration::from_secs(2)
        }
    };
    let deadline = tokio::time::Instant::now() + listen;
    while let Some(event) = client
        .next_event(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        print_event(&event);
    }
    client.logout().await;
    Ok(())
}

fn print_event(event: &ClientEvent) {
    match event {
        ClientEvent::Message {
            from,
            text,
            timestamp,
            ..
        } => println!(
            "message from {from} at {:04}-{:02}-{:02} {:02}:{:02}: {text}",
            timestamp.year, timestamp.month, timestamp.day, timestamp.hour, timestamp.minute
        ),
        ClientEvent::ContactOnline { uin, status, .. } => {
            println!("online {uin} {}", status.name())
        }
        ClientEvent::ContactOffline { uin } => println!("offline {uin}"),
        ClientEvent::ContactStatus { uin, status } => println!("status {uin} {}", status.name()),
        other => println!("{other:?}"),
    }
}
