//! A scriptable MSN client for tests and demos: tokio sockets and HTTP
//! Passport login around the `msn-proto` session machines.
//!
//! The notification-server connection and every switchboard run in their own
//! tasks; everything they report arrives through [`Client::next_event`].

use crate::events::EventQueue;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use msn_proto::passport::{
    authorization_header, classify_response, parse_passport_urls, LoginResponse,
};
use msn_proto::{
    AckMode, Contact, Group, List, MessageKind, MsnObject, NsConfig, NsEvent, NsSession, SbEvent,
    SbSession, ServerError, Status, TextFormat, MSNOBJ_TYPE_DISPLAY_PICTURE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use super::files::{FileOutcome, FilePolicy, FileTransfers};
use super::http;
use super::msnftp::{self, FtpResult, Invitation, MsnftpSender};
use super::picture::{self, Outcome, Picture, PictureServer};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the client observed.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    Presence {
        email: String,
        status: Status,
        friendly_name: Option<String>,
    },
    /// Text in switchboard `session` (a local id).
    Message {
        session: u64,
        from: String,
        text: String,
        format: Option<TextFormat>,
    },
    Typing {
        session: u64,
        from: String,
    },
    /// A datacast (`text/x-msnmsgr-datacast`): a nudge is id 1.
    Datacast {
        session: u64,
        from: String,
        id: u32,
    },
    Joined {
        session: u64,
        email: String,
    },
    Left {
        session: u64,
        email: String,
    },
    Delivered {
        session: u64,
        trid: u32,
    },
    DeliveryFailed {
        session: u64,
        trid: u32,
        error: Option<ServerError>,
    },
    /// Someone put us on their contact list (`ADD 0 RL`).
    AddedBy {
        email: String,
        friendly_name: String,
    },
    Error {
        error: ServerError,
    },
    /// A display picture transfer completed: `to` acked all `bytes` of our
    /// picture.
    PictureServed {
        to: String,
        bytes: usize,
    },
    /// A display picture transfer to `to` was given up: an ack did not come
    /// in time (or `to` reported an error).
    PictureAbandoned {
        to: String,
    },
    /// A file arrived (MSNSLP); also kept for [`Client::files_received`].
    FileReceived {
        from: String,
        name: String,
        data: Vec<u8>,
    },
    /// `to` received all `bytes` of a file we sent (MSNSLP: acked the
    /// data; MSNFTP: `BYE 16777989`).
    FileSent {
        to: String,
        name: String,
        bytes: usize,
    },
    /// `to` refused a file we offered (`603 Decline`, `CANCEL` `REJECT`).
    FileDeclined {
        to: String,
        name: String,
    },
    /// A file we offered to `to` did not get through.
    FileFailed {
        to: String,
        name: String,
        why: String,
    },
    /// Any other notification-server event.
    Ns(NsEvent),
    Disconnected {
        reason: String,
    },
}

enum NsCmd {
    Status(Status),
    FriendlyName(String),
    Add(String),
    Remove(String),
    RequestSb(oneshot::Sender<(String, String)>),
    /// Announce this MSNObject (XML) with a `CHG` in the current status.
    MsnObject(Option<String>),
    Logout(oneshot::Sender<()>),
}

enum SbCmd {
    Text(String),
    Formatted(String, TextFormat),
    Typing,
    Nudge,
    /// Any message as given, acknowledged (`A`): winks, ink, invitations.
    Raw(msn_proto::Message),
    Invite(String),
    /// Offer a file over MSNSLP.
    SendFile(String, Arc<Vec<u8>>),
    /// Offer a file over MSNFTP.
    SendFileMsnftp(String, Arc<Vec<u8>>),
    /// Fetch the contact's picture (MSNObject XML) as fetch number n.
    FetchPicture(String, u64),
    Leave,
}

/// A file received over MSNSLP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFile {
    pub from: String,
    pub name: String,
    pub data: Vec<u8>,
}

type FetchReply = oneshot::Sender<Result<Vec<u8>, String>>;

struct SbHandle {
    id: u64,
    members: Vec<String>,
    tx: mpsc::UnboundedSender<SbCmd>,
    closed: bool,
}

struct Shared {
    sbs: Vec<SbHandle>,
    next_sb: u64,
    tasks: Vec<AbortHandle>,
    /// The display picture we serve, if any.
    picture: Option<Picture>,
    pictures_served: usize,
    ack_timeout: Duration,
    random: std::collections::hash_map::RandomState,
    random_counter: u64,
    file_policy: FilePolicy,
    send_transreq: bool,
    files_received: Vec<ReceivedFile>,
    /// Contacts' announced MSNObjects (XML), by lowercased email.
    contact_pictures: HashMap<String, String>,
    fetches: HashMap<u64, FetchReply>,
    next_fetch: u64,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            sbs: Vec::new(),
            next_sb: 0,
            tasks: Vec::new(),
            picture: None,
            pictures_served: 0,
            ack_timeout: picture::ACK_TIMEOUT,
            random: Default::default(),
            random_counter: 0,
            file_policy: FilePolicy::Accept,
            send_transreq: true,
            files_received: Vec::new(),
            contact_pictures: HashMap::new(),
            fetches: HashMap::new(),
            next_fetch: 0,
        }
    }
}

impl Shared {
    /// An unpredictable u32 (base identifiers, ack ids).
    fn random(&mut self) -> u32 {
        use std::hash::{BuildHasher, Hasher};
        self.random_counter += 1;
        let mut h = self.random.build_hasher();
        h.write_u64(self.random_counter);
        h.finish() as u32
    }
}

type SharedRef = Arc<Mutex<Shared>>;

fn lock(shared: &SharedRef) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A signed-in MSN user.
pub struct Client {
    email: String,
    friendly_name: String,
    groups: Vec<Group>,
    contacts: Vec<Contact>,
    events: EventQueue<ClientEvent>,
    events_tx: mpsc::UnboundedSender<ClientEvent>,
    ns: mpsc::UnboundedSender<NsCmd>,
    shared: SharedRef,
}

