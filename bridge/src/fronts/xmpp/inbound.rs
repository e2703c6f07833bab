//! What XMPP users send the bridge: IQs (discovery, registration, the gateway's id
//! translation, ad-hoc commands, pings), presences (subscriptions, the user's status,
//! room joins and leaves) and messages (to contacts and rooms: through the inbox; to the
//! gateway: text commands).

use std::sync::Arc;

use tokio_xmpp::xmlstream::RawStanzaHeader;
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use super::adhoc::{self, Command, CommandRequest, FormDefaults};
use super::errors::{message_error, presence_error, stanza_error};
use super::front::{user_of, uuid_like, XmppFront};
use super::inbox::Request;
use super::iq::{self, IqRequest};
use super::jid::Address;
use super::register::{self, Registration};
use super::{convert, disco, gateway, muc, presence as xpresence};
use crate::config::Permission;
use crate::core::{
    accounts, commands, ChatId, FormattedText, LoginCommand, LoginState, MessageKind, NetworkId,
    Presence as CorePresence,
};
use crate::store::Subscription;

pub(crate) async fn handle(front: &Arc<XmppFront>, stanza: Stanza) {
    match stanza {
        Stanza::Iq(iq) => iq_request(front, iq).await,
        Stanza::Message(m) => message(front, m).await,
        Stanza::Presence(p) => presence(front, p).await,
    }
}

/// A stanza `xmpp-parsers` could not read: an IQ request gets an error (its sender waits
/// for an answer); the rest is logged.
pub(crate) async fn invalid(
    front: &XmppFront,
    component: &str,
    kind: &str,
    header: &RawStanzaHeader,
    error: &str,
) {
    tracing::info!(%component, kind, from = ?header.from, "unreadable stanza: {error}");
    let is_request = matches!(header.type_.as_deref(), Some("get" | "set"));
    if kind != "iq" || !is_request {
        return;
    }
    let (Some(id), Some(from)) = (&header.id, &header.from) else {
        return;
    };
    let (Ok(to), Ok(from)) = (from.parse::<Jid>(), component.parse::<Jid>()) else {
        return;
    };
    front
        .send(Iq::Error {
            from: Some(from),
            to: Some(to),
            id: id.clone(),
            error: stanza_error(DefinedCondition::BadRequest, Some(error)),
            payload: None,
        })
        .await;
}

fn allowed(front: &XmppFront, user: &str) -> bool {
    front.config.permission(user) != Permission::None
}

fn forbidden() -> StanzaError {
    stanza_error(
        DefinedCondition::Forbidden,
        Some(crate::core::commands::REFUSAL),
    )
}

// --- IQs -------------------------------------------------------------------------------

