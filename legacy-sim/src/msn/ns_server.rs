//! Dispatch and notification server connections.

use std::sync::{Arc, Mutex, MutexGuard};

use msn_proto::challenge::verify_response;
use msn_proto::{encode_command, url_decode, url_encode, Command, List, ListBits, Message, Status};

use super::conn::{Flow, Handler};
use super::state::{
    key, ContactRecord, Directory, Outbound, Presence, SbGrant, Tx, MAX_MSN_OBJECT_PARAM,
};

const POLICY: &str = "lc=1033,id=507,tw=40,fs=1,ru=http%3A%2F%2Fmessenger%2Emsn%2Ecom,ct=1062764229,kpp=1,kv=5,ver=2.1.0173.1,tpf=43f8a4c8ed940c04e3740be46c4d1619";
const MAX_GROUPS: usize = 30;
const MAX_NICK: usize = 387;

pub fn lock(dir: &Mutex<Directory>) -> MutexGuard<'_, Directory> {
    dir.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn line(name: &str, trid: Option<u32>, params: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_command(&mut out, name, trid, params, None);
    out
}

pub struct NsConn {
    dir: Arc<Mutex<Directory>>,
    tx: Tx,
    conn_id: u64,
    dispatch: bool,
    pending_email: Option<String>,
    email: Option<String>,
    changed_status: bool,
    challenge: Option<String>,
    pings: u32,
}

impl NsConn {
    pub fn new(dir: Arc<Mutex<Directory>>, tx: Tx, dispatch: bool) -> NsConn {
        let conn_id = lock(&dir).next_id();
        NsConn {
            dir,
            tx,
            conn_id,
            dispatch,
            pending_email: None,
            email: None,
            changed_status: false,
            challenge: None,
            pings: 0,
        }
    }

    fn send(&self, bytes: Vec<u8>) {
        let _ = self.tx.send(Outbound::Bytes(bytes));
    }

    fn reply(&self, name: &str, trid: Option<u32>, params: &[&str]) {
        self.send(line(name, trid, params));
    }

    fn error(&self, code: u16, trid: Option<u32>) -> Flow {
        self.send(line(&format!("{code:03}"), trid, &[]));
        Flow::Continue
    }

    fn send_challenge(&mut self) {
        let challenge: String = {
            let mut d = lock(&self.dir);
            let t = d.token();
            // Real challenges were 20 decimal digits.
            t.bytes()
                .take(20)
                .map(|b| char::from(b'0' + b % 10))
                .collect()
        };
        self.reply("CHL", Some(0), &[&challenge]);
        self.challenge = Some(challenge);
    }

    fn login(&mut self, trid: Option<u32>, p: &[String]) -> Flow {
        let arg = |i: usize| p.get(i).map(String::as_str).unwrap_or("");
        if arg(0) != "TWN" {
            return self.error(911, trid);
        }
        match arg(1) {
            "I" if self.dispatch => {
                let d = lock(&self.dir);
                let (ns, ds) = (
                    d.addrs.notification.to_string(),
                    d.addrs.dispatch.to_string(),
                );
                drop(d);
                self.reply("XFR", trid, &["NS", &ns, "0", &ds]);
                Flow::Close
            }
            "I" => {
                self.pending_email = Some(arg(2).to_string());
                self.reply("USR", trid, &["TWN", "S", POLICY]);
                Flow::Continue
            }
            "S" => {
                let Some(email) = self.pending_email.take() else {
                    return self.error(911, trid);
                };
                let mut d = lock(&self.dir);
                if !d.redeem_ticket(arg(2), &email) {
                    drop(d);
                    tracing::info!(%email, "msn: login refused (bad ticket)");
                    self.error(911, trid);
                    return Flow::Close;
                }
                let Some(acc) = d.accounts.get(&key(&email)) else {
                    drop(d);
                    self.error(911, trid);
                    return Flow::Close;
                };
                let (email, nick) = (acc.email.clone(), acc.friendly_name.clone());
                let previous = d.online.insert(
                    key(&email),
                    Presence {
                        conn_id: self.conn_id,
                        tx: self.tx.clone(),
                        status: Status::Offline,
                        client_id: 0,
                        msn_object: None,
                    },
                );
                drop(d);
                if let Some(old) = previous {
                    // Signed in elsewhere: the old connection goes.
                    let _ = old.tx.send(Outbound::Bytes(line("OUT", None, &["OTH"])));
                    let _ = old.tx.send(Outbound::Close);
                }
                tracing::info!(%email, "msn: signed in");
                self.reply("USR", trid, &["OK", &email, &url_encode(&nick), "1", "0"]);
                let profile = Message {
                    headers: vec![
                        ("MIME-Version".into(), "1.0".into()),
                        (
                            "Content-Type".into(),
                            "text/x-msmsgsprofile; charset=UTF-8".into(),
                        ),
                        ("LoginTime".into(), "1062764229".into()),
                        ("lang_preference".into(), "1033".into()),
                        ("country".into(), "US".into()),
                    ],
                    body: Vec::new(),
                };
                let mut out = Vec::new();
                encode_command(
                    &mut out,
                    "MSG",
                    None,
                    &["Hotmail", "Hotmail"],
                    Some(&profile.to_bytes()),
                );
                self.send(out);
                self.email = Some(email);
                Flow::Continue
            }
            _ => self.error(911, trid),
        }
    }

