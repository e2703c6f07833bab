//! The simulator's shared state: accounts and their lists, who is online,
//! Passport tickets, switchboard cookies and sessions. Guarded by one
//! `std::sync::Mutex`, never held across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use msn_proto::{url_encode, List, ListBits, Status};
use tokio::sync::mpsc::UnboundedSender;

use super::config::Config;

/// What a connection task is told to do by others.
#[derive(Debug)]
pub enum Outbound {
    Bytes(Vec<u8>),
    /// Write what is queued, then close (e.g. `OUT OTH`).
    Close,
}

pub type Tx = UnboundedSender<Outbound>;

pub const TICKET_LIFETIME: Duration = Duration::from_secs(120);
/// How long an unanswered `XFR SB` or `RNG` cookie stays valid.
pub const GRANT_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct ContactRecord {
    pub nick: String,
    pub lists: ListBits,
    pub groups: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub email: String,
    pub password: String,
    pub friendly_name: String,
    pub version: u32,
    pub groups: BTreeMap<u32, String>,
    pub contacts: BTreeMap<String, ContactRecord>,
    pub login_redirect: bool,
}

impl Account {
    pub fn on(&self, list: List, email: &str) -> bool {
        self.contacts
            .get(&key(email))
            .is_some_and(|c| c.lists.contains(list))
    }
}

/// A signed-in notification-server connection.
#[derive(Debug, Clone)]
pub struct Presence {
    pub conn_id: u64,
    pub tx: Tx,
    /// `Offline` until the first `CHG`.
    pub status: Status,
    pub client_id: u32,
    /// The display picture announced with the last `CHG` (its fifth
    /// parameter), URL-encoded exactly as received; `None` when that `CHG`
    /// had none.
    pub msn_object: Option<String>,
}

/// Longest `CHG` MSNObject parameter kept (URL-encoded; the XML itself is
/// a few hundred bytes, and `msn-proto` reads at most 4 KiB of it).
pub const MAX_MSN_OBJECT_PARAM: usize = 3 * 4096;

/// Permission to enter a switchboard, named by a cookie.
#[derive(Debug, Clone)]
pub struct SbGrant {
    pub email: String,
    /// `None`: a new session (`XFR SB` + `USR`); `Some`: invited (`RNG` + `ANS`).
    pub session: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Participant {
    pub email: String,
    pub conn_id: u64,
    pub tx: Tx,
}

#[derive(Debug)]
pub struct Addrs {
    pub dispatch: SocketAddr,
    pub notification: SocketAddr,
    pub switchboard: SocketAddr,
    pub http: SocketAddr,
}

#[derive(Debug)]
pub struct Directory {
    pub config: Config,
    pub addrs: Addrs,
    pub accounts: HashMap<String, Account>,
    pub online: HashMap<String, Presence>,
    tickets: HashMap<String, (String, Instant)>,
    pub sb_grants: HashMap<String, SbGrant>,
    grant_times: HashMap<String, Instant>,
    pub sessions: HashMap<u64, Vec<Participant>>,
    /// Connections to the HTTP port that opened with a TLS handshake.
    pub tls_hellos: u64,
    next_id: u64,
    random: std::collections::hash_map::RandomState,
}

/// Emails compare case-insensitively.
pub fn key(email: &str) -> String {
    email.to_ascii_lowercase()
}

impl Directory {
    pub fn new(config: Config, addrs: Addrs) -> Directory {
        let mut accounts = HashMap::new();
        for u in &config.users {
            let mut groups = BTreeMap::new();
            groups.insert(0, "Other Contacts".to_string());
            for g in &u.groups {
                groups.insert(g.id, g.name.clone());
            }
            let mut contacts = BTreeMap::new();
            for c in &u.contacts {
                let mut lists = ListBits::default();
                for l in c
                    .lists
                    .iter()
                    .filter_map(|l| List::from_code(&l.to_ascii_uppercase()))
                {
                    lists.insert(l);
                }
                contacts.insert(
                    key(&c.email),
                    ContactRecord {
                        nick: c.nick.clone().unwrap_or_default(),
                        lists,
                        groups: c.groups.clone(),
                    },
                );
            }
            accounts.insert(
                key(&u.email),
                Account {
                    email: u.email.clone(),
                    password: u.password.clone(),
                    friendly_name: u.friendly_name.clone().unwrap_or_else(|| u.email.clone()),
                    version: 1,
                    groups,
                    contacts,
                    login_redirect: u.login_redirect,
                },
            );
        }
        // Fill in nicks and derive RL from everyone's FL.
        let names: HashMap<String, String> = accounts
            .iter()
            .map(|(k, a)| (k.clone(), a.friendly_name.clone()))
            .collect();
        let mut reverse = Vec::new();
        for (owner, acc) in accounts.iter_mut() {
            for (email, c) in acc.contacts.iter_mut() {
                if c.nick.is_empty() {
                    c.nick = names.get(email).cloned().unwrap_or_else(|| email.clone());
                }
                if c.lists.contains(List::Forward) {
                    reverse.push((email.clone(), owner.clone()));
                }
            }
        }
        for (target, owner) in reverse {
            let owner_name = names.get(&owner).cloned().unwrap_or_else(|| owner.clone());
            if let Some(acc) = accounts.get_mut(&target) {
                let entry = acc.contacts.entry(owner.clone()).or_insert(ContactRecord {
                    nick: owner_name,
                    lists: ListBits::default(),
                    groups: Vec::new(),
                });
                entry.lists.insert(List::Reverse);
            }
        }
        Directory {
            config,
            addrs,
            accounts,
            online: HashMap::new(),
            tickets: HashMap::new(),
            sb_grants: HashMap::new(),
            grant_times: HashMap::new(),
            sessions: HashMap::new(),
            tls_hellos: 0,
            next_id: 1,
            random: std::collections::hash_map::RandomState::new(),
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// An unpredictable token (tickets, cookies, challenges).
    pub fn token(&mut self) -> String {
        let id = self.next_id();
        let mut h = self.random.build_hasher();
        h.write_u64(id);
        let a = h.finish();
        h.write_u64(a);
        format!("{a:016x}{:016x}", h.finish())
    }

    pub fn issue_ticket(&mut self, email: &str) -> String {
        let now = Instant::now();
        self.tickets
            .retain(|_, (_, at)| now.duration_since(*at) < TICKET_LIFETIME);
        let t = self.token();
        let ticket = format!("t={}&p={}", &t[..16], &t[16..]);
        self.tickets.insert(ticket.clone(), (key(email), now));
        ticket
    }

    /// Consumes a ticket; true if it was issued for `email` and is fresh.
    pub fn redeem_ticket(&mut self, ticket: &str, email: &str) -> bool {
        match self.tickets.remove(ticket) {
            Some((owner, at)) => owner == key(email) && at.elapsed() < TICKET_LIFETIME,
            None => false,
        }
    }

    /// Records a switchboard cookie; unused ones expire after [`GRANT_LIFETIME`].
    pub fn grant(&mut self, cookie: String, grant: SbGrant) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .grant_times
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= GRANT_LIFETIME)
            .map(|(c, _)| c.clone())
            .collect();
        for c in expired {
            self.grant_times.remove(&c);
            self.sb_grants.remove(&c);
        }
        self.grant_times.insert(cookie.clone(), now);
        self.sb_grants.insert(cookie, grant);
    }