impl Client {
    /// Dispatch -> notification server -> Passport -> SYN -> online.
    pub async fn login(
        dispatch: impl std::fmt::Display,
        nexus_url: &str,
        email: &str,
        password: &str,
    ) -> anyhow::Result<Client> {
        let mut addr = dispatch.to_string();
        let (events_tx, events) = mpsc::unbounded_channel();
        for _ in 0..4 {
            let mut stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(&addr))
                .await
                .map_err(|_| anyhow!("connecting to {addr} timed out"))?
                .with_context(|| format!("connecting to {addr}"))?;
            let _ = stream.set_nodelay(true);
            let mut ns = NsSession::new(NsConfig::new(email), std::time::Instant::now());
            let mut buf = vec![0u8; 8192];
            let mut redirect = None;
            let mut list = None;
            let mut me = None;
            let mut online = false;
            while redirect.is_none() && !online {
                while let Some(bytes) = ns.poll_transmit() {
                    stream.write_all(&bytes).await?;
                }
                while let Some(ev) = ns.poll_event() {
                    match ev {
                        NsEvent::Redirect { addr } => redirect = Some(addr),
                        NsEvent::NeedTicket { policy } => {
                            let ticket =
                                passport_login(nexus_url, email, password, &policy).await?;
                            ns.ticket(&ticket);
                        }
                        NsEvent::LoginFailed { reason, .. } => bail!("{reason}"),
                        NsEvent::Closed { .. } if redirect.is_some() => {}
                        NsEvent::Closed { reason } => {
                            bail!("connection closed during login: {reason:?}")
                        }
                        NsEvent::LoggedIn { friendly_name, .. } => me = Some(friendly_name),
                        NsEvent::ContactList {
                            groups, contacts, ..
                        } => list = Some((groups, contacts)),
                        NsEvent::StatusChanged { .. } => online = true,
                        other => forward_ns_event(other, &events_tx),
                    }
                }
                // Events (a ticket) may have queued more output.
                while let Some(bytes) = ns.poll_transmit() {
                    stream.write_all(&bytes).await?;
                }
                if redirect.is_some() || online {
                    break;
                }
                let n = tokio::time::timeout(IO_TIMEOUT, stream.read(&mut buf))
                    .await
                    .map_err(|_| anyhow!("login timed out"))??;
                if n == 0 {
                    bail!("server closed the connection during login");
                }
                ns.handle_input(&buf[..n]);
            }
            if let Some(next) = redirect {
                addr = next;
                continue;
            }
            while let Some(bytes) = ns.poll_transmit() {
                stream.write_all(&bytes).await?;
            }
            let (groups, contacts) = list.unwrap_or_default();
            let shared = SharedRef::default();
            let (ns_tx, ns_rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(ns_task(
                stream,
                ns,
                ns_rx,
                events_tx.clone(),
                shared.clone(),
                email.to_string(),
            ));
            lock(&shared).tasks.push(task.abort_handle());
            return Ok(Client {
                email: email.to_string(),
                friendly_name: me.unwrap_or_else(|| email.to_string()),
                groups,
                contacts,
                events: EventQueue::new(events),
                events_tx,
                ns: ns_tx,
                shared,
            });
        }
        bail!("too many XFR NS redirects")
    }

    pub fn email(&self) -> &str {
        &self.email
    }

    pub fn friendly_name(&self) -> &str {
        &self.friendly_name
    }