    fn sync(&self, trid: Option<u32>, me: &str, p: &[String]) {
        let d = lock(&self.dir);
        let Some(acc) = d.accounts.get(&key(me)) else {
            return;
        };
        let have: u32 = p.first().and_then(|v| v.parse().ok()).unwrap_or(0);
        let version = acc.version.to_string();
        if have == acc.version {
            return self.send(line("SYN", trid, &[&version]));
        }
        let listed: Vec<_> = acc
            .contacts
            .iter()
            .filter(|(_, c)| c.lists.0 != 0)
            .collect();
        let mut out = line(
            "SYN",
            trid,
            &[
                &version,
                &listed.len().to_string(),
                &acc.groups.len().to_string(),
            ],
        );
        out.extend(line("GTC", None, &["A"]));
        out.extend(line("BLP", None, &["AL"]));
        for (id, name) in &acc.groups {
            out.extend(line(
                "LSG",
                None,
                &[&id.to_string(), &url_encode(name), "0"],
            ));
        }
        for (email, c) in listed {
            let bits = c.lists.0.to_string();
            let nick = url_encode(&c.nick);
            let email = d
                .accounts
                .get(email)
                .map_or(email.as_str(), |a| a.email.as_str());
            if c.lists.contains(List::Forward) {
                let groups: Vec<String> = c.groups.iter().map(u32::to_string).collect();
                let groups = if groups.is_empty() {
                    "0".to_string()
                } else {
                    groups.join(",")
                };
                out.extend(line("LST", None, &[email, &nick, &bits, &groups]));
            } else {
                out.extend(line("LST", None, &[email, &nick, &bits]));
            }
        }
        self.send(out);
    }

    fn change_status(&mut self, trid: Option<u32>, me: &str, p: &[String]) -> Flow {
        let Some(status) = p
            .first()
            .and_then(|s| Status::from_code(s))
            .filter(|s| *s != Status::Offline)
        else {
            return self.error(201, trid);
        };
        let client_id: u32 = p.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
        // `CHG <status> <clientid> <msnobj>` (Messenger 6.x, MSNPiki "MSNC:
        // MSNObject"): kept URL-encoded as received; a CHG without one clears
        // it. An oversized one is dropped rather than relayed.
        let msn_object = p
            .get(2)
            .filter(|o| !o.is_empty() && o.len() <= MAX_MSN_OBJECT_PARAM)
            .cloned();
        let mut d = lock(&self.dir);
        if let Some(pr) = d.online.get_mut(&key(me)) {
            pr.status = status;
            pr.client_id = client_id;
            pr.msn_object = msn_object.clone();
        }
        let client_id_text = client_id.to_string();
        let mut chg = vec![status.code(), client_id_text.as_str()];
        if let Some(o) = &msn_object {
            // The server echoes the object in its CHG reply.
            chg.push(o);
        }
        let mut out = line("CHG", trid, &chg);
        if !self.changed_status {
            // First CHG: initial presence of everyone on our FL.
            if let Some(acc) = d.accounts.get(&key(me)) {
                for (email, c) in &acc.contacts {
                    if !c.lists.contains(List::Forward) {
                        continue;
                    }
                    let seen = d.visible_status(email, me);
                    if let (Some((st, id)), Some(contact)) = (seen, d.accounts.get(email)) {
                        let nick = url_encode(&contact.friendly_name);
                        let id = id.to_string();
                        let mut params = vec![st.code(), &contact.email, &nick, &id];
                        if let Some(o) = d.msn_object(email) {
                            params.push(o);
                        }
                        out.extend(line("ILN", trid, &params));
                    }
                }
            }
        }
        self.send(out);
        d.broadcast_presence(me);
        drop(d);
        if !self.changed_status {
            self.changed_status = true;
            if lock(&self.dir).config.challenges {
                self.send_challenge();
            }
        }
        Flow::Continue
    }

