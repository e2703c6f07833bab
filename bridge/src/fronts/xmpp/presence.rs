//! Presence both ways, subscriptions and probes.
//!
//! The mapping (core [`PresenceState`] <-> XMPP):
//!
//! | core | to XMPP | from XMPP |
//! | --- | --- | --- |
//! | `Online` | available, no `<show>` | available without `<show>`, or `chat` |
//! | `Away` | `<show>away</show>` | `away` or `xa` (the core has no "extended away") |
//! | `Busy` | `<show>dnd</show>` | `dnd` |
//! | `Invisible` | `unavailable` (others see an invisible person as offline) | never: XMPP has no invisible presence; the `status` command sets it |
//! | `Offline` | `unavailable` | `unavailable` |
//!
//! The status text travels as `<status>` both ways. The gateway's own presence (the
//! user's legacy login) uses the same mapping, from the gateway's domain.
//!
//! Subscriptions (XEP-0100): a contact asks with `subscribe` carrying its nickname
//! (XEP-0172); the gateway approves the user's requests with `subscribed`. A presence
//! probe is answered with what is known of the contact (unavailable when nothing is),
//! never with `unsubscribed`: Prosody would drop the user's half of the subscription.
//! Presences carry `<priority>0</priority>`: `xmpp-parsers` always writes it, which is the
//! default value and harmless.

use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ns;
use xmpp_parsers::presence::{Presence, Show, Type};
use xmpp_parsers::stanza_error::StanzaError;

use super::xml_text;
use crate::model::{Presence as CorePresence, PresenceState};

/// `presence` of a contact (or of the user's login, from the gateway), for `to`; `None`
/// is offline.
pub fn presence(
    from: impl Into<Jid>,
    to: impl Into<Jid>,
    presence: Option<&CorePresence>,
) -> Presence {
    let state = presence.map_or(PresenceState::Offline, |p| p.state);
    let mut stanza = match state {
        PresenceState::Online => Presence::available(),
        PresenceState::Away => Presence::available().with_show(Show::Away),
        PresenceState::Busy => Presence::available().with_show(Show::Dnd),
        PresenceState::Invisible | PresenceState::Offline => Presence::unavailable(),
    }
    .with_from(from)
    .with_to(to);
    if let Some(status) = presence
        .and_then(|p| p.status.as_deref())
        .filter(|s| !s.is_empty())
    {
        stanza.set_status("", xml_text(status).into_owned());
    }
    stanza
}

/// The answer to a presence probe: what is known, or unavailable (never `unsubscribed`).
pub fn probe_answer(
    from: impl Into<Jid>,
    to: impl Into<Jid>,
    known: Option<&CorePresence>,
) -> Presence {
    presence(from, to, known)
}

/// A subscription request from a contact (or the gateway), with its nickname (XEP-0172).
pub fn subscribe(from: impl Into<Jid>, to: impl Into<Jid>, nick: Option<&str>) -> Presence {
    let mut stanza = Presence::subscribe().with_from(from).with_to(to);
    if let Some(nick) = nick.map(str::trim).filter(|n| !n.is_empty()) {
        stanza.payloads.push(
            Element::builder("nick", ns::NICK)
                .append(xml_text(nick).into_owned())
                .build(),
        );
    }
    stanza
}

/// Approves a subscription request.
pub fn subscribed(from: impl Into<Jid>, to: impl Into<Jid>) -> Presence {
    Presence::subscribed().with_from(from).with_to(to)
}

/// Refuses or cancels a subscription (a contact who declined, or unregistering). Not the
/// answer to a probe (see the module docs).
pub fn unsubscribed(from: impl Into<Jid>, to: impl Into<Jid>) -> Presence {
    Presence::new(Type::Unsubscribed)
        .with_from(from)
        .with_to(to)
}

/// Cancels the gateway's or a contact's subscription to the user (unregistering).
pub fn unsubscribe(from: impl Into<Jid>, to: impl Into<Jid>) -> Presence {
    Presence::unsubscribe().with_from(from).with_to(to)
}

/// The gateway's answer when logging in failed (XEP-0100 "Log In", alternate flow): a
/// presence error from the gateway, such as `not-authorized` for a refused password.
pub fn login_failed(from: impl Into<Jid>, to: impl Into<Jid>, error: StanzaError) -> Presence {
    Presence::error()
        .with_from(from)
        .with_to(to)
        .with_payloads(vec![error.into()])
}

/// What an incoming presence says.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Available or unavailable (`PresenceState::Offline`), with the status text.
    Presence(CorePresence),
    /// The user asks to see a contact's (or the gateway's) presence; the nickname the
    /// user's client gave, if any.
    Subscribe {
        nick: Option<String>,
    },
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    Probe,
    /// A presence error (the user's server refused something sent to it).
    Error(Option<StanzaError>),
}

