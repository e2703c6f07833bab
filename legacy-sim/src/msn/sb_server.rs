//! Switchboard server connections: one conversation per session id.

use std::sync::{Arc, Mutex};

use msn_proto::p2p::CONTENT_TYPE_P2P;
use msn_proto::{encode_command, url_encode, AckMode, Command, MessageRef, MAX_MSG_PAYLOAD};

use super::conn::{Flow, Handler};
use super::ns_server::{line, lock};
use super::state::{key, Directory, Outbound, Participant, SbGrant, Tx};

pub struct SbConn {
    dir: Arc<Mutex<Directory>>,
    tx: Tx,
    conn_id: u64,
    email: Option<String>,
    session: Option<u64>,
}

impl SbConn {
    pub fn new(dir: Arc<Mutex<Directory>>, tx: Tx) -> SbConn {
        let conn_id = lock(&dir).next_id();
        SbConn {
            dir,
            tx,
            conn_id,
            email: None,
            session: None,
        }
    }

    fn send(&self, bytes: Vec<u8>) {
        let _ = self.tx.send(Outbound::Bytes(bytes));
    }

    fn refuse(&self, code: u16, trid: Option<u32>) -> Flow {
        self.send(line(&format!("{code:03}"), trid, &[]));
        Flow::Continue
    }

    /// Checks a cookie and, when valid, takes its grant.
    fn take_grant(&self, cookie: &str, email: &str, session: Option<u64>) -> Option<SbGrant> {
        let mut d = lock(&self.dir);
        let g = d.sb_grants.get(cookie)?;
        if key(&g.email) != key(email) || g.session != session {
            return None;
        }
        d.sb_grants.remove(cookie)
    }

    fn me(&self) -> Participant {
        Participant {
            email: self.email.clone().unwrap_or_default(),
            conn_id: self.conn_id,
            tx: self.tx.clone(),
        }
    }
}

/// Who gets a `MSG`: every other participant, except that an
/// `application/x-msnmsgrp2p` payload whose `P2P-Dest` names a participant
/// goes to that participant only, and one naming nobody here goes nowhere
/// (the sender gets `NAK`). The payload itself is relayed byte for byte.
///
/// Our choice, not a documented server behaviour: the P2P-Dest header exists
/// so that MSNC packets reach one peer in a multi-party switchboard
/// (MSNPiki "MSNC: P2P"; libpurple, papyon and aMSN all set it to the peer's
/// passport and ignore packets not addressed to them). In a two-party
/// conversation this is the same as relaying to all others.
fn p2p_recipients(payload: &[u8], others: Vec<Participant>) -> Vec<Participant> {
    let Ok(mime) = MessageRef::parse(payload) else {
        return others;
    };
    if !mime
        .media_type()
        .is_some_and(|t| t.eq_ignore_ascii_case(CONTENT_TYPE_P2P))
    {
        return others;
    }
    match mime.header("P2P-Dest") {
        Some(dest) => others
            .into_iter()
            .filter(|p| key(&p.email) == key(dest.trim()))
            .collect(),
        None => others,
    }
}

