//! XEP-0030 service discovery: what each of the bridge's addresses is and supports.
//!
//! * A gateway (`icq.<domain>`…): identity `gateway` with its XEP-0100 type (`icq`,
//!   `msn`; `mig33` for mig33, which the XMPP registry does not list: a registered type such
//!   as `xmpp` or `sms` would make clients pick the wrong icon or prompt, an unknown one
//!   gets the generic gateway look), and the features: disco, registration, id
//!   translation, ad-hoc commands (whose node its disco#items lists), chat states,
//!   receipts, nicknames, ping, and XHTML-IM where the network has formatting or links
//!   (ICQ, MSN; mig33 text is plain).
//! * A contact: a `client` (`pc`; `phone` on mig33, a mobile network) with the message
//!   features its gateway has.
//! * The rooms' domain: a `conference` service (`text`) with MUC, named for what it
//!   carries; its items are the rooms with occupants and the chatrooms the legacy
//!   servers list to the asking user's logins (a gateway lists its network's too).
//! * A room: `conference`/`text` with XEP-0045's room features: non-anonymous (everyone
//!   shows as their legacy address), unsecured, unmoderated; a network chatroom is
//!   public, open and persistent, a group conversation hidden, members-only and temporary.

use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::ns;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use super::adhoc::{self, CommandKind, COMMANDS_NS};
use super::errors::stanza_error;
use super::gateway::GATEWAY_NS;
use super::iq::PING_NS;
use super::jid::Address;
use super::xml_text;
use crate::model::{ChatId, NetworkId};

fn identity(category: &str, type_: &str, name: &str) -> Identity {
    Identity {
        category: category.to_owned(),
        type_: type_.to_owned(),
        lang: None,
        name: Some(xml_text(name).into_owned()),
    }
}

fn info(identity: Identity, features: &[&str]) -> DiscoInfoResult {
    DiscoInfoResult {
        node: None,
        identities: vec![identity],
        features: features.iter().map(|f| f.to_string()).collect(),
        extensions: vec![],
    }
}

/// Whether the network's messages can carry formatting or links.
fn has_xhtml(network: NetworkId) -> bool {
    let capabilities = network.capabilities();
    capabilities.formatting || capabilities.links
}

/// The message features of a network's contacts (and its gateway).
fn message_features(network: NetworkId) -> Vec<&'static str> {
    let mut features = vec![ns::CHATSTATES, ns::RECEIPTS];
    if has_xhtml(network) {
        features.push(ns::XHTML_IM);
    }
    if network.capabilities().nudges {
        features.push(ns::ATTENTION);
    }
    if network.capabilities().files {
        // Files from contacts come as out-of-band links.
        features.push(ns::OOB);
    }
    features
}

/// disco#info of a network's gateway.
pub fn gateway_info(network: NetworkId) -> DiscoInfoResult {
    let mut features = vec![
        ns::DISCO_INFO,
        ns::DISCO_ITEMS,
        ns::REGISTER,
        GATEWAY_NS,
        COMMANDS_NS,
        ns::NICK,
        PING_NS,
    ];
    features.extend(message_features(network));
    info(
        identity(
            "gateway",
            network.as_str(),
            &format!("{} gateway", network.display_name()),
        ),
        &features,
    )
}

/// disco#items of a gateway: the ad-hoc commands node, then its network's chatrooms.
pub fn gateway_items(gateway: &Jid, rooms: &[(BareJid, String)]) -> DiscoItemsResult {
    let mut items = vec![Item {
        jid: gateway.clone(),
        node: Some(COMMANDS_NS.to_owned()),
        name: Some("Commands".to_owned()),
    }];
    items.extend(conference_items(rooms).items);
    DiscoItemsResult {
        node: None,
        items,
        rsm: None,
    }
}

/// disco#info of a legacy contact, named `name` (its display name) when known.
pub fn contact_info(network: NetworkId, name: Option<&str>) -> DiscoInfoResult {
    let type_ = network.capabilities().client_type;
    let name = name.unwrap_or(network.display_name());
    let mut features = vec![ns::DISCO_INFO];
    features.extend(message_features(network));
    info(identity("client", type_, name), &features)
}

/// disco#info of the rooms' service, named for what it carries: "mig33 chatrooms and
/// MSN Messenger group chats".
pub fn conference_info() -> DiscoInfoResult {
    let mut kinds = Vec::new();
    for network in NetworkId::ALL {
        let c = network.capabilities();
        if c.chatrooms {
            kinds.push(format!("{} chatrooms", network.display_name()));
        }
    }
    for network in NetworkId::ALL {
        if network.capabilities().group_chats {
            kinds.push(format!("{} group chats", network.display_name()));
        }
    }
    let name = match kinds.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => "Rooms".to_owned(),
    };
    info(
        identity("conference", "text", &name),
        &[ns::DISCO_INFO, ns::DISCO_ITEMS, ns::MUC],
    )
}