    /// The contact list received at login.
    pub fn contacts(&self) -> &[Contact] {
        &self.contacts
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    fn ns(&self, cmd: NsCmd) -> anyhow::Result<()> {
        self.ns.send(cmd).map_err(|_| anyhow!("not connected"))
    }

    pub fn set_status(&self, status: Status) -> anyhow::Result<()> {
        self.ns(NsCmd::Status(status))
    }

    pub fn set_friendly_name(&self, name: &str) -> anyhow::Result<()> {
        self.ns(NsCmd::FriendlyName(name.to_string()))
    }

    /// Puts `email` on our forward and allow lists.
    pub fn add_contact(&self, email: &str) -> anyhow::Result<()> {
        self.ns(NsCmd::Add(email.to_string()))
    }

    pub fn remove_contact(&self, email: &str) -> anyhow::Result<()> {
        self.ns(NsCmd::Remove(email.to_string()))
    }

    /// Makes `data` our display picture: builds its MSNObject (creator our
    /// email, Type 3), announces it with a `CHG` in the current status and
    /// from then on serves it to any contact that asks on any switchboard
    /// (MSNC display picture flow, see `msn::picture`). At most
    /// [`MAX_PICTURE`](super::picture::MAX_PICTURE) bytes.
    pub fn set_display_picture(&self, data: Vec<u8>) -> anyhow::Result<MsnObject> {
        if data.len() > picture::MAX_PICTURE {
            bail!(
                "a display picture of {} bytes exceeds the {}-byte limit",
                data.len(),
                picture::MAX_PICTURE
            );
        }
        // Location and Friendly are free text; Messenger 6.x writes a temp
        // file name ("TFR2C2.tmp") and the picture's name.
        let object = MsnObject::for_data(
            &self.email,
            MSNOBJ_TYPE_DISPLAY_PICTURE,
            "TFR2C2.tmp",
            "retrobridge-sim",
            &data,
        );
        lock(&self.shared).picture = Some(Picture {
            object: object.clone(),
            data: Arc::new(data),
        });
        self.ns(NsCmd::MsnObject(Some(object.to_xml())))?;
        Ok(object)
    }

    /// No display picture any more: a `CHG` without an MSNObject; INVITEs
    /// for the old one are declined from now on.
    pub fn clear_display_picture(&self) -> anyhow::Result<()> {
        lock(&self.shared).picture = None;
        self.ns(NsCmd::MsnObject(None))
    }

    /// Our display picture's MSNObject, if we have one.
    pub fn msn_object(&self) -> Option<MsnObject> {
        lock(&self.shared)
            .picture
            .as_ref()
            .map(|p| p.object.clone())
    }

    /// How many display picture transfers completed (the receiver acked the
    /// data), over every switchboard.
    pub fn pictures_served(&self) -> usize {
        lock(&self.shared).pictures_served
    }

    /// How long each step of a picture transfer waits for the receiver's
    /// ack before giving up (10 s unless changed; for switchboards opened
    /// after the call).
    pub fn set_picture_ack_timeout(&self, timeout: Duration) {
        lock(&self.shared).ack_timeout = timeout;
    }

    /// How file INVITEs (MSNSLP) are answered from now on (default accept).
    pub fn set_file_policy(&self, policy: FilePolicy) {
        lock(&self.shared).file_policy = policy;
    }

    /// Whether files we send over MSNSLP are preceded, as Messenger 6.x
    /// does, by a direct-connection offer (transreqbody INVITE) that the
    /// receiver turns down (default true).
    pub fn set_send_transreq(&self, on: bool) {
        lock(&self.shared).send_transreq = on;
    }

    /// Every file received so far (also reported as
    /// [`ClientEvent::FileReceived`]).
    pub fn files_received(&self) -> Vec<ReceivedFile> {
        lock(&self.shared).files_received.clone()
    }

    /// Offers `data` to `to` as file `name` over MSNSLP (see `msn::files`),
    /// on a one-to-one switchboard (opened if needed). The outcome comes as
    /// [`ClientEvent::FileSent`], `FileDeclined` or `FileFailed`; each step
    /// waits at most the ack timeout ([`Client::set_picture_ack_timeout`]).
    pub async fn send_file(&self, to: &str, name: &str, data: Vec<u8>) -> anyhow::Result<u64> {
        check_file_size(&data)?;
        self.send_to(to, SbCmd::SendFile(name.to_string(), Arc::new(data)))
            .await
    }

    /// Offers `data` to `to` as file `name` the MSNP9-era way (a
    /// `text/x-msmsgsinvite` invitation, then MSNFTP on a socket we listen
    /// on at 127.0.0.1, see `msn::msnftp`). Same events as
    /// [`send_file`](Self::send_file).
    pub async fn send_file_msnftp(
        &self,
        to: &str,
        name: &str,
        data: Vec<u8>,
    ) -> anyhow::Result<u64> {
        check_file_size(&data)?;
        self.send_to(to, SbCmd::SendFileMsnftp(name.to_string(), Arc::new(data)))
            .await
    }

    /// The MSNObject `contact` last announced in `ILN`/`NLN`, if any.
    pub fn display_picture_of(&self, contact: &str) -> Option<MsnObject> {
        let xml = lock(&self.shared)
            .contact_pictures
            .get(&contact.to_ascii_lowercase())
            .cloned()?;
        MsnObject::parse(&xml).ok()
    }

    /// Fetches `contact`'s announced display picture over a switchboard (the
    /// receiver side of the MSNC flow), checks it against the MSNObject's
    /// SHA1D and returns it. Fails when nothing is announced, on a decline,
    /// or when a step exceeds the ack timeout (the whole fetch is bounded
    /// by five of them).
    pub async fn fetch_display_picture(&self, contact: &str) -> anyhow::Result<Vec<u8>> {
        let (fetch, xml, timeout, rx) = {
            let mut s = lock(&self.shared);
            let xml = s
                .contact_pictures
                .get(&contact.to_ascii_lowercase())
                .cloned()
                .ok_or_else(|| anyhow!("{contact} announced no display picture"))?;
            s.next_fetch += 1;
            let fetch = s.next_fetch;
            let (tx, rx) = oneshot::channel();
            s.fetches.insert(fetch, tx);
            (fetch, xml, s.ack_timeout, rx)
        };
        let sent = self.send_to(contact, SbCmd::FetchPicture(xml, fetch)).await;
        let result = match sent {
            Ok(_) => tokio::time::timeout(timeout * 5 + IO_TIMEOUT, rx).await,
            Err(e) => {
                lock(&self.shared).fetches.remove(&fetch);
                return Err(e);
            }
        };
        lock(&self.shared).fetches.remove(&fetch);
        match result {
            Ok(Ok(Ok(data))) => Ok(data),
            Ok(Ok(Err(why))) => bail!("fetching {contact}'s picture failed: {why}"),
            Ok(Err(_)) => bail!("the switchboard closed during the fetch"),
            Err(_) => bail!("fetching {contact}'s picture timed out"),
        }
    }

    /// The open switchboard whose only other member is `to`.
    fn direct_sb(&self, to: &str) -> Option<mpsc::UnboundedSender<SbCmd>> {
        lock(&self.shared)
            .sbs
            .iter()
            .find(|h| !h.closed && h.members.len() == 1 && h.members[0].eq_ignore_ascii_case(to))
            .map(|h| h.tx.clone())
    }

    /// Sends text to `to`, reusing a one-to-one switchboard or opening one.
    /// Delivery is reported by [`ClientEvent::Delivered`] / `DeliveryFailed`.
    pub async fn send_message(&self, to: &str, text: &str) -> anyhow::Result<u64> {
        self.send_to(to, SbCmd::Text(text.to_string())).await
    }

    /// Like [`send_message`](Self::send_message), with an `X-MMS-IM-Format`.
    pub async fn send_formatted(
        &self,
        to: &str,
        text: &str,
        format: TextFormat,
    ) -> anyhow::Result<u64> {
        self.send_to(to, SbCmd::Formatted(text.to_string(), format))
            .await
    }

    /// A typing notification to `to`.
    pub async fn send_typing(&self, to: &str) -> anyhow::Result<u64> {
        self.send_to(to, SbCmd::Typing).await
    }

    /// A nudge to `to` (datacast id 1, as Messenger 6.x sends it).
    pub async fn send_nudge(&self, to: &str) -> anyhow::Result<u64> {
        self.send_to(to, SbCmd::Nudge).await
    }

    /// Any MIME message to `to` as it is (a wink, ink, an invitation).
    pub async fn send_raw(&self, to: &str, message: msn_proto::Message) -> anyhow::Result<u64> {
        self.send_to(to, SbCmd::Raw(message)).await
    }

    async fn send_to(&self, to: &str, cmd: SbCmd) -> anyhow::Result<u64> {
        if let Some(tx) = self.direct_sb(to) {
            let id = lock(&self.shared)
                .sbs
                .iter()
                .find(|h| h.tx.same_channel(&tx))
                .map_or(0, |h| h.id);
            match tx.send(cmd) {
                Ok(()) => return Ok(id),
                Err(mpsc::error::SendError(cmd)) => return self.open_sb(to, cmd).await,
            }
        }
        self.open_sb(to, cmd).await
    }

    async fn open_sb(&self, to: &str, first: SbCmd) -> anyhow::Result<u64> {
        let (tx, rx) = oneshot::channel();
        self.ns(NsCmd::RequestSb(tx))?;
        let (addr, cookie) = tokio::time::timeout(IO_TIMEOUT, rx)
            .await
            .map_err(|_| anyhow!("no switchboard from the server"))?
            .map_err(|_| anyhow!("the server refused a switchboard"))?;
        let mut session = SbSession::outgoing(&self.email, &cookie);
        session.invite(to);
        Ok(spawn_sb(
            addr,
            session,
            &self.email,
            vec![to.to_string()],
            Some(first),
            &self.shared,
            &self.events_tx,
        ))
    }

    /// Invites `third_party` into the conversation we have with `with`.
    pub fn invite(&self, with: &str, third_party: &str) -> anyhow::Result<u64> {
        let shared = lock(&self.shared);
        let h = shared
            .sbs
            .iter()
            .find(|h| !h.closed && h.members.iter().any(|m| m.eq_ignore_ascii_case(with)))
            .ok_or_else(|| anyhow!("no conversation with {with}"))?;
        h.tx.send(SbCmd::Invite(third_party.to_string()))
            .map_err(|_| anyhow!("conversation closed"))?;
        Ok(h.id)
    }

    /// Sends text to every member of switchboard `session`.
    pub fn send_to_session(&self, session: u64, text: &str) -> anyhow::Result<()> {
        let shared = lock(&self.shared);
        let h = shared
            .sbs
            .iter()
            .find(|h| h.id == session && !h.closed)
            .ok_or_else(|| anyhow!("no open conversation {session}"))?;
        h.tx.send(SbCmd::Text(text.to_string()))
            .map_err(|_| anyhow!("conversation closed"))
    }

    /// Members (other than us) of switchboard `session`.
    pub fn session_members(&self, session: u64) -> Vec<String> {
        lock(&self.shared)
            .sbs
            .iter()
            .find(|h| h.id == session)
            .map(|h| h.members.clone())
            .unwrap_or_default()
    }

    /// The next event, or `None` after `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<ClientEvent> {
        self.events.next(timeout).await
    }