/// Reads a presence.
pub fn parse(stanza: &Presence) -> Incoming {
    let status = stanza
        .statuses
        .get("")
        .or_else(|| stanza.statuses.values().next())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    match stanza.type_ {
        Type::None => {
            let state = match stanza.show {
                None | Some(Show::Chat) => PresenceState::Online,
                Some(Show::Away) | Some(Show::Xa) => PresenceState::Away,
                Some(Show::Dnd) => PresenceState::Busy,
            };
            Incoming::Presence(CorePresence { state, status })
        }
        Type::Unavailable => Incoming::Presence(CorePresence {
            state: PresenceState::Offline,
            status,
        }),
        Type::Subscribe => Incoming::Subscribe {
            nick: stanza
                .payloads
                .iter()
                .find(|p| p.is("nick", ns::NICK))
                .map(|n| n.text().trim().to_owned())
                .filter(|n| !n.is_empty()),
        },
        Type::Subscribed => Incoming::Subscribed,
        Type::Unsubscribe => Incoming::Unsubscribe,
        Type::Unsubscribed => Incoming::Unsubscribed,
        Type::Probe => Incoming::Probe,
        Type::Error => Incoming::Error(
            stanza
                .payloads
                .iter()
                .filter(|p| p.name() == "error")
                .find_map(|p| StanzaError::try_from(p.clone()).ok()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fronts::xmpp::errors::stanza_error;
    use crate::fronts::xmpp::testing::{assert_xml, element};
    use xmpp_parsers::ns::DEFAULT_NS;
    use xmpp_parsers::stanza_error::DefinedCondition;

    const CONTACT: &str = "123456@icq.example.org";
    const USER: &str = "romeo@example.org";

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    fn core(state: PresenceState, status: Option<&str>) -> CorePresence {
        CorePresence {
            state,
            status: status.map(Into::into),
        }
    }

    fn expected(attrs: &str, children: &str) -> String {
        format!("<presence xmlns='{DEFAULT_NS}' from='{CONTACT}' to='{USER}'{attrs}>{children}<priority>0</priority></presence>")
    }

    #[test]
    fn core_states_to_xmpp() {
        let cases = [
            (Some(core(PresenceState::Online, None)), expected("", "")),
            (
                Some(core(PresenceState::Away, Some("Out to lunch"))),
                expected("", "<show>away</show><status>Out to lunch</status>"),
            ),
            (
                Some(core(PresenceState::Busy, Some("On the phone"))),
                expected("", "<show>dnd</show><status>On the phone</status>"),
            ),
            (
                Some(core(PresenceState::Invisible, None)),
                expected(" type='unavailable'", ""),
            ),
            (
                Some(core(PresenceState::Offline, Some("bye\u{1}"))),
                expected(" type='unavailable'", "<status>bye\u{FFFD}</status>"),
            ),
            (None, expected(" type='unavailable'", "")),
        ];
        for (state, xml) in cases {
            assert_xml(presence(jid(CONTACT), jid(USER), state.as_ref()), &xml);
        }
        // A probe gets the same, never `unsubscribed`.
        assert_xml(
            probe_answer(jid(CONTACT), jid(USER), None),
            &expected(" type='unavailable'", ""),
        );
    }

    #[test]
    fn xmpp_states_to_core() {
        let read = |xml: &str| {
            parse(&Presence::try_from(element(&xml.replace("NS", DEFAULT_NS))).unwrap())
        };
        let cases = [
            ("<presence xmlns='NS'/>", core(PresenceState::Online, None)),
            ("<presence xmlns='NS'><show>chat</show></presence>", core(PresenceState::Online, None)),
            ("<presence xmlns='NS'><show>away</show><status>Wooing Juliet</status></presence>", core(PresenceState::Away, Some("Wooing Juliet"))),
            ("<presence xmlns='NS'><show>xa</show></presence>", core(PresenceState::Away, None)),
            ("<presence xmlns='NS'><show>dnd</show><status xml:lang='en'>Busy</status></presence>", core(PresenceState::Busy, Some("Busy"))),
            ("<presence xmlns='NS' type='unavailable'/>", core(PresenceState::Offline, None)),
        ];
        for (xml, state) in cases {
            assert_eq!(read(xml), Incoming::Presence(state), "{xml}");
        }
        assert_eq!(read("<presence xmlns='NS' type='probe'/>"), Incoming::Probe);
        assert_eq!(
            read("<presence xmlns='NS' type='subscribed'/>"),
            Incoming::Subscribed
        );
        assert_eq!(
            read("<presence xmlns='NS' type='unsubscribe'/>"),
            Incoming::Unsubscribe
        );
        assert_eq!(
            read("<presence xmlns='NS' type='unsubscribed'/>"),
            Incoming::Unsubscribed
        );
        assert_eq!(
            read("<presence xmlns='NS' type='subscribe'><nick xmlns='http://jabber.org/protocol/nick'>Romeo</nick></presence>"),
            Incoming::Subscribe { nick: Some("Romeo".into()) }
        );
        assert!(matches!(
            read("<presence xmlns='NS' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"),
            Incoming::Error(Some(e)) if e.defined_condition == DefinedCondition::ItemNotFound
        ));
    }

    #[test]
    fn subscriptions() {
        // XEP-0172 example: a subscription request with the nickname.
        assert_xml(
            subscribe(jid(CONTACT), jid(USER), Some("Juliet")),
            &format!(
                "<presence xmlns='{DEFAULT_NS}' from='{CONTACT}' to='{USER}' type='subscribe'>\
                   <priority>0</priority><nick xmlns='http://jabber.org/protocol/nick'>Juliet</nick>\
                 </presence>"
            ),
        );
        assert_xml(
            subscribe(jid(CONTACT), jid(USER), Some(" ")),
            &expected(" type='subscribe'", ""),
        );
        assert_xml(
            subscribed(jid(CONTACT), jid(USER)),
            &expected(" type='subscribed'", ""),
        );
        assert_xml(
            unsubscribed(jid(CONTACT), jid(USER)),
            &expected(" type='unsubscribed'", ""),
        );
        assert_xml(
            unsubscribe(jid(CONTACT), jid(USER)),
            &expected(" type='unsubscribe'", ""),
        );
    }

    #[test]
    fn a_failed_login() {
        let error = stanza_error(DefinedCondition::NotAuthorized, Some("Wrong password."));
        assert_xml(
            login_failed(jid("icq.example.org"), jid(USER), error),
            &format!(
                "<presence xmlns='{DEFAULT_NS}' from='icq.example.org' to='{USER}' type='error'><priority>0</priority>\
                   <error type='auth'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                   <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Wrong password.</text></error>\
                 </presence>"
            ),
        );
    }
}
