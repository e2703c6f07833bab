//! What an XMPP user sends the gateway: arbitrary bytes read as an XML element, then as a
//! stanza (`<iq/>`, `<message/>`, `<presence/>` in the component namespace), through the
//! XMPP front's protocol layer the way `bridge/src/fronts/xmpp/inbound.rs` calls it:
//! the address the stanza is sent to, what an IQ asks (disco, registration, the gateway's
//! id translation, ad-hoc commands), what a presence says (subscriptions, room joins and
//! leaves), what a message carries (body, XHTML-IM, chat states, receipts, corrections,
//! delays, room messages). Every reply the bridge would build from it is written as
//! tokio-xmpp writes it (xso) and must read back as a stanza: a reply that cannot be
//! written or read would cut the component link.
#![no_main]
use libfuzzer_sys::fuzz_target;
use retrobridge::core::{commands, ChatId, NetworkId};
use retrobridge::fronts::xmpp::adhoc::{self, CommandRequest, FormDefaults};
use retrobridge::fronts::xmpp::errors::{message_error, presence_error, stanza_error};
use retrobridge::fronts::xmpp::front::{jid_of, user_of};
use retrobridge::fronts::xmpp::iq::{self, IqRequest};
use retrobridge::fronts::xmpp::jid::{Address, Domains};
use retrobridge::fronts::xmpp::presence as xpresence;
use retrobridge::fronts::xmpp::{convert, disco, gateway, muc, register, xhtml};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