    /// The first event (earlier unmatched ones included) satisfying `want`;
    /// others are kept for later calls.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        want: impl FnMut(&ClientEvent) -> bool,
    ) -> Option<ClientEvent> {
        self.events.wait_for(timeout, want).await.ok()
    }

    /// Waits for a text message from `from`; returns its text.
    pub async fn wait_for_message(&mut self, from: &str, timeout: Duration) -> Option<String> {
        match self
            .wait_for(timeout, |e| matches!(e, ClientEvent::Message { from: f, .. } if f.eq_ignore_ascii_case(from)))
            .await
        {
            Some(ClientEvent::Message { text, .. }) => Some(text),
            _ => None,
        }
    }

    /// Waits until `email` is reported with `status`.
    pub async fn wait_for_presence(
        &mut self,
        email: &str,
        status: Status,
        timeout: Duration,
    ) -> bool {
        self.wait_for(timeout, |e| {
            matches!(e, ClientEvent::Presence { email: m, status: s, .. } if m.eq_ignore_ascii_case(email) && *s == status)
        })
        .await
        .is_some()
    }

    /// Leaves every conversation and signs out.
    pub async fn logout(self) {
        for h in &lock(&self.shared).sbs {
            let _ = h.tx.send(SbCmd::Leave);
        }
        let (tx, rx) = oneshot::channel();
        if self.ns.send(NsCmd::Logout(tx)).is_ok() {
            let _ = tokio::time::timeout(IO_TIMEOUT, rx).await;
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        for t in &lock(&self.shared).tasks {
            t.abort();
        }
    }
}

pub(crate) async fn passport_login(
    nexus_url: &str,
    email: &str,
    password: &str,
    policy: &str,
) -> anyhow::Result<String> {
    let nexus = http::get(nexus_url, &[])
        .await
        .context("contacting the Passport nexus")?;
    let mut url = nexus
        .head
        .header("PassportURLs")
        .and_then(|v| parse_passport_urls(v, "http"))
        .ok_or_else(|| anyhow!("nexus reply without a DALogin URL"))?;
    let auth = authorization_header(email, password, policy);
    for _ in 0..5 {
        let reply = http::get(&url.to_url(), &[("Authorization", &auth)]).await?;
        match classify_response(reply.status, |n| reply.head.header(n), "http") {
            LoginResponse::Ticket(ticket) => return Ok(ticket),
            LoginResponse::Redirect(next) => url = next,
            LoginResponse::BadCredentials => bail!("Passport refused the email or password"),
            LoginResponse::Failed(why) => bail!("Passport login failed: {why}"),
        }
    }
    bail!("too many Passport redirects")
}