/// disco#items of the rooms' service: `rooms` (JID and name).
pub fn conference_items(rooms: &[(BareJid, String)]) -> DiscoItemsResult {
    DiscoItemsResult {
        node: None,
        items: rooms
            .iter()
            .map(|(jid, name)| Item {
                jid: jid.clone().into(),
                node: None,
                name: Some(xml_text(name).into_owned()),
            })
            .collect(),
        rsm: None,
    }
}

/// disco#info of a room.
pub fn room_info(network: NetworkId, chat: &ChatId) -> DiscoInfoResult {
    let (name, kind) = match chat {
        ChatId::Room(name) => (
            format!("{name} ({} chatroom)", network.display_name()),
            ["muc_public", "muc_open", "muc_persistent"],
        ),
        ChatId::Group(_) | ChatId::Direct(_) => (
            format!("{} group conversation", network.display_name()),
            ["muc_hidden", "muc_membersonly", "muc_temporary"],
        ),
    };
    let mut features = vec![
        ns::DISCO_INFO,
        ns::MUC,
        "muc_nonanonymous",
        "muc_unsecured",
        "muc_unmoderated",
    ];
    features.extend(kind);
    info(identity("conference", "text", &name), &features)
}

/// disco#info of any address of the bridge, on `node` if one was asked.
pub fn info_of(address: &Address, node: Option<&str>) -> Result<DiscoInfoResult, StanzaError> {
    let not_found = || stanza_error(DefinedCondition::ItemNotFound, None);
    match (address, node) {
        (Address::Gateway(network), None) => Ok(gateway_info(*network)),
        (Address::Gateway(_), Some(COMMANDS_NS)) => Ok(adhoc::list_info()),
        (Address::Gateway(network), Some(node)) => CommandKind::from_node(node)
            .and_then(|kind| adhoc::command_info(*network, kind))
            .ok_or_else(not_found),
        (Address::Contact { network, .. }, None) => Ok(contact_info(*network, None)),
        (Address::Conference, None) => Ok(conference_info()),
        (Address::Room { network, chat }, None) => Ok(room_info(*network, chat)),
        (Address::Occupant { network, .. }, None) => Ok(contact_info(*network, None)),
        _ => Err(not_found()),
    }
}

