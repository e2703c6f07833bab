//! The XMPP front at run time: the component links, what the core asks of a front
//! ([`Front`]), and the state only XMPP needs (the presence last shown per contact).
//!
//! Users are `xmpp:<bare JID>`. Everything the bridge sends a user goes to the bare JID
//! (the server hands it to the user's resources, or keeps chat messages offline), except
//! room traffic, which goes to each joined resource ([`super::rooms`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Notify};
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{BareJid, Jid};

use super::jid::Domains;
use super::link::{Incoming, Link, LinkConfig};
use super::{convert, presence as xpresence};
use crate::config::XmppConfig;
use crate::core::front::{BoxFuture, Failure, Front};
use crate::core::{Bridge, ChatId, LoginKey, LoginState, NetworkEvent, NetworkId, Presence};
use crate::core::{Contact, FormattedText, Group, MessageKind, PresenceState};
use crate::fronts::downloads::FileLinks;
use crate::model::XMPP_USER_PREFIX;
use crate::model::{OutboxEntry, OutboxItem};
use crate::store::Subscription;

/// Stanzas read from the links and not handled yet, at most (a full queue stops the
/// links reading: the server holds the rest).
const INCOMING_CAPACITY: usize = 512;
/// A message that waited longer than this in the outbox (the XMPP server was down) gets
/// a delay stamp with the time the bridge received it.
const LATE_MS: u64 = 10_000;

pub struct XmppFront {
    core: Arc<Bridge>,
    pub(crate) domains: Domains,
    /// The links, by component domain.
    links: HashMap<String, Link>,
    /// The presence each user was last shown of each contact: (user, network, contact).
    presences: Mutex<HashMap<(String, NetworkId, String), Presence>>,
    /// Serialises contact presence updates (see [`Front::presence`]).
    presence_order: tokio::sync::Mutex<()>,
    /// The presence of each of the user's resources, as sent to each gateway.
    resources: Mutex<HashMap<(String, NetworkId), HashMap<String, Presence>>>,
    /// The user's status last passed to each login, so a repeated presence does nothing.
    user_status: Mutex<HashMap<(String, NetworkId), Presence>>,
    pub(crate) inbox: super::inbox::Inbox,
    pub(crate) rooms: super::rooms::Rooms,
    /// Set once the logins are resumed: stanzas wait until then.
    started: Notify,
    /// The bridge is stopping: users were shown everything offline, and no presence
    /// follows that would contradict it.
    stopping: std::sync::atomic::AtomicBool,
    /// Links to the files legacy contacts send (`xmpp.file_links`), if configured.
    files: Option<FileLinks>,
    /// IQ requests the front sent, waiting for their answer, by id.
    waiting_iqs: Mutex<HashMap<String, tokio::sync::oneshot::Sender<Iq>>>,
    /// The photo hash each user's login on a network was given (this run: a login
    /// started after a restart has none yet).
    own_photos: Mutex<HashMap<(String, NetworkId), String>>,
}

impl std::ops::Deref for XmppFront {
    type Target = Bridge;
    fn deref(&self) -> &Bridge {
        &self.core
    }
}

/// The user id of a bare JID.
pub fn user_of(jid: &BareJid) -> String {
    format!("{XMPP_USER_PREFIX}{jid}")
}

/// The bare JID of a user id of this front.
pub fn jid_of(user: &str) -> Option<BareJid> {
    user.strip_prefix(XMPP_USER_PREFIX)?.parse().ok()
}