fn forward_ns_event(ev: NsEvent, events: &mpsc::UnboundedSender<ClientEvent>) {
    let out = match ev {
        NsEvent::Presence {
            email,
            status,
            friendly_name,
            ..
        } => ClientEvent::Presence {
            email,
            status,
            friendly_name,
        },
        NsEvent::Error { error } => ClientEvent::Error { error },
        NsEvent::ListAdded {
            list: List::Reverse,
            email,
            friendly_name,
            ..
        } => ClientEvent::AddedBy {
            email,
            friendly_name,
        },
        other => ClientEvent::Ns(other),
    };
    let _ = events.send(out);
}

async fn ns_task(
    mut stream: TcpStream,
    mut ns: NsSession,
    mut rx: mpsc::UnboundedReceiver<NsCmd>,
    events: mpsc::UnboundedSender<ClientEvent>,
    shared: SharedRef,
    email: String,
) {
    let mut buf = vec![0u8; 8192];
    let mut pending_sb: HashMap<u32, oneshot::Sender<(String, String)>> = HashMap::new();
    let mut logout_ack: Option<oneshot::Sender<()>> = None;
    let reason = loop {
        while let Some(bytes) = ns.poll_transmit() {
            let _ = stream.write_all(&bytes).await;
        }
        while let Some(ev) = ns.poll_event() {
            match ev {
                NsEvent::Switchboard {
                    trid: Some(t),
                    addr,
                    cookie,
                } => {
                    if let Some(tx) = pending_sb.remove(&t) {
                        let _ = tx.send((addr, cookie));
                    }
                }
                NsEvent::Error { error }
                    if error.trid.is_some_and(|t| pending_sb.contains_key(&t)) =>
                {
                    pending_sb.remove(&error.trid.unwrap_or_default());
                    let _ = events.send(ClientEvent::Error { error });
                }
                NsEvent::Ring {
                    session_id,
                    addr,
                    cookie,
                    caller_email,
                    ..
                } => {
                    let session = SbSession::invited(&email, &cookie, &session_id);
                    spawn_sb(
                        addr,
                        session,
                        &email,
                        vec![caller_email],
                        None,
                        &shared,
                        &events,
                    );
                }
                NsEvent::Presence {
                    ref email,
                    status,
                    ref msn_object,
                    ..
                } => {
                    {
                        let mut s = lock(&shared);
                        let key = email.to_ascii_lowercase();
                        match msn_object {
                            Some(o) => {
                                s.contact_pictures.insert(key, o.clone());
                            }
                            None if status != Status::Offline => {
                                s.contact_pictures.remove(&key);
                            }
                            None => {}
                        }
                    }
                    forward_ns_event(ev, &events)
                }
                other => forward_ns_event(other, &events),
            }
        }
        if ns.is_closed() {
            break "signed out".to_string();
        }
        let deadline = ns
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break "connection closed by the server".to_string(),
                Ok(n) => ns.handle_input(&buf[..n]),
            },
            cmd = rx.recv() => match cmd {
                None => break "client dropped".to_string(),
                Some(NsCmd::Status(s)) => { ns.set_status(s); }
                Some(NsCmd::FriendlyName(n)) => { ns.set_friendly_name(&n); }
                Some(NsCmd::Add(e)) => {
                    ns.add_contact(List::Forward, &e, &e, None);
                    ns.add_contact(List::Allow, &e, &e, None);
                }
                Some(NsCmd::Remove(e)) => { ns.remove_contact(List::Forward, &e, None); }
                Some(NsCmd::RequestSb(tx)) => { pending_sb.insert(ns.request_switchboard(), tx); }
                Some(NsCmd::MsnObject(o)) => {
                    ns.set_msn_object(o.as_deref());
                    let status = ns.status();
                    ns.set_status(if status == Status::Offline { Status::Online } else { status });
                }
                Some(NsCmd::Logout(ack)) => { ns.logout(); logout_ack = Some(ack); }
            },
            _ = tokio::time::sleep_until(deadline) => ns.handle_timeout(std::time::Instant::now()),
        }
    };
    while let Some(bytes) = ns.poll_transmit() {
        let _ = stream.write_all(&bytes).await;
    }
    let _ = stream.shutdown().await;
    let _ = events.send(ClientEvent::Disconnected { reason });
    if let Some(ack) = logout_ack {
        let _ = ack.send(());
    }
}

fn check_file_size(data: &[u8]) -> anyhow::Result<()> {
    if data.len() > super::files::MAX_FILE {
        bail!(
            "a file of {} bytes exceeds the {}-byte limit",
            data.len(),
            super::files::MAX_FILE
        );
    }
    Ok(())
}

/// An MSNFTP offer waiting for the receiver's answer.
struct FtpOffer {
    to: String,
    name: String,
    data: Arc<Vec<u8>>,
    cookie: u32,
    deadline: std::time::Instant,
}

/// The switchboard task's protocol state besides the session itself.
struct SbState {
    pictures: PictureServer,
    files: FileTransfers,
    offers: Vec<FtpOffer>,
    /// Picture fetches started here: fetch number.
    fetches: Vec<u64>,
}

fn apply(session: &mut SbSession, st: &mut SbState, shared: &SharedRef, id: u64, cmd: SbCmd) {
    let now = std::time::Instant::now();
    match cmd {
        SbCmd::Text(t) => {
            session.send_text(&t, Some(&TextFormat::default()));
        }
        SbCmd::Formatted(t, f) => {
            session.send_text(&t, Some(&f));
        }
        SbCmd::Typing => {
            session.send_typing();
        }
        SbCmd::Nudge => {
            session.send_nudge();
        }
        SbCmd::Raw(message) => {
            session.send_message(&message, msn_proto::AckMode::Always);
        }
        SbCmd::Invite(e) => {
            session.invite(&e);
        }
        SbCmd::SendFile(name, data) => {
            let Some(to) = first_member(session, shared, id) else {
                return;
            };
            st.files.send_file(&to, &name, data, now);
        }
        SbCmd::SendFileMsnftp(name, data) => {
            let Some(to) = first_member(session, shared, id) else {
                return;
            };
            let (cookie, timeout) = {
                let mut s = lock(shared);
                (s.random(), s.ack_timeout)
            };
            // Sent with `N` as in the hypothetic.org capture ("MSG 4 N 277").
            session.send_message(&msnftp::invite(cookie, &name, data.len()), AckMode::NakOnly);
            st.offers.push(FtpOffer {
                to,
                name,
                data,
                cookie,
                deadline: now + timeout,
            });
        }
        SbCmd::FetchPicture(xml, fetch) => {
            let Some(to) = first_member(session, shared, id) else {
                return;
            };
            st.fetches.push(fetch);
            st.files.fetch_picture(&to, &xml, fetch, now);
        }
        SbCmd::Leave => session.leave(),
    }
}

