//! What an incoming IQ asks for, and the envelopes of the replies.
//!
//! [`classify`] reads the payload's name and namespace only; the payloads that need the
//! network to be read (a registration, a submitted command, a legacy id to translate) are
//! handed over as elements to [`super::register`], [`super::adhoc`] and
//! [`super::gateway`]. Every `get` or `set` gets exactly one reply ([`result`] or
//! [`error`]); a `result` or `error` IQ is never answered.

use xmpp_parsers::iq::Iq;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ns;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use super::adhoc::COMMANDS_NS;
use super::errors::stanza_error;
use super::gateway::GATEWAY_NS;

/// XEP-0199.
pub const PING_NS: &str = "urn:xmpp:ping";

/// An incoming IQ, by what it asks.
#[derive(Debug, Clone, PartialEq)]
pub enum IqRequest {
    /// XEP-0030 `get`, on a node or not.
    DiscoInfo {
        node: Option<String>,
    },
    DiscoItems {
        node: Option<String>,
    },
    /// XEP-0077 `get`: the registration form.
    RegisterForm,
    /// XEP-0077 `set`: see [`super::register::parse`].
    Register(Element),
    /// XEP-0100 `get`: the prompt.
    GatewayPrompt,
    /// XEP-0100 `set`: see [`super::gateway::parse_translation`].
    GatewayTranslate(Element),
    /// XEP-0050 `set`: see [`super::adhoc::parse`].
    Command(Element),
    /// XEP-0199: answer with an empty result.
    Ping,
    /// XEP-0054 `get`: a contact's vCard.
    VCard,
    /// Anything else asked: answer with [`unsupported`].
    Unsupported,
    /// A `result` or `error`: answer nothing.
    Response,
}

/// What `iq` asks for.
pub fn classify(iq: &Iq) -> IqRequest {
    let (payload, set) = match iq {
        Iq::Get { payload, .. } => (payload, false),
        Iq::Set { payload, .. } => (payload, true),
        Iq::Result { .. } | Iq::Error { .. } => return IqRequest::Response,
    };
    let node = || payload.attr("node").map(str::to_owned);
    match (payload.name(), payload.ns().as_str(), set) {
        ("query", ns::DISCO_INFO, false) => IqRequest::DiscoInfo { node: node() },
        ("query", ns::DISCO_ITEMS, false) => IqRequest::DiscoItems { node: node() },
        ("query", ns::REGISTER, false) => IqRequest::RegisterForm,
        ("query", ns::REGISTER, true) => IqRequest::Register(payload.clone()),
        ("query", GATEWAY_NS, false) => IqRequest::GatewayPrompt,
        ("query", GATEWAY_NS, true) => IqRequest::GatewayTranslate(payload.clone()),
        ("command", COMMANDS_NS, true) => IqRequest::Command(payload.clone()),
        ("ping", PING_NS, false) => IqRequest::Ping,
        ("vCard", ns::VCARD, false) => IqRequest::VCard,
        _ => IqRequest::Unsupported,
    }
}

/// The `result` reply to a `get` or `set`: same id, addresses swapped.
pub fn result(request: &Iq, payload: Option<Element>) -> Iq {
    Iq::Result {
        from: request.to().cloned(),
        to: request.from().cloned(),
        id: request.id().to_owned(),
        payload,
    }
}

/// The `error` reply to a `get` or `set`: same id, addresses swapped.
pub fn error(request: &Iq, error: StanzaError) -> Iq {
    Iq::Error {
        from: request.to().cloned(),
        to: request.from().cloned(),
        id: request.id().to_owned(),
        error,
        payload: None,
    }
}

/// The reply to a request nobody here handles (RFC 6120 §8.4: `service-unavailable`).
pub fn unsupported(request: &Iq) -> Iq {
    error(
        request,
        stanza_error(DefinedCondition::ServiceUnavailable, None),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fronts::xmpp::testing::{assert_xml, element};
    use xmpp_parsers::ns::DEFAULT_NS;

    fn iq(xml: &str) -> Iq {
        Iq::try_from(element(&xml.replace("NS", DEFAULT_NS))).unwrap()
    }

    #[test]
    fn requests_by_payload() {
        let cases = [
            ("<iq xmlns='NS' type='get' id='1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
             IqRequest::DiscoInfo { node: None }),
            ("<iq xmlns='NS' type='get' id='1'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>",
             IqRequest::DiscoItems { node: Some("http://jabber.org/protocol/commands".into()) }),
            ("<iq xmlns='NS' type='get' id='1'><query xmlns='jabber:iq:register'/></iq>", IqRequest::RegisterForm),
            ("<iq xmlns='NS' type='get' id='1'><query xmlns='jabber:iq:gateway'/></iq>", IqRequest::GatewayPrompt),
            ("<iq xmlns='NS' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>", IqRequest::Ping),
            ("<iq xmlns='NS' type='get' id='1'><query xmlns='jabber:iq:version'/></iq>", IqRequest::Unsupported),
            ("<iq xmlns='NS' type='set' id='1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", IqRequest::Unsupported),
            ("<iq xmlns='NS' type='result' id='1'/>", IqRequest::Response),
        ];
        for (xml, expected) in cases {
            assert_eq!(classify(&iq(xml)), expected, "{xml}");
        }
        let set = iq("<iq xmlns='NS' type='set' id='1'><query xmlns='jabber:iq:register'><remove/></query></iq>");
        assert!(
            matches!(classify(&set), IqRequest::Register(e) if e.has_child("remove", ns::REGISTER))
        );
        let set = iq("<iq xmlns='NS' type='set' id='1'><command xmlns='http://jabber.org/protocol/commands' node='login'/></iq>");
        assert!(matches!(classify(&set), IqRequest::Command(e) if e.attr("node") == Some("login")));
        let set = iq("<iq xmlns='NS' type='set' id='1'><query xmlns='jabber:iq:gateway'><prompt>x</prompt></query></iq>");
        assert!(matches!(classify(&set), IqRequest::GatewayTranslate(_)));
    }

    #[test]
    fn replies_swap_the_addresses_and_keep_the_id() {
        let request = iq("<iq xmlns='NS' type='get' id='p1' from='romeo@example.org/orchard' to='icq.example.org'><ping xmlns='urn:xmpp:ping'/></iq>");
        assert_xml(
            result(&request, None),
            &format!("<iq xmlns='{DEFAULT_NS}' type='result' id='p1' from='icq.example.org' to='romeo@example.org/orchard'/>"),
        );
        assert_xml(
            unsupported(&request),
            &format!(
                "<iq xmlns='{DEFAULT_NS}' type='error' id='p1' from='icq.example.org' to='romeo@example.org/orchard'>\
                   <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>\
                 </iq>"
            ),
        );
    }
}