async fn iq_request(front: &Arc<XmppFront>, iq: Iq) {
    let request = iq::classify(&iq);
    if request == IqRequest::Response {
        front.answered(iq);
        return;
    }
    let (Some(from), Some(to)) = (iq.from().cloned(), iq.to().cloned()) else {
        return;
    };
    let address = match front.domains.classify(&to) {
        Ok(a) => a,
        Err(e) => {
            let error = stanza_error(DefinedCondition::ItemNotFound, Some(&e.to_string()));
            front.send(iq::error(&iq, error)).await;
            return;
        }
    };
    let user = user_of(&from.to_bare());
    let answer: Result<Option<Element>, StanzaError> = match (request, &address) {
        (IqRequest::Ping, _) => Ok(None),
        (IqRequest::DiscoInfo { node }, _) => {
            disco::info_of(&address, node.as_deref()).map(|r| Some(r.into()))
        }
        (IqRequest::DiscoItems { node: None }, Address::Conference | Address::Gateway(_)) => {
            // The legacy servers' room lists take a round trip: on a task of its own.
            let front = front.clone();
            tokio::spawn(async move {
                let rooms = listed_rooms(&front, &user, &address).await;
                let reply = match disco::items_of(&address, &to, None, &rooms) {
                    Ok(items) => iq::result(&iq, Some(items.into())),
                    Err(e) => iq::error(&iq, e),
                };
                front.send(reply).await;
            });
            return;
        }
        (IqRequest::DiscoItems { node }, _) => {
            disco::items_of(&address, &to, node.as_deref(), &[]).map(|r| Some(r.into()))
        }
        (IqRequest::GatewayPrompt, Address::Gateway(net)) => Ok(Some(gateway::prompt(*net))),
        (IqRequest::GatewayTranslate(query), Address::Gateway(net)) => {
            gateway::translate(&front.domains, *net, &query).map(Some)
        }
        (_, _) if !allowed(front, &user) => Err(forbidden()),
        (IqRequest::RegisterForm, Address::Gateway(net)) => {
            let id = front
                .store
                .login(&user, *net)
                .ok()
                .flatten()
                .map(|r| r.legacy_id);
            Ok(Some(register::form(*net, id.as_deref())))
        }
        (IqRequest::Register(query), Address::Gateway(net)) => {
            // Answered once the legacy server took or refused the login: on a task of
            // its own, so the other stanzas do not wait for it.
            let (front, net) = (front.clone(), *net);
            tokio::spawn(async move {
                let result = register(&front, &user, net, &query).await;
                let ok = result.is_ok();
                let reply = match result {
                    Ok(payload) => iq::result(&iq, payload),
                    Err(e) => iq::error(&iq, e),
                };
                front.send(reply).await;
                // After the answer: a client that sees the gateway ask for a
                // subscription before the registration's result may take it for
                // someone else.
                if ok && front.store.login(&user, net).ok().flatten().is_some() {
                    let _ = front.offer(&user, net, "", None).await;
                    front.send_gateway_presence(&user, net).await;
                }
            });
            return;
        }
        (IqRequest::VCard, Address::Contact { network, id }) => {
            let avatar = front.store.avatar(*network, id).ok().flatten();
            Ok(Some(super::vcard::contact_vcard(avatar.as_ref())))
        }
        (IqRequest::Command(command), Address::Gateway(net)) => {
            adhoc_command(front, &user, *net, &command).await
        }
        _ => {
            front.send(iq::unsupported(&iq)).await;
            return;
        }
    };
    let reply = match answer {
        Ok(payload) => iq::result(&iq, payload),
        Err(e) => iq::error(&iq, e),
    };
    front.send(reply).await;
}

async fn register(
    front: &Arc<XmppFront>,
    user: &str,
    net: NetworkId,
    query: &Element,
) -> Result<Option<Element>, StanzaError> {
    match register::parse(net, query)? {
        Registration::Register { username, password } => {
            if let Ok(Some(record)) = front.store.login(user, net) {
                if record.legacy_id == username && record.password == password {
                    return Ok(None);
                }
                accounts::logout(front.core(), user, net).await;
            }
            accounts::login(front.core(), user, net, &username, &password)
                .await
                .map_err(|e| stanza_error(DefinedCondition::NotAcceptable, Some(&e.to_string())))?;
            verified(front, user, net).await
        }
        Registration::Unregister => {
            accounts::logout(front.core(), user, net).await;
            unregistered(front, user, net).await;
            Ok(None)
        }
    }
}

/// How long a disco#items waits for a legacy server's room list.
const ROOM_LIST_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The rooms a disco#items lists (XEP-0045 §6.3): the rooms' service lists the rooms
/// with occupants and the chatrooms each of the user's logins is offered; a gateway its
/// network's. Sorted by address, each once.
async fn listed_rooms(front: &XmppFront, user: &str, address: &Address) -> Vec<(BareJid, String)> {
    let networks: Vec<NetworkId> = match address {
        Address::Conference => front.config.enabled_networks().map(|(n, _)| n).collect(),
        Address::Gateway(network) => vec![*network],
        _ => Vec::new(),
    };
    let mut rooms: Vec<(BareJid, String)> = Vec::new();
    if allowed(front, user) {
        // A network without chatrooms, or without a login of the user's, answers at
        // once with why (logged at debug).
        for network in &networks {
            let asked = accounts::list_rooms(front.core(), user, *network);
            let listing = match tokio::time::timeout(ROOM_LIST_WITHIN, asked).await {
                Ok(Ok(listing)) => listing,
                Ok(Err(e)) => {
                    tracing::debug!(%network, "no room list: {e}");
                    continue;
                }
                Err(_) => {
                    tracing::debug!(%network, "no room list in time");
                    continue;
                }
            };
            for room in listing {
                let Ok(jid) = front
                    .domains
                    .room(*network, &ChatId::Room(room.name.clone()))
                else {
                    continue;
                };
                let name = match (&room.description, room.members) {
                    (Some(d), Some(n)) => format!("{} ({d}; {n} in it)", room.name),
                    (Some(d), None) => format!("{} ({d})", room.name),
                    (None, Some(n)) => format!("{} ({n} in it)", room.name),
                    (None, None) => room.name,
                };
                rooms.push((jid, name));
            }
        }
    }
    let occupied = front.rooms.list(front).into_iter().filter(|(jid, _)| {
        matches!(address, Address::Conference)
            || matches!((address, front.domains.classify(&jid.clone().into())),
                (Address::Gateway(n), Ok(Address::Room { network, .. })) if *n == network)
    });
    rooms.extend(occupied);
    // The server's listing first: it names the room best.
    rooms.sort_by(|a, b| a.0.cmp(&b.0));
    rooms.dedup_by(|later, first| later.0 == first.0);
    rooms
}

