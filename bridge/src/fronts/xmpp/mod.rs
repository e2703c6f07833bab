//! The XMPP front. Its run-time modules do the I/O: the component connections
//! ([`link`], XEP-0114), the `Front` implementation ([`front`]), what users send
//! ([`inbound`], [`inbox`]; the files they share, [`uploads`]) and rooms at run time
//! ([`rooms`]). They stand on a protocol
//! layer of pure functions (the table below) from the core's vocabulary to XMPP stanzas
//! and from incoming stanzas to typed requests: no sockets, no clock, no state; the
//! run-time modules call them with plain values and send what they return.
//!
//! The stanzas are `xmpp-parsers` types (`Iq`, `Message`, `Presence`, all `Into<Stanza>`
//! for `tokio-xmpp`) in the component namespace (`jabber:component:accept`); payloads
//! `xmpp-parsers` has no type for are built with its `minidom`. Stanza ids are the ones the
//! caller gives (the outbox's transaction ids, the request's id for a reply); a builder
//! that takes no id leaves it to `tokio-xmpp`, which adds one.
//!
//! Addresses (see [`jid`]): the gateway of each network is a component domain
//! (`icq.<domain>`, `msn.<domain>`, `mig33.<domain>`), a legacy contact is
//! `<XEP-0106-escaped id>@<network domain>`, and chatrooms and group conversations are rooms
//! `<name>%<network>@<conference domain>` of one more component.
//!
//! | module | holds |
//! | --- | --- |
//! | [`jid`] | legacy id <-> JID per network (XEP-0106, case rules), the component domains, room JIDs, occupant nicknames, what an address designates |
//! | [`iq`] | what an incoming IQ asks for (typed), and the envelopes of the replies |
//! | [`errors`] | stanza errors with their RFC 6120 types, error replies to messages and presences |
//! | [`forms`] | XEP-0004 data form fields shared by registration and ad-hoc commands |
//! | [`disco`] | XEP-0030 disco#info / #items of the gateways, contacts, the conference service and rooms |
//! | [`register`] | XEP-0077 in-band registration: the form, reading a registration or `<remove/>` |
//! | [`gateway`] | XEP-0100 `jabber:iq:gateway`: the prompt, and legacy id -> JID translation |
//! | [`adhoc`] | XEP-0050 ad-hoc commands: the list, one-stage forms, the submitted [`adhoc::Command`], the answers |
//! | [`convert`] | one-to-one messages both ways: body, emotes, XHTML-IM, chat states (XEP-0085), delay (XEP-0203), receipts (XEP-0184) |
//! | [`xhtml`] | the core's (Matrix-flavoured) HTML <-> XHTML-IM (XEP-0071) bodies |
//! | [`presence`] | presence both ways (the mapping table), subscriptions with nicks (XEP-0172), probes |
//! | [`roster`] | the contact list suggested with roster item exchange (XEP-0144) |
//! | [`muc`] | rooms as a XEP-0045 service: joins and leaves, occupants, groupchat messages, subject, errors |
//! | [`vcard`] | contacts' pictures: vCard photos (XEP-0054) and their hash in presence (XEP-0153) |
//!
//! Text from the legacy networks may hold characters XML cannot carry (control
//! characters): every builder passes text through [`xml_text`] first, since serialising
//! such a character would panic in `minidom`.

// The refusals are `StanzaError`s, large, returned once per stanza and put straight into
// the reply: boxing them would only add a step for every caller.
#![allow(clippy::result_large_err)]

use std::borrow::Cow;

pub mod adhoc;
pub mod convert;
pub mod disco;
pub mod errors;
pub mod forms;
pub mod front;
pub mod gateway;
mod inbound;
mod inbox;
pub mod iq;
pub mod jid;
pub mod link;
pub mod muc;
pub mod presence;
pub mod register;
mod rooms;
pub mod roster;
mod uploads;
pub mod vcard;
pub mod xhtml;

pub use front::XmppFront;

/// `text` with the characters XML 1.0 forbids (control characters other than tab, line
/// feed and carriage return; U+FFFE, U+FFFF) replaced by U+FFFD.
pub fn xml_text(text: &str) -> Cow<'_, str> {
    fn allowed(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
    }
    if text.chars().all(allowed) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if allowed(c) { c } else { '\u{FFFD}' })
            .collect(),
    )
}

/// Test helpers: compare produced stanzas with the expected XML.
#[cfg(test)]
pub(crate) mod testing {
    use xmpp_parsers::minidom::Element;

    /// Asserts that `produced` is the element written in `expected` (attribute order and
    /// the prefixes of the text do not matter; text nodes and children do).
    pub fn assert_xml(produced: impl Into<Element>, expected: &str) {
        let produced: Element = produced.into();
        let expected: Element = expected
            .parse()
            .unwrap_or_else(|e| panic!("bad expected XML: {e}: {expected}"));
        assert!(
            produced == expected,
            "\nproduced: {}\nexpected: {}",
            String::from(&produced),
            String::from(&expected)
        );
    }

    /// Parses `xml` (test input).
    pub fn element(xml: &str) -> Element {
        xml.parse()
            .unwrap_or_else(|e| panic!("bad test XML: {e}: {xml}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_replaces_only_what_xml_forbids() {
        assert!(matches!(xml_text("a\tb\nc\rd é 😀"), Cow::Borrowed(_)));
        assert_eq!(
            xml_text("a\u{1}b\u{0}c\u{FFFE}d\u{1F}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}d\u{FFFD}"
        );
    }
}
