//! Addresses: legacy ids <-> JIDs, the component domains, room JIDs and occupant nicknames.
//!
//! * Each network's gateway is a component domain derived from the XMPP server's domain:
//!   `icq.<domain>`, `msn.<domain>`, `mig33.<domain>`; rooms live on one more component,
//!   `rooms.<domain>` by default (not `conference.<domain>`, which servers such as Prosody
//!   customarily give their own MUC service).
//! * A legacy contact is `<node>@<network domain>`, the node being the canonical legacy id
//!   (see [`NetworkId::canonical_id`]) with XEP-0106 escaping: `alice@hotmail.com` on MSN is
//!   `alice\40hotmail.com@msn.example.org`. JID localparts are case-insensitive (nodeprep
//!   folds case), which fits: MSN and mig33 ids are canonically lower-case and ICQ UINs
//!   are digits. An id that nodeprep would still change (some non-ASCII letters) has no
//!   JID: [`JidError::NotRepresentable`], never a JID that maps back to someone else.
//! * A room is `<escaped name>%<network>@<conference domain>` for a network's chatroom
//!   ([`ChatId::Room`], names lower-cased: room JIDs are case-insensitive) and
//!   `<escaped id>%<network>-group@...` for a group conversation ([`ChatId::Group`]). The
//!   part after the last `%` names the network, which never holds a `%`, so two networks'
//!   rooms never share a JID whatever their names.
//! * An occupant is `<room JID>/<nickname>`; [`occupant_nicks`] gives a room's members
//!   unique nicknames (display names where they are unique).

use std::borrow::Cow;
use std::collections::HashSet;

use xmpp_parsers::jid::{BareJid, DomainPart, FullJid, Jid, NodePart, ResourcePart};

use super::xml_text;
use crate::model::{ChatId, Contact, LegacyId, NetworkId};

/// Why an address could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JidError {
    #[error("{0:?} is not a valid XMPP domain")]
    BadDomain(String),
    /// The id has no JID (see the module docs).
    #[error("{0:?} cannot be written as an XMPP address")]
    NotRepresentable(String),
    /// The address is on none of this bridge's domains.
    #[error("{0} is not an address of this gateway")]
    NotOurs(String),
    #[error("{id:?} is not {what}")]
    BadLegacyId { id: String, what: &'static str },
    #[error("{0} is not a room of this gateway")]
    BadRoom(String),
    #[error("{0:?} cannot be used as a nickname")]
    BadNick(String),
}

/// The bridge's component domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domains {
    /// Each network's gateway, in `NetworkId::ALL` order.
    gateways: Vec<(NetworkId, BareJid)>,
    conference: BareJid,
}

fn domain(name: &str) -> Result<BareJid, JidError> {
    let bad = || JidError::BadDomain(name.to_owned());
    let part = DomainPart::new(name).map_err(|_| bad())?;
    if name.contains(['@', '/']) {
        return Err(bad());
    }
    Ok(BareJid::from_parts(None, &part))
}

impl Domains {
    /// The default domains under the XMPP server's domain (`example.org` gives
    /// `icq.example.org`, `msn.example.org`, `mig33.example.org` and `rooms.example.org`).
    pub fn new(server: &str) -> Result<Domains, JidError> {
        Ok(Domains {
            gateways: NetworkId::ALL
                .into_iter()
                .map(|n| Ok((n, domain(&format!("{n}.{server}"))?)))
                .collect::<Result<_, JidError>>()?,
            conference: domain(&format!("rooms.{server}"))?,
        })
    }

    /// Another domain for the rooms (from the config).
    pub fn with_conference(mut self, conference: &str) -> Result<Domains, JidError> {
        self.conference = domain(conference)?;
        Ok(self)
    }

    /// A network's gateway domain.
    pub fn network(&self, network: NetworkId) -> &BareJid {
        let (_, gateway) = self
            .gateways
            .iter()
            .find(|(n, _)| *n == network)
            .expect("every network has a gateway domain");
        gateway
    }

    /// The rooms' domain.
    pub fn conference(&self) -> &BareJid {
        &self.conference
    }