impl XmppFront {
    /// Builds the front and starts its links (one per enabled network's gateway, one for
    /// the rooms); stanzas are handled once [`XmppFront::start`] is called.
    pub fn connect(core: Arc<Bridge>, config: &XmppConfig) -> anyhow::Result<Arc<XmppFront>> {
        let domains = Domains::new(&config.domain)?.with_conference(&config.rooms_domain())?;
        let mut components: Vec<String> = core
            .config
            .enabled_networks()
            .map(|(n, _)| domains.network(n).to_string())
            .collect();
        components.push(domains.conference().to_string());
        let (tx, rx) = mpsc::channel(INCOMING_CAPACITY);
        let links: HashMap<String, Link> = components
            .iter()
            .enumerate()
            .map(|(i, domain)| {
                let link = Link::start(
                    LinkConfig {
                        domain: domain.clone(),
                        server_domain: config.domain.clone(),
                        address: config.component_address.clone(),
                        secret: config.secret.clone(),
                    },
                    i,
                    tx.clone(),
                );
                (domain.clone(), link)
            })
            .collect();
        let files = match &config.file_links {
            Some(f) => Some(serve_files(&core, f)?),
            None => None,
        };
        let front = Arc::new(XmppFront {
            files,
            waiting_iqs: Mutex::default(),
            own_photos: Mutex::default(),
            core,
            domains,
            links,
            presences: Mutex::default(),
            presence_order: tokio::sync::Mutex::new(()),
            resources: Mutex::default(),
            user_status: Mutex::default(),
            inbox: Default::default(),
            rooms: Default::default(),
            started: Notify::new(),
            stopping: Default::default(),
        });
        tokio::spawn(front.clone().dispatch(components, rx));
        Ok(front)
    }

    /// Replays what users sent before a stop, then handles stanzas (call after the
    /// logins are resumed, so a replayed message finds its login).
    pub fn start(&self) {
        self.started.notify_one();
    }

    pub fn core(&self) -> &Arc<Bridge> {
        &self.core
    }

