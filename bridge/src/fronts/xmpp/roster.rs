//! The legacy contact list offered to the user's roster with roster item exchange
//! (XEP-0144), as XEP-0100 "Contact Lists" recommends (rather than `subscribed` presences
//! sent unasked). Clients without XEP-0144 ignore the message; the contacts' `subscribe`
//! requests ([`super::presence::subscribe`]) reach them anyway.
//!
//! Each contact is suggested in its legacy groups (by name); a contact in none goes into
//! a group named after the network, so the legacy contacts stay together.

use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::{Id, Message};
use xmpp_parsers::minidom::Element;

use super::jid::Domains;
use super::xml_text;
use crate::model::{Contact, Group, LegacyId, NetworkId};

pub const ROSTERX_NS: &str = "http://jabber.org/protocol/rosterx";

/// One contact to suggest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterItem {
    pub jid: BareJid,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// The roster items for a network's contact list, and the ids that have no JID (see
/// [`super::jid`]), to be told to the user.
pub fn items(
    domains: &Domains,
    network: NetworkId,
    contacts: &[Contact],
    groups: &[Group],
) -> (Vec<RosterItem>, Vec<LegacyId>) {
    let mut items = Vec::with_capacity(contacts.len());
    let mut skipped = Vec::new();
    for contact in contacts {
        let Ok(jid) = domains.contact(network, &contact.id) else {
            skipped.push(contact.id.clone());
            continue;
        };
        let mut names: Vec<String> = contact
            .groups
            .iter()
            .filter_map(|id| groups.iter().find(|g| g.id == *id))
            .map(|g| g.name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .collect();
        names.dedup();
        if names.is_empty() {
            names.push(network.display_name().to_owned());
        }
        items.push(RosterItem {
            jid,
            name: contact
                .display_name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            groups: names,
        });
    }
    (items, skipped)
}

/// The message suggesting `items` (action `add`), from the gateway to the user.
pub fn suggestion(
    from: impl Into<Jid>,
    to: impl Into<Jid>,
    id: &str,
    items: &[RosterItem],
) -> Message {
    exchange(from, to, id, "add", items)
}

/// The message suggesting the removal of `items` (contacts gone from the legacy list).
pub fn removal(
    from: impl Into<Jid>,
    to: impl Into<Jid>,
    id: &str,
    items: &[RosterItem],
) -> Message {
    exchange(from, to, id, "delete", items)
}

fn exchange(
    from: impl Into<Jid>,
    to: impl Into<Jid>,
    id: &str,
    action: &str,
    items: &[RosterItem],
) -> Message {
    use xmpp_parsers::minidom::rxml::xml_ncname;
    let x = Element::builder("x", ROSTERX_NS)
        .append_all(items.iter().map(|item| {
            Element::builder("item", ROSTERX_NS)
                .attr(xml_ncname!("action").into(), action)
                .attr(xml_ncname!("jid").into(), item.jid.to_string())
                .attr(
                    xml_ncname!("name").into(),
                    item.name.as_deref().map(|n| xml_text(n).into_owned()),
                )
                .append_all(item.groups.iter().map(|group| {
                    Element::builder("group", ROSTERX_NS)
                        .append(xml_text(group).into_owned())
                        .build()
                }))
                .build()
        }))
        .build();
    let mut message = Message::normal(Some(to.into()));
    message.from = Some(from.into());
    message.id = Some(Id(id.to_owned()));
    message.payloads.push(x);
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fronts::xmpp::testing::assert_xml;
    use xmpp_parsers::ns::DEFAULT_NS;

    #[test]
    fn a_contact_list_suggested() {
        let domains = Domains::new("example.org").unwrap();
        let contact = |id: &str, name: Option<&str>, groups: &[&str]| Contact {
            id: id.into(),
            display_name: name.map(Into::into),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        let groups = [
            Group {
                id: "1".into(),
                name: "Friends".into(),
            },
            Group {
                id: "2".into(),
                name: "Work".into(),
            },
        ];
        let (items, skipped) = items(
            &domains,
            NetworkId::Msn,
            &[
                contact("juliet@capulet.lit", Some("Juliet"), &["1", "2"]),
                contact("nurse@capulet.lit", Some(" "), &["9"]),
                contact("straße@x.lit", None, &[]),
            ],
            &groups,
        );
        assert_eq!(skipped, vec!["straße@x.lit".to_string()]);
        let message = suggestion(
            Jid::new("msn.example.org").unwrap(),
            Jid::new("romeo@example.org").unwrap(),
            "rx1",
            &items,
        );
        // XEP-0144 example 1's shape.
        assert_xml(
            message,
            &format!(
                "<message xmlns='{DEFAULT_NS}' from='msn.example.org' to='romeo@example.org' id='rx1'>\
                   <x xmlns='http://jabber.org/protocol/rosterx'>\
                     <item action='add' jid='juliet\\40capulet.lit@msn.example.org' name='Juliet'><group>Friends</group><group>Work</group></item>\
                     <item action='add' jid='nurse\\40capulet.lit@msn.example.org'><group>MSN Messenger</group></item>\
                   </x>\
                 </message>"
            ),
        );
        let gone = removal(
            Jid::new("msn.example.org").unwrap(),
            Jid::new("romeo@example.org").unwrap(),
            "rx2",
            &items[1..],
        );
        let text = String::from(&Element::from(gone));
        assert!(
            text.contains("<item action='delete' jid='nurse\\40capulet.lit@msn.example.org'>"),
            "{text}"
        );
    }
}