    /// Every component domain: the gateways, then the rooms.
    pub fn components(&self) -> Vec<&BareJid> {
        let gateways = self.gateways.iter().map(|(_, gateway)| gateway);
        gateways.chain([&self.conference]).collect()
    }

    /// Which network a domain is the gateway of.
    pub fn network_of(&self, domain: &str) -> Option<NetworkId> {
        NetworkId::ALL
            .into_iter()
            .find(|n| self.network(*n).domain().as_str() == domain)
    }

    /// What `jid` designates (the `to` of an incoming stanza, usually).
    pub fn classify(&self, jid: &Jid) -> Result<Address, JidError> {
        let domain = jid.domain().as_str();
        if domain == self.conference.domain().as_str() {
            let Some(node) = jid.node() else {
                return Ok(Address::Conference);
            };
            let (network, chat) = parse_room_node(node.as_str())
                .ok_or_else(|| JidError::BadRoom(jid.to_bare().to_string()))?;
            return Ok(match jid.resource() {
                None => Address::Room { network, chat },
                Some(nick) => Address::Occupant {
                    network,
                    chat,
                    nick: nick.as_str().to_owned(),
                },
            });
        }
        let network = self
            .network_of(domain)
            .ok_or_else(|| JidError::NotOurs(jid.to_string()))?;
        Ok(match jid.node() {
            None => Address::Gateway(network),
            Some(node) => Address::Contact {
                network,
                id: legacy_id_of_node(network, node.as_str())?,
            },
        })
    }

    /// A contact's JID: `<escaped id>@<network domain>`.
    pub fn contact(&self, network: NetworkId, id: &str) -> Result<BareJid, JidError> {
        let id = network.canonical_id(id);
        check_legacy_id(network, &id)?;
        let node = escape_node(&id);
        node_jid(&node, self.network(network)).ok_or(JidError::NotRepresentable(id))
    }

    /// The legacy id of a contact JID of `network` (the resource, if any, is ignored).
    pub fn legacy_id(&self, network: NetworkId, jid: &Jid) -> Result<LegacyId, JidError> {
        match self.classify(jid)? {
            Address::Contact { network: n, id } if n == network => Ok(id),
            _ => Err(JidError::NotOurs(jid.to_string())),
        }
    }

    /// A chatroom's or group conversation's room JID. Direct chats have none.
    pub fn room(&self, network: NetworkId, chat: &ChatId) -> Result<BareJid, JidError> {
        let node = match chat {
            // An empty name makes an address `classify` refuses (found by fuzzing).
            ChatId::Room(name) | ChatId::Group(name) if name.is_empty() => {
                return Err(JidError::BadRoom(String::new()))
            }
            ChatId::Room(name) => format!("{}%{network}", escape_node(&name.to_lowercase())),
            ChatId::Group(id) => format!("{}%{network}-group", escape_node(id)),
            ChatId::Direct(id) => return Err(JidError::BadRoom(id.clone())),
        };
        node_jid(&node, &self.conference).ok_or_else(|| {
            JidError::NotRepresentable(match chat {
                ChatId::Room(name) | ChatId::Group(name) | ChatId::Direct(name) => name.clone(),
            })
        })
    }
}

/// What an address of the bridge designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A network's gateway (`icq.example.org`, with or without a resource).
    Gateway(NetworkId),
    /// A legacy contact (`123456@icq.example.org`; a resource is ignored).
    Contact { network: NetworkId, id: LegacyId },
    /// The rooms' service itself (`rooms.example.org`).
    Conference,
    /// A room (`lobby%mig33@rooms.example.org`).
    Room { network: NetworkId, chat: ChatId },
    /// Someone in a room (`lobby%mig33@rooms.example.org/nick`).
    Occupant {
        network: NetworkId,
        chat: ChatId,
        nick: String,
    },
}

/// `node@domain` when `node` is a localpart that nodeprep leaves as it is.
fn node_jid(node: &str, domain: &BareJid) -> Option<BareJid> {
    match NodePart::new(node) {
        Ok(Cow::Borrowed(part)) => Some(BareJid::from_parts(Some(part), domain.domain())),
        _ => None,
    }
}