    pub fn friendly_name(&self, email: &str) -> String {
        self.accounts
            .get(&key(email))
            .map_or_else(|| email.to_string(), |a| a.friendly_name.clone())
    }

    /// The status `viewer` sees for `email`: offline when hidden, blocked or signed out.
    pub fn visible_status(&self, email: &str, viewer: &str) -> Option<(Status, u32)> {
        let p = self.online.get(&key(email))?;
        if !p.status.is_visible() {
            return None;
        }
        let acc = self.accounts.get(&key(email))?;
        if acc.on(List::Block, viewer) {
            return None;
        }
        Some((p.status, p.client_id))
    }

    /// The MSNObject `email` announced with its last `CHG`, as received.
    pub fn msn_object(&self, email: &str) -> Option<&str> {
        self.online.get(&key(email))?.msn_object.as_deref()
    }

    /// Online users who have `email` on their FL.
    pub fn watchers(&self, email: &str) -> Vec<(String, Tx)> {
        self.online
            .iter()
            .filter(|(k, _)| **k != key(email))
            .filter(|(k, _)| {
                self.accounts
                    .get(*k)
                    .is_some_and(|a| a.on(List::Forward, email))
            })
            .map(|(k, p)| (k.clone(), p.tx.clone()))
            .collect()
    }

    /// The line a watcher should get about `email` now: `NLN` or `FLN`.
    pub fn presence_line(&self, email: &str, viewer: &str) -> Vec<u8> {
        let mut out = Vec::new();
        match self.visible_status(email, viewer) {
            Some((status, id)) => {
                let nick = url_encode(&self.friendly_name(email));
                let id = id.to_string();
                // Messenger 6.x: `NLN <status> <email> <friendly> <clientid>
                // <msnobj>`, the object URL-encoded as the contact sent it.
                let mut params = vec![status.code(), email, &nick, &id];
                if let Some(o) = self.msn_object(email) {
                    params.push(o);
                }
                msn_proto::encode_command(&mut out, "NLN", None, &params, None);
            }
            None => msn_proto::encode_command(&mut out, "FLN", None, &[email], None),
        }
        out
    }

    /// Tells every watcher of `email` its current presence.
    pub fn broadcast_presence(&self, email: &str) {
        for (viewer, tx) in self.watchers(email) {
            let _ = tx.send(Outbound::Bytes(self.presence_line(email, &viewer)));
        }
    }

    pub fn send_to(&self, email: &str, bytes: Vec<u8>) -> bool {
        match self.online.get(&key(email)) {
            Some(p) => p.tx.send(Outbound::Bytes(bytes)).is_ok(),
            None => false,
        }
    }
}