/// Writes a reply as the component link does; it must read back.
fn emit(stanza: impl Into<Stanza>) {
    let stanza = stanza.into();
    let bytes = xso::to_vec(&stanza).expect("a reply can be written");
    if let Err(e) = xso::from_bytes::<Stanza>(&bytes) {
        panic!(
            "a written reply does not read back: {e}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

fn forbidden() -> StanzaError {
    stanza_error(DefinedCondition::Forbidden, Some(commands::REFUSAL))
}

fn domains() -> Domains {
    Domains::new("example.org").unwrap()
}

fn iq_request(iq: Iq) {
    let domains = domains();
    let request = iq::classify(&iq);
    if request == IqRequest::Response {
        return;
    }
    let (Some(from), Some(to)) = (iq.from().cloned(), iq.to().cloned()) else {
        return;
    };
    let address = match domains.classify(&to) {
        Ok(a) => a,
        Err(e) => {
            let error = stanza_error(DefinedCondition::ItemNotFound, Some(&e.to_string()));
            return emit(iq::error(&iq, error));
        }
    };
    let _ = user_of(&from.to_bare());
    let rooms = vec![(
        domains
            .room(NetworkId::Mig33, &ChatId::Room("lobby".into()))
            .unwrap(),
        "lobby".to_owned(),
    )];
    let answer: Result<Option<Element>, StanzaError> = match (request, &address) {
        (IqRequest::Ping, _) => Ok(None),
        (IqRequest::DiscoInfo { node }, _) => {
            disco::info_of(&address, node.as_deref()).map(|r| Some(r.into()))
        }
        (IqRequest::DiscoItems { node }, _) => {
            disco::items_of(&address, &to, node.as_deref(), &rooms).map(|r| Some(r.into()))
        }
        (IqRequest::GatewayPrompt, Address::Gateway(net)) => Ok(Some(gateway::prompt(*net))),
        (IqRequest::GatewayTranslate(query), Address::Gateway(net)) => {
            gateway::translate(&domains, *net, &query).map(Some)
        }
        (IqRequest::RegisterForm, Address::Gateway(net)) => {
            Ok(Some(register::form(*net, Some("someone"))))
        }
        (IqRequest::Register(query), Address::Gateway(net)) => {
            register::parse(*net, &query).map(|_| None)
        }
        (IqRequest::Command(command), Address::Gateway(net)) => {
            match adhoc::parse(*net, &command) {
                Ok(CommandRequest::Start { kind }) => {
                    let rooms = ["lobby".to_owned()];
                    let defaults = FormDefaults {
                        id: Some("someone"),
                        rooms: &rooms,
                        groups: &[],
                    };
                    Ok(Some(adhoc::form(*net, kind, "session", &defaults)))
                }
                Ok(CommandRequest::Submit { kind, session, .. }) => Ok(Some(adhoc::completed(
                    kind,
                    &session.unwrap_or_default(),
                    "done",
                    false,
                ))),
                Ok(CommandRequest::Cancel { kind, session }) => {
                    Ok(Some(adhoc::canceled(kind, &session.unwrap_or_default())))
                }
                Err(e) => Err(e),
            }
        }
        _ => return emit(iq::unsupported(&iq)),
    };
    // The refusal to users without permission, and the answer.
    emit(iq::error(&iq, forbidden()));
    emit(match answer {
        Ok(payload) => iq::result(&iq, payload),
        Err(e) => iq::error(&iq, e),
    });
}

fn presence(p: Presence) {
    let domains = domains();
    let (Some(from), Some(to)) = (p.from.clone(), p.to.clone()) else {
        return;
    };
    let Ok(address) = domains.classify(&to) else {
        return;
    };
    let user = user_of(&from.to_bare());
    assert_eq!(jid_of(&user), Some(from.to_bare()));
    match address {
        Address::Gateway(_) | Address::Contact { .. } => {}
        Address::Occupant { chat, .. } => {
            let room = to.to_bare();
            match muc::parse_presence(&p) {
                Ok(Some(muc::OccupantRequest::Join { nick, .. })) => {
                    if let Some(reply) = muc::join_error(&p, forbidden()) {
                        emit(reply);
                    }
                    if let Ok(full) = from.try_into_full() {
                        let present = [("bob".to_owned(), None, None)];
                        if let Ok(presences) =
                            muc::join_presences(&room, &full, Some(&nick), "alice", &present)
                        {
                            presences.into_iter().for_each(emit);
                        }
                        let title = match &chat {
                            ChatId::Room(name) => name.clone(),
                            _ => String::new(),
                        };
                        if let Ok(subject) = muc::subject(&room, None, full, &title) {
                            emit(subject);
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(reply) = muc::join_error(&p, e) {
                        emit(reply);
                    }
                }
            }
            return;
        }
        Address::Room { .. } => {
            if let Err(e) = muc::parse_presence(&p) {
                if let Some(reply) = muc::join_error(&p, e) {
                    emit(reply);
                }
            }
            return;
        }
        Address::Conference => return,
    }
    let user_jid = from.to_bare();
    let ours: Jid = to.to_bare().into();
    match xpresence::parse(&p) {
        xpresence::Incoming::Subscribe { .. } => {
            if let Some(reply) = presence_error(&p, forbidden()) {
                emit(reply);
            }
            emit(xpresence::subscribed(ours, user_jid));
        }
        xpresence::Incoming::Unsubscribe => emit(xpresence::unsubscribed(ours, user_jid)),
        _ => {}
    }
}

fn message(m: Message) {
    let domains = domains();
    let (Some(from), Some(to)) = (m.from.clone(), m.to.clone()) else {
        return;
    };
    let Ok(address) = domains.classify(&to) else {
        if let Some(reply) = message_error(&m, stanza_error(DefinedCondition::ItemNotFound, None)) {
            emit(reply);
        }
        return;
    };
    if m.type_ == MessageType::Error {
        let _ = convert::parse(&m);
        return;
    }
    if let Some(reply) = message_error(&m, forbidden()) {
        emit(reply);
    }
    match address {
        Address::Gateway(net) => {
            // A management command: what decides whether it is kept, and its help.
            if let Some(body) = m.bodies.values().next().map(|b| b.trim().to_owned()) {
                let _ = commands::holds_password(&body);
                let words: Vec<&str> = body.split_whitespace().collect();
                let answer = commands::help(words.get(1).copied(), true);
                let to: BareJid = from.to_bare();
                emit(convert::chat_message(
                    domains.network(net).clone(),
                    to,
                    "id",
                    retrobridge::core::MessageKind::Text,
                    &retrobridge::core::FormattedText::plain(answer),
                ));
            }
        }
        Address::Contact { .. } => {
            let incoming = convert::parse(&m);
            if let (Some(id), true) = (&incoming.id, incoming.receipt_requested) {
                emit(convert::receipt(to.to_bare(), from.clone(), id));
            }
            // The text goes to the legacy network (see the msn_format target).
            let _ = incoming.text;
        }
        Address::Room { .. } => match muc::parse_groupchat(&m) {
            Err(e) => {
                if let Some(reply) = message_error(&m, e) {
                    emit(reply);
                }
            }
            Ok(incoming) => {
                if let Some((kind, text)) = incoming.text {
                    // Reflected to the sender, with the id they gave.
                    let room = to.to_bare();
                    let id = incoming.id.unwrap_or_default();
                    if let Ok(reflection) =
                        muc::groupchat(&room, Some("alice"), from, &id, kind, &text)
                    {
                        emit(reflection);
                    }
                }
            }
        },
        Address::Occupant { .. } | Address::Conference => {
            let error = stanza_error(DefinedCondition::NotAcceptable, Some("not bridged"));
            if let Some(reply) = message_error(&m, error) {
                emit(reply);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(element) = text.parse::<Element>() else {
        return;
    };
    // Any element as an XHTML-IM payload.
    let _ = xhtml::from_xhtml_im(&element);
    match element.name() {
        "iq" => {
            if let Ok(iq) = Iq::try_from(element) {
                iq_request(iq);
            }
        }
        "message" => {
            if let Ok(m) = Message::try_from(element) {
                message(m);
            }
        }
        "presence" => {
            if let Ok(p) = Presence::try_from(element) {
                presence(p);
            }
        }
        _ => {}
    }
});