fn parse_room_node(node: &str) -> Option<(NetworkId, ChatId)> {
    let (name, suffix) = node.rsplit_once('%')?;
    let name = unescape_node(name);
    if name.is_empty() {
        return None;
    }
    if let Some(network) = NetworkId::parse(suffix) {
        return Some((network, ChatId::Room(name)));
    }
    let network = NetworkId::parse(suffix.strip_suffix("-group")?)?;
    Some((network, ChatId::Group(name)))
}

fn legacy_id_of_node(network: NetworkId, node: &str) -> Result<LegacyId, JidError> {
    let id = network.canonical_id(&unescape_node(node));
    check_legacy_id(network, &id)?;
    Ok(id)
}

/// Whether a canonical id has the shape of an id on `network` (the server has the last
/// word): ICQ numbers, MSN e-mail addresses, mig33 usernames without spaces.
pub fn check_legacy_id(network: NetworkId, id: &str) -> Result<(), JidError> {
    let capabilities = network.capabilities();
    if (capabilities.valid_id)(id) {
        return Ok(());
    }
    let what = capabilities.id_syntax;
    Err(JidError::BadLegacyId {
        id: id.to_owned(),
        what,
    })
}

/// The characters XEP-0106 escapes, with their codes.
const ESCAPES: [(char, &str); 10] = [
    (' ', "20"),
    ('"', "22"),
    ('&', "26"),
    ('\'', "27"),
    ('/', "2f"),
    (':', "3a"),
    ('<', "3c"),
    ('>', "3e"),
    ('@', "40"),
    ('\\', "5c"),
];

fn escape_code_at(s: &str, i: usize) -> Option<char> {
    let code = s.get(i..i + 2)?.to_ascii_lowercase();
    ESCAPES.iter().find(|(_, c)| *c == code).map(|(ch, _)| *ch)
}

/// XEP-0106 escaping of a localpart: the nine characters nodeprep forbids become `\XX`; a
/// backslash is escaped (`\5c`) only where it would otherwise read as an escape.
pub fn escape_node(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        match c {
            '\\' if escape_code_at(s, i + 1).is_some() => out.push_str("\\5c"),
            '\\' => out.push('\\'),
            c => match ESCAPES.iter().find(|(ch, _)| *ch == c) {
                Some((_, code)) => {
                    out.push('\\');
                    out.push_str(code);
                }
                None => out.push(c),
            },
        }
    }
    out
}

