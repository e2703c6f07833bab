//! Everything a switchboard carries besides text and typing: P2P (MSNC) transfers with
//! each contact on it — their display pictures fetched, ours served, files both ways —
//! over one [`P2pLink`] per contact, and the older MSNFTP file invitations
//! (`text/x-msmsgsinvite`), whose data comes over a TCP connection of its own.
//!
//! * A contact's file is accepted when it is within `files.max_bytes` (a larger offer is
//!   declined, and the user told), and reported whole ([`Outcome::File`]).
//! * A user's file is offered as a transfer; if the contact declines, does not answer or
//!   the transfer fails, the user's line with its link goes instead
//!   ([`Outcome::Fallback`]), and the user is told why.
//! * Every transfer has a deadline that moves while the contact is heard from; one that
//!   passes ends the transfer.
//! * MSNFTP: the bridge asks the sender for its address and connects to it. A peer names
//!   that address, so it is used only when it is a public one, or of the same kind as the
//!   switchboard's own address (a loopback or private server: a test or LAN set-up):
//!   a contact cannot make the bridge open connections inside its operator's network.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use msn_proto::msnftp::{self, Invitation, InvitationCommand, MsnftpOutcome, MsnftpReceive};
use msn_proto::p2p::CONTENT_TYPE_P2P;
use msn_proto::{LinkEvent, LinkLimits, Message, MsnObject, P2pLink, P2pMessageRef, TransferId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::core::{size_text, Avatar, Delivery, FileData, FormattedText, Reply};

/// A transfer whose contact has not been heard from for this long is given up on.
const SILENCE: Duration = Duration::from_secs(60);
/// MSNFTP invitations in progress on one switchboard at most.
const MAX_INVITATIONS: usize = 4;

/// What a transfer came to, for the switchboard to report or act on.
#[derive(Debug)]
pub enum Outcome {
    Picture {
        who: String,
        hash: String,
        result: Result<Avatar, String>,
    },
    /// A contact's file, whole.
    File { from: String, file: FileData },
    /// A user's file did not reach `who`: send `fallback` (the line with its link)
    /// instead and answer `reply` with that send, with `warning` added.
    Fallback {
        fallback: FormattedText,
        warning: String,
        reply: Reply<Delivery>,
    },
    /// A line for the user, from the contact (an offer the bridge declined).
    Notice { from: String, text: String },
}

enum Job {
    Fetch {
        hash: String,
    },
    Send {
        name: String,
        fallback: FormattedText,
        reply: Reply<Delivery>,
    },
    Receive,
}

struct Peer {
    link: P2pLink,
    jobs: HashMap<TransferId, (Job, Instant)>,
}

/// An MSNFTP invitation the bridge accepted, waiting for the sender's address or its
/// data.
struct Invited {
    from: String,
    name: String,
    size: u64,
    deadline: Instant,
    connected: bool,
}

/// The transfers of one switchboard.
pub struct Transfers {
    me: String,
    /// The switchboard's address, for the MSNFTP address rule.
    sb_ip: Option<IpAddr>,
    max_file: u64,
    picture: Option<(MsnObject, Arc<[u8]>)>,
    peers: HashMap<String, Peer>,
    invitations: HashMap<u32, Invited>,
    outcomes: Vec<Outcome>,
    /// Messages to send that are not P2P (MSNFTP answers).
    out: Vec<Message>,
    /// Which peer `poll_transmit` asks first, so transfers with several contacts
    /// take turns.
    turn: usize,
    ftp_tx: mpsc::UnboundedSender<(u32, Result<Vec<u8>, String>)>,
    pub ftp_results: mpsc::UnboundedReceiver<(u32, Result<Vec<u8>, String>)>,
}

impl Transfers {
    pub fn new(me: &str, sb_ip: Option<IpAddr>, max_file: u64) -> Transfers {
        let (ftp_tx, ftp_results) = mpsc::unbounded_channel();
        Transfers {
            me: me.to_owned(),
            sb_ip,
            max_file,
            picture: None,
            peers: HashMap::new(),
            invitations: HashMap::new(),
            outcomes: Vec::new(),
            out: Vec::new(),
            turn: 0,
            ftp_tx,
            ftp_results,
        }
    }

    fn peer(&mut self, who: &str) -> &mut Peer {
        let who = who.to_lowercase();
        let (me, max_file, picture) = (&self.me, self.max_file, &self.picture);
        self.peers.entry(who.clone()).or_insert_with(|| {
            let limits = LinkLimits {
                max_file,
                max_picture: Avatar::MAX_BYTES as u64,
                ..LinkLimits::default()
            };
            let seed = u64::from(getrandom::u32().unwrap_or(0x5EED)) << 32
                | u64::from(getrandom::u32().unwrap_or(0x1234));
            let mut link = P2pLink::new(me, &who, seed, limits);
            link.set_picture(picture.clone());
            Peer {
                link,
                jobs: HashMap::new(),
            }
        })
    }

    /// The user's own picture, served to contacts who ask for it.
    pub fn set_picture(&mut self, picture: Option<(MsnObject, Arc<[u8]>)>) {
        for peer in self.peers.values_mut() {
            peer.link.set_picture(picture.clone());
        }
        self.picture = picture;
    }

    /// Fetches `who`'s picture (the MSNObject `descriptor`, whose SHA1D is `hash`).
    pub fn fetch_picture(&mut self, who: &str, hash: &str, descriptor: &str) {
        let object = match MsnObject::parse(descriptor) {
            Ok(o) if o.creator.eq_ignore_ascii_case(who) => o,
            Ok(o) => {
                return self.picture_failed(
                    who,
                    hash,
                    format!("the picture announced is {}'s", o.creator),
                )
            }
            Err(e) => return self.picture_failed(who, hash, e.to_string()),
        };
        let peer = self.peer(who);
        let id = peer.link.fetch_picture(&object);
        let job = Job::Fetch {
            hash: hash.to_owned(),
        };
        peer.jobs.insert(id, (job, Instant::now() + SILENCE));
        self.collect();
    }

    fn picture_failed(&mut self, who: &str, hash: &str, why: String) {
        self.outcomes.push(Outcome::Picture {
            who: who.to_owned(),
            hash: hash.to_owned(),
            result: Err(why),
        });
    }

    /// Offers `file` to `who`; `fallback` goes instead if it does not get there.
    pub fn send_file(
        &mut self,
        who: &str,
        file: FileData,
        fallback: FormattedText,
        reply: Reply<Delivery>,
    ) {
        if file.data.len() as u64 > self.max_file {
            let warning = format!(
                "The file is larger than the {} the bridge sends over MSN: a link was sent instead.",
                size_text(self.max_file)
            );
            self.outcomes.push(Outcome::Fallback {
                fallback,
                warning,
                reply,
            });
            return;
        }
        let peer = self.peer(who);
        let id = peer.link.send_file(&file.name, file.data);
        let job = Job::Send {
            name: file.name,
            fallback,
            reply,
        };
        peer.jobs.insert(id, (job, Instant::now() + SILENCE));
        self.collect();
    }

    /// Takes a switchboard message from `from` if it is a transfer's business; `false`
    /// when it is not (text, typing, nudges...).
    pub fn handle(&mut self, from: &str, message: &Message) -> bool {
        let media = message
            .header("Content-Type")
            .and_then(|t| t.split(';').next())
            .unwrap_or_default()
            .trim_ascii()
            .to_ascii_lowercase();
        match media.as_str() {
            CONTENT_TYPE_P2P => {
                let payload = message.to_bytes();
                match P2pMessageRef::parse(&payload) {
                    Ok(packet) => {
                        let peer = self.peer(from);
                        peer.link.handle(&packet);
                        // Heard from: its transfers are alive.
                        let later = Instant::now() + SILENCE;
                        for (_, deadline) in peer.jobs.values_mut() {
                            *deadline = later;
                        }
                    }
                    Err(e) => tracing::debug!("msn: bad P2P message dropped: {e}"),
                }
                self.collect();
                true
            }
            "text/x-msmsgsinvite" => self.invitation(from, &message.body),
            _ => false,
        }
    }

    /// An MSNFTP invitation message; `false` when it is not a file transfer's (the
    /// user hears of other applications' invitations as before).
    fn invitation(&mut self, from: &str, body: &[u8]) -> bool {
        let Ok(invitation) = Invitation::parse(body) else {
            return false;
        };
        let Some(cookie) = invitation.cookie() else {
            return false;
        };
        match invitation.command() {
            Some(InvitationCommand::Invite) if invitation.is_file_transfer() => {
                let name = crate::core::sanitize::clean_file_name(
                    invitation.file_name().unwrap_or("file"),
                );
                let size = invitation.file_size().unwrap_or(0);
                let refuse = if size > self.max_file {
                    Some(format!(
                        "(offered the file {name} ({}), larger than the {} the bridge takes)",
                        size_text(size),
                        size_text(self.max_file)
                    ))
                } else if self.invitations.len() >= MAX_INVITATIONS {
                    Some(format!(
                        "(offered the file {name} ({}) while other files were coming; send it again later)",
                        size_text(size)
                    ))
                } else {
                    None
                };
                if let Some(text) = refuse {
                    self.send_payload(&msnftp::cancel(cookie, "REJECT"));
                    self.outcomes.push(Outcome::Notice {
                        from: from.to_owned(),
                        text,
                    });
                    return true;
                }
                self.invitations.insert(
                    cookie,
                    Invited {
                        from: from.to_lowercase(),
                        name,
                        size,
                        deadline: Instant::now() + SILENCE,
                        connected: false,
                    },
                );
                self.send_payload(&msnftp::accept_request(cookie));
                true
            }
            Some(InvitationCommand::Accept) => {
                let Some(invited) = self.invitations.get_mut(&cookie) else {
                    return true;
                };
                if invited.connected || !invited.from.eq_ignore_ascii_case(from) {
                    return true;
                }
                let (Some(ip), Some(port), Some(auth)) = (
                    invitation.ip_address(),
                    invitation.port(),
                    invitation.auth_cookie(),
                ) else {
                    return true;
                };
                if !may_connect(ip, self.sb_ip) {
                    let invited = self.invitations.remove(&cookie).expect("present");
                    tracing::info!(%ip, "msn: MSNFTP sender's address refused");
                    self.send_payload(&msnftp::cancel(cookie, "FTTIMEOUT"));
                    self.outcomes.push(Outcome::Notice {
                        from: invited.from,
                        text: format!(
                            "(sent the file {}, but from an address the bridge does not connect to; ask for it again)",
                            invited.name
                        ),
                    });
                    return true;
                }
                invited.connected = true;
                invited.deadline = Instant::now() + SILENCE;
                let receive = MsnftpReceive::new(&self.me, auth, invited.size, self.max_file);
                let results = self.ftp_tx.clone();
                tokio::spawn(async move {
                    let result = receive_msnftp((ip, port).into(), receive).await;
                    let _ = results.send((cookie, result));
                });
                true
            }
            Some(InvitationCommand::Cancel) => {
                if self
                    .invitations
                    .get(&cookie)
                    .is_some_and(|i| i.from.eq_ignore_ascii_case(from) && !i.connected)
                {
                    self.invitations.remove(&cookie);
                }
                true
            }
            _ => false,
        }
    }

    /// An MSNFTP connection is over.
    pub fn ftp_done(&mut self, cookie: u32, result: Result<Vec<u8>, String>) {
        let Some(invited) = self.invitations.remove(&cookie) else {
            return;
        };
        match result {
            Ok(data) => self.outcomes.push(Outcome::File {
                file: FileData::new(&invited.name, data),
                from: invited.from,
            }),
            Err(why) => self.outcomes.push(Outcome::Notice {
                text: format!(
                    "(sent the file {} ({}), which did not arrive: {why})",
                    invited.name,
                    size_text(invited.size)
                ),
                from: invited.from,
            }),
        }
    }

    fn send_payload(&mut self, payload: &[u8]) {
        match Message::parse(payload) {
            Ok(m) => self.out.push(m),
            Err(e) => tracing::warn!("msn: an invitation answer did not parse: {e}"),
        }
    }

    /// Turns the links' events into outcomes (or answers: offers are accepted here).
    fn collect(&mut self) {
        let max_file = self.max_file;
        for (who, peer) in &mut self.peers {
            while let Some(event) = peer.link.poll_event() {
                let deadline = Instant::now() + SILENCE;
                match event {
                    LinkEvent::FileOffered { transfer, size, .. } if size <= max_file => {
                        peer.link.accept_file(transfer);
                        peer.jobs.insert(transfer, (Job::Receive, deadline));
                    }
                    LinkEvent::FileOffered {
                        transfer,
                        name,
                        size,
                    } => {
                        peer.link.decline_file(transfer);
                        self.outcomes.push(Outcome::Notice {
                            from: who.clone(),
                            text: format!(
                                "(offered the file {name} ({}), larger than the {} the bridge takes)",
                                size_text(size),
                                size_text(max_file)
                            ),
                        });
                    }
                    LinkEvent::FileReceived {
                        transfer,
                        name,
                        data,
                    } => {
                        peer.jobs.remove(&transfer);
                        self.outcomes.push(Outcome::File {
                            from: who.clone(),
                            file: FileData::new(&name, data),
                        });
                    }
                    LinkEvent::FileSent { transfer } => {
                        if let Some((Job::Send { reply, .. }, _)) = peer.jobs.remove(&transfer) {
                            let _ = reply.send(Ok(Delivery::default()));
                        }
                    }
                    LinkEvent::FileDeclined { transfer } => {
                        if let Some((
                            Job::Send {
                                name,
                                fallback,
                                reply,
                            },
                            _,
                        )) = peer.jobs.remove(&transfer)
                        {
                            self.outcomes.push(Outcome::Fallback {
                                fallback,
                                warning: format!(
                                    "{who} declined the file {name}: a link was sent instead."
                                ),
                                reply,
                            });
                        }
                    }
                    LinkEvent::PictureFetched { transfer, data } => {
                        if let Some((Job::Fetch { hash }, _)) = peer.jobs.remove(&transfer) {
                            let result = Avatar::new(&hash, data).ok_or_else(|| {
                                "the picture is not an image the bridge takes".to_owned()
                            });
                            self.outcomes.push(Outcome::Picture {
                                who: who.clone(),
                                hash,
                                result,
                            });
                        }
                    }
                    LinkEvent::PictureServed { transfer } => {
                        peer.jobs.remove(&transfer);
                        tracing::debug!(to = %who, "msn: our picture was served");
                    }
                    LinkEvent::Failed { transfer, why } => match peer.jobs.remove(&transfer) {
                        Some((Job::Fetch { hash }, _)) => {
                            self.outcomes.push(Outcome::Picture {
                                who: who.clone(),
                                hash,
                                result: Err(why),
                            });
                        }
                        Some((
                            Job::Send {
                                name,
                                fallback,
                                reply,
                            },
                            _,
                        )) => {
                            self.outcomes.push(Outcome::Fallback {
                                fallback,
                                warning: format!("The file {name} did not reach {who} ({why}): a link was sent instead."),
                                reply,
                            });
                        }
                        Some((Job::Receive, _)) => self.outcomes.push(Outcome::Notice {
                            from: who.clone(),
                            text: format!("(a file from {who} did not arrive: {why})"),
                        }),
                        None => {
                            tracing::debug!(contact = %who, "msn: a transfer ended: {why}")
                        }
                    },
                }
            }
        }
    }

    /// The next message to send: MSNFTP answers first, then the links' in turn.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        if let Some(m) = self.out.pop() {
            return Some(m);
        }
        let n = self.peers.len();
        for i in 0..n {
            let index = (self.turn + i) % n;
            let peer = self.peers.values_mut().nth(index)?;
            if let Some(m) = peer.link.poll_transmit() {
                self.turn = index + 1;
                return Some(m.to_mime());
            }
        }
        None
    }

    pub fn poll_outcome(&mut self) -> Option<Outcome> {
        self.collect();
        self.outcomes.pop()
    }

    /// When the next transfer gives up, if one is running.
    pub fn next_deadline(&self) -> Option<Instant> {
        let links = self
            .peers
            .values()
            .flat_map(|p| p.jobs.values().map(|(_, d)| *d));
        let invitations = self.invitations.values().map(|i| i.deadline);
        links.chain(invitations).min()
    }

    /// Ends the transfers whose deadline passed.
    pub fn expire(&mut self, now: Instant) {
        for peer in self.peers.values_mut() {
            let late: Vec<TransferId> = peer
                .jobs
                .iter()
                .filter(|(_, (_, d))| *d <= now)
                .map(|(id, _)| *id)
                .collect();
            for id in late {
                // The link answers with `Failed`, which `collect` reports.
                peer.link
                    .cancel(id, "no answer from the contact's client in time");
            }
        }
        let late: Vec<u32> = self
            .invitations
            .iter()
            .filter(|(_, i)| i.deadline <= now && !i.connected)
            .map(|(c, _)| *c)
            .collect();
        for cookie in late {
            self.ftp_done(cookie, Err("the sender's client did not send it".into()));
        }
        self.collect();
    }

    /// Whether a transfer is running (the switchboard stays while one is).
    pub fn busy(&self) -> bool {
        !self.invitations.is_empty() || self.peers.values().any(|p| !p.jobs.is_empty())
    }

    /// The switchboard closes: every transfer ends with `why`.
    pub fn close(&mut self, why: &str) {
        for peer in self.peers.values_mut() {
            let ids: Vec<TransferId> = peer.jobs.keys().copied().collect();
            for id in ids {
                peer.link.cancel(id, why);
            }
        }
        let cookies: Vec<u32> = self.invitations.keys().copied().collect();
        for cookie in cookies {
            self.ftp_done(cookie, Err(why.to_owned()));
        }
        self.collect();
    }
}

