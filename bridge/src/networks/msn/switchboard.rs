//! One switchboard (one MSN conversation) per task, driving `SbSession` over TCP.
//!
//! The login task (see `login.rs`) owns the table of switchboards and decides where
//! messages go; a switchboard task only talks to its socket, answers each text with
//! its delivery result, and reports who joins, leaves and says what.

use std::sync::Arc;
use std::time::Duration;

use msn_proto::{AckMode, Message, MsnObject, SbEvent, SbSession, TextFormat};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::transfers::{Outcome, Transfers};
use crate::core::{Avatar, Delivery, EventSink, FileData, FormattedText, Reply, SendError};
use crate::networks::driver;
use crate::networks::read_buf;

const IO_TIMEOUT: Duration = Duration::from_secs(15);
/// P2P messages written per turn of the loop: a file's chunks take turns with the
/// socket's reads and the login's commands.
const CHUNKS_PER_TURN: usize = 64;

/// An `A` message without `ACK`/`NAK` after this counts as not delivered.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// What the login task asks of a switchboard.
#[derive(Debug)]
pub enum SbCmd {
    /// Something the contact sees: answered once it was delivered (or not).
    Send {
        what: Outgoing,
        reply: Reply<Delivery>,
    },
    Typing,
    Leave,
    /// Fetch `who`'s display picture (the MSNObject `descriptor`, whose SHA1D is `hash`).
    FetchPicture {
        who: String,
        hash: String,
        descriptor: String,
    },
    /// The user's own picture, served to contacts who ask for it (boxed: commands
    /// stay small).
    SetPicture(Box<Option<(MsnObject, Arc<[u8]>)>>),
}

/// What a [`SbCmd::Send`] carries.
#[derive(Debug)]
pub enum Outgoing {
    Text {
        text: String,
        format: TextFormat,
    },
    Nudge,
    /// A file, offered as a transfer, and the line with its link that goes instead if
    /// the contact does not take it (boxed: commands stay small).
    File(Box<(FileData, FormattedText)>),
}

/// What a switchboard reports to the login task, tagged with its local id.
#[derive(Debug)]
pub enum SbReport {
    /// Someone is in the conversation (`IRO` or `JOI`).
    Joined {
        email: String,
        name: String,
    },
    Left {
        email: String,
    },
    /// The server's session id (`CAL ... RINGING`).
    Session {
        id: String,
    },
    Message {
        from: String,
        message: Message,
    },
    /// A [`SbCmd::FetchPicture`] is over.
    Picture {
        who: String,
        hash: String,
        result: Result<Avatar, String>,
    },
    /// A contact's file arrived whole.
    File {
        from: String,
        file: FileData,
    },
    /// A line for the user from the contact (a file offer the bridge declined).
    Notice {
        from: String,
        text: String,
    },
    /// The task ended; commands it had not handled yet are handed back.
    Closed {
        unsent: Vec<SbCmd>,
    },
}

/// The notification server's answer to `XFR SB`: (address, cookie), or why not.
pub type Grant = Result<(String, String), String>;

/// How the switchboard is entered.
pub enum SbStart {
    /// We asked for it (`XFR SB`): wait for the address and cookie, then `CAL` `invite`.
    Outgoing {
        grant: oneshot::Receiver<Grant>,
        invite: String,
    },
    /// `RNG`: answer the invitation.
    Invited {
        addr: String,
        cookie: String,
        session_id: String,
    },
}

struct PendingText {
    trids: Vec<u32>,
    parts: usize,
    sent_at: Instant,
    reply: Reply<Delivery>,
    /// Said with the delivery (a file that went as a link).
    warnings: Vec<String>,
}

pub struct SbTask {
    pub id: u64,
    pub me: String,
    pub idle: Duration,
    pub commands: mpsc::UnboundedReceiver<SbCmd>,
    /// Boxed: the channel allocates room for 32 items up front, per login.
    pub reports: mpsc::UnboundedSender<(u64, Box<SbReport>)>,
    /// The login's sink, for flow control only: reading stops while it is backlogged.
    pub flow: EventSink,
    /// The largest file taken or sent.
    pub max_file: u64,
    /// The user's picture, served to contacts who ask.
    pub picture: Option<(MsnObject, Arc<[u8]>)>,
}