    /// The bridge stops: each user sees every contact shown available, and every
    /// gateway they have a login at, go offline (XEP-0100 §6), rather than keep the last
    /// presence while nothing is behind it. Resolves once the server has them.
    pub async fn shutdown(&self) {
        let _order = self.presence_order.lock().await;
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut by_network: BTreeMap<NetworkId, Vec<Stanza>> = BTreeMap::new();
        let shown: Vec<(String, NetworkId, String)> = self
            .presences
            .lock()
            .expect("presences lock")
            .iter()
            .filter(|(_, p)| p.state != PresenceState::Offline)
            .map(|(key, _)| key.clone())
            .collect();
        for (user, network, contact) in shown {
            if let (Some(to), Some(from)) = (jid_of(&user), self.contact_jid(network, &contact)) {
                by_network
                    .entry(network)
                    .or_default()
                    .push(xpresence::presence(from, to, None).into());
            }
        }
        for login in self.store.logins().unwrap_or_default() {
            if let Some(to) = jid_of(&login.user) {
                by_network
                    .entry(login.network)
                    .or_default()
                    .push(xpresence::presence(self.gateway(login.network), to, None).into());
            }
        }
        for (network, stanzas) in by_network {
            let count = stanzas.len();
            if let Err(e) = self.deliver_stanzas(stanzas).await {
                tracing::warn!(%network, count, "could not show users the bridge going offline: {e}");
            }
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn dispatch(
        self: Arc<Self>,
        components: Vec<String>,
        mut rx: mpsc::Receiver<(usize, Incoming)>,
    ) {
        self.started.notified().await;
        self.inbox.replay(&self);
        while let Some((index, incoming)) = rx.recv().await {
            let component = &components[index];
            match incoming {
                Incoming::Stanza(stanza) => super::inbound::handle(&self, *stanza).await,
                Incoming::Invalid {
                    kind,
                    header,
                    error,
                } => super::inbound::invalid(&self, component, kind, &header, &error).await,
                Incoming::Up => self.link_up(component).await,
            }
        }
    }

    /// The link that sends stanzas from `from` (its domain is a component's).
    fn link_for(&self, from: &Jid) -> Option<&Link> {
        self.links.get(from.domain().as_str())
    }

    /// Sends a stanza that needs no confirmation (dropped while its link is down).
    pub(crate) async fn send(&self, stanza: impl Into<Stanza>) {
        let stanza = stanza.into();
        let from = stanza_from(&stanza);
        match from.as_ref().and_then(|f| self.link_for(f)) {
            Some(link) => link.send(stanza).await,
            None => tracing::error!(?from, "no component link sends from this address"),
        }
    }

    /// Sends stanzas (all from one component) and resolves once the server has them.
    pub(crate) async fn deliver_stanzas(&self, stanzas: Vec<Stanza>) -> Result<(), Failure> {
        let Some(from) = stanzas.first().and_then(stanza_from) else {
            return Ok(());
        };
        match self.link_for(&from) {
            Some(link) => link.deliver(stanzas).await,
            None => Err(Failure::permanent(format!(
                "no component link sends from {from}"
            ))),
        }
    }

    pub(crate) fn gateway(&self, network: NetworkId) -> Jid {
        self.domains.network(network).clone().into()
    }

    pub(crate) fn contact_jid(&self, network: NetworkId, id: &str) -> Option<BareJid> {
        match self.domains.contact(network, id) {
            Ok(jid) => Some(jid),
            Err(e) => {
                tracing::debug!("no JID for a contact: {e}");
                None
            }
        }
    }

    /// A chat message from a network's gateway to a user.
    pub(crate) fn gateway_message(&self, network: NetworkId, to: &BareJid, text: &str) -> Stanza {
        convert::chat_message(
            self.gateway(network),
            to.clone(),
            &uuid_like(),
            MessageKind::Text,
            &FormattedText::plain(text),
        )
        .into()
    }

    /// What the user sees of their login on `network` as the gateway's presence.
    pub(crate) fn gateway_presence(&self, user: &str, network: NetworkId) -> Option<Presence> {
        match self.core.login_state(user, network) {
            Some(LoginState::Connected) => Some(Presence {
                state: PresenceState::Online,
                status: None,
            }),
            Some(LoginState::Connecting) => Some(Presence {
                state: PresenceState::Away,
                status: Some("Connecting…".into()),
            }),
            Some(LoginState::Disconnected(reason)) => Some(Presence {
                state: PresenceState::Offline,
                status: Some(reason),
            }),
            None => None,
        }
    }

    pub(crate) async fn send_gateway_presence(&self, user: &str, network: NetworkId) {
        let Some(to) = jid_of(user) else { return };
        if self.stopping() {
            return;
        }
        let shown = self.gateway_presence(user, network);
        self.send(xpresence::presence(
            self.gateway(network),
            to,
            shown.as_ref(),
        ))
        .await;
    }

    /// The presence last shown of a contact.
    pub(crate) fn contact_presence(
        &self,
        user: &str,
        network: NetworkId,
        contact: &str,
    ) -> Option<Presence> {
        self.presences
            .lock()
            .expect("presences lock")
            .get(&(user.to_owned(), network, contact.to_owned()))
            .cloned()
    }

    pub(crate) async fn send_contact_presence(&self, user: &str, network: NetworkId, id: &str) {
        let (Some(to), Some(from)) = (jid_of(user), self.contact_jid(network, id)) else {
            return;
        };
        let shown = self.contact_presence(user, network, id);
        let mut stanza = xpresence::presence(from, to, shown.as_ref());
        if stanza.type_ == xmpp_parsers::presence::Type::None {
            if let Ok(Some(avatar)) = self.store.avatar(network, id) {
                stanza.payloads.push(super::vcard::photo_update(&avatar));
            }
        }
        self.send(stanza).await;
    }

    /// Asks the user to add a contact (or the gateway: `id` ""), once: a `subscribe` with
    /// the contact's nickname. Not again after the user removed it. True when asked now.
    pub(crate) async fn offer(
        &self,
        user: &str,
        network: NetworkId,
        id: &str,
        nick: Option<&str>,
    ) -> bool {
        let Some(to) = jid_of(user) else {
            return false;
        };
        let sub = self
            .store
            .xmpp_subscription(user, network, id)
            .unwrap_or_default();
        if sub.offered || sub.removed {
            return false;
        }
        let from: Jid = if id.is_empty() {
            self.gateway(network)
        } else {
            match self.contact_jid(network, id) {
                Some(jid) => jid.into(),
                None => return false,
            }
        };
        self.send(xpresence::subscribe(from, to, nick)).await;
        self.set_subscription(
            user,
            network,
            id,
            Subscription {
                offered: true,
                removed: false,
            },
        );
        true
    }

    /// Suggests contacts newly offered to the user's roster with roster item exchange
    /// (XEP-0144), in their legacy groups: clients that support it add them in one step;
    /// the others ignore it and answer the `subscribe` requests.
    async fn suggest(
        &self,
        user: &str,
        network: NetworkId,
        contacts: &[Contact],
        groups: &[Group],
    ) {
        let Some(to) = jid_of(user) else { return };
        let (items, skipped) = super::roster::items(&self.domains, network, contacts, groups);
        if !skipped.is_empty() {
            self.core.notify(
                user,
                Some(network),
                &format!(
                    "These contacts have no XMPP address and cannot be shown: {}",
                    skipped.join(", ")
                ),
            );
        }
        if items.is_empty() {
            return;
        }
        let message = super::roster::suggestion(self.gateway(network), to, &uuid_like(), &items);
        self.send(message).await;
    }

    pub(crate) fn set_subscription(
        &self,
        user: &str,
        network: NetworkId,
        id: &str,
        sub: Subscription,
    ) {
        if let Err(e) = self.store.set_xmpp_subscription(user, network, id, &sub) {
            tracing::error!("could not record a subscription: {e}");
        }
        self.store.flush_soon();
    }

    /// One of the user's resources sent its presence to the gateway of `network`: the
    /// login shows the most available of the user's resources (online, then busy, then
    /// away); with none left online on XMPP it shows away and stays connected.
    pub(crate) async fn user_presence(
        &self,
        user: &str,
        network: NetworkId,
        resource: &str,
        presence: Presence,
    ) {
        let shown = {
            let mut all = self.resources.lock().expect("resources lock");
            let resources = all.entry((user.to_owned(), network)).or_default();
            if presence.state == PresenceState::Offline {
                resources.remove(resource);
            } else {
                resources.insert(resource.to_owned(), presence.clone());
            }
            let rank = |p: &Presence| match p.state {
                PresenceState::Online => 0,
                PresenceState::Busy => 1,
                PresenceState::Away => 2,
                PresenceState::Invisible | PresenceState::Offline => 3,
            };
            match resources.values().min_by_key(|p| rank(p)) {
                Some(best) => best.clone(),
                None => Presence {
                    state: PresenceState::Away,
                    status: presence.status,
                },
            }
        };
        let Some(handle) = self.login_handle(user, network) else {
            return;
        };
        {
            let mut last = self.user_status.lock().expect("user status lock");
            let key = (user.to_owned(), network);
            if last.get(&key) == Some(&shown) {
                return;
            }
            last.insert(key, shown.clone());
        }
        let result = handle
            .request(|reply| crate::core::LoginCommand::SetPresence {
                presence: shown,
                reply,
            })
            .await;
        if let Err(e) = result {
            tracing::debug!(%user, %network, "could not set the status: {e}");
        }
    }

    /// A link came (back) up: the server forgot the presences it had from this
    /// component; show them again. And ask each user's presence (RFC 6121 §4.3): what
    /// their clients sent while the link was down bounced, so the legacy status follows
    /// the answers, not what the bridge last knew.
    async fn link_up(&self, component: &str) {
        tracing::info!(%component, "XMPP component connected");
        let Some(network) = self.domains.network_of(component) else {
            return;
        };
        let users: Vec<String> = match self.store.logins() {
            Ok(records) => records
                .into_iter()
                .filter(|r| r.network == network && self.serves(&r.user))
                .map(|r| r.user)
                .collect(),
            Err(e) => {
                tracing::error!("could not read the logins: {e}");
                return;
            }
        };
        for user in users {
            self.send_gateway_presence(&user, network).await;
            if let Some(to) = jid_of(&user) {
                self.resources
                    .lock()
                    .expect("resources lock")
                    .remove(&(user.clone(), network));
                let probe =
                    xmpp_parsers::presence::Presence::new(xmpp_parsers::presence::Type::Probe)
                        .with_from(self.gateway(network))
                        .with_to(to);
                self.send(probe).await;
            }
            let known: Vec<String> = self
                .presences
                .lock()
                .expect("presences lock")
                .keys()
                .filter(|(u, n, _)| *u == user && *n == network)
                .map(|(_, _, c)| c.clone())
                .collect();
            for contact in known {
                self.send_contact_presence(&user, network, &contact).await;
            }
        }
    }

    async fn show_login_event(&self, key: &LoginKey, event: &NetworkEvent) -> anyhow::Result<()> {
        let (user, net) = (&key.user, key.network);
        let Some(to) = jid_of(user) else {
            return Ok(());
        };
        match event {
            NetworkEvent::Connected { .. } => {
                let _ = self.offer(user, net, "", None).await;
                self.send_gateway_presence(user, net).await;
            }
            NetworkEvent::Disconnected { reason, .. } | NetworkEvent::LoginFailed { reason } => {
                let shown = Presence {
                    state: PresenceState::Offline,
                    status: Some(reason.clone()),
                };
                self.send(xpresence::presence(
                    self.gateway(net),
                    to.clone(),
                    Some(&shown),
                ))
                .await;
                // The contacts are unknown until the login is back.
                let gone: Vec<String> = {
                    let mut presences = self.presences.lock().expect("presences lock");
                    let keys: Vec<_> = presences
                        .keys()
                        .filter(|(u, n, _)| u == user && *n == net)
                        .cloned()
                        .collect();
                    keys.into_iter()
                        .filter_map(|k| presences.remove(&k).map(|_| k.2))
                        .collect()
                };
                for contact in gone {
                    if let Some(from) = self.contact_jid(net, &contact) {
                        self.send(xpresence::presence(from, to.clone(), None)).await;
                    }
                }
                self.user_status
                    .lock()
                    .expect("user status lock")
                    .remove(&(user.clone(), net));
            }
            NetworkEvent::ContactList { contacts, groups } => {
                let mut new = Vec::new();
                for contact in contacts {
                    let name = contact.display_name.as_deref();
                    if self.offer(user, net, &contact.id, name).await {
                        new.push(contact.clone());
                    }
                }
                self.suggest(user, net, &new, groups).await;
            }
            NetworkEvent::ContactChanged(contact) => {
                let name = contact.display_name.as_deref();
                if self.offer(user, net, &contact.id, name).await {
                    let groups = self.store.groups(user, net).unwrap_or_default();
                    self.suggest(user, net, std::slice::from_ref(contact), &groups)
                        .await;
                }
            }
            // The natural XMPP form of the request: the contact asks to subscribe, with
            // its nickname; the user's answer is the grant or the refusal (inbound.rs).
            NetworkEvent::AuthorizationRequest(request) => {
                if let Some(from) = self.contact_jid(net, &request.who) {
                    self.send(xpresence::subscribe(from, to, request.nick.as_deref()))
                        .await;
                }
            }
            NetworkEvent::Typing {
                chat: ChatId::Direct(_),
                who,
                typing,
            } => {
                if let Some(from) = self.contact_jid(net, who) {
                    self.send(convert::chat_state(from, to, *typing)).await;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends an IQ request and waits (15 s at most) for its answer.
    async fn request(&self, iq: Iq) -> Option<Iq> {
        let id = match &iq {
            Iq::Get { id, .. } | Iq::Set { id, .. } => id.clone(),
            _ => return None,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.waiting_iqs
            .lock()
            .expect("waiting iqs")
            .insert(id.clone(), tx);
        self.send(iq).await;
        let answer = tokio::time::timeout(std::time::Duration::from_secs(15), rx).await;
        self.waiting_iqs.lock().expect("waiting iqs").remove(&id);
        answer.ok().and_then(Result::ok)
    }

    /// The answer to an IQ request the front sent (others are dropped).
    pub(crate) fn answered(&self, iq: Iq) {
        let id = match &iq {
            Iq::Result { id, .. } | Iq::Error { id, .. } => id.clone(),
            _ => return,
        };
        if let Some(waiting) = self.waiting_iqs.lock().expect("waiting iqs").remove(&id) {
            let _ = waiting.send(iq);
        }
    }

    /// A user's presence to a gateway announced their photo (XEP-0153, `hash`; empty:
    /// none): a new one is fetched from their vCard (XEP-0054) and becomes their picture
    /// on the network.
    pub(crate) fn user_photo(
        self: &Arc<Self>,
        user: &str,
        net: NetworkId,
        jid: &BareJid,
        hash: String,
    ) {
        let key = (user.to_owned(), net);
        {
            let mut photos = self.own_photos.lock().expect("own photos");
            if photos.get(&key) == Some(&hash) {
                return;
            }
            photos.insert(key.clone(), hash.clone());
        }
        let front = self.clone();
        let (user, jid) = (user.to_owned(), jid.clone());
        tokio::spawn(async move {
            let avatar = if hash.is_empty() {
                None
            } else {
                let get = Iq::Get {
                    from: Some(front.gateway(net)),
                    to: Some(jid.into()),
                    id: uuid_like(),
                    payload: xmpp_parsers::minidom::Element::builder("vCard", "vcard-temp").build(),
                };
                match front.request(get).await {
                    Some(Iq::Result {
                        payload: Some(vcard),
                        ..
                    }) => {
                        let avatar = super::vcard::photo_of(vcard, &hash);
                        if avatar.is_none() {
                            tracing::info!(%user, "the user's vCard photo is not a PNG, JPEG, GIF or BMP within bounds: not shared");
                        }
                        avatar
                    }
                    other => {
                        tracing::info!(%user, "could not read the user's vCard: {other:?}");
                        // Asked again at the next presence that announces it.
                        front
                            .own_photos
                            .lock()
                            .expect("own photos")
                            .remove(&(user.clone(), net));
                        return;
                    }
                }
            };
            front.set_own_avatar(&user, net, avatar);
        });
    }

    /// What a file from a contact reads as: its link (`Text`), or without file links a
    /// line that names it (`Notice`).
    pub(crate) fn file_text(&self, file: u64, name: &str, size: u64) -> (MessageKind, String) {
        match &self.files {
            Some(links) => (MessageKind::Text, links.link(file, name)),
            None => (
                MessageKind::Notice,
                format!(
                    "(sent the file {name} ({}), which this bridge does not pass on to XMPP: \
                     its operator has not set up file links)",
                    crate::core::size_text(size)
                ),
            ),
        }
    }

    /// A file from a contact: a message whose body is the link (clients show such a
    /// message as the file) with the link as XEP-0066 out-of-band data; without file
    /// links, a line that names it.
    fn file_message(
        &self,
        from: Jid,
        to: BareJid,
        entry: &OutboxEntry,
        (file, name, size): (u64, &str, u64),
    ) -> xmpp_parsers::message::Message {
        let (kind, text) = self.file_text(file, name, size);
        let text = FormattedText::plain(text);
        let mut message = convert::chat_message(from, to, &entry.txn_id, kind, &text);
        if kind != MessageKind::Text {
            return message;
        }
        let url = text.plain;
        message.payloads.push(
            xmpp_parsers::oob::Oob {
                url,
                desc: Some(format!("{name} ({})", crate::core::size_text(size))),
            }
            .into(),
        );
        message
    }

    async fn deliver_entry(&self, entry: &OutboxEntry) -> Result<Vec<String>, Failure> {
        let net = entry.network;
        let ChatId::Direct(contact) = &entry.chat else {
            return super::rooms::deliver(self, entry).await;
        };
        let to = jid_of(&entry.user)
            .ok_or_else(|| Failure::permanent(format!("{} is not an XMPP user", entry.user)))?;
        let Some(from) = self.contact_jid(net, contact) else {
            return Err(Failure::permanent(format!(
                "{contact} cannot be written as an XMPP address"
            )));
        };
        let stanza: Stanza = match &entry.item {
            OutboxItem::Message {
                kind,
                plain,
                html,
                sent_at,
                offline,
                ..
            } => {
                let text = FormattedText {
                    plain: plain.clone(),
                    html: html.clone(),
                };
                let message = convert::chat_message(from, to, &entry.txn_id, *kind, &text);
                stamped(self, message, net, entry, *sent_at, *offline).into()
            }
            OutboxItem::File {
                file,
                name,
                size,
                sent_at,
                ..
            } => {
                let message = self.file_message(from.into(), to, entry, (*file, name, *size));
                stamped(self, message, net, entry, *sent_at, false).into()
            }
            OutboxItem::Notice { text } => self.gateway_message(net, &to, text),
            OutboxItem::Members { .. } | OutboxItem::Left => return Ok(Vec::new()),
        };
        self.deliver_stanzas(vec![stanza]).await?;
        Ok(Vec::new())
    }
}

/// Starts the listener of the file links; the links' maker.
fn serve_files(
    core: &Bridge,
    config: &crate::config::FileLinksConfig,
) -> anyhow::Result<FileLinks> {
    use anyhow::Context;
    let links = FileLinks::new(
        core.store.media_key().context("the file link key")?,
        &config.public_url,
        std::time::Duration::from_secs(config.lifetime_seconds),
        core.store.clone(),
    );
    let addr = format!("{}:{}", config.address, config.port);
    let listener = std::net::TcpListener::bind(&addr)
        .with_context(|| format!("listening for file links on {addr} (xmpp.file_links)"))?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let app = axum::Router::new()
        .route(
            // The link is read whole, raw, by `FileLinks::check`.
            "/_retrobridge/file/{*link}",
            axum::routing::get(FileLinks::serve),
        )
        .with_state(links.clone());
    tracing::info!("XMPP file links served on {addr}");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the file link listener stopped: {e}");
        }
    });
    Ok(links)
}

/// Who a stanza is from (its link is that domain's).
fn stanza_from(stanza: &Stanza) -> Option<Jid> {
    match stanza {
        Stanza::Message(m) => m.from.clone(),
        Stanza::Presence(p) => p.from.clone(),
        Stanza::Iq(iq) => iq.from().cloned(),
    }
}

/// `message` with a delay stamp when it was stored by the legacy server (offline) or
/// waited in the outbox (the XMPP server was away).
pub(crate) fn stamped(
    front: &XmppFront,
    message: xmpp_parsers::message::Message,
    network: NetworkId,
    entry: &OutboxEntry,
    sent_at: Option<u64>,
    offline: bool,
) -> xmpp_parsers::message::Message {
    let gateway = front.gateway(network);
    if offline {
        let at = sent_at.unwrap_or(entry.received_ms);
        convert::with_delay(message, gateway, at, Some("Offline Storage"))
    } else if crate::core::now_ms().saturating_sub(entry.received_ms) > LATE_MS {
        convert::with_delay(message, gateway, entry.received_ms, Some("Delayed"))
    } else {
        message
    }
}

/// A fresh stanza id.
pub(crate) fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "rbx{}.{}",
        crate::core::now_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Front for XmppFront {
    fn name(&self) -> &'static str {
        "xmpp"
    }

    fn serves(&self, user: &str) -> bool {
        user.starts_with(XMPP_USER_PREFIX)
    }

    fn keeps_files(&self) -> Option<std::time::Duration> {
        self.files.as_ref().map(|f| f.lifetime)
    }

    fn is_ours(&self, user: &str) -> bool {
        // The bridge's own addresses are on its component domains.
        jid_of(user).is_some_and(|jid| self.links.contains_key(jid.domain().as_str()))
    }

    fn deliver<'a>(
        &'a self,
        _key: &'a [u8],
        entry: &'a mut OutboxEntry,
        _uncertain: bool,
    ) -> BoxFuture<'a, Result<Vec<String>, Failure>> {
        Box::pin(async move { self.deliver_entry(entry).await })
    }

    fn login_event<'a>(
        &'a self,
        login: &'a LoginKey,
        event: &'a NetworkEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.show_login_event(login, event))
    }