/// The peer of a one-to-one switchboard: the member called or joined.
fn first_member(session: &SbSession, shared: &SharedRef, id: u64) -> Option<String> {
    session
        .participants()
        .first()
        .map(|(e, _)| e.clone())
        .or_else(|| {
            lock(shared)
                .sbs
                .iter()
                .find(|h| h.id == id)
                .and_then(|h| h.members.first().cloned())
        })
}

fn spawn_sb(
    addr: String,
    session: SbSession,
    me: &str,
    members: Vec<String>,
    first: Option<SbCmd>,
    shared: &SharedRef,
    events: &mpsc::UnboundedSender<ClientEvent>,
) -> u64 {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut s = lock(shared);
    s.next_sb += 1;
    let id = s.next_sb;
    s.sbs.retain(|h| !h.closed);
    s.sbs.push(SbHandle {
        id,
        members: members.clone(),
        tx,
        closed: false,
    });
    let base_id = s.random();
    let pictures = PictureServer::new(me, base_id, ack_id_source(shared), s.ack_timeout);
    // A second identifier range, far from the picture server's.
    let files = FileTransfers::new(
        me,
        base_id.wrapping_add(0x4000_0000),
        ack_id_source(shared),
        s.ack_timeout,
    );
    let st = SbState {
        pictures,
        files,
        offers: Vec::new(),
        fetches: Vec::new(),
    };
    let task = tokio::spawn(sb_task(
        addr,
        session,
        st,
        id,
        members,
        first,
        rx,
        events.clone(),
        shared.clone(),
    ));
    s.tasks.retain(|t| !t.is_finished());
    s.tasks.push(task.abort_handle());
    id
}

/// Random "ack id" fields (libpurple uses `rand()`).
fn ack_id_source(shared: &SharedRef) -> Box<dyn FnMut() -> u32 + Send> {
    let shared = shared.clone();
    Box::new(move || lock(&shared).random())
}

fn is_content_type(message: &msn_proto::Message, wanted: &str) -> bool {
    message.header("Content-Type").is_some_and(|t| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case(wanted)
    })
}

/// Reports file outcomes; answers picture fetches.
fn report_files(st: &mut SbState, events: &mpsc::UnboundedSender<ClientEvent>, shared: &SharedRef) {
    while let Some(outcome) = st.files.poll_outcome() {
        let ev = match outcome {
            FileOutcome::Received { from, name, data } => {
                lock(shared).files_received.push(ReceivedFile {
                    from: from.clone(),
                    name: name.clone(),
                    data: data.clone(),
                });
                ClientEvent::FileReceived { from, name, data }
            }
            FileOutcome::Sent { to, name, bytes } => ClientEvent::FileSent { to, name, bytes },
            FileOutcome::Declined { to, name } => ClientEvent::FileDeclined { to, name },
            FileOutcome::Failed { to, name, why } => ClientEvent::FileFailed { to, name, why },
            FileOutcome::Fetched { fetch, result } => {
                st.fetches.retain(|f| *f != fetch);
                if let Some(tx) = lock(shared).fetches.remove(&fetch) {
                    let _ = tx.send(result);
                }
                continue;
            }
        };
        let _ = events.send(ev);
    }
}

/// An invitation (`text/x-msmsgsinvite`) from `from`: the answer to one of
/// our MSNFTP offers.
async fn on_invitation(
    session: &mut SbSession,
    st: &mut SbState,
    from: &str,
    body: &[u8],
    events: &mpsc::UnboundedSender<ClientEvent>,
    shared: &SharedRef,
) {
    let Some(inv) = Invitation::parse(body) else {
        return;
    };
    let Some(i) = st
        .offers
        .iter()
        .position(|o| o.cookie == inv.cookie && o.to.eq_ignore_ascii_case(from))
    else {
        return;
    };
    let offer = st.offers.remove(i);
    let ev = if inv.command.eq_ignore_ascii_case("ACCEPT") {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => {
                let _ = events.send(ClientEvent::FileFailed {
                    to: offer.to,
                    name: offer.name,
                    why: format!("cannot listen: {e}"),
                });
                return;
            }
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let (auth, timeout) = {
            let mut s = lock(shared);
            (s.random(), s.ack_timeout)
        };
        session.send_message(
            &msnftp::accept(offer.cookie, "127.0.0.1", port, auth),
            AckMode::NakOnly,
        );
        let sender = MsnftpSender::new(&offer.to, auth, offer.data.clone());
        let task = tokio::spawn(serve_msnftp(
            listener,
            sender,
            offer,
            timeout,
            events.clone(),
        ));
        let mut s = lock(shared);
        s.tasks.retain(|t| !t.is_finished());
        s.tasks.push(task.abort_handle());
        return;
    } else if inv.command.eq_ignore_ascii_case("CANCEL")
        && inv
            .field("Cancel-Code")
            .is_some_and(|c| c.eq_ignore_ascii_case("REJECT"))
    {
        ClientEvent::FileDeclined {
            to: offer.to,
            name: offer.name,
        }
    } else {
        ClientEvent::FileFailed {
            to: offer.to,
            name: offer.name,
            why: format!(
                "{} {}",
                inv.command,
                inv.field("Cancel-Code").unwrap_or_default()
            ),
        }
    };
    let _ = events.send(ev);
}