impl SbTask {
    fn report(&self, report: SbReport) {
        let _ = self.reports.send((self.id, Box::new(report)));
    }

    pub async fn run(mut self, start: SbStart) {
        let (addr, mut session, invitee) = match start {
            SbStart::Outgoing { grant, invite } => {
                match tokio::time::timeout(IO_TIMEOUT, grant).await {
                    Ok(Ok(Ok((addr, cookie)))) => {
                        let mut s = SbSession::outgoing(&self.me, &cookie);
                        s.invite(&invite);
                        (addr, s, Some(invite))
                    }
                    Ok(Ok(Err(why))) => return self.fail_all(&why),
                    _ => return self.fail_all("the server gave no switchboard"),
                }
            }
            SbStart::Invited {
                addr,
                cookie,
                session_id,
            } => {
                self.report(SbReport::Session {
                    id: session_id.clone(),
                });
                (
                    addr,
                    SbSession::invited(&self.me, &cookie, &session_id),
                    None,
                )
            }
        };
        let stream = match tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(&addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return self.fail_all(&format!("cannot reach the switchboard: {e}")),
            Err(_) => return self.fail_all("connecting to the switchboard timed out"),
        };
        let _ = stream.set_nodelay(true);
        let sb_ip = stream.peer_addr().ok().map(|a| a.ip());
        let mut transfers = Transfers::new(&self.me, sb_ip, self.max_file);
        transfers.set_picture(self.picture.take());
        self.drive(stream, &mut session, invitee, &mut transfers)
            .await;
    }

