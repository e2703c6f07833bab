//! XEP-0100 `jabber:iq:gateway`: the prompt a client shows when its user adds a legacy
//! contact, and the translation of the legacy id typed there into the contact's JID
//! (so clients need not know XEP-0106).

use xmpp_parsers::jid::BareJid;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use super::errors::stanza_error;
use super::jid::Domains;
use crate::model::NetworkId;

pub const GATEWAY_NS: &str = "jabber:iq:gateway";

/// The `<query/>` answering a `get`.
pub fn prompt(network: NetworkId) -> Element {
    Element::builder("query", GATEWAY_NS)
        .append(
            Element::builder("desc", GATEWAY_NS)
                .append(network.capabilities().id_prompt)
                .build(),
        )
        .append(
            Element::builder("prompt", GATEWAY_NS)
                .append("Contact ID")
                .build(),
        )
        .build()
}

/// The legacy id a `set` carries in its `<prompt/>`, trimmed.
pub fn parse_translation(query: &Element) -> Result<String, StanzaError> {
    let id = query
        .get_child("prompt", GATEWAY_NS)
        .map(|p| p.text().trim().to_owned())
        .filter(|id| !id.is_empty());
    id.ok_or_else(|| {
        stanza_error(
            DefinedCondition::BadRequest,
            Some("The contact's id is missing."),
        )
    })
}

/// The `<query/>` answering a `set`: the JID of the legacy id it carried, or
/// `not-acceptable` with what an id of that network looks like.
pub fn translate(
    domains: &Domains,
    network: NetworkId,
    query: &Element,
) -> Result<Element, StanzaError> {
    let id = parse_translation(query)?;
    let jid = domains
        .contact(network, &id)
        .map_err(|e| stanza_error(DefinedCondition::NotAcceptable, Some(&e.to_string())))?;
    Ok(translation(&jid))
}

/// `<query><jid>…</jid></query>`.
pub fn translation(jid: &BareJid) -> Element {
    Element::builder("query", GATEWAY_NS)
        .append(
            Element::builder("jid", GATEWAY_NS)
                .append(jid.to_string())
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fronts::xmpp::testing::{assert_xml, element};

    #[test]
    fn prompt_after_xep_0100() {
        assert_xml(
            prompt(NetworkId::Icq),
            "<query xmlns='jabber:iq:gateway'>\
               <desc>Please enter the ICQ Number of the person you would like to contact.</desc>\
               <prompt>Contact ID</prompt>\
             </query>",
        );
    }

    #[test]
    fn translation_of_each_network() {
        let domains = Domains::new("example.org").unwrap();
        let ask = |id: &str| {
            element(&format!(
                "<query xmlns='jabber:iq:gateway'><prompt>{id}</prompt></query>"
            ))
        };
        assert_xml(
            translate(&domains, NetworkId::Msn, &ask(" Juliet@Hotmail.com ")).unwrap(),
            "<query xmlns='jabber:iq:gateway'><jid>juliet\\40hotmail.com@msn.example.org</jid></query>",
        );
        assert_xml(
            translate(&domains, NetworkId::Icq, &ask("123456")).unwrap(),
            "<query xmlns='jabber:iq:gateway'><jid>123456@icq.example.org</jid></query>",
        );
        let refused = translate(&domains, NetworkId::Mig33, &ask("Foo Bar")).unwrap_err();
        assert_eq!(refused.defined_condition, DefinedCondition::NotAcceptable);
        assert!(refused.texts["en"].contains("mig33 username"));
        let empty = element("<query xmlns='jabber:iq:gateway'><prompt> </prompt></query>");
        assert_eq!(
            translate(&domains, NetworkId::Icq, &empty)
                .unwrap_err()
                .defined_condition,
            DefinedCondition::BadRequest
        );
    }
}