    fn add(&mut self, trid: Option<u32>, me: &str, p: &[String]) -> Flow {
        let (Some(list), Some(email)) = (p.first().and_then(|l| List::from_code(l)), p.get(1))
        else {
            return self.error(201, trid);
        };
        if list == List::Reverse || !email.contains('@') {
            return self.error(201, trid);
        }
        let nick = p
            .get(2)
            .map_or_else(|| email.clone(), |n| url_decode(n).into_owned());
        let group: Option<u32> = match p.get(3) {
            Some(g) => match g.parse() {
                Ok(g) => Some(g),
                Err(_) => return self.error(224, trid),
            },
            None => None,
        };
        let mut d = lock(&self.dir);
        let Some(target) = d.accounts.get(&key(email)) else {
            drop(d);
            return self.error(205, trid);
        };
        let target_email = target.email.clone();
        let Some(acc) = d.accounts.get_mut(&key(me)) else {
            return Flow::Continue;
        };
        if group.is_some_and(|g| !acc.groups.contains_key(&g)) {
            drop(d);
            return self.error(224, trid);
        }
        let entry = acc.contacts.entry(key(email)).or_insert(ContactRecord {
            nick: nick.clone(),
            lists: ListBits::default(),
            groups: Vec::new(),
        });
        let already = entry.lists.contains(list);
        if already && (list != List::Forward || group.is_none_or(|g| entry.groups.contains(&g))) {
            drop(d);
            return self.error(215, trid);
        }
        if (list == List::Allow && entry.lists.contains(List::Block))
            || (list == List::Block && entry.lists.contains(List::Allow))
        {
            drop(d);
            return self.error(219, trid);
        }
        entry.lists.insert(list);
        if list == List::Forward {
            let g = group.unwrap_or(0);
            if !entry.groups.contains(&g) {
                entry.groups.push(g);
            }
        }
        acc.version += 1;
        let version = acc.version.to_string();
        let my_email = acc.email.clone();
        let my_nick = url_encode(&acc.friendly_name);
        let nick_enc = url_encode(&nick);
        let group_text = group.map(|g| g.to_string());
        let mut params = vec![
            list.code(),
            version.as_str(),
            target_email.as_str(),
            nick_enc.as_str(),
        ];
        if let (List::Forward, Some(g)) = (list, &group_text) {
            params.push(g.as_str());
        }
        self.send(line("ADD", trid, &params));
        match list {
            List::Forward if !already => {
                let Some(t) = d.accounts.get_mut(&key(email)) else {
                    return Flow::Continue;
                };
                let e = t.contacts.entry(key(me)).or_insert(ContactRecord {
                    nick: my_nick.clone(),
                    lists: ListBits::default(),
                    groups: Vec::new(),
                });
                e.nick = url_decode(&my_nick).into_owned();
                e.lists.insert(List::Reverse);
                t.version += 1;
                let tv = t.version.to_string();
                d.send_to(
                    email,
                    line("ADD", Some(0), &["RL", &tv, &my_email, &my_nick]),
                );
                if d.visible_status(email, me).is_some() {
                    self.send(d.presence_line(&target_email, me));
                }
            }
            List::Block
                if d.accounts
                    .get(&key(email))
                    .is_some_and(|a| a.on(List::Forward, me)) =>
            {
                let l = d.presence_line(me, email);
                d.send_to(email, l);
            }
            _ => {}
        }
        Flow::Continue
    }