/// Serves one MSNFTP connection on `listener`, then closes it. The accept
/// and every read wait at most `timeout`.
async fn serve_msnftp(
    listener: tokio::net::TcpListener,
    mut sender: MsnftpSender,
    offer: FtpOffer,
    timeout: Duration,
    events: mpsc::UnboundedSender<ClientEvent>,
) {
    let result = async {
        let (mut stream, _) = tokio::time::timeout(timeout, listener.accept())
            .await
            .map_err(|_| "nobody connected".to_string())?
            .map_err(|e| e.to_string())?;
        drop(listener);
        let mut buf = vec![0u8; 4096];
        loop {
            while let Some(b) = sender.poll_transmit() {
                stream.write_all(&b).await.map_err(|e| e.to_string())?;
            }
            if let Some(r) = sender.result() {
                let _ = stream.shutdown().await;
                return match r {
                    FtpResult::Sent => Ok(()),
                    FtpResult::Failed(why) => Err(why.clone()),
                };
            }
            let n = tokio::time::timeout(timeout, stream.read(&mut buf))
                .await
                .map_err(|_| "the receiver went silent".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the receiver closed the connection".to_string());
            }
            sender.handle_input(&buf[..n]);
        }
    }
    .await;
    let ev = match result {
        Ok(()) => ClientEvent::FileSent {
            to: offer.to,
            name: offer.name,
            bytes: offer.data.len(),
        },
        Err(why) => ClientEvent::FileFailed {
            to: offer.to,
            name: offer.name,
            why,
        },
    };
    let _ = events.send(ev);
}

#[allow(clippy::too_many_arguments)]
async fn sb_task(
    addr: String,
    mut session: SbSession,
    mut st: SbState,
    id: u64,
    _members: Vec<String>,
    first: Option<SbCmd>,
    mut rx: mpsc::UnboundedReceiver<SbCmd>,
    events: mpsc::UnboundedSender<ClientEvent>,
    shared: SharedRef,
) {
    let members = |f: &mut dyn FnMut(&mut Vec<String>)| {
        if let Some(h) = lock(&shared).sbs.iter_mut().find(|h| h.id == id) {
            f(&mut h.members);
        }
    };
    if let Some(first) = first {
        apply(&mut session, &mut st, &shared, id, first);
    }
    let mut stream = match tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(&addr)).await {
        Ok(Ok(s)) => s,
        _ => {
            let _ = events.send(ClientEvent::Disconnected {
                reason: format!("switchboard {addr} unreachable"),
            });
            if let Some(h) = lock(&shared).sbs.iter_mut().find(|h| h.id == id) {
                h.closed = true;
            }
            fail_pending(&mut st, &events, &shared, "switchboard unreachable");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 8192];
    // TrIDs of our P2P `MSG`s: their ACK/NAK are not the caller's business.
    let mut p2p_trids: HashSet<u32> = HashSet::new();
    loop {
        {
            let s = lock(&shared);
            st.files.set_policy(s.file_policy);
            st.files.set_send_transreq(s.send_transreq);
        }
        while let Some(p) = st.pictures.poll_transmit() {
            p2p_trids.insert(session.send_message(&p.to_mime(), AckMode::Data));
        }
        while let Some(p) = st.files.poll_transmit() {
            p2p_trids.insert(session.send_message(&p.to_mime(), AckMode::Data));
        }
        while let Some(outcome) = st.pictures.poll_outcome() {
            let ev = match outcome {
                Outcome::Served { to, bytes } => {
                    lock(&shared).pictures_served += 1;
                    ClientEvent::PictureServed { to, bytes }
                }
                Outcome::Abandoned { to } => ClientEvent::PictureAbandoned { to },
            };
            let _ = events.send(ev);
        }
        report_files(&mut st, &events, &shared);
        while let Some(bytes) = session.poll_transmit() {
            let _ = stream.write_all(&bytes).await;
        }
        while let Some(ev) = session.poll_event() {
            let out = match ev {
                SbEvent::Message { from, message, .. }
                    if is_content_type(&message, msn_proto::p2p::CONTENT_TYPE_P2P) =>
                {
                    let picture = lock(&shared).picture.clone();
                    let now = std::time::Instant::now();
                    for payload in st.files.handle(&from, &message.to_bytes(), now) {
                        st.pictures.handle(&from, &payload, picture.as_ref(), now);
                    }
                    continue;
                }
                SbEvent::Message { from, message, .. }
                    if is_content_type(&message, "text/x-msmsgsinvite") =>
                {
                    on_invitation(
                        &mut session,
                        &mut st,
                        &from,
                        &message.body,
                        &events,
                        &shared,
                    )
                    .await;
                    continue;
                }
                SbEvent::Delivered { trid } | SbEvent::DeliveryFailed { trid, .. }
                    if p2p_trids.remove(&trid) =>
                {
                    continue
                }
                SbEvent::Joined { email, .. } | SbEvent::Participant { email, .. } => {
                    members(&mut |m| {
                        if !m.iter().any(|x| x.eq_ignore_ascii_case(&email)) {
                            m.push(email.clone());
                        }
                    });
                    ClientEvent::Joined { session: id, email }
                }
                SbEvent::Left { email, .. } => {
                    members(&mut |m| m.retain(|x| !x.eq_ignore_ascii_case(&email)));
                    ClientEvent::Left { session: id, email }
                }
                SbEvent::Message { from, message, .. } => match message.kind() {
                    MessageKind::Text { text, format } => ClientEvent::Message {
                        session: id,
                        from,
                        text,
                        format,
                    },
                    MessageKind::Typing { .. } => ClientEvent::Typing { session: id, from },
                    MessageKind::Datacast { id: what } => ClientEvent::Datacast {
                        session: id,
                        from,
                        id: what,
                    },
                    MessageKind::Other { .. } => continue,
                },
                SbEvent::Delivered { trid } => ClientEvent::Delivered { session: id, trid },
                SbEvent::DeliveryFailed { trid, error } => ClientEvent::DeliveryFailed {
                    session: id,
                    trid,
                    error,
                },
                SbEvent::Error { error } => {
                    // A failed CAL and nobody here: this switchboard is useless,
                    // leave so the next message opens a fresh one.
                    if session.participants().is_empty() {
                        session.leave();
                        if let Some(h) = lock(&shared).sbs.iter_mut().find(|h| h.id == id) {
                            h.closed = true;
                        }
                    }
                    ClientEvent::Error { error }
                }
                _ => continue,
            };
            let _ = events.send(out);
        }
        // Answers written by the events above (an MSNFTP ACCEPT).
        while let Some(bytes) = session.poll_transmit() {
            let _ = stream.write_all(&bytes).await;
        }
        if session.is_closed() {
            break;
        }
        // P2P packets queued by the events above go out before waiting.
        if st.pictures.has_output() || st.files.has_output() {
            continue;
        }
        let now = std::time::Instant::now();
        // MSNFTP offers nobody answered.
        let (late, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut st.offers)
            .into_iter()
            .partition(|o| o.deadline <= now);
        st.offers = keep;
        for o in late {
            session.send_message(&msnftp::cancel(o.cookie, "TIMEOUT"), AckMode::NakOnly);
            let _ = events.send(ClientEvent::FileFailed {
                to: o.to,
                name: o.name,
                why: "no answer to the invitation".into(),
            });
        }
        let deadline = [
            st.pictures.next_deadline(),
            st.files.next_deadline(),
            st.offers.iter().map(|o| o.deadline).min(),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(tokio::time::Instant::from_std)
        .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => session.handle_input(&buf[..n]),
            },
            cmd = rx.recv() => match cmd {
                Some(cmd) => apply(&mut session, &mut st, &shared, id, cmd),
                None => session.leave(),
            },
            _ = tokio::time::sleep_until(deadline) => {
                let now = std::time::Instant::now();
                st.pictures.handle_timeout(now);
                st.files.handle_timeout(now);
            }
        }
    }
    while let Some(bytes) = session.poll_transmit() {
        let _ = stream.write_all(&bytes).await;
    }
    let _ = stream.shutdown().await;
    if let Some(h) = lock(&shared).sbs.iter_mut().find(|h| h.id == id) {
        h.closed = true;
    }
    fail_pending(&mut st, &events, &shared, "the switchboard closed");
}