/// How long a registration waits for the legacy server to take the login.
const VERIFY_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// XEP-0100 §4.1.1: a registration is answered once the credentials are verified. A
/// refused login is `not-acceptable` (the core forgets a first login it was refused); a
/// server that does not answer in time is `remote-server-timeout`, and the login is
/// dropped: nothing stays registered that the client was told failed.
async fn verified(
    front: &XmppFront,
    user: &str,
    net: NetworkId,
) -> Result<Option<Element>, StanzaError> {
    let deadline = tokio::time::Instant::now() + VERIFY_WITHIN;
    let mut last = None;
    loop {
        match front.login_state(user, net) {
            Some(LoginState::Connected) => return Ok(None),
            None => {
                let why = format!(
                    "The {} server refused the login: check the {} and the password.",
                    net.display_name(),
                    register::id_label(net)
                );
                return Err(stanza_error(DefinedCondition::NotAcceptable, Some(&why)));
            }
            Some(LoginState::Disconnected(reason)) => last = Some(reason),
            Some(LoginState::Connecting) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            accounts::logout(front.core(), user, net).await;
            let why = format!(
                "The {} server did not answer in time{}. Nothing was registered: try again later.",
                net.display_name(),
                last.map(|r| format!(" ({r})")).unwrap_or_default()
            );
            return Err(stanza_error(
                DefinedCondition::RemoteServerTimeout,
                Some(&why),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// After `<remove/>`: the gateway and the contacts it offered leave the user's roster.
async fn unregistered(front: &XmppFront, user: &str, net: NetworkId) {
    let Some(to) = super::front::jid_of(user) else {
        return;
    };
    let mut addresses: Vec<Jid> = front
        .store
        .buddies(user, net)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| front.contact_jid(net, &c.id))
        .map(Jid::from)
        .collect();
    addresses.push(front.gateway(net));
    for from in addresses {
        front
            .send(xpresence::unsubscribe(from.clone(), to.clone()))
            .await;
        front
            .send(xpresence::unsubscribed(from.clone(), to.clone()))
            .await;
        front
            .send(xpresence::presence(from, to.clone(), None))
            .await;
    }
    if let Err(e) = front.store.clear_xmpp_subscriptions(user, net) {
        tracing::error!("could not forget subscriptions: {e}");
    }
    front.store.flush_soon();
}

async fn adhoc_command(
    front: &Arc<XmppFront>,
    user: &str,
    net: NetworkId,
    command: &Element,
) -> Result<Option<Element>, StanzaError> {
    match adhoc::parse(net, command)? {
        CommandRequest::Start { kind } => {
            let id = front.legacy_id_of(user, net);
            let rooms = front.store.chatrooms_of(user, net).unwrap_or_default();
            let requests: Vec<(String, String)> = front
                .store
                .auth_requests(user, net)
                .unwrap_or_default()
                .into_iter()
                .map(|r| {
                    let mut shown = match &r.nick {
                        Some(nick) => format!("{nick} ({})", r.who),
                        None => r.who.clone(),
                    };
                    if let Some(reason) = &r.reason {
                        shown.push_str(&format!(": {reason}"));
                    }
                    (r.who, shown)
                })
                .collect();
            let defaults = FormDefaults {
                id: id.as_deref(),
                rooms: &rooms,
                groups: &[],
                requests: &requests,
            };
            Ok(Some(adhoc::form(net, kind, &uuid_like(), &defaults)))
        }
        CommandRequest::Submit {
            kind,
            session,
            command,
        } => {
            let note = run_command(front, user, net, command).await;
            let session = session.unwrap_or_else(uuid_like);
            Ok(Some(adhoc::completed(kind, &session, &note, false)))
        }
        CommandRequest::Cancel { kind, session } => {
            Ok(Some(adhoc::canceled(kind, &session.unwrap_or_default())))
        }
    }
}

/// Runs a submitted ad-hoc command with the management commands' code.
async fn run_command(
    front: &Arc<XmppFront>,
    user: &str,
    net: NetworkId,
    command: Command,
) -> String {
    let core = front.core();
    let n = net.as_str();
    match command {
        Command::Login { id, password } => {
            commands::run(core, user, "login", &[n, &id, &password]).await
        }
        Command::Logout => commands::run(core, user, "logout", &[n]).await,
        Command::Status { state, message } => {
            let Some(handle) = front.login_handle(user, net) else {
                return format!("You are not logged in to {}.", net.display_name());
            };
            let presence = CorePresence {
                state,
                status: message,
            };
            match handle
                .request(|reply| LoginCommand::SetPresence { presence, reply })
                .await
            {
                Ok(()) => format!("{}: status set.", net.display_name()),
                Err(e) => e.to_string(),
            }
        }
        Command::Search { query } => commands::run(core, user, "search", &[n, &query]).await,
        Command::Info { id } => commands::run(core, user, "info", &[n, &id]).await,
        Command::Authorize { id, grant } => {
            let name = if grant { "authorize" } else { "deny" };
            commands::run(core, user, name, &[n, &id]).await
        }
        Command::Add { id, group } => match group {
            Some(g) => commands::run(core, user, "add", &[n, &id, &g]).await,
            None => commands::run(core, user, "add", &[n, &id]).await,
        },
        Command::Join { room } => commands::run(core, user, "join", &[n, &room]).await,
        Command::Leave { room } => commands::run(core, user, "leave", &[n, &room]).await,
    }
}

// --- presences -------------------------------------------------------------------------

async fn presence(front: &Arc<XmppFront>, p: Presence) {
    let (Some(from), Some(to)) = (p.from.clone(), p.to.clone()) else {
        return;
    };
    let Ok(address) = front.domains.classify(&to) else {
        return;
    };
    let user = user_of(&from.to_bare());
    let (net, contact) = match address {
        Address::Gateway(net) => (net, String::new()),
        Address::Contact { network, id } => (network, id),
        Address::Occupant {
            network,
            chat,
            nick,
        } => return occupant_presence(front, &p, &user, from, network, chat, &nick).await,
        Address::Room { .. } => {
            if let Err(e) = muc::parse_presence(&p) {
                if let Some(reply) = muc::join_error(&p, e) {
                    front.send(reply).await;
                }
            }
            return;
        }
        Address::Conference => return,
    };
    let user_jid = from.to_bare();
    let ours: Jid = to.to_bare().into();
    match xpresence::parse(&p) {
        xpresence::Incoming::Presence(shown) => {
            // The user's status, to the gateway; their presence to contacts says nothing
            // more.
            if contact.is_empty() && allowed(front, &user) {
                let resource = from.resource().map(|r| r.to_string()).unwrap_or_default();
                if net.capabilities().avatars {
                    if let Some(hash) = super::vcard::announced_photo(&p.payloads) {
                        front.user_photo(&user, net, &user_jid, hash);
                    }
                }
                front.user_presence(&user, net, &resource, shown).await;
            }
        }
        xpresence::Incoming::Subscribe { .. } => {
            if !allowed(front, &user) {
                if let Some(reply) = presence_error(&p, forbidden()) {
                    front.send(reply).await;
                }
                return;
            }
            front
                .send(xpresence::subscribed(ours.clone(), user_jid.clone()))
                .await;
            front.set_subscription(
                &user,
                net,
                &contact,
                Subscription {
                    offered: true,
                    removed: false,
                },
            );
            if !contact.is_empty() {
                add_to_legacy_list(front, &user, net, &contact).await;
            }
            show_current(front, &user, net, &contact).await;
        }
        xpresence::Incoming::Subscribed => {
            answer_authorization(front, &user, net, &contact, true).await;
            front.set_subscription(
                &user,
                net,
                &contact,
                Subscription {
                    offered: true,
                    removed: false,
                },
            );
            show_current(front, &user, net, &contact).await;
        }
        xpresence::Incoming::Unsubscribe | xpresence::Incoming::Unsubscribed => {
            if matches!(p.type_, xmpp_parsers::presence::Type::Unsubscribe) {
                front.send(xpresence::unsubscribed(ours, user_jid)).await;
            } else {
                answer_authorization(front, &user, net, &contact, false).await;
            }
            front.set_subscription(
                &user,
                net,
                &contact,
                Subscription {
                    offered: true,
                    removed: true,
                },
            );
        }
        xpresence::Incoming::Probe => show_current(front, &user, net, &contact).await,
        xpresence::Incoming::Error(_) => {}
    }
}

/// The user approved (`subscribed`) or refused (`unsubscribed`) a contact's
/// subscription: when that contact asked for authorization, it is the answer (as the
/// management commands `authorize` / `deny`, whose answer the gateway tells). Without a
/// pending request it is an ordinary subscription and nothing more happens here.
async fn answer_authorization(
    front: &Arc<XmppFront>,
    user: &str,
    net: NetworkId,
    contact: &str,
    grant: bool,
) {
    if contact.is_empty() || !allowed(front, user) {
        return;
    }
    if !matches!(front.store.auth_request(user, net, contact), Ok(Some(_))) {
        return;
    }
    let name = if grant { "authorize" } else { "deny" };
    let answer = commands::run(front.core(), user, name, &[net.as_str(), contact]).await;
    front.core().notify(user, Some(net), &answer);
}

/// The gateway's presence (`contact` "") or a contact's, as known now.
async fn show_current(front: &XmppFront, user: &str, net: NetworkId, contact: &str) {
    if contact.is_empty() {
        front.send_gateway_presence(user, net).await;
    } else {
        front.send_contact_presence(user, net, contact).await;
    }
}

/// A contact the user added on XMPP joins the legacy contact list too.
async fn add_to_legacy_list(front: &XmppFront, user: &str, net: NetworkId, id: &str) {
    let known = front
        .store
        .buddies(user, net)
        .unwrap_or_default()
        .iter()
        .any(|c| c.id == id);
    if known {
        return;
    }
    let Some(handle) = front.login_handle(user, net) else {
        return;
    };
    let id = id.to_owned();
    let result = handle
        .request(|reply| LoginCommand::AddContact {
            id,
            group: None,
            reply,
        })
        .await;
    if let Err(e) = result {
        tracing::debug!("could not add a contact: {e}");
    }
}

async fn occupant_presence(
    front: &Arc<XmppFront>,
    p: &Presence,
    user: &str,
    from: Jid,
    network: NetworkId,
    chat: ChatId,
    _nick: &str,
) {
    let Some(to) = p.to.as_ref() else { return };
    let room = to.to_bare();
    let request = match muc::parse_presence(p) {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            if let Some(reply) = muc::join_error(p, e) {
                front.send(reply).await;
            }
            return;
        }
    };
    let Ok(full) = from.try_into_full() else {
        return;
    };
    match request {
        muc::OccupantRequest::Join { nick, history, .. } => {
            if !allowed(front, user) {
                if let Some(reply) = muc::join_error(p, forbidden()) {
                    front.send(reply).await;
                }
                return;
            }
            let front = front.clone();
            let p = p.clone();
            let user = user.to_owned();
            // Joining waits for the legacy server: not on the reading task.
            tokio::spawn(async move {
                let join = super::rooms::Join {
                    request: p,
                    user,
                    from: full,
                    network,
                    chat,
                    room,
                    requested: nick,
                    history,
                };
                super::rooms::join(&front, join).await;
            });
        }
        muc::OccupantRequest::Leave { .. } => {
            super::rooms::leave(front, &full, &room, true).await;
        }
    }
}

// --- messages --------------------------------------------------------------------------

async fn message(front: &Arc<XmppFront>, m: Message) {
    let (Some(from), Some(to)) = (m.from.clone(), m.to.clone()) else {
        return;
    };
    let Ok(address) = front.domains.classify(&to) else {
        if let Some(reply) = message_error(&m, stanza_error(DefinedCondition::ItemNotFound, None)) {
            front.send(reply).await;
        }
        return;
    };
    if m.type_ == MessageType::Error {
        // A room message that could not reach an occupant: that resource is gone.
        if let (Address::Occupant { .. } | Address::Room { .. }, Ok(full)) =
            (&address, from.clone().try_into_full())
        {
            super::rooms::leave(front, &full, &to.to_bare(), false).await;
        }
        return;
    }
    let user = user_of(&from.to_bare());
    if !allowed(front, &user) {
        if let Some(reply) = message_error(&m, forbidden()) {
            front.send(reply).await;
        }
        return;
    }
    match address {
        Address::Gateway(net) => text_command(front, &user, net, &from, &m),
        Address::Contact { network, id } => {
            let incoming = convert::parse(&m);
            if let Some(typing) = incoming.typing {
                if let Some(handle) = front.login_handle(&user, network) {
                    let _ = handle.send(LoginCommand::Typing {
                        chat: ChatId::Direct(id.clone()),
                        typing,
                    });
                }
            }
            // XEP-0224 attention is a nudge, before the text it may carry; the
            // receipt goes with the last part.
            let text_too = incoming.text.is_some();
            let request = |kind, text: FormattedText, last: bool| Request {
                user: user.clone(),
                from: from.to_string(),
                to: to.to_bare().to_string(),
                network,
                chat: ChatId::Direct(id.clone()),
                id: incoming.id.clone().filter(|_| last),
                kind,
                plain: text.plain,
                html: text.html,
                receipt: incoming.receipt_requested && last,
            };
            // A client may add attention to text for a network without nudges: the
            // text still goes; attention alone there is refused (bounced).
            if incoming.attention && (network.capabilities().nudges || !text_too) {
                let nudge = request(MessageKind::Nudge, FormattedText::default(), !text_too);
                front.inbox.accept(front, nudge).await;
            }
            if let Some((kind, text)) = incoming.text.clone() {
                front.inbox.accept(front, request(kind, text, true)).await;
            }
        }
        Address::Room { network, chat } => {
            let room = to.to_bare();
            let joined = front
                .store
                .xmpp_occupants(room.as_str())
                .unwrap_or_default()
                .iter()
                .any(|(jid, _)| *jid == from.to_string());
            if !joined {
                let error = stanza_error(
                    DefinedCondition::NotAcceptable,
                    Some("Join the room before writing to it."),
                );
                if let Some(reply) = message_error(&m, error) {
                    front.send(reply).await;
                }
                return;
            }
            match muc::parse_groupchat(&m) {
                Err(e) => {
                    if let Some(reply) = message_error(&m, e) {
                        front.send(reply).await;
                    }
                }
                Ok(incoming) => {
                    if let Some((kind, text)) = incoming.text {
                        let request = Request {
                            user,
                            from: from.to_string(),
                            to: room.to_string(),
                            network,
                            chat,
                            id: incoming.id,
                            kind,
                            plain: text.plain,
                            html: text.html,
                            receipt: false,
                        };
                        front.inbox.accept(front, request).await;
                    }
                }
            }
        }
        Address::Occupant { .. } | Address::Conference => {
            let error = stanza_error(
                DefinedCondition::NotAcceptable,
                Some("Private messages in rooms are not bridged: write to the contact's own address."),
            );
            if let Some(reply) = message_error(&m, error) {
                front.send(reply).await;
            }
        }
    }
}

/// A chat message to the gateway is a management command; the answer comes back from
/// the gateway. Not recorded (it may hold a password), so not replayed after a crash.
fn text_command(front: &Arc<XmppFront>, user: &str, net: NetworkId, from: &Jid, m: &Message) {
    let Some(body) = m.bodies.values().next().map(|b| b.trim().to_owned()) else {
        return;
    };
    let front = front.clone();
    let user = user.to_owned();
    let to: BareJid = from.to_bare();
    tokio::spawn(async move {
        let Some(answer) = commands::execute(front.core(), &user, &body).await else {
            return;
        };
        front.send(front.gateway_message(net, &to, &answer)).await;
    });
}