/// disco#items of any address of the bridge (`to`, as the request named it), on `node`
/// if one was asked; `rooms` are the rooms to list on the rooms' service.
pub fn items_of(
    address: &Address,
    to: &Jid,
    node: Option<&str>,
    rooms: &[(BareJid, String)],
) -> Result<DiscoItemsResult, StanzaError> {
    let empty = || DiscoItemsResult {
        node: node.map(str::to_owned),
        items: vec![],
        rsm: None,
    };
    match (address, node) {
        (Address::Gateway(_), None) => Ok(gateway_items(to, rooms)),
        (Address::Gateway(network), Some(COMMANDS_NS)) => Ok(adhoc::command_list(*network, to)),
        (Address::Conference, None) => Ok(conference_items(rooms)),
        (_, None) => Ok(empty()),
        _ => Err(stanza_error(DefinedCondition::ItemNotFound, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fronts::xmpp::jid::Domains;
    use crate::fronts::xmpp::testing::assert_xml;

    #[test]
    fn gateways() {
        // XEP-0100 example 1's shape: identity and features.
        assert_xml(
            gateway_info(NetworkId::Icq),
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
               <identity category='gateway' type='icq' name='ICQ gateway'/>\
               <feature var='http://jabber.org/protocol/chatstates'/>\
               <feature var='http://jabber.org/protocol/commands'/>\
               <feature var='http://jabber.org/protocol/disco#info'/>\
               <feature var='http://jabber.org/protocol/disco#items'/>\
               <feature var='http://jabber.org/protocol/nick'/>\
               <feature var='http://jabber.org/protocol/xhtml-im'/>\
               <feature var='jabber:iq:gateway'/>\
               <feature var='jabber:iq:register'/>\
               <feature var='urn:xmpp:ping'/>\
               <feature var='urn:xmpp:receipts'/>\
             </query>",
        );
        let msn = gateway_info(NetworkId::Msn);
        assert_eq!(
            (
                msn.identities[0].type_.as_str(),
                msn.identities[0].name.as_deref()
            ),
            ("msn", Some("MSN Messenger gateway"))
        );
        assert!(msn.features.contains(ns::ATTENTION), "MSN has nudges");
        assert!(msn.features.contains(ns::OOB), "MSN has files");
        let mig33 = gateway_info(NetworkId::Mig33);
        assert_eq!(mig33.identities[0].type_, "mig33");
        assert!(!mig33.features.contains(ns::XHTML_IM));
        assert!(!mig33.features.contains(ns::ATTENTION));
        assert!(!mig33.features.contains(ns::OOB));
        assert_xml(
            gateway_items(&Jid::new("mig33.example.org").unwrap(), &[]),
            "<query xmlns='http://jabber.org/protocol/disco#items'>\
               <item jid='mig33.example.org' node='http://jabber.org/protocol/commands' name='Commands'/>\
             </query>",
        );
    }

    #[test]
    fn contacts_rooms_and_the_service() {
        assert_xml(
            contact_info(NetworkId::Mig33, Some("Carol")),
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
               <identity category='client' type='phone' name='Carol'/>\
               <feature var='http://jabber.org/protocol/chatstates'/>\
               <feature var='http://jabber.org/protocol/disco#info'/>\
               <feature var='urn:xmpp:receipts'/>\
             </query>",
        );
        assert_xml(
            conference_info(),
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
               <identity category='conference' type='text' name='mig33 chatrooms and MSN Messenger group chats'/>\
               <feature var='http://jabber.org/protocol/disco#info'/>\
               <feature var='http://jabber.org/protocol/disco#items'/>\
               <feature var='http://jabber.org/protocol/muc'/>\
             </query>",
        );
        assert_xml(
            room_info(NetworkId::Mig33, &ChatId::Room("lobby".into())),
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
               <identity category='conference' type='text' name='lobby (mig33 chatroom)'/>\
               <feature var='http://jabber.org/protocol/disco#info'/>\
               <feature var='http://jabber.org/protocol/muc'/>\
               <feature var='muc_nonanonymous'/>\
               <feature var='muc_open'/>\
               <feature var='muc_persistent'/>\
               <feature var='muc_public'/>\
               <feature var='muc_unmoderated'/>\
               <feature var='muc_unsecured'/>\
             </query>",
        );
        let group = room_info(NetworkId::Msn, &ChatId::Group("1-ab".into()));
        assert!(
            group.features.contains("muc_membersonly") && group.features.contains("muc_temporary")
        );
        let domains = Domains::new("example.org").unwrap();
        let lobby = domains
            .room(NetworkId::Mig33, &ChatId::Room("lobby".into()))
            .unwrap();
        assert_xml(
            conference_items(&[(lobby, "lobby".into())]),
            "<query xmlns='http://jabber.org/protocol/disco#items'>\
               <item jid='lobby%mig33@rooms.example.org' name='lobby'/>\
             </query>",
        );
    }

    #[test]
    fn any_address_and_node() {
        let domains = Domains::new("example.org").unwrap();
        let address = |jid: &str| domains.classify(&Jid::new(jid).unwrap()).unwrap();
        let gateway = address("icq.example.org");
        assert_eq!(
            info_of(&gateway, None).unwrap().identities[0].category,
            "gateway"
        );
        assert_eq!(
            info_of(&gateway, Some(COMMANDS_NS)).unwrap().identities[0].type_,
            "command-list"
        );
        assert_eq!(
            info_of(&gateway, Some("login")).unwrap().identities[0].type_,
            "command-node"
        );
        assert_eq!(
            info_of(&gateway, Some("join"))
                .unwrap_err()
                .defined_condition,
            DefinedCondition::ItemNotFound
        );
        assert_eq!(
            info_of(&address("12345@icq.example.org"), None)
                .unwrap()
                .identities[0]
                .category,
            "client"
        );
        assert_eq!(
            info_of(&address("rooms.example.org"), None)
                .unwrap()
                .identities[0]
                .category,
            "conference"
        );
        assert_eq!(
            info_of(&address("lobby%mig33@rooms.example.org"), None)
                .unwrap()
                .identities[0]
                .type_,
            "text"
        );
        let to = Jid::new("icq.example.org").unwrap();
        assert_eq!(items_of(&gateway, &to, None, &[]).unwrap().items.len(), 1);
        assert_eq!(
            items_of(&gateway, &to, Some(COMMANDS_NS), &[])
                .unwrap()
                .items
                .len(),
            7
        );
        assert!(items_of(&address("12345@icq.example.org"), &to, None, &[])
            .unwrap()
            .items
            .is_empty());
        assert!(items_of(&gateway, &to, Some("nope"), &[]).is_err());
    }
}
