//! The XMPP front's text conversions, on arbitrary text: XEP-0106 escaping both ways (an
//! escaped localpart unescapes to the text), legacy ids and room names as JIDs and back
//! (what the gateway's id translation and room addresses rely on), any text as a JID to
//! classify, room members' nicknames (unique, each usable as the resource of an occupant
//! JID), and the core's HTML (what legacy messages carry) as XHTML-IM in a chat message
//! and a room message, written as tokio-xmpp writes them and read back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use retrobridge::core::{ChatId, Contact, FormattedText, MessageKind, NetworkId};
use retrobridge::fronts::xmpp::jid::{self, Address, Domains};
use retrobridge::fronts::xmpp::{convert, muc, xml_text};
use std::collections::HashSet;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::stanza::Stanza;

fn emit(stanza: impl Into<Stanza>) {
    let stanza = stanza.into();
    let bytes = xso::to_vec(&stanza).expect("a stanza can be written");
    if let Err(e) = xso::from_bytes::<Stanza>(&bytes) {
        panic!(
            "a written stanza does not read back: {e}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = xml_text(text);

    // XEP-0106.
    let escaped = jid::escape_node(text);
    assert_eq!(jid::unescape_node(&escaped), text, "escaped: {escaped:?}");
    let _ = jid::unescape_node(text);

    // Legacy ids and rooms as JIDs, and back (also through the JID's text).
    let domains = Domains::new("example.org").unwrap();
    for network in NetworkId::ALL {
        let _ = jid::check_legacy_id(network, text);
        if let Ok(contact) = domains.contact(network, text) {
            let expected = Ok(Address::Contact {
                network,
                id: network.canonical_id(text),
            });
            assert_eq!(domains.classify(&contact.clone().into()), expected);
            let again: Jid = contact
                .to_string()
                .parse()
                .expect("a contact JID reads back");
            assert_eq!(domains.classify(&again), expected, "{contact}");
        }
        for chat in [
            ChatId::Room(text.to_owned()),
            ChatId::Group(text.to_owned()),
        ] {
            if let Ok(room) = domains.room(network, &chat) {
                let chat = match chat {
                    ChatId::Room(name) => ChatId::Room(name.to_lowercase()),
                    other => other,
                };
                let expected = Ok(Address::Room { network, chat });
                assert_eq!(domains.classify(&room.clone().into()), expected);
                let again: Jid = room.to_string().parse().expect("a room JID reads back");
                assert_eq!(domains.classify(&again), expected, "{room}");
            }
        }
    }
    if let Ok(jid) = Jid::new(text) {
        let _ = domains.classify(&jid);
    }

    // Room members (one per line: id, tab, display name) and their nicknames.
    let members: Vec<Contact> = text
        .lines()
        .map(|line| {
            let (id, name) = match line.split_once('\t') {
                Some((id, name)) => (id, Some(name.to_owned())),
                None => (line, None),
            };
            Contact {
                id: id.to_owned(),
                display_name: name,
                groups: vec![],
            }
        })
        .collect();
    let room = domains
        .room(NetworkId::Mig33, &ChatId::Room("lobby".into()))
        .unwrap();
    let nicks = jid::occupant_nicks(&members);
    let distinct: HashSet<&str> = nicks.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        distinct.len(),
        nicks.len(),
        "nicknames are unique: {nicks:?}"
    );
    for (_, nick) in &nicks {
        let occupant = jid::occupant(&room, nick).expect("a nickname makes an occupant JID");
        assert_eq!(occupant.resource().as_str(), nick);
    }

    // The core's HTML, as XHTML-IM beside the body.
    let user: Jid = "romeo@example.org/orchard".parse().unwrap();
    let formatted = FormattedText {
        plain: text.to_owned(),
        html: Some(text.to_owned()),
    };
    for kind in [MessageKind::Text, MessageKind::Emote] {
        emit(convert::chat_message(
            domains.network(NetworkId::Msn).clone(),
            user.clone(),
            "id",
            kind,
            &formatted,
        ));
    }
    if let Some((_, nick)) = nicks.first() {
        if let Ok(message) = muc::groupchat(
            &room,
            Some(nick),
            user.clone(),
            "id",
            MessageKind::Text,
            &formatted,
        ) {
            emit(message);
        }
    }
});