    fn remove(&mut self, trid: Option<u32>, me: &str, p: &[String]) -> Flow {
        let (Some(list), Some(email)) = (p.first().and_then(|l| List::from_code(l)), p.get(1))
        else {
            return self.error(201, trid);
        };
        if list == List::Reverse {
            return self.error(201, trid);
        }
        let group: Option<u32> = p.get(2).and_then(|g| g.parse().ok());
        let mut d = lock(&self.dir);
        let Some(acc) = d.accounts.get_mut(&key(me)) else {
            return Flow::Continue;
        };
        let Some(entry) = acc
            .contacts
            .get_mut(&key(email))
            .filter(|c| c.lists.contains(list))
        else {
            drop(d);
            return self.error(216, trid);
        };
        let mut fully_removed = true;
        if let (List::Forward, Some(g)) = (list, group) {
            if !entry.groups.contains(&g) {
                drop(d);
                return self.error(224, trid);
            }
            entry.groups.retain(|x| *x != g);
            fully_removed = false;
        } else {
            entry.lists.remove(list);
            if list == List::Forward {
                entry.groups.clear();
            }
            if entry.lists.0 == 0 {
                acc.contacts.remove(&key(email));
            }
        }
        acc.version += 1;
        let version = acc.version.to_string();
        let my_email = acc.email.clone();
        match group {
            Some(g) if list == List::Forward => self.send(line(
                "REM",
                trid,
                &[list.code(), &version, email, &g.to_string()],
            )),
            _ => self.send(line("REM", trid, &[list.code(), &version, email])),
        }
        if list == List::Forward && fully_removed {
            if let Some(t) = d.accounts.get_mut(&key(email)) {
                if let Some(e) = t.contacts.get_mut(&key(me)) {
                    e.lists.remove(List::Reverse);
                    if e.lists.0 == 0 {
                        t.contacts.remove(&key(me));
                    }
                }
                t.version += 1;
                let tv = t.version.to_string();
                d.send_to(email, line("REM", Some(0), &["RL", &tv, &my_email]));
            }
        }
        if list == List::Block
            && d.accounts
                .get(&key(email))
                .is_some_and(|a| a.on(List::Forward, me))
        {
            let l = d.presence_line(me, email);
            d.send_to(email, l);
        }
        Flow::Continue
    }

    fn rename(&mut self, trid: Option<u32>, me: &str, p: &[String]) -> Flow {
        let (Some(email), Some(nick_enc)) = (p.first(), p.get(1)) else {
            return self.error(201, trid);
        };
        let nick = url_decode(nick_enc).into_owned();
        if nick.is_empty() || nick.len() > MAX_NICK {
            return self.error(209, trid);
        }
        let mut d = lock(&self.dir);
        let Some(acc) = d.accounts.get_mut(&key(me)) else {
            return Flow::Continue;
        };
        if key(email) == key(me) {
            acc.friendly_name = nick.clone();
        } else if let Some(c) = acc.contacts.get_mut(&key(email)) {
            c.nick = nick.clone();
        } else {
            drop(d);
            return self.error(216, trid);
        }
        acc.version += 1;
        let version = acc.version.to_string();
        self.send(line("REA", trid, &[&version, email, &url_encode(&nick)]));
        if key(email) == key(me) {
            d.broadcast_presence(me);
        }
        Flow::Continue
    }

    fn groups(&mut self, name: &str, trid: Option<u32>, me: &str, p: &[String]) -> Flow {
        let mut d = lock(&self.dir);
        let Some(acc) = d.accounts.get_mut(&key(me)) else {
            return Flow::Continue;
        };
        let arg = |i: usize| p.get(i).map(String::as_str).unwrap_or("");
        let reply = match name {
            "ADG" => {
                let group_name = url_decode(arg(0)).into_owned();
                if group_name.is_empty() {
                    return self.error(201, trid);
                }
                if acc.groups.len() >= MAX_GROUPS {
                    drop(d);
                    return self.error(223, trid);
                }
                let id = acc.groups.keys().max().map_or(0, |m| m + 1);
                acc.groups.insert(id, group_name.clone());
                acc.version += 1;
                line(
                    "ADG",
                    trid,
                    &[
                        &acc.version.to_string(),
                        &url_encode(&group_name),
                        &id.to_string(),
                        "0",
                    ],
                )
            }
            "RMG" => {
                let Some(id) = arg(0)
                    .parse::<u32>()
                    .ok()
                    .filter(|id| *id != 0 && acc.groups.contains_key(id))
                else {
                    drop(d);
                    return self.error(224, trid);
                };
                acc.groups.remove(&id);
                for c in acc.contacts.values_mut() {
                    c.groups.retain(|g| *g != id);
                }
                acc.version += 1;
                line("RMG", trid, &[&acc.version.to_string(), &id.to_string()])
            }
            _ => {
                let group_name = url_decode(arg(1)).into_owned();
                let Some(id) = arg(0)
                    .parse::<u32>()
                    .ok()
                    .filter(|id| acc.groups.contains_key(id))
                else {
                    drop(d);
                    return self.error(224, trid);
                };
                acc.groups.insert(id, group_name.clone());
                acc.version += 1;
                line(
                    "REG",
                    trid,
                    &[
                        &acc.version.to_string(),
                        &id.to_string(),
                        &url_encode(&group_name),
                        "0",
                    ],
                )
            }
        };
        drop(d);
        self.send(reply);
        Flow::Continue
    }
}