/// Whether the bridge may connect to an address a peer named: a public one, or one of
/// the same kind as the switchboard's (loopback with loopback, private with private).
fn may_connect(ip: IpAddr, sb_ip: Option<IpAddr>) -> bool {
    let kind = |ip: IpAddr| match ip {
        IpAddr::V4(v4) if v4.is_loopback() => 1,
        IpAddr::V4(v4) if v4.is_private() || v4.is_link_local() => 2,
        IpAddr::V4(v4) if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() => 3,
        IpAddr::V6(v6) if v6.is_loopback() => 1,
        IpAddr::V6(v6) if v6.is_unspecified() || v6.is_multicast() => 3,
        // Unique local and link-local IPv6 (fc00::/7, fe80::/10).
        IpAddr::V6(v6)
            if (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80 =>
        {
            2
        }
        _ => 0,
    };
    match kind(ip) {
        0 => true,
        3 => false,
        k => sb_ip.is_some_and(|sb| kind(sb) == k),
    }
}

/// One MSNFTP receive over a TCP connection to the sender; at most [`SILENCE`] without
/// a byte.
async fn receive_msnftp(
    addr: std::net::SocketAddr,
    mut session: MsnftpReceive,
) -> Result<Vec<u8>, String> {
    let connect = tokio::net::TcpStream::connect(addr);
    let mut stream = match tokio::time::timeout(Duration::from_secs(15), connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("the sender could not be reached: {e}")),
        Err(_) => return Err("the sender could not be reached in time".into()),
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(bytes) = session.poll_transmit() {
            stream
                .write_all(&bytes)
                .await
                .map_err(|e| format!("the connection broke: {e}"))?;
        }
        match session.outcome() {
            Some(MsnftpOutcome::Received(data)) => {
                let _ = stream.shutdown().await;
                return Ok(data.clone());
            }
            Some(MsnftpOutcome::Failed(why)) => return Err(why.clone()),
            None => {}
        }
        match tokio::time::timeout(SILENCE, stream.read(&mut buf)).await {
            Ok(Ok(0)) => return Err("the sender closed the connection early".into()),
            Ok(Ok(n)) => session.handle_input(&buf[..n]),
            Ok(Err(e)) => return Err(format!("the connection broke: {e}")),
            Err(_) => {
                session.cancel("no data in time");
                return Err("the sender stopped sending".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_names_only_addresses_the_switchboard_could_be_at() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Public addresses: always.
        assert!(may_connect(ip("203.0.113.7"), Some(ip("198.51.100.1"))));
        assert!(may_connect(ip("2001:db8::1"), None));
        // Inside the operator's network only when the server is there too.
        assert!(!may_connect(ip("127.0.0.1"), Some(ip("198.51.100.1"))));
        assert!(!may_connect(ip("10.0.0.5"), Some(ip("198.51.100.1"))));
        assert!(!may_connect(ip("::1"), None));
        assert!(!may_connect(ip("fd00::1"), Some(ip("2001:db8::1"))));
        assert!(!may_connect(
            ip("169.254.169.254"),
            Some(ip("198.51.100.1"))
        ));
        assert!(may_connect(ip("127.0.0.1"), Some(ip("127.0.0.1"))));
        assert!(may_connect(ip("192.168.1.9"), Some(ip("10.1.2.3"))));
        assert!(!may_connect(ip("127.0.0.1"), Some(ip("10.1.2.3"))));
        // Never: nowhere, everywhere.
        assert!(!may_connect(ip("0.0.0.0"), Some(ip("0.0.0.0"))));
        assert!(!may_connect(ip("255.255.255.255"), Some(ip("127.0.0.1"))));
    }
}