    fn presence<'a>(
        &'a self,
        login: &'a LoginKey,
        who: &'a str,
        presence: &'a Presence,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // One at a time: two updates of a contact in flight at once must not reach
            // the server in the wrong order.
            let _order = self.presence_order.lock().await;
            if self.stopping() {
                return;
            }
            self.presences.lock().expect("presences lock").insert(
                (login.user.clone(), login.network, who.to_owned()),
                presence.clone(),
            );
            self.send_contact_presence(&login.user, login.network, who)
                .await;
        })
    }

    /// The contact's presence again, now with the photo's hash (XEP-0153), once per
    /// picture: the client then asks for the vCard.
    fn contact_avatar<'a>(
        &'a self,
        login: &'a LoginKey,
        who: &'a str,
        hash: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let what = format!("photo\0{}\0{who}", login.network);
            if self
                .store
                .last_set(&login.user, &what)
                .ok()
                .flatten()
                .as_deref()
                == Some(hash)
            {
                return;
            }
            let _order = self.presence_order.lock().await;
            self.send_contact_presence(&login.user, login.network, who)
                .await;
            if let Err(e) = self.store.put_last_set(&login.user, &what, hash) {
                tracing::error!("could not record a photo as shown: {e}");
            }
        })
    }

    fn notice_place(&self, user: &str, network: Option<NetworkId>) -> Option<String> {
        let jid = jid_of(user)?;
        let network = network.or_else(|| self.config.enabled_networks().map(|(n, _)| n).next())?;
        Some(format!("{} {jid}", network.as_str()))
    }

    fn send_notice<'a>(
        &'a self,
        place: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let (network, jid) = place
                .split_once(' ')
                .and_then(|(n, j)| Some((NetworkId::parse(n)?, j.parse::<BareJid>().ok()?)))
                .ok_or_else(|| Failure::permanent(format!("not a notice place: {place}")))?;
            let stanza = self.gateway_message(network, &jid, text);
            self.deliver_stanzas(vec![stanza]).await
        })
    }

    fn inbound_pending(&self) -> usize {
        self.inbox.len()
    }

    fn open_chat<'a>(
        &'a self,
        user: &'a str,
        network: NetworkId,
        contact: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let id = network.canonical_id(contact);
            let jid = self
                .contact_jid(network, &id)
                .ok_or_else(|| format!("{id} cannot be written as an XMPP address."))?;
            let mut sub = self
                .store
                .xmpp_subscription(user, network, &id)
                .unwrap_or_default();
            sub.removed = false;
            sub.offered = false;
            self.set_subscription(user, network, &id, sub);
            let _ = self.offer(user, network, &id, None).await;
            Ok(format!("Write to {jid} to chat with {id}."))
        })
    }
}