impl Handler for NsConn {
    fn on_command(&mut self, cmd: Command) -> Flow {
        let trid = cmd.trid;
        let p = &cmd.params;
        match cmd.name.as_str() {
            "VER" => {
                if p.iter().any(|v| v == "MSNP9") {
                    self.reply("VER", trid, &["MSNP9"]);
                } else if p.iter().any(|v| v == "MSNP8") {
                    self.reply("VER", trid, &["MSNP8"]);
                } else {
                    self.reply("VER", trid, &["0"]);
                    return Flow::Close;
                }
                return Flow::Continue;
            }
            "CVR" => {
                self.reply(
                    "CVR",
                    trid,
                    &[
                        "6.2.0208",
                        "6.2.0208",
                        "6.2.0208",
                        "http://download.microsoft.com/msn",
                        "http://messenger.msn.com",
                    ],
                );
                return Flow::Continue;
            }
            "USR" => return self.login(trid, p),
            "OUT" => return Flow::Close,
            "PNG" => {
                self.reply("QNG", None, &["50"]);
                self.pings += 1;
                if self.email.is_some()
                    && self.pings.is_multiple_of(5)
                    && lock(&self.dir).config.challenges
                {
                    self.send_challenge();
                }
                return Flow::Continue;
            }
            _ => {}
        }
        let Some(me) = self.email.clone() else {
            return self.error(302, trid);
        };
        match cmd.name.as_str() {
            "SYN" => self.sync(trid, &me, p),
            "CHG" => return self.change_status(trid, &me, p),
            "ADD" => return self.add(trid, &me, p),
            "REM" => return self.remove(trid, &me, p),
            "REA" => return self.rename(trid, &me, p),
            "ADG" | "RMG" | "REG" => return self.groups(&cmd.name, trid, &me, p),
            "BLP" | "GTC" => {
                let version = lock(&self.dir)
                    .accounts
                    .get(&key(&me))
                    .map_or(0, |a| a.version);
                let value = p.first().map(String::as_str).unwrap_or("");
                self.reply(&cmd.name, trid, &[&version.to_string(), value]);
            }
            "QRY" => {
                let ok = match (&self.challenge, p.first(), &cmd.payload) {
                    (Some(ch), Some(id), Some(answer)) => verify_response(ch, id, answer),
                    _ => false,
                };
                if !ok {
                    self.error(540, trid);
                    return Flow::Close;
                }
                self.challenge = None;
                self.reply("QRY", trid, &[]);
            }
            "XFR" if p.first().map(String::as_str) == Some("SB") => {
                let mut d = lock(&self.dir);
                let cookie = format!("{}.{}", d.next_id(), d.token());
                d.grant(
                    cookie.clone(),
                    SbGrant {
                        email: me,
                        session: None,
                    },
                );
                let sb = d.addrs.switchboard.to_string();
                drop(d);
                self.reply("XFR", trid, &["SB", &sb, "CKI", &cookie]);
            }
            _ => return self.error(200, trid),
        }
        Flow::Continue
    }

    fn on_close(&mut self) {
        let Some(me) = self.email.take() else { return };
        let mut d = lock(&self.dir);
        if d.online
            .get(&key(&me))
            .is_some_and(|p| p.conn_id == self.conn_id)
        {
            d.online.remove(&key(&me));
            d.broadcast_presence(&me);
            tracing::info!(email = %me, "msn: signed out");
        }
    }
}