/// Ends what was still running when the switchboard went away.
fn fail_pending(
    st: &mut SbState,
    events: &mpsc::UnboundedSender<ClientEvent>,
    shared: &SharedRef,
    why: &str,
) {
    for o in std::mem::take(&mut st.offers) {
        let _ = events.send(ClientEvent::FileFailed {
            to: o.to,
            name: o.name,
            why: why.to_string(),
        });
    }
    st.files
        .handle_timeout(std::time::Instant::now() + Duration::from_secs(365 * 86400));
    report_files(st, events, shared);
    let mut s = lock(shared);
    for f in std::mem::take(&mut st.fetches) {
        if let Some(tx) = s.fetches.remove(&f) {
            let _ = tx.send(Err(why.to_string()));
        }
    }
}

/// The arguments of `legacy-sim msn-client`.
#[derive(Parser, Debug)]
pub struct ClientArgs {
    /// Dispatch server, host:port.
    #[arg(long)]
    server: String,
    /// Passport nexus URL, e.g. http://127.0.0.1:1880/rdr/pprdr.asp
    #[arg(long)]
    nexus: String,
    #[arg(long)]
    email: String,
    #[arg(long)]
    password: String,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Send one message and wait for its acknowledgement.
    Send { to: String, text: String },
    /// Print events for this many seconds.
    Listen { seconds: u64 },
    /// Set a status (NLN, BSY, IDL, BRB, AWY, PHN, LUN, HDN), then print events until Ctrl-C.
    Status { status: String },
}

/// `legacy-sim msn-client --server ADDR --nexus URL --email E --password P <send EMAIL TEXT | listen SECONDS | status AWY>`
pub async fn client_cli(args: Vec<String>) -> anyhow::Result<()> {
    run_client(ClientArgs::try_parse_from(
        std::iter::once("msn-client".to_owned()).chain(args),
    )?)
    .await
}

/// Runs `legacy-sim msn-client` with parsed arguments.
pub async fn run_client(cli: ClientArgs) -> anyhow::Result<()> {
    let mut client = Client::login(&cli.server, &cli.nexus, &cli.email, &cli.password).await?;
    println!(
        "signed in as {} ({})",
        client.email(),
        client.friendly_name()
    );
    match cli.action {
        Action::Send { to, text } => {
            client.send_message(&to, &text).await?;
            let done = client
                .wait_for(Duration::from_secs(15), |e| {
                    matches!(
                        e,
                        ClientEvent::Delivered { .. }
                            | ClientEvent::DeliveryFailed { .. }
                            | ClientEvent::Error { .. }
                    )
                })
                .await;
            match done {
                Some(ClientEvent::Delivered { .. }) => println!("delivered"),
                Some(other) => bail!("not delivered: {other:?}"),
                None => bail!("no acknowledgement within 15 s"),
            }
        }
        Action::Listen { seconds } => {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
            while let Some(left) = deadline.checked_duration_since(tokio::time::Instant::now()) {
                if let Some(ev) = client.next_event(left).await {
                    println!("{ev:?}");
                }
            }
        }
        Action::Status { status } => {
            let status = Status::from_code(&status.to_ascii_uppercase())
                .ok_or_else(|| anyhow!("unknown status {status:?}"))?;
            client.set_status(status)?;
            loop {
                tokio::select! {
                    ev = client.next_event(Duration::from_secs(3600)) => if let Some(ev) = ev { println!("{ev:?}") },
                    _ = tokio::signal::ctrl_c() => break,
                }
            }
        }
    }
    client.logout().await;
    Ok(())
}