    /// Ends before connecting: every queued text fails with `why`.
    fn fail_all(mut self, why: &str) {
        tracing::info!(sb = self.id, "msn switchboard not opened: {why}");
        self.commands.close();
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                SbCmd::Send { reply, .. } => {
                    let _ = reply.send(Err(SendError::Rejected(why.to_string())));
                }
                SbCmd::FetchPicture { who, hash, .. } => {
                    let result = Err(why.to_string());
                    self.report(SbReport::Picture { who, hash, result });
                }
                SbCmd::Typing | SbCmd::Leave | SbCmd::SetPicture(_) => {}
            }
        }
        self.report(SbReport::Closed { unsent: Vec::new() });
    }

    /// What a transfer came to: reported, or (a file that did not go) its link sent.
    fn on_outcome(&self, outcome: Outcome, s: &mut SbSession, pending: &mut Vec<PendingText>) {
        match outcome {
            Outcome::Picture { who, hash, result } => {
                self.report(SbReport::Picture { who, hash, result })
            }
            Outcome::File { from, file } => self.report(SbReport::File { from, file }),
            Outcome::Notice { from, text } => self.report(SbReport::Notice { from, text }),
            Outcome::Fallback {
                fallback,
                warning,
                reply,
            } => {
                if s.is_closed() {
                    let _ = reply.send(Err(SendError::Rejected(
                        "the conversation closed before the file went".into(),
                    )));
                    return;
                }
                let format = super::format::from_html(fallback.html.as_deref());
                let trids = s.send_text(&fallback.plain, Some(&format));
                pending.push(PendingText {
                    parts: trids.len(),
                    trids,
                    sent_at: Instant::now(),
                    reply,
                    warnings: vec![warning],
                });
            }
        }
    }

    async fn drive(
        &mut self,
        mut stream: TcpStream,
        s: &mut SbSession,
        invitee: Option<String>,
        transfers: &mut Transfers,
    ) {
        let mut pending: Vec<PendingText> = Vec::new();
        let mut last_activity = Instant::now();
        let mut commands_open = true;
        // Chunks of a file still to write after this turn's share.
        let mut more_chunks;
        loop {
            while let Some(event) = s.poll_event() {
                match event {
                    SbEvent::Participant {
                        email,
                        friendly_name,
                    }
                    | SbEvent::Joined {
                        email,
                        friendly_name,
                    } => self.report(SbReport::Joined {
                        email: email.to_lowercase(),
                        name: friendly_name,
                    }),
                    SbEvent::Ringing { session_id, .. } => {
                        self.report(SbReport::Session { id: session_id })
                    }
                    SbEvent::Left { email, .. } => {
                        self.report(SbReport::Left {
                            email: email.to_lowercase(),
                        });
                        if s.participants().is_empty() {
                            s.leave(); // the conversation is over
                        }
                    }
                    SbEvent::Message { from, message, .. } => {
                        last_activity = Instant::now();
                        if !transfers.handle(&from, &message) {
                            self.report(SbReport::Message {
                                from: from.to_lowercase(),
                                message,
                            });
                        }
                    }
                    SbEvent::Delivered { trid } => {
                        for p in &mut pending {
                            p.trids.retain(|t| *t != trid);
                        }
                        let (done, rest): (Vec<_>, Vec<_>) =
                            pending.drain(..).partition(|p| p.trids.is_empty());
                        pending = rest;
                        for p in done {
                            let mut delivery = Delivery {
                                warnings: p.warnings,
                                ..Delivery::default()
                            };
                            if p.parts > 1 {
                                delivery.warnings.push(format!(
                                    "The message was too long for MSN and was sent in {} parts.",
                                    p.parts
                                ));
                            }
                            let _ = p.reply.send(Ok(delivery));
                        }
                    }
                    SbEvent::DeliveryFailed { trid, error } => {
                        let who = invitee
                            .clone()
                            .or_else(|| s.participants().first().map(|p| p.0.clone()))
                            .unwrap_or_else(|| "the contact".into());
                        let why = match error {
                            Some(e) if e.code == 217 => format!("{who} is offline"),
                            Some(e) => format!("{who}: {}", e.description()),
                            None => format!("{who} did not receive it"),
                        };
                        if let Some(i) = pending.iter().position(|p| p.trids.contains(&trid)) {
                            let p = pending.remove(i);
                            let _ = p.reply.send(Err(SendError::Rejected(why)));
                        }
                    }
                    SbEvent::Error { error } => {
                        tracing::info!(sb = self.id, "msn switchboard error: {error}");
                        if s.is_ready() && s.participants().is_empty() {
                            s.leave(); // the call failed: nobody will come
                        }
                    }
                    SbEvent::ProtocolError { error } => {
                        tracing::warn!(sb = self.id, "msn switchboard: bad data dropped: {error}")
                    }
                    SbEvent::Ready | SbEvent::Closed | SbEvent::Other(_) => {}
                }
            }
            while let Some(outcome) = transfers.poll_outcome() {
                self.on_outcome(outcome, s, &mut pending);
            }
            more_chunks = false;
            for sent in 0.. {
                if !s.is_ready() || s.participants().is_empty() {
                    break; // P2P goes to a contact who is there
                }
                if sent == CHUNKS_PER_TURN {
                    more_chunks = true;
                    break;
                }
                let Some(m) = transfers.poll_transmit() else {
                    break;
                };
                s.send_message(&m, AckMode::Data);
            }
            while let Some(bytes) = s.poll_transmit() {
                if let Err(e) = stream.write_all(&bytes).await {
                    tracing::info!(sb = self.id, "msn switchboard write failed: {e}");
                    s.leave();
                    let _ = s.poll_transmit();
                }
            }
            if s.is_closed() {
                break;
            }
            if transfers.busy() {
                last_activity = Instant::now(); // no idle leave mid-transfer
            }
            let ack_due = pending
                .iter()
                .map(|p| p.sent_at + ACK_TIMEOUT)
                .min()
                .unwrap_or_else(|| Instant::now() + ACK_TIMEOUT);
            let deadline = transfers
                .next_deadline()
                .unwrap_or(last_activity + self.idle);
            tokio::select! {
                ready = driver::readable_when_ready(&self.flow, stream.readable()) => match ready.map(|ready| ready.and_then(|()| {
                    read_buf::read_into(|buf| stream.try_read(buf), |bytes| s.handle_input(bytes))
                })) {
                    None | Some(Ok(None)) => {}
                    Some(Ok(Some(0)) | Err(_)) => break,
                    Some(Ok(Some(_))) => {}
                },
                cmd = self.commands.recv(), if commands_open => match cmd {
                    None => { commands_open = false; }
                    Some(SbCmd::Leave) => s.leave(),
                    Some(SbCmd::Typing) => { s.send_typing(); }
                    Some(SbCmd::FetchPicture { who, hash, descriptor }) => {
                        last_activity = Instant::now();
                        // Bounded by the link: the login asks once per contact and picture.
                        transfers.fetch_picture(&who, &hash, &descriptor);
                    }
                    Some(SbCmd::SetPicture(picture)) => transfers.set_picture(*picture),
                    Some(SbCmd::Send { what: Outgoing::File(file), reply }) => {
                        let (file, fallback) = *file;
                        last_activity = Instant::now();
                        match invitee.clone().or_else(|| s.participants().first().map(|p| p.0.clone())) {
                            Some(who) => transfers.send_file(&who, file, fallback, reply),
                            None => {
                                let _ = reply.send(Err(SendError::Rejected("nobody is in the conversation".into())));
                            }
                        }
                    }
                    Some(SbCmd::Send { what: Outgoing::Text { text, format }, reply }) => {
                        last_activity = Instant::now();
                        let trids = s.send_text(&text, Some(&format));
                        pending.push(PendingText { parts: trids.len(), trids, sent_at: Instant::now(), reply, warnings: Vec::new() });
                    }
                    // Sent as Messenger sends it (`N`: only a failure is answered), so
                    // it counts as delivered once handed to the switchboard (held until
                    // the contact joins, like text). A nudge is not worth a retry.
                    Some(SbCmd::Send { what: Outgoing::Nudge, reply }) => {
                        last_activity = Instant::now();
                        s.send_nudge();
                        let _ = reply.send(Ok(Delivery::default()));
                    }
                },
                Some((cookie, result)) = transfers.ftp_results.recv() => {
                    last_activity = Instant::now();
                    transfers.ftp_done(cookie, result);
                }
                () = std::future::ready(()), if more_chunks => {}
                _ = tokio::time::sleep_until(deadline) => {
                    if transfers.busy() {
                        transfers.expire(Instant::now());
                        continue;
                    }
                    tracing::debug!(sb = self.id, "msn switchboard idle: leaving");
                    s.leave();
                }
                _ = tokio::time::sleep_until(ack_due) => {
                    let now = Instant::now();
                    let (late, rest): (Vec<_>, Vec<_>) =
                        pending.drain(..).partition(|p| now >= p.sent_at + ACK_TIMEOUT);
                    pending = rest;
                    for p in late {
                        let _ = p.reply.send(Err(SendError::Rejected("no delivery confirmation from MSN".into())));
                    }
                }
            }
        }
        while let Some(bytes) = s.poll_transmit() {
            let _ = stream.write_all(&bytes).await;
        }
        let _ = stream.shutdown().await;
        transfers.close("the conversation closed during the transfer");
        while let Some(outcome) = transfers.poll_outcome() {
            self.on_outcome(outcome, s, &mut pending);
        }
        for p in pending {
            let _ = p.reply.send(Err(SendError::Rejected(
                "the conversation closed before delivery was confirmed".into(),
            )));
        }
        // Commands queued behind the close go back to the login task to be re-routed.
        self.commands.close();
        let mut unsent = Vec::new();
        while let Ok(cmd) = self.commands.try_recv() {
            unsent.push(cmd);
        }
        self.report(SbReport::Closed { unsent });
    }
}