/// XEP-0106 unescaping: each `\XX` among the ten codes becomes its character; anything
/// else is kept as it is.
pub fn unescape_node(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        match escape_code_at(rest, at + 1) {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// An occupant's JID: the room's JID with the nickname as resource.
pub fn occupant(room: &BareJid, nick: &str) -> Result<FullJid, JidError> {
    room.with_resource_str(&xml_text(nick))
        .map_err(|_| JidError::BadNick(nick.to_owned()))
}

/// Longest nickname made from a display name, in characters.
const MAX_NICK: usize = 64;

/// Unique nicknames for a room's members, in the order given (a member listed twice gets
/// one). Each is the member's display name when it is free, else `name (id)`, else the
/// id; all are resourceprep-normalised, so they compare equal to the resource of an
/// occupant JID a client sends back.
pub fn occupant_nicks(members: &[Contact]) -> Vec<(LegacyId, String)> {
    let mut taken = HashSet::new();
    let mut seen_ids = HashSet::new();
    let mut out = Vec::with_capacity(members.len());
    for member in members {
        if !seen_ids.insert(member.id.as_str()) {
            continue;
        }
        let name = member
            .display_name
            .as_deref()
            .map(|n| n.trim().chars().take(MAX_NICK).collect::<String>())
            .filter(|n| !n.is_empty());
        let mut candidates: Vec<String> = Vec::new();
        if let Some(name) = &name {
            candidates.push(name.clone());
            candidates.push(format!("{name} ({})", member.id));
        }
        candidates.push(member.id.clone());
        let mut chosen = candidates
            .iter()
            .filter_map(|c| normalise_nick(c))
            .find(|c| !taken.contains(c));
        // Ids that cannot be a resource (or all taken): numbered, which always can; at
        // most members + 1 numbers are needed.
        let mut n = 2;
        let nick = loop {
            if let Some(nick) = chosen.take() {
                break nick;
            }
            let numbered = format!("member {n}");
            if !taken.contains(&numbered) {
                break numbered;
            }
            n += 1;
        };
        taken.insert(nick.clone());
        out.push((member.id.clone(), nick));
    }
    out
}

/// `nick` as resourceprep makes it, or `None` when it cannot be a resource.
fn normalise_nick(nick: &str) -> Option<String> {
    let nick = xml_text(nick);
    ResourcePart::new(&nick).ok().map(|r| r.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn domains() -> Domains {
        Domains::new("example.org").unwrap()
    }

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    #[test]
    fn xep_0106_examples() {
        // The table of XEP-0106 §5 (localparts).
        for (unescaped, escaped) in [
            ("space cadet", "space\\20cadet"),
            ("call me \"ishmael\"", "call\\20me\\20\\22ishmael\\22"),
            ("at&t guy", "at\\26t\\20guy"),
            ("d'artagnan", "d\\27artagnan"),
            ("/.fanboy", "\\2f.fanboy"),
            ("::foo::", "\\3a\\3afoo\\3a\\3a"),
            ("<foo>", "\\3cfoo\\3e"),
            ("user@host", "user\\40host"),
            ("c:\\net", "c\\3a\\net"),
            ("c:\\\\net", "c\\3a\\\\net"),
            ("c:\\cool stuff", "c\\3a\\cool\\20stuff"),
            ("c:\\5commas", "c\\3a\\5c5commas"),
        ] {
            assert_eq!(escape_node(unescaped), escaped, "{unescaped}");
            assert_eq!(unescape_node(escaped), unescaped, "{escaped}");
        }
        // Anything that is not one of the ten codes stays, even at the end.
        assert_eq!(unescape_node("a\\"), "a\\");
        assert_eq!(unescape_node("a\\4"), "a\\4");
        assert_eq!(unescape_node("\\41\\40"), "\\41@");
        assert_eq!(unescape_node("é\\é"), "é\\é");
    }

    #[test]
    fn domains_from_the_server_domain() {
        let d = domains();
        assert_eq!(d.network(NetworkId::Icq).to_string(), "icq.example.org");
        assert_eq!(d.network(NetworkId::Msn).to_string(), "msn.example.org");
        assert_eq!(d.network(NetworkId::Mig33).to_string(), "mig33.example.org");
        assert_eq!(d.conference().to_string(), "rooms.example.org");
        let d = d.with_conference("chat.example.org").unwrap();
        assert_eq!(d.conference().to_string(), "chat.example.org");
        assert_eq!(d.components().len(), 4);
        assert_eq!(d.network_of("msn.example.org"), Some(NetworkId::Msn));
        assert_eq!(d.network_of("example.org"), None);
        assert!(Domains::new("bad domain").is_err());
        assert!(Domains::new("a@b").is_err());
    }

    #[test]
    fn contacts_per_network() {
        let d = domains();
        let msn = d.contact(NetworkId::Msn, "Alice@Hotmail.com").unwrap();
        assert_eq!(msn.to_string(), "alice\\40hotmail.com@msn.example.org");
        let icq = d.contact(NetworkId::Icq, " 123456 ").unwrap();
        assert_eq!(icq.to_string(), "123456@icq.example.org");
        let mig = d.contact(NetworkId::Mig33, "Bob's:Place").unwrap();
        assert_eq!(mig.to_string(), "bob\\27s\\3aplace@mig33.example.org");

        // Back, from what clients send: any case, with or without a resource.
        let id = d.legacy_id(
            NetworkId::Msn,
            &jid("ALICE\\40hotmail.COM@msn.example.org/x"),
        );
        assert_eq!(id.unwrap(), "alice@hotmail.com");
        assert_eq!(
            d.classify(&jid("bob\\27s\\3aplace@mig33.example.org"))
                .unwrap(),
            Address::Contact {
                network: NetworkId::Mig33,
                id: "bob's:place".into()
            }
        );
        // Wrong shapes are refused with what was expected.
        let err = d.classify(&jid("alice@msn.example.org")).unwrap_err();
        assert!(err.to_string().contains("\\40"), "{err}");
        assert!(d.contact(NetworkId::Icq, "12ab").is_err());
        assert!(d.contact(NetworkId::Icq, "0").is_err());
        assert!(d.contact(NetworkId::Msn, "a@b@c").is_err());
        assert!(d.contact(NetworkId::Mig33, "").is_err());
        // A contact of one network is not one of another.
        assert!(d
            .legacy_id(NetworkId::Icq, &jid("123@msn.example.org"))
            .is_err());
        // Nodeprep would change these: no JID rather than someone else's.
        assert_eq!(
            d.contact(NetworkId::Mig33, "straße"),
            Err(JidError::NotRepresentable("straße".into()))
        );
        assert!(d.contact(NetworkId::Mig33, "ａｂｃ").is_err());
    }

    #[test]
    fn classify_every_kind_of_address() {
        let d = domains();
        assert_eq!(
            d.classify(&jid("icq.example.org")).unwrap(),
            Address::Gateway(NetworkId::Icq)
        );
        assert_eq!(
            d.classify(&jid("mig33.example.org/res")).unwrap(),
            Address::Gateway(NetworkId::Mig33)
        );
        assert_eq!(
            d.classify(&jid("rooms.example.org")).unwrap(),
            Address::Conference
        );
        assert_eq!(
            d.classify(&jid("lobby%mig33@rooms.example.org")).unwrap(),
            Address::Room {
                network: NetworkId::Mig33,
                chat: ChatId::Room("lobby".into())
            }
        );
        assert_eq!(
            d.classify(&jid("lobby%mig33@rooms.example.org/Carol Q"))
                .unwrap(),
            Address::Occupant {
                network: NetworkId::Mig33,
                chat: ChatId::Room("lobby".into()),
                nick: "Carol Q".into()
            }
        );
        assert!(matches!(
            d.classify(&jid("example.org")),
            Err(JidError::NotOurs(_))
        ));
        assert!(matches!(
            d.classify(&jid("lobby@rooms.example.org")),
            Err(JidError::BadRoom(_))
        ));
        assert!(matches!(
            d.classify(&jid("lobby%aim@rooms.example.org")),
            Err(JidError::BadRoom(_))
        ));
        assert!(matches!(
            d.classify(&jid("%mig33@rooms.example.org")),
            Err(JidError::BadRoom(_))
        ));
        // Nor is such an address made.
        assert!(matches!(
            d.room(NetworkId::Mig33, &ChatId::Room(String::new())),
            Err(JidError::BadRoom(_))
        ));
        assert!(matches!(
            d.room(NetworkId::Msn, &ChatId::Group(String::new())),
            Err(JidError::BadRoom(_))
        ));
    }

    #[test]
    fn rooms_of_two_networks_never_collide() {
        let d = domains();
        let room = d
            .room(NetworkId::Mig33, &ChatId::Room("Lobby".into()))
            .unwrap();
        assert_eq!(room.to_string(), "lobby%mig33@rooms.example.org");
        let group = d
            .room(NetworkId::Msn, &ChatId::Group("17-00ab12cd".into()))
            .unwrap();
        assert_eq!(group.to_string(), "17-00ab12cd%msn-group@rooms.example.org");
        // A name that imitates another network's suffix stays in its own network.
        let tricky = d
            .room(NetworkId::Mig33, &ChatId::Room("x%msn".into()))
            .unwrap();
        assert_eq!(tricky.to_string(), "x%msn%mig33@rooms.example.org");
        assert_eq!(
            d.classify(&Jid::from(tricky)).unwrap(),
            Address::Room {
                network: NetworkId::Mig33,
                chat: ChatId::Room("x%msn".into())
            }
        );
        let spaced = d
            .room(NetworkId::Mig33, &ChatId::Room("tea room".into()))
            .unwrap();
        assert_eq!(spaced.to_string(), "tea\\20room%mig33@rooms.example.org");
        assert!(d
            .room(NetworkId::Icq, &ChatId::Direct("123".into()))
            .is_err());
    }

    #[test]
    fn occupants_and_their_nicks() {
        let room = domains()
            .room(NetworkId::Mig33, &ChatId::Room("lobby".into()))
            .unwrap();
        assert_eq!(
            occupant(&room, "Carol").unwrap().to_string(),
            "lobby%mig33@rooms.example.org/Carol"
        );
        assert!(occupant(&room, "").is_err());
        let member = |id: &str, name: Option<&str>| Contact {
            id: id.into(),
            display_name: name.map(Into::into),
            groups: vec![],
        };
        let nicks = occupant_nicks(&[
            member("carol", Some("Carol")),
            member("dave", Some("Carol")),
            member("erin", None),
            member("carol", Some("again")),
            member("frank", Some("  ")),
            member("gina", Some("bad\u{1}name")),
            member("carol (2)", Some("dave (Carol)")),
            member("hal", Some("carol")),
            member("\u{1}", None),
            member("\u{2}", Some("\u{3}")),
        ]);
        let nicks: Vec<(&str, &str)> = nicks
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            nicks,
            vec![
                ("carol", "Carol"),
                ("dave", "Carol (dave)"),
                ("erin", "erin"),
                ("frank", "frank"),
                // U+FFFD (for the control character) is no resource character.
                ("gina", "gina"),
                ("carol (2)", "dave (Carol)"),
                // Nicknames are case-sensitive: "carol" differs from "Carol".
                ("hal", "carol"),
                ("\u{1}", "member 2"),
                ("\u{2}", "member 3"),
            ]
        );
    }

    /// Ids of the shape each network has, with the characters that need escaping.
    fn network_and_id() -> impl Strategy<Value = (NetworkId, String)> {
        prop_oneof![
            (1u32..).prop_map(|n| (NetworkId::Icq, n.to_string())),
            ("[a-zA-Z0-9._%+'&/-]{1,20}", "[a-z0-9.-]{1,20}")
                .prop_map(|(user, host)| (NetworkId::Msn, format!("{user}@{host}"))),
            "[a-zA-Z0-9._\\-\\\\:'\"<>/&@]{1,30}".prop_map(|id| (NetworkId::Mig33, id)),
        ]
    }

    proptest! {
        #[test]
        fn escaping_round_trips(s in "\\PC{0,40}") {
            prop_assert_eq!(unescape_node(&escape_node(&s)), s);
        }

        #[test]
        fn unescaping_never_panics(s in "[\\\\a-f0-9@ é]{0,20}") {
            let _ = unescape_node(&s);
        }

        #[test]
        fn contact_jids_round_trip((network, id) in network_and_id()) {
            let d = domains();
            let jid = d.contact(network, &id).unwrap();
            prop_assert_eq!(d.legacy_id(network, &Jid::from(jid)).unwrap(), network.canonical_id(&id));
        }

        #[test]
        fn any_contact_jid_maps_back_to_its_id(id in "\\PC{1,30}") {
            // Whatever the id: either no JID, or one that designates exactly that id.
            let d = domains();
            for network in NetworkId::ALL {
                if let Ok(jid) = d.contact(network, &id) {
                    prop_assert_eq!(
                        d.legacy_id(network, &Jid::from(jid)).unwrap(),
                        network.canonical_id(&id)
                    );
                }
            }
        }

        #[test]
        fn room_jids_round_trip(name in "[a-zA-Z0-9 %@/:'._-]{1,30}", group in any::<bool>()) {
            let d = domains();
            let name = name.trim().to_owned();
            prop_assume!(!name.is_empty());
            for network in NetworkId::ALL {
                let chat = if group { ChatId::Group(name.to_lowercase()) } else { ChatId::Room(name.clone()) };
                let jid = d.room(network, &chat).unwrap();
                let expected = match &chat {
                    ChatId::Room(n) => ChatId::Room(n.to_lowercase()),
                    other => other.clone(),
                };
                prop_assert_eq!(
                    d.classify(&Jid::from(jid)).unwrap(),
                    Address::Room { network, chat: expected }
                );
            }
        }
    }
}