impl Handler for SbConn {
    fn on_command(&mut self, cmd: Command) -> Flow {
        let trid = cmd.trid;
        let arg = |i: usize| cmd.params.get(i).map(String::as_str).unwrap_or("");
        match (cmd.name.as_str(), self.session) {
            ("USR", None) => {
                let Some(grant) = self.take_grant(arg(1), arg(0), None) else {
                    self.refuse(911, trid);
                    return Flow::Close;
                };
                let mut d = lock(&self.dir);
                let sid = d.next_id();
                let nick = url_encode(&d.friendly_name(&grant.email));
                self.email = Some(grant.email.clone());
                d.sessions.insert(sid, vec![self.me()]);
                drop(d);
                self.session = Some(sid);
                self.send(line("USR", trid, &["OK", &grant.email, &nick]));
            }
            ("ANS", None) => {
                let sid: Option<u64> = arg(2).parse().ok();
                let grant = sid.and_then(|sid| self.take_grant(arg(1), arg(0), Some(sid)));
                let (Some(grant), Some(sid)) = (grant, sid) else {
                    self.refuse(911, trid);
                    return Flow::Close;
                };
                self.email = Some(grant.email.clone());
                let me = self.me();
                let mut d = lock(&self.dir);
                let my_nick = url_encode(&d.friendly_name(&grant.email));
                let others: Vec<Participant> = match d.sessions.get(&sid) {
                    Some(ps) => ps.clone(),
                    None => {
                        drop(d);
                        self.refuse(911, trid);
                        return Flow::Close;
                    }
                };
                let mut out = Vec::new();
                let total = others.len().to_string();
                for (i, p) in others.iter().enumerate() {
                    let nick = url_encode(&d.friendly_name(&p.email));
                    out.extend(line(
                        "IRO",
                        trid,
                        &[&(i + 1).to_string(), &total, &p.email, &nick],
                    ));
                }
                out.extend(line("ANS", trid, &["OK"]));
                self.send(out);
                for p in &others {
                    let _ = p.tx.send(Outbound::Bytes(line(
                        "JOI",
                        None,
                        &[&grant.email, &my_nick],
                    )));
                }
                if let Some(ps) = d.sessions.get_mut(&sid) {
                    ps.push(me);
                }
                drop(d);
                self.session = Some(sid);
            }
            (_, None) => return self.refuse(302, trid),
            ("CAL", Some(sid)) => {
                let me = self.email.clone().unwrap_or_default();
                let target = arg(0).to_string();
                let mut d = lock(&self.dir);
                let present = d
                    .sessions
                    .get(&sid)
                    .is_some_and(|ps| ps.iter().any(|p| key(&p.email) == key(&target)));
                if present {
                    drop(d);
                    return self.refuse(215, trid);
                }
                if d.visible_status(&target, &me).is_none() {
                    drop(d);
                    return self.refuse(217, trid);
                }
                let cookie = format!("{}.{}", d.next_id(), d.token());
                let target_email = d
                    .accounts
                    .get(&key(&target))
                    .map_or(target.clone(), |a| a.email.clone());
                d.grant(
                    cookie.clone(),
                    SbGrant {
                        email: target_email,
                        session: Some(sid),
                    },
                );
                let sb = d.addrs.switchboard.to_string();
                let nick = url_encode(&d.friendly_name(&me));
                let sid_text = sid.to_string();
                d.send_to(
                    &target,
                    line("RNG", None, &[&sid_text, &sb, "CKI", &cookie, &me, &nick]),
                );
                drop(d);
                self.send(line("CAL", trid, &["RINGING", &sid_text]));
            }
            ("MSG", Some(sid)) => {
                let mode = AckMode::from_code(arg(0)).unwrap_or(AckMode::NakOnly);
                let payload = cmd.payload.as_deref().unwrap_or_default();
                let me = self.email.clone().unwrap_or_default();
                let d = lock(&self.dir);
                let others: Vec<Participant> = d
                    .sessions
                    .get(&sid)
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p.conn_id != self.conn_id)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let nick = url_encode(&d.friendly_name(&me));
                drop(d);
                let others = p2p_recipients(payload, others);
                let mut delivered = !others.is_empty() && payload.len() <= MAX_MSG_PAYLOAD;
                if delivered {
                    let mut out = Vec::with_capacity(payload.len() + 64);
                    encode_command(&mut out, "MSG", None, &[&me, &nick], Some(payload));
                    for p in &others {
                        delivered &= p.tx.send(Outbound::Bytes(out.clone())).is_ok();
                    }
                }
                match (mode, delivered) {
                    (AckMode::Unacknowledged, _) => {}
                    (AckMode::Always | AckMode::Data, true) => self.send(line("ACK", trid, &[])),
                    (AckMode::NakOnly, true) => {}
                    (_, false) => self.send(line("NAK", trid, &[])),
                }
            }
            ("OUT", Some(_)) => return Flow::Close,
            _ => return self.refuse(200, trid),
        }
        Flow::Continue
    }

    fn on_close(&mut self) {
        let (Some(sid), Some(me)) = (self.session.take(), self.email.take()) else {
            return;
        };
        let mut d = lock(&self.dir);
        let Some(ps) = d.sessions.get_mut(&sid) else {
            return;
        };
        ps.retain(|p| p.conn_id != self.conn_id);
        for p in ps.iter() {
            let _ = p.tx.send(Outbound::Bytes(line("BYE", None, &[&me])));
        }
        if ps.is_empty() {
            d.sessions.remove(&sid);
        }
    }
}
